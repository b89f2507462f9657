//! Push-based incremental decoder for a classic pcap byte stream, such as
//! `tcpdump -U -w -` arriving over SSH in arbitrary chunks.
//!
//! Memory stays bounded: consumed bytes are compacted away on the next push,
//! and an implausible record length is rejected before its body is awaited.

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

/// Push-based incremental decoder of a classic pcap byte stream.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    buf: Vec<u8>,
    /// Start of the unconsumed bytes in `buf`.
    pos: usize,
    header: Option<StreamHeader>,
    /// Upper bound for a record's captured length, derived from snaplen.
    max_caplen: u32,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes as they arrive (any chunking, down to 1 byte).
    pub fn push(&mut self, bytes: &[u8]) {
        // Compact before growing so the buffer holds at most one partial
        // record plus the new chunk, never the whole history.
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The header once 24 bytes have arrived and were valid.
    pub fn header(&self) -> Option<&StreamHeader> {
        self.header.as_ref()
    }

    /// Bytes received but not yet consumed (a partial record at end of stream).
    pub fn pending_bytes(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Next complete packet, `Ok(None)` if more bytes are needed.
    ///
    /// Errors are not consumed: calling again returns the same error.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, Error> {
        let header = match &self.header {
            Some(header) => header,
            None => match self.parse_header()? {
                Some(header) => self.header.insert(header),
                None => return Ok(None),
            },
        };
        let avail = &self.buf[self.pos..];
        let Some(rec) = avail.first_chunk::<PCAP_RECORD_HEADER_LEN>() else {
            return Ok(None);
        };
        let field = |i: usize| {
            let b = [rec[i], rec[i + 1], rec[i + 2], rec[i + 3]];
            if header.big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let (secs, frac, caplen, orig_len) = (field(0), field(4), field(8), field(12));
        if caplen > self.max_caplen {
            return Err(Error::RecordTooLarge {
                caplen: caplen.into(),
                limit: self.max_caplen.into(),
            });
        }
        let end = PCAP_RECORD_HEADER_LEN + caplen as usize;
        if avail.len() < end {
            return Ok(None);
        }
        let frac_nanos = if header.nanosecond {
            u64::from(frac)
        } else {
            u64::from(frac) * 1_000
        };
        let packet = Packet {
            ts_nanos: u64::from(secs) * 1_000_000_000 + frac_nanos,
            orig_len,
            data: avail[PCAP_RECORD_HEADER_LEN..end].to_vec(),
        };
        self.pos += end;
        Ok(Some(packet))
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

    /// A long stream pushed in chunks never makes the buffer hold more than
    /// one chunk plus one partial record.
    #[test]
    fn buffer_stays_bounded() {
        let mut stream = Vec::new();
        stream.extend(PCAP_MAGIC_NANOS.to_le_bytes());
        stream.extend([2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        stream.extend(65535u32.to_le_bytes());
        stream.extend(1u32.to_le_bytes());
        let record_len = 16 + 1500;
        for i in 0..20_000u32 {
            stream.extend(i.to_le_bytes());
            stream.extend(0u32.to_le_bytes());
            stream.extend(1500u32.to_le_bytes());
            stream.extend(1500u32.to_le_bytes());
            stream.extend(std::iter::repeat_n(i as u8, 1500));
        }
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
