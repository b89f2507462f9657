//! The records read from the ring since the last write, written in time order.
//!
//! The kernel fills the ring in the order packets reach the socket, which is not
//! always the order of their timestamps: two CPUs stamp two packets, and the later
//! stamp can take its slot first. kcap's merge keeps each source's order, so the
//! agent puts every batch in timestamp order before writing it (stable, and a plain
//! copy when it already is, which is nearly always).
//!
//! With `--process`, a packet's NEXT annotation is part of its record (they move
//! together), and the DEFINE annotations of a batch go out before all of its
//! records, so every NEXT finds its process defined whatever the order.

use std::io::Write;

use kcap_pcap::annotation::Annotation;

use crate::pcap;
use crate::ring::{Framing, Packet};

#[derive(Default)]
pub struct Batch {
    bytes: Vec<u8>,
    /// DEFINE annotations, written first.
    defines: Vec<u8>,
    /// (timestamp, start, end) of each record in `bytes`.
    records: Vec<(u64, usize, usize)>,
    in_order: bool,
}

impl Batch {
    pub fn new(capacity: usize) -> Batch {
        Batch {
            bytes: Vec::with_capacity(capacity),
            defines: Vec::new(),
            records: Vec::new(),
            in_order: true,
        }
    }

    /// Adds `packet`, preceded by a NEXT annotation naming process `process`.
    pub fn push(
        &mut self,
        framing: Framing,
        snaplen: u32,
        packet: &Packet<'_>,
        process: Option<u32>,
    ) {
        let ts = u64::from(packet.ts_sec) * 1_000_000_000 + u64::from(packet.ts_nsec);
        if self.records.last().is_some_and(|&(last, ..)| ts < last) {
            self.in_order = false;
        }
        let start = self.bytes.len();
        if let Some(id) = process {
            Annotation::Next { id }.write_record(&mut self.bytes);
        }
        pcap::record(&mut self.bytes, framing, snaplen, packet);
        self.records.push((ts, start, self.bytes.len()));
    }

    /// Defines process `id` for the packets of this batch and later ones.
    pub fn define(&mut self, id: u32, text: &str) {
        Annotation::Define { id, text }.write_record(&mut self.defines);
    }

    pub fn len(&self) -> usize {
        self.bytes.len() + self.defines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Writes the batch in time order and empties it; `false` if `out` failed.
    pub fn write_to(&mut self, out: &mut impl Write) -> bool {
        let defined = self.defines.is_empty() || out.write_all(&self.defines).is_ok();
        self.defines.clear();
        let ok = defined
            && if self.in_order {
                out.write_all(&self.bytes).is_ok()
            } else {
                self.records.sort_by_key(|&(ts, ..)| ts);
                let mut ordered = Vec::with_capacity(self.bytes.len());
                for &(_, start, end) in &self.records {
                    ordered.extend_from_slice(&self.bytes[start..end]);
                }
                out.write_all(&ordered).is_ok()
            };
        self.bytes.clear();
        self.records.clear();
        self.in_order = true;
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet of second 1 plus `ts_nsec`, with `data`.
    fn at(ts_nsec: u32, data: &[u8]) -> Packet<'_> {
        Packet {
            ts_sec: 1,
            ts_nsec,
            len: data.len() as u32,
            data,
            vlan: None,
            protocol: 0x800,
            ifindex: 1,
            hatype: 1,
            pkttype: 0,
            addr: &[],
        }
    }

    /// A batch of 4-byte Ethernet-framed packets `(nanoseconds, fill byte)`,
    /// written out.
    fn written(packets: &[(u32, u8)]) -> Vec<u8> {
        let mut batch = Batch::new(64);
        for &(ts_nsec, byte) in packets {
            batch.push(Framing::Ethernet, 100, &at(ts_nsec, &[byte; 4]), None);
        }
        let mut out = Vec::new();
        assert!(batch.write_to(&mut out));
        assert!(batch.is_empty());
        out
    }

    #[test]
    fn a_batch_goes_out_in_time_order() {
        let sorted = [(10, 1), (20, 2), (20, 4), (30, 3)];
        let expected: Vec<u8> = sorted.iter().flat_map(|&p| written(&[p])).collect();
        assert_eq!(written(&[(30, 3), (10, 1), (20, 2), (20, 4)]), expected);
        assert_eq!(written(&sorted), expected);
    }

    /// A packet keeps its NEXT when sorted; DEFINEs come before every record.
    #[test]
    fn annotations_travel_with_their_packets() {
        let data = [7u8; 4];
        let mut batch = Batch::new(64);
        batch.push(Framing::Ethernet, 100, &at(20, &data), Some(3));
        batch.define(3, "PID: 1");
        batch.push(Framing::Ethernet, 100, &at(10, &data), None);
        let mut out = Vec::new();
        assert!(batch.write_to(&mut out));
        let mut decoder = kcap_pcap::StreamDecoder::new();
        let mut stream = pcap::header(Framing::Ethernet, 100);
        stream.extend_from_slice(&out);
        decoder.push(&stream);
        let mut annotator = kcap_pcap::annotation::Annotator::default();
        let mut seen = Vec::new();
        while let Some(p) = decoder.next_packet().unwrap() {
            if !annotator.absorb(&p) {
                seen.push((p.ts_nanos % 100, annotator.take_for_packet()));
            }
        }
        assert_eq!(seen, [(10, None), (20, Some("PID: 1".into()))]);
    }
}
