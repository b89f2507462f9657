//! The cluster's behaviour around the store: creating objects with their defaults,
//! scheduling and launching pods through the [`PodRuntime`], graceful deletion,
//! ephemeral containers, and Pod Security admission of both. Controllers and HTTP
//! handlers both go through here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use crate::discovery::Resource;
use crate::objects::{self, pod, service, workload};
use crate::pod_security::Policy;
use crate::runtime::PodRuntime;
use crate::status::ApiError;
use crate::store::Store;
use crate::stream::attach::AttachHub;
use crate::util;
use crate::{Features, NodeInfo};

type HubKey = (String, String, String);

pub struct Cluster {
    pub store: Store,
    pub runtime: Arc<dyn PodRuntime>,
    pub nodes: Vec<NodeInfo>,
    pub features: Features,
    /// Round-robin position for pods that name no node.
    next_node: AtomicUsize,
    next_cluster_ip: AtomicU32,
    /// Wakes the controllers after any change they may care about.
    pub changed: Notify,
    hubs: Mutex<HashMap<HubKey, Arc<AttachHub>>>,
    /// Flips to true when the server shuts down: ephemeral processes are killed then.
    pub shutdown: watch::Sender<bool>,
}

impl Cluster {
    pub fn new(runtime: Arc<dyn PodRuntime>, nodes: Vec<NodeInfo>, features: Features) -> Self {
        Cluster {
            store: Store::new(),
            runtime,
            nodes,
            features,
            next_node: AtomicUsize::new(0),
            next_cluster_ip: AtomicU32::new(10),
            changed: Notify::new(),
            hubs: Mutex::new(HashMap::new()),
            shutdown: watch::channel(false).0,
        }
    }

    fn namespace_exists(&self, ns: &str) -> Result<(), ApiError> {
        match self.store.get("namespaces", "", ns) {
            Some(_) => Ok(()),
            None => Err(ApiError::not_found("namespaces", ns)),
        }
    }

    /// The Pod Security policy a namespace enforces, read at each request as the
    /// admission plugin does (so `kubectl label ns` takes effect at once).
    fn pod_security(&self, ns: &str) -> Policy {
        Policy::of_namespace(self.store.get("namespaces", "", ns).as_ref())
    }

    /// Creates any object (POST), with the defaults and side effects of its kind.
    pub fn create(
        self: &Arc<Self>,
        res: &'static Resource,
        ns: &str,
        mut obj: Value,
    ) -> Result<Value, ApiError> {
        if res.namespaced {
            self.namespace_exists(ns)?;
        }
        if obj["metadata"]["name"].as_str().is_none_or(str::is_empty)
            && let Some(prefix) = obj["metadata"]["generateName"].as_str()
        {
            obj["metadata"]["name"] = json!(format!("{prefix}{}", util::name_suffix(5)));
        }
        let created = match res.plural {
            "pods" => return self.create_pod(ns, obj),
            "services" => {
                let n = self.next_cluster_ip.fetch_add(1, Ordering::Relaxed);
                service::apply_defaults(&mut obj, format!("10.96.{}.{}", n / 250, n % 250 + 1));
                self.store.create("services", ns, obj, "services")?
            }
            "namespaces" => {
                objects::normalize(&mut obj, "Namespace", "v1");
                obj["spec"] = json!({"finalizers": ["kubernetes"]});
                obj["status"] = json!({"phase": "Active"});
                let name = objects::name_of(&obj).to_string();
                obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
                self.store.create("namespaces", "", obj, "namespaces")?
            }
            "nodes" => {
                return Err(ApiError::method_not_allowed(
                    "nodes are fixed in this test bed",
                ));
            }
            _ => {
                if res.group == "apps" {
                    workload::apply_defaults(&mut obj, res.kind)?;
                } else {
                    objects::normalize(&mut obj, res.kind, res.api_version());
                }
                self.store.create(res.plural, ns, obj, &res.display())?
            }
        };
        self.changed.notify_one();
        Ok(created)
    }

    /// The node a new pod goes to: spec.nodeName, else the hostname nodeSelector, else
    /// round robin.
    fn schedule(&self, pod: &Value) -> Option<String> {
        if let Some(n) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
            return Some(n.to_string());
        }
        if let Some(n) = pod["spec"]["nodeSelector"]["kubernetes.io/hostname"].as_str() {
            return Some(n.to_string());
        }
        if self.nodes.is_empty() {
            return None;
        }
        let i = self.next_node.fetch_add(1, Ordering::Relaxed) % self.nodes.len();
        Some(self.nodes[i].name.clone())
    }

    pub fn create_pod(self: &Arc<Self>, ns: &str, mut obj: Value) -> Result<Value, ApiError> {
        self.namespace_exists(ns)?;
        pod::apply_defaults(&mut obj);
        // Controllers' pods too: a refused template leaves its workload short of pods.
        self.pod_security(ns).admit(&obj)?;
        if let Some(node) = self.schedule(&obj) {
            obj["spec"]["nodeName"] = json!(node);
        }
        let created = self.store.create("pods", ns, obj, "pods")?;
        let this = self.clone();
        let (ns, name) = (ns.to_string(), objects::name_of(&created).to_string());
        let uid = objects::uid_of(&created).to_string();
        let launch = pod::launch(&created);
        let for_host = created.clone();
        tokio::spawn(async move {
            let rt = this.runtime.clone();
            let result = tokio::task::spawn_blocking(move || rt.start_pod(&launch))
                .await
                .unwrap_or_else(|e| {
                    Err(crate::runtime::RuntimeError::Failed {
                        message: e.to_string(),
                    })
                });
            let host_ip = this.host_ip(&for_host);
            let applied = this.store.update("pods", &ns, &name, "pods", |p| {
                if objects::uid_of(p) != uid || objects::is_deleting(p) {
                    return Err(ApiError::internal("pod replaced or deleting"));
                }
                match &result {
                    Ok(started) => pod::set_running(p, started),
                    Err(e) => pod::set_start_failed(p, e, host_ip.clone()),
                }
                Ok(())
            });
            if applied.is_err() && result.is_ok() {
                // Deleted while starting: make sure the runtime forgets it too.
                this.stop_pod_blocking(&ns, &name).await;
            }
            if let Err(e) = &result {
                tracing::warn!(%ns, %name, error = %e, "pod did not start");
            }
            this.changed.notify_one();
        });
        self.changed.notify_one();
        Ok(created)
    }

    fn host_ip(&self, pod: &Value) -> Option<String> {
        let node = pod["spec"]["nodeName"].as_str()?;
        self.nodes
            .iter()
            .find(|n| n.name == node)
            .map(|n| n.internal_ip.to_string())
    }

    pub(crate) async fn stop_pod_blocking(self: &Arc<Self>, ns: &str, name: &str) {
        let rt = self.runtime.clone();
        let (ns2, name2) = (ns.to_string(), name.to_string());
        match tokio::task::spawn_blocking(move || rt.stop_pod(&ns2, &name2)).await {
            Ok(Err(e)) => tracing::warn!(%ns, %name, error = %e, "stop_pod failed"),
            Err(e) => tracing::warn!(%ns, %name, error = %e, "stop_pod panicked"),
            Ok(Ok(())) => {}
        }
    }

    /// DELETE: pods go through Terminating (deletionTimestamp) and disappear once the
    /// runtime stopped them; other objects go at once and their dependents follow.
    pub fn delete(
        self: &Arc<Self>,
        res: &'static Resource,
        ns: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let display = res.display();
        if res.plural == "pods" {
            return self.delete_pod(ns, name);
        }
        if res.plural == "nodes" {
            return Err(ApiError::method_not_allowed(
                "nodes are fixed in this test bed",
            ));
        }
        if res.plural == "namespaces" {
            if matches!(name, "default" | "kube-system") {
                return Err(ApiError::new(
                    403,
                    "Forbidden",
                    format!(
                        "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
                    ),
                ));
            }
            self.store
                .get("namespaces", "", name)
                .ok_or_else(|| ApiError::not_found("namespaces", name))?;
            for r in crate::discovery::RESOURCES.iter().filter(|r| r.namespaced) {
                for o in self.store.list(r.plural, Some(name)).0 {
                    let _ = self.delete(r, name, objects::name_of(&o));
                }
            }
        }
        let ns_key = if res.namespaced { ns } else { "" };
        let removed = self
            .store
            .remove(res.plural, ns_key, name)
            .ok_or_else(|| ApiError::not_found(&display, name))?;
        if res.plural == "services" {
            self.store.remove("endpoints", ns, name);
        }
        self.changed.notify_one();
        Ok(removed)
    }

    pub fn delete_pod(self: &Arc<Self>, ns: &str, name: &str) -> Result<Value, ApiError> {
        let marked = self.store.update("pods", ns, name, "pods", |p| {
            if !objects::is_deleting(p) {
                p["metadata"]["deletionTimestamp"] = json!(util::now_rfc3339());
                p["metadata"]["deletionGracePeriodSeconds"] = json!(30);
            }
            Ok(())
        })?;
        if marked["metadata"]["deletionTimestamp"].is_string() {
            let this = self.clone();
            let (ns, name) = (ns.to_string(), name.to_string());
            let uid = objects::uid_of(&marked).to_string();
            tokio::spawn(async move {
                this.stop_pod_blocking(&ns, &name).await;
                this.drop_hubs(&ns, &name);
                if this
                    .store
                    .get("pods", &ns, &name)
                    .is_some_and(|p| objects::uid_of(&p) == uid)
                {
                    this.store.remove("pods", &ns, &name);
                }
                this.changed.notify_one();
            });
        }
        self.changed.notify_one();
        Ok(marked)
    }

    /// Updates (PUT/PATCH) keep the server-owned status unless `status` is the target.
    pub fn replace(
        self: &Arc<Self>,
        res: &'static Resource,
        ns: &str,
        name: &str,
        f: impl FnOnce(&mut Value) -> Result<(), ApiError>,
        status_only: bool,
    ) -> Result<Value, ApiError> {
        let ns_key = if res.namespaced { ns } else { "" };
        let out = self
            .store
            .update(res.plural, ns_key, name, &res.display(), |obj| {
                let before = obj.clone();
                f(obj)?;
                if status_only {
                    let status = obj["status"].clone();
                    *obj = before;
                    obj["status"] = status;
                } else if before.get("status").is_some() {
                    obj["status"] = before["status"].clone();
                }
                Ok(())
            })?;
        self.changed.notify_one();
        Ok(out)
    }

    pub fn hub(&self, ns: &str, pod: &str, container: &str) -> Option<Arc<AttachHub>> {
        self.hubs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(ns.into(), pod.into(), container.into()))
            .cloned()
    }

    pub(crate) fn drop_hubs(&self, ns: &str, pod: &str) {
        let mut hubs = self.hubs.lock().unwrap_or_else(|e| e.into_inner());
        hubs.retain(|(n, p, _), hub| {
            let keep = !(n == ns && p == pod);
            if !keep {
                hub.kill();
            }
            keep
        });
    }

    /// `PATCH pods/NAME/ephemeralcontainers`: adds the new containers to the spec and
    /// starts each through the runtime. Pod Security admission judges the pod with
    /// them, as it judges any update that adds an ephemeral container.
    pub fn patch_ephemeral(
        self: &Arc<Self>,
        ns: &str,
        name: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Value, ApiError> {
        let mut added: Vec<Value> = Vec::new();
        // Read before the update: the store is locked while the closure runs.
        let policy = self.pod_security(ns);
        let updated = self.store.update("pods", ns, name, "pods", |p| {
            if !pod::is_running(p) {
                return Err(ApiError::bad_request(format!(
                    "pod {name} is not running; ephemeral containers need a running pod"
                )));
            }
            let before: Vec<String> = p["spec"]["ephemeralContainers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["name"].as_str().map(String::from))
                .collect();
            let mut patched = p.clone();
            crate::patch::apply(&mut patched, content_type, body)?;
            let mut list = patched["spec"]["ephemeralContainers"].as_array().cloned().unwrap_or_default();
            for c in list.iter_mut() {
                let cname = c["name"].as_str().unwrap_or("").to_string();
                if before.contains(&cname) {
                    continue;
                }
                if cname.is_empty() || pod::find_container(p, &cname).is_some() {
                    return Err(ApiError::new(422, "Invalid", format!(
                        "Pod \"{name}\" is invalid: spec.ephemeralContainers: Duplicate value: \"{cname}\"")));
                }
                pod::container_defaults(c);
                added.push(c.clone());
            }
            p["spec"]["ephemeralContainers"] = json!(list);
            if !added.is_empty() {
                policy.admit(p)?;
            }
            for c in &added {
                let waiting = json!({"waiting": {"reason": "ContainerCreating"}});
                pod::set_ephemeral_status(p, c["name"].as_str().unwrap_or(""), c["image"].as_str().unwrap_or(""), waiting, json!({}));
            }
            Ok(())
        })?;
        for c in added {
            let this = self.clone();
            let (ns, name) = (ns.to_string(), name.to_string());
            tokio::spawn(async move { this.start_ephemeral(ns, name, c).await });
        }
        Ok(updated)
    }

    async fn start_ephemeral(self: Arc<Self>, ns: String, pod_name: String, c: Value) {
        let launch = pod::container_launch(&c);
        let target = c["targetContainerName"].as_str().map(String::from);
        let rt = self.runtime.clone();
        let (ns2, pod2, l2) = (ns.clone(), pod_name.clone(), launch.clone());
        let result = tokio::task::spawn_blocking(move || {
            rt.start_ephemeral(&ns2, &pod2, &l2, target.as_deref())
        })
        .await
        .unwrap_or_else(|e| {
            Err(crate::runtime::RuntimeError::Failed {
                message: e.to_string(),
            })
        });
        let image = launch.image.clone();
        let cname = launch.name.clone();
        match result {
            Ok((started, child)) => {
                let started_at = util::rfc3339(started.started_at);
                let stdin_once = c["stdinOnce"].as_bool().unwrap_or(false);
                let hub =
                    AttachHub::start(child, launch.tty, stdin_once, self.shutdown.subscribe());
                self.hubs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((ns.clone(), pod_name.clone(), cname.clone()), hub.clone());
                let extra =
                    json!({"containerID": started.container_id, "imageID": started.image_id});
                let _ = self.store.update("pods", &ns, &pod_name, "pods", |p| {
                    pod::set_ephemeral_status(
                        p,
                        &cname,
                        &image,
                        json!({"running": {"startedAt": started_at}}),
                        extra.clone(),
                    );
                    Ok(())
                });
                let code = hub.wait_exit().await;
                let _ = self.store.update("pods", &ns, &pod_name, "pods", |p| {
                    pod::set_ephemeral_status(
                        p,
                        &cname,
                        &image,
                        pod::terminated_state(code, &started_at),
                        extra,
                    );
                    Ok(())
                });
            }
            Err(e) => {
                let reason = match e {
                    crate::runtime::RuntimeError::UnknownImage { .. } => "ErrImagePull",
                    _ => "RunContainerError",
                };
                let _ = self.store.update("pods", &ns, &pod_name, "pods", |p| {
                    pod::set_ephemeral_status(
                        p,
                        &cname,
                        &image,
                        json!({"waiting": {"reason": reason, "message": e.to_string()}}),
                        json!({}),
                    );
                    Ok(())
                });
            }
        }
    }

    /// Every pod named in the store, for shutdown.
    pub async fn stop_all(self: &Arc<Self>) {
        let _ = self.shutdown.send(true);
        let pods = self.store.list("pods", None).0;
        for p in pods {
            let ns = p["metadata"]["namespace"]
                .as_str()
                .unwrap_or("")
                .to_string();
            self.stop_pod_blocking(&ns, objects::name_of(&p)).await;
        }
        let hubs: Vec<_> = self
            .hubs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        for (_, hub) in hubs {
            hub.kill();
        }
    }
}
