//! Tearing beds down (also half-built ones) and collecting beds left by
//! processes that died without running `Drop` (SIGKILL, abort).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};

use crate::netns;

/// Temp dirs are named `kcap-testbed-<pid>-<n>-XXXX` so stale ones can be
/// attributed to a dead process and collected ([`gc_stale`]).
pub(crate) const TEMPDIR_PREFIX: &str = "kcap-testbed-";

/// Kills every process in `namespaces`, deletes them, then removes the
/// `generated` paths. Continues past failures and reports them all.
pub(crate) fn teardown(namespaces: &[String], generated: &[PathBuf]) -> Result<()> {
    let mut errors = Vec::new();
    // Kill first everywhere, then delete: a process killed late could still
    // be talking across a link we are about to remove, which is harmless,
    // but deleting a namespace with live processes would leak them.
    for ns in namespaces.iter().rev() {
        if let Err(e) = netns::kill_all(ns) {
            errors.push(format!("{e:#}"));
        }
    }
    for ns in namespaces.iter().rev() {
        if let Err(e) = netns::delete(ns) {
            errors.push(format!("{e:#}"));
        }
    }
    for p in generated.iter().rev() {
        let r = if p.is_dir() {
            fs::remove_dir_all(p)
        } else {
            fs::remove_file(p)
        };
        if let Err(e) = r
            && e.kind() != std::io::ErrorKind::NotFound
        {
            errors.push(format!("remove {}: {e}", p.display()));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(anyhow!("teardown incomplete: {}", errors.join("; ")))
    }
}

/// `kcap-<pid>-...` -> pid (names of beds made by `Testbed::up`).
fn owner_pid(name: &str, prefix: &str) -> Option<u32> {
    let rest = name.strip_prefix(prefix)?;
    let (pid, _) = rest.split_once('-')?;
    pid.parse().ok()
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes namespaces and temp dirs of beds whose owning process is gone.
pub(crate) fn gc_stale() {
    for ns in netns::list() {
        if let Some(pid) = owner_pid(&ns, "kcap-")
            && !alive(pid)
        {
            let _ = netns::kill_all(&ns);
            let _ = netns::delete(&ns);
        }
    }
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = owner_pid(&name, TEMPDIR_PREFIX)
            && !alive(pid)
        {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::owner_pid;

    #[test]
    fn parses_owner_pids_only_from_generated_names() {
        assert_eq!(owner_pid("kcap-123-4-node-a", "kcap-"), Some(123));
        assert_eq!(owner_pid("kcap-tb-client", "kcap-"), None);
        assert_eq!(owner_pid("other-1-2", "kcap-"), None);
    }
}
