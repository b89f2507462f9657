//! HTTP/1.0 and 1.1 messages out of one direction's reassembled bytes, parsed with
//! httparse. Either kind of message is recognised by its content (any port):
//! requests by a method and `HTTP/1.` on the first line, responses by `HTTP/1.`.
//! Heads are buffered up to a cap; bodies (Content-Length, chunked, or up to the
//! close) are counted as they pass and only their first bytes kept. After a parse
//! error or a gap the parser seeks the next line that starts a message.

const METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"HEAD ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];
const MAX_HEADERS: usize = 100;
/// A chunk-size line or a trailer line longer than this is not HTTP.
const MAX_LINE: usize = 4096;

/// A message's first line and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    Request { method: String, path: String },
    Response { status: u16, status_text: String },
}

/// One whole message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub head: Head,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: &'static str,
    pub headers: Vec<(String, String)>,
    /// Time of the packet that brought the head's first bytes, ns since the epoch.
    pub first_ts: u64,
    /// Time of the packet that completed it.
    pub last_ts: u64,
    /// Body bytes (after removing chunked framing).
    pub body_bytes: u64,
    /// The first `--http-body` bytes of the body.
    pub body: Vec<u8>,
    /// The body was cut by the end of the connection before its announced length.
    pub truncated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Looking for the start of a message at a line start.
    Seek,
    Head,
    Body {
        left: u64,
    },
    ChunkSize,
    ChunkData {
        left: u64,
    },
    ChunkEnd,
    Trailers,
    UntilClose,
}

/// Why bytes were thrown away, for the counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ParseCounts {
    /// Heads or chunk framing that httparse or the framing rules refused.
    pub errors: u64,
    /// Heads larger than the cap.
    pub heads_too_large: u64,
    /// Bytes skipped while seeking a message start.
    pub skipped_bytes: u64,
    /// `1xx` interim responses (not exchanges of their own).
    pub interim_responses: u64,
}

/// One direction's parser.
#[derive(Debug)]
pub struct Parser {
    state: State,
    buf: Vec<u8>,
    current: Option<Message>,
    /// The request in progress was answered before its body ended (an early 501,
    /// 413, 401): it was handed out already and is not output again.
    answered_early: bool,
    head_ts: Option<u64>,
    head_cap: usize,
    body_sample: usize,
    /// Whether this direction ever produced a message (it is HTTP).
    pub seen_http: bool,
}

/// What the parser needs to know about the other direction to frame a response:
/// whether the request it answers was a HEAD (no body whatever the headers say).
pub trait RequestMethods {
    /// Is the `k`-th response from now the answer to a HEAD request?
    fn is_head(&self, k: usize) -> bool;
}

impl Parser {
    pub fn new(head_cap: usize, body_sample: usize, at_start: bool) -> Parser {
        Parser {
            state: if at_start { State::Head } else { State::Seek },
            buf: Vec::new(),
            current: None,
            answered_early: false,
            head_ts: None,
            head_cap,
            body_sample,
            seen_http: false,
        }
    }

    /// Bytes held (a partial head or line).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds bytes that arrived at `ts`; whole messages are pushed to `out`.
    pub fn feed(
        &mut self,
        bytes: &[u8],
        ts: u64,
        methods: &dyn RequestMethods,
        counts: &mut ParseCounts,
        out: &mut Vec<Message>,
    ) {
        self.buf.extend_from_slice(bytes);
        let responses_before = responses(out);
        let mut at = 0;
        // Every step consumes bytes or moves to a state that will (a finished
        // message, a resync), so this ends.
        while let Some(n) = self.step(
            at,
            ts,
            methods,
            responses(out) - responses_before,
            counts,
            out,
        ) {
            at += n;
        }
        self.buf.drain(..at);
    }

    /// One step on `buf[at..]`: `Some(consumed)` when it made progress (possibly
    /// zero bytes, when a message completed), `None` when it needs more bytes.
    fn step(
        &mut self,
        at: usize,
        ts: u64,
        methods: &dyn RequestMethods,
        responses: usize,
        counts: &mut ParseCounts,
        out: &mut Vec<Message>,
    ) -> Option<usize> {
        let data = &self.buf[at..];
        match self.state {
            State::Seek => {
                let (skip, found) = seek(data);
                counts.skipped_bytes += skip as u64;
                if found {
                    self.state = State::Head;
                    self.head_ts = Some(ts);
                    Some(skip)
                } else if skip > 0 {
                    Some(skip)
                } else {
                    None
                }
            }
            State::Head => {
                if data.is_empty() {
                    return None;
                }
                let first_ts = *self.head_ts.get_or_insert(ts);
                match parse_head(data) {
                    Ok(None) if data.len() > self.head_cap => {
                        counts.heads_too_large += 1;
                        self.resync();
                        Some(1)
                    }
                    Ok(None) => None,
                    Err(()) => {
                        counts.errors += 1;
                        self.resync();
                        Some(1)
                    }
                    Ok(Some((len, head, version, headers))) => {
                        self.head_ts = None;
                        self.seen_http = true;
                        let framing = framing(&head, &headers, || methods.is_head(responses));
                        let message = Message {
                            head,
                            version,
                            headers,
                            first_ts,
                            last_ts: ts,
                            body_bytes: 0,
                            body: Vec::new(),
                            truncated: false,
                        };
                        match framing {
                            Framing::Interim => {
                                counts.interim_responses += 1;
                                self.state = State::Head;
                            }
                            Framing::Length(n) => {
                                self.current = Some(message);
                                self.state = State::Body { left: n };
                            }
                            Framing::Chunked => {
                                self.current = Some(message);
                                self.state = State::ChunkSize;
                            }
                            Framing::UntilClose => {
                                self.current = Some(message);
                                self.state = State::UntilClose;
                            }
                        }
                        Some(len)
                    }
                }
            }
            State::Body { left: 0 } => {
                self.complete(ts, false, out);
                Some(0)
            }
            State::Body { left } | State::ChunkData { left } => {
                if data.is_empty() {
                    return None;
                }
                let n = (data.len() as u64).min(left) as usize;
                let taken = data[..n].to_vec();
                self.take_body(&taken);
                self.state = match self.state {
                    State::Body { .. } => State::Body {
                        left: left - n as u64,
                    },
                    _ if left == n as u64 => State::ChunkEnd,
                    _ => State::ChunkData {
                        left: left - n as u64,
                    },
                };
                Some(n)
            }
            State::ChunkSize => {
                let Some(line) = line(data) else {
                    return self.line_too_long(data.len(), counts);
                };
                let size = std::str::from_utf8(&data[..line.content])
                    .ok()
                    .and_then(|l| u64::from_str_radix(l.split(';').next()?.trim(), 16).ok());
                match size {
                    Some(0) => self.state = State::Trailers,
                    Some(n) => self.state = State::ChunkData { left: n },
                    None => {
                        counts.errors += 1;
                        self.resync();
                        return Some(1);
                    }
                }
                Some(line.total)
            }
            // The line end after a chunk's data, and nothing else.
            State::ChunkEnd => match data {
                [b'\r', b'\n', ..] | [b'\n', ..] => {
                    self.state = State::ChunkSize;
                    Some(if data[0] == b'\r' { 2 } else { 1 })
                }
                [] | [b'\r'] => None,
                _ => {
                    counts.errors += 1;
                    self.resync();
                    Some(0)
                }
            },
            State::Trailers => {
                let Some(line) = line(data) else {
                    return self.line_too_long(data.len(), counts);
                };
                if line.content == 0 {
                    self.complete(ts, false, out);
                }
                Some(line.total)
            }
            State::UntilClose => {
                if data.is_empty() {
                    return None;
                }
                let taken = data.to_vec();
                self.take_body(&taken);
                Some(taken.len())
            }
        }
    }

    fn line_too_long(&mut self, len: usize, counts: &mut ParseCounts) -> Option<usize> {
        if len > MAX_LINE {
            counts.errors += 1;
            self.resync();
            Some(1)
        } else {
            None
        }
    }

    fn take_body(&mut self, bytes: &[u8]) {
        if let Some(m) = self.current.as_mut() {
            m.body_bytes += bytes.len() as u64;
            let room = self.body_sample.saturating_sub(m.body.len());
            m.body.extend_from_slice(&bytes[..room.min(bytes.len())]);
        }
    }

    fn complete(&mut self, ts: u64, truncated: bool, out: &mut Vec<Message>) {
        if let Some(mut m) = self.current.take().filter(|_| !self.answered_early) {
            m.last_ts = ts;
            m.truncated = truncated;
            out.push(m);
        }
        self.answered_early = false;
        self.state = State::Head;
    }

    /// A response came while this side's request is still sending its body: the
    /// request as far as it got, to pair with it now (once).
    pub fn answer_early(&mut self) -> Option<Message> {
        if self.answered_early {
            return None;
        }
        let m = self.current.as_ref()?;
        if !matches!(m.head, Head::Request { .. }) {
            return None;
        }
        self.answered_early = true;
        Some(m.clone())
    }

    /// The message in progress is lost: look for the next message start.
    fn resync(&mut self) {
        self.current = None;
        self.answered_early = false;
        self.head_ts = None;
        self.state = State::Seek;
    }

    /// Bytes were lost before what comes next.
    pub fn gap(&mut self) {
        self.buf.clear();
        self.resync();
    }

    /// The sender closed its side: a body read up to the close ends here, a body
    /// with a known length ends short.
    pub fn close(&mut self, ts: u64, out: &mut Vec<Message>) {
        match self.state {
            State::UntilClose => self.complete(ts, false, out),
            State::Body { .. }
            | State::ChunkSize
            | State::ChunkData { .. }
            | State::ChunkEnd
            | State::Trailers => self.complete(ts, true, out),
            State::Seek | State::Head => {}
        }
        self.buf.clear();
        self.state = State::Seek;
    }
}

/// How a message's body ends.
enum Framing {
    /// A `1xx` response: another response follows for the same request.
    Interim,
    Length(u64),
    Chunked,
    UntilClose,
}

fn framing(head: &Head, headers: &[(String, String)], answers_head: impl Fn() -> bool) -> Framing {
    let header = |name: &str| {
        headers
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let chunked =
        header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length = header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
    match head {
        Head::Response { status, .. } if (100..200).contains(status) && *status != 101 => {
            Framing::Interim
        }
        Head::Response { status, .. } if *status == 204 || *status == 304 || answers_head() => {
            Framing::Length(0)
        }
        _ if chunked => Framing::Chunked,
        _ if length.is_some() => Framing::Length(length.unwrap_or(0)),
        Head::Request { .. } => Framing::Length(0),
        Head::Response { .. } => Framing::UntilClose,
    }
}

type ParsedHead = (usize, Head, &'static str, Vec<(String, String)>);

/// `Ok(None)`: the head is not complete yet.
fn parse_head(data: &[u8]) -> Result<Option<ParsedHead>, ()> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let version = |v: Option<u8>| if v == Some(0) { "HTTP/1.0" } else { "HTTP/1.1" };
    let list = |headers: &[httparse::Header<'_>]| {
        headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    if data.starts_with(b"HTTP/") {
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(data) {
            Ok(httparse::Status::Complete(len)) => Ok(Some((
                len,
                Head::Response {
                    status: response.code.unwrap_or(0),
                    status_text: response.reason.unwrap_or("").to_string(),
                },
                version(response.version),
                list(response.headers),
            ))),
            Ok(httparse::Status::Partial) => Ok(None),
            Err(_) => Err(()),
        }
    } else {
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(data) {
            Ok(httparse::Status::Complete(len)) => Ok(Some((
                len,
                Head::Request {
                    method: request.method.unwrap_or("").to_string(),
                    path: request.path.unwrap_or("").to_string(),
                },
                version(request.version),
                list(request.headers),
            ))),
            Ok(httparse::Status::Partial) => Ok(None),
            Err(_) => Err(()),
        }
    }
}

/// Where a message may start in `data`: (bytes to skip, whether a start was found
/// there). A line start too short to tell is kept (not skipped) for later bytes.
fn seek(data: &[u8]) -> (usize, bool) {
    let mut start = 0;
    loop {
        let rest = &data[start..];
        match starts_message(rest) {
            Some(true) => return (start, true),
            None => return (start, false),
            Some(false) => {}
        }
        match rest.iter().position(|&b| b == b'\n') {
            Some(nl) => start += nl + 1,
            None => return (data.len(), false),
        }
    }
}

/// Whether `line` starts an HTTP message; `None`: too few bytes to tell.
fn starts_message(line: &[u8]) -> Option<bool> {
    const RESPONSE: &[u8] = b"HTTP/1.";
    let candidates = METHODS.iter().copied().chain(std::iter::once(RESPONSE));
    let mut undecided = false;
    for word in candidates {
        let n = word.len().min(line.len());
        if line[..n] == word[..n] {
            if n == word.len() {
                return Some(word == RESPONSE || request_line_has_version(line));
            }
            undecided = true;
        }
    }
    if undecided { None } else { Some(false) }
}

/// A request line ends in ` HTTP/1.x`: tells a request from body text that
/// happens to start with `GET `. Without the whole line yet, assume it does.
fn request_line_has_version(line: &[u8]) -> bool {
    match line.iter().position(|&b| b == b'\n') {
        Some(end) => line[..end].windows(7).any(|w| w == b"HTTP/1."),
        None => line.len() < MAX_LINE,
    }
}

fn responses(messages: &[Message]) -> usize {
    messages
        .iter()
        .filter(|m| matches!(m.head, Head::Response { .. }))
        .count()
}

struct Line {
    /// Bytes before the line end.
    content: usize,
    /// With the line end.
    total: usize,
}

fn line(data: &[u8]) -> Option<Line> {
    let nl = data.iter().position(|&b| b == b'\n')?;
    let content = if nl > 0 && data[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    Some(Line {
        content,
        total: nl + 1,
    })
}
