//! `--flight-recorder DURATION`: the packets of the last DURATION held in memory and
//! written to the output file only when kcap stops, so a capture can run for days
//! and keep what happened just before the problem. The window is measured on packet
//! time, back from the newest packet (remote clocks may differ from kcap's); older
//! packets are discarded ("aged out"). Memory is bounded twice: by the window and by
//! `--flight-recorder-size` (default 64 MiB), beyond which the oldest packets are
//! dropped and counted.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};

use kcap_capture::outcome::ToolStatistics;
use kcap_pcap::Packet;

use super::file::FileSink;
use super::naming;
use super::{FileReportHandle, Interface, Remembered, Sink, SinkError, SourceEnd};
use crate::config::Format;
use crate::event::SourceId;
use crate::limits::FlightRecorder;
use crate::names::NameTable;
use crate::process::MergedComment;

/// Bookkeeping per held packet besides its bytes (the `Packet`, its place in the ring).
const PER_PACKET: u64 = 64;

/// The held packets, oldest first: pure bookkeeping, no I/O.
#[derive(Debug)]
pub struct Ring {
    window_nanos: u64,
    max_bytes: u64,
    held: VecDeque<(SourceId, Packet)>,
    bytes: u64,
    newest: u64,
    pub aged_out: u64,
    pub over_memory: u64,
}

impl Ring {
    pub fn new(settings: FlightRecorder) -> Ring {
        Ring {
            window_nanos: u64::try_from(settings.window.as_nanos()).unwrap_or(u64::MAX),
            max_bytes: settings.max_bytes,
            held: VecDeque::new(),
            bytes: 0,
            newest: 0,
            aged_out: 0,
            over_memory: 0,
        }
    }

    fn cost(packet: &Packet) -> u64 {
        packet.data.len() as u64 + PER_PACKET
    }

    /// Holds `packet`, then lets go of what fell out of the window or the memory.
    pub fn push(&mut self, source: SourceId, mut packet: Packet) {
        // Its own copy: the window outlives the chunks packets arrive in, and the
        // memory bound counts packet bytes, not the chunks they would pin.
        packet.own_data();
        self.newest = self.newest.max(packet.ts_nanos);
        self.bytes += Ring::cost(&packet);
        self.held.push_back((source, packet));
        let oldest_kept = self.newest.saturating_sub(self.window_nanos);
        while self
            .held
            .front()
            .is_some_and(|(_, p)| p.ts_nanos < oldest_kept)
        {
            self.pop_front();
            self.aged_out += 1;
        }
        // The newest packet always stays, however large.
        while self.bytes > self.max_bytes && self.held.len() > 1 {
            self.pop_front();
            self.over_memory += 1;
        }
    }

    fn pop_front(&mut self) {
        if let Some((_, p)) = self.held.pop_front() {
            self.bytes -= Ring::cost(&p);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.held.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// The held packets, oldest first, emptying the ring.
    pub fn drain(&mut self) -> impl Iterator<Item = (SourceId, Packet)> + '_ {
        self.bytes = 0;
        self.held.drain(..)
    }
}

/// A source's end, kept until the file is written.
struct Ended {
    source: SourceId,
    statistics: Option<ToolStatistics>,
    first_ts: Option<u64>,
    last_ts: Option<u64>,
}

pub struct FlightSink {
    template: PathBuf,
    format: Format,
    interfaces: Vec<Remembered>,
    names: NameTable,
    ring: Ring,
    ended: Vec<Ended>,
    report: FileReportHandle,
}

impl FlightSink {
    /// Checks now that the file's directory can be written; the file itself is
    /// created when kcap stops (its name may hold the stop time).
    pub fn new(
        template: &Path,
        format: Format,
        settings: FlightRecorder,
        report: FileReportHandle,
    ) -> Result<FlightSink, SinkError> {
        let dir = match naming::expand(template, naming::now_secs()).parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        writable(&dir).map_err(|source| SinkError::Write {
            target: template.display().to_string(),
            source,
        })?;
        Ok(FlightSink {
            template: template.to_path_buf(),
            format,
            interfaces: Vec::new(),
            names: NameTable::default(),
            ring: Ring::new(settings),
            ended: Vec::new(),
            report,
        })
    }

    fn write_file(&mut self) -> Result<(), SinkError> {
        let path = naming::expand(&self.template, naming::now_secs());
        let target = path.display().to_string();
        let file = File::create(&path).map_err(|source| SinkError::Write {
            target: target.clone(),
            source,
        })?;
        let mut sink = FileSink::on_file(file, self.format, target)?;
        if !self.names.is_empty() {
            sink.names(&self.names)?;
        }
        for remembered in &self.interfaces {
            sink.interface(remembered.interface())?;
        }
        let mut packets = 0;
        // Packets hold their process text (shared); the comment is merged as the
        // pipeline merges it, once per run of one process.
        let mut merged: Vec<MergedComment> = Vec::new();
        for (source, packet) in self.ring.drain() {
            let comment = match &packet.comment {
                Some(process) => {
                    if merged.len() <= source {
                        merged.resize_with(source + 1, MergedComment::default);
                    }
                    let own = self
                        .interfaces
                        .iter()
                        .find(|r| r.source == source)
                        .and_then(|r| r.info.comment.as_deref());
                    Some(merged[source].get(process, own))
                }
                None => None,
            };
            sink.packet(source, &packet, comment)?;
            packets += 1;
        }
        for e in &self.ended {
            sink.source_end(SourceEnd {
                source: e.source,
                statistics: e.statistics.as_ref(),
                first_ts: e.first_ts,
                last_ts: e.last_ts,
            })?;
        }
        sink.finish()?;
        let mut report = self.report.lock().expect("report");
        report.packets = packets;
        report.bytes = sink.bytes_written();
        report.files = 1;
        report.first = Some(path.clone());
        report.last = Some(path);
        report.aged_out = self.ring.aged_out;
        report.over_memory = self.ring.over_memory;
        Ok(())
    }
}

/// `dir` is a directory kcap may create files in.
fn writable(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    if !std::fs::metadata(dir)?.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            format!("{} is not a directory", dir.display()),
        ));
    }
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: access(2) reads the NUL-terminated path we own.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

impl Sink for FlightSink {
    fn names(&mut self, names: &NameTable) -> Result<(), SinkError> {
        self.names.merge(names);
        Ok(())
    }

    fn interface(&mut self, interface: Interface<'_>) -> Result<(), SinkError> {
        // pcap holds one link type: refuse the others now, as the file sink would.
        if self.format == Format::Pcap
            && let Some(first) = self.interfaces.first()
            && first.link_type != interface.link_type
        {
            return Err(super::file::mismatch(
                interface.info,
                interface.link_type,
                first.link_type,
            ));
        }
        self.interfaces.push(interface.remember());
        Ok(())
    }

    fn packet(
        &mut self,
        source: SourceId,
        packet: &Packet,
        comment: Option<&str>,
    ) -> Result<(), SinkError> {
        // Only live captures come here: `comment` is the packet's process text
        // merged with the source's comment, made again from the packet's own (a
        // shared `Arc`, not a copy per packet) when the file is written.
        let _ = comment;
        self.ring.push(source, packet.clone());
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn source_end(&mut self, end: SourceEnd<'_>) -> Result<(), SinkError> {
        self.ended.push(Ended {
            source: end.source,
            statistics: end.statistics.copied(),
            first_ts: end.first_ts,
            last_ts: end.last_ts,
        });
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.write_file()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn packet(ts_nanos: u64, len: usize) -> Packet {
        Packet {
            ts_nanos,
            orig_len: len as u32,
            data: vec![0; len].into(),
            comment: None,
        }
    }

    fn ring(window_ms: u64, max_bytes: u64) -> Ring {
        Ring::new(FlightRecorder {
            window: Duration::from_millis(window_ms),
            max_bytes,
        })
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn keeps_the_last_window_by_packet_time() {
        let mut r = ring(2000, u64::MAX);
        for i in 0..60 {
            r.push(i % 2, packet(i as u64 * 100 * MS, 10));
        }
        // Newest at 5.9 s: 3.9 s .. 5.9 s stay (21 packets), 39 aged out.
        assert_eq!((r.len(), r.aged_out, r.over_memory), (21, 39, 0));
        let kept: Vec<u64> = r.drain().map(|(_, p)| p.ts_nanos / MS).collect();
        assert_eq!(kept.first(), Some(&3900));
        assert_eq!(kept.last(), Some(&5900));
        assert!(r.is_empty());
    }

    #[test]
    fn memory_bound_drops_the_oldest_and_counts_them() {
        let cost = 100 + PER_PACKET;
        let mut r = ring(60_000, 5 * cost);
        for i in 0..8 {
            r.push(0, packet(i * MS, 100));
        }
        assert_eq!((r.len(), r.aged_out, r.over_memory), (5, 0, 3));
        assert_eq!(r.bytes, 5 * cost);
        assert_eq!(r.drain().next().unwrap().1.ts_nanos, 3 * MS);
        // One packet larger than the whole bound still stays.
        let mut r = ring(60_000, 10);
        r.push(0, packet(0, 1000));
        r.push(0, packet(1, 1000));
        assert_eq!((r.len(), r.over_memory), (1, 1));
    }

    /// Held packets keep their process (the `Arc`, shared); the file written at
    /// the end has each one's text merged with its source's comment.
    #[test]
    fn the_file_keeps_each_packets_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.pcapng");
        let settings = FlightRecorder {
            window: Duration::from_secs(60),
            max_bytes: u64::MAX,
        };
        let mut sink =
            FlightSink::new(&path, Format::Pcapng, settings, Default::default()).unwrap();
        let info = crate::event::SourceInfo {
            label: "node/n1".into(),
            point: "n1:any".into(),
            interface_name: "node/n1/any".into(),
            description: "node n1".into(),
            comment: Some("NodeName: n1".into()),
            names: Vec::new(),
        };
        sink.interface(Interface {
            source: 0,
            info: &info,
            link_type: kcap_pcap::LinkType::ETHERNET,
            snaplen: 65535,
        })
        .unwrap();
        let curl: std::sync::Arc<str> = std::sync::Arc::from("PID: 42\nCmd: /usr/bin/curl");
        for (ts, comment) in [(1, Some(curl.clone())), (2, None), (3, Some(curl))] {
            let packet = Packet {
                comment,
                ..packet(ts, 4)
            };
            sink.packet(0, &packet, None).unwrap();
        }
        sink.finish().unwrap();
        let file = kcap_pcap::CaptureFile::read(&path).unwrap();
        let comments: Vec<_> = file.records.iter().map(|r| r.comment.as_deref()).collect();
        let merged = "PID: 42\nCmd: /usr/bin/curl\nNodeName: n1";
        assert_eq!(comments, [Some(merged), Some("NodeName: n1"), Some(merged)]);
    }
}
