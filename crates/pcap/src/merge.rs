//! Merges packets from several live sources into one timestamp-ordered stream
//! with bounded delay and bounded memory.
//!
//! A packet is emitted once no open source could still deliver an earlier one
//! (every open source has something queued, or has promised nothing older: a
//! watermark). A quiet source without watermarks delays the others by `hold`,
//! and a memory budget caps how much may wait. The budget counts packet bytes;
//! packets may share the chunk they arrived in ([`crate::Packet::data`]), and
//! since each source's packets wait here in arrival order, the chunks they keep
//! alive are about the bytes counted (plus one partly sent chunk per source).

use std::cmp::Reverse;
use std::collections::binary_heap::PeekMut;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use crate::Packet;

#[derive(Debug, Default)]
struct Source {
    queue: VecDeque<Packet>,
    closed: bool,
    /// The source promised nothing older than this (see [`Merger::advance`]).
    watermark: u64,
    /// Packets pushed / popped so far; tags entries in `Merger::arrivals`.
    pushed: u64,
    popped: u64,
}

/// Time-ordered merge of several live packet sources.
#[derive(Debug)]
pub struct Merger {
    hold: Duration,
    max_buffered_bytes: usize,
    sources: Vec<Source>,
    /// One entry per non-empty source: its head's (timestamp, source id).
    /// Ordering by source id second makes ties stable (lower id first).
    heads: BinaryHeap<Reverse<(u64, usize)>>,
    /// When the queued packets arrived, in arrival order: (when, source, end)
    /// stands for `source`'s packets up to (not including) number `end` that
    /// arrived at `when` (one entry per batch pushed at one instant, not per
    /// packet). Entries whose packets were all popped are dropped lazily from
    /// the front, so the oldest waiting packet is found without scanning the
    /// sources.
    arrivals: VecDeque<(Instant, usize, u64)>,
    /// Open sources with nothing queued: while any exist, emitting could break
    /// the order, so packets wait (up to `hold`).
    open_empty: usize,
    buffered_bytes: usize,
}

impl Merger {
    /// `hold`: how long a packet may wait for a quiet source before it is
    /// released anyway; `max_buffered_bytes`: above this total of queued packet
    /// data, the oldest packet is released regardless.
    pub fn new(hold: Duration, max_buffered_bytes: usize) -> Self {
        Self {
            hold,
            max_buffered_bytes,
            sources: Vec::new(),
            heads: BinaryHeap::new(),
            arrivals: VecDeque::new(),
            open_empty: 0,
            buffered_bytes: 0,
        }
    }

    /// Registers a new (open, empty) source and returns its id.
    pub fn add_source(&mut self) -> usize {
        self.sources.push(Source::default());
        self.open_empty += 1;
        self.sources.len() - 1
    }

    /// Queues a packet from `source`, which arrived at `now`. Within a source,
    /// arrival order is kept even if its timestamps go backwards.
    ///
    /// # Panics
    /// If `source` was not returned by [`Self::add_source`].
    pub fn push(&mut self, source: usize, packet: Packet, now: Instant) {
        let src = &mut self.sources[source];
        if src.queue.is_empty() {
            self.heads.push(Reverse((packet.ts_nanos, source)));
            if !src.closed {
                self.open_empty -= 1;
            }
        }
        self.buffered_bytes += packet.data.len();
        src.pushed += 1;
        match self.arrivals.back_mut() {
            Some((when, from, end)) if *when == now && *from == source => *end = src.pushed,
            _ => self.arrivals.push_back((now, source, src.pushed)),
        }
        src.queue.push_back(packet);
    }

    /// `source` will send nothing older than `ts_nanos`: while it has nothing
    /// queued, it holds back no packet up to that time.
    pub fn advance(&mut self, source: usize, ts_nanos: u64) {
        let src = &mut self.sources[source];
        src.watermark = src.watermark.max(ts_nanos);
    }

    /// Whether the next packet may go out now without waiting for the hold: no
    /// open source could still send an older one, or memory is over budget.
    fn may_emit_without_hold(&self) -> bool {
        self.open_empty == 0
            || self.buffered_bytes > self.max_buffered_bytes
            || self.quiet_sources_are_past_next()
    }

    /// Whether every open source with nothing queued has promised nothing older
    /// than the next packet (so emitting it cannot break the order).
    fn quiet_sources_are_past_next(&self) -> bool {
        let Some(Reverse((next, _))) = self.heads.peek() else {
            return false;
        };
        self.sources
            .iter()
            .all(|s| s.closed || !s.queue.is_empty() || s.watermark >= *next)
    }

    /// The source will send nothing more; it no longer holds others back.
    pub fn close_source(&mut self, source: usize) {
        let src = &mut self.sources[source];
        if !src.closed {
            src.closed = true;
            if src.queue.is_empty() {
                self.open_empty -= 1;
            }
        }
    }

    /// The next packet that may be emitted now, in timestamp order.
    ///
    /// That is the packet with the smallest timestamp among the sources'
    /// heads, if every open source has something queued or a watermark past it, or the oldest queued
    /// packet arrived at least `hold` ago, or memory is over budget.
    pub fn pop(&mut self, now: Instant) -> Option<(usize, Packet)> {
        let ready = self.may_emit_without_hold()
            || self
                .oldest_arrival()
                .is_some_and(|t| now.saturating_duration_since(t) >= self.hold);
        if ready { self.pop_any() } else { None }
    }

    /// When [`Self::pop`] could next return something without new input, for
    /// a timer; `None` if nothing is queued. An instant in the past means `pop`
    /// would return a packet right away.
    pub fn next_deadline(&self) -> Option<Instant> {
        let oldest = self.oldest_arrival()?;
        if self.may_emit_without_hold() {
            Some(oldest)
        } else {
            Some(oldest.checked_add(self.hold).unwrap_or(oldest))
        }
    }

    /// The packet with the smallest head timestamp, regardless of holds (for
    /// draining at the end of a capture).
    pub fn pop_any(&mut self) -> Option<(usize, Packet)> {
        let (source, packet) = {
            let mut top = self.heads.peek_mut()?;
            let Reverse((_, source)) = *top;
            let src = &mut self.sources[source];
            let packet = src
                .queue
                .pop_front()
                .expect("sources in `heads` are non-empty");
            src.popped += 1;
            match src.queue.front() {
                // The source's next head replaces it in place: one sift instead of
                // a pop and a push.
                Some(next) => *top = Reverse((next.ts_nanos, source)),
                None => {
                    PeekMut::pop(top);
                    if !src.closed {
                        self.open_empty += 1;
                    }
                }
            }
            (source, packet)
        };
        self.buffered_bytes -= packet.data.len();
        self.drop_stale_arrivals();
        Some((source, packet))
    }

    /// Total data bytes of the queued packets.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }

    /// Arrival time of the longest-waiting queued packet.
    fn oldest_arrival(&self) -> Option<Instant> {
        self.arrivals
            .iter()
            .find(|&&(_, source, end)| end > self.sources[source].popped)
            .map(|&(when, _, _)| when)
    }

    fn drop_stale_arrivals(&mut self) {
        while let Some(&(_, source, end)) = self.arrivals.front() {
            if end > self.sources[source].popped {
                break;
            }
            self.arrivals.pop_front();
        }
    }
}
