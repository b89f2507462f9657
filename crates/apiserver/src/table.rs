//! `meta.k8s.io/v1 Table` replies, which is what kubectl asks for when it prints: column
//! definitions (priority 1 = only with `-o wide`) and rows of cells per object.

use serde_json::{Value, json};

use crate::util::human_age;

/// Whether the Accept header asks for a Table.
pub fn wants_table(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("as=Table"))
}

fn col(name: &str, ty: &str, priority: u8) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": ty, "format": format, "description": "", "priority": priority})
}

fn columns(resource: &str) -> Vec<Value> {
    let s = |n: &str| col(n, "string", 0);
    let w = |n: &str| col(n, "string", 1);
    let i = |n: &str| col(n, "integer", 0);
    match resource {
        "pods" => vec![
            s("Name"),
            s("Ready"),
            s("Status"),
            s("Restarts"),
            s("Age"),
            w("IP"),
            w("Node"),
            w("Nominated Node"),
            w("Readiness Gates"),
        ],
        "nodes" => vec![
            s("Name"),
            s("Status"),
            s("Roles"),
            s("Age"),
            s("Version"),
            w("Internal-IP"),
            w("External-IP"),
            w("OS-Image"),
            w("Kernel-Version"),
            w("Container-Runtime"),
        ],
        "namespaces" => vec![s("Name"), s("Status"), s("Age")],
        "services" => vec![
            s("Name"),
            s("Type"),
            s("Cluster-IP"),
            s("External-IP"),
            s("Port(s)"),
            s("Age"),
            w("Selector"),
        ],
        "endpoints" => vec![s("Name"), s("Endpoints"), s("Age")],
        "deployments" => vec![
            s("Name"),
            s("Ready"),
            i("Up-to-date"),
            i("Available"),
            s("Age"),
            w("Containers"),
            w("Images"),
            w("Selector"),
        ],
        "replicasets" => vec![
            s("Name"),
            i("Desired"),
            i("Current"),
            i("Ready"),
            s("Age"),
            w("Containers"),
            w("Images"),
            w("Selector"),
        ],
        "daemonsets" => vec![
            s("Name"),
            i("Desired"),
            i("Current"),
            i("Ready"),
            i("Up-to-date"),
            i("Available"),
            s("Node Selector"),
            s("Age"),
            w("Containers"),
            w("Images"),
            w("Selector"),
        ],
        "statefulsets" => vec![
            s("Name"),
            s("Ready"),
            s("Age"),
            w("Containers"),
            w("Images"),
        ],
        _ => vec![s("Name"), s("Age")],
    }
}

fn none_if_empty(s: String) -> String {
    if s.is_empty() { "<none>".into() } else { s }
}

fn containers_and_images(tmpl_spec: &Value) -> (String, String) {
    let cs = tmpl_spec["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<_> = cs.iter().filter_map(|c| c["name"].as_str()).collect();
    let images: Vec<_> = cs.iter().filter_map(|c| c["image"].as_str()).collect();
    (names.join(","), images.join(","))
}

fn selector_text(sel: &Value) -> String {
    let mut parts: Vec<String> = sel["matchLabels"]
        .as_object()
        .or(sel
            .as_object()
            .filter(|_| sel.get("matchLabels").is_none() && sel.get("matchExpressions").is_none()))
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    for e in sel["matchExpressions"].as_array().into_iter().flatten() {
        let key = e["key"].as_str().unwrap_or("");
        let vals: Vec<_> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .collect();
        parts.push(match e["operator"].as_str().unwrap_or("") {
            "In" => format!("{key} in ({})", vals.join(",")),
            "NotIn" => format!("{key} notin ({})", vals.join(",")),
            "DoesNotExist" => format!("!{key}"),
            _ => key.to_string(),
        });
    }
    none_if_empty(parts.join(","))
}

/// The STATUS column of `kubectl get pods`.
pub fn pod_status(pod: &Value) -> String {
    if crate::objects::is_deleting(pod) {
        return "Terminating".into();
    }
    for s in pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(r) = s["state"]["waiting"]["reason"].as_str() {
            return r.into();
        }
    }
    pod["status"]["phase"].as_str().unwrap_or("Pending").into()
}

fn cells(resource: &str, o: &Value) -> Vec<Value> {
    let name = o["metadata"]["name"].clone();
    let age = human_age(o["metadata"]["creationTimestamp"].as_str().unwrap_or(""));
    let st = &o["status"];
    let spec = &o["spec"];
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    match resource {
        "pods" => {
            let total = spec["containers"].as_array().map_or(0, Vec::len);
            let ready = st["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["ready"] == true)
                .count();
            let restarts: u64 = st["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| n(&c["restartCount"]))
                .sum();
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(o)),
                json!(restarts),
                json!(age),
                json!(st["podIP"].as_str().unwrap_or("<none>")),
                json!(spec["nodeName"].as_str().unwrap_or("<none>")),
                json!("<none>"),
                json!("<none>"),
            ]
        }
        "nodes" => {
            let addr = |t: &str| {
                st["addresses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|a| a["type"] == t)
                    .and_then(|a| a["address"].as_str())
                    .unwrap_or("<none>")
                    .to_string()
            };
            let info = &st["nodeInfo"];
            vec![
                name,
                json!("Ready"),
                json!("<none>"),
                json!(age),
                info["kubeletVersion"].clone(),
                json!(addr("InternalIP")),
                json!(addr("ExternalIP")),
                info["osImage"].clone(),
                info["kernelVersion"].clone(),
                info["containerRuntimeVersion"].clone(),
            ]
        }
        "namespaces" => vec![
            name,
            json!(st["phase"].as_str().unwrap_or("Active")),
            json!(age),
        ],
        "services" => {
            let ports: Vec<String> = spec["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP")))
                .collect();
            vec![
                name,
                spec["type"].clone(),
                json!(spec["clusterIP"].as_str().unwrap_or("<none>")),
                json!("<none>"),
                json!(none_if_empty(ports.join(","))),
                json!(age),
                json!(selector_text(&spec["selector"])),
            ]
        }
        "endpoints" => {
            let mut eps = Vec::new();
            for s in o["subsets"].as_array().into_iter().flatten() {
                for a in s["addresses"].as_array().into_iter().flatten() {
                    for p in s["ports"].as_array().into_iter().flatten() {
                        eps.push(format!("{}:{}", a["ip"].as_str().unwrap_or(""), p["port"]));
                    }
                }
            }
            vec![name, json!(none_if_empty(eps.join(","))), json!(age)]
        }
        "deployments" => {
            let (c, i) = containers_and_images(&spec["template"]["spec"]);
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    n(&st["readyReplicas"]),
                    n(&spec["replicas"])
                )),
                json!(n(&st["updatedReplicas"])),
                json!(n(&st["availableReplicas"])),
                json!(age),
                json!(c),
                json!(i),
                json!(selector_text(&spec["selector"])),
            ]
        }
        "replicasets" => {
            let (c, i) = containers_and_images(&spec["template"]["spec"]);
            vec![
                name,
                json!(n(&spec["replicas"])),
                json!(n(&st["replicas"])),
                json!(n(&st["readyReplicas"])),
                json!(age),
                json!(c),
                json!(i),
                json!(selector_text(&spec["selector"])),
            ]
        }
        "daemonsets" => {
            let (c, i) = containers_and_images(&spec["template"]["spec"]);
            let ns: Vec<String> = spec["template"]["spec"]["nodeSelector"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect();
            vec![
                name,
                json!(n(&st["desiredNumberScheduled"])),
                json!(n(&st["currentNumberScheduled"])),
                json!(n(&st["numberReady"])),
                json!(n(&st["updatedNumberScheduled"])),
                json!(n(&st["numberAvailable"])),
                json!(none_if_empty(ns.join(","))),
                json!(age),
                json!(c),
                json!(i),
                json!(selector_text(&spec["selector"])),
            ]
        }
        "statefulsets" => {
            let (c, i) = containers_and_images(&spec["template"]["spec"]);
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    n(&st["readyReplicas"]),
                    n(&spec["replicas"])
                )),
                json!(age),
                json!(c),
                json!(i),
            ]
        }
        _ => vec![name, json!(age)],
    }
}

fn row(resource: &str, o: &Value) -> Value {
    json!({
        "cells": cells(resource, o),
        // PartialObjectMetadata, as the real server sends by default (includeObject=Metadata).
        "object": {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": o["metadata"],
        },
    })
}

pub fn table(resource: &str, objects: &[Value], rv: u64) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv.to_string()},
        "columnDefinitions": columns(resource),
        "rows": objects.iter().map(|o| row(resource, o)).collect::<Vec<_>>(),
    })
}
