//! Start and stop at a random moment, per method: Ctrl-C or SIGKILL while kcap
//! connects, creates the helper pod, starts the ephemeral container, or captures.
//! After every run: Ctrl-C exits 0; the file, if any, reads cleanly; 5 s later
//! nothing kcap started is left (capture processes anywhere in the bed, helper
//! pods, running debug containers, kcap's reaper, the capture agent's directory
//! in the nodes' `/tmp`). CI runs a few per method;
//! `scripts/soak` runs 100 (`KCAP_SOAK_RUNS`) and records the figures.

use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use crate::kube_lifecycle::assert_clean;
use crate::util::*;

/// Runs per method when `KCAP_SOAK_RUNS` is not set: CI's short slice.
const CI_RUNS: usize = 3;

/// The latest moment a signal comes, after kcap started.
const LATEST: Duration = Duration::from_millis(4000);

struct Method {
    name: &'static str,
    args: &'static [&'static str],
    kube: bool,
}

const METHODS: &[Method] = &[
    Method {
        name: "ssh",
        args: &["--ssh-host", "node-a"],
        kube: false,
    },
    Method {
        name: "exec",
        args: &["pod/toolbox", "--via", "exec"],
        kube: true,
    },
    Method {
        name: "ephemeral",
        args: &["pod/toolbox", "--via", "ephemeral"],
        kube: true,
    },
    Method {
        name: "node",
        args: &["pod/toolbox", "--via", "node"],
        kube: true,
    },
];

/// xorshift, seeded from the clock (printed, so a failing run can be told).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// kcap's reaper processes of this bed (named by its kubeconfig) still alive.
fn reapers(bed: &Bed) -> usize {
    let kubeconfig = bed.bed.kubeconfig().display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                c.contains("__kcap-reaper") && c.contains(&kubeconfig)
            })
        })
        .count()
}

/// The capture agent's directories in `/tmp`, which every host of the bed shares
/// (node captures and helper pods put the agent there; a container's own `/tmp`
/// goes with it). The soak runs alone, so one that appears during a run and
/// outlives it is that run's leftover.
fn agent_dirs() -> std::collections::BTreeSet<String> {
    std::fs::read_dir("/tmp")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("kcap-agent."))
        .collect()
}

#[test]
fn stopped_at_a_random_moment_kcap_leaves_nothing_behind() {
    kcap_testbed::require_kubectl!();
    let runs: usize = std::env::var("KCAP_SOAK_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CI_RUNS);
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("soak: {runs} runs per method, seed {seed}");
    let mut rng = Rng(seed);
    let bed = crate::kube::cluster();
    let started = Instant::now();
    let before = agent_dirs();
    // KCAP_SOAK_METHODS=ephemeral,node soaks some methods only (scripts/soak).
    let only = std::env::var("KCAP_SOAK_METHODS").unwrap_or_default();
    let methods = METHODS
        .iter()
        .filter(|m| only.is_empty() || only.split(',').any(|o| o == m.name));
    for method in methods {
        let mut kills = 0;
        for run in 0..runs {
            let file = bed.path(&format!("{}-{run}.pcapng", method.name));
            let mut cmd = if method.kube {
                bed.kcap_kube()
            } else {
                bed.kcap()
            };
            let child = cmd
                .args(method.args)
                .arg("-o")
                .arg(&file)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let delay = Duration::from_millis(rng.next() % LATEST.as_millis() as u64);
            let kill = rng.next().is_multiple_of(2);
            std::thread::sleep(delay);
            let sig = if kill { libc::SIGKILL } else { libc::SIGINT };
            // SAFETY: kill(2) of our own child (`ip netns exec` execs kcap: same pid).
            unsafe { libc::kill(child.id() as i32, sig) };
            let out = wait(child, Duration::from_secs(30));
            let what = format!(
                "{} run {run}: {} after {delay:?} (seed {seed})",
                method.name,
                if kill { "SIGKILL" } else { "Ctrl-C" }
            );
            if kill {
                kills += 1;
            } else {
                // A Ctrl-C that lands before kcap installed its handlers (the first
                // milliseconds: exec, flags, runtime) ends it by SIGINT, as any
                // program; nothing has started yet, which the checks below confirm.
                use std::os::unix::process::ExitStatusExt;
                assert!(
                    out.status.success() || out.status.signal() == Some(libc::SIGINT),
                    "{what}: {:?}\n{}",
                    out.status,
                    stderr(&out)
                );
            }
            if std::fs::metadata(&file).is_ok_and(|m| m.len() > 0) {
                read_capture(&file);
            }
            // Nothing left 5 s later (the checks wait up to their own limits).
            std::thread::sleep(Duration::from_secs(if kill { 5 } else { 0 }));
            assert_clean(&bed, &what);
            let deadline = Instant::now() + Duration::from_secs(10);
            while reapers(&bed) > 0 {
                assert!(
                    Instant::now() < deadline,
                    "{what}: kcap's reaper still runs"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let left: Vec<_> = agent_dirs().difference(&before).cloned().collect();
                if left.is_empty() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{what}: the agent's directory is left in /tmp: {left:?}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        eprintln!(
            "soak: {}: {runs} runs ({kills} SIGKILL), nothing left",
            method.name
        );
    }
    eprintln!("soak: done in {:?}", started.elapsed());
}
