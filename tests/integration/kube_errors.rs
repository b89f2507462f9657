//! kcap against clusters that refuse its capture methods, as real ones do: a
//! namespace under Pod Security admission (`secure`, enforcing `baseline`: the debug
//! container's NET_RAW/NET_ADMIN and the helper pod's privileged hostNetwork/hostPID
//! are refused with the admission plugin's 403), and an old API server without
//! ephemeral containers (404). Each refusal must reach the user as kcap's own error
//! with its exit code (16) and hint, and `--via auto` must say why every method failed,
//! or fall through to the one that works.

use std::process::Output;
use std::time::Duration;

use kcap_testbed::{SECURE_NAMESPACE, Spec};

use crate::kube::LIMIT;
use crate::util::{Bed, assert_exit, assert_ok, run, stderr, tshark_fields};

/// "no capture method works for a pod".
const NO_METHOD: i32 = 16;
/// The scenario's pod in the `secure` namespace (image without tcpdump).
const SECURE_POD: &str = "pod/app";

fn secure_cluster() -> Bed {
    Bed::with(Spec::cluster(2).with_pod_security())
}

impl Bed {
    /// kcap on the `secure` namespace's pod through `via`.
    fn kcap_secure(&self, via: &str) -> Output {
        run(
            self.kcap_kube()
                .args(["-n", SECURE_NAMESPACE, SECURE_POD, "--via", via])
                .args(["-d", "2s", "-o"])
                .arg(self.path(&format!("{via}.pcapng"))),
            LIMIT,
        )
    }
}

/// `--via ephemeral` and `--via node`: the admission plugin's refusal, named as
/// such (not as RBAC's), with a hint that points at what still works; the refused
/// debug container is not in the pod and no helper pod is left.
#[test]
fn pod_security_refuses_debug_container_and_helper_pod() {
    kcap_testbed::require_kubectl!();
    let bed = secure_cluster();
    let out = bed.kcap_secure("ephemeral");
    assert_exit(
        &out,
        NO_METHOD,
        &[
            "pod secure/app: the debug container was refused by admission",
            r#"violates PodSecurity "baseline:latest": non-default capabilities (container "kcap-"#,
            r#"must not include "NET_ADMIN", "NET_RAW" in securityContext.capabilities.add"#,
            "hint: the namespace's Pod Security level (label pod-security.kubernetes.io/enforce)",
            "--via ssh",
        ],
    );
    assert!(
        !stderr(&out).contains("Role"),
        "told as RBAC:\n{}",
        stderr(&out)
    );
    let added = bed.kubectl_out(&[
        "get",
        "pod",
        "-n",
        SECURE_NAMESPACE,
        "app",
        "-o",
        "jsonpath={.spec.ephemeralContainers}",
    ]);
    assert_eq!(added, "", "the refused debug container is in the pod");

    let out = bed.kcap_secure("node");
    assert_exit(
        &out,
        NO_METHOD,
        &[
            "helper pod in namespace secure on node",
            r#"pods "kcap-helper-"#,
            r#"violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true, hostPID=true), privileged (container "capture" must not set securityContext.privileged=true)"#,
            "hint: namespace secure's Pod Security level",
            "--via ssh",
        ],
    );
    assert_eq!(bed.helpers_left(Duration::from_secs(5)), "");
}

/// `--via auto` tries exec (no tcpdump in the image), then the debug container and
/// the helper pod (both refused) and ends with one error naming each reason.
#[test]
fn pod_security_auto_lists_why_every_method_failed() {
    kcap_testbed::require_kubectl!();
    let bed = secure_cluster();
    let out = bed.kcap_secure("auto");
    assert_exit(
        &out,
        NO_METHOD,
        &["pod secure/app: every capture method failed:"],
    );
    let text = stderr(&out);
    let reason = |via: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("--via {via}: ")))
            .unwrap_or_else(|| panic!("no --via {via} line:\n{text}"))
            .to_string()
    };
    assert!(
        reason("exec").contains("no capture tool (tcpdump)"),
        "{text}"
    );
    assert!(
        reason("ephemeral")
            .contains(r#"violates PodSecurity "baseline:latest": non-default capabilities"#),
        "{text}"
    );
    assert!(
        reason("node").contains(r#"violates PodSecurity "baseline:latest": host namespaces"#),
        "{text}"
    );
    assert!(
        text.contains("refuses kcap's debug container and helper pod; --via auto does not try ssh"),
        "{text}"
    );
    assert_eq!(bed.helpers_left(Duration::from_secs(5)), "");
}

/// An API server without `pods/ephemeralcontainers` (404, as before Kubernetes
/// 1.23): `--via ephemeral` says ephemeral containers are unavailable, and `--via
/// auto` on the distroless pod (no shell for exec) falls through to a helper pod and
/// captures the pod's own traffic.
#[test]
fn old_cluster_without_ephemeral_containers_falls_back_to_node() {
    kcap_testbed::require_kubectl!();
    let bed = Bed::with(Spec::cluster(2).without_ephemeral_containers());
    let out = run(
        bed.kcap_kube()
            .args(["pod/distroless", "--via", "ephemeral", "-d", "2s", "-o"])
            .arg(bed.path("e.pcapng")),
        LIMIT,
    );
    assert_exit(
        &out,
        NO_METHOD,
        &[
            "pod prod/distroless: ephemeral containers are not available",
            "no pods/ephemeralcontainers subresource",
            "the server could not find the requested resource",
            "hint: use --via node (helper pod) or --via ssh",
        ],
    );

    let ip = bed.kubectl_out(&[
        "get",
        "pod",
        "-n",
        "prod",
        "distroless",
        "-o",
        "jsonpath={.status.podIP}",
    ]);
    let file = bed.path("auto.pcapng");
    let out = run(
        bed.kcap_kube()
            .args([
                "pod/distroless",
                "--iface",
                "eth0",
                "-f",
                "ip",
                "-c",
                "20",
                "-o",
            ])
            .arg(&file),
        LIMIT,
    );
    assert_ok(&out);
    let text = stderr(&out);
    assert!(
        text.lines()
            .any(|l| l.contains("prod/distroless:") && l.contains("via node")),
        "not captured via node:\n{text}"
    );
    let packets = tshark_fields(&file, None, &["ip.src", "ip.dst"]);
    assert_eq!(packets.len(), 20, "{text}");
    assert!(
        packets.iter().all(|p| p[0] == ip || p[1] == ip),
        "packets without the pod's IP {ip}: {packets:?}"
    );
    assert_eq!(bed.helpers_left(Duration::from_secs(10)), "");
}
