//! Establishing sessions: the jump chain, then the target (see `hop` for one hop's
//! transport, handshake and login), and the resulting [`Session`].

use std::sync::{Arc, Mutex};

use russh::client::Handle;

use crate::error::Error;
use crate::hop::{Transport, connect_hop};
use crate::host_keys::{ClientHandler, HandlerState};
use crate::jump::{JumpSession, connect_chain};
use crate::options::ConnectOptions;
use crate::process::RemoteProcess;
use crate::resolve::resolve;

/// A logged-in SSH connection to the target, possibly through jump hosts.
pub struct Session {
    handle: Handle<ClientHandler>,
    state: Arc<Mutex<HandlerState>>,
    /// Kept alive because the target's connection runs through them; innermost last.
    jumps: Vec<JumpSession>,
    description: String,
}

/// Connects to the target of `opts` (through its jump chain) and logs in.
pub async fn connect(opts: &ConnectOptions) -> Result<Session, Error> {
    // `Match exec` runs commands: keep them off the async workers.
    let resolving = opts.clone();
    let (hops, target) = tokio::task::spawn_blocking(move || resolve(&resolving))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
    let jumps = connect_chain(&hops, opts).await?;
    let transport = match jumps.last() {
        None => Transport::Direct,
        Some(j) => Transport::Via(&j.handle, &j.label),
    };
    let (handle, state) = connect_hop(&target, transport, opts).await?;
    let mut description = format!("{}@{} ({})", target.user, target.alias, target.route());
    if !jumps.is_empty() {
        let via: Vec<&str> = jumps.iter().map(|j| j.label.as_str()).collect();
        description.push_str(&format!(" via {}", via.join(", ")));
    }
    Ok(Session {
        handle,
        state,
        jumps,
        description,
    })
}

impl Session {
    /// E.g. `root@node-a (198.51.100.10:22) via bastion`, for messages.
    pub fn describe(&self) -> String {
        self.description.clone()
    }

    /// Starts `command` (interpreted by the remote user's shell).
    pub async fn exec(&self, command: &str) -> Result<RemoteProcess, Error> {
        RemoteProcess::start(&self.handle, self.state.clone(), command).await
    }

    /// Says goodbye to the target, then to the jump hosts from the inside out.
    pub async fn disconnect(self) {
        let bye = |h: Handle<ClientHandler>| async move {
            let _ = h
                .disconnect(russh::Disconnect::ByApplication, "", "en")
                .await;
        };
        bye(self.handle).await;
        for j in self.jumps.into_iter().rev() {
            bye(j.handle).await;
        }
    }
}
