//! The streaming decoder: every byte order and resolution, any chunking,
//! helpful errors for non-pcap input, and partial records left pending.

mod common;

use common::{Rng, sample_packets};
use kcap_pcap::{Error, LinkType, Packet, PcapWriter, StreamDecoder};

/// A classic pcap stream built by hand, independently of our writer.
fn build_stream(big_endian: bool, nanosecond: bool, snaplen: u32, packets: &[Packet]) -> Vec<u8> {
    let u16b = |v: u16| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let u32b = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let magic = if nanosecond { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
    let mut out = Vec::new();
    out.extend(u32b(magic));
    out.extend(u16b(2));
    out.extend(u16b(4));
    out.extend(u32b(0));
    out.extend(u32b(0));
    out.extend(u32b(snaplen));
    out.extend(u32b(276));
    for p in packets {
        let frac = p.ts_nanos % 1_000_000_000;
        out.extend(u32b((p.ts_nanos / 1_000_000_000) as u32));
        out.extend(u32b(if nanosecond { frac } else { frac / 1000 } as u32));
        out.extend(u32b(p.data.len() as u32));
        out.extend(u32b(p.orig_len));
        out.extend(&p.data);
    }
    out
}

/// Feeds `stream` in the given chunk sizes, draining packets after each push.
fn decode_in_chunks(
    stream: &[u8],
    mut chunk: impl FnMut() -> usize,
) -> (Vec<Packet>, StreamDecoder) {
    let mut decoder = StreamDecoder::new();
    let mut packets = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let n = chunk().clamp(1, rest.len());
        decoder.push(&rest[..n]);
        rest = &rest[n..];
        while let Some(packet) = decoder.next_packet().unwrap() {
            packets.push(packet);
        }
    }
    (packets, decoder)
}

fn micro_packets(seed: u64) -> Vec<Packet> {
    let mut packets = sample_packets(200, seed);
    for p in &mut packets {
        p.ts_nanos -= p.ts_nanos % 1000;
    }
    packets
}

#[test]
fn every_byte_order_and_resolution_decodes_under_any_chunking() {
    for big_endian in [false, true] {
        for nanosecond in [false, true] {
            let packets = if nanosecond {
                sample_packets(200, 7)
            } else {
                micro_packets(7)
            };
            let stream = build_stream(big_endian, nanosecond, 262144, &packets);
            let mut rng = Rng::new(99);
            let runs = [
                decode_in_chunks(&stream, || usize::MAX),
                decode_in_chunks(&stream, || 1),
                decode_in_chunks(&stream, || 1 + rng.below(3000) as usize),
                decode_in_chunks(&stream, || 16),
            ];
            for (decoded, decoder) in runs {
                assert_eq!(
                    decoded, packets,
                    "big_endian={big_endian} nanosecond={nanosecond}"
                );
                assert_eq!(decoder.pending_bytes(), 0);
                let header = decoder.header().unwrap();
                assert_eq!(header.link_type, LinkType::LINUX_SLL2);
                assert_eq!(header.snaplen, 262144);
                assert_eq!(header.nanosecond, nanosecond);
                assert_eq!(header.big_endian, big_endian);
            }
        }
    }
}

#[test]
fn decodes_what_our_writer_writes() {
    let packets = sample_packets(500, 8);
    let mut writer = PcapWriter::new(Vec::new(), LinkType::ETHERNET, 65535).unwrap();
    for p in &packets {
        writer.write_packet(p).unwrap();
    }
    let stream = writer.into_inner().unwrap();
    let mut rng = Rng::new(5);
    let (decoded, _) = decode_in_chunks(&stream, || rng.below(100_000) as usize);
    assert_eq!(decoded, packets);
}

#[test]
fn header_is_available_after_24_bytes() {
    let stream = build_stream(false, true, 1234, &[]);
    let mut decoder = StreamDecoder::new();
    decoder.push(&stream[..23]);
    assert!(decoder.next_packet().unwrap().is_none());
    assert!(decoder.header().is_none());
    decoder.push(&stream[23..]);
    assert!(decoder.next_packet().unwrap().is_none());
    assert_eq!(decoder.header().unwrap().snaplen, 1234);
}

#[test]
fn login_banner_is_rejected_and_shown() {
    let mut decoder = StreamDecoder::new();
    decoder.push(b"Welcome to Ubuntu 22.04.3 LTS (GNU/Linux)\r\n\x1b[1m*\x1b[0m Documentation");
    let err = decoder.next_packet().unwrap_err();
    assert!(matches!(err, Error::NotPcap { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("Welcome to Ubuntu 22.04.3 LTS"),
        "{message}"
    );
    // Control characters are escaped so the message stays printable.
    assert!(!message.chars().any(|c| c.is_control()), "{message:?}");
    assert!(message.contains("\\r\\n"), "{message}");
}

#[test]
fn short_non_pcap_output_is_rejected_without_waiting_for_more() {
    let mut decoder = StreamDecoder::new();
    decoder.push(b"Hi");
    let err = decoder.next_packet().unwrap_err();
    assert!(err.to_string().contains("\"Hi\""), "{err}");
    // A valid magic prefix, on the other hand, just needs more bytes.
    for stream in [
        build_stream(false, true, 65535, &[]),
        build_stream(true, false, 65535, &[]),
    ] {
        let mut decoder = StreamDecoder::new();
        for i in 0..stream.len() {
            decoder.push(&stream[i..=i]);
            assert!(decoder.next_packet().unwrap().is_none());
        }
        assert!(decoder.header().is_some());
    }
}

#[test]
fn pcapng_stream_is_named_as_such() {
    let mut writer = kcap_pcap::PcapngWriter::new(Vec::new(), "test").unwrap();
    writer.flush().unwrap();
    let bytes = writer.into_inner().unwrap();
    let mut decoder = StreamDecoder::new();
    decoder.push(&bytes);
    let err = decoder.next_packet().unwrap_err();
    assert!(matches!(err, Error::PcapngStream), "{err:?}");
    assert!(err.to_string().contains("pcapng"));
}

#[test]
fn unsupported_version_is_rejected() {
    let mut stream = build_stream(false, false, 65535, &[]);
    stream[4] = 3;
    let mut decoder = StreamDecoder::new();
    decoder.push(&stream);
    let err = decoder.next_packet().unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnsupportedVersion {
                major: 3,
                minor: 4,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn absurd_caplen_is_rejected_before_its_body_arrives() {
    let mut stream = build_stream(true, false, 262144, &[]);
    // Record header only: caplen 100 MB.
    stream.extend(1u32.to_be_bytes());
    stream.extend(0u32.to_be_bytes());
    stream.extend(100_000_000u32.to_be_bytes());
    stream.extend(100_000_000u32.to_be_bytes());
    let mut decoder = StreamDecoder::new();
    decoder.push(&stream);
    let err = decoder.next_packet().unwrap_err();
    assert!(
        matches!(
            err,
            Error::RecordTooLarge {
                caplen: 100_000_000,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn caplen_beyond_snaplen_is_rejected() {
    let big = Packet {
        ts_nanos: 0,
        orig_len: 5000,
        data: vec![0; 5000].into(),
        comment: None,
    };
    let ok = Packet {
        ts_nanos: 0,
        orig_len: 1000,
        data: vec![0; 1000].into(),
        comment: None,
    };
    let mut decoder = StreamDecoder::new();
    decoder.push(&build_stream(false, true, 1000, &[ok.clone(), big]));
    assert_eq!(decoder.next_packet().unwrap(), Some(ok));
    assert!(matches!(
        decoder.next_packet(),
        Err(Error::RecordTooLarge { caplen: 5000, .. })
    ));
}

#[test]
fn truncated_record_stays_pending() {
    let packets = sample_packets(3, 9);
    let stream = build_stream(false, true, 65535, &packets);
    let last_len = 16 + packets[2].data.len();
    let cut = stream.len() - 1;
    let mut decoder = StreamDecoder::new();
    decoder.push(&stream[..cut]);
    assert_eq!(decoder.next_packet().unwrap().as_ref(), Some(&packets[0]));
    assert_eq!(decoder.next_packet().unwrap().as_ref(), Some(&packets[1]));
    assert_eq!(decoder.next_packet().unwrap(), None);
    assert_eq!(decoder.pending_bytes(), last_len - 1);
    decoder.push(&stream[cut..]);
    assert_eq!(decoder.next_packet().unwrap().as_ref(), Some(&packets[2]));
    assert_eq!(decoder.pending_bytes(), 0);
    assert_eq!(decoder.next_packet().unwrap(), None);
}

/// Once the header is known, `push` decodes whole records from the pushed bytes
/// itself: packets still come out in order when several pushes come between
/// reads, when chunks split records anywhere, and before an error in a later
/// chunk, which is then returned (and returned again).
#[test]
fn packets_decoded_while_pushing_keep_their_order_and_errors_their_place() {
    let packets = sample_packets(60, 21);
    let stream = build_stream(false, true, 65535, &packets);
    let mut rng = Rng::new(5);
    let mut decoder = StreamDecoder::new();
    // Header first, so the later pushes take the direct path.
    decoder.push(&stream[..24]);
    assert_eq!(decoder.next_packet().unwrap(), None);
    let mut got = Vec::new();
    let mut rest = &stream[24..];
    let mut pushes = 0;
    while !rest.is_empty() {
        let n = (rng.next_u64() as usize % 3000).clamp(1, rest.len());
        decoder.push(&rest[..n]);
        rest = &rest[n..];
        pushes += 1;
        // Read only after every third push.
        if pushes % 3 == 0 {
            while let Some(packet) = decoder.next_packet().unwrap() {
                got.push(packet);
            }
        }
    }
    assert!(decoder.pending_bytes() > 0 || got.len() == packets.len());
    while let Some(packet) = decoder.next_packet().unwrap() {
        got.push(packet);
    }
    assert_eq!(got, packets);
    assert_eq!(decoder.pending_bytes(), 0);

    // A record too large for the snaplen, in the middle of a chunk whose first
    // half completes a partial record.
    let ok = Packet {
        ts_nanos: 7,
        orig_len: 100,
        data: vec![1; 100].into(),
        comment: None,
    };
    let big = Packet {
        ts_nanos: 8,
        orig_len: 5000,
        data: vec![2; 5000].into(),
        comment: None,
    };
    let stream = build_stream(
        false,
        true,
        1000,
        &[ok.clone(), ok.clone(), big, ok.clone()],
    );
    let mut decoder = StreamDecoder::new();
    decoder.push(&stream[..24 + 50]);
    assert_eq!(decoder.next_packet().unwrap(), None);
    decoder.push(&stream[24 + 50..]);
    assert_eq!(decoder.pending_bytes(), stream.len() - 24);
    assert_eq!(decoder.next_packet().unwrap().as_ref(), Some(&ok));
    assert_eq!(decoder.next_packet().unwrap().as_ref(), Some(&ok));
    for _ in 0..2 {
        assert!(matches!(
            decoder.next_packet(),
            Err(Error::RecordTooLarge { caplen: 5000, .. })
        ));
    }
}
