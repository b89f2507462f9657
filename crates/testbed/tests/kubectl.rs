//! The real kubectl against a cluster bed: the API server on the control-plane
//! host, pods in network namespaces on the nodes, kubectl in the client
//! namespace. Proves that what kcap will see through kubectl (pods, IPs,
//! container IDs, exec streams, ephemeral containers, RBAC refusals, watches)
//! matches a real cluster, and that crictl on a node leads from kubectl's
//! container ID to the pod's traffic. Needs root.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kcap_testbed::{AccessQuestion, ApiRequest, RequestKind, Spec, Testbed};
use serde_json::Value;

/// Another kubectl release than the default (1.32) for a few commands.
const OTHER_KUBECTL: &str = "kubectl.1.31";

fn cluster() -> Testbed {
    Testbed::up(Spec::cluster(2)).expect("cluster bed up")
}

/// Runs `cmd` (stdin /dev/null unless set) and kills it through its own
/// Child handle after `limit`: a hung kubectl must fail the test, not hang it.
fn run_for(mut cmd: Command, limit: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let shown = format!("{cmd:?}");
    let mut child = cmd.spawn().expect("spawn");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{shown} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    };
    eprintln!(
        "$ {shown}\n-> {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout[..out.stdout.len().min(2000)]),
        String::from_utf8_lossy(&out.stderr[..out.stderr.len().min(2000)])
    );
    out
}

fn kubectl(bed: &Testbed, args: &[&str]) -> Output {
    let mut cmd = bed.kubectl();
    cmd.args(args).stdin(Stdio::null());
    run_for(cmd, Duration::from_secs(120))
}

/// kubectl succeeded: its stdout.
fn ok(bed: &Testbed, args: &[&str]) -> String {
    let out = kubectl(bed, args);
    assert!(out.status.success(), "kubectl {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn pod_json(bed: &Testbed, name: &str) -> Value {
    serde_json::from_str(&ok(bed, &["get", "pod", name, "-o", "json"])).unwrap()
}

fn pod_names(bed: &Testbed, selector: &str) -> Vec<String> {
    ok(bed, &["get", "pods", "-l", selector, "-o", "name"])
        .lines()
        .filter_map(|l| l.strip_prefix("pod/").map(String::from))
        .collect()
}

/// `(src, dst)` IPv4 addresses of every packet of a pcap, via tshark (empty
/// for packets without IPv4, e.g. ARP).
fn packet_addresses(pcap: &[u8], dir: &Path) -> Vec<(String, String)> {
    let path = dir.join(format!("capture-{}.pcap", pcap.len()));
    fs::write(&path, pcap).unwrap();
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&path)
        // First occurrence: ICMP errors quote another IP header.
        .args([
            "-T",
            "fields",
            "-E",
            "occurrence=f",
            "-e",
            "ip.src",
            "-e",
            "ip.dst",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tshark cannot read the capture: {out:?}"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (s, d) = l.split_once('\t').unwrap_or((l, ""));
            (s.to_string(), d.to_string())
        })
        .collect()
}

/// Most packets are IPv4 (the rest ARP) and every IPv4 one is to or from `ip`.
/// Captures are filtered to IPv4 (`ip`): ARP and IPv6 neighbour chatter is real but
/// says nothing about whose traffic we see, and made these checks flaky.
fn assert_involve(packets: &[(String, String)], ip: &str) {
    assert!(
        packets.iter().all(|(s, d)| s == ip || d == ip),
        "packets not involving {ip}: {packets:?}"
    );
}

#[test]
fn get_lists_pods_workloads_and_services_as_in_a_cluster() {
    kcap_testbed::require_kubectl!();
    let bed = cluster();
    let wide = ok(&bed, &["get", "pods", "-A", "-o", "wide"]);
    let mut lines = wide.lines();
    let header = lines.next().unwrap();
    for col in ["NAMESPACE", "NAME", "READY", "STATUS", "IP", "NODE"] {
        assert!(header.contains(col), "{header}");
    }
    let rows: Vec<&str> = lines.collect();
    // web x3, client, db-0, node-agent x2, distroless, nonroot, toolbox.
    assert_eq!(rows.len(), 10, "{wide}");
    assert!(rows.iter().all(|r| r.contains("Running")), "{wide}");
    assert!(
        rows.iter()
            .any(|r| r.contains(" 10.244.0.") && r.contains(" node-a ")),
        "{wide}"
    );
    assert!(
        rows.iter()
            .any(|r| r.contains(" 10.244.1.") && r.contains(" node-b ")),
        "{wide}"
    );
    assert_eq!(pod_names(&bed, "app=web").len(), 3);

    let all = ok(&bed, &["get", "deploy,ds,sts,svc"]);
    for name in [
        "deployment.apps/web",
        "deployment.apps/client",
        "daemonset.apps/node-agent",
        "statefulset.apps/db",
        "service/web",
        "service/db",
    ] {
        assert!(all.contains(name), "{name} missing: {all}");
    }

    // What kcap reads from a pod, and that it matches the data plane.
    let pod = pod_json(&bed, "toolbox");
    let status = &pod["status"];
    let id = status["containerStatuses"][0]["containerID"]
        .as_str()
        .unwrap();
    assert!(id.starts_with("containerd://"), "{id}");
    let running = bed.runtime().pod("prod", "toolbox").expect("runtime pod");
    assert_eq!(status["podIP"], running.pod_ip.to_string());
    assert_eq!(pod["spec"]["nodeName"], running.node);
    assert_eq!(id, running.containers[0].container_id);

    // Another kubectl release reads the same.
    let mut cmd = bed.kubectl_with(OTHER_KUBECTL, &bed.kubeconfig());
    cmd.args(["get", "pods", "-l", "app=web", "-o", "wide"])
        .stdin(Stdio::null());
    let out = run_for(cmd, Duration::from_secs(60));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 4);
}

#[test]
fn exec_exit_codes_image_errors_and_rbac() {
    kcap_testbed::require_kubectl!();
    let bed = cluster();
    let out = kubectl(
        &bed,
        &[
            "exec",
            "toolbox",
            "-c",
            "tools",
            "--",
            "sh",
            "-c",
            "echo out; exit 7",
        ],
    );
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");

    let out = kubectl(&bed, &["exec", "distroless", "--", "sh"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(r#"exec: "sh": executable file not found in $PATH"#),
        "{out:?}"
    );
    let out = kubectl(
        &bed,
        &["exec", "nonroot", "--", "tcpdump", "-i", "eth0", "-c", "1"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("You don't have permission"),
        "{out:?}"
    );

    // The read-only user may look but not exec.
    let restricted = |args: &[&str]| {
        let mut cmd = bed.kubectl_with("kubectl", &bed.restricted_kubeconfig());
        cmd.args(args).stdin(Stdio::null());
        run_for(cmd, Duration::from_secs(60))
    };
    let out = restricted(&["get", "pods"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("toolbox"));
    let out = restricted(&["exec", "toolbox", "-c", "tools", "--", "true"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Forbidden") || stderr(&out).contains("403"),
        "{out:?}"
    );
}

#[test]
fn exec_streams_a_capture_and_200_mb_byte_identical() {
    kcap_testbed::require_kubectl!();
    let bed = cluster();
    let ip = pod_json(&bed, "toolbox")["status"]["podIP"]
        .as_str()
        .unwrap()
        .to_string();
    let out = kubectl(
        &bed,
        &[
            "exec", "toolbox", "-c", "tools", "--", "tcpdump", "-U", "-w", "-", "-c", "20", "-i",
            "eth0", "ip",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let packets = packet_addresses(&out.stdout, bed.dir());
    assert_eq!(packets.len(), 20, "{packets:?}");
    assert_involve(&packets, &ip);

    // The filesystem is shared with the containers: a file made here is
    // readable in the pod at the same path (root in the tcpdump image).
    let tmp = tempfile::tempdir_in(bed.dir()).unwrap();
    let data = tmp.path().join("random.bin");
    let made = Command::new("head")
        .args(["-c", "200000000", "/dev/urandom"])
        .stdout(File::create(&data).unwrap())
        .status()
        .unwrap();
    assert!(made.success());
    let received = tmp.path().join("received.bin");
    for (program, i) in [("kubectl", 0), (OTHER_KUBECTL, 1)] {
        let mut cmd = bed.kubectl_with(program, &bed.kubeconfig());
        cmd.args(["exec", "toolbox", "-c", "tools", "--", "cat"])
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(File::create(&received).unwrap())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let out = cmd.output().unwrap();
        eprintln!("{program}: 200 MB in {:?}", started.elapsed());
        assert!(out.status.success(), "{program} ({i}): {out:?}");
        assert_eq!(
            sha256(&received),
            sha256(&data),
            "{program}: stream differs"
        );
    }
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Slow (~95 s): kubectl drops a stream after ~60 s unless its pings are
/// answered; every line must arrive and kubectl must exit 0.
#[test]
fn exec_stream_held_open_past_90_seconds() {
    kcap_testbed::require_kubectl!();
    let bed = cluster();
    let started = Instant::now();
    let out = kubectl(
        &bed,
        &[
            "exec",
            "toolbox",
            "-c",
            "tools",
            "--",
            "sh",
            "-c",
            "for i in $(seq 95); do echo line $i; sleep 1; done",
        ],
    );
    assert!(started.elapsed() > Duration::from_secs(90));
    assert!(out.status.success(), "{out:?}");
    let want: Vec<String> = (1..=95).map(|i| format!("line {i}")).collect();
    let got: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(got, want);
}

#[test]
fn debug_captures_through_an_ephemeral_container() {
    kcap_testbed::require_kubectl!();
    let bed = cluster();
    let ip = pod_json(&bed, "distroless")["status"]["podIP"]
        .as_str()
        .unwrap()
        .to_string();
    // kubectl debug attaches only once the container runs: whatever tcpdump
    // wrote before (the 24-byte pcap header!) is lost and the capture is
    // unreadable. That is the real pitfall of attaching, so the capture
    // starts after a pause that leaves kubectl time to attach.
    let out = kubectl(
        &bed,
        &[
            "debug",
            "distroless",
            "-i",
            "--image=kcap.test/capture:1",
            "--target=app",
            "--",
            "sh",
            "-c",
            "sleep 2; exec tcpdump -U -i eth0 -c 5 -w - ip",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    // kubectl itself prints `Targeting container "app". If you don't see
    // processes ...` to stdout before the attached stream: a real kubectl
    // quirk that anyone piping `kubectl debug` into Wireshark must strip.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("Targeting container \"app\""),
        "{stdout:?}"
    );
    let magic = out
        .stdout
        .windows(4)
        .position(|w| w == [0xd4, 0xc3, 0xb2, 0xa1])
        .expect("a pcap header on stdout");
    let packets = packet_addresses(&out.stdout[magic..], bed.dir());
    assert_eq!(packets.len(), 5, "{packets:?}");
    assert_involve(&packets, &ip);
    let pod = pod_json(&bed, "distroless");
    assert_eq!(
        pod["spec"]["ephemeralContainers"][0]["targetContainerName"],
        "app"
    );
    assert_eq!(
        pod["status"]["ephemeralContainerStatuses"][0]["state"]["terminated"]["exitCode"], 0,
        "{}",
        pod["status"]
    );
}

#[test]
fn watch_sees_a_replaced_pod_and_scale_adds_one() {
    kcap_testbed::require_kubectl!();
    let bed = cluster();
    let before = pod_names(&bed, "app=web");
    let victim = before[0].clone();
    let mut cmd = bed.kubectl();
    cmd.args([
        "get",
        "pods",
        "-l",
        "app=web",
        "--watch",
        "--output-watch-events",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut watcher = cmd.spawn().unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = watcher.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // The watch lists the current pods first (ADDED); then delete one.
    let first = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("watch output");
    eprintln!("watch: {first}");
    ok(&bed, &["delete", "pod", &victim, "--wait=false"]);
    let (mut deleted, mut replacement) = (false, false);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(deleted && replacement) && Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) else {
            continue;
        };
        eprintln!("watch: {line}");
        deleted |= line.starts_with("DELETED") && line.contains(&victim);
        replacement |= line.starts_with("ADDED")
            && line.contains("web-")
            && !before.iter().any(|b| line.contains(b.as_str()));
    }
    let _ = watcher.kill();
    let _ = watcher.wait();
    assert!(
        deleted && replacement,
        "deleted {deleted}, replacement {replacement}"
    );

    let ips = |bed: &Testbed| -> Vec<String> {
        let out = ok(
            bed,
            &[
                "get",
                "pods",
                "-l",
                "app=web",
                "-o",
                "jsonpath={.items[*].status.podIP}",
            ],
        );
        out.split_whitespace().map(String::from).collect()
    };
    // The replacement is Pending when the watch shows it: wait for its IP, or it
    // would count as the scale's new pod.
    let deadline = Instant::now() + Duration::from_secs(60);
    let old_ips = loop {
        let now = ips(&bed);
        if now.len() == 3 {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "the replacement has no IP: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(ok(&bed, &["scale", "deploy/web", "--replicas=4"]).contains("scaled"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = ips(&bed);
        if now.len() == 4 {
            let new: Vec<&String> = now.iter().filter(|ip| !old_ips.contains(ip)).collect();
            assert_eq!(new.len(), 1, "{old_ips:?} -> {now:?}");
            assert!(new[0].starts_with("10.244."), "{new:?}");
            break;
        }
        assert!(Instant::now() < deadline, "no 4th pod: {now:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(pod_names(&bed, "app=web").len(), 4);
}

/// Real OpenSSH from the client namespace to a node.
fn ssh(bed: &Testbed, host: &str, command: &str) -> Output {
    let mut cmd = bed.client_command("ssh");
    cmd.arg("-F")
        .arg(bed.ssh_config())
        .args(["-o", "BatchMode=yes", host, command])
        .stdin(Stdio::null());
    run_for(cmd, Duration::from_secs(60))
}

#[test]
fn crictl_on_the_node_leads_from_kubectls_container_id_to_the_traffic() {
    kcap_testbed::require_kubectl!();
    let bed = cluster();
    // A web pod on node-b (routed CNI: the host side is a cali* interface).
    let web = pod_names(&bed, "app=web")
        .into_iter()
        .find(|p| pod_json(&bed, p)["spec"]["nodeName"] == "node-b")
        .expect("a web pod on node-b");
    let jsonpath = |path: &str| {
        ok(
            &bed,
            &["get", "pod", &web, "-o", &format!("jsonpath={path}")],
        )
    };
    let id = jsonpath("{.status.containerStatuses[0].containerID}");
    let ip = jsonpath("{.status.podIP}");
    let inspect = ssh(&bed, "node-b", &format!("crictl inspect {id}"));
    assert!(inspect.status.success(), "{inspect:?}");
    let info: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let pid = info["info"]["pid"].as_u64().expect("pid");

    let capture = |command: String| {
        let out = ssh(
            &bed,
            "node-b",
            &format!("timeout 20 {command} -U -c 10 -w - ip"),
        );
        assert!(out.status.success(), "{command}: {out:?}");
        packet_addresses(&out.stdout, bed.dir())
    };
    let seen = capture(format!("nsenter -t {pid} -n tcpdump -i eth0"));
    assert_involve(&seen, &ip);

    // The node routes the pod's /32 over its host-side interface.
    let route = ssh(&bed, "node-b", &format!("ip -o route get {ip}"));
    let route = String::from_utf8_lossy(&route.stdout).into_owned();
    let dev = route
        .split_whitespace()
        .skip_while(|w| *w != "dev")
        .nth(1)
        .unwrap_or_else(|| panic!("no dev in {route:?}"))
        .to_string();
    assert!(dev.starts_with("cali"), "{route}");
    let seen = capture(format!("tcpdump -i {dev}"));
    assert_involve(&seen, &ip);
}

/// The API server's request log, as a test sees it through [`Testbed::api_requests`]:
/// kubectl's create, exec and delete appear exactly, with the user and the answer;
/// reads do not appear; a refused exec appears as refused (both of kubectl's tries);
/// `auth can-i` appears as an access review.
#[test]
fn request_log_shows_what_kubectl_created_ran_and_deleted() {
    kcap_testbed::require_kubectl!();
    let bed = cluster();
    ok(&bed, &["get", "pods", "-A"]);
    assert_eq!(bed.api_requests(), vec![]);
    ok(
        &bed,
        &[
            "run",
            "probe",
            "--image=kcap.test/app:1",
            "--restart=Never",
            "--",
            "sleep",
            "300",
        ],
    );
    ok(&bed, &["exec", "toolbox", "-c", "tools", "--", "true"]);
    ok(&bed, &["delete", "pod", "probe", "--wait=false"]);
    let mut cmd = bed.kubectl_with("kubectl", &bed.restricted_kubeconfig());
    cmd.args(["exec", "toolbox", "-c", "tools", "--", "true"])
        .stdin(Stdio::null());
    assert!(!run_for(cmd, Duration::from_secs(120)).status.success());
    let mut cmd = bed.kubectl_with("kubectl", &bed.restricted_kubeconfig());
    cmd.args(["auth", "can-i", "create", "pods", "--subresource=exec"])
        .stdin(Stdio::null());
    let out = run_for(cmd, Duration::from_secs(120));
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).as_ref()
        ),
        (Some(1), "no\n")
    );
    ok(&bed, &["get", "pods", "-o", "wide"]);

    let request = |user: &str, method: &str, path: &str, query: &str| ApiRequest {
        user: user.into(),
        method: method.into(),
        path: path.into(),
        query: query.into(),
        kind: RequestKind::Change,
        verb: String::new(),
        group: String::new(),
        resource: "pods".into(),
        subresource: None,
        namespace: Some("prod".into()),
        name: None,
        status: 0,
        review: None,
    };
    let exec = |user: &str, status| ApiRequest {
        kind: RequestKind::Exec,
        verb: "create".into(),
        subresource: Some("exec".into()),
        name: Some("toolbox".into()),
        status,
        ..request(
            user,
            "GET",
            "/api/v1/namespaces/prod/pods/toolbox/exec",
            "command=true&container=tools&stderr=true&stdout=true",
        )
    };
    let log = bed.api_requests();
    assert_eq!(
        log,
        vec![
            ApiRequest {
                verb: "create".into(),
                status: 201,
                ..request(
                    "admin",
                    "POST",
                    "/api/v1/namespaces/prod/pods",
                    "fieldManager=kubectl-run"
                )
            },
            exec("admin", 101),
            ApiRequest {
                verb: "delete".into(),
                name: Some("probe".into()),
                status: 200,
                ..request("admin", "DELETE", "/api/v1/namespaces/prod/pods/probe", "")
            },
            exec("restricted", 403),
            // Refused over WebSocket, kubectl retries over SPDY: refused again.
            ApiRequest {
                method: "POST".into(),
                ..exec("restricted", 403)
            },
            // A question, marked as one: it changed nothing.
            ApiRequest {
                kind: RequestKind::AccessReview,
                verb: "create".into(),
                group: "authorization.k8s.io".into(),
                resource: "selfsubjectaccessreviews".into(),
                namespace: None,
                status: 201,
                review: Some(AccessQuestion {
                    verb: "create".into(),
                    resource: "pods".into(),
                    subresource: Some("exec".into()),
                    namespace: Some("prod".into()),
                    ..AccessQuestion::default()
                }),
                ..request(
                    "restricted",
                    "POST",
                    "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                    ""
                )
            },
        ]
    );
    let acted: Vec<bool> = log.iter().map(ApiRequest::acted).collect();
    assert_eq!(acted, [true, true, true, false, false, false]);
}
