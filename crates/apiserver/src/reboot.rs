//! A node that reboots: [`Cluster::node_down`] stops every pod on it at once (its
//! processes killed, its attach streams cut) while the API, which hears nothing
//! from a node that is down, still shows them as they were; [`Cluster::node_up`]
//! starts them again as a kubelet does after a reboot: in place (same name and
//! uid) with new containers (new IDs, `restartCount` + 1, the killed ones as
//! `lastState`) in a new sandbox; a pod that never restarts (`restartPolicy:
//! Never`, such as kcap's helper pod) fails instead.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::objects::{self, pod};
use crate::runtime::RuntimeError;
use crate::util::now_rfc3339;

impl Cluster {
    /// The pods scheduled on `node` and not being deleted.
    fn pods_on(&self, node: &str) -> Vec<Value> {
        self.store
            .list("pods", None)
            .0
            .into_iter()
            .filter(|p| p["spec"]["nodeName"] == node && !objects::is_deleting(p))
            .collect()
    }

    /// `node` goes down: its pods stop, their status is left as it was.
    pub async fn node_down(self: &Arc<Self>, node: &str) {
        for p in self.pods_on(node) {
            let (ns, name) = namespace_and_name(&p);
            self.stop_pod_blocking(&ns, &name).await;
            self.drop_hubs(&ns, &name);
        }
        self.changed.notify_one();
    }

    /// `node` is back: its pods start again (or fail, if they never restart).
    pub async fn node_up(self: &Arc<Self>, node: &str) {
        for before in self.pods_on(node) {
            let (ns, name) = namespace_and_name(&before);
            let uid = objects::uid_of(&before).to_string();
            let restarts = before["spec"]["restartPolicy"] != "Never";
            let result = if restarts {
                let rt = self.runtime.clone();
                let launch = pod::launch(&before);
                Some(
                    tokio::task::spawn_blocking(move || rt.start_pod(&launch))
                        .await
                        .unwrap_or_else(|e| {
                            Err(RuntimeError::Failed {
                                message: e.to_string(),
                            })
                        }),
                )
            } else {
                None
            };
            let applied = self.store.update("pods", &ns, &name, "pods", |p| {
                if objects::uid_of(p) != uid || objects::is_deleting(p) {
                    return Err(crate::status::ApiError::internal(
                        "pod replaced or deleting",
                    ));
                }
                let killed = killed_statuses(&before);
                match &result {
                    Some(Ok(started)) => {
                        pod::set_running(p, started);
                        restarted(p, &killed);
                    }
                    Some(Err(e)) => pod::set_start_failed(p, e, None),
                    None => failed(p, killed),
                }
                Ok(())
            });
            if applied.is_err() && matches!(result, Some(Ok(_))) {
                self.stop_pod_blocking(&ns, &name).await;
            }
        }
        self.changed.notify_one();
    }
}

fn namespace_and_name(p: &Value) -> (String, String) {
    let ns = p["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_string();
    (ns, objects::name_of(p).to_string())
}

/// The container statuses of `before`, each as a container the reboot killed
/// (the state a kubelet reports for it: terminated, reason Unknown, exit 255).
fn killed_statuses(before: &Value) -> Vec<Value> {
    let now = now_rfc3339();
    before["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let mut s = s.clone();
            let started = s["state"]["running"]["startedAt"].clone();
            s["state"] = json!({"terminated": {
                "exitCode": 255, "reason": "Unknown", "startedAt": started,
                "finishedAt": now, "containerID": s["containerID"],
            }});
            s["ready"] = json!(false);
            s["started"] = json!(false);
            s
        })
        .collect()
}

/// Started again: each container counts one restart more and keeps the killed
/// one as its last state.
fn restarted(p: &mut Value, killed: &[Value]) {
    let Some(statuses) = p["status"]["containerStatuses"].as_array_mut() else {
        return;
    };
    for s in statuses {
        if let Some(old) = killed.iter().find(|k| k["name"] == s["name"]) {
            s["restartCount"] = json!(old["restartCount"].as_u64().unwrap_or(0) + 1);
            s["lastState"] = old["state"].clone();
        }
    }
}

/// A pod that never restarts is Failed once its node is back.
fn failed(p: &mut Value, killed: Vec<Value>) {
    let status = &mut p["status"];
    status["phase"] = json!("Failed");
    status["reason"] = json!("NodeRebooted");
    status["message"] = json!("the node rebooted and the pod does not restart");
    status["containerStatuses"] = json!(killed);
    if let Some(conditions) = status["conditions"].as_array_mut() {
        for c in conditions
            .iter_mut()
            .filter(|c| c["type"] == "Ready" || c["type"] == "ContainersReady")
        {
            c["status"] = json!("False");
        }
    }
}
