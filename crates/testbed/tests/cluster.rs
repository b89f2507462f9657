//! The cluster data plane with real namespaces, processes and traffic: pod
//! networking in both CNI styles, images, exec, ephemeral containers, crictl on
//! the nodes over real OpenSSH, teardown. Need root.

use std::fs;
use std::process::Output;
use std::time::{Duration, Instant};

use kcap_testbed::{ClusterError, ContainerRequest, PodInfo, PodRequest, Spec, Testbed};
use tokio::io::AsyncReadExt;

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}): stdout {:?} stderr {:?}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A cluster bed without API server: these tests drive the runtime directly
/// and count on an empty cluster (the first pod on node-a gets 10.244.0.2).
fn cluster() -> Testbed {
    Testbed::up(Spec::cluster(2).without_api_server()).expect("up")
}

/// A pod of one container on `node`.
fn start(bed: &Testbed, name: &str, node: &str, c: ContainerRequest) -> PodInfo {
    bed.runtime()
        .start_pod(&PodRequest::new("default", name, node).container(c))
        .unwrap_or_else(|e| panic!("start pod {name}: {e}"))
}

fn argv(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Runs an exec to completion: (exit code, stdout, stderr).
async fn exec(bed: &Testbed, pod: &str, container: &str, cmd: &[&str]) -> (i32, String, String) {
    let child = bed
        .runtime()
        .exec("default", pod, container, &argv(cmd), false, false)
        .unwrap_or_else(|e| panic!("exec {cmd:?} in {pod}: {e}"));
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("exec timed out")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Retries `f` for up to 10 s (servers in fresh pods need a moment to bind).
async fn eventually<F, Fut>(what: &str, mut f: F) -> String
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<String, String>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => panic!("{what}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Fields of packets in a pcap (tshark -T fields).
fn tshark_fields(pcap: &[u8], dir: &std::path::Path, filter: &str, field: &str) -> Vec<String> {
    let path = dir.join(format!("capture-{}.pcap", pcap.len()));
    fs::write(&path, pcap).unwrap();
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(&path)
        .args(["-Y", filter, "-T", "fields", "-e", field])
        .output()
        .unwrap();
    // A capture cut off mid-packet (a pipe read in chunks) still decodes.
    assert!(
        !out.stdout.is_empty() || out.status.success(),
        "tshark: {out:?}"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

const UDP_QUERY: &str = "import socket,sys; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); \
s.settimeout(2); s.sendto(b'\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x04kcap\\x00\\x00\\x01\\x00\\x01', (sys.argv[1], 5353)); \
d=s.recv(512); print('answer' if d[2] & 0x80 and d[:2]==b'\\x12\\x34' else 'bad')";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_on_bridge_and_routed_nodes_reach_each_other() {
    let bed = cluster();
    let a = start(
        &bed,
        "web-a",
        "node-a",
        ContainerRequest::new("app", "kcap.test/app:1"),
    );
    let b = start(
        &bed,
        "web-b",
        "node-b",
        ContainerRequest::new("app", "kcap.test/app:1"),
    );
    let (ip_a, ip_b) = (a.pod_ip.to_string(), b.pod_ip.to_string());
    assert!(ip_a.starts_with("10.244.0."), "{ip_a}");
    assert!(ip_b.starts_with("10.244.1."), "{ip_b}");
    assert_eq!(a.host_ip.to_string(), "198.51.100.10");

    // Pod addresses and routes, as each CNI style sets them.
    let pod_a = a.netns.clone().unwrap();
    let pod_b = b.netns.clone().unwrap();
    let run = |ns: &str, cmd: &str| {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", ns, "sh", "-c", cmd])
            .output()
            .unwrap();
        ok(&out, cmd)
    };
    assert!(run(&pod_a, "ip -4 -o addr show eth0").contains(&format!("{ip_a}/24")));
    assert!(run(&pod_a, "ip route").contains("default via 10.244.0.1 dev eth0"));
    assert!(run(&pod_b, "ip -4 -o addr show eth0").contains(&format!("{ip_b}/32")));
    assert!(
        run(&pod_b, "ip route").contains("default via 169.254.1.1 dev eth0 onlink"),
        "{}",
        run(&pod_b, "ip route")
    );
    let veth = a.host_interface.clone().unwrap();
    let cali = b.host_interface.clone().unwrap();
    assert!(veth.starts_with("veth") && veth.len() == 12, "{veth}");
    assert!(cali.starts_with("cali") && cali.len() == 15, "{cali}");
    let node_a = ok(
        &bed.run_on("node-a", "ip -o link show master cni0").unwrap(),
        "cni0",
    );
    assert!(node_a.contains(&veth), "{node_a}");
    let routes_b = ok(&bed.run_on("node-b", "ip route").unwrap(), "ip route");
    assert!(
        routes_b.contains(&format!("{ip_b} dev {cali} scope link")),
        "{routes_b}"
    );
    assert!(
        routes_b.contains("10.244.0.0/24 via 198.51.100.10"),
        "{routes_b}"
    );
    let proxy_arp = ok(
        &bed.run_on(
            "node-b",
            &format!("cat /proc/sys/net/ipv4/conf/{cali}/proxy_arp"),
        )
        .unwrap(),
        "proxy_arp",
    );
    assert_eq!(proxy_arp, "1");

    // HTTP and the DNS-like exchange, both ways across nodes.
    let url = format!("http://{ip_b}:8080/");
    let body = eventually("HTTP a -> b", || async {
        let (code, out, err) = exec(&bed, "web-a", "app", &["curl", "-sS", "-m", "2", &url]).await;
        if code == 0 { Ok(out) } else { Err(err) }
    })
    .await;
    assert!(body.contains("web-b"), "{body}");
    let (code, out, err) = exec(&bed, "web-b", "app", &["python3", "-c", UDP_QUERY, &ip_a]).await;
    assert_eq!((code, out.trim()), (0, "answer"), "{err}");
    let (code, out, err) = exec(&bed, "web-a", "app", &["python3", "-c", UDP_QUERY, &ip_b]).await;
    assert_eq!((code, out.trim()), (0, "answer"), "{err}");

    // The IP is freed and the host side removed when the pod stops.
    bed.runtime().stop_pod("default", "web-b").unwrap();
    bed.runtime().stop_pod("default", "web-b").unwrap();
    let links = ok(&bed.run_on("node-b", "ip -o link").unwrap(), "ip link");
    assert!(!links.contains(&cali), "{links}");
    assert!(!std::path::Path::new("/run/netns").join(&pod_b).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_sees_what_the_image_has() {
    let bed = cluster();
    start(
        &bed,
        "app",
        "node-a",
        ContainerRequest::new("c", "kcap.test/app:1"),
    );
    start(
        &bed,
        "dl",
        "node-b",
        ContainerRequest::new("c", "kcap.test/distroless:1"),
    );
    start(
        &bed,
        "nr",
        "node-a",
        ContainerRequest::new("c", "kcap.test/nonroot:1"),
    );
    // The tcpdump pod talks to the app pod, so it has traffic of its own.
    let app_ip = bed.runtime().pod("default", "app").unwrap().pod_ip;
    start(
        &bed,
        "td",
        "node-b",
        ContainerRequest::new("c", "kcap.test/tcpdump:1").env("TARGETS", &format!("{app_ip}:8080")),
    );

    let (code, out, _) = exec(&bed, "app", "c", &["sh", "-c", "echo hi; exit 3"]).await;
    assert_eq!((code, out.as_str()), (3, "hi\n"));
    let (code, out, _) = exec(
        &bed,
        "app",
        "c",
        &["sh", "-c", "command -v tcpdump || echo none"],
    )
    .await;
    assert_eq!((code, out.trim()), (0, "none"));
    let (_, out, _) = exec(&bed, "app", "c", &["hostname"]).await;
    assert_eq!(out.trim(), "app");

    let err = bed
        .runtime()
        .exec("default", "dl", "c", &argv(&["sh"]), false, false)
        .unwrap_err();
    assert_eq!(
        err,
        ClusterError::ExecutableNotFound {
            executable: "sh".into()
        }
    );
    assert!(matches!(
        bed.runtime()
            .exec("default", "dl", "c", &argv(&["tcpdump"]), false, false),
        Err(ClusterError::ExecutableNotFound { .. })
    ));
    let (code, _, _) = exec(&bed, "dl", "c", &["python3", "-c", "pass"]).await;
    assert_eq!(code, 0, "distroless keeps its application");

    let (_, out, _) = exec(&bed, "nr", "c", &["id", "-u"]).await;
    assert_eq!(out.trim(), "1000");
    let (code, _, err) = exec(&bed, "nr", "c", &["tcpdump", "-i", "eth0", "-c", "1"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("You don't have permission"), "{err}");

    let (code, pcap, err) = {
        let child = bed
            .runtime()
            .exec(
                "default",
                "td",
                "c",
                &argv(&["tcpdump", "-i", "eth0", "-c", "3", "-w", "-"]),
                false,
                false,
            )
            .unwrap();
        let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
            .await
            .expect("tcpdump timed out")
            .unwrap();
        (
            out.status.code(),
            out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(0), "{err}");
    let td_ip = bed
        .runtime()
        .pod("default", "td")
        .unwrap()
        .pod_ip
        .to_string();
    // Three frames of the pod's own traffic (whatever it is: HTTP, ARP for
    // Calico's gateway, IPv6 neighbour discovery of the fresh eth0).
    let frames = tshark_fields(&pcap, bed.dir(), "frame", "frame.number");
    assert_eq!(frames.len(), 3, "{frames:?}");
    let (_, mac, _) = exec(&bed, "td", "c", &["cat", "/sys/class/net/eth0/address"]).await;
    let mut seen = tshark_fields(&pcap, bed.dir(), "eth", "eth.src");
    seen.extend(tshark_fields(&pcap, bed.dir(), "eth", "eth.dst"));
    seen.extend(tshark_fields(&pcap, bed.dir(), "ip", "ip.src"));
    assert!(
        seen.contains(&mac.trim().to_string()) || seen.contains(&td_ip),
        "{seen:?}"
    );

    assert!(matches!(
        bed.runtime().start_pod(
            &PodRequest::new("default", "x", "node-a")
                .container(ContainerRequest::new("c", "kcap.test/nope:1"))
        ),
        Err(ClusterError::UnknownImage { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_capture_container_sees_a_distroless_pods_traffic() {
    let bed = cluster();
    let server = start(
        &bed,
        "server",
        "node-a",
        ContainerRequest::new("app", "kcap.test/app:1"),
    );
    let dl = start(
        &bed,
        "dl",
        "node-b",
        ContainerRequest::new("c", "kcap.test/distroless:1")
            .env("TARGETS", &format!("{}:8080", server.pod_ip)),
    );
    let debug = ContainerRequest {
        add_capabilities: vec!["NET_ADMIN".into(), "NET_RAW".into()],
        ..ContainerRequest::new("debugger", "kcap.test/capture:1")
            .command(["tcpdump", "-i", "eth0", "-U", "-w", "-"])
    };
    let (info, mut child) = bed
        .runtime()
        .start_ephemeral("default", "dl", &debug, Some("c"))
        .unwrap();
    assert!(info.container_id.starts_with("containerd://") && info.container_id.len() == 77);
    let mut stdout = child.stdout.take().unwrap();
    let mut pcap = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        while pcap.len() < 3000 {
            let n = stdout.read(&mut buf).await.unwrap();
            assert!(n > 0, "tcpdump ended early");
            pcap.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("no traffic seen");
    let dl_ip = dl.pod_ip.to_string();
    let http = tshark_fields(&pcap, bed.dir(), "tcp.port == 8080", "ip.src");
    assert!(http.contains(&dl_ip), "{http:?}");
    assert!(
        bed.runtime()
            .pod("default", "dl")
            .unwrap()
            .containers
            .iter()
            .any(|c| c.ephemeral)
    );
    // The capture container dies with its pod even though the caller owns it.
    bed.runtime().stop_pod("default", "dl").unwrap();
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    assert!(status.is_ok(), "ephemeral container survived its pod");
}

/// Real OpenSSH from the client namespace to a node of the bed.
fn ssh(bed: &Testbed, host: &str, command: &str) -> Output {
    bed.client_command("ssh")
        .arg("-F")
        .arg(bed.ssh_config())
        .args(["-o", "BatchMode=yes", host, command])
        .output()
        .expect("run ssh")
}

/// Captures 5 packets on a node over SSH and returns the addresses seen.
fn capture_over_ssh(bed: &Testbed, host: &str, command: &str) -> Vec<String> {
    let out = ssh(bed, host, &format!("timeout 20 {command} -c 5 -w -"));
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut addrs = tshark_fields(&out.stdout, bed.dir(), "ip", "ip.src");
    addrs.extend(tshark_fields(&out.stdout, bed.dir(), "ip", "ip.dst"));
    addrs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crictl_on_a_node_leads_to_a_pods_namespace_and_veth() {
    let bed = cluster();
    let b = start(
        &bed,
        "web-b",
        "node-b",
        ContainerRequest::new("app", "kcap.test/app:1"),
    );
    let a = start(
        &bed,
        "web-a",
        "node-a",
        ContainerRequest::new("app", "kcap.test/distroless:1")
            .env("TARGETS", &format!("{}:8080", b.pod_ip)),
    );
    let (ip_a, ip_b) = (a.pod_ip.to_string(), b.pod_ip.to_string());
    let id = a.containers[0].container_id.clone();
    let hex = id.strip_prefix("containerd://").unwrap();

    // crictl as on a containerd node: full ID with or without scheme, or a prefix.
    for reference in [id.as_str(), hex, &hex[..13]] {
        let out = ssh(&bed, "node-a", &format!("crictl inspect {reference}"));
        let text = ok(&out, "crictl inspect");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["status"]["id"], hex);
        assert_eq!(v["status"]["state"], "CONTAINER_RUNNING");
        assert_eq!(v["status"]["labels"]["io.kubernetes.pod.name"], "web-a");
        assert_eq!(v["info"]["pid"], a.containers[0].pid);
    }
    let v: serde_json::Value = serde_json::from_str(&ok(
        &ssh(&bed, "node-a", &format!("crictl inspect {hex}")),
        "inspect",
    ))
    .unwrap();
    let pid = v["info"]["pid"].as_u64().unwrap();
    let netns = v["info"]["runtimeSpec"]["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["type"] == "network")
        .unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        netns,
        format!("/var/run/netns/{}", a.netns.as_deref().unwrap())
    );
    let ps = ok(&ssh(&bed, "node-a", "crictl ps"), "crictl ps");
    assert!(
        ps.starts_with("CONTAINER") && ps.contains(&hex[..13]) && ps.contains("web-a"),
        "{ps}"
    );
    assert!(
        !ps.contains("web-b"),
        "node-a lists only its own containers: {ps}"
    );
    let pods = ok(&ssh(&bed, "node-a", "crictl pods"), "crictl pods");
    assert!(pods.contains("web-a") && pods.contains("default"), "{pods}");
    // Also through sudo (its secure_path has /usr/local/sbin).
    let ids = ok(
        &ssh(
            &bed,
            "node-a",
            &format!("su {} -c 'sudo -n crictl ps -q'", kcap_testbed::USER_SUDO),
        ),
        "sudo crictl",
    );
    assert_eq!(ids, hex);
    let missing = ssh(&bed, "node-a", "crictl inspect 0000000");
    assert!(!missing.status.success());

    // Into the pod's network namespace, by path and by PID.
    let seen = capture_over_ssh(
        &bed,
        "node-a",
        &format!("nsenter --net={netns} tcpdump -i eth0"),
    );
    assert!(seen.contains(&ip_a), "{seen:?}");
    let seen = capture_over_ssh(
        &bed,
        "node-a",
        &format!("nsenter -t {pid} -n tcpdump -i eth0"),
    );
    assert!(seen.contains(&ip_a), "{seen:?}");

    // Bridge style: the peer ifindex of the pod's eth0 names the node's veth.
    let link = ok(
        &ssh(
            &bed,
            "node-a",
            &format!("nsenter --net={netns} ip -o link show eth0"),
        ),
        "ip link in pod",
    );
    let ifindex = link
        .split("@if")
        .nth(1)
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .to_string();
    let node_links = ok(&ssh(&bed, "node-a", "ip -o link"), "ip link");
    let veth = node_links
        .lines()
        .find(|l| l.starts_with(&format!("{ifindex}: ")))
        .unwrap()
        .split(": ")
        .nth(1)
        .unwrap()
        .split('@')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(Some(&veth), a.host_interface.as_ref());
    let seen = capture_over_ssh(&bed, "node-a", &format!("tcpdump -i {veth}"));
    assert!(seen.contains(&ip_a), "{seen:?}");

    // Routed style: the route to the pod names its cali interface.
    let route = ok(
        &ssh(&bed, "node-b", &format!("ip route get {ip_b}")),
        "ip route get",
    );
    let cali = route
        .split(" dev ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(Some(&cali), b.host_interface.as_ref());
    let seen = capture_over_ssh(&bed, "node-b", &format!("tcpdump -i {cali}"));
    assert!(seen.contains(&ip_b), "{seen:?}");

    // A privileged hostNetwork helper pod (for `--via node`) has crictl and nsenter.
    let helper = ContainerRequest {
        privileged: true,
        ..ContainerRequest::new("helper", "kcap.test/capture:1")
    };
    let h = bed
        .runtime()
        .start_pod(
            &PodRequest {
                host_network: true,
                host_pid: true,
                ..PodRequest::new("kube-system", "kcap-helper", "node-b")
            }
            .container(helper),
        )
        .unwrap();
    assert_eq!(h.pod_ip.to_string(), "198.51.100.11");
    assert!(h.netns.is_none());
    let b_id = b.containers[0].container_id.clone();
    let (code, out, err) = exec_ns(
        &bed,
        "kube-system",
        "kcap-helper",
        "helper",
        &[
            "crictl",
            "inspect",
            "-o",
            "go-template",
            "--template",
            "{{.info.pid}}",
            &b_id,
        ],
    )
    .await;
    assert_eq!(
        (code, out.trim()),
        (0, b.containers[0].pid.to_string().as_str()),
        "{err}"
    );
    let b_ns = format!("/var/run/netns/{}", b.netns.as_deref().unwrap());
    let (code, _, err) = exec_ns(
        &bed,
        "kube-system",
        "kcap-helper",
        "helper",
        &[
            "nsenter",
            &format!("--net={b_ns}"),
            "tcpdump",
            "-i",
            "eth0",
            "-c",
            "2",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
}

async fn exec_ns(
    bed: &Testbed,
    ns: &str,
    pod: &str,
    c: &str,
    cmd: &[&str],
) -> (i32, String, String) {
    let child = bed
        .runtime()
        .exec(ns, pod, c, &argv(cmd), false, false)
        .unwrap_or_else(|e| panic!("exec {cmd:?} in {pod}: {e}"));
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("exec timed out")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn running(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

fn namespaces() -> Vec<String> {
    fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_pods_and_dropping_beds_leaves_nothing_and_beds_coexist() {
    let (one, two) = std::thread::scope(|s| {
        let a = s.spawn(cluster);
        let b = s.spawn(cluster);
        (a.join().unwrap(), b.join().unwrap())
    });
    let mut pids = Vec::new();
    let mut pod_namespaces = Vec::new();
    for bed in [&one, &two] {
        let a = start(
            bed,
            "a",
            "node-a",
            ContainerRequest::new("c", "kcap.test/app:1"),
        );
        let b = start(
            bed,
            "b",
            "node-b",
            ContainerRequest::new("c", "kcap.test/tcpdump:1"),
        );
        // Same addresses in both beds; each reaches its own pods.
        assert_eq!(a.pod_ip.to_string(), "10.244.0.2");
        let url = format!("http://{}:8080/", b.pod_ip);
        eventually("HTTP", || async {
            let (code, out, err) = exec(bed, "a", "c", &["curl", "-sS", "-m", "2", &url]).await;
            if code == 0 && out.contains("kcap-testbed b") {
                Ok(out)
            } else {
                Err(err)
            }
        })
        .await;
        let host = bed
            .runtime()
            .start_pod(
                &PodRequest {
                    host_network: true,
                    ..PodRequest::new("default", "h", "node-a")
                }
                .container(ContainerRequest::new("c", "kcap.test/capture:1")),
            )
            .unwrap();
        // Processes handed to the caller and then forgotten must die too.
        for (pod, c) in [("a", "c"), ("b", "c"), ("h", "c")] {
            let child = bed
                .runtime()
                .exec("default", pod, c, &argv(&["sleep", "600"]), false, false)
                .unwrap();
            pids.push(child.id().unwrap());
            drop(child);
        }
        let (_, eph) = bed
            .runtime()
            .start_ephemeral(
                "default",
                "b",
                &ContainerRequest::new("dbg", "kcap.test/capture:1").command(["sleep", "600"]),
                None,
            )
            .unwrap();
        pids.push(eph.id().unwrap());
        drop(eph);
        for p in [&a, &b, &host] {
            pids.extend(p.containers.iter().map(|c| c.pid));
        }
        pod_namespaces.extend([a.netns.clone().unwrap(), b.netns.clone().unwrap()]);
    }
    assert!(pids.iter().all(|&p| running(p)), "{pids:?}");

    // Stopping one pod kills its processes (also the caller's) and its network.
    let b = one.runtime().pod("default", "b").unwrap();
    let cali = b.host_interface.clone().unwrap();
    one.runtime().stop_pod("default", "b").unwrap();
    assert!(b.containers.iter().all(|c| !running(c.pid)));
    assert!(!namespaces().contains(b.netns.as_ref().unwrap()));
    let links = ok(&one.run_on("node-b", "ip -o link").unwrap(), "ip link");
    assert!(!links.contains(&cali), "{links}");
    let routes = ok(&one.run_on("node-b", "ip route").unwrap(), "ip route");
    assert!(!routes.contains(&b.pod_ip.to_string()), "{routes}");
    // The other bed's pod of the same name is untouched.
    assert!(
        two.runtime()
            .pod("default", "b")
            .unwrap()
            .containers
            .iter()
            .all(|c| running(c.pid))
    );

    let runtime = one.runtime();
    drop(one);
    drop(two);
    let left: Vec<_> = namespaces()
        .into_iter()
        .filter(|n| pod_namespaces.contains(n))
        .collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&p| running(p)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let alive: Vec<_> = pids.iter().filter(|&&p| running(p)).collect();
    assert!(alive.is_empty(), "processes left behind: {alive:?}");
    // A runtime that outlives its bed refuses new pods.
    assert!(
        runtime
            .start_pod(&PodRequest::new("default", "late", "node-a"))
            .is_err()
    );
}

/// The API server drives the runtime through its trait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_is_the_api_servers_pod_runtime() {
    use kcap_apiserver::runtime::{ContainerLaunch, PodLaunch, PodRuntime, RuntimeError};
    let bed = Testbed::up(Spec::cluster(2).without_api_server().without_traffic()).expect("up");
    let rt: std::sync::Arc<dyn PodRuntime> = bed.runtime();
    let launch = |image: &str| ContainerLaunch {
        name: "c".into(),
        image: image.into(),
        command: vec![],
        args: vec![],
        env: vec![],
        privileged: false,
        run_as_user: None,
        add_capabilities: vec![],
        stdin: false,
        tty: false,
    };
    let pod = |name: &str, image: &str| PodLaunch {
        namespace: "default".into(),
        name: name.into(),
        uid: format!("uid-{name}"),
        node: "node-b".into(),
        host_network: false,
        host_pid: false,
        containers: vec![launch(image)],
    };
    let started = rt.start_pod(&pod("p", "kcap.test/distroless:1")).unwrap();
    assert!(started.pod_ip.to_string().starts_with("10.244.1."));
    assert!(
        started.containers[0]
            .image_id
            .starts_with("kcap.test/distroless@sha256:")
    );
    assert!(matches!(
        rt.start_pod(&pod("q", "kcap.test/none:1")),
        Err(RuntimeError::UnknownImage { .. })
    ));
    assert!(matches!(
        rt.exec("default", "p", "c", &argv(&["sh"]), false, false),
        Err(RuntimeError::ExecutableNotFound { .. })
    ));
    let child = rt
        .exec(
            "default",
            "p",
            "c",
            &argv(&[
                "python3",
                "-u",
                "-c",
                "import sys; print('out'); print('err', file=sys.stderr)",
            ]),
            false,
            true,
        )
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "out\nerr\n",
        "a tty merges stderr"
    );
    let (_, child) = rt
        .start_ephemeral(
            "default",
            "p",
            &ContainerLaunch {
                name: "debugger".into(),
                stdin: true,
                ..launch("kcap.test/capture:1")
            },
            Some("c"),
        )
        .unwrap();
    let mut child = child;
    let mut stdin = child.stdin.take().unwrap();
    use tokio::io::AsyncWriteExt;
    stdin
        .write_all(b"id -u; for p in crictl tcpdump nsenter; do command -v $p; done; exit 7\n")
        .await
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "0\n/usr/local/sbin/crictl\n/usr/bin/tcpdump\n/usr/bin/nsenter\n"
    );
    rt.stop_pod("default", "p").unwrap();
    assert!(matches!(
        rt.exec("default", "p", "c", &argv(&["true"]), false, false),
        Err(RuntimeError::NotFound { .. })
    ));
}
