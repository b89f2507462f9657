//! `~/.ssh/config` (ssh_config(5)) resolution for the options kcap honours.

mod expand;
mod parse;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{Error, destination::Destination, pattern::match_list};
pub use expand::local_user;
use parse::{Criteria, Criterion, Ctx, Item, Setting};

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
    /// `GlobalKnownHostsFile` (`None`: unset, so OpenSSH's
    /// [`DEFAULT_GLOBAL_KNOWN_HOSTS`]; `none` leaves the list empty): read for
    /// trust, never written.
    pub global_known_hosts_files: Option<Vec<PathBuf>>,
    /// `yes`, `no`, `accept-new`, `ask` (ask is treated like yes by kcap).
    pub strict_host_key_checking: Option<String>,
    /// `Some(Duration::ZERO)` is `ConnectTimeout 0`/`none`: no timeout, as in OpenSSH.
    pub connect_timeout: Option<std::time::Duration>,
    /// Constructs kcap skipped (unsupported `Match` criteria, options it cannot
    /// honour), for a warning.
    pub ignored: Vec<String>,
    /// `ProxyCommand` when it (not `ProxyJump`) came first, as written (`%` tokens
    /// unexpanded; see [`proxy_command`]). `ProxyCommand none` is
    /// `proxy_jump == Some(vec![])`.
    pub proxy_command: Option<String>,
    /// `CertificateFile`s, expanded like `identity_files`.
    pub certificate_files: Vec<PathBuf>,
    /// `RevokedHostKeys`, expanded like `identity_files` (`None` also for `none`).
    pub revoked_host_keys: Option<PathBuf>,
    /// `HostKeyAlias`: the name known_hosts knows the host by.
    pub host_key_alias: Option<String>,
    /// `ProxyUseFdpass`.
    pub proxy_use_fdpass: Option<bool>,
}

/// `~/.ssh/config`, with `~` from `$HOME`.
pub fn default_user_config() -> PathBuf {
    expand::home().join(".ssh/config")
}

/// `~/.ssh/known_hosts` and `~/.ssh/known_hosts2`, OpenSSH's default
/// `UserKnownHostsFile`.
/// OpenSSH's `GlobalKnownHostsFile` default.
pub const DEFAULT_GLOBAL_KNOWN_HOSTS: [&str; 2] =
    ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"];

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
    /// `*`, `?` and `!negation`, `Match` blocks evaluated in file order,
    /// `%h`/`%p`/`%r`/`%u`/`~` expanded in paths.
    pub fn resolve(&self, alias: &str) -> Result<HostConfig, Error> {
        self.resolve_with(alias, None, None)
    }

    /// Like [`SshConfig::resolve`], with the user and port given on the command
    /// line: they win over the file, feed `%r`/`%p` and `Match user`, as in `ssh -p`.
    /// The returned `user`/`port` still say only what the file says. Fails only
    /// when a `Match exec` command cannot be built (an unknown `%` token, or a
    /// value unfit for a shell).
    pub fn resolve_with(
        &self,
        alias: &str,
        user: Option<&str>,
        port: Option<u16>,
    ) -> Result<HostConfig, Error> {
        let mut st = State::default();
        let mut pass = Pass {
            config: self,
            alias,
            name: alias.to_string(),
            cli_user: user,
            cli_port: port,
            final_pass: false,
        };
        walk(&self.items, &mut pass, &mut st)?;
        // OpenSSH reads the files a second time when `Match final` asked for it or
        // CanonicalizeHostname is on; Host lines then see the resolved name, and
        // only options still unset can be obtained.
        let canonicalize = st.canonicalize.as_deref().is_some_and(|c| c != "no");
        if st.want_final || canonicalize {
            pass.name = pass.host(&st);
            pass.final_pass = true;
            // OpenSSH fixes the host name before the final pass: a HostName met
            // only then is not obtained.
            let file_hostname = st.hostname.is_some();
            st.hostname.get_or_insert_with(|| pass.name.clone());
            walk(&self.items, &mut pass, &mut st)?;
            if !file_hostname {
                st.hostname = None;
            }
        }
        if canonicalize {
            st.note("CanonicalizeHostname (kcap does not canonicalize host names)".into());
        }
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
        let (proxy_jump, proxy_command) = match st.proxy.take() {
            None => (None, None),
            Some(Proxy::Jump(chain)) => (Some(chain), None),
            Some(Proxy::Command(c)) if c.eq_ignore_ascii_case("none") => (Some(vec![]), None),
            Some(Proxy::Command(c)) => (None, Some(c)),
        };
        let paths = |files: &[String]| -> Vec<PathBuf> {
            files
                .iter()
                .map(|f| match f.as_str() {
                    "none" => PathBuf::from("none"),
                    f => expand::path(f, &tokens),
                })
                .collect()
        };
        Ok(HostConfig {
            hostname,
            user: st.user,
            port: st.port,
            identity_files: paths(&st.identity_files),
            certificate_files: paths(&st.certificate_files),
            revoked_host_keys: st
                .revoked_host_keys
                .filter(|f| f != "none")
                .map(|f| expand::path(&f, &tokens)),
            host_key_alias: st.host_key_alias,
            identities_only: st.identities_only,
            proxy_jump,
            user_known_hosts_files: known_hosts.collect(),
            global_known_hosts_files: st.global_known_hosts.take().map(|files| {
                files
                    .iter()
                    .filter(|f| f.as_str() != "none")
                    .map(|f| expand::path(f, &tokens))
                    .collect()
            }),
            strict_host_key_checking: st.strict,
            connect_timeout: st.timeout,
            ignored: st.ignored,
            proxy_command,
            proxy_use_fdpass: st.fdpass,
        })
    }
}

/// The command line OpenSSH would run for `ProxyCommand cmd` to reach `host`:
/// `exec cmd` (so the shell becomes the command, and killing it ends the command),
/// with `%h` (host after HostName), `%p`, `%r` (remote user), `%n` (the alias as
/// typed) and `%%` expanded. Run it with `$SHELL -c` ([`user_shell`]).
pub fn proxy_command(
    cmd: &str,
    host: &str,
    port: u16,
    user: &str,
    alias: &str,
) -> Result<String, Error> {
    let port = port.to_string();
    let value = |t: char| match t {
        'h' => Some(host),
        'p' => Some(port.as_str()),
        'r' => Some(user),
        'n' => Some(alias),
        _ => None,
    };
    let expanded = expand::command(cmd, &value).map_err(|message| Error::Command {
        at: "ProxyCommand".into(),
        command: cmd.to_string(),
        message,
    })?;
    Ok(format!("exec {expanded}"))
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
    certificate_files: Vec<String>,
    revoked_host_keys: Option<String>,
    host_key_alias: Option<String>,
    identities_only: Option<bool>,
    proxy: Option<Proxy>,
    known_hosts: Option<Vec<String>>,
    global_known_hosts: Option<Vec<String>>,
    strict: Option<String>,
    timeout: Option<Duration>,
    fdpass: Option<bool>,
    canonicalize: Option<String>,
    /// A `Match final` (not negated) was seen: read the files again.
    want_final: bool,
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
            // IdentityFile and CertificateFile accumulate; OpenSSH drops exact
            // duplicates.
            Setting::IdentityFile(v) => push_new(&mut self.identity_files, v),
            Setting::CertificateFile(v) => push_new(&mut self.certificate_files, v),
            Setting::IdentitiesOnly(v) => first(&mut self.identities_only, v),
            Setting::RevokedHostKeys(v) => first(&mut self.revoked_host_keys, v),
            Setting::HostKeyAlias(v) => first(&mut self.host_key_alias, v),
            Setting::Unsupported(what) => self.note(what.to_string()),
            Setting::ProxyJump(chain) if self.proxy.is_none() => {
                self.proxy = Some(Proxy::Jump(chain.clone().unwrap_or_default()));
            }
            Setting::ProxyCommand(c) if self.proxy.is_none() => {
                self.proxy = Some(Proxy::Command(c.clone()));
            }
            Setting::ProxyJump(_) | Setting::ProxyCommand(_) => {}
            Setting::UserKnownHostsFile(v) => first(&mut self.known_hosts, v),
            Setting::GlobalKnownHostsFile(v) => first(&mut self.global_known_hosts, v),
            Setting::StrictHostKeyChecking(v) => first(&mut self.strict, v),
            Setting::ConnectTimeout(v) => first(&mut self.timeout, v),
            Setting::ProxyUseFdpass(v) => first(&mut self.fdpass, v),
            Setting::CanonicalizeHostname(v) => first(&mut self.canonicalize, v),
        }
    }

    /// Records something kcap skipped, once.
    fn note(&mut self, what: String) {
        if !self.ignored.contains(&what) {
            self.ignored.push(what);
        }
    }
}

fn push_new(list: &mut Vec<String>, value: &String) {
    if !list.contains(value) {
        list.push(value.clone());
    }
}

/// What one reading of the files matches against.
struct Pass<'a> {
    config: &'a SshConfig,
    /// The host as typed (`%n`, `Match originalhost`).
    alias: &'a str,
    /// What `Host` lines match: the alias, then on the final pass the resolved name.
    name: String,
    cli_user: Option<&'a str>,
    cli_port: Option<u16>,
    final_pass: bool,
}

impl Pass<'_> {
    /// `HostName` obtained so far with `%h` expanded (lowercased), else the alias.
    fn host(&self, st: &State) -> String {
        match &st.hostname {
            Some(h) => expand::hostname(h, self.alias).to_lowercase(),
            None => self.alias.to_lowercase(),
        }
    }

    /// The remote user as OpenSSH sees it mid-file: command line, `User` so far,
    /// else the local user.
    fn user<'s>(&'s self, st: &'s State) -> &'s str {
        self.cli_user
            .or(st.user.as_deref())
            .unwrap_or(&self.config.local_user)
    }

    /// Whether a `Match` line holds, evaluated like OpenSSH's `match_cfg_line`:
    /// every criterion must hold; `exec` is not run once an earlier one failed.
    fn matches(&self, criteria: &[Criterion], at: &str, st: &mut State) -> Result<bool, Error> {
        let mut result = true;
        for c in criteria {
            let holds = match &c.kind {
                Criteria::All => true,
                Criteria::Canonical => self.final_pass,
                Criteria::Final => {
                    st.want_final |= !c.negate;
                    self.final_pass
                }
                Criteria::Host(p) => listed(&self.host(st), p),
                Criteria::OriginalHost(p) => listed(&self.alias.to_lowercase(), p),
                Criteria::User(p) => listed(self.user(st), p),
                Criteria::LocalUser(p) => listed(&self.config.local_user, p),
                Criteria::Exec(_) if !result => continue,
                Criteria::Exec(cmd) => self.exec(cmd, at, st)?,
                Criteria::Unsupported(what) => {
                    st.note(format!(
                        "{at}: \"Match {what}\" is not supported; its block was skipped"
                    ));
                    result = false;
                    continue;
                }
            };
            if holds == c.negate {
                result = false;
            }
        }
        Ok(result)
    }

    /// Runs a `Match exec` command through the user's shell, stdin and stdout on
    /// /dev/null, stderr passed through, as OpenSSH does.
    fn exec(&self, cmd: &str, at: &str, st: &State) -> Result<bool, Error> {
        let host = self.host(st);
        let port = self.cli_port.or(st.port).unwrap_or(22);
        let user = self.user(st);
        let uid = expand::uid().map_or_else(String::new, |u| u.to_string());
        let local = expand::local_hostname();
        let home = self.config.home.display().to_string();
        let hash = expand::connection_hash(&local, &host, port, user);
        let port_text = port.to_string();
        let short = local.split('.').next().unwrap_or("").to_string();
        let value = |token: char| -> Option<&str> {
            Some(match token {
                'h' | 'k' => &host,
                'n' => self.alias,
                'p' => &port_text,
                'r' => user,
                'u' => &self.config.local_user,
                'd' => &home,
                'i' => &uid,
                'l' => &local,
                'L' => &short,
                'C' => &hash,
                _ => return None,
            })
        };
        let command = expand::command(cmd, &value).map_err(|message| Error::Command {
            at: at.to_string(),
            command: cmd.to_string(),
            message,
        })?;
        let shell = user_shell();
        let status = std::process::Command::new(&shell)
            .arg("-c")
            .arg(&command)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .status();
        match status {
            Ok(s) => Ok(s.success()),
            Err(source) => Err(Error::Command {
                at: at.to_string(),
                command: cmd.to_string(),
                message: format!("cannot run {}: {source}", shell.display()),
            }),
        }
    }
}

/// OpenSSH's `match_pattern_list`: some pattern matches and no negated one does.
fn listed(value: &str, patterns: &[String]) -> bool {
    match_list(value, patterns.iter().map(String::as_str)) == Some(true)
}

/// The shell OpenSSH runs `Match exec` and `ProxyCommand` with: `$SHELL`, else
/// `/bin/sh`.
pub fn user_shell() -> PathBuf {
    std::env::var_os("SHELL")
        .filter(|s| !s.is_empty())
        .map_or_else(|| PathBuf::from("/bin/sh"), PathBuf::from)
}

/// Applies the settings of every block that matches. Each file (the main one or an
/// Included one) starts out active; an Include is only followed where it is
/// active, as OpenSSH does.
fn walk(items: &[Item], pass: &mut Pass, st: &mut State) -> Result<(), Error> {
    let mut active = true;
    for item in items {
        match item {
            Item::Host(patterns) => {
                active = match_list(&pass.name, patterns.iter().map(String::as_str)) == Some(true);
            }
            Item::Match { criteria, at } => active = pass.matches(criteria, at, st)?,
            Item::Set(setting) if active => st.apply(setting),
            Item::Include(sub) if active => walk(sub, pass, st)?,
            Item::Set(_) | Item::Include(_) => {}
        }
    }
    Ok(())
}
