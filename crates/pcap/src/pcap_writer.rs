//! Writer for classic pcap files: little-endian, nanosecond timestamps.

use std::io::Write;

use crate::buffer::RecordBuffer;
use crate::format::{PCAP_HEADER_LEN, PCAP_MAGIC_NANOS, PCAP_RECORD_HEADER_LEN};
use crate::{Error, LinkType, Packet};

/// Classic pcap writer; records reach `inner` only whole (see [`Self::flush`]).
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: RecordBuffer<W>,
}

impl<W: Write> PcapWriter<W> {
    /// Creates the writer and buffers the global header immediately.
    pub fn new(inner: W, link_type: LinkType, snaplen: u32) -> Result<Self, Error> {
        let mut out = RecordBuffer::new(inner);
        let buf = out.begin_record(PCAP_HEADER_LEN)?;
        buf.extend_from_slice(&PCAP_MAGIC_NANOS.to_le_bytes());
        buf.extend_from_slice(&2u16.to_le_bytes());
        buf.extend_from_slice(&4u16.to_le_bytes());
        buf.extend_from_slice(&0i32.to_le_bytes()); // thiszone: always UTC
        buf.extend_from_slice(&0u32.to_le_bytes()); // sigfigs: always 0
        buf.extend_from_slice(&snaplen.to_le_bytes());
        buf.extend_from_slice(&link_type.0.to_le_bytes());
        out.end_record()?;
        Ok(Self { out })
    }

    /// Appends one record. Timestamps must fit pcap's 32-bit seconds (until 2106).
    pub fn write_packet(&mut self, packet: &Packet) -> Result<(), Error> {
        let secs = u32::try_from(packet.ts_nanos / 1_000_000_000).map_err(|_| {
            Error::TimestampOutOfRange {
                ts_nanos: packet.ts_nanos,
                format: "pcap",
            }
        })?;
        let nanos = (packet.ts_nanos % 1_000_000_000) as u32;
        let caplen = u32::try_from(packet.data.len()).map_err(|_| Error::PacketTooLarge {
            len: packet.data.len(),
        })?;
        let mut header = [0u8; PCAP_RECORD_HEADER_LEN];
        header[0..4].copy_from_slice(&secs.to_le_bytes());
        header[4..8].copy_from_slice(&nanos.to_le_bytes());
        header[8..12].copy_from_slice(&caplen.to_le_bytes());
        header[12..16].copy_from_slice(&packet.orig_len.to_le_bytes());
        let buf = self
            .out
            .begin_record(PCAP_RECORD_HEADER_LEN + packet.data.len())?;
        buf.extend_from_slice(&header);
        buf.extend_from_slice(&packet.data);
        self.out.end_record()
    }

    /// Writes all buffered records and flushes the inner writer.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.out.flush()
    }

    /// Bytes buffered but not yet handed to the inner writer; the caller uses
    /// it to decide when a timed flush is worthwhile.
    pub fn buffered_len(&self) -> usize {
        self.out.buffered_len()
    }

    /// After a failed write: how many bytes at the end of what the inner writer
    /// took belong to a record it took only part of (cut them off a file, and it
    /// ends at a record boundary). Counted once.
    pub fn take_torn(&mut self) -> u64 {
        self.out.take_torn()
    }

    /// Flushes and returns the inner writer.
    pub fn into_inner(self) -> Result<W, Error> {
        self.out.into_inner()
    }
}
