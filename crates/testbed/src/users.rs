//! The machine-wide test users: `kcaptb` (password + key, passwordless sudo)
//! and `kcapnp` (key only in practice, no sudo). Namespaces share /etc, so
//! these are created once per machine, idempotently.

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use anyhow::{Context, Result, bail};

use crate::netns;
use crate::{TEST_PASSWORD, USER_NOPRIV, USER_SUDO};

const SUDOERS: &str = "/etc/sudoers.d/kcap-testbed";
/// Serialises useradd/chpasswd between processes (they fail if /etc/passwd
/// is locked by a concurrent call).
const LOCK: &str = "/tmp/kcap-testbed-users.lock";

static DONE: Mutex<bool> = Mutex::new(false);

pub(crate) fn ensure() -> Result<()> {
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return Ok(());
    }
    let lock = File::create(LOCK).with_context(|| format!("create {LOCK}"))?;
    // SAFETY: flock(2) on an fd we own; released when `lock` is dropped.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        bail!("flock {LOCK}: {}", std::io::Error::last_os_error());
    }
    for user in [USER_SUDO, USER_NOPRIV] {
        if !user_exists(user)? {
            netns::run(Command::new("useradd").args([
                "-m",
                "-s",
                "/bin/bash",
                "-c",
                "kcap test bed user",
                user,
            ]))?;
        }
    }
    // Also unlocks the accounts: with UsePAM no, sshd rejects even key
    // logins for a locked ("!") password.
    let mut chpasswd = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("run chpasswd")?;
    let input = format!("{USER_SUDO}:{TEST_PASSWORD}\n{USER_NOPRIV}:{TEST_PASSWORD}\n");
    chpasswd
        .stdin
        .take()
        .expect("piped")
        .write_all(input.as_bytes())?;
    let out = chpasswd.wait_with_output()?;
    if !out.status.success() {
        bail!("chpasswd failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    ensure_sudoers()?;
    *done = true;
    Ok(())
}

fn user_exists(user: &str) -> Result<bool> {
    let passwd = fs::read_to_string("/etc/passwd")?;
    Ok(passwd.lines().any(|l| l.split(':').next() == Some(user)))
}

fn ensure_sudoers() -> Result<()> {
    if !Path::new("/usr/bin/sudo").exists() {
        // Nodes normally have sudo; a bare CI machine may not.
        let status = Command::new("apt-get")
            .args(["install", "-y", "-q", "sudo"])
            .stdout(Stdio::null())
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!(
                "kcap-testbed: warning: sudo is not installed (apt-get install sudo); sudo tests will fail"
            );
        }
    }
    let content = format!(
        "# Installed by kcap-testbed: test user with passwordless sudo.\n{USER_SUDO} ALL=(ALL) NOPASSWD: ALL\n"
    );
    if fs::read_to_string(SUDOERS).ok().as_deref() == Some(content.as_str()) {
        return Ok(());
    }
    fs::create_dir_all("/etc/sudoers.d")?;
    // Write then rename so sudo never sees a half-written file.
    let tmp = format!("{SUDOERS}.tmp");
    fs::write(&tmp, content)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o440))?;
    fs::rename(&tmp, SUDOERS).with_context(|| format!("install {SUDOERS}"))
}
