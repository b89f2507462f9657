//! `--via ephemeral`: a debug container added to the target pod, sharing the target
//! container's namespaces, that runs the capture once kcap attached.
//!
//! Ephemeral containers cannot be removed from a pod, only ended. So the start is
//! named first ([`DebugContainer::new`]: the caller hands it to the reaper before
//! asking), then two steps: [`add`] asks the API for the container; [`open`]
//! waits for it to run, attaches and opens its gate. A container added but
//! never opened (kcap stopped or killed while it started) is ended by
//! [`DebugContainer::end`], from kcap or from its reaper, instead of waiting a
//! minute at its gate.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kcap_capture::command::CaptureCommand;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::Error;
use crate::methods::{capture_command_error, random_suffix};
use crate::pod::PodTarget;
use crate::process::{PodProcess, params};
pub use crate::start::START_TIMEOUT;
use crate::start::{self, Start};

/// Waits for a first stdin line before starting the capture, so the pcap header is
/// written after kcap attached (attaching to a running capture can miss it). A
/// watchdog ends the container if no line has come within a minute (kcap and its
/// reaper were both killed while the container started), so no debug container
/// waits forever; it is stopped (with its `sleep`) once a line came. Any line but
/// [`GO`], or the end of stdin, ends the container.
const GATE: &str = r#"(trap 'kill $s 2>/dev/null; exit 0' TERM; sleep 60 & s=$!; wait $s; kill $$) 2>/dev/null &
w=$!
read -r go || exit 0
kill $w 2>/dev/null
[ "$go" = go ] || exit 0
exec "$@""#;
/// The line that opens the gate.
pub const GO: &[u8] = b"go\n";
/// The line that ends a container at its gate.
const STOP: &[u8] = b"stop\n";
/// How long a PATCH kcap sent may take to show in the pod's spec.
const APPEAR_WITHIN: Duration = Duration::from_secs(3);
/// How long [`DebugContainer::end`] waits for the container to exit once told to.
const EXIT_WITHIN: Duration = Duration::from_secs(5);

/// A debug container kcap added to a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugContainer {
    pub namespace: String,
    pub pod: String,
    pub name: String,
}

/// Adds a debug container (NET_RAW/NET_ADMIN, sharing the target container's
/// namespaces) that will run `command` once [`open`]ed.
pub async fn add(
    client: &kube::Client,
    pod: &PodTarget,
    container: &DebugContainer,
    command: &CaptureCommand,
    image: &str,
) -> Result<(), Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
    let name = &container.name;
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
        .map_err(|e| patch_error(e, pod))?;
    Ok(())
}

/// Waits for `debug` to run, attaches to it and opens its gate: the capture starts.
pub async fn open(
    client: &kube::Client,
    pod: &PodTarget,
    debug: &DebugContainer,
) -> Result<PodProcess, Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
    let message = match debug.wait(&api).await? {
        Start::Running => None,
        Start::Failed(why) => Some(why),
        Start::Pending => Some(format!(
            "the debug container {} did not start within {START_TIMEOUT:?}",
            debug.name
        )),
    };
    if let Some(message) = message {
        return Err(Error::EphemeralUnsupported {
            pod: pod.label(),
            message,
            source: None,
        });
    }
    let mut process = debug.attach(&api).await?;
    process.write_stdin(GO).await.map_err(|e| Error::Api {
        what: "attach".into(),
        source: Arc::new(e),
    })?;
    Ok(process)
}

impl DebugContainer {
    /// A new debug container for `pod`, named before it is [`add`]ed so that the
    /// reaper can know it while the API is asked.
    pub fn new(pod: &PodTarget) -> DebugContainer {
        DebugContainer {
            namespace: pod.namespace.clone(),
            pod: pod.name.clone(),
            name: format!("kcap-{}", random_suffix()),
        }
    }

    /// Ends this container if it is at its gate, once it runs (it may still be
    /// starting); one that never starts, ended, or whose pod is gone needs nothing.
    /// A container kcap already opened has its stdin taken: this does nothing to
    /// it (its capture ends when kcap's heartbeat stops).
    pub async fn end(&self, client: &kube::Client) -> Result<(), Error> {
        let api: Api<Pod> = Api::namespaced(client.clone(), &self.namespace);
        // The PATCH may still be on its way (kcap was killed while asking), or
        // it never arrived: a container not in the pod's spec soon was not added.
        if !self.in_spec(&api).await? {
            tokio::time::sleep(APPEAR_WITHIN).await;
            if !self.in_spec(&api).await? {
                return Ok(());
            }
        }
        match self.wait(&api).await {
            Ok(Start::Running) => {}
            Ok(_) => return Ok(()),
            // The pod went away while the container started.
            Err(_) if matches!(api.get_opt(&self.pod).await, Ok(None)) => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut process = self.attach(&api).await?;
        let _ = process.write_stdin(STOP).await;
        process.close_stdin().await;
        // Read to the exit, so the line is delivered before this returns (and the
        // caller's runtime, the reaper's, may end).
        let _ = tokio::time::timeout(EXIT_WITHIN, async {
            while let Ok(Some(_)) = process.next().await {}
        })
        .await;
        Ok(())
    }

    /// Whether the pod (still there) has this container in its spec.
    async fn in_spec(&self, api: &Api<Pod>) -> Result<bool, Error> {
        let pod = api
            .get_opt(&self.pod)
            .await
            .map_err(|e| Error::from_kube(e, "get", "pods", &self.namespace))?;
        Ok(pod
            .and_then(|p| p.spec)
            .and_then(|s| s.ephemeral_containers)
            .is_some_and(|all| all.iter().any(|c| c.name == self.name)))
    }

    /// How far the container got in starting, once it is no longer pending (or
    /// [`START_TIMEOUT`] passed).
    async fn wait(&self, api: &Api<Pod>) -> Result<Start, Error> {
        let state = |p: &Pod| start::debug_container(p, &self.name);
        Ok(start::await_start(api, &self.pod, state)
            .await?
            .map_or(Start::Pending, |p| state(&p)))
    }

    async fn attach(&self, api: &Api<Pod>) -> Result<PodProcess, Error> {
        let attached = api
            .attach(&self.pod, &params(&self.name))
            .await
            .map_err(|e| Error::from_kube(e, "create", "pods/attach", &self.namespace))?;
        Ok(PodProcess::new(attached))
    }
}

/// What a refused `PATCH pods/NAME/ephemeralcontainers` means.
fn patch_error(e: kube::Error, pod: &PodTarget) -> Error {
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
            patch_error(old_cluster, &pod()),
            Error::EphemeralUnsupported { message, .. } if message.contains("before 1.23")
        ));
        let gone = api_error(
            json!({"status": "Failure", "code": 404, "reason": "NotFound",
            "message": "pods \"app\" not found", "details": {"name": "app", "kind": "pods"}}),
        );
        assert!(matches!(patch_error(gone, &pod()), Error::Api { .. }));
        let psa = api_error(
            json!({"status": "Failure", "code": 403, "reason": "Forbidden",
            "message": "pods \"app\" is forbidden: violates PodSecurity \"baseline:latest\": non-default capabilities (...)"}),
        );
        let e = patch_error(psa, &pod());
        assert!(matches!(e, Error::EphemeralRejected { .. }), "{e:?}");
        assert!(e.hint().unwrap().contains("--via ssh"));
        let rbac = api_error(
            json!({"status": "Failure", "code": 403, "reason": "Forbidden",
            "message": "pods \"app\" is forbidden: User \"u\" cannot patch resource \"pods/ephemeralcontainers\" in API group \"\" in the namespace \"secure\""}),
        );
        assert!(matches!(patch_error(rbac, &pod()), Error::Forbidden { .. }));
    }
}
