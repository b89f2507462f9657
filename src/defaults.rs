//! Defaults a team can share: an optional config file (`~/.config/kcap/config.toml`,
//! or `$KCAP_CONFIG`) and `KCAP_*` environment variables for the settings that
//! are the same on every run (`--image`, `--via`, `--kubeconfig`, known_hosts,
//! ...). Flags beat the environment, which beats the file, which beats kcap's
//! own defaults; `kcap --print-config` shows each value and where it came from.
//!
//! Both are applied to clap's command before parsing (the file's values become
//! the flags' defaults, each variable the flag's `env`), so every value is
//! checked exactly as a flag would be.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};

/// The flags a config file or variable may set: settings, not what to capture
/// or when to stop. Their names are the long flags' (the file's keys, and
/// `KCAP_` plus the name in capitals with `_` for `-` for the variables).
pub const SHAREABLE: &[&str] = &[
    "kubeconfig",
    "context",
    "via",
    "capture-point",
    "image",
    "no-annotate",
    "format",
    "linktype",
    "ssh-user",
    "ssh-port",
    "jump-host",
    "proxy-command",
    "ssh-key",
    "ssh-config",
    "known-hosts",
    "accept-new-host-key",
    "sudo",
    "iface",
    "snaplen",
    "buffer-size",
    "remote-tool",
    "flight-recorder-size",
    "no-names",
];

/// Why the config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DefaultsError {
    #[error("cannot read the config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error(
        "the config file {path} sets `{key}`, which is not a setting kcap takes from a file \
         (it takes: {})",
        SHAREABLE.join(", ")
    )]
    UnknownKey { path: PathBuf, key: String },
    #[error(
        "the config file {path} sets `{key}` to {what}: give a string, number, true/false or a list of strings"
    )]
    BadValue {
        path: PathBuf,
        key: String,
        what: &'static str,
    },
}

/// A value as TOML gives it.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum Value {
    Text(String),
    Number(i64),
    Switch(bool),
    List(Vec<Value>),
    /// Refused (kcap's settings are flat); read only to say so clearly.
    Table(#[allow(dead_code)] BTreeMap<String, Value>),
}

/// The config file, read.
#[derive(Debug, Default)]
pub struct Defaults {
    /// The file read, if there was one.
    pub path: Option<PathBuf>,
    /// Per flag (long name): the values it gives.
    values: BTreeMap<String, Vec<String>>,
}

impl Defaults {
    /// Reads `$KCAP_CONFIG`, else `$XDG_CONFIG_HOME/kcap/config.toml`, else
    /// `~/.config/kcap/config.toml`; no file is no defaults (a file named by
    /// `KCAP_CONFIG` must exist).
    pub fn load() -> Result<Defaults, DefaultsError> {
        let named = std::env::var_os("KCAP_CONFIG").map(PathBuf::from);
        let path = match &named {
            Some(p) => p.clone(),
            None => match config_home() {
                Some(home) => home.join("kcap").join("config.toml"),
                None => return Ok(Defaults::default()),
            },
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Defaults::parse(&path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && named.is_none() => {
                Ok(Defaults::default())
            }
            Err(source) => Err(DefaultsError::Read { path, source }),
        }
    }

    fn parse(path: &Path, text: &str) -> Result<Defaults, DefaultsError> {
        let table: BTreeMap<String, Value> =
            basic_toml::from_str(text).map_err(|e| DefaultsError::Syntax {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let mut values = BTreeMap::new();
        for (key, value) in table {
            let flag = key.replace('_', "-");
            if !SHAREABLE.contains(&flag.as_str()) {
                return Err(DefaultsError::UnknownKey {
                    path: path.to_path_buf(),
                    key,
                });
            }
            let bad = |what| DefaultsError::BadValue {
                path: path.to_path_buf(),
                key: key.clone(),
                what,
            };
            let list = match value {
                Value::Text(s) => vec![expand_home(&s)],
                Value::Number(n) => vec![n.to_string()],
                // `false` leaves the flag off, as not giving it does.
                Value::Switch(true) => vec!["true".to_string()],
                Value::Switch(false) => continue,
                Value::List(items) => items
                    .into_iter()
                    .map(|item| match item {
                        Value::Text(s) => Ok(expand_home(&s)),
                        _ => Err(bad("a list holding something other than strings")),
                    })
                    .collect::<Result<_, _>>()?,
                Value::Table(_) => return Err(bad("a table")),
            };
            values.insert(flag, list);
        }
        Ok(Defaults {
            path: Some(path.to_path_buf()),
            values,
        })
    }

    /// `command` with every shareable flag taking its `KCAP_*` variable and the
    /// file's value as its default.
    pub fn apply(&self, mut command: Command) -> Command {
        for &flag in SHAREABLE {
            let Some(id) = id_of(&command, flag) else {
                continue;
            };
            let from_file = self.values.get(flag).cloned();
            command = command.mut_arg(id, |arg| {
                let arg = arg.env(env_name(flag));
                match from_file {
                    Some(values) => arg.default_values(values),
                    None => arg,
                }
            });
        }
        command
    }

    /// `kcap --print-config`: every shareable setting, its value and its origin.
    pub fn describe(&self, command: &Command, matches: &ArgMatches) -> String {
        let file = self
            .path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let mut out = match &self.path {
            Some(p) => format!("# config file: {}\n", p.display()),
            None => format!(
                "# config file: none ({} does not exist)\n",
                default_path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
        };
        for &flag in SHAREABLE {
            let Some(id) = id_of(command, flag) else {
                continue;
            };
            let values: Vec<String> = matches
                .get_raw(&id)
                .map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            let origin = match matches.value_source(&id) {
                Some(ValueSource::CommandLine) => "from the command line".to_string(),
                Some(ValueSource::EnvVariable) => format!("from ${}", env_name(flag)),
                Some(ValueSource::DefaultValue) if self.values.contains_key(flag) => {
                    format!("from {file}")
                }
                _ => "kcap's default".to_string(),
            };
            let shown = match values.as_slice() {
                [] => "(not set)".to_string(),
                [one] => quote(one),
                many => format!(
                    "[{}]",
                    many.iter().map(|v| quote(v)).collect::<Vec<_>>().join(", ")
                ),
            };
            out.push_str(&format!("{flag} = {shown}  # {origin}\n"));
        }
        out
    }
}

/// The clap id of the argument whose long name is `flag`.
fn id_of(command: &Command, flag: &str) -> Option<String> {
    command
        .get_arguments()
        .find(|a| a.get_long() == Some(flag))
        .filter(|a| !matches!(a.get_action(), ArgAction::Help | ArgAction::Version))
        .map(|a| a.get_id().to_string())
}

/// `KCAP_SSH_USER` for `ssh-user`.
pub fn env_name(flag: &str) -> String {
    format!("KCAP_{}", flag.to_uppercase().replace('-', "_"))
}

fn quote(value: &str) -> String {
    if value == "true" || value == "false" || value.parse::<i64>().is_ok() {
        value.to_string()
    } else {
        format!("{value:?}")
    }
}

fn config_home() -> Option<PathBuf> {
    match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir)),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")),
    }
}

fn default_path() -> Option<PathBuf> {
    std::env::var_os("KCAP_CONFIG")
        .map(PathBuf::from)
        .or_else(|| config_home().map(|h| h.join("kcap").join("config.toml")))
}

/// `~/x` as the shell would give it (the file is not read by a shell).
fn expand_home(value: &str) -> String {
    match (value.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest).display().to_string(),
        _ => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn every_shareable_setting_is_a_flag_that_takes_a_value_or_a_switch() {
        let command = crate::cli::Cli::command();
        for flag in SHAREABLE {
            assert!(id_of(&command, flag).is_some(), "--{flag} is not a flag");
        }
    }

    #[test]
    fn file_values_become_defaults_and_flags_still_win() {
        let path = Path::new("/etc/kcap.toml");
        let text = "image = \"registry.corp/netshoot:1\"\nvia = \"node\"\nsudo = true\n\
                    no_annotate = false\nknown-hosts = [\"/a\", \"/b\"]\nbuffer-size = 4096\n";
        let defaults = Defaults::parse(path, text).unwrap();
        let command = defaults.apply(crate::cli::Cli::command());
        let matches = command
            .clone()
            .try_get_matches_from(["kcap", "--via", "exec", "pod/x"])
            .unwrap();
        let shown = defaults.describe(&command, &matches);
        for line in [
            "image = \"registry.corp/netshoot:1\"  # from /etc/kcap.toml",
            "via = \"exec\"  # from the command line",
            "sudo = true  # from /etc/kcap.toml",
            "no-annotate = false  # kcap's default",
            "known-hosts = [\"/a\", \"/b\"]  # from /etc/kcap.toml",
            "buffer-size = 4096  # from /etc/kcap.toml",
            "ssh-user = (not set)  # kcap's default",
        ] {
            assert!(shown.lines().any(|l| l == line), "no {line:?} in:\n{shown}");
        }
    }

    #[test]
    fn unknown_keys_bad_values_and_bad_toml_are_refused_clearly() {
        let path = Path::new("/c.toml");
        let e = Defaults::parse(path, "duration = \"5s\"").unwrap_err();
        assert!(
            e.to_string().contains("sets `duration`, which is not"),
            "{e}"
        );
        let e = Defaults::parse(path, "image = [1, 2]").unwrap_err();
        assert!(e.to_string().contains("a list holding"), "{e}");
        let e = Defaults::parse(path, "image = ").unwrap_err();
        assert!(e.to_string().contains("is not valid TOML"), "{e}");
        assert_eq!(env_name("ssh-user"), "KCAP_SSH_USER");
    }
}
