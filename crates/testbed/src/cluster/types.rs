//! The runtime's requests, answers and errors. They mirror what the API server
//! hands over (`kcap_apiserver::runtime`) without depending on it, so tests and
//! other callers can drive pods directly.

use std::net::IpAddr;
use std::time::SystemTime;

/// A pod to start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodRequest {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// The node (a host of the bed) to run on.
    pub node: String,
    /// Run in the node's network namespace (pod IP = node IP).
    pub host_network: bool,
    /// Recorded only: there are no PID namespaces here, every pod sees all.
    pub host_pid: bool,
    pub containers: Vec<ContainerRequest>,
}

/// One container (or ephemeral container) of a pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerRequest {
    pub name: String,
    /// An image of the catalogue (see [`image_names`](crate::image_names)).
    pub image: String,
    /// Replaces the image's entrypoint (Kubernetes `command`).
    pub command: Vec<String>,
    /// Replaces the image's default arguments (Kubernetes `args`).
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// All capabilities.
    pub privileged: bool,
    /// The image's user when `None`.
    pub run_as_user: Option<u32>,
    /// e.g. `NET_RAW`, `NET_ADMIN` (on top of the default set).
    pub add_capabilities: Vec<String>,
    pub stdin: bool,
    pub tty: bool,
}

impl PodRequest {
    /// A pod without containers yet; its uid is made up from namespace and name.
    pub fn new(namespace: &str, name: &str, node: &str) -> PodRequest {
        PodRequest {
            namespace: namespace.into(),
            name: name.into(),
            uid: format!("uid-{namespace}-{name}"),
            node: node.into(),
            ..PodRequest::default()
        }
    }

    pub fn container(mut self, c: ContainerRequest) -> PodRequest {
        self.containers.push(c);
        self
    }
}

impl ContainerRequest {
    /// A container running `image`'s default process.
    pub fn new(name: &str, image: &str) -> ContainerRequest {
        ContainerRequest {
            name: name.into(),
            image: image.into(),
            ..ContainerRequest::default()
        }
    }

    pub fn env(mut self, key: &str, value: &str) -> ContainerRequest {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn command<S: Into<String>>(
        mut self,
        argv: impl IntoIterator<Item = S>,
    ) -> ContainerRequest {
        self.command = argv.into_iter().map(Into::into).collect();
        self
    }
}

/// A running pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub node: String,
    pub pod_ip: IpAddr,
    pub host_ip: IpAddr,
    /// The pod's own network namespace (`ip netns` name); `None` with hostNetwork.
    pub netns: Option<String>,
    /// The node-side end of the pod's veth (`veth...` or `cali...`).
    pub host_interface: Option<String>,
    /// The CRI sandbox ID (64 hex).
    pub sandbox_id: String,
    pub containers: Vec<ContainerInfo>,
}

/// A running container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub name: String,
    /// `containerd://<64 hex>`.
    pub container_id: String,
    /// e.g. `kcap.test/app@sha256:<64 hex>`.
    pub image_id: String,
    pub started_at: SystemTime,
    /// The container's main process.
    pub pid: u32,
    pub ephemeral: bool,
}

/// Why the runtime could not do something (one variant per
/// `kcap_apiserver::runtime::RuntimeError` variant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterError {
    UnknownImage { image: String },
    UnknownNode { node: String },
    NotFound { what: String },
    ExecutableNotFound { executable: String },
    Failed { message: String },
}

impl ClusterError {
    pub(crate) fn failed(e: impl std::fmt::Display) -> ClusterError {
        ClusterError::Failed {
            message: e.to_string(),
        }
    }
}

impl std::fmt::Display for ClusterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClusterError::UnknownImage { image } => write!(f, "image {image:?} not found"),
            ClusterError::UnknownNode { node } => write!(f, "node {node:?} cannot run this pod"),
            ClusterError::NotFound { what } => write!(f, "{what} not found"),
            ClusterError::ExecutableNotFound { executable } => {
                write!(
                    f,
                    "exec: {executable:?}: executable file not found in $PATH"
                )
            }
            ClusterError::Failed { message } => f.write_str(message),
        }
    }
}

impl std::error::Error for ClusterError {}
