//! The records and their JSON form: field names here are the documented, stable
//! format (README, "Requests as JSON lines"). Times are RFC 3339 in UTC with
//! nanoseconds, latencies milliseconds as floats, sizes bytes.

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use crate::http::{Head, Message};
use crate::rfc3339;

/// One line of output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Record {
    Http(HttpRecord),
    Dns(DnsRecord),
}

impl Record {
    /// Both ends, for the caller to name.
    pub fn peers_mut(&mut self) -> [&mut Peer; 2] {
        match self {
            Record::Http(r) => [&mut r.client, &mut r.server],
            Record::Dns(r) => [&mut r.client, &mut r.server],
        }
    }
}

/// Whose an address is: filled in by the caller (kcap's names of pods, services, nodes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerName {
    /// `pod`, `service`, `node`, or `host` (a name read from a capture file).
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

/// One end of an exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Peer {
    pub ip: IpAddr,
    pub port: u16,
    /// `null` when the address is not one kcap knows.
    pub name: Option<PeerName>,
}

impl From<SocketAddr> for Peer {
    fn from(addr: SocketAddr) -> Peer {
        Peer {
            ip: addr.ip(),
            port: addr.port(),
            name: None,
        }
    }
}

/// One HTTP request and its response (or the lack of one).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpRecord {
    /// Always `"http"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// When the request's first bytes were captured.
    pub request_time: String,
    /// When the response's first bytes were captured; `null` without a response.
    pub response_time: Option<String>,
    /// `response_time - request_time`, in ms.
    pub latency_ms: Option<f64>,
    pub method: String,
    pub path: String,
    /// The request's Host header.
    pub host: Option<String>,
    /// The request's version, `HTTP/1.0` or `HTTP/1.1`.
    pub version: &'static str,
    pub status: Option<u16>,
    pub status_text: Option<String>,
    /// Why there is no response (`status` null): set only then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Headers in the order sent, each `[name, value]`.
    pub request_headers: Vec<(String, String)>,
    pub response_headers: Vec<(String, String)>,
    pub request_body_bytes: u64,
    pub response_body_bytes: Option<u64>,
    /// The first `--http-body` bytes of each body (lossy UTF-8); absent when 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    pub client: Peer,
    pub server: Peer,
    /// Where the packets were captured (kcap's capture point: `prod/web-0`, `node-a:eth0`).
    pub point: String,
}

impl HttpRecord {
    /// The record of a request and its response (or `reason` why there is none).
    pub(crate) fn exchange(
        request: Message,
        response: Option<Message>,
        reason: Option<&str>,
        client: Peer,
        server: Peer,
        point: &str,
    ) -> HttpRecord {
        let Head::Request { method, path } = request.head else {
            unreachable!("only requests wait for responses")
        };
        let host = request
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("host"))
            .map(|(_, v)| v.clone());
        let sample =
            |body: &[u8]| (!body.is_empty()).then(|| String::from_utf8_lossy(body).into_owned());
        let (status, status_text) = match response.as_ref().map(|r| &r.head) {
            Some(Head::Response {
                status,
                status_text,
            }) => (Some(*status), Some(status_text.clone())),
            _ => (None, None),
        };
        HttpRecord {
            kind: "http",
            request_time: rfc3339(request.first_ts),
            response_time: response.as_ref().map(|r| rfc3339(r.first_ts)),
            latency_ms: response
                .as_ref()
                .map(|r| latency_ms(request.first_ts, r.first_ts)),
            method,
            path,
            host,
            version: request.version,
            status,
            status_text,
            reason: reason.map(str::to_string),
            request_headers: request.headers,
            response_headers: response
                .as_ref()
                .map(|r| r.headers.clone())
                .unwrap_or_default(),
            request_body_bytes: request.body_bytes,
            response_body_bytes: response.as_ref().map(|r| r.body_bytes),
            request_body: sample(&request.body),
            response_body: response.as_ref().and_then(|r| sample(&r.body)),
            client,
            server,
            point: point.to_string(),
        }
    }
}

/// One DNS answer record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsAnswer {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub ttl: u32,
    /// An address for A/AAAA, a name for CNAME/PTR/NS, else the record as text.
    pub data: String,
}

/// One DNS query and its answer (or the lack of one).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsRecord {
    /// Always `"dns"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub query_time: String,
    pub answer_time: Option<String>,
    pub latency_ms: Option<f64>,
    /// `udp` or `tcp`.
    pub transport: &'static str,
    pub id: u16,
    /// The first question's name and type (`A`, `AAAA`, ...).
    pub name: String,
    pub qtype: String,
    /// `NoError`, `NameError` (NXDOMAIN), `ServerFailure`, ...; `null` without an answer.
    pub rcode: Option<String>,
    /// Why there is no answer: set only then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub answers: Vec<DnsAnswer>,
    pub client: Peer,
    pub server: Peer,
    pub point: String,
}

/// Milliseconds between two capture times, with microsecond precision.
pub fn latency_ms(from: u64, to: u64) -> f64 {
    (to.saturating_sub(from) / 1000) as f64 / 1000.0
}
