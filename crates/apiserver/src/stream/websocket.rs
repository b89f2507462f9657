//! The WebSocket side of exec/attach: the 101 handshake reply and the session loop that
//! relays channel messages, answers pings at once (kubectl gives up after ~60 s without
//! pongs, even while data flows) and ends with a close frame (code 1000).

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};

use super::channel::{self, Protocol};

pub type Ws = WebSocketStream<TokioIo<Upgraded>>;

pub async fn accept(upgraded: Upgraded) -> Ws {
    let mut config = WebSocketConfig::default();
    // Big messages go out directly instead of being copied into the write buffer.
    config.write_buffer_size = 0;
    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await
}

/// Where client stdin goes, and whether `FF 00` closes it.
pub struct StdinSink {
    pub tx: Option<mpsc::Sender<Bytes>>,
}

/// Relays until the producers are done (`out` closed) or the client goes away. `out`
/// carries complete channel-prefixed messages, the last one being the status.
pub async fn run(
    mut ws: Ws,
    proto: Protocol,
    mut out: mpsc::Receiver<Vec<u8>>,
    mut stdin: StdinSink,
) {
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Binary(data))) => {
                    match (data.first().copied(), data.get(1).copied()) {
                        (Some(channel::STDIN), _) => {
                            if let Some(tx) = &stdin.tx
                                && tx.send(data.slice(1..)).await.is_err()
                            {
                                stdin.tx = None;
                            }
                        }
                        (Some(channel::CLOSE), Some(channel::STDIN)) if proto == Protocol::V5 => {
                            stdin.tx = None;
                        }
                        // Resizes (channel 4) need no action: the runtime's processes have no tty size.
                        _ => {}
                    }
                }
                Some(Ok(Message::Ping(_))) => {
                    // tungstenite queued the pong; make sure it leaves now.
                    if ws.flush().await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            next = out.recv() => match next {
                Some(frame) => {
                    if ws.send(Message::Binary(Bytes::from(frame))).await.is_err() {
                        return;
                    }
                }
                None => break,
            },
        }
    }
    drop(stdin);
    let _ = ws
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        })))
        .await;
    // Give the client a moment to answer the close, then drop the connection.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}
