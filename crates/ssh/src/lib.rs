//! kcap's SSH transport: connect to a node (directly or through jump hosts, honouring
//! `~/.ssh/config` and `known_hosts` like OpenSSH), run one command and stream its
//! output home fast.

mod auth;
mod connect;
mod error;
mod hop;
mod host_keys;
mod jump;
mod options;
mod process;
mod proxy;
mod resolve;

pub use connect::{Session, connect};
pub use error::Error;
pub use hop::KEEPALIVE_MAX;
pub use kcap_openssh::destination::Destination;
pub use options::{
    AgentSource, ConnectOptions, PASSPHRASE_ENV, PASSWORD_ENV, PasswordSource, Secret,
};
pub use process::{ExitStatus, Output, RemoteProcess, Stdin};
