//! kcap's capture agent (crates/agent) on real nodes: it is what captures by
//! default, it captures exactly what tcpdump captures, it loses nothing at a steady
//! rate, its drops are counted when its reader stalls, it leaves nothing on the node,
//! and a node where it cannot run falls back to tcpdump.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::*;

/// Sends `count` UDP datagrams of `size` bytes to 127.0.0.1:`port` on `host`, at
/// `rate` per second (paced in 5 ms slices).
fn send_udp(bed: &Bed, host: &str, port: u16, count: u32, rate: u32, size: usize) {
    let script = format!(
        "import socket,time\n\
         s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
         payload=b'k'*{size}\n\
         per=max(1,{rate}//200)\n\
         start=time.monotonic()\n\
         for i in range({count}):\n\
         \x20   s.sendto(payload,('127.0.0.1',{port}))\n\
         \x20   if i%per==per-1:\n\
         \x20       ahead=start+(i+1)/{rate}-time.monotonic()\n\
         \x20       if ahead>0: time.sleep(ahead)\n"
    );
    let status = Command::new("ip")
        .args([
            "netns",
            "exec",
            &bed.bed.host(host).netns,
            "python3",
            "-c",
            &script,
        ])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The summary's "N dropped by kernel" for the one node.
fn dropped_by_kernel(text: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_suffix(" dropped by kernel)")?.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no drop count in the summary:\n{text}"))
}

/// At a steady 5,000 packets/s on loopback (where tcpdump's immediate mode holds
/// only ~250 packets of 16 MiB), the agent captures every packet and drops none.
#[test]
fn agent_loses_nothing_at_a_steady_rate() {
    let bed = Bed::minimal();
    let file = bed.path("rate.pcap");
    const COUNT: u32 = 15_000;
    let kcap = bed
        .kcap()
        .args([
            "--ssh-host",
            "node-a",
            "-i",
            "lo",
            "-f",
            "udp dst port 9999",
        ])
        .args(["-c", &COUNT.to_string(), "--duration", "30s"])
        .spawn_writing(&file);
    assert!(bed.wait_capturing("node-a", Duration::from_secs(20)));
    // The capture is set up before the agent process shows; give it a moment.
    std::thread::sleep(Duration::from_millis(300));
    send_udp(&bed, "node-a", 9999, COUNT, 5_000, 200);
    let out = wait(kcap, Duration::from_secs(40));
    assert_ok(&out);
    let text = stderr(&out);
    assert!(
        text.contains("kcap-agent"),
        "not captured by the agent:\n{text}"
    );
    assert!(text.contains("(count reached)"), "{text}");
    assert_eq!(dropped_by_kernel(&text), 0, "{text}");
    assert_eq!(
        tshark_count(&file, Some("udp.dstport == 9999 && udp.length == 208")),
        COUNT as usize
    );
}

/// The same packets, byte for byte, as tcpdump captures beside it: on `any`
/// (LINUX_SLL2 headers made by the agent) and on one Ethernet interface.
#[test]
fn agent_captures_what_tcpdump_captures() {
    let bed = Bed::minimal();
    for iface in ["any", "eth0"] {
        let capture = |tool: &str| {
            bed.kcap()
                .args(["--ssh-host", "node-a", "-i", iface, "--remote-tool", tool])
                .args(["-f", "icmp and host 198.51.100.10", "--duration", "4s"])
                .spawn_writing(bed.path(&format!("{tool}-{iface}.pcap")))
        };
        let (agent, tcpdump) = (capture("agent"), capture("tcpdump"));
        assert!(bed.wait_capturing("node-a", Duration::from_secs(20)));
        assert!(bed.wait_running("node-a", "tcpdump", Duration::from_secs(20)));
        std::thread::sleep(Duration::from_millis(500));
        bed.ping_node_a(20, 300);
        for child in [agent, tcpdump] {
            assert_ok(&wait(child, Duration::from_secs(30)));
        }
        let packets = |tool: &str| {
            let capture = read_capture(&bed.path(&format!("{tool}-{iface}.pcap")));
            let link = capture.interfaces[0].link_type;
            let mut packets: Vec<_> = capture
                .records
                .into_iter()
                .map(|r| (r.packet.orig_len, r.packet.data))
                .collect();
            packets.sort();
            (link, packets)
        };
        let (agent_link, agent_packets) = packets("agent");
        let (tcpdump_link, tcpdump_packets) = packets("tcpdump");
        assert_eq!(agent_link, tcpdump_link, "{iface}");
        assert_eq!(
            agent_packets.len(),
            40,
            "{iface}: 20 requests and 20 replies"
        );
        assert!(
            agent_packets == tcpdump_packets,
            "{iface}: the agent's packets differ from tcpdump's"
        );
    }
}

/// A reader that stalls (here: the agent stopped with SIGSTOP, as when the
/// network to kcap stalls) overflows the ring; the drops are counted, reported
/// with the hint, and what was captured is intact.
#[test]
fn agent_counts_what_a_stalled_reader_drops() {
    let bed = Bed::minimal();
    let file = bed.path("stall.pcapng");
    let kcap = bed
        .kcap()
        .args([
            "--ssh-host",
            "node-a",
            "-i",
            "lo",
            "-f",
            "udp dst port 9998",
            "-B",
            "1",
        ])
        .args(["--duration", "6s"])
        .spawn_writing(&file);
    assert!(bed.wait_capturing("node-a", Duration::from_secs(20)));
    let agents = bed.capturing_agents("node-a");
    let signal = |name: &str| {
        for pid in &agents {
            Command::new("kill")
                .args([name, &pid.to_string()])
                .status()
                .unwrap();
        }
    };
    signal("-STOP");
    // 4,000 x 1 KiB into a ring of 256 KiB that nobody reads.
    send_udp(&bed, "node-a", 9998, 4_000, 20_000, 1000);
    signal("-CONT");
    let out = wait(kcap, Duration::from_secs(40));
    assert_ok(&out);
    let text = stderr(&out);
    let dropped = dropped_by_kernel(&text);
    assert!(dropped > 1000, "{text}");
    assert!(text.contains("raise -B/--buffer-size"), "no hint:\n{text}");
    let capture = read_capture(&file);
    let kept = capture.records.len() as u64;
    assert!(
        kept > 0 && kept + dropped == 4_000,
        "kept {kept}, dropped {dropped}:\n{text}"
    );
    assert_eq!(capture.statistics[0].statistics.dropped, Some(dropped));
}

/// Nothing of the agent is left on the node: not after a normal stop, not after
/// kcap is killed outright (the agent deleted its own file when it started), not
/// after kcap is killed while it sends the agent.
#[test]
fn agent_leaves_nothing_on_the_node() {
    let bed = Bed::minimal();
    // Other tests' agents come and go in the same /tmp (every host of every bed
    // shares this machine's file system): only a directory older than a few
    // seconds is left behind.
    let leftovers = || {
        std::thread::sleep(Duration::from_secs(3));
        let find = "find /tmp -maxdepth 1 -name 'kcap-agent.*' ! -newermt '-3 seconds'";
        let out = bed.bed.run_on("node-a", find).unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let out = run(
        bed.kcap()
            .args(["--ssh-host", "node-a", "--duration", "2s", "-o"])
            .arg(bed.path("a.pcapng")),
        Duration::from_secs(60),
    );
    assert_ok(&out);
    assert!(stderr(&out).contains("kcap-agent"), "{}", stderr(&out));
    assert!(
        bed.wait_capture_gone("node-a", Duration::from_secs(10))
            .is_empty()
    );
    assert_eq!(leftovers(), "");

    let mut kcap = bed
        .kcap()
        .args(["--ssh-host", "node-a", "-o"])
        .arg(bed.path("b.pcapng"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(bed.wait_capturing("node-a", Duration::from_secs(20)));
    assert_eq!(leftovers(), "", "the agent's file outlived its start");
    kcap.kill().unwrap();
    kcap.wait().unwrap();
    let left = bed.wait_capture_gone("node-a", Duration::from_secs(10));
    assert!(
        left.is_empty(),
        "capture processes left after SIGKILL: {left:?}"
    );
    assert_eq!(leftovers(), "");

    // Killed while the agent is being sent: the wrapper, whose stdout and stderr
    // then go nowhere, still removes what it stored (5 of 10 such kills left a
    // directory before SIGPIPE was trapped).
    for ms in [100, 150, 200, 250, 300, 350, 400, 500] {
        let mut kcap = bed
            .kcap()
            .args(["--ssh-host", "node-a", "-o"])
            .arg(bed.path("c.pcapng"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        kcap.kill().unwrap();
        kcap.wait().unwrap();
    }
    assert!(
        bed.wait_capture_gone("node-a", Duration::from_secs(10))
            .is_empty()
    );
    assert_eq!(leftovers(), "", "a kill during the agent's upload left it");
}

/// An agent that cannot run on the node (here: not a program at all) is not fatal:
/// `auto` falls back to tcpdump and `-v` says why; `--remote-tool agent` fails
/// with the missing-tool exit code and the reason.
#[test]
fn agent_that_cannot_run_falls_back_to_tcpdump() {
    let bed = Bed::minimal();
    let garbage = bed.path("not-an-agent");
    std::fs::write(&garbage, "this is not a program\n").unwrap();
    let out = run(
        bed.kcap()
            .env("KCAP_AGENT", &garbage)
            .args(["--ssh-host", "node-a", "-c", "5", "-v", "-o"])
            .arg(bed.path("fallback.pcapng")),
        Duration::from_secs(60),
    );
    assert_ok(&out);
    let text = stderr(&out);
    assert!(
        text.contains("(tcpdump, "),
        "did not fall back to tcpdump:\n{text}"
    );
    assert!(
        text.contains("agent-unusable"),
        "-v does not say why:\n{text}"
    );
    assert_eq!(tshark_count(&bed.path("fallback.pcapng"), None), 5);

    let out = run(
        bed.kcap()
            .env("KCAP_AGENT", &garbage)
            .args([
                "--ssh-host",
                "node-a",
                "--remote-tool",
                "agent",
                "-c",
                "5",
                "-o",
            ])
            .arg(bed.path("refused.pcapng")),
        Duration::from_secs(60),
    );
    assert_exit(&out, 7, &["capture agent cannot run here"]);
}
