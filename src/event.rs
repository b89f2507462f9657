//! What capture sources tell the pipeline: each source's packet stream, in batches,
//! on one bounded channel (the bound is what keeps memory flat when the disk or the
//! reader of stdout is slower than the network), and how each source is described.

use kcap_capture::outcome::ToolStatistics;
use kcap_pcap::{Packet, StreamHeader};

/// Index of a source: the targets in the order given, then pods that joined later.
pub type SourceId = usize;

/// How one source appears in the output: the name of its interface, a description,
/// and the comment of each of its packets (pcapng only; `None` with --no-annotate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// `node-a`, `prod/web-0`: the name in messages and the summary.
    pub label: String,
    /// Where the packets were seen, at the start of `--print` lines: `prod/web-0`,
    /// `node-a:eth0`.
    pub point: String,
    pub interface_name: String,
    pub description: String,
    pub comment: Option<String>,
    /// The source's own addresses and whose they are (a pod's IPs), for the
    /// name tables of sinks: a pod that joins with `--follow` is named too.
    pub names: Vec<(std::net::IpAddr, kcap_kube::names::AddressName)>,
}

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
    /// The source will send nothing older than `ts_nanos` (kcap's capture agent
    /// says so when idle): the merge need not wait for it up to that time.
    Watermark { source: SourceId, ts_nanos: u64 },
    /// The source will send nothing more; `statistics` are the remote tool's own
    /// counters (received, dropped) when it printed them.
    Ended {
        source: SourceId,
        statistics: Option<ToolStatistics>,
    },
    /// Time passes: lets the pipeline release packets held for a quiet source and flush.
    Tick,
}

/// Batches in flight per channel. A batch is one SSH data message (at most ~32 KiB of
/// packets), so the channel holds a few MiB at most.
pub const CHANNEL_BATCHES: usize = 128;
