//! Waiting for what kcap started in the cluster (a helper pod, a debug container)
//! to run. Each has one function saying how far it got ([`helper_pod`],
//! [`debug_container`]); [`await_start`] watches the pod until that says it runs or
//! never will, through kube-rs's `await_condition`, so a change is seen when the
//! API server sends it instead of at the next poll.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::wait::{self, await_condition};
use kube::runtime::watcher;

use crate::Error;

/// How long a debug or helper container may take to start (image pull included).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How far a pod, or a container in it, got in starting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Not yet: scheduling, pulling, creating.
    Pending,
    Running,
    /// It will not run; why, in the user's words.
    Failed(String),
}

/// A helper pod: running once its phase is, failed once it ended (it never should:
/// its command sleeps for a day).
pub fn helper_pod(pod: &Pod) -> Start {
    if crate::pod::is_running(pod) {
        return Start::Running;
    }
    let status = pod.status.clone().unwrap_or_default();
    match status.phase.as_deref() {
        Some("Failed" | "Succeeded") => Start::Failed(
            status
                .message
                .or(status.reason)
                .unwrap_or_else(|| "it ended".into()),
        ),
        _ => Start::Pending,
    }
}

/// Why a pending pod is not running yet: its conditions' messages (e.g. the
/// scheduler's "0/3 nodes are available: ...").
pub fn pending_reasons(pod: &Pod) -> String {
    pod.status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .filter_map(|c| c.message.clone())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The ephemeral container `name` in `pod`. An image that cannot be pulled counts
/// as failed at once: the kubelet would retry it until the timeout, and the user
/// is better served by the pull error now.
pub fn debug_container(pod: &Pod, name: &str) -> Start {
    let state = pod
        .status
        .as_ref()
        .and_then(|s| s.ephemeral_container_statuses.as_ref())
        .and_then(|all| all.iter().find(|s| s.name == name))
        .and_then(|s| s.state.as_ref());
    let Some(state) = state else {
        return Start::Pending;
    };
    if state.running.is_some() {
        return Start::Running;
    }
    if let Some(t) = &state.terminated {
        return Start::Failed(format!(
            "the debug container ended at once: {}",
            t.message.clone().or(t.reason.clone()).unwrap_or_default()
        ));
    }
    if let Some(w) = &state.waiting
        && matches!(
            w.reason.as_deref(),
            Some("ErrImagePull" | "ImagePullBackOff" | "InvalidImageName")
        )
    {
        return Start::Failed(format!(
            "cannot pull the image (--image): {}",
            w.message.clone().unwrap_or_default()
        ));
    }
    Start::Pending
}

/// Watches pod `name` until `start` says it is no longer [`Start::Pending`], for at
/// most [`START_TIMEOUT`]. Returns the pod as last seen (still pending when time ran
/// out; `None` if it was never seen), for the caller to judge with the same `start`.
///
/// A pod that was seen and then is gone makes the wait end with the API's own
/// answer to a GET, the not-found error the polling loop this replaces reported.
/// Not seen at first is not gone: the watch's first list may come from a cache
/// that does not hold a pod created a moment ago yet.
pub async fn await_start(
    api: &Api<Pod>,
    name: &str,
    start: impl Fn(&Pod) -> Start + Sync,
) -> Result<Option<Pod>, Error> {
    let namespace = api.namespace().unwrap_or_default().to_string();
    let last: Mutex<Option<Pod>> = Mutex::new(None);
    let settled = |pod: Option<&Pod>| {
        let mut last = last.lock().expect("not poisoned");
        let gone = pod.is_none() && last.is_some();
        if let Some(pod) = pod {
            *last = Some(pod.clone());
        }
        gone || pod.is_some_and(|pod| start(pod) != Start::Pending)
    };
    let waited =
        tokio::time::timeout(START_TIMEOUT, await_condition(api.clone(), name, settled)).await;
    match waited {
        Ok(Ok(Some(pod))) => Ok(Some(pod)),
        Ok(Ok(None)) => api
            .get(name)
            .await
            .map(Some)
            .map_err(|e| Error::from_kube(e, "get", "pods", &namespace)),
        Ok(Err(wait::Error::ProbeFailed(e))) => Err(watch_error(e, &namespace)),
        Err(_elapsed) => Ok(last.lock().expect("not poisoned").take()),
    }
}

/// A failed watch as the error of the request that failed: the first list, or the
/// watch itself (RBAC names the verb it refused).
fn watch_error(e: watcher::Error, namespace: &str) -> Error {
    match e {
        watcher::Error::InitialListFailed(e) => Error::from_kube(e, "list", "pods", namespace),
        watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => {
            Error::from_kube(e, "watch", "pods", namespace)
        }
        watcher::Error::WatchError(status) => {
            Error::from_kube(kube::Error::Api(status), "watch", "pods", namespace)
        }
        e @ watcher::Error::NoResourceVersion => Error::Api {
            what: "watch pods".into(),
            source: Arc::new(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "kcap-helper-bcdfg", "namespace": "prod"},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn helper_pods() {
        assert_eq!(
            helper_pod(&pod(json!({"phase": "Running"}))),
            Start::Running
        );
        assert_eq!(
            helper_pod(&pod(json!({"phase": "Pending"}))),
            Start::Pending
        );
        assert_eq!(helper_pod(&pod(json!(null))), Start::Pending);
        assert_eq!(
            helper_pod(&pod(json!({"phase": "Failed", "reason": "Evicted"}))),
            Start::Failed("Evicted".into())
        );
        assert_eq!(
            helper_pod(&pod(json!({"phase": "Succeeded"}))),
            Start::Failed("it ended".into())
        );
        let unschedulable = pod(json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "message": "0/3 nodes are available"},
            {"type": "Ready", "status": "False"},
        ]}));
        assert_eq!(pending_reasons(&unschedulable), "0/3 nodes are available");
    }

    fn debug(state: serde_json::Value) -> Pod {
        pod(json!({"phase": "Running", "ephemeralContainerStatuses": [
            {"name": "kcap-other", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
             "state": {"running": {}}},
            {"name": "kcap-bcdfg", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
             "state": state},
        ]}))
    }

    #[test]
    fn debug_containers() {
        let name = "kcap-bcdfg";
        assert_eq!(
            debug_container(&pod(json!({"phase": "Running"})), name),
            Start::Pending
        );
        assert_eq!(
            debug_container(&debug(json!({"running": {}})), name),
            Start::Running
        );
        assert_eq!(
            debug_container(
                &debug(json!({"waiting": {"reason": "ContainerCreating"}})),
                name
            ),
            Start::Pending
        );
        assert_eq!(
            debug_container(
                &debug(json!({"waiting": {"reason": "ErrImagePull", "message": "not found"}})),
                name
            ),
            Start::Failed("cannot pull the image (--image): not found".into())
        );
        assert_eq!(
            debug_container(
                &debug(json!({"terminated": {"exitCode": 126, "reason": "Error"}})),
                name
            ),
            Start::Failed("the debug container ended at once: Error".into())
        );
    }
}
