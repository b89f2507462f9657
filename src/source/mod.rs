//! Capture sources: an SSH node ([`ssh`]) or a Kubernetes pod or node ([`pod`]).
//! Whatever the transport, a source is a remote process running kcap's wrapper;
//! [`stream::drive`] is the one loop that decodes its pcap stream, keeps the
//! heartbeat going, stops it and says how it ended.

pub mod helpers;
pub mod pod;
pub mod ssh;
pub mod stream;

use std::time::Duration;

use kcap_capture::outcome::ToolStatistics;

pub use stream::StreamError;

/// Why a source's capture failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Ssh(#[from] kcap_ssh::Error),
    #[error(transparent)]
    Kube(#[from] kcap_kube::Error),
    #[error(transparent)]
    Stream(#[from] StreamError),
}

/// How one source's capture went.
#[derive(Debug)]
pub struct SourceReport {
    pub label: String,
    /// SSH session description, or for pods the method and node.
    pub session: Option<String>,
    /// `--via` method that captured (pods only).
    pub method: Option<kcap_kube::Method>,
    pub tool: Option<String>,
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
            statistics: None,
            elapsed: Duration::ZERO,
            error: None,
        }
    }
}
