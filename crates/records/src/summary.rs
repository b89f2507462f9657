//! `--summary`: what went wrong, per pod, from the records: HTTP requests each pod
//! served by status class, unanswered ones, latency percentiles; DNS queries each
//! pod made, with NXDOMAIN, SERVFAIL, other errors and unanswered ones; TCP
//! connections to each pod reset or never answered (SYN without SYN-ACK). Latencies
//! go into a fixed log-scale histogram so memory stays flat on long captures.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::record::{Peer, Record};

/// Histogram buckets per factor of 10; p50/p99 are the upper bound of their bucket
/// (at most 12% high).
const PER_DECADE: f64 = 20.0;
/// From 1 µs to 1000 s.
const BUCKETS: usize = 9 * PER_DECADE as usize;
const SMALLEST_MS: f64 = 0.001;

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Row {
    /// `prod/web-0` (pod), `prod/svc/web`, a node, or the address when unnamed.
    pub pod: String,
    pub http_requests: u64,
    pub http_2xx: u64,
    pub http_3xx: u64,
    pub http_4xx: u64,
    pub http_5xx: u64,
    /// Requests with no response (status null).
    pub http_no_response: u64,
    pub http_p50_ms: Option<f64>,
    pub http_p99_ms: Option<f64>,
    pub dns_queries: u64,
    pub dns_nxdomain: u64,
    pub dns_servfail: u64,
    pub dns_other_errors: u64,
    pub dns_no_answer: u64,
    /// Connections to it reset (RST) before they closed.
    pub tcp_resets: u64,
    /// Connections to it whose SYN got no SYN-ACK.
    pub tcp_handshakes_incomplete: u64,
    /// Segments sent again on its connections (either way).
    pub tcp_retransmissions: u64,
}

#[derive(Debug, Default, Clone)]
struct Stats {
    row: Option<Row>,
    latencies: Vec<u32>,
}

/// The per-pod figures so far.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pods: BTreeMap<String, Stats>,
}

fn who(peer: &Peer) -> String {
    match &peer.name {
        Some(n) => match (&n.namespace, n.kind) {
            (Some(ns), "service") => format!("{ns}/svc/{}", n.name),
            (Some(ns), _) => format!("{ns}/{}", n.name),
            (None, _) => n.name.clone(),
        },
        None => peer.ip.to_string(),
    }
}

fn bucket(ms: f64) -> usize {
    let b = ((ms.max(SMALLEST_MS) / SMALLEST_MS).log10() * PER_DECADE).ceil();
    (b as usize).min(BUCKETS - 1)
}

fn bucket_top(b: usize) -> f64 {
    SMALLEST_MS * 10f64.powf(b as f64 / PER_DECADE)
}

impl Summary {
    fn stats(&mut self, peer: &Peer) -> &mut Stats {
        let pod = who(peer);
        let stats = self.pods.entry(pod.clone()).or_default();
        let row = stats.row.get_or_insert_with(Row::default);
        if row.pod.is_empty() {
            row.pod = pod;
        }
        stats
    }

    /// Counts a TCP trouble against the server (`kind` as [`crate::TcpTrouble`]'s).
    pub fn add_tcp(&mut self, kind: &str, server: &Peer) {
        let stats = self.stats(server);
        let Some(row) = stats.row.as_mut() else {
            return;
        };
        match kind {
            "reset" => row.tcp_resets += 1,
            "retransmission" => row.tcp_retransmissions += 1,
            _ => row.tcp_handshakes_incomplete += 1,
        }
    }

    /// Counts a record (with its ends already named): HTTP by its server, DNS by its client.
    pub fn add(&mut self, record: &Record) {
        let stats = match record {
            Record::Http(r) => self.stats(&r.server),
            Record::Dns(r) => self.stats(&r.client),
        };
        let Some(row) = stats.row.as_mut() else {
            return;
        };
        match record {
            Record::Http(r) => {
                row.http_requests += 1;
                match r.status {
                    None => row.http_no_response += 1,
                    Some(200..=299) => row.http_2xx += 1,
                    Some(300..=399) => row.http_3xx += 1,
                    Some(400..=499) => row.http_4xx += 1,
                    Some(500..) => row.http_5xx += 1,
                    Some(_) => {}
                }
                if let Some(ms) = r.latency_ms {
                    if stats.latencies.is_empty() {
                        stats.latencies = vec![0; BUCKETS];
                    }
                    stats.latencies[bucket(ms)] += 1;
                }
            }
            Record::Dns(r) => {
                row.dns_queries += 1;
                match r.rcode.as_deref() {
                    None => row.dns_no_answer += 1,
                    Some("NoError") => {}
                    Some("NameError") => row.dns_nxdomain += 1,
                    Some("ServerFailure") => row.dns_servfail += 1,
                    Some(_) => row.dns_other_errors += 1,
                }
            }
        }
    }

    /// One row per pod, in name order, with the percentiles filled in.
    pub fn rows(&self) -> Vec<Row> {
        self.pods
            .values()
            .filter_map(|stats| {
                let mut row = stats.row.clone()?;
                row.http_p50_ms = percentile(&stats.latencies, 0.50);
                row.http_p99_ms = percentile(&stats.latencies, 0.99);
                Some(row)
            })
            .collect()
    }

    /// The table printed at exit.
    pub fn text(&self) -> String {
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        let mut lines = vec![
            [
                "POD",
                "HTTP",
                "2xx",
                "3xx",
                "4xx",
                "5xx",
                "NO-RESP",
                "P50-MS",
                "P99-MS",
                "DNS",
                "NXDOMAIN",
                "SERVFAIL",
                "DNS-ERR",
                "NO-ANSWER",
                "RST",
                "NO-HANDSHAKE",
                "RETRANS",
            ]
            .map(str::to_string),
        ];
        for r in self.rows() {
            lines.push([
                r.pod.clone(),
                r.http_requests.to_string(),
                r.http_2xx.to_string(),
                r.http_3xx.to_string(),
                r.http_4xx.to_string(),
                r.http_5xx.to_string(),
                r.http_no_response.to_string(),
                ms(r.http_p50_ms),
                ms(r.http_p99_ms),
                r.dns_queries.to_string(),
                r.dns_nxdomain.to_string(),
                r.dns_servfail.to_string(),
                r.dns_other_errors.to_string(),
                r.dns_no_answer.to_string(),
                r.tcp_resets.to_string(),
                r.tcp_handshakes_incomplete.to_string(),
                r.tcp_retransmissions.to_string(),
            ]);
        }
        let widths: Vec<usize> = (0..lines[0].len())
            .map(|i| lines.iter().map(|l| l[i].len()).max().unwrap_or(0))
            .collect();
        lines
            .iter()
            .map(|l| {
                let cells: Vec<String> = l
                    .iter()
                    .zip(&widths)
                    .enumerate()
                    .map(|(i, (c, w))| {
                        if i == 0 {
                            format!("{c:<w$}")
                        } else {
                            format!("{c:>w$}")
                        }
                    })
                    .collect();
                cells.join("  ").trim_end().to_string() + "\n"
            })
            .collect()
    }
}

/// The upper bound of the bucket holding the `q` quantile.
fn percentile(histogram: &[u32], q: f64) -> Option<f64> {
    let total: u64 = histogram.iter().map(|&n| u64::from(n)).sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (b, &n) in histogram.iter().enumerate() {
        seen += u64::from(n);
        if seen >= rank {
            return Some((bucket_top(b) * 1000.0).round() / 1000.0);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_within_a_bucket() {
        let mut h = vec![0; BUCKETS];
        for ms in 1..=100 {
            h[bucket(ms as f64)] += 1;
        }
        let p50 = percentile(&h, 0.5).unwrap();
        let p99 = percentile(&h, 0.99).unwrap();
        assert!((50.0..=56.0).contains(&p50), "{p50}");
        assert!((99.0..=111.0).contains(&p99), "{p99}");
        assert_eq!(percentile(&vec![0; BUCKETS], 0.5), None);
    }
}
