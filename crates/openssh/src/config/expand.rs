//! Path expansion as OpenSSH does it for IdentityFile, UserKnownHostsFile and
//! Include: `~`, `${ENV}` and `%` tokens, plus where home and the local user come from.

use std::path::{Path, PathBuf};

/// The values `%` tokens stand for when a host's options are resolved.
pub(crate) struct Tokens<'a> {
    pub home: &'a Path,
    pub local_user: &'a str,
    /// `%h`: the remote host name after `HostName`.
    pub host: &'a str,
    /// `%n`: the alias as given.
    pub alias: &'a str,
    pub remote_user: &'a str,
    pub port: u16,
}

/// `~` or `~/...` becomes the home directory; `~user` is left alone.
pub(crate) fn tilde(path: &str, home: &Path) -> String {
    match path.strip_prefix('~') {
        Some("") => home.display().to_string(),
        Some(rest) if rest.starts_with('/') => format!("{}{rest}", home.display()),
        _ => path.to_string(),
    }
}

/// `${NAME}` from the environment; unset variables are left as written so the
/// resulting path visibly fails instead of silently pointing elsewhere.
fn dollar(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        match std::env::var(&after[..end]) {
            Ok(value) => out.push_str(&value),
            Err(_) => out.push_str(&rest[start..start + 3 + end]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// `%%`, `%d`, `%h`, `%i`, `%l`, `%L`, `%n`, `%p`, `%r`, `%u`; unknown tokens stay.
fn percent(s: &str, t: &Tokens) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('d') => out.push_str(&t.home.display().to_string()),
            Some('h') | Some('k') => out.push_str(t.host),
            Some('i') => out.push_str(&uid().map_or_else(String::new, |u| u.to_string())),
            Some('l') => out.push_str(&local_hostname()),
            Some('L') => out.push_str(local_hostname().split('.').next().unwrap_or("")),
            Some('n') => out.push_str(t.alias),
            Some('p') => out.push_str(&t.port.to_string()),
            Some('r') => out.push_str(t.remote_user),
            Some('u') => out.push_str(t.local_user),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Full expansion of a configured path, in OpenSSH's order: `~` first, then
/// `${ENV}`, then `%` tokens.
pub(crate) fn path(s: &str, t: &Tokens) -> PathBuf {
    PathBuf::from(percent(&dollar(&tilde(s, t.home)), t))
}

/// `%h` in `HostName`: the only token it knows besides `%%`.
pub(crate) fn hostname(s: &str, alias: &str) -> String {
    s.replace("%%", "\0")
        .replace("%h", alias)
        .replace('\0', "%")
}

/// The home directory, from `$HOME` (falling back to `/` rather than panicking).
pub(crate) fn home() -> PathBuf {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

pub(crate) fn uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    // /proc/self is owned by the process's real uid; this avoids a libc dependency.
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

pub(crate) fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// `%C`: the SHA-1 hex of `%l%h%p%r`, as OpenSSH computes it.
pub(crate) fn connection_hash(local: &str, host: &str, port: u16, user: &str) -> String {
    use sha1::{Digest, Sha1};
    let digest = Sha1::digest(format!("{local}{host}{port}{user}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Expands the `%` tokens of a shell command (`%%` and those `value` knows).
/// OpenSSH splices values in unquoted; kcap does the same but refuses a value
/// the shell could misread (anything beyond letters, digits and `._-:@+=/,`, or
/// a leading `-`), and an unknown token, instead of running something else.
pub(crate) fn command<'v>(
    s: &str,
    value: &dyn Fn(char) -> Option<&'v str>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(t) => {
                let v = value(t).ok_or_else(|| format!("unknown token %{t}"))?;
                let unsafe_char = v
                    .chars()
                    .find(|c| !(c.is_ascii_alphanumeric() || "._-:@+=/,".contains(*c)));
                if let Some(bad) = unsafe_char {
                    return Err(format!(
                        "the value of %{t} ({v:?}) contains {bad:?}, which a shell would interpret"
                    ));
                }
                if v.starts_with('-') {
                    return Err(format!("the value of %{t} ({v:?}) starts with '-'"));
                }
                out.push_str(v);
            }
            None => return Err("a lone % at the end".into()),
        }
    }
    Ok(out)
}

/// The local login name: `$USER`, `$LOGNAME`, else the passwd entry of our uid
/// (containers often set neither variable).
pub fn local_user() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Ok(u) = std::env::var(var)
            && !u.is_empty()
        {
            return u;
        }
    }
    let uid = uid().map(|u| u.to_string());
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 2 && Some(f[2]) == uid.as_deref())
        .map_or_else(|| "root".to_string(), |f| f[0].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansions() {
        let home = Path::new("/home/me");
        let t = Tokens {
            home,
            local_user: "me",
            host: "real.example",
            alias: "web",
            remote_user: "admin",
            port: 2200,
        };
        assert_eq!(tilde("~", home), "/home/me");
        assert_eq!(tilde("~/x", home), "/home/me/x");
        assert_eq!(tilde("~bob/x", home), "~bob/x");
        assert_eq!(tilde("/a/~", home), "/a/~");
        assert_eq!(
            path("~/.ssh/%r@%h:%p-%u-%n-%%-%Z", &t),
            PathBuf::from("/home/me/.ssh/admin@real.example:2200-me-web-%-%Z")
        );
        assert_eq!(path("%d/k", &t), PathBuf::from("/home/me/k"));
        assert_eq!(hostname("%h.corp.%%h", "web"), "web.corp.%h");
        // set_var is unsafe in edition 2024, so test with a variable that exists.
        let expected = format!("{}/x", std::env::var("PATH").unwrap());
        assert_eq!(dollar("${PATH}/x"), expected);
        assert_eq!(
            dollar("${KCAP_SURELY_UNSET_VAR}/x"),
            "${KCAP_SURELY_UNSET_VAR}/x"
        );
        assert_eq!(dollar("a${b"), "a${b");
    }
}
