//! The capture agent's in-band annotations: records of its pcap stream that are
//! not packets but say which process the next packet belongs to.
//!
//! A pcap record with data but length 0 on the wire is never a real packet (a
//! packet is never longer captured than sent), so the agent uses that shape for
//! two kinds of note, told apart by the first data byte:
//!
//! - `DEFINE` (1): `id` (u32, little-endian) then UTF-8 text, the pcapng comment
//!   for that process in ptcpdump's keys (`PID: 4242\nCmd: /usr/bin/curl\n...`).
//!   It defines or redefines `id`; ids are below [`MAX_PROCESSES`].
//! - `NEXT` (2): `id`: the next packet of this stream belongs to that process.
//!
//! The agent sends a `DEFINE` before the first `NEXT` that uses its id, so a
//! reader that keeps the last text per id ([`Annotator`]) can name every packet.
//! Memory is bounded by [`MAX_PROCESSES`] texts of at most [`MAX_TEXT`] bytes.
//! The records never reach a file: the stream's reader takes them out.

use std::sync::Arc;

use crate::Packet;

/// Ids are below this; the agent reuses them for new processes when it must.
pub const MAX_PROCESSES: u32 = 4096;
/// The longest text a `DEFINE` carries (the agent cuts arguments to fit).
pub const MAX_TEXT: usize = 4000;

const DEFINE: u8 = 1;
const NEXT: u8 = 2;

/// One annotation, as parsed from a record's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Annotation<'a> {
    /// `id` now stands for the process `text` describes.
    Define { id: u32, text: &'a str },
    /// The next packet belongs to `id`.
    Next { id: u32 },
}

impl<'a> Annotation<'a> {
    /// Whether `packet` is an annotation record rather than a packet.
    pub fn is_annotation(packet: &Packet) -> bool {
        packet.orig_len == 0 && !packet.data.is_empty()
    }

    /// The annotation in an annotation record's data; `None` for a kind this
    /// version does not know or a malformed one (skipped, never fatal).
    pub fn parse(data: &'a [u8]) -> Option<Self> {
        let (&kind, rest) = data.split_first()?;
        let id = u32::from_le_bytes(*rest.first_chunk::<4>()?);
        if id >= MAX_PROCESSES {
            return None;
        }
        match kind {
            DEFINE => {
                let text = std::str::from_utf8(&rest[4..]).ok()?;
                (text.len() <= MAX_TEXT).then_some(Annotation::Define { id, text })
            }
            NEXT => (rest.len() == 4).then_some(Annotation::Next { id }),
            _ => None,
        }
    }

    /// Appends this annotation as a whole pcap record (timestamp 0, native byte
    /// order, as the agent writes its stream). A `Define` text longer than
    /// [`MAX_TEXT`] is cut at a character boundary.
    pub fn write_record(&self, out: &mut Vec<u8>) {
        let (kind, id, text) = match *self {
            Annotation::Define { id, text } => (DEFINE, id, cut(text, MAX_TEXT)),
            Annotation::Next { id } => (NEXT, id, ""),
        };
        let caplen = (1 + 4 + text.len()) as u32;
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&caplen.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.push(kind);
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    }
}

fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A stream's reader of annotations: keeps the text per id and hands each packet
/// the text of the process the last `NEXT` named.
#[derive(Debug, Default)]
pub struct Annotator {
    texts: Vec<Option<Arc<str>>>,
    next: Option<Arc<str>>,
}

impl Annotator {
    /// Takes an annotation record in (returns `true`: it is not a packet), or
    /// returns `false` for a packet; [`Self::take_for_packet`] then gives its process.
    pub fn absorb(&mut self, packet: &Packet) -> bool {
        if !Annotation::is_annotation(packet) {
            return false;
        }
        match Annotation::parse(&packet.data) {
            Some(Annotation::Define { id, text }) => {
                let id = id as usize;
                if self.texts.len() <= id {
                    self.texts.resize(id + 1, None);
                }
                self.texts[id] = Some(Arc::from(text));
            }
            Some(Annotation::Next { id }) => {
                self.next = self.texts.get(id as usize).cloned().flatten();
            }
            None => {}
        }
        true
    }

    /// The process text for the packet that follows the last `NEXT`, if any
    /// (each `NEXT` speaks for one packet).
    pub fn take_for_packet(&mut self) -> Option<Arc<str>> {
        self.next.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StreamDecoder;

    fn stream(records: &[Annotation<'_>], packet: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xa1b2_3c4du32.to_ne_bytes());
        out.extend_from_slice(&2u16.to_ne_bytes());
        out.extend_from_slice(&4u16.to_ne_bytes());
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&65535u32.to_ne_bytes());
        out.extend_from_slice(&1u32.to_ne_bytes());
        for r in records {
            r.write_record(&mut out);
        }
        out.extend_from_slice(&1u32.to_ne_bytes());
        out.extend_from_slice(&2u32.to_ne_bytes());
        out.extend_from_slice(&(packet.len() as u32).to_ne_bytes());
        out.extend_from_slice(&(packet.len() as u32).to_ne_bytes());
        out.extend_from_slice(packet);
        out
    }

    #[test]
    fn a_packet_after_next_gets_the_defined_text_and_the_one_after_it_none() {
        let bytes = stream(
            &[
                Annotation::Define {
                    id: 7,
                    text: "PID: 42\nCmd: /usr/bin/curl",
                },
                Annotation::Next { id: 7 },
            ],
            &[0xab; 20],
        );
        let mut decoder = StreamDecoder::new();
        decoder.push(&bytes);
        let mut annotator = Annotator::default();
        let mut seen = Vec::new();
        while let Some(packet) = decoder.next_packet().unwrap() {
            if !annotator.absorb(&packet) {
                seen.push((packet.data.len(), annotator.take_for_packet()));
            }
        }
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].1.as_deref(), Some("PID: 42\nCmd: /usr/bin/curl"));
        assert_eq!(annotator.take_for_packet(), None);
    }

    #[test]
    fn unknown_or_malformed_annotations_are_skipped() {
        assert_eq!(Annotation::parse(&[9, 0, 0, 0, 0]), None);
        assert_eq!(Annotation::parse(&[NEXT, 1, 0]), None);
        assert_eq!(Annotation::parse(&[NEXT, 0xff, 0xff, 0, 0]), None);
        assert_eq!(Annotation::parse(&[DEFINE, 0, 0, 0, 0, 0xff]), None);
        let mut annotator = Annotator::default();
        let next_undefined = Packet {
            ts_nanos: 0,
            orig_len: 0,
            data: vec![NEXT, 3, 0, 0, 0].into(),
            comment: None,
        };
        assert!(annotator.absorb(&next_undefined));
        assert_eq!(annotator.take_for_packet(), None);
    }

    #[test]
    fn long_texts_are_cut_at_a_character_boundary() {
        let text = "é".repeat(MAX_TEXT);
        let mut out = Vec::new();
        Annotation::Define { id: 1, text: &text }.write_record(&mut out);
        let Some(Annotation::Define { text: cut, .. }) = Annotation::parse(&out[16..]) else {
            panic!("not a define");
        };
        assert!(cut.len() <= MAX_TEXT && cut.len() >= MAX_TEXT - 1);
    }
}
