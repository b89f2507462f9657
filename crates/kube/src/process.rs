//! A capture process running in a pod (exec or attach), seen like an SSH remote
//! process: stdout and stderr chunks, then the exit code, and a stdin for the
//! heartbeat. stdout and stderr are read together, because kube-rs's message loop
//! stalls when either pipe is full (tcpdump's banner goes to stderr).

use std::future::Future;
use std::pin::Pin;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{AttachParams, AttachedProcess};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, SimplexStream, WriteHalf};

/// kube-rs's stdout pipe defaults to 1 KiB, a few packets: raise it so a busy pod
/// streams in large reads.
pub const STDOUT_BUFFER: usize = 1 << 20;
const READ_CHUNK: usize = 64 << 10;

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
    _attached: AttachedProcess,
    stdout: Option<ReadHalf<SimplexStream>>,
    stderr: Option<ReadHalf<SimplexStream>>,
    stdin: Option<WriteHalf<SimplexStream>>,
    status: Option<StatusFuture>,
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
            _attached: attached,
            stdout,
            stderr,
            stdin,
            status,
        }
    }

    /// The next chunk; `Ok(None)` once everything, exit status included, was read.
    pub async fn next(&mut self) -> std::io::Result<Option<Chunk>> {
        loop {
            if self.stdout.is_none() && self.stderr.is_none() {
                return Ok(match self.status.take() {
                    Some(status) => Some(Chunk::Exit(exit_code(status.await))),
                    None => None,
                });
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
            }
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
    Some((code, status.message.unwrap_or_default()))
}
