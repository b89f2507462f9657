//! Authentication: key file, ssh-agent and password, each with the real sshd of a
//! test-bed node, and a refusal that says which methods were tried.

use std::process::Command;
use std::time::Duration;

use kcap_testbed::{TEST_PASSWORD, USER_SUDO};

use crate::util::*;

fn explicit_args(bed: &Bed) -> Vec<String> {
    vec![
        "--ssh-host".into(),
        "198.51.100.10".into(),
        "--known-hosts".into(),
        bed.bed.known_hosts().display().to_string(),
        "--count".into(),
        "5".into(),
    ]
}

#[test]
fn key_file() {
    let bed = Bed::minimal();
    let file = bed.path("k.pcapng");
    let out = run(
        bed.kcap_bare()
            .args(explicit_args(&bed))
            .args(["--ssh-user", "root", "--ssh-key"])
            .arg(bed.bed.client_key())
            .arg("-o")
            .arg(&file),
        Duration::from_secs(60),
    );
    assert_ok(&out);
    assert_eq!(read_capture(&file).records.len(), 5);
}

#[test]
fn ssh_agent() {
    let bed = Bed::minimal();
    let socket = bed.path("agent.sock");
    let agent = Command::new("ssh-agent")
        .arg("-a")
        .arg(&socket)
        .output()
        .expect("ssh-agent");
    assert!(agent.status.success());
    let pid = String::from_utf8_lossy(&agent.stdout)
        .split("SSH_AGENT_PID=")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .and_then(|s| s.parse::<i32>().ok())
        .expect("agent pid");
    struct KillAgent(i32);
    impl Drop for KillAgent {
        fn drop(&mut self) {
            // SAFETY: kill(2) of the agent this test started.
            unsafe { libc::kill(self.0, libc::SIGTERM) };
        }
    }
    let _agent = KillAgent(pid);
    let added = Command::new("ssh-add")
        .arg(bed.bed.client_key())
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );

    let file = bed.path("agent.pcapng");
    let out = run(
        bed.kcap_bare()
            .args(explicit_args(&bed))
            .args(["--ssh-user", "root", "-o"])
            .arg(&file)
            .env("SSH_AUTH_SOCK", &socket),
        Duration::from_secs(60),
    );
    assert_ok(&out);
    assert_eq!(read_capture(&file).records.len(), 5);
}

#[test]
fn password_with_sudo() {
    let bed = Bed::minimal();
    let file = bed.path("pw.pcapng");
    let out = run(
        bed.kcap_bare()
            .args(explicit_args(&bed))
            .args(["--ssh-user", USER_SUDO, "--sudo", "-o"])
            .arg(&file)
            .env("KCAP_SSH_PASSWORD", TEST_PASSWORD),
        Duration::from_secs(60),
    );
    assert_ok(&out);
    assert_eq!(read_capture(&file).records.len(), 5);
}

#[test]
fn refused_login_names_the_methods_tried() {
    let bed = Bed::minimal();
    let out = run(
        bed.kcap_bare()
            .args(explicit_args(&bed))
            .args(["--ssh-user", USER_SUDO, "-o"])
            .arg(bed.path("x.pcapng"))
            .env("KCAP_SSH_PASSWORD", "wrong password"),
        Duration::from_secs(60),
    );
    assert_exit(&out, 4, &["password", USER_SUDO]);
}
