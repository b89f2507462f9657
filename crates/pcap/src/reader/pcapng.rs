//! The pcapng part of the capture file reader: sections, interfaces, packets
//! (EPB, SPB, obsolete PB), statistics and address names; other blocks are skipped.

use std::io::Read;

use super::{
    CaptureFileReader, Endian, InterfaceInfo, Record, SectionInfo, State, StatisticsRecord,
};
use crate::format::{
    BLOCK_EPB, BLOCK_IDB, BLOCK_ISB, BLOCK_NRB, BLOCK_OPB, BLOCK_SHB, BLOCK_SPB, BYTE_ORDER_MAGIC,
    IF_DESCRIPTION, IF_NAME, IF_TSOFFSET, IF_TSRESOL, ISB_ENDTIME, ISB_IFDROP, ISB_IFRECV,
    ISB_STARTTIME, NRB_RECORD_END, NRB_RECORD_IPV4, NRB_RECORD_IPV6, OPT_COMMENT, OPT_ENDOFOPT,
    SHB_HARDWARE, SHB_OS, SHB_USERAPPL, pad4,
};
use crate::{Error, InterfaceStatistics, LinkType, Packet};

/// Largest block accepted; a bigger length field means corruption, and
/// bounds the memory one block may take.
const MAX_BLOCK_LEN: u32 = 32 * 1024 * 1024;
/// if_tsresol when the option is absent: microseconds.
const DEFAULT_TSRESOL: u8 = 6;

impl<R: Read> CaptureFileReader<R> {
    /// Reads the first Section Header Block, whose block type was already consumed.
    pub(super) fn read_first_section(&mut self) -> Result<(), Error> {
        let mut len = [0u8; 4];
        self.read_exact_or_eof(&mut len, 0, false)?;
        self.read_section(0, len)
    }

    pub(super) fn next_pcapng_record(&mut self) -> Result<Option<Record>, Error> {
        loop {
            let start = self.offset;
            let mut head = [0u8; 8];
            if !self.read_exact_or_eof(&mut head, start, true)? {
                return Ok(None);
            }
            let e = self.endian();
            let block_type = e.u32(&head, 0);
            if block_type == BLOCK_SHB {
                self.read_section(start, [head[4], head[5], head[6], head[7]])?;
                continue;
            }
            let body = self.read_block_body(e, start, e.u32(&head, 4), 8)?;
            let result = self.parse_block(start, block_type, &body);
            self.block = body;
            if let Some(record) = result? {
                return Ok(Some(record));
            }
        }
    }

    /// The records of a Name Resolution Block (its options are skipped): an
    /// address, then one or more NUL-terminated names (the first is kept). A
    /// malformed record ends the block's names; names are a help, never a reason
    /// to refuse the packets.
    fn read_names(&mut self, e: Endian, body: &[u8]) {
        let mut at = 0;
        while at + 4 <= body.len() {
            let (kind, len) = (e.u16(body, at), e.u16(body, at + 2) as usize);
            let Some(value) = body.get(at + 4..at + 4 + len) else {
                return;
            };
            let address_len = match kind {
                NRB_RECORD_END => return,
                NRB_RECORD_IPV4 => 4,
                NRB_RECORD_IPV6 => 16,
                _ => 0,
            };
            if address_len > 0 && value.len() > address_len {
                let address = &value[..address_len];
                let ip = match <[u8; 16]>::try_from(address) {
                    Ok(v6) => std::net::IpAddr::from(v6),
                    Err(_) => {
                        std::net::IpAddr::from([address[0], address[1], address[2], address[3]])
                    }
                };
                let name = value[address_len..]
                    .split(|&b| b == 0)
                    .next()
                    .unwrap_or_default();
                if !name.is_empty() {
                    self.names
                        .push((ip, String::from_utf8_lossy(name).into_owned()));
                }
            }
            at += 4 + pad4(len);
        }
    }

    fn endian(&self) -> Endian {
        match self.state {
            State::Pcapng { big_endian, .. } => Endian { big: big_endian },
            State::Pcap { .. } => unreachable!("pcapng parsing of a pcap file"),
        }
    }

    /// Reads a Section Header Block after its type; `len` is the raw length
    /// field, which can only be decoded once the byte-order magic is known.
    fn read_section(&mut self, start: u64, len: [u8; 4]) -> Result<(), Error> {
        let mut bom = [0u8; 4];
        self.read_exact_or_eof(&mut bom, start, false)?;
        let big_endian = if u32::from_le_bytes(bom) == BYTE_ORDER_MAGIC {
            false
        } else if u32::from_be_bytes(bom) == BYTE_ORDER_MAGIC {
            true
        } else {
            return Err(malformed(start, "bad byte-order magic in section header"));
        };
        let e = Endian { big: big_endian };
        let body = self.read_block_body(e, start, e.u32(&len, 0), 12)?;
        let result = (|| {
            if body.len() < 12 {
                return Err(malformed(start, "section header too short"));
            }
            let (major, minor) = (e.u16(&body, 0), e.u16(&body, 2));
            if major != 1 {
                return Err(Error::UnsupportedVersion {
                    format: "pcapng",
                    major,
                    minor,
                });
            }
            let mut section = SectionInfo::default();
            for (code, value) in options(e, &body[12..]) {
                let text = || Some(String::from_utf8_lossy(value).into_owned());
                match code {
                    SHB_HARDWARE => section.hardware = text(),
                    SHB_OS => section.os = text(),
                    SHB_USERAPPL => section.user_application = text(),
                    _ => {}
                }
            }
            Ok(section)
        })();
        self.block = body;
        self.section = Some(result?);
        // Interface ids restart with each section; ours keep counting.
        let section_base = self.interfaces.len() as u32;
        self.state = State::Pcapng {
            big_endian,
            section_base,
        };
        Ok(())
    }

    /// Reads the rest of a block of `total` bytes of which `consumed` were
    /// read already, checks the trailing length, and returns the body between
    /// the already-read part and the trailer.
    fn read_block_body(
        &mut self,
        e: Endian,
        start: u64,
        total: u32,
        consumed: u32,
    ) -> Result<Vec<u8>, Error> {
        if !total.is_multiple_of(4) || total < consumed + 4 || total > MAX_BLOCK_LEN {
            return Err(malformed(start, format!("invalid block length {total}")));
        }
        let mut body = std::mem::take(&mut self.block);
        body.resize((total - consumed) as usize, 0);
        self.read_exact_or_eof(&mut body, start, false)?;
        let trailer = e.u32(&body, body.len() - 4);
        if trailer != total {
            return Err(malformed(
                start,
                format!("block length {total} but trailer says {trailer}"),
            ));
        }
        body.truncate(body.len() - 4);
        Ok(body)
    }

    fn parse_block(
        &mut self,
        start: u64,
        block_type: u32,
        body: &[u8],
    ) -> Result<Option<Record>, Error> {
        let e = self.endian();
        match block_type {
            BLOCK_EPB | BLOCK_OPB => {
                if body.len() < 20 {
                    return Err(malformed(start, "packet block too short"));
                }
                let local_id = if block_type == BLOCK_EPB {
                    e.u32(body, 0)
                } else {
                    u32::from(e.u16(body, 0))
                };
                let iface = self.interface(local_id)?;
                let (caplen, orig_len) = (e.u32(body, 12) as usize, e.u32(body, 16));
                let data_end = 20usize.saturating_add(caplen);
                if data_end > body.len() {
                    return Err(malformed(
                        start,
                        format!("captured length {caplen} exceeds block"),
                    ));
                }
                let opts_start = (20 + pad4(caplen)).min(body.len());
                // Several comments (kcap's, then one added in Wireshark) read as one.
                let mut comment: Option<String> = None;
                for (_, v) in options(e, &body[opts_start..]).filter(|&(c, _)| c == OPT_COMMENT) {
                    let text = String::from_utf8_lossy(v);
                    match &mut comment {
                        Some(all) => {
                            all.push('\n');
                            all.push_str(&text);
                        }
                        None => comment = Some(text.into_owned()),
                    }
                }
                Ok(Some(Record {
                    interface_id: iface,
                    packet: Packet {
                        ts_nanos: self.interfaces[iface as usize].ticks_to_nanos(e.ts(body, 4)),
                        orig_len,
                        data: bytes::Bytes::copy_from_slice(&body[20..data_end]),
                        comment: None,
                    },
                    comment,
                }))
            }
            BLOCK_SPB => {
                if body.len() < 4 {
                    return Err(malformed(start, "simple packet block too short"));
                }
                let iface = self.interface(0)?;
                let orig_len = e.u32(body, 0);
                let snaplen = self.interfaces[iface as usize].snaplen;
                // SPBs carry no caplen: it is the original length cut to snaplen.
                let mut caplen = (orig_len as usize).min(body.len() - 4);
                if snaplen != 0 {
                    caplen = caplen.min(snaplen as usize);
                }
                Ok(Some(Record {
                    interface_id: iface,
                    packet: Packet {
                        ts_nanos: 0,
                        orig_len,
                        data: bytes::Bytes::copy_from_slice(&body[4..4 + caplen]),
                        comment: None,
                    },
                    comment: None,
                }))
            }
            BLOCK_NRB => {
                self.read_names(e, body);
                Ok(None)
            }
            BLOCK_IDB => {
                if body.len() < 8 {
                    return Err(malformed(start, "interface description too short"));
                }
                let mut info = InterfaceInfo {
                    link_type: LinkType(u32::from(e.u16(body, 0))),
                    snaplen: e.u32(body, 4),
                    name: None,
                    description: None,
                    tsresol: DEFAULT_TSRESOL,
                    ts_offset_secs: 0,
                };
                for (code, value) in options(e, &body[8..]) {
                    let text = || Some(String::from_utf8_lossy(value).into_owned());
                    match code {
                        IF_NAME => info.name = text(),
                        IF_DESCRIPTION => info.description = text(),
                        IF_TSRESOL if !value.is_empty() => info.tsresol = value[0],
                        IF_TSOFFSET if value.len() == 8 => {
                            info.ts_offset_secs = e.u64(value, 0) as i64
                        }
                        _ => {}
                    }
                }
                self.interfaces.push(info);
                Ok(None)
            }
            BLOCK_ISB => {
                if body.len() < 12 {
                    return Err(malformed(start, "interface statistics too short"));
                }
                let interface_id = self.interface(e.u32(body, 0))?;
                let iface = &self.interfaces[interface_id as usize];
                let mut statistics = InterfaceStatistics {
                    timestamp_nanos: iface.ticks_to_nanos(e.ts(body, 4)),
                    ..Default::default()
                };
                for (code, value) in options(e, &body[12..]) {
                    if value.len() != 8 {
                        continue;
                    }
                    match code {
                        ISB_STARTTIME => {
                            statistics.start_nanos = Some(iface.ticks_to_nanos(e.ts(value, 0)))
                        }
                        ISB_ENDTIME => {
                            statistics.end_nanos = Some(iface.ticks_to_nanos(e.ts(value, 0)))
                        }
                        ISB_IFRECV => statistics.received = Some(e.u64(value, 0)),
                        ISB_IFDROP => statistics.dropped = Some(e.u64(value, 0)),
                        _ => {}
                    }
                }
                self.statistics.push(StatisticsRecord {
                    interface_id,
                    statistics,
                });
                Ok(None)
            }
            // Unknown and uninteresting blocks (NRB, DSB, custom, ...).
            _ => Ok(None),
        }
    }

    /// Maps a section-local interface id to an index into `interfaces`.
    fn interface(&self, local_id: u32) -> Result<u32, Error> {
        let State::Pcapng { section_base, .. } = self.state else {
            unreachable!("pcapng parsing of a pcap file")
        };
        let id = section_base.checked_add(local_id);
        match id {
            Some(id) if (id as usize) < self.interfaces.len() => Ok(id),
            _ => Err(Error::UnknownInterface {
                interface_id: local_id,
            }),
        }
    }
}

fn malformed(offset: u64, message: impl Into<String>) -> Error {
    Error::Malformed {
        offset,
        message: message.into(),
    }
}

/// Iterates over (code, value) of an options list. Lenient like Wireshark:
/// a missing opt_endofopt or an overrunning option just ends the list.
fn options(e: Endian, mut bytes: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if bytes.len() < 4 {
            return None;
        }
        let (code, len) = (e.u16(bytes, 0), e.u16(bytes, 2) as usize);
        if code == OPT_ENDOFOPT || 4 + len > bytes.len() {
            return None;
        }
        let value = &bytes[4..4 + len];
        bytes = &bytes[(4 + pad4(len)).min(bytes.len())..];
        Some((code, value))
    })
}
