//! Streaming reader for capture files, classic pcap or pcapng, in either byte
//! order. Reads one record at a time; the file is never loaded as a whole.
//!
//! A file that ends inside a record yields [`Error::Truncated`], so a capture
//! that was cut short can be told from one that ended cleanly.

mod pcap;
mod pcapng;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::format::{BLOCK_SHB, PCAP_MAGIC_MICROS, PCAP_MAGIC_NANOS};
use crate::{Error, InterfaceStatistics, LinkType, Packet};

/// The container format of a capture file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap,
    Pcapng,
}

/// What the file says about one capture interface (for pcap: the only one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceInfo {
    pub link_type: LinkType,
    pub snaplen: u32,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Raw if_tsresol: bit 7 clear means 10^-n seconds per tick, set means
    /// 2^-n. pcapng defaults to 6 (microseconds); pcap is 6 or 9.
    pub tsresol: u8,
    /// if_tsoffset: seconds added to every timestamp of this interface.
    pub ts_offset_secs: i64,
}

impl InterfaceInfo {
    /// Converts a timestamp in this interface's ticks to nanoseconds since the epoch.
    pub fn ticks_to_nanos(&self, ticks: u64) -> u64 {
        let exp = u32::from(self.tsresol & 0x7f);
        let nanos: u128 = if self.tsresol & 0x80 != 0 {
            (u128::from(ticks) * 1_000_000_000) >> exp
        } else if exp <= 9 {
            u128::from(ticks) * 10u128.pow(9 - exp)
        } else {
            10u128
                .checked_pow(exp - 9)
                .map_or(0, |div| u128::from(ticks) / div)
        };
        let offset = i128::from(self.ts_offset_secs) * 1_000_000_000;
        (nanos as i128 + offset).clamp(0, u64::MAX.into()) as u64
    }
}

/// What a pcapng Section Header Block says about the software that wrote it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SectionInfo {
    pub user_application: Option<String>,
    pub hardware: Option<String>,
    pub os: Option<String>,
}

/// One packet read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Index into [`CaptureFileReader::interfaces`]. For pcapng files with
    /// several sections, ids continue across sections instead of restarting.
    pub interface_id: u32,
    pub packet: Packet,
    /// The packet's opt_comments, one per line, if any.
    pub comment: Option<String>,
}

/// An Interface Statistics Block as read, timestamps converted to nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatisticsRecord {
    pub interface_id: u32,
    pub statistics: InterfaceStatistics,
}

/// Opens a capture file for streaming reads.
pub fn open(path: &Path) -> Result<CaptureFileReader<BufReader<File>>, Error> {
    let file = File::open(path).map_err(|source| Error::Open {
        path: path.to_owned(),
        source,
    })?;
    CaptureFileReader::new(BufReader::with_capacity(256 * 1024, file))
}

#[derive(Debug, Clone, Copy)]
enum State {
    Pcap { big_endian: bool, nanosecond: bool },
    Pcapng { big_endian: bool, section_base: u32 },
}

/// Iterates over the records of a capture file; see [`open`].
#[derive(Debug)]
pub struct CaptureFileReader<R: Read> {
    input: R,
    /// Byte offset of the next unread byte.
    offset: u64,
    state: State,
    interfaces: Vec<InterfaceInfo>,
    statistics: Vec<StatisticsRecord>,
    /// The current pcapng section; `None` for pcap.
    section: Option<SectionInfo>,
    /// Reused block body buffer (pcapng).
    block: Vec<u8>,
    /// Names from Name Resolution Blocks not yet taken by [`Self::take_names`].
    names: Vec<(std::net::IpAddr, String)>,
    /// Set after the end or an error: the iterator is fused.
    done: bool,
}

impl<R: Read> CaptureFileReader<R> {
    /// Reads the file header (pcap) or first Section Header Block (pcapng).
    pub fn new(mut input: R) -> Result<Self, Error> {
        let mut magic = [0u8; 4];
        let n = fill(&mut input, &mut magic)?;
        if n < magic.len() {
            return Err(Error::Truncated { offset: 0 });
        }
        let mut reader = Self {
            input,
            offset: 4,
            state: State::Pcap {
                big_endian: false,
                nanosecond: false,
            },
            interfaces: Vec::new(),
            statistics: Vec::new(),
            section: None,
            block: Vec::new(),
            names: Vec::new(),
            done: false,
        };
        let (le, be) = (u32::from_le_bytes(magic), u32::from_be_bytes(magic));
        match (le, be) {
            (PCAP_MAGIC_MICROS | PCAP_MAGIC_NANOS, _) => reader.read_pcap_header(false, le)?,
            (_, PCAP_MAGIC_MICROS | PCAP_MAGIC_NANOS) => reader.read_pcap_header(true, be)?,
            (BLOCK_SHB, _) => reader.read_first_section()?,
            _ => {
                return Err(Error::NotPcap {
                    start: magic.escape_ascii().to_string(),
                });
            }
        }
        Ok(reader)
    }

    pub fn format(&self) -> Format {
        match self.state {
            State::Pcap { .. } => Format::Pcap,
            State::Pcapng { .. } => Format::Pcapng,
        }
    }

    /// Interfaces described so far; grows as pcapng IDBs are read.
    pub fn interfaces(&self) -> &[InterfaceInfo] {
        &self.interfaces
    }

    /// The current pcapng section header; `None` for classic pcap.
    pub fn section(&self) -> Option<&SectionInfo> {
        self.section.as_ref()
    }

    /// Interface Statistics Blocks read so far.
    pub fn statistics(&self) -> &[StatisticsRecord] {
        &self.statistics
    }

    /// Address names read (pcapng Name Resolution Blocks) since the last call.
    /// A reader that wants them takes them as they come, so they never pile up.
    pub fn take_names(&mut self) -> Vec<(std::net::IpAddr, String)> {
        std::mem::take(&mut self.names)
    }

    fn next_record(&mut self) -> Result<Option<Record>, Error> {
        match self.state {
            State::Pcap {
                big_endian,
                nanosecond,
            } => self.next_pcap_record(big_endian, nanosecond),
            State::Pcapng { .. } => self.next_pcapng_record(),
        }
    }

    /// Reads exactly `buf.len()` bytes of the record starting at `record_start`.
    /// Returns false on a clean end of input before the first byte if
    /// `eof_ok`; any other short read means the file was cut short.
    fn read_exact_or_eof(
        &mut self,
        buf: &mut [u8],
        record_start: u64,
        eof_ok: bool,
    ) -> Result<bool, Error> {
        let n = fill(&mut self.input, buf)?;
        self.offset += n as u64;
        if n == buf.len() {
            Ok(true)
        } else if n == 0 && eof_ok {
            Ok(false)
        } else {
            Err(Error::Truncated {
                offset: record_start,
            })
        }
    }
}

impl<R: Read> Iterator for CaptureFileReader<R> {
    type Item = Result<Record, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let result = self.next_record().transpose();
        if !matches!(result, Some(Ok(_))) {
            self.done = true;
        }
        result
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn fill(input: &mut impl Read, buf: &mut [u8]) -> Result<usize, Error> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Error::Io {
                    context: "reading capture",
                    source: e,
                });
            }
        }
    }
    Ok(n)
}

/// A whole capture file in memory: convenient for tests and small files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureFile {
    pub format: Format,
    pub interfaces: Vec<InterfaceInfo>,
    pub records: Vec<Record>,
    pub statistics: Vec<StatisticsRecord>,
}

impl CaptureFile {
    /// Reads every record of the file at `path`.
    pub fn read(path: &Path) -> Result<Self, Error> {
        Self::from_reader(open(path)?)
    }

    /// Collects the rest of `reader`.
    pub fn from_reader<R: Read>(mut reader: CaptureFileReader<R>) -> Result<Self, Error> {
        let records = reader.by_ref().collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            format: reader.format(),
            interfaces: reader.interfaces,
            records,
            statistics: reader.statistics,
        })
    }
}

/// Reads integers in the file's byte order.
#[derive(Debug, Clone, Copy)]
struct Endian {
    big: bool,
}

impl Endian {
    fn u16(self, b: &[u8], at: usize) -> u16 {
        let v = [b[at], b[at + 1]];
        if self.big {
            u16::from_be_bytes(v)
        } else {
            u16::from_le_bytes(v)
        }
    }

    fn u32(self, b: &[u8], at: usize) -> u32 {
        let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.big {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    }

    fn u64(self, b: &[u8], at: usize) -> u64 {
        let mut v = [0u8; 8];
        v.copy_from_slice(&b[at..at + 8]);
        if self.big {
            u64::from_be_bytes(v)
        } else {
            u64::from_le_bytes(v)
        }
    }

    /// A pcapng 64-bit timestamp: high 32-bit word first, then the low one.
    fn ts(self, b: &[u8], at: usize) -> u64 {
        (u64::from(self.u32(b, at)) << 32) | u64::from(self.u32(b, at + 4))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(tsresol: u8, ts_offset_secs: i64) -> InterfaceInfo {
        InterfaceInfo {
            link_type: LinkType::ETHERNET,
            snaplen: 0,
            name: None,
            description: None,
            tsresol,
            ts_offset_secs,
        }
    }

    #[test]
    fn ticks_convert_for_every_kind_of_resolution() {
        assert_eq!(iface(6, 0).ticks_to_nanos(1_500_000), 1_500_000_000);
        assert_eq!(iface(9, 0).ticks_to_nanos(123), 123);
        assert_eq!(iface(0, 0).ticks_to_nanos(2), 2_000_000_000);
        // Finer than nanoseconds: picoseconds are rounded down.
        assert_eq!(iface(12, 0).ticks_to_nanos(5_999), 5);
        // 2^-10 s: 1024 ticks per second.
        assert_eq!(iface(0x80 | 10, 0).ticks_to_nanos(512), 500_000_000);
        assert_eq!(iface(0x80, 0).ticks_to_nanos(3), 3_000_000_000);
        // if_tsoffset, also negative; results never go below the epoch.
        assert_eq!(iface(9, 2).ticks_to_nanos(1), 2_000_000_001);
        assert_eq!(iface(9, -1).ticks_to_nanos(1_500_000_000), 500_000_000);
        assert_eq!(iface(9, -10).ticks_to_nanos(1), 0);
        // Absurd resolutions do not panic.
        assert_eq!(iface(127, 0).ticks_to_nanos(u64::MAX), 0);
        assert_eq!(iface(0xff, 0).ticks_to_nanos(u64::MAX), 0);
    }
}
