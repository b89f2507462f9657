//! Writer for pcapng files: one section, any number of interfaces (each with
//! nanosecond timestamps), packets with optional comments, and statistics.
//!
//! Everything is little-endian; blocks and options are 32-bit aligned.

use std::io::Write;
use std::net::IpAddr;

use crate::buffer::RecordBuffer;
use crate::format::{
    BLOCK_EPB, BLOCK_IDB, BLOCK_ISB, BLOCK_NRB, BLOCK_SHB, BYTE_ORDER_MAGIC, IF_DESCRIPTION,
    IF_NAME, IF_TSRESOL, ISB_ENDTIME, ISB_IFDROP, ISB_IFRECV, ISB_STARTTIME, NRB_RECORD_END,
    NRB_RECORD_IPV4, NRB_RECORD_IPV6, OPT_COMMENT, OPT_ENDOFOPT, SHB_HARDWARE, SHB_OS,
    SHB_USERAPPL, pad4,
};
use crate::{Error, LinkType, Packet};

/// if_tsresol value 9: timestamps count nanoseconds, matching [`Packet::ts_nanos`].
const TSRESOL_NANOS: u8 = 9;
/// Block type + total length at the start, total length again at the end.
const BLOCK_OVERHEAD: usize = 12;
/// Name records per Name Resolution Block: a big cluster's names go out in
/// blocks of bounded size rather than one block of megabytes.
const NAMES_PER_BLOCK: usize = 512;
/// Longest name written (DNS names are at most 253 bytes).
const MAX_NAME: usize = 255;

/// What an Interface Description Block says about one capture interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceDescription {
    pub link_type: LinkType,
    pub snaplen: u32,
    /// Shown by Wireshark as the interface name (`frame.interface_name`), e.g. "node1:eth0".
    pub name: String,
    pub description: Option<String>,
}

/// Counters for an Interface Statistics Block; unknown values are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceStatistics {
    /// When the statistics were taken, nanoseconds since the Unix epoch.
    pub timestamp_nanos: u64,
    pub start_nanos: Option<u64>,
    pub end_nanos: Option<u64>,
    /// Packets received by the interface (isb_ifrecv).
    pub received: Option<u64>,
    /// Packets dropped by the interface or capture buffer (isb_ifdrop).
    pub dropped: Option<u64>,
}

/// pcapng writer; blocks reach `inner` only whole (see [`Self::flush`]).
#[derive(Debug)]
pub struct PcapngWriter<W: Write> {
    out: RecordBuffer<W>,
    interfaces: u32,
}

impl<W: Write> PcapngWriter<W> {
    /// Starts a section whose shb_userappl is `user_application` (e.g. "kcap 0.1.0").
    pub fn new(inner: W, user_application: &str) -> Result<Self, Error> {
        Self::with_section(inner, user_application, None, None)
    }

    /// Like [`Self::new`], also recording shb_hardware and shb_os when given.
    pub fn with_section(
        inner: W,
        user_application: &str,
        hardware: Option<&str>,
        os: Option<&str>,
    ) -> Result<Self, Error> {
        let options = [
            (SHB_HARDWARE, hardware.map(str::as_bytes)),
            (SHB_OS, os.map(str::as_bytes)),
            (SHB_USERAPPL, Some(user_application.as_bytes())),
        ];
        let options = Options::new(&options);
        let mut out = RecordBuffer::new(inner);
        let total = BLOCK_OVERHEAD + 16 + options.len();
        let buf = out.begin_record(total)?;
        put_block_start(buf, BLOCK_SHB, total);
        buf.extend_from_slice(&BYTE_ORDER_MAGIC.to_le_bytes());
        buf.extend_from_slice(&1u16.to_le_bytes());
        buf.extend_from_slice(&0u16.to_le_bytes());
        // Section length -1: unknown, since we stream.
        buf.extend_from_slice(&(-1i64).to_le_bytes());
        options.put(buf);
        put_block_end(buf, total);
        out.end_record()?;
        Ok(Self { out, interfaces: 0 })
    }

    /// Writes an Interface Description Block and returns its interface id
    /// (0, 1, ...). May be called at any time, also after packets were written.
    pub fn add_interface(&mut self, iface: &InterfaceDescription) -> Result<u32, Error> {
        let tsresol = [TSRESOL_NANOS];
        let options = [
            (
                IF_NAME,
                Some(iface.name.as_bytes()).filter(|n| !n.is_empty()),
            ),
            (
                IF_DESCRIPTION,
                iface.description.as_deref().map(str::as_bytes),
            ),
            (IF_TSRESOL, Some(&tsresol[..])),
        ];
        let options = Options::new(&options);
        let total = BLOCK_OVERHEAD + 8 + options.len();
        let buf = self.out.begin_record(total)?;
        put_block_start(buf, BLOCK_IDB, total);
        // The link-type field is 16 bits wide in pcapng.
        buf.extend_from_slice(&(iface.link_type.0 as u16).to_le_bytes());
        buf.extend_from_slice(&0u16.to_le_bytes());
        buf.extend_from_slice(&iface.snaplen.to_le_bytes());
        options.put(buf);
        put_block_end(buf, total);
        self.out.end_record()?;
        let id = self.interfaces;
        self.interfaces += 1;
        Ok(id)
    }

    /// Writes an Enhanced Packet Block, with an opt_comment if `comment` is given.
    pub fn write_packet(
        &mut self,
        interface_id: u32,
        packet: &Packet,
        comment: Option<&str>,
    ) -> Result<(), Error> {
        self.check_interface(interface_id)?;
        let caplen = u32::try_from(packet.data.len())
            .ok()
            .filter(|&len| len < u32::MAX - 1024)
            .ok_or(Error::PacketTooLarge {
                len: packet.data.len(),
            })?;
        let options = [(OPT_COMMENT, comment.map(str::as_bytes))];
        let options = Options::new(&options);
        let padded = pad4(packet.data.len());
        let total = BLOCK_OVERHEAD + 20 + padded + options.len();
        let mut fixed = [0u8; 28];
        fixed[0..4].copy_from_slice(&BLOCK_EPB.to_le_bytes());
        fixed[4..8].copy_from_slice(&(total as u32).to_le_bytes());
        fixed[8..12].copy_from_slice(&interface_id.to_le_bytes());
        fixed[12..16].copy_from_slice(&((packet.ts_nanos >> 32) as u32).to_le_bytes());
        fixed[16..20].copy_from_slice(&(packet.ts_nanos as u32).to_le_bytes());
        fixed[20..24].copy_from_slice(&caplen.to_le_bytes());
        fixed[24..28].copy_from_slice(&packet.orig_len.to_le_bytes());
        let buf = self.out.begin_record(total)?;
        buf.extend_from_slice(&fixed);
        buf.extend_from_slice(&packet.data);
        buf.extend_from_slice(&[0u8; 3][..padded - packet.data.len()]);
        options.put(buf);
        put_block_end(buf, total);
        self.out.end_record()
    }

    /// Writes Name Resolution Blocks giving `names` to their addresses, so that
    /// Wireshark (and `tshark -N n`) shows the names instead of the addresses.
    /// May be called at any time; a reader applies names to the whole file.
    pub fn write_names(&mut self, names: &[(IpAddr, &str)]) -> Result<(), Error> {
        for block in names.chunks(NAMES_PER_BLOCK) {
            let record_len = |(ip, name): &(IpAddr, &str)| {
                let address = if ip.is_ipv4() { 4 } else { 16 };
                4 + pad4(address + clip(name).len() + 1)
            };
            // The records, then nrb_record_end.
            let total = BLOCK_OVERHEAD + block.iter().map(record_len).sum::<usize>() + 4;
            let buf = self.out.begin_record(total)?;
            put_block_start(buf, BLOCK_NRB, total);
            for (ip, name) in block {
                let name = clip(name);
                let (kind, octets) = match ip {
                    IpAddr::V4(v4) => (NRB_RECORD_IPV4, v4.octets().to_vec()),
                    IpAddr::V6(v6) => (NRB_RECORD_IPV6, v6.octets().to_vec()),
                };
                let value = octets.len() + name.len() + 1;
                buf.extend_from_slice(&kind.to_le_bytes());
                buf.extend_from_slice(&(value as u16).to_le_bytes());
                buf.extend_from_slice(&octets);
                buf.extend_from_slice(name.as_bytes());
                buf.push(0);
                buf.extend_from_slice(&[0u8; 3][..pad4(value) - value]);
            }
            buf.extend_from_slice(&NRB_RECORD_END.to_le_bytes());
            buf.extend_from_slice(&0u16.to_le_bytes());
            put_block_end(buf, total);
            self.out.end_record()?;
        }
        Ok(())
    }

    /// Writes an Interface Statistics Block with the counters that are known.
    pub fn write_statistics(
        &mut self,
        interface_id: u32,
        stats: &InterfaceStatistics,
    ) -> Result<(), Error> {
        self.check_interface(interface_id)?;
        let start = stats.start_nanos.map(split_timestamp);
        let end = stats.end_nanos.map(split_timestamp);
        let received = stats.received.map(u64::to_le_bytes);
        let dropped = stats.dropped.map(u64::to_le_bytes);
        let options = [
            (ISB_STARTTIME, start.as_ref().map(|v| &v[..])),
            (ISB_ENDTIME, end.as_ref().map(|v| &v[..])),
            (ISB_IFRECV, received.as_ref().map(|v| &v[..])),
            (ISB_IFDROP, dropped.as_ref().map(|v| &v[..])),
        ];
        let options = Options::new(&options);
        let total = BLOCK_OVERHEAD + 12 + options.len();
        let buf = self.out.begin_record(total)?;
        put_block_start(buf, BLOCK_ISB, total);
        buf.extend_from_slice(&interface_id.to_le_bytes());
        buf.extend_from_slice(&split_timestamp(stats.timestamp_nanos));
        options.put(buf);
        put_block_end(buf, total);
        self.out.end_record()
    }

    /// Writes all buffered blocks and flushes the inner writer.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.out.flush()
    }

    /// Bytes buffered but not yet handed to the inner writer.
    pub fn buffered_len(&self) -> usize {
        self.out.buffered_len()
    }

    /// After a failed write: how many bytes at the end of what the inner writer
    /// took belong to a block it took only part of (cut them off a file, and it
    /// ends at a block boundary). Counted once.
    pub fn take_torn(&mut self) -> u64 {
        self.out.take_torn()
    }

    /// Flushes and returns the inner writer.
    pub fn into_inner(self) -> Result<W, Error> {
        self.out.into_inner()
    }

    fn check_interface(&self, interface_id: u32) -> Result<(), Error> {
        if interface_id < self.interfaces {
            Ok(())
        } else {
            Err(Error::UnknownInterface { interface_id })
        }
    }
}

/// A name as written in a name record: at most [`MAX_NAME`] bytes (cut at a
/// character boundary), without NULs (they end a name).
fn clip(name: &str) -> &str {
    let name = name.split('\0').next().unwrap_or_default();
    let mut end = name.len().min(MAX_NAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// pcapng stores 64-bit timestamps as the high then the low 32-bit word.
fn split_timestamp(nanos: u64) -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&((nanos >> 32) as u32).to_le_bytes());
    out[4..].copy_from_slice(&(nanos as u32).to_le_bytes());
    out
}

fn put_block_start(buf: &mut Vec<u8>, block_type: u32, total: usize) {
    buf.extend_from_slice(&block_type.to_le_bytes());
    buf.extend_from_slice(&(total as u32).to_le_bytes());
}

fn put_block_end(buf: &mut Vec<u8>, total: usize) {
    buf.extend_from_slice(&(total as u32).to_le_bytes());
}

/// The options of a block (absent ones are `None`), with their encoded length
/// known up front so the block's total length can be written before its body.
/// A fixed array rather than a Vec: no allocation per packet.
struct Options<'a, const N: usize>([(u16, Option<&'a [u8]>); N]);

impl<'a, const N: usize> Options<'a, N> {
    fn new(options: &[(u16, Option<&'a [u8]>); N]) -> Self {
        Self(options.map(|(code, value)| (code, value.map(truncate_option))))
    }

    fn present(&self) -> impl Iterator<Item = (u16, &'a [u8])> + '_ {
        self.0
            .iter()
            .filter_map(|&(code, value)| Some((code, value?)))
    }

    /// Encoded length including opt_endofopt, or 0 when there are no options.
    fn len(&self) -> usize {
        let body: usize = self.present().map(|(_, v)| 4 + pad4(v.len())).sum();
        if body == 0 { 0 } else { body + 4 }
    }

    fn put(&self, buf: &mut Vec<u8>) {
        let mut any = false;
        for (code, value) in self.present() {
            any = true;
            buf.extend_from_slice(&code.to_le_bytes());
            buf.extend_from_slice(&(value.len() as u16).to_le_bytes());
            buf.extend_from_slice(value);
            buf.extend_from_slice(&[0u8; 3][..pad4(value.len()) - value.len()]);
        }
        if any {
            buf.extend_from_slice(&OPT_ENDOFOPT.to_le_bytes());
            buf.extend_from_slice(&0u16.to_le_bytes());
        }
    }
}

/// Option lengths are 16 bits; longer values (only ever free text such as
/// comments) are cut at a UTF-8 character boundary rather than failing the capture.
fn truncate_option(value: &[u8]) -> &[u8] {
    const MAX: usize = u16::MAX as usize;
    if value.len() <= MAX {
        return value;
    }
    let mut end = MAX;
    // Step back over UTF-8 continuation bytes (0b10xxxxxx).
    while end > 0 && value[end] & 0xc0 == 0x80 {
        end -= 1;
    }
    &value[..end]
}
