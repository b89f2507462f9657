//! `~/.ssh/config` (ssh_config(5)) resolution for the options kcap honours.

mod expand;
mod parse;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{Error, destination::Destination, pattern::match_list};
pub use expand::local_user;
use parse::{Ctx, Item, Setting};

/// A parsed ssh_config file (and the files it Includes).
#[derive(Debug, Clone, Default)]
pub struct SshConfig {
    items: Vec<Item>,
    home: PathBuf,
    local_user: String,
}

/// What ssh_config says about one host alias. Every field is `None`/empty when the
/// file does not set it; callers apply command-line values first and defaults last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostConfig {
    /// Lowercased, with `%h` expanded, as OpenSSH connects to it.
    pub hostname: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    /// In order, `~`, `${ENV}` and `%` tokens expanded. `none` is kept verbatim:
    /// like OpenSSH, the caller finds no such file and skips it.
    pub identity_files: Vec<PathBuf>,
    pub identities_only: Option<bool>,
    /// `ProxyJump`; `Some(vec![])` means `ProxyJump none` (or `ProxyCommand none`).
    pub proxy_jump: Option<Vec<Destination>>,
    /// `UserKnownHostsFile none` becomes `/dev/null`: nothing known, nothing saved.
    pub user_known_hosts_files: Vec<PathBuf>,
    /// `yes`, `no`, `accept-new`, `ask` (ask is treated like yes by kcap).
    pub strict_host_key_checking: Option<String>,
    /// `Some(Duration::ZERO)` is `ConnectTimeout 0`/`none`: no timeout, as in OpenSSH.
    pub connect_timeout: Option<std::time::Duration>,
    /// `Match` blocks and other constructs kcap skipped, for a warning.
    pub ignored: Vec<String>,
    /// `ProxyCommand` when it (not `ProxyJump`) came first; kcap does not run it,
    /// and a note is also in `ignored`.
    pub proxy_command: Option<String>,
}

/// `~/.ssh/config`, with `~` from `$HOME`.
pub fn default_user_config() -> PathBuf {
    expand::home().join(".ssh/config")
}

/// `~/.ssh/known_hosts` and `~/.ssh/known_hosts2`, OpenSSH's default
/// `UserKnownHostsFile`.
pub fn default_known_hosts() -> Vec<PathBuf> {
    let ssh = expand::home().join(".ssh");
    vec![ssh.join("known_hosts"), ssh.join("known_hosts2")]
}

impl SshConfig {
    /// Loads a file; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<SshConfig, Error> {
        SshConfig::load_with_home(path, &expand::home())
    }

    /// Like [`SshConfig::load`] with an explicit home directory for `~`, `%d` and
    /// relative `Include`s.
    pub fn load_with_home(path: &Path, home: &Path) -> Result<SshConfig, Error> {
        let ctx = ctx_for(path, home);
        let items = parse::read_file(path, &ctx, 0)?.unwrap_or_default();
        Ok(SshConfig::new(items, home))
    }

    /// Parses `text` as if read from `path` (for messages and to pick the
    /// `Include` base directory).
    pub fn parse_str(text: &str, path: &Path) -> Result<SshConfig, Error> {
        SshConfig::parse_str_with_home(text, path, &expand::home())
    }

    /// [`SshConfig::parse_str`] with an explicit home directory.
    pub fn parse_str_with_home(text: &str, path: &Path, home: &Path) -> Result<SshConfig, Error> {
        let items = parse::parse_text(text, path, &ctx_for(path, home), 0)?;
        Ok(SshConfig::new(items, home))
    }

    fn new(items: Vec<Item>, home: &Path) -> SshConfig {
        SshConfig {
            items,
            home: home.to_path_buf(),
            local_user: local_user(),
        }
    }

    /// Resolves `alias` as OpenSSH does: first obtained value wins, Host patterns with
    /// `*`, `?` and `!negation`, `%h`/`%p`/`%r`/`%u`/`~` expanded in paths.
    pub fn resolve(&self, alias: &str) -> HostConfig {
        self.resolve_with(alias, None, None)
    }

    /// Like [`SshConfig::resolve`], with the user and port given on the command
    /// line: they win over the file and feed `%r`/`%p` in paths, as in `ssh -p`.
    /// The returned `user`/`port` still say only what the file says.
    pub fn resolve_with(&self, alias: &str, user: Option<&str>, port: Option<u16>) -> HostConfig {
        let mut st = State::default();
        walk(&self.items, alias, &mut st);
        let hostname = st
            .hostname
            .as_deref()
            .map(|h| expand::hostname(h, alias).to_lowercase());
        let host = hostname.clone().unwrap_or_else(|| alias.to_lowercase());
        let remote_user = user
            .or(st.user.as_deref())
            .unwrap_or(&self.local_user)
            .to_string();
        let tokens = expand::Tokens {
            home: &self.home,
            local_user: &self.local_user,
            host: &host,
            alias,
            remote_user: &remote_user,
            port: port.or(st.port).unwrap_or(22),
        };
        let known_hosts = st.known_hosts.take().unwrap_or_default();
        let known_hosts = known_hosts.iter().map(|f| match f.as_str() {
            "none" => PathBuf::from("/dev/null"),
            f => expand::path(f, &tokens),
        });
        let (proxy_jump, proxy_command) = match st.proxy {
            None => (None, None),
            Some(Proxy::Jump(chain)) => (Some(chain), None),
            Some(Proxy::Command(c)) if c.eq_ignore_ascii_case("none") => (Some(vec![]), None),
            Some(Proxy::Command(c)) => (None, Some(c)),
        };
        if let Some(c) = &proxy_command {
            st.ignored
                .push(format!("ProxyCommand {c:?} is not supported"));
        }
        HostConfig {
            hostname,
            user: st.user,
            port: st.port,
            identity_files: st
                .identity_files
                .iter()
                .map(|f| match f.as_str() {
                    "none" => PathBuf::from("none"),
                    f => expand::path(f, &tokens),
                })
                .collect(),
            identities_only: st.identities_only,
            proxy_jump,
            user_known_hosts_files: known_hosts.collect(),
            strict_host_key_checking: st.strict,
            connect_timeout: st.timeout,
            ignored: st.ignored,
            proxy_command,
        }
    }
}

/// Relative Includes resolve under /etc/ssh for system configs, else ~/.ssh.
fn ctx_for(path: &Path, home: &Path) -> Ctx {
    let base = if path.starts_with("/etc/ssh") {
        PathBuf::from("/etc/ssh")
    } else {
        home.join(".ssh")
    };
    Ctx {
        home: home.to_path_buf(),
        base,
    }
}

/// ProxyJump and ProxyCommand share one slot: whichever comes first wins.
enum Proxy {
    Jump(Vec<Destination>),
    Command(String),
}

/// Values obtained so far while walking the file top to bottom.
#[derive(Default)]
struct State {
    hostname: Option<String>,
    user: Option<String>,
    port: Option<u16>,
    identity_files: Vec<String>,
    identities_only: Option<bool>,
    proxy: Option<Proxy>,
    known_hosts: Option<Vec<String>>,
    strict: Option<String>,
    timeout: Option<Duration>,
    ignored: Vec<String>,
}

impl State {
    fn apply(&mut self, setting: &Setting) {
        fn first<T: Clone>(slot: &mut Option<T>, value: &T) {
            if slot.is_none() {
                *slot = Some(value.clone());
            }
        }
        match setting {
            Setting::HostName(v) => first(&mut self.hostname, v),
            Setting::User(v) => first(&mut self.user, v),
            Setting::Port(v) => first(&mut self.port, v),
            // IdentityFile accumulates; OpenSSH drops exact duplicates.
            Setting::IdentityFile(v) if !self.identity_files.contains(v) => {
                self.identity_files.push(v.clone());
            }
            Setting::IdentityFile(_) => {}
            Setting::IdentitiesOnly(v) => first(&mut self.identities_only, v),
            Setting::ProxyJump(chain) if self.proxy.is_none() => {
                self.proxy = Some(Proxy::Jump(chain.clone().unwrap_or_default()));
            }
            Setting::ProxyCommand(c) if self.proxy.is_none() => {
                self.proxy = Some(Proxy::Command(c.clone()));
            }
            Setting::ProxyJump(_) | Setting::ProxyCommand(_) => {}
            Setting::UserKnownHostsFile(v) => first(&mut self.known_hosts, v),
            Setting::StrictHostKeyChecking(v) => first(&mut self.strict, v),
            Setting::ConnectTimeout(v) => first(&mut self.timeout, v),
        }
    }
}

/// Applies the settings of every block that matches `alias`. Each file (the main
/// one or an Included one) starts out active; an Include is only followed where it
/// is active, as OpenSSH does.
fn walk(items: &[Item], alias: &str, st: &mut State) {
    let mut active = true;
    for item in items {
        match item {
            Item::Host(patterns) => {
                active = match_list(alias, patterns.iter().map(String::as_str)) == Some(true);
            }
            Item::MatchAll => active = true,
            Item::Match { text, at } => {
                // Never merged into the previous Host block: its options are skipped.
                active = false;
                st.ignored.push(format!(
                    "{at}: \"Match {text}\" is not supported; its options were ignored"
                ));
            }
            Item::Set(setting) if active => st.apply(setting),
            Item::Include(sub) if active => walk(sub, alias, st),
            Item::Set(_) | Item::Include(_) => {}
        }
    }
}
