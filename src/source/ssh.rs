//! Capturing over SSH: connect, start the remote wrapper and hand the stream to
//! [`super::stream::drive`]. Serves SSH nodes and `--via ssh` (a pod's network
//! namespace entered from its node).

use kcap_ssh::{ExitStatus, Output, RemoteProcess, Session};

use super::outcome::{SourceError, SourceReport};
use super::stream::{self, Chunk, Feed, Process};
use crate::config::NodeTarget;
use crate::stop::Stop;

impl Process for RemoteProcess {
    async fn next(&mut self) -> Result<Option<Chunk>, String> {
        match RemoteProcess::next(self).await {
            Ok(Some(Output::Stdout(b))) => Ok(Some(Chunk::Stdout(b))),
            Ok(Some(Output::Stderr(b))) => Ok(Some(Chunk::Stderr(b))),
            Ok(Some(Output::Exit(ExitStatus::Code(0)))) => Ok(Some(Chunk::Exit(None))),
            Ok(Some(Output::Exit(status))) => Ok(Some(Chunk::Exit(Some(format!("{status:?}"))))),
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn write_stdin(&mut self, bytes: &[u8]) {
        let _ = RemoteProcess::write_stdin(self, bytes).await;
    }

    async fn close_stdin(&mut self) {
        let _ = RemoteProcess::close_stdin(self).await;
    }
}

/// Connects, or returns `None` when stopped first.
async fn connect(target: &NodeTarget, stop: &Stop) -> Result<Option<Session>, SourceError> {
    tokio::select! {
        session = kcap_ssh::connect(&target.connect) => Ok(Some(session?)),
        // Stopped while still connecting: nothing remote is running yet.
        _ = stop.stopped() => Ok(None),
    }
}

/// Runs `line` on `target` and streams it until it ends or the feed's stop fires.
pub async fn capture(
    target: &NodeTarget,
    line: &str,
    feed: &Feed<'_>,
    report: &mut SourceReport,
) -> Result<(), SourceError> {
    let Some(session) = connect(target, feed.stop).await? else {
        return Ok(());
    };
    report.session = Some(session.describe());
    tracing::info!("kcap: {}: connected ({})", target.label, session.describe());
    let mut process = session.exec(line).await?;
    let ended = stream::drive(&mut process, feed).await;
    report.record(&ended);
    session.disconnect().await;
    Ok(ended.result?)
}

/// Runs `line` on `target` to its end and returns its stdout (`-D`: a listing,
/// not a capture; see [`crate::list`]).
pub async fn run_to_end(target: &NodeTarget, line: &str) -> Result<String, SourceError> {
    let session = kcap_ssh::connect(&target.connect).await?;
    tracing::debug!("kcap: {}: connected ({})", target.label, session.describe());
    let mut process = session.exec(line).await?;
    let listed = crate::list::collect(&mut process).await;
    session.disconnect().await;
    listed
}
