//! One hop's connection: its byte stream (TCP, or a channel through the previous
//! jump host), the handshake with host key verification, and authentication.

use std::borrow::Cow;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::{Algorithm, EcdsaCurve, HashAlg};
use russh::{Preferred, cipher};

use crate::auth::authenticate;
use crate::error::Error;
use crate::host_keys::{ClientHandler, HandlerState, HostKeyCheck, lock};
use crate::options::ConnectOptions;
use crate::resolve::Hop;

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

/// russh's settings for one hop; `certificates`: ask for a host certificate.
fn client_config(opts: &ConnectOptions, certificates: bool) -> client::Config {
    client::Config {
        window_size: WINDOW_SIZE,
        keepalive_interval: Some(opts.keepalive_interval),
        keepalive_max: KEEPALIVE_MAX,
        nodelay: true,
        preferred: Preferred {
            cipher: Cow::Borrowed(CIPHERS),
            host_key_certificates: Cow::Borrowed(if certificates {
                HOST_CERTIFICATES
            } else {
                &[]
            }),
            ..Preferred::default()
        },
        ..client::Config::default()
    }
}

/// Host certificate types asked for, most preferred first.
const HOST_CERTIFICATES: &[Algorithm] = &[
    Algorithm::Ed25519,
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP256,
    },
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP384,
    },
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP521,
    },
    Algorithm::Rsa {
        hash: Some(HashAlg::Sha512),
    },
    Algorithm::Rsa {
        hash: Some(HashAlg::Sha256),
    },
];

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
    opts: &ConnectOptions,
) -> Result<(Handle<ClientHandler>, Arc<Mutex<HandlerState>>), Error> {
    let check = HostKeyCheck::for_hop(hop)?;
    // Host certificates only where known_hosts has an authority for the host: a
    // server offers its certificate first when asked, as OpenSSH asks then.
    let config = Arc::new(client_config(opts, check.wants_certificate));
    let (handler, state) = ClientHandler::new(check);
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
