//! Container processes: the launcher that gives a process its image's view
//! (own mount and UTS namespace, hidden/added programs, user, capabilities),
//! `exec` into a running container, and PATH lookups in a container's view.
//!
//! Launcher: `ip netns exec NS unshare -m -u sh -c SCRIPT` where SCRIPT sets the
//! hostname, mounts its own /tmp, makes the image's bind mounts, touches a ready file and
//! `exec setpriv ... -- ARGV`; every step execs, so the spawned PID is the
//! container's main process.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::images::{self, Image};

/// Capabilities containerd grants by default (the Docker set).
const DEFAULT_CAPS: &[&str] = &[
    "chown",
    "dac_override",
    "fsetid",
    "fowner",
    "mknod",
    "net_raw",
    "setgid",
    "setuid",
    "setfcap",
    "setpcap",
    "net_bind_service",
    "sys_chroot",
    "kill",
    "audit_write",
];
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Who a container's processes run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Privileges {
    pub uid: u32,
    pub privileged: bool,
    /// Extra capabilities (`NET_ADMIN`, ...), on top of the default set.
    pub add: Vec<String>,
}

impl Privileges {
    /// `setpriv` options: the uid/gid, no supplementary groups, and the
    /// capability bounding set (root keeps all of it; other users get none since
    /// nothing is ambient, as for a non-root container).
    pub(crate) fn setpriv_args(&self) -> Vec<String> {
        let mut args = vec![
            format!("--reuid={}", self.uid),
            format!("--regid={}", self.uid),
            "--clear-groups".to_string(),
        ];
        if self.privileged {
            return args;
        }
        let mut caps: Vec<String> = DEFAULT_CAPS.iter().map(|c| c.to_string()).collect();
        for c in &self.add {
            let c = c.to_ascii_lowercase();
            let c = c.strip_prefix("cap_").unwrap_or(&c).to_string();
            if c == "all" {
                return args;
            }
            if !caps.contains(&c) {
                caps.push(c);
            }
        }
        let bounding: Vec<String> = caps.iter().map(|c| format!("+{c}")).collect();
        args.push("--inh-caps=-all".into());
        args.push(format!("--bounding-set=-all,{}", bounding.join(",")));
        args
    }
}

/// Shell single-quoting.
pub(crate) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Directories a program may be on (with merged /usr, /bin and /sbin are links).
const BIN_DIRS: [&str; 4] = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin"];

/// Everything a launcher needs to know.
pub(crate) struct Launch<'a> {
    pub netns: &'a str,
    pub hostname: &'a str,
    pub image: &'static Image,
    pub privileges: &'a Privileges,
    pub argv: &'a [String],
    pub env: &'a [(String, String)],
    /// Empty non-executable file mounted over missing programs.
    pub placeholder: &'a Path,
    /// The node's directory with `crictl`, for images that have it.
    pub crictl_dir: PathBuf,
    /// Created by the launcher once its mounts are made.
    pub ready_file: PathBuf,
    /// The bed's directory (scripts, placeholder, every node's crictl, ready
    /// files): still seen at its path inside the container's own `/tmp`.
    pub bed_dir: &'a Path,
}

/// The image's environment plus the container's own variables.
pub(crate) fn environment(
    uid: u32,
    hostname: &str,
    env: &[(String, String)],
) -> Vec<(String, String)> {
    let mut all = vec![
        ("PATH".to_string(), images::PATH.to_string()),
        ("HOME".to_string(), Image::home(uid).to_string()),
        ("HOSTNAME".to_string(), hostname.to_string()),
    ];
    for (k, v) in env {
        all.retain(|(existing, _)| existing != k);
        all.push((k.clone(), v.clone()));
    }
    all
}

impl Launch<'_> {
    fn script(&self) -> String {
        let mut s = String::from("set -e\n");
        // Own UTS namespace: the pod's hostname (no `hostname` binary needed).
        s += &format!(
            "echo {} > /proc/sys/kernel/hostname\n",
            quote(self.hostname)
        );
        // Its own /tmp, as a container's writable layer is its own: what it
        // leaves there (kcap's agent, if a kill stopped its wrapper) goes with
        // it, never onto the machine. The bed's directory, which may be under
        // /tmp, is kept at its path (through /mnt, in this namespace only).
        let dir = quote(&self.bed_dir.display().to_string());
        s += &format!(
            "mount --bind {dir} /mnt\n\
             mount -t tmpfs -o size=256m,mode=1777 kcap-container-tmp /tmp\n\
             mkdir -p {dir}\n\
             mount --bind /mnt {dir}\n\
             umount /mnt\n"
        );
        if self.image.crictl {
            s += &format!(
                "mount --bind {} /usr/local/sbin\n",
                quote(&self.crictl_dir.display().to_string())
            );
        }
        // `mount` itself may be missing from the image: hide it last.
        let mut missing: Vec<&str> = self.image.missing.to_vec();
        missing.sort_by_key(|m| *m == "mount");
        for name in missing {
            for dir in BIN_DIRS {
                let target = Path::new(dir).join(name);
                if target.exists() {
                    s += &format!(
                        "mount --bind {} {}\n",
                        quote(&self.placeholder.display().to_string()),
                        quote(&target.display().to_string())
                    );
                }
            }
        }
        s += &format!(": > {}\n", quote(&self.ready_file.display().to_string()));
        s += "exec setpriv";
        for a in self.privileges.setpriv_args() {
            s += &format!(" {}", quote(&a));
        }
        s += " --";
        for a in self.argv {
            s += &format!(" {}", quote(a));
        }
        s
    }

    /// The launcher command; stdio is left to the caller.
    pub(crate) fn command(&self) -> Command {
        let _ = fs::remove_file(&self.ready_file);
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns", "exec", self.netns, "unshare", "-m", "-u", "sh", "-c",
        ])
        .arg(self.script())
        .env_clear()
        .envs(environment(self.privileges.uid, self.hostname, self.env));
        cmd
    }
}

/// Waits until the launcher of `pid` has made its mounts (its ready file
/// exists); fails if it exits first.
pub(crate) fn wait_ready(
    ready_file: &Path,
    mut exited: impl FnMut() -> Option<String>,
) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if ready_file.exists() {
            let _ = fs::remove_file(ready_file);
            return Ok(());
        }
        if let Some(status) = exited() {
            bail!("container exited during start ({status})");
        }
        if Instant::now() > deadline {
            bail!("container did not start within {READY_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The mount namespace of a process, as (device, inode).
pub(crate) fn mount_ns(pid: u32) -> Option<(u64, u64)> {
    fs::metadata(format!("/proc/{pid}/ns/mnt"))
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Finds `name` on the image PATH as the container with main process `pid`
/// sees it: through `/proc/PID/root`, which resolves paths in that process's
/// mount namespace. Absolute symlinks are followed by hand (the kernel would
/// resolve them in our view, where hidden programs are not hidden).
pub(crate) fn lookup(pid: u32, name: &str) -> Option<PathBuf> {
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    let candidates: Vec<PathBuf> = if name.contains('/') {
        vec![PathBuf::from(name)]
    } else {
        images::PATH
            .split(':')
            .map(|d| Path::new(d).join(name))
            .collect()
    };
    candidates.into_iter().find(|p| is_executable(&root, p))
}

fn is_executable(root: &Path, path: &Path) -> bool {
    let mut path = path.to_path_buf();
    for _ in 0..40 {
        let inside = root.join(path.strip_prefix("/").unwrap_or(&path));
        let Ok(meta) = fs::symlink_metadata(&inside) else {
            return false;
        };
        if meta.file_type().is_symlink() {
            let Ok(target) = fs::read_link(&inside) else {
                return false;
            };
            path = if target.is_absolute() {
                target
            } else {
                path.parent().unwrap_or(Path::new("/")).join(target)
            };
            continue;
        }
        return meta.is_file() && meta.permissions().mode() & 0o111 != 0;
    }
    false
}

/// The argv for `exec`: enter the container's mount, network and UTS
/// namespaces, then become its user.
pub(crate) fn exec_command(pid: u32, privileges: &Privileges, argv: &[String]) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.args(["-t", &pid.to_string(), "-m", "-n", "-u", "--", "setpriv"])
        .args(privileges.setpriv_args())
        .arg("--")
        .args(argv)
        .stdin(Stdio::null());
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privileges_map_to_setpriv() {
        let nonroot = Privileges {
            uid: 1000,
            privileged: false,
            add: vec![],
        };
        let args = nonroot.setpriv_args();
        assert!(args.contains(&"--reuid=1000".to_string()));
        let root = Privileges {
            uid: 0,
            privileged: false,
            add: vec!["NET_ADMIN".into(), "NET_RAW".into()],
        };
        let b = root.setpriv_args().pop().unwrap();
        assert!(b.starts_with("--bounding-set=-all,+chown"), "{b}");
        assert!(b.ends_with(",+net_admin"), "{b}");
        let all = Privileges {
            uid: 0,
            privileged: true,
            add: vec![],
        };
        assert_eq!(all.setpriv_args().len(), 3);
    }

    #[test]
    fn quotes_for_sh() {
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
