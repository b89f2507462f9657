//! Workloads (Deployment, ReplicaSet, DaemonSet, StatefulSet): defaults on create, pods
//! made from their templates, and the status their controllers report.

use serde_json::{Value, json};

use crate::status::ApiError;

pub fn apply_defaults(obj: &mut Value, kind: &str) -> Result<(), ApiError> {
    super::normalize(obj, kind, "apps/v1");
    if !obj["spec"].is_object() {
        obj["spec"] = json!({});
    }
    let spec = &mut obj["spec"];
    if kind != "DaemonSet" && !spec["replicas"].is_u64() {
        spec["replicas"] = json!(1);
    }
    if !spec["selector"].is_object() {
        return Err(ApiError::new(
            422,
            "Invalid",
            format!("{kind}.apps is invalid: spec.selector: Required value"),
        ));
    }
    if !spec["template"]["metadata"].is_object() {
        spec["template"]["metadata"] = json!({});
    }
    let selector = crate::selector::LabelSelector::from_object(&spec["selector"])?;
    if !selector.matches(&spec["template"]) {
        return Err(ApiError::new(
            422,
            "Invalid",
            format!(
                "{kind}.apps is invalid: spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`"
            ),
        ));
    }
    match kind {
        "Deployment" if spec.get("strategy").is_none() => {
            spec["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}});
        }
        "DaemonSet" if spec.get("updateStrategy").is_none() => {
            spec["updateStrategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}});
        }
        "StatefulSet" => {
            if spec.get("podManagementPolicy").is_none() {
                spec["podManagementPolicy"] = json!("OrderedReady");
            }
            if spec.get("serviceName").is_none() {
                spec["serviceName"] = json!("");
            }
        }
        _ => {}
    }
    obj["status"] = json!({});
    Ok(())
}

pub fn replicas(obj: &Value) -> u64 {
    obj["spec"]["replicas"].as_u64().unwrap_or(1)
}

/// A pod from `owner`'s template, named `name`, owned by `owner`.
pub fn pod_from_template(owner: &Value, name: &str, extra_labels: &[(&str, String)]) -> Value {
    let template = &owner["spec"]["template"];
    let mut meta = template["metadata"].clone();
    if !meta.is_object() {
        meta = json!({});
    }
    if !meta["labels"].is_object() {
        meta["labels"] = json!({});
    }
    for (k, v) in extra_labels {
        meta["labels"][*k] = json!(v);
    }
    meta["name"] = json!(name);
    meta["ownerReferences"] = json!([super::owner_ref(owner)]);
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": template["spec"].clone(),
    })
}

/// Counts of the pods a workload owns: (total, ready).
pub fn count(pods: &[&Value]) -> (u64, u64) {
    let live: Vec<_> = pods.iter().filter(|p| !super::is_deleting(p)).collect();
    let ready = live.iter().filter(|p| super::pod::is_ready(p)).count();
    (live.len() as u64, ready as u64)
}

/// Status of a Deployment, ReplicaSet or StatefulSet.
pub fn replica_status(obj: &Value, total: u64, ready: u64) -> Value {
    let mut s = json!({
        "observedGeneration": obj["metadata"]["generation"],
        "replicas": total,
        "readyReplicas": ready,
        "availableReplicas": ready,
    });
    match obj["kind"].as_str() {
        Some("Deployment") => {
            s["updatedReplicas"] = json!(total);
            let now = crate::util::now_rfc3339();
            let avail = if ready >= replicas(obj) {
                "True"
            } else {
                "False"
            };
            s["conditions"] = json!([
                {"type": "Available", "status": avail, "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability.", "lastUpdateTime": now, "lastTransitionTime": now},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": "ReplicaSet has successfully progressed.", "lastUpdateTime": now, "lastTransitionTime": now},
            ]);
        }
        Some("ReplicaSet") => s["fullyLabeledReplicas"] = json!(total),
        Some("StatefulSet") => {
            s["currentReplicas"] = json!(total);
            s["updatedReplicas"] = json!(total);
        }
        _ => {}
    }
    s
}

pub fn daemon_status(obj: &Value, desired: u64, total: u64, ready: u64) -> Value {
    json!({
        "observedGeneration": obj["metadata"]["generation"],
        "desiredNumberScheduled": desired,
        "currentNumberScheduled": total,
        "numberMisscheduled": 0,
        "numberReady": ready,
        "numberAvailable": ready,
        "updatedNumberScheduled": total,
    })
}

/// The `autoscaling/v1 Scale` view of a workload.
pub fn scale(obj: &Value) -> Value {
    let selector = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": obj["metadata"]["name"],
            "namespace": obj["metadata"]["namespace"],
            "uid": obj["metadata"]["uid"],
            "resourceVersion": obj["metadata"]["resourceVersion"],
            "creationTimestamp": obj["metadata"]["creationTimestamp"],
        },
        "spec": {"replicas": replicas(obj)},
        "status": {"replicas": obj["status"]["replicas"].as_u64().unwrap_or(0), "selector": selector},
    })
}
