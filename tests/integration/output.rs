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

/// `--linktype LINUX_SLL` rewrites `-i any`'s v2 cooked headers as v1 (for old
/// Wireshark): both nodes land in one pcap as LINUX_SLL, and tshark decodes every
/// packet's cooked header, with no v2-only field, down to the IP addresses.
#[test]
fn linktype_linux_sll_rewrites_cooked_v2_headers() {
    let bed = Bed::minimal();
    let file = bed.path("old.pcap");
    let out = run(
        bed.kcap()
            .args(["--ssh-host", "node-a", "--ssh-host", "node-b"])
            .args(["--linktype", "LINUX_SLL", "-d", "3s", "-o"])
            .arg(&file),
        Duration::from_secs(60),
    );
    assert_ok(&out);
    let capture = read_capture(&file);
    assert_eq!(
        capture.interfaces[0].link_type,
        kcap_pcap::LinkType::LINUX_SLL
    );
    let total = capture.records.len();
    assert!(total > 10, "only {total} packets");
    assert_eq!(tshark_count(&file, Some("sll")), total);
    assert_eq!(tshark_count(&file, Some("sll.ifindex")), 0);
    assert_eq!(
        tshark_count(&file, Some("sll.etype == 0x0800")),
        tshark_count(&file, Some("ip"))
    );
    assert!(tshark_count(&file, Some("ip.addr == 198.51.100.10")) > 0);
    assert!(tshark_count(&file, Some("ip.addr == 198.51.100.11")) > 0);

    let refused = run(
        bed.kcap()
            .args([
                "--ssh-host",
                "node-a",
                "--linktype",
                "EN10MB",
                "-c",
                "1",
                "-o",
            ])
            .arg(bed.path("x.pcap")),
        Duration::from_secs(60),
    );
    assert_exit(&refused, 2, &["--linktype", "LINUX_SLL"]);
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
        bed.wait_capture_gone("node-a", Duration::from_secs(5))
            .is_empty()
    );
}

/// pcap holds one link type. node-a's stand-in tcpdump replays an Ethernet capture
/// while node-b's real tcpdump on `any` sends Linux cooked (SLL2): pcap output keeps
/// the first and refuses the other with a hint; pcapng takes both.
#[test]
fn pcap_refuses_a_second_link_type_pcapng_takes_it() {
    let dir = tempfile::tempdir().unwrap();
    let replay = dir.path().join("ethernet.pcap");
    let mut writer = kcap_pcap::PcapWriter::new(
        std::fs::File::create(&replay).unwrap(),
        kcap_pcap::LinkType::ETHERNET,
        65535,
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    for i in 0..5u64 {
        let frame = vec![0x02; 60];
        let packet = kcap_pcap::Packet {
            ts_nanos: now.as_nanos() as u64 + i * 1000,
            orig_len: 60,
            data: frame.into(),
            comment: None,
        };
        writer.write_packet(&packet).unwrap();
    }
    writer.into_inner().unwrap();
    let stand_in = dir.path().join("tcpdump");
    std::fs::write(
        &stand_in,
        format!("#!/bin/sh\ncat {}\nsleep 2\n", replay.display()),
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&stand_in)
        .status()
        .unwrap();
    let bed =
        Bed::with(kcap_testbed::Spec::minimal().with_tool("node-a", "tcpdump", Some(stand_in)));

    let pcap = bed.path("mixed.pcap");
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
            .arg(&pcap),
        Duration::from_secs(60),
    );
    // Whichever stream starts first decides the file's link type; the other is refused.
    assert_exit(&out, 2, &["--format pcapng", "EN10MB", "LINUX_SLL2"]);
    let capture = read_capture(&pcap);
    match capture.interfaces[0].link_type {
        kcap_pcap::LinkType::ETHERNET => {
            assert_eq!(capture.records.len(), 5);
            assert!(stderr(&out).contains("node-b captures link type LINUX_SLL2"));
        }
        kcap_pcap::LinkType::LINUX_SLL2 => {
            assert!(stderr(&out).contains("node-a captures link type EN10MB"));
        }
        other => panic!("unexpected link type {other:?}"),
    }

    let pcapng = bed.path("mixed.pcapng");
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
            .arg(&pcapng),
        Duration::from_secs(60),
    );
    assert_ok(&out);
    let capture = read_capture(&pcapng);
    assert_eq!(capture.count_on("node-a:any"), 5);
    assert!(capture.count_on("node-b:any") > 0);
    let links: Vec<_> = capture.interfaces.iter().map(|i| i.link_type).collect();
    assert!(
        links.contains(&kcap_pcap::LinkType::ETHERNET)
            && links.contains(&kcap_pcap::LinkType::LINUX_SLL2)
    );
}
