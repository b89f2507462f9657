//! Establishing sessions: transport (TCP or a jump tunnel), handshake with host key
//! verification, authentication, and the resulting [`Session`].

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle};
use russh::{Preferred, cipher};

use crate::auth::authenticate;
use crate::error::Error;
use crate::host_keys::{ClientHandler, HandlerState, HostKeyCheck, lock};
use crate::jump::{JumpSession, connect_chain, tunnel};
use crate::options::ConnectOptions;
use crate::process::RemoteProcess;
use crate::resolve::{Hop, resolve};

/// Unanswered keepalives after which the connection counts as lost.
pub const KEEPALIVE_MAX: usize = 3;
/// Per-channel receive window. Larger than russh's 2 MiB default so one round trip
/// can carry enough data for ~1 GB/s on links with some latency.
const WINDOW_SIZE: u32 = 16 * 1024 * 1024;
/// AES-GCM is hardware-accelerated on the CPUs kcap runs on, and far faster than
/// chacha20-poly1305 there.
const CIPHERS: &[cipher::Name] = &[
    cipher::AES_128_GCM,
    cipher::AES_256_GCM,
    cipher::CHACHA20_POLY1305,
    cipher::AES_256_CTR,
    cipher::AES_192_CTR,
    cipher::AES_128_CTR,
];

/// A logged-in SSH connection to the target, possibly through jump hosts.
pub struct Session {
    handle: Handle<ClientHandler>,
    state: Arc<Mutex<HandlerState>>,
    /// Kept alive because the target's connection runs through them; innermost last.
    jumps: Vec<JumpSession>,
    description: String,
}

/// How a hop's byte stream is obtained.
pub(crate) enum Transport<'a> {
    Tcp,
    /// A direct-tcpip channel through this jump session (with its label).
    Via(&'a Handle<ClientHandler>, &'a str),
}

/// Connects to the target of `opts` (through its jump chain) and logs in.
pub async fn connect(opts: &ConnectOptions) -> Result<Session, Error> {
    let (hops, target) = resolve(opts)?;
    let config = Arc::new(client_config(opts));
    let jumps = connect_chain(&hops, &config, opts).await?;
    let transport = match jumps.last() {
        None => Transport::Tcp,
        Some(j) => Transport::Via(&j.handle, &j.label),
    };
    let (handle, state) = connect_hop(&target, transport, config, opts).await?;
    let mut description = format!("{}@{} ({})", target.user, target.alias, target.address());
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

fn client_config(opts: &ConnectOptions) -> client::Config {
    client::Config {
        window_size: WINDOW_SIZE,
        keepalive_interval: Some(opts.keepalive_interval),
        keepalive_max: KEEPALIVE_MAX,
        nodelay: true,
        preferred: Preferred {
            cipher: Cow::Borrowed(CIPHERS),
            ..Preferred::default()
        },
        ..client::Config::default()
    }
}

/// Transport, handshake (bounded by the hop's connect timeout) and authentication
/// of one hop.
pub(crate) async fn connect_hop(
    hop: &Hop,
    transport: Transport<'_>,
    config: Arc<client::Config>,
    opts: &ConnectOptions,
) -> Result<(Handle<ClientHandler>, Arc<Mutex<HandlerState>>), Error> {
    let (handler, state) = ClientHandler::new(HostKeyCheck::for_hop(hop)?);
    let handshake = async {
        match transport {
            Transport::Tcp => {
                let tcp = tokio::net::TcpStream::connect((hop.host.as_str(), hop.port))
                    .await
                    .map_err(|source| Error::Connect {
                        target: hop.label.clone(),
                        address: hop.address(),
                        source,
                    })?;
                // Latency matters for heartbeats and interactive use; throughput is
                // unaffected since SSH writes whole packets.
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!("set_nodelay: {e}");
                }
                client::connect_stream(config, tcp, handler).await
            }
            Transport::Via(via, via_label) => {
                let stream = tunnel(via, via_label, hop).await?;
                client::connect_stream(config, stream, handler).await
            }
        }
    };
    let result = match hop.connect_timeout {
        Some(limit) => tokio::time::timeout(limit, handshake)
            .await
            .map_err(|_| timeout(hop, limit))?,
        None => handshake.await,
    };
    let mut handle = match result {
        Ok(h) => h,
        // A rejected host key surfaces from russh as a generic failure; the precise
        // verdict was parked by the handler.
        Err(e) => return Err(lock(&state).rejected.take().unwrap_or(e)),
    };
    authenticate(&mut handle, hop, opts).await?;
    tracing::debug!("logged in to {} as {}", hop.label, hop.user);
    Ok((handle, state))
}

fn timeout(hop: &Hop, after: Duration) -> Error {
    Error::Timeout {
        target: format!("{} ({})", hop.label, hop.address()),
        after,
    }
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
