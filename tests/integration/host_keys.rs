//! Host key verification against known_hosts: unknown keys refused with their
//! fingerprint, trusted on first use with the flag, changed keys always refused.

use std::process::Command;
use std::time::Duration;

use crate::util::*;

fn fingerprint(key_line: &str, scratch: &std::path::Path) -> String {
    let path = scratch.join("hostkey.pub");
    std::fs::write(&path, format!("{key_line}\n")).unwrap();
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

fn capture_node_a(
    bed: &Bed,
    known_hosts: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    run(
        bed.kcap_bare()
            .args(["--ssh-host", "root@198.51.100.10", "--ssh-key"])
            .arg(bed.bed.client_key())
            .arg("--known-hosts")
            .arg(known_hosts)
            .args(["-c", "3", "-o"])
            .arg(bed.path("hk.pcapng"))
            .args(extra),
        Duration::from_secs(60),
    )
}

#[test]
fn unknown_key_is_refused_then_accepted_with_the_flag() {
    let bed = Bed::minimal();
    let known_hosts = bed.path("known_hosts");
    let expected = fingerprint(&bed.bed.host("node-a").host_key_line(), bed.scratch.path());

    let out = capture_node_a(&bed, &known_hosts, &[]);
    assert_exit(&out, 5, &[&expected, "--accept-new-host-key"]);

    let out = capture_node_a(&bed, &known_hosts, &["--accept-new-host-key"]);
    assert_ok(&out);
    assert_eq!(read_capture(&bed.path("hk.pcapng")).records.len(), 3);
    // Recorded the way OpenSSH would find it.
    let found = Command::new("ssh-keygen")
        .args(["-F", "198.51.100.10", "-f"])
        .arg(&known_hosts)
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "ssh-keygen -F does not find the recorded key"
    );

    // From now on it is simply trusted.
    let out = capture_node_a(&bed, &known_hosts, &[]);
    assert_ok(&out);
}

#[test]
fn changed_key_is_refused_even_with_the_flag() {
    let bed = Bed::minimal();
    let known_hosts = bed.bed.known_hosts();
    bed.bed.rotate_host_key("node-a").expect("rotate host key");
    let out = capture_node_a(&bed, &known_hosts, &[]);
    assert_exit(&out, 6, &["HAS CHANGED", "ssh-keygen -R"]);
    let out = capture_node_a(&bed, &known_hosts, &["--accept-new-host-key"]);
    assert_exit(&out, 6, &["HAS CHANGED"]);
}

/// `HostKeyAlias`: known_hosts knows the node by another name (as for nodes
/// reached by changing addresses); kcap looks its key up under that name, and
/// without the alias the same file does not know the address.
#[test]
fn host_key_alias_names_the_known_hosts_entry() {
    let bed = Bed::minimal();
    let node = bed.bed.host("node-a");
    let key = std::fs::read_to_string(node.dir.join("ssh_host_ed25519_key.pub")).unwrap();
    let key: Vec<&str> = key.split_whitespace().take(2).collect();
    let known_hosts = bed.scratch.path().join("alias_known_hosts");
    std::fs::write(&known_hosts, format!("node-a-keys {}\n", key.join(" "))).unwrap();
    let config = |alias: &str| {
        let path = bed.scratch.path().join(format!("config{}", alias.len()));
        std::fs::write(
            &path,
            format!(
                "Host byip\n  HostName 198.51.100.10\n  User root\n  IdentityFile {}\n  \
                 UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n{alias}",
                bed.bed.client_key().display(),
                known_hosts.display()
            ),
        )
        .unwrap();
        path
    };
    let capture = |config: &std::path::Path| {
        run(
            bed.bed
                .client_command(KCAP)
                .arg("--ssh-config")
                .arg(config)
                .env("HOME", bed.scratch.path())
                .env_remove("SSH_AUTH_SOCK")
                .args(["--ssh-host", "byip", "-c", "2", "-o"])
                .arg(bed.path("alias.pcapng")),
            Duration::from_secs(60),
        )
    };
    let out = capture(&config("  HostKeyAlias node-a-keys\n"));
    assert_ok(&out);
    assert_eq!(read_capture(&bed.path("alias.pcapng")).records.len(), 2);
    let out = capture(&config(""));
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
}

/// `GlobalKnownHostsFile`: a node known only system-wide (as many companies
/// distribute host keys) is trusted, and nothing is written there.
#[test]
fn global_known_hosts_file_is_trusted_and_left_alone() {
    let bed = Bed::minimal();
    let node = bed.bed.host("node-a");
    let key = std::fs::read_to_string(node.dir.join("ssh_host_ed25519_key.pub")).unwrap();
    let key: Vec<&str> = key.split_whitespace().take(2).collect();
    let global = bed.scratch.path().join("global_known_hosts");
    let global_text = format!("198.51.100.10 {}\n", key.join(" "));
    std::fs::write(&global, &global_text).unwrap();
    let user = bed.scratch.path().join("user_known_hosts");
    std::fs::write(&user, "").unwrap();
    let config = bed.scratch.path().join("global_config");
    std::fs::write(
        &config,
        format!(
            "Host 198.51.100.10\n  User root\n  IdentityFile {}\n  UserKnownHostsFile {}\n  \
             GlobalKnownHostsFile {}\n",
            bed.bed.client_key().display(),
            user.display(),
            global.display()
        ),
    )
    .unwrap();
    let out = run(
        bed.bed
            .client_command(KCAP)
            .arg("--ssh-config")
            .arg(&config)
            .env("HOME", bed.scratch.path())
            .env_remove("SSH_AUTH_SOCK")
            .args(["--ssh-host", "198.51.100.10", "-c", "2", "-o"])
            .arg(bed.path("global.pcapng")),
        Duration::from_secs(60),
    );
    assert_ok(&out);
    assert_eq!(read_capture(&bed.path("global.pcapng")).records.len(), 2);
    assert_eq!(std::fs::read_to_string(&global).unwrap(), global_text);
    assert_eq!(std::fs::read_to_string(&user).unwrap(), "");
}
