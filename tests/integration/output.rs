//! Output formats and destinations: pcap, pcapng, stdout piped into tshark, and a
//! write failure.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::*;

#[test]
fn pcap_and_pcapng_open_in_tshark_with_the_expected_counts() {
    let bed = Bed::minimal();
    for (name, format, expected) in [
        ("x.pcap", None, kcap_pcap::Format::Pcap),
        ("x.pcapng", None, kcap_pcap::Format::Pcapng),
        ("y.cap", Some("pcap"), kcap_pcap::Format::Pcap),
        ("z.cap", Some("pcapng"), kcap_pcap::Format::Pcapng),
    ] {
        let file = bed.path(name);
        let mut cmd = bed.kcap();
        cmd.args(["--ssh-host", "node-a", "-c", "10", "-o"])
            .arg(&file);
        if let Some(f) = format {
            cmd.args(["--format", f]);
        }
        let out = run(&mut cmd, Duration::from_secs(60));
        assert_ok(&out);
        let capture = read_capture(&file);
        assert_eq!(capture.format, expected, "{name}");
        assert_eq!(capture.records.len(), 10, "{name}");
        assert_eq!(tshark_count(&file, None), 10, "{name}");
    }
}

#[test]
fn two_nodes_into_one_pcap() {
    let bed = Bed::minimal();
    let file = bed.path("two.pcap");
    let out = run(
        bed.kcap()
            .args([
                "--ssh-host",
                "node-a",
                "--ssh-host",
                "node-b",
                "-d",
                "3s",
                "-o",
            ])
            .arg(&file),
        Duration::from_secs(60),
    );
    assert_ok(&out);
    let capture = read_capture(&file);
    assert_eq!(capture.format, kcap_pcap::Format::Pcap);
    assert!(capture.timestamps_non_decreasing());
    assert!(tshark_count(&file, Some("ip.addr == 198.51.100.10")) > 0);
    assert!(tshark_count(&file, Some("ip.addr == 198.51.100.11")) > 0);
}

#[test]
fn stdout_streams_into_tshark() {
    let bed = Bed::minimal();
    let mut kcap = bed
        .kcap()
        .args([
            "--ssh-host",
            "node-a",
            "--ssh-host",
            "node-b",
            "-c",
            "20",
            "-o",
            "-",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let tshark = Command::new("tshark")
        .args([
            "-n",
            "-r",
            "-",
            "-T",
            "fields",
            "-e",
            "frame.interface_name",
        ])
        .stdin(kcap.stdout.take().unwrap())
        .output()
        .unwrap();
    let status = kcap.wait().unwrap();
    assert!(status.success());
    assert!(
        tshark.status.success(),
        "{}",
        String::from_utf8_lossy(&tshark.stderr)
    );
    let names: Vec<_> = String::from_utf8_lossy(&tshark.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(names.len(), 20);
    assert!(
        names.iter().all(|n| n == "node-a:any" || n == "node-b:any"),
        "{names:?}"
    );
}

#[test]
fn write_failure_is_reported() {
    let bed = Bed::minimal();
    let out = run(
        bed.kcap().args([
            "--ssh-host",
            "node-a",
            "-d",
            "3s",
            "--format",
            "pcap",
            "-o",
            "/dev/full",
        ]),
        Duration::from_secs(60),
    );
    assert_exit(&out, 10, &["/dev/full", "No space left"]);
    assert!(
        bed.wait_gone("node-a", "tcpdump", Duration::from_secs(5))
            .is_empty()
    );
}
