//! What the caller asks for: the target, how to reach it and how to log in.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use kcap_openssh::destination::Destination;

/// Environment variable that supplies a key passphrase to scripts.
pub const PASSPHRASE_ENV: &str = "KCAP_SSH_KEY_PASSPHRASE";
/// Environment variable that supplies the login password to scripts.
pub const PASSWORD_ENV: &str = "KCAP_SSH_PASSWORD";

/// Everything [`connect`](crate::connect) needs. Build it with [`ConnectOptions::new`]
/// (which reads the environment once) and override fields.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The target as typed (may be an ssh_config alias), with `--ssh-user`/`--ssh-port`
    /// already merged in: values here beat ssh_config, which beats the defaults
    /// (user = `$USER`, port 22).
    pub destination: Destination,
    /// `--jump-host` chain, first hop first. `None` = the target's ssh_config
    /// `ProxyJump`; `Some(vec![])` = connect directly. Each hop is itself resolved
    /// through ssh_config.
    pub jump_hosts: Option<Vec<Destination>>,
    /// `--proxy-command`: run locally (OpenSSH's `ProxyCommand`, `%h %p %r %n %%`
    /// expanded) and speak SSH over its stdin/stdout; beats ssh_config's
    /// ProxyJump/ProxyCommand for the target. `Some("none")` = connect directly.
    /// Cannot be combined with `jump_hosts`.
    pub proxy_command: Option<String>,
    /// `--ssh-key`: tried before ssh_config `IdentityFile` and the default keys.
    pub identity_files: Vec<PathBuf>,
    /// `--known-hosts`; empty = ssh_config `UserKnownHostsFile`, else the defaults.
    pub known_hosts_files: Vec<PathBuf>,
    /// Trust on first use: an unknown host key is accepted and appended (hashed) to
    /// the first known_hosts file. A changed or revoked key is never accepted.
    pub accept_new_host_key: bool,
    /// `None` = `~/.ssh/config`; `Some(path)` = that file (like `ssh -F`).
    pub ssh_config: Option<PathBuf>,
    /// Where a login password may come from.
    pub password: PasswordSource,
    /// Passphrase for encrypted key files when no terminal can be asked
    /// (`KCAP_SSH_KEY_PASSPHRASE`).
    pub key_passphrase: Option<Secret>,
    /// Which ssh-agent to ask for keys.
    pub agent: AgentSource,
    /// Per TCP connect and per SSH handshake, per hop. `None` = ssh_config
    /// `ConnectTimeout`, else 10 s; zero = no limit.
    pub connect_timeout: Option<Duration>,
    /// Interval of SSH keepalives; after [`KEEPALIVE_MAX`](crate::KEEPALIVE_MAX)
    /// unanswered ones the connection counts as lost.
    pub keepalive_interval: Duration,
}

/// Where a login password may come from.
#[derive(Debug, Clone)]
pub enum PasswordSource {
    /// Ask on the terminal, only if there is one.
    Prompt,
    /// Given up front (from `KCAP_SSH_PASSWORD`).
    Env(Secret),
    /// No password authentication.
    Never,
}

/// Which ssh-agent to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentSource {
    /// The socket named by `SSH_AUTH_SOCK` when the options were built.
    Socket(PathBuf),
    /// Do not use an agent.
    None,
}

impl ConnectOptions {
    /// Defaults for `destination`, reading `SSH_AUTH_SOCK`, `KCAP_SSH_PASSWORD` and
    /// `KCAP_SSH_KEY_PASSPHRASE` here, in one place, so nothing later depends on the
    /// process environment.
    pub fn new(destination: Destination) -> ConnectOptions {
        let agent = match std::env::var_os("SSH_AUTH_SOCK") {
            Some(sock) if !sock.is_empty() => AgentSource::Socket(sock.into()),
            _ => AgentSource::None,
        };
        let password = match std::env::var(PASSWORD_ENV) {
            Ok(p) => PasswordSource::Env(Secret::new(p)),
            Err(_) => PasswordSource::Prompt,
        };
        ConnectOptions {
            destination,
            jump_hosts: None,
            proxy_command: None,
            identity_files: Vec::new(),
            known_hosts_files: Vec::new(),
            accept_new_host_key: false,
            ssh_config: None,
            password,
            key_passphrase: std::env::var(PASSPHRASE_ENV).ok().map(Secret::new),
            agent,
            connect_timeout: None,
            keepalive_interval: Duration::from_secs(2),
        }
    }
}

/// A password or passphrase: never printed by `Debug`, wiped from memory on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        wipe(std::mem::take(&mut self.0));
    }
}

/// Overwrites a string's bytes before freeing them, so a secret does not linger in
/// freed heap memory.
fn wipe(s: String) {
    let mut bytes = s.into_bytes();
    for b in bytes.iter_mut() {
        // Volatile so the optimiser cannot drop the writes to memory about to be freed.
        // SAFETY: `b` is a valid, exclusive reference into the vector.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
}
