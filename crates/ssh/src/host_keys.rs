//! Server host key verification against known_hosts, run from inside russh's
//! handshake. russh only sees "rejected", so the precise verdict is parked in shared
//! state and turned into the right [`Error`] variant after the handshake fails.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use kcap_openssh::known_hosts::{HostKey, KnownHosts, Verdict};
use russh::client;
use russh::keys::PublicKeyOrCertificate;

use crate::error::Error;
use crate::resolve::{Hop, known_hosts_name};

/// What to check one hop's key against.
pub(crate) struct HostKeyCheck {
    host: String,
    port: u16,
    files: Vec<PathBuf>,
    known: KnownHosts,
    accept_new: bool,
}

impl HostKeyCheck {
    pub fn for_hop(hop: &Hop) -> Result<HostKeyCheck, Error> {
        Ok(HostKeyCheck {
            host: hop.host.clone(),
            port: hop.port,
            files: hop.known_hosts_files.clone(),
            known: KnownHosts::load(&hop.known_hosts_files)?,
            accept_new: hop.accept_new_host_key,
        })
    }

    /// Ok(()) if the key may be used; otherwise the error to report.
    fn verify(&self, key: &HostKey) -> Result<(), Error> {
        let host = known_hosts_name(&self.host, self.port);
        match self.known.check(&self.host, self.port, key) {
            Verdict::Trusted => Ok(()),
            Verdict::Unknown => {
                let first = self.files.first().cloned().unwrap_or_default();
                if !self.accept_new {
                    return Err(Error::HostKeyUnknown {
                        host,
                        algorithm: key.algorithm.clone(),
                        fingerprint: key.fingerprint(),
                        known_hosts: first,
                    });
                }
                KnownHosts::append(&first, &self.host, self.port, key)?;
                tracing::warn!(
                    "permanently added {host} ({} {}) to {}",
                    key.algorithm,
                    key.fingerprint(),
                    first.display()
                );
                Ok(())
            }
            Verdict::Changed { file, line } => Err(Error::HostKeyChanged {
                host,
                algorithm: key.algorithm.clone(),
                fingerprint: key.fingerprint(),
                file,
                line,
            }),
            Verdict::Revoked { file, line } => Err(Error::HostKeyRevoked {
                host,
                algorithm: key.algorithm.clone(),
                fingerprint: key.fingerprint(),
                file,
                line,
            }),
        }
    }
}

/// Shared between the russh handler and the code that drives the connection.
#[derive(Default)]
pub(crate) struct HandlerState {
    /// Why the host key was rejected, if it was.
    pub rejected: Option<Error>,
    /// Why the session ended, if russh told us.
    pub disconnect: Option<String>,
}

/// The russh client handler of one hop.
pub(crate) struct ClientHandler {
    check: HostKeyCheck,
    state: Arc<Mutex<HandlerState>>,
}

impl ClientHandler {
    pub fn new(check: HostKeyCheck) -> (ClientHandler, Arc<Mutex<HandlerState>>) {
        let state = Arc::new(Mutex::new(HandlerState::default()));
        (
            ClientHandler {
                check,
                state: state.clone(),
            },
            state,
        )
    }

    fn park(&self, e: Error) {
        lock(&self.state).rejected = Some(e);
    }
}

pub(crate) fn lock(state: &Mutex<HandlerState>) -> std::sync::MutexGuard<'_, HandlerState> {
    // A poisoned lock only means another thread panicked mid-update of plain data.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// `ssh-ed25519 AAAA...` -> HostKey, the form kcap-openssh works with.
pub(crate) fn host_key(key: &russh::keys::PublicKey) -> Option<HostKey> {
    let text = key.to_openssh().ok()?;
    let mut parts = text.split_whitespace();
    Some(HostKey {
        algorithm: parts.next()?.to_owned(),
        base64: parts.next()?.to_owned(),
    })
}

impl client::Handler for ClientHandler {
    type Error = Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // We never advertise certificate host key algorithms, so a certificate here
        // is unexpected and rejected.
        let PublicKeyOrCertificate::PublicKey { key, .. } = server_public_key else {
            return Ok(false);
        };
        let Some(key) = host_key(key) else {
            return Ok(false);
        };
        match self.check.verify(&key) {
            Ok(()) => Ok(true),
            Err(e) => {
                self.park(e);
                Ok(false)
            }
        }
    }

    async fn disconnected(
        &mut self,
        reason: client::DisconnectReason<Self::Error>,
    ) -> Result<(), Self::Error> {
        let text = match &reason {
            client::DisconnectReason::ReceivedDisconnect(info) => {
                format!("server disconnected: {}", info.message)
            }
            client::DisconnectReason::Error(Error::Disconnected { reason }) => reason.clone(),
            client::DisconnectReason::Error(e) => e.to_string(),
        };
        lock(&self.state).disconnect = Some(text);
        match reason {
            client::DisconnectReason::ReceivedDisconnect(_) => Ok(()),
            client::DisconnectReason::Error(e) => Err(e),
        }
    }
}
