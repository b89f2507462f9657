//! POSIX shell quoting. Every value kcap puts into a remote command line goes through
//! [`quote`], so user input is always data, never shell syntax.

use crate::Error;

/// Quotes `value` as one POSIX shell word: wrapped in single quotes, with each `'`
/// written as `'\''`. Inside single quotes no character is special, so `;`, `$(..)`,
/// backticks and globs stay literal. NUL cannot be represented and is refused.
pub fn quote(value: &str, what: &'static str) -> Result<String, Error> {
    if value.contains('\0') {
        return Err(Error::Nul { what });
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('\'');
    for c in value.chars() {
        if c == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(c);
        }
    }
    quoted.push('\'');
    Ok(quoted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// What `sh` sees after parsing the quoted word: the exact original bytes.
    fn through_sh(value: &str) -> String {
        let script = format!("printf '%s' {}", quote(value, "test").unwrap());
        let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn hostile_values_arrive_verbatim() {
        for value in [
            "port 80; touch /tmp/kcap-quote-test",
            "eth0$(reboot)",
            "`id`",
            "it's",
            "'\\''",
            "a\nb",
            "*",
            "$HOME",
            "",
        ] {
            assert_eq!(through_sh(value), value);
        }
        assert!(!std::path::Path::new("/tmp/kcap-quote-test").exists());
    }

    #[test]
    fn nul_is_refused() {
        assert_eq!(quote("a\0b", "filter"), Err(Error::Nul { what: "filter" }));
    }
}
