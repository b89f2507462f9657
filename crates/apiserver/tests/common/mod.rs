//! Test helpers: `LocalRuntime`, a [`PodRuntime`] made of plain local processes, and
//! `Bed`, a started API server plus kubeconfigs and a way to run the real kubectl.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use kcap_apiserver::runtime::{
    ContainerLaunch, ContainerStarted, PodLaunch, PodRuntime, PodStarted, RuntimeError,
};
use kcap_apiserver::{ApiRequest, ApiServer, ClusterSpec, Features, NodeInfo, ServerOptions};
use serde_json::{Value, json};

fn hex(n: u64) -> String {
    format!("{n:016x}").repeat(4)
}

/// A running pod: container images by name, and the containers' main processes.
type LocalPod = (HashMap<String, String>, Vec<std::process::Child>);

#[derive(Default)]
pub struct LocalRuntime {
    next_ip: AtomicU32,
    /// (namespace, pod) -> (container images by name, main processes).
    pods: Mutex<HashMap<(String, String), LocalPod>>,
}

impl LocalRuntime {
    fn started(&self, name: &str, image: &str) -> ContainerStarted {
        let n = self.next_ip.fetch_add(1, Ordering::Relaxed) as u64 + 1000;
        ContainerStarted {
            name: name.into(),
            container_id: format!("containerd://{}", hex(n * 7919)),
            image_id: format!(
                "{}@sha256:{}",
                image.split(':').next().unwrap_or(image),
                hex(n)
            ),
            started_at: SystemTime::now(),
        }
    }

    fn argv(c: &ContainerLaunch) -> Vec<String> {
        let mut argv: Vec<String> = c.command.iter().chain(c.args.iter()).cloned().collect();
        if argv.is_empty() {
            argv = vec!["sleep".into(), "3600".into()];
        }
        argv
    }
}

impl PodRuntime for LocalRuntime {
    fn start_pod(&self, pod: &PodLaunch) -> Result<PodStarted, RuntimeError> {
        if let Some(c) = pod
            .containers
            .iter()
            .find(|c| c.image.contains("doesnotexist"))
        {
            return Err(RuntimeError::UnknownImage {
                image: c.image.clone(),
            });
        }
        let mut children = Vec::new();
        let mut started = Vec::new();
        let mut images = HashMap::new();
        for c in &pod.containers {
            let argv = Self::argv(c);
            let child = std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| RuntimeError::Failed {
                    message: e.to_string(),
                })?;
            children.push(child);
            images.insert(c.name.clone(), c.image.clone());
            started.push(self.started(&c.name, &c.image));
        }
        let n = self.next_ip.fetch_add(1, Ordering::Relaxed);
        self.pods.lock().unwrap().insert(
            (pod.namespace.clone(), pod.name.clone()),
            (images, children),
        );
        Ok(PodStarted {
            pod_ip: IpAddr::V4(Ipv4Addr::new(127, 1, (n / 250) as u8, (n % 250 + 2) as u8)),
            host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            containers: started,
        })
    }

    fn stop_pod(&self, namespace: &str, name: &str) -> Result<(), RuntimeError> {
        if let Some((_, children)) = self
            .pods
            .lock()
            .unwrap()
            .remove(&(namespace.into(), name.into()))
        {
            for mut c in children {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        Ok(())
    }

    fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        argv: &[String],
        stdin: bool,
        _tty: bool,
    ) -> Result<tokio::process::Child, RuntimeError> {
        let image = {
            let pods = self.pods.lock().unwrap();
            let (images, _) = pods.get(&(namespace.into(), pod.into())).ok_or_else(|| {
                RuntimeError::NotFound {
                    what: format!("pod {pod}"),
                }
            })?;
            images.get(container).cloned().unwrap_or_default()
        };
        let exe = argv.first().cloned().unwrap_or_default();
        if image.contains("distroless") && matches!(exe.as_str(), "sh" | "bash") {
            return Err(RuntimeError::ExecutableNotFound { executable: exe });
        }
        tokio::process::Command::new(&exe)
            .args(&argv[1..])
            .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    RuntimeError::ExecutableNotFound { executable: exe }
                }
                _ => RuntimeError::Failed {
                    message: e.to_string(),
                },
            })
    }

    fn start_ephemeral(
        &self,
        namespace: &str,
        pod: &str,
        container: &ContainerLaunch,
        _target: Option<&str>,
    ) -> Result<(ContainerStarted, tokio::process::Child), RuntimeError> {
        if !self
            .pods
            .lock()
            .unwrap()
            .contains_key(&(namespace.into(), pod.into()))
        {
            return Err(RuntimeError::NotFound {
                what: format!("pod {pod}"),
            });
        }
        let argv = Self::argv(container);
        let child = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(if container.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| RuntimeError::Failed {
                message: e.to_string(),
            })?;
        Ok((self.started(&container.name, &container.image), child))
    }
}

/// The objects every test cluster starts with.
pub fn default_objects() -> Vec<Value> {
    let container = |image: &str| {
        json!([{"name": "app", "image": image, "command": ["sleep", "3600"],
        "securityContext": {"capabilities": {"add": ["NET_RAW"]}}}])
    };
    vec![
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"replicas": 2,
                "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]},
                "template": {"metadata": {"labels": {"app": "web", "tier": "front"}}, "spec": {"containers": container("kcap.test/app:1")}}}}),
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": "kube-system"},
            "spec": {"selector": {"matchExpressions": [{"key": "name", "operator": "Exists"}, {"key": "canary", "operator": "DoesNotExist"}]},
                "template": {"metadata": {"labels": {"name": "agent"}}, "spec": {"hostNetwork": true, "containers": container("kcap.test/agent:1")}}}}),
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "prod"},
            "spec": {"replicas": 2, "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}, "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]},
                "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": container("kcap.test/db:1")}}}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "static", "namespace": "default", "labels": {"app": "static"}},
            "spec": {"nodeName": "node-b", "containers": container("gcr.io/distroless/static:nonroot")}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "tools", "namespace": "prod", "labels": {"app": "tools"}},
            "spec": {"containers": container("kcap.test/tools:1")}}),
    ]
}

pub struct Bed {
    pub server: ApiServer,
    pub dir: tempfile::TempDir,
    pub admin: PathBuf,
    pub restricted: PathBuf,
}

pub fn kubectl_dir() -> PathBuf {
    let real = std::fs::canonicalize("/usr/bin/kubectl")
        .or_else(|_| which("kubectl").ok_or(()))
        .unwrap_or_else(|_| PathBuf::from("/usr/bin/kubectl"));
    real.parent().unwrap().to_path_buf()
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|p| p.exists())
            .and_then(|p| std::fs::canonicalize(p).ok())
    })
}

impl Bed {
    pub fn start() -> Bed {
        Self::with_objects(default_objects())
    }

    pub fn with_objects(objects: Vec<Value>) -> Bed {
        Self::with_features(objects, Features::default())
    }

    pub fn with_features(objects: Vec<Value>, features: Features) -> Bed {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let nodes = ["node-a", "node-b"]
            .iter()
            .enumerate()
            .map(|(i, n)| NodeInfo {
                name: n.to_string(),
                internal_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                pod_cidr: format!("10.244.{i}.0/24"),
                labels: Default::default(),
            })
            .collect();
        let spec = ClusterSpec {
            nodes,
            namespaces: vec!["prod".into()],
            objects,
            features,
        };
        let dir = tempfile::tempdir().unwrap();
        let server = ApiServer::start(
            spec,
            ServerOptions {
                listener,
                advertise: vec![],
                request_log: Some(dir.path().join("api-requests.log")),
            },
            Arc::new(LocalRuntime::default()),
        )
        .expect("server starts");
        server
            .wait_ready(Duration::from_secs(30))
            .expect("cluster ready");
        let admin = dir.path().join("admin.kubeconfig");
        let restricted = dir.path().join("restricted.kubeconfig");
        std::fs::write(&admin, server.kubeconfig(server.admin_token(), "default")).unwrap();
        std::fs::write(
            &restricted,
            server.kubeconfig(server.restricted_token(), "prod"),
        )
        .unwrap();
        Bed {
            server,
            dir,
            admin,
            restricted,
        }
    }

    /// The server's request log so far.
    pub fn requests(&self) -> Vec<ApiRequest> {
        kcap_apiserver::request_log::read(&self.dir.path().join("api-requests.log"))
            .expect("request log readable")
    }

    /// A kubectl command with its own kubeconfig, cache dir and HOME.
    pub fn command(&self, bin: &str, kubeconfig: &Path, args: &[&str]) -> Command {
        let bin = if bin.contains('/') {
            PathBuf::from(bin)
        } else if bin == "kubectl" {
            PathBuf::from("/usr/bin/kubectl")
        } else {
            kubectl_dir().join(bin)
        };
        let mut cmd = Command::new("timeout");
        cmd.arg("300").arg(bin);
        cmd.arg("--kubeconfig").arg(kubeconfig);
        cmd.arg("--cache-dir").arg(self.dir.path().join("cache"));
        cmd.args(args);
        cmd.env("HOME", self.dir.path());
        cmd.env("KUBECACHEDIR", self.dir.path().join("cache"));
        cmd.stdin(Stdio::null());
        cmd
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.run(self.command("kubectl", &self.admin, args))
    }

    pub fn kubectl_restricted(&self, args: &[&str]) -> Output {
        self.run(self.command("kubectl", &self.restricted, args))
    }

    pub fn run(&self, mut cmd: Command) -> Output {
        let out = cmd.output().expect("kubectl runs");
        eprintln!(
            "$ {:?}\n-> {:?}\nstdout: {}\nstderr: {}",
            cmd,
            out.status,
            String::from_utf8_lossy(&out.stdout)
                .chars()
                .take(3000)
                .collect::<String>(),
            String::from_utf8_lossy(&out.stderr)
                .chars()
                .take(3000)
                .collect::<String>()
        );
        out
    }

    /// `kubectl` succeeded; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The name of the first pod whose name starts with `prefix`.
    pub fn pod(&self, ns: &str, prefix: &str) -> String {
        let names = self.ok(&["get", "pods", "-n", ns, "-o", "name"]);
        names
            .lines()
            .filter_map(|l| l.strip_prefix("pod/"))
            .find(|n| n.starts_with(prefix))
            .unwrap_or_else(|| panic!("no pod {prefix}* in {ns}: {names}"))
            .to_string()
    }
}

/// Whether the kubectl these tests run (`/usr/bin/kubectl`) works; asked once.
pub fn kubectl_installed() -> bool {
    static INSTALLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *INSTALLED.get_or_init(|| {
        Command::new("/usr/bin/kubectl")
            .args(["version", "--client"])
            .stdin(Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// First line of every test here that runs kubectl: without it the test says
/// `SKIP: kubectl not installed` on one line and returns (passing), as a user's
/// fresh machine need not have kubectl.
#[macro_export]
macro_rules! require_kubectl {
    () => {
        if !common::kubectl_installed() {
            eprintln!("SKIP: kubectl not installed (this test drives the real kubectl)");
            return;
        }
    };
}
