//! [`ClusterRuntime`]: starts and stops pods on the bed's nodes (network
//! namespace + CNI wiring + container processes) and keeps crictl's state file.

use std::collections::HashMap;
use std::fs::{self, File};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use super::container::{self, Launch, Privileges};
use super::crictl::{self, CriContainer, CriPod, CriState};
use super::images::{self, DefaultProcess, Image};
use super::ipam::Ipam;
use super::procs::{self, Membership};
use super::types::{ClusterError, ContainerInfo, ContainerRequest, PodInfo, PodRequest};
use super::{cni, ids};
use crate::netns;
use crate::process::spawn_daemon;
use crate::spec::Role;
use crate::topology::Host;

/// Runs pods on the nodes of one test bed. Get it from
/// [`Testbed::runtime`](crate::Testbed::runtime); every pod dies with the bed.
pub struct ClusterRuntime {
    pub(super) files: Files,
    prefix: String,
    hosts: Vec<Host>,
    pub(super) inner: Mutex<Inner>,
}

/// Paths under `DIR/cluster`.
pub(super) struct Files {
    pub dir: PathBuf,
    pub placeholder: PathBuf,
    pub traffic: PathBuf,
    pub logs: PathBuf,
}

#[derive(Default)]
pub(super) struct Inner {
    pub pods: Vec<Pod>,
    ipam: HashMap<String, Ipam>,
    closed: bool,
}

pub(super) struct Pod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub node: String,
    pub netns: Option<String>,
    pub host_if: Option<String>,
    pub ip: Ipv4Addr,
    pub host_ip: Ipv4Addr,
    pub sandbox_id: String,
    pub host_network: bool,
    pub host_pid: bool,
    pub created_ns: u128,
    pub containers: Vec<Container>,
}

pub(super) struct Container {
    pub name: String,
    pub id: String,
    pub image: &'static Image,
    pub pid: u32,
    pub privileges: Privileges,
    pub env: Vec<(String, String)>,
    pub argv: Vec<String>,
    pub started_at: SystemTime,
    pub ephemeral: bool,
    /// Main processes started by start_pod are ours to reap.
    pub child: Option<Child>,
    pub members: Membership,
}

fn nanos(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

impl ClusterRuntime {
    /// Writes `DIR/cluster` (traffic script, placeholder, crictl for every node).
    pub(crate) fn install(dir: &Path, hosts: &[Host]) -> anyhow::Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let cluster = dir.join("cluster");
        fs::create_dir(&cluster)?;
        fs::set_permissions(&cluster, fs::Permissions::from_mode(0o755))?;
        crate::traffic::install(&cluster)?;
        // Empty, 0644: neither exec nor POSIX `command -v` accept it.
        let placeholder = cluster.join("missing-program");
        fs::write(&placeholder, "")?;
        fs::set_permissions(&placeholder, fs::Permissions::from_mode(0o644))?;
        fs::create_dir(cluster.join("logs"))?;
        crictl::install(&cluster, hosts)?;
        Ok(cluster)
    }

    pub(crate) fn new(dir: &Path, prefix: &str, hosts: &[Host]) -> ClusterRuntime {
        let cluster = dir.join("cluster");
        let mut inner = Inner::default();
        for h in hosts {
            if let Some(p) = h.pods {
                inner.ipam.insert(h.name.clone(), Ipam::new(p.pod_cidr));
            }
        }
        ClusterRuntime {
            files: Files {
                placeholder: cluster.join("missing-program"),
                traffic: cluster.join("traffic.py"),
                logs: cluster.join("logs"),
                dir: cluster,
            },
            prefix: prefix.into(),
            hosts: hosts.to_vec(),
            inner: Mutex::new(inner),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn node(&self, name: &str) -> Result<&Host, ClusterError> {
        self.hosts
            .iter()
            .find(|h| h.name == name && h.role == Role::Node)
            .ok_or_else(|| ClusterError::UnknownNode { node: name.into() })
    }

    /// Starts every container of the pod: namespace, address, processes.
    pub fn start_pod(&self, req: &PodRequest) -> Result<PodInfo, ClusterError> {
        // Pulling its images first (only the large image takes time), unlocked.
        let pull = req
            .containers
            .iter()
            .filter_map(|c| images::find(&c.image))
            .map(|i| i.pull)
            .max()
            .unwrap_or_default();
        std::thread::sleep(pull);
        let mut inner = self.lock();
        if inner.closed {
            return Err(ClusterError::failed("the test bed is shut down"));
        }
        if inner
            .pods
            .iter()
            .any(|p| p.namespace == req.namespace && p.name == req.name)
        {
            return Err(ClusterError::failed(format!(
                "pod {}/{} is already running",
                req.namespace, req.name
            )));
        }
        let node = self.node(&req.node)?;
        let net = match (req.host_network, node.pods) {
            (true, _) => None,
            (false, Some(net)) => Some(net),
            (false, None) => {
                return Err(ClusterError::UnknownNode {
                    node: req.node.clone(),
                });
            }
        };
        for c in &req.containers {
            images::find(&c.image).ok_or_else(|| ClusterError::UnknownImage {
                image: c.image.clone(),
            })?;
        }
        let mut pod = Pod {
            namespace: req.namespace.clone(),
            name: req.name.clone(),
            uid: req.uid.clone(),
            node: node.name.clone(),
            netns: None,
            host_if: None,
            ip: node.primary_address(),
            host_ip: node.primary_address(),
            sandbox_id: ids::container_id(),
            host_network: req.host_network,
            host_pid: req.host_pid,
            created_ns: nanos(SystemTime::now()),
            containers: Vec::new(),
        };
        let result = self.start_parts(&mut inner, &mut pod, node, net, req);
        if let Err(e) = result {
            self.release(&mut inner, &mut pod);
            return Err(e);
        }
        let info = pod_info(&pod);
        inner.pods.push(pod);
        self.save(&inner);
        Ok(info)
    }

    fn start_parts(
        &self,
        inner: &mut Inner,
        pod: &mut Pod,
        node: &Host,
        net: Option<crate::spec::PodNetworkSpec>,
        req: &PodRequest,
    ) -> Result<(), ClusterError> {
        if let Some(net) = net {
            let ns = self.pod_netns_name(&req.namespace, &req.name);
            netns::add(&ns).map_err(ClusterError::failed)?;
            pod.netns = Some(ns.clone());
            let ipam = inner.ipam.get_mut(&node.name).expect("ipam per pod node");
            pod.ip = ipam.allocate().ok_or_else(|| {
                ClusterError::failed(format!("{}: pod CIDR exhausted", node.name))
            })?;
            let host_if = cni::attach(node, net, &ns, pod.ip).map_err(ClusterError::failed)?;
            pod.host_if = Some(host_if);
        }
        for c in &req.containers {
            let started = self.start_container(pod, c)?;
            pod.containers.push(started);
        }
        Ok(())
    }

    /// `<prefix>-pod-<namespace>-<name>`, or a random suffix when too long or taken.
    fn pod_netns_name(&self, namespace: &str, name: &str) -> String {
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect()
        };
        let ns = format!("{}-pod-{}-{}", self.prefix, clean(namespace), clean(name));
        if ns.len() <= 100 && !netns::exists(&ns) {
            ns
        } else {
            format!("{}-pod-{}", self.prefix, ids::random_hex(12))
        }
    }

    /// The namespace a pod's processes run in.
    pub(super) fn pod_netns<'a>(&'a self, pod: &'a Pod) -> &'a str {
        match &pod.netns {
            Some(ns) => ns,
            None => &self.node(&pod.node).expect("pod node exists").netns,
        }
    }

    fn start_container(&self, pod: &Pod, c: &ContainerRequest) -> Result<Container, ClusterError> {
        let image = images::find(&c.image).ok_or_else(|| ClusterError::UnknownImage {
            image: c.image.clone(),
        })?;
        let id = ids::container_id();
        let log = File::create(self.files.logs.join(format!("{id}.log")))
            .map_err(ClusterError::failed)?;
        let mut container = self.container(c, image, id);
        let (mut cmd, ready_file) = {
            let launch = self.launch(pod, &container);
            (launch.command(), launch.ready_file)
        };
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().map_err(ClusterError::failed)?)
            .stderr(log);
        let mut child = spawn_daemon(&mut cmd).map_err(ClusterError::failed)?;
        container.pid = child.id();
        let ready = container::wait_ready(&ready_file, || {
            child.try_wait().ok().flatten().map(|s| s.to_string())
        });
        container.child = Some(child);
        if let Err(e) = ready {
            let log = fs::read_to_string(self.files.logs.join(format!("{}.log", container.id)))
                .unwrap_or_default();
            kill_container(&mut container);
            return Err(ClusterError::failed(format!(
                "container {}: {e:#}: {}",
                c.name,
                log.trim()
            )));
        }
        container.members = Membership::of(container.pid, own_mount_ns(container.pid));
        Ok(container)
    }

    /// A container record (not started yet) for a request.
    pub(super) fn container(
        &self,
        c: &ContainerRequest,
        image: &'static Image,
        id: String,
    ) -> Container {
        let privileges = Privileges {
            uid: c.run_as_user.unwrap_or(image.uid),
            privileged: c.privileged,
            add: c.add_capabilities.clone(),
        };
        Container {
            name: c.name.clone(),
            id,
            image,
            pid: 0,
            privileges,
            env: c.env.clone(),
            argv: self.argv(image, c),
            started_at: SystemTime::now(),
            ephemeral: false,
            child: None,
            members: Membership::default(),
        }
    }

    /// Kubernetes semantics: `command` replaces the entrypoint, `args` the
    /// default arguments (our images have no entrypoint, only defaults).
    fn argv(&self, image: &Image, c: &ContainerRequest) -> Vec<String> {
        if !c.command.is_empty() {
            return c.command.iter().chain(&c.args).cloned().collect();
        }
        if !c.args.is_empty() {
            return c.args.clone();
        }
        let traffic = self.files.traffic.display().to_string();
        let v: Vec<&str> = match image.default {
            DefaultProcess::Traffic => vec!["python3", "-u", &traffic, "--pod"],
            DefaultProcess::Client => vec!["python3", "-u", &traffic, "--pod", "--no-serve"],
            DefaultProcess::Shell if c.stdin => vec!["sh"],
            DefaultProcess::Shell => vec!["sleep", "infinity"],
        };
        v.into_iter().map(String::from).collect()
    }

    pub(super) fn launch<'a>(&'a self, pod: &'a Pod, c: &'a Container) -> Launch<'a> {
        let node = self.node(&pod.node).expect("pod node exists");
        Launch {
            netns: self.pod_netns(pod),
            hostname: if pod.host_network {
                &node.name
            } else {
                &pod.name
            },
            image: c.image,
            privileges: &c.privileges,
            argv: &c.argv,
            env: &c.env,
            placeholder: &self.files.placeholder,
            crictl_dir: crictl::bin_dir(node),
            ready_file: self.files.dir.join(format!("{}.ready", c.id)),
            bed_dir: self.files.dir.parent().unwrap_or(&self.files.dir),
        }
    }

    /// Stops the pod's processes and removes its namespace. Idempotent.
    pub fn stop_pod(&self, namespace: &str, name: &str) -> Result<(), ClusterError> {
        let mut inner = self.lock();
        let Some(pos) = inner
            .pods
            .iter()
            .position(|p| p.namespace == namespace && p.name == name)
        else {
            return Ok(());
        };
        let mut pod = inner.pods.remove(pos);
        self.release(&mut inner, &mut pod);
        self.save(&inner);
        Ok(())
    }

    /// Kills everything of a pod, removes its network and frees its address.
    fn release(&self, inner: &mut Inner, pod: &mut Pod) {
        let members: Vec<Membership> = pod.containers.iter().map(|c| c.members.clone()).collect();
        for c in &mut pod.containers {
            kill_container(c);
        }
        procs::kill_members(&members);
        if let Some(ns) = &pod.netns {
            let _ = netns::kill_all(ns);
            if let (Some(host_if), Ok(node)) = (&pod.host_if, self.node(&pod.node)) {
                cni::detach(&node.netns, host_if);
            }
            let _ = netns::delete(ns);
            if let Some(ipam) = inner.ipam.get_mut(&pod.node) {
                ipam.release(pod.ip);
            }
        }
    }

    /// Stops every pod; later calls fail. Called when the bed goes down.
    pub fn shutdown(&self) {
        let mut inner = self.lock();
        if inner.closed {
            return;
        }
        inner.closed = true;
        let mut pods = std::mem::take(&mut inner.pods);
        for pod in &mut pods {
            self.release(&mut inner, pod);
        }
        self.save(&inner);
    }

    /// A running pod.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<PodInfo> {
        self.lock()
            .pods
            .iter()
            .find(|p| p.namespace == namespace && p.name == name)
            .map(pod_info)
    }

    /// Every running pod.
    pub fn pods(&self) -> Vec<PodInfo> {
        self.lock().pods.iter().map(pod_info).collect()
    }

    /// Rewrites crictl's state file. Failures only affect crictl, so they are
    /// reported, not returned.
    pub(super) fn save(&self, inner: &Inner) {
        let mut state = CriState::default();
        for p in &inner.pods {
            state.pods.push(CriPod {
                id: p.sandbox_id.clone(),
                name: p.name.clone(),
                namespace: p.namespace.clone(),
                uid: p.uid.clone(),
                node: p.node.clone(),
                netns: p.netns.as_ref().map(|n| format!("/var/run/netns/{n}")),
                netns_name: p.netns.clone(),
                ip: p.ip.to_string(),
                host_network: p.host_network,
                host_pid: p.host_pid,
                pid: p.containers.first().map_or(0, |c| c.pid),
                created_ns: p.created_ns,
            });
            for c in &p.containers {
                state.containers.push(CriContainer {
                    id: c.id.clone(),
                    pod_id: p.sandbox_id.clone(),
                    name: c.name.clone(),
                    pod_name: p.name.clone(),
                    pod_namespace: p.namespace.clone(),
                    pod_uid: p.uid.clone(),
                    node: p.node.clone(),
                    image: c.image.name.into(),
                    image_ref: c.image.image_ref(),
                    pid: c.pid,
                    uid: c.privileges.uid,
                    privileged: c.privileges.privileged,
                    argv: c.argv.clone(),
                    env: c.env.clone(),
                    created_ns: nanos(c.started_at),
                });
            }
        }
        if let Err(e) = crictl::save(&crictl::state_path(&self.files.dir), &state) {
            eprintln!("kcap-testbed: cannot write crictl state: {e:#}");
        }
    }
}

/// The container's mount namespace, unless the launcher failed to make one
/// (then it is ours, and matching on it would kill the test process's peers).
pub(super) fn own_mount_ns(pid: u32) -> Option<(u64, u64)> {
    let ns = container::mount_ns(pid)?;
    (Some(ns) != container::mount_ns(std::process::id())).then_some(ns)
}

pub(super) fn kill_container(c: &mut Container) {
    if let Some(mut child) = c.child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
    procs::kill_members(std::slice::from_ref(&c.members));
}

pub(super) fn container_info(c: &Container) -> ContainerInfo {
    ContainerInfo {
        name: c.name.clone(),
        container_id: format!("containerd://{}", c.id),
        image_id: c.image.image_ref(),
        started_at: c.started_at,
        pid: c.pid,
        ephemeral: c.ephemeral,
    }
}

fn pod_info(p: &Pod) -> PodInfo {
    PodInfo {
        namespace: p.namespace.clone(),
        name: p.name.clone(),
        node: p.node.clone(),
        pod_ip: IpAddr::V4(p.ip),
        host_ip: IpAddr::V4(p.host_ip),
        netns: p.netns.clone(),
        host_interface: p.host_if.clone(),
        sandbox_id: p.sandbox_id.clone(),
        containers: p.containers.iter().map(container_info).collect(),
    }
}

impl Drop for ClusterRuntime {
    fn drop(&mut self) {
        self.shutdown();
    }
}
