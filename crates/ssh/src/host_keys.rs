//! Server host key verification against known_hosts, run from inside russh's
//! handshake. russh only sees "rejected", so the precise verdict is parked in shared
//! state and turned into the right [`Error`] variant after the handshake fails.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use std::time::{SystemTime, UNIX_EPOCH};

use kcap_openssh::known_hosts::{HostKey, KnownHosts, Verdict, principal_matches};
use russh::client;
use russh::keys::ssh_key::certificate::CertType;
use russh::keys::ssh_key::public::KeyData;
use russh::keys::{Certificate, HashAlg, PublicKeyOrCertificate};

use crate::error::Error;
use crate::resolve::{Hop, known_hosts_name};

/// What to check one hop's key against.
pub(crate) struct HostKeyCheck {
    host: String,
    port: u16,
    files: Vec<PathBuf>,
    known: KnownHosts,
    accept_new: bool,
    /// An `@cert-authority` line names this host: ask for a host certificate.
    pub wants_certificate: bool,
}

impl HostKeyCheck {
    pub fn for_hop(hop: &Hop) -> Result<HostKeyCheck, Error> {
        let mut known = KnownHosts::load(&hop.known_hosts_files)?;
        if let Some(revoked) = &hop.revoked_host_keys {
            known.add_revoked_keys(revoked)?;
        }
        // With HostKeyAlias, known_hosts (and a host certificate's principals)
        // know the host by that name, as in OpenSSH.
        let host = hop
            .host_key_alias
            .clone()
            .unwrap_or_else(|| hop.host.clone());
        Ok(HostKeyCheck {
            wants_certificate: known.has_cert_authority(&host, hop.port),
            host,
            port: hop.port,
            files: hop.known_hosts_files.clone(),
            known,
            accept_new: hop.accept_new_host_key,
        })
    }

    /// A host certificate is trusted when an `@cert-authority` line for this host
    /// names its signer, neither is `@revoked`, and it holds (see
    /// `certificate_problem`). Otherwise its key is checked as a plain key, as
    /// OpenSSH does; a revoked key is never accepted.
    fn verify_certificate(&self, cert: &Certificate) -> Result<(), Error> {
        let name = known_hosts_name(&self.host, self.port);
        let (Some(key), Some(ca)) = (key_of(cert.public_key()), key_of(cert.signature_key()))
        else {
            return Err(Error::HostCertificate {
                host: name,
                fingerprint: String::new(),
                ca: String::new(),
                reason: "its keys cannot be read".into(),
            });
        };
        let revoked = |k: &HostKey, file, line| Error::HostKeyRevoked {
            host: name.clone(),
            algorithm: k.algorithm.clone(),
            fingerprint: k.fingerprint(),
            file,
            line,
        };
        if let Some(Verdict::Revoked { file, line }) =
            self.known.check_revoked(&self.host, self.port, &key)
        {
            return Err(revoked(&key, file, line));
        }
        match self.known.check_authority(&self.host, self.port, &ca) {
            Verdict::Trusted => {}
            Verdict::Revoked { file, line } => return Err(revoked(&ca, file, line)),
            Verdict::Unknown | Verdict::Changed { .. } => {
                tracing::debug!(
                    "host certificate of {name} is signed by {}, not trusted for it: \
                     checking its key instead",
                    ca.fingerprint()
                );
                return self.verify(&key);
            }
        }
        match certificate_problem(cert, &self.host) {
            None => Ok(()),
            // OpenSSH then checks the key inside as a plain key; when that is not
            // trusted either, the certificate's problem is the better message.
            Some(reason) => match self.verify(&key) {
                Err(Error::HostKeyUnknown { .. }) => Err(Error::HostCertificate {
                    host: name.clone(),
                    fingerprint: key.fingerprint(),
                    ca: ca.fingerprint(),
                    reason,
                }),
                Err(e) => Err(e),
                Ok(()) => {
                    tracing::warn!(
                        "host certificate of {name} not accepted ({reason}); its key is \
                         trusted as a plain key"
                    );
                    Ok(())
                }
            },
        }
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

/// Why a host certificate from a trusted authority does not hold for `host`, if
/// it does not: not a host certificate, not valid now, a bad signature, `host`
/// not among its principals (none = every host), or critical options.
fn certificate_problem(cert: &Certificate, host: &str) -> Option<String> {
    if cert.cert_type() != CertType::Host {
        return Some("it is a user certificate, not a host certificate".into());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if now < cert.valid_after() {
        return Some(format!(
            "it is not valid yet (for another {}s)",
            cert.valid_after() - now
        ));
    }
    if now >= cert.valid_before() {
        return Some(format!("it expired {}s ago", now - cert.valid_before()));
    }
    let signer = cert.signature_key().fingerprint(HashAlg::Sha256);
    if cert.validate_at(now, [&signer]).is_err() {
        return Some("its signature does not verify".into());
    }
    let principals = cert.valid_principals();
    if !principals.is_empty() && !principals.iter().any(|p| principal_matches(p, host)) {
        return Some(format!("it is for {}, not {host}", principals.join(", ")));
    }
    if let Some(option) = cert.critical_options().keys().next() {
        return Some(format!("it has the critical option {option:?}"));
    }
    None
}

/// A key inside a certificate as a HostKey.
fn key_of(data: &KeyData) -> Option<HostKey> {
    host_key(&russh::keys::PublicKey::new(data.clone(), ""))
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
        let verdict = match server_public_key {
            PublicKeyOrCertificate::Certificate(cert) => self.check.verify_certificate(cert),
            PublicKeyOrCertificate::PublicKey { key, .. } => match host_key(key) {
                Some(key) => self.check.verify(&key),
                None => return Ok(false),
            },
        };
        match verdict {
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
