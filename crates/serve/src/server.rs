//! The server: bound before the capture starts (a taken port fails at once), run
//! on a thread of its own so viewers never compete with the capture's
//! connections, and stopped after the capture: every viewer's stream is ended
//! and given a bounded time to drain.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

use crate::hub::{Hub, Status};
use crate::routes::Routes;
use crate::tls::{self, TlsError};

/// What `--serve` and its companions asked for.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub addr: SocketAddr,
    /// Required off loopback (the caller generates one when not given).
    pub token: Option<String>,
    /// PEM certificate chain and key: serve HTTPS and WSS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Bytes a viewer may fall behind before it is cut off.
    pub buffer: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up TLS for --serve")]
    Tls(#[source] TlsError),
    #[error("cannot start the server's thread")]
    Thread(#[source] std::io::Error),
}

/// What serving amounted to, for the summary.
#[derive(Debug, Clone)]
pub struct ServeReport {
    pub status: Status,
    /// Viewers still connected when the drain time was up (their streams were cut).
    pub not_drained: usize,
}

pub struct Server {
    hub: Arc<Hub>,
    local: SocketAddr,
    tls: bool,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn bind(options: ServeOptions) -> Result<Server, BindError> {
        let tls = options
            .tls
            .as_ref()
            .map(|(cert, key)| tls::server(cert, key))
            .transpose()
            .map_err(BindError::Tls)?;
        let listen = |source| BindError::Listen {
            addr: options.addr,
            source,
        };
        let listener = TcpListener::bind(options.addr).map_err(listen)?;
        listener.set_nonblocking(true).map_err(listen)?;
        let local = listener.local_addr().map_err(listen)?;
        let hub = Hub::new(options.buffer);
        let (scheme, ws) = match tls {
            Some(_) => ("https", "wss"),
            None => ("http", "ws"),
        };
        let shown = shown_address(local);
        let routes = Arc::new(Routes {
            hub: hub.clone(),
            token: options.token,
            base: format!("{scheme}://{shown}"),
            websocket_base: format!("{ws}://{shown}"),
        });
        let (shutdown, stopped) = oneshot::channel();
        let is_tls = tls.is_some();
        let thread = std::thread::Builder::new()
            .name("kcap-serve".into())
            .spawn(move || run(listener, routes, tls, stopped))
            .map_err(BindError::Thread)?;
        Ok(Server {
            hub,
            local,
            tls: is_tls,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    pub fn hub(&self) -> Arc<Hub> {
        self.hub.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The stream's two URLs: over HTTP and over WebSocket.
    pub fn urls(&self) -> (String, String) {
        let shown = shown_address(self.local);
        match self.tls {
            true => (
                format!("https://{shown}/capture.pcapng"),
                format!("wss://{shown}/ws"),
            ),
            false => (
                format!("http://{shown}/capture.pcapng"),
                format!("ws://{shown}/ws"),
            ),
        }
    }

    /// Ends every stream (if the capture did not already), waits up to `drain`
    /// for the viewers to take what they have queued, then stops the server.
    pub fn finish(mut self, drain: Duration) -> ServeReport {
        self.hub.end();
        let not_drained = self.hub.wait_for_viewers(drain);
        self.stop();
        ServeReport {
            status: self.hub.status(),
            not_drained,
        }
    }

    fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.hub.end();
        self.stop();
    }
}

/// An unspecified address (`0.0.0.0`) is shown as this machine's loopback
/// address, which at least works from here.
fn shown_address(local: SocketAddr) -> String {
    let ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, local.port()).to_string()
}

fn run(
    listener: TcpListener,
    routes: Arc<Routes>,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    stopped: oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return tracing::error!("--serve: cannot start its runtime: {e}"),
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(e) => return tracing::error!("--serve: cannot listen: {e}"),
        };
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        tokio::pin!(stopped);
        loop {
            let (tcp, peer) = tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, do not spin.
                        tracing::warn!("--serve: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let open = routes.hub.open_connection();
            let routes = routes.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                connection(tcp, peer, routes, acceptor).await;
                drop(open);
            });
        }
    });
    // Connections still open (past the drain time) are dropped with the runtime.
    runtime.shutdown_timeout(Duration::from_millis(100));
}

async fn connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    routes: Arc<Routes>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
) {
    let service = service_fn(move |request| {
        let response = routes.answer(request, peer);
        async move { Ok::<_, std::convert::Infallible>(response) }
    });
    let served = match acceptor {
        None => {
            http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades()
                .await
        }
        Some(acceptor) => match acceptor.accept(tcp).await {
            Ok(tls) => {
                http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .with_upgrades()
                    .await
            }
            Err(e) => return tracing::info!("viewer {peer}: TLS handshake failed: {e}"),
        },
    };
    if let Err(e) = served {
        tracing::debug!("viewer {peer}: connection ended: {e}");
    }
}
