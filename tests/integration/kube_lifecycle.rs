//! Every way a Kubernetes capture ends, for the two methods that leave something
//! behind if kcap is careless: `--via node` (a helper pod) and `--via ephemeral` (a
//! debug container whose process captures). Normal end by `--count`, Ctrl-C,
//! SIGTERM and the API connection lost (the control-plane's cable cut during the
//! capture) must each leave no helper pod (asked through the API, after the cable
//! is back) and no capture process in any namespace of the bed (its nodes' and its
//! pods'; see [`Bed::capture_processes`]). SIGKILL is in `kube.rs`.

use std::process::Child;
use std::time::{Duration, Instant};

use crate::kube::{LIMIT, cluster};
use crate::util::{Bed, SpawnWriting, assert_exit, assert_ok, read_capture, stderr, wait};

/// How long the capture may take to start (ephemeral containers and helper pods
/// start in a few seconds; a loaded machine needs more).
const START_WITHIN: Duration = Duration::from_secs(30);
/// The wrapper stops the tool at once on a normal end, and at most 5 s (+3 s
/// before SIGKILL) after the heartbeat stopped when kcap could not say goodbye.
/// The capture file of the tests that stop kcap from outside.
const FILE: &str = "capture.pcapng";
const CAPTURE_GONE_WITHIN: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq)]
enum Via {
    Node,
    Ephemeral,
}

impl Via {
    fn name(self) -> &'static str {
        match self {
            Via::Node => "node",
            Via::Ephemeral => "ephemeral",
        }
    }
}

/// kcap capturing pod/toolbox with `via`, plus `extra` arguments.
fn start(bed: &Bed, via: Via, file: &str, extra: &[&str]) -> Child {
    bed.kcap_kube()
        .args(["pod/toolbox", "--via", via.name()])
        .args(extra)
        .spawn_writing(bed.path(file))
}

/// Waits until the capture runs in the toolbox pod's namespace and a packet of the
/// pod's traffic reached the file (on a fresh bed that takes a few seconds).
fn wait_capturing(bed: &Bed, child: &mut Child, file: &str) {
    let running = bed.wait_capture_in_pod("prod", "toolbox", START_WITHIN);
    if !running {
        let _ = child.kill();
    }
    assert!(running, "the capture never started in prod/toolbox");
    let got = wait_packets(&bed.path(file), START_WITHIN);
    if !got {
        let _ = child.kill();
    }
    assert!(got, "no packet reached {}", file);
    assert!(child.try_wait().unwrap().is_none(), "kcap ended early");
}

/// Whether a packet reached `path` (a capture being written) within `within`.
fn wait_packets(path: &std::path::Path, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        // A file being written may end mid-record: count what reads cleanly.
        if let Ok(mut reader) = kcap_pcap::open(path)
            && reader.next().is_some_and(|r| r.is_ok())
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) of our own child (`ip netns exec` execs kcap: same pid).
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

/// Nothing left: no capture process anywhere in the bed, no helper pod, and every
/// debug container of the toolbox pod terminated.
pub(crate) fn assert_clean(bed: &Bed, what: &str) {
    let left = bed.wait_no_capture(CAPTURE_GONE_WITHIN);
    assert!(left.is_empty(), "{what}: capture processes left: {left:?}");
    assert_eq!(
        bed.helpers_left(Duration::from_secs(20)),
        "",
        "{what}: helper pods left"
    );
    let deadline = Instant::now() + CAPTURE_GONE_WITHIN;
    loop {
        let states = toolbox_field(
            bed,
            "{range .status.ephemeralContainerStatuses[*]}{.name}: {.state}{\"\\n\"}{end}",
        );
        if !states.contains("running") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: debug container still running:\n{states}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn count_ends(via: Via) {
    let bed = cluster();
    let out = wait(start(&bed, via, "c.pcapng", &["-c", "10"]), LIMIT);
    assert_ok(&out);
    assert!(
        stderr(&out).contains(&format!("via {}", via.name())),
        "{}",
        stderr(&out)
    );
    assert_eq!(read_capture(&bed.path("c.pcapng")).records.len(), 10);
    assert_clean(&bed, "--count");
}

fn signal_ends(via: Via, sig: i32) {
    let bed = cluster();
    let mut child = start(&bed, via, FILE, &[]);
    wait_capturing(&bed, &mut child, FILE);
    signal(&child, sig);
    // Stopped on purpose, the pod's capture ends at once (no heartbeat timeout).
    let out = wait(child, Duration::from_secs(4));
    assert_ok(&out);
    let capture = read_capture(&bed.path(FILE));
    assert!(!capture.records.is_empty(), "no packets:\n{}", stderr(&out));
    assert_clean(&bed, &format!("signal {sig}"));
}

/// The control-plane's cable is cut during the capture: kcap notices within its
/// link timeout, ends with "connection lost" (12) and the file keeps what arrived;
/// the pod's capture stops with the heartbeat. Once the cable is back, the helper
/// pod is gone (kcap or its reaper deleted it).
fn api_lost(via: Via) {
    let bed = cluster();
    let mut child = start(&bed, via, FILE, &[]);
    wait_capturing(&bed, &mut child, FILE);
    bed.bed.cut_link("control-plane").unwrap();
    let cut = Instant::now();
    let out = wait(child, Duration::from_secs(40));
    let took = cut.elapsed();
    // No API needed for this one: checked before the cable is back.
    let left = bed.wait_no_capture(CAPTURE_GONE_WITHIN);
    bed.bed.restore_link("control-plane").unwrap();
    assert_exit(&out, 12, &["connection", "lost"]);
    assert!(
        took < Duration::from_secs(30),
        "kcap took {took:?} to notice"
    );
    assert!(left.is_empty(), "capture processes left: {left:?}");
    let capture = read_capture(&bed.path(FILE));
    assert!(!capture.records.is_empty(), "no packets:\n{}", stderr(&out));
    assert_clean(&bed, "API lost");
}

#[test]
fn node_count_ends_and_cleans_up() {
    kcap_testbed::require_kubectl!();
    count_ends(Via::Node);
}

#[test]
fn node_ctrl_c_cleans_up() {
    kcap_testbed::require_kubectl!();
    signal_ends(Via::Node, libc::SIGINT);
}

#[test]
fn node_sigterm_cleans_up() {
    kcap_testbed::require_kubectl!();
    signal_ends(Via::Node, libc::SIGTERM);
}

#[test]
fn node_api_lost_cleans_up() {
    kcap_testbed::require_kubectl!();
    api_lost(Via::Node);
}

#[test]
fn ephemeral_count_ends_and_cleans_up() {
    kcap_testbed::require_kubectl!();
    count_ends(Via::Ephemeral);
}

#[test]
fn ephemeral_ctrl_c_cleans_up() {
    kcap_testbed::require_kubectl!();
    signal_ends(Via::Ephemeral, libc::SIGINT);
}

#[test]
fn ephemeral_sigterm_cleans_up() {
    kcap_testbed::require_kubectl!();
    signal_ends(Via::Ephemeral, libc::SIGTERM);
}

#[test]
fn ephemeral_api_lost_cleans_up() {
    kcap_testbed::require_kubectl!();
    api_lost(Via::Ephemeral);
}

/// Each of Ctrl-C and SIGKILL, sent to kcap capturing pod/toolbox `--via VIA` with
/// `kcap.test/large:1` (its pull takes `LARGE_PULL`) as soon as `made` (names of
/// what kcap makes in the cluster) shows a new one, while it still starts. Ctrl-C
/// must end kcap cleanly. `ended` is then called with the new name, the signal's
/// name; after it nothing may be left.
fn stop_while_starting(
    via: Via,
    made: impl Fn(&Bed) -> Vec<String>,
    ended: impl Fn(&Bed, &str, &str),
) {
    let bed = cluster();
    for (sig, what) in [(libc::SIGINT, "Ctrl-C"), (libc::SIGKILL, "SIGKILL")] {
        let before = made(&bed);
        let mut child = bed
            .kcap()
            .arg("--kubeconfig")
            .arg(bed.bed.kubeconfig())
            .args(["pod/toolbox", "--via", via.name()])
            .args(["--image", "kcap.test/large:1"])
            .spawn_writing(bed.path(FILE));
        let deadline = Instant::now() + START_WITHIN;
        let name = loop {
            if let Some(name) = made(&bed).into_iter().find(|n| !before.contains(n)) {
                break name;
            }
            if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!("{what}: kcap made nothing\n{}", stderr(&out));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        signal(&child, sig);
        let out = wait(child, Duration::from_secs(15));
        if sig == libc::SIGINT {
            assert_ok(&out);
        }
        ended(&bed, &name, what);
        assert_clean(&bed, what);
    }
}

/// Stopped while its debug container is still starting, kcap does not leave the
/// container a minute at its gate: once it runs it is ended, by kcap itself after
/// Ctrl-C, by kcap's reaper after SIGKILL.
#[test]
fn ephemeral_stopped_while_its_container_starts_leaves_it_ended() {
    kcap_testbed::require_kubectl!();
    stop_while_starting(Via::Ephemeral, debug_container_names, |bed, added, what| {
        // Ended, not merely not running yet: its state becomes terminated.
        let deadline = Instant::now() + kcap_testbed::LARGE_PULL + CAPTURE_GONE_WITHIN;
        loop {
            let state = toolbox_field(
                bed,
                &format!("{{.status.ephemeralContainerStatuses[?(@.name==\"{added}\")].state}}"),
            );
            if state.contains("terminated") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: debug container {added} not ended: {state:?}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    });
}

/// Stopped while its helper pod is still starting, kcap (after Ctrl-C) or its
/// reaper (after SIGKILL) deletes the helper pod.
#[test]
fn node_stopped_while_its_helper_pod_starts_leaves_none() {
    kcap_testbed::require_kubectl!();
    let helpers = |bed: &Bed| {
        bed.helpers_left(Duration::ZERO)
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    stop_while_starting(Via::Node, helpers, |bed, helper, what| {
        let left = bed.helpers_left(Duration::from_secs(20));
        assert_eq!(left, "", "{what}: helper pod {helper} left");
    });
}

/// The names of the toolbox pod's debug containers.
fn debug_container_names(bed: &Bed) -> Vec<String> {
    toolbox_field(bed, "{.spec.ephemeralContainers[*].name}")
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// What a JSONPath template gives on the toolbox pod (`kubectl get -o jsonpath=`).
fn toolbox_field(bed: &Bed, template: &str) -> String {
    bed.kubectl_out(&[
        "get",
        "pod",
        "-n",
        "prod",
        "toolbox",
        "-o",
        &format!("jsonpath={template}"),
    ])
}

/// With `--follow`, a capture lost with the API connection starts again once the
/// API answers: kcap stays up, the pod gets a second interface, and its packets
/// are from after the cable was back. Nothing is left once kcap ends.
#[test]
fn follow_captures_again_after_the_api_comes_back() {
    kcap_testbed::require_kubectl!();
    let bed = cluster();
    let mut child = bed
        .kcap_kube()
        .args([
            "-n",
            "prod",
            "-l",
            "app=toolbox",
            "--follow",
            "--via",
            "node",
        ])
        .spawn_writing(bed.path(FILE));
    wait_capturing(&bed, &mut child, FILE);
    bed.bed.cut_link("control-plane").unwrap();
    // The pod's capture stops with the heartbeat once kcap lost the connection.
    let left = bed.wait_no_capture(Duration::from_secs(30));
    bed.bed.restore_link("control-plane").unwrap();
    let back = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    if !left.is_empty() {
        let _ = child.kill();
        panic!("the capture did not stop with the connection: {left:?}");
    }
    if !bed.wait_capture_in_pod("prod", "toolbox", Duration::from_secs(60)) {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!("prod/toolbox was not captured again:\n{}", stderr(&out));
    }
    assert!(child.try_wait().unwrap().is_none(), "kcap ended");
    std::thread::sleep(Duration::from_secs(3));
    signal(&child, libc::SIGINT);
    let out = wait(child, Duration::from_secs(10));
    // The gap is reported: the first capture of the pod lost its connection.
    assert_exit(&out, 12, &["capturing it again", "connection"]);
    let capture = read_capture(&bed.path(FILE));
    assert_eq!(
        capture.interface_names(),
        ["prod/toolbox/any", "prod/toolbox/any"],
        "{}",
        stderr(&out)
    );
    let after: Vec<u64> = capture
        .records
        .iter()
        .filter(|r| r.interface_id == 1)
        .map(|r| r.packet.ts_nanos)
        .collect();
    assert!(!after.is_empty(), "no packets after the API came back");
    assert!(
        after.iter().all(|&t| t > back),
        "packets of the second capture predate the reconnection"
    );
    assert_clean(&bed, "--follow after API lost");
}

/// kcap capturing the web pods (`--via node`, plus `extra`) until a packet
/// arrived; then the API server restarts (down 3 s).
fn web_captured_then_restart(bed: &Bed, extra: &[&str]) -> Child {
    let mut child = bed
        .kcap_kube()
        .args(["-n", "prod", "-l", "app=web", "--via", "node"])
        .args(extra)
        .spawn_writing(bed.path(FILE));
    let got = wait_packets(&bed.path(FILE), START_WITHIN);
    if !got {
        let _ = child.kill();
    }
    assert!(got, "no packet before the restart");
    bed.bed
        .api_server()
        .expect("a cluster bed")
        .restart(Duration::from_secs(3));
    child
}

/// The API server restarts (every connection and stream cut, nothing taken for
/// 3 s, then the same objects served again) while two pods are captured through
/// it: without `--follow` kcap ends with "connection lost" (12) and the file
/// keeps what arrived; nothing is left once it is back.
#[test]
fn an_api_server_restart_ends_the_captures_with_what_arrived() {
    kcap_testbed::require_kubectl!();
    let bed = cluster();
    let child = web_captured_then_restart(&bed, &[]);
    let out = wait(child, Duration::from_secs(40));
    assert_exit(&out, 12, &["connection"]);
    let capture = read_capture(&bed.path(FILE));
    let pods = bed.pods_of("web").len();
    assert_eq!(capture.interfaces.len(), pods, "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("eof in poll"),
        "kube-rs's detail leaked"
    );
    assert!(!capture.records.is_empty());
    std::thread::sleep(Duration::from_secs(3));
    assert_clean(&bed, "API server restarted");
}

/// The same restart with `--follow`: kcap stays up and captures the pods again
/// once the server is back; the pods' second interfaces hold packets from after.
#[test]
fn with_follow_an_api_server_restart_is_a_gap_not_an_end() {
    kcap_testbed::require_kubectl!();
    let bed = cluster();
    let mut child = web_captured_then_restart(&bed, &["--follow"]);
    let back = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        + 3_000_000_000;
    let pods = bed.pods_of("web").len();
    // Captured again: one more interface per pod, with packets.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let again = kcap_pcap::open(&bed.path(FILE)).ok().map(|mut r| {
            let mut n = 0;
            while let Some(Ok(record)) = r.next() {
                n += usize::from(
                    record.interface_id as usize >= pods && record.packet.ts_nanos > back,
                );
            }
            n
        });
        if again.unwrap_or(0) > 0 {
            break;
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("the pods were not captured again:\n{}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    signal(&child, libc::SIGINT);
    let out = wait(child, Duration::from_secs(10));
    assert_exit(&out, 12, &["capturing it again"]);
    let capture = read_capture(&bed.path(FILE));
    assert_eq!(capture.interfaces.len(), 2 * pods, "{}", stderr(&out));
    assert_clean(&bed, "--follow after an API server restart");
}
