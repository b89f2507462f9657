//! DNS over UDP and TCP: queries matched with their answers by client, server and
//! query id, parsed with simple-dns (the decoder takes TCP's length-prefixed
//! messages out of the reassembled stream). A query seen twice (`-i any`) counts once; queries
//! that wait too long are written without an answer.

use std::collections::HashMap;
use std::net::SocketAddr;

use simple_dns::rdata::RData;

use crate::record::{DnsAnswer, DnsRecord, latency_ms};
use crate::rfc3339;

/// Counted by DNS matching, for [`crate::Counters`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DnsCounts {
    pub queries: u64,
    pub answers: u64,
    /// The second copy of a query or answer.
    pub duplicates: u64,
    /// Answers to queries not captured (or already answered).
    pub unmatched_answers: u64,
    /// Datagrams on a DNS port that are not DNS.
    pub parse_errors: u64,
    /// Queries dropped because too many were waiting.
    pub over_cap: u64,
}

struct Pending {
    ts: u64,
    transport: &'static str,
    name: String,
    qtype: String,
    point: String,
}

type Key = (SocketAddr, SocketAddr, u16);

/// Queries waiting for answers.
#[derive(Default)]
pub struct DnsMatcher {
    pending: HashMap<Key, Pending>,
    /// Recently answered, to recognise the second copy of an answer.
    answered: HashMap<Key, u64>,
}

impl DnsMatcher {
    /// A DNS message from `src` to `dst` on a DNS port, over `transport` (`udp`, `tcp`).
    #[allow(clippy::too_many_arguments)]
    pub fn datagram(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
        transport: &'static str,
        ts: u64,
        point: &str,
        cap: usize,
        counts: &mut DnsCounts,
        out: &mut Vec<DnsRecord>,
    ) {
        let Ok(packet) = simple_dns::Packet::parse(payload) else {
            counts.parse_errors += 1;
            return;
        };
        let response = packet.has_flags(simple_dns::PacketFlag::RESPONSE);
        if !response {
            let key = (src, dst, packet.id());
            if self.pending.contains_key(&key)
                || self
                    .answered
                    .get(&key)
                    .is_some_and(|&t| ts - t < 1_000_000_000)
            {
                counts.duplicates += 1;
                return;
            }
            if self.pending.len() >= cap {
                counts.over_cap += 1;
                return;
            }
            counts.queries += 1;
            let (name, qtype) = match packet.questions.first() {
                Some(q) => (q.qname.to_string(), qtype_name(q.qtype)),
                None => (String::new(), String::new()),
            };
            self.pending.insert(
                key,
                Pending {
                    ts,
                    transport,
                    name,
                    qtype,
                    point: point.to_string(),
                },
            );
            return;
        }
        let key = (dst, src, packet.id());
        let Some(query) = self.pending.remove(&key) else {
            if self.answered.contains_key(&key) {
                counts.duplicates += 1;
            } else {
                counts.unmatched_answers += 1;
            }
            return;
        };
        counts.answers += 1;
        self.answered.insert(key, ts);
        let answers = packet.answers.iter().map(answer).collect();
        out.push(DnsRecord {
            kind: "dns",
            query_time: rfc3339(query.ts),
            answer_time: Some(rfc3339(ts)),
            latency_ms: Some(latency_ms(query.ts, ts)),
            transport: query.transport,
            id: packet.id(),
            name: query.name,
            qtype: query.qtype,
            rcode: Some(format!("{:?}", packet.rcode())),
            reason: None,
            answers,
            client: dst.into(),
            server: src.into(),
            point: query.point,
        });
    }

    /// Writes out queries older than `timeout` ns at `now` (all at the end: `None`).
    pub fn expire(&mut self, now: Option<u64>, timeout: u64, out: &mut Vec<DnsRecord>) {
        let old = |ts: u64| now.is_none_or(|now| now.saturating_sub(ts) > timeout);
        let expired: Vec<Key> = self
            .pending
            .iter()
            .filter(|(_, p)| old(p.ts))
            .map(|(k, _)| *k)
            .collect();
        let mut records: Vec<DnsRecord> = expired
            .into_iter()
            .filter_map(|key| {
                let p = self.pending.remove(&key)?;
                Some(DnsRecord {
                    kind: "dns",
                    query_time: rfc3339(p.ts),
                    answer_time: None,
                    latency_ms: None,
                    transport: p.transport,
                    id: key.2,
                    name: p.name,
                    qtype: p.qtype,
                    rcode: None,
                    reason: Some(match now {
                        Some(_) => format!("no answer within {} s", timeout / 1_000_000_000),
                        None => "no answer by the end of the capture".into(),
                    }),
                    answers: Vec::new(),
                    client: key.0.into(),
                    server: key.1.into(),
                    point: p.point,
                })
            })
            .collect();
        records.sort_by(|a, b| a.query_time.cmp(&b.query_time));
        out.extend(records);
        self.answered
            .retain(|_, t| now.is_some_and(|now| now.saturating_sub(*t) < 1_000_000_000));
    }
}

fn qtype_name(qtype: simple_dns::QTYPE) -> String {
    match qtype {
        simple_dns::QTYPE::TYPE(t) => format!("{t:?}"),
        other => format!("{other:?}"),
    }
}

fn answer(rr: &simple_dns::ResourceRecord<'_>) -> DnsAnswer {
    let data = match &rr.rdata {
        RData::A(a) => std::net::Ipv4Addr::from(a.address).to_string(),
        RData::AAAA(a) => std::net::Ipv6Addr::from(a.address).to_string(),
        RData::CNAME(n) => n.0.to_string(),
        RData::PTR(n) => n.0.to_string(),
        RData::NS(n) => n.0.to_string(),
        other => format!("{other:?}"),
    };
    DnsAnswer {
        name: rr.name.to_string(),
        kind: format!("{:?}", rr.rdata.type_code()),
        ttl: rr.ttl,
        data,
    }
}
