//! A node that reboots in the middle of a capture (`Testbed::reboot`: its cables
//! cut, every process on it killed, its pods stopped; 3 s later the cables back,
//! sshd and traffic started again, its pods started again in place with new
//! containers, a `restartPolicy: Never` helper pod failed). Over SSH kcap ends
//! with "connection lost" and the packets that arrived; through the API with
//! `--follow` it captures the restarted pods again. Nothing is left either way.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::kube::{LIMIT, cluster};
use crate::kube_lifecycle::assert_clean;
use crate::util::*;

const DOWN: Duration = Duration::from_secs(3);

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Whether a packet reads from `file` (being written: it may end mid-record).
fn has_packet(file: &std::path::Path) -> bool {
    let Ok(mut reader) = kcap_pcap::open(file) else {
        return false;
    };
    reader.next().is_some_and(|r| r.is_ok())
}

#[test]
fn an_ssh_node_that_reboots_ends_its_capture_with_what_arrived() {
    let bed = Bed::minimal();
    let file = bed.path("reboot.pcapng");
    let child = bed
        .kcap()
        .args(["--ssh-host", "node-a"])
        .spawn_writing(&file);
    assert!(bed.wait_capturing("node-a", Duration::from_secs(20)));
    std::thread::sleep(Duration::from_secs(1));
    let rebooted = Instant::now();
    bed.bed.reboot("node-a", DOWN).unwrap();
    let out = wait(child, Duration::from_secs(40));
    assert_exit(&out, 12, &["node-a"]);
    // Keepalives (3 x 2 s) or the rebooted node's reset end it, not a long timeout.
    assert!(
        rebooted.elapsed() < Duration::from_secs(20),
        "kcap took {:?}",
        rebooted.elapsed()
    );
    assert!(
        !read_capture(&file).records.is_empty(),
        "the packets before the reboot are lost"
    );
    assert!(tshark_count(&file, None) > 0);
    assert!(
        bed.wait_capture_gone("node-a", Duration::from_secs(5))
            .is_empty()
    );
    // The node is back: a new capture works.
    let again = run(
        bed.kcap()
            .args(["--ssh-host", "node-a", "-c", "5", "-o"])
            .arg(bed.path("after.pcapng")),
        Duration::from_secs(40),
    );
    assert_ok(&again);
    assert_eq!(read_capture(&bed.path("after.pcapng")).records.len(), 5);
}

/// The web pods captured through helper pods with `--follow`; the node of one of
/// them reboots. Its pod comes back with a new container (and its helper pod
/// fails): kcap says so, captures it again through a new helper, and leaves no
/// helper pod behind.
#[test]
fn with_follow_the_pods_of_a_rebooted_node_are_captured_again() {
    kcap_testbed::require_kubectl!();
    let bed = cluster();
    let web = bed.pods_of("web");
    let nodes = bed.pod_field("web", "spec.nodeName");
    let file = bed.path("follow.pcapng");
    let mut child = bed
        .kcap_kube()
        .args(["-n", "prod", "-l", "app=web", "--via", "node", "--follow"])
        .spawn_writing(&file);
    let deadline = Instant::now() + LIMIT;
    while !has_packet(&file) {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!(
                "no packet before the reboot:\n{}",
                stderr(&child.wait_with_output().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let ids_before = bed.pod_field("web", "status.containerStatuses[0].containerID");
    bed.bed.reboot(&nodes[0], DOWN).unwrap();
    let back = now_nanos();
    let ids_after = bed.pod_field("web", "status.containerStatuses[0].containerID");
    assert_ne!(ids_before[0], ids_after[0], "the pod did not restart");
    assert_eq!(
        bed.pod_field("web", "status.containerStatuses[0].restartCount")[0],
        "1"
    );

    // Captured again: an interface more than the pods, with packets from after.
    let deadline = Instant::now() + LIMIT;
    loop {
        let again = kcap_pcap::open(&file).ok().map(|mut r| {
            let mut n = 0;
            while let Some(Ok(record)) = r.next() {
                n += usize::from(
                    record.interface_id as usize >= web.len() && record.packet.ts_nanos > back,
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
            panic!(
                "the restarted pod was not captured again:\n{}",
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // SAFETY: kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = wait(child, Duration::from_secs(20));
    let text = stderr(&out);
    // The killed capture is an error (exit 1) said in words, not the API's
    // "error executing command [the whole script]".
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("killed by SIGKILL"), "{text}");
    assert!(!text.contains("POSIX sh"), "{text}");
    assert!(
        text.contains(&format!("prod/{}: restarted", web[0])),
        "{text}"
    );
    let capture = read_capture(&file);
    let restarted = nodes.iter().filter(|n| **n == nodes[0]).count();
    assert_eq!(capture.interfaces.len(), web.len() + restarted, "{text}");
    assert!(capture.timestamps_non_decreasing());
    assert_clean(&bed, "a node rebooted under --follow");
}
