//! User authentication in OpenSSH's order: agent keys, then key files, then a
//! password (or keyboard-interactive answered with that password). Every attempt is
//! recorded so a failure can say exactly what was tried. Secrets are never logged.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use russh::client::{AuthResult, Handle, KeyboardInteractiveAuthResponse};
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{Certificate, HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use russh::{MethodKind, MethodSet};

use crate::error::Error;
use crate::host_keys::ClientHandler;
use crate::options::{AgentSource, ConnectOptions, PasswordSource, Secret};
use crate::resolve::Hop;

type Session = Handle<ClientHandler>;

/// Logs in as `hop.user` or fails with [`Error::Auth`] listing what was tried.
pub(crate) async fn authenticate(
    session: &mut Session,
    hop: &Hop,
    opts: &ConnectOptions,
) -> Result<(), Error> {
    let mut auth = Attempts {
        session,
        hop,
        tried: Vec::new(),
        methods: MethodSet::empty(),
        rsa_hash: None,
    };
    // "none" tells us which methods the server accepts (and rarely, logs us in).
    let none = auth.session.authenticate_none(&hop.user).await?;
    if auth.record(none) {
        return Ok(());
    }
    if auth.allows(MethodKind::PublicKey) {
        // Servers without rsa-sha2 support still need SHA-1 signatures for RSA keys.
        auth.rsa_hash = auth.session.best_supported_rsa_hash().await?.flatten();
        if auth.agent(&opts.agent).await? || auth.key_files(opts).await? {
            return Ok(());
        }
    }
    if auth.password(&opts.password).await? {
        return Ok(());
    }
    Err(Error::Auth {
        user: hop.user.clone(),
        host: hop.label.clone(),
        tried: auth.tried,
    })
}

struct Attempts<'a> {
    session: &'a mut Session,
    hop: &'a Hop,
    tried: Vec<String>,
    /// What the server still accepts, from its last failure reply.
    methods: MethodSet,
    rsa_hash: Option<HashAlg>,
}

impl Attempts<'_> {
    /// True on success; on failure remembers the methods the server still allows.
    fn record(&mut self, result: AuthResult) -> bool {
        match result {
            AuthResult::Success => true,
            AuthResult::Failure {
                remaining_methods, ..
            } => {
                self.methods = remaining_methods;
                false
            }
        }
    }

    fn allows(&self, method: MethodKind) -> bool {
        self.methods.contains(&method)
    }

    async fn agent(&mut self, source: &AgentSource) -> Result<bool, Error> {
        let AgentSource::Socket(path) = source else {
            return Ok(false);
        };
        // IdentitiesOnly limits agent keys to the configured files, as in OpenSSH.
        let only: Option<Vec<PublicKey>> = (self.hop.identities_only).then(|| {
            self.hop
                .identity_files
                .iter()
                .filter_map(|f| public_key_of(f))
                .collect()
        });
        let mut agent = match AgentClient::connect_uds(path).await {
            Ok(a) => a,
            Err(e) => {
                self.tried
                    .push(format!("publickey (agent {}: {e})", path.display()));
                return Ok(false);
            }
        };
        let identities = match agent.request_identities().await {
            Ok(ids) => ids,
            Err(e) => {
                self.tried.push(format!("publickey (agent: {e})"));
                return Ok(false);
            }
        };
        let certificates: Vec<Certificate> = identities
            .iter()
            .filter_map(|id| match id {
                AgentIdentity::Certificate { certificate, .. } => Some(certificate.clone()),
                AgentIdentity::PublicKey { .. } => None,
            })
            .filter(|c| match &only {
                Some(allowed) => allowed.iter().any(|a| a.key_data() == c.public_key()),
                None => true,
            })
            .collect();
        let keys: Vec<PublicKey> = identities
            .iter()
            .filter_map(|id| match id {
                AgentIdentity::PublicKey { key, .. } => Some(key.clone()),
                AgentIdentity::Certificate { .. } => None,
            })
            .filter(|k| match &only {
                Some(allowed) => allowed.iter().any(|a| a.key_data() == k.key_data()),
                None => true,
            })
            .collect();
        self.tried.push(if certificates.is_empty() {
            format!("publickey (agent: {} keys)", keys.len())
        } else {
            format!(
                "publickey (agent: {} keys, {} certificates)",
                keys.len(),
                certificates.len()
            )
        });
        for cert in certificates {
            let hash = cert.algorithm().is_rsa().then_some(self.rsa_hash).flatten();
            match self
                .session
                .authenticate_certificate_with(&self.hop.user, cert, hash, &mut agent)
                .await
            {
                Ok(r) => {
                    if self.record(r) {
                        return Ok(true);
                    }
                }
                Err(e) => tracing::debug!("agent could not sign: {e}"),
            }
        }
        for key in keys {
            let hash = self.hash_for(&key);
            match self
                .session
                .authenticate_publickey_with(&self.hop.user, key, hash, &mut agent)
                .await
            {
                Ok(r) => {
                    if self.record(r) {
                        return Ok(true);
                    }
                }
                // The agent refused to sign (e.g. confirmation denied): next key.
                Err(e) => tracing::debug!("agent could not sign: {e}"),
            }
        }
        Ok(false)
    }

    fn hash_for(&self, key: &PublicKey) -> Option<HashAlg> {
        key.algorithm().is_rsa().then_some(self.rsa_hash).flatten()
    }

    async fn key_files(&mut self, opts: &ConnectOptions) -> Result<bool, Error> {
        for (i, path) in self.hop.identity_files.iter().enumerate() {
            if !self.allows(MethodKind::PublicKey) {
                break;
            }
            let explicit = i < self.hop.explicit_identities;
            let Some(key) = self.load_key(path, explicit, opts)? else {
                continue;
            };
            let key = Arc::new(key);
            // Certificates for this key first, as OpenSSH offers them.
            for (cert_path, cert) in self.certificates_for(path, key.public_key()) {
                self.tried
                    .push(format!("publickey ({})", cert_path.display()));
                let result = self
                    .session
                    .authenticate_openssh_cert(&self.hop.user, key.clone(), cert)
                    .await?;
                if self.record(result) {
                    return Ok(true);
                }
                if !self.allows(MethodKind::PublicKey) {
                    return Ok(false);
                }
            }
            self.tried.push(format!("publickey ({})", path.display()));
            let hash = self.hash_for(key.public_key());
            let key = PrivateKeyWithHashAlg::new(key, hash);
            let result = self
                .session
                .authenticate_publickey(&self.hop.user, key)
                .await?;
            if self.record(result) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// User certificates of `public`: `KEY-cert.pub` next to the key file, then
    /// the hop's `CertificateFile`s, those that certify this very key. A named
    /// certificate that cannot be read is noted in `tried`.
    fn certificates_for(
        &mut self,
        key_path: &Path,
        public: &PublicKey,
    ) -> Vec<(PathBuf, Certificate)> {
        let mut next_to = key_path.as_os_str().to_owned();
        next_to.push("-cert.pub");
        let next_to = PathBuf::from(next_to);
        let mut found = Vec::new();
        let candidates = std::iter::once((next_to, false))
            .chain(self.hop.certificate_files.iter().map(|p| (p.clone(), true)));
        for (path, explicit) in candidates {
            if found.iter().any(|(p, _)| p == &path) {
                continue;
            }
            match Certificate::read_file(&path) {
                Ok(cert) if cert.public_key() == public.key_data() => found.push((path, cert)),
                Ok(_) => {}
                // `none` and missing files are skipped quietly, like OpenSSH.
                Err(_) if !explicit || !path.exists() => {}
                Err(e) => self
                    .tried
                    .push(format!("publickey ({}: {e})", path.display())),
            }
        }
        found
    }

    /// Loads and if needed decrypts a key. Problems that merely make the key
    /// unusable are recorded and skipped; a wrong passphrase is an error because
    /// the user asked for that key and should learn the passphrase was wrong.
    fn load_key(
        &mut self,
        path: &Path,
        explicit: bool,
        opts: &ConnectOptions,
    ) -> Result<Option<PrivateKey>, Error> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                if explicit || e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("cannot read key {}: {e}", path.display());
                    self.tried
                        .push(format!("publickey ({}: {e})", path.display()));
                }
                return Ok(None);
            }
        };
        match russh::keys::decode_secret_key(&text, None) {
            Ok(k) => return Ok(Some(k)),
            Err(russh::keys::Error::KeyIsEncrypted) => {}
            Err(e) => {
                tracing::warn!("cannot use key {}: {e}", path.display());
                self.tried
                    .push(format!("publickey ({}: {e})", path.display()));
                return Ok(None);
            }
        }
        let passphrase = match &opts.key_passphrase {
            Some(p) => p.clone(),
            None => match ask(&format!("Enter passphrase for key '{}': ", path.display())) {
                Some(p) => p,
                None => {
                    self.tried.push(format!(
                        "publickey ({}: encrypted, no passphrase available)",
                        path.display()
                    ));
                    return Ok(None);
                }
            },
        };
        russh::keys::decode_secret_key(&text, Some(passphrase.expose()))
            .map(Some)
            .map_err(|source| Error::KeyFile {
                path: path.to_owned(),
                source,
            })
    }

    async fn password(&mut self, source: &PasswordSource) -> Result<bool, Error> {
        let (attempts, given) = match source {
            PasswordSource::Never => return Ok(false),
            PasswordSource::Env(p) => (1, Some(p.clone())),
            // Three tries, like OpenSSH's NumberOfPasswordPrompts.
            PasswordSource::Prompt => (3, None),
        };
        let use_password = self.allows(MethodKind::Password);
        if !use_password && !self.allows(MethodKind::KeyboardInteractive) {
            return Ok(false);
        }
        let prompt = format!("{}@{}'s password: ", self.hop.user, self.hop.host);
        for _ in 0..attempts {
            let Some(password) = given.clone().or_else(|| ask(&prompt)) else {
                return Ok(false);
            };
            let ok = if use_password {
                self.tried.push("password".into());
                let r = self
                    .session
                    .authenticate_password(&self.hop.user, password.expose())
                    .await?;
                self.record(r)
            } else {
                self.tried.push("keyboard-interactive".into());
                self.keyboard_interactive(&password).await?
            };
            if ok {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Answers every hidden-input prompt with the password (how PAM asks for it).
    async fn keyboard_interactive(&mut self, password: &Secret) -> Result<bool, Error> {
        let mut reply = self
            .session
            .authenticate_keyboard_interactive_start(&self.hop.user, None)
            .await?;
        // Bounded so a server that keeps asking cannot loop us forever.
        for _ in 0..8 {
            match reply {
                KeyboardInteractiveAuthResponse::Success => return Ok(true),
                KeyboardInteractiveAuthResponse::Failure {
                    remaining_methods, ..
                } => {
                    self.methods = remaining_methods;
                    return Ok(false);
                }
                KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                    let answers = prompts
                        .iter()
                        .map(|p| {
                            if p.echo {
                                String::new()
                            } else {
                                password.expose().to_owned()
                            }
                        })
                        .collect();
                    reply = self
                        .session
                        .authenticate_keyboard_interactive_respond(answers)
                        .await?;
                }
            }
        }
        Ok(false)
    }
}

/// The public half of a key file, from `FILE.pub` or the (unencrypted) key itself.
fn public_key_of(path: &Path) -> Option<PublicKey> {
    let mut pub_path = path.as_os_str().to_owned();
    pub_path.push(".pub");
    if let Ok(k) = russh::keys::load_public_key(&pub_path) {
        return Some(k);
    }
    russh::keys::load_secret_key(path, None)
        .ok()
        .map(|k| k.public_key().clone())
}

/// Asks on the terminal without echo; None when there is no terminal to ask on.
fn ask(prompt: &str) -> Option<Secret> {
    if !std::io::stdin().is_terminal() && std::fs::File::open("/dev/tty").is_err() {
        return None;
    }
    match rpassword::prompt_password(prompt) {
        Ok(s) => Some(Secret::new(s)),
        Err(_) => None,
    }
}
