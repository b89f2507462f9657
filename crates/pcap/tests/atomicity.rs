//! The writers hand the OS whole records only, so a capture killed at any
//! moment still ends at a record boundary and reads cleanly.

mod common;

use common::{RecordingWriter, Rng, sample_packets};
use kcap_pcap::{
    CaptureFileReader, InterfaceDescription, InterfaceStatistics, LinkType, Packet, PcapWriter,
    PcapngWriter,
};

/// Offsets at which records (pcap: the header, then each packet) end.
fn pcap_boundaries(bytes: &[u8]) -> Vec<usize> {
    let mut ends = vec![24];
    let mut pos = 24;
    while pos < bytes.len() {
        let caplen = u32::from_le_bytes(bytes[pos + 8..pos + 12].try_into().unwrap()) as usize;
        pos += 16 + caplen;
        ends.push(pos);
    }
    assert_eq!(pos, bytes.len());
    ends
}

/// Offsets at which pcapng blocks end.
fn pcapng_boundaries(bytes: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        assert_eq!(len % 4, 0, "block at {pos} not 32-bit aligned");
        pos += len;
        ends.push(pos);
    }
    assert_eq!(pos, bytes.len());
    ends
}

/// Mostly small packets, some bigger than the writers' internal buffer.
fn packets_with_giants() -> Vec<Packet> {
    let mut packets = sample_packets(3000, 11);
    let mut rng = Rng::new(3);
    for i in [5, 777, 778, 2000] {
        let len = 600_000 + rng.below(1000) as usize;
        packets[i].data = (0..len).map(|_| rng.next_u64() as u8).collect();
        packets[i].orig_len = len as u32;
    }
    packets
}

/// Every write() ended on a record boundary; each cut there reads cleanly.
fn check_writes(out: &RecordingWriter, boundaries: &[usize], expected_packets: usize) {
    assert!(
        out.write_ends.len() > 5,
        "expected several writes, got {}",
        out.write_ends.len()
    );
    for end in &out.write_ends {
        assert!(
            boundaries.binary_search(end).is_ok(),
            "write ended mid-record at {end}"
        );
    }
    // Simulate a SIGKILL right after each write: the file so far must read
    // without error.
    for &end in &out.write_ends {
        let reader = CaptureFileReader::new(&out.bytes[..end]).unwrap();
        let records = reader.collect::<Result<Vec<_>, _>>().unwrap();
        assert!(records.len() <= expected_packets);
    }
}

#[test]
fn pcap_writer_writes_whole_records() {
    let packets = packets_with_giants();
    let mut writer = PcapWriter::new(RecordingWriter::default(), LinkType::ETHERNET, 0).unwrap();
    for (i, p) in packets.iter().enumerate() {
        writer.write_packet(p).unwrap();
        if i == 1000 {
            writer.flush().unwrap();
            assert_eq!(writer.buffered_len(), 0);
        }
    }
    assert!(writer.buffered_len() > 0);
    let out = writer.into_inner().unwrap();
    assert!(out.flushes >= 2);
    check_writes(&out, &pcap_boundaries(&out.bytes), packets.len());
}

#[test]
fn pcapng_writer_writes_whole_blocks() {
    let packets = packets_with_giants();
    let mut writer = PcapngWriter::new(RecordingWriter::default(), "kcap test").unwrap();
    let iface = InterfaceDescription {
        link_type: LinkType::ETHERNET,
        snaplen: 0,
        name: "eth0".to_owned(),
        description: None,
    };
    writer.add_interface(&iface).unwrap();
    for (i, p) in packets.iter().enumerate() {
        let comment = (i % 10 == 0).then_some("a comment");
        writer.write_packet(0, p, comment).unwrap();
        if i == 1500 {
            writer.add_interface(&iface).unwrap();
            writer
                .write_statistics(0, &InterfaceStatistics::default())
                .unwrap();
        }
    }
    let out = writer.into_inner().unwrap();
    check_writes(&out, &pcapng_boundaries(&out.bytes), packets.len());
    // Everything, giants included, reads back.
    let reader = CaptureFileReader::new(&out.bytes[..]).unwrap();
    let read: Vec<Packet> = reader.map(|r| r.unwrap().packet).collect();
    assert_eq!(read, packets);
}

#[test]
fn dropping_a_writer_flushes_it() {
    let mut bytes = Vec::new();
    {
        let mut writer = PcapWriter::new(&mut bytes, LinkType::RAW, 100).unwrap();
        writer
            .write_packet(&Packet {
                ts_nanos: 1,
                orig_len: 1,
                data: vec![1].into(),
                comment: None,
            })
            .unwrap();
    }
    assert_eq!(bytes.len(), 24 + 17);
}
