//! The one error type of kcap's Kubernetes side. Every variant says what is wrong
//! and carries what the user needs to act: what exists instead, which verb and
//! resource RBAC refused, which `--via` would work.

use std::fmt::Write as _;

use crate::Method;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("cannot load the Kubernetes configuration: {0}")]
    Config(String),
    #[error("cannot reach the Kubernetes API server: {0}")]
    Unreachable(String),
    #[error("{0}")]
    BadTarget(String),
    #[error("namespace {namespace:?} not found; namespaces: {}", list(existing))]
    NamespaceNotFound {
        namespace: String,
        existing: Vec<String>,
    },
    #[error(
        "{kind} {name:?} not found in namespace {namespace}; {kind}s there: {}",
        list(existing)
    )]
    NotFound {
        kind: &'static str,
        namespace: String,
        name: String,
        existing: Vec<String>,
    },
    #[error("node {name:?} not found; nodes: {}", list(existing))]
    NodeNotFound { name: String, existing: Vec<String> },
    #[error(
        "pod {pod} has no container {container:?}; its containers: {}",
        list(existing)
    )]
    ContainerNotFound {
        pod: String,
        container: String,
        existing: Vec<String>,
    },
    #[error("no pods match {what}")]
    NoPods { what: String },
    #[error("pod {pod} is {phase}, not Running: there is no network to capture")]
    PodNotRunning { pod: String, phase: String },
    #[error(
        "forbidden: this account may not {verb} {resource} in namespace {namespace} ({message})"
    )]
    Forbidden {
        verb: String,
        resource: String,
        namespace: String,
        message: String,
    },
    #[error("Kubernetes API: {what}: {message}")]
    Api { what: String, message: String },
    #[error("filter token {token:?}: {reason}")]
    FilterToken { token: String, reason: String },
    #[error(
        "pod {pod}, container {container}: no capture tool (tcpdump) in the container: {message}"
    )]
    ToolMissing {
        pod: String,
        container: String,
        message: String,
    },
    #[error(
        "pod {pod}, container {container}: permission denied: the container may not capture (non-root or no NET_RAW): {message}"
    )]
    PermissionDenied {
        pod: String,
        container: String,
        message: String,
    },
    #[error("pod {pod}: ephemeral containers are not available: {message}")]
    EphemeralUnsupported { pod: String, message: String },
    #[error("pod {pod}: the debug container was refused by admission: {message}")]
    EphemeralRejected { pod: String, message: String },
    #[error("helper pod {helper} on node {node} did not start: {message}")]
    HelperNotStarted {
        helper: String,
        node: String,
        message: String,
    },
    #[error("helper pod in namespace {namespace} on node {node} was rejected: {message}")]
    HelperRejected {
        namespace: String,
        node: String,
        message: String,
    },
    #[error(
        "pod {pod}: the container runtime gave no process for container {container_id}: {message}"
    )]
    Runtime {
        pod: String,
        container_id: String,
        message: String,
    },
    #[error("pod {pod}: every capture method failed:{}", attempts_text(attempts))]
    AllMethodsFailed {
        pod: String,
        attempts: Vec<(Method, String)>,
    },
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    let mut text = items
        .iter()
        .take(20)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > 20 {
        let _ = write!(text, ", ... ({} in all)", items.len());
    }
    text
}

fn attempts_text(attempts: &[(Method, String)]) -> String {
    let mut text = String::new();
    for (method, why) in attempts {
        let _ = write!(text, "\n  --via {method}: {why}");
    }
    text
}

impl Error {
    /// What would fix it, when kcap knows.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::Config(_) => "check --kubeconfig / $KUBECONFIG and --context".into(),
            Error::Unreachable(_) => "check the cluster address in the kubeconfig and that the API server is up".into(),
            Error::Forbidden { verb, resource, namespace, .. } => format!(
                "ask for a Role granting `{verb}` on `{resource}` in {namespace} (kubectl auth can-i {verb} {resource} -n {namespace})"
            ),
            Error::ToolMissing { .. } => "capture from outside the container: --via ephemeral (a debug container with tcpdump) or --via node (a helper pod on the node)".into(),
            Error::PermissionDenied { .. } => "the container runs as non-root: use --via ephemeral (adds NET_RAW/NET_ADMIN) or --via node".into(),
            Error::EphemeralUnsupported { .. } => "use --via node (helper pod) or --via ssh (SSH to the node)".into(),
            Error::EphemeralRejected { message, .. } if is_pod_security(message) => format!(
                "the namespace's Pod Security level (label {ENFORCE_LABEL}) refuses the debug container's \
                 NET_RAW/NET_ADMIN, and kcap's privileged helper pod too (--via node creates it in this namespace): \
                 use --via ssh (SSH to the pod's node), or have the namespace labelled {ENFORCE_LABEL}=privileged"
            ),
            Error::EphemeralRejected { .. } => "an admission policy refused the debug container (NET_RAW/NET_ADMIN): try --via node or --via ssh".into(),
            Error::HelperRejected { namespace, message, .. } if is_pod_security(message) => format!(
                "namespace {namespace}'s Pod Security level (label {ENFORCE_LABEL}) refuses kcap's privileged \
                 hostNetwork/hostPID helper pod, which kcap creates in the target pod's namespace (for node/NAME: \
                 the -n namespace): use --via ssh (SSH to the node), or have the namespace labelled {ENFORCE_LABEL}=privileged"
            ),
            Error::HelperNotStarted { .. } | Error::HelperRejected { .. } => "privileged helper pods may be refused by Pod Security admission or quotas: try --via ephemeral or --via ssh".into(),
            Error::AllMethodsFailed { attempts, .. } => {
                let ssh = "--via auto does not try ssh: --via ssh captures from the pod's node over SSH (crictl and nsenter there)";
                if attempts.iter().any(|(_, why)| is_pod_security(why)) {
                    format!("the namespace's Pod Security level (label {ENFORCE_LABEL}) refuses kcap's debug container and helper pod; {ssh}")
                } else {
                    ssh.into()
                }
            }
            Error::PodNotRunning { .. } => "wait until the pod runs (kubectl get pod -w), or capture another replica".into(),
            Error::NoPods { .. } => "check the selector and namespace (-n, -A) with kubectl get pods -l ...".into(),
            _ => return None,
        })
    }

    /// Builds the error for a failed API call, naming what was being done.
    pub fn from_kube(error: kube::Error, verb: &str, resource: &str, namespace: &str) -> Error {
        match error {
            kube::Error::Api(status) if status.code == 403 => Error::Forbidden {
                verb: verb.into(),
                resource: resource.into(),
                namespace: if namespace.is_empty() {
                    "(cluster)".into()
                } else {
                    namespace.into()
                },
                message: status.message,
            },
            kube::Error::Api(status) => Error::Api {
                what: format!("{verb} {resource}"),
                message: status.message,
            },
            kube::Error::HyperError(e) => Error::Unreachable(e.to_string()),
            kube::Error::Service(e) => Error::Unreachable(e.to_string()),
            other => Error::Api {
                what: format!("{verb} {resource}"),
                message: other.to_string(),
            },
        }
    }

    /// A 404 from the API.
    pub fn is_not_found(error: &kube::Error) -> bool {
        matches!(error, kube::Error::Api(s) if s.code == 404)
    }

    /// The message of a 403 from an admission controller (Pod Security admission, a
    /// policy webhook), which is not RBAC's: RBAC refuses the caller whatever the
    /// object, admission refuses this object.
    pub fn admission_refusal(error: &kube::Error) -> Option<&str> {
        match error {
            kube::Error::Api(s)
                if s.code == 403
                    && (is_pod_security(&s.message)
                        || s.message.contains("admission webhook")
                        || s.message.contains("denied the request")) =>
            {
                Some(&s.message)
            }
            _ => None,
        }
    }
}

/// The namespace label that sets the Pod Security level admission enforces.
const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";

/// Pod Security admission words every refusal `... violates PodSecurity "LEVEL:VERSION": ...`.
fn is_pod_security(message: &str) -> bool {
    message.contains("violates PodSecurity")
}
