//! The writer: merges every source's packets in time order and writes them as pcap or
//! pcapng to a file or stdout. Runs on its own thread; bounded memory (the merger's
//! budget plus the channel) however long the capture runs.

use std::collections::HashSet;
use std::fs::File;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use kcap_capture::outcome::ToolStatistics;
use kcap_pcap::{
    InterfaceDescription, InterfaceStatistics, LinkType, Merger, Packet, PcapWriter, PcapngWriter,
    sll,
};
use tokio::sync::mpsc;

use crate::config::{Format, Output, OutputDestination};
use crate::event::{Event, SourceId};
use crate::stop::{Stop, StopReason};

/// How long a packet may wait for a quiet source before it is written anyway.
const MERGE_HOLD: Duration = Duration::from_secs(1);
/// Packets held for ordering, in bytes, before the oldest is written regardless.
const MERGE_BUDGET: usize = 8 << 20;
/// A file is flushed at least this often, so a killed kcap loses at most this much.
const FILE_FLUSH_INTERVAL: Duration = Duration::from_millis(500);

/// Writing the output failed (disk full, closed pipe, ...). Exit code 10.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot write {target}")]
    Io {
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{label} captures link type {theirs} but the pcap file already holds {ours}: \
         pcap holds one link type; use --format pcapng (or the same --iface on every node)"
    )]
    LinkTypeMismatch {
        label: String,
        theirs: &'static str,
        ours: &'static str,
    },
}

/// What one source needs in the file: names for its interface and the comment of
/// each of its packets (pcapng only; `None` with --no-annotate).
#[derive(Debug, Clone)]
pub struct SourceInfo {
    pub label: String,
    pub interface_name: String,
    pub description: String,
    pub comment: Option<String>,
}

/// Per-source counts of what reached the file.
#[derive(Debug, Clone, Default)]
pub struct Written {
    pub packets: u64,
    pub bytes: u64,
    /// Set when this source's packets could not go into the file (pcap link type).
    pub refused: Option<String>,
}

pub struct WriterReport {
    pub per_source: Vec<Written>,
    pub error: Option<OutputError>,
}

enum Sink {
    /// pcap: the header needs a link type, known only when the first stream starts.
    Pcap {
        file: Option<File>,
        writer: Option<PcapWriter<File>>,
    },
    Pcapng {
        writer: PcapngWriter<File>,
        interfaces: Vec<Option<u32>>,
    },
}

/// Opens the destination now, so a bad path fails before anything connects.
pub fn open(output: &Output) -> Result<File, OutputError> {
    match &output.destination {
        OutputDestination::Stdout => std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map(File::from)
            .map_err(|source| OutputError::Io {
                target: "stdout".into(),
                source,
            }),
        OutputDestination::File(path) => File::create(path).map_err(|source| OutputError::Io {
            target: path.display().to_string(),
            source,
        }),
    }
}

pub fn target_name(output: &Output) -> String {
    match &output.destination {
        OutputDestination::Stdout => "stdout".into(),
        OutputDestination::File(p) => p.display().to_string(),
    }
}

struct Writer {
    sink: Sink,
    target: String,
    live: bool,
    sources: Vec<SourceInfo>,
    links: Vec<Option<(LinkType, u32)>>,
    written: Vec<Written>,
    remaining: Option<u64>,
    last_flush: Instant,
    /// Sources that ended, with the remote tool's counters, for pcapng statistics
    /// blocks written once their last packet is out.
    ended: Vec<(SourceId, Option<ToolStatistics>)>,
    first_ts: Vec<Option<u64>>,
    last_ts: Vec<Option<u64>>,
    /// Rewrite LINUX_SLL2 streams as LINUX_SLL (`--linktype LINUX_SLL`).
    cooked_v1: bool,
    /// Per source: its stream is being rewritten from LINUX_SLL2.
    rewrite: Vec<bool>,
    /// Initial sources that have neither started capturing nor ended: when none is
    /// left, `--duration` starts counting (see [`crate::stop`]).
    starting: HashSet<SourceId>,
}

/// Runs until every sender is gone. `count` stops the capture after that many packets.
pub fn run(
    output: &Output,
    file: File,
    sources: Vec<SourceInfo>,
    mut events: mpsc::Receiver<Event>,
    stop: Stop,
    count: Option<u64>,
) -> WriterReport {
    let target = target_name(output);
    let sink = match output.format {
        Format::Pcap => Ok(Sink::Pcap {
            file: Some(file),
            writer: None,
        }),
        Format::Pcapng => PcapngWriter::new(file, &format!("kcap {}", env!("CARGO_PKG_VERSION")))
            .map(|writer| Sink::Pcapng {
                writer,
                interfaces: vec![None; sources.len()],
            })
            .map_err(|e| io_error(&target, e)),
    };
    let n = sources.len();
    let mut merger = Merger::new(MERGE_HOLD, MERGE_BUDGET);
    for _ in 0..n {
        merger.add_source();
    }
    let mut writer = match sink {
        Ok(sink) => Writer {
            sink,
            target,
            live: output.destination == OutputDestination::Stdout,
            sources,
            links: vec![None; n],
            written: vec![Written::default(); n],
            remaining: count,
            last_flush: Instant::now(),
            ended: Vec::new(),
            first_ts: vec![None; n],
            last_ts: vec![None; n],
            cooked_v1: output.cooked_v1,
            rewrite: vec![false; n],
            starting: (0..n).collect(),
        },
        Err(error) => {
            stop.stop(StopReason::OutputFailed);
            drain(&mut events);
            return WriterReport {
                per_source: vec![Written::default(); n],
                error: Some(error),
            };
        }
    };
    if n == 0 {
        stop.all_capturing();
    }
    let result = writer.pump(&mut merger, &mut events, &stop);
    let result = result.and_then(|()| writer.finish());
    if result.is_err() {
        stop.stop(StopReason::OutputFailed);
        drain(&mut events);
    }
    WriterReport {
        per_source: writer.written,
        error: result.err(),
    }
}

/// After a failure, keep receiving so sources are not blocked while they shut down.
fn drain(events: &mut mpsc::Receiver<Event>) {
    while events.blocking_recv().is_some() {}
}

fn io_error(target: &str, error: kcap_pcap::Error) -> OutputError {
    let source = match error {
        kcap_pcap::Error::Io { source, .. } => source,
        other => std::io::Error::other(other.to_string()),
    };
    OutputError::Io {
        target: target.to_string(),
        source,
    }
}

impl Writer {
    fn pump(
        &mut self,
        merger: &mut Merger,
        events: &mut mpsc::Receiver<Event>,
        stop: &Stop,
    ) -> Result<(), OutputError> {
        while let Some(event) = events.blocking_recv() {
            self.take(event, merger, stop)?;
            // Take whatever else is already queued before writing, so the merger sees
            // all sources' packets; then write what may go out now.
            while let Ok(event) = events.try_recv() {
                self.take(event, merger, stop)?;
            }
            let now = Instant::now();
            while let Some((source, packet)) = merger.pop(now) {
                self.write(source, &packet, stop)?;
            }
            if self.live || self.last_flush.elapsed() >= FILE_FLUSH_INTERVAL {
                self.flush()?;
            }
        }
        while let Some((source, packet)) = merger.pop_any() {
            self.write(source, &packet, stop)?;
        }
        Ok(())
    }

    fn take(&mut self, event: Event, merger: &mut Merger, stop: &Stop) -> Result<(), OutputError> {
        if let Event::Started { source, .. } | Event::Ended { source, .. } = event
            && self.starting.remove(&source)
            && self.starting.is_empty()
        {
            stop.all_capturing();
        }
        match event {
            Event::Added { source, info } => {
                // Sources are numbered in the order they were added.
                debug_assert_eq!(source, self.sources.len());
                let id = merger.add_source();
                debug_assert_eq!(id, source);
                self.sources.push(info);
                self.links.push(None);
                self.written.push(Written::default());
                self.first_ts.push(None);
                self.last_ts.push(None);
                self.rewrite.push(false);
                if let Sink::Pcapng { interfaces, .. } = &mut self.sink {
                    interfaces.push(None);
                }
            }
            Event::Started {
                source,
                header,
                info,
            } => {
                self.sources[source] = info;
                let mut link = header.link_type;
                if self.cooked_v1 && link == LinkType::LINUX_SLL2 {
                    self.rewrite[source] = true;
                    link = LinkType::LINUX_SLL;
                }
                self.start(source, link, header.snaplen)?
            }
            Event::Packets { source, packets } => {
                if self.written[source].refused.is_none() {
                    let now = Instant::now();
                    for mut packet in packets {
                        if self.rewrite[source] {
                            sll::sll2_to_sll(&mut packet);
                        }
                        merger.push(source, packet, now);
                    }
                }
            }
            Event::Ended { source, statistics } => {
                merger.close_source(source);
                self.ended.push((source, statistics));
            }
            Event::Tick => {}
        }
        Ok(())
    }

    fn start(&mut self, source: SourceId, link: LinkType, snaplen: u32) -> Result<(), OutputError> {
        self.links[source] = Some((link, snaplen));
        match &mut self.sink {
            Sink::Pcap { file, writer } => {
                if let Some(f) = file.take() {
                    *writer = Some(
                        PcapWriter::new(f, link, snaplen).map_err(|e| io_error(&self.target, e))?,
                    );
                } else if let Some(ours) = self
                    .links
                    .iter()
                    .flatten()
                    .map(|l| l.0)
                    .find(|l| *l != link)
                {
                    self.written[source].refused = Some(
                        OutputError::LinkTypeMismatch {
                            label: self.sources[source].label.clone(),
                            theirs: link.name(),
                            ours: ours.name(),
                        }
                        .to_string(),
                    );
                }
            }
            Sink::Pcapng { writer, interfaces } => {
                let info = &self.sources[source];
                let id = writer
                    .add_interface(&InterfaceDescription {
                        link_type: link,
                        snaplen,
                        name: info.interface_name.clone(),
                        description: Some(info.description.clone()),
                    })
                    .map_err(|e| io_error(&self.target, e))?;
                interfaces[source] = Some(id);
            }
        }
        Ok(())
    }

    fn write(&mut self, source: SourceId, packet: &Packet, stop: &Stop) -> Result<(), OutputError> {
        if self.remaining == Some(0) {
            return Ok(());
        }
        let result = match &mut self.sink {
            Sink::Pcap {
                writer: Some(w), ..
            } => w.write_packet(packet),
            Sink::Pcap { writer: None, .. } => return Ok(()),
            Sink::Pcapng { writer, interfaces } => match interfaces[source] {
                Some(id) => {
                    writer.write_packet(id, packet, self.sources[source].comment.as_deref())
                }
                None => return Ok(()),
            },
        };
        result.map_err(|e| io_error(&self.target, e))?;
        self.first_ts[source].get_or_insert(packet.ts_nanos);
        self.last_ts[source] = Some(packet.ts_nanos);
        let written = &mut self.written[source];
        written.packets += 1;
        written.bytes += packet.data.len() as u64;
        if let Some(remaining) = &mut self.remaining {
            *remaining -= 1;
            if *remaining == 0 {
                stop.stop(StopReason::Count);
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), OutputError> {
        self.last_flush = Instant::now();
        let result = match &mut self.sink {
            Sink::Pcap {
                writer: Some(w), ..
            } => w.flush(),
            Sink::Pcap { writer: None, .. } => Ok(()),
            Sink::Pcapng { writer, .. } => writer.flush(),
        };
        result.map_err(|e| io_error(&self.target, e))
    }

    fn finish(&mut self) -> Result<(), OutputError> {
        // A pcap file whose sources never started still gets a header, so it opens.
        if let Sink::Pcap { file, writer } = &mut self.sink
            && let Some(f) = file.take()
        {
            *writer = Some(
                PcapWriter::new(f, LinkType::ETHERNET, kcap_capture::command::FULL_SNAPLEN)
                    .map_err(|e| io_error(&self.target, e))?,
            );
        }
        self.write_statistics()?;
        self.flush()
    }

    /// pcapng only: an Interface Statistics Block per node with what its capture tool
    /// reported (packets received by the filter, dropped by the kernel), so Wireshark's
    /// Capture File Properties shows the drops.
    fn write_statistics(&mut self) -> Result<(), OutputError> {
        let Sink::Pcapng { writer, interfaces } = &mut self.sink else {
            return Ok(());
        };
        for (source, statistics) in std::mem::take(&mut self.ended) {
            let (Some(id), Some(stats)) = (interfaces[source], statistics) else {
                continue;
            };
            let end = self.last_ts[source].unwrap_or_else(now_nanos);
            let isb = InterfaceStatistics {
                timestamp_nanos: end,
                start_nanos: self.first_ts[source],
                end_nanos: Some(end),
                received: stats.received.or(stats.captured),
                dropped: stats.dropped_by_kernel,
            };
            writer
                .write_statistics(id, &isb)
                .map_err(|e| io_error(&self.target, e))?;
        }
        Ok(())
    }
}

/// The path of a file output, for messages; `None` for stdout.
pub fn file_path(output: &Output) -> Option<&std::path::Path> {
    match &output.destination {
        OutputDestination::File(p) => Some(p),
        OutputDestination::Stdout => None,
    }
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
