//! The one error type of kcap's Kubernetes side. Every variant says what is wrong
//! and carries what the user needs to act: what exists instead, which verb and
//! resource RBAC refused, which `--via` would work.
//!
//! A variant that wraps another error keeps it as its `source()`: kube-rs's
//! [`kube::Error`] (its `Api` status holds the HTTP code and the server's reason),
//! kube-rs's configuration errors, I/O errors. The message (`Display`) already says
//! the cause in the user's words, so printing the message alone tells the whole
//! story; the source is there for programs (a status code, an `io::ErrorKind`).
//! [`Error::kube_error`] reaches the [`kube::Error`] behind whichever variant wraps
//! one.
//!
//! The type is `Clone`, because a helper pod that failed to start is one answer
//! shared by every capture waiting for it: causes are held in an [`Arc`], and a
//! `source()` is that `Arc` (its message and its own `source()` are the cause's).
//! Downcast a source to the field's type (`Arc<kube::Error>`, [`Cause`],
//! `kcap_capture::Error`), or use [`Error::kube_error`].

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::Method;
use crate::access::ENFORCE_LABEL;

/// A cause that is not always of one type (kube-rs's configuration errors, a
/// [`kube::Error`], an I/O error, a timeout).
pub type Cause = Arc<dyn StdError + Send + Sync + 'static>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Reading the kubeconfig (`path`, when kcap was given one and could not read
    /// it), finding the configuration (`$KUBECONFIG`, ~/.kube/config, in-cluster),
    /// or building a client from it failed.
    #[error("cannot load the Kubernetes configuration: {}{source}", path_prefix(path.as_deref()))]
    Config {
        path: Option<PathBuf>,
        #[source]
        source: Cause,
    },
    /// No answer from the API server: a [`kube::Error`] of the connection (TCP,
    /// TLS, HTTP), or kcap's own timeout.
    #[error("cannot reach the Kubernetes API server: {0}")]
    Unreachable(#[source] Cause),
    /// A target, name or selector kcap cannot use; the text says why and what to write.
    #[error("{0}")]
    BadTarget(String),
    /// The capture command could not be built (`what`): a value that cannot be
    /// passed to a remote command (a line break in `--filter`, a NUL byte, an
    /// impossible interface name).
    #[error("cannot build {what}: {source}")]
    Quote {
        what: &'static str,
        #[source]
        source: kcap_capture::Error,
    },
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
    /// RBAC refused `verb` on `resource`: the server did (`source`: its 403, one that
    /// is not an admission refusal; `message` is the server's), or a dry run's access
    /// review foresaw it (no `source`).
    #[error(
        "forbidden: this account may not {verb} {resource} in namespace {namespace} ({message})"
    )]
    Forbidden {
        verb: String,
        resource: String,
        namespace: String,
        message: String,
        #[source]
        source: Option<Arc<kube::Error>>,
    },
    /// Any other failed request (`what`: its verb and resource): the server's
    /// status, or a [`kube::Error`] of kube-rs itself (a response it could not
    /// decode), or an I/O error on an attached stream.
    #[error("Kubernetes API: {what}: {}", cause_message(&**source))]
    Api {
        what: String,
        #[source]
        source: Cause,
    },
    /// A `--filter` token that stands for no address: it could not be resolved
    /// (`source`: why), or it resolved to no pod with an IP address (`source` is
    /// `None`).
    #[error("filter token {token:?}: {}", token_reason(source.as_deref()))]
    FilterToken {
        token: String,
        #[source]
        source: Option<Arc<Error>>,
    },
    /// No capture tool (or no shell) in the container. `source`: the refused exec,
    /// when that is how kcap found out (else the tool's own message told).
    #[error(
        "pod {pod}, container {container}: no capture tool (tcpdump) in the container: {message}"
    )]
    ToolMissing {
        pod: String,
        container: String,
        message: String,
        #[source]
        source: Option<Arc<kube::Error>>,
    },
    #[error(
        "pod {pod}, container {container}: permission denied: the container may not capture (non-root or no NET_RAW): {message}"
    )]
    PermissionDenied {
        pod: String,
        container: String,
        message: String,
    },
    /// The cluster cannot run a debug container: the API server has no
    /// `pods/ephemeralcontainers` (`source`: its answer), or the container did not
    /// start (ended at once, image not pulled, timeout: no `source`).
    #[error("pod {pod}: ephemeral containers are not available: {message}")]
    EphemeralUnsupported {
        pod: String,
        message: String,
        #[source]
        source: Option<Arc<kube::Error>>,
    },
    /// Admission (Pod Security, a policy webhook) refused the debug container
    /// (`source`: the refused request, `message` the server's reason), or a dry run
    /// foresaw it from the namespace's Pod Security level (no `source`).
    #[error("pod {pod}: the debug container was refused by admission: {message}")]
    EphemeralRejected {
        pod: String,
        message: String,
        #[source]
        source: Option<Arc<kube::Error>>,
    },
    /// The helper pod was created but did not come to run (it ended, or timed out).
    #[error("helper pod {helper} on node {node} did not start: {message}")]
    HelperNotStarted {
        helper: String,
        node: String,
        message: String,
    },
    /// Creating the helper pod was refused, by admission or as invalid (422, 400):
    /// `source` is the refused request, `message` the server's reason; a dry run
    /// that foresaw it has no `source`.
    #[error("helper pod in namespace {namespace} on node {node} was rejected: {message}")]
    HelperRejected {
        namespace: String,
        node: String,
        message: String,
        #[source]
        source: Option<Arc<kube::Error>>,
    },
    #[error(
        "pod {pod}: the container runtime gave no process for container {container_id}: {message}"
    )]
    Runtime {
        pod: String,
        container_id: String,
        message: String,
    },
    /// Every method `--via auto` tried failed; each with its error's message (the
    /// errors themselves are of several kinds, SSH's too, and one error has one source).
    #[error("pod {pod}: every capture method failed:{}", attempts_text(attempts))]
    AllMethodsFailed {
        pod: String,
        attempts: Vec<(Method, String)>,
    },
}

fn path_prefix(path: Option<&Path>) -> String {
    path.map(|p| format!("{}: ", p.display()))
        .unwrap_or_default()
}

/// What the server said (a status's message), else the error's own text.
fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

fn cause_message(cause: &(dyn StdError + Send + Sync + 'static)) -> String {
    match cause.downcast_ref::<kube::Error>() {
        Some(e) => api_message(e),
        None => cause.to_string(),
    }
}

fn token_reason(source: Option<&Error>) -> String {
    match source {
        Some(e) => e.to_string(),
        None => "matches no pod with an IP address".into(),
    }
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
            Error::Config { .. } => "check --kubeconfig / $KUBECONFIG and --context".into(),
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
        match &error {
            kube::Error::Api(status) if status.code == 403 => Error::Forbidden {
                verb: verb.into(),
                resource: resource.into(),
                namespace: if namespace.is_empty() {
                    "(cluster)".into()
                } else {
                    namespace.into()
                },
                message: status.message.clone(),
                source: Some(Arc::new(error)),
            },
            kube::Error::HyperError(_) | kube::Error::Service(_) => {
                Error::Unreachable(Arc::new(error))
            }
            _ => Error::Api {
                what: format!("{verb} {resource}"),
                source: Arc::new(error),
            },
        }
    }

    /// The [`kube::Error`] behind this error, if a failed request is what it wraps
    /// (directly, or through a filter token that could not be resolved).
    pub fn kube_error(&self) -> Option<&kube::Error> {
        match self {
            Error::Forbidden { source, .. }
            | Error::EphemeralRejected { source, .. }
            | Error::HelperRejected { source, .. }
            | Error::ToolMissing { source, .. }
            | Error::EphemeralUnsupported { source, .. } => source.as_deref(),
            Error::Config { source, .. }
            | Error::Unreachable(source)
            | Error::Api { source, .. } => source.downcast_ref(),
            Error::FilterToken { source, .. } => source.as_deref()?.kube_error(),
            _ => None,
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

/// Pod Security admission words every refusal `... violates PodSecurity "LEVEL:VERSION": ...`.
fn is_pod_security(message: &str) -> bool {
    message.contains("violates PodSecurity")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::io;

    use kube::config::KubeconfigError;

    use super::*;

    fn status(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(Box::new(
            serde_json::from_value(serde_json::json!({
                "status": "Failure", "code": code, "reason": reason, "message": message,
            }))
            .unwrap(),
        ))
    }

    const PSA: &str = "pods \"web-0\" is forbidden: violates PodSecurity \"baseline:latest\": \
                       non-default capabilities (container \"kcap-x\" must not include \"NET_RAW\")";
    const WEBHOOK: &str =
        "admission webhook \"policy.example.com\" denied the request: no NET_RAW here";

    /// Its position in the declaration. No `_` arm: a new variant does not compile
    /// here until it is added to the cases below.
    fn variant(e: &Error) -> usize {
        match e {
            Error::Config { .. } => 0,
            Error::Unreachable(_) => 1,
            Error::BadTarget(_) => 2,
            Error::Quote { .. } => 3,
            Error::NamespaceNotFound { .. } => 4,
            Error::NotFound { .. } => 5,
            Error::NodeNotFound { .. } => 6,
            Error::ContainerNotFound { .. } => 7,
            Error::NoPods { .. } => 8,
            Error::PodNotRunning { .. } => 9,
            Error::Forbidden { .. } => 10,
            Error::Api { .. } => 11,
            Error::FilterToken { .. } => 12,
            Error::ToolMissing { .. } => 13,
            Error::PermissionDenied { .. } => 14,
            Error::EphemeralUnsupported { .. } => 15,
            Error::EphemeralRejected { .. } => 16,
            Error::HelperNotStarted { .. } => 17,
            Error::HelperRejected { .. } => 18,
            Error::Runtime { .. } => 19,
            Error::AllMethodsFailed { .. } => 20,
        }
    }
    const VARIANTS: usize = 21;

    /// Every variant (some twice, where the hint depends on the cause): the error,
    /// its message, its hint.
    fn cases() -> Vec<(Error, &'static str, Option<&'static str>)> {
        let config_hint = Some("check --kubeconfig / $KUBECONFIG and --context");
        let helper_hint = Some(
            "privileged helper pods may be refused by Pod Security admission or quotas: try --via ephemeral or --via ssh",
        );
        let ssh_hint = "--via auto does not try ssh: --via ssh captures from the pod's node over SSH (crictl and nsenter there)";
        vec![
            (
                Error::Config {
                    path: Some("/etc/kube/config".into()),
                    source: Arc::new(KubeconfigError::ReadConfig(
                        io::Error::new(io::ErrorKind::NotFound, "no such file"),
                        "/etc/kube/config".into(),
                    )),
                },
                "cannot load the Kubernetes configuration: /etc/kube/config: failed to read kubeconfig from '\"/etc/kube/config\"': no such file",
                config_hint,
            ),
            (
                Error::Config {
                    path: None,
                    source: Arc::new(KubeconfigError::CurrentContextNotSet),
                },
                "cannot load the Kubernetes configuration: failed to determine current context",
                config_hint,
            ),
            (
                Error::from_kube(
                    kube::Error::Service(Box::new(io::Error::new(
                        io::ErrorKind::ConnectionRefused,
                        "connection refused",
                    ))),
                    "get",
                    "pods",
                    "prod",
                ),
                "cannot reach the Kubernetes API server: ServiceError: connection refused",
                Some("check the cluster address in the kubeconfig and that the API server is up"),
            ),
            (
                Error::BadTarget("target \"web\" is not TYPE/NAME".into()),
                "target \"web\" is not TYPE/NAME",
                None,
            ),
            (
                Error::Quote {
                    what: "the capture command",
                    source: kcap_capture::Error::LineBreak { what: "--filter" },
                },
                "cannot build the capture command: --filter contains a line break; write the expression on one line",
                None,
            ),
            (
                Error::NamespaceNotFound {
                    namespace: "prdo".into(),
                    existing: vec!["default".into(), "prod".into()],
                },
                "namespace \"prdo\" not found; namespaces: default, prod",
                None,
            ),
            (
                Error::NotFound {
                    kind: "pod",
                    namespace: "prod".into(),
                    name: "web-1".into(),
                    existing: vec![],
                },
                "pod \"web-1\" not found in namespace prod; pods there: none",
                None,
            ),
            (
                Error::NodeNotFound {
                    name: "node-z".into(),
                    existing: vec!["node-a".into()],
                },
                "node \"node-z\" not found; nodes: node-a",
                None,
            ),
            (
                Error::ContainerNotFound {
                    pod: "prod/web-0".into(),
                    container: "side".into(),
                    existing: vec!["web".into()],
                },
                "pod prod/web-0 has no container \"side\"; its containers: web",
                None,
            ),
            (
                Error::NoPods {
                    what: "deploy/web (selector app=web)".into(),
                },
                "no pods match deploy/web (selector app=web)",
                Some("check the selector and namespace (-n, -A) with kubectl get pods -l ..."),
            ),
            (
                Error::PodNotRunning {
                    pod: "prod/web-0".into(),
                    phase: "Pending".into(),
                },
                "pod prod/web-0 is Pending, not Running: there is no network to capture",
                Some("wait until the pod runs (kubectl get pod -w), or capture another replica"),
            ),
            (
                Error::from_kube(
                    status(
                        403,
                        "Forbidden",
                        "pods \"web-0\" is forbidden: User \"u\" cannot create resource \"pods/exec\"",
                    ),
                    "create",
                    "pods/exec",
                    "prod",
                ),
                "forbidden: this account may not create pods/exec in namespace prod (pods \"web-0\" is forbidden: User \"u\" cannot create resource \"pods/exec\")",
                Some(
                    "ask for a Role granting `create` on `pods/exec` in prod (kubectl auth can-i create pods/exec -n prod)",
                ),
            ),
            (
                // As a dry run's access review foresees it: no request failed.
                Error::Forbidden {
                    verb: "patch".into(),
                    resource: "pods/ephemeralcontainers".into(),
                    namespace: "prod".into(),
                    message: "SelfSubjectAccessReview: not allowed".into(),
                    source: None,
                },
                "forbidden: this account may not patch pods/ephemeralcontainers in namespace prod (SelfSubjectAccessReview: not allowed)",
                Some(
                    "ask for a Role granting `patch` on `pods/ephemeralcontainers` in prod (kubectl auth can-i patch pods/ephemeralcontainers -n prod)",
                ),
            ),
            (
                Error::from_kube(
                    status(403, "Forbidden", "nodes is forbidden"),
                    "list",
                    "nodes",
                    "",
                ),
                "forbidden: this account may not list nodes in namespace (cluster) (nodes is forbidden)",
                Some(
                    "ask for a Role granting `list` on `nodes` in (cluster) (kubectl auth can-i list nodes -n (cluster))",
                ),
            ),
            (
                Error::from_kube(
                    status(404, "NotFound", "pods \"web-0\" not found"),
                    "get",
                    "pods",
                    "prod",
                ),
                "Kubernetes API: get pods: pods \"web-0\" not found",
                None,
            ),
            (
                Error::Api {
                    what: "attach".into(),
                    source: Arc::new(io::Error::new(io::ErrorKind::BrokenPipe, "broken pipe")),
                },
                "Kubernetes API: attach: broken pipe",
                None,
            ),
            (
                Error::FilterToken {
                    token: "pod/Bad_Name".into(),
                    source: Some(Arc::new(Error::BadTarget(
                        "pod name \"Bad_Name\" is not valid".into(),
                    ))),
                },
                "filter token \"pod/Bad_Name\": pod name \"Bad_Name\" is not valid",
                None,
            ),
            (
                Error::FilterToken {
                    token: "deploy/web".into(),
                    source: None,
                },
                "filter token \"deploy/web\": matches no pod with an IP address",
                None,
            ),
            (
                Error::ToolMissing {
                    pod: "prod/web-0".into(),
                    container: "web".into(),
                    message: "the image has no shell (sh) to run the capture".into(),
                    source: Some(Arc::new(status(
                        500,
                        "InternalError",
                        "exec: \"sh\": executable file not found in $PATH",
                    ))),
                },
                "pod prod/web-0, container web: no capture tool (tcpdump) in the container: the image has no shell (sh) to run the capture",
                Some(
                    "capture from outside the container: --via ephemeral (a debug container with tcpdump) or --via node (a helper pod on the node)",
                ),
            ),
            (
                Error::PermissionDenied {
                    pod: "prod/web-0".into(),
                    container: "web".into(),
                    message: "tcpdump: any: You don't have permission to capture on that device"
                        .into(),
                },
                "pod prod/web-0, container web: permission denied: the container may not capture (non-root or no NET_RAW): tcpdump: any: You don't have permission to capture on that device",
                Some(
                    "the container runs as non-root: use --via ephemeral (adds NET_RAW/NET_ADMIN) or --via node",
                ),
            ),
            (
                Error::EphemeralUnsupported {
                    pod: "prod/web-0".into(),
                    message: "the debug container kcap-bcdfg did not start within 60s".into(),
                    source: None,
                },
                "pod prod/web-0: ephemeral containers are not available: the debug container kcap-bcdfg did not start within 60s",
                Some("use --via node (helper pod) or --via ssh (SSH to the node)"),
            ),
            (
                Error::EphemeralRejected {
                    pod: "prod/web-0".into(),
                    message: PSA.into(),
                    source: Some(Arc::new(status(403, "Forbidden", PSA))),
                },
                "pod prod/web-0: the debug container was refused by admission: pods \"web-0\" is forbidden: violates PodSecurity \"baseline:latest\": non-default capabilities (container \"kcap-x\" must not include \"NET_RAW\")",
                Some(
                    "the namespace's Pod Security level (label pod-security.kubernetes.io/enforce) refuses the debug container's NET_RAW/NET_ADMIN, and kcap's privileged helper pod too (--via node creates it in this namespace): use --via ssh (SSH to the pod's node), or have the namespace labelled pod-security.kubernetes.io/enforce=privileged",
                ),
            ),
            (
                Error::EphemeralRejected {
                    pod: "prod/web-0".into(),
                    message: WEBHOOK.into(),
                    source: None,
                },
                "pod prod/web-0: the debug container was refused by admission: admission webhook \"policy.example.com\" denied the request: no NET_RAW here",
                Some(
                    "an admission policy refused the debug container (NET_RAW/NET_ADMIN): try --via node or --via ssh",
                ),
            ),
            (
                Error::HelperNotStarted {
                    helper: "kcap-helper-bcdfg".into(),
                    node: "node-a".into(),
                    message: "it ended".into(),
                },
                "helper pod kcap-helper-bcdfg on node node-a did not start: it ended",
                helper_hint,
            ),
            (
                Error::HelperRejected {
                    namespace: "secure".into(),
                    node: "node-a".into(),
                    message: PSA.into(),
                    source: Some(Arc::new(status(403, "Forbidden", PSA))),
                },
                "helper pod in namespace secure on node node-a was rejected: pods \"web-0\" is forbidden: violates PodSecurity \"baseline:latest\": non-default capabilities (container \"kcap-x\" must not include \"NET_RAW\")",
                Some(
                    "namespace secure's Pod Security level (label pod-security.kubernetes.io/enforce) refuses kcap's privileged hostNetwork/hostPID helper pod, which kcap creates in the target pod's namespace (for node/NAME: the -n namespace): use --via ssh (SSH to the node), or have the namespace labelled pod-security.kubernetes.io/enforce=privileged",
                ),
            ),
            (
                Error::HelperRejected {
                    namespace: "secure".into(),
                    node: "node-a".into(),
                    message: "Pod \"kcap-helper-bcdfg\" is invalid: spec.nodeName: Invalid value"
                        .into(),
                    source: None,
                },
                "helper pod in namespace secure on node node-a was rejected: Pod \"kcap-helper-bcdfg\" is invalid: spec.nodeName: Invalid value",
                helper_hint,
            ),
            (
                Error::Runtime {
                    pod: "prod/web-0".into(),
                    container_id: "abc123".into(),
                    message: "no such container".into(),
                },
                "pod prod/web-0: the container runtime gave no process for container abc123: no such container",
                None,
            ),
            (
                Error::AllMethodsFailed {
                    pod: "prod/web-0".into(),
                    attempts: vec![
                        (Method::Exec, "no tcpdump".into()),
                        (Method::Node, "not scheduled".into()),
                    ],
                },
                "pod prod/web-0: every capture method failed:\n  --via exec: no tcpdump\n  --via node: not scheduled",
                Some(ssh_hint),
            ),
            (
                Error::AllMethodsFailed {
                    pod: "prod/web-0".into(),
                    attempts: vec![(Method::Ephemeral, PSA.into())],
                },
                "pod prod/web-0: every capture method failed:\n  --via ephemeral: pods \"web-0\" is forbidden: violates PodSecurity \"baseline:latest\": non-default capabilities (container \"kcap-x\" must not include \"NET_RAW\")",
                Some(
                    "the namespace's Pod Security level (label pod-security.kubernetes.io/enforce) refuses kcap's debug container and helper pod; --via auto does not try ssh: --via ssh captures from the pod's node over SSH (crictl and nsenter there)",
                ),
            ),
        ]
    }

    #[test]
    fn every_variant_says_what_and_hints() {
        let mut seen = BTreeSet::new();
        for (error, message, hint) in cases() {
            seen.insert(variant(&error));
            assert_eq!(error.to_string(), message, "{error:?}");
            assert_eq!(error.hint().as_deref(), hint, "{error:?}");
        }
        assert_eq!(seen, (0..VARIANTS).collect(), "a variant has no case");
    }

    /// Whether `error`'s source is the very `Arc` it was given.
    fn source_is<T: ?Sized + 'static>(error: &Error, cause: &Arc<T>) -> bool
    where
        Arc<T>: StdError,
    {
        error
            .source()
            .and_then(|s| s.downcast_ref::<Arc<T>>())
            .is_some_and(|s| Arc::ptr_eq(s, cause))
    }

    #[test]
    fn wrapped_causes_are_the_source() {
        let kube_cause = Arc::new(status(403, "Forbidden", PSA));
        for error in [
            Error::Forbidden {
                verb: "create".into(),
                resource: "pods".into(),
                namespace: "secure".into(),
                message: PSA.into(),
                source: Some(kube_cause.clone()),
            },
            Error::EphemeralRejected {
                pod: "secure/web-0".into(),
                message: PSA.into(),
                source: Some(kube_cause.clone()),
            },
            Error::HelperRejected {
                namespace: "secure".into(),
                node: "node-a".into(),
                message: PSA.into(),
                source: Some(kube_cause.clone()),
            },
            Error::ToolMissing {
                pod: "secure/web-0".into(),
                container: "web".into(),
                message: "no shell".into(),
                source: Some(kube_cause.clone()),
            },
            Error::EphemeralUnsupported {
                pod: "secure/web-0".into(),
                message: "no subresource".into(),
                source: Some(kube_cause.clone()),
            },
        ] {
            assert!(source_is(&error, &kube_cause), "{error:?}");
            // The clone a helper pod's waiters get shares the cause.
            assert!(source_is(&error.clone(), &kube_cause), "{error:?}");
            assert!(std::ptr::eq(error.kube_error().unwrap(), &*kube_cause));
        }

        let cause: Cause = Arc::new(status(404, "NotFound", "gone"));
        for error in [
            Error::Config {
                path: None,
                source: cause.clone(),
            },
            Error::Unreachable(cause.clone()),
            Error::Api {
                what: "get pods".into(),
                source: cause.clone(),
            },
        ] {
            assert!(source_is(&error, &cause), "{error:?}");
            assert!(error.kube_error().is_some(), "{error:?}");
        }

        let inner = Arc::new(Error::Unreachable(cause.clone()));
        let token = Error::FilterToken {
            token: "svc/web".into(),
            source: Some(inner.clone()),
        };
        assert!(source_is(&token, &inner));
        // The chain goes on through the token's cause to the API's answer.
        let next = token.source().and_then(|s| s.source());
        assert!(
            next.and_then(|s| s.downcast_ref::<Cause>())
                .is_some_and(|s| Arc::ptr_eq(s, &cause))
        );
        assert!(token.kube_error().is_some());

        let quote = Error::Quote {
            what: "the capture command",
            source: kcap_capture::Error::Nul { what: "--filter" },
        };
        assert_eq!(
            quote
                .source()
                .unwrap()
                .downcast_ref::<kcap_capture::Error>(),
            Some(&kcap_capture::Error::Nul { what: "--filter" })
        );
    }

    #[test]
    fn what_wraps_nothing_has_no_source() {
        for (error, _, _) in cases() {
            let expected = !matches!(
                error,
                Error::BadTarget(_)
                    | Error::NamespaceNotFound { .. }
                    | Error::NotFound { .. }
                    | Error::NodeNotFound { .. }
                    | Error::ContainerNotFound { .. }
                    | Error::NoPods { .. }
                    | Error::PodNotRunning { .. }
                    | Error::PermissionDenied { .. }
                    | Error::HelperNotStarted { .. }
                    | Error::Runtime { .. }
                    | Error::AllMethodsFailed { .. }
                    | Error::FilterToken { source: None, .. }
                    | Error::Forbidden { source: None, .. }
                    | Error::EphemeralRejected { source: None, .. }
                    | Error::HelperRejected { source: None, .. }
                    | Error::EphemeralUnsupported { source: None, .. }
            );
            assert_eq!(error.source().is_some(), expected, "{error:?}");
        }
    }
}
