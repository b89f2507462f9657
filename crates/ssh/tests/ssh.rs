//! End-to-end tests of kcap-ssh against real OpenSSH servers on 127.0.0.1.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use kcap_ssh::{AgentSource, Error, ExitStatus, Output, PasswordSource, RemoteProcess, Secret};
use support::{Agent, Key, Sshd, known_hosts, options, run};
use tempfile::TempDir;

/// Everything a command produced.
#[derive(Debug, Default)]
struct Collected {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    exit: Option<ExitStatus>,
}

/// One sshd with a key it accepts and a known_hosts that trusts it.
struct Server {
    key: Key,
    sshd: Sshd,
    tmp: TempDir,
    known_hosts: std::path::PathBuf,
}

impl Server {
    fn start() -> Server {
        let key = Key::new();
        let sshd = Sshd::start(&[&key]);
        let tmp = TempDir::new().unwrap();
        let known_hosts = known_hosts(tmp.path(), &[&sshd]);
        Server {
            key,
            sshd,
            tmp,
            known_hosts,
        }
    }

    /// A session as root with the key, verified against the known_hosts.
    async fn connect(&self) -> kcap_ssh::Session {
        let opts = options(
            self.sshd.destination("root"),
            Some(&self.key),
            &self.known_hosts,
        );
        kcap_ssh::connect(&opts).await.unwrap()
    }
}

async fn collect(mut p: RemoteProcess) -> Result<Collected, Error> {
    let mut c = Collected::default();
    while let Some(out) = p.next().await? {
        match out {
            Output::Stdout(d) => c.stdout.extend_from_slice(&d),
            Output::Stderr(d) => c.stderr.extend_from_slice(&d),
            Output::Exit(e) => c.exit = Some(e),
        }
    }
    Ok(c)
}

#[tokio::test]
async fn key_auth_exec_stdout_stderr_exit_code() {
    let server = Server::start();
    let session = server.connect().await;
    assert_eq!(
        session.describe(),
        format!("root@127.0.0.1 (127.0.0.1:{})", server.sshd.port)
    );
    let p = session.exec("echo hi; echo err >&2; exit 3").await.unwrap();
    let c = collect(p).await.unwrap();
    assert_eq!(c.stdout, b"hi\n");
    assert_eq!(c.stderr, b"err\n");
    assert_eq!(c.exit, Some(ExitStatus::Code(3)));
    // A second command on the same session.
    let c = collect(session.exec("true").await.unwrap()).await.unwrap();
    assert_eq!(c.exit, Some(ExitStatus::Code(0)));
    session.disconnect().await;
}

#[tokio::test]
async fn exit_by_signal() {
    let server = Server::start();
    let session = server.connect().await;
    let c = collect(session.exec("kill -TERM $$").await.unwrap())
        .await
        .unwrap();
    match c.exit {
        Some(ExitStatus::Signal { name, .. }) => assert_eq!(name, "TERM"),
        other => panic!("expected a signal exit, got {other:?}"),
    }
}

#[tokio::test]
async fn agent_auth() {
    let key = Key::new();
    let agent = Agent::start(&key);
    let sshd = Sshd::start(&[&key]);
    let tmp = TempDir::new().unwrap();
    let kh = known_hosts(tmp.path(), &[&sshd]);
    // No key file: only the agent holds the key.
    let mut o = options(sshd.destination("root"), None, &kh);
    o.agent = AgentSource::Socket(agent.socket.clone());
    let session = kcap_ssh::connect(&o).await.unwrap();
    let c = collect(session.exec("echo agent").await.unwrap())
        .await
        .unwrap();
    assert_eq!(c.stdout, b"agent\n");
}

#[tokio::test]
async fn auth_failure_lists_what_was_tried() {
    let key = Key::new();
    let other = Key::new();
    let sshd = Sshd::start(&[&key]);
    let tmp = TempDir::new().unwrap();
    let kh = known_hosts(tmp.path(), &[&sshd]);
    let err = kcap_ssh::connect(&options(sshd.destination("root"), Some(&other), &kh))
        .await
        .err()
        .expect("must fail");
    match err {
        Error::Auth { user, tried, .. } => {
            assert_eq!(user, "root");
            let want = format!("publickey ({})", other.private.display());
            assert!(tried.contains(&want), "{tried:?}");
        }
        e => panic!("expected Auth, got {e:?}"),
    }
}

#[tokio::test]
async fn passphrase_protected_key() {
    let key = Key::with_passphrase("correct horse");
    let sshd = Sshd::start(&[&key]);
    let tmp = TempDir::new().unwrap();
    let kh = known_hosts(tmp.path(), &[&sshd]);
    let mut o = options(sshd.destination("root"), Some(&key), &kh);
    o.key_passphrase = Some(Secret::new("correct horse"));
    let session = kcap_ssh::connect(&o).await.unwrap();
    let c = collect(session.exec("echo ok").await.unwrap())
        .await
        .unwrap();
    assert_eq!(c.stdout, b"ok\n");

    o.key_passphrase = Some(Secret::new("wrong"));
    match kcap_ssh::connect(&o).await {
        Err(Error::KeyFile { path, .. }) => assert_eq!(path, key.private),
        other => panic!("expected KeyFile, got {:?}", other.err()),
    }
}

/// Creates (once) a throwaway user with a known password; root's is never touched.
fn password_user() -> (&'static str, &'static str) {
    let (user, password) = ("kcapsshtest", "kcap-Test-pw-7341");
    let exists = Command::new("id")
        .arg(user)
        .output()
        .unwrap()
        .status
        .success();
    if !exists {
        let _ = Command::new("useradd")
            .args(["-M", "-d", "/tmp", "-s", "/bin/sh", user])
            .output();
    }
    let mut chpasswd = Command::new("chpasswd")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(chpasswd.stdin.take().unwrap(), "{user}:{password}").unwrap();
    assert!(chpasswd.wait().unwrap().success());
    (user, password)
}

#[tokio::test]
async fn password_auth() {
    let (user, password) = password_user();
    let sshd = Sshd::start(&[]);
    let tmp = TempDir::new().unwrap();
    let kh = known_hosts(tmp.path(), &[&sshd]);
    let mut o = options(sshd.destination(user), None, &kh);
    o.password = PasswordSource::Env(Secret::new(password));
    let session = kcap_ssh::connect(&o).await.unwrap();
    let c = collect(session.exec("id -un").await.unwrap())
        .await
        .unwrap();
    assert_eq!(c.stdout, format!("{user}\n").as_bytes());

    o.password = PasswordSource::Env(Secret::new("nope"));
    match kcap_ssh::connect(&o).await {
        Err(Error::Auth { tried, .. }) => assert!(tried.contains(&"password".to_owned())),
        other => panic!("expected Auth, got {:?}", other.err()),
    }
}

#[tokio::test]
async fn unknown_host_key_refused_then_accepted_with_tofu() {
    let key = Key::new();
    let sshd = Sshd::start(&[&key]);
    let tmp = TempDir::new().unwrap();
    let kh = tmp.path().join("sub").join("known_hosts");
    let mut o = options(sshd.destination("root"), Some(&key), &kh);
    match kcap_ssh::connect(&o).await {
        Err(Error::HostKeyUnknown {
            host,
            algorithm,
            fingerprint,
            known_hosts,
        }) => {
            assert_eq!(host, format!("[127.0.0.1]:{}", sshd.port));
            assert_eq!(algorithm, "ssh-ed25519");
            assert_eq!(fingerprint, sshd.fingerprint());
            assert_eq!(known_hosts, kh);
        }
        other => panic!("expected HostKeyUnknown, got {:?}", other.err()),
    }
    assert!(!kh.exists());

    o.accept_new_host_key = true;
    kcap_ssh::connect(&o).await.unwrap().disconnect().await;
    let text = std::fs::read_to_string(&kh).unwrap();
    assert!(text.starts_with("|1|"), "not hashed: {text}");
    let found = run(Command::new("ssh-keygen")
        .arg("-F")
        .arg(format!("[127.0.0.1]:{}", sshd.port))
        .arg("-f")
        .arg(&kh));
    assert!(found.contains("ssh-ed25519"), "{found}");

    // Now trusted without TOFU.
    o.accept_new_host_key = false;
    kcap_ssh::connect(&o).await.unwrap();
}

#[tokio::test]
async fn changed_host_key_refused_even_with_tofu() {
    let key = Key::new();
    let sshd = Sshd::start(&[&key]);
    let impostor = Sshd::start(&[&key]);
    let tmp = TempDir::new().unwrap();
    // The file claims sshd's port has impostor's key.
    let line = impostor
        .known_hosts_line()
        .replace(&impostor.port.to_string(), &sshd.port.to_string());
    let kh = tmp.path().join("known_hosts");
    std::fs::write(&kh, format!("# comment\n{line}")).unwrap();
    let mut o = options(sshd.destination("root"), Some(&key), &kh);
    o.accept_new_host_key = true;
    match kcap_ssh::connect(&o).await {
        Err(Error::HostKeyChanged {
            fingerprint,
            file,
            line,
            ..
        }) => {
            assert_eq!(fingerprint, sshd.fingerprint());
            assert_eq!(file, kh);
            assert_eq!(line, 2);
        }
        other => panic!("expected HostKeyChanged, got {:?}", other.err()),
    }
}

#[tokio::test]
async fn connection_refused_and_timeout() {
    let tmp = TempDir::new().unwrap();
    let kh = tmp.path().join("known_hosts");
    let port = support::free_port();
    let dest = kcap_ssh::Destination {
        user: Some("root".into()),
        host: "127.0.0.1".into(),
        port: Some(port),
    };
    match kcap_ssh::connect(&options(dest.clone(), None, &kh)).await {
        Err(Error::Connect { address, .. }) => assert_eq!(address, format!("127.0.0.1:{port}")),
        other => panic!("expected Connect, got {:?}", other.err()),
    }

    // A server that accepts TCP but never speaks SSH.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut o = options(
        kcap_ssh::Destination {
            port: Some(listener.local_addr().unwrap().port()),
            ..dest
        },
        None,
        &kh,
    );
    o.connect_timeout = Some(Duration::from_millis(500));
    match kcap_ssh::connect(&o).await {
        Err(Error::Timeout { after, .. }) => assert_eq!(after, Duration::from_millis(500)),
        other => panic!("expected Timeout, got {:?}", other.err()),
    }
}

#[tokio::test]
async fn two_hop_jump_chain() {
    let key = Key::new();
    let j1 = Sshd::start(&[&key]);
    let j2 = Sshd::start(&[&key]);
    let target = Sshd::start(&[&key]);
    let tmp = TempDir::new().unwrap();
    let kh = known_hosts(tmp.path(), &[&j1, &j2, &target]);
    let mut o = options(target.destination("root"), Some(&key), &kh);
    o.jump_hosts = Some(vec![j1.destination("root"), j2.destination("root")]);
    let session = kcap_ssh::connect(&o).await.unwrap();
    assert!(
        session.describe().contains(" via root@127.0.0.1:"),
        "{}",
        session.describe()
    );
    let c = collect(session.exec("echo $SSH_CONNECTION").await.unwrap())
        .await
        .unwrap();
    let conn = String::from_utf8(c.stdout).unwrap();
    // The target sees its own port as the server side of the connection.
    assert!(
        conn.trim_end().ends_with(&format!(" {}", target.port)),
        "{conn}"
    );
    session.disconnect().await;

    // An unknown key on the second hop names that hop.
    let kh2 = known_hosts(&tmp.path().join(""), &[&j1, &target]);
    o.known_hosts_files = vec![kh2];
    match kcap_ssh::connect(&o).await {
        Err(Error::Jump { hop, source }) => {
            assert_eq!(hop, format!("root@127.0.0.1:{}", j2.port));
            assert!(
                matches!(*source, Error::HostKeyUnknown { .. }),
                "{source:?}"
            );
        }
        other => panic!("expected Jump, got {:?}", other.err()),
    }
}

#[tokio::test]
async fn stdin_round_trip_from_another_task() {
    let server = Server::start();
    let session = server.connect().await;
    let p = session.exec("cat").await.unwrap();
    let stdin = p.stdin();
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let to_send = payload.clone();
    let writer = tokio::spawn(async move {
        for chunk in to_send.chunks(10_000) {
            stdin.write(chunk).await.unwrap();
        }
        stdin.close().await.unwrap();
    });
    let c = collect(p).await.unwrap();
    writer.await.unwrap();
    assert_eq!(c.stdout, payload);
    assert_eq!(c.exit, Some(ExitStatus::Code(0)));
}

#[tokio::test]
async fn large_stderr_does_not_stall_stdout() {
    let server = Server::start();
    let session = server.connect().await;
    let cmd = "head -c 20000000 /dev/zero >&2; head -c 5000000 /dev/zero; echo done >&2";
    let c = collect(session.exec(cmd).await.unwrap()).await.unwrap();
    assert_eq!(c.stderr.len(), 20_000_005);
    assert_eq!(c.stdout.len(), 5_000_000);
    assert_eq!(c.exit, Some(ExitStatus::Code(0)));
}

// Multi-threaded: russh's session task and the reader may also run in parallel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cat_100mb_binary_intact_and_fast() {
    let server = Server::start();
    let file = server.tmp.path().join("random.bin");
    run(Command::new("sh").arg("-c").arg(format!(
        "head -c 100000000 /dev/urandom > {}",
        file.display()
    )));
    let expected = std::fs::read(&file).unwrap();
    let session = server.connect().await;
    let start = Instant::now();
    let mut p = session
        .exec(&format!("cat {}", file.display()))
        .await
        .unwrap();
    let mut got = Vec::with_capacity(expected.len());
    let mut exit = None;
    while let Some(out) = p.next().await.unwrap() {
        match out {
            Output::Stdout(d) => got.extend_from_slice(&d),
            Output::Stderr(d) => panic!("stderr: {}", String::from_utf8_lossy(&d)),
            Output::Exit(e) => exit = Some(e),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "cat 100 MB: {:.0} MB/s ({secs:.2} s)",
        expected.len() as f64 / 1e6 / secs
    );
    assert_eq!(exit, Some(ExitStatus::Code(0)));
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "content differs");
}

#[tokio::test]
async fn frozen_server_is_detected_by_keepalive() {
    let key = Key::new();
    let sshd = Sshd::start(&[&key]);
    let tmp = TempDir::new().unwrap();
    let kh = known_hosts(tmp.path(), &[&sshd]);
    let mut o = options(sshd.destination("root"), Some(&key), &kh);
    o.keepalive_interval = Duration::from_millis(300);
    let session = kcap_ssh::connect(&o).await.unwrap();
    let mut p = session.exec("echo started; sleep 60").await.unwrap();
    assert_eq!(
        p.next().await.unwrap(),
        Some(Output::Stdout(b"started\n".to_vec()))
    );
    // Stop the whole server (like a host that vanished without a FIN).
    sshd.signal_all(libc::SIGSTOP);
    let start = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(15), p.next())
        .await
        .expect("next() hung on a dead link");
    match r {
        Err(Error::Disconnected { reason }) => eprintln!("disconnected: {reason}"),
        other => panic!("expected Disconnected, got {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    // Writes fail too, instead of blocking.
    assert!(p.write_stdin(b"x").await.is_err());
}

#[tokio::test]
async fn killed_server_gives_disconnected() {
    let server = Server::start();
    let session = server.connect().await;
    let mut p = session.exec("echo started; sleep 60").await.unwrap();
    assert_eq!(
        p.next().await.unwrap(),
        Some(Output::Stdout(b"started\n".to_vec()))
    );
    server.sshd.signal_all(libc::SIGKILL);
    let r = tokio::time::timeout(Duration::from_secs(10), p.next())
        .await
        .expect("next() hung after the server died");
    assert!(matches!(r, Err(Error::Disconnected { .. })), "{r:?}");
}

#[tokio::test]
async fn ssh_config_alias_with_proxy_jump() {
    let key = Key::new();
    let bastion = Sshd::start(&[&key]);
    let target = Sshd::start(&[&key]);
    let tmp = TempDir::new().unwrap();
    let kh = known_hosts(tmp.path(), &[&bastion, &target]);
    let config = tmp.path().join("ssh_config");
    std::fs::write(
        &config,
        format!(
            "Host bastion\n  HostName 127.0.0.1\n  Port {}\n  User root\n\n\
             Host node-a\n  HostName 127.0.0.1\n  Port {}\n  User root\n  ProxyJump bastion\n\n\
             Host *\n  IdentityFile {}\n  UserKnownHostsFile {}\n",
            bastion.port,
            target.port,
            key.private.display(),
            kh.display()
        ),
    )
    .unwrap();
    let dest = kcap_ssh::Destination {
        user: None,
        host: "node-a".into(),
        port: None,
    };
    // Key and known_hosts come from the config file only.
    let mut o = options(dest, None, &kh);
    o.known_hosts_files = Vec::new();
    o.ssh_config = Some(config);
    o.jump_hosts = None;
    let session = kcap_ssh::connect(&o).await.unwrap();
    assert_eq!(
        session.describe(),
        format!("root@node-a (127.0.0.1:{}) via bastion", target.port)
    );
    let c = collect(session.exec("echo $SSH_CONNECTION").await.unwrap())
        .await
        .unwrap();
    let conn = String::from_utf8(c.stdout).unwrap();
    assert!(
        conn.trim_end().ends_with(&format!(" {}", target.port)),
        "{conn}"
    );
}
