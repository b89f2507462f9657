//! `/ws`: the same stream as `/capture.pcapng`, as binary WebSocket messages
//! (one per block batch). The capture's end sends a normal close; a viewer cut
//! off for falling behind gets close code 1008 with the reason.

use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

use crate::hub::{Next, Subscription, ViewerEnd};

/// How long a viewer has to answer our close before the connection is dropped.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

pub async fn stream(upgraded: Upgraded, mut subscription: Subscription, peer: String) {
    let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
    let (mut tx, mut rx) = ws.split();
    let end = loop {
        tokio::select! {
            next = subscription.next() => match next {
                Next::Blocks(blocks) => {
                    if tx.send(Message::Binary(blocks)).await.is_err() {
                        break ViewerEnd::Left;
                    }
                }
                other => break subscription.end(&other),
            },
            // A viewer only ever closes (or pings, which tungstenite answers).
            message = rx.next() => match message {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break ViewerEnd::Left,
                Some(Ok(_)) => {}
            },
        }
    };
    log_end(&peer, "WebSocket", end);
    let frame = match end {
        ViewerEnd::Left => return,
        ViewerEnd::Finished => CloseFrame {
            code: CloseCode::Normal,
            reason: "the capture ended".into(),
        },
        ViewerEnd::CutOff { limit } => CloseFrame {
            code: CloseCode::Policy,
            reason: format!("fell behind by more than {limit} bytes").into(),
        },
    };
    if tx.send(Message::Close(Some(frame))).await.is_ok() {
        // Wait (briefly) for the viewer's close, so our close reaches it.
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            while let Some(Ok(message)) = rx.next().await {
                if message.is_close() {
                    break;
                }
            }
        })
        .await;
    }
    // Only now: the hub's drain waits for this stream until its close is sent.
    drop(subscription);
}

/// One line per viewer that leaves, on kcap's log (stderr).
pub fn log_end(peer: &str, kind: &str, end: ViewerEnd) {
    match end {
        ViewerEnd::Finished => tracing::debug!("viewer {peer} ({kind}): stream complete"),
        ViewerEnd::Left => tracing::info!("viewer {peer} ({kind}) left"),
        ViewerEnd::CutOff { limit } => tracing::warn!(
            "viewer {peer} ({kind}) cut off: it fell behind by more than {limit} bytes \
             (a slow link or a paused reader; --serve-buffer raises the bound)"
        ),
    }
}
