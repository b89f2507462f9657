//! `ProxyCommand`: a local command whose stdin/stdout carry the SSH connection, run
//! as OpenSSH runs it (`$SHELL -c "exec CMD"`). Its stderr is passed through to
//! kcap's stderr (and its tail kept for error messages).
//!
//! It never outlives kcap: it runs in its own process group (so a Ctrl-C at the
//! terminal reaches kcap alone, which then ends the capture cleanly over the still
//! working connection), the whole group is killed when the stream is dropped, and
//! `PR_SET_PDEATHSIG` kills the command if kcap dies without dropping anything
//! (SIGKILL).

use std::io::{self, Write};
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::watch;

/// How much of the command's stderr an error message shows (the end of it).
const STDERR_TAIL: usize = 4096;

/// What connect code learns about a running proxy command.
pub(crate) struct ProxyWatch {
    pid: i32,
    /// Shared with the stream, so the command is not killed while a failed
    /// handshake is still being diagnosed: it may be about to exit by itself.
    _guard: Arc<GroupGuard>,
    status: watch::Receiver<Option<io::Result<ExitStatus>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_done: watch::Receiver<bool>,
    killed: Arc<AtomicBool>,
}

/// The command's stdout (SSH from the server) and stdin (SSH to it) as one stream.
pub(crate) struct ProxyStream {
    stdin: ChildStdin,
    stdout: ChildStdout,
    _guard: Arc<GroupGuard>,
}

/// Kills the command's process group when dropped (by the last of the stream and
/// the watch).
struct GroupGuard {
    pgid: i32,
    killed: Arc<AtomicBool>,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.killed.store(true, Ordering::SeqCst);
        // SAFETY: plain kill(2) of the process group we created (pgid = the
        // child's pid, never 0 or 1). ESRCH when it is already gone is fine.
        unsafe { libc::kill(-self.pgid, libc::SIGKILL) };
    }
}

/// Makes the command get SIGKILL when the thread that forked it dies.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut tokio::process::Command) {
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) between fork and
    // exec.
    unsafe {
        let parent = libc::getpid();
        cmd.pre_exec(move || {
            // The signal comes when the thread that forked dies: kcap spawns proxies
            // from its runtime's long-lived worker threads, never from blocking-pool
            // threads that come and go.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // kcap died between fork and prctl: nobody would ever kill us.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// Starts `line` (already expanded, `exec ...`) with `shell -c`.
pub(crate) fn spawn(shell: &std::path::Path, line: &str) -> io::Result<(ProxyStream, ProxyWatch)> {
    let mut cmd = tokio::process::Command::new(shell);
    cmd.arg("-c")
        .arg(line)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // Linux only: other Unixes have no PR_SET_PDEATHSIG, and there a SIGKILLed kcap
    // leaves the proxy command running until its connection closes.
    #[cfg(target_os = "linux")]
    die_with_parent(&mut cmd);
    let mut child = cmd.spawn()?;
    let pid = child.id().map_or(0, |p| p as i32);
    let (Some(stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(io::Error::other("proxy command pipes missing"));
    };
    let killed = Arc::new(AtomicBool::new(false));
    let guard = Arc::new(GroupGuard {
        pgid: pid,
        killed: killed.clone(),
    });
    let (status_tx, status) = watch::channel(None);
    tokio::spawn(async move {
        let s = child.wait().await;
        let _ = status_tx.send(Some(s));
    });
    let tail = Arc::new(Mutex::new(Vec::new()));
    let (done_tx, stderr_done) = watch::channel(false);
    let keep = tail.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        loop {
            match stderr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    // Passed through as it comes, like OpenSSH does.
                    let _ = io::stderr().write_all(&buf[..n]);
                    let mut t = keep.lock().unwrap_or_else(|p| p.into_inner());
                    t.extend_from_slice(&buf[..n]);
                    let excess = t.len().saturating_sub(STDERR_TAIL);
                    t.drain(..excess);
                }
            }
        }
        let _ = done_tx.send(true);
    });
    Ok((
        ProxyStream {
            stdin,
            stdout,
            _guard: guard.clone(),
        },
        ProxyWatch {
            pid,
            _guard: guard,
            status,
            stderr: tail,
            stderr_done,
            killed,
        },
    ))
}

impl ProxyWatch {
    /// If the command ended on its own (rather than being killed by kcap), how:
    /// `exited with status 1`, `was killed by signal 15`. Waits up to `within` for
    /// it to end, since a handshake usually fails just before the exit is seen.
    pub async fn ended(&mut self, within: Duration) -> Option<String> {
        let status = tokio::time::timeout(within, self.status.wait_for(Option::is_some))
            .await
            .ok()?
            .ok()?
            .as_ref()?
            .as_ref()
            .ok()
            .copied()?;
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => Some(format!("exited with status {code}")),
            (None, Some(libc::SIGKILL)) if self.killed.load(Ordering::SeqCst) => None,
            (None, Some(sig)) => Some(format!("was killed by signal {sig}")),
            (None, None) => Some("ended".into()),
        }
    }

    /// The end of what the command wrote to stderr, once it closed stderr (waiting
    /// up to `within` for that).
    pub async fn stderr(&mut self, within: Duration) -> String {
        let _ = tokio::time::timeout(within, self.stderr_done.wait_for(|d| *d)).await;
        let tail = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&tail).trim_end().to_string()
    }

    /// The process id (also its process group id), for debug logs.
    pub fn pid(&self) -> i32 {
        self.pid
    }
}

impl AsyncRead for ProxyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for ProxyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}
