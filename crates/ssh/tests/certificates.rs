//! OpenSSH certificates against real sshd: user certificates (`KEY-cert.pub`,
//! `CertificateFile`) and host certificates checked against `@cert-authority`
//! lines of known_hosts, made with the real ssh-keygen.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use kcap_ssh::{AgentSource, Destination, Error};
use support::{Agent, Key, Sshd, options, run};
use tempfile::TempDir;

/// Signs `public` (a `.pub` file) with the CA key; the certificate lands next to
/// it as `NAME-cert.pub`. `host`: a host certificate.
fn sign(ca: &Key, public: &Path, host: bool, principals: &str, validity: &str) -> PathBuf {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-s"])
        .arg(&ca.private)
        .args(["-I", "kcap-test"]);
    if host {
        cmd.arg("-h");
    }
    if !principals.is_empty() {
        cmd.args(["-n", principals]);
    }
    run(cmd.args(["-V", validity]).arg(public));
    let name = public.file_stem().unwrap().to_string_lossy();
    public.with_file_name(format!("{name}-cert.pub"))
}

/// `ssh-ed25519 AAAA...` of a key.
fn public(key: &Key) -> String {
    let line = key.public_line();
    let mut f = line.split_whitespace();
    format!("{} {}", f.next().unwrap(), f.next().unwrap())
}

fn known_hosts(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("known_hosts");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn user_certificates_next_to_the_key_and_from_certificate_file() {
    let ca = Key::new();
    let ca_pub = ca.private.with_extension("pub");
    // No authorized keys at all: only certificates signed by the CA get in.
    let sshd = Sshd::start_with(&[], &|_| {
        format!("TrustedUserCAKeys {}\n", ca_pub.display())
    });
    let tmp = TempDir::new().unwrap();
    let kh = known_hosts(tmp.path(), &sshd.known_hosts_line());
    let key = Key::new();
    let o = options(sshd.destination("root"), Some(&key), &kh);
    let plain = key.private.display().to_string();
    let cert_path = format!("{plain}-cert.pub");
    match kcap_ssh::connect(&o).await {
        Err(Error::Auth { tried, .. }) => assert_eq!(tried, [format!("publickey ({plain})")]),
        other => panic!("expected Auth, got {:?}", other.err()),
    }

    // KEY-cert.pub next to the key is offered first.
    let cert = sign(
        &ca,
        &key.private.with_extension("pub"),
        false,
        "root",
        "-5m:+1h",
    );
    assert_eq!(cert.display().to_string(), cert_path);
    kcap_ssh::connect(&o).await.unwrap().disconnect().await;

    // For another principal: tried and refused, then the plain key.
    sign(
        &ca,
        &key.private.with_extension("pub"),
        false,
        "someone-else",
        "-5m:+1h",
    );
    match kcap_ssh::connect(&o).await {
        Err(Error::Auth { tried, .. }) => assert_eq!(
            tried,
            [
                format!("publickey ({cert_path})"),
                format!("publickey ({plain})")
            ]
        ),
        other => panic!("expected Auth, got {:?}", other.err()),
    }

    // From ssh_config's CertificateFile, kept elsewhere; a certificate of another
    // key in the list is not offered with this one.
    std::fs::remove_file(&cert_path).unwrap();
    let other = Key::new();
    let other_cert = sign(
        &ca,
        &other.private.with_extension("pub"),
        false,
        "root",
        "-5m:+1h",
    );
    let elsewhere = tmp.path().join("mine-cert.pub");
    let good = sign(
        &ca,
        &key.private.with_extension("pub"),
        false,
        "root",
        "-5m:+1h",
    );
    std::fs::rename(&good, &elsewhere).unwrap();
    let cfg = tmp.path().join("ssh_config");
    std::fs::write(
        &cfg,
        format!(
            "Host *\n  CertificateFile {}\n  CertificateFile {}\n",
            other_cert.display(),
            elsewhere.display()
        ),
    )
    .unwrap();
    let mut o = o.clone();
    o.ssh_config = Some(cfg);
    // OpenSSH logs in with this file too.
    run(Command::new("ssh")
        .arg("-F")
        .arg(o.ssh_config.as_ref().unwrap())
        .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i"])
        .arg(&key.private)
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", kh.display()))
        .args(["-p", &sshd.port.to_string(), "root@127.0.0.1", "true"]));
    kcap_ssh::connect(&o).await.unwrap().disconnect().await;

    // Expired: refused by the server.
    sign(
        &ca,
        &key.private.with_extension("pub"),
        false,
        "root",
        "-2h:-1h",
    );
    std::fs::rename(&cert_path, &elsewhere).unwrap();
    match kcap_ssh::connect(&o).await {
        Err(Error::Auth { tried, .. }) => assert_eq!(
            tried,
            [
                format!("publickey ({})", elsewhere.display()),
                format!("publickey ({plain})")
            ]
        ),
        other => panic!("expected Auth, got {:?}", other.err()),
    }
}

#[tokio::test]
async fn user_certificate_from_the_agent() {
    let ca = Key::new();
    let ca_pub = ca.private.with_extension("pub");
    let sshd = Sshd::start_with(&[], &|_| {
        format!("TrustedUserCAKeys {}\n", ca_pub.display())
    });
    let tmp = TempDir::new().unwrap();
    let kh = known_hosts(tmp.path(), &sshd.known_hosts_line());
    let key = Key::new();
    sign(
        &ca,
        &key.private.with_extension("pub"),
        false,
        "root",
        "-5m:+1h",
    );
    // ssh-add loads KEY-cert.pub along with the key.
    let agent = Agent::start(&key);
    let mut o = options(sshd.destination("root"), None, &kh);
    o.agent = AgentSource::Socket(agent.socket.clone());
    kcap_ssh::connect(&o).await.unwrap().disconnect().await;
}

/// A server whose host key is certified by `ca` for `principals`, valid `validity`.
fn certified_sshd(key: &Key, ca: &Key, principals: &'static str, validity: &'static str) -> Sshd {
    let ca_private = ca.private.clone();
    Sshd::start_with(&[key], &move |dir| {
        let ca = Key {
            dir: TempDir::new().unwrap(),
            private: ca_private.clone(),
        };
        let cert = sign(
            &ca,
            &dir.join("host_ed25519.pub"),
            true,
            principals,
            validity,
        );
        format!("HostCertificate {}\n", cert.display())
    })
}

#[tokio::test]
async fn host_certificates_against_cert_authority_lines() {
    let key = Key::new();
    let ca = Key::new();
    let tmp = TempDir::new().unwrap();
    let sshd = certified_sshd(&key, &ca, "127.0.0.1,node-*", "-5m:+1h");
    let name = format!("[127.0.0.1]:{}", sshd.port);
    let authority = format!("@cert-authority {name} {}\n", public(&ca));

    // Only the authority is known, not the host key: trusted through the certificate.
    let kh = known_hosts(tmp.path(), &authority);
    let o = options(sshd.destination("root"), Some(&key), &kh);
    kcap_ssh::connect(&o).await.unwrap().disconnect().await;
    // OpenSSH agrees.
    run(Command::new("ssh")
        .args([
            "-F",
            "none",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-i",
        ])
        .arg(&key.private)
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", kh.display()))
        .args(["-p", &sshd.port.to_string(), "root@127.0.0.1", "true"]));

    // The authority revoked, or the host's own key: refused as revoked.
    for revoked in [
        public(&ca),
        std::fs::read_to_string(&sshd.host_key_pub).unwrap(),
    ] {
        let kh = known_hosts(tmp.path(), &format!("{authority}@revoked * {revoked}"));
        let o = options(sshd.destination("root"), Some(&key), &kh);
        match kcap_ssh::connect(&o).await {
            Err(Error::HostKeyRevoked { host, line, .. }) => {
                assert_eq!((host, line), (name.clone(), 2));
            }
            other => panic!("expected HostKeyRevoked, got {:?}", other.err()),
        }
    }

    // An authority for other hosts only: the certificate is not asked for, and
    // the plain key is unknown.
    let kh = known_hosts(
        tmp.path(),
        &format!("@cert-authority other {}\n", public(&ca)),
    );
    let o = options(sshd.destination("root"), Some(&key), &kh);
    assert!(matches!(
        kcap_ssh::connect(&o).await,
        Err(Error::HostKeyUnknown { .. })
    ));

    // Another authority trusted for this host: the certificate's key is checked as
    // a plain key, like OpenSSH does.
    let other_ca = Key::new();
    let text = format!("@cert-authority {name} {}\n", public(&other_ca));
    let o = options(
        sshd.destination("root"),
        Some(&key),
        &known_hosts(tmp.path(), &text),
    );
    assert!(matches!(
        kcap_ssh::connect(&o).await,
        Err(Error::HostKeyUnknown { .. })
    ));
    let text = format!("{text}{}", sshd.known_hosts_line());
    let o = options(
        sshd.destination("root"),
        Some(&key),
        &known_hosts(tmp.path(), &text),
    );
    kcap_ssh::connect(&o).await.unwrap().disconnect().await;
}

/// Whether the real ssh logs in with this known_hosts file.
fn openssh_accepts(key: &Key, kh: &Path, sshd: &Sshd) -> bool {
    Command::new("ssh")
        .args([
            "-F",
            "none",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-i",
        ])
        .arg(&key.private)
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", kh.display()))
        .args(["-p", &sshd.port.to_string(), "root@127.0.0.1", "true"])
        .output()
        .unwrap()
        .status
        .success()
}

#[tokio::test]
async fn invalid_host_certificates_are_refused() {
    let key = Key::new();
    let ca = Key::new();
    let tmp = TempDir::new().unwrap();
    for (principals, validity, reason) in [
        ("node-a", "-5m:+1h", "it is for node-a, not 127.0.0.1"),
        ("127.0.0.1", "-2h:-1h", "it expired 3"),
        ("127.0.0.1", "+1h:+2h", "it is not valid yet (for another 3"),
    ] {
        let sshd = certified_sshd(&key, &ca, principals, validity);
        let name = format!("[127.0.0.1]:{}", sshd.port);
        let authority = format!("@cert-authority {name} {}\n", public(&ca));
        let kh = known_hosts(tmp.path(), &authority);
        assert!(
            !openssh_accepts(&key, &kh, &sshd),
            "{principals} {validity}"
        );
        let o = options(sshd.destination("root"), Some(&key), &kh);
        match kcap_ssh::connect(&o).await {
            Err(e @ Error::HostCertificate { .. }) => {
                let text = e.to_string();
                let start = format!("host certificate of {name} (SHA256:");
                assert!(text.starts_with(&start), "{text}");
                assert!(text.contains(&format!(": {reason}")), "{text}");
            }
            other => panic!(
                "{principals} {validity}: expected HostCertificate, got {:?}",
                other.err()
            ),
        }
        // With the host key itself trusted too, OpenSSH falls back to it, and so
        // does kcap.
        let kh = known_hosts(
            tmp.path(),
            &format!("{authority}{}", sshd.known_hosts_line()),
        );
        assert!(openssh_accepts(&key, &kh, &sshd), "{principals} {validity}");
        let o = options(sshd.destination("root"), Some(&key), &kh);
        kcap_ssh::connect(&o).await.unwrap().disconnect().await;
    }
    // No principals at all: valid for every host.
    let sshd = certified_sshd(&key, &ca, "", "-5m:+1h");
    let kh = known_hosts(tmp.path(), &format!("@cert-authority * {}\n", public(&ca)));
    let mut o = options(sshd.destination("root"), Some(&key), &kh);
    o.destination = Destination {
        user: Some("root".into()),
        host: "127.0.0.1".into(),
        port: Some(sshd.port),
    };
    kcap_ssh::connect(&o).await.unwrap().disconnect().await;
}
