//! Background traffic so captures are never empty: every node serves HTTP
//! (TCP 80) and DNS-like UDP (53); hosts with `traffic_to` query them every
//! ~200 ms. Implemented by an embedded python3 script.

use std::fs::{self, File};
use std::path::Path;
use std::process::{Child, Stdio};

use anyhow::{Context, Result};

use crate::netns;
use crate::process::spawn_daemon;
use crate::spec::Role;
use crate::topology::Host;

const SCRIPT: &str = include_str!("traffic.py");

/// Writes the script to `DIR/traffic.py` (namespaces share the filesystem).
pub(crate) fn install(dir: &Path) -> Result<std::path::PathBuf> {
    let path = dir.join("traffic.py");
    fs::write(&path, SCRIPT).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

/// Starts the generator for `host`, or returns `None` if it has nothing to do.
pub(crate) fn start(host: &Host, hosts: &[Host], script: &Path) -> Result<Option<Child>> {
    let serve = host.role == Role::Node;
    let targets: Vec<String> = host
        .traffic_to
        .iter()
        .filter_map(|t| {
            let target = hosts.iter().find(|h| &h.name == t)?;
            // Use the target's address on a network both hosts share.
            host.addresses
                .iter()
                .find_map(|(n, _)| target.address_on(n))
                .map(|a| a.to_string())
        })
        .collect();
    if !serve && targets.is_empty() {
        return Ok(None);
    }
    fs::create_dir_all(&host.dir)?;
    let log = File::create(host.dir.join("traffic.log"))?;
    let mut cmd = netns::command(&host.netns, "python3");
    cmd.arg("-u").arg(script).args(["--name", &host.name]);
    if serve {
        cmd.arg("--serve");
    }
    for t in &targets {
        cmd.args(["--target", t]);
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let child =
        spawn_daemon(&mut cmd).with_context(|| format!("start traffic on {}", host.name))?;
    Ok(Some(child))
}
