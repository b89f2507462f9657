//! Turns what the user typed (aliases, partial destinations) into concrete hops by
//! applying ssh_config and defaults, in OpenSSH's order: command line, then
//! ssh_config, then built-in defaults.

use std::path::PathBuf;
use std::time::Duration;

use kcap_openssh::config::{HostConfig, SshConfig};
use kcap_openssh::destination::Destination;

use crate::error::Error;
use crate::options::ConnectOptions;

const DEFAULT_PORT: u16 = 22;
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_KEYS: [&str; 3] = ["id_ed25519", "id_ecdsa", "id_rsa"];

/// One fully resolved hop (a jump host or the target).
#[derive(Debug, Clone)]
pub(crate) struct Hop {
    /// As typed, e.g. `bastion` or `root@node-a:2222`, for messages.
    pub label: String,
    /// The host as typed (maybe an ssh_config alias).
    pub alias: String,
    /// ssh_config `HostName` or the alias itself: what we connect to and what
    /// known_hosts is checked against.
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Explicit files first, then ssh_config's, then the defaults that exist.
    pub identity_files: Vec<PathBuf>,
    /// How many of `identity_files` were named explicitly (command line or
    /// ssh_config); missing explicit files are reported, missing defaults are not.
    pub explicit_identities: usize,
    pub identities_only: bool,
    /// ssh_config `CertificateFile`s: user certificates offered with the key
    /// they certify (besides `KEY-cert.pub` next to each key).
    pub certificate_files: Vec<PathBuf>,
    pub known_hosts_files: Vec<PathBuf>,
    /// ssh_config `RevokedHostKeys`: keys no host may present.
    pub revoked_host_keys: Option<PathBuf>,
    /// ssh_config `HostKeyAlias`: known_hosts knows the host by this name.
    pub host_key_alias: Option<String>,
    pub accept_new_host_key: bool,
    /// `None` = no timeout (ssh_config `ConnectTimeout 0`/`none`).
    pub connect_timeout: Option<Duration>,
    /// Reach this hop through a local command instead of TCP (only the first hop
    /// of a chain, or a target without jump hosts, as in OpenSSH).
    pub proxy: Option<ProxyCommand>,
}

/// A `ProxyCommand` to run for one hop.
#[derive(Debug, Clone)]
pub(crate) struct ProxyCommand {
    /// As configured, for messages.
    pub command: String,
    /// `exec ...` with the `%` tokens expanded, for `$SHELL -c`.
    pub line: String,
}

impl Hop {
    /// `user@host:port` of what we actually connect to.
    pub fn address(&self) -> String {
        format!("{}:{}", bracket_v6(&self.host), self.port)
    }

    /// The address, and the ProxyCommand that leads there if there is one.
    pub fn route(&self) -> String {
        match &self.proxy {
            Some(p) => format!("{} through ProxyCommand {:?}", self.address(), p.command),
            None => self.address(),
        }
    }
}

/// The resolved jump chain (first hop first) and the target. Blocking: ssh_config
/// `Match exec` runs commands.
pub(crate) fn resolve(opts: &ConnectOptions) -> Result<(Vec<Hop>, Hop), Error> {
    let config = load_config(opts)?;
    let target_cfg = lookup(config.as_ref(), &opts.destination)?;
    // The command line beats ssh_config; ProxyJump and ProxyCommand exclude each
    // other, as in OpenSSH.
    let (chain, target_proxy) = match (&opts.proxy_command, &opts.jump_hosts) {
        (Some(_), Some(_)) => {
            return Err(Error::Unsupported(
                "a ProxyCommand and jump hosts cannot be combined; give one of them".into(),
            ));
        }
        (Some(c), None) if c.eq_ignore_ascii_case("none") => (Vec::new(), None),
        (Some(c), None) => (Vec::new(), Some(c.clone())),
        (None, Some(chain)) => (chain.clone(), None),
        (None, None) => (
            target_cfg.proxy_jump.clone().unwrap_or_default(),
            target_cfg.proxy_command.clone(),
        ),
    };
    let chain = expand_first_hop(config.as_ref(), chain)?;
    let jumps = chain
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let cfg = lookup(config.as_ref(), d)?;
            // The first hop is reached like any host, so its own ProxyCommand
            // applies; the later ones are reached through the previous hop.
            let proxy = if i == 0 {
                cfg.proxy_command.clone()
            } else {
                None
            };
            hop(opts, d, &cfg, proxy)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let target = hop(opts, &opts.destination, &target_cfg, target_proxy)?;
    Ok((jumps, target))
}

/// OpenSSH reaches the first jump host like any host, so that host's own
/// ProxyJump applies too (`ssh -J b t`, where b has `ProxyJump a`, goes a, b, t).
/// Followed until the first hop has none; a loop is an error.
fn expand_first_hop(
    config: Option<&SshConfig>,
    mut chain: Vec<Destination>,
) -> Result<Vec<Destination>, Error> {
    const MAX_HOPS: usize = 16;
    while let Some(first) = chain.first() {
        let cfg = lookup(config, first)?;
        let inner = match cfg.proxy_jump {
            Some(inner) if !inner.is_empty() => inner,
            _ => break,
        };
        if chain.len() + inner.len() > MAX_HOPS {
            return Err(Error::Unsupported(format!(
                "the ProxyJump chain through {} is longer than {MAX_HOPS} hops (a loop in \
                 ssh_config?)",
                first.host
            )));
        }
        chain.splice(0..0, inner);
    }
    Ok(chain)
}

fn load_config(opts: &ConnectOptions) -> Result<Option<SshConfig>, Error> {
    let path = match &opts.ssh_config {
        Some(p) => p.clone(),
        None => kcap_openssh::config::default_user_config(),
    };
    // A missing file is an empty config; skipping it spares the parse.
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some(SshConfig::load(&path)?))
}

fn lookup(config: Option<&SshConfig>, dest: &Destination) -> Result<HostConfig, Error> {
    // User and port from the command line feed `%r`/`%p` and `Match user`.
    let cfg = match config {
        Some(c) => c.resolve_with(&dest.host, dest.user.as_deref(), dest.port)?,
        None => HostConfig::default(),
    };
    for what in &cfg.ignored {
        warn_once(format!("ssh_config: ignored {what}"));
    }
    Ok(cfg)
}

/// Warns about something kcap skipped, once per process however many hosts and
/// hops share the line.
fn warn_once(message: String) {
    static WARNED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut warned = WARNED.lock().unwrap_or_else(|p| p.into_inner());
    if !warned.contains(&message) {
        tracing::warn!("{message}");
        warned.push(message);
    }
}

fn hop(
    opts: &ConnectOptions,
    dest: &Destination,
    cfg: &HostConfig,
    proxy: Option<String>,
) -> Result<Hop, Error> {
    let host = cfg.hostname.clone().unwrap_or_else(|| dest.host.clone());
    let user = match dest.user.clone().or_else(|| cfg.user.clone()) {
        Some(u) => u,
        None => local_user(),
    };
    let port = dest.port.or(cfg.port).unwrap_or(DEFAULT_PORT);

    let mut identity_files: Vec<PathBuf> = opts.identity_files.clone();
    identity_files.extend(cfg.identity_files.iter().cloned());
    let explicit_identities = identity_files.len();
    if let Some(ssh_dir) = home_dir().map(|h| h.join(".ssh")) {
        identity_files.extend(
            DEFAULT_KEYS
                .iter()
                .map(|k| ssh_dir.join(k))
                .filter(|p| p.exists()),
        );
    }
    dedup(&mut identity_files);

    // The user's files first (a new key is recorded in the first), then the
    // system-wide ones OpenSSH also trusts.
    let mut known_hosts_files = if !opts.known_hosts_files.is_empty() {
        opts.known_hosts_files.clone()
    } else if !cfg.user_known_hosts_files.is_empty() {
        cfg.user_known_hosts_files.clone()
    } else {
        kcap_openssh::config::default_known_hosts()
    };
    match &cfg.global_known_hosts_files {
        Some(files) => known_hosts_files.extend(files.iter().cloned()),
        None => known_hosts_files.extend(
            kcap_openssh::config::DEFAULT_GLOBAL_KNOWN_HOSTS
                .iter()
                .map(PathBuf::from),
        ),
    }

    // ssh_config `StrictHostKeyChecking accept-new` (or `no`) means the same TOFU as
    // the flag; kcap never goes further than that (a changed key always fails).
    let config_accepts_new = matches!(
        cfg.strict_host_key_checking.as_deref(),
        Some("accept-new") | Some("no") | Some("off")
    );

    let label = match (&dest.user, dest.port) {
        (Some(u), Some(p)) => format!("{u}@{}:{p}", dest.host),
        (Some(u), None) => format!("{u}@{}", dest.host),
        (None, Some(p)) => format!("{}:{p}", dest.host),
        (None, None) => dest.host.clone(),
    };

    let proxy = match proxy {
        None => None,
        Some(_) if cfg.proxy_use_fdpass == Some(true) => {
            return Err(Error::Unsupported(format!(
                "ssh_config sets ProxyUseFdpass yes for {}: kcap cannot take a socket \
                 passed back by a ProxyCommand; set ProxyUseFdpass no for it \
                 (or use ProxyJump)",
                dest.host
            )));
        }
        Some(command) => Some(ProxyCommand {
            line: kcap_openssh::config::proxy_command(&command, &host, port, &user, &dest.host)?,
            command,
        }),
    };

    Ok(Hop {
        label,
        alias: dest.host.clone(),
        host,
        port,
        user,
        identity_files,
        explicit_identities,
        identities_only: cfg.identities_only.unwrap_or(false),
        certificate_files: cfg.certificate_files.clone(),
        known_hosts_files,
        revoked_host_keys: cfg.revoked_host_keys.clone(),
        host_key_alias: cfg.host_key_alias.clone(),
        accept_new_host_key: opts.accept_new_host_key || config_accepts_new,
        connect_timeout: Some(
            opts.connect_timeout
                .or(cfg.connect_timeout)
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        )
        .filter(|t| !t.is_zero()),
        proxy,
    })
}

/// Keeps the first occurrence of each path, so a key named twice is tried once.
fn dedup(paths: &mut Vec<PathBuf>) {
    let mut seen: Vec<PathBuf> = Vec::new();
    paths.retain(|p| {
        if seen.contains(p) {
            false
        } else {
            seen.push(p.clone());
            true
        }
    });
}

pub(crate) fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// The local login name, OpenSSH's default remote user.
fn local_user() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Ok(u) = std::env::var(var)
            && !u.is_empty()
        {
            return u;
        }
    }
    passwd_name().unwrap_or_else(|| "root".to_owned())
}

/// The user name of the effective uid from the password database, for when the
/// environment does not say (e.g. under systemd or cron).
fn passwd_name() -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: an all-zero passwd is a valid value for the out-parameter.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the duration of the call and `buf.len()` is
    // the true size of the buffer.
    let rc = unsafe {
        libc::getpwuid_r(
            libc::geteuid(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points to a NUL-terminated string inside `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// `[v6]` for IPv6 literals so `host:port` stays unambiguous.
pub(crate) fn bracket_v6(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// The name known_hosts uses for `host` on `port`: `host` or `[host]:port`.
pub(crate) fn known_hosts_name(host: &str, port: u16) -> String {
    if port == DEFAULT_PORT {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}
