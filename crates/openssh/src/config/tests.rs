//! ssh_config tests; most compare with `ssh -G -F FILE alias`, OpenSSH's own answer.

use std::collections::HashMap;
use std::fs;
use std::process::Command;

use super::*;

/// `ssh -G` output as keyword -> values (identityfile repeats).
fn ssh_g(file: &Path, alias: &str) -> HashMap<String, Vec<String>> {
    let out = Command::new("ssh")
        .arg("-G")
        .arg("-F")
        .arg(file)
        .arg(alias)
        .output()
        .expect("run ssh -G");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "ssh -G failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for line in stdout.lines() {
        let (k, v) = line.split_once(' ').unwrap_or((line, ""));
        map.entry(k.to_string()).or_default().push(v.to_string());
    }
    map
}

/// ssh -G's spelling of a jump hop: IPv6 always bracketed.
fn hop(d: &Destination) -> String {
    let user = d.user.as_ref().map_or(String::new(), |u| format!("{u}@"));
    let host = if d.host.contains(':') {
        format!("[{}]", d.host)
    } else {
        d.host.clone()
    };
    let port = d.port.map_or(String::new(), |p| format!(":{p}"));
    format!("{user}{host}{port}")
}

fn join(paths: &[PathBuf]) -> String {
    let v: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    v.join(" ")
}

/// Writes `text` to a temp file, checks every alias against `ssh -G` and returns
/// our answers for further assertions.
fn assert_like_ssh(text: &str, aliases: &[&str]) -> Vec<HostConfig> {
    let mut answers = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    fs::write(
        &path,
        text.replace("$DIR", &dir.path().display().to_string()),
    )
    .unwrap();
    for (name, body) in extra_files(text) {
        let file = dir.path().join(name);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(file, body).unwrap();
    }
    let config = SshConfig::load(&path).unwrap();
    let home = expand::home();
    for &alias in aliases {
        let ssh = ssh_g(&path, alias);
        let got = config.resolve(alias);
        let one = |k: &str| ssh.get(k).map(|v| v.join(" "));
        let ctx = format!("alias {alias:?} in\n{text}\ngot {got:#?}");
        let hostname = got.hostname.clone().unwrap_or(alias.to_lowercase());
        assert_eq!(one("hostname").unwrap(), hostname, "{ctx}");
        let user = got.user.clone().unwrap_or_else(local_user);
        assert_eq!(one("user").unwrap(), user, "{ctx}");
        assert_eq!(
            one("port").unwrap(),
            got.port.unwrap_or(22).to_string(),
            "{ctx}"
        );
        let ssh_ids = ssh["identityfile"].iter().map(|f| expand::tilde(f, &home));
        if got.identity_files.is_empty() {
            assert!(
                ssh["identityfile"].contains(&"~/.ssh/id_rsa".to_string()),
                "{ctx}"
            );
        } else {
            let ours = got.identity_files.iter().map(|p| p.display().to_string());
            assert_eq!(
                ssh_ids.collect::<Vec<_>>(),
                ours.collect::<Vec<_>>(),
                "{ctx}"
            );
        }
        let jump = got.proxy_jump.as_ref().filter(|c| !c.is_empty());
        let jump = jump.map(|c| c.iter().map(hop).collect::<Vec<_>>().join(","));
        assert_eq!(one("proxyjump"), jump, "{ctx}");
        assert_eq!(one("proxycommand"), got.proxy_command, "{ctx}");
        let known = match got.user_known_hosts_files.as_slice() {
            [] => join(&default_known_hosts()),
            [p] if p == Path::new("/dev/null") => "none".to_string(),
            files => join(files),
        };
        assert_eq!(one("userknownhostsfile").unwrap(), known, "{ctx}");
        let strict = match got.strict_host_key_checking.as_deref() {
            None | Some("ask") => "ask",
            Some("yes") => "true",
            Some("no") => "false",
            Some(other) => other,
        };
        assert_eq!(one("stricthostkeychecking").unwrap(), strict, "{ctx}");
        let timeout = got
            .connect_timeout
            .map_or("none".to_string(), |d| d.as_secs().to_string());
        assert_eq!(one("connecttimeout").unwrap(), timeout, "{ctx}");
        let only = if got.identities_only == Some(true) {
            "yes"
        } else {
            "no"
        };
        assert_eq!(one("identitiesonly").unwrap(), only, "{ctx}");
        answers.push(got);
    }
    answers
}

/// Files to create next to the config: `#FILE name` starts one, `#END` ends it.
/// They are comments to ssh, so the config itself is unaffected.
fn extra_files(text: &str) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("#FILE ") {
            current = Some((name.to_string(), String::new()));
        } else if line == "#END" {
            files.extend(current.take());
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line.strip_prefix('#').unwrap_or(line));
            body.push('\n');
        }
    }
    files
}

#[test]
fn first_value_wins_and_identity_files_accumulate() {
    let got = assert_like_ssh(
        "IdentityFile ~/.ssh/global\n\
         Host Foo\n  HostName real-%h.EXAMPLE.com\n  User alice\n  IdentityFile ~/.ssh/foo\n\
         \x20 UserKnownHostsFile ~/kh1 /tmp/kh2\n\
         Host foo bar\n  Port 2200\n  IdentityFile /abs/key\n  IdentityFile ~/.ssh/global\n\
         \x20 UserKnownHostsFile /tmp/second\n  ProxyJump bob@jump1:2022,jump2\n\
         Host *\n  ProxyCommand nc %h %p\n  User bob\n  Port 1\n",
        &["Foo", "foo", "FOO", "bar", "other"],
    );
    assert_eq!(got[0].hostname.as_deref(), Some("real-foo.example.com"));
    assert_eq!(got[1].identity_files.len(), 2);
    assert_eq!(got[1].proxy_jump.as_ref().map(Vec::len), Some(2));
    assert_eq!(got[2].proxy_command.as_deref(), Some("nc %h %p"));
    assert!(got[2].ignored[0].contains("ProxyCommand"));
}

#[test]
fn patterns_negation_and_syntax_forms() {
    assert_like_ssh(
        "# leading comment\n\
         HOST *.prod !db.prod   # trailing comment\n\
         \x20 hostname=%h.internal\n\
         \x20 USER = deploy\n\
         Host web? \"q*\"\n\
         \tPort\t2022\n\
         \x20 IdentityFile \"/keys/with space\"\n\
         \x20 IdentitiesOnly yes\n\
         Host *\n\
         \x20 StrictHostKeyChecking accept-new\n\
         \x20 ConnectTimeout 1m5s\n",
        &["app.prod", "db.prod", "web1", "web12", "q1", "x"],
    );
    assert_like_ssh(
        "Host a\n StrictHostKeyChecking off\n ConnectTimeout 0\n UserKnownHostsFile none\n\
         Host b\n StrictHostKeyChecking yes\n IdentitiesOnly no\n",
        &["a", "b"],
    );
}

#[test]
fn proxy_jump_variants() {
    assert_like_ssh(
        "Host direct\n  ProxyJump none\n\
         Host cmdnone\n  ProxyCommand none\n\
         Host v6\n  ProxyJump u@[::1]:23,v@[fe80::2],ssh://w@h:22\n\
         Host viacmd\n  ProxyCommand ssh -W %h:%p gw\n\
         Host *\n  ProxyJump jump.example.com\n",
        &["direct", "cmdnone", "v6", "viacmd", "other"],
    );
}

#[test]
fn match_blocks_do_not_leak() {
    let text = "Host a\n  User early\n\
                Match host nothing-matches-this\n  User fromMatch\n  Port 99\n\
                Host b\n  Port 3\n\
                Match all\n  IdentityFile /all/key\n";
    assert_like_ssh(text, &["a", "b", "c"]);
    let config = SshConfig::parse_str(text, Path::new("cfg")).unwrap();
    let a = config.resolve("a");
    assert_eq!(a.port, None);
    assert_eq!(a.identity_files, [PathBuf::from("/all/key")]);
    assert_eq!(a.ignored.len(), 1);
    assert!(a.ignored[0].starts_with("cfg:3: \"Match host nothing-matches-this\""));
    // A Match that OpenSSH would apply is still skipped, with the note to warn about.
    let config = SshConfig::parse_str("Match host a\n  User m\n", Path::new("cfg")).unwrap();
    let a = config.resolve("a");
    assert_eq!((a.user, a.ignored.len()), (None, 1));
}

#[test]
fn includes_absolute_and_globbed() {
    let got = assert_like_ssh(
        "Include $DIR/conf.d/*.conf\n\
         Host inc\n  Include $DIR/inner\n  Port 5\n\
         Host *\n  User last\n\
         #FILE conf.d/10-a.conf\n\
         #Host a\n#  HostName from-a\n\
         #END\n\
         #FILE conf.d/20-b.conf\n\
         #Host a b\n#  User from-b\n#  HostName ignored-b\n\
         #END\n\
         #FILE conf.d/skip.txt\n\
         #Host a\n#  Port 9\n\
         #END\n\
         #FILE inner\n\
         #Port 7\n#Host other\n#  User inner-other\n\
         #END\n",
        &["a", "b", "inc", "other"],
    );
    assert_eq!(got[0].hostname.as_deref(), Some("from-a"));
    assert_eq!(got[0].user.as_deref(), Some("from-b"));
    assert_eq!(got[0].port, None);
    assert_eq!(
        (got[2].port, got[2].user.as_deref()),
        (Some(7), Some("last"))
    );
    assert_eq!(got[3].user.as_deref(), Some("last"));
}

#[test]
fn relative_include_uses_home_ssh_dir() {
    let home = tempfile::tempdir().unwrap();
    let ssh_dir = home.path().join(".ssh");
    fs::create_dir_all(ssh_dir.join("conf.d")).unwrap();
    fs::write(ssh_dir.join("conf.d/x"), "Host h\n  User included\n").unwrap();
    let main = home.path().join("elsewhere/config");
    fs::create_dir_all(main.parent().unwrap()).unwrap();
    fs::write(
        &main,
        "Include conf.d/*\nInclude ~/.ssh/conf.d/x\nHost h\n  Port 4\n",
    )
    .unwrap();
    let config = SshConfig::load_with_home(&main, home.path()).unwrap();
    let h = config.resolve("h");
    assert_eq!((h.user.as_deref(), h.port), (Some("included"), Some(4)));
    let missing = SshConfig::load_with_home(&home.path().join("nope"), home.path()).unwrap();
    assert_eq!(missing.resolve("h"), HostConfig::default());
}

#[test]
fn include_loop_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    fs::write(&path, format!("Include {}\n", path.display())).unwrap();
    let err = SshConfig::load(&path).unwrap_err().to_string();
    assert!(err.contains("nested too deeply"), "{err}");
}

#[test]
fn paths_expand_tokens() {
    let home = Path::new("/home/me");
    let text = "Host web\n  HostName Web.Example.COM\n  User admin\n  Port 2200\n\
                \x20 IdentityFile ~/.ssh/%r@%h:%p\n  IdentityFile %d/%u/%n\n\
                \x20 UserKnownHostsFile ~/kh/%h ~/kh2\n";
    let config = SshConfig::parse_str_with_home(text, Path::new("c"), home).unwrap();
    let me = local_user();
    let web = config.resolve("web");
    assert_eq!(web.hostname.as_deref(), Some("web.example.com"));
    assert_eq!(
        web.identity_files,
        [
            PathBuf::from("/home/me/.ssh/admin@web.example.com:2200"),
            PathBuf::from(format!("/home/me/{me}/web")),
        ]
    );
    assert_eq!(
        web.user_known_hosts_files,
        [
            PathBuf::from("/home/me/kh/web.example.com"),
            PathBuf::from("/home/me/kh2")
        ]
    );
    // Command-line user and port win in expansions; the fields keep the file's view.
    let cli = config.resolve_with("web", Some("root"), Some(22));
    assert_eq!(
        cli.identity_files[0],
        PathBuf::from("/home/me/.ssh/root@web.example.com:22")
    );
    assert_eq!((cli.user.as_deref(), cli.port), (Some("admin"), Some(2200)));
}

#[test]
fn syntax_errors_name_the_line() {
    for (text, line) in [
        ("Host a\n  Port 0\n", 2),
        ("Port x\n", 1),
        ("Host\n", 1),
        ("User\n", 1),
        ("User a b\n", 1),
        ("\n\nProxyJump a;b\n", 3),
        ("IdentitiesOnly maybe\n", 1),
        ("ConnectTimeout soon\n", 1),
        ("User \"open\n", 1),
        ("Host nomatch\n  StrictHostKeyChecking sometimes\n", 2),
        ("HostName \"a;reboot\"\n", 1),
        ("HostName -oProxyCommand=x\n", 1),
        ("User \"$(id)\"\n", 1),
    ] {
        match SshConfig::parse_str(text, Path::new("f")) {
            Err(Error::Syntax { line: l, .. }) => assert_eq!(l, line, "{text}"),
            other => panic!("{text:?} gave {other:?}"),
        }
    }
    // Unknown keywords are not kcap's business.
    let ok = SshConfig::parse_str(
        "ForwardAgent yes\nFrobnicate 1 2 3\nUser u\n",
        Path::new("f"),
    );
    assert_eq!(ok.unwrap().resolve("x").user.as_deref(), Some("u"));
}

#[test]
fn defaults_live_under_home() {
    let home = expand::home();
    assert_eq!(default_user_config(), home.join(".ssh/config"));
    assert_eq!(
        default_known_hosts(),
        [
            home.join(".ssh/known_hosts"),
            home.join(".ssh/known_hosts2")
        ]
    );
}
