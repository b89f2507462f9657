//! `--follow`: watch a label selector and report pods that start running (to
//! capture them) and pods that go away (to note it). kube-rs's watcher re-lists
//! after a dropped watch, so a short API outage does not lose pods; a pod whose
//! capture was lost with the connection is looked up again by [`when_back`].

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::watcher::{self, Event};
use tokio::sync::mpsc;

/// What the watch saw.
#[derive(Debug)]
pub enum Change {
    Running(Box<Pod>),
    Gone { namespace: String, name: String },
}

/// Sends a [`Change`] for every pod of `selector` that is Running (including those
/// already running: the caller skips the ones it captures) and every deleted one.
/// Ends when `changes` is closed.
pub async fn watch(
    client: kube::Client,
    namespace: Option<String>,
    selector: String,
    changes: mpsc::Sender<Change>,
) {
    let api: Api<Pod> = match &namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let config = watcher::Config::default().labels(&selector);
    let mut stream = watcher::watcher(api, config).boxed();
    while let Some(event) = stream.next().await {
        let change = match event {
            Ok(Event::Apply(pod)) | Ok(Event::InitApply(pod)) => {
                if capturable(&pod) {
                    Change::Running(Box::new(pod))
                } else {
                    continue;
                }
            }
            Ok(Event::Delete(pod)) => Change::Gone {
                namespace: pod.metadata.namespace.unwrap_or_default(),
                name: pod.metadata.name.unwrap_or_default(),
            },
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!("kcap: --follow: watch error (retrying): {e}");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        if changes.send(change).await.is_err() {
            return;
        }
    }
}

/// After a pod's capture was lost with the API connection: asks for the pod every
/// second (`RETRY`) until the API answers, and sends [`Change::Running`] if it still runs.
/// (The watcher's re-list may come before the lost capture has ended, when the
/// pod still counts as captured; this closes that gap.) Ends when `changes` closes.
pub async fn when_back(
    client: kube::Client,
    namespace: String,
    name: String,
    changes: mpsc::Sender<Change>,
) {
    let api: Api<Pod> = Api::namespaced(client, &namespace);
    loop {
        if changes.is_closed() {
            return;
        }
        match api.get_opt(&name).await {
            Ok(Some(pod)) => {
                if capturable(&pod) {
                    let _ = changes.send(Change::Running(Box::new(pod))).await;
                }
                return;
            }
            // Gone, or not running: the watcher reports what happens to it next.
            Ok(None) => return,
            Err(e) => {
                tracing::debug!("kcap: {namespace}/{name}: API not back yet: {e}");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// A pod worth starting a capture on: running, and not being deleted (a pod
/// going away still runs for its grace period, and its capture would end with it).
fn capturable(pod: &Pod) -> bool {
    crate::pod::is_running(pod) && pod.metadata.deletion_timestamp.is_none()
}

/// How often [`when_back`] asks.
const RETRY: std::time::Duration = std::time::Duration::from_secs(1);
