//! exec and attach: the WebSocket handshake (done by hand on top of hyper's upgrade),
//! the channel protocol, and the processes whose stdio they relay.

pub mod attach;
pub mod channel;
pub mod exec;
pub mod websocket;
