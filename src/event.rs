//! What capture sources tell the writer: the packet stream of every node, in batches,
//! on one bounded channel (the bound is what keeps memory flat when the disk or the
//! reader of stdout is slower than the network).

use kcap_capture::outcome::ToolStatistics;
use kcap_pcap::{Packet, StreamHeader};

use crate::output::SourceInfo;

/// Index of a source in the order the targets were given.
pub type SourceId = usize;

#[derive(Debug)]
pub enum Event {
    /// A source joined during the capture (`--follow`); its id is the next one.
    Added { source: SourceId, info: SourceInfo },
    /// The remote stream's pcap header arrived: link type and snaplen are known,
    /// and so is how the source is described (e.g. the capture method of a pod).
    Started {
        source: SourceId,
        header: StreamHeader,
        info: SourceInfo,
    },
    /// Packets decoded from one chunk of the stream, in arrival order.
    Packets {
        source: SourceId,
        packets: Vec<Packet>,
    },
    /// The source will send nothing more; `statistics` are the remote tool's own
    /// counters (received, dropped) when it printed them.
    Ended {
        source: SourceId,
        statistics: Option<ToolStatistics>,
    },
    /// Time passes: lets the writer release packets held for a quiet source and flush.
    Tick,
}

/// Batches in flight per channel. A batch is one SSH data message (at most ~32 KiB of
/// packets), so the channel holds a few MiB at most.
pub const CHANNEL_BATCHES: usize = 128;
