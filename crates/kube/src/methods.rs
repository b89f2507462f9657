//! The ways into a pod's network namespace (`--via`): `exec` the wrapper in the
//! target container, run it in an `ephemeral` debug container, or enter the pod's
//! namespace from the node (`node`: a privileged helper pod; `ssh`: see
//! [`netns_argv`], run by the caller over SSH). Every method yields a process that
//! writes the pcap stream on stdout and stops when kcap's heartbeat stops.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kcap_capture::command::CaptureCommand;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::Error;
use crate::pod::PodTarget;
use crate::process::{PodProcess, params};
use crate::start::{self, START_TIMEOUT, Start};

/// Where callers found the `--via auto` order before it moved next to [`crate::Method`].
pub use crate::method::AUTO_ORDER;

/// Default image for ephemeral and helper containers: public, has sh, tcpdump,
/// nsenter and crictl-less but `nsenter`; tests pass `--image kcap.test/capture:1`.
pub const DEFAULT_IMAGE: &str = "docker.io/nicolaka/netshoot:latest";

/// Waits for a first stdin line before starting the capture, so the pcap header is
/// written after kcap attached (attaching to a running capture can miss it). A
/// watchdog ends the container if the line has not come within a minute (kcap was
/// stopped or killed while the container started), so no debug container waits
/// forever; it is stopped (with its `sleep`) once the line came.
const GATE: &str = r#"(trap 'kill $s 2>/dev/null; exit 0' TERM; sleep 60 & s=$!; wait $s; kill $$) 2>/dev/null &
w=$!
read -r go || exit 0
kill $w 2>/dev/null
[ "$go" = go ] || exit 0
exec "$@""#;
/// The line that opens the gate.
pub const GO: &[u8] = b"go\n";

/// Enters the network namespace of a container (by runtime ID, through `crictl
/// inspect` -> pid -> `nsenter -n`), or stays in the host's (empty ID: a node or
/// hostNetwork pod), then runs the rest of the arguments.
const NETNS: &str = r#"PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin
cid=$1; shift
if [ -z "$cid" ]; then exec "$@"; fi
if ! command -v crictl >/dev/null 2>&1; then echo "kcap-netns: crictl is not on PATH: cannot find container $cid" >&2; exit 126; fi
pid=$(crictl inspect -o go-template --template '{{.info.pid}}' "$cid") || { echo "kcap-netns: crictl inspect $cid failed" >&2; exit 126; }
case $pid in ''|*[!0-9]*|0) echo "kcap-netns: no process for container $cid ($pid)" >&2; exit 126 ;; esac
exec nsenter -t "$pid" -n -- "$@""#;

/// The command that captures inside a container's network namespace from its node
/// (or in the node's own namespace when `container_id` is empty).
pub fn netns_argv(container_id: &str, capture: Vec<String>) -> Vec<String> {
    let mut argv = netns_prefix(container_id);
    argv.extend(capture);
    argv
}

/// The words that enter `container_id`'s network namespace before the capture's own
/// (for a shell line over SSH: see `CaptureCommand::to_shell_after`).
pub fn netns_prefix(container_id: &str) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        NETNS.into(),
        "kcap-netns".into(),
        container_id.into(),
    ]
}

pub async fn exec(
    client: &kube::Client,
    pod: &PodTarget,
    command: &CaptureCommand,
) -> Result<PodProcess, Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
    let argv = command.to_argv("").map_err(capture_command_error)?;
    let attached = api
        .exec(&pod.name, argv, &params(&pod.container))
        .await
        .map_err(|e| exec_error(e, pod))?;
    Ok(PodProcess::new(attached))
}

/// The capture command's values (interface, filter) cannot be passed on.
fn capture_command_error(source: kcap_capture::Error) -> Error {
    Error::Quote {
        what: "the capture command",
        source,
    }
}

fn exec_error(e: kube::Error, pod: &PodTarget) -> Error {
    let text = e.to_string();
    // No shell in the image (distroless): the runtime cannot start `sh`.
    if text.contains("executable file not found") || text.contains("no such file") {
        return Error::ToolMissing {
            pod: pod.label(),
            container: pod.container.clone(),
            message: "the image has no shell (sh) to run the capture".into(),
            source: Some(Arc::new(e)),
        };
    }
    Error::from_kube(e, "create", "pods/exec", &pod.namespace)
}

/// Adds an ephemeral container (NET_RAW/NET_ADMIN, sharing the target container's
/// namespaces) that waits for [`GO`], attaches to it and opens the gate.
pub async fn ephemeral(
    client: &kube::Client,
    pod: &PodTarget,
    command: &CaptureCommand,
    image: &str,
) -> Result<PodProcess, Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
    let name = format!("kcap-{}", random_suffix());
    let mut argv: Vec<String> = vec!["sh".into(), "-c".into(), GATE.into(), "kcap-gate".into()];
    argv.extend(command.to_argv("").map_err(capture_command_error)?);
    let patch = json!({"spec": {"ephemeralContainers": [{
        "name": name,
        "image": image,
        "command": argv,
        "targetContainerName": pod.container,
        "stdin": true,
        // The container's stdin closes when kcap's attach closes it: the wrapper
        // then stops the capture at once (else only when the heartbeat times out).
        "stdinOnce": true,
        "tty": false,
        "terminationMessagePolicy": "File",
        "securityContext": {"capabilities": {"add": ["NET_RAW", "NET_ADMIN"]}, "runAsUser": 0, "runAsNonRoot": false},
    }]}});
    api.patch_ephemeral_containers(&pod.name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .map_err(|e| ephemeral_patch_error(e, pod))?;
    wait_ephemeral_running(&api, pod, &name).await?;
    let attached = api
        .attach(&pod.name, &params(&name))
        .await
        .map_err(|e| Error::from_kube(e, "create", "pods/attach", &pod.namespace))?;
    let mut process = PodProcess::new(attached);
    process.write_stdin(GO).await.map_err(|e| Error::Api {
        what: "attach".into(),
        source: Arc::new(e),
    })?;
    Ok(process)
}

/// What a refused `PATCH pods/NAME/ephemeralcontainers` means.
fn ephemeral_patch_error(e: kube::Error, pod: &PodTarget) -> Error {
    if let Some(message) = Error::admission_refusal(&e) {
        return Error::EphemeralRejected {
            pod: pod.label(),
            message: message.into(),
            source: Some(Arc::new(e)),
        };
    }
    let message = match &e {
        // A server without the subresource (before 1.23, or the feature gate off)
        // answers 404 with empty details; a 404 naming the pod means it is gone
        // (kubectl debug tells them apart the same way).
        kube::Error::Api(s)
            if s.code == 404 && s.details.as_ref().is_none_or(|d| d.name.is_empty()) =>
        {
            format!(
                "the API server has no pods/ephemeralcontainers subresource \
                 (Kubernetes before 1.23, or its EphemeralContainers feature gate is off): {}",
                s.message
            )
        }
        kube::Error::Api(s) if s.code == 405 || s.code == 415 => s.message.clone(),
        _ => return Error::from_kube(e, "patch", "pods/ephemeralcontainers", &pod.namespace),
    };
    Error::EphemeralUnsupported {
        pod: pod.label(),
        message,
        source: Some(Arc::new(e)),
    }
}

async fn wait_ephemeral_running(api: &Api<Pod>, pod: &PodTarget, name: &str) -> Result<(), Error> {
    let state = |p: &Pod| start::debug_container(p, name);
    let message = match start::await_start(api, &pod.name, state)
        .await?
        .map(|p| state(&p))
    {
        Some(Start::Running) => return Ok(()),
        Some(Start::Failed(why)) => why,
        Some(Start::Pending) | None => {
            format!("the debug container {name} did not start within {START_TIMEOUT:?}")
        }
    };
    Err(Error::EphemeralUnsupported {
        pod: pod.label(),
        message,
        source: None,
    })
}

/// A helper pod kcap created; [`HelperPod::delete`] removes it. The reaper (see the
/// binary) deletes it too if kcap dies without doing so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperPod {
    pub namespace: String,
    pub name: String,
}

impl HelperPod {
    pub async fn delete(&self, client: &kube::Client) -> Result<(), Error> {
        let api: Api<Pod> = Api::namespaced(client.clone(), &self.namespace);
        match api
            .delete(
                &self.name,
                &DeleteParams {
                    grace_period_seconds: Some(0),
                    ..Default::default()
                },
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if Error::is_not_found(&e) => Ok(()),
            Err(e) => Err(Error::from_kube(e, "delete", "pods", &self.namespace)),
        }
    }
}

/// Label on every helper pod, so leftovers can be found (`kubectl get pods -l kcap/helper`).
pub const HELPER_LABEL: &str = "kcap/helper";

/// Creates the helper pod on `node`. `on_created` runs right after the API
/// accepted it, before waiting, so the reaper knows it from the first moment.
pub async fn create_helper(
    client: &kube::Client,
    namespace: &str,
    node: &str,
    image: &str,
    on_created: impl FnOnce(&HelperPod),
) -> Result<HelperPod, Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let name = format!("kcap-helper-{}", random_suffix());
    let manifest: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {HELPER_LABEL: "true"}},
        "spec": {
            "nodeName": node,
            "hostNetwork": true,
            "hostPID": true,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "tolerations": [{"operator": "Exists"}],
            "containers": [{
                "name": "capture",
                "image": image,
                // Idle; captures are exec'd in. Bounded, so a helper orphaned by a
                // killed kcap and its killed reaper still ends within a day.
                "command": ["sleep", "86400"],
                "securityContext": {"privileged": true, "runAsUser": 0},
            }],
        },
    }))
    .expect("static manifest");
    api.create(&PostParams::default(), &manifest)
        .await
        .map_err(|e| {
            // Refused by admission, or as invalid: the server's reason is the message.
            let message = match &e {
                kube::Error::Api(s)
                    if s.code == 422 || s.code == 400 || Error::admission_refusal(&e).is_some() =>
                {
                    Some(s.message.clone())
                }
                _ => None,
            };
            match message {
                Some(message) => Error::HelperRejected {
                    namespace: namespace.into(),
                    node: node.into(),
                    message,
                    source: Some(Arc::new(e)),
                },
                None => Error::from_kube(e, "create", "pods", namespace),
            }
        })?;
    let helper = HelperPod {
        namespace: namespace.into(),
        name: name.clone(),
    };
    on_created(&helper);
    let last = start::await_start(&api, &name, start::helper_pod).await?;
    let message = match last.as_ref().map(start::helper_pod) {
        Some(Start::Running) => return Ok(helper),
        Some(Start::Failed(why)) => why,
        Some(Start::Pending) | None => format!(
            "not running after {START_TIMEOUT:?} {}",
            last.as_ref()
                .map(start::pending_reasons)
                .unwrap_or_default()
        ),
    };
    Err(Error::HelperNotStarted {
        helper: name,
        node: node.into(),
        message,
    })
}

/// Captures in `container_id`'s network namespace (empty: the node's) from the helper.
pub async fn exec_in_helper(
    client: &kube::Client,
    helper: &HelperPod,
    container_id: &str,
    command: &CaptureCommand,
) -> Result<PodProcess, Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &helper.namespace);
    let capture = command.to_argv("").map_err(capture_command_error)?;
    let attached = api
        .exec(
            &helper.name,
            netns_argv(container_id, capture),
            &params("capture"),
        )
        .await
        .map_err(|e| Error::from_kube(e, "create", "pods/exec", &helper.namespace))?;
    Ok(PodProcess::new(attached))
}

fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = h.finish();
    (0..5)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(status: serde_json::Value) -> kube::Error {
        kube::Error::Api(Box::new(serde_json::from_value(status).unwrap()))
    }

    fn pod() -> PodTarget {
        PodTarget {
            namespace: "secure".into(),
            name: "app".into(),
            node: Some("node-a".into()),
            container: "app".into(),
            containers: vec!["app".into()],
            container_id: None,
            ip: None,
            host_network: false,
            phase: "Running".into(),
            running: true,
            ports: Vec::new(),
        }
    }

    #[test]
    fn ephemeral_refusals_are_told_apart() {
        let old_cluster = api_error(
            json!({"status": "Failure", "code": 404, "reason": "NotFound",
            "message": "the server could not find the requested resource", "details": {}}),
        );
        assert!(matches!(
            ephemeral_patch_error(old_cluster, &pod()),
            Error::EphemeralUnsupported { message, .. } if message.contains("before 1.23")
        ));
        let gone = api_error(
            json!({"status": "Failure", "code": 404, "reason": "NotFound",
            "message": "pods \"app\" not found", "details": {"name": "app", "kind": "pods"}}),
        );
        assert!(matches!(
            ephemeral_patch_error(gone, &pod()),
            Error::Api { .. }
        ));
        let psa = api_error(
            json!({"status": "Failure", "code": 403, "reason": "Forbidden",
            "message": "pods \"app\" is forbidden: violates PodSecurity \"baseline:latest\": non-default capabilities (...)"}),
        );
        let e = ephemeral_patch_error(psa, &pod());
        assert!(matches!(e, Error::EphemeralRejected { .. }), "{e:?}");
        assert!(e.hint().unwrap().contains("--via ssh"));
        let rbac = api_error(
            json!({"status": "Failure", "code": 403, "reason": "Forbidden",
            "message": "pods \"app\" is forbidden: User \"u\" cannot patch resource \"pods/ephemeralcontainers\" in API group \"\" in the namespace \"secure\""}),
        );
        assert!(matches!(
            ephemeral_patch_error(rbac, &pod()),
            Error::Forbidden { .. }
        ));
    }
}
