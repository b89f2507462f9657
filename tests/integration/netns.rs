//! Finding a pod's network from its node without crictl (issue 14): on a bed
//! whose nodes have no crictl, `--via node` with a crictl-less helper image
//! (`kcap.test/netshoot:1`) and `--via ssh` find the pod's namespace by its IP in
//! the process table, and capture the same packets as a helper that asks crictl,
//! on both CNI styles; `--capture-point veth` captures on the pod's host-side
//! interface (the one the test bed wired); a pod whose IP is in no namespace
//! fails with what every way found (exit 16). The cgroup way is checked on
//! recorded `/proc/PID/cgroup` lines in crates/kube (methods.rs), not here.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use kcap_testbed::{Cni, Spec};

use crate::kube::LIMIT;
use crate::util::{Bed, assert_exit, assert_ok, run, stderr, tshark_fields};

const NETSHOOT: &str = "kcap.test/netshoot:1";
const CAPTURE: &str = "kcap.test/capture:1";

/// Nodes without crictl. The test bed's processes share one PID namespace with
/// every other bed on the machine, where a real node's are its own: pod CIDRs of
/// this test's own keep its pod IPs unique among them, as on a node.
fn bed_without_crictl() -> Bed {
    Bed::with(
        Spec::cluster(2)
            .with_pod_network("node-a", Cni::Bridge, Ipv4Addr::new(10, 251, 0, 0))
            .with_pod_network("node-b", Cni::Routed, Ipv4Addr::new(10, 251, 1, 0))
            .with_tool("node-a", "crictl", None)
            .with_tool("node-b", "crictl", None),
    )
}

/// A network namespace of its own holding `ip` on an interface (a veth pair within it), with a
/// process in it; removed however the test ends.
struct Twin {
    name: String,
    process: Child,
}

impl Twin {
    fn new(ip: &str) -> Twin {
        let name = format!("kcap-twin-{}", std::process::id());
        let ip_in = |args: &[&str]| {
            let out = run(
                std::process::Command::new("ip")
                    .args(["-n", &name])
                    .args(args),
                LIMIT,
            );
            assert!(out.status.success(), "ip {args:?}: {}", stderr(&out));
        };
        let added = run(
            std::process::Command::new("ip").args(["netns", "add", &name]),
            LIMIT,
        );
        assert!(added.status.success(), "{}", stderr(&added));
        let process = std::process::Command::new("ip")
            .args(["netns", "exec", &name, "sleep", "300"])
            .spawn()
            .unwrap();
        let twin = Twin {
            name: name.clone(),
            process,
        };
        ip_in(&[
            "link", "add", "twin0", "type", "veth", "peer", "name", "twin1",
        ]);
        ip_in(&["addr", "add", &format!("{ip}/32"), "dev", "twin0"]);
        ip_in(&["link", "set", "twin0", "up"]);
        twin
    }
}

impl Drop for Twin {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = std::process::Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}

struct Probe {
    name: String,
    ip: String,
    /// The pod's host-side interface, as the test bed wired it.
    host_if: String,
}

/// A pod on each node, calling a web pod on the other node five times a second
/// (so each node forwards, and knows, the pod's traffic).
fn probes(bed: &Bed) -> Vec<Probe> {
    let web = bed.kubectl_out(&[
        "get",
        "pods",
        "-n",
        "prod",
        "-l",
        "app=web",
        "-o",
        r#"jsonpath={range .items[*]}{.spec.nodeName} {.status.podIP}{"\n"}{end}"#,
    ]);
    let web_on = |node: &str| -> String {
        web.lines()
            .find_map(|l| l.strip_prefix(&format!("{node} ")))
            .unwrap_or_else(|| panic!("no web pod on {node}: {web}"))
            .to_string()
    };
    [("node-a", "node-b"), ("node-b", "node-a")]
        .into_iter()
        .map(|(node, other)| {
            let name = format!("probe-{node}");
            let ip = bed.create_pod(&serde_json::json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "prod", "labels": {"app": "probe"}},
                "spec": {"nodeName": node, "containers": [{
                    "name": "app", "image": "kcap.test/app:1",
                    "env": [{"name": "TARGETS", "value": format!("{}:8080", web_on(other))},
                            {"name": "INTERVAL", "value": "0.2"}],
                }]},
            }));
            let host_if = bed
                .bed
                .runtime()
                .pod("prod", &name)
                .and_then(|p| p.host_interface)
                .expect("a pod's host interface");
            Probe { name, ip, host_if }
        })
        .collect()
}

/// One kcap run of both probes, started in the background.
fn start(bed: &Bed, probes: &[Probe], label: &str, args: &[&str]) -> (String, PathBuf, Child) {
    let file = bed.path(&format!("{label}.pcapng"));
    let child = bed
        .kcap()
        .arg("--kubeconfig")
        .arg(bed.bed.kubeconfig())
        .args(["-n", "prod", "--iface", "eth0", "-f", "ip"])
        .args(args)
        .args(probes.iter().map(|p| format!("pod/{}", p.name)))
        .arg("-o")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (label.to_string(), file, child)
}

/// A pod's packets in one capture: (time, src, dst), and its interface's description.
fn packets_of(file: &Path, interface: &str) -> (Vec<(f64, String, String)>, String) {
    let rows = tshark_fields(
        file,
        None,
        &[
            "frame.interface_name",
            "frame.interface_description",
            "frame.time_epoch",
            "ip.src",
            "ip.dst",
        ],
    );
    let mine: Vec<&Vec<String>> = rows.iter().filter(|r| r[0] == interface).collect();
    let description = mine.first().map(|r| r[1].clone()).unwrap_or_default();
    let packets = mine
        .iter()
        .map(|r| (r[2].parse().unwrap(), r[3].clone(), r[4].clone()))
        .collect();
    (packets, description)
}

/// `--via node` through crictl (the reference), `--via node` and `--via ssh`
/// without it (netns by IP) and both with `--capture-point veth`, all at once on
/// the same two pods (bridge and routed CNI). Each names the way it used in the
/// pod's interface description and its summary line; every packet is the pod's;
/// within the time all five captured, each has the reference's packets (the same
/// count, give or take packets at the window's edges).
#[test]
fn without_crictl_the_pod_is_found_by_its_ip_or_its_veth() {
    kcap_testbed::require_kubectl!();
    let bed = bed_without_crictl();
    let probes = probes(&bed);
    let mut runs = vec![
        start(
            &bed,
            &probes,
            "crictl",
            &["--via", "node", "--image", CAPTURE],
        ),
        start(
            &bed,
            &probes,
            "node",
            &["--via", "node", "--image", NETSHOOT],
        ),
        start(&bed, &probes, "ssh", &["--via", "ssh"]),
        start(
            &bed,
            &probes,
            "node-veth",
            &[
                "--via",
                "node",
                "--image",
                NETSHOOT,
                "--capture-point",
                "veth",
            ],
        ),
        start(
            &bed,
            &probes,
            "ssh-veth",
            &["--via", "ssh", "--capture-point", "veth"],
        ),
    ];
    // Each run's start takes its own time (a helper pod, an SSH login, a scan of
    // the node's processes): once all ten captures run, five seconds more, then
    // Ctrl-C for all.
    let deadline = std::time::Instant::now() + LIMIT;
    while bed.capture_processes().len() < 10 {
        // A run that ended before capturing will never start: say why at once.
        for (label, _, child) in &mut runs {
            if let Some(status) = child.try_wait().unwrap() {
                let mut text = String::new();
                let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut text);
                panic!("run {label} ended before every capture started ({status}):\n{text}");
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not every capture started: {:?}",
            bed.capture_processes()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_secs(5));
    for (_, _, child) in &runs {
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    }
    let mut captures = Vec::new();
    for (label, file, child) in runs {
        let out = child.wait_with_output().unwrap();
        assert_ok(&out);
        captures.push((label, file, stderr(&out)));
    }
    for probe in &probes {
        let mut windows = Vec::new();
        let mut by_run = Vec::new();
        for (label, file, text) in &captures {
            let (method, veth) = match label.as_str() {
                "crictl" | "node" | "node-veth" => ("node", label.ends_with("veth")),
                _ => ("ssh", label.ends_with("veth")),
            };
            let (way, interface) = match (label.as_str(), veth) {
                ("crictl", _) => ("crictl".to_string(), format!("prod/{}/eth0", probe.name)),
                (_, false) => (
                    "netns by IP".to_string(),
                    format!("prod/{}/eth0", probe.name),
                ),
                (_, true) => (
                    format!("veth {}", probe.host_if),
                    format!("prod/{}/{}", probe.name, probe.host_if),
                ),
            };
            let (packets, description) = packets_of(file, &interface);
            assert_eq!(
                description,
                format!(
                    "pod prod/{} on node {}, container app, pod IP {}, via {method} ({way})",
                    probe.name,
                    probe.name.trim_start_matches("probe-"),
                    probe.ip
                ),
                "{label}: {interface}\n{text}"
            );
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&format!("kcap: prod/{}: ", probe.name))
                        && l.contains(&format!(" via {method}, {way} ("))),
                "{label}: {} not reported as found by {way}:\n{text}",
                probe.name
            );
            assert!(
                packets.len() > 20,
                "{label}: {} packets of {}\n{text}",
                packets.len(),
                probe.name
            );
            let foreign: Vec<_> = packets
                .iter()
                .filter(|(_, s, d)| *s != probe.ip && *d != probe.ip)
                .collect();
            assert!(
                foreign.is_empty(),
                "{label}: packets without {}: {foreign:?}",
                probe.ip
            );
            windows.push((packets.first().unwrap().0, packets.last().unwrap().0));
            by_run.push((label.clone(), packets));
        }
        // The time every run captured, less half a second at each edge.
        let from = windows.iter().map(|w| w.0).fold(f64::MIN, f64::max) + 0.5;
        let to = windows.iter().map(|w| w.1).fold(f64::MAX, f64::min) - 0.5;
        assert!(
            to - from > 2.0,
            "{}: the runs overlap only {:.1}s",
            probe.name,
            to - from
        );
        let counts: Vec<(String, usize)> = by_run
            .iter()
            .map(|(label, packets)| {
                let n = packets
                    .iter()
                    .filter(|(t, _, _)| (from..to).contains(t))
                    .count();
                (label.clone(), n)
            })
            .collect();
        let reference = counts[0].1;
        assert!(reference > 10, "{}: {counts:?}", probe.name);
        for (label, n) in &counts {
            assert!(
                n.abs_diff(reference) <= 4,
                "{}: {label} has {n} packets in {from:.1}..{to:.1}, crictl's capture {reference}: {counts:?}",
                probe.name
            );
        }
    }
    assert_eq!(bed.helpers_left(std::time::Duration::from_secs(10)), "");
    assert!(
        bed.wait_no_capture(std::time::Duration::from_secs(10))
            .is_empty()
    );

    // A second namespace holding the bridge pod's IP (a process in it, a veth
    // pair of its own): of the two, the pod's is the one whose MAC the node's neighbour
    // table has for the IP; the capture holds the pod's traffic.
    let twin = Twin::new(&probes[0].ip);
    let file = bed.path("twin.pcapng");
    let out = run(
        bed.kcap()
            .arg("--kubeconfig")
            .arg(bed.bed.kubeconfig())
            .args(["-n", "prod", "--iface", "eth0", "-f", "ip", "-c", "20"])
            .args(["--via", "node", "--image", NETSHOOT, "-o"])
            .arg(&file)
            .arg(format!("pod/{}", probes[0].name)),
        LIMIT,
    );
    assert_ok(&out);
    drop(twin);
    let interface = format!("prod/{}/eth0", probes[0].name);
    let (packets, description) = packets_of(&file, &interface);
    assert!(
        description.ends_with(" via node (netns by IP)"),
        "{description}"
    );
    assert_eq!(packets.len(), 20, "{}", stderr(&out));
    assert!(
        packets
            .iter()
            .all(|(_, s, d)| *s == probes[0].ip || *d == probes[0].ip),
        "{packets:?}"
    );

    // A pod whose IP is in no namespace (its address removed): every way says
    // what it found, exit 16, through the helper and over SSH alike.
    let gone = &probes[1];
    let netns = bed.pod_netns("prod", &gone.name);
    let flushed = run(
        std::process::Command::new("ip").args(["-n", &netns, "addr", "flush", "dev", "eth0"]),
        LIMIT,
    );
    assert!(flushed.status.success(), "{}", stderr(&flushed));
    let id = bed.kubectl_out(&[
        "get",
        "pod",
        "-n",
        "prod",
        &gone.name,
        "-o",
        "jsonpath={.status.containerStatuses[0].containerID}",
    ]);
    let id = id.trim_start_matches("containerd://");
    for via in [
        ["--via", "node", "--image", NETSHOOT],
        ["--via", "ssh", "--image", NETSHOOT],
    ] {
        let out = run(
            bed.kcap()
                .arg("--kubeconfig")
                .arg(bed.bed.kubeconfig())
                .args(["-n", "prod", "-d", "3s", "-o"])
                .arg(bed.path("gone.pcapng"))
                .args(via)
                .arg(format!("pod/{}", gone.name)),
            LIMIT,
        );
        assert_exit(
            &out,
            16,
            &[
                &format!(
                    "the pod's network was not found from its node: container {id}, pod IP {}: \
                     crictl: crictl is not on PATH; netns by IP: none of the ",
                    gone.ip
                ),
                &format!(
                    " network namespaces of the node's processes holds {}; cgroup: no process's \
                     /proc/PID/cgroup names container {id}",
                    gone.ip
                ),
                "is the pod on that node and running?",
            ],
        );
    }
    assert_eq!(bed.helpers_left(std::time::Duration::from_secs(10)), "");
}
