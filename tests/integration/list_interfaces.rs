//! `-D` (`--list-interfaces`): the interfaces of each target, listed through the
//! same transport a capture uses, as tcpdump -D prints them, prefixed by the target.

use std::process::Command;
use std::time::Duration;

use crate::util::*;

/// The names `ip -o link` shows in `netns` (without the `@peer` of a veth).
fn ip_link_names(netns: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", netns, "ip", "-o", "link"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let name = l.split(": ").nth(1).expect("index: name: ...");
            name.split('@').next().unwrap().to_string()
        })
        .collect()
}

/// The `(target, interface name)` of each `-D` line (`node-a: 3.eth0 [Up, Running]`).
fn listed(stdout: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| {
            let (target, rest) = l.split_once(": ").unwrap_or_else(|| panic!("{l}"));
            let (index, rest) = rest.split_once('.').unwrap_or_else(|| panic!("{l}"));
            assert!(index.parse::<u32>().is_ok(), "{l}");
            let name = rest.split(' ').next().unwrap();
            (target.to_string(), name.to_string())
        })
        .collect()
}

/// On two SSH nodes: every interface `ip -o link` shows in the node's namespace
/// is listed under that node, each node once even with several -i, exit 0, and
/// nothing is left running.
#[test]
fn list_interfaces_of_ssh_nodes_match_ip_link() {
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
            "-D",
        ]),
        Duration::from_secs(60),
    );
    assert_ok(&out);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let lines = listed(&out.stdout);
    for node in ["node-a", "node-b"] {
        let names: Vec<&str> = lines
            .iter()
            .filter(|(t, _)| t == node)
            .map(|(_, n)| n.as_str())
            .collect();
        let expected = ip_link_names(&bed.bed.host(node).netns);
        assert!(!expected.is_empty());
        for name in &expected {
            assert_eq!(
                names.iter().filter(|n| *n == name).count(),
                1,
                "{node}: {name} not listed once:\n{text}"
            );
        }
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("node-a: ") && l.contains(".lo [")),
        "{text}"
    );
    for node in ["node-a", "node-b"] {
        assert!(
            bed.wait_capture_gone(node, Duration::from_secs(5))
                .is_empty()
        );
    }
}
