//! Finding and killing a container's processes. There are no PID namespaces or
//! cgroups here, so a container's processes are recognised by the mount namespace
//! they share (the launcher's own, joined by every exec). We hold that namespace
//! open while the container exists: its inode number then cannot be reused by a
//! new namespace, so a match is never some other program (a pid, session or
//! process group number could be reused by an unrelated daemon once its owner
//! died, and SIGKILLing that daemon is exactly what must never happen).

use std::fs;
use std::thread;
use std::time::Duration;

use super::container::mount_ns;
use crate::netns;

/// Which processes belong to one container: those in its mount namespace.
#[derive(Debug, Clone, Default)]
pub(crate) struct Membership {
    pub mount_ns: Option<(u64, u64)>,
    /// An open handle on the namespace, so `mount_ns` stays unique while we use it
    /// (held, never read).
    _pin: Option<std::sync::Arc<fs::File>>,
}

impl Membership {
    /// Records the mount namespace of `pid` (the container's main process) and pins it.
    pub fn of(pid: u32, ns: Option<(u64, u64)>) -> Membership {
        let pin = fs::File::open(format!("/proc/{pid}/ns/mnt"))
            .ok()
            .map(std::sync::Arc::new);
        // Only trust the number if the handle we hold is that same namespace.
        let pinned = pin.as_ref().and_then(|f| {
            use std::os::unix::fs::MetadataExt;
            f.metadata().ok().map(|m| (m.dev(), m.ino()))
        });
        match (ns, pinned) {
            (Some(ns), Some(p)) if ns == p => Membership {
                mount_ns: Some(ns),
                _pin: pin,
            },
            _ => Membership::default(),
        }
    }

    fn contains(&self, pid: u32) -> bool {
        self.mount_ns.is_some() && mount_ns(pid) == self.mount_ns
    }
}

fn all_pids() -> Vec<u32> {
    let me = std::process::id();
    fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                // Never pid 1 (the real machine's init) nor ourselves.
                .filter(|&p| p > 1 && p != me)
                .collect()
        })
        .unwrap_or_default()
}

/// SIGKILLs every live process of the containers, repeating while they fork.
pub(crate) fn kill_members(members: &[Membership]) {
    for _ in 0..100 {
        let victims: Vec<u32> = all_pids()
            .into_iter()
            .filter(|&p| netns::is_running(p) && members.iter().any(|m| m.contains(p)))
            .collect();
        if victims.is_empty() {
            return;
        }
        for p in victims {
            netns::kill(p);
        }
        thread::sleep(Duration::from_millis(10));
    }
}
