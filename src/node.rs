//! Capturing one node over SSH: connect, start the remote wrapper, decode the pcap
//! stream into batches for the writer, keep the heartbeat going, and stop cleanly.

use std::time::{Duration, Instant};

use kcap_capture::command::{CaptureCommand, HEARTBEAT, HEARTBEAT_INTERVAL};
use kcap_capture::outcome::{self, Failure, ToolStatistics};
use kcap_pcap::StreamDecoder;
use kcap_ssh::{ExitStatus, Output};
use tokio::sync::mpsc;

use crate::config::NodeTarget;
use crate::event::{Event, SourceId};
use crate::stop::Stop;

/// After asking the remote side to stop, how long to wait for its last packets.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// The most stderr kept per node (the end is what matters: errors and statistics).
const STDERR_KEEP: usize = 16 << 10;

/// Why a node's capture failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Ssh(#[from] kcap_ssh::Error),
    #[error("{}", .0.message())]
    Capture(Failure),
    #[error("the remote command's output is not a pcap stream")]
    NotACapture(#[source] kcap_pcap::Error),
    #[error("the connection was lost during the capture")]
    ConnectionLost(#[source] kcap_ssh::Error),
    #[error("the remote capture ended with {0}")]
    Exited(String),
}

/// How one node's capture went.
#[derive(Debug)]
pub struct NodeReport {
    pub label: String,
    pub session: Option<String>,
    pub tool: Option<String>,
    pub statistics: Option<ToolStatistics>,
    pub elapsed: Duration,
    pub error: Option<NodeError>,
}

/// Captures `target` until the remote tool ends or `stop` fires. Always sends
/// `Event::Ended` for this source, whatever happens.
pub async fn capture(
    source: SourceId,
    target: NodeTarget,
    command: CaptureCommand,
    events: mpsc::Sender<Event>,
    stop: Stop,
) -> NodeReport {
    let started = Instant::now();
    let mut report = NodeReport {
        label: target.label.clone(),
        session: None,
        tool: None,
        statistics: None,
        elapsed: Duration::ZERO,
        error: None,
    };
    report.error = run(source, &target, &command, &events, &stop, &mut report)
        .await
        .err();
    report.elapsed = started.elapsed();
    let statistics = report.statistics;
    let _ = events.send(Event::Ended { source, statistics }).await;
    report
}

async fn run(
    source: SourceId,
    target: &NodeTarget,
    command: &CaptureCommand,
    events: &mpsc::Sender<Event>,
    stop: &Stop,
    report: &mut NodeReport,
) -> Result<(), NodeError> {
    let session = tokio::select! {
        session = kcap_ssh::connect(&target.connect) => session?,
        // Stopped while still connecting: nothing remote is running yet.
        _ = stop.stopped() => return Ok(()),
    };
    report.session = Some(session.describe());
    tracing::info!("kcap: {}: connected ({})", target.label, session.describe());
    let line = command
        .to_shell()
        .expect("validated with the configuration");
    let mut process = session.exec(&line).await?;

    let mut decoder = StreamDecoder::new();
    let mut started = false;
    let mut stderr = Vec::new();
    let mut exit = None;
    let mut heartbeat = tokio::time::interval(HEARTBEAT_INTERVAL);
    let mut stopping: Option<Instant> = None;
    let result = loop {
        let drain_deadline = stopping.map(|t| t + DRAIN_TIMEOUT);
        tokio::select! {
            output = process.next() => match output {
                Ok(Some(Output::Stdout(bytes))) => {
                    decoder.push(&bytes);
                    if let Err(e) = forward(source, &mut decoder, &mut started, events).await {
                        break Err(e);
                    }
                }
                Ok(Some(Output::Stderr(bytes))) => keep_tail(&mut stderr, &bytes),
                Ok(Some(Output::Exit(status))) => exit = Some(status),
                Ok(None) => break Ok(()),
                Err(e) => break Err(NodeError::ConnectionLost(e)),
            },
            _ = heartbeat.tick(), if stopping.is_none() => {
                // A failed write means the channel is going away; `next()` will say why.
                let _ = process.write_stdin(HEARTBEAT).await;
            }
            _ = stop.stopped(), if stopping.is_none() => {
                stopping = Some(Instant::now());
                // End of stdin: the remote wrapper stops the tool, which flushes, prints
                // its statistics and exits; we read to the end of the stream.
                let _ = process.close_stdin().await;
            }
            _ = sleep_until(drain_deadline), if drain_deadline.is_some() => {
                tracing::warn!("kcap: {}: warning: the remote capture did not stop in time; closing the connection", target.label);
                break Ok(());
            }
        }
    };
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    report.tool = outcome::tool_used(&stderr).map(str::to_string);
    report.statistics = ToolStatistics::parse(&stderr);
    tracing::debug!("{}: remote stderr:\n{stderr}", target.label);
    session.disconnect().await;
    result?;
    match exit {
        _ if !started => Err(failure(&stderr, exit)),
        Some(ExitStatus::Code(0)) | None => Ok(()),
        // Stopped on purpose: the tool was told to end.
        Some(_) if stopping.is_some() => Ok(()),
        Some(status) => Err(NodeError::Exited(format!(
            "{status:?}: {}",
            outcome::error_text(&stderr)
        ))),
    }
}

/// Decodes what is buffered and hands complete packets to the writer.
async fn forward(
    source: SourceId,
    decoder: &mut StreamDecoder,
    started: &mut bool,
    events: &mpsc::Sender<Event>,
) -> Result<(), NodeError> {
    let mut packets = Vec::new();
    loop {
        match decoder.next_packet() {
            Ok(Some(packet)) => packets.push(packet),
            Ok(None) => break,
            Err(e) => return Err(NodeError::NotACapture(e)),
        }
    }
    if !*started && let Some(header) = decoder.header() {
        *started = true;
        let header = header.clone();
        let _ = events.send(Event::Started { source, header }).await;
    }
    if !packets.is_empty() {
        let _ = events.send(Event::Packets { source, packets }).await;
    }
    Ok(())
}

fn failure(stderr: &str, exit: Option<ExitStatus>) -> NodeError {
    let failure = outcome::classify(stderr);
    match (&failure, exit) {
        (Failure::Other { message }, status) if message.is_empty() => {
            NodeError::Exited(match status {
                Some(s) => format!("{s:?} before sending any data"),
                None => "no exit status before sending any data".into(),
            })
        }
        _ => NodeError::Capture(failure),
    }
}

fn keep_tail(buffer: &mut Vec<u8>, bytes: &[u8]) {
    buffer.extend_from_slice(bytes);
    if buffer.len() > STDERR_KEEP {
        buffer.drain(..buffer.len() - STDERR_KEEP);
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
