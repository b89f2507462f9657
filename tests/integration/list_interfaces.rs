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

/// Pods of the test-bed cluster: `-D` by exec into the toolbox (which has
/// tcpdump) and from the node's helper pods into the web pods' namespaces (the
/// web image has none) lists what `ip -o link` shows in each pod's namespace; the
/// helper pods are gone after. Then several -i on the toolbox: one interface each
/// in the file, each with its own packets.
#[test]
fn list_interfaces_of_pods_and_several_interfaces_on_a_pod() {
    kcap_testbed::require_kubectl!();
    let bed = crate::kube::cluster();
    let limit = crate::kube::LIMIT;
    let out = run(
        bed.kcap_kube()
            .args(["-n", "prod", "pod/toolbox", "--via", "exec", "-D"]),
        limit,
    );
    assert_ok(&out);
    let lines = listed(&out.stdout);
    let names: Vec<&str> = lines.iter().map(|(_, n)| n.as_str()).collect();
    assert!(lines.iter().all(|(t, _)| t == "prod/toolbox"), "{lines:?}");
    for name in ip_link_names(&bed.pod_netns("prod", "toolbox")) {
        assert!(names.contains(&name.as_str()), "{name} not in {names:?}");
    }

    let out = run(
        bed.kcap_kube()
            .args(["-n", "prod", "deploy/web", "--via", "node", "-D"]),
        limit,
    );
    assert_ok(&out);
    let lines = listed(&out.stdout);
    let pods = bed.pods_of("web");
    assert!(!pods.is_empty());
    for pod in &pods {
        let target = format!("prod/{pod}");
        let names: Vec<&str> = lines
            .iter()
            .filter(|(t, _)| *t == target)
            .map(|(_, n)| n.as_str())
            .collect();
        let expected = ip_link_names(&bed.pod_netns("prod", pod));
        for name in &expected {
            assert!(
                names.contains(&name.as_str()),
                "{target}: {name} not in {names:?}"
            );
        }
    }
    assert_eq!(bed.helpers_left(Duration::from_secs(10)), "");

    // Several -i on a pod: pings to itself on lo, to its gateway on eth0.
    let netns = bed.pod_netns("prod", "toolbox");
    let route = Command::new("ip")
        .args([
            "netns", "exec", &netns, "ip", "-4", "-o", "route", "show", "default",
        ])
        .output()
        .unwrap();
    let route = String::from_utf8_lossy(&route.stdout).to_string();
    let gateway = route
        .split_whitespace()
        .skip_while(|w| *w != "via")
        .nth(1)
        .unwrap_or_else(|| panic!("no default route in the toolbox: {route}"))
        .to_string();
    let file = bed.path("toolbox.pcapng");
    let kcap = bed
        .kcap_kube()
        .args([
            "-n",
            "prod",
            "pod/toolbox",
            "--via",
            "exec",
            "-i",
            "eth0",
            "-i",
            "lo",
        ])
        .args(["-f", "icmp", "-d", "10s", "-o"])
        .arg(&file)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // One tcpdump per interface: the pings start once both run.
    assert!(bed.wait_captures_in_pod("prod", "toolbox", 2, Duration::from_secs(30)));
    std::thread::sleep(Duration::from_millis(1500));
    // Loopback answers itself: 5 requests and 5 replies on lo. The gateway's
    // answers are not what this test is about (on a loaded machine it has been
    // seen not to answer for seconds): 10 requests out of eth0 are captured
    // whether or not they are answered.
    let ping = |to: &str, count: &str| {
        Command::new("ip")
            .args([
                "netns", "exec", &netns, "ping", "-c", count, "-i", "0.1", "-W", "1", to,
            ])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap()
    };
    assert!(ping("127.0.0.1", "5").success(), "ping 127.0.0.1");
    let _ = ping(gateway.as_str(), "10");
    let out = wait(kcap, limit);
    assert_ok(&out);
    let capture = read_capture(&file);
    let mut names = capture.interface_names();
    names.sort();
    assert_eq!(
        names,
        ["prod/toolbox/eth0", "prod/toolbox/lo"],
        "{}",
        stderr(&out)
    );
    let rows = tshark_fields(&file, None, &["frame.interface_name", "ip.dst"]);
    let on = |iface: &str| -> Vec<&str> {
        rows.iter()
            .filter(|r| r[0] == iface)
            .map(|r| r[1].as_str())
            .collect()
    };
    assert_eq!(on("prod/toolbox/lo"), vec!["127.0.0.1"; 10], "{rows:?}");
    let eth0 = on("prod/toolbox/eth0");
    assert!(
        eth0.len() >= 10 && eth0.iter().all(|d| *d != "127.0.0.1"),
        "{rows:?}"
    );
    assert!(capture.timestamps_non_decreasing());
}
