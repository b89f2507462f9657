//! Which container (and pod) a process is in, from the node's container runtime
//! through `crictl`, whatever the runtime: a container's processes share its
//! mount namespace, that of the process crictl names as the container's.
//!
//! `crictl` runs on a thread of its own, never in the capture's way (on a loaded
//! node one call takes seconds): a lookup that finds nothing asks that thread to
//! refresh, once per mount namespace not seen at the last answer (each new
//! container once, the node's own processes never again), and returns at once.
//! The answer comes later; [`Containers::generation`] changes with each one, so a
//! process described before can be described again (see `table`).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::json;

/// crictl on a loaded node can take seconds to start.
const CRICTL_TIMEOUT: Duration = Duration::from_secs(10);
/// Between two refreshes at least this long: a burst of new containers is one.
const REFRESH_GAP: Duration = Duration::from_millis(300);
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

#[derive(Default)]
struct Known {
    by_id: HashMap<String, Arc<Container>>,
    by_mount_ns: HashMap<u64, Arc<Container>>,
    /// Mount namespaces that were no container's when crictl last answered.
    not_containers: HashSet<u64>,
    /// Mount namespaces asked about since.
    asked: HashSet<u64>,
}

#[derive(Default)]
struct Shared {
    known: Mutex<Known>,
    /// Bumped after each answer.
    generation: AtomicU64,
    /// crictl is not there.
    missing: std::sync::atomic::AtomicBool,
}

pub struct Containers {
    shared: Arc<Shared>,
    /// To the crictl thread; `None` without a runtime to ask.
    refresh: Option<Sender<()>>,
}

impl Containers {
    /// No runtime to ask: no process is in a container.
    #[cfg(test)]
    pub fn none() -> Containers {
        Containers {
            shared: Arc::default(),
            refresh: None,
        }
    }

    /// Asks `crictl`, on a thread of its own, when it is on PATH.
    pub fn from_runtime() -> Containers {
        let shared = Arc::<Shared>::default();
        let (refresh, requests) = channel();
        let worker = shared.clone();
        let started = std::thread::Builder::new()
            .name("crictl".into())
            .spawn(move || ask_crictl(&worker, &requests))
            .is_ok();
        let containers = Containers {
            shared,
            refresh: started.then_some(refresh),
        };
        containers.ask();
        containers
    }

    /// Whether a runtime is asked (crictl is on PATH, as far as known).
    pub fn asks(&self) -> bool {
        self.refresh.is_some() && !self.shared.missing.load(Ordering::Acquire)
    }

    /// Changes each time crictl answered.
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// The mount namespace of `pid` (what [`Self::of_mount_ns`] takes), if it exists.
    pub fn mount_ns_of(pid: &str) -> Option<u64> {
        mount_ns(pid)
    }

    /// The container whose processes are in mount namespace `ns`; asks crictl
    /// again (without waiting) if the last answer did not say.
    pub fn of_mount_ns(&self, ns: u64) -> Option<Arc<Container>> {
        let mut known = self.shared.known.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = known.by_mount_ns.get(&ns) {
            return Some(c.clone());
        }
        if !known.not_containers.contains(&ns) && known.asked.insert(ns) {
            drop(known);
            self.ask();
        }
        None
    }

    fn ask(&self) {
        if let Some(refresh) = &self.refresh {
            let _ = refresh.send(());
        }
    }
}

/// The crictl thread: one refresh per burst of requests, until crictl is found
/// missing or the agent ends.
fn ask_crictl(shared: &Shared, requests: &Receiver<()>) {
    while requests.recv().is_ok() {
        while requests.try_recv().is_ok() {}
        let asked: Vec<u64> = {
            let known = shared.known.lock().unwrap_or_else(|e| e.into_inner());
            known.asked.iter().copied().collect()
        };
        match refresh(shared) {
            Err(Missing) => {
                shared.missing.store(true, Ordering::Release);
                return;
            }
            // Asked again at the next lookup (each answer bumps the generation,
            // on which the table looks again).
            Err(Failed) | Ok(false) => {
                let mut known = shared.known.lock().unwrap_or_else(|e| e.into_inner());
                for ns in &asked {
                    known.asked.remove(ns);
                }
            }
            Ok(true) => {
                let mut known = shared.known.lock().unwrap_or_else(|e| e.into_inner());
                for ns in asked {
                    known.asked.remove(&ns);
                    if !known.by_mount_ns.contains_key(&ns) {
                        known.not_containers.insert(ns);
                    }
                }
            }
        }
        shared.generation.fetch_add(1, Ordering::Release);
        std::thread::sleep(REFRESH_GAP);
    }
}

/// Asks crictl for the containers and records the new ones; `Ok(false)` if one
/// of them could not be inspected (it is tried again next time).
fn refresh(shared: &Shared) -> Result<bool, NoAnswer> {
    let mut complete = true;
    let listing = json::parse(&crictl(&["ps", "-o", "json"])?).ok_or(Failed)?;
    let known_ids: HashSet<String> = {
        let mut known = shared.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.by_id.len() > MAX_CONTAINERS {
            known.by_id.clear();
            known.by_mount_ns.clear();
        }
        known.by_id.keys().cloned().collect()
    };
    for c in listing
        .get("containers")
        .map_or(&[][..], json::Value::as_array)
    {
        let Some(id) = c.get("id").and_then(json::Value::as_str) else {
            continue;
        };
        if known_ids.contains(id) {
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
        let container = Arc::new(Container {
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
        let Some(ns) = pid.ok().as_deref().map(str::trim).and_then(mount_ns) else {
            complete = false;
            continue;
        };
        let mut known = shared.known.lock().unwrap_or_else(|e| e.into_inner());
        known.not_containers.remove(&ns);
        known.by_mount_ns.insert(ns, container.clone());
        known.by_id.insert(id.to_string(), container);
    }
    Ok(complete)
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
    fn without_a_runtime_nothing_is_in_a_container() {
        let c = Containers::none();
        let me = Containers::mount_ns_of(&std::process::id().to_string()).unwrap();
        assert_eq!(c.of_mount_ns(me), None);
        assert_eq!(Containers::mount_ns_of("0"), None);
        assert_eq!(Containers::mount_ns_of("../1"), None);
    }
}
