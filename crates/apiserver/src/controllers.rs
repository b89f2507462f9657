//! The controllers that make the cluster churn like a real one: Deployment -> one
//! ReplicaSet per template -> pods, DaemonSet -> one pod per node, StatefulSet -> pods
//! NAME-0..N-1, Endpoints following each Service's ready pods, and garbage collection of
//! objects whose owner is gone. One loop reconciles everything after every change.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::discovery;
use crate::objects::{self, is_deleting, name_of, owned_by, service, uid_of, workload};
use crate::selector::LabelSelector;
use crate::util;

pub async fn run(cluster: Arc<Cluster>) {
    loop {
        reconcile(&cluster);
        tokio::select! {
            _ = cluster.changed.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        // Coalesce bursts of changes into one pass.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ns_of(o: &Value) -> String {
    o["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn owned<'a>(items: &'a [Value], owner: &Value) -> Vec<&'a Value> {
    let uid = uid_of(owner);
    let ns = ns_of(owner);
    items
        .iter()
        .filter(|o| ns_of(o) == ns && owned_by(o, uid))
        .collect()
}

fn set_status(cluster: &Arc<Cluster>, resource: &'static str, o: &Value, status: Value) {
    if o["status"] == status {
        return;
    }
    let _ = cluster
        .store
        .update(resource, &ns_of(o), name_of(o), resource, |obj| {
            obj["status"] = status;
            Ok(())
        });
}

fn create_pod(cluster: &Arc<Cluster>, ns: &str, pod: Value) {
    if let Err(e) = cluster.create_pod(ns, pod) {
        tracing::warn!(error = %e, "controller could not create a pod");
    }
}

pub fn reconcile(cluster: &Arc<Cluster>) {
    let store = &cluster.store;
    let res = |p: &str| {
        discovery::find(
            if matches!(p, "pods" | "services" | "endpoints") {
                ""
            } else {
                "apps"
            },
            p,
        )
        .expect("known resource")
    };

    // Deployments: one ReplicaSet per pod template, the current one scaled to replicas.
    let (rss, _) = store.list("replicasets", None);
    for d in store.list("deployments", None).0 {
        let ns = ns_of(&d);
        let mine = owned(&rss, &d);
        let hash = util::safe_hash(&d["spec"]["template"].to_string());
        let rs_name = format!("{}-{hash}", name_of(&d));
        let want = workload::replicas(&d);
        match mine.iter().find(|r| name_of(r) == rs_name) {
            None => {
                let mut template = d["spec"]["template"].clone();
                template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
                let mut selector = d["spec"]["selector"].clone();
                selector["matchLabels"]["pod-template-hash"] = json!(hash);
                let mut labels = d["spec"]["template"]["metadata"]["labels"].clone();
                if !labels.is_object() {
                    labels = json!({});
                }
                labels["pod-template-hash"] = json!(hash);
                let rs = json!({
                    "apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {"name": rs_name, "labels": labels, "ownerReferences": [objects::owner_ref(&d)],
                                 "annotations": {"deployment.kubernetes.io/revision": "1"}},
                    "spec": {"replicas": want, "selector": selector, "template": template},
                });
                let _ = cluster.create(res("replicasets"), &ns, rs);
            }
            Some(rs) if workload::replicas(rs) != want => {
                let _ = store.update("replicasets", &ns, &rs_name, "replicasets.apps", |o| {
                    o["spec"]["replicas"] = json!(want);
                    Ok(())
                });
            }
            _ => {}
        }
        for old in mine
            .iter()
            .filter(|r| name_of(r) != rs_name && workload::replicas(r) != 0)
        {
            let _ = store.update("replicasets", &ns, name_of(old), "replicasets.apps", |o| {
                o["spec"]["replicas"] = json!(0);
                Ok(())
            });
        }
    }

    let (pods, _) = store.list("pods", None);

    // ReplicaSets: pods with random suffixes, the newest removed first when scaling down.
    let (rss, _) = store.list("replicasets", None);
    for rs in &rss {
        let ns = ns_of(rs);
        let mine = owned(&pods, rs);
        let live: Vec<_> = mine.iter().filter(|p| !is_deleting(p)).collect();
        let want = workload::replicas(rs) as usize;
        let hash = rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"]
            .as_str()
            .unwrap_or("")
            .to_string();
        for _ in live.len()..want {
            let name = format!("{}-{}", name_of(rs), util::name_suffix(5));
            let extra = if hash.is_empty() {
                vec![]
            } else {
                vec![("pod-template-hash", hash.clone())]
            };
            create_pod(cluster, &ns, workload::pod_from_template(rs, &name, &extra));
        }
        if live.len() > want {
            let mut by_age: Vec<_> = live.clone();
            by_age.sort_by_key(|p| {
                std::cmp::Reverse(
                    p["metadata"]["creationTimestamp"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                )
            });
            for p in by_age.iter().take(live.len() - want) {
                let _ = cluster.delete_pod(&ns, name_of(p));
            }
        }
        let (total, ready) = workload::count(&mine);
        set_status(
            cluster,
            "replicasets",
            rs,
            workload::replica_status(rs, total, ready),
        );
    }

    // Deployment status sums its ReplicaSets.
    for d in store.list("deployments", None).0 {
        let mine = owned(&rss, &d);
        let total: u64 = mine
            .iter()
            .map(|r| r["status"]["replicas"].as_u64().unwrap_or(0))
            .sum();
        let ready: u64 = mine
            .iter()
            .map(|r| r["status"]["readyReplicas"].as_u64().unwrap_or(0))
            .sum();
        set_status(
            cluster,
            "deployments",
            &d,
            workload::replica_status(&d, total, ready),
        );
    }

    // DaemonSets: one pod per (selected) node.
    for ds in store.list("daemonsets", None).0 {
        let ns = ns_of(&ds);
        let mine = owned(&pods, &ds);
        let node_sel = ds["spec"]["template"]["spec"]["nodeSelector"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let nodes: Vec<_> = store
            .list("nodes", None)
            .0
            .into_iter()
            .filter(|n| LabelSelector::from_map(&node_sel).matches(n))
            .collect();
        for n in &nodes {
            let node = name_of(n);
            let has = mine
                .iter()
                .any(|p| p["spec"]["nodeName"] == node && !is_deleting(p));
            if !has {
                let name = format!("{}-{}", name_of(&ds), util::name_suffix(5));
                let mut pod = workload::pod_from_template(
                    &ds,
                    &name,
                    &[(
                        "controller-revision-hash",
                        util::safe_hash(&ds["spec"]["template"].to_string()),
                    )],
                );
                pod["spec"]["nodeName"] = json!(node);
                create_pod(cluster, &ns, pod);
            }
        }
        let (total, ready) = workload::count(&mine);
        set_status(
            cluster,
            "daemonsets",
            &ds,
            workload::daemon_status(&ds, nodes.len() as u64, total, ready),
        );
    }

    // StatefulSets: stable names; a deleted pod comes back under the same name.
    for sts in store.list("statefulsets", None).0 {
        let ns = ns_of(&sts);
        let mine = owned(&pods, &sts);
        let want = workload::replicas(&sts);
        for i in 0..want {
            let name = format!("{}-{i}", name_of(&sts));
            // Wait until a terminating pod of that name is gone before replacing it.
            if pods.iter().any(|p| ns_of(p) == ns && name_of(p) == name) {
                continue;
            }
            let pod = workload::pod_from_template(
                &sts,
                &name,
                &[
                    ("statefulset.kubernetes.io/pod-name", name.clone()),
                    ("apps.kubernetes.io/pod-index", i.to_string()),
                    (
                        "controller-revision-hash",
                        format!(
                            "{}-{}",
                            name_of(&sts),
                            util::safe_hash(&sts["spec"]["template"].to_string())
                        ),
                    ),
                ],
            );
            create_pod(cluster, &ns, pod);
        }
        for p in &mine {
            let ordinal = name_of(p)
                .rsplit('-')
                .next()
                .and_then(|s| s.parse::<u64>().ok());
            if ordinal.is_none_or(|o| o >= want) && !is_deleting(p) {
                let _ = cluster.delete_pod(&ns, name_of(p));
            }
        }
        let (total, ready) = workload::count(&mine);
        set_status(
            cluster,
            "statefulsets",
            &sts,
            workload::replica_status(&sts, total, ready),
        );
    }

    // Garbage collection: pods and ReplicaSets whose controller no longer exists.
    let uids: std::collections::HashSet<String> =
        ["deployments", "replicasets", "daemonsets", "statefulsets"]
            .iter()
            .flat_map(|r| store.list(r, None).0)
            .map(|o| uid_of(&o).to_string())
            .collect();
    let orphan = |o: &Value| {
        o["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|refs| {
                refs.iter().any(|r| {
                    r["controller"] == true && !uids.contains(r["uid"].as_str().unwrap_or(""))
                })
            })
    };
    for rs in store
        .list("replicasets", None)
        .0
        .iter()
        .filter(|o| orphan(o))
    {
        store.remove("replicasets", &ns_of(rs), name_of(rs));
    }
    for p in pods.iter().filter(|p| orphan(p) && !is_deleting(p)) {
        let _ = cluster.delete_pod(&ns_of(p), name_of(p));
    }

    // Endpoints follow the ready pods each Service selects.
    let (pods, _) = store.list("pods", None);
    for svc in store.list("services", None).0 {
        let ns = ns_of(&svc);
        let in_ns: Vec<Value> = pods.iter().filter(|p| ns_of(p) == ns).cloned().collect();
        let want = service::endpoints(&svc, &in_ns);
        match store.get("endpoints", &ns, name_of(&svc)) {
            None => {
                let _ = cluster.create(res("endpoints"), &ns, want);
            }
            Some(cur) if cur["subsets"] != want["subsets"] => {
                let _ = store.update("endpoints", &ns, name_of(&svc), "endpoints", |o| {
                    o["subsets"] = want["subsets"].clone();
                    Ok(())
                });
            }
            _ => {}
        }
    }
}
