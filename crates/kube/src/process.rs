//! A capture process running in a pod (exec or attach), seen like an SSH remote
//! process: stdout and stderr chunks, then the exit code, and a stdin for the
//! heartbeat. stdout and stderr are read together, because kube-rs's message loop
//! stalls when either pipe is full (tcpdump's banner goes to stderr). A stream that
//! ends without an exit status because the connection failed is an error (the
//! connection was lost), not a clean end.

use std::future::Future;
use std::pin::Pin;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{AttachParams, AttachedProcess};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, SimplexStream, WriteHalf};

/// kube-rs's stdout pipe defaults to 1 KiB, a few packets: raise it so a busy pod
/// streams in large reads.
pub const STDOUT_BUFFER: usize = 1 << 20;
const READ_CHUNK: usize = 64 << 10;
/// How long to wait for kube-rs's message loop to report how it ended.
const JOIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// What the process said next.
#[derive(Debug)]
pub enum Chunk {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// How it ended: `None` for success (or no status at all), else the exit
    /// code and the API server's message (e.g. "executable file not found").
    Exit(Option<(i32, String)>),
}

type StatusFuture = Pin<Box<dyn Future<Output = Option<Status>> + Send>>;

pub struct PodProcess {
    /// Kept so that dropping the process aborts kube-rs's message loop, and for the
    /// loop's result when it ends without a status.
    attached: Option<AttachedProcess>,
    stdout: Option<ReadHalf<SimplexStream>>,
    stderr: Option<ReadHalf<SimplexStream>>,
    stdin: Option<WriteHalf<SimplexStream>>,
    /// Resolves when the message loop sent the status or ended without one.
    status: Option<StatusFuture>,
    /// The status, once the loop ended (the pipes may still hold output).
    ended: Option<Option<Status>>,
    /// The loop failed: the connection to the API server is gone. Reported once
    /// what the pipes still hold was read.
    lost: Option<String>,
}

/// Attach parameters for a capture: stdin for the heartbeat, no TTY (a TTY would
/// mangle the binary pcap stream), big stdout pipe.
pub fn params(container: &str) -> AttachParams {
    AttachParams::default()
        .container(container)
        .stdin(true)
        .stdout(true)
        .stderr(true)
        .tty(false)
        .max_stdout_buf_size(STDOUT_BUFFER)
}

impl PodProcess {
    pub fn new(mut attached: AttachedProcess) -> PodProcess {
        let stdout = attached.stdout();
        let stderr = attached.stderr();
        let stdin = attached.stdin();
        let status = attached.take_status().map(|f| Box::pin(f) as StatusFuture);
        PodProcess {
            attached: Some(attached),
            stdout,
            stderr,
            stdin,
            status,
            ended: None,
            lost: None,
        }
    }

    /// The next chunk; `Ok(None)` once everything, exit status included, was read.
    /// `Err` when the connection to the API server failed (after the output that
    /// arrived before).
    ///
    /// kube-rs's message loop shuts our pipes down when the stream ends, but when the
    /// connection fails it just drops them, which a reader never sees (no EOF). Its
    /// end shows in the status channel, though: closed without a status. On a clean
    /// end the pipes were shut down before; on a failure the loop's result says why.
    pub async fn next(&mut self) -> std::io::Result<Option<Chunk>> {
        loop {
            if let Some(lost) = self.lost.take() {
                if let Some(chunk) = self.buffered() {
                    self.lost = Some(lost);
                    return Ok(Some(chunk));
                }
                self.stdout = None;
                self.stderr = None;
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    lost,
                ));
            }
            if self.stdout.is_none() && self.stderr.is_none() {
                let status = match (self.ended.take(), self.status.take()) {
                    (Some(status), _) => status,
                    (None, Some(future)) => future.await,
                    (None, None) => return Ok(None),
                };
                return Ok(Some(Chunk::Exit(exit_code(status))));
            }
            let mut out = vec![0u8; READ_CHUNK];
            let mut err = vec![0u8; 4096];
            tokio::select! {
                n = read(&mut self.stdout, &mut out) => match n? {
                    0 => self.stdout = None,
                    n => { out.truncate(n); return Ok(Some(Chunk::Stdout(out))); }
                },
                n = read(&mut self.stderr, &mut err) => match n? {
                    0 => self.stderr = None,
                    n => { err.truncate(n); return Ok(Some(Chunk::Stderr(err))); }
                },
                status = wait(&mut self.status) => {
                    self.status = None;
                    if status.is_none() && let Some(e) = self.loop_error().await {
                        self.lost = Some(e);
                        continue;
                    }
                    self.ended = Some(status);
                },
            }
        }
    }

    /// Output already in the pipes, without waiting.
    fn buffered(&mut self) -> Option<Chunk> {
        use futures::FutureExt;
        let mut buf = vec![0u8; READ_CHUNK];
        if let Some(Ok(n @ 1..)) = self
            .stdout
            .as_mut()
            .and_then(|h| h.read(&mut buf).now_or_never())
        {
            buf.truncate(n);
            return Some(Chunk::Stdout(buf));
        }
        if let Some(Ok(n @ 1..)) = self
            .stderr
            .as_mut()
            .and_then(|h| h.read(&mut buf).now_or_never())
        {
            buf.truncate(n);
            return Some(Chunk::Stderr(buf));
        }
        None
    }

    /// The message loop's error, once it ended without a status (it has then, or
    /// is about to: the status sender goes with its stack frame).
    async fn loop_error(&mut self) -> Option<String> {
        let attached = self.attached.take()?;
        match tokio::time::timeout(JOIN_TIMEOUT, attached.join()).await {
            Ok(Err(e)) => Some(format!("the connection to the API server failed: {e}")),
            _ => None,
        }
    }

    pub async fn write_stdin(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.stdin {
            Some(stdin) => {
                stdin.write_all(bytes).await?;
                stdin.flush().await
            }
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        }
    }

    /// End of stdin: the wrapper stops the tool (kube-rs sends the v5 close frame).
    pub async fn close_stdin(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.shutdown().await;
        }
    }
}

async fn wait(status: &mut Option<StatusFuture>) -> Option<Status> {
    match status {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

async fn read(
    half: &mut Option<ReadHalf<SimplexStream>>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match half {
        Some(h) => h.read(buf).await,
        None => std::future::pending().await,
    }
}

/// `Success` -> `None`; `NonZeroExitCode` carries the code in its causes.
fn exit_code(status: Option<Status>) -> Option<(i32, String)> {
    let status = status?;
    if status.status.as_deref() == Some("Success") {
        return None;
    }
    let code = status
        .details
        .and_then(|d| d.causes)
        .into_iter()
        .flatten()
        .find(|c| c.reason.as_deref() == Some("ExitCode"))
        .and_then(|c| c.message)
        .and_then(|m| m.parse().ok())
        .unwrap_or(1);
    // "command terminated with non-zero exit code: error executing command
    // [the whole script ...], exit code N" says nothing the code does not.
    let message = match status.reason.as_deref() {
        Some("NonZeroExitCode") => String::new(),
        _ => status.message.unwrap_or_default(),
    };
    Some((code, message))
}
