//! `-Q in|out|inout` (`--direction`), as tcpdump's: on an SSH node, with kcap's
//! capture agent and with tcpdump, only the packets that went the asked way are
//! kept, and the agent keeps byte for byte what tcpdump -Q keeps.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::*;

/// ICMP types of `file`'s packets, in order.
fn icmp_types(file: &std::path::Path) -> Vec<String> {
    tshark_fields(file, Some("icmp"), &["icmp.type"])
        .into_iter()
        .map(|row| row.join(","))
        .collect()
}

/// The client pings node-a: on node-a the echo requests come in and the replies go
/// out. Four captures run side by side for each interface (agent and tcpdump, in
/// and out); each holds exactly its direction's 10 packets, and the agent's are
/// tcpdump's, byte for byte.
#[test]
fn direction_in_and_out_keep_one_way_with_the_agent_and_tcpdump() {
    let bed = Bed::minimal();
    for iface in ["any", "eth0"] {
        let name = |tool: &str, dir: &str| bed.path(&format!("{tool}-{dir}-{iface}.pcap"));
        let mut children = Vec::new();
        for tool in ["agent", "tcpdump"] {
            for dir in ["in", "out"] {
                let child = bed
                    .kcap()
                    .args(["--ssh-host", "node-a", "-i", iface, "--remote-tool", tool])
                    .args(["-Q", dir, "-f", "icmp and host 198.51.100.10"])
                    .args(["--duration", "5s", "-o"])
                    .arg(name(tool, dir))
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                children.push(child);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while (bed.capturing_agents("node-a").len() < 2
            || bed.bed.processes_named("node-a", "tcpdump").len() < 2)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            Instant::now() < deadline,
            "{iface}: the captures did not start"
        );
        std::thread::sleep(Duration::from_millis(500));
        bed.ping_node_a(10, 300);
        for child in children {
            let out = wait(child, Duration::from_secs(30));
            assert_ok(&out);
        }
        // 8: echo request (in on node-a), 0: echo reply (out).
        for tool in ["agent", "tcpdump"] {
            assert_eq!(
                icmp_types(&name(tool, "in")),
                vec!["8"; 10],
                "{tool} {iface}"
            );
            assert_eq!(
                icmp_types(&name(tool, "out")),
                vec!["0"; 10],
                "{tool} {iface}"
            );
        }
        for dir in ["in", "out"] {
            let packets = |tool: &str| {
                let capture = read_capture(&name(tool, dir));
                let link = capture.interfaces[0].link_type;
                let mut packets: Vec<_> = capture
                    .records
                    .into_iter()
                    .map(|r| (r.packet.orig_len, r.packet.data))
                    .collect();
                packets.sort();
                (link, packets)
            };
            assert!(
                packets("agent") == packets("tcpdump"),
                "{iface} -Q {dir}: the agent's packets differ from tcpdump's"
            );
        }
    }
}

/// The dry run shows the direction and the wrapper word that carries it; a
/// direction kcap does not know is a usage error.
#[test]
fn direction_shows_in_the_dry_run_and_bad_values_are_refused() {
    let bed = Bed::minimal();
    let out = run(
        bed.kcap()
            .args(["--ssh-host", "node-a", "-Q", "out", "--dry-run"]),
        Duration::from_secs(30),
    );
    assert_ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("  direction: out (-Q)"), "{text}");
    let command = text
        .lines()
        .find(|l| l.starts_with("  command: "))
        .unwrap_or_else(|| panic!("no command line:\n{text}"));
    assert!(command.ends_with(" 'out' 'off'"), "{command}");
    let out = run(
        bed.kcap()
            .args(["--ssh-host", "node-a", "--direction", "sideways"]),
        Duration::from_secs(30),
    );
    assert_exit(&out, 2, &["unknown -Q/--direction \"sideways\""]);
}

/// tshark and dumpcap have no -Q: they get libpcap's `inbound`/`outbound` joined
/// to the filter, which keeps the same packets on a live Linux capture.
#[test]
fn direction_with_tshark_and_dumpcap_goes_into_the_filter() {
    let bed = Bed::minimal();
    for (tool, dir, icmp_type) in [("tshark", "in", "8"), ("dumpcap", "out", "0")] {
        let file = bed.path(&format!("{tool}-{dir}.pcapng"));
        let kcap = bed
            .kcap()
            .args(["--ssh-host", "node-a", "--remote-tool", tool, "-Q", dir])
            .args([
                "-f",
                "icmp and host 198.51.100.10",
                "--duration",
                "5s",
                "-o",
            ])
            .arg(&file)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        assert!(
            bed.wait_running("node-a", tool, Duration::from_secs(20)),
            "{tool}"
        );
        // tshark runs dumpcap, which opens the device a moment later.
        assert!(
            bed.wait_running("node-a", "dumpcap", Duration::from_secs(20)),
            "{tool}"
        );
        std::thread::sleep(Duration::from_millis(1500));
        bed.ping_node_a(10, 56);
        let out = wait(kcap, Duration::from_secs(30));
        assert_ok(&out);
        assert!(
            stderr(&out).contains(&format!("({tool}")),
            "{}",
            stderr(&out)
        );
        assert_eq!(icmp_types(&file), vec![icmp_type; 10], "{tool} -Q {dir}");
    }
}
