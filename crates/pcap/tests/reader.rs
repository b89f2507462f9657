//! The file reader on inputs our writers never produce: big-endian pcapng,
//! other timestamp resolutions, several sections, SPB/OPB and unknown
//! blocks; plus clean end versus truncation at every possible cut.

mod common;

use std::io::Write;

use common::{parse_epoch, sample_packets, tshark, tshark_fields};
use kcap_pcap::{
    CaptureFile, CaptureFileReader, Error, Format, InterfaceDescription, LinkType, Packet,
    PcapWriter, PcapngWriter,
};

/// Builds pcapng blocks by hand in either byte order.
struct Ng {
    big: bool,
    out: Vec<u8>,
}

impl Ng {
    fn u16(&self, v: u16) -> [u8; 2] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn u32(&self, v: u32) -> [u8; 4] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn ts(&self, ticks: u64) -> Vec<u8> {
        [self.u32((ticks >> 32) as u32), self.u32(ticks as u32)].concat()
    }
    fn opt(&self, code: u16, value: &[u8]) -> Vec<u8> {
        let mut o = [self.u16(code), self.u16(value.len() as u16)].concat();
        o.extend(value);
        o.resize(o.len().next_multiple_of(4), 0);
        o
    }
    fn end_opt(&self) -> Vec<u8> {
        vec![0; 4]
    }
    fn block(&mut self, block_type: u32, body: &[u8]) {
        let mut body = body.to_vec();
        body.resize(body.len().next_multiple_of(4), 0);
        let len = (body.len() + 12) as u32;
        let (t, l) = (self.u32(block_type), self.u32(len));
        self.out.extend(t);
        self.out.extend(l);
        self.out.extend(body);
        self.out.extend(l);
    }
    fn section(&mut self, big: bool, user_appl: &str) {
        self.big = big;
        let mut body = [
            self.u32(0x1a2b_3c4d).to_vec(),
            self.u16(1).to_vec(),
            self.u16(0).to_vec(),
        ]
        .concat();
        body.extend((-1i64).to_le_bytes());
        body.extend(self.opt(4, user_appl.as_bytes()));
        body.extend(self.end_opt());
        self.block(0x0a0d_0d0a, &body);
    }
    fn idb(&mut self, link_type: u16, snaplen: u32, name: &str, options: &[Vec<u8>]) {
        let mut body = [
            self.u16(link_type).to_vec(),
            self.u16(0).to_vec(),
            self.u32(snaplen).to_vec(),
        ]
        .concat();
        body.extend(self.opt(2, name.as_bytes()));
        for o in options {
            body.extend(o);
        }
        body.extend(self.end_opt());
        self.block(1, &body);
    }
    fn epb(&mut self, iface: u32, ticks: u64, data: &[u8], orig_len: u32, comment: Option<&str>) {
        let mut body = self.u32(iface).to_vec();
        body.extend(self.ts(ticks));
        body.extend(self.u32(data.len() as u32));
        body.extend(self.u32(orig_len));
        body.extend(data);
        body.resize(body.len().next_multiple_of(4), 0);
        if let Some(c) = comment {
            body.extend(self.opt(1, c.as_bytes()));
            body.extend(self.end_opt());
        }
        self.block(6, &body);
    }
}

/// Two sections of opposite byte order with interfaces of different
/// resolutions, an SPB, an OPB, an NRB and a custom block in between.
/// (global interface id, packet, comment) as the reader should report it.
type Expected = (u32, Packet, Option<&'static str>);

fn exotic_file() -> (Vec<u8>, Vec<Expected>) {
    let mut ng = Ng {
        big: true,
        out: Vec::new(),
    };
    let mut expected = Vec::new();
    ng.section(true, "big-endian tool");
    // Interface 0: default resolution (microseconds) and a 10 s offset.
    let tsoffset = if ng.big {
        10u64.to_be_bytes()
    } else {
        10u64.to_le_bytes()
    };
    let tsoffset = ng.opt(14, &tsoffset);
    ng.idb(1, 65535, "be-micro", &[tsoffset]);
    // Interface 1: if_tsresol 2^-20 seconds.
    let binary = ng.opt(9, &[0x80 | 20]);
    ng.idb(101, 0, "be-binary", &[binary]);
    ng.epb(0, 1_700_000_000_123_456, b"abcde", 60, Some("first"));
    expected.push((
        0,
        Packet {
            ts_nanos: 1_700_000_010_123_456_000,
            orig_len: 60,
            data: b"abcde".to_vec().into(),
            comment: None,
        },
        Some("first"),
    ));
    // 3 * 2^20 + 2^19 ticks = 3.5 s.
    ng.epb(1, 3 * (1 << 20) + (1 << 19), b"xyz", 3, None);
    expected.push((
        1,
        Packet {
            ts_nanos: 3_500_000_000,
            orig_len: 3,
            data: b"xyz".to_vec().into(),
            comment: None,
        },
        None,
    ));
    // A Name Resolution Block and an unassigned block type: skipped.
    ng.block(4, &[0; 4]);
    ng.block(0x0000_0099, &[1, 2, 3, 4, 5, 6, 7, 8]);
    // Simple Packet Block on interface 0: data is cut to min(orig_len, block).
    let spb = [ng.u32(4).to_vec(), b"spb!".to_vec()].concat();
    ng.block(3, &spb);
    expected.push((
        0,
        Packet {
            ts_nanos: 0,
            orig_len: 4,
            data: b"spb!".to_vec().into(),
            comment: None,
        },
        None,
    ));

    ng.section(false, "little-endian tool");
    // Interface 0 of the second section is interface 2 overall; milliseconds.
    let millis = ng.opt(9, &[3]);
    ng.idb(1, 1500, "le-milli", &[millis]);
    ng.epb(0, 1_700_000_000_123, b"12345678", 8, Some("second section"));
    expected.push((
        2,
        Packet {
            ts_nanos: 1_700_000_000_123_000_000,
            orig_len: 8,
            data: b"12345678".to_vec().into(),
            comment: None,
        },
        Some("second section"),
    ));
    // Obsolete Packet Block: 16-bit interface id and drop count.
    let mut opb = [ng.u16(0).to_vec(), ng.u16(0).to_vec()].concat();
    opb.extend(ng.ts(42));
    opb.extend(ng.u32(2));
    opb.extend(ng.u32(2));
    opb.extend(b"ok\0\0");
    ng.block(2, &opb);
    expected.push((
        2,
        Packet {
            ts_nanos: 42_000_000,
            orig_len: 2,
            data: b"ok".to_vec().into(),
            comment: None,
        },
        None,
    ));
    (ng.out, expected)
}

#[test]
fn reads_exotic_pcapng() {
    let (bytes, expected) = exotic_file();
    let mut reader = CaptureFileReader::new(&bytes[..]).unwrap();
    assert_eq!(reader.format(), Format::Pcapng);
    assert_eq!(
        reader.section().unwrap().user_application.as_deref(),
        Some("big-endian tool")
    );
    let mut got = Vec::new();
    for record in reader.by_ref() {
        let record = record.unwrap();
        got.push((record.interface_id, record.packet, record.comment));
    }
    let expected: Vec<_> = expected
        .into_iter()
        .map(|(i, p, c)| (i, p, c.map(str::to_owned)))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(
        reader.section().unwrap().user_application.as_deref(),
        Some("little-endian tool")
    );
    let names: Vec<_> = reader
        .interfaces()
        .iter()
        .map(|i| i.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["be-micro", "be-binary", "le-milli"]);
    let links: Vec<_> = reader.interfaces().iter().map(|i| i.link_type).collect();
    assert_eq!(
        links,
        [LinkType::ETHERNET, LinkType::RAW, LinkType::ETHERNET]
    );
}

#[test]
fn exotic_pcapng_agrees_with_tshark() {
    let Some(tshark) = tshark() else { return };
    let (bytes, expected) = exotic_file();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&bytes).unwrap();
    file.flush().unwrap();
    let rows = tshark_fields(
        tshark,
        file.path(),
        &[
            "frame.time_epoch",
            "frame.len",
            "frame.cap_len",
            "frame.comment",
        ],
    );
    assert_eq!(rows.len(), expected.len());
    for (row, (_, packet, comment)) in rows.iter().zip(&expected) {
        // tshark shows no time for a Simple Packet Block; we report 0.
        let ts = if row[0].is_empty() {
            0
        } else {
            parse_epoch(&row[0])
        };
        assert_eq!(ts, packet.ts_nanos, "{row:?}");
        assert_eq!(row[1], packet.orig_len.to_string());
        assert_eq!(row[2], packet.data.len().to_string());
        assert_eq!(row[3], comment.unwrap_or(""));
    }
}

#[test]
fn reads_big_endian_microsecond_pcap() {
    let packets: Vec<Packet> = sample_packets(20, 12)
        .into_iter()
        .map(|mut p| {
            p.ts_nanos -= p.ts_nanos % 1000;
            p
        })
        .collect();
    let mut bytes = Vec::new();
    bytes.extend(0xa1b2_c3d4u32.to_be_bytes());
    bytes.extend(2u16.to_be_bytes());
    bytes.extend(4u16.to_be_bytes());
    bytes.extend([0; 8]);
    bytes.extend(9000u32.to_be_bytes());
    // FCS flags in the upper bits must not leak into the link type.
    bytes.extend((0x1000_0000u32 | 113).to_be_bytes());
    for p in &packets {
        bytes.extend(((p.ts_nanos / 1_000_000_000) as u32).to_be_bytes());
        bytes.extend(((p.ts_nanos % 1_000_000_000 / 1000) as u32).to_be_bytes());
        bytes.extend((p.data.len() as u32).to_be_bytes());
        bytes.extend(p.orig_len.to_be_bytes());
        bytes.extend(&p.data);
    }
    let reader = CaptureFileReader::new(&bytes[..]).unwrap();
    let file = CaptureFile::from_reader(reader).unwrap();
    assert_eq!(file.format, Format::Pcap);
    assert_eq!(file.interfaces[0].link_type, LinkType::LINUX_SLL);
    assert_eq!(file.interfaces[0].snaplen, 9000);
    assert_eq!(file.interfaces[0].tsresol, 6);
    let read: Vec<Packet> = file.records.into_iter().map(|r| r.packet).collect();
    assert_eq!(read, packets);
}

/// Cutting a file anywhere either ends cleanly at a record boundary (with
/// exactly the records before it) or reports `Truncated` at the start of the
/// record that was cut.
fn check_every_cut(bytes: &[u8], records_ends: &[usize], header_len: usize) {
    let boundaries = &[&[header_len], records_ends].concat();
    for cut in header_len..=bytes.len() {
        let reader = CaptureFileReader::new(&bytes[..cut]).unwrap();
        let results: Vec<_> = reader.collect();
        let complete = boundaries.iter().filter(|&&b| b <= cut).count();
        match boundaries.binary_search(&cut) {
            Ok(_) => {
                assert!(
                    results.iter().all(Result::is_ok),
                    "cut {cut} at boundary errs"
                );
            }
            Err(_) => {
                let (last, ok) = results.split_last().unwrap();
                assert!(ok.iter().all(Result::is_ok));
                let record_start = boundaries
                    .iter()
                    .rev()
                    .find(|&&b| b < cut)
                    .copied()
                    .unwrap_or(header_len);
                match last {
                    Err(Error::Truncated { offset }) => {
                        assert_eq!(*offset, record_start as u64, "cut {cut}")
                    }
                    other => panic!("cut {cut}: expected Truncated, got {other:?}"),
                }
            }
        }
        let packets = results.iter().filter(|r| r.is_ok()).count();
        assert!(packets <= complete);
    }
}

#[test]
fn pcap_cut_anywhere_is_clean_or_truncated() {
    let packets = sample_packets(12, 13);
    let mut writer = PcapWriter::new(Vec::new(), LinkType::ETHERNET, 65535).unwrap();
    let mut boundaries = Vec::new();
    let mut pos = 24;
    for p in &packets {
        writer.write_packet(p).unwrap();
        pos += 16 + p.data.len();
        boundaries.push(pos);
    }
    let bytes = writer.into_inner().unwrap();
    check_every_cut(&bytes, &boundaries, 24);
}

#[test]
fn pcapng_cut_anywhere_is_clean_or_truncated() {
    let mut writer = PcapngWriter::new(Vec::new(), "kcap test").unwrap();
    let shb_len = writer.buffered_len();
    let mut boundaries = Vec::new();
    let iface = InterfaceDescription {
        link_type: LinkType::ETHERNET,
        snaplen: 65535,
        name: "eth0".to_owned(),
        description: None,
    };
    writer.add_interface(&iface).unwrap();
    boundaries.push(writer.buffered_len());
    for (i, p) in sample_packets(10, 14).iter().enumerate() {
        writer
            .write_packet(0, p, (i % 2 == 0).then_some("c"))
            .unwrap();
        boundaries.push(writer.buffered_len());
    }
    let bytes = writer.into_inner().unwrap();
    check_every_cut(&bytes, &boundaries, shb_len);
    // Inside the first section header itself, the reader cannot even start.
    assert!(matches!(
        CaptureFileReader::new(&bytes[..shb_len - 1]),
        Err(Error::Truncated { offset: 0 })
    ));
}

#[test]
fn non_capture_files_are_rejected() {
    let err = CaptureFileReader::new(&b"Welcome to the machine\n"[..]).unwrap_err();
    assert!(matches!(err, Error::NotPcap { .. }), "{err:?}");
    assert!(matches!(
        CaptureFileReader::new(&b""[..]),
        Err(Error::Truncated { offset: 0 })
    ));
}

#[test]
fn corrupt_block_length_is_reported() {
    let mut writer = PcapngWriter::new(Vec::new(), "kcap test").unwrap();
    let shb_len = writer.buffered_len();
    let iface = InterfaceDescription {
        link_type: LinkType::RAW,
        snaplen: 0,
        name: String::new(),
        description: None,
    };
    writer.add_interface(&iface).unwrap();
    let mut bytes = writer.into_inner().unwrap();
    bytes[shb_len + 4] = 7; // IDB length no longer a multiple of 4
    let mut reader = CaptureFileReader::new(&bytes[..]).unwrap();
    let err = reader.next().unwrap().unwrap_err();
    assert!(
        matches!(err, Error::Malformed { offset, .. } if offset == shb_len as u64),
        "{err:?}"
    );
    assert!(reader.next().is_none(), "iterator is fused after an error");
}
