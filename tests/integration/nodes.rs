//! Capturing nodes over SSH: one node, several nodes merged, jump host chains and
//! ssh_config aliases with ProxyJump.

use std::time::Duration;

use crate::util::*;

#[test]
fn one_node_into_pcapng() {
    let bed = Bed::minimal();
    let file = bed.path("a.pcapng");
    let out = run(
        bed.kcap()
            .args(["--ssh-host", "node-a", "--duration", "3s", "-o"])
            .arg(&file),
        Duration::from_secs(60),
    );
    assert_ok(&out);
    let capture = read_capture(&file);
    assert_eq!(capture.format, kcap_pcap::Format::Pcapng);
    assert_eq!(capture.interface_names(), ["node-a:any"]);
    assert!(
        capture.records.len() > 10,
        "only {} packets",
        capture.records.len()
    );
    assert_eq!(tshark_count(&file, None), capture.records.len());
    // The test bed's traffic reached the capture...
    assert!(tshark_count(&file, Some("http.request && ip.dst == 198.51.100.10")) > 0);
    // ...and kcap's own SSH session did not.
    assert_eq!(tshark_count(&file, Some("tcp.port == 22")), 0);
    assert!(
        stderr(&out).contains("node-a:"),
        "no summary line:\n{}",
        stderr(&out)
    );
    // tcpdump's own counters end up in an Interface Statistics Block.
    let stats = &capture.statistics;
    assert_eq!(stats.len(), 1, "one statistics block per node");
    assert!(stats[0].statistics.received.unwrap_or(0) >= capture.records.len() as u64);
    assert!(stats[0].statistics.dropped.is_some());
}

#[test]
fn two_nodes_merged_in_time_order() {
    let bed = Bed::minimal();
    let file = bed.path("ab.pcapng");
    let out = run(
        bed.kcap()
            .args([
                "--ssh-host",
                "node-a",
                "--ssh-host",
                "node-b",
                "--duration",
                "4s",
                "-o",
            ])
            .arg(&file),
        Duration::from_secs(60),
    );
    assert_ok(&out);
    let capture = read_capture(&file);
    let mut names = capture.interface_names();
    names.sort();
    assert_eq!(names, ["node-a:any", "node-b:any"]);
    assert!(capture.count_on("node-a:any") > 5);
    assert!(capture.count_on("node-b:any") > 5);
    assert!(
        capture.timestamps_non_decreasing(),
        "packets are not in time order"
    );
    // Each interface holds its own node's traffic.
    let rows = tshark_fields(
        &file,
        Some("http.request"),
        &["frame.interface_name", "ip.dst"],
    );
    assert!(
        rows.iter()
            .any(|r| r[0] == "node-a:any" && r[1] == "198.51.100.10")
    );
    assert!(
        rows.iter()
            .any(|r| r[0] == "node-b:any" && r[1] == "198.51.100.11")
    );
}

/// node-c is reachable only through bastion and then inner-jump.
fn node_c_traffic(bed: &Bed) -> std::thread::JoinHandle<()> {
    let netns = bed.bed.host("inner-jump").netns.clone();
    std::thread::spawn(move || {
        for _ in 0..40 {
            let _ = std::process::Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &netns,
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                    "-m",
                    "1",
                    "http://203.0.113.70/",
                ])
                .status();
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

#[test]
fn chain_of_two_jump_hosts_from_the_command_line() {
    let bed = Bed::full();
    let file = bed.path("c.pcapng");
    let traffic = node_c_traffic(&bed);
    let out = run(
        bed.kcap()
            // An address, not an alias: key and known_hosts come from the command line;
            // the jump hops are aliases, resolved through ssh_config like OpenSSH does.
            .args([
                "--ssh-host",
                "root@203.0.113.70",
                "--jump-host",
                "bastion,inner-jump",
            ])
            .arg("--ssh-key")
            .arg(bed.bed.client_key())
            .arg("--known-hosts")
            .arg(bed.bed.known_hosts())
            .args(["--port", "80", "--protocol", "tcp", "--count", "10", "-o"])
            .arg(&file),
        Duration::from_secs(60),
    );
    traffic.join().unwrap();
    assert_ok(&out);
    assert_eq!(tshark_count(&file, None), 10);
    assert_eq!(
        tshark_count(&file, Some("tcp.port == 80 && ip.addr == 203.0.113.70")),
        10
    );
}

#[test]
fn ssh_config_alias_with_proxyjump() {
    let bed = Bed::full();
    let file = bed.path("c.pcap");
    let traffic = node_c_traffic(&bed);
    let out = run(
        bed.kcap()
            .args(["--ssh-host", "node-c", "--port", "80", "-c", "5", "-o"])
            .arg(&file),
        Duration::from_secs(60),
    );
    traffic.join().unwrap();
    assert_ok(&out);
    assert_eq!(read_capture(&file).records.len(), 5);
    assert_eq!(tshark_count(&file, Some("tcp.port == 80")), 5);
}

/// A node that sees nothing must not hold back a busy one: streamed live, every
/// packet of node-a leaves kcap about a second after it was captured at most,
/// although node-b sends nothing at all.
#[test]
fn quiet_node_does_not_hold_back_a_busy_one() {
    use std::io::Read;
    let bed = Bed::minimal();
    let mut child = bed
        .kcap()
        .args(["--ssh-host", "node-a", "--ssh-host", "node-b"])
        // Only traffic towards node-a's HTTP server: node-b never sees any.
        .args(["--filter", "dst host 198.51.100.10 and dst port 80"])
        .args(["--duration", "6s", "--format", "pcap", "-o", "-"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut decoder = kcap_pcap::StreamDecoder::new();
    let mut lags = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let n = stdout.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        let arrived = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        decoder.push(&buf[..n]);
        while let Some(packet) = decoder.next_packet().unwrap() {
            lags.push(arrived.saturating_sub(packet.ts_nanos));
        }
    }
    assert!(child.wait().unwrap().success());
    assert!(lags.len() > 10, "only {} packets", lags.len());
    let worst = Duration::from_nanos(*lags.iter().max().unwrap());
    assert!(
        worst < Duration::from_millis(1800),
        "a packet waited {worst:?}"
    );
    // The quiet node's agent says it has nothing older (watermarks), so node-a's
    // packets do not wait the merge's 1 s hold for it.
    lags.sort();
    let median = Duration::from_nanos(lags[lags.len() / 2]);
    assert!(
        median < Duration::from_millis(400),
        "median wait {median:?}: the quiet node holds the busy one back"
    );
}

/// `-B` reaches the remote tcpdump: with a 1 KiB buffer a ping flood overflows it,
/// the summary says how many packets the kernel dropped and what to do, the
/// statistics block records the drops, and what was captured is in the file.
#[test]
fn buffer_overflow_is_reported_with_a_hint() {
    let bed = Bed::minimal();
    let file = bed.path("flood.pcapng");
    let kcap = bed
        .kcap()
        .args(["--ssh-host", "node-a", "-i", "lo", "-f", "icmp", "-B", "1"])
        // tcpdump's smallest ring overflows under a flood; the agent's drops are
        // tested in agent.rs.
        .args(["--remote-tool", "tcpdump", "--duration", "3s", "-o"])
        .arg(&file)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(bed.wait_running("node-a", "tcpdump", Duration::from_secs(20)));
    let flood = std::process::Command::new("ip")
        .args(["netns", "exec", &bed.bed.host("node-a").netns])
        .args(["ping", "-q", "-f", "-c", "3000", "-s", "1000", "127.0.0.1"])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(flood.success());
    let out = kcap.wait_with_output().unwrap();
    assert_ok(&out);
    let text = stderr(&out);
    let dropped: u64 = text
        .lines()
        .find_map(|line| line.strip_suffix(" dropped by kernel)")?.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no drop count in the summary:\n{text}"));
    assert!(dropped > 0, "{text}");
    assert!(
        text.contains("raise -B/--buffer-size (now 1 KiB)"),
        "no hint:\n{text}"
    );
    // What got through (maybe nothing, on a busy machine) is the flood's.
    let capture = read_capture(&file);
    assert_eq!(tshark_count(&file, Some("icmp")), capture.records.len());
    assert_eq!(capture.statistics[0].statistics.dropped, Some(dropped));
}
