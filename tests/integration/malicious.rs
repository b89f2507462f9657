//! A node that lies: its "tcpdump" is a stand-in that sends what a broken or
//! hostile node could. A record that claims 4 GB, endless text instead of a
//! capture, a stream cut inside a record, a stream that drips a byte at a time.
//! kcap must stop (or go on) with its own error, in bounded time and memory, and
//! keep every complete packet that came before.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::*;

/// A pcap header (little-endian, microseconds, Ethernet, snaplen 262144) and
/// `packets` 60-byte records, as Python bytes expressions.
const PCAP: &str = r#"
import struct, sys, time
out = sys.stdout.buffer
def header():
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
def record(i):
    out.write(struct.pack("<IIII", 1700000000 + i, 0, 60, 60) + bytes(60))
"#;

/// A stand-in tcpdump running `body` after [`PCAP`]'s helpers.
fn stand_in(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let script = dir.join(format!("{name}.py"));
    std::fs::write(&script, format!("{PCAP}\n{body}\n")).unwrap();
    let tool = dir.join(name);
    std::fs::write(
        &tool,
        format!("#!/bin/sh\nexec python3 {}\n", script.display()),
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&tool)
        .status()
        .unwrap();
    tool
}

/// Runs kcap on `node` with the stand-in; returns its output, how long it took
/// and its peak RSS in MiB.
fn capture(bed: &Bed, node: &str, file: &Path) -> (std::process::Output, Duration, u64) {
    run_with_peak_rss(
        bed.kcap()
            .args([
                "--ssh-host",
                node,
                "--remote-tool",
                "tcpdump",
                "-d",
                "8s",
                "-o",
            ])
            .arg(file),
    )
}

#[test]
fn a_lying_node_gets_an_error_in_bounded_time_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let huge = stand_in(
        dir.path(),
        "huge",
        "header(); record(0); out.write(struct.pack('<IIII', 1700000001, 0, 0xFFFFFFF0, 0xFFFFFFF0)); \
         out.flush(); time.sleep(30)",
    );
    let text = stand_in(
        dir.path(),
        "text",
        "line = b'Last login: never. ' * 50 + b'\\n'\nwhile True: out.write(line)",
    );
    let cut = stand_in(
        dir.path(),
        "cut",
        "header()\nfor i in range(3): record(i)\nout.write(bytes(30)); out.flush()",
    );
    let drip = stand_in(
        dir.path(),
        "drip",
        "header(); out.flush()\nwhile True:\n    for b in struct.pack('<IIII', 1700000000, 0, 60, 60) + bytes(60):\n        \
         out.write(bytes([b])); out.flush(); time.sleep(0.01)",
    );
    let spec = kcap_testbed::Spec::lan(4)
        .with_tool("node-a", "tcpdump", Some(huge))
        .with_tool("node-b", "tcpdump", Some(text))
        .with_tool("node-c", "tcpdump", Some(cut))
        .with_tool("node-d", "tcpdump", Some(drip));
    let bed = Bed::with(spec);

    // 4 GB claimed: refused at once, not allocated.
    let file = bed.path("huge.pcapng");
    let (out, took, rss) = capture(&bed, "node-a", &file);
    assert_exit(&out, 11, &["4294967280"]);
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert!(rss < 64, "peak RSS {rss} MiB");
    assert_eq!(
        read_capture(&file).records.len(),
        1,
        "the packet before is kept"
    );

    // Endless text at full speed: named as not a capture, memory bounded.
    let (out, took, rss) = capture(&bed, "node-b", &bed.path("text.pcapng"));
    assert_exit(&out, 11, &["Last login"]);
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert!(rss < 64, "peak RSS {rss} MiB");

    // Cut inside a record: the complete packets are kept and the file is whole.
    let file = bed.path("cut.pcapng");
    let (out, _, _) = capture(&bed, "node-c", &file);
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert_eq!(read_capture(&file).records.len(), 3, "{}", stderr(&out));
    assert_eq!(tshark_count(&file, None), 3);

    // A byte every 10 ms: a slow link, not a hang; -d ends it on time.
    let file = bed.path("drip.pcapng");
    let (out, took, rss) = capture(&bed, "node-d", &file);
    assert_ok(&out);
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(rss < 64, "peak RSS {rss} MiB");
    assert!(!read_capture(&file).records.is_empty());
    // Nothing kcap started on the nodes survives (the stand-ins are python3
    // processes running a script of `dir`).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !stand_ins_running(dir.path()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "left running: {:?}",
            stand_ins_running(dir.path())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Processes whose command line names a script in `dir`.
fn stand_ins_running(dir: &Path) -> Vec<u32> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
        })
        .collect()
}
