//! Several `-i` on one target: one source, and one interface in the file, per
//! (target, interface), merged in time order, each holding only its own packets.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::*;

/// `-i eth0 -i lo` on node-a while the client pings node-a (eth0) and node-a sends
/// UDP to itself (lo): two interfaces in the pcapng, eth0's holding the pings
/// only, lo's the datagrams only, in time order.
#[test]
fn interfaces_several_on_one_node_each_hold_their_own_packets() {
    let bed = Bed::minimal();
    let file = bed.path("two.pcapng");
    let kcap = bed
        .kcap()
        .args(["--ssh-host", "node-a", "-i", "eth0", "-i", "lo"])
        .args(["-f", "(icmp and host 198.51.100.10) or udp port 9997"])
        .args(["--duration", "5s"])
        .spawn_writing(&file);
    let deadline = Instant::now() + Duration::from_secs(30);
    while bed.capturing_agents("node-a").len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(Instant::now() < deadline, "two agents did not start");
    std::thread::sleep(Duration::from_millis(300));
    bed.ping_node_a(10, 56);
    let udp = "import socket\n\
               s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
               for i in range(15): s.sendto(b'x'*50,('127.0.0.1',9997))\n";
    let sent = Command::new("ip")
        .args(["netns", "exec", &bed.bed.host("node-a").netns])
        .args(["python3", "-c", udp])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = wait(kcap, Duration::from_secs(30));
    assert_ok(&out);
    let text = stderr(&out);
    // The summary tells the two sources apart.
    assert!(
        text.contains("node-a:eth0") && text.contains("node-a:lo"),
        "{text}"
    );
    let capture = read_capture(&file);
    let mut names = capture.interface_names();
    names.sort();
    assert_eq!(names, ["node-a:eth0", "node-a:lo"]);
    assert!(capture.timestamps_non_decreasing());
    let rows = tshark_fields(&file, None, &["frame.interface_name", "ip.proto"]);
    let on = |iface: &str| -> Vec<String> {
        rows.iter()
            .filter(|r| r[0] == iface)
            .map(|r| r[1].clone())
            .collect()
    };
    // 10 requests and 10 replies on eth0; each datagram once on lo.
    assert_eq!(on("node-a:eth0"), vec!["1"; 20], "{rows:?}");
    assert_eq!(on("node-a:lo"), vec!["17"; 15], "{rows:?}");
}

/// The dry run lists one source per (node, interface), each with its command.
#[test]
fn interfaces_several_show_in_the_dry_run() {
    let bed = Bed::minimal();
    let out = run(
        bed.kcap().args([
            "--ssh-host",
            "node-a",
            "--ssh-host",
            "node-b",
            "-i",
            "eth0",
            "-i",
            "lo",
            "--dry-run",
        ]),
        Duration::from_secs(30),
    );
    assert_ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    let interfaces: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("  interface: "))
        .collect();
    assert_eq!(
        interfaces,
        ["node-a:eth0", "node-a:lo", "node-b:eth0", "node-b:lo"],
        "{text}"
    );
    let commands: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("  command: "))
        .collect();
    assert_eq!(commands.len(), 4, "{text}");
    assert!(commands[1].contains(" 'lo' "), "{}", commands[1]);
}
