//! Pods: defaults on create, the runtime launch description taken from the spec, and
//! the status the server writes as the runtime reports (Running, ErrImagePull, ephemeral
//! container states).

use serde_json::{Value, json};

use crate::runtime::{ContainerLaunch, ContainerStarted, PodLaunch, PodStarted, RuntimeError};
use crate::util::{now_rfc3339, rfc3339};

pub fn apply_defaults(pod: &mut Value) {
    super::normalize(pod, "Pod", "v1");
    if !pod["spec"].is_object() {
        pod["spec"] = json!({});
    }
    let spec = &mut pod["spec"];
    for (k, v) in [
        ("restartPolicy", json!("Always")),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("serviceAccountName", json!("default")),
        ("securityContext", json!({})),
        ("enableServiceLinks", json!(true)),
        ("preemptionPolicy", json!("PreemptLowerPriority")),
        ("priority", json!(0)),
    ] {
        if spec.get(k).is_none() {
            spec[k] = v;
        }
    }
    if !spec["containers"].is_array() {
        spec["containers"] = json!([]);
    }
    for c in spec["containers"].as_array_mut().into_iter().flatten() {
        container_defaults(c);
    }
    pod["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
}

pub fn container_defaults(c: &mut Value) {
    for (k, v) in [
        ("imagePullPolicy", json!("IfNotPresent")),
        ("terminationMessagePath", json!("/dev/termination-log")),
        ("terminationMessagePolicy", json!("File")),
        ("resources", json!({})),
    ] {
        if c.get(k).is_none() {
            c[k] = v;
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

pub fn container_launch(c: &Value) -> ContainerLaunch {
    let sc = &c["securityContext"];
    ContainerLaunch {
        name: c["name"].as_str().unwrap_or("").into(),
        image: c["image"].as_str().unwrap_or("").into(),
        command: strings(&c["command"]),
        args: strings(&c["args"]),
        env: c["env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| {
                        Some((
                            e["name"].as_str()?.to_string(),
                            e["value"].as_str().unwrap_or("").to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        privileged: sc["privileged"].as_bool().unwrap_or(false),
        run_as_user: sc["runAsUser"].as_u64().map(|u| u as u32),
        add_capabilities: strings(&sc["capabilities"]["add"]),
        stdin: c["stdin"].as_bool().unwrap_or(false),
        tty: c["tty"].as_bool().unwrap_or(false),
    }
}

pub fn launch(pod: &Value) -> PodLaunch {
    let spec = &pod["spec"];
    let pod_user = spec["securityContext"]["runAsUser"].as_u64();
    PodLaunch {
        namespace: pod["metadata"]["namespace"].as_str().unwrap_or("").into(),
        name: super::name_of(pod).into(),
        uid: super::uid_of(pod).into(),
        node: spec["nodeName"].as_str().unwrap_or("").into(),
        host_network: spec["hostNetwork"].as_bool().unwrap_or(false),
        host_pid: spec["hostPID"].as_bool().unwrap_or(false),
        containers: spec["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let mut l = container_launch(c);
                if l.run_as_user.is_none() {
                    l.run_as_user = pod_user.map(|u| u as u32);
                }
                l
            })
            .collect(),
    }
}

fn conditions(ready: bool) -> Value {
    let now = now_rfc3339();
    let r = if ready { "True" } else { "False" };
    json!([
        {"type": "PodReadyToStartContainers", "status": r, "lastProbeTime": null, "lastTransitionTime": now},
        {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": now},
        {"type": "Ready", "status": r, "lastProbeTime": null, "lastTransitionTime": now},
        {"type": "ContainersReady", "status": r, "lastProbeTime": null, "lastTransitionTime": now},
        {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now},
    ])
}

fn running_state(c: &ContainerStarted) -> Value {
    json!({"running": {"startedAt": rfc3339(c.started_at)}})
}

/// Status after the runtime started the pod.
pub fn set_running(pod: &mut Value, started: &PodStarted) {
    let statuses: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let name = c["name"].as_str().unwrap_or("");
            let s = started.containers.iter().find(|s| s.name == name);
            match s {
                Some(s) => json!({
                    "name": name, "image": c["image"], "imageID": s.image_id,
                    "containerID": s.container_id, "ready": true, "started": true,
                    "restartCount": 0, "state": running_state(s), "lastState": {},
                }),
                None => json!({
                    "name": name, "image": c["image"], "imageID": "", "ready": false,
                    "started": false, "restartCount": 0, "lastState": {},
                    "state": {"waiting": {"reason": "ContainerCreating"}},
                }),
            }
        })
        .collect();
    let pod_ip = started.pod_ip.to_string();
    let host_ip = started.host_ip.to_string();
    let status = &mut pod["status"];
    status["phase"] = json!("Running");
    status["podIP"] = json!(pod_ip);
    status["podIPs"] = json!([{"ip": pod_ip}]);
    status["hostIP"] = json!(host_ip);
    status["hostIPs"] = json!([{"ip": host_ip}]);
    status["startTime"] = json!(now_rfc3339());
    status["conditions"] = conditions(true);
    status["containerStatuses"] = json!(statuses);
}

/// Status after the runtime refused to start the pod.
pub fn set_start_failed(pod: &mut Value, err: &RuntimeError, host_ip: Option<String>) {
    let (reason, message) = match err {
        RuntimeError::UnknownImage { image } => (
            "ErrImagePull",
            format!("failed to pull and unpack image \"{image}\": not found"),
        ),
        other => ("CreateContainerError", other.to_string()),
    };
    let statuses: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            json!({
                "name": c["name"], "image": c["image"], "imageID": "", "ready": false,
                "started": false, "restartCount": 0, "lastState": {},
                "state": {"waiting": {"reason": reason, "message": message}},
            })
        })
        .collect();
    let status = &mut pod["status"];
    status["phase"] = json!("Pending");
    status["conditions"] = conditions(false);
    status["containerStatuses"] = json!(statuses);
    status["startTime"] = json!(now_rfc3339());
    if let Some(h) = host_ip {
        status["hostIP"] = json!(h);
        status["hostIPs"] = json!([{"ip": h}]);
    }
}

pub fn is_running(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running"
}

pub fn is_ready(pod: &Value) -> bool {
    is_running(pod)
        && !super::is_deleting(pod)
        && pod["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// Whether `name` is a regular or ephemeral container of the pod.
pub fn find_container<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    ["containers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| pod["spec"][k].as_array().into_iter().flatten())
        .find(|c| c["name"] == name)
}

pub fn set_ephemeral_status(pod: &mut Value, name: &str, image: &str, state: Value, extra: Value) {
    let status = &mut pod["status"];
    if !status["ephemeralContainerStatuses"].is_array() {
        status["ephemeralContainerStatuses"] = json!([]);
    }
    let list = status["ephemeralContainerStatuses"]
        .as_array_mut()
        .expect("just made an array");
    let running = state.get("running").is_some();
    let mut entry = json!({
        "name": name, "image": image, "ready": false, "restartCount": 0,
        "lastState": {}, "state": state, "started": running,
    });
    if let Some(extra) = extra.as_object() {
        for (k, v) in extra {
            entry[k] = v.clone();
        }
    }
    match list.iter_mut().find(|s| s["name"] == name) {
        Some(s) => {
            for k in ["imageID", "containerID"] {
                if entry.get(k).is_none() && s.get(k).is_some() {
                    entry[k] = s[k].clone();
                }
            }
            *s = entry
        }
        None => list.push(entry),
    }
}

pub fn terminated_state(code: i32, started_at: &str) -> Value {
    json!({"terminated": {
        "exitCode": code,
        "reason": if code == 0 { "Completed" } else { "Error" },
        "startedAt": started_at,
        "finishedAt": now_rfc3339(),
    }})
}
