//! Live capture sharing: `kcap --serve` and `kcap --connect`.
//!
//! - [`hub`]: the fan-out. The capture writes pcapng blocks into it once; every
//!   viewer gets a complete preamble (section header, interfaces, names) when it
//!   joins and then the same blocks from that moment, through a bounded buffer of
//!   its own. A viewer that falls behind is cut off; the capture never waits.
//! - [`server`]: the HTTP(S) server on its own thread: `GET /capture.pcapng`
//!   (chunked), `/ws` (WebSocket, binary messages), `/` and `/status`, with a
//!   bearer token off loopback ([`routes`]).
//! - [`connect`]: the other end, a viewer that reads a served capture (HTTP or
//!   WebSocket) as a blocking byte stream, so the rest of kcap reads it like a file.
//!
//! This crate knows nothing of packets: bytes in, bytes out, already block-aligned.

pub mod connect;
pub mod hub;
pub mod server;

mod body;
mod routes;
mod tls;
mod websocket;

pub use connect::{ConnectError, ConnectOptions, Connection, Watch};
pub use hub::{Hub, Status, TargetStatus, ViewerEnd};
pub use server::{BindError, ServeOptions, ServeReport, Server};
