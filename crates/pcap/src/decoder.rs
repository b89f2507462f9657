//! Push-based incremental decoder for a classic pcap byte stream, such as
//! `tcpdump -U -w -` arriving over SSH in arbitrary chunks.
//!
//! Memory stays bounded: consumed bytes are compacted away on the next push,
//! and an implausible record length is rejected before its body is awaited.

use std::collections::VecDeque;
use std::ops::Range;

use bytes::Bytes;

use crate::format::{
    MAX_STREAM_CAPLEN, PCAP_HEADER_LEN, PCAP_MAGIC_MICROS, PCAP_MAGIC_NANOS, PCAP_RECORD_HEADER_LEN,
};
use crate::{Error, LinkType, Packet};

/// Extra bytes tolerated beyond the advertised snaplen: some capture stacks
/// under-report snaplen slightly (e.g. cooked headers added after the cut).
const SNAPLEN_SLACK: u32 = 1024;
/// How many leading bytes of a non-pcap stream to show in the error.
const SHOWN_PREFIX: usize = 64;

/// The global header of an incoming pcap stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHeader {
    pub link_type: LinkType,
    pub snaplen: u32,
    /// Timestamp fractions are nanoseconds (magic 0xa1b23c4d), not microseconds.
    pub nanosecond: bool,
    pub big_endian: bool,
}

/// A decoded record header: the packet but for its data, which is where
/// `data` says in the bytes it was decoded from.
struct RecordHead {
    ts_nanos: u64,
    orig_len: u32,
    data: Range<usize>,
}

impl RecordHead {
    /// The packet, its data copied out of `record` (the buffer of partial records).
    fn copied_from(self, record: &[u8]) -> Packet {
        let data = Bytes::copy_from_slice(&record[self.data.clone()]);
        self.packet(data)
    }

    /// The packet, its data a slice of `chunk`, where its record starts at `at`.
    fn sliced_from(self, chunk: &Bytes, at: usize) -> Packet {
        let data = chunk.slice(at + self.data.start..at + self.data.end);
        self.packet(data)
    }

    fn packet(self, data: Bytes) -> Packet {
        Packet {
            ts_nanos: self.ts_nanos,
            orig_len: self.orig_len,
            data,
            comment: None,
        }
    }
}

/// Push-based incremental decoder of a classic pcap byte stream.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    buf: Vec<u8>,
    /// Start of the unconsumed bytes in `buf`.
    pos: usize,
    /// Packets decoded by [`Self::push`] straight from the pushed bytes, without
    /// copying them into `buf` first; they come before anything in `buf`.
    ready: VecDeque<Packet>,
    /// Their record bytes (headers included), for [`Self::pending_bytes`].
    ready_bytes: usize,
    header: Option<StreamHeader>,
    /// Upper bound for a record's captured length, derived from snaplen.
    max_caplen: u32,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes as they arrive (any chunking, down to 1 byte).
    ///
    /// Once the header is known, the whole records in `bytes` are decoded here,
    /// from `bytes` itself: only a partial record is copied into the buffer (the
    /// bytes that complete one already there, and the chunk's tail), not the
    /// whole chunk. Anything an error stops at is kept for [`Self::next_packet`]
    /// to report, in order.
    pub fn push(&mut self, bytes: &[u8]) {
        self.push_from(bytes, None);
    }

    /// [`Self::push`] of a chunk kcap owns: the packets of its whole records
    /// share the chunk itself instead of a copy of it, when the chunk uses most
    /// of its allocation (a small read in a large buffer is copied, so that a few
    /// packets never keep a large allocation alive).
    pub fn push_vec(&mut self, chunk: Vec<u8>) {
        if chunk.len() * 2 < chunk.capacity() {
            return self.push(&chunk);
        }
        let chunk = Bytes::from(chunk);
        self.push_from(&chunk, Some(&chunk));
    }

    /// `bytes`, which is `owned` when the caller gave its chunk away.
    fn push_from(&mut self, mut bytes: &[u8], owned: Option<&Bytes>) {
        self.compact();
        if self.header.is_none() {
            self.buf.extend_from_slice(bytes);
            return;
        }
        if self.pos < self.buf.len() {
            // Records already whole in the buffer first (pushed twice between reads).
            loop {
                match self.decode_record(&self.buf[self.pos..]) {
                    Ok(Some((head, used))) => {
                        let packet = head.copied_from(&self.buf[self.pos..]);
                        self.pos += used;
                        self.ready_packet(packet, used);
                    }
                    Ok(None) => break,
                    Err(_) => {
                        self.buf.extend_from_slice(bytes);
                        return;
                    }
                }
            }
            self.compact();
        }
        if !self.buf.is_empty() {
            // A partial record: complete it with only the bytes it lacks.
            if self.buf.len() < PCAP_RECORD_HEADER_LEN {
                let take = (PCAP_RECORD_HEADER_LEN - self.buf.len()).min(bytes.len());
                self.buf.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
            }
            let len = match self.record_len(&self.buf) {
                Ok(Some(len)) => len,
                // Still short of a record header (nothing left to add), or an
                // error for `next_packet` to report.
                Ok(None) | Err(_) => {
                    self.buf.extend_from_slice(bytes);
                    return;
                }
            };
            let take = (len - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            match self.decode_record(&self.buf) {
                Ok(Some((head, used))) => {
                    let packet = head.copied_from(&self.buf);
                    self.ready_packet(packet, used);
                    self.buf.clear();
                }
                // Still partial: `bytes` is used up.
                Ok(None) | Err(_) => return,
            }
        }
        // Whole records straight from the caller's chunk: their packets share it,
        // in one pass; only the tail is copied into the buffer.
        if let Some(chunk) = owned {
            // `bytes` is the end of the chunk (its start completed a record).
            let start = chunk.len() - bytes.len();
            let mut at = 0;
            while let Ok(Some((head, used))) = self.decode_record(&bytes[at..]) {
                let packet = head.sliced_from(chunk, start + at);
                at += used;
                self.ready_packet(packet, used);
            }
            self.buf.extend_from_slice(&bytes[at..]);
            return;
        }
        // Or copied once into one chunk their packets share.
        let mut whole = 0;
        while let Ok(Some(len)) = self.record_len(&bytes[whole..]) {
            if bytes.len() - whole < len {
                break;
            }
            whole += len;
        }
        if whole > 0 {
            let shared = Bytes::copy_from_slice(&bytes[..whole]);
            let mut at = 0;
            while let Ok(Some((head, used))) = self.decode_record(&shared[at..]) {
                let packet = head.sliced_from(&shared, at);
                at += used;
                self.ready_packet(packet, used);
            }
            debug_assert_eq!(at, whole);
        }
        self.buf.extend_from_slice(&bytes[whole..]);
    }

    /// Drops consumed bytes, so the buffer holds at most one partial record plus
    /// the new chunk, never the whole history.
    fn compact(&mut self) {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }

    fn ready_packet(&mut self, packet: Packet, record_len: usize) {
        self.ready.push_back(packet);
        self.ready_bytes += record_len;
    }

    /// The header once 24 bytes have arrived and were valid.
    pub fn header(&self) -> Option<&StreamHeader> {
        self.header.as_ref()
    }

    /// Bytes received but not yet consumed (a partial record at end of stream).
    pub fn pending_bytes(&self) -> usize {
        self.ready_bytes + self.buf.len() - self.pos
    }

    /// Next complete packet, `Ok(None)` if more bytes are needed.
    ///
    /// Errors are not consumed: calling again returns the same error.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, Error> {
        if let Some(packet) = self.ready.pop_front() {
            self.ready_bytes -= PCAP_RECORD_HEADER_LEN + packet.data.len();
            return Ok(Some(packet));
        }
        if self.header.is_none() {
            match self.parse_header()? {
                Some(header) => self.header = Some(header),
                None => return Ok(None),
            }
        }
        match self.decode_record(&self.buf[self.pos..])? {
            Some((head, used)) => {
                let packet = head.copied_from(&self.buf[self.pos..]);
                self.pos += used;
                Ok(Some(packet))
            }
            None => Ok(None),
        }
    }

    /// Length (header included) of the record `avail` starts with, once its
    /// header is there; the header must have been parsed.
    fn record_len(&self, avail: &[u8]) -> Result<Option<usize>, Error> {
        let Some(rec) = avail.first_chunk::<PCAP_RECORD_HEADER_LEN>() else {
            return Ok(None);
        };
        let caplen = self.field(rec, 8);
        if caplen > self.max_caplen {
            return Err(Error::RecordTooLarge {
                caplen: caplen.into(),
                limit: self.max_caplen.into(),
            });
        }
        Ok(Some(PCAP_RECORD_HEADER_LEN + caplen as usize))
    }

    /// The record `avail` starts with and its length, `Ok(None)` if it is not
    /// complete yet; the header must have been parsed.
    #[inline]
    fn decode_record(&self, avail: &[u8]) -> Result<Option<(RecordHead, usize)>, Error> {
        let Some(end) = self.record_len(avail)? else {
            return Ok(None);
        };
        let Some(record) = avail.get(..end) else {
            return Ok(None);
        };
        let rec = record
            .first_chunk::<PCAP_RECORD_HEADER_LEN>()
            .expect("record_len saw the record header");
        let (secs, frac, orig_len) = (self.field(rec, 0), self.field(rec, 4), self.field(rec, 12));
        let nanosecond = self.header.as_ref().is_some_and(|h| h.nanosecond);
        let frac_nanos = if nanosecond {
            u64::from(frac)
        } else {
            u64::from(frac) * 1_000
        };
        let head = RecordHead {
            ts_nanos: u64::from(secs) * 1_000_000_000 + frac_nanos,
            orig_len,
            data: PCAP_RECORD_HEADER_LEN..end,
        };
        Ok(Some((head, end)))
    }

    /// The record header's 32-bit field at byte `i`, in the stream's byte order.
    #[inline]
    fn field(&self, rec: &[u8; PCAP_RECORD_HEADER_LEN], i: usize) -> u32 {
        let b = [rec[i], rec[i + 1], rec[i + 2], rec[i + 3]];
        if self.header.as_ref().is_some_and(|h| h.big_endian) {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    fn parse_header(&mut self) -> Result<Option<StreamHeader>, Error> {
        let avail = &self.buf[self.pos..];
        let Some(magic) = avail.first_chunk::<4>() else {
            // Fail early on a short banner such as "Hi\n" that can never
            // become a magic number, instead of waiting for more bytes.
            let could_be_magic = [
                PCAP_MAGIC_MICROS,
                PCAP_MAGIC_NANOS,
                crate::format::BLOCK_SHB,
            ]
            .iter()
            .flat_map(|m| [m.to_le_bytes(), m.to_be_bytes()])
            .any(|m| m.starts_with(avail));
            if could_be_magic {
                return Ok(None);
            }
            return Err(Error::NotPcap {
                start: avail.escape_ascii().to_string(),
            });
        };
        let (nanosecond, big_endian) =
            match (u32::from_le_bytes(*magic), u32::from_be_bytes(*magic)) {
                (PCAP_MAGIC_MICROS, _) => (false, false),
                (PCAP_MAGIC_NANOS, _) => (true, false),
                (_, PCAP_MAGIC_MICROS) => (false, true),
                (_, PCAP_MAGIC_NANOS) => (true, true),
                (crate::format::BLOCK_SHB, _) => return Err(Error::PcapngStream),
                _ => {
                    let shown = &avail[..avail.len().min(SHOWN_PREFIX)];
                    return Err(Error::NotPcap {
                        start: shown.escape_ascii().to_string(),
                    });
                }
            };
        let Some(h) = avail.first_chunk::<PCAP_HEADER_LEN>() else {
            return Ok(None);
        };
        let u16_at = |i: usize| {
            let b = [h[i], h[i + 1]];
            if big_endian {
                u16::from_be_bytes(b)
            } else {
                u16::from_le_bytes(b)
            }
        };
        let u32_at = |i: usize| {
            let b = [h[i], h[i + 1], h[i + 2], h[i + 3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let (major, minor) = (u16_at(4), u16_at(6));
        if major != 2 {
            return Err(Error::UnsupportedVersion {
                format: "pcap",
                major,
                minor,
            });
        }
        let snaplen = u32_at(16);
        // The upper 16 bits of the link-type field carry FCS flags, not the type.
        let link_type = LinkType(u32_at(20) & 0xffff);
        // A snaplen of 0 means "unlimited" to some writers.
        let effective = if snaplen == 0 {
            MAX_STREAM_CAPLEN
        } else {
            snaplen
        };
        self.max_caplen = effective
            .saturating_add(SNAPLEN_SLACK)
            .min(MAX_STREAM_CAPLEN);
        self.pos += PCAP_HEADER_LEN;
        Ok(Some(StreamHeader {
            link_type,
            snaplen,
            nanosecond,
            big_endian,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A nanosecond pcap stream (Ethernet) of `records` records of `len` bytes,
    /// record `i` filled with the byte `i` and stamped `i` seconds.
    fn stream(records: u32, len: u32) -> Vec<u8> {
        let mut stream = Vec::new();
        stream.extend(PCAP_MAGIC_NANOS.to_le_bytes());
        stream.extend([2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        stream.extend(65535u32.to_le_bytes());
        stream.extend(1u32.to_le_bytes());
        for i in 0..records {
            stream.extend(i.to_le_bytes());
            stream.extend(0u32.to_le_bytes());
            stream.extend(len.to_le_bytes());
            stream.extend(len.to_le_bytes());
            stream.extend(std::iter::repeat_n(i as u8, len as usize));
        }
        stream
    }

    /// The whole records of one push share one chunk (each packet's data is
    /// where its record put it, 16 header bytes after the one before); a
    /// record completed from the buffer has data of its own.
    #[test]
    fn packets_of_one_push_share_its_chunk() {
        let stream = stream(4, 100);
        let mut decoder = StreamDecoder::new();
        decoder.push(&stream[..24]);
        assert!(
            decoder.next_packet().unwrap().is_none(),
            "the header is read"
        );
        // Three whole records and a part of the fourth, then its rest.
        decoder.push(&stream[24..24 + 3 * 116 + 50]);
        decoder.push(&stream[24 + 3 * 116 + 50..]);
        let packets: Vec<Packet> = std::iter::from_fn(|| decoder.next_packet().unwrap()).collect();
        assert_eq!(packets.len(), 4);
        for (i, p) in packets.iter().enumerate() {
            assert_eq!(p.data[..], [i as u8; 100]);
        }
        for pair in packets[..3].windows(2) {
            let next = pair[0]
                .data
                .as_ptr()
                .wrapping_add(100 + PCAP_RECORD_HEADER_LEN);
            assert_eq!(next, pair[1].data.as_ptr());
        }
        let mut own = packets[1].clone();
        own.own_data();
        assert_eq!(own, packets[1]);
        assert_ne!(own.data.as_ptr(), packets[1].data.as_ptr());
    }

    /// A chunk given away is shared by its packets, not copied; one that uses
    /// little of its allocation is copied, so it does not stay pinned.
    #[test]
    fn a_chunk_given_away_is_shared_unless_mostly_empty() {
        let stream = stream(4, 100);
        let mut decoder = StreamDecoder::new();
        decoder.push(&stream[..24]);
        assert!(decoder.next_packet().unwrap().is_none());
        let chunk = stream[24..].to_vec();
        let at = chunk.as_ptr();
        decoder.push_vec(chunk);
        let first = decoder.next_packet().unwrap().unwrap();
        assert_eq!(first.data.as_ptr(), at.wrapping_add(PCAP_RECORD_HEADER_LEN));
        let mut sparse = Vec::with_capacity(1 << 20);
        sparse.extend_from_slice(&stream[24 + 116..24 + 2 * 116]);
        let at = sparse.as_ptr();
        let mut decoder = StreamDecoder::new();
        decoder.push(&stream[..24]);
        decoder.push_vec(sparse);
        let packet = decoder.next_packet().unwrap().unwrap();
        assert_eq!(packet.data[..], [1u8; 100]);
        assert_ne!(
            packet.data.as_ptr(),
            at.wrapping_add(PCAP_RECORD_HEADER_LEN)
        );
    }

    /// A long stream pushed in chunks never makes the buffer hold more than
    /// one chunk plus one partial record.
    #[test]
    fn buffer_stays_bounded() {
        let stream = stream(20_000, 1500);
        let record_len = 16 + 1500;
        let chunk = 4096;
        let mut decoder = StreamDecoder::new();
        let mut count = 0;
        for piece in stream.chunks(chunk) {
            decoder.push(piece);
            while let Some(packet) = decoder.next_packet().unwrap() {
                assert_eq!(packet.data[0], count as u8);
                count += 1;
            }
            assert!(
                decoder.buf.len() <= chunk + record_len,
                "{}",
                decoder.buf.len()
            );
        }
        assert_eq!(count, 20_000);
        // Capacity too: growth is driven by the live bytes, not the history.
        assert!(decoder.buf.capacity() <= 4 * (chunk + record_len));
    }
}
