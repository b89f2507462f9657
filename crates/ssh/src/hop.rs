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
    /// TCP, or the hop's ProxyCommand if it has one.
    Direct,
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
    let mut proxy_watch = None;
    let handshake = async {
        match transport {
            Transport::Direct => match &hop.proxy {
                Some(proxy) => {
                    let shell = kcap_openssh::config::user_shell();
                    let (stream, watch) =
                        crate::proxy::spawn(&shell, &proxy.line).map_err(|e| {
                            Error::ProxyCommand {
                                target: hop.label.clone(),
                                command: proxy.command.clone(),
                                reason: format!("cannot be started by {}: {e}", shell.display()),
                                stderr: String::new(),
                            }
                        })?;
                    tracing::debug!(
                        "ProxyCommand for {} runs as pid {}: {}",
                        hop.label,
                        watch.pid(),
                        proxy.line
                    );
                    proxy_watch = Some(watch);
                    client::connect_stream(config, stream, handler).await
                }
                None => {
                    let tcp = tokio::net::TcpStream::connect((hop.host.as_str(), hop.port))
                        .await
                        .map_err(|source| Error::Connect {
                            target: hop.label.clone(),
                            address: hop.address(),
                            source,
                        })?;
                    // Latency matters for heartbeats and interactive use; throughput
                    // is unaffected since SSH writes whole packets.
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!("set_nodelay: {e}");
                    }
                    client::connect_stream(config, tcp, handler).await
                }
            },
            Transport::Via(via, via_label) => {
                let stream = tunnel(via, via_label, hop).await?;
                client::connect_stream(config, stream, handler).await
            }
        }
    };
    let result = match hop.connect_timeout {
        Some(limit) => tokio::time::timeout(limit, handshake).await.ok(),
        None => Some(handshake.await),
    };
    // A proxy command that ended by itself is the reason, whatever russh saw (an
    // EOF, a timeout while it hung on its way out).
    // (Not when the host key was refused: the command is fine, just killed.)
    let failed = !matches!(result, Some(Ok(_))) && lock(&state).rejected.is_none();
    if let (true, Some(watch)) = (failed, proxy_watch.as_mut())
        && let Some(reason) = watch.ended(Duration::from_secs(1)).await
    {
        return Err(Error::ProxyCommand {
            target: hop.label.clone(),
            command: hop
                .proxy
                .as_ref()
                .map(|p| p.command.clone())
                .unwrap_or_default(),
            reason,
            stderr: watch.stderr(Duration::from_secs(1)).await,
        });
    }
    let Some(result) = result else {
        return Err(timeout(hop, hop.connect_timeout.unwrap_or_default()));
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
        target: format!("{} ({})", hop.label, hop.route()),
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
