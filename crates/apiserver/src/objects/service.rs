//! Services (cluster IPs from 10.96.0.0/16) and the Endpoints that follow the ready pods
//! their selector picks.

use serde_json::{Value, json};

use crate::selector::LabelSelector;

pub fn apply_defaults(svc: &mut Value, cluster_ip: String) {
    super::normalize(svc, "Service", "v1");
    if !svc["spec"].is_object() {
        svc["spec"] = json!({});
    }
    let spec = &mut svc["spec"];
    if spec.get("type").is_none() {
        spec["type"] = json!("ClusterIP");
    }
    if spec.get("sessionAffinity").is_none() {
        spec["sessionAffinity"] = json!("None");
    }
    if spec["clusterIP"] != "None" {
        spec["clusterIP"] = json!(cluster_ip);
        spec["clusterIPs"] = json!([cluster_ip]);
    }
    spec["ipFamilies"] = json!(["IPv4"]);
    spec["ipFamilyPolicy"] = json!("SingleStack");
    spec["internalTrafficPolicy"] = json!("Cluster");
    for p in spec["ports"].as_array_mut().into_iter().flatten() {
        if p.get("protocol").is_none() {
            p["protocol"] = json!("TCP");
        }
        if p.get("targetPort").is_none() {
            p["targetPort"] = p["port"].clone();
        }
    }
    svc["status"] = json!({"loadBalancer": {}});
}

/// The Endpoints object for `svc` given the pods of its namespace.
pub fn endpoints(svc: &Value, pods: &[Value]) -> Value {
    let name = super::name_of(svc);
    let ns = svc["metadata"]["namespace"].as_str().unwrap_or("");
    let mut subsets = Vec::new();
    if let Some(sel) = svc["spec"]["selector"]
        .as_object()
        .filter(|m| !m.is_empty())
    {
        let sel = LabelSelector::from_map(sel);
        let addresses: Vec<Value> = pods
            .iter()
            .filter(|p| sel.matches(p) && super::pod::is_ready(p))
            .filter_map(|p| {
                Some(json!({
                    "ip": p["status"]["podIP"].as_str()?,
                    "nodeName": p["spec"]["nodeName"],
                    "targetRef": {
                        "kind": "Pod",
                        "namespace": ns,
                        "name": p["metadata"]["name"],
                        "uid": p["metadata"]["uid"],
                    },
                }))
            })
            .collect();
        if !addresses.is_empty() {
            let ports: Vec<Value> = svc["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    let mut e = json!({
                        "port": if p["targetPort"].is_u64() { p["targetPort"].clone() } else { p["port"].clone() },
                        "protocol": p["protocol"],
                    });
                    if let Some(n) = p.get("name") {
                        e["name"] = n.clone();
                    }
                    e
                })
                .collect();
            subsets.push(json!({"addresses": addresses, "ports": ports}));
        }
    }
    json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": name, "namespace": ns, "labels": svc["metadata"]["labels"].clone()},
        "subsets": subsets,
    })
}
