//! Capture sources: a planned source ([`crate::plan::PlannedSource`]) run to its
//! end. An SSH node ([`ssh`]) or a Kubernetes pod or node ([`pod`]): whatever the
//! transport, a source is a remote process running kcap's wrapper, and
//! [`stream::drive`] is the one loop that decodes its pcap stream, keeps the
//! heartbeat going, stops it and says how it ended.

pub mod helper_pool;
pub mod pod;
pub mod ssh;
pub mod stream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kcap_capture::outcome::ToolStatistics;
use kcap_kube::Method;
use tokio::sync::mpsc;

pub use pod::KubeContext;
pub use stream::StreamError;

use crate::event::{Event, SourceId};
use crate::plan::{PlannedSource, Target};
use crate::stop::Stop;

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
            elapsed: Duration::ZERO,
            error: None,
        }
    }

    /// Keeps what the stream said about the tool.
    fn record(&mut self, ended: &stream::Ended) {
        self.tool.clone_from(&ended.tool);
        self.way.clone_from(&ended.way);
        self.statistics = ended.statistics;
    }
}

/// Captures `planned` until its remote tool ends or `stop` fires. Always sends
/// `Event::Ended` for this source, whatever happens.
pub async fn capture(
    id: SourceId,
    planned: PlannedSource,
    kube: Option<Arc<KubeContext>>,
    events: mpsc::Sender<Event>,
    stop: Stop,
) -> SourceReport {
    let started = Instant::now();
    let mut report = SourceReport::new(planned.label().to_string());
    let result = match (&planned.target, kube) {
        (Target::Ssh(node), _) => {
            let feed = stream::Feed {
                source: id,
                info: &planned.info,
                command: &planned.command,
                events: &events,
                stop: &stop,
            };
            match planned.command.to_shell() {
                Ok(line) => ssh::capture(node, &line, &feed, &mut report).await,
                Err(e) => Err(e.into()),
            }
        }
        (_, Some(ctx)) => pod::capture(id, &planned, &ctx, &events, &stop, &mut report).await,
        (_, None) => unreachable!("Kubernetes sources are planned with a cluster"),
    };
    report.error = result.err();
    report.elapsed = started.elapsed();
    let statistics = report.statistics;
    let _ = events
        .send(Event::Ended {
            source: id,
            statistics,
        })
        .await;
    report
}
