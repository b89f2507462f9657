//! The one error type of this crate.

/// Everything that can go wrong while decoding, reading or writing captures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The underlying reader or writer failed.
    #[error("I/O error while {context}")]
    Io {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A capture file could not be opened.
    #[error("cannot open {path}")]
    Open {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The bytes do not start with any pcap magic number; `start` shows them
    /// escaped so that e.g. a login banner on stdout is recognisable.
    #[error("not a pcap stream: it starts with \"{start}\"")]
    NotPcap { start: String },
    /// A pcapng stream arrived where classic pcap was expected.
    #[error("stream is pcapng, but classic pcap was expected (as written by `tcpdump -w -`)")]
    PcapngStream,
    /// A pcap or pcapng header with a version we cannot read.
    #[error("unsupported {format} version {major}.{minor}")]
    UnsupportedVersion {
        format: &'static str,
        major: u16,
        minor: u16,
    },
    /// A record claims more captured bytes than is plausible: the stream is corrupt.
    #[error("corrupt stream: record of {caplen} captured bytes exceeds the limit of {limit}")]
    RecordTooLarge { caplen: u64, limit: u64 },
    /// The input ended in the middle of a record (a capture cut short).
    #[error("capture is truncated: incomplete record at byte offset {offset}")]
    Truncated { offset: u64 },
    /// A structurally invalid pcapng block or option.
    #[error("malformed capture at byte offset {offset}: {message}")]
    Malformed { offset: u64, message: String },
    /// A packet or statistics block refers to an interface that was never described.
    #[error("unknown interface id {interface_id}")]
    UnknownInterface { interface_id: u32 },
    /// A timestamp that the target format cannot represent.
    #[error("timestamp {ts_nanos} ns cannot be represented in {format}")]
    TimestampOutOfRange { ts_nanos: u64, format: &'static str },
    /// A packet whose data is larger than the format can describe.
    #[error("packet of {len} bytes is too large to write")]
    PacketTooLarge { len: usize },
}

impl Error {
    pub(crate) fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> Error {
        move |source| Error::Io { context, source }
    }
}
