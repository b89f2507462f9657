//! ssh_config tests; most compare with `ssh -G -F FILE alias`, OpenSSH's own answer.

use std::collections::HashMap;
use std::fs;
use std::process::Command;

use super::*;

/// `ssh -G` output for `dest` (`[user@]host[:port]`, passed as `-l`/`-p` like a
/// command line) as keyword -> values (identityfile repeats).
fn ssh_g(file: &Path, dest: &Destination) -> HashMap<String, Vec<String>> {
    let mut cmd = Command::new("ssh");
    cmd.arg("-G").arg("-F").arg(file);
    if let Some(u) = &dest.user {
        cmd.arg("-l").arg(u);
    }
    if let Some(p) = dest.port {
        cmd.arg("-p").arg(p.to_string());
    }
    let out = cmd.arg(&dest.host).output().expect("run ssh -G");
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

/// What ssh itself does to `ssh -G`'s raw IdentityFile/CertificateFile values
/// before use: `~`, then `%d %h %n %p %r %u %%`. Written out here, independently
/// of `expand`, so the comparison does not check the code with itself.
fn ssh_expand(raw: &str, host: &str, alias: &str, user: &str, port: &str) -> String {
    let home = expand::home().display().to_string();
    let s = match raw.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("{home}{rest}"),
        _ => raw.to_string(),
    };
    s.replace("%%", "\0")
        .replace("%d", &home)
        .replace("%h", host)
        .replace("%n", alias)
        .replace("%p", port)
        .replace("%r", user)
        .replace("%u", &local_user())
        .replace('\0', "%")
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

/// Writes `text` to a temp file, checks every destination (`[user@]alias[:port]`)
/// against `ssh -G` on every field kcap uses, and returns our answers for further
/// assertions.
fn assert_like_ssh(text: &str, dests: &[&str]) -> Vec<HostConfig> {
    let dir = tempfile::tempdir().unwrap();
    assert_like_ssh_in(dir.path(), text, dests)
}

/// [`assert_like_ssh`] with `$DIR` standing for `dir`.
fn assert_like_ssh_in(dir: &Path, text: &str, dests: &[&str]) -> Vec<HostConfig> {
    let mut answers = Vec::new();
    let path = dir.join("config");
    let text = text
        .replace("$DIR", &dir.display().to_string())
        .replace("$LOCALUSER", &local_user());
    fs::write(&path, &text).unwrap();
    for (name, body) in extra_files(&text) {
        let file = dir.join(name);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(file, body).unwrap();
    }
    let config = SshConfig::load(&path).unwrap();
    for &typed in dests {
        let dest = Destination::parse(typed).unwrap();
        let alias = dest.host.as_str();
        let ssh = ssh_g(&path, &dest);
        let got = config
            .resolve_with(alias, dest.user.as_deref(), dest.port)
            .unwrap();
        let one = |k: &str| ssh.get(k).map(|v| v.join(" "));
        let ctx = format!("{typed:?} in\n{text}\ngot {got:#?}");
        let hostname = got.hostname.clone().unwrap_or(alias.to_lowercase());
        assert_eq!(one("hostname").unwrap(), hostname, "{ctx}");
        let user = dest
            .user
            .clone()
            .or(got.user.clone())
            .unwrap_or_else(local_user);
        assert_eq!(one("user").unwrap(), user, "{ctx}");
        let port = dest.port.or(got.port).unwrap_or(22).to_string();
        assert_eq!(one("port").unwrap(), port, "{ctx}");
        let expand_all = |key: &str| -> Vec<String> {
            ssh.get(key)
                .into_iter()
                .flatten()
                .map(|f| ssh_expand(f, &hostname, alias, &user, &port))
                .collect()
        };
        let shown = |paths: &[PathBuf]| -> Vec<String> {
            paths.iter().map(|p| p.display().to_string()).collect()
        };
        if got.identity_files.is_empty() {
            assert!(
                ssh["identityfile"].contains(&"~/.ssh/id_rsa".to_string()),
                "{ctx}"
            );
        } else {
            assert_eq!(
                expand_all("identityfile"),
                shown(&got.identity_files),
                "{ctx}"
            );
        }
        assert_eq!(
            expand_all("certificatefile"),
            shown(&got.certificate_files),
            "{ctx}"
        );
        let jump = got.proxy_jump.as_ref().filter(|c| !c.is_empty());
        let jump = jump.map(|c| c.iter().map(hop).collect::<Vec<_>>().join(","));
        assert_eq!(one("proxyjump"), jump, "{ctx}");
        assert_eq!(one("proxycommand"), got.proxy_command, "{ctx}");
        let known = match got.user_known_hosts_files.as_slice() {
            [] => join(&default_known_hosts()),
            [p] if p == Path::new("/dev/null") => "none".to_string(),
            files => join(files),
        };
        let ssh_known = expand_all("userknownhostsfile").join(" ");
        assert_eq!(ssh_known, known, "{ctx}");
        // ssh -G leaves the line out when the option is unset (or `none`).
        let revoked = expand_all("revokedhostkeys").into_iter().next();
        let ours = got
            .revoked_host_keys
            .as_ref()
            .map(|p| p.display().to_string());
        assert_eq!(revoked, ours, "{ctx}");
        assert_eq!(one("hostkeyalias"), got.host_key_alias, "{ctx}");
        // One line, files separated by spaces.
        let global: Vec<String> = expand_all("globalknownhostsfile")
            .iter()
            .flat_map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .filter(|f| f != "none")
            .collect();
        let ours = got.global_known_hosts_files.clone().unwrap_or_else(|| {
            crate::config::DEFAULT_GLOBAL_KNOWN_HOSTS
                .iter()
                .map(PathBuf::from)
                .collect()
        });
        assert_eq!(global, shown(&ours), "{ctx}");
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
        // Only meaningful with a ProxyCommand (ssh clears it for ProxyJump).
        if got.proxy_command.is_some() {
            let fdpass = if got.proxy_use_fdpass == Some(true) {
                "yes"
            } else {
                "no"
            };
            assert_eq!(one("proxyusefdpass").unwrap(), fdpass, "{ctx}");
        }
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
    assert!(got[2].ignored.is_empty());
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
    let a = config.resolve("a").unwrap();
    assert_eq!(a.port, None);
    assert_eq!(a.identity_files, [PathBuf::from("/all/key")]);
    assert!(a.ignored.is_empty(), "{:?}", a.ignored);
}

/// The issue's table: one config, many destinations, kcap and `ssh -G` agreeing on
/// every field kcap uses. Covers Match host (after HostName), originalhost, user
/// (command line first), localuser, exec with `%` tokens, all, `!` negation inside
/// lists and of whole criteria, exec skipped after a failed criterion, `final`
/// with its second pass (where Host lines see the resolved name) and
/// `canonical`, ProxyCommand and ProxyJump from Match blocks, CertificateFile.
#[test]
fn match_table_agrees_with_ssh_g() {
    let text = "\
Host fd-*
  ProxyCommand nc %h %p
  ProxyUseFdpass yes
Host alias-a
  HostName real-a.example
Host alias-b
  HostName real-b.example
  User b-user
Match host real-a.example
  User from-match-host
  CertificateFile ~/.ssh/a-cert-%h.pub
  RevokedHostKeys ~/.ssh/revoked-%h
  HostKeyAlias a-keys.example
  GlobalKnownHostsFile ~/.ssh/global-%h /etc/corp_known_hosts
Match originalhost alias-b user bob
  Port 2202
Match !originalhost alias-*,!x-* user root,!nobody
  IdentityFile ~/.ssh/root-key
Match user b-user exec \"test %r = b-user && test %h = real-b.example && test %n = alias-b\"
  IdentityFile /keys/b-%r
  ProxyCommand ssh -W %h:%p bastion
Match exec \"test -e $DIR/flag\"
  ConnectTimeout 11
Match exec \"test -e $DIR/no-such-flag\"
  Port 9
Match !exec false host x-*
  ProxyJump j1,u@j2:2022
Match host x-2 exec \"touch $DIR/ran-%n\"
  ProxyUseFdpass yes
Match host nothing exec \"touch $DIR/skipped-%n\"
  User never
Match localuser $LOCALUSER
  UserKnownHostsFile $DIR/kh-%n
Match !localuser $LOCALUSER
  UserKnownHostsFile /never
Match final host real-b.example
  CertificateFile /final/%n
  StrictHostKeyChecking no
Host real-b.example
  IdentityFile /final-host/%h
Match canonical all
  IdentitiesOnly yes
Host *
  IdentityFile ~/.ssh/last
  ProxyCommand none
";
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("flag"), "").unwrap();
    let table = [
        "alias-a",
        "ALIAS-A",
        "alias-b",
        "bob@alias-b",
        "root@alias-b:2300",
        "b-user@real-b.example",
        "x-1",
        "x-2",
        "root@x-3:2022",
        "fd-1",
        "other",
        "nobody@other",
        "root@other",
    ];
    let got = assert_like_ssh_in(dir.path(), text, &table);
    // A few exact values, so agreement is not agreement on nothing.
    let by = |typed: &str| &got[table.iter().position(|t| *t == typed).unwrap()];
    assert_eq!(by("alias-a").user.as_deref(), Some("from-match-host"));
    assert_eq!(
        by("alias-b").proxy_command.as_deref(),
        Some("ssh -W %h:%p bastion")
    );
    assert_eq!(by("bob@alias-b").port, Some(2202));
    assert_eq!(by("bob@alias-b").proxy_jump, Some(vec![]));
    assert_eq!(by("x-1").connect_timeout, Some(Duration::from_secs(11)));
    assert_eq!(by("x-1").proxy_jump.as_ref().map(Vec::len), Some(2));
    assert_eq!(by("x-2").proxy_use_fdpass, Some(true));
    assert_eq!(by("fd-1").proxy_use_fdpass, Some(true));
    assert_eq!(by("fd-1").proxy_command.as_deref(), Some("nc %h %p"));
    assert_eq!(
        by("alias-b").certificate_files,
        [PathBuf::from("/final/alias-b")]
    );
    assert_eq!(by("alias-b").identities_only, Some(true));
    // Any `Match final` line asks for the final pass, whatever else it says.
    assert_eq!(by("other").identities_only, Some(true));
    assert_eq!(
        by("other").user_known_hosts_files,
        [dir.path().join("kh-other")]
    );
    // exec runs only when the criteria before it held.
    assert!(dir.path().join("ran-x-2").exists());
    assert!(!dir.path().join("skipped-other").exists());
    assert!(got.iter().all(|g| g.ignored.is_empty()), "{got:#?}");
}

#[test]
fn match_syntax_and_unsupported_criteria() {
    for (text, says) in [
        ("Match\n", "needs criteria"),
        ("Match host\n", "Match host needs an argument"),
        ("Match exec\n", "Match exec needs an argument"),
        ("Match all host a\n", "cannot be combined"),
        ("Match host a all\n", "cannot be combined"),
        (
            "Match frobnicate x\n",
            "unsupported Match criterion \"frobnicate\"",
        ),
    ] {
        match SshConfig::parse_str(text, Path::new("f")) {
            Err(Error::Syntax {
                line: 1, message, ..
            }) => {
                assert!(message.contains(says), "{text:?}: {message}")
            }
            other => panic!("{text:?} gave {other:?}"),
        }
    }
    let ok = SshConfig::parse_str(
        "Match final all\nUser f\nMatch canonical !all\nUser c\n",
        Path::new("f"),
    );
    // `Match final` asks for the final pass, where both blocks are looked at.
    assert_eq!(ok.unwrap().resolve("h").unwrap().user.as_deref(), Some("f"));
    let config = SshConfig::parse_str(
        "Match tagged x\n  User t\nMatch host h localnetwork 10.0.0.0/8\n  User l\nHost *\n  User u\n",
        Path::new("cfg"),
    )
    .unwrap();
    let h = config.resolve("h").unwrap();
    assert_eq!(h.user.as_deref(), Some("u"));
    assert_eq!(
        h.ignored,
        [
            "cfg:1: \"Match tagged x\" is not supported; its block was skipped",
            "cfg:3: \"Match localnetwork 10.0.0.0/8\" is not supported; its block was skipped",
        ]
    );
    let config = SshConfig::parse_str(
        "Host *\n  CanonicalizeHostname yes\nMatch canonical\n  User c\n",
        Path::new("cfg"),
    )
    .unwrap();
    let h = config.resolve("h").unwrap();
    assert_eq!(h.user.as_deref(), Some("c"));
    assert_eq!(
        h.ignored,
        ["CanonicalizeHostname (kcap does not canonicalize host names)"]
    );
}

#[test]
fn match_exec_refuses_what_a_shell_would_misread() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let text = format!("Match exec \"touch {} %Z\"\n  User x\n", marker.display());
    let config = SshConfig::parse_str(&text, Path::new("cfg")).unwrap();
    let err = config.resolve("h").unwrap_err().to_string();
    assert!(err.starts_with("cfg:1: cannot run"), "{err}");
    assert!(err.ends_with("unknown token %Z"), "{err}");
    // A user name from the command line with a quote in it never reaches the shell.
    let text = format!("Match exec \"touch {} %r\"\n  User x\n", marker.display());
    let config = SshConfig::parse_str(&text, Path::new("cfg")).unwrap();
    let err = config
        .resolve_with("h", Some("a'b"), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the value of %r (\"a'b\") contains '\\''"),
        "{err}"
    );
    assert!(!marker.exists());
    // Its exit status decides; stdout goes nowhere.
    let config = SshConfig::parse_str(
        "Match exec \"echo noise; exit 1\"\n  User x\n",
        Path::new("c"),
    )
    .unwrap();
    assert_eq!(config.resolve("h").unwrap().user, None);
}

#[test]
fn proxy_command_expansion() {
    assert_eq!(
        proxy_command(
            "ssh -W %h:%p -l %r jump # %n %%",
            "10.0.0.1",
            2222,
            "ops",
            "web"
        )
        .unwrap(),
        "exec ssh -W 10.0.0.1:2222 -l ops jump # web %"
    );
    assert_eq!(
        proxy_command("socat - TCP:[%h]:%p", "::1", 22, "u", "v6").unwrap(),
        "exec socat - TCP:[::1]:22"
    );
    for (cmd, host, says) in [
        ("nc %h %p %C", "h", "unknown token %C"),
        ("nc %h %p", "h;reboot", "contains ';'"),
        ("nc %h %p", "-oX", "starts with '-'"),
        ("nc %h %p %", "h", "a lone %"),
    ] {
        let err = proxy_command(cmd, host, 22, "u", "a")
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{cmd} {host}: {err}");
    }
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
    let h = config.resolve("h").unwrap();
    assert_eq!((h.user.as_deref(), h.port), (Some("included"), Some(4)));
    let missing = SshConfig::load_with_home(&home.path().join("nope"), home.path()).unwrap();
    assert_eq!(missing.resolve("h").unwrap(), HostConfig::default());
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
    let web = config.resolve("web").unwrap();
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
    let cli = config.resolve_with("web", Some("root"), Some(22)).unwrap();
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
    assert_eq!(ok.unwrap().resolve("x").unwrap().user.as_deref(), Some("u"));
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
