//! The loop every source shares: read the remote wrapper's stdout into the pcap
//! decoder and send packet batches to the writer, keep its stderr tail, write the
//! heartbeat every second, and on stop close stdin and drain until the tool has
//! flushed (or [`DRAIN_TIMEOUT`] passed).

use std::time::{Duration, Instant};

use kcap_capture::command::{
    CaptureCommand, HEARTBEAT, HEARTBEAT_INTERVAL, MARKER_AGENT_READ, MARKER_HEARTBEAT_LOST,
    MARKER_PROCESS_UNUSABLE, MARKER_TOOL,
};
use kcap_capture::outcome::{self, Failure, ToolStatistics};
use kcap_pcap::StreamDecoder;
use kcap_pcap::annotation::Annotator;
use tokio::sync::mpsc;

use crate::event::{Event, SourceId, SourceInfo};
use crate::stop::Stop;

/// After asking the remote side to stop, how long to wait for its last packets.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a stream's first packets wait for the wrapper's tool line on stderr
/// (stdout and stderr travel apart, and the line comes after the node-side
/// script's way line), so that `Started` can say how a pod's network was found.
const DESCRIBE_WAIT: Duration = Duration::from_secs(1);
/// The agent goes out in pieces of this size, each within [`AGENT_STALL`]. The
/// remote side reads it only after its own start-up (a helper pod's scan of the
/// node's processes for a pod's network, the filter's compilation), which takes
/// seconds on a loaded node: the limit is for a remote side that never reads,
/// not for a slow one.
const AGENT_PIECE: usize = 64 << 10;
const AGENT_STALL: Duration = Duration::from_secs(30);
/// The most stderr kept per source (the end is what matters: errors and statistics).
const STDERR_KEEP: usize = 16 << 10;

/// What a remote process says.
#[derive(Debug)]
pub enum Chunk {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// `None`: ended well; `Some(text)`: how it failed (exit code or signal).
    Exit(Option<String>),
}

/// A running remote wrapper, over SSH or the Kubernetes API.
pub trait Process {
    /// The next chunk; `Ok(None)` at the end. `Err`: the transport was lost.
    async fn next(&mut self) -> Result<Option<Chunk>, String>;
    async fn write_stdin(&mut self, bytes: &[u8]);
    async fn close_stdin(&mut self);
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The tool said why it could not capture; `command` is what it was given.
    #[error("{}", .failure.message())]
    Capture {
        failure: Failure,
        command: Box<CaptureCommand>,
    },
    #[error("the remote command's output is not a pcap stream")]
    NotACapture(#[source] kcap_pcap::Error),
    #[error("the connection was lost during the capture: {0}")]
    ConnectionLost(String),
    #[error("the remote capture ended with {0}")]
    Exited(String),
}

/// What the stream looked like when it ended.
pub struct Ended {
    /// The pcap header arrived: the capture ran (a failure after that is not a
    /// reason to try another method).
    pub started: bool,
    pub tool: Option<String>,
    /// How the node-side script found the pod's network (`netns by IP`, ...).
    pub way: Option<String>,
    pub statistics: Option<ToolStatistics>,
    /// `--process=auto` on a node where kcap's agent cannot attribute packets: why.
    pub process_unavailable: Option<String>,
    pub result: Result<(), StreamError>,
}

/// The one source a stream belongs to: where its events go and what it runs.
pub struct Feed<'a> {
    pub source: SourceId,
    pub info: &'a SourceInfo,
    pub command: &'a CaptureCommand,
    pub events: &'a mpsc::Sender<Event>,
    pub stop: &'a Stop,
}

/// Runs `process` until it ends or `stop` fires. Sends `Event::Started` (with
/// `info`) when the pcap header arrives; not `Ended` (the caller does, once,
/// whatever happened, after possible retries with other methods).
pub async fn drive<P: Process>(process: &mut P, feed: &Feed<'_>) -> Ended {
    let Feed {
        source,
        info,
        events,
        stop,
        ..
    } = *feed;
    let mut decoder = StreamDecoder::new();
    let mut annotator = Annotator::default();
    let mut started = false;
    let mut held = Held::default();
    let mut stderr = Vec::new();
    let mut process_unavailable = None;
    let mut exit: Option<Option<String>> = None;
    let mut heartbeat = tokio::time::interval(HEARTBEAT_INTERVAL);
    let mut stopping: Option<Instant> = None;
    // The agent goes first on stdin; the heartbeat waits until the wrapper says it
    // has read it (or names its tool), so no heartbeat byte is mistaken for agent.
    let mut beating = match &feed.command.agent {
        Some(agent) => {
            if !send_agent(process, agent.bytes(), stop).await {
                tracing::debug!(
                    "{}: the remote side stopped reading kcap's capture agent; ending its stdin",
                    info.label
                );
                process.close_stdin().await;
            }
            false
        }
        None => true,
    };
    let result = loop {
        let drain_deadline = stopping.map(|t| t + DRAIN_TIMEOUT);
        tokio::select! {
            output = process.next() => match output {
                Ok(Some(Chunk::Stdout(bytes))) => {
                    decoder.push_vec(bytes);
                    let mut stream = Stream { decoder: &mut decoder, annotator: &mut annotator, started: &mut started, held: &mut held };
                    if let Err(e) = forward(source, info, &stderr, &mut stream, events, false).await {
                        break Err(e);
                    }
                }
                Ok(Some(Chunk::Stderr(bytes))) => {
                    keep_tail(&mut stderr, &bytes);
                    if process_unavailable.is_none() {
                        process_unavailable = unavailable(info, &stderr);
                    }
                    beating = beating
                        || memmem(&stderr, MARKER_AGENT_READ.as_bytes())
                        || outcome::tool_used(&String::from_utf8_lossy(&stderr)).is_some();
                    if !started {
                        let mut stream = Stream { decoder: &mut decoder, annotator: &mut annotator, started: &mut started, held: &mut held };
                        if let Err(e) = forward(source, info, &stderr, &mut stream, events, false).await {
                            break Err(e);
                        }
                    }
                }
                Ok(Some(Chunk::Exit(status))) => exit = Some(status),
                Ok(None) => break Ok(()),
                Err(e) => break Err(StreamError::ConnectionLost(e)),
            },
            _ = heartbeat.tick(), if stopping.is_none() && beating => {
                // A failed write means the stream is going away; `next()` will say why.
                process.write_stdin(HEARTBEAT).await;
                if !started {
                    let mut stream = Stream { decoder: &mut decoder, annotator: &mut annotator, started: &mut started, held: &mut held };
                    if let Err(e) = forward(source, info, &stderr, &mut stream, events, false).await {
                        break Err(e);
                    }
                }
            }
            _ = stop.stopped(), if stopping.is_none() => {
                stopping = Some(Instant::now());
                // End of stdin: the remote wrapper stops the tool, which flushes, prints
                // its statistics and exits; we read to the end of the stream.
                process.close_stdin().await;
            }
            _ = sleep_until(drain_deadline), if drain_deadline.is_some() => {
                tracing::warn!("kcap: {}: warning: the remote capture did not stop in time; closing the connection", info.label);
                break Ok(());
            }
        }
    };
    // Packets still held for the tool line go out now.
    let mut stream = Stream {
        decoder: &mut decoder,
        annotator: &mut annotator,
        started: &mut started,
        held: &mut held,
    };
    let flushed = forward(source, info, &stderr, &mut stream, events, true).await;
    let result = match (result, flushed) {
        (Ok(()), Err(e)) => Err(e),
        (result, _) => result,
    };
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    tracing::debug!("{}: remote stderr:\n{stderr}", info.label);
    let tool = outcome::tool_used(&stderr).map(str::to_string);
    let way = outcome::netns_way(&stderr).map(str::to_string);
    let statistics = ToolStatistics::parse(&stderr);
    let heartbeat_lost = stopping.is_none() && stderr.contains(MARKER_HEARTBEAT_LOST);
    let result = result.and_then(|()| match exit {
        // The link stalled long enough for the remote side to give up, then came
        // back: what was sent in between is lost, say so.
        _ if heartbeat_lost => Err(StreamError::ConnectionLost(
            "kcap's heartbeat did not reach the remote side for 5 s, so it stopped the capture"
                .into(),
        )),
        _ if !started && stopping.is_none() => Err(failure(&stderr, exit.flatten(), feed.command)),
        _ if !started => Ok(()),
        Some(None) | None => Ok(()),
        // Stopped on purpose: the tool was told to end.
        Some(Some(_)) if stopping.is_some() => Ok(()),
        // The agent refused `--process` after its header: still that failure.
        Some(Some(_)) if stderr.contains(MARKER_PROCESS_UNUSABLE) => {
            Err(failure(&stderr, exit.flatten(), feed.command))
        }
        Some(Some(status)) => Err(StreamError::Exited(format!(
            "{status}: {}",
            outcome::error_text(&stderr)
        ))),
    });
    Ended {
        started,
        tool,
        way,
        statistics,
        process_unavailable,
        result,
    }
}

/// The agent's `process-unavailable` line, once it is complete on stderr: warned
/// about here, once per stream, and kept for the summary.
fn unavailable(info: &SourceInfo, stderr: &[u8]) -> Option<String> {
    let complete = &stderr[..stderr.iter().rposition(|&b| b == b'\n')? + 1];
    let why = outcome::process_unavailable(&String::from_utf8_lossy(complete))?;
    tracing::warn!(
        "kcap: {}: warning: --process=auto: cannot attribute packets to processes on this \
         node: {why}; capturing without them",
        info.label
    );
    Some(why)
}

/// Writes the agent to stdin in pieces; `false` if a piece could not be written
/// within [`AGENT_STALL`] (nothing reads stdin any more), or kcap is told to stop
/// first (a Ctrl-C during the upload ends it at once).
async fn send_agent<P: Process>(process: &mut P, bytes: &[u8], stop: &Stop) -> bool {
    for piece in bytes.chunks(AGENT_PIECE) {
        tokio::select! {
            written = tokio::time::timeout(AGENT_STALL, process.write_stdin(piece)) => {
                if written.is_err() {
                    return false;
                }
            }
            _ = stop.stopped() => return false,
        }
    }
    true
}

/// A stream's decoding state: packets decoded before `Started` was sent are held.
struct Stream<'a> {
    decoder: &'a mut StreamDecoder,
    /// The process of each packet, from the agent's annotation records.
    annotator: &'a mut Annotator,
    started: &'a mut bool,
    held: &'a mut Held,
}

#[derive(Default)]
struct Held {
    packets: Vec<kcap_pcap::Packet>,
    /// When the pcap header arrived.
    since: Option<Instant>,
}

/// Decodes what is buffered and hands complete packets to the writer, each with
/// its process when the agent's annotation records named it (those records are
/// taken out here: they are not packets). `Started`
/// goes first, once the header arrived and the wrapper's tool line is on stderr
/// (or [`DESCRIBE_WAIT`] passed, or `now`): its description then says how the
/// node-side script found the pod's network, when it said so.
async fn forward(
    source: SourceId,
    info: &SourceInfo,
    stderr: &[u8],
    stream: &mut Stream<'_>,
    events: &mpsc::Sender<Event>,
    now: bool,
) -> Result<(), StreamError> {
    let mut watermark = None;
    // A bad record ends the stream, but only after the packets before it: they
    // are delivered first (the file holds every complete packet).
    let mut failed = None;
    loop {
        match stream.decoder.next_packet() {
            Ok(Some(packet)) if packet.is_watermark() => watermark = Some(packet.ts_nanos),
            // Not a packet: which process the next one belongs to.
            Ok(Some(packet)) if stream.annotator.absorb(&packet) => {}
            Ok(Some(mut packet)) => {
                packet.comment = stream.annotator.take_for_packet();
                stream.held.packets.push(packet);
            }
            Ok(None) => break,
            Err(e) => {
                failed = Some(StreamError::NotACapture(e));
                break;
            }
        }
    }
    let now = now || failed.is_some();
    let done = |failed: Option<StreamError>| failed.map_or(Ok(()), Err);
    if !*stream.started {
        let Some(header) = stream.decoder.header() else {
            return done(failed);
        };
        let since = *stream.held.since.get_or_insert_with(Instant::now);
        let stderr = String::from_utf8_lossy(stderr);
        if !(now || stderr.contains(MARKER_TOOL) || since.elapsed() >= DESCRIBE_WAIT) {
            return Ok(());
        }
        *stream.started = true;
        let header = header.clone();
        let info = match outcome::netns_way(&stderr) {
            Some(way) => crate::plan::found_by(info, way),
            None => info.clone(),
        };
        let _ = events
            .send(Event::Started {
                source,
                header,
                info,
            })
            .await;
    }
    if !stream.held.packets.is_empty() {
        let packets = std::mem::take(&mut stream.held.packets);
        let _ = events.send(Event::Packets { source, packets }).await;
    }
    // After the packets it follows: it speaks for them too.
    if let Some(ts_nanos) = watermark {
        let _ = events.send(Event::Watermark { source, ts_nanos }).await;
    }
    done(failed)
}

fn failure(stderr: &str, exit: Option<String>, command: &CaptureCommand) -> StreamError {
    let failure = outcome::classify(stderr);
    match &failure {
        Failure::Other { message } if message.is_empty() => StreamError::Exited(match exit {
            Some(s) => format!("{s} before sending any data"),
            None => "no exit status before sending any data".into(),
        }),
        _ => StreamError::Capture {
            failure,
            command: Box::new(command.clone()),
        },
    }
}

fn memmem(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
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

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
