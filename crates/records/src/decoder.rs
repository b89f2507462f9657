//! The decoder: packets in, records out. TCP connections are tracked by their two
//! ends (either order), reassembled per direction ([`crate::tcp`]), and each
//! direction's bytes parsed as HTTP ([`crate::http`]); a request pairs with the
//! next response from the other side (pipelining keeps them in order). UDP on a
//! DNS port, and the length-prefixed messages of TCP on one, go to [`crate::dns`].

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use kcap_pcap::LinkType;
use serde::Serialize;

use crate::dns::{DnsCounts, DnsMatcher};
use crate::http::{Head, Message, ParseCounts, Parser, RequestMethods};
use crate::link;
use crate::record::{HttpRecord, Peer, Record};
use crate::tcp::{Delivered, Direction, ReassemblyCounts};

/// What to decode.
#[derive(Debug, Clone)]
pub struct Settings {
    pub http: bool,
    pub dns: bool,
    /// UDP ports whose datagrams are DNS.
    pub dns_ports: Vec<u16>,
    /// First body bytes kept per message (`--http-body`).
    pub body_bytes: usize,
    pub limits: Limits,
}

/// Bounds on memory; what goes past them is counted, not kept.
#[derive(Debug, Clone)]
pub struct Limits {
    pub connections: usize,
    /// Out-of-order bytes waiting per direction.
    pub reorder_bytes: usize,
    /// Largest message head.
    pub head_bytes: usize,
    /// Requests waiting for responses per connection (pipelining).
    pub pipeline: usize,
    /// A connection with no packet for this long is closed, ns.
    pub idle_ns: u64,
    pub dns_pending: usize,
    pub dns_timeout_ns: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            connections: 10_000,
            reorder_bytes: 256 << 10,
            head_bytes: 64 << 10,
            pipeline: 64,
            idle_ns: 60_000_000_000,
            dns_pending: 10_000,
            dns_timeout_ns: 5_000_000_000,
        }
    }
}

/// Everything counted, dropped things included; printed at the end.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Counters {
    pub packets: u64,
    /// Not TCP or UDP over IP (or a link type not decoded).
    pub not_decoded: u64,
    pub http_records: u64,
    pub http_unanswered: u64,
    pub dns_records: u64,
    pub dns_unanswered: u64,
    pub connections: u64,
    /// New connections not tracked because `connections` were.
    pub connections_over_cap: u64,
    pub connections_expired: u64,
    pub duplicate_segments: u64,
    pub out_of_order_segments: u64,
    pub gaps: u64,
    pub http_parse_errors: u64,
    pub http_heads_too_large: u64,
    pub http_skipped_bytes: u64,
    pub http_interim_responses: u64,
    pub responses_without_request: u64,
    /// Requests not kept because too many waited on one connection.
    pub requests_over_pipeline: u64,
    pub dns_duplicates: u64,
    pub dns_unmatched_answers: u64,
    pub dns_parse_errors: u64,
    pub dns_over_cap: u64,
    /// Connections reset (RST) before both ends closed.
    pub tcp_resets: u64,
    /// Connections whose SYN got no SYN-ACK (before it went idle or the capture ended).
    pub tcp_handshakes_incomplete: u64,
    /// Segments sent again (not the second copy `-i any` sees).
    pub tcp_retransmissions: u64,
}

/// Something wrong with a TCP connection, for `--summary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpTrouble {
    /// `reset`, `handshake_incomplete` or `retransmission`.
    pub kind: &'static str,
    pub client: SocketAddr,
    pub server: SocketAddr,
}

/// A request waiting for its response.
struct Waiting {
    request: Message,
}

struct Connection {
    /// `ends[0]` sent what `dirs[0]` reassembles.
    ends: [SocketAddr; 2],
    dirs: [Direction; 2],
    parsers: [Parser; 2],
    /// On a DNS port (with DNS asked for): each direction's partial DNS message,
    /// instead of HTTP.
    dns: Option<[Vec<u8>; 2]>,
    /// Which direction sends the requests, once one did.
    client: Option<usize>,
    /// Which direction sent the SYN, and whether the SYN-ACK followed.
    syn_from: Option<usize>,
    syn_acked: bool,
    waiting: VecDeque<Waiting>,
    last_ts: u64,
    point: String,
    closed: bool,
}

impl RequestMethods for VecDeque<Waiting> {
    fn is_head(&self, k: usize) -> bool {
        self.get(k).is_some_and(
            |w| matches!(&w.request.head, Head::Request { method, .. } if method == "HEAD"),
        )
    }
}

type Key = (SocketAddr, SocketAddr);

fn key(a: SocketAddr, b: SocketAddr) -> Key {
    if a <= b { (a, b) } else { (b, a) }
}

pub struct Decoder {
    settings: Settings,
    connections: HashMap<Key, Connection>,
    dns: DnsMatcher,
    counters: Counters,
    reassembly: ReassemblyCounts,
    parsing: ParseCounts,
    dns_counts: DnsCounts,
    troubles: Vec<TcpTrouble>,
    last_sweep: u64,
}

impl Decoder {
    pub fn new(settings: Settings) -> Decoder {
        Decoder {
            settings,
            connections: HashMap::new(),
            dns: DnsMatcher::default(),
            counters: Counters::default(),
            reassembly: ReassemblyCounts::default(),
            parsing: ParseCounts::default(),
            dns_counts: DnsCounts::default(),
            troubles: Vec::new(),
            last_sweep: 0,
        }
    }

    /// One captured packet, in time order; finished records are pushed to `out`.
    pub fn packet(
        &mut self,
        point: &str,
        link: LinkType,
        ts: u64,
        data: &[u8],
        out: &mut Vec<Record>,
    ) {
        self.counters.packets += 1;
        let Some(datagram) = link::parse(link, data) else {
            self.counters.not_decoded += 1;
            return;
        };
        match datagram.tcp {
            Some(flags) if self.settings.http || self.is_dns(&datagram) => {
                self.tcp(point, ts, &datagram, flags, out)
            }
            None if self.is_dns(&datagram) => {
                let mut records = Vec::new();
                self.dns.datagram(
                    datagram.src,
                    datagram.dst,
                    datagram.payload,
                    "udp",
                    ts,
                    point,
                    self.settings.limits.dns_pending,
                    &mut self.dns_counts,
                    &mut records,
                );
                out.extend(records.into_iter().map(Record::Dns));
            }
            _ => {}
        }
        if ts.saturating_sub(self.last_sweep) > 1_000_000_000 {
            self.last_sweep = ts;
            self.sweep(ts, out);
        }
    }

    fn is_dns(&self, d: &link::Datagram<'_>) -> bool {
        self.settings.dns
            && (self.settings.dns_ports.contains(&d.src.port())
                || self.settings.dns_ports.contains(&d.dst.port()))
    }

    fn tcp(
        &mut self,
        point: &str,
        ts: u64,
        d: &link::Datagram<'_>,
        flags: link::TcpFlags,
        out: &mut Vec<Record>,
    ) {
        let k = key(d.src, d.dst);
        let limits = self.settings.limits.clone();
        if flags.syn && !flags.rst {
            // A SYN (not its second copy) starts the connection afresh.
            let fresh = self.connections.get(&k).is_none_or(|c| c.closed);
            if let Some(old) = fresh.then(|| self.connections.remove(&k)).flatten() {
                self.end(old, None, out);
            }
        }
        if !self.connections.contains_key(&k) {
            if d.payload.is_empty() && !flags.syn {
                return; // a bare ACK or FIN of an unknown connection says nothing
            }
            if self.connections.len() >= limits.connections {
                self.counters.connections_over_cap += 1;
                return;
            }
            self.counters.connections += 1;
            let dns = self.is_dns(d);
            let at_start = flags.syn;
            let parser = || Parser::new(limits.head_bytes, self.settings.body_bytes, at_start);
            self.connections.insert(
                k,
                Connection {
                    ends: [d.src, d.dst],
                    dirs: [Direction::default(), Direction::default()],
                    parsers: [parser(), parser()],
                    client: None,
                    syn_from: None,
                    syn_acked: false,
                    waiting: VecDeque::new(),
                    last_ts: ts,
                    point: point.to_string(),
                    closed: false,
                    dns: dns.then(Default::default),
                },
            );
        }
        let Some(conn) = self.connections.get_mut(&k) else {
            return;
        };
        conn.last_ts = ts;
        if conn.closed {
            self.reassembly.duplicate_segments += u64::from(!d.payload.is_empty());
            return;
        }
        let dir = usize::from(conn.ends[0] != d.src);
        if flags.syn && !flags.ack && conn.syn_from.is_none() {
            conn.syn_from = Some(dir);
        }
        if flags.syn && flags.ack && conn.syn_from == Some(1 - dir) {
            conn.syn_acked = true;
        }
        if flags.rst {
            conn.closed = true;
            self.counters.tcp_resets += 1;
            let (client, server) = client_server(conn);
            self.troubles.push(TcpTrouble {
                kind: "reset",
                client: SocketAddr::new(client.ip, client.port),
                server: SocketAddr::new(server.ip, server.port),
            });
            flush_waiting(conn, "connection reset", &mut self.counters, out);
            return;
        }
        let mut bytes: Vec<u8> = Vec::new();
        // Reassembly calls back with borrowed bytes; gather them (only this
        // packet's worth plus what it released) and parse after.
        let mut events: Vec<(usize, usize, bool, bool)> = Vec::new();
        let retransmissions = self.reassembly.retransmissions;
        conn.dirs[dir].segment(
            flags,
            ts,
            d.payload,
            limits.reorder_bytes,
            &mut self.reassembly,
            &mut |piece| match piece {
                Delivered::Bytes(b) => {
                    events.push((bytes.len(), b.len(), false, false));
                    bytes.extend_from_slice(b);
                }
                Delivered::Gap => events.push((0, 0, true, false)),
                Delivered::Fin => events.push((0, 0, false, true)),
            },
        );
        if self.reassembly.retransmissions > retransmissions {
            let (client, server) = client_server(conn);
            self.troubles.push(TcpTrouble {
                kind: "retransmission",
                client: SocketAddr::new(client.ip, client.port),
                server: SocketAddr::new(server.ip, server.port),
            });
        }
        let pipeline = self.settings.limits.pipeline;
        if let Some(framing) = conn.dns.as_mut() {
            for (at, len, gap, _) in events {
                if gap {
                    framing.iter_mut().for_each(Vec::clear);
                    continue;
                }
                let buf = &mut framing[dir];
                buf.extend_from_slice(&bytes[at..at + len]);
                // Each message is preceded by its length (two bytes).
                while let [hi, lo, rest @ ..] = buf.as_slice() {
                    let n = usize::from(u16::from_be_bytes([*hi, *lo]));
                    let Some(message) = rest.get(..n) else { break };
                    let mut records = Vec::new();
                    self.dns.datagram(
                        conn.ends[dir],
                        conn.ends[1 - dir],
                        message,
                        "tcp",
                        ts,
                        &conn.point,
                        self.settings.limits.dns_pending,
                        &mut self.dns_counts,
                        &mut records,
                    );
                    out.extend(records.into_iter().map(Record::Dns));
                    buf.drain(..2 + n);
                }
            }
            return;
        }
        for (at, len, gap, fin) in events {
            let mut messages = Vec::new();
            if gap {
                for p in &mut conn.parsers {
                    p.gap();
                }
                flush_waiting(
                    conn,
                    "packets missing from the capture",
                    &mut self.counters,
                    out,
                );
            } else if fin {
                conn.parsers[dir].close(ts, &mut messages);
            } else {
                conn.parsers[dir].feed(
                    &bytes[at..at + len],
                    ts,
                    &conn.waiting,
                    &mut self.parsing,
                    &mut messages,
                );
            }
            pair(conn, dir, messages, pipeline, &mut self.counters, out);
        }
        let Some(conn) = self.connections.get_mut(&k) else {
            return;
        };
        if conn.dirs.iter().all(Direction::fin_delivered) {
            conn.closed = true;
            flush_waiting(
                conn,
                "connection closed without a response",
                &mut self.counters,
                out,
            );
        }
    }

    /// Closes idle connections and times out DNS queries.
    fn sweep(&mut self, now: u64, out: &mut Vec<Record>) {
        let idle = self.settings.limits.idle_ns;
        // Closed connections stay a little, to recognise late copies of their packets.
        let expired: Vec<Key> = self
            .connections
            .iter()
            .filter(|(_, c)| {
                now.saturating_sub(c.last_ts) > if c.closed { 5_000_000_000 } else { idle }
            })
            .map(|(k, _)| *k)
            .collect();
        for k in expired {
            if let Some(conn) = self.connections.remove(&k) {
                if !conn.closed {
                    self.counters.connections_expired += 1;
                }
                self.end(conn, Some("connection idle, no response"), out);
            }
        }
        let mut records = Vec::new();
        self.dns
            .expire(Some(now), self.settings.limits.dns_timeout_ns, &mut records);
        out.extend(records.into_iter().map(Record::Dns));
    }

    fn end(&mut self, mut conn: Connection, reason: Option<&str>, out: &mut Vec<Record>) {
        let ts = conn.last_ts;
        if conn.syn_from.is_some() && !conn.syn_acked && !conn.closed {
            self.counters.tcp_handshakes_incomplete += 1;
            let (client, server) = client_server(&conn);
            self.troubles.push(TcpTrouble {
                kind: "handshake_incomplete",
                client: SocketAddr::new(client.ip, client.port),
                server: SocketAddr::new(server.ip, server.port),
            });
        }
        for dir in 0..2 {
            let mut held = Vec::new();
            conn.dirs[dir].flush(&mut self.reassembly, &mut |_| {});
            conn.parsers[dir].close(ts, &mut held);
            for m in held {
                if let Head::Request { .. } = m.head {
                    conn.client = Some(dir);
                    conn.waiting.push_back(Waiting { request: m });
                }
            }
        }
        let reason = reason.unwrap_or("no response by the end of the capture");
        flush_waiting(&mut conn, reason, &mut self.counters, out);
    }

    /// The end: every request still waiting is written without a response.
    pub fn finish(&mut self, out: &mut Vec<Record>) {
        let mut conns: Vec<Connection> = self.connections.drain().map(|(_, c)| c).collect();
        conns.sort_by_key(|c| c.waiting.front().map(|w| w.request.first_ts));
        for conn in conns {
            self.end(conn, None, out);
        }
        let mut records = Vec::new();
        self.dns.expire(None, 0, &mut records);
        out.extend(records.into_iter().map(Record::Dns));
    }

    /// Resets and incomplete handshakes since the last call, for `--summary`.
    pub fn take_tcp_troubles(&mut self) -> Vec<TcpTrouble> {
        std::mem::take(&mut self.troubles)
    }

    pub fn counters(&self) -> Counters {
        let mut c = self.counters.clone();
        c.duplicate_segments = self.reassembly.duplicate_segments;
        c.tcp_retransmissions = self.reassembly.retransmissions;
        c.out_of_order_segments = self.reassembly.out_of_order_segments;
        c.gaps = self.reassembly.gaps;
        c.http_parse_errors = self.parsing.errors;
        c.http_heads_too_large = self.parsing.heads_too_large;
        c.http_skipped_bytes = self.parsing.skipped_bytes;
        c.http_interim_responses = self.parsing.interim_responses;
        c.dns_records = self.dns_counts.answers;
        c.dns_duplicates = self.dns_counts.duplicates;
        c.dns_unmatched_answers = self.dns_counts.unmatched_answers;
        c.dns_parse_errors = self.dns_counts.parse_errors;
        c.dns_over_cap = self.dns_counts.over_cap;
        c.dns_unanswered = self
            .dns_counts
            .queries
            .saturating_sub(self.dns_counts.answers);
        c
    }
}

/// Pairs the messages one direction finished: a request waits, a response
/// answers the oldest waiting request.
fn pair(
    conn: &mut Connection,
    dir: usize,
    messages: Vec<Message>,
    pipeline: usize,
    counters: &mut Counters,
    out: &mut Vec<Record>,
) {
    for message in messages {
        match message.head {
            Head::Request { .. } => {
                conn.client = Some(dir);
                if conn.waiting.len() >= pipeline {
                    counters.requests_over_pipeline += 1;
                    continue;
                }
                conn.waiting.push_back(Waiting { request: message });
            }
            Head::Response { .. } => {
                let early = || {
                    conn.parsers[1 - dir]
                        .answer_early()
                        .map(|request| Waiting { request })
                };
                let Some(waiting) = conn.waiting.pop_front().or_else(early) else {
                    counters.responses_without_request += 1;
                    continue;
                };
                let (client, server) = client_server(conn);
                counters.http_records += 1;
                out.push(Record::Http(HttpRecord::exchange(
                    waiting.request,
                    Some(message),
                    None,
                    client,
                    server,
                    &conn.point,
                )));
            }
        }
    }
}

fn client_server(conn: &Connection) -> (Peer, Peer) {
    // The side that asked, else the side that opened the connection.
    let client = conn.client.or(conn.syn_from).unwrap_or(0);
    (conn.ends[client].into(), conn.ends[1 - client].into())
}

fn flush_waiting(
    conn: &mut Connection,
    reason: &str,
    counters: &mut Counters,
    out: &mut Vec<Record>,
) {
    let (client, server) = client_server(conn);
    for waiting in conn.waiting.drain(..) {
        counters.http_unanswered += 1;
        out.push(Record::Http(HttpRecord::exchange(
            waiting.request,
            None,
            Some(reason),
            client.clone(),
            server.clone(),
            &conn.point,
        )));
    }
}
