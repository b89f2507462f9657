//! TCP reassembly of one direction of a connection, by sequence number: bytes come
//! out in order and once, whatever order and however often the segments were
//! captured. Retransmissions and the second copy of a packet (`-i any` sees it on
//! the pod's interface and on the node's) overlap bytes already delivered and are
//! trimmed or dropped; segments that arrive early wait, up to a byte cap, after
//! which the missing bytes are given up as a gap.

use crate::link::TcpFlags;

/// What reassembly hands on.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivered<'a> {
    /// The next bytes of the stream.
    Bytes(&'a [u8]),
    /// Bytes were never captured before the ones that follow.
    Gap,
    /// The sender closed its side (FIN), after all its bytes.
    Fin,
}

/// Within this of the first copy, a repeat is the same packet seen again.
const SAME_PACKET_NS: u64 = 20_000_000;
/// Delivered segments remembered for telling repeats apart.
const RECENT: usize = 16;

/// Counted by reassembly, for the decoder's [`crate::Counters`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyCounts {
    /// Segments that carried only bytes already delivered (retransmitted, seen twice).
    pub duplicate_segments: u64,
    /// Segments held because an earlier one was missing.
    pub out_of_order_segments: u64,
    /// Times bytes were given up on (never captured, or too much waiting).
    pub gaps: u64,
    /// Duplicate segments that came later than a second copy would: sent again.
    pub retransmissions: u64,
}

/// One direction's reassembly state.
#[derive(Debug, Default)]
pub struct Direction {
    /// The sequence number of the next byte to deliver; `None` before the first segment.
    next: Option<u32>,
    /// Segments ahead of `next`: (sequence number, FIN, bytes).
    waiting: Vec<(u32, bool, Vec<u8>)>,
    waiting_bytes: usize,
    fin_delivered: bool,
    /// The last delivered segments: (first sequence number, end, capture time).
    recent: std::collections::VecDeque<(u32, u32, u64)>,
    /// When the FIN was delivered.
    fin_ts: Option<u64>,
}

/// How far `seq` is ahead of `next` (negative: behind), in sequence space (wraps).
fn ahead(seq: u32, next: u32) -> i64 {
    i64::from(seq.wrapping_sub(next) as i32)
}

impl Direction {
    /// Takes one segment captured at `ts` (ns); calls `out` with what can be
    /// delivered now, in order. `cap` bounds the bytes kept waiting for a
    /// missing segment.
    pub fn segment(
        &mut self,
        flags: TcpFlags,
        ts: u64,
        payload: &[u8],
        cap: usize,
        counts: &mut ReassemblyCounts,
        out: &mut dyn FnMut(Delivered<'_>),
    ) {
        let TcpFlags { seq, syn, fin, .. } = flags;
        // A SYN takes one sequence number before the data.
        let seq = if syn { seq.wrapping_add(1) } else { seq };
        let next = *self.next.get_or_insert(seq);
        if self.fin_delivered {
            counts.duplicate_segments += u64::from(!payload.is_empty() || fin);
            let again = match payload.is_empty() {
                false => self.sent_again(seq, payload.len(), ts),
                // A FIN alone: sent again if long after the one delivered.
                true => {
                    fin && self
                        .fin_ts
                        .is_some_and(|at| ts.saturating_sub(at) > SAME_PACKET_NS)
                }
            };
            counts.retransmissions += u64::from(again);
            return;
        }
        let offset = ahead(seq, next);
        if offset > 0 {
            if payload.is_empty() && !fin {
                return; // a bare ACK from ahead of a hole: nothing to keep
            }
            counts.out_of_order_segments += 1;
            if self.waiting.iter().any(|(s, _, _)| *s == seq) {
                counts.duplicate_segments += 1;
                return;
            }
            self.waiting_bytes += payload.len();
            self.waiting.push((seq, fin, payload.to_vec()));
            if self.waiting_bytes > cap {
                self.skip_to_earliest(counts, out);
            }
            return;
        }
        let already = offset.unsigned_abs() as usize;
        // Only bytes already delivered, and no FIN right at the next byte: old news.
        if already >= payload.len() && !(fin && already == payload.len()) {
            if !payload.is_empty() || fin {
                counts.duplicate_segments += 1;
            }
            if !payload.is_empty() && self.sent_again(seq, payload.len(), ts) {
                counts.retransmissions += 1;
            }
            return;
        }
        let fresh = &payload[already.min(payload.len())..];
        self.remember(next, fresh.len(), ts);
        if fin {
            self.fin_ts = Some(ts);
        }
        self.deliver(next, fresh, fin, out);
        self.drain(out);
    }

    fn remember(&mut self, at: u32, len: usize, ts: u64) {
        if len == 0 {
            return;
        }
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back((at, at.wrapping_add(len as u32), ts));
    }

    /// Whether a segment of bytes already delivered was sent again (not the same
    /// packet seen twice): its bytes were delivered long enough before, or so
    /// long ago that they are no longer remembered.
    fn sent_again(&self, seq: u32, len: usize, ts: u64) -> bool {
        let end = seq.wrapping_add(len as u32);
        let first = self
            .recent
            .iter()
            .find(|(start, stop, _)| ahead(seq, *start) >= 0 && ahead(end, *stop) <= 0);
        match first {
            Some((_, _, at)) => ts.saturating_sub(*at) > SAME_PACKET_NS,
            None => true,
        }
    }

    fn deliver(&mut self, at: u32, bytes: &[u8], fin: bool, out: &mut dyn FnMut(Delivered<'_>)) {
        if !bytes.is_empty() {
            out(Delivered::Bytes(bytes));
        }
        self.next = Some(at.wrapping_add(bytes.len() as u32));
        if fin {
            self.fin_delivered = true;
            self.waiting.clear();
            self.waiting_bytes = 0;
            out(Delivered::Fin);
        }
    }

    /// Delivers waiting segments that have become next.
    fn drain(&mut self, out: &mut dyn FnMut(Delivered<'_>)) {
        while let Some(next) = self.next.filter(|_| !self.fin_delivered) {
            let Some(i) = self.waiting.iter().position(|(s, fin, b)| {
                ahead(*s, next) <= 0 && (ahead(*s, next) + b.len() as i64 > 0 || *fin)
            }) else {
                // Drop what is wholly behind, then stop.
                self.waiting
                    .retain(|(s, _, b)| ahead(*s, next) + b.len() as i64 > 0);
                self.waiting_bytes = self.waiting.iter().map(|(_, _, b)| b.len()).sum();
                return;
            };
            let (seq, fin, bytes) = self.waiting.swap_remove(i);
            self.waiting_bytes -= bytes.len();
            let already = ahead(seq, next).unsigned_abs() as usize;
            let rest = bytes.get(already..).unwrap_or(&[]);
            self.deliver(next, rest, fin, out);
        }
    }

    /// Gives up on the missing bytes: continues at the earliest waiting segment.
    fn skip_to_earliest(
        &mut self,
        counts: &mut ReassemblyCounts,
        out: &mut dyn FnMut(Delivered<'_>),
    ) {
        let Some(next) = self.next else { return };
        let Some(earliest) = self.waiting.iter().map(|(s, _, _)| ahead(*s, next)).min() else {
            return;
        };
        counts.gaps += 1;
        out(Delivered::Gap);
        self.next = Some(next.wrapping_add(earliest as u32));
        self.drain(out);
    }

    /// At the end: whatever still waits comes out after a gap.
    pub fn flush(&mut self, counts: &mut ReassemblyCounts, out: &mut dyn FnMut(Delivered<'_>)) {
        while !self.waiting.is_empty() && !self.fin_delivered {
            self.skip_to_earliest(counts, out);
        }
    }

    pub fn fin_delivered(&self) -> bool {
        self.fin_delivered
    }
}
