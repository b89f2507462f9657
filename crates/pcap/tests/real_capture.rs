//! Decodes a real `tcpdump -U -w -` stream from the loopback interface.
//! Needs root and tcpdump; skipped (with a message) otherwise.

use std::io::Read;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kcap_pcap::{CaptureFileReader, InterfaceDescription, LinkType, PcapngWriter, StreamDecoder};

const TCPDUMP: &str = "/usr/bin/tcpdump";

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn decodes_a_live_tcpdump_stream() {
    if !Path::new(TCPDUMP).exists() || !is_root() {
        eprintln!("SKIPPED: needs root and {TCPDUMP}");
        return;
    }
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = receiver.local_addr().unwrap().port();
    let mut tcpdump = Command::new(TCPDUMP)
        .args(["-i", "lo", "-U", "-w", "-", "-c", "5", "--immediate-mode"])
        .args(["udp", "and", "dst", "port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // tcpdump prints "listening on lo" once its filter is in place.
    let mut stderr = tcpdump.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains("listening on") {
        assert_eq!(
            stderr.read(&mut byte).unwrap(),
            1,
            "tcpdump exited: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.push(byte[0]);
    }
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..5u8 {
        sender
            .send_to(&[b'k', b'c', b'a', b'p', i], ("127.0.0.1", port))
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }

    let mut stdout = tcpdump.stdout.take().unwrap();
    let mut decoder = StreamDecoder::new();
    let mut packets = Vec::new();
    let mut chunk = [0u8; 37]; // odd size: records straddle chunks
    loop {
        let n = stdout.read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        decoder.push(&chunk[..n]);
        while let Some(packet) = decoder.next_packet().unwrap() {
            packets.push(packet);
        }
    }
    assert!(tcpdump.wait().unwrap().success());
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;

    assert_eq!(decoder.pending_bytes(), 0);
    let header = decoder.header().unwrap();
    assert_eq!(header.link_type, LinkType::ETHERNET);
    assert_eq!(packets.len(), 5);
    for (i, p) in packets.iter().enumerate() {
        // Ethernet (14) + IPv4 (20) + UDP (8) + 5 bytes of payload.
        assert_eq!(p.data.len(), 47);
        assert_eq!(p.orig_len, 47);
        assert_eq!(&p.data[42..], &[b'k', b'c', b'a', b'p', i as u8]);
        // Microsecond resolution from tcpdump, so allow for the rounding down.
        assert!(
            p.ts_nanos + 1000 >= before && p.ts_nanos <= after,
            "timestamp out of range"
        );
    }

    // And through our pcapng writer back to our reader.
    let mut writer = PcapngWriter::new(Vec::new(), "kcap test").unwrap();
    let iface = InterfaceDescription {
        link_type: header.link_type,
        snaplen: header.snaplen,
        name: "lo".to_owned(),
        description: None,
    };
    let id = writer.add_interface(&iface).unwrap();
    for p in &packets {
        writer.write_packet(id, p, None).unwrap();
    }
    let bytes = writer.into_inner().unwrap();
    let read: Vec<_> = CaptureFileReader::new(&bytes[..])
        .unwrap()
        .map(|r| r.unwrap().packet)
        .collect();
    assert_eq!(read, packets);
}
