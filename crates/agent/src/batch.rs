//! The records read from the ring since the last write, written in time order.
//!
//! The kernel fills the ring in the order packets reach the socket, which is not
//! always the order of their timestamps: two CPUs stamp two packets, and the later
//! stamp can take its slot first. kcap's merge keeps each source's order, so the
//! agent puts every batch in timestamp order before writing it (stable, and a plain
//! copy when it already is, which is nearly always).

use std::io::Write;

use crate::pcap;
use crate::ring::{Framing, Packet};

#[derive(Default)]
pub struct Batch {
    bytes: Vec<u8>,
    /// (timestamp, start, end) of each record in `bytes`.
    records: Vec<(u64, usize, usize)>,
    in_order: bool,
}

impl Batch {
    pub fn new(capacity: usize) -> Batch {
        Batch {
            bytes: Vec::with_capacity(capacity),
            records: Vec::new(),
            in_order: true,
        }
    }

    pub fn push(&mut self, framing: Framing, snaplen: u32, packet: &Packet<'_>) {
        let ts = u64::from(packet.ts_sec) * 1_000_000_000 + u64::from(packet.ts_nsec);
        if self.records.last().is_some_and(|&(last, ..)| ts < last) {
            self.in_order = false;
        }
        let start = self.bytes.len();
        pcap::record(&mut self.bytes, framing, snaplen, packet);
        self.records.push((ts, start, self.bytes.len()));
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Writes the batch in time order and empties it; `false` if `out` failed.
    pub fn write_to(&mut self, out: &mut impl Write) -> bool {
        let ok = if self.in_order {
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

    /// A batch of 4-byte Ethernet-framed packets `(nanoseconds, fill byte)`,
    /// written out.
    fn written(packets: &[(u32, u8)]) -> Vec<u8> {
        let mut batch = Batch::new(64);
        for &(ts_nsec, byte) in packets {
            let data = [byte; 4];
            let packet = Packet {
                ts_sec: 1,
                ts_nsec,
                len: 4,
                data: &data,
                vlan: None,
                protocol: 0x800,
                ifindex: 1,
                hatype: 1,
                pkttype: 0,
                addr: &[],
            };
            batch.push(Framing::Ethernet, 100, &packet);
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
}
