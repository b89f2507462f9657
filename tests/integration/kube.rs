//! kcap against the test-bed cluster (API server on `control-plane`, pods on
//! node-a with a bridge CNI and node-b with a routed CNI): every method, workloads
//! merged into one annotated pcapng, filter tokens, RBAC refusal, not-found
//! listings and helper-pod cleanup, including after SIGKILL.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kcap_testbed::Spec;

use crate::util::{Bed, assert_exit, assert_ok, read_capture, run, stderr, tshark_fields};

const IMAGE: &str = "kcap.test/capture:1";
const LIMIT: Duration = Duration::from_secs(90);

fn cluster() -> Bed {
    Bed::with(Spec::cluster(2))
}

impl Bed {
    /// kcap with the admin kubeconfig (namespace prod) and the test bed's image.
    fn kcap_kube(&self) -> Command {
        let mut cmd = self.kcap();
        cmd.arg("--kubeconfig").arg(self.bed.kubeconfig());
        cmd.args(["--image", IMAGE]);
        cmd
    }

    fn kubectl_out(&self, args: &[&str]) -> String {
        let out = run(self.bed.kubectl().args(args), LIMIT);
        assert!(out.status.success(), "kubectl {args:?}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn pods_of(&self, app: &str) -> Vec<String> {
        self.kubectl_out(&[
            "get",
            "pods",
            "-n",
            "prod",
            "-l",
            &format!("app={app}"),
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
        .split_whitespace()
        .map(str::to_string)
        .collect()
    }

    /// Helper pods left anywhere, waiting up to `within` for them to go.
    fn helpers_left(&self, within: Duration) -> String {
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
/// process ends with the heartbeat.
#[test]
fn sigkill_leaves_no_helper_pod_and_no_tcpdump() {
    let bed = cluster();
    let mut child = bed
        .kcap_kube()
        .args(["pod/toolbox", "--via", "node", "-o"])
        .arg(bed.path("k.pcapng"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let node = bed.kubectl_out(&[
        "get",
        "pod",
        "-n",
        "prod",
        "toolbox",
        "-o",
        "jsonpath={.spec.nodeName}",
    ]);
    assert!(
        bed.wait_running(&node, "tcpdump", Duration::from_secs(30))
            || !bed.helpers_left(Duration::ZERO).is_empty()
    );
    std::thread::sleep(Duration::from_secs(2));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(bed.helpers_left(Duration::from_secs(20)), "");
    let left = bed.wait_gone(&node, "tcpdump", Duration::from_secs(10));
    // The toolbox pod's own traffic tools do not run tcpdump; none may be left.
    assert!(left.is_empty(), "tcpdump left on {node}: {left:?}");
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
    let new: Vec<String> = bed
        .pods_of("web")
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(new.len(), 1, "{new:?}");
    let capture = read_capture(&file);
    let name = format!("prod/{}/any", new[0]);
    assert!(
        capture.interface_names().contains(&name),
        "{:?}\n{}",
        capture.interface_names(),
        stderr(&out)
    );
    assert!(capture.count_on(&name) > 0, "{}", stderr(&out));
    assert_eq!(bed.helpers_left(Duration::from_secs(5)), "");
}
