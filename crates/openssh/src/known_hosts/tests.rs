//! known_hosts tests against OpenSSH's own `ssh-keygen` as the reference.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use super::*;

fn keygen(dir: &Path, name: &str, kind: &str) -> HostKey {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "test", "-f"])
        .arg(&path)
        .status()
        .expect("run ssh-keygen");
    assert!(status.success());
    let text = fs::read_to_string(path.with_extension("pub")).unwrap();
    HostKey::from_openssh_line(&text).unwrap()
}

struct Keys {
    dir: tempfile::TempDir,
    a: HostKey,
    b: HostKey,
    ecdsa: HostKey,
}

fn keys() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let a = keygen(dir.path(), "a", "ed25519");
    let b = keygen(dir.path(), "b", "ed25519");
    let ecdsa = keygen(dir.path(), "c", "ecdsa");
    Keys { dir, a, b, ecdsa }
}

fn line(hosts: &str, key: &HostKey) -> String {
    format!("{hosts} {} {} comment\n", key.algorithm, key.base64)
}

fn kh(text: &str) -> KnownHosts {
    KnownHosts::parse_str(text, Path::new("kh"))
}

#[test]
fn fingerprint_matches_ssh_keygen() {
    let k = keys();
    for name in ["a.pub", "c.pub"] {
        let path = k.dir.path().join(name);
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(&path)
            .output()
            .unwrap();
        let out = String::from_utf8(out.stdout).unwrap();
        let expected = out.split_whitespace().nth(1).unwrap();
        let key = HostKey::from_openssh_line(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(key.fingerprint(), expected);
    }
}

#[test]
fn key_lines() {
    let k = keys();
    assert_eq!(k.a.algorithm, "ssh-ed25519");
    assert_eq!(k.ecdsa.algorithm, "ecdsa-sha2-nistp256");
    assert!(HostKey::from_openssh_line("").is_err());
    assert!(HostKey::from_openssh_line("ssh-ed25519").is_err());
    assert!(HostKey::from_openssh_line("ssh-ed25519 !!!").is_err());
    let lie = format!("ssh-rsa {}", k.a.base64);
    assert!(HostKey::from_openssh_line(&lie).is_err());
    let blob = STANDARD.decode(&k.a.base64).unwrap();
    assert_eq!(HostKey::from_blob(&blob).unwrap(), k.a);
    assert!(HostKey::from_blob(&blob[..3]).is_err());
}

#[test]
fn plain_names_and_ports() {
    let k = keys();
    let known = kh(&format!(
        "# comment\n\n{}{}garbage line\n",
        line("host1,Host2", &k.a),
        line("[host3]:2222", &k.a)
    ));
    assert_eq!(known.check("host1", 22, &k.a), Verdict::Trusted);
    assert_eq!(known.check("HOST2", 22, &k.a), Verdict::Trusted);
    assert_eq!(known.check("host9", 22, &k.a), Verdict::Unknown);
    assert_eq!(known.check("host1", 2222, &k.a), Verdict::Unknown);
    assert_eq!(known.check("host3", 2222, &k.a), Verdict::Trusted);
    assert_eq!(known.check("host3", 22, &k.a), Verdict::Unknown);
}

#[test]
fn wildcards_and_negation() {
    let k = keys();
    let known = kh(&line("*.example.com,!bad.example.com,web?", &k.a));
    assert_eq!(known.check("a.example.com", 22, &k.a), Verdict::Trusted);
    assert_eq!(known.check("bad.example.com", 22, &k.a), Verdict::Unknown);
    assert_eq!(known.check("web1", 22, &k.a), Verdict::Trusted);
    assert_eq!(known.check("web12", 22, &k.a), Verdict::Unknown);
    // A bare '*' also covers [host]:port names, as in OpenSSH.
    assert_eq!(
        kh(&line("*", &k.a)).check("x", 2222, &k.a),
        Verdict::Trusted
    );
}

#[test]
fn changed_keys() {
    let k = keys();
    let text = format!("{}{}", line("other", &k.a), line("h", &k.b));
    let known = kh(&text);
    let changed = Verdict::Changed {
        file: PathBuf::from("kh"),
        line: 2,
    };
    assert_eq!(known.check("h", 22, &k.a), changed);
    // A key of another type on record also refuses the connection.
    assert_eq!(known.check("h", 22, &k.ecdsa), changed);
    let both = kh(&format!("{text}{}", line("h", &k.a)));
    assert_eq!(both.check("h", 22, &k.a), Verdict::Trusted);
}

#[test]
fn markers() {
    let k = keys();
    let known = kh(&format!(
        "{}{}{}",
        line("h,g", &k.a),
        line("@revoked *", &k.a),
        line("@cert-authority *.ca", &k.b)
    ));
    let revoked = Verdict::Revoked {
        file: PathBuf::from("kh"),
        line: 2,
    };
    assert_eq!(known.check("h", 22, &k.a), revoked);
    assert_eq!(known.check("new", 22, &k.a), revoked);
    assert_eq!(known.check("x.ca", 22, &k.b), Verdict::Unknown);
    assert_eq!(known.check("x.ca", 22, &k.a), revoked);
    // Authorities: only for the hosts their line names, never when revoked.
    assert!(known.has_cert_authority("x.ca", 22));
    assert!(!known.has_cert_authority("h", 22));
    assert_eq!(known.check_authority("x.ca", 22, &k.b), Verdict::Trusted);
    assert_eq!(known.check_authority("x.ca", 2, &k.b), Verdict::Unknown);
    assert_eq!(known.check_authority("h", 22, &k.b), Verdict::Unknown);
    assert_eq!(known.check_authority("x.ca", 22, &k.a), revoked);
    assert_eq!(known.check_revoked("x.ca", 22, &k.a), Some(revoked.clone()));
    assert_eq!(known.check_revoked("x.ca", 22, &k.b), None);
    // Unknown markers make the line unusable rather than trusted.
    assert_eq!(
        kh(&line("@bogus h", &k.b)).check("h", 22, &k.b),
        Verdict::Unknown
    );
}

/// ssh_config's `RevokedHostKeys`: a file of public keys, for every host, as
/// keys and as authorities; a KRL and a missing file are errors, never ignored.
#[test]
fn revoked_host_keys_file() {
    let k = keys();
    let mut known = kh(&format!(
        "{}{}",
        line("h", &k.a),
        line("@cert-authority *", &k.b)
    ));
    let file = k.dir.path().join("revoked");
    let a_pub = fs::read_to_string(k.dir.path().join("a.pub")).unwrap();
    fs::write(&file, format!("# revoked on purpose\n\n{a_pub}")).unwrap();
    known.add_revoked_keys(&file).unwrap();
    let revoked = Verdict::Revoked {
        file: file.clone(),
        line: 3,
    };
    assert_eq!(known.check("h", 22, &k.a), revoked);
    assert_eq!(known.check_revoked("other", 2222, &k.a), Some(revoked));
    assert_eq!(known.check_authority("any", 22, &k.b), Verdict::Trusted);

    let krl = k.dir.path().join("krl");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-k", "-f"])
        .arg(&krl)
        .arg(k.dir.path().join("a.pub"))
        .status()
        .unwrap();
    assert!(status.success());
    let e = KnownHosts::default().add_revoked_keys(&krl).unwrap_err();
    assert!(e.to_string().contains("key revocation list (KRL)"), "{e}");
    let e = KnownHosts::default()
        .add_revoked_keys(&k.dir.path().join("missing"))
        .unwrap_err();
    assert!(e.to_string().contains("cannot read"), "{e}");
}

#[test]
fn hashed_by_ssh_keygen() {
    let k = keys();
    let path = k.dir.path().join("known_hosts");
    let text = format!(
        "{}{}",
        line("alpha,10.0.0.7", &k.a),
        line("[beta]:2222", &k.b)
    );
    fs::write(&path, text).unwrap();
    let out = Command::new("ssh-keygen")
        .args(["-q", "-H", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let hashed = fs::read_to_string(&path).unwrap();
    assert!(hashed.lines().all(|l| l.starts_with("|1|")), "{hashed}");
    assert!(!hashed.contains("alpha"));
    let known = KnownHosts::load(&[path.clone(), k.dir.path().join("missing")]).unwrap();
    assert_eq!(known.check("alpha", 22, &k.a), Verdict::Trusted);
    assert_eq!(known.check("Alpha", 22, &k.a), Verdict::Trusted);
    assert_eq!(known.check("10.0.0.7", 22, &k.a), Verdict::Trusted);
    assert_eq!(known.check("beta", 2222, &k.b), Verdict::Trusted);
    assert_eq!(known.check("beta", 22, &k.b), Verdict::Unknown);
    assert!(matches!(
        known.check("alpha", 22, &k.b),
        Verdict::Changed { line: 1, .. }
    ));
}

fn ssh_keygen_finds(file: &Path, name: &str) -> bool {
    let out = Command::new("ssh-keygen")
        .args(["-F", name, "-f"])
        .arg(file)
        .output()
        .unwrap();
    out.status.success() && !out.stdout.is_empty()
}

#[test]
fn append_creates_private_file_openssh_can_read() {
    let k = keys();
    let path = k.dir.path().join("new/sub/known_hosts");
    KnownHosts::append(&path, "Node1", 2222, &k.a).unwrap();
    KnownHosts::append(&path, "node2", 22, &k.b).unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(text.lines().all(|l| l.starts_with("|1|")) && text.ends_with('\n'));
    assert!(ssh_keygen_finds(&path, "[node1]:2222"));
    assert!(ssh_keygen_finds(&path, "node2"));
    assert!(!ssh_keygen_finds(&path, "node1"));
    let known = KnownHosts::load(std::slice::from_ref(&path)).unwrap();
    assert_eq!(known.check("node1", 2222, &k.a), Verdict::Trusted);
    assert_eq!(known.check("node2", 22, &k.b), Verdict::Trusted);
}

#[test]
fn append_after_missing_newline() {
    let k = keys();
    let path = k.dir.path().join("known_hosts");
    fs::write(&path, line("old", &k.b).trim_end()).unwrap();
    KnownHosts::append(&path, "h", 22, &k.a).unwrap();
    let known = KnownHosts::load(std::slice::from_ref(&path)).unwrap();
    assert_eq!(known.check("old", 22, &k.b), Verdict::Trusted);
    assert_eq!(known.check("h", 22, &k.a), Verdict::Trusted);
    assert!(ssh_keygen_finds(&path, "h"));
    assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 2);
}
