//! The remote half of a capture, independent of how kcap reaches the remote host:
//! the BPF filter built from `--port`/`--protocol`/`--filter` ([`filter`]), the quoted
//! shell command that runs tcpdump/tshark/dumpcap there and cleans up after itself
//! ([`command`]), and what the tool's stderr and exit status mean ([`outcome`]).

pub mod command;
pub mod filter;
pub mod outcome;
pub mod quote;

mod error;
pub use error::Error;
