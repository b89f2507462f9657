//! The capture file sink: pcap or pcapng, to a file or stdout. pcapng gets one
//! interface per source (with its name and description), every packet's comment,
//! the names of pods, services and nodes (Name Resolution Blocks), and an
//! Interface Statistics Block per source at the end; pcap holds one link
//! type, so a source with another one is refused (the others go on).

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kcap_capture::command::FULL_SNAPLEN;
use kcap_pcap::{
    InterfaceDescription, InterfaceStatistics, LinkType, Packet, PcapWriter, PcapngWriter,
};

use super::{Interface, Sink, SinkError, SourceEnd};
use crate::config::{Format, Output, OutputDestination};
use crate::event::{SourceId, SourceInfo};
use crate::names::NameTable;

/// The output opened before anything connects, so a bad path fails in milliseconds.
pub struct OpenOutput {
    file: File,
    target: String,
}

/// Opens the destination of `output` (creating the file, or duplicating stdout).
pub fn open(output: &Output) -> Result<OpenOutput, SinkError> {
    let target = output.target_name();
    let file = match &output.destination {
        OutputDestination::Stdout => std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map(File::from),
        OutputDestination::File(path) => File::create(path),
    };
    match file {
        Ok(file) => Ok(OpenOutput { file, target }),
        Err(source) => Err(SinkError::Write { target, source }),
    }
}

enum Writer<W: Write> {
    /// pcap: the header needs a link type, known only when the first stream starts.
    Pcap {
        pending: Option<W>,
        writer: Option<PcapWriter<W>>,
        link: Option<LinkType>,
    },
    /// Per source: its interface id in the file, once it started.
    Pcapng {
        writer: PcapngWriter<W>,
        interfaces: Vec<Option<u32>>,
        comments: Vec<Option<String>>,
        /// Names given before the first interface: written right after it
        /// (editcap 4.0 refuses a file whose name records come before any
        /// interface, as Wireshark never writes them there).
        pending_names: Option<NameTable>,
    },
}

/// pcap or pcapng into any writer (a file or stdout in kcap; a buffer in tests).
pub struct FileSink<W: Write = File> {
    writer: Writer<Counting<W>>,
    target: String,
    /// Bytes handed to the inner writer so far.
    written: Arc<AtomicU64>,
    /// The file again (a second descriptor, sharing its offset), to cut back a
    /// block a failed write tore (a full disk): the file then ends at its last
    /// whole block. `None` for other writers.
    repair: Option<File>,
}

/// Counts what goes through to the inner writer (the pcap writers own it, so the
/// count is shared).
struct Counting<W> {
    inner: W,
    written: Arc<AtomicU64>,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl FileSink<File> {
    pub fn new(output: OpenOutput, format: Format) -> Result<FileSink<File>, SinkError> {
        FileSink::on_file(output.file, format, output.target)
    }

    /// Into a file: a block torn by a failed write is cut back off it.
    pub fn on_file(file: File, format: Format, target: String) -> Result<Self, SinkError> {
        let repair = file.try_clone().ok();
        let mut sink = FileSink::with_writer(file, format, target)?;
        sink.repair = repair;
        Ok(sink)
    }
}

impl<W: Write + Send> FileSink<W> {
    /// `target` names the destination in error messages.
    pub fn with_writer(inner: W, format: Format, target: String) -> Result<Self, SinkError> {
        let written = Arc::new(AtomicU64::new(0));
        let inner = Counting {
            inner,
            written: written.clone(),
        };
        let writer = match format {
            Format::Pcap => Writer::Pcap {
                pending: Some(inner),
                writer: None,
                link: None,
            },
            Format::Pcapng => Writer::Pcapng {
                writer: PcapngWriter::new(inner, &format!("kcap {}", env!("CARGO_PKG_VERSION")))
                    .map_err(|e| write_error(&target, e))?,
                interfaces: Vec::new(),
                comments: Vec::new(),
                pending_names: None,
            },
        };
        Ok(FileSink {
            writer,
            target,
            written,
            repair: None,
        })
    }

    /// Bytes written so far, whether still buffered or already in the file.
    pub fn bytes_written(&self) -> u64 {
        let buffered = match &self.writer {
            Writer::Pcap {
                writer: Some(w), ..
            } => w.buffered_len(),
            Writer::Pcap { writer: None, .. } => 0,
            Writer::Pcapng { writer, .. } => writer.buffered_len(),
        };
        self.written.load(Ordering::Relaxed) + buffered as u64
    }

    /// A write failed: a block it tore is cut back off the file first.
    fn error(&mut self, error: kcap_pcap::Error) -> SinkError {
        let torn = match &mut self.writer {
            Writer::Pcap {
                writer: Some(w), ..
            } => w.take_torn(),
            Writer::Pcap { writer: None, .. } => 0,
            Writer::Pcapng { writer, .. } => writer.take_torn(),
        };
        if torn > 0
            && let Some(file) = &mut self.repair
        {
            cut_back(file, torn);
        }
        write_error(&self.target, error)
    }
}

fn write_names<W: Write>(
    writer: &mut PcapngWriter<W>,
    names: &NameTable,
) -> Result<(), kcap_pcap::Error> {
    let records: Vec<_> = names.iter().map(|(ip, n)| (ip, n.host.as_str())).collect();
    writer.write_names(&records)
}

/// Cuts `torn` bytes off the end of `file` and moves the (shared) offset there,
/// so a later write continues at the boundary. A pipe cannot be cut: nothing to do.
fn cut_back(file: &mut File, torn: u64) {
    use std::io::Seek;
    let Ok(len) = file.seek(std::io::SeekFrom::End(0)) else {
        return;
    };
    let whole = len.saturating_sub(torn);
    if file.set_len(whole).is_ok() {
        let _ = file.seek(std::io::SeekFrom::Start(whole));
    }
}

fn write_error(target: &str, error: kcap_pcap::Error) -> SinkError {
    let source = match error {
        kcap_pcap::Error::Io { source, .. } => source,
        other => std::io::Error::other(other.to_string()),
    };
    SinkError::Write {
        target: target.to_string(),
        source,
    }
}

fn slot<T: Default + Clone>(list: &mut Vec<T>, source: SourceId) -> &mut T {
    if list.len() <= source {
        list.resize(source + 1, T::default());
    }
    &mut list[source]
}

impl<W: Write + Send> Sink for FileSink<W> {
    /// pcapng: Name Resolution Blocks, so Wireshark shows `web-0.prod` for the
    /// pod's address; pcap has no place for names.
    fn names(&mut self, names: &NameTable) -> Result<(), SinkError> {
        let Writer::Pcapng {
            writer,
            interfaces,
            pending_names,
            ..
        } = &mut self.writer
        else {
            return Ok(());
        };
        if interfaces.iter().all(Option::is_none) {
            pending_names.get_or_insert_default().merge(names);
            return Ok(());
        }
        let result = write_names(writer, names);
        result.map_err(|e| self.error(e))
    }

    fn interface(&mut self, interface: Interface<'_>) -> Result<(), SinkError> {
        let Interface {
            source,
            info,
            link_type,
            snaplen,
        } = interface;
        let result = match &mut self.writer {
            Writer::Pcap {
                pending,
                writer,
                link,
            } => match (pending.take(), *link) {
                (Some(inner), _) => {
                    *link = Some(link_type);
                    PcapWriter::new(inner, link_type, snaplen).map(|w| *writer = Some(w))
                }
                (None, Some(ours)) if ours != link_type => {
                    return Err(mismatch(info, link_type, ours));
                }
                (None, _) => Ok(()),
            },
            Writer::Pcapng {
                writer,
                interfaces,
                comments,
                pending_names,
            } => writer
                .add_interface(&InterfaceDescription {
                    link_type,
                    snaplen,
                    name: info.interface_name.clone(),
                    description: Some(info.description.clone()),
                })
                .and_then(|id| {
                    *slot(interfaces, source) = Some(id);
                    *slot(comments, source) = info.comment.clone();
                    match pending_names.take() {
                        Some(names) => write_names(writer, &names),
                        None => Ok(()),
                    }
                }),
        };
        result.map_err(|e| self.error(e))
    }

    fn packet(
        &mut self,
        source: SourceId,
        packet: &Packet,
        comment: Option<&str>,
    ) -> Result<(), SinkError> {
        let result = match &mut self.writer {
            Writer::Pcap {
                writer: Some(w), ..
            } => {
                // pcap has no place for comments.
                let _ = comment;
                w.write_packet(packet)
            }
            Writer::Pcap { writer: None, .. } => Ok(()),
            Writer::Pcapng {
                writer,
                interfaces,
                comments,
                ..
            } => match interfaces.get(source).copied().flatten() {
                Some(id) => {
                    writer.write_packet(id, packet, comment.or(comments[source].as_deref()))
                }
                None => Ok(()),
            },
        };
        result.map_err(|e| self.error(e))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let result = match &mut self.writer {
            Writer::Pcap {
                writer: Some(w), ..
            } => w.flush(),
            Writer::Pcap { writer: None, .. } => Ok(()),
            Writer::Pcapng { writer, .. } => writer.flush(),
        };
        result.map_err(|e| self.error(e))
    }

    /// pcapng only: an Interface Statistics Block with what the source's capture
    /// tool reported (packets received by the filter, dropped by the kernel), so
    /// Wireshark's Capture File Properties shows the drops.
    fn source_end(&mut self, end: SourceEnd<'_>) -> Result<(), SinkError> {
        let Writer::Pcapng {
            writer, interfaces, ..
        } = &mut self.writer
        else {
            return Ok(());
        };
        let (Some(id), Some(stats)) = (
            interfaces.get(end.source).copied().flatten(),
            end.statistics,
        ) else {
            return Ok(());
        };
        let at = end.last_ts.unwrap_or_else(now_nanos);
        let isb = InterfaceStatistics {
            timestamp_nanos: at,
            start_nanos: end.first_ts,
            end_nanos: Some(at),
            received: stats.received.or(stats.captured),
            dropped: stats.dropped_by_kernel,
        };
        let result = writer.write_statistics(id, &isb);
        result.map_err(|e| self.error(e))
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        // A pcap file whose sources never started still gets a header, so it opens.
        if let Writer::Pcap {
            pending, writer, ..
        } = &mut self.writer
            && let Some(inner) = pending.take()
        {
            match PcapWriter::new(inner, LinkType::ETHERNET, FULL_SNAPLEN) {
                Ok(w) => *writer = Some(w),
                Err(e) => return Err(self.error(e)),
            }
        }
        self.flush()
    }
}

pub(super) fn mismatch(info: &SourceInfo, theirs: LinkType, ours: LinkType) -> SinkError {
    SinkError::LinkTypeMismatch {
        label: info.label.clone(),
        theirs: theirs.name(),
        ours: ours.name(),
    }
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
