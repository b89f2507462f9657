//! ktcpdump's filter extension: inside `--filter`, `[ns/]pod/NAME`,
//! `[ns/]deploy/NAME`, `[ns/]ds/NAME`, `[ns/]sts/NAME` and `[ns/]svc/NAME` stand for
//! the addresses of the matching pods (a service also for its cluster IP), written
//! as `(host a or host b)` wherever they appear. Finding and substituting are pure
//! (tested here); looking the addresses up is [`crate::resolve::Scope::token_hosts`].

use std::net::IpAddr;
use std::sync::Arc;

use crate::Error;
use crate::target::Target;

/// A token in the expression: its byte range and what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub start: usize,
    pub end: usize,
    pub target: Target,
}

/// Words are what lies between blanks and parentheses; a word shaped like
/// `[ns/]TYPE/NAME` with a known type is a token. `10.0.0.0/8` and `tcp[13]`
/// are not.
pub fn find(expression: &str) -> Result<Vec<Token>, Error> {
    let mut tokens = Vec::new();
    let mut start = None;
    let bytes = expression.as_bytes();
    for i in 0..=bytes.len() {
        let boundary =
            i == bytes.len() || bytes[i].is_ascii_whitespace() || b"()".contains(&bytes[i]);
        match (boundary, start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                let word = &expression[s..i];
                if let Some(parsed) = Target::parse_token(word) {
                    let target = parsed.map_err(|e| Error::FilterToken {
                        token: word.to_string(),
                        source: Some(Arc::new(e)),
                    })?;
                    tokens.push(Token {
                        start: s,
                        end: i,
                        target,
                    });
                }
                start = None;
            }
            _ => {}
        }
    }
    Ok(tokens)
}

/// Replaces each token by its host set; `hosts[i]` belongs to `tokens[i]`. A token
/// with no address is an error: an empty set would silently match nothing (or,
/// negated, everything).
pub fn substitute(
    expression: &str,
    tokens: &[Token],
    hosts: &[Vec<IpAddr>],
) -> Result<String, Error> {
    let mut out = String::with_capacity(expression.len());
    let mut at = 0;
    for (token, addresses) in tokens.iter().zip(hosts) {
        if addresses.is_empty() {
            // No source: nothing failed, the token resolved to nothing usable.
            return Err(Error::FilterToken {
                token: expression[token.start..token.end].to_string(),
                source: None,
            });
        }
        out.push_str(&expression[at..token.start]);
        let set: Vec<String> = addresses.iter().map(|a| format!("host {a}")).collect();
        out.push('(');
        out.push_str(&set.join(" or "));
        out.push(')');
        at = token.end;
    }
    out.push_str(&expression[at..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Kind;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn finds_tokens_anywhere() {
        let expr = "pod/payments-0 and tcp[tcpflags] & tcp-rst != 0 or (prod/svc/web and not net 10.0.0.0/8)";
        let tokens = find(expr).unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens[0].target.kind, Kind::Pod);
        assert_eq!(tokens[1].target.namespace.as_deref(), Some("prod"));
        let out = substitute(
            expr,
            &tokens,
            &[
                vec![ip("10.244.0.5")],
                vec![ip("10.96.0.10"), ip("10.244.1.3")],
            ],
        )
        .unwrap();
        assert_eq!(
            out,
            "(host 10.244.0.5) and tcp[tcpflags] & tcp-rst != 0 or ((host 10.96.0.10 or host 10.244.1.3) and not net 10.0.0.0/8)"
        );
    }

    #[test]
    fn plain_bpf_is_untouched() {
        let expr = "host 10.0.0.1 and port 80 and net 192.168.0.0/16";
        assert!(find(expr).unwrap().is_empty());
        assert_eq!(substitute(expr, &[], &[]).unwrap(), expr);
    }

    #[test]
    fn empty_match_is_an_error() {
        let tokens = find("deploy/web").unwrap();
        let e = substitute("deploy/web", &tokens, &[vec![]]).unwrap_err();
        assert!(e.to_string().contains("deploy/web"), "{e}");
    }

    #[test]
    fn bad_names_in_tokens_are_errors() {
        assert!(find("pod/Bad_Name").is_err());
    }
}
