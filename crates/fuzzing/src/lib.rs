//! The bodies of kcap's fuzz targets: one function per parser of bytes someone
//! else controls. `fuzz/` (cargo-fuzz, nightly) calls them with libFuzzer's
//! inputs; `tests/corpora.rs` (stable, in CI) replays every saved input, the seeds
//! and every crash found, so a fixed crash stays fixed.
//!
//! A body does more than "not panic" where it can: the stream decoder must give
//! the same packets whatever the chunking, the SLL rewrite must keep the payload,
//! a destination must read back as itself. Nothing here may run a program or
//! read a file named by the input.

use std::path::Path;

use kcap_pcap::{CaptureFileReader, LinkType, Packet, StreamDecoder};

/// A target's body: takes any bytes.
pub type Body = fn(&[u8]);

/// Every target, by the name its corpus folder and fuzz target have.
pub const TARGETS: &[(&str, Body)] = &[
    ("stream_decoder", stream_decoder),
    ("pcap_file", pcap_file),
    ("pcapng_file", pcapng_file),
    ("sll_rewrite", sll_rewrite),
    ("ssh_config", ssh_config),
    ("known_hosts", known_hosts),
    ("destination", destination),
    ("filter_tokens", filter_tokens),
    ("stderr_classifier", stderr_classifier),
    ("lines", lines),
    ("records", records),
    ("annotations", annotations),
    ("agent_inputs", agent_inputs),
];

/// A small deterministic generator, seeded by the input (the fuzzer then
/// explores chunkings too).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// What a decoder made of a stream: its packets, and the kind of error it
/// stopped at (its message may quote more or fewer of the bytes that arrived).
type Decoded = (
    Vec<Packet>,
    Option<std::mem::Discriminant<kcap_pcap::Error>>,
);

/// `given`: each chunk is handed over as a `Vec` ([`StreamDecoder::push_vec`]).
fn decode(chunks: &mut dyn Iterator<Item = &[u8]>, given: bool) -> Decoded {
    let mut decoder = StreamDecoder::new();
    let mut packets = Vec::new();
    for chunk in chunks {
        if given {
            decoder.push_vec(chunk.to_vec());
        } else {
            decoder.push(chunk);
        }
        loop {
            match decoder.next_packet() {
                Ok(Some(packet)) => packets.push(packet),
                Ok(None) => break,
                Err(e) => return (packets, Some(std::mem::discriminant(&e))),
            }
        }
    }
    (packets, None)
}

/// The remote pcap stream, as one piece and in random pieces (the first 8 bytes
/// seed the chunk sizes), each lent or given away: the same packets, and the
/// same error, every way.
pub fn stream_decoder(data: &[u8]) {
    let (seed, stream) = data.split_at(data.len().min(8));
    let mut bytes = [0u8; 8];
    bytes[..seed.len()].copy_from_slice(seed);
    let mut rng = Rng(u64::from_le_bytes(bytes) | 1);
    let whole = decode(&mut std::iter::once(stream), false);
    let given = decode(&mut std::iter::once(stream), true);
    assert_eq!(
        whole, given,
        "giving the chunk away changed what was decoded"
    );
    let mut rest = stream;
    let pieces = std::iter::from_fn(|| {
        if rest.is_empty() {
            return None;
        }
        let n = 1 + (rng.next() % 97) as usize;
        let (piece, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        Some(piece)
    });
    let pieces: Vec<&[u8]> = pieces.collect();
    let chunked = decode(&mut pieces.iter().copied(), false);
    assert_eq!(whole, chunked, "the chunking changed what was decoded");
    let chunked = decode(&mut pieces.iter().copied(), true);
    assert_eq!(
        whole, chunked,
        "the chunking changed what was decoded (given)"
    );
}

fn capture_file(magic: &[u8], data: &[u8]) {
    let input: Vec<u8> = magic.iter().chain(data).copied().collect();
    let Ok(mut reader) = CaptureFileReader::new(input.as_slice()) else {
        return;
    };
    // A record is at least its header: the count is bounded by the input.
    let mut records = 0;
    while let Some(record) = reader.next() {
        let Ok(record) = record else { break };
        records += 1;
        assert!(records <= input.len(), "more records than bytes");
        assert!(
            (record.interface_id as usize) < reader.interfaces().len().max(1),
            "a packet of an interface never described"
        );
        let _ = reader.take_names();
    }
    let _ = reader.statistics();
}

/// `-r FILE` of a pcap: the input follows the pcap magic.
pub fn pcap_file(data: &[u8]) {
    capture_file(&0xa1b2_c3d4u32.to_le_bytes(), data);
}

/// `-r FILE` of a pcapng: the input follows a Section Header Block's type.
pub fn pcapng_file(data: &[u8]) {
    capture_file(&0x0a0d_0d0au32.to_le_bytes(), data);
}

/// `--linktype LINUX_SLL`: the v2 header (20 bytes) becomes a v1 header (16),
/// the rest of the packet untouched.
pub fn sll_rewrite(data: &[u8]) {
    let orig_len = data.len() as u32 + data.first().copied().unwrap_or(0) as u32;
    let mut packet = Packet {
        ts_nanos: 1,
        orig_len,
        data: data.to_vec().into(),
        comment: None,
    };
    kcap_pcap::sll::sll2_to_sll(&mut packet);
    let header = kcap_pcap::sll::SLL2_HEADER;
    if data.len() >= header {
        assert_eq!(packet.data.len(), data.len() - 4);
        assert_eq!(&packet.data[16..], &data[header..]);
    } else {
        assert_eq!(packet.data.len(), kcap_pcap::sll::SLL_HEADER);
    }
    assert_eq!(packet.orig_len, orig_len.saturating_sub(4));
}

/// Whether an ssh_config text could make the parser run a program (`Match
/// exec`) or read files (`Include`): those inputs are only parsed, not resolved
/// or included. Quotes and escapes are ignored, as OpenSSH's tokenizer would.
fn could_run_or_read(text: &str) -> bool {
    let plain: String = text
        .chars()
        .filter(|c| !matches!(c, '"' | '\'' | '\\'))
        .flat_map(char::to_lowercase)
        .collect();
    plain.contains("exec") || plain.contains("include")
}

/// `~/.ssh/config`: parsed, then resolved for a few hosts (patterns, `Match`,
/// `%` and `~` expansion).
pub fn ssh_config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if could_run_or_read(&text) {
        return;
    }
    let home = Path::new("/nonexistent-kcap-fuzz-home");
    let Ok(config) = kcap_openssh::config::SshConfig::parse_str_with_home(
        &text,
        &home.join(".ssh/config"),
        home,
    ) else {
        return;
    };
    for host in ["node-a", "10.0.0.1", "x.example.com", ""] {
        let _ = config.resolve(host);
    }
    let _ = config.resolve_with("node-b", Some("fuzz"), Some(2222));
}

/// A host key for the lookups (an ordinary ed25519 public key).
const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

/// `known_hosts`, hashed entries, markers and patterns included.
pub fn known_hosts(data: &[u8]) {
    use kcap_openssh::known_hosts::{HostKey, KnownHosts};
    let text = String::from_utf8_lossy(data);
    let known = KnownHosts::parse_str(&text, Path::new("known_hosts"));
    let key = HostKey::from_openssh_line(KEY).expect("a valid key");
    for (host, port) in [("node-a", 22), ("198.51.100.10", 2222), ("[::1]", 22)] {
        let _ = known.check(host, port, &key);
        let _ = known.check_authority(host, port, &key);
        let _ = known.has_cert_authority(host, port);
        let _ = known.check_revoked(host, port, &key);
    }
    // Lines as keys (an `ssh-keyscan` answer, a `KnownHostsCommand`'s output).
    for line in text.lines().take(64) {
        if let Ok(key) = HostKey::from_openssh_line(line) {
            let _ = key.fingerprint();
        }
    }
}

/// `[user@]host[:port]` and `-J` chains: what parses prints back as itself.
pub fn destination(data: &[u8]) {
    use kcap_openssh::destination::Destination;
    let text = String::from_utf8_lossy(data);
    if let Ok(d) = Destination::parse(&text) {
        let again = Destination::parse(&d.to_string()).ok();
        assert_eq!(again.as_ref(), Some(&d), "{d} does not read back");
    }
    if let Ok(chain) = Destination::parse_chain(&text) {
        for d in chain {
            assert_eq!(Destination::parse(&d.to_string()).ok().as_ref(), Some(&d));
        }
    }
}

/// `--filter` with pod tokens: tokens lie on the text's character boundaries,
/// in order, and substituting them keeps the rest of the text.
pub fn filter_tokens(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(tokens) = kcap_kube::filter_tokens::find(&text) else {
        return;
    };
    let mut at = 0;
    for token in &tokens {
        assert!(token.start >= at && token.end > token.start);
        assert!(text.get(token.start..token.end).is_some());
        at = token.end;
    }
    let hosts: Vec<_> = tokens
        .iter()
        .map(|_| vec![std::net::IpAddr::from([10, 0, 0, 1])])
        .collect();
    let out =
        kcap_kube::filter_tokens::substitute(&text, &tokens, &hosts).expect("addresses given");
    if let Some(last) = tokens.last() {
        assert!(out.ends_with(&text[last.end..]));
    } else {
        assert_eq!(out, text);
    }
}

/// The remote wrapper's and tool's stderr, read for what went wrong.
pub fn stderr_classifier(data: &[u8]) {
    use kcap_capture::outcome;
    let text = String::from_utf8_lossy(data);
    let _ = outcome::classify(&text);
    let _ = outcome::error_text(&text);
    let _ = outcome::tool_used(&text);
    let _ = outcome::netns_way(&text);
}

const LINK_TYPES: [LinkType; 9] = [
    LinkType::ETHERNET,
    LinkType::LINUX_SLL2,
    LinkType::LINUX_SLL,
    LinkType::RAW,
    LinkType::IPV4,
    LinkType::IPV6,
    LinkType::NULL,
    LinkType::LOOP,
    LinkType::NFLOG,
];

/// `--print`'s lines: packets of one link type (the first byte picks it), each
/// `[len][bytes]`, through one printer (TCP conversations carry state).
pub fn lines(data: &[u8]) {
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let link = LINK_TYPES[pick as usize % LINK_TYPES.len()];
    let mut printer = kcap_lines::Printer::new();
    while let Some((&len, tail)) = rest.split_first() {
        let (packet, tail) = tail.split_at((len as usize).min(tail.len()));
        rest = tail;
        let orig_len = packet.len() as u32 + (len as u32 & 0x0f);
        let line = printer.describe(link, packet, orig_len, &kcap_lines::NoNames);
        assert!(
            line.link_header_len <= packet.len(),
            "header past the packet"
        );
        let _ = kcap_lines::dump(kcap_lines::Dump::HexAscii, packet);
    }
}

/// `--http`/`--dns`: packets of one link type (the first byte picks it), each
/// `[len: u16 LE][bytes]`, 1 ms apart, through a decoder with small bounds (so
/// they are reached); every record must serialize.
pub fn records(data: &[u8]) {
    use kcap_records::{Decoder, Limits, Settings};
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let link = LINK_TYPES[pick as usize % LINK_TYPES.len()];
    let mut decoder = Decoder::new(Settings {
        http: true,
        dns: true,
        dns_ports: vec![53, 5353],
        body_bytes: 16,
        limits: Limits {
            connections: 64,
            reorder_bytes: 4096,
            head_bytes: 1024,
            pipeline: 8,
            idle_ns: 50_000_000,
            dns_pending: 64,
            dns_timeout_ns: 20_000_000,
        },
    });
    let mut out = Vec::new();
    let mut ts = 1_700_000_000_000_000_000u64;
    while rest.len() >= 2 {
        let len = u16::from_le_bytes([rest[0], rest[1]]) as usize;
        let (packet, tail) = rest[2..].split_at(len.min(rest.len() - 2));
        rest = tail;
        ts += 1_000_000;
        decoder.packet("fuzz", link, ts, packet, &mut out);
    }
    decoder.finish(&mut out);
    for record in &out {
        serde_json::to_string(record).expect("a record serializes");
    }
    let _ = decoder.counters();
}

/// The capture agent's in-band annotations as kcap reads them from a remote
/// stream: the bytes are pcap records after a valid header. Every packet gets
/// either no process or a text that some DEFINE carried, never longer than the
/// format allows.
pub fn annotations(data: &[u8]) {
    use kcap_pcap::annotation::{Annotator, MAX_TEXT};
    let mut stream = Vec::with_capacity(24 + data.len());
    stream.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
    stream.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    stream.extend_from_slice(&65535u32.to_le_bytes());
    stream.extend_from_slice(&1u32.to_le_bytes());
    stream.extend_from_slice(data);
    let mut decoder = StreamDecoder::new();
    decoder.push(&stream);
    let mut annotator = Annotator::default();
    while let Ok(Some(packet)) = decoder.next_packet() {
        if !annotator.absorb(&packet)
            && let Some(text) = annotator.take_for_packet()
        {
            assert!(text.len() <= MAX_TEXT);
        }
    }
}

/// What the capture agent parses on the node: a captured frame's endpoints (the
/// frame is the wire's) and crictl's JSON answers.
pub fn agent_inputs(data: &[u8]) {
    kcap_agent::process::fuzz_entry(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_that_could_run_or_read_are_not_resolved() {
        assert!(could_run_or_read("Match exec \"true\""));
        assert!(could_run_or_read("Match \"EX\"ec true"));
        assert!(could_run_or_read("Include /dev/zero"));
        assert!(!could_run_or_read("Host a\n  HostName b\n"));
    }

    #[test]
    fn the_key_for_lookups_is_valid() {
        assert!(kcap_openssh::known_hosts::HostKey::from_openssh_line(KEY).is_ok());
    }
}
