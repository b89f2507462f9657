//! Which container (and pod) a process is in, from the node's container runtime
//! through `crictl`, whatever the runtime: a container's processes share its
//! mount namespace, and on most nodes its cgroup path also names its id.
//!
//! `crictl` is asked again only when a process shows up in a mount namespace not
//! seen at the last answer (each new container once, the node's own processes
//! never again), and each call has a time limit, so a slow runtime delays nothing
//! for long.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::json;

/// crictl on a loaded node can take seconds to start.
const CRICTL_TIMEOUT: Duration = Duration::from_secs(10);
/// Containers remembered (a node runs far fewer).
const MAX_CONTAINERS: usize = 4096;
const MAX_ANSWER: u64 = 16 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub pod: String,
    pub namespace: String,
}

pub struct Containers {
    asks_crictl: bool,
    by_id: HashMap<String, Rc<Container>>,
    by_mount_ns: HashMap<u64, Rc<Container>>,
    /// Mount namespaces that were no container's when crictl last answered.
    not_containers: HashSet<u64>,
}

impl Containers {
    /// No runtime to ask: no process is in a container.
    pub fn none() -> Containers {
        Containers {
            asks_crictl: false,
            by_id: HashMap::new(),
            by_mount_ns: HashMap::new(),
            not_containers: HashSet::new(),
        }
    }

    /// Asks `crictl` when it is on PATH.
    pub fn from_runtime() -> Containers {
        Containers {
            asks_crictl: true,
            ..Containers::none()
        }
    }

    /// The container of process `pid`, if the runtime knows it.
    pub fn of(&mut self, pid: &str) -> Option<Rc<Container>> {
        let mount_ns = mount_ns(pid)?;
        if let Some(found) = self.lookup(pid, mount_ns) {
            return Some(found);
        }
        if !self.asks_crictl || self.not_containers.contains(&mount_ns) {
            return None;
        }
        if !self.refresh() {
            return None;
        }
        let found = self.lookup(pid, mount_ns);
        if found.is_none() {
            self.not_containers.insert(mount_ns);
        }
        found
    }

    fn lookup(&self, pid: &str, mount_ns: u64) -> Option<Rc<Container>> {
        if let Some(c) = self.by_mount_ns.get(&mount_ns) {
            return Some(c.clone());
        }
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        hex_ids(&cgroup).find_map(|id| self.by_id.get(id).cloned())
    }

    /// Asks crictl for the containers; `false` if it did not answer.
    fn refresh(&mut self) -> bool {
        let listing = match crictl(&["ps", "-o", "json"]) {
            Ok(text) => json::parse(&text),
            Err(Missing) => {
                // No crictl here: do not keep trying.
                self.asks_crictl = false;
                return false;
            }
            Err(Failed) => None,
        };
        let Some(listing) = listing else {
            return false;
        };
        self.not_containers.clear();
        if self.by_id.len() > MAX_CONTAINERS {
            self.by_id.clear();
            self.by_mount_ns.clear();
        }
        for c in listing
            .get("containers")
            .map_or(&[][..], json::Value::as_array)
        {
            let Some(id) = c.get("id").and_then(json::Value::as_str) else {
                continue;
            };
            if self.by_id.contains_key(id) {
                continue;
            }
            let label = |key: &str| {
                c.get("labels")
                    .and_then(|l| l.get(key))
                    .and_then(json::Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let name = c
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(json::Value::as_str)
                .map_or_else(|| label("io.kubernetes.container.name"), str::to_string);
            let container = Rc::new(Container {
                id: id.to_string(),
                name,
                pod: label("io.kubernetes.pod.name"),
                namespace: label("io.kubernetes.pod.namespace"),
            });
            let pid = crictl(&[
                "inspect",
                "-o",
                "go-template",
                "--template",
                "{{.info.pid}}",
                id,
            ]);
            if let Some(ns) = pid.ok().as_deref().map(str::trim).and_then(mount_ns) {
                self.by_mount_ns.insert(ns, container.clone());
            }
            self.by_id.insert(id.to_string(), container);
        }
        true
    }
}

/// Why crictl gave no answer.
enum NoAnswer {
    /// It is not there (or cannot be started).
    Missing,
    /// It failed, said nothing usable, or took too long.
    Failed,
}
use NoAnswer::{Failed, Missing};

/// The inode of `pid`'s mount namespace.
fn mount_ns(pid: &str) -> Option<u64> {
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) || pid == "0" {
        return None;
    }
    let link = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok()?;
    link.to_str()?
        .strip_prefix("mnt:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Runs of 64 hex digits in a cgroup path: container ids.
fn hex_ids(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_ascii_hexdigit())
        .filter(|w| w.len() == 64)
}

/// `crictl ARGS`' output.
fn crictl(args: &[&str]) -> Result<String, NoAnswer> {
    let mut child = Command::new("crictl")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|_| Missing)?;
    let mut out = child.stdout.take().ok_or(Failed)?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = (&mut out).take(MAX_ANSWER).read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() < CRICTL_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(5))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let text = reader.join().map_err(|_| Failed)?;
    match status {
        Some(s) if s.success() => Ok(text),
        _ => Err(Failed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_are_found_in_cgroup_paths() {
        let id = "a".repeat(64);
        let path = format!("0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-{id}.scope\n");
        assert_eq!(hex_ids(&path).collect::<Vec<_>>(), [id.as_str()]);
        assert_eq!(hex_ids("0::/user.slice/session-3.scope").count(), 0);
    }

    #[test]
    fn without_a_runtime_nothing_is_in_a_container() {
        let mut c = Containers::none();
        assert_eq!(c.of(&std::process::id().to_string()), None);
        assert_eq!(c.of("0"), None);
        assert_eq!(c.of("../1"), None);
    }
}
