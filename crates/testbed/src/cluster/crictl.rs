//! `crictl` on the nodes: a python3 script (crictl.py) answering from a JSON
//! state file that the runtime rewrites on every change. Each node gets its own
//! copy in `DIR/<node>/sbin/crictl`; the node's sshd bind-mounts that directory
//! over /usr/local/sbin (root's and sudo's PATH, normally empty) and so does the
//! capture image.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::topology::Host;

const SCRIPT: &str = include_str!("crictl.py");

/// What crictl knows: every pod sandbox and container of the bed.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct CriState {
    pub pods: Vec<CriPod>,
    pub containers: Vec<CriContainer>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CriPod {
    pub id: String,
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub node: String,
    /// `/var/run/netns/<name>`, `None` for hostNetwork pods.
    pub netns: Option<String>,
    /// The namespace name, for teardown by another process (`kcap-testbed down`).
    pub netns_name: Option<String>,
    pub ip: String,
    pub host_network: bool,
    pub host_pid: bool,
    pub pid: u32,
    pub created_ns: u128,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CriContainer {
    pub id: String,
    pub pod_id: String,
    pub name: String,
    pub pod_name: String,
    pub pod_namespace: String,
    pub pod_uid: String,
    pub node: String,
    pub image: String,
    pub image_ref: String,
    pub pid: u32,
    pub uid: u32,
    pub privileged: bool,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub created_ns: u128,
}

/// `DIR/cluster/cri-state.json`.
pub(crate) fn state_path(cluster_dir: &Path) -> PathBuf {
    cluster_dir.join("cri-state.json")
}

/// The directory holding a node's `crictl`.
pub(crate) fn bin_dir(node: &Host) -> PathBuf {
    node.dir.join("sbin")
}

/// Writes every node's crictl and an empty state.
pub(crate) fn install(cluster_dir: &Path, hosts: &[Host]) -> Result<()> {
    let state = state_path(cluster_dir);
    save(&state, &CriState::default())?;
    for node in hosts.iter().filter(|h| h.pods.is_some()) {
        let dir = bin_dir(node);
        fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
        let quoted = |s: &str| serde_json::to_string(s).expect("string");
        let script = SCRIPT
            .replace("\"@STATE@\"", &quoted(&state.display().to_string()))
            .replace("\"@NODE@\"", &quoted(&node.name));
        let path = dir.join("crictl");
        fs::write(&path, script).with_context(|| format!("write {}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// Replaces the state file atomically (crictl may read it at any moment).
pub(crate) fn save(path: &Path, state: &CriState) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, serde_json::to_vec_pretty(state)?)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644))?;
    fs::rename(&tmp, path).with_context(|| format!("write {}", path.display()))
}

pub(crate) fn load(path: &Path) -> Result<CriState> {
    let text = fs::read(path).with_context(|| format!("read {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("parse {}", path.display()))
}
