//! One hop's connection: its byte stream (TCP, or a channel through the previous
//! jump host), the handshake with host key verification, and authentication.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle};

use crate::auth::authenticate;
use crate::error::Error;
use crate::host_keys::{ClientHandler, HandlerState, HostKeyCheck, lock};
use crate::options::ConnectOptions;
use crate::resolve::Hop;

/// How a hop's byte stream is obtained.
pub(crate) enum Transport<'a> {
    Tcp,
    /// A direct-tcpip channel through this jump session (with its label).
    Via(&'a Handle<ClientHandler>, &'a str),
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

/// Asks `via` to open a TCP connection to `hop` and returns it as a byte stream.
pub(crate) async fn tunnel(
    via: &Handle<ClientHandler>,
    via_label: &str,
    hop: &Hop,
) -> Result<russh::ChannelStream<russh::client::Msg>, Error> {
    // The originator address is informational; OpenSSH sends the loopback too.
    let channel = via
        .channel_open_direct_tcpip(hop.host.clone(), u32::from(hop.port), "127.0.0.1", 0)
        .await
        .map_err(|e| Error::Connect {
            target: hop.label.clone(),
            address: format!("{} via {via_label}", hop.address()),
            source: io::Error::other(e),
        })?;
    Ok(channel.into_stream())
}
