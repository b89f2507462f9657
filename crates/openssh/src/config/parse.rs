//! ssh_config lexing (OpenSSH's `strdelim` + `argv_split`), typed option values and
//! `Include` loading. Values are checked when read, for every block, because OpenSSH
//! also rejects a bad line even in a block that does not apply.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::expand;
use crate::destination::{Destination, check_name};
use crate::{Error, pattern::glob_match};

/// OpenSSH's `READCONF_MAX_DEPTH`: stops Include loops.
const MAX_DEPTH: usize = 16;

#[derive(Debug, Clone)]
pub(crate) enum Item {
    Host(Vec<String>),
    /// `Match`: its criteria are evaluated (in order, all must hold) when a host
    /// is resolved, as OpenSSH does while reading the file.
    Match {
        criteria: Vec<Criterion>,
        /// `file:line`, for messages.
        at: String,
    },
    Set(Setting),
    Include(Vec<Item>),
}

/// One `Match` criterion, possibly `!negated`.
#[derive(Debug, Clone)]
pub(crate) struct Criterion {
    pub negate: bool,
    pub kind: Criteria,
}

#[derive(Debug, Clone)]
pub(crate) enum Criteria {
    All,
    /// Holds only on the final pass (after "canonicalization").
    Canonical,
    /// Holds only on the final pass; asks for one when not negated.
    Final,
    /// Comma-separated patterns against the host name after `HostName`.
    Host(Vec<String>),
    /// Against the host as typed.
    OriginalHost(Vec<String>),
    /// Against the remote user (command line, else `User` so far, else local).
    User(Vec<String>),
    LocalUser(Vec<String>),
    /// A shell command, `%` tokens expanded; holds when it exits 0.
    Exec(String),
    /// A criterion OpenSSH knows but kcap does not evaluate (`tagged`,
    /// `localnetwork`, `command`, `version`, `sessiontype`): the block is skipped.
    Unsupported(String),
}

#[derive(Debug, Clone)]
pub(crate) enum Setting {
    HostName(String),
    User(String),
    Port(u16),
    IdentityFile(String),
    IdentitiesOnly(bool),
    /// `None` is `ProxyJump none`.
    ProxyJump(Option<Vec<Destination>>),
    ProxyCommand(String),
    UserKnownHostsFile(Vec<String>),
    GlobalKnownHostsFile(Vec<String>),
    StrictHostKeyChecking(String),
    ConnectTimeout(Duration),
    CertificateFile(String),
    /// A file of public keys no host may present (`none`: no file).
    RevokedHostKeys(String),
    /// The name host keys are looked up and recorded under instead of the host's.
    HostKeyAlias(String),
    /// A keyword kcap knows matters and does not do (named once on stderr).
    Unsupported(&'static str),
    ProxyUseFdpass(bool),
    /// `no`, `yes` or `always`.
    CanonicalizeHostname(String),
}

/// Reads and parses `path`; `Ok(None)` if it does not exist.
pub(crate) fn read_file(path: &Path, ctx: &Ctx, depth: usize) -> Result<Option<Vec<Item>>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => parse_text(&String::from_utf8_lossy(&bytes), path, ctx, depth).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Where `Include` looks: `~` is `home`, relative paths are under `base`
/// (`~/.ssh` for user configs, `/etc/ssh` for the system one, as ssh_config(5) says).
pub(crate) struct Ctx {
    pub home: PathBuf,
    pub base: PathBuf,
}

/// Parses config text read from `path` (used in messages).
pub(crate) fn parse_text(
    text: &str,
    path: &Path,
    ctx: &Ctx,
    depth: usize,
) -> Result<Vec<Item>, Error> {
    let mut items = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let fail = |message: String| Error::Syntax {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let Some((keyword, rest)) = split_keyword(raw) else {
            continue;
        };
        let args = argv_split(rest).ok_or_else(|| fail("invalid quotes".to_string()))?;
        let item = match keyword.as_str() {
            "host" if args.is_empty() => return Err(fail("Host needs a pattern".into())),
            "host" => Item::Host(args),
            "match" => Item::Match {
                criteria: match_criteria(&args).map_err(fail)?,
                at: format!("{}:{}", path.display(), i + 1),
            },
            "include" => {
                if depth >= MAX_DEPTH {
                    return Err(fail("Include nested too deeply".into()));
                }
                let mut included = Vec::new();
                for arg in &args {
                    for file in glob(&include_path(arg, ctx)) {
                        if let Some(sub) = read_file(&file, ctx, depth + 1)? {
                            included.extend(sub);
                        }
                    }
                }
                Item::Include(included)
            }
            // ProxyCommand takes the rest of the line verbatim, like OpenSSH.
            "proxycommand" if rest.trim().is_empty() => {
                return Err(fail("ProxyCommand needs a command".into()));
            }
            "proxycommand" => Item::Set(Setting::ProxyCommand(rest.trim().to_string())),
            other => match setting(other, &args).map_err(fail)? {
                Some(s) => Item::Set(s),
                // Unknown keywords are OpenSSH's business, not kcap's.
                None => continue,
            },
        };
        items.push(item);
    }
    Ok(items)
}

/// Parses `Match` arguments with OpenSSH's rules: criteria are case-insensitive,
/// `!` negates one, `all` stands alone or right after `canonical`/`final`.
fn match_criteria(args: &[String]) -> Result<Vec<Criterion>, String> {
    if args.is_empty() {
        return Err("Match needs criteria (e.g. Match host NAME, Match all)".into());
    }
    let mut criteria = Vec::new();
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let (negate, name) = match word.strip_prefix('!') {
            Some(n) => (true, n),
            None => (false, word.as_str()),
        };
        let name = name.to_ascii_lowercase();
        let mut arg = || {
            words
                .next()
                .filter(|a| !a.is_empty())
                .cloned()
                .ok_or_else(|| format!("Match {name} needs an argument"))
        };
        let list = |a: String| a.split(',').map(str::to_string).collect::<Vec<_>>();
        let kind = match name.as_str() {
            "all" => Criteria::All,
            "canonical" => Criteria::Canonical,
            "final" => Criteria::Final,
            "host" => Criteria::Host(list(arg()?.to_ascii_lowercase())),
            "originalhost" => Criteria::OriginalHost(list(arg()?.to_ascii_lowercase())),
            "user" => Criteria::User(list(arg()?)),
            "localuser" => Criteria::LocalUser(list(arg()?)),
            "exec" => Criteria::Exec(arg()?),
            "tagged" | "localnetwork" | "command" | "version" | "sessiontype" => {
                Criteria::Unsupported(format!("{name} {}", arg()?))
            }
            other => return Err(format!("unsupported Match criterion {other:?}")),
        };
        criteria.push(Criterion { negate, kind });
    }
    if let Some(i) = criteria
        .iter()
        .position(|c| matches!(c.kind, Criteria::All))
    {
        let before_ok = criteria[..i]
            .iter()
            .all(|c| matches!(c.kind, Criteria::Canonical | Criteria::Final));
        if i + 1 != criteria.len() || !before_ok {
            return Err(
                "Match all cannot be combined with other criteria (only canonical or final before it)"
                    .into(),
            );
        }
    }
    Ok(criteria)
}

fn setting(keyword: &str, args: &[String]) -> Result<Option<Setting>, String> {
    let one = || match args {
        [a] if !a.is_empty() => Ok(a.clone()),
        [] | [_] => Err(format!("{keyword}: missing argument")),
        _ => Err(format!("{keyword}: extra arguments at end of line")),
    };
    Ok(Some(match keyword {
        // Checked like command-line destinations: these end up in known_hosts,
        // logs and remote commands.
        "hostname" => Setting::HostName(checked(one()?, "HostName")?),
        "user" => Setting::User(checked(one()?, "User")?),
        "port" => Setting::Port(port(&one()?)?),
        "identityfile" => Setting::IdentityFile(one()?),
        "identitiesonly" => Setting::IdentitiesOnly(yes_no(&one()?)?),
        "certificatefile" => Setting::CertificateFile(one()?),
        "revokedhostkeys" => Setting::RevokedHostKeys(one()?),
        "hostkeyalias" => Setting::HostKeyAlias(checked(one()?, "HostKeyAlias")?),
        // Host keys from a program: kcap checks known_hosts files only, so a host
        // known only through it is "unknown" (refused, never trusted blindly).
        "knownhostscommand" => Setting::Unsupported(
            "KnownHostsCommand (kcap reads known_hosts files only; a host known only \
             through the command is refused as unknown)",
        ),
        "proxyusefdpass" => Setting::ProxyUseFdpass(yes_no(&one()?)?),
        "canonicalizehostname" => Setting::CanonicalizeHostname(canonicalize(&one()?)?),
        "proxyjump" => {
            let arg = one()?;
            if arg.eq_ignore_ascii_case("none") {
                Setting::ProxyJump(None)
            } else {
                let chain = Destination::parse_chain(&arg).map_err(|e| e.to_string())?;
                Setting::ProxyJump(Some(chain))
            }
        }
        "userknownhostsfile" if args.is_empty() => {
            return Err("UserKnownHostsFile: missing argument".into());
        }
        "userknownhostsfile" => Setting::UserKnownHostsFile(args.to_vec()),
        "globalknownhostsfile" if args.is_empty() => {
            return Err("GlobalKnownHostsFile: missing argument".into());
        }
        "globalknownhostsfile" => Setting::GlobalKnownHostsFile(args.to_vec()),
        "stricthostkeychecking" => Setting::StrictHostKeyChecking(strict(&one()?)?),
        "connecttimeout" => Setting::ConnectTimeout(timeout(&one()?)?),
        _ => return Ok(None),
    }))
}

fn checked(value: String, what: &str) -> Result<String, String> {
    let allowed = if what == "User" { "@" } else { "" };
    check_name(&value, what, allowed).map(|()| value)
}

fn port(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => Err(format!("bad port {s:?}")),
    }
}

fn yes_no(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(format!("expected yes or no, not {s:?}")),
    }
}

fn canonicalize(s: &str) -> Result<String, String> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "yes" | "true" => "yes",
        "no" | "false" => "no",
        "always" => "always",
        _ => return Err(format!("bad CanonicalizeHostname {s:?}")),
    }
    .to_string())
}

fn strict(s: &str) -> Result<String, String> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "yes" | "true" => "yes",
        "no" | "false" | "off" => "no",
        "ask" => "ask",
        "accept-new" => "accept-new",
        _ => return Err(format!("bad StrictHostKeyChecking {s:?}")),
    }
    .to_string())
}

/// OpenSSH's `convtime`: `90`, `1m30s`, `1h`, `none` (no timeout, like 0).
fn timeout(s: &str) -> Result<Duration, String> {
    let bad = || format!("bad time {s:?}");
    if s.eq_ignore_ascii_case("none") {
        return Ok(Duration::ZERO);
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit = match rest.bytes().next() {
            None => 1,
            Some(b) => {
                rest = &rest[1..];
                match b.to_ascii_lowercase() {
                    b's' => 1,
                    b'm' => 60,
                    b'h' => 3600,
                    b'd' => 86400,
                    b'w' => 604800,
                    _ => return Err(bad()),
                }
            }
        };
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if s.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// Splits off the lowercased keyword: it ends at whitespace or one `=`, so
/// `Key Value`, `Key=Value` and `Key = Value` all work. `None` for blank/comment lines.
fn split_keyword(line: &str) -> Option<(String, &str)> {
    let line = line.trim_start();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let keyword = line[..end].to_ascii_lowercase();
    let mut rest = line[end..].trim_start();
    if let Some(r) = rest.strip_prefix('=') {
        rest = r.trim_start();
    }
    Some((keyword, rest.trim_end()))
}

/// OpenSSH's `argv_split`: whitespace-separated words, `"` and `'` quoting, `\`
/// escapes of quotes, backslash and (outside quotes) space; `#` starts a comment
/// at the beginning of a word. `None` on an unterminated quote.
pub(crate) fn argv_split(s: &str) -> Option<Vec<String>> {
    let chars: Vec<char> = s.chars().collect();
    let mut args = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == ' ' || chars[i] == '\t' {
            i += 1;
            continue;
        }
        if chars[i] == '#' {
            break;
        }
        let mut arg = String::new();
        let mut quote = None;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            match (c, quote) {
                ('\\', _)
                    if matches!(next, Some('\'' | '"' | '\\'))
                        || (quote.is_none() && next == Some(' ')) =>
                {
                    i += 1;
                    arg.push(chars[i]);
                }
                (' ' | '\t', None) => break,
                ('"' | '\'', None) => quote = Some(c),
                (c, Some(q)) if c == q => quote = None,
                (c, _) => arg.push(c),
            }
            i += 1;
        }
        if quote.is_some() {
            return None;
        }
        args.push(arg);
    }
    Some(args)
}

fn include_path(arg: &str, ctx: &Ctx) -> PathBuf {
    let path = PathBuf::from(expand::tilde(arg, &ctx.home));
    if path.is_absolute() {
        path
    } else {
        ctx.base.join(path)
    }
}

/// Minimal glob(3): `*` and `?` within path components, results sorted, hidden
/// files only when the pattern component starts with '.'; only existing files.
fn glob(pattern: &Path) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::new()];
    for comp in pattern.components() {
        let text = comp.as_os_str().to_string_lossy();
        if !text.contains(['*', '?']) {
            found.iter_mut().for_each(|p| p.push(comp));
            continue;
        }
        let mut next = Vec::new();
        for dir in &found {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| (!n.starts_with('.') || text.starts_with('.')) && glob_match(n, &text))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| dir.join(n)));
        }
        found = next;
    }
    found.retain(|p| p.is_file());
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        argv_split(s).unwrap()
    }

    #[test]
    fn lexing() {
        assert_eq!(words("a  b\tc"), ["a", "b", "c"]);
        assert_eq!(words(r#""a b" 'c d' e"f g"h"#), ["a b", "c d", "ef gh"]);
        assert_eq!(words(r#"a\ b c\\d \"x"#), ["a b", r"c\d", "\"x"]);
        assert_eq!(words("a #comment"), ["a"]);
        assert_eq!(words("a#b"), ["a#b"]);
        assert_eq!(words(r#""""#), [""]);
        assert!(argv_split("\"open").is_none());
        assert_eq!(split_keyword("  Port=22"), Some(("port".into(), "22")));
        assert_eq!(split_keyword("PORT = 22 "), Some(("port".into(), "22")));
        assert_eq!(split_keyword("Port\t22"), Some(("port".into(), "22")));
        assert_eq!(split_keyword("  # x"), None);
        assert_eq!(split_keyword(""), None);
    }

    #[test]
    fn values() {
        assert_eq!(timeout("90"), Ok(Duration::from_secs(90)));
        assert_eq!(timeout("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(timeout("1H"), Ok(Duration::from_secs(3600)));
        assert_eq!(timeout("none"), Ok(Duration::ZERO));
        for bad in ["", "x", "1x", "m", "-1"] {
            assert!(timeout(bad).is_err(), "{bad}");
        }
        assert_eq!(port("2222"), Ok(2222));
        for bad in ["0", "65536", "+1", "ssh", ""] {
            assert!(port(bad).is_err(), "{bad}");
        }
        assert_eq!(strict("OFF").unwrap(), "no");
        assert_eq!(strict("true").unwrap(), "yes");
        assert!(strict("maybe").is_err());
    }
}
