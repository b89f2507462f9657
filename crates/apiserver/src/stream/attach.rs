//! The attach hub of an ephemeral container: owns its process's stdio, keeps reading its
//! output whether or not anyone is attached (unattached output is dropped, as on a real
//! node, but kept in a small log for `pods/NAME/log`), and tells attachers when it exits.

use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Child;
use tokio::sync::{Notify, broadcast, mpsc, watch};

use super::channel::{self, Protocol};
use super::websocket::{self, StdinSink, Ws};
use crate::status;

/// Output kept for `kubectl logs` of an ephemeral container.
const LOG_LIMIT: usize = 1 << 20;
/// Read size for process output; bigger reads mean fewer, larger WebSocket messages.
pub const READ_SIZE: usize = 256 * 1024;

pub struct AttachHub {
    output: broadcast::Sender<Arc<Vec<u8>>>,
    stdin: Mutex<Option<mpsc::Sender<Bytes>>>,
    log: Mutex<Vec<u8>>,
    exit: watch::Receiver<Option<i32>>,
    kill: Notify,
    pub stdin_once: bool,
}

/// Lets large writes through a pipe in one go (Linux caps a pipe at 64 KiB by default).
pub fn widen_pipe(fd: &impl AsRawFd) {
    // SAFETY: fcntl on a descriptor we own; failure only leaves the default size.
    unsafe {
        libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20);
    }
}

/// Writes what arrives on the returned sender into the child's stdin; dropping every
/// sender closes the stdin.
pub fn stdin_writer(mut stdin: tokio::process::ChildStdin) -> mpsc::Sender<Bytes> {
    let (tx, mut rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        while let Some(data) = rx.recv().await {
            if stdin.write_all(&data).await.is_err() {
                break;
            }
        }
        let _ = stdin.shutdown().await;
    });
    tx
}

/// Reads `r` to the end in large chunks, handing each to `sink` as a channel message;
/// stops when `sink` says the reader is gone.
pub async fn pump<R, F, Fut>(mut r: R, ch: u8, mut sink: F)
where
    R: AsyncRead + Unpin,
    F: FnMut(Vec<u8>) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        let mut buf = vec![0u8; READ_SIZE + 1];
        buf[0] = ch;
        match r.read(&mut buf[1..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                buf.truncate(n + 1);
                if !sink(buf).await {
                    return;
                }
            }
        }
    }
}

fn exit_code(status: std::io::Result<std::process::ExitStatus>) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)),
        Err(_) => 255,
    }
}

impl AttachHub {
    pub fn start(
        mut child: Child,
        _tty: bool,
        stdin_once: bool,
        mut shutdown: watch::Receiver<bool>,
    ) -> Arc<Self> {
        let (exit_tx, exit_rx) = watch::channel(None);
        let hub = Arc::new(AttachHub {
            output: broadcast::channel(1024).0,
            stdin: Mutex::new(child.stdin.take().map(stdin_writer)),
            log: Mutex::new(Vec::new()),
            exit: exit_rx,
            kill: Notify::new(),
            stdin_once,
        });
        let mut readers = Vec::new();
        for (ch, r) in [
            (
                channel::STDOUT,
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn AsyncRead + Unpin + Send>),
            ),
            (
                channel::STDERR,
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn AsyncRead + Unpin + Send>),
            ),
        ] {
            let Some(r) = r else { continue };
            let hub = hub.clone();
            readers.push(tokio::spawn(async move {
                pump(r, ch, |msg: Vec<u8>| {
                    {
                        let mut log = hub.log.lock().unwrap_or_else(|e| e.into_inner());
                        if log.len() < LOG_LIMIT {
                            log.extend_from_slice(&msg[1..]);
                        }
                    }
                    // No attacher: the output is dropped, as on a real node.
                    let _ = hub.output.send(Arc::new(msg));
                    std::future::ready(true)
                })
                .await
            }));
        }
        let h = hub.clone();
        tokio::spawn(async move {
            let status = tokio::select! {
                s = child.wait() => s,
                _ = h.kill.notified() => { let _ = child.start_kill(); child.wait().await }
                _ = async { let _ = shutdown.wait_for(|s| *s).await; } => { let _ = child.start_kill(); child.wait().await }
            };
            // Let the readers deliver what the process wrote before it exited; a
            // grandchild holding the pipes open must not keep the container "running".
            for r in readers {
                let _ = tokio::time::timeout(Duration::from_secs(2), r).await;
            }
            let _ = exit_tx.send(Some(exit_code(status)));
        });
        hub
    }

    pub fn kill(&self) {
        self.kill.notify_one();
    }

    pub async fn wait_exit(&self) -> i32 {
        let mut rx = self.exit.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(v) => v.unwrap_or(0),
            Err(_) => 255,
        }
    }

    pub fn log(&self) -> Vec<u8> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn is_running(&self) -> bool {
        self.exit.borrow().is_none()
    }

    /// One attach session: output from now on, stdin to the process, the exit status at
    /// the end.
    pub async fn attach(
        self: Arc<Self>,
        ws: Ws,
        proto: Protocol,
        want_stdin: bool,
        want_stdout: bool,
        want_stderr: bool,
    ) {
        let (out_tx, out_rx) = mpsc::channel::<Vec<u8>>(16);
        let mut sub = self.output.subscribe();
        let mut exit = self.exit.clone();
        let stdin_tx = if want_stdin {
            let mut held = self.stdin.lock().unwrap_or_else(|e| e.into_inner());
            // stdinOnce: this attacher gets the only sender, so the container's stdin
            // closes when its stdin does (a v5 close frame) or when it goes away, as
            // the kubelet does; a later attacher finds it closed.
            if self.stdin_once {
                held.take()
            } else {
                held.clone()
            }
        } else {
            None
        };
        let hub = self.clone();
        tokio::spawn(async move {
            let wanted = |m: &Vec<u8>| match m[0] {
                channel::STDOUT => want_stdout,
                channel::STDERR => want_stderr,
                _ => true,
            };
            let _ = out_tx.send(vec![channel::STDOUT]).await;
            loop {
                tokio::select! {
                    m = sub.recv() => match m {
                        Ok(m) => if wanted(&m) && out_tx.send(m.to_vec()).await.is_err() { return },
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                    _ = async { let _ = exit.wait_for(Option::is_some).await; } => break,
                }
            }
            while let Ok(m) = sub.try_recv() {
                if wanted(&m) && out_tx.send(m.to_vec()).await.is_err() {
                    return;
                }
            }
            let code = hub.wait_exit().await;
            let _ = out_tx
                .send(channel::status_frame(
                    proto,
                    &status::exit_status(code, &[]),
                ))
                .await;
        });
        websocket::run(ws, proto, out_rx, StdinSink { tx: stdin_tx }).await;
    }
}
