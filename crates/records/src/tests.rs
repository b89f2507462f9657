//! The decoder on hand-built packets: the TCP and HTTP cases of issue 9 (keep-alive,
//! pipelining, chunked, segmented, retransmitted, out of order, seen twice,
//! mid-connection start, IPv6, no response) and DNS.

use std::net::{IpAddr, SocketAddr};

use kcap_pcap::LinkType;

use crate::{Decoder, Limits, Record, Settings};

const CLIENT: &str = "10.244.0.5:40000";
const SERVER: &str = "10.244.1.7:8080";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// An IPv4 or IPv6 packet (raw IP link type) carrying TCP or UDP. Checksums are
/// left zero: the decoder does not check them (captures offload them anyway).
fn ip_packet(src: SocketAddr, dst: SocketAddr, transport: &[u8], protocol: u8) -> Vec<u8> {
    let mut p = Vec::new();
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = (20 + transport.len()) as u16;
            p.extend_from_slice(&[
                0x45,
                0,
                (total >> 8) as u8,
                total as u8,
                0,
                0,
                0x40,
                0,
                64,
                protocol,
                0,
                0,
            ]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let len = transport.len() as u16;
            p.extend_from_slice(&[0x60, 0, 0, 0, (len >> 8) as u8, len as u8, protocol, 64]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
        }
        _ => panic!("mixed families"),
    }
    p.extend_from_slice(transport);
    p
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;
const PSH: u8 = 0x08;

fn tcp(src: &str, dst: &str, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let (src, dst) = (addr(src), addr(dst));
    let mut t = Vec::new();
    t.extend_from_slice(&src.port().to_be_bytes());
    t.extend_from_slice(&dst.port().to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    ip_packet(src, dst, &t, 6)
}

fn udp(src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
    let (src, dst) = (addr(src), addr(dst));
    let mut u = Vec::new();
    u.extend_from_slice(&src.port().to_be_bytes());
    u.extend_from_slice(&dst.port().to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    ip_packet(src, dst, &u, 17)
}

fn settings(body_bytes: usize) -> Settings {
    Settings {
        http: true,
        dns: true,
        dns_ports: vec![53, 5353],
        body_bytes,
        limits: Limits::default(),
    }
}

/// Runs packets (one ms apart) through a decoder and returns the records as JSON.
fn decode(packets: &[Vec<u8>]) -> Vec<serde_json::Value> {
    decode_with(settings(0), LinkType::RAW, packets)
}

fn decode_with(settings: Settings, link: LinkType, packets: &[Vec<u8>]) -> Vec<serde_json::Value> {
    let mut decoder = Decoder::new(settings);
    let mut out: Vec<Record> = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        decoder.packet(
            "node-a:any",
            link,
            1_000_000_000 + i as u64 * 1_000_000,
            p,
            &mut out,
        );
    }
    decoder.finish(&mut out);
    out.iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect()
}

/// A client's connection: handshake then the given client/server payloads in turn.
struct Conn {
    c: String,
    s: String,
    cseq: u32,
    sseq: u32,
    packets: Vec<Vec<u8>>,
}

impl Conn {
    fn new(c: &str, s: &str) -> Conn {
        let mut conn = Conn {
            c: c.into(),
            s: s.into(),
            cseq: 1000,
            sseq: 5000,
            packets: Vec::new(),
        };
        conn.packets.push(tcp(c, s, 1000, SYN, b""));
        conn.packets.push(tcp(s, c, 5000, SYN | ACK, b""));
        conn.cseq += 1;
        conn.sseq += 1;
        conn
    }
    fn client(&mut self, data: &[u8]) -> Vec<u8> {
        let p = tcp(&self.c, &self.s, self.cseq, ACK | PSH, data);
        self.cseq += data.len() as u32;
        p
    }
    fn server(&mut self, data: &[u8]) -> Vec<u8> {
        let p = tcp(&self.s, &self.c, self.sseq, ACK | PSH, data);
        self.sseq += data.len() as u32;
        p
    }
    fn send_client(&mut self, data: &[u8]) {
        let p = self.client(data);
        self.packets.push(p);
    }
    fn send_server(&mut self, data: &[u8]) {
        let p = self.server(data);
        self.packets.push(p);
    }
    fn close(&mut self) {
        self.packets.push(tcp(
            &self.c.clone(),
            &self.s.clone(),
            self.cseq,
            FIN | ACK,
            b"",
        ));
        self.packets.push(tcp(
            &self.s.clone(),
            &self.c.clone(),
            self.sseq,
            FIN | ACK,
            b"",
        ));
    }
}

const GET: &[u8] = b"GET /a HTTP/1.1\r\nHost: web\r\n\r\n";
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

fn summary(records: &[serde_json::Value]) -> Vec<(String, String, Option<u64>, u64)> {
    records
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap_or("").to_string(),
                r["path"].as_str().unwrap_or("").to_string(),
                r["status"].as_u64(),
                r["response_body_bytes"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn keep_alive_gives_one_record_per_exchange() {
    let mut c = Conn::new(CLIENT, SERVER);
    c.send_client(GET);
    c.send_server(OK);
    c.send_client(b"POST /b HTTP/1.1\r\nHost: web\r\nContent-Length: 3\r\n\r\nabc");
    c.send_server(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    c.close();
    let records = decode(&c.packets);
    assert_eq!(
        summary(&records),
        [
            ("GET".into(), "/a".into(), Some(200), 5),
            ("POST".into(), "/b".into(), Some(201), 0)
        ]
    );
    let r = &records[1];
    assert_eq!(r["request_body_bytes"], 3);
    assert_eq!(r["host"], "web");
    assert_eq!(r["client"]["ip"], "10.244.0.5");
    assert_eq!(r["client"]["port"], 40000);
    assert_eq!(r["server"]["port"], 8080);
    assert_eq!(r["point"], "node-a:any");
    assert_eq!(r["type"], "http");
    assert_eq!(r["latency_ms"], 1.0);
    assert_eq!(records[0]["request_time"], "1970-01-01T00:00:01.002000000Z");
}

#[test]
fn pipelined_requests_pair_in_order_and_a_head_response_has_no_body() {
    let mut c = Conn::new(CLIENT, SERVER);
    c.send_client(b"GET /1 HTTP/1.1\r\n\r\nHEAD /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n");
    let mut both = OK.to_vec();
    both.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n");
    both.extend_from_slice(b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno");
    c.send_server(&both);
    let records = decode(&c.packets);
    assert_eq!(
        summary(&records),
        [
            ("GET".into(), "/1".into(), Some(200), 5),
            ("HEAD".into(), "/2".into(), Some(200), 0),
            ("GET".into(), "/3".into(), Some(404), 2)
        ]
    );
}

#[test]
fn chunked_body_split_over_many_segments() {
    let mut c = Conn::new(CLIENT, SERVER);
    for piece in GET.chunks(3) {
        c.send_client(piece);
    }
    let response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;x=y\r\n, world\r\n0\r\nTrailer: 1\r\n\r\n";
    for piece in response.chunks(4) {
        c.send_server(piece);
    }
    c.send_client(GET);
    c.send_server(OK);
    let mut settings = settings(8);
    settings.body_bytes = 8;
    let records = decode_with(settings, LinkType::RAW, &c.packets);
    assert_eq!(
        summary(&records),
        [
            ("GET".into(), "/a".into(), Some(200), 12),
            ("GET".into(), "/a".into(), Some(200), 5)
        ]
    );
    assert_eq!(records[0]["response_body"], "hello, w");
    assert_eq!(
        records[0]["response_headers"][0],
        serde_json::json!(["Transfer-Encoding", "chunked"])
    );
}

#[test]
fn retransmitted_duplicated_and_out_of_order_segments() {
    let mut c = Conn::new(CLIENT, SERVER);
    let first = c.client(&GET[..10]);
    let second = c.client(&GET[10..20]);
    let third = c.client(&GET[20..]);
    // Out of order: third before second; every packet seen twice (-i any).
    for p in [&first, &first, &third, &third, &second, &second] {
        c.packets.push(p.clone());
    }
    let response = c.server(OK);
    c.packets.push(response.clone());
    c.packets.push(response.clone());
    // A retransmission much later, after the exchange.
    c.packets.push(response);
    let records = decode(&c.packets);
    assert_eq!(
        summary(&records),
        [("GET".into(), "/a".into(), Some(200), 5)]
    );
}

#[test]
fn a_connection_whose_start_was_missed_is_picked_up_at_the_next_request() {
    let mut c = Conn::new(CLIENT, SERVER);
    c.send_client(b"POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\n01234");
    c.send_client(b"56789");
    c.send_server(OK);
    c.send_client(GET);
    c.send_server(OK);
    // Drop the handshake and the first segment: capture starts mid-body.
    let packets: Vec<_> = c.packets[3..].to_vec();
    let records = decode(&packets);
    assert_eq!(
        summary(&records),
        [("GET".into(), "/a".into(), Some(200), 5)]
    );
}

#[test]
fn ipv6_and_a_request_without_response() {
    let mut c = Conn::new("[fd00::5]:40000", "[fd00::7]:80");
    c.send_client(GET);
    let records = decode(&c.packets);
    assert_eq!(summary(&records), [("GET".into(), "/a".into(), None, 0)]);
    assert_eq!(
        records[0]["reason"],
        "no response by the end of the capture"
    );
    assert_eq!(records[0]["server"]["ip"], "fd00::7");
    assert!(records[0]["response_time"].is_null());
}

#[test]
fn linux_sll2_and_ethernet_link_headers() {
    let mut c = Conn::new(CLIENT, SERVER);
    c.send_client(GET);
    c.send_server(OK);
    let sll2: Vec<Vec<u8>> = c
        .packets
        .iter()
        .map(|p| {
            let mut h = vec![
                0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0,
            ];
            h.extend_from_slice(p);
            h
        })
        .collect();
    assert_eq!(
        decode_with(settings(0), LinkType::LINUX_SLL2, &sll2).len(),
        1
    );
    let ethernet: Vec<Vec<u8>> = c
        .packets
        .iter()
        .map(|p| {
            let mut h = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
            h.extend_from_slice(p);
            h
        })
        .collect();
    assert_eq!(
        decode_with(settings(0), LinkType::ETHERNET, &ethernet).len(),
        1
    );
}

#[test]
fn not_http_is_ignored() {
    let mut c = Conn::new(CLIENT, SERVER);
    c.send_client(b"\x16\x03\x01\x02\x00 tls hello");
    c.send_server(b"\x16\x03\x03 server hello");
    assert!(decode(&c.packets).is_empty());
}

fn dns_message(id: u16, response: bool, answer: Option<[u8; 4]>) -> Vec<u8> {
    let flags: u16 = if response { 0x8180 } else { 0x0100 };
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, u8::from(answer.is_some()), 0, 0, 0, 0]);
    m.extend_from_slice(b"\x05probe\x04kcap\x04test\x00\x00\x01\x00\x01");
    if let Some(ip) = answer {
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4]);
        m.extend_from_slice(&ip);
    }
    m
}

#[test]
fn dns_query_and_answer_pair_once_and_unanswered_is_written() {
    let query = udp(
        "10.244.0.5:33333",
        "10.96.0.10:53",
        &dns_message(7, false, None),
    );
    let answer = udp(
        "10.96.0.10:53",
        "10.244.0.5:33333",
        &dns_message(7, true, Some([10, 244, 1, 7])),
    );
    let lost = udp(
        "10.244.0.5:33334",
        "10.96.0.10:53",
        &dns_message(8, false, None),
    );
    let records = decode(&[query.clone(), query, answer.clone(), answer, lost]);
    assert_eq!(records.len(), 2, "{records:?}");
    let r = &records[0];
    assert_eq!(
        (r["type"].as_str(), r["name"].as_str(), r["qtype"].as_str()),
        (Some("dns"), Some("probe.kcap.test"), Some("A"))
    );
    assert_eq!(r["rcode"], "NoError");
    assert_eq!(r["answers"][0]["data"], "10.244.1.7");
    assert_eq!(r["client"]["port"], 33333);
    assert_eq!(r["latency_ms"], 2.0);
    assert!(records[1]["rcode"].is_null());
    assert_eq!(records[1]["id"], 8);
}

/// One file with every hard case at once, decoded by kcap and by tshark: the same
/// requests in the same order and the same status codes (tshark also counts
/// responses whose request was before the capture; kcap counts those apart).
#[test]
fn hard_cases_agree_with_tshark() {
    if std::process::Command::new("tshark")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP: tshark not installed");
        return;
    }
    let mut packets = Vec::new();
    // Keep-alive.
    let mut c = Conn::new("10.0.0.1:40001", SERVER);
    c.send_client(GET);
    c.send_server(OK);
    c.send_client(b"POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
    c.send_server(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    c.close();
    packets.append(&mut c.packets);
    // Pipelined.
    let mut c = Conn::new("10.0.0.1:40002", SERVER);
    c.send_client(b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n");
    let mut both = OK.to_vec();
    both.extend_from_slice(b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno");
    c.send_server(&both);
    c.close();
    packets.append(&mut c.packets);
    // Segmented request, chunked response in small segments.
    let mut c = Conn::new("10.0.0.1:40003", SERVER);
    for piece in b"GET /chunked HTTP/1.1\r\nHost: web\r\n\r\n".chunks(5) {
        c.send_client(piece);
    }
    let chunked = b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n";
    for piece in chunked.chunks(9) {
        c.send_server(piece);
    }
    c.close();
    packets.append(&mut c.packets);
    // Retransmitted and seen twice.
    let mut c = Conn::new("10.0.0.1:40004", SERVER);
    let request = c.client(b"GET /again HTTP/1.1\r\n\r\n");
    let response = c.server(OK);
    c.packets.extend([
        request.clone(),
        request.clone(),
        response.clone(),
        response.clone(),
        request,
    ]);
    c.close();
    packets.append(&mut c.packets);
    // Started mid-connection: the first response's request was not captured.
    let mut c = Conn::new("10.0.0.1:40005", SERVER);
    c.send_client(b"GET /missed HTTP/1.1\r\n\r\n");
    c.send_server(b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n");
    c.send_client(b"GET /late HTTP/1.1\r\n\r\n");
    c.send_server(OK);
    packets.extend(c.packets.drain(..).skip(3));

    let dir = std::env::temp_dir().join(format!("kcap-records-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("hard.pcap");
    let mut writer =
        kcap_pcap::PcapWriter::new(std::fs::File::create(&path).unwrap(), LinkType::RAW, 65535)
            .unwrap();
    for (i, p) in packets.iter().enumerate() {
        let packet = kcap_pcap::Packet {
            ts_nanos: 1_000_000_000 + i as u64 * 1_000_000,
            orig_len: p.len() as u32,
            data: p.clone().into(),
            comment: None,
        };
        writer.write_packet(&packet).unwrap();
    }
    writer.flush().unwrap();
    drop(writer);

    let tshark = std::process::Command::new("tshark")
        .args(["-n", "-o", "tcp.reassemble_out_of_order:TRUE", "-r"])
        .arg(&path)
        .args(["-Y", "http", "-T", "fields", "-E", "separator=|"])
        .args([
            "-e",
            "http.request.method",
            "-e",
            "http.request.uri",
            "-e",
            "http.response.code",
        ])
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let text = String::from_utf8_lossy(&tshark.stdout);
    let mut their_requests = Vec::new();
    let mut their_statuses = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('|').collect();
        // One frame can carry several messages (pipelining): comma-separated.
        for (method, uri) in fields[0]
            .split(',')
            .zip(fields[1].split(','))
            .filter(|(m, _)| !m.is_empty())
        {
            their_requests.push(format!("{method} {uri}"));
        }
        their_statuses.extend(
            fields[2]
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
    }

    let mut decoder = Decoder::new(settings(0));
    let mut out = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        decoder.packet(
            "file",
            LinkType::RAW,
            1_000_000_000 + i as u64 * 1_000_000,
            p,
            &mut out,
        );
    }
    decoder.finish(&mut out);
    let ours: Vec<serde_json::Value> = out
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect();
    let our_requests: Vec<String> = ours
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["method"].as_str().unwrap(),
                r["path"].as_str().unwrap()
            )
        })
        .collect();
    let mut our_statuses: Vec<String> = ours
        .iter()
        .filter_map(|r| r["status"].as_u64())
        .map(|s| s.to_string())
        .collect();
    assert_eq!(decoder.counters().responses_without_request, 1);
    our_statuses.push("302".into());
    our_statuses.sort();
    their_statuses.sort();
    assert_eq!(our_requests, their_requests, "tshark:\n{text}");
    assert_eq!(our_statuses, their_statuses, "tshark:\n{text}");
    assert_eq!(our_requests.len(), 7);
}

#[test]
fn dns_over_tcp_with_a_message_split_over_segments() {
    let framed = |m: Vec<u8>| {
        let mut f = (m.len() as u16).to_be_bytes().to_vec();
        f.extend(m);
        f
    };
    let mut c = Conn::new("10.244.0.5:33335", "10.96.0.10:53");
    let query = framed(dns_message(9, false, None));
    c.send_client(&query[..1]);
    c.send_client(&query[1..]);
    c.send_server(&framed(dns_message(9, true, Some([10, 0, 0, 9]))));
    c.close();
    let records = decode(&c.packets);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["transport"], "tcp");
    assert_eq!(records[0]["answers"][0]["data"], "10.0.0.9");
    assert_eq!(records[0]["client"]["port"], 33335);
}

#[test]
fn resets_and_unanswered_syns_are_told_apart_for_the_summary() {
    const RST: u8 = 0x04;
    let refused = [
        tcp("10.0.0.1:40010", "10.0.0.2:81", 7, SYN, b""),
        tcp("10.0.0.2:81", "10.0.0.1:40010", 0, RST | ACK, b""),
        // Seen twice: still one reset.
        tcp("10.0.0.2:81", "10.0.0.1:40010", 0, RST | ACK, b""),
    ];
    let unanswered = tcp("10.0.0.1:40011", "10.0.0.3:80", 9, SYN, b"");
    let mut answered = Conn::new("10.0.0.1:40012", "10.0.0.3:80");
    answered.close();
    let mut decoder = Decoder::new(settings(0));
    let mut out = Vec::new();
    let packets = refused.iter().chain([&unanswered]).chain(&answered.packets);
    for (i, p) in packets.enumerate() {
        decoder.packet("p", LinkType::RAW, i as u64 * 1000, p, &mut out);
    }
    decoder.finish(&mut out);
    let troubles = decoder.take_tcp_troubles();
    let told: Vec<(&str, String)> = troubles
        .iter()
        .map(|t| (t.kind, t.server.to_string()))
        .collect();
    assert_eq!(
        told,
        [
            ("reset", "10.0.0.2:81".to_string()),
            ("handshake_incomplete", "10.0.0.3:80".to_string())
        ]
    );
    assert_eq!(troubles[0].client.to_string(), "10.0.0.1:40010");
    let c = decoder.counters();
    assert_eq!((c.tcp_resets, c.tcp_handshakes_incomplete), (1, 1));
}

#[test]
fn a_response_before_the_request_body_ended_pairs_with_that_request() {
    let mut c = Conn::new(CLIENT, SERVER);
    c.send_client(b"POST /big HTTP/1.1\r\nContent-Length: 10\r\n\r\n01234");
    c.send_server(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n");
    c.send_client(b"56789");
    c.send_client(GET);
    c.send_server(OK);
    c.close();
    let records = decode(&c.packets);
    assert_eq!(
        summary(&records),
        [
            ("POST".into(), "/big".into(), Some(413), 0),
            ("GET".into(), "/a".into(), Some(200), 5)
        ]
    );
}

#[test]
fn a_segment_sent_again_is_a_retransmission_and_a_second_copy_is_not() {
    let mut c = Conn::new(CLIENT, SERVER);
    let request = c.client(GET);
    let response = c.server(OK);
    let ms = 1_000_000u64;
    // (time, packet): the handshake, the request and its -i any copy 10 µs later,
    // the request sent again 300 ms later (its ACK was lost), then the response
    // with its copy.
    let mut timed: Vec<(u64, Vec<u8>)> = c.packets.iter().map(|p| (0, p.clone())).collect();
    timed.push((ms, request.clone()));
    timed.push((ms + 10_000, request.clone()));
    timed.push((301 * ms, request));
    timed.push((302 * ms, response.clone()));
    timed.push((302 * ms + 10_000, response));
    let mut decoder = Decoder::new(settings(0));
    let mut out = Vec::new();
    for (ts, p) in &timed {
        decoder.packet("p", LinkType::RAW, 1_000_000_000 + ts, p, &mut out);
    }
    decoder.finish(&mut out);
    assert_eq!(out.len(), 1, "one exchange");
    let c = decoder.counters();
    assert_eq!(c.tcp_retransmissions, 1, "{c:?}");
    assert_eq!(c.duplicate_segments, 3, "{c:?}");
    let troubles = decoder.take_tcp_troubles();
    let kinds: Vec<&str> = troubles.iter().map(|t| t.kind).collect();
    assert_eq!(kinds, ["retransmission"]);
    assert_eq!(troubles[0].server.to_string(), SERVER);
}
