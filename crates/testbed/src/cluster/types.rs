//! The runtime's requests, answers and errors. Requests are the API server's
//! launch types; answers carry more than the API server needs (pids, netns, host
//! interface) for tests and callers that drive pods directly.

use std::net::IpAddr;
use std::time::SystemTime;

/// The requests are the API server's own launch types: one definition serves the
/// API server and callers that drive pods directly.
pub use kcap_apiserver::runtime::{ContainerLaunch as ContainerRequest, PodLaunch as PodRequest};

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
