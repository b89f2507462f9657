//! OpenSSH's `match_pattern`: `*` and `?` wildcards, shared by ssh_config `Host`
//! lines and known_hosts host fields.

/// Whether `s` matches the glob `pattern` (`*` = any run, `?` = any one character).
pub(crate) fn glob_match(s: &str, pattern: &str) -> bool {
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    let (mut si, mut pi) = (0, 0);
    // Where to resume after the most recent '*': (pattern index after it, text index).
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            si += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi + 1, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// OpenSSH's `match_pattern_list` over `patterns` already split: `Some(true)` on a
/// positive match, `Some(false)` when a `!negated` pattern matches (which vetoes the
/// whole list), `None` when nothing matched.
pub(crate) fn match_list<'a>(s: &str, patterns: impl IntoIterator<Item = &'a str>) -> Option<bool> {
    let mut result = None;
    for pat in patterns {
        match pat.strip_prefix('!') {
            Some(neg) if glob_match(s, neg) => return Some(false),
            Some(_) => {}
            None if glob_match(s, pat) => result = Some(true),
            None => {}
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("", ""));
        assert!(glob_match("abc", "abc"));
        assert!(!glob_match("abc", "ab"));
        assert!(glob_match("abc", "a*"));
        assert!(glob_match("abc", "*c"));
        assert!(glob_match("abc", "a?c"));
        assert!(!glob_match("ac", "a?c"));
        assert!(glob_match("web1.example.com", "web*.example.*"));
        assert!(glob_match("aaab", "*a*b"));
        assert!(!glob_match("aaab", "*a*c"));
        assert!(glob_match("[h]:2222", "[h]:*"));
        assert!(glob_match("anything", "*"));
    }

    #[test]
    fn lists() {
        assert_eq!(match_list("a.x", ["*.x", "!b.x"]), Some(true));
        assert_eq!(match_list("b.x", ["*.x", "!b.x"]), Some(false));
        assert_eq!(match_list("b.x", ["!b.x", "*.x"]), Some(false));
        assert_eq!(match_list("c.y", ["*.x", "!b.x"]), None);
        assert_eq!(match_list("c.y", ["!b.x"]), None);
    }
}
