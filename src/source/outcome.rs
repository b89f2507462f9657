//! How one source's capture went: its report for the summary, and why it failed.

use std::time::Duration;

use kcap_capture::outcome::ToolStatistics;
use kcap_kube::Method;

use super::stream::{self, StreamError};

/// Why a source's capture failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Ssh(#[from] kcap_ssh::Error),
    #[error(transparent)]
    Kube(#[from] kcap_kube::Error),
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// A value cannot be passed to the remote shell safely (refused, never run).
    #[error("cannot build the remote command line")]
    Command(#[from] kcap_capture::Error),
    /// The capture could not run where the method put it: in the pod's own
    /// container (`--via exec`), or in the debug or helper container's image.
    #[error("{}", in_container(.pod, .container, *.method, .image, .error))]
    InContainer {
        pod: String,
        container: String,
        method: Method,
        image: String,
        #[source]
        error: StreamError,
    },
}

/// What a failure inside a container means for that container (or image).
fn in_container(
    pod: &str,
    container: &str,
    method: Method,
    image: &str,
    error: &StreamError,
) -> String {
    use kcap_capture::outcome::Failure;
    let what = match error {
        StreamError::Capture {
            failure: Failure::ToolMissing { .. },
            ..
        } => "no capture tool (tcpdump)",
        StreamError::Capture {
            failure: Failure::PermissionDenied { .. },
            ..
        } => "permission denied: may not capture (non-root or no NET_RAW)",
        _ => "no shell",
    };
    match method {
        Method::Exec => format!("pod {pod}, container {container}: {what} in the container"),
        _ => format!("pod {pod}, --via {method}: {what} in the image {image}"),
    }
}

/// How one source's capture went.
#[derive(Debug)]
pub struct SourceReport {
    pub label: String,
    /// SSH session description, or for pods the method and node.
    pub session: Option<String>,
    /// `--via` method that captured (pods only).
    pub method: Option<Method>,
    pub tool: Option<String>,
    /// How the pod's network was found from its node (`--via node`, `--via ssh`).
    pub way: Option<String>,
    pub statistics: Option<ToolStatistics>,
    /// `--process=auto`: why the node could not attribute packets to processes.
    pub process_unavailable: Option<String>,
    pub elapsed: Duration,
    pub error: Option<SourceError>,
}

impl SourceReport {
    pub fn new(label: String) -> SourceReport {
        SourceReport {
            label,
            session: None,
            method: None,
            tool: None,
            way: None,
            statistics: None,
            process_unavailable: None,
            elapsed: Duration::ZERO,
            error: None,
        }
    }

    /// Keeps what the stream said about the tool.
    pub(super) fn record(&mut self, ended: &stream::Ended) {
        self.tool.clone_from(&ended.tool);
        self.way.clone_from(&ended.way);
        self.statistics = ended.statistics;
        self.process_unavailable
            .clone_from(&ended.process_unavailable);
    }
}
