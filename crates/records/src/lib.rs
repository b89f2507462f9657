//! Requests, not packets: HTTP/1.x exchanges and DNS query/answer pairs decoded
//! from a merged packet stream, as records that serialize to one JSON object each.
//!
//! [`Decoder`] takes packets in time order (any of the link types kcap writes) and
//! hands back finished [`Record`]s; [`Decoder::finish`] writes out what never got
//! an answer. Memory is bounded by [`Limits`]; everything dropped to stay within
//! them is counted in [`Counters`].

mod decoder;
pub mod dns;
pub mod http;
pub mod link;
pub mod record;
pub mod summary;
pub mod tcp;
mod time;

pub use decoder::{Counters, Decoder, Limits, Settings, TcpTrouble};
pub use record::{DnsRecord, HttpRecord, Peer, PeerName, Record};
pub use summary::Summary;
pub use time::rfc3339;

#[cfg(test)]
mod tests;
