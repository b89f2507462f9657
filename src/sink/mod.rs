//! Sinks: what consumes the merged packet stream. The pipeline ([`crate::pipeline`])
//! hands every sink the same events in the same time order; a sink sees nothing
//! else (no transport, no channel, no stop logic), so adding one (a text printer,
//! a status line, a decoder) touches only this folder and the place that builds
//! the list of sinks.

pub mod file;
pub mod flight;
pub mod lines;
pub mod naming;
pub mod output;
pub mod records;
pub mod rotate;
pub mod serve;
pub mod status;
pub mod viewer;

use kcap_capture::outcome::ToolStatistics;
use kcap_pcap::{LinkType, Packet};

use crate::event::{SourceId, SourceInfo};
use crate::names::NameTable;

/// One source's stream, as the pipeline delivers it to sinks.
#[derive(Debug, Clone, Copy)]
pub struct Interface<'a> {
    pub source: SourceId,
    pub info: &'a SourceInfo,
    /// After any rewrite the pipeline applies (`--linktype LINUX_SLL`).
    pub link_type: LinkType,
    pub snaplen: u32,
}

impl Interface<'_> {
    /// An owned copy, for sinks that write the interface again later (every rotated
    /// file, the flight recorder's file at the end).
    pub fn remember(&self) -> Remembered {
        Remembered {
            source: self.source,
            info: self.info.clone(),
            link_type: self.link_type,
            snaplen: self.snaplen,
        }
    }
}

/// An [`Interface`] kept by a sink.
#[derive(Debug, Clone)]
pub struct Remembered {
    pub source: SourceId,
    pub info: SourceInfo,
    pub link_type: LinkType,
    pub snaplen: u32,
}

impl Remembered {
    pub fn interface(&self) -> Interface<'_> {
        Interface {
            source: self.source,
            info: &self.info,
            link_type: self.link_type,
            snaplen: self.snaplen,
        }
    }
}

/// Per source, its link type and capture point once it started: what the sinks
/// that decode packets (lines, records) need of each.
#[derive(Debug, Default)]
pub struct Points(Vec<Option<(LinkType, String)>>);

impl Points {
    pub fn started(&mut self, interface: Interface<'_>) {
        if self.0.len() <= interface.source {
            self.0.resize(interface.source + 1, None);
        }
        self.0[interface.source] = Some((interface.link_type, interface.info.point.clone()));
    }

    /// `None` for a source that has not started.
    pub fn get(&self, source: SourceId) -> Option<(LinkType, &str)> {
        let (link, point) = self.0.get(source)?.as_ref()?;
        Some((*link, point.as_str()))
    }
}

/// What one source amounted to, delivered once at the end, after its last packet.
#[derive(Debug, Clone, Copy)]
pub struct SourceEnd<'a> {
    pub source: SourceId,
    /// The remote tool's own counters, when it printed them.
    pub statistics: Option<&'a ToolStatistics>,
    /// Time of the first and last packet delivered, in ns since the epoch.
    pub first_ts: Option<u64>,
    pub last_ts: Option<u64>,
}

/// What [`Sink::source_changed`] tells.
#[derive(Debug, Clone, Copy)]
pub enum SourceChange<'a> {
    /// A source joined (`--follow`); it has not started capturing yet.
    Added {
        source: SourceId,
        info: &'a SourceInfo,
    },
    /// A source will send nothing more.
    Ended {
        source: SourceId,
        statistics: Option<&'a ToolStatistics>,
    },
}

/// Why a sink could not go on.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// This source's packets cannot go into this sink (a pcap file holds one link
    /// type); the other sources go on. Exit code 2.
    #[error(
        "{label} captures link type {theirs} but the pcap file already holds {ours}: \
         pcap holds one link type; use --format pcapng (or the same --iface on every node)"
    )]
    LinkTypeMismatch {
        label: String,
        theirs: &'static str,
        ours: &'static str,
    },
    /// Writing failed (disk full, closed pipe, ...): the capture stops. Exit code 10.
    #[error("cannot write {target}")]
    Write {
        target: String,
        #[source]
        source: std::io::Error,
    },
}

impl SinkError {
    /// Only this source is affected; the sink and the capture go on.
    pub fn is_per_source(&self) -> bool {
        matches!(self, SinkError::LinkTypeMismatch { .. })
    }
}

/// A consumer of the merged stream. Calls come in this order: `interface` for a
/// source before any of its packets, `packet` in time order across sources
/// (with the packet's own comment when it has one: its process text followed by
/// the source's comment lines it lacks, or a file's comment read with `-r`; else
/// the source's comment applies),
/// `flush` whenever output should reach its reader, `source_end` for every
/// source at the end, then `finish` once. `names` comes first with the names
/// known at the start, and again with new ones only (a pod that joined), always
/// before the packets that need them.
pub trait Sink: Send {
    fn names(&mut self, names: &NameTable) -> Result<(), SinkError>;
    fn interface(&mut self, interface: Interface<'_>) -> Result<(), SinkError>;
    fn packet(
        &mut self,
        source: SourceId,
        packet: &Packet,
        comment: Option<&str>,
    ) -> Result<(), SinkError>;
    fn flush(&mut self) -> Result<(), SinkError>;
    fn source_end(&mut self, end: SourceEnd<'_>) -> Result<(), SinkError>;
    fn finish(&mut self) -> Result<(), SinkError>;
    /// A source joined or ended, told as it happens (the live status area);
    /// `source_end` still comes for every source at the end.
    fn source_changed(&mut self, _change: SourceChange<'_>) {}
    /// The sink takes no more packets (`--max-size` reached): asked after every
    /// packet; the capture then stops.
    fn full(&self) -> bool {
        false
    }
}

/// A sink that is never given names: the capture file with `--no-annotate`
/// carries no Kubernetes names, as it carries no pod comments.
pub struct Unnamed(pub Box<dyn Sink>);

impl Sink for Unnamed {
    fn names(&mut self, _: &NameTable) -> Result<(), SinkError> {
        Ok(())
    }
    fn interface(&mut self, interface: Interface<'_>) -> Result<(), SinkError> {
        self.0.interface(interface)
    }
    fn packet(
        &mut self,
        source: SourceId,
        packet: &Packet,
        comment: Option<&str>,
    ) -> Result<(), SinkError> {
        self.0.packet(source, packet, comment)
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        self.0.flush()
    }
    fn source_end(&mut self, end: SourceEnd<'_>) -> Result<(), SinkError> {
        self.0.source_end(end)
    }
    fn finish(&mut self) -> Result<(), SinkError> {
        self.0.finish()
    }
    fn source_changed(&mut self, change: SourceChange<'_>) {
        self.0.source_changed(change)
    }
    fn full(&self) -> bool {
        self.0.full()
    }
}

/// What the capture file output wrote, for the summary (rotated files and the
/// flight recorder; a plain file is described by the pipeline's counts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileReport {
    /// Packets in the files, all together.
    pub packets: u64,
    /// Bytes in the files, all together (deleted ring files included).
    pub bytes: u64,
    /// Files written, deleted ones included.
    pub files: u64,
    /// The oldest file still there (after `-W` deleted the older ones) and the newest.
    pub first: Option<std::path::PathBuf>,
    pub last: Option<std::path::PathBuf>,
    /// Files deleted by `-W`.
    pub deleted: u64,
    /// Flight recorder: packets older than the window, discarded.
    pub aged_out: u64,
    /// Flight recorder: packets dropped to stay within its memory.
    pub over_memory: u64,
}

/// Filled in by the sink, read by the report once the pipeline has ended.
pub type FileReportHandle = std::sync::Arc<std::sync::Mutex<FileReport>>;
