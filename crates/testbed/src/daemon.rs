//! The CLI's long-lived cluster bed. The API server and the pod runtime live
//! in-process, so `kcap-testbed up` cannot just persist the bed and exit as it
//! does for an SSH-only bed: it starts itself as `kcap-testbed serve` in a new
//! session ([`spawn_serve`]), which brings the bed up, marks it ready and holds
//! it until SIGTERM/SIGINT ([`serve`]). [`down`] signals that process (after
//! checking it really is our serve process: PIDs get reused) and then removes
//! whatever is left.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::netns;
use crate::process::spawn_daemon;
use crate::spec::Spec;
use crate::state::State;
use crate::testbed::Testbed;

/// Written once the bed is up and the API server answers.
const READY: &str = "serve.ready";
/// stdout/stderr of the serve process.
pub const LOG: &str = "serve.log";
const SERVE_ARG: &str = "serve";
/// Bringing up a cluster takes seconds; a loaded machine needs more.
const UP_TIMEOUT: Duration = Duration::from_secs(180);
const DOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts `kcap-testbed serve --dir DIR ARGS...` detached (own session, stdio
/// to `DIR/serve.log`) and waits until its bed is ready or it dies.
pub fn spawn_serve(dir: &Path, args: &[String]) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("mkdir {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    if dir.join(READY).exists() || State::path(&dir).exists() {
        bail!(
            "a test bed is already up in {} (`kcap-testbed down --dir {0}`)",
            dir.display()
        );
    }
    let log = File::create(dir.join(LOG))?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg(SERVE_ARG)
        .arg("--dir")
        .arg(&dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let mut child = spawn_daemon(&mut cmd).context("start kcap-testbed serve")?;
    let deadline = Instant::now() + UP_TIMEOUT;
    while !dir.join(READY).exists() {
        if let Some(status) = child.try_wait()? {
            let log = fs::read_to_string(dir.join(LOG)).unwrap_or_default();
            bail!("kcap-testbed serve exited ({status}):\n{}", log.trim());
        }
        if Instant::now() > deadline {
            // Ours to stop: an owned Child handle, not a PID from a file.
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the bed was not up after {UP_TIMEOUT:?}; see {}",
                dir.join(LOG).display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Brings `spec` up in `dir` (fixed names) and holds it until SIGTERM or
/// SIGINT, then tears it down.
pub fn serve(spec: Spec, dir: &Path) -> Result<()> {
    // Handlers, not a blocked mask: every process the bed starts (sshds, pods,
    // execs) inherits the signal mask, and a pod whose SIGTERM is blocked cannot be
    // stopped politely (kcap's wrapper stops tcpdump with SIGTERM, `timeout` stops
    // with it too). Handlers are reset on exec.
    catch_signals();
    let bed = Testbed::up_in(spec, dir)?;
    if let Some(server) = bed.api_server() {
        // The kubeconfig exists; make sure the server answers over the lan.
        let url = server.url();
        let addr = url.trim_start_matches("https://").to_string();
        let client = bed.client_netns().to_string();
        let connected = netns::in_netns(&client, move || {
            let addr = addr.parse().expect("server address");
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).is_ok()
        })?;
        if !connected {
            bail!("API server {url} does not answer from the client namespace");
        }
    }
    fs::write(bed.dir().join(READY), format!("{}\n", std::process::id()))?;
    eprintln!("kcap-testbed serve: up in {}", bed.dir().display());
    let sig = wait_for_signal();
    eprintln!("kcap-testbed serve: signal {sig}, tearing down");
    let _ = fs::remove_file(bed.dir().join(READY));
    bed.down()
}

/// The first SIGTERM/SIGINT/SIGHUP received (0: none yet).
static SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    // Async-signal-safe: one atomic store.
    let _ = SIGNAL.compare_exchange(
        0,
        sig,
        std::sync::atomic::Ordering::SeqCst,
        std::sync::atomic::Ordering::SeqCst,
    );
}

fn catch_signals() {
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: installs a handler that only stores to an atomic.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}

fn wait_for_signal() -> i32 {
    loop {
        let sig = SIGNAL.load(std::sync::atomic::Ordering::SeqCst);
        if sig != 0 {
            return sig;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether `pid` runs `kcap-testbed serve --dir DIR` for this `dir`.
fn is_our_serve(pid: u32, dir: &Path) -> bool {
    let Ok(raw) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
    let exe_ok = args
        .first()
        .and_then(|a| Path::new(std::str::from_utf8(a).ok()?).file_name())
        .is_some_and(|n| n == "kcap-testbed");
    let dir = dir.as_os_str().as_encoded_bytes();
    exe_ok
        && args.get(1) == Some(&SERVE_ARG.as_bytes())
        && args.windows(2).any(|w| w[0] == b"--dir" && w[1] == dir)
        && netns::is_running(pid)
}

/// Stops the bed in `dir`: signals its serve process (if it is one and still
/// runs), waits for its teardown, then removes what is left: the namespaces
/// of state.json, every `kcap-tb-*` namespace, the generated files.
pub fn down(dir: &Path, prefix: &str) -> Result<()> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let serve_pid = fs::read_to_string(dir.join(READY))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .or_else(|| State::load(&dir).ok().map(|s| s.owner_pid));
    if let Some(pid) = serve_pid.filter(|&pid| is_our_serve(pid, &dir)) {
        // SAFETY: kill(2); the PID was just checked to be our serve process.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + DOWN_TIMEOUT;
        // Not our child, so no waitpid: it is gone (or a zombie) when done.
        while netns::is_running(pid) {
            if Instant::now() > deadline {
                eprintln!("kcap-testbed: serve (pid {pid}) still tearing down; removing the rest");
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let mut result = Ok(());
    if State::path(&dir).exists() {
        result = Testbed::down_dir(&dir);
    }
    let leftovers: Vec<String> = netns::list()
        .into_iter()
        .filter(|n| n.starts_with(&format!("{prefix}-")))
        .collect();
    for ns in &leftovers {
        let _ = netns::kill_all(ns);
        let _ = netns::delete(ns);
    }
    for f in [READY, LOG] {
        let _ = fs::remove_file(dir.join(f));
    }
    let _ = fs::remove_dir(&dir);
    result
}

/// `DIR/kubeconfig` if the bed there has an API server.
pub fn kubeconfig(dir: &Path) -> Option<PathBuf> {
    let p = dir.join("kubeconfig");
    p.exists().then_some(p)
}
