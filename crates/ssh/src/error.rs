//! The one error type of this crate. Each variant is a distinct failure the user can
//! act on differently, so the binary can map it to its own exit code and message.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// TCP connect failed (DNS, refused, unreachable) or a jump host could not open
    /// the forwarded connection to the next hop.
    #[error("cannot connect to {target} ({address})")]
    Connect {
        target: String,
        address: String,
        #[source]
        source: io::Error,
    },
    /// A ProxyCommand could not be started, or ended before the SSH handshake was
    /// done; `stderr` is the end of what it said.
    #[error(
        "ProxyCommand {command:?} for {target} {reason}{}",
        stderr_text(stderr)
    )]
    ProxyCommand {
        target: String,
        /// As configured, before `%` expansion.
        command: String,
        /// e.g. `exited with status 1`, `cannot be started by /bin/sh: ...`.
        reason: String,
        stderr: String,
    },
    /// Something in ssh_config or the options that kcap refuses to do, e.g.
    /// `ProxyUseFdpass yes`, or `--proxy-command` together with `--jump-host`.
    #[error("{0}")]
    Unsupported(String),
    /// The TCP connect or SSH handshake of one hop took longer than allowed.
    #[error("connecting to {target} timed out after {after:?}")]
    Timeout { target: String, after: Duration },
    /// Every authentication method failed; `tried` lists them in order, e.g.
    /// `publickey (agent: 0 keys)`, `publickey (/root/.ssh/id_ed25519)`, `password`.
    #[error("authentication as {user}@{host} failed (tried: {})", tried.join(", "))]
    Auth {
        user: String,
        host: String,
        tried: Vec<String>,
    },
    /// The server's key is in no known_hosts file.
    #[error("host key of {host} is unknown ({algorithm} {fingerprint}); not in {}", known_hosts.display())]
    HostKeyUnknown {
        /// As it would be written in known_hosts, e.g. `[h]:2222`.
        host: String,
        algorithm: String,
        fingerprint: String,
        /// Where `--accept-new-host-key` would record it.
        known_hosts: PathBuf,
    },
    /// known_hosts has a different key for this host: possible man-in-the-middle.
    #[error(
        "HOST KEY OF {host} HAS CHANGED ({algorithm} {fingerprint}); \
         offending entry {}:{line}", file.display()
    )]
    HostKeyChanged {
        host: String,
        algorithm: String,
        fingerprint: String,
        file: PathBuf,
        line: usize,
    },
    /// The server presented a key marked `@revoked`.
    #[error("host key of {host} ({algorithm} {fingerprint}) is revoked in {}:{line}", file.display())]
    HostKeyRevoked {
        host: String,
        algorithm: String,
        fingerprint: String,
        file: PathBuf,
        line: usize,
    },
    /// The server's host certificate is signed by a trusted authority but is not
    /// valid for this connection (expired, wrong host, bad signature, ...).
    #[error("host certificate of {host} ({fingerprint}, signed by {ca}) is refused: {reason}")]
    HostCertificate {
        host: String,
        fingerprint: String,
        ca: String,
        reason: String,
    },
    /// Failure while connecting to or through a jump host; `hop` names it.
    #[error("via jump host {hop}")]
    Jump {
        hop: String,
        #[source]
        source: Box<Error>,
    },
    /// A private key file could not be decrypted (wrong passphrase) or read.
    #[error("cannot use key file {}", path.display())]
    KeyFile {
        path: PathBuf,
        #[source]
        source: russh::keys::Error,
    },
    /// ssh_config or known_hosts could not be read, parsed or written.
    #[error(transparent)]
    Config(#[from] kcap_openssh::Error),
    /// The server refused to run the command (channel request failed).
    #[error("the server refused to run the command")]
    ExecRefused,
    /// Any other SSH protocol failure.
    #[error("ssh protocol error")]
    Protocol(#[source] russh::Error),
    /// The connection went away while a command was running (keepalive timeout,
    /// TCP reset, server gone).
    #[error("connection lost: {reason}")]
    Disconnected { reason: String },
}

impl From<russh::Error> for Error {
    fn from(e: russh::Error) -> Self {
        match e {
            russh::Error::KeepaliveTimeout => Error::Disconnected {
                reason: "no reply to keepalives".into(),
            },
            e => Error::Protocol(e),
        }
    }
}

fn stderr_text(stderr: &str) -> String {
    if stderr.is_empty() {
        " (it wrote nothing to stderr)".into()
    } else {
        format!("; its stderr ends:\n{stderr}")
    }
}

impl Error {
    /// Wraps an error that happened at jump hop `hop`, unless it is already wrapped
    /// (the innermost hop is the interesting one).
    pub(crate) fn at_jump(self, hop: &str) -> Error {
        match self {
            e @ Error::Jump { .. } => e,
            e => Error::Jump {
                hop: hop.to_owned(),
                source: Box::new(e),
            },
        }
    }
}
