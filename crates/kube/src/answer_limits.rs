//! Bounds on what kcap accepts from the API server, whoever answers.
//!
//! kube-rs reads a whole answer into memory before parsing it, and waits for it
//! as long as bytes keep coming (its read timeout is per read, 295 s). A server
//! that is not an API server, or one that lies (an endless body, a
//! `Content-Length` of 4 GB, one byte a second), would then grow kcap without
//! bound or hold it for minutes. This layer, next to the connection, refuses:
//! - an answer, or one event of a watch, longer than [`MAX_ANSWER`] (a watch is
//!   one JSON document per line, so the bound is on the bytes since the last
//!   line break);
//! - an answer whose head does not arrive within [`HEAD_TIMEOUT`] (a real API
//!   server answers in milliseconds), or, unless it is a stream (a watch, or an
//!   exec/attach upgrade that then carries the capture), whose body has not ended
//!   [`ANSWER_TIMEOUT`] after the request.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tower::BoxError;

/// The largest answer (or watch event) read. Lists are read in pages of 500
/// objects ([`crate::paged`]), a few MiB at most; nothing kcap asks for comes
/// near this.
pub const MAX_ANSWER: usize = 64 << 20;
/// How long the head of an answer may take.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole answer (one that is not a stream) may take.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an answer was refused: the text ends up in kcap's error message.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error(
        "the API server's answer to {0} is over {mib} MiB: refused (not an answer a Kubernetes API server gives)",
        mib = MAX_ANSWER >> 20
    )]
    TooLarge(String),
    #[error(
        "the API server did not answer {0} within {secs}s",
        secs = HEAD_TIMEOUT.as_secs()
    )]
    NoAnswer(String),
    #[error(
        "the API server's answer to {0} did not end within {secs}s",
        secs = ANSWER_TIMEOUT.as_secs()
    )]
    TooSlow(String),
    #[error(
        "the API server's list of {0} did not end after {pages} pages: refused",
        pages = crate::paged::MAX_PAGES
    )]
    EndlessList(String),
}

/// The service wrapper (see the module doc).
#[derive(Clone)]
pub struct AnswerLimits<S> {
    inner: S,
}

impl<S> AnswerLimits<S> {
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for AnswerLimits<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    ResBody: Body<Data = Bytes> + Unpin,
    ResBody::Error: Into<BoxError>,
{
    type Response = http::Response<LimitedBody<ResBody>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let what = format!("{} {}", request.method(), request.uri().path());
        let stream = is_stream(&request);
        let answer = self.inner.call(request);
        Box::pin(async move {
            let deadline = Instant::now() + ANSWER_TIMEOUT;
            let response = match tokio::time::timeout(HEAD_TIMEOUT, answer).await {
                Ok(response) => response.map_err(Into::into)?,
                Err(_) => return Err(Refused::NoAnswer(what).into()),
            };
            Ok(response.map(|inner| LimitedBody {
                inner,
                since_line_break: 0,
                deadline: (!stream).then(|| Box::pin(tokio::time::sleep_until(deadline))),
                what,
            }))
        })
    }
}

/// A watch (`?watch=true` or `watch=1`) or a connection upgrade (exec, attach):
/// answers that last as long as the capture.
fn is_stream<B>(request: &http::Request<B>) -> bool {
    let watch = request.uri().query().is_some_and(|q| {
        q.split('&')
            .any(|kv| matches!(kv, "watch=true" | "watch=1" | "watch=True"))
    });
    watch || request.headers().contains_key(http::header::UPGRADE)
}

/// A response body that stops at the limits of [`AnswerLimits`].
pub struct LimitedBody<B> {
    inner: B,
    since_line_break: usize,
    deadline: Option<Pin<Box<Sleep>>>,
    what: String,
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Some(deadline) = &mut this.deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Some(Err(Refused::TooSlow(this.what.clone()).into())));
        }
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = frame.data_ref() {
            this.since_line_break = match data.iter().rposition(|&b| b == b'\n') {
                Some(at) => data.len() - at - 1,
                None => this.since_line_break + data.len(),
            };
            if this.since_line_break > MAX_ANSWER {
                return Poll::Ready(Some(Err(Refused::TooLarge(this.what.clone()).into())));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str) -> http::Request<()> {
        http::Request::get(uri).body(()).unwrap()
    }

    #[test]
    fn watches_and_upgrades_are_streams() {
        assert!(is_stream(&request(
            "/api/v1/pods?watch=true&labelSelector=a"
        )));
        assert!(is_stream(&request("/api/v1/pods?x=1&watch=1")));
        assert!(!is_stream(&request(
            "/api/v1/pods?labelSelector=watch%3Dtrue"
        )));
        assert!(!is_stream(&request("/api/v1/namespaces/a/pods/b")));
        let mut exec = request("/api/v1/namespaces/a/pods/b/exec?command=sh");
        exec.headers_mut()
            .insert(http::header::UPGRADE, "websocket".parse().unwrap());
        assert!(is_stream(&exec));
    }
}
