//! Every way a capture ends: duration, count, Ctrl-C, SIGTERM, kcap killed, the link
//! cut. Each leaves a readable file and no capture process on the node.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

const GONE_WITHIN: Duration = Duration::from_secs(5);

fn start(bed: &Bed, file: &std::path::Path) -> Child {
    let mut child = bed
        .kcap()
        .args(["--ssh-host", "node-a", "-o"])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        bed.wait_capturing("node-a", Duration::from_secs(20)),
        "capture never started"
    );
    // Let some packets arrive and reach the file.
    std::thread::sleep(Duration::from_secs(2));
    assert!(child.try_wait().unwrap().is_none(), "kcap ended early");
    child
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

#[test]
fn duration_ends_the_capture() {
    let bed = Bed::minimal();
    let file = bed.path("d.pcapng");
    let started = Instant::now();
    let out = run(
        bed.kcap()
            .args(["--ssh-host", "node-a", "--duration", "3s", "-o"])
            .arg(&file),
        Duration::from_secs(30),
    );
    let took = started.elapsed();
    assert_ok(&out);
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(12),
        "took {took:?}"
    );
    let capture = read_capture(&file);
    assert!(!capture.records.is_empty());
    let first = capture.records.first().unwrap().packet.ts_nanos;
    let last = capture.records.last().unwrap().packet.ts_nanos;
    assert!(
        last - first < 4_000_000_000,
        "packets span more than the duration"
    );
    assert!(bed.wait_capture_gone("node-a", GONE_WITHIN).is_empty());
}

#[test]
fn count_ends_the_capture() {
    let bed = Bed::minimal();
    let file = bed.path("c.pcapng");
    let out = run(
        bed.kcap()
            .args(["--ssh-host", "node-a", "--count", "7", "-o"])
            .arg(&file),
        Duration::from_secs(30),
    );
    assert_ok(&out);
    assert_eq!(read_capture(&file).records.len(), 7);
    assert!(bed.wait_capture_gone("node-a", GONE_WITHIN).is_empty());
}

#[test]
fn ctrl_c_and_sigterm_keep_the_file_complete() {
    let bed = Bed::minimal();
    for (sig, name) in [(libc::SIGINT, "int.pcapng"), (libc::SIGTERM, "term.pcapng")] {
        let file = bed.path(name);
        let child = start(&bed, &file);
        signal(&child, sig);
        let out = wait(child, Duration::from_secs(10));
        assert_ok(&out);
        assert!(
            stderr(&out).contains("node-a:"),
            "no summary: {}",
            stderr(&out)
        );
        let capture = read_capture(&file);
        assert!(!capture.records.is_empty(), "{name}: no packets");
        assert_eq!(tshark_count(&file, None), capture.records.len());
        assert!(
            bed.wait_capture_gone("node-a", GONE_WITHIN).is_empty(),
            "{name}: tcpdump left"
        );
    }
}

#[test]
fn killed_kcap_leaves_a_readable_file_and_no_remote_process() {
    let bed = Bed::minimal();
    let file = bed.path("killed.pcap");
    let child = start(&bed, &file);
    signal(&child, libc::SIGKILL);
    let _ = wait(child, Duration::from_secs(5));
    let capture = read_capture(&file);
    assert!(
        !capture.records.is_empty(),
        "nothing was flushed before the kill"
    );
    assert_eq!(tshark_count(&file, None), capture.records.len());
    assert!(
        bed.wait_capture_gone("node-a", GONE_WITHIN).is_empty(),
        "tcpdump survived kcap"
    );
}

#[test]
fn cut_connection_ends_kcap_and_the_remote_capture() {
    let bed = Bed::minimal();
    let file = bed.path("cut.pcapng");
    let child = start(&bed, &file);
    bed.bed.cut_link("node-a").unwrap();
    let out = wait(child, Duration::from_secs(30));
    let ended = Instant::now();
    assert_exit(&out, 12, &["connection"]);
    let capture = read_capture(&file);
    assert!(!capture.records.is_empty());
    let left = bed.wait_capture_gone("node-a", GONE_WITHIN);
    assert!(
        left.is_empty(),
        "tcpdump still running {:?} after kcap ended",
        ended.elapsed()
    );
    bed.bed.restore_link("node-a").unwrap();
}
