//! `--serve`'s sink: the merged capture as pcapng, written once into
//! [`kcap_serve::Hub`], which hands it to every viewer. The stream is the capture
//! file's own pcapng writer ([`FileSink`]) writing into memory; after every call
//! the bytes are whole blocks, passed on as the hub's preamble (the section
//! header, interfaces and names, which a viewer joining later needs first) or as
//! data (packets, statistics). Nothing here waits for a viewer.

use std::io::Write;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use kcap_pcap::Packet;
use kcap_serve::Hub;

use super::file::FileSink;
use super::{Interface, Sink, SinkError, SourceChange, SourceEnd};
use crate::config::Format;
use crate::event::{SourceId, SourceInfo};
use crate::names::NameTable;

/// Packets are passed on at every flush, or once this much is waiting.
const BATCH: usize = 64 * 1024;

/// Where the pcapng writer's bytes land until they are passed on.
#[derive(Clone, Default)]
struct Pending(Arc<Mutex<Vec<u8>>>);

impl Pending {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().expect("pending bytes"))
    }
    fn len(&self) -> usize {
        self.0.lock().expect("pending bytes").len()
    }
}

impl Write for Pending {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("pending bytes").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub struct ServeSink {
    stream: FileSink<Pending>,
    pending: Pending,
    hub: Arc<Hub>,
    /// Per source: its row in the hub's status, and what it delivered since the
    /// last time the row was updated.
    targets: Vec<Option<Target>>,
}

#[derive(Clone, Copy)]
struct Target {
    row: usize,
    packets: u64,
    bytes: u64,
}

impl ServeSink {
    /// `initial`: the planned sources, named in `/status` and `/` from the start.
    pub fn new(hub: Arc<Hub>, initial: &[SourceInfo]) -> Result<ServeSink, SinkError> {
        let pending = Pending::default();
        let stream =
            FileSink::with_writer(pending.clone(), Format::Pcapng, "--serve's stream".into())?;
        let mut sink = ServeSink {
            stream,
            pending,
            hub,
            targets: Vec::new(),
        };
        for (source, info) in initial.iter().enumerate() {
            sink.add_target(source, info);
        }
        sink.preamble()?;
        Ok(sink)
    }

    fn add_target(&mut self, source: SourceId, info: &SourceInfo) {
        if self.targets.len() <= source {
            self.targets.resize(source + 1, None);
        }
        if self.targets[source].is_none() {
            self.targets[source] = Some(Target {
                row: self.hub.add_target(info.label.clone()),
                packets: 0,
                bytes: 0,
            });
        }
    }

    /// What was just written is a block every viewer needs.
    fn preamble(&mut self) -> Result<(), SinkError> {
        self.stream.flush()?;
        self.hub.preamble(&self.pending.take());
        Ok(())
    }

    /// Packets waiting go to the viewers there now, with the figures for `/status`.
    fn publish(&mut self) -> Result<(), SinkError> {
        self.stream.flush()?;
        self.hub.data(Bytes::from(self.pending.take()));
        for target in self.targets.iter_mut().flatten() {
            if target.packets > 0 {
                self.hub.count(target.row, target.packets, target.bytes);
                target.packets = 0;
                target.bytes = 0;
            }
        }
        Ok(())
    }

    fn dropped(
        &self,
        source: SourceId,
        statistics: Option<&kcap_capture::outcome::ToolStatistics>,
    ) {
        let dropped = statistics.and_then(|s| s.dropped_by_kernel);
        if let (Some(Some(target)), Some(dropped)) = (self.targets.get(source), dropped) {
            self.hub.dropped(target.row, dropped);
        }
    }
}

impl Sink for ServeSink {
    fn names(&mut self, names: &NameTable) -> Result<(), SinkError> {
        self.publish()?;
        self.stream.names(names)?;
        self.preamble()
    }

    fn interface(&mut self, interface: Interface<'_>) -> Result<(), SinkError> {
        self.publish()?;
        self.stream.interface(interface)?;
        self.add_target(interface.source, interface.info);
        self.preamble()
    }

    fn packet(
        &mut self,
        source: SourceId,
        packet: &Packet,
        comment: Option<&str>,
    ) -> Result<(), SinkError> {
        self.stream.packet(source, packet, comment)?;
        if let Some(Some(target)) = self.targets.get_mut(source) {
            target.packets += 1;
            target.bytes += packet.data.len() as u64;
        }
        // Whole blocks only: the writer's buffer goes into `pending` after each packet.
        self.stream.flush()?;
        if self.pending.len() >= BATCH {
            self.publish()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.publish()
    }

    fn source_end(&mut self, end: SourceEnd<'_>) -> Result<(), SinkError> {
        self.stream.source_end(end)?;
        self.dropped(end.source, end.statistics);
        self.publish()
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.stream.finish()?;
        self.publish()?;
        self.hub.end();
        Ok(())
    }

    fn source_changed(&mut self, change: SourceChange<'_>) {
        match change {
            SourceChange::Added { source, info } => self.add_target(source, info),
            SourceChange::Ended { source, statistics } => self.dropped(source, statistics),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcap_pcap::LinkType;

    fn info(label: &str) -> SourceInfo {
        SourceInfo {
            label: label.into(),
            point: label.into(),
            interface_name: format!("{label}:any"),
            description: String::new(),
            comment: None,
            names: Vec::new(),
        }
    }

    fn interface(source: SourceId, info: &SourceInfo) -> Interface<'_> {
        Interface {
            source,
            info,
            link_type: LinkType::ETHERNET,
            snaplen: 65535,
        }
    }

    fn packet(ts: u64) -> Packet {
        Packet {
            ts_nanos: ts,
            orig_len: 60,
            data: vec![0xab; 60].into(),
            comment: None,
        }
    }

    /// Reads a viewer's bytes as a pcapng file: (interface names, packet times).
    fn read(bytes: &[u8]) -> (Vec<String>, Vec<u64>) {
        let mut reader = kcap_pcap::CaptureFileReader::new(bytes).unwrap();
        let mut times = Vec::new();
        for record in reader.by_ref() {
            times.push(record.unwrap().packet.ts_nanos);
        }
        let names = reader
            .interfaces()
            .iter()
            .map(|i| i.name.clone().unwrap())
            .collect();
        (names, times)
    }

    #[test]
    fn every_viewer_gets_a_valid_stream_from_the_moment_it_joined() {
        use std::task::{Context, Poll};
        let hub = Hub::new(1 << 20);
        let mut sink = ServeSink::new(hub.clone(), &[]).unwrap();
        let (a, b) = (info("node-a"), info("node-b"));
        let mut early = hub.subscribe().unwrap();
        sink.interface(interface(0, &a)).unwrap();
        sink.packet(0, &packet(1), None).unwrap();
        sink.flush().unwrap();
        let mut late = hub.subscribe().unwrap();
        sink.packet(0, &packet(2), None).unwrap();
        sink.interface(interface(1, &b)).unwrap();
        sink.packet(1, &packet(3), None).unwrap();
        sink.finish().unwrap();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut collect = |sub: &mut kcap_serve::hub::Subscription| {
            let mut bytes = Vec::new();
            while let Poll::Ready(kcap_serve::hub::Next::Blocks(b)) = sub.poll_next(&mut cx) {
                bytes.extend_from_slice(&b);
            }
            bytes
        };
        let (names, times) = read(&collect(&mut early));
        assert_eq!(names, ["node-a:any", "node-b:any"]);
        assert_eq!(times, [1, 2, 3]);
        let (names, times) = read(&collect(&mut late));
        assert_eq!(names, ["node-a:any", "node-b:any"]);
        assert_eq!(times, [2, 3]);
        let status = hub.status();
        assert_eq!(status.targets[0].packets, 2);
        assert_eq!(status.targets[1].packets, 1);
        assert!(status.ended);
    }
}
