//! kcap against the test-bed cluster (API server on `control-plane`, pods on
//! node-a with a bridge CNI and node-b with a routed CNI): every method on both CNI
//! styles, workloads merged into one annotated pcapng (counts checked against a
//! tcpdump in each pod), hostNetwork pods, filter tokens, RBAC refusal, not-found
//! listings and helper-pod cleanup after SIGKILL (the other exit paths are in
//! `kube_lifecycle.rs`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kcap_testbed::Spec;

use crate::util::{
    Bed, SpawnWriting, assert_exit, assert_ok, read_capture, run, stderr, tshark_fields,
};

pub(crate) const IMAGE: &str = "kcap.test/capture:1";
pub(crate) const LIMIT: Duration = Duration::from_secs(90);

pub(crate) fn cluster() -> Bed {
    Bed::with(Spec::cluster(2))
}

impl Bed {
    /// kcap with the admin kubeconfig (namespace prod) and the test bed's image.
    pub(crate) fn kcap_kube(&self) -> Command {
        let mut cmd = self.kcap();
        cmd.arg("--kubeconfig").arg(self.bed.kubeconfig());
        cmd.args(["--image", IMAGE]);
        cmd
    }

    pub(crate) fn kubectl_out(&self, args: &[&str]) -> String {
        let out = run(self.bed.kubectl().args(args), LIMIT);
        assert!(out.status.success(), "kubectl {args:?}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub(crate) fn pods_of(&self, app: &str) -> Vec<String> {
        self.pod_field(app, "metadata.name")
    }

    /// One field (a JSONPath below the pod) of every prod pod labelled `app=APP`.
    pub(crate) fn pod_field(&self, app: &str, field: &str) -> Vec<String> {
        self.kubectl_out(&[
            "get",
            "pods",
            "-n",
            "prod",
            "-l",
            &format!("app={app}"),
            "-o",
            &format!("jsonpath={{.items[*].{field}}}"),
        ])
        .split_whitespace()
        .map(str::to_string)
        .collect()
    }

    /// Creates a pod in namespace prod from a JSON manifest (through kubectl, as
    /// a user would) and waits until it runs; returns its IP.
    pub(crate) fn create_pod(&self, manifest: &serde_json::Value) -> String {
        let name = manifest["metadata"]["name"].as_str().expect("a name");
        let file = self.path(&format!("{name}.json"));
        std::fs::write(&file, manifest.to_string()).unwrap();
        let file = file.to_string_lossy().into_owned();
        // --validate=false: the test bed's API server publishes no OpenAPI schema.
        self.kubectl_out(&["create", "--validate=false", "-f", &file]);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let state = self.kubectl_out(&[
                "get",
                "pod",
                "-n",
                "prod",
                name,
                "-o",
                "jsonpath={.status.phase} {.status.podIP}",
            ]);
            if let Some(ip) = state.strip_prefix("Running ") {
                return ip.trim().to_string();
            }
            assert!(Instant::now() < deadline, "pod {name} not running: {state}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Helper pods left anywhere, waiting up to `within` for them to go.
    pub(crate) fn helpers_left(&self, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = self.kubectl_out(&[
                "get",
                "pods",
                "-A",
                "-l",
                "kcap/helper",
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ]);
            if left.is_empty() || Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// The design's example: one pod by --namespace/--pod, --port, pcap output. The
/// web image has no tcpdump, so auto falls back to an ephemeral container.
#[test]
fn design_example_pod_port_to_pcap() {
    kcap_testbed::require_kubectl!();
    let bed = cluster();
    let web = bed.pods_of("web").remove(0);
    let out_file = bed.path("orders.pcap");
    let out = run(
        bed.kcap_kube()
            .args([
                "--namespace",
                "prod",
                "--pod",
                &web,
                "--port",
                "8080",
                "-d",
                "4s",
                "-o",
            ])
            .arg(&out_file),
        LIMIT,
    );
    assert_ok(&out);
    assert!(stderr(&out).contains("via ephemeral"), "{}", stderr(&out));
    let capture = read_capture(&out_file);
    assert_eq!(capture.format, kcap_pcap::Format::Pcap);
    assert!(!capture.records.is_empty(), "no packets:\n{}", stderr(&out));
    let ports = tshark_fields(&out_file, None, &["tcp.port"]);
    assert!(
        ports.iter().all(|p| p[0].split(',').any(|x| x == "8080")),
        "{ports:?}"
    );
}

/// exec in a container that has tcpdump; the interface is named after the pod and
/// every packet carries a comment naming pod, namespace and node.
#[test]
fn exec_into_toolbox_is_annotated() {
    let bed = cluster();
    let file = bed.path("t.pcapng");
    let out = run(
        bed.kcap_kube()
            .args(["pod/toolbox", "--via", "exec", "-c", "20", "-o"])
            .arg(&file),
        LIMIT,
    );
    assert_ok(&out);
    assert!(stderr(&out).contains("via exec"), "{}", stderr(&out));
    let capture = read_capture(&file);
    assert_eq!(capture.interface_names(), ["prod/toolbox/any"]);
    assert_eq!(capture.records.len(), 20);
    let comments = tshark_fields(&file, None, &["frame.comment"]);
    assert!(
        comments
            .iter()
            .all(|c| c[0].contains("PodName: toolbox") && c[0].contains("PodNamespace: prod")),
        "{comments:?}"
    );
    let file2 = bed.path("t2.pcapng");
    let out = run(
        bed.kcap_kube()
            .args(["pod/toolbox", "--no-annotate", "-c", "5", "-o"])
            .arg(&file2),
        LIMIT,
    );
    assert_ok(&out);
    let comments = tshark_fields(&file2, None, &["frame.comment"]);
    assert!(comments.iter().all(|c| c[0].is_empty()), "{comments:?}");
}

/// The three web pods (node-a bridge, node-b routed) through node helper pods,
/// one interface each, time-ordered; helpers are gone afterwards.
#[test]
fn deployment_through_node_helpers_into_one_file() {
    kcap_testbed::require_kubectl!();
    let bed = cluster();
    let file = bed.path("web.pcapng");
    let out = run(
        bed.kcap_kube()
            .args([
                "-n",
                "prod",
                "deploy/web",
                "--via",
                "node",
                "-d",
                "4s",
                "-o",
            ])
            .arg(&file),
        LIMIT,
    );
    assert_ok(&out);
    let capture = read_capture(&file);
    let mut names = capture.interface_names();
    names.sort();
    let mut want: Vec<String> = bed
        .pods_of("web")
        .iter()
        .map(|p| format!("prod/{p}/any"))
        .collect();
    want.sort();
    assert_eq!(names, want);
    for name in &want {
        assert!(
            capture.count_on(name) > 0,
            "{name}: no packets\n{}",
            stderr(&out)
        );
    }
    assert!(capture.timestamps_non_decreasing());
    assert_eq!(bed.helpers_left(Duration::from_secs(5)), "");
}

/// A filter token becomes the pods' host set.
#[test]
fn filter_tokens_become_hosts() {
    kcap_testbed::require_kubectl!();
    let bed = cluster();
    let db_ip = bed.kubectl_out(&[
        "get",
        "pod",
        "-n",
        "prod",
        "db-0",
        "-o",
        "jsonpath={.status.podIP}",
    ]);
    let file = bed.path("f.pcapng");
    let out = run(
        bed.kcap_kube()
            .args([
                "pod/toolbox",
                "--filter",
                "sts/db and tcp",
                "-c",
                "10",
                "-o",
            ])
            .arg(&file),
        LIMIT,
    );
    assert_ok(&out);
    let hosts = tshark_fields(&file, None, &["ip.src", "ip.dst"]);
    assert!(!hosts.is_empty());
    assert!(hosts.iter().all(|h| h.contains(&db_ip)), "{hosts:?}");
    let out = run(
        bed.kcap_kube()
            .args([
                "pod/toolbox",
                "--filter",
                "deploy/nothing-here",
                "-d",
                "2s",
                "-o",
            ])
            .arg(bed.path("g.pcapng")),
        LIMIT,
    );
    assert_exit(&out, 2, &["deploy/nothing-here"]);
}

#[test]
fn rbac_refusal_and_not_found_are_explained() {
    let bed = cluster();
    let mut cmd = bed.kcap();
    cmd.arg("--kubeconfig").arg(bed.bed.restricted_kubeconfig());
    let out = run(
        cmd.args(["pod/toolbox", "--via", "exec", "-d", "2s", "-o"])
            .arg(bed.path("r.pcapng")),
        LIMIT,
    );
    assert_exit(&out, 14, &["forbidden", "pods/exec"]);
    let out = run(
        bed.kcap_kube()
            .args(["pod/nope", "-d", "2s", "-o"])
            .arg(bed.path("n.pcapng")),
        LIMIT,
    );
    assert_exit(&out, 13, &["nope", "toolbox"]);
}

/// SIGKILL of kcap while a helper pod runs: the reaper deletes it and the capture
/// process (in the pod's namespace, entered from the node) ends with the heartbeat.
#[test]
fn sigkill_leaves_no_helper_pod_and_no_tcpdump() {
    kcap_testbed::require_kubectl!();
    let bed = cluster();
    let mut child = bed
        .kcap_kube()
        .args(["pod/toolbox", "--via", "node", "-o"])
        .arg(bed.path("k.pcapng"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = bed.wait_capture_in_pod("prod", "toolbox", Duration::from_secs(30));
    if !running {
        let _ = child.kill();
    }
    assert!(running, "the capture never started");
    assert!(!bed.helpers_left(Duration::ZERO).is_empty());
    std::thread::sleep(Duration::from_secs(1));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(bed.helpers_left(Duration::from_secs(20)), "");
    let left = bed.wait_no_capture(Duration::from_secs(10));
    assert!(left.is_empty(), "capture processes left: {left:?}");
}

/// auto: the distroless pod (no shell) and the non-root pod (tcpdump refused) are
/// captured through an ephemeral container.
#[test]
fn auto_chooses_ephemeral_for_distroless_and_nonroot() {
    let bed = cluster();
    let file = bed.path("a.pcapng");
    let out = run(
        bed.kcap_kube()
            .args(["pod/distroless", "pod/nonroot", "-d", "5s", "-o"])
            .arg(&file),
        LIMIT,
    );
    assert_ok(&out);
    let text = stderr(&out);
    for pod in ["prod/distroless", "prod/nonroot"] {
        assert!(
            text.lines()
                .any(|l| l.contains(pod) && l.contains("via ephemeral")),
            "{pod}:\n{text}"
        );
    }
    let capture = read_capture(&file);
    assert_eq!(capture.interfaces.len(), 2);
    // Asked for exec only, the non-root pod's refusal is explained.
    let out = run(
        bed.kcap_kube()
            .args(["pod/nonroot", "--via", "exec", "-d", "2s", "-o"])
            .arg(bed.path("n.pcapng")),
        LIMIT,
    );
    assert_exit(&out, 8, &["permission denied", "--via ephemeral"]);
}

/// --follow: a web pod created during the capture (scale up) joins the file.
#[test]
fn follow_picks_up_a_new_pod() {
    kcap_testbed::require_kubectl!();
    let bed = cluster();
    let before = bed.pods_of("web");
    let file = bed.path("f.pcapng");
    let child = bed
        .kcap_kube()
        .args([
            "-l", "app=web", "--follow", "--via", "node", "-d", "12s", "-o",
        ])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    bed.kubectl_out(&["scale", "-n", "prod", "deployment/web", "--replicas=4"]);
    let out = child.wait_with_output().unwrap();
    assert_ok(&out);
    assert_new_pod_captured(&bed, &before, &file, &out);
    assert_eq!(bed.helpers_left(Duration::from_secs(5)), "");
}

/// One web pod more than `before` exists (the test scaled the deployment up), and
/// `file` holds its interface with packets on it; returns its name.
pub(crate) fn assert_new_pod_captured(
    bed: &Bed,
    before: &[String],
    file: &std::path::Path,
    kcap: &std::process::Output,
) -> String {
    let new: Vec<String> = bed
        .pods_of("web")
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(new.len(), 1, "{new:?}");
    let capture = read_capture(file);
    let name = format!("prod/{}/any", new[0]);
    assert!(
        capture.interface_names().contains(&name),
        "{:?}\n{}",
        capture.interface_names(),
        stderr(kcap)
    );
    assert!(capture.count_on(&name) > 0, "{}", stderr(kcap));
    new[0].clone()
}

/// The probe the merge test sends: N DNS-like queries from UDP port SOURCE_PORT (below
/// the ephemeral range, so no other flow of the bed uses it) to each address's
/// port 5353, each answered by the pod (query and answer: 2 packets per query on
/// the pod's eth0). Prints how many answers came back.
const PROBE: &str = r#"
import socket, struct, sys
port, n, ips = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", port))
s.settimeout(2)
answers = 0
for i in range(n):
    for ip in ips:
        q = struct.pack("!HHHHHH", i, 0x0100, 1, 0, 0, 0) + b"\x05probe\x04kcap\x04test\x00" + struct.pack("!HH", 1, 1)
        s.sendto(q, (ip, 5353))
        try:
            s.recvfrom(2048)
            answers += 1
        except socket.timeout:
            pass
print(answers)
"#;
const SOURCE_PORT: &str = "20123";
const QUERIES: usize = 25;

/// Runs [`PROBE`] in the toolbox pod's network namespace; returns the answers.
fn probe(bed: &Bed, source_port: &str, queries: usize, ips: &[&str]) -> usize {
    let out = Command::new("nsenter")
        .arg(format!(
            "--net=/run/netns/{}",
            bed.pod_netns("prod", "toolbox")
        ))
        .args(["python3", "-c", PROBE, source_port, &queries.to_string()])
        .args(ips)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// A tcpdump inside one pod's network namespace, as a reference.
struct Reference {
    pod: String,
    file: std::path::PathBuf,
    child: std::process::Child,
}

/// deploy/web (three pods on two nodes, through one helper pod per node) into one
/// pcapng: each pod's interface holds exactly the packets of a flow we make
/// ourselves, as many as a separate tcpdump inside that pod saw over the same
/// window, and timestamps never go back.
#[test]
fn deployment_counts_match_tcpdump_in_each_pod() {
    kcap_testbed::require_kubectl!();
    let bed = cluster();
    let rows = bed.kubectl_out(&[
        "get",
        "pods",
        "-n",
        "prod",
        "-l",
        "app=web",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.status.podIP} {.spec.nodeName}{\"\\n\"}{end}",
    ]);
    let pods: Vec<(String, String, String)> = rows
        .lines()
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w[0].to_string(), w[1].to_string(), w[2].to_string())
        })
        .collect();
    assert_eq!(pods.len(), 3, "{rows}");
    let mut nodes: Vec<&str> = pods.iter().map(|p| p.2.as_str()).collect();
    nodes.sort();
    nodes.dedup();
    assert_eq!(nodes, ["node-a", "node-b"], "{rows}");
    let filter = format!("udp and port {SOURCE_PORT}");

    // A tcpdump in each pod's namespace, entered from the host as a node would.
    let mut references: Vec<Reference> = pods
        .iter()
        .map(|(pod, _, _)| {
            let file = bed.path(&format!("ref-{pod}.pcap"));
            let netns = bed.pod_netns("prod", pod);
            let child = Command::new("nsenter")
                .arg(format!("--net=/run/netns/{netns}"))
                .args(["tcpdump", "-n", "-U", "-i", "eth0", "-w"])
                .arg(&file)
                .arg(&filter)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            Reference {
                pod: pod.clone(),
                file,
                child,
            }
        })
        .collect();
    let file = bed.path("web.pcapng");
    let mut kcap = bed
        .kcap_kube()
        .args([
            "-n",
            "prod",
            "deploy/web",
            "--via",
            "node",
            "--iface",
            "eth0",
            "--filter",
        ])
        .arg(&filter)
        .spawn_writing(&file);
    // The pods' servers answer (a fresh bed's may still be starting), with
    // another source port: not part of the flow.
    let ips: Vec<&str> = pods.iter().map(|p| p.1.as_str()).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let silent: Vec<&str> = ips
            .iter()
            .copied()
            .filter(|ip| probe(&bed, "20124", 1, &[ip]) == 0)
            .collect();
        if silent.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let _ = kcap.kill();
            let routes = Command::new("ip")
                .args(["netns", "exec", &bed.pod_netns("prod", "toolbox")])
                .args(["sh", "-c", "ip route; ip neigh; ss -uanp"])
                .output()
                .unwrap();
            panic!(
                "web pods {silent:?} do not answer\n{rows}\n{}",
                String::from_utf8_lossy(&routes.stdout)
            );
        }
    }
    // Two captures per pod: the reference and kcap's.
    let deadline = Instant::now() + Duration::from_secs(30);
    let netns: Vec<String> = pods.iter().map(|p| bed.pod_netns("prod", &p.0)).collect();
    loop {
        let running = bed.capture_processes();
        if netns
            .iter()
            .all(|ns| running.iter().filter(|(_, n)| n == ns).count() >= 2)
        {
            break;
        }
        if Instant::now() > deadline || kcap.try_wait().unwrap().is_some() {
            let _ = kcap.kill();
            panic!("captures did not start: {running:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // tcpdump opens its capture right after it starts; give both a margin.
    std::thread::sleep(Duration::from_secs(1));
    // One helper pod per node, shared by that node's captures.
    let helpers = bed.kubectl_out(&[
        "get",
        "pods",
        "-n",
        "prod",
        "-l",
        "kcap/helper",
        "-o",
        "jsonpath={range .items[*]}{.spec.nodeName}{\"\\n\"}{end}",
    ]);
    let mut helper_nodes: Vec<&str> = helpers.lines().collect();
    helper_nodes.sort();
    assert_eq!(helper_nodes, ["node-a", "node-b"], "helper pods: {helpers}");

    // The flow, from the toolbox pod.
    let answers = probe(&bed, SOURCE_PORT, QUERIES, &ips);
    assert_eq!(
        answers,
        QUERIES * pods.len(),
        "some queries went unanswered"
    );
    std::thread::sleep(Duration::from_secs(1));

    // SAFETY: kill(2) of our own children.
    unsafe { libc::kill(kcap.id() as i32, libc::SIGINT) };
    for r in &references {
        unsafe { libc::kill(r.child.id() as i32, libc::SIGINT) };
    }
    let out = kcap.wait_with_output().unwrap();
    assert_ok(&out);
    for r in &mut references {
        r.child.wait().unwrap();
    }

    let capture = read_capture(&file);
    assert!(capture.timestamps_non_decreasing());
    let mut names = capture.interface_names();
    names.sort();
    let mut want: Vec<String> = pods.iter().map(|p| format!("prod/{}/eth0", p.0)).collect();
    want.sort();
    assert_eq!(names, want);
    for r in &references {
        let seen = read_capture(&r.file).records.len();
        let name = format!("prod/{}/eth0", r.pod);
        assert_eq!(seen, 2 * QUERIES, "{}: the reference tcpdump", r.pod);
        assert_eq!(
            capture.count_on(&name),
            seen,
            "{name}: kcap and the pod's own tcpdump differ\n{}",
            stderr(&out)
        );
    }
    assert_eq!(capture.records.len(), 2 * QUERIES * pods.len());
}

/// Every method on both CNI styles: a pod with tcpdump (so `exec` works too) on
/// node-a (bridge CNI) and on node-b (routed CNI), each calling a web pod five times
/// a second, captured through `exec`, `ephemeral`, `node` and `ssh` (to the node by
/// its ssh_config alias). Each pod's interface holds its own traffic only: every
/// packet has that pod's IP, so the capture ran in the pod's network namespace.
#[test]
fn every_method_on_both_cni_styles() {
    kcap_testbed::require_kubectl!();
    let bed = cluster();
    let web_ip = bed.kubectl_out(&[
        "get",
        "pods",
        "-n",
        "prod",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[0].status.podIP}",
    ]);
    let pods: Vec<(String, String)> = ["node-a", "node-b"]
        .iter()
        .map(|node| {
            let name = format!("probe-{node}");
            let ip = bed.create_pod(&serde_json::json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "prod", "labels": {"app": "probe"}},
                "spec": {"nodeName": node, "containers": [{
                    "name": "tools", "image": "kcap.test/tcpdump:1",
                    "env": [{"name": "TARGETS", "value": format!("{web_ip}:8080")},
                            {"name": "INTERVAL", "value": "0.2"}],
                }]},
            }));
            (name, ip)
        })
        .collect();
    // All four at once, five seconds each: the duration counts from the moment
    // both pods are capturing, so even the slowest method (an ephemeral container
    // per pod) sees seconds of both pods' traffic.
    let runs: Vec<(&str, std::path::PathBuf, std::process::Child)> =
        ["exec", "ephemeral", "node", "ssh"]
            .into_iter()
            .map(|via| {
                let file = bed.path(&format!("{via}.pcapng"));
                let child = bed
                    .kcap_kube()
                    .args([
                        "-n", "prod", "--via", via, "--iface", "eth0", "-f", "ip", "-d", "5s",
                    ])
                    .args(pods.iter().map(|(name, _)| format!("pod/{name}")))
                    .spawn_writing(&file);
                (via, file, child)
            })
            .collect();
    for (via, file, child) in runs {
        let out = child.wait_with_output().unwrap();
        assert_ok(&out);
        let text = stderr(&out);
        for (name, ip) in &pods {
            assert!(
                text.lines()
                    .any(|l| l.contains(&format!("prod/{name}:"))
                        && l.contains(&format!("via {via}"))),
                "--via {via}: {name} not reported:\n{text}"
            );
            let interface = format!("prod/{name}/eth0");
            let packets: Vec<Vec<String>> = tshark_fields(
                &file,
                None,
                &[
                    "frame.interface_name",
                    "ip.src",
                    "ip.dst",
                    "frame.time_epoch",
                ],
            )
            .into_iter()
            .filter(|f| f[0] == interface)
            .collect();
            assert!(
                !packets.is_empty(),
                "--via {via}: no packets of {name}\n{text}"
            );
            let foreign: Vec<&Vec<String>> = packets
                .iter()
                .filter(|f| f[1] != *ip && f[2] != *ip)
                .collect();
            assert!(
                foreign.is_empty(),
                "--via {via}: packets without {name}'s IP {ip}: {foreign:?}"
            );
            let times: Vec<f64> = packets.iter().map(|f| f[3].parse().unwrap()).collect();
            let span = times.last().unwrap() - times.first().unwrap();
            assert!(
                span > 3.5,
                "--via {via}: {name}'s packets span only {span:.1}s of 5s\n{text}"
            );
        }
    }
    assert_eq!(bed.helpers_left(Duration::from_secs(10)), "");
}

/// Calls `http://ADDRESS/` five times a second until killed (from the client
/// namespace: the workstation).
const CALLER: &str = r#"
import sys, time, urllib.request
while True:
    try:
        urllib.request.urlopen(sys.argv[1], timeout=1).read()
    except Exception:
        pass
    time.sleep(0.2)
"#;

/// A hostNetwork pod (created here, pinned to node-a, serving on ports of its own)
/// is captured on its node, filtered to its container ports; kcap says so, and the
/// packets are the calls to those ports on the node's address.
#[test]
fn host_network_pod_is_captured_on_its_node_by_its_ports() {
    kcap_testbed::require_kubectl!();
    let bed = cluster();
    let ip = bed.create_pod(&serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "hostnet", "namespace": "prod"},
        "spec": {"nodeName": "node-a", "hostNetwork": true, "containers": [{
            "name": "app", "image": "kcap.test/app:1",
            // Ports no other traffic of the bed uses (web pods serve on 8080).
            "env": [{"name": "HTTP_PORT", "value": "9090"}, {"name": "DNS_PORT", "value": "9053"}],
            "ports": [{"containerPort": 9090, "protocol": "TCP"},
                      {"containerPort": 9053, "protocol": "UDP"}],
        }]},
    }));
    let node_ip = bed.kubectl_out(&[
        "get",
        "node",
        "node-a",
        "-o",
        "jsonpath={.status.addresses[?(@.type==\"InternalIP\")].address}",
    ]);
    assert_eq!(ip, node_ip, "a hostNetwork pod has its node's IP");
    let mut caller = bed
        .bed
        .client_command("python3")
        .args(["-c", CALLER, &format!("http://{node_ip}:9090/")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let file = bed.path("hostnet.pcapng");
    let out = run(
        bed.kcap_kube()
            .args(["pod/hostnet", "-c", "20", "-o"])
            .arg(&file),
        LIMIT,
    );
    let _ = caller.kill();
    let _ = caller.wait();
    assert_ok(&out);
    let text = stderr(&out);
    assert!(
        text.lines().any(|l| l.contains("hostNetwork")
            && l.contains("node-a")
            && l.contains("9090")
            && l.contains("9053")),
        "kcap does not say it captures the node by the pod's ports:\n{text}"
    );
    assert!(text.contains("via node"), "{text}");
    let capture = read_capture(&file);
    assert_eq!(capture.records.len(), 20);
    assert_eq!(capture.interface_names(), ["prod/hostnet/any"]);
    let description = capture.interfaces[0]
        .description
        .clone()
        .unwrap_or_default();
    assert!(description.contains("hostNetwork"), "{description}");
    let packets = tshark_fields(&file, None, &["ip.src", "ip.dst", "tcp.port", "udp.port"]);
    for p in &packets {
        let ports = format!("{},{}", p[2], p[3]);
        assert!(
            ports.split(',').any(|x| x == "9090" || x == "9053"),
            "a packet off the pod's ports: {p:?}"
        );
        assert!(p[0] == node_ip || p[1] == node_ip, "not the node's: {p:?}");
    }
    assert_eq!(bed.helpers_left(Duration::from_secs(10)), "");
}

/// `node/NAME` through the API: a helper pod on that node captures the node's own
/// interface (here its LAN link, where the test bed's clients call it on port 80),
/// and is gone afterwards.
#[test]
fn node_target_through_the_api() {
    kcap_testbed::require_kubectl!();
    let bed = cluster();
    let file = bed.path("node.pcapng");
    let out = run(
        bed.kcap_kube()
            .args([
                "node/node-a",
                "--iface",
                "eth0",
                "--port",
                "80",
                "-c",
                "10",
                "-o",
            ])
            .arg(&file),
        LIMIT,
    );
    assert_ok(&out);
    let capture = read_capture(&file);
    assert_eq!(capture.records.len(), 10);
    let rows = tshark_fields(&file, None, &["ip.addr", "tcp.port"]);
    assert!(
        rows.iter()
            .all(|r| r[0].contains("198.51.100.10") && r[1].contains("80")),
        "{rows:?}"
    );
    assert!(bed.helpers_left(Duration::from_secs(10)).is_empty());
}

/// `--via exec` into a container without tcpdump says so and names the methods that
/// would work, instead of a bare shell error.
#[test]
fn exec_without_tcpdump_suggests_other_methods() {
    kcap_testbed::require_kubectl!();
    let bed = cluster();
    let web = bed.pods_of("web").remove(0);
    let out = run(
        bed.kcap_kube()
            .args([
                "-n",
                "prod",
                &format!("pod/{web}"),
                "--via",
                "exec",
                "-c",
                "1",
                "-o",
            ])
            .arg(bed.path("x.pcapng")),
        LIMIT,
    );
    assert_exit(
        &out,
        7,
        &["no capture tool (tcpdump)", "--via ephemeral", "--via node"],
    );
}
