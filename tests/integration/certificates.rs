//! SSH certificates on a test-bed node, as a company's SSH CA sets them up: the
//! node presents a CA-signed host certificate and accepts only CA-signed user
//! certificates. kcap captures with nothing but an `@cert-authority` line in
//! known_hosts and a `CertificateFile`; an expired host certificate is refused
//! with its own reason. (The finer cases, principals, `@revoked`, agent-held
//! certificates, are crates/ssh/tests/certificates.rs, against real sshd.)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::util::{Bed, KCAP, assert_ok, read_capture, run, stderr};

fn keygen(args: &[&str], extra: &[&Path]) {
    let out = run(
        Command::new("ssh-keygen").args(args).args(extra),
        Duration::from_secs(30),
    );
    assert_ok(&out);
}

/// Signs `public` with `ca`: a host certificate when `host`, valid for
/// `validity` (ssh-keygen's -V); returns the certificate's path.
fn sign(ca: &Path, public: &Path, host: bool, principals: &str, validity: &str) -> PathBuf {
    let mut args = vec!["-q", "-s"];
    let ca = ca.to_str().unwrap();
    args.push(ca);
    args.extend(["-I", "kcap-test", "-n", principals, "-V", validity]);
    if host {
        args.push("-h");
    }
    keygen(&args, &[public]);
    let stem = public.file_stem().unwrap().to_string_lossy();
    public.with_file_name(format!("{stem}-cert.pub"))
}

/// kcap in the bed's client with `config` as its ssh_config.
fn kcap(bed: &Bed, config: &Path) -> Command {
    let mut cmd = bed.bed.client_command(KCAP);
    cmd.arg("--ssh-config")
        .arg(config)
        .env("HOME", bed.scratch.path())
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("KCAP_SSH_PASSWORD")
        .current_dir(bed.path(""));
    cmd
}

#[test]
fn certificates_only_node_is_captured_with_a_cert_authority_line() {
    let bed = Bed::minimal();
    let dir = bed.scratch.path().join("ca");
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca");
    keygen(
        &["-q", "-t", "ed25519", "-N", "", "-C", "kcap-test-ca", "-f"],
        &[&ca],
    );

    let node = bed.bed.host("node-a");
    let address = node.addresses[0].1.to_string();
    let host_key = node.dir.join("ssh_host_ed25519_key");
    let principals = format!("node-a,{address}");
    let host_cert = sign(
        &ca,
        &host_key.with_extension("pub"),
        true,
        &principals,
        "-5m:+1h",
    );
    // The bed's client key, certified for root; no authorized_keys entry counts.
    let user_key = dir.join("id");
    std::fs::copy(bed.bed.client_key(), &user_key).unwrap();
    std::fs::copy(
        bed.bed.client_key().with_extension("pub"),
        dir.join("id.pub"),
    )
    .unwrap();
    let user_cert = sign(&ca, &dir.join("id.pub"), false, "root", "-5m:+1h");
    let ca_pub = std::fs::read_to_string(ca.with_extension("pub")).unwrap();
    let ca_pub: Vec<&str> = ca_pub.split_whitespace().take(2).collect();
    bed.bed
        .reconfigure_sshd(
            "node-a",
            &format!(
                "HostKey {}\nHostCertificate {}\nTrustedUserCAKeys {}\n\
                 AuthorizedKeysFile none\nPasswordAuthentication no\n",
                host_key.display(),
                host_cert.display(),
                ca.with_extension("pub").display()
            ),
        )
        .unwrap();

    let known_hosts = dir.join("known_hosts");
    std::fs::write(
        &known_hosts,
        format!("@cert-authority node-a,{address} {}\n", ca_pub.join(" ")),
    )
    .unwrap();
    let config = dir.join("ssh_config");
    std::fs::write(
        &config,
        format!(
            "Host node-a\n  HostName {address}\n  User root\n  IdentityFile {}\n  \
             CertificateFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  \
             GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n",
            user_key.display(),
            user_cert.display(),
            known_hosts.display()
        ),
    )
    .unwrap();

    // OpenSSH itself agrees that this setup works.
    let ssh = run(
        bed.bed
            .client_command("ssh")
            .args(["-F"])
            .arg(&config)
            .args(["-o", "BatchMode=yes", "node-a", "true"]),
        Duration::from_secs(30),
    );
    assert_ok(&ssh);

    let file = bed.path("cert.pcapng");
    let out = run(
        kcap(&bed, &config)
            .args(["--ssh-host", "node-a", "-c", "5", "-o"])
            .arg(&file),
        Duration::from_secs(60),
    );
    assert_ok(&out);
    assert_eq!(read_capture(&file).records.len(), 5, "{}", stderr(&out));

    // The plain key alone is no longer enough: the node takes certificates only
    // (a copy of the key elsewhere, so no `-cert.pub` lies next to it).
    let bare_key = dir.join("bare");
    std::fs::copy(&user_key, &bare_key).unwrap();
    let plain = dir.join("plain_config");
    let text = std::fs::read_to_string(&config).unwrap();
    let without: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("CertificateFile"))
        .map(|l| format!("{l}\n"))
        .collect();
    let without = without.replace(
        &format!("IdentityFile {}", user_key.display()),
        &format!("IdentityFile {}", bare_key.display()),
    );
    std::fs::write(&plain, without).unwrap();
    let out = run(
        kcap(&bed, &plain).args(["--ssh-host", "node-a", "-c", "1", "-o", "x.pcapng"]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));

    // An expired host certificate: refused as such (exit 6, as a host key that
    // does not match), with the reason and a hint.
    let expired = sign(
        &ca,
        &host_key.with_extension("pub"),
        true,
        &principals,
        "-2h:-1h",
    );
    assert_eq!(expired, host_cert);
    bed.bed.reconfigure_sshd("node-a", "").unwrap();
    let out = run(
        kcap(&bed, &config).args(["--ssh-host", "node-a", "-c", "1", "-o", "y.pcapng"]),
        Duration::from_secs(60),
    );
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "{text}");
    assert!(text.contains("is refused: it expired"), "{text}");
    assert!(text.contains("hint: ask the node's owner"), "{text}");

    // RevokedHostKeys naming the node's key: refused, whatever the certificate.
    let revoked = dir.join("revoked_keys");
    std::fs::copy(host_key.with_extension("pub"), &revoked).unwrap();
    let with_revoked = dir.join("revoked_config");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &with_revoked,
        text.replace(
            "Host node-a\n",
            &format!("Host node-a\n  RevokedHostKeys {}\n", revoked.display()),
        ),
    )
    .unwrap();
    let out = run(
        kcap(&bed, &with_revoked).args(["--ssh-host", "node-a", "-c", "1", "-o", "z.pcapng"]),
        Duration::from_secs(60),
    );
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "{text}");
    assert!(text.contains("revoked"), "{text}");
    // A KRL is not read: refused with what to do, never ignored.
    keygen(
        &["-q", "-k", "-f"],
        &[&revoked, &host_key.with_extension("pub")],
    );
    let out = run(
        kcap(&bed, &with_revoked).args(["--ssh-host", "node-a", "-c", "1", "-o", "z.pcapng"]),
        Duration::from_secs(60),
    );
    let text = stderr(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("key revocation list (KRL)"), "{text}");
}
