//! OpenSSH's own file formats and conventions, independent of any SSH implementation:
//! `[user@]host[:port]` destinations and jump chains, `~/.ssh/config` resolution and
//! `known_hosts` verification (hashed entries, wildcards, markers).

pub mod config;
pub mod destination;
pub mod known_hosts;
mod pattern;

mod error;
pub use error::Error;
