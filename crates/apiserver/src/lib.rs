//! A Kubernetes API server for kcap's test bed: enough of the real wire protocol
//! (discovery, objects, watch, exec/attach over WebSocket, ephemeral containers, Pod
//! Security admission) that the real kubectl and kube-rs accept it. Pods are run by a
//! [`runtime::PodRuntime`].
//!
//! Start one with [`ApiServer::start`], hand [`ApiServer::kubeconfig`] to clients, and
//! [`ApiServer::shutdown`] it when done. With [`ServerOptions::request_log`] it logs
//! what clients changed, ran and asked ([`request_log::read`] reads it back).

pub mod request_log;
pub mod runtime;

mod auth;
mod cluster;
mod controllers;
mod discovery;
mod http;
mod kubeconfig;
mod objects;
pub mod paging;
mod patch;
mod pod_security;
mod protobuf;
mod reboot;
mod review;
mod selector;
mod status;
mod store;
mod stream;
mod table;
mod tls;
mod util;
mod watch;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use crate::cluster::Cluster;
pub use crate::request_log::{AccessQuestion, ApiRequest, RequestKind};
use crate::runtime::PodRuntime;

/// What the cluster holds at start.
#[derive(Debug, Clone, Default)]
pub struct ClusterSpec {
    pub nodes: Vec<NodeInfo>,
    /// Extra namespaces; `default` and `kube-system` always exist.
    pub namespaces: Vec<String>,
    /// Deployments, DaemonSets, StatefulSets, ReplicaSets, Services and Pods as JSON
    /// manifests (`kind` and `metadata.namespace` are read; namespace defaults to
    /// `default`). Applied at start; controllers then create pods through the runtime.
    /// A `Namespace` listed before the objects in it gives it labels, e.g.
    /// `pod-security.kubernetes.io/enforce: baseline` (Pod Security admission).
    pub objects: Vec<Value>,
    pub features: Features,
}

/// What the emulated cluster supports, where clusters differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// The `pods/ephemeralcontainers` subresource (kubectl debug). Without it the
    /// server answers as a 1.22-era cluster with the EphemeralContainers feature gate
    /// off: the subresource is not in discovery and its path is 404 Not Found.
    pub ephemeral_containers: bool,
}

impl Default for Features {
    /// A current cluster.
    fn default() -> Self {
        Features {
            ephemeral_containers: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    pub internal_ip: IpAddr,
    pub pod_cidr: String,
    pub labels: BTreeMap<String, String>,
}

pub struct ServerOptions {
    /// Already bound by the caller (possibly inside a network namespace).
    pub listener: std::net::TcpListener,
    /// Addresses clients use: subjectAltNames of the certificate; the first one is the
    /// kubeconfig's server address. Empty = the listener's address.
    pub advertise: Vec<IpAddr>,
    /// Where to append the request log ([`request_log`]: every request that changes
    /// or runs something, and every access review); `None` logs nothing.
    pub request_log: Option<std::path::PathBuf>,
}

/// A running API server (its own thread and tokio runtime).
pub struct ApiServer {
    url: String,
    ca_pem: String,
    admin_token: String,
    restricted_token: String,
    cluster: Arc<Cluster>,
    stop: tokio::sync::watch::Sender<bool>,
    restarts: tokio::sync::watch::Sender<u64>,
    down_until: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    /// The server's tokio runtime, for calls made from outside it.
    handle: tokio::runtime::Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ApiServer {
    /// Spawns the server on its own thread with its own tokio runtime (so callers need
    /// no runtime). Returns once it accepts connections and the spec is applied.
    pub fn start(
        spec: ClusterSpec,
        options: ServerOptions,
        runtime: Arc<dyn PodRuntime>,
    ) -> anyhow::Result<ApiServer> {
        let local = options.listener.local_addr().context("listener address")?;
        let mut advertise = options.advertise.clone();
        if advertise.is_empty() {
            advertise.push(local.ip());
        }
        let tls = tls::generate(&advertise)?;
        let host = match advertise[0] {
            IpAddr::V4(ip) => format!("{ip}:{}", local.port()),
            IpAddr::V6(ip) => format!("[{ip}]:{}", local.port()),
        };
        let log = request_log::RequestLog::open(options.request_log.as_deref())
            .with_context(|| format!("open the request log {:?}", options.request_log))?;
        let tokens = auth::Tokens::generate();
        let (admin_token, restricted_token) = (tokens.admin.clone(), tokens.restricted.clone());
        options.listener.set_nonblocking(true)?;

        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("kcap-apiserver")
            .build()?;
        let handle = rt.handle().clone();
        let cluster = Arc::new(Cluster::new(runtime, spec.nodes.clone(), spec.features));
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let (restarts, restarts_rx) = tokio::sync::watch::channel(0u64);
        let down_until = Arc::new(std::sync::Mutex::new(None));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<anyhow::Result<()>>();
        let server = Arc::new(http::Server {
            cluster: cluster.clone(),
            tokens,
            url_host: host.clone(),
            log,
            restarts: restarts_rx,
            down_until: down_until.clone(),
        });
        let listener = options.listener;
        let thread = std::thread::Builder::new()
            .name("kcap-apiserver".into())
            .spawn(move || {
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.into()));
                            return;
                        }
                    };
                    let applied = apply_spec(&server.cluster, &spec);
                    let failed = applied.is_err();
                    let _ = ready_tx.send(applied);
                    if failed {
                        return;
                    }
                    let ctl = tokio::spawn(controllers::run(server.cluster.clone()));
                    http::serve(server.clone(), listener, tls.config, stop_rx).await;
                    ctl.abort();
                    server.cluster.stop_all().await;
                });
                rt.shutdown_timeout(Duration::from_secs(2));
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => anyhow::bail!("API server thread died during start"),
        }
        Ok(ApiServer {
            url: format!("https://{host}"),
            ca_pem: tls.ca_pem,
            admin_token,
            restricted_token,
            cluster,
            stop,
            restarts,
            down_until,
            handle,
            thread: Some(thread),
        })
    }

    /// `https://ADDR:PORT`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The CA that signed the serving certificate.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The stored objects of `resource` (plural, e.g. `pods`, `services`) in one
    /// namespace or all, as kubectl would get them (for test beds that follow
    /// the cluster's state, e.g. Service endpoints, without an HTTP client).
    pub fn list(&self, resource: &'static str, namespace: Option<&str>) -> Vec<Value> {
        self.cluster.store.list(resource, namespace).0
    }

    /// A read-only user: get/list/watch only (no exec, attach, create, delete, patch).
    pub fn restricted_token(&self) -> &str {
        &self.restricted_token
    }

    /// A complete kubeconfig (cluster with certificate-authority-data, user with token,
    /// context with namespace) as YAML text.
    pub fn kubeconfig(&self, token: &str, namespace: &str) -> String {
        let user = if token == self.restricted_token {
            "restricted"
        } else {
            "admin"
        };
        kubeconfig::render(&self.url, &self.ca_pem, user, token, namespace)
    }

    /// Blocks until every workload has its pods and every pod is Running (or timeout).
    pub fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.not_ready() {
                None => return Ok(()),
                Some(why) if Instant::now() >= deadline => {
                    anyhow::bail!("cluster not ready after {timeout:?}: {why}")
                }
                Some(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn not_ready(&self) -> Option<String> {
        let store = &self.cluster.store;
        for p in store.list("pods", None).0 {
            if !objects::pod::is_running(&p) {
                return Some(format!(
                    "pod {} is {}",
                    objects::name_of(&p),
                    table::pod_status(&p)
                ));
            }
        }
        for r in ["deployments", "replicasets", "statefulsets"] {
            for o in store.list(r, None).0 {
                let want = objects::workload::replicas(&o);
                if o["status"]["readyReplicas"].as_u64().unwrap_or(0) != want
                    || o["status"]["replicas"].as_u64().unwrap_or(0) != want
                {
                    return Some(format!(
                        "{r} {} has not got {want} ready pods",
                        objects::name_of(&o)
                    ));
                }
            }
        }
        for o in store.list("daemonsets", None).0 {
            let s = &o["status"];
            if s["desiredNumberScheduled"].is_null()
                || s["numberReady"] != s["desiredNumberScheduled"]
            {
                return Some(format!("daemonset {} is not ready", objects::name_of(&o)));
            }
        }
        None
    }

    /// Restarts the server as a real one restarts with its etcd kept: every
    /// connection ends (watches, exec and attach streams too), none is taken for
    /// `down`, and then the same objects are served again.
    pub fn restart(&self, down: Duration) {
        *self.down_until.lock().unwrap() = Some(std::time::Instant::now() + down);
        self.restarts.send_modify(|generation| *generation += 1);
    }

    /// The first half of a node's reboot: every pod on `node` stops at once; the
    /// API still shows them as they were (a node that is down reports nothing).
    pub fn node_down(&self, node: &str) {
        self.handle.block_on(self.cluster.node_down(node));
    }

    /// The second half: the node is back, and its pods start again in place with
    /// new containers (`restartPolicy: Never` pods fail instead).
    pub fn node_up(&self, node: &str) {
        self.handle.block_on(self.cluster.node_up(node));
    }

    /// Stops the server; stops every pod through the runtime; joins the thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Creates the namespaces, nodes and objects of the spec.
fn apply_spec(cluster: &Arc<Cluster>, spec: &ClusterSpec) -> anyhow::Result<()> {
    let ns_res = discovery::find("", "namespaces").expect("namespaces are served");
    let mut names = vec![
        "default".to_string(),
        "kube-system".to_string(),
        "kube-public".to_string(),
    ];
    names.extend(spec.namespaces.iter().cloned());
    for ns in names {
        if cluster.store.get("namespaces", "", &ns).is_none() {
            cluster
                .create(ns_res, "", serde_json::json!({"metadata": {"name": ns}}))
                .map_err(|e| anyhow::anyhow!("namespace {ns}: {e}"))?;
        }
    }
    for n in &spec.nodes {
        cluster
            .store
            .create("nodes", "", objects::node::manifest(n), "nodes")
            .map_err(|e| anyhow::anyhow!("node {}: {e}", n.name))?;
    }
    for obj in &spec.objects {
        let kind = obj["kind"].as_str().unwrap_or("");
        let res = discovery::by_kind(kind)
            .with_context(|| format!("unsupported kind {kind:?} in the cluster spec"))?;
        let ns = if res.namespaced {
            obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string()
        } else {
            String::new()
        };
        cluster
            .create(res, &ns, obj.clone())
            .map_err(|e| anyhow::anyhow!("{kind} {}: {e}", objects::name_of(obj)))?;
    }
    Ok(())
}
