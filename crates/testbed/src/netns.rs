//! Network namespace primitives: `ip` invocations, finding and killing the
//! processes inside a namespace, and running Rust code inside one.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

/// Where `ip netns add` bind-mounts named namespaces.
const NETNS_DIR: &str = "/run/netns";

pub(crate) fn path(ns: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(ns)
}

pub(crate) fn exists(ns: &str) -> bool {
    path(ns).exists()
}

/// Names of all named namespaces on the machine.
pub(crate) fn list() -> Vec<String> {
    let Ok(entries) = fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect()
}

/// Runs `ip ARGS`, turning a non-zero exit into an error carrying stderr.
pub(crate) fn ip<I, S>(args: I) -> Result<()>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new("ip");
    cmd.args(args);
    run(&mut cmd)
}

/// Runs a command to completion; errors include the command line and stderr.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

pub(crate) fn add(ns: &str) -> Result<()> {
    if exists(ns) {
        bail!("network namespace {ns} already exists (another test bed? try `kcap-testbed down`)");
    }
    ip(["netns", "add", ns])?;
    ip(["-n", ns, "link", "set", "lo", "up"])
}

/// Deletes a namespace name; a missing namespace is not an error because
/// teardown must work after a partial setup.
pub(crate) fn delete(ns: &str) -> Result<()> {
    if !exists(ns) {
        return Ok(());
    }
    ip(["netns", "del", ns])
}

/// A `Command` that runs `program` inside namespace `ns`.
pub(crate) fn command(ns: &str, program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).arg(program);
    cmd
}

/// PIDs of all processes whose network namespace is `ns` (what
/// `ip netns pids` does, without spawning a process per call).
pub(crate) fn pids(ns: &str) -> Vec<u32> {
    let Ok(target) = fs::metadata(path(ns)) else {
        return Vec::new();
    };
    let Ok(procs) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    procs
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            // Zombies have no namespace link any more, so they never match.
            fs::metadata(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|m| m.dev() == target.dev() && m.ino() == target.ino())
        })
        .collect()
}

/// The process name (`/proc/PID/comm`), if the process still exists.
pub(crate) fn comm(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_string())
}

/// Whether `pid` exists and is not a zombie.
pub(crate) fn is_running(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// SIGKILLs everything in `ns`, repeating because processes may fork
/// (sshd accepting a connection) between listing and killing.
pub(crate) fn kill_all(ns: &str) -> Result<()> {
    for _ in 0..100 {
        let pids = pids(ns);
        if pids.is_empty() {
            return Ok(());
        }
        for pid in pids {
            kill(pid);
        }
        thread::sleep(Duration::from_millis(10));
    }
    bail!(
        "processes in namespace {ns} survive SIGKILL: {:?}",
        pids(ns)
    )
}

pub(crate) fn kill(pid: u32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

/// Runs `f` on a fresh thread that has joined namespace `ns` (network
/// namespaces are per thread, so the rest of the process is unaffected).
pub(crate) fn in_netns<T, F>(ns: &str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let p = path(ns);
    thread::spawn(move || -> Result<T> {
        let file = File::open(&p).with_context(|| format!("open {}", p.display()))?;
        // SAFETY: setns(2) on a valid fd; only this thread changes namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            bail!("setns {}: {}", p.display(), std::io::Error::last_os_error());
        }
        Ok(f())
    })
    .join()
    .map_err(|_| anyhow!("thread inside namespace {ns} panicked"))?
}
