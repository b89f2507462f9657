//! `DIR/state.json`: everything another process needs to inspect or tear
//! down a bed (`kcap-testbed status|down`, garbage collection).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::topology::{Host, Network};

pub(crate) const FILE: &str = "state.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct State {
    /// PID of the process that ran `up`.
    pub owner_pid: u32,
    pub dir: PathBuf,
    pub client_netns: String,
    /// Namespaces actually created, in creation order.
    pub namespaces: Vec<String>,
    pub networks: Vec<Network>,
    pub hosts: Vec<Host>,
    /// `(host, daemon, pid)` of every daemon started.
    pub pids: Vec<(String, String, u32)>,
    /// Files and directories under `dir` written by `up`.
    pub generated: Vec<PathBuf>,
}

impl State {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(FILE)
    }

    pub fn save(&self) -> Result<()> {
        let path = Self::path(&self.dir);
        let tmp = path.with_extension("json.tmp");
        fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        fs::rename(&tmp, &path).with_context(|| format!("write {}", path.display()))
    }

    pub fn load(dir: &Path) -> Result<State> {
        let path = Self::path(dir);
        let text = fs::read(&path)
            .with_context(|| format!("read {} (is a test bed up there?)", path.display()))?;
        serde_json::from_slice(&text).with_context(|| format!("parse {}", path.display()))
    }
}
