//! Capturing one node over SSH: connect, start the remote wrapper and hand the
//! stream to [`super::stream::drive`]. Also runs a capture inside a pod's network
//! namespace from its node (`--via ssh`).

use std::time::Instant;

use kcap_ssh::{ExitStatus, Output, RemoteProcess, Session};
use tokio::sync::mpsc;

use super::stream::{self, Chunk, Process};
use super::{SourceError, SourceReport};
use crate::config::NodeTarget;
use crate::event::{Event, SourceId};
use crate::output::SourceInfo;
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

/// Captures `target` until the remote tool ends or `stop` fires. Always sends
/// `Event::Ended` for this source, whatever happens.
pub async fn capture(
    source: SourceId,
    target: NodeTarget,
    info: SourceInfo,
    line: String,
    events: mpsc::Sender<Event>,
    stop: Stop,
) -> SourceReport {
    let started = Instant::now();
    let mut report = SourceReport::new(target.label.clone());
    report.error = run(source, &target, &info, &line, &events, &stop, &mut report)
        .await
        .err();
    report.elapsed = started.elapsed();
    let statistics = report.statistics;
    let _ = events.send(Event::Ended { source, statistics }).await;
    report
}

/// Connects, or returns `None` when stopped first.
pub async fn connect(target: &NodeTarget, stop: &Stop) -> Result<Option<Session>, SourceError> {
    tokio::select! {
        session = kcap_ssh::connect(&target.connect) => Ok(Some(session?)),
        // Stopped while still connecting: nothing remote is running yet.
        _ = stop.stopped() => Ok(None),
    }
}

/// Runs `line` on the node and streams it. Used by node targets and `--via ssh`.
pub async fn run(
    source: SourceId,
    target: &NodeTarget,
    info: &SourceInfo,
    line: &str,
    events: &mpsc::Sender<Event>,
    stop: &Stop,
    report: &mut SourceReport,
) -> Result<(), SourceError> {
    let Some(session) = connect(target, stop).await? else {
        return Ok(());
    };
    report.session = Some(session.describe());
    tracing::info!("kcap: {}: connected ({})", target.label, session.describe());
    let mut process = session.exec(line).await?;
    let ended = stream::drive(&mut process, source, info, events, stop).await;
    report.tool = ended.tool;
    report.statistics = ended.statistics;
    session.disconnect().await;
    Ok(ended.result?)
}
