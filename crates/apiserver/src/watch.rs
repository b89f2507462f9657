//! `?watch=true`: a chunked stream of `{"type":..., "object":...}` lines, starting from
//! the current state (no or zero resourceVersion) or from the history after a given one,
//! ending at `timeoutSeconds`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::{Event, Store};

pub struct WatchRequest {
    pub resource: &'static str,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub from: Option<u64>,
    pub timeout: Duration,
    pub table: bool,
    pub bookmarks: bool,
}

/// A response body fed from a channel, so handlers can stream.
pub struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        self.rx
            .poll_recv(cx)
            .map(|o| o.map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

fn line(kind: &str, object: Value) -> Bytes {
    let mut s = json!({"type": kind, "object": object}).to_string();
    s.push('\n');
    Bytes::from(s)
}

pub fn start(store: &Store, req: WatchRequest) -> Result<BoxBody<Bytes, Infallible>, ApiError> {
    let start = store.watch(req.resource, req.namespace.as_deref(), req.from)?;
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let req = Arc::new(req);
    tokio::spawn(async move {
        let encode = |ev: &Event| -> Option<Bytes> {
            let o = &ev.object;
            if !(req.labels.matches(o) && req.fields.matches(o)) {
                return None;
            }
            let object = if req.table {
                crate::table::table(req.resource, std::slice::from_ref(o), ev.rv)
            } else {
                o.clone()
            };
            Some(line(ev.kind.as_str(), object))
        };
        let deadline = tokio::time::sleep(req.timeout);
        tokio::pin!(deadline);
        for ev in &start.backlog {
            if let Some(b) = encode(ev)
                && tx.send(b).await.is_err()
            {
                return;
            }
        }
        let mut feed = start.feed;
        let mut last_rv = start.backlog.last().map(|e| e.rv).unwrap_or(0);
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        tick.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = tick.tick(), if req.bookmarks => {
                    let kind = crate::discovery::RESOURCES.iter().find(|r| r.plural == req.resource);
                    let (k, v) = kind.map(|r| (r.kind, r.api_version())).unwrap_or(("", "v1"));
                    let bm = json!({"kind": k, "apiVersion": v, "metadata": {"resourceVersion": last_rv.max(1).to_string()}});
                    if tx.send(line("BOOKMARK", bm)).await.is_err() { return }
                }
                ev = feed.recv() => match ev {
                    Ok(ev) => {
                        if ev.resource != req.resource
                            || req.namespace.as_deref().is_some_and(|ns| ns != ev.namespace)
                        {
                            continue;
                        }
                        last_rv = ev.rv;
                        if let Some(b) = encode(&ev)
                            && tx.send(b).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // We lost events: tell the client to start over, as the real one does.
                        let st = ApiError::new(410, "Expired", "watch fell behind; relist").to_status();
                        let _ = tx.send(line("ERROR", st)).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    Ok(ChannelBody { rx }.boxed())
}
