//! The resources this server knows and the legacy discovery documents built from them
//! (`/api`, `/apis`, `/api/v1`, `/apis/apps/v1`, `/apis/authorization.k8s.io/v1`). Aggregated discovery is answered with
//! the legacy documents as plain JSON, which makes kubectl fall back to them.

use serde_json::{Value, json};

/// One served resource type.
#[derive(Debug)]
pub struct Resource {
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    /// "" for the core group.
    pub group: &'static str,
    pub namespaced: bool,
    pub short: &'static [&'static str],
}

impl Resource {
    pub fn api_version(&self) -> &'static str {
        if self.group.is_empty() {
            "v1"
        } else {
            "apps/v1"
        }
    }

    /// How errors name the resource: `pods`, `deployments.apps`.
    pub fn display(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

pub static RESOURCES: &[Resource] = &[
    Resource {
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        group: "",
        namespaced: false,
        short: &["ns"],
    },
    Resource {
        plural: "nodes",
        singular: "node",
        kind: "Node",
        group: "",
        namespaced: false,
        short: &["no"],
    },
    Resource {
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        group: "",
        namespaced: true,
        short: &["po"],
    },
    Resource {
        plural: "services",
        singular: "service",
        kind: "Service",
        group: "",
        namespaced: true,
        short: &["svc"],
    },
    Resource {
        plural: "endpoints",
        singular: "endpoints",
        kind: "Endpoints",
        group: "",
        namespaced: true,
        short: &["ep"],
    },
    Resource {
        plural: "deployments",
        singular: "deployment",
        kind: "Deployment",
        group: "apps",
        namespaced: true,
        short: &["deploy"],
    },
    Resource {
        plural: "replicasets",
        singular: "replicaset",
        kind: "ReplicaSet",
        group: "apps",
        namespaced: true,
        short: &["rs"],
    },
    Resource {
        plural: "daemonsets",
        singular: "daemonset",
        kind: "DaemonSet",
        group: "apps",
        namespaced: true,
        short: &["ds"],
    },
    Resource {
        plural: "statefulsets",
        singular: "statefulset",
        kind: "StatefulSet",
        group: "apps",
        namespaced: true,
        short: &["sts"],
    },
];

pub fn find(group: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.plural == plural)
}

pub fn by_kind(kind: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.kind == kind)
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0",
        "gitCommit": "70d3cc986aa8221cd1dfb1121852688902d3bf53",
        "gitTreeState": "clean",
        "buildDate": "2024-12-11T17:59:15Z",
        "goVersion": "go1.23.3",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub fn api_versions(server_addr: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_addr}],
    })
}

/// The named API groups served (each in version v1 only), in discovery order.
pub const GROUPS: &[&str] = &["apps", AUTHORIZATION_GROUP];

/// Where SelfSubjectAccessReviews are created (answered by `review`, not stored).
pub const AUTHORIZATION_GROUP: &str = "authorization.k8s.io";

fn group_entry(name: &str) -> Value {
    let version = json!({"groupVersion": format!("{name}/v1"), "version": "v1"});
    json!({"name": name, "versions": [version], "preferredVersion": version})
}

pub fn api_groups() -> Value {
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": GROUPS.iter().map(|g| group_entry(g)).collect::<Vec<_>>(),
    })
}

/// `/apis/GROUP`, for a served group.
pub fn api_group(name: &str) -> Option<Value> {
    let g = GROUPS.iter().find(|g| **g == name)?;
    let mut doc = group_entry(g);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

/// The APIResourceList of one group version, with the subresources kubectl looks for
/// (`pods/ephemeralcontainers` only where the cluster has them).
pub fn resource_list(group: &str, features: &crate::Features) -> Value {
    let mut resources = Vec::new();
    for r in RESOURCES.iter().filter(|r| r.group == group) {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": ALL_VERBS,
            "shortNames": r.short,
        });
        if r.group == "apps" || matches!(r.plural, "pods" | "services") {
            entry["categories"] = json!(["all"]);
        }
        resources.push(entry);
        resources.push(json!({
            "name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced,
            "kind": r.kind, "verbs": ["get", "patch", "update"],
        }));
        if matches!(r.plural, "deployments" | "replicasets" | "statefulsets") {
            resources.push(json!({
                "name": format!("{}/scale", r.plural), "singularName": "", "namespaced": true,
                "group": "autoscaling", "version": "v1", "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    if group.is_empty() {
        for (sub, kind, verbs) in [
            ("exec", "PodExecOptions", &["create", "get"][..]),
            ("attach", "PodAttachOptions", &["create", "get"][..]),
            ("log", "Pod", &["get"][..]),
            (
                "ephemeralcontainers",
                "Pod",
                &["get", "patch", "update"][..],
            ),
        ] {
            if sub == "ephemeralcontainers" && !features.ephemeral_containers {
                continue;
            }
            resources.push(json!({
                "name": format!("pods/{sub}"), "singularName": "", "namespaced": true,
                "kind": kind, "verbs": verbs,
            }));
        }
    }
    if group == AUTHORIZATION_GROUP {
        resources.push(json!({
            "name": "selfsubjectaccessreviews", "singularName": "selfsubjectaccessreview",
            "namespaced": false, "kind": "SelfSubjectAccessReview", "verbs": ["create"],
        }));
    }
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": if group.is_empty() { "v1".to_string() } else { format!("{group}/v1") },
        "resources": resources,
    })
}
