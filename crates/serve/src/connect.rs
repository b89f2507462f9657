//! `kcap --connect URL`: a viewer of a served capture. The URL's scheme picks the
//! way: `http://…/capture.pcapng` or `https://`, or `ws://…/ws` or `wss://`. The
//! connection runs on a thread of its own and hands its bytes over a bounded
//! channel to a blocking [`std::io::Read`], so kcap reads a served capture with
//! the same reader as a file. Ctrl-C (or SIGTERM) ends the stream like its end
//! ([`Watch::interrupted`] tells them apart).

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::{self, ClientRequestBuilder, Message};

use crate::tls::{self, TlsError};

/// Chunks in flight between the connection and the reader.
const QUEUE: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    pub url: String,
    /// Sent as `Authorization: Bearer`; a `?token=` in the URL works too.
    pub token: Option<String>,
    /// A CA certificate (PEM) to trust besides the system's, for https/wss.
    pub ca: Option<PathBuf>,
    /// For connecting and the server's first answer.
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("--connect {url}: {why}")]
    Url { url: String, why: &'static str },
    #[error("cannot connect to {authority}")]
    Connect {
        authority: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no answer from {authority} within {timeout:?}")]
    Timeout {
        authority: String,
        timeout: Duration,
    },
    #[error("TLS with {authority} failed")]
    Tls {
        authority: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up TLS")]
    TlsConfig(#[source] TlsError),
    #[error("{authority} refused the token (401)")]
    Unauthorized { authority: String },
    #[error("{authority} answered {status} to {path}")]
    Status {
        authority: String,
        path: String,
        status: StatusCode,
    },
    #[error("the HTTP exchange with {authority} failed")]
    Http {
        authority: String,
        #[source]
        source: hyper::Error,
    },
    #[error("the WebSocket handshake with {authority} failed")]
    WebSocket {
        authority: String,
        #[source]
        source: Box<tungstenite::Error>,
    },
    #[error("cannot start the connection's thread")]
    Thread(#[source] std::io::Error),
}

/// A served capture's bytes, read like a file.
pub struct Connection {
    // A std channel: the reader runs inside kcap's own runtime, where a tokio
    // channel may not block.
    rx: std::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
    /// Taken from the channel to see whether it was empty.
    peeked: Option<std::io::Result<Bytes>>,
    watch: Watch,
    /// The stream is done (its end, an error, or Ctrl-C).
    finished: bool,
}

/// What the reader of a [`Connection`] may ask while a parser owns it.
#[derive(Clone, Default)]
pub struct Watch {
    idle: Arc<AtomicBool>,
    interrupted: Arc<AtomicBool>,
}

impl Watch {
    /// Everything received has been read: a reader that would block now should
    /// first pass on what it has (flush its output).
    pub fn is_idle(&self) -> bool {
        self.idle.load(Ordering::Acquire)
    }

    /// The stream ended because of Ctrl-C or SIGTERM, not the capture's end.
    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Acquire)
    }
}

impl Connection {
    /// Connects and waits for the server's answer, so a wrong URL, a refused
    /// token or a capture that has ended fails here, before anything is written.
    pub fn open(options: ConnectOptions) -> Result<Connection, ConnectError> {
        let target = Target::parse(&options.url)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        let watch = Watch::default();
        let flag = watch.interrupted.clone();
        std::thread::Builder::new()
            .name("kcap-connect".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = answer.send(Err(ConnectError::Thread(e)));
                        return;
                    }
                };
                runtime.block_on(run(target, options, tx, answer, flag));
                runtime.shutdown_timeout(Duration::from_millis(100));
            })
            .map_err(ConnectError::Thread)?;
        match answered.recv() {
            Ok(Ok(())) => Ok(Connection {
                rx,
                current: Bytes::new(),
                peeked: None,
                watch,
                finished: false,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ConnectError::Thread(std::io::Error::other(
                "the connection's thread ended",
            ))),
        }
    }

    pub fn watch(&self) -> Watch {
        self.watch.clone()
    }
}

impl Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while !self.current.has_remaining() {
            if self.finished {
                return Ok(0);
            }
            let next = match self.peeked.take() {
                Some(next) => Some(next),
                None => self.rx.recv().ok(),
            };
            match next {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => {
                    self.finished = true;
                    return Err(e);
                }
                None => self.finished = true,
            }
        }
        let n = buf.len().min(self.current.remaining());
        self.current.copy_to_slice(&mut buf[..n]);
        let mut idle = false;
        if !self.current.has_remaining() && self.peeked.is_none() {
            match self.rx.try_recv() {
                Ok(next) => self.peeked = Some(next),
                Err(_) => idle = true,
            }
        }
        self.watch.idle.store(idle, Ordering::Release);
        Ok(n)
    }
}

/// The URL, taken apart.
struct Target {
    websocket: bool,
    tls: bool,
    host: String,
    authority: String,
    uri: Uri,
}

impl Target {
    fn parse(url: &str) -> Result<Target, ConnectError> {
        // Never the query in a message: it may hold the token.
        let shown = url.split_once('?').map_or(url, |(base, _)| base);
        let bad = |why| ConnectError::Url {
            url: shown.to_owned(),
            why,
        };
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let (websocket, tls) = match uri.scheme_str() {
            Some("http") => (false, false),
            Some("https") => (false, true),
            Some("ws") => (true, false),
            Some("wss") => (true, true),
            _ => return Err(bad("use http://, https://, ws:// or wss://")),
        };
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let authority = match host.contains(':') {
            true => format!("[{host}]:{port}"),
            false => format!("{host}:{port}"),
        };
        Ok(Target {
            websocket,
            tls,
            host,
            authority,
            uri,
        })
    }

    fn path(&self) -> String {
        self.uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into())
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Answer = std::sync::mpsc::SyncSender<Result<(), ConnectError>>;
/// Blocking sends: this thread runs nothing but the connection, which waits
/// while the reader is behind (TCP then slows the server's side of it).
type Chunks = std::sync::mpsc::SyncSender<std::io::Result<Bytes>>;

async fn run(
    target: Target,
    options: ConnectOptions,
    tx: Chunks,
    answer: Answer,
    interrupted: Arc<AtomicBool>,
) {
    let connected = tokio::time::timeout(options.timeout, open(&target, &options)).await;
    let stream = match connected {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            let _ = answer.send(Err(e));
            return;
        }
        Err(_) => {
            let _ = answer.send(Err(ConnectError::Timeout {
                authority: target.authority.clone(),
                timeout: options.timeout,
            }));
            return;
        }
    };
    let _ = answer.send(Ok(()));
    let copy = async {
        match stream {
            Opened::Http(body) => copy_http(body, &tx).await,
            Opened::WebSocket(ws) => copy_websocket(*ws, &tx).await,
        }
    };
    tokio::select! {
        result = copy => if let Err(e) = result {
            let _ = tx.send(Err(e));
        },
        _ = interrupt() => interrupted.store(true, Ordering::Release),
    }
}

/// Ctrl-C or SIGTERM.
async fn interrupt() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}

enum Opened {
    Http(hyper::body::Incoming),
    WebSocket(Box<tokio_tungstenite::WebSocketStream<Box<dyn Io>>>),
}

async fn open(target: &Target, options: &ConnectOptions) -> Result<Opened, ConnectError> {
    let io = transport(target, options).await?;
    let authority = target.authority.clone();
    if target.websocket {
        let mut request = ClientRequestBuilder::new(target.uri.clone());
        if let Some(token) = &options.token {
            request = request.with_header("Authorization", format!("Bearer {token}"));
        }
        return match tokio_tungstenite::client_async(request, io).await {
            Ok((ws, _)) => Ok(Opened::WebSocket(Box::new(ws))),
            Err(tungstenite::Error::Http(response)) => Err(refused(target, response.status())),
            Err(source) => Err(ConnectError::WebSocket {
                authority,
                source: Box::new(source),
            }),
        };
    }
    let http = |source| ConnectError::Http {
        authority: authority.clone(),
        source,
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(http)?;
    tokio::spawn(connection);
    let mut request = Request::get(target.path())
        .header(header::HOST, &target.authority)
        .header(
            header::USER_AGENT,
            concat!("kcap/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(token) = &options.token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .expect("a GET request is valid");
    let response = sender.send_request(request).await.map_err(http)?;
    match response.status() {
        StatusCode::OK => Ok(Opened::Http(response.into_body())),
        status => Err(refused(target, status)),
    }
}

fn refused(target: &Target, status: StatusCode) -> ConnectError {
    match status {
        StatusCode::UNAUTHORIZED => ConnectError::Unauthorized {
            authority: target.authority.clone(),
        },
        status => ConnectError::Status {
            authority: target.authority.clone(),
            // Never the query: it may hold the token.
            path: target.uri.path().to_owned(),
            status,
        },
    }
}

async fn transport(target: &Target, options: &ConnectOptions) -> Result<Box<dyn Io>, ConnectError> {
    let tcp = tokio::net::TcpStream::connect(&target.authority)
        .await
        .map_err(|source| ConnectError::Connect {
            authority: target.authority.clone(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    if !target.tls {
        return Ok(Box::new(tcp));
    }
    let config = tls::client(options.ca.as_deref()).map_err(ConnectError::TlsConfig)?;
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from(target.host.clone()).map_err(
        |_| ConnectError::Url {
            url: options.url.clone(),
            why: "the host is not a valid TLS server name",
        },
    )?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|source| ConnectError::Tls {
            authority: target.authority.clone(),
            source,
        })?;
    Ok(Box::new(tls))
}

async fn copy_http(mut body: hyper::body::Incoming, tx: &Chunks) -> std::io::Result<()> {
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(std::io::Error::other)?;
        if let Ok(data) = frame.into_data()
            && tx.send(Ok(data)).is_err()
        {
            return Ok(());
        }
    }
    Ok(())
}

async fn copy_websocket(
    mut ws: tokio_tungstenite::WebSocketStream<Box<dyn Io>>,
    tx: &Chunks,
) -> std::io::Result<()> {
    while let Some(message) = ws.next().await {
        let message = message.map_err(std::io::Error::other)?;
        if let Message::Binary(data) = message {
            if tx.send(Ok(data)).is_err() {
                // The reader is gone: nothing more to do.
                return Ok(());
            }
            continue;
        }
        match message {
            Message::Close(Some(frame))
                if frame.code != tungstenite::protocol::frame::coding::CloseCode::Normal =>
            {
                return Err(std::io::Error::other(format!(
                    "the server closed the stream: {}",
                    frame.reason
                )));
            }
            Message::Close(_) => return Ok(()),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_way_and_the_port() {
        let t = Target::parse("ws://jumpbox:9090/ws").unwrap();
        assert!(t.websocket && !t.tls);
        assert_eq!(t.authority, "jumpbox:9090");
        let t = Target::parse("https://[2001:db8::1]/capture.pcapng?token=abc").unwrap();
        assert!(!t.websocket && t.tls);
        assert_eq!(t.authority, "[2001:db8::1]:443");
        assert_eq!(t.host, "2001:db8::1");
        assert_eq!(t.path(), "/capture.pcapng?token=abc");
        assert!(Target::parse("ftp://x/").is_err());
        assert!(Target::parse("jumpbox:9090").is_err());
    }
}
