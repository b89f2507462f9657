//! The one error type of this crate.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("invalid destination {input:?}: {message}")]
    Destination { input: String, message: String },
    /// A public key that is not `algorithm base64-blob`, or whose blob is damaged.
    #[error("invalid public key: {message}")]
    Key { message: String },
    /// A shell command from ssh_config (`Match exec`, `ProxyCommand`) that kcap
    /// refuses to run: an unknown `%` token, or a value unfit for a shell.
    #[error("{at}: cannot run {command:?}: {message}")]
    Command {
        /// `file:line`, or where the command came from.
        at: String,
        command: String,
        message: String,
    },
    /// Reading random bytes for a known_hosts salt failed.
    #[error("cannot get random bytes")]
    Random(#[source] std::io::Error),
}
