//! `[user@]host[:port]` (also `ssh://[user@]host[:port]` and `[v6addr]:port`) and
//! comma-separated jump chains, as OpenSSH's `-J`/`ProxyJump` accept them.

use std::fmt;

use crate::Error;

/// One hop: who to log in as, where, on which port. `None` means "not said here":
/// ssh_config and defaults fill it in later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

/// Characters rejected in hosts and users. Names end up in log lines, known_hosts
/// and possibly in remote shell commands, so anything a shell or ssh_config would
/// interpret is refused up front (OpenSSH's `valid_hostname`/`valid_ruser` do the same).
const FORBIDDEN: &str = "'\"`;&|$\\<>(){}*?!#,[]/";

impl Destination {
    /// Parses one destination. Rejects empty hosts, bad ports and characters that
    /// have no business in a host name (whitespace, quotes, shell metacharacters).
    pub fn parse(input: &str) -> Result<Destination, Error> {
        let fail = |message: &str| Error::Destination {
            input: input.to_string(),
            message: message.to_string(),
        };
        if input.is_empty() {
            return Err(fail("empty destination"));
        }
        let (rest, is_uri) = match strip_prefix_ci(input, "ssh://") {
            Some(rest) => (rest.strip_suffix('/').unwrap_or(rest), true),
            None => (input, false),
        };
        // OpenSSH splits at the last '@', so a user name may itself contain '@'.
        let (user, hostport) = match rest.rfind('@') {
            Some(at) => {
                let user = &rest[..at];
                let user = if is_uri {
                    percent_decode(user).ok_or_else(|| fail("bad %-escape in user"))?
                } else {
                    user.to_string()
                };
                (Some(user), &rest[at + 1..])
            }
            None => (None, rest),
        };
        let (host, port) = split_host_port(hostport).map_err(|m| fail(&m))?;
        if let Some(user) = &user {
            check_name(user, "user", "@").map_err(|m| fail(&m))?;
        }
        check_name(host, "host", "").map_err(|m| fail(&m))?;
        let port = port.map(parse_port).transpose().map_err(|m| fail(&m))?;
        Ok(Destination {
            user,
            host: host.to_string(),
            port,
        })
    }

    /// Parses a comma-separated jump chain, first hop first.
    pub fn parse_chain(input: &str) -> Result<Vec<Destination>, Error> {
        if input.is_empty() {
            return Err(Error::Destination {
                input: input.to_string(),
                message: "empty jump chain".to_string(),
            });
        }
        input.split(',').map(Destination::parse).collect()
    }
}

impl fmt::Display for Destination {
    /// Prints the form [`Destination::parse`] reads back (`user@[::1]:2222`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        match self.port {
            Some(port) if self.host.contains(':') => write!(f, "[{}]:{port}", self.host),
            Some(port) => write!(f, "{}:{port}", self.host),
            // Bracketed, a host with a ':' reads back as itself (bare, one ':'
            // would be host and port, and the bare IPv6 form is checked harder).
            None if self.host.contains(':') => write!(f, "[{}]", self.host),
            None => f.write_str(&self.host),
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// `host`, `host:port`, `[host]:port`, `[host]`, or a bare IPv6 address (more than one
/// ':' and no brackets), which then cannot carry a port.
fn split_host_port(s: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(inner) = s.strip_prefix('[') {
        let close = inner.find(']').ok_or("missing ']'")?;
        let host = &inner[..close];
        let after = &inner[close + 1..];
        if after.is_empty() {
            return Ok((host, None));
        }
        let port = after
            .strip_prefix(':')
            .ok_or("expected ':port' after ']'")?;
        return Ok((host, Some(port)));
    }
    match s.matches(':').count() {
        0 => Ok((s, None)),
        1 => {
            let (host, port) = s.split_once(':').unwrap_or((s, ""));
            Ok((host, Some(port)))
        }
        // Several colons without brackets: only a real IPv6 address (optionally
        // with a %zone) is accepted, so typos like `host:22:33` are not hosts.
        _ => {
            let addr = s.split_once('%').map_or(s, |(a, _)| a);
            match addr.parse::<std::net::Ipv6Addr>() {
                Ok(_) => Ok((s, None)),
                Err(_) => Err(format!("{s:?} is neither host:port nor an IPv6 address")),
            }
        }
    }
}

fn parse_port(s: &str) -> Result<u16, String> {
    if s.is_empty() {
        return Err("empty port".to_string());
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port {s:?} is not a number"));
    }
    match s.parse::<u32>() {
        Ok(p @ 1..=65535) => Ok(p as u16),
        _ => Err(format!("port {s} is out of range 1-65535")),
    }
}

/// `allowed` lists characters of [`FORBIDDEN`] that this field may contain anyway.
pub(crate) fn check_name(s: &str, what: &str, allowed: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("empty {what}"));
    }
    // A leading '-' would be taken as an option by ssh or other tools downstream.
    if s.starts_with('-') {
        return Err(format!("{what} must not start with '-'"));
    }
    for c in s.chars() {
        if c.is_whitespace() {
            return Err(format!("{what} contains whitespace"));
        }
        if c.is_control() {
            return Err(format!("{what} contains a control character"));
        }
        if FORBIDDEN.contains(c) && !allowed.contains(c) {
            return Err(format!("{what} contains forbidden character {c:?}"));
        }
    }
    Ok(())
}

/// RFC 3986 %XX decoding, as OpenSSH applies it to the user part of `ssh://` URIs.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(user: Option<&str>, host: &str, port: Option<u16>) -> Destination {
        Destination {
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
        }
    }

    #[test]
    fn plain_forms() {
        let p = |s| Destination::parse(s).unwrap();
        assert_eq!(p("host"), d(None, "host", None));
        assert_eq!(p("user@host"), d(Some("user"), "host", None));
        assert_eq!(p("host:2222"), d(None, "host", Some(2222)));
        assert_eq!(
            p("u.x-y_z@10.0.0.1:22"),
            d(Some("u.x-y_z"), "10.0.0.1", Some(22))
        );
        assert_eq!(p("a@b@host"), d(Some("a@b"), "host", None));
    }

    #[test]
    fn uri_forms() {
        let p = |s| Destination::parse(s).unwrap();
        assert_eq!(p("ssh://host"), d(None, "host", None));
        assert_eq!(p("ssh://u@host:2"), d(Some("u"), "host", Some(2)));
        assert_eq!(p("SSH://u@host/"), d(Some("u"), "host", None));
        assert_eq!(p("ssh://u%40x@[::1]:7"), d(Some("u@x"), "::1", Some(7)));
        assert!(Destination::parse("ssh://u@host/path").is_err());
        assert!(Destination::parse("ssh://").is_err());
    }

    #[test]
    fn ipv6() {
        let p = |s| Destination::parse(s).unwrap();
        assert_eq!(p("[::1]:2222"), d(None, "::1", Some(2222)));
        assert_eq!(p("root@[fe80::1]"), d(Some("root"), "fe80::1", None));
        assert_eq!(p("::1"), d(None, "::1", None));
        assert_eq!(p("u@2001:db8::5"), d(Some("u"), "2001:db8::5", None));
        assert_eq!(p("fe80::1%eth0"), d(None, "fe80::1%eth0", None));
        assert!(Destination::parse("h:22:33").is_err());
        assert!(Destination::parse("::1:2222:x").is_err());
        assert!(Destination::parse("[::1").is_err());
        assert!(Destination::parse("[::1]x").is_err());
        assert!(Destination::parse("[]:22").is_err());
    }

    #[test]
    fn bad_ports() {
        for s in [
            "h:0",
            "h:65536",
            "h:99999999999",
            "h:",
            "h:abc",
            "h:+22",
            "h:-1",
            "h: 22",
        ] {
            assert!(Destination::parse(s).is_err(), "{s} accepted");
        }
        assert_eq!(Destination::parse("h:65535").unwrap().port, Some(65535));
    }

    #[test]
    fn hostile_strings_rejected() {
        let bad = [
            "",
            "@host",
            "user@",
            "user@:22",
            "host;reboot",
            "host&&x",
            "h|x",
            "$(id)@h",
            "`id`@h",
            "h$x",
            "a b",
            "u@h\tx",
            "h\nx",
            "h\u{7}",
            "'h'",
            "\"h\"",
            "h\\x",
            "h<x",
            "h>x",
            "-oProxyCommand=x",
            "-u@h",
            "u@-h",
            "h*",
            "h/x",
            "h(1)",
            "h{a}",
        ];
        for s in bad {
            let err = Destination::parse(s).expect_err(s);
            let msg = err.to_string();
            assert!(msg.contains("invalid destination"), "{msg}");
        }
        let msg = Destination::parse("host;reboot").unwrap_err().to_string();
        assert!(msg.contains("forbidden character ';'"), "{msg}");
    }

    #[test]
    fn chains() {
        let chain = Destination::parse_chain("a,b@c:2,d").unwrap();
        assert_eq!(
            chain,
            vec![
                d(None, "a", None),
                d(Some("b"), "c", Some(2)),
                d(None, "d", None)
            ]
        );
        assert_eq!(
            Destination::parse_chain("ssh://x@[::1]:5").unwrap(),
            vec![d(Some("x"), "::1", Some(5))]
        );
        for s in ["", "a,", ",a", "a,,b", "a,b;c"] {
            assert!(Destination::parse_chain(s).is_err(), "{s} accepted");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["h", "u@h", "u@h:2", "[::1]:2", "[::1]", "u@[fe80::1]"] {
            let parsed = Destination::parse(s).unwrap();
            assert_eq!(parsed.to_string(), s);
            assert_eq!(Destination::parse(&parsed.to_string()).unwrap(), parsed);
        }
        // A bare IPv6 address prints bracketed, which reads back the same.
        for (bare, shown) in [("::1", "[::1]"), ("u@fe80::1", "u@[fe80::1]")] {
            let parsed = Destination::parse(bare).unwrap();
            assert_eq!(parsed.to_string(), shown);
            assert_eq!(Destination::parse(shown).unwrap(), parsed);
        }
    }
}
