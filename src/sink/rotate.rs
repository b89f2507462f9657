//! Rotated files and `--max-size`: the capture file sink, started again as a new
//! file once the current one reaches `-C` bytes or `-G` has passed since its first
//! packet, with `-W` keeping a ring of the last files (the oldest is deleted). The
//! switch happens before a packet is written, so every file holds at least one packet and no packet
//! is lost or written twice. Each file is complete on its own: a pcap header, or a
//! pcapng section header followed by every interface seen so far, in the same order
//! (so with the same interface ids) as in the first file, and every name known.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use kcap_pcap::Packet;

use super::file::FileSink;
use super::naming;
use super::{FileReportHandle, Interface, Remembered, Sink, SinkError, SourceEnd};
use crate::config::Format;
use crate::event::SourceId;
use crate::limits::Rotation;
use crate::names::NameTable;

/// The file being written.
struct Current {
    sink: FileSink<File>,
    /// When its first packet was written: `-G` counts from there (the first file is
    /// created before anything connects).
    first_packet: Option<Instant>,
    packets: u64,
}

pub struct RotatingSink {
    template: PathBuf,
    format: Format,
    /// `None`: one file, with only `--max-size`.
    rotation: Option<Rotation>,
    max_size: Option<u64>,
    interfaces: Vec<Remembered>,
    /// Every name given so far: each new file starts with them.
    names: NameTable,
    current: Current,
    /// Bytes of the files already closed.
    closed_bytes: u64,
    /// With `-W`: the files kept, oldest first (the current one last).
    ring: VecDeque<PathBuf>,
    /// Packets in every file so far.
    packets: u64,
    report: FileReportHandle,
    full: bool,
}

impl RotatingSink {
    /// Creates the first file now, so a bad path fails before anything connects.
    pub fn open(
        template: &Path,
        format: Format,
        rotation: Option<Rotation>,
        max_size: Option<u64>,
        report: FileReportHandle,
    ) -> Result<RotatingSink, SinkError> {
        let path = match rotation {
            Some(_) => naming::numbered(template, 1, naming::now_secs()),
            None => naming::expand(template, naming::now_secs()),
        };
        let current = create(&path, format)?;
        let mut sink = RotatingSink {
            template: template.to_path_buf(),
            format,
            rotation,
            max_size,
            interfaces: Vec::new(),
            names: NameTable::default(),
            current,
            closed_bytes: 0,
            ring: VecDeque::new(),
            packets: 0,
            report,
            full: false,
        };
        sink.opened(path);
        Ok(sink)
    }

    fn total_bytes(&self) -> u64 {
        self.closed_bytes + self.current.sink.bytes_written()
    }

    fn due(&self) -> bool {
        let Some(rotation) = self.rotation else {
            return false;
        };
        let current = &self.current;
        current.packets > 0
            && (rotation
                .size
                .is_some_and(|size| current.sink.bytes_written() >= size)
                || rotation.every.is_some_and(|every| {
                    current
                        .first_packet
                        .is_some_and(|first| first.elapsed() >= every)
                }))
    }

    /// Closes the current file and starts the next, with every interface again.
    fn rotate(&mut self) -> Result<(), SinkError> {
        self.current.sink.finish()?;
        self.closed_bytes += self.current.sink.bytes_written();
        let keep = self.rotation.and_then(|r| r.ring);
        if let Some(keep) = keep {
            while self.ring.len() >= keep {
                let Some(oldest) = self.ring.pop_front() else {
                    break;
                };
                delete(&oldest);
                self.report.lock().expect("report").deleted += 1;
            }
        }
        let index = self.report.lock().expect("report").files + 1;
        let path = naming::numbered(&self.template, index, naming::now_secs());
        self.current = create(&path, self.format)?;
        if !self.names.is_empty() {
            self.current.sink.names(&self.names)?;
        }
        for remembered in &self.interfaces {
            self.current.sink.interface(remembered.interface())?;
        }
        self.opened(path);
        Ok(())
    }

    fn opened(&mut self, path: PathBuf) {
        if self.rotation.and_then(|r| r.ring).is_some() {
            self.ring.push_back(path.clone());
        }
        let mut report = self.report.lock().expect("report");
        report.files += 1;
        match self.ring.front() {
            Some(oldest) => report.first = Some(oldest.clone()),
            None => {
                report.first.get_or_insert_with(|| path.clone());
            }
        }
        report.last = Some(path);
    }

    /// Counts for the summary (kept here per packet, handed over now and then).
    fn publish(&self) {
        let mut report = self.report.lock().expect("report");
        report.packets = self.packets;
        report.bytes = self.total_bytes();
    }
}

fn create(path: &Path, format: Format) -> Result<Current, SinkError> {
    let target = path.display().to_string();
    let file = File::create(path).map_err(|source| SinkError::Write {
        target: target.clone(),
        source,
    })?;
    Ok(Current {
        sink: FileSink::on_file(file, format, target)?,
        first_packet: None,
        packets: 0,
    })
}

/// A ring file that cannot be deleted stays; the capture goes on.
fn delete(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("kcap: cannot delete {} (-W): {e}", path.display()),
    }
}

impl Sink for RotatingSink {
    fn names(&mut self, names: &NameTable) -> Result<(), SinkError> {
        self.names.merge(names);
        self.current.sink.names(names)
    }

    fn interface(&mut self, interface: Interface<'_>) -> Result<(), SinkError> {
        self.current.sink.interface(interface)?;
        self.interfaces.push(interface.remember());
        Ok(())
    }

    fn packet(
        &mut self,
        source: SourceId,
        packet: &Packet,
        comment: Option<&str>,
    ) -> Result<(), SinkError> {
        if self.due() {
            self.rotate()?;
        }
        self.current.sink.packet(source, packet, comment)?;
        self.current.first_packet.get_or_insert_with(Instant::now);
        self.current.packets += 1;
        self.packets += 1;
        if self.max_size.is_some_and(|max| self.total_bytes() >= max) {
            self.full = true;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.publish();
        self.current.sink.flush()
    }

    fn source_end(&mut self, end: SourceEnd<'_>) -> Result<(), SinkError> {
        self.current.sink.source_end(end)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        let result = self.current.sink.finish();
        self.publish();
        result
    }

    fn full(&self) -> bool {
        self.full
    }
}

#[cfg(test)]
#[path = "rotate_tests.rs"]
mod tests;
