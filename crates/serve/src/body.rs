//! The body of `GET /capture.pcapng`: a viewer's subscription as a chunked HTTP
//! body. The capture's end ends it cleanly (the last chunk); a viewer cut off for
//! falling behind gets an error instead, so hyper aborts the connection and the
//! viewer sees a broken transfer, never a stream that looks complete.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};

use crate::hub::{Next, Subscription, ViewerEnd};

pub struct CaptureBody {
    subscription: Subscription,
    peer: String,
    done: bool,
}

impl CaptureBody {
    pub fn new(subscription: Subscription, peer: String) -> CaptureBody {
        CaptureBody {
            subscription,
            peer,
            done: false,
        }
    }
}

impl Body for CaptureBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let next = std::task::ready!(self.subscription.poll_next(cx));
        if let Next::Blocks(blocks) = next {
            return Poll::Ready(Some(Ok(Frame::data(blocks))));
        }
        self.done = true;
        let end = self.subscription.end(&next);
        crate::websocket::log_end(&self.peer, "HTTP", end);
        Poll::Ready(match end {
            ViewerEnd::CutOff { limit } => Some(Err(std::io::Error::other(format!(
                "viewer fell behind by more than {limit} bytes"
            )))),
            _ => None,
        })
    }
}

impl Drop for CaptureBody {
    fn drop(&mut self) {
        if !self.done {
            crate::websocket::log_end(&self.peer, "HTTP", ViewerEnd::Left);
        }
    }
}
