//! ProxyCommand against real OpenSSH servers on 127.0.0.1: through a plain TCP
//! relay (socat), through `ssh -W` and a bastion, for a jump host, and failing.

mod support;

use std::path::Path;

use kcap_ssh::{Destination, Error, Output};
use support::{Key, Sshd, known_hosts, options, processes_with, run};
use tempfile::TempDir;

/// Waits (up to 5 s, yielding to the runtime so the session's tasks can end)
/// until no process has `needle` in its command line; returns the survivors.
async fn wait_gone(needle: &str) -> Vec<i32> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let left = processes_with(needle);
        if left.is_empty() || std::time::Instant::now() > deadline {
            return left;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// What `echo $SSH_CONNECTION` says on the session.
async fn ssh_connection(session: &kcap_ssh::Session) -> String {
    let mut p = session.exec("echo $SSH_CONNECTION").await.unwrap();
    let mut out = Vec::new();
    while let Some(o) = p.next().await.unwrap() {
        if let Output::Stdout(d) = o {
            out.extend_from_slice(&d);
        }
    }
    String::from_utf8(out).unwrap().trim_end().to_string()
}

fn alias(host: &str) -> Destination {
    Destination {
        user: None,
        host: host.into(),
        port: None,
    }
}

/// An ssh_config for OpenSSH and kcap alike: `Host NAME` blocks for each
/// (name, sshd, extra lines), all with the key and the known_hosts file.
fn config(dir: &Path, key: &Key, kh: &Path, hosts: &[(&str, &Sshd, &str)]) -> std::path::PathBuf {
    let mut text = String::new();
    for (name, sshd, extra) in hosts {
        text += &format!(
            "Host {name}\n  HostName 127.0.0.1\n  Port {}\n  User root\n{extra}",
            sshd.port
        );
    }
    text += &format!(
        "Host *\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  \
         GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n",
        key.private.display(),
        kh.display()
    );
    let path = dir.join("ssh_config");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn through_a_tcp_relay_and_gone_when_dropped() {
    let key = Key::new();
    let sshd = Sshd::start(&[&key]);
    let tmp = TempDir::new().unwrap();
    let kh = known_hosts(tmp.path(), &[&sshd]);
    let mut o = options(sshd.destination("root"), Some(&key), &kh);
    o.jump_hosts = None;
    o.proxy_command = Some("socat - TCP:%h:%p".into());
    let session = kcap_ssh::connect(&o).await.unwrap();
    let relay = format!("socat - TCP:127.0.0.1:{}", sshd.port);
    assert_eq!(processes_with(&relay).len(), 1, "{relay}");
    let conn = ssh_connection(&session).await;
    assert!(conn.ends_with(&format!(" {}", sshd.port)), "{conn}");
    session.disconnect().await;
    assert_eq!(wait_gone(&relay).await, Vec::<i32>::new());

    // Dropped without a goodbye, and a shell that would outlive the relay: the
    // whole process group is killed.
    o.proxy_command = Some("sh -c 'socat - TCP:%h:%p; sleep 600.25'".into());
    let session = kcap_ssh::connect(&o).await.unwrap();
    // The shell and its socat.
    assert_eq!(processes_with(&relay).len(), 2);
    drop(session);
    assert_eq!(wait_gone(&relay).await, Vec::<i32>::new());
    assert_eq!(wait_gone("sleep 600.25").await, Vec::<i32>::new());

    // `none` connects directly.
    o.proxy_command = Some("none".into());
    let session = kcap_ssh::connect(&o).await.unwrap();
    assert!(processes_with(&relay).is_empty());
    let conn = ssh_connection(&session).await;
    assert!(conn.ends_with(&format!(" {}", sshd.port)), "{conn}");
}

#[tokio::test]
async fn ssh_w_through_a_bastion_from_ssh_config() {
    let key = Key::new();
    let bastion = Sshd::start(&[&key]);
    let target = Sshd::start(&[&key]);
    let tmp = TempDir::new().unwrap();
    let kh = known_hosts(tmp.path(), &[&bastion, &target]);
    let cfg_path = tmp.path().join("ssh_config");
    let proxy = format!(
        "  ProxyCommand ssh -F {} -W %h:%p bastion\n",
        cfg_path.display()
    );
    let cfg = config(
        tmp.path(),
        &key,
        &kh,
        &[("bastion", &bastion, ""), ("target-node", &target, &proxy)],
    );
    // OpenSSH itself goes this way with this file.
    let ssh = run(std::process::Command::new("ssh")
        .arg("-F")
        .arg(&cfg)
        .args(["target-node", "echo $SSH_CONNECTION"]));
    let mut o = options(alias("target-node"), None, &kh);
    o.known_hosts_files = Vec::new();
    o.ssh_config = Some(cfg.clone());
    o.jump_hosts = None;
    let session = kcap_ssh::connect(&o).await.unwrap();
    assert_eq!(
        session.describe(),
        format!(
            "root@target-node (127.0.0.1:{} through ProxyCommand \"ssh -F {} -W %h:%p bastion\")",
            target.port,
            cfg.display()
        )
    );
    let conn = ssh_connection(&session).await;
    // The target sees the connection coming from the bastion's sshd, as with ssh.
    assert!(conn.ends_with(&format!(" {}", target.port)), "{conn}");
    assert_eq!(
        conn.split_whitespace().nth(2),
        ssh.split_whitespace().nth(2)
    );
    let needle = format!("-W 127.0.0.1:{} bastion", target.port);
    assert_eq!(processes_with(&needle).len(), 1);
    drop(session);
    assert_eq!(wait_gone(&needle).await, Vec::<i32>::new());
}

#[tokio::test]
async fn jump_host_with_its_own_proxy_command() {
    let key = Key::new();
    let jump = Sshd::start(&[&key]);
    let target = Sshd::start(&[&key]);
    let tmp = TempDir::new().unwrap();
    let kh = known_hosts(tmp.path(), &[&jump, &target]);
    let cfg = config(
        tmp.path(),
        &key,
        &kh,
        &[
            ("jump", &jump, "  ProxyCommand socat - TCP:%h:%p\n"),
            ("target-node", &target, "  ProxyJump jump\n"),
        ],
    );
    let mut o = options(alias("target-node"), None, &kh);
    o.known_hosts_files = Vec::new();
    o.ssh_config = Some(cfg);
    o.jump_hosts = None;
    let session = kcap_ssh::connect(&o).await.unwrap();
    assert_eq!(
        session.describe(),
        format!("root@target-node (127.0.0.1:{}) via jump", target.port)
    );
    let relay = format!("socat - TCP:127.0.0.1:{}", jump.port);
    assert_eq!(processes_with(&relay).len(), 1);
    let conn = ssh_connection(&session).await;
    assert!(conn.ends_with(&format!(" {}", target.port)), "{conn}");
    session.disconnect().await;
    assert_eq!(wait_gone(&relay).await, Vec::<i32>::new());
}

#[tokio::test]
async fn a_jump_hosts_own_proxy_jump_is_followed() {
    let key = Key::new();
    let outer = Sshd::start(&[&key]);
    let inner = Sshd::start(&[&key]);
    let target = Sshd::start(&[&key]);
    let tmp = TempDir::new().unwrap();
    let kh = known_hosts(tmp.path(), &[&outer, &inner, &target]);
    let cfg = config(
        tmp.path(),
        &key,
        &kh,
        &[
            ("outer", &outer, ""),
            ("inner", &inner, "  ProxyJump outer\n"),
            ("target-node", &target, "  ProxyJump inner\n"),
            ("loop-a", &outer, "  ProxyJump loop-b\n"),
            ("loop-b", &inner, "  ProxyJump loop-a\n"),
            ("looped", &target, "  ProxyJump loop-a\n"),
        ],
    );
    // OpenSSH goes outer, inner, target-node with this file.
    let ssh = run(std::process::Command::new("ssh")
        .arg("-F")
        .arg(&cfg)
        .args(["target-node", "echo $SSH_CONNECTION"]));
    let mut o = options(alias("target-node"), None, &kh);
    o.known_hosts_files = Vec::new();
    o.ssh_config = Some(cfg);
    o.jump_hosts = None;
    let session = kcap_ssh::connect(&o).await.unwrap();
    assert_eq!(
        session.describe(),
        format!(
            "root@target-node (127.0.0.1:{}) via outer, inner",
            target.port
        )
    );
    let conn = ssh_connection(&session).await;
    assert!(conn.ends_with(&format!(" {}", target.port)), "{conn}");
    assert!(
        ssh.trim_end().ends_with(&format!(" {}", target.port)),
        "{ssh}"
    );
    o.destination = alias("looped");
    let err = kcap_ssh::connect(&o).await.err().unwrap();
    assert!(
        matches!(&err, Error::Unsupported(m) if m.contains("longer than 16 hops")),
        "{err:?}"
    );
}

#[tokio::test]
async fn failing_proxy_commands_say_why() {
    let key = Key::new();
    let sshd = Sshd::start(&[&key]);
    let tmp = TempDir::new().unwrap();
    let kh = known_hosts(tmp.path(), &[&sshd]);
    let mut o = options(sshd.destination("root"), Some(&key), &kh);
    o.jump_hosts = None;
    for (cmd, reason, stderr) in [
        (
            // `exec` is put in front, as OpenSSH does: the first command replaces
            // the shell, so a status needs a shell of its own.
            "sh -c 'echo no route to %h:%p for %r >&2; exit 7'",
            "exited with status 7".to_string(),
            format!("no route to 127.0.0.1:{} for root", sshd.port),
        ),
        (
            "kcap-no-such-proxy %h",
            "exited with status 127".into(),
            // Each shell words it its own way ($SHELL is the user's).
            "not found".into(),
        ),
        // Talks, but not SSH.
        (
            "echo hello; sleep 0.2",
            "exited with status 0".into(),
            String::new(),
        ),
    ] {
        o.proxy_command = Some(cmd.into());
        match kcap_ssh::connect(&o).await {
            Err(Error::ProxyCommand {
                target,
                command,
                reason: r,
                stderr: s,
            }) => {
                assert_eq!(target, format!("root@127.0.0.1:{}", sshd.port));
                assert_eq!(command, cmd);
                assert_eq!(r, reason, "{cmd}");
                assert!(s.ends_with(&stderr), "{cmd}: {s:?}");
                if cmd.starts_with("kcap-no-such-proxy") {
                    assert!(s.contains("kcap-no-such-proxy"), "{s:?}");
                }
            }
            other => panic!("{cmd}: expected ProxyCommand, got {:?}", other.err()),
        }
    }
    // One that hangs is bounded by the connect timeout, and killed.
    o.proxy_command = Some("sleep 31.5 # %h".into());
    o.connect_timeout = Some(std::time::Duration::from_millis(500));
    match kcap_ssh::connect(&o).await {
        Err(e @ Error::Timeout { .. }) => {
            assert!(e.to_string().contains("through ProxyCommand"), "{e}")
        }
        other => panic!("expected Timeout, got {:?}", other.err()),
    }
    assert_eq!(wait_gone("sleep 31.5").await, Vec::<i32>::new());
}

#[tokio::test]
async fn refused_combinations() {
    let tmp = TempDir::new().unwrap();
    let kh = tmp.path().join("known_hosts");
    let cfg = tmp.path().join("ssh_config");
    std::fs::write(
        &cfg,
        "Host fd\n  ProxyCommand socat - TCP:%h:%p\n  ProxyUseFdpass yes\n\
         Host bad\n  ProxyCommand nc %h %p %Q\n",
    )
    .unwrap();
    let mut o = options(alias("fd"), None, &kh);
    o.ssh_config = Some(cfg);
    o.jump_hosts = None;
    let err = kcap_ssh::connect(&o).await.err().unwrap();
    assert!(
        matches!(&err, Error::Unsupported(m) if m.starts_with("ssh_config sets ProxyUseFdpass yes for fd")),
        "{err:?}"
    );
    o.destination = alias("bad");
    let err = kcap_ssh::connect(&o).await.err().unwrap();
    assert_eq!(
        err.to_string(),
        "ProxyCommand: cannot run \"nc %h %p %Q\": unknown token %Q"
    );
    o.proxy_command = Some("nc %h %p".into());
    o.jump_hosts = Some(vec![]);
    let err = kcap_ssh::connect(&o).await.err().unwrap();
    assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
}
