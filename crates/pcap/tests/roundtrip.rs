//! Write pcap and pcapng with our writers, read them back with our reader,
//! with the independent `pcap-file` crate and with tshark, and compare.

mod common;

use std::fs::File;
use std::path::Path;

use common::{hex, parse_epoch, sample_packets, tshark, tshark_fields, tshark_frames_hex};
use kcap_pcap::{
    CaptureFile, Format, InterfaceDescription, InterfaceStatistics, LinkType, Packet, PcapWriter,
    PcapngWriter, Record, StatisticsRecord,
};

fn write_pcap(path: &Path, packets: &[Packet]) {
    let mut writer =
        PcapWriter::new(File::create(path).unwrap(), LinkType::ETHERNET, 65535).unwrap();
    for packet in packets {
        writer.write_packet(packet).unwrap();
    }
    writer.into_inner().unwrap();
}

#[test]
fn pcap_round_trip_with_our_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.pcap");
    let packets = sample_packets(300, 1);
    write_pcap(&path, &packets);

    let file = CaptureFile::read(&path).unwrap();
    assert_eq!(file.format, Format::Pcap);
    assert_eq!(file.interfaces.len(), 1);
    assert_eq!(file.interfaces[0].link_type, LinkType::ETHERNET);
    assert_eq!(file.interfaces[0].snaplen, 65535);
    assert_eq!(file.interfaces[0].tsresol, 9);
    let read: Vec<Packet> = file.records.into_iter().map(|r| r.packet).collect();
    assert_eq!(read, packets);
}

#[test]
fn pcap_round_trip_with_pcap_file_crate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.pcap");
    let packets = sample_packets(300, 2);
    write_pcap(&path, &packets);

    let mut reader = pcap_file::pcap::PcapReader::new(File::open(&path).unwrap()).unwrap();
    let header = reader.header();
    assert_eq!(header.ts_resolution, pcap_file::TsResolution::NanoSecond);
    assert_eq!(header.datalink, pcap_file::DataLink::ETHERNET);
    assert_eq!(header.snaplen, 65535);
    assert_eq!((header.version_major, header.version_minor), (2, 4));
    let mut count = 0;
    while let Some(packet) = reader.next_packet() {
        let packet = packet.unwrap();
        let expected = &packets[count];
        assert_eq!(packet.timestamp.as_nanos(), u128::from(expected.ts_nanos));
        assert_eq!(packet.orig_len, expected.orig_len);
        assert_eq!(&packet.data[..], &expected.data[..]);
        count += 1;
    }
    assert_eq!(count, packets.len());
}

#[test]
fn pcap_round_trip_with_tshark() {
    let Some(tshark) = tshark() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.pcap");
    let packets = sample_packets(100, 3);
    write_pcap(&path, &packets);

    let rows = tshark_fields(
        tshark,
        &path,
        &["frame.time_epoch", "frame.len", "frame.cap_len"],
    );
    assert_eq!(rows.len(), packets.len());
    for (row, packet) in rows.iter().zip(&packets) {
        assert_eq!(parse_epoch(&row[0]), packet.ts_nanos);
        assert_eq!(row[1], packet.orig_len.to_string());
        assert_eq!(row[2], packet.data.len().to_string());
    }
    let frames = tshark_frames_hex(tshark, &path);
    let expected: Vec<String> = packets.iter().map(|p| hex(&p.data)).collect();
    assert_eq!(frames, expected);
}

/// What the pcapng round trip writes, so every reader can be checked against it.
struct PcapngFixture {
    interfaces: Vec<InterfaceDescription>,
    records: Vec<Record>,
    statistics: Vec<StatisticsRecord>,
}

/// Three interfaces (the third added only after packets were written),
/// packets interleaved across them, comments on some, statistics at the end.
fn write_pcapng(path: &Path) -> PcapngFixture {
    let interfaces = vec![
        InterfaceDescription {
            link_type: LinkType::ETHERNET,
            snaplen: 262144,
            name: "node-a:eth0".to_owned(),
            description: Some("first node".to_owned()),
        },
        InterfaceDescription {
            link_type: LinkType::LINUX_SLL2,
            snaplen: 65535,
            name: "node-b:any".to_owned(),
            description: None,
        },
        InterfaceDescription {
            link_type: LinkType::RAW,
            snaplen: 1500,
            name: "pod/web-7d9f:eth0 ünïcode".to_owned(),
            description: Some("odd".to_owned()),
        },
    ];
    let comments = [
        None,
        Some("hello"),
        Some("ünïcode comment ✓"),
        None,
        Some("abc"),
    ];
    let mut writer = PcapngWriter::new(File::create(path).unwrap(), "kcap 0.1.0").unwrap();
    let mut records = Vec::new();
    let mut statistics = Vec::new();
    for (i, iface) in interfaces.iter().take(2).enumerate() {
        assert_eq!(writer.add_interface(iface).unwrap(), i as u32);
    }
    let packets = sample_packets(240, 4);
    for (i, packet) in packets.into_iter().enumerate() {
        if i == 120 {
            assert_eq!(writer.add_interface(&interfaces[2]).unwrap(), 2);
        }
        let interface_id = if i < 120 {
            (i % 2) as u32
        } else {
            (i % 3) as u32
        };
        let comment = comments[i % comments.len()];
        writer.write_packet(interface_id, &packet, comment).unwrap();
        records.push(Record {
            interface_id,
            packet,
            comment: comment.map(str::to_owned),
        });
    }
    for interface_id in 0..3 {
        let stats = InterfaceStatistics {
            timestamp_nanos: 1_800_000_000_000_000_001 + u64::from(interface_id),
            start_nanos: Some(1_700_000_000_000_000_007),
            end_nanos: (interface_id != 1).then_some(1_800_000_000_000_000_009),
            received: Some(1000 + u64::from(interface_id)),
            dropped: (interface_id != 2).then_some(7),
        };
        writer.write_statistics(interface_id, &stats).unwrap();
        statistics.push(StatisticsRecord {
            interface_id,
            statistics: stats,
        });
    }
    writer.into_inner().unwrap();
    PcapngFixture {
        interfaces,
        records,
        statistics,
    }
}

#[test]
fn pcapng_round_trip_with_our_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.pcapng");
    let fixture = write_pcapng(&path);

    let mut reader = kcap_pcap::open(&path).unwrap();
    assert_eq!(reader.format(), Format::Pcapng);
    assert_eq!(
        reader.section().unwrap().user_application.as_deref(),
        Some("kcap 0.1.0")
    );
    // Interfaces appear as their blocks are read.
    assert_eq!(reader.interfaces().len(), 0);
    let first = reader.next().unwrap().unwrap();
    assert_eq!(first, fixture.records[0]);
    assert_eq!(reader.interfaces().len(), 2);

    let file = CaptureFile::from_reader(reader).unwrap();
    assert_eq!(file.records, fixture.records[1..]);
    assert_eq!(file.statistics, fixture.statistics);
    assert_eq!(file.interfaces.len(), fixture.interfaces.len());
    for (read, written) in file.interfaces.iter().zip(&fixture.interfaces) {
        assert_eq!(read.link_type, written.link_type);
        assert_eq!(read.snaplen, written.snaplen);
        assert_eq!(read.name.as_deref(), Some(written.name.as_str()));
        assert_eq!(read.description, written.description);
        assert_eq!(read.tsresol, 9);
    }
}

#[test]
fn pcapng_round_trip_with_pcap_file_crate() {
    use pcap_file::pcapng::Block;
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
    use pcap_file::pcapng::blocks::interface_statistics::InterfaceStatisticsOption;
    use pcap_file::pcapng::blocks::section_header::SectionHeaderOption;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.pcapng");
    let fixture = write_pcapng(&path);

    let mut reader = pcap_file::pcapng::PcapNgReader::new(File::open(&path).unwrap()).unwrap();
    let section = reader.section().clone();
    assert!(
        section
            .options
            .contains(&SectionHeaderOption::UserApplication("kcap 0.1.0".into()))
    );
    let (mut names, mut records, mut stats) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(block) = reader.next_block() {
        match block.unwrap() {
            Block::InterfaceDescription(idb) => {
                assert!(
                    idb.options
                        .contains(&InterfaceDescriptionOption::IfTsResol(9))
                );
                let name = idb.options.iter().find_map(|o| match o {
                    InterfaceDescriptionOption::IfName(name) => Some(name.to_string()),
                    _ => None,
                });
                names.push((u32::from(idb.linktype), idb.snaplen, name));
            }
            Block::EnhancedPacket(epb) => {
                let comment = epb.options.iter().find_map(|o| match o {
                    EnhancedPacketOption::Comment(c) => Some(c.to_string()),
                    _ => None,
                });
                records.push(Record {
                    interface_id: epb.interface_id,
                    packet: Packet {
                        ts_nanos: epb.timestamp.as_nanos() as u64,
                        orig_len: epb.original_len,
                        data: epb.data.to_vec().into(),
                        comment: None,
                    },
                    comment,
                });
            }
            Block::InterfaceStatistics(isb) => {
                // pcap-file decodes isb_starttime/endtime as one u64 rather than
                // high/low words, so only the counters are compared.
                let counter = |want: fn(&InterfaceStatisticsOption) -> Option<u64>| {
                    isb.options.iter().find_map(want)
                };
                stats.push((
                    isb.interface_id,
                    counter(|o| match o {
                        InterfaceStatisticsOption::IsbIfRecv(v) => Some(*v),
                        _ => None,
                    }),
                    counter(|o| match o {
                        InterfaceStatisticsOption::IsbIfDrop(v) => Some(*v),
                        _ => None,
                    }),
                ));
            }
            other => panic!("unexpected block {other:?}"),
        }
    }
    let expected_names: Vec<_> = fixture
        .interfaces
        .iter()
        .map(|i| (i.link_type.0, i.snaplen, Some(i.name.clone())))
        .collect();
    assert_eq!(names, expected_names);
    assert_eq!(records, fixture.records);
    let expected_stats: Vec<_> = fixture
        .statistics
        .iter()
        .map(|s| (s.interface_id, s.statistics.received, s.statistics.dropped))
        .collect();
    assert_eq!(stats, expected_stats);
}

#[test]
fn pcapng_round_trip_with_tshark() {
    let Some(tshark) = tshark() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.pcapng");
    let fixture = write_pcapng(&path);

    let rows = tshark_fields(
        tshark,
        &path,
        &[
            "frame.interface_id",
            "frame.interface_name",
            "frame.comment",
            "frame.time_epoch",
            "frame.len",
            "frame.cap_len",
        ],
    );
    assert_eq!(rows.len(), fixture.records.len());
    for (row, record) in rows.iter().zip(&fixture.records) {
        let iface = &fixture.interfaces[record.interface_id as usize];
        assert_eq!(row[0], record.interface_id.to_string());
        assert_eq!(row[1], iface.name);
        assert_eq!(row[2], record.comment.clone().unwrap_or_default());
        assert_eq!(parse_epoch(&row[3]), record.packet.ts_nanos);
        assert_eq!(row[4], record.packet.orig_len.to_string());
        assert_eq!(row[5], record.packet.data.len().to_string());
    }
    let frames = tshark_frames_hex(tshark, &path);
    let expected: Vec<String> = fixture
        .records
        .iter()
        .map(|r| hex(&r.packet.data))
        .collect();
    assert_eq!(frames, expected);
}

/// An Ethernet frame carrying a UDP datagram between two IPv4 addresses.
fn udp_frame(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut frame = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    let mut ip = vec![0x45, 0, 0, 32, 0, 1, 0x40, 0, 64, 17, 0, 0];
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let sum = ip
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    frame.extend_from_slice(&ip);
    // Ports 40000 -> 53, length 12, no checksum, 4 bytes of payload.
    frame.extend_from_slice(&[0x9c, 0x40, 0, 53, 0, 12, 0, 0, 1, 2, 3, 4]);
    frame
}

#[test]
fn name_records_reach_tshark_and_our_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("names.pcapng");
    let mut writer = PcapngWriter::new(File::create(&path).unwrap(), "test").unwrap();
    let v6: std::net::IpAddr = "2001:db8::7".parse().unwrap();
    writer
        .write_names(&[
            ("10.244.1.3".parse().unwrap(), "client-7d9c.prod"),
            ("10.96.0.10".parse().unwrap(), "kube-dns.kube-system"),
            (v6, "web-0.prod"),
        ])
        .unwrap();
    let id = writer
        .add_interface(&InterfaceDescription {
            link_type: LinkType::ETHERNET,
            snaplen: 65535,
            name: "prod/client-7d9c/eth0".into(),
            description: None,
        })
        .unwrap();
    let packet = Packet {
        ts_nanos: 1_700_000_000_000_000_000,
        orig_len: 46,
        data: udp_frame([10, 244, 1, 3], [10, 96, 0, 10]).into(),
        comment: None,
    };
    writer.write_packet(id, &packet, None).unwrap();
    // Names may also come later, between packets (as --follow learns pods).
    writer
        .write_names(&[("10.96.0.11".parse().unwrap(), "late.prod")])
        .unwrap();
    writer.into_inner().unwrap();

    let mut reader = kcap_pcap::open(&path).unwrap();
    let mut names = reader.take_names();
    assert_eq!(reader.next().unwrap().unwrap().packet, packet);
    assert!(reader.next().is_none());
    names.extend(reader.take_names());
    let names: Vec<String> = names.iter().map(|(ip, n)| format!("{ip} {n}")).collect();
    assert_eq!(
        names,
        [
            "10.244.1.3 client-7d9c.prod",
            "10.96.0.10 kube-dns.kube-system",
            "2001:db8::7 web-0.prod",
            "10.96.0.11 late.prod"
        ]
    );

    let Some(tshark) = tshark() else { return };
    let out = std::process::Command::new(tshark)
        .args(["-N", "n", "-r"])
        .arg(&path)
        .args(["-T", "fields", "-e", "ip.src_host", "-e", "ip.dst_host"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "client-7d9c.prod\tkube-dns.kube-system"
    );
}
