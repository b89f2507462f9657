//! The classic pcap part of the capture file reader.

use std::io::Read;

use super::{CaptureFileReader, Endian, InterfaceInfo, Record, State};
use crate::format::{PCAP_HEADER_LEN, PCAP_MAGIC_NANOS, PCAP_RECORD_HEADER_LEN};
use crate::{Error, LinkType, Packet};

/// Largest record accepted from a file. Larger than the live-stream limit
/// because files from other tools (e.g. USB captures) may exceed tcpdump's.
const MAX_FILE_CAPLEN: u32 = 16 * 1024 * 1024;

impl<R: Read> CaptureFileReader<R> {
    /// Reads the rest of the global header after the magic (`magic` already
    /// decoded in the detected byte order).
    pub(super) fn read_pcap_header(&mut self, big_endian: bool, magic: u32) -> Result<(), Error> {
        let mut rest = [0u8; PCAP_HEADER_LEN - 4];
        self.read_exact_or_eof(&mut rest, 0, false)?;
        let e = Endian { big: big_endian };
        let (major, minor) = (e.u16(&rest, 0), e.u16(&rest, 2));
        if major != 2 {
            return Err(Error::UnsupportedVersion {
                format: "pcap",
                major,
                minor,
            });
        }
        let nanosecond = magic == PCAP_MAGIC_NANOS;
        self.interfaces.push(InterfaceInfo {
            // The upper 16 bits carry FCS flags, not the link type.
            link_type: LinkType(e.u32(&rest, 16) & 0xffff),
            snaplen: e.u32(&rest, 12),
            name: None,
            description: None,
            tsresol: if nanosecond { 9 } else { 6 },
            ts_offset_secs: 0,
        });
        self.state = State::Pcap {
            big_endian,
            nanosecond,
        };
        Ok(())
    }

    pub(super) fn next_pcap_record(
        &mut self,
        big_endian: bool,
        nanosecond: bool,
    ) -> Result<Option<Record>, Error> {
        let start = self.offset;
        let mut header = [0u8; PCAP_RECORD_HEADER_LEN];
        if !self.read_exact_or_eof(&mut header, start, true)? {
            return Ok(None);
        }
        let e = Endian { big: big_endian };
        let (secs, frac, caplen, orig_len) = (
            e.u32(&header, 0),
            e.u32(&header, 4),
            e.u32(&header, 8),
            e.u32(&header, 12),
        );
        if caplen > MAX_FILE_CAPLEN {
            return Err(Error::RecordTooLarge {
                caplen: caplen.into(),
                limit: MAX_FILE_CAPLEN.into(),
            });
        }
        let mut data = vec![0u8; caplen as usize];
        self.read_exact_or_eof(&mut data, start, false)?;
        let frac_nanos = if nanosecond {
            u64::from(frac)
        } else {
            u64::from(frac) * 1_000
        };
        Ok(Some(Record {
            interface_id: 0,
            packet: Packet {
                ts_nanos: u64::from(secs) * 1_000_000_000 + frac_nanos,
                orig_len,
                data: data.into(),
                comment: None,
            },
            comment: None,
        }))
    }
}
