//! A command running on the remote host: its output in arrival order, its stdin and
//! its exit status. Reading and writing are split so one task can drain output while
//! another sends heartbeats to stdin.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use russh::client::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Sig};

use crate::error::Error;
use crate::host_keys::{HandlerState, lock};

/// One piece of what the remote command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exit(ExitStatus),
}

/// How the remote command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    Code(u32),
    /// Killed by a signal; `name` without the `SIG` prefix, e.g. `TERM`.
    Signal {
        name: String,
        core_dumped: bool,
        message: String,
    },
}

/// The reading side of a remote command, plus convenience methods that delegate to
/// its [`Stdin`].
pub struct RemoteProcess {
    rx: ChannelReadHalf,
    stdin: Stdin,
    /// Messages that arrived while we waited for the exec reply.
    pending: VecDeque<ChannelMsg>,
    /// The server closed the channel: the normal end.
    closed: bool,
    state: Arc<Mutex<HandlerState>>,
}

/// The writing side of a remote command: cheap to clone, usable from any task.
#[derive(Clone)]
pub struct Stdin {
    tx: Arc<ChannelWriteHalf<Msg>>,
    state: Arc<Mutex<HandlerState>>,
}

impl RemoteProcess {
    /// Runs `command` on a fresh session channel and waits for the server to accept it.
    pub(crate) async fn start(
        handle: &russh::client::Handle<crate::host_keys::ClientHandler>,
        state: Arc<Mutex<HandlerState>>,
        command: &str,
    ) -> Result<RemoteProcess, Error> {
        let channel = handle.channel_open_session().await?;
        channel.exec(true, command).await?;
        let (mut rx, tx) = channel.split();
        let mut pending = VecDeque::new();
        // Output can race ahead of the exec reply; keep it for `next`.
        loop {
            match rx.wait().await {
                Some(ChannelMsg::Success) => break,
                Some(ChannelMsg::Failure) => return Err(Error::ExecRefused),
                Some(msg) => pending.push_back(msg),
                None => return Err(disconnected(&state)),
            }
        }
        Ok(RemoteProcess {
            rx,
            stdin: Stdin {
                tx: Arc::new(tx),
                state: state.clone(),
            },
            pending,
            closed: false,
            state,
        })
    }

    /// A handle for writing to stdin from another task.
    pub fn stdin(&self) -> Stdin {
        self.stdin.clone()
    }

    /// The next piece of output, stdout and stderr interleaved in arrival order;
    /// `None` once the server closed the channel. A connection lost before that is
    /// [`Error::Disconnected`].
    pub async fn next(&mut self) -> Result<Option<Output>, Error> {
        loop {
            if self.closed {
                return Ok(None);
            }
            let msg = match self.pending.pop_front() {
                Some(m) => m,
                None => match self.rx.wait().await {
                    Some(m) => m,
                    None => return Err(disconnected(&self.state)),
                },
            };
            match msg {
                ChannelMsg::Data { data } => return Ok(Some(Output::Stdout(data.into()))),
                ChannelMsg::ExtendedData { data, ext: 1 } => {
                    return Ok(Some(Output::Stderr(data.into())));
                }
                ChannelMsg::ExitStatus { exit_status } => {
                    return Ok(Some(Output::Exit(ExitStatus::Code(exit_status))));
                }
                ChannelMsg::ExitSignal {
                    signal_name,
                    core_dumped,
                    error_message,
                    ..
                } => {
                    return Ok(Some(Output::Exit(ExitStatus::Signal {
                        name: sig_name(&signal_name),
                        core_dumped,
                        message: error_message,
                    })));
                }
                ChannelMsg::Close => self.closed = true,
                // EOF, window adjustments, replies: nothing for the caller.
                _ => {}
            }
        }
    }

    pub async fn write_stdin(&mut self, data: &[u8]) -> Result<(), Error> {
        self.stdin.write(data).await
    }

    pub async fn close_stdin(&mut self) -> Result<(), Error> {
        self.stdin.close().await
    }
}

impl Stdin {
    /// Writes all of `data`, waiting for window space as needed.
    pub async fn write(&self, data: &[u8]) -> Result<(), Error> {
        self.tx.data(data).await.map_err(|e| self.lost(e))
    }

    /// Sends EOF: the remote command sees its stdin end.
    pub async fn close(&self) -> Result<(), Error> {
        self.tx.eof().await.map_err(|e| self.lost(e))
    }
}

impl Stdin {
    /// A failed send means the session task is gone: report that as a lost link.
    fn lost(&self, e: russh::Error) -> Error {
        match e {
            russh::Error::SendError => disconnected(&self.state),
            e => e.into(),
        }
    }
}

fn sig_name(sig: &Sig) -> String {
    match sig {
        Sig::Custom(name) => name.clone(),
        other => format!("{other:?}"),
    }
}

fn disconnected(state: &Mutex<HandlerState>) -> Error {
    let reason = lock(state)
        .disconnect
        .clone()
        .unwrap_or_else(|| "connection closed".to_owned());
    Error::Disconnected { reason }
}
