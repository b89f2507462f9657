//! `--callback URL`: every record POSTed to a collector as JSON, one object per
//! request or a JSON array of `batch` records, over HTTP or HTTPS (the system's
//! roots plus `--callback-ca`).
//!
//! The capture never waits for the collector. Records go into a bounded queue;
//! a full queue drops the new record and counts it. One request at a time, in
//! order: an error, a timeout, 429 or 5xx is retried with backoff (the same batch,
//! so order holds), other answers are a refusal, counted. At the end kcap gives
//! the queue up to `drain` to empty; what is still undelivered then is counted.
//! [`CallbackReport::lost`] is every record that did not arrive.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Uri, header};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

mod tls;

/// A request that takes longer counts as failed (and is retried).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Backoff between retries: doubling from the first to the last.
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(4);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackOptions {
    pub url: String,
    /// A CA certificate (PEM) to trust besides the system's.
    pub ca: Option<PathBuf>,
    /// Records per request: 1 sends each record as its own JSON object, more
    /// sends a JSON array of up to that many.
    pub batch: usize,
    /// Records the queue holds while the collector is slow or down.
    pub queue: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("--callback {url}: {why}")]
    Url { url: String, why: &'static str },
    #[error("--callback: cannot set up TLS")]
    Tls(#[source] tls::TlsError),
    #[error("--callback: cannot start its thread")]
    Thread(#[source] std::io::Error),
}

/// What became of the records, for the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackReport {
    /// Records the collector accepted (2xx).
    pub delivered: u64,
    /// Requests that failed and were tried again.
    pub retries: u64,
    /// Records dropped because the queue was full.
    pub dropped: u64,
    /// Records the collector refused (an answer other than 2xx, 429 or 5xx).
    pub refused: u64,
    /// Records still queued (or in flight) when the drain time was up.
    pub undelivered: u64,
}

impl CallbackReport {
    pub fn lost(&self) -> u64 {
        self.dropped + self.refused + self.undelivered
    }
}

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    retries: AtomicU64,
    dropped: AtomicU64,
    refused: AtomicU64,
    undelivered: AtomicU64,
}

/// The sender's side; the requests run on a thread of their own.
pub struct Callback {
    tx: mpsc::Sender<Bytes>,
    counters: Arc<Counters>,
    /// The end of the drain, once `finish` set it.
    drain: watch::Sender<Option<Instant>>,
    thread: std::thread::JoinHandle<()>,
}

/// Checks a collector's URL (http:// or https://, with a host).
pub fn check_url(url: &str) -> Result<Uri, CallbackError> {
    let bad = |why| CallbackError::Url {
        url: shown(url),
        why,
    };
    let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad("use http:// or https://")),
    }
    if uri.host().is_none() {
        return Err(bad("no host"));
    }
    Ok(uri)
}

impl Callback {
    pub fn start(options: CallbackOptions) -> Result<Callback, CallbackError> {
        let uri = check_url(&options.url)?;
        let config = tls::client(options.ca.as_deref()).map_err(CallbackError::Tls)?;
        let (tx, rx) = mpsc::channel(options.queue.max(1));
        let counters = Arc::new(Counters::default());
        let (drain, drain_rx) = watch::channel(None);
        let worker = Worker {
            uri,
            batch: options.batch.max(1),
            counters: counters.clone(),
            drain: drain_rx,
        };
        let thread = std::thread::Builder::new()
            .name("kcap-callback".into())
            .spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                runtime.block_on(worker.run(rx, config));
            })
            .map_err(CallbackError::Thread)?;
        Ok(Callback {
            tx,
            counters,
            drain,
            thread,
        })
    }

    /// Queues one record (its JSON); never waits. A full queue drops it, counted.
    pub fn send(&self, record: Bytes) {
        if self.tx.try_send(record).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// No more records: waits up to `drain` for the queue to empty, then counts
    /// what is left.
    pub fn finish(self, drain: Duration) -> CallbackReport {
        let _ = self.drain.send(Some(Instant::now() + drain));
        drop(self.tx);
        let _ = self.thread.join();
        let c = &self.counters;
        CallbackReport {
            delivered: c.delivered.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            undelivered: c.undelivered.load(Ordering::Relaxed),
        }
    }
}

/// A URL as it may be shown: without its query (it may hold a key).
fn shown(url: &str) -> String {
    url.split_once('?')
        .map_or(url, |(base, _)| base)
        .to_string()
}

type HttpClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// Resolves when the drain time set by `finish` has passed.
async fn drain_over(drain: &mut watch::Receiver<Option<Instant>>) {
    loop {
        let deadline = *drain.borrow_and_update();
        match deadline {
            Some(deadline) => return tokio::time::sleep_until(deadline).await,
            None => {
                if drain.changed().await.is_err() {
                    return std::future::pending().await;
                }
            }
        }
    }
}

struct Worker {
    uri: Uri,
    batch: usize,
    counters: Arc<Counters>,
    drain: watch::Receiver<Option<Instant>>,
}

/// How one attempt at a batch went.
enum Attempt {
    Delivered,
    /// Worth trying again (why, for the log).
    Retry(String),
    Refused(http::StatusCode),
}

impl Worker {
    async fn run(
        self,
        mut rx: mpsc::Receiver<Bytes>,
        config: Arc<tokio_rustls::rustls::ClientConfig>,
    ) {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*config).clone())
            .https_or_http()
            .enable_http1()
            .build();
        let client: HttpClient = Client::builder(TokioExecutor::new()).build(connector);
        let mut batch = Vec::with_capacity(self.batch);
        loop {
            if batch.is_empty() {
                match rx.recv().await {
                    Some(record) => batch.push(record),
                    None => return,
                }
                while batch.len() < self.batch {
                    match rx.try_recv() {
                        Ok(record) => batch.push(record),
                        Err(_) => break,
                    }
                }
            }
            if !self.deliver(&client, &batch).await {
                // The drain time is up: this batch and the queue are lost.
                rx.close();
                let mut left = batch.len() as u64;
                while rx.try_recv().is_ok() {
                    left += 1;
                }
                self.counters.undelivered.fetch_add(left, Ordering::Relaxed);
                return;
            }
            batch.clear();
        }
    }

    /// Sends `batch` until it is delivered or refused (true), or the drain time
    /// is up (false).
    async fn deliver(&self, client: &HttpClient, batch: &[Bytes]) -> bool {
        let body = self.body(batch);
        let mut drain = self.drain.clone();
        let mut backoff = BACKOFF_FIRST;
        let mut said = false;
        loop {
            let attempt = tokio::select! {
                attempt = self.attempt(client, body.clone()) => attempt,
                _ = drain_over(&mut drain) => return false,
            };
            match attempt {
                Attempt::Delivered => {
                    let n = batch.len() as u64;
                    self.counters.delivered.fetch_add(n, Ordering::Relaxed);
                    if said {
                        tracing::info!("--callback: the collector takes records again");
                    }
                    return true;
                }
                Attempt::Refused(status) => {
                    tracing::warn!(
                        "--callback: the collector refused {} record(s) with {status}",
                        batch.len()
                    );
                    let n = batch.len() as u64;
                    self.counters.refused.fetch_add(n, Ordering::Relaxed);
                    return true;
                }
                Attempt::Retry(why) => {
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    if !said {
                        tracing::warn!("--callback: {why}; retrying (records wait in the queue)");
                        said = true;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = drain_over(&mut drain) => return false,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    fn body(&self, batch: &[Bytes]) -> Bytes {
        if self.batch == 1 {
            return batch[0].clone();
        }
        let mut body = Vec::with_capacity(batch.iter().map(|r| r.len() + 1).sum::<usize>() + 2);
        body.push(b'[');
        for (i, record) in batch.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(record);
        }
        body.push(b']');
        Bytes::from(body)
    }

    async fn attempt(&self, client: &HttpClient, body: Bytes) -> Attempt {
        let request = Request::post(self.uri.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::USER_AGENT,
                concat!("kcap/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(body))
            .expect("a POST request is valid");
        let response = match tokio::time::timeout(REQUEST_TIMEOUT, client.request(request)).await {
            Err(_) => return Attempt::Retry(format!("no answer within {REQUEST_TIMEOUT:?}")),
            Ok(Err(e)) => return Attempt::Retry(format!("cannot reach the collector ({e})")),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        // Read the answer to its end: the connection can then be used again.
        let _ = tokio::time::timeout(
            REQUEST_TIMEOUT,
            http_body_util::BodyExt::collect(response.into_body()),
        )
        .await;
        if status.is_success() {
            Attempt::Delivered
        } else if status == http::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Attempt::Retry(format!("the collector answered {status}"))
        } else {
            Attempt::Refused(status)
        }
    }
}
