//! The workloads a cluster bed's API server starts with: what kubectl users
//! expect to find (Deployments, a StatefulSet, a DaemonSet, Services, bare pods
//! of every interesting image) and steady pod-to-pod traffic.
//!
//! Traffic: pod IPs are only known once pods run, and there is no kube-proxy,
//! so callers do not dial Service IPs. Instead the test bed writes the IPs of
//! the Service endpoints (`web` and `db` pods) to a targets file whenever they
//! change (see `control_plane`), and the caller pods (`client`, `toolbox`,
//! `distroless`, `nonroot`; `secure/app` when present) read it before every
//! round (`TARGETS_FILE`): each round is an HTTP GET to port 8080 and a DNS-like
//! UDP query to port 5353 of every endpoint.
//!
//! Optional: a namespace under Pod Security admission, and an API server without
//! ephemeral containers (see [`Scenario`]).

use std::path::Path;

use serde_json::{Value, json};

/// Sizes and options of the scenario (namespaces `prod` and `default`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    /// Replicas of Deployment `prod/web`.
    pub web_replicas: usize,
    /// Adds namespace [`SECURE_NAMESPACE`], where Pod Security admission enforces
    /// `baseline`, with pod `app` (image `kcap.test/app:1`: a shell, no tcpdump): exec
    /// finds no tcpdump, and the debug container (NET_RAW/NET_ADMIN) and helper pod
    /// (privileged, hostNetwork) that would capture instead are refused. Off by
    /// default, so the default cluster's pods stay what tests count on.
    pub pod_security: bool,
    /// Whether the API server serves `pods/ephemeralcontainers`; false emulates an
    /// old cluster where it is 404 Not Found (kubectl debug: "ephemeral containers
    /// are disabled for this cluster").
    pub ephemeral_containers: bool,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            web_replicas: 3,
            pod_security: false,
            ephemeral_containers: true,
        }
    }
}

/// The namespace of [`Scenario::pod_security`].
pub const SECURE_NAMESPACE: &str = "secure";

/// Namespaces besides `default` and `kube-system`.
pub(crate) const NAMESPACES: &[&str] = &["prod"];
/// Where the workloads live (kubeconfig default namespace too).
pub(crate) const NAMESPACE: &str = "prod";
/// Pods whose IPs the callers target, by label `app`.
pub(crate) const ENDPOINT_APPS: &[&str] = &["web", "db"];

fn container(name: &str, image: &str, env: &[(&str, &str)]) -> Value {
    let env: Vec<Value> = env
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    json!({"name": name, "image": image, "env": env})
}

fn pod_template(app: &str, c: Value) -> Value {
    json!({"metadata": {"labels": {"app": app}}, "spec": {"containers": [c]}})
}

fn workload(kind: &str, name: &str, replicas: Option<usize>, template: Value) -> Value {
    let mut spec = json!({
        "selector": {"matchLabels": {"app": name}},
        "template": template,
    });
    if let Some(r) = replicas {
        spec["replicas"] = json!(r);
    }
    if kind == "StatefulSet" {
        spec["serviceName"] = json!(name);
    }
    json!({"apiVersion": "apps/v1", "kind": kind,
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": name}},
        "spec": spec})
}

fn service(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": name}},
        "spec": {"selector": {"app": name},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080},
                      {"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}]}})
}

fn pod(name: &str, c: Value) -> Value {
    pod_in(NAMESPACE, name, c)
}

fn pod_in(namespace: &str, name: &str, c: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {"containers": [c]}})
}

/// The manifests of `scenario`; callers read their targets from `targets_file`.
pub(crate) fn objects(scenario: &Scenario, targets_file: &Path) -> Vec<Value> {
    let targets = targets_file.display().to_string();
    // The dedicated client calls often; the others just keep their pod busy.
    let c = |name: &str, image: &str, interval: &str| {
        container(
            name,
            image,
            &[("TARGETS_FILE", targets.as_str()), ("INTERVAL", interval)],
        )
    };
    let app = |image: &str| container("app", image, &[]);
    let mut objects = vec![
        workload(
            "Deployment",
            "web",
            Some(scenario.web_replicas),
            pod_template("web", app("kcap.test/app:1")),
        ),
        service("web"),
        workload(
            "Deployment",
            "client",
            Some(1),
            pod_template("client", c("client", "kcap.test/client:1", "0.2")),
        ),
        workload(
            "StatefulSet",
            "db",
            Some(1),
            pod_template("db", app("kcap.test/app:1")),
        ),
        service("db"),
        workload(
            "DaemonSet",
            "node-agent",
            None,
            pod_template("node-agent", container("agent", "kcap.test/app:1", &[])),
        ),
        pod("distroless", c("app", "kcap.test/distroless:1", "0.5")),
        pod("nonroot", c("app", "kcap.test/nonroot:1", "0.5")),
        pod("toolbox", c("tools", "kcap.test/tcpdump:1", "0.5")),
    ];
    if scenario.pod_security {
        // The namespace first: the API server creates objects in order.
        objects.push(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": SECURE_NAMESPACE,
                "labels": {"pod-security.kubernetes.io/enforce": "baseline"}}}));
        objects.push(pod_in(
            SECURE_NAMESPACE,
            "app",
            c("app", "kcap.test/app:1", "0.5"),
        ));
    }
    objects
}
