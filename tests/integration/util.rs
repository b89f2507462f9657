//! Shared helpers: run kcap inside a test bed's client namespace, read what it wrote.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use kcap_testbed::{Spec, Testbed};

/// Starting kcap in the background for a test that watches it run.
pub(crate) trait SpawnWriting {
    /// Spawns the command with `-o FILE` added: stdout discarded, stderr kept
    /// for the test's messages.
    fn spawn_writing(&mut self, file: impl AsRef<std::ffi::OsStr>) -> Child;
}

impl SpawnWriting for Command {
    fn spawn_writing(&mut self, file: impl AsRef<std::ffi::OsStr>) -> Child {
        self.arg("-o")
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

pub const KCAP: &str = env!("CARGO_BIN_EXE_kcap");

/// kcap sends the capture agent next to it (crates/agent). It is another package's
/// binary, which `cargo nextest run`/`cargo test` do not build for these tests:
/// `scripts/test` builds it first. A missing or stale one would test old code.
fn agent_is_current() {
    let agent = Path::new(KCAP).with_file_name("kcap-agent");
    let built = std::fs::metadata(&agent).and_then(|m| m.modified());
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/agent/src");
    let newest_source = std::fs::read_dir(&sources)
        .expect("crates/agent/src")
        .filter_map(|e| e.ok()?.metadata().ok()?.modified().ok())
        .max();
    match built {
        Ok(built) if newest_source.is_none_or(|s| s <= built) => {}
        _ => panic!(
            "{} is missing or older than crates/agent/src: run scripts/test, or \
             `cargo build --workspace --bins` before the tests",
            agent.display()
        ),
    }
}

/// A test bed plus a scratch directory that both disappear with the test.
pub struct Bed {
    pub bed: Testbed,
    pub scratch: tempfile::TempDir,
}

impl Bed {
    pub fn minimal() -> Bed {
        Bed::with(Spec::minimal())
    }

    pub fn full() -> Bed {
        Bed::with(Spec::default())
    }

    pub fn with(spec: Spec) -> Bed {
        agent_is_current();
        let bed = Testbed::up(spec).expect("test bed up");
        Bed {
            bed,
            scratch: tempfile::tempdir().expect("scratch dir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.scratch.path().join(name)
    }

    /// `kcap` in the client namespace, with the bed's ssh_config and a private HOME so
    /// nothing of the machine's own ~/.ssh is used.
    pub fn kcap(&self) -> Command {
        let mut cmd = self.bed.client_command(KCAP);
        cmd.arg("--ssh-config").arg(self.bed.ssh_config());
        cmd.env("HOME", self.scratch.path())
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("KCAP_SSH_PASSWORD");
        cmd.stdin(Stdio::null());
        cmd
    }

    /// kcap without the bed's ssh_config (for tests of explicit flags).
    pub fn kcap_bare(&self) -> Command {
        let mut cmd = self.bed.client_command(KCAP);
        cmd.arg("--ssh-config").arg("none");
        cmd.env("HOME", self.scratch.path())
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("KCAP_SSH_PASSWORD");
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Waits (up to `within`) until no capture process (kcap's agent, tcpdump,
    /// tshark, dumpcap) runs on `host`; returns the survivors, if any.
    pub fn wait_capture_gone(&self, host: &str, within: Duration) -> Vec<u32> {
        let deadline = Instant::now() + within;
        loop {
            let left: Vec<u32> = CAPTURE_COMMS
                .iter()
                .flat_map(|comm| self.bed.processes_named(host, comm))
                .collect();
            if left.is_empty() || Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// kcap's capture agents capturing on `host`: started as captures (not its
    /// short set-up runs) and with their ring bound to the interface, so a packet
    /// sent now is seen (the agent binds last, after the ring and the filter).
    pub fn capturing_agents(&self, host: &str) -> Vec<u32> {
        self.bed
            .processes_named(host, "kcap-agent")
            .into_iter()
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.split(|&b| b == 0).any(|w| w == b"--remove"))
                    && has_bound_packet_socket(*pid)
            })
            .collect()
    }

    /// Waits until kcap's capture agent (the default tool) captures on `host`.
    pub fn wait_capturing(&self, host: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if !self.capturing_agents(host).is_empty() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Pings node-a (198.51.100.10) from the client `count` times, 50 ms apart,
    /// with `payload` bytes; each request gets its reply before this returns.
    pub fn ping_node_a(&self, count: u32, payload: u32) {
        let ping = self
            .bed
            .client_command("ping")
            .args([
                "-c",
                &count.to_string(),
                "-i",
                "0.05",
                "-s",
                &payload.to_string(),
            ])
            .arg("198.51.100.10")
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(ping.success(), "ping node-a from the client");
    }

    /// Waits until a process named `comm` runs on `host`.
    pub fn wait_running(&self, host: &str, comm: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if !self.bed.processes_named(host, comm).is_empty() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

/// Runs a command to completion with a safety timeout, returning its output.
pub fn run(cmd: &mut Command, timeout: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            // SAFETY: plain kill(2) of our own child.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("command timed out after {timeout:?}: {cmd:?}");
        }
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts success and shows stderr when not.
pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "kcap failed ({:?}):\n{}",
        out.status,
        stderr(out)
    );
}

/// Asserts the exit code and that stderr mentions every word in `says`.
pub fn assert_exit(out: &Output, code: i32, says: &[&str]) {
    let text = stderr(out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "unexpected exit, stderr:\n{text}"
    );
    for word in says {
        assert!(text.contains(word), "stderr lacks {word:?}:\n{text}");
    }
}

/// Every record of a capture file, read with kcap's own reader; panics if the file
/// is not a clean, complete capture.
pub fn read_capture(path: &Path) -> Capture {
    let mut reader =
        kcap_pcap::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut records = Vec::new();
    for record in &mut reader {
        records.push(record.unwrap_or_else(|e| panic!("read {}: {e}", path.display())));
    }
    Capture {
        format: reader.format(),
        interfaces: reader.interfaces().to_vec(),
        statistics: reader.statistics().to_vec(),
        records,
    }
}

pub struct Capture {
    pub format: kcap_pcap::Format,
    pub interfaces: Vec<kcap_pcap::InterfaceInfo>,
    pub statistics: Vec<kcap_pcap::StatisticsRecord>,
    pub records: Vec<kcap_pcap::Record>,
}

impl Capture {
    pub fn interface_names(&self) -> Vec<String> {
        self.interfaces
            .iter()
            .map(|i| i.name.clone().unwrap_or_default())
            .collect()
    }

    pub fn count_on(&self, interface_name: &str) -> usize {
        let ids: Vec<u32> = (0..self.interfaces.len() as u32)
            .filter(|&i| self.interfaces[i as usize].name.as_deref() == Some(interface_name))
            .collect();
        self.records
            .iter()
            .filter(|r| ids.contains(&r.interface_id))
            .count()
    }

    pub fn timestamps_non_decreasing(&self) -> bool {
        self.records
            .windows(2)
            .all(|w| w[0].packet.ts_nanos <= w[1].packet.ts_nanos)
    }
}

/// tshark's view of a file: one Vec of field values per packet. Panics if tshark
/// cannot read the file cleanly.
pub fn tshark_fields(file: &Path, filter: Option<&str>, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n")
        .arg("-r")
        .arg(file)
        .args(["-T", "fields", "-E", "separator=|"]);
    if let Some(f) = filter {
        cmd.args(["-Y", f]);
    }
    for field in fields {
        cmd.args(["-e", field]);
    }
    let out = cmd.output().expect("run tshark");
    assert!(
        out.status.success(),
        "tshark cannot read {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect()
}

/// Number of packets tshark reads from a file (with an optional display filter).
pub fn tshark_count(file: &Path, filter: Option<&str>) -> usize {
    tshark_fields(file, filter, &["frame.number"]).len()
}

/// The programs kcap's wrapper may capture with, by their `/proc/PID/comm`.
pub const CAPTURE_COMMS: &[&str] = &["kcap-agent", "tcpdump", "tshark", "dumpcap"];

/// `(st_dev, st_ino)` of a network namespace file (`/run/netns/NAME`,
/// `/proc/PID/ns/net`): equal pairs are the same namespace.
fn netns_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl Bed {
    /// Capture processes (tcpdump, tshark, dumpcap) in any network namespace of
    /// this bed, its hosts' and its pods', with the namespace's name. Found by
    /// scanning /proc and comparing each process's `/proc/PID/ns/net` with the
    /// namespaces (`/run/netns/NAME`), so a capture that entered a pod's namespace
    /// from its node (`nsenter -n`, `--via node`/`ssh`) or runs in an ephemeral
    /// container counts too: `Testbed::processes_named(host, ..)` sees only the
    /// host's own namespace, never a pod's.
    pub fn capture_processes(&self) -> Vec<(u32, String)> {
        let mut namespaces: Vec<String> = self.bed.hosts().map(|h| h.netns.clone()).collect();
        namespaces.extend(
            self.bed
                .runtime()
                .pods()
                .into_iter()
                .filter_map(|p| p.netns),
        );
        let ids: Vec<((u64, u64), String)> = namespaces
            .into_iter()
            .filter_map(|ns| Some((netns_id(&Path::new("/run/netns").join(&ns))?, ns)))
            .collect();
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        procs
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| CAPTURE_COMMS.contains(&c.trim_end()))
            })
            .filter_map(|pid| {
                // Zombies have no namespace link: they never match.
                let id = netns_id(Path::new(&format!("/proc/{pid}/ns/net")))?;
                let (_, ns) = ids.iter().find(|(i, _)| *i == id)?;
                Some((pid, ns.clone()))
            })
            .collect()
    }

    /// The network namespace (`ip netns` name) of a running pod of this bed.
    pub fn pod_netns(&self, namespace: &str, pod: &str) -> String {
        self.bed
            .runtime()
            .pod(namespace, pod)
            .and_then(|p| p.netns)
            .unwrap_or_else(|| panic!("pod {namespace}/{pod} has no network namespace"))
    }

    /// Waits (up to `within`) until a capture process runs in the pod's network
    /// namespace.
    pub fn wait_capture_in_pod(&self, namespace: &str, pod: &str, within: Duration) -> bool {
        self.wait_captures_in_pod(namespace, pod, 1, within)
    }

    /// Waits (up to `within`) until `count` capture processes run in the pod's
    /// network namespace (one per interface captured there).
    pub fn wait_captures_in_pod(
        &self,
        namespace: &str,
        pod: &str,
        count: usize,
        within: Duration,
    ) -> bool {
        let netns = self.pod_netns(namespace, pod);
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let running = self.capture_processes();
            if running.iter().filter(|(_, ns)| *ns == netns).count() >= count {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Waits (up to `within`) until no capture process runs anywhere in the bed;
    /// returns the survivors, if any.
    pub fn wait_no_capture(&self, within: Duration) -> Vec<(u32, String)> {
        let deadline = Instant::now() + within;
        loop {
            let left = self.capture_processes();
            if left.is_empty() || Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Runs `command` (stdout to /dev/null, stderr kept) to its end; returns its
/// output, how long it took and its peak RSS in MiB.
// Reaped by wait4 (for its rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
pub fn run_with_peak_rss(command: &mut Command) -> (Output, Duration, u64) {
    use std::os::unix::process::ExitStatusExt;
    let started = Instant::now();
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let stderr = child.stderr.unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap());
    let mut status = 0;
    // SAFETY: rusage is plain data; all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; `status` and `usage` are valid for writes.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid);
    let out = Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: Vec::new(),
        stderr: reader.join().unwrap().into_bytes(),
    };
    (out, started.elapsed(), usage.ru_maxrss as u64 / 1024)
}

/// Waits for a started kcap to end by itself; a kcap still running after `within`
/// is killed (nothing outlives a failed test) and fails the test.
pub fn wait(mut child: Child, within: Duration) -> Output {
    let deadline = Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kcap did not end within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Whether `pid` holds an `AF_PACKET` socket that is bound and running (column
/// `R` of its namespace's `/proc/net/packet` is 1 only after `bind`).
fn has_bound_packet_socket(pid: u32) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let inodes: Vec<String> = fds
        .filter_map(|fd| {
            let link = std::fs::read_link(fd.ok()?.path()).ok()?;
            let link = link.to_str()?;
            Some(
                link.strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect();
    let Ok(table) = std::fs::read_to_string(format!("/proc/{pid}/net/packet")) else {
        return false;
    };
    // sk RefCnt Type Proto Iface R Rmem User Inode
    table.lines().skip(1).any(|row| {
        let columns: Vec<&str> = row.split_whitespace().collect();
        columns.len() >= 9 && columns[5] == "1" && inodes.iter().any(|i| i == columns[8])
    })
}
