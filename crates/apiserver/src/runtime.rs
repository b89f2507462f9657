//! What the API server needs from whatever actually runs pods. The test bed implements
//! it with network namespaces on the machine; this crate's own tests with plain local
//! processes. Every method is called from inside a tokio runtime.

use std::net::IpAddr;
use std::time::SystemTime;

/// A pod to start, as the API server has accepted it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodLaunch {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// `spec.nodeName` (the API server schedules before launching).
    pub node: String,
    pub host_network: bool,
    pub host_pid: bool,
    pub containers: Vec<ContainerLaunch>,
}

/// One container of a pod, or an ephemeral container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerLaunch {
    pub name: String,
    /// An image name such as `kcap.test/app:1` (see the runtime's catalogue).
    pub image: String,
    /// `command` + `args` from the spec; both empty = the image's default process.
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// `securityContext.privileged`.
    pub privileged: bool,
    /// `securityContext.runAsUser` (the image's user when `None`).
    pub run_as_user: Option<u32>,
    /// `securityContext.capabilities.add`, e.g. `NET_RAW`, `NET_ADMIN`.
    pub add_capabilities: Vec<String>,
    pub stdin: bool,
    pub tty: bool,
}

impl PodLaunch {
    /// A pod without containers yet (for runtimes driven directly, e.g. in tests);
    /// its uid is made up from namespace and name.
    pub fn new(namespace: &str, name: &str, node: &str) -> PodLaunch {
        PodLaunch {
            namespace: namespace.into(),
            name: name.into(),
            uid: format!("uid-{namespace}-{name}"),
            node: node.into(),
            ..PodLaunch::default()
        }
    }

    pub fn container(mut self, c: ContainerLaunch) -> PodLaunch {
        self.containers.push(c);
        self
    }
}

impl ContainerLaunch {
    /// A container running `image`'s default process.
    pub fn new(name: &str, image: &str) -> ContainerLaunch {
        ContainerLaunch {
            name: name.into(),
            image: image.into(),
            ..ContainerLaunch::default()
        }
    }

    pub fn env(mut self, key: &str, value: &str) -> ContainerLaunch {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn command<S: Into<String>>(
        mut self,
        argv: impl IntoIterator<Item = S>,
    ) -> ContainerLaunch {
        self.command = argv.into_iter().map(Into::into).collect();
        self
    }
}

/// Where a pod ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodStarted {
    pub pod_ip: IpAddr,
    pub host_ip: IpAddr,
    pub containers: Vec<ContainerStarted>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStarted {
    pub name: String,
    /// `containerd://<64 hex>`, as in `status.containerStatuses[].containerID`.
    pub container_id: String,
    /// e.g. `kcap.test/app@sha256:<64 hex>`.
    pub image_id: String,
    pub started_at: SystemTime,
}

/// Why the runtime could not do something. The API server turns each into what a
/// real cluster answers (pod status reasons, Status objects on the exec error channel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeError {
    /// The image is not in the catalogue (a real cluster: ErrImagePull).
    UnknownImage { image: String },
    /// The node does not exist or cannot run pods.
    UnknownNode { node: String },
    /// No such pod or container is running.
    NotFound { what: String },
    /// `exec`: the executable is not in the container's PATH (distroless images).
    ExecutableNotFound { executable: String },
    /// Anything else, in the runtime's own words.
    Failed { message: String },
}

impl std::fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuntimeError::UnknownImage { image } => write!(f, "image {image:?} not found"),
            RuntimeError::UnknownNode { node } => write!(f, "node {node:?} not found"),
            RuntimeError::NotFound { what } => write!(f, "{what} not found"),
            RuntimeError::ExecutableNotFound { executable } => write!(
                f,
                "exec: {executable:?}: executable file not found in $PATH"
            ),
            RuntimeError::Failed { message } => f.write_str(message),
        }
    }
}

impl std::error::Error for RuntimeError {}

/// Runs pods. Processes returned here are `tokio::process::Child`ren whose stdio is
/// piped as asked; the API server relays them and reaps them.
pub trait PodRuntime: Send + Sync + 'static {
    /// Starts every container of the pod (network namespace, address, processes).
    fn start_pod(&self, pod: &PodLaunch) -> Result<PodStarted, RuntimeError>;

    /// Stops the pod's processes and removes its network namespace. Idempotent.
    fn stop_pod(&self, namespace: &str, name: &str) -> Result<(), RuntimeError>;

    /// Runs `argv` inside a running container as its image and user would (its
    /// namespaces, PATH, uid, capabilities). stdin is piped only when `stdin` is set;
    /// stdout and stderr are always piped (a tty merges stderr into stdout).
    fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        argv: &[String],
        stdin: bool,
        tty: bool,
    ) -> Result<tokio::process::Child, RuntimeError>;

    /// Starts an ephemeral container in a running pod: in the pod's network namespace
    /// (and the target container's process view when `target` is given). Returns its
    /// main process with stdio piped as `container.stdin`/`tty` ask; the API server
    /// owns those pipes (attach) and reports the exit as `terminated`.
    fn start_ephemeral(
        &self,
        namespace: &str,
        pod: &str,
        container: &ContainerLaunch,
        target: Option<&str>,
    ) -> Result<(ContainerStarted, tokio::process::Child), RuntimeError>;
}
