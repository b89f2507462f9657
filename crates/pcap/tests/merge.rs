//! The time-ordered merger: ordering, holds for quiet sources, the memory
//! budget, closing sources, and order within a source.

use std::time::{Duration, Instant};

use kcap_pcap::{Merger, Packet};

const HOLD: Duration = Duration::from_secs(1);

fn packet(ts_nanos: u64, len: usize) -> Packet {
    Packet {
        ts_nanos,
        orig_len: len as u32,
        data: vec![ts_nanos as u8; len].into(),
        comment: None,
    }
}

fn drain(merger: &mut Merger, now: Instant) -> Vec<(usize, u64)> {
    std::iter::from_fn(|| merger.pop(now))
        .map(|(s, p)| (s, p.ts_nanos))
        .collect()
}

#[test]
fn interleaves_sources_in_timestamp_order() {
    let t0 = Instant::now();
    let mut merger = Merger::new(HOLD, usize::MAX);
    let (a, b, c) = (
        merger.add_source(),
        merger.add_source(),
        merger.add_source(),
    );
    assert_eq!((a, b, c), (0, 1, 2));
    for ts in [1, 4, 7, 10] {
        merger.push(a, packet(ts, 10), t0);
    }
    for ts in [2, 5, 8] {
        merger.push(b, packet(ts, 10), t0);
    }
    // Until c has something, nothing can be emitted safely.
    assert_eq!(merger.pop(t0), None);
    for ts in [3, 6, 9] {
        merger.push(c, packet(ts, 10), t0);
    }
    // Emits while every source has something queued: up to 8, then b is empty.
    assert_eq!(
        drain(&mut merger, t0),
        vec![
            (a, 1),
            (b, 2),
            (c, 3),
            (a, 4),
            (b, 5),
            (c, 6),
            (a, 7),
            (b, 8)
        ]
    );
    merger.close_source(b);
    // Then c runs empty, and a's 10 waits for it again.
    assert_eq!(drain(&mut merger, t0), vec![(c, 9)]);
    assert_eq!(merger.next_deadline(), Some(t0 + HOLD));
    merger.close_source(c);
    assert_eq!(drain(&mut merger, t0), vec![(a, 10)]);
    assert!(merger.is_empty());
    assert_eq!(merger.next_deadline(), None);
}

#[test]
fn ties_go_to_the_lower_source_id() {
    let t0 = Instant::now();
    let mut merger = Merger::new(HOLD, usize::MAX);
    let sources: Vec<usize> = (0..5).map(|_| merger.add_source()).collect();
    for &s in sources.iter().rev() {
        merger.push(s, packet(100, 1), t0);
        merger.push(s, packet(200, 1), t0);
    }
    for &s in &sources {
        merger.close_source(s);
    }
    let order = drain(&mut merger, t0);
    let expected: Vec<(usize, u64)> = [100, 200]
        .iter()
        .flat_map(|&ts| sources.iter().map(move |&s| (s, ts)))
        .collect();
    assert_eq!(order, expected);
}

#[test]
fn quiet_source_holds_others_only_for_the_hold_time() {
    let t0 = Instant::now();
    let mut merger = Merger::new(HOLD, usize::MAX);
    let (busy, _quiet) = (merger.add_source(), merger.add_source());
    merger.push(busy, packet(10, 5), t0);
    merger.push(busy, packet(20, 5), t0 + Duration::from_millis(500));
    assert_eq!(merger.next_deadline(), Some(t0 + HOLD));
    assert_eq!(merger.pop(t0 + Duration::from_millis(999)), None);
    // The first packet has waited `hold`; the second not yet.
    assert_eq!(drain(&mut merger, t0 + HOLD), vec![(busy, 10)]);
    assert_eq!(
        merger.next_deadline(),
        Some(t0 + Duration::from_millis(1500))
    );
    assert_eq!(
        drain(&mut merger, t0 + Duration::from_millis(1500)),
        vec![(busy, 20)]
    );
    assert!(merger.is_empty());
}

#[test]
fn an_old_packet_is_not_starved_by_a_source_with_earlier_timestamps() {
    // Source b's clock is behind: its fresh packets sort before a's old one.
    // Once a's packet has waited `hold`, the merge must still move on.
    let t0 = Instant::now();
    let mut merger = Merger::new(HOLD, usize::MAX);
    let (a, b, _quiet) = (
        merger.add_source(),
        merger.add_source(),
        merger.add_source(),
    );
    merger.push(a, packet(1000, 1), t0);
    let late = t0 + Duration::from_millis(900);
    merger.push(b, packet(5, 1), late);
    merger.push(b, packet(6, 1), late);
    let released = drain(&mut merger, t0 + HOLD);
    assert_eq!(released, vec![(b, 5), (b, 6), (a, 1000)]);
}

#[test]
fn memory_budget_releases_the_oldest_packets() {
    let t0 = Instant::now();
    let mut merger = Merger::new(HOLD, 250);
    let (a, _quiet) = (merger.add_source(), merger.add_source());
    for ts in 1..=3 {
        merger.push(a, packet(ts, 100), t0);
    }
    assert_eq!(merger.buffered_bytes(), 300);
    // Over budget (300 > 250): release until within it, smallest first.
    assert!(merger.next_deadline().unwrap() <= t0);
    assert_eq!(drain(&mut merger, t0), vec![(a, 1)]);
    assert_eq!(merger.buffered_bytes(), 200);
    assert_eq!(merger.pop(t0), None);
    assert_eq!(merger.next_deadline(), Some(t0 + HOLD));
}

#[test]
fn order_within_a_source_is_kept_even_if_timestamps_go_backwards() {
    let t0 = Instant::now();
    let mut merger = Merger::new(HOLD, usize::MAX);
    let (a, b) = (merger.add_source(), merger.add_source());
    for ts in [50, 10, 60] {
        merger.push(a, packet(ts, 1), t0);
    }
    for ts in [20, 55] {
        merger.push(b, packet(ts, 1), t0);
    }
    merger.close_source(a);
    merger.close_source(b);
    let order = drain(&mut merger, t0);
    // a's 10 stays behind a's 50; globally the heads are compared.
    assert_eq!(order, vec![(b, 20), (a, 50), (a, 10), (b, 55), (a, 60)]);
}

#[test]
fn closed_sources_hold_nothing_back() {
    let t0 = Instant::now();
    let mut merger = Merger::new(HOLD, usize::MAX);
    let (a, b) = (merger.add_source(), merger.add_source());
    merger.push(a, packet(1, 1), t0);
    assert_eq!(merger.pop(t0), None);
    merger.close_source(b);
    assert!(merger.next_deadline().unwrap() <= t0);
    assert_eq!(drain(&mut merger, t0), vec![(a, 1)]);
    // A closed source with queued packets still takes part in the ordering.
    merger.push(b, packet(3, 1), t0);
    merger.push(a, packet(2, 1), t0);
    merger.push(a, packet(4, 1), t0);
    assert_eq!(drain(&mut merger, t0), vec![(a, 2), (b, 3), (a, 4)]);
}

#[test]
fn pop_any_drains_everything_in_order() {
    let t0 = Instant::now();
    let mut merger = Merger::new(HOLD, usize::MAX);
    let sources: Vec<usize> = (0..4).map(|_| merger.add_source()).collect();
    let mut expected = Vec::new();
    for (i, &s) in sources.iter().enumerate().skip(1) {
        for k in 0..50u64 {
            let ts = k * 10 + i as u64;
            merger.push(s, packet(ts, 3), t0);
            expected.push((s, ts));
        }
    }
    assert_eq!(merger.pop(t0), None, "source 0 is open and empty");
    expected.sort_by_key(|&(s, ts)| (ts, s));
    let drained: Vec<(usize, u64)> = std::iter::from_fn(|| merger.pop_any())
        .map(|(s, p)| (s, p.ts_nanos))
        .collect();
    assert_eq!(drained, expected);
    assert!(merger.is_empty());
    assert_eq!(merger.buffered_bytes(), 0);
}

#[test]
fn randomized_merge_matches_a_stable_sort() {
    // Each source's timestamps increase; the merged output must equal a
    // stable sort by (timestamp, source) and lose nothing.
    let t0 = Instant::now();
    let mut merger = Merger::new(HOLD, usize::MAX);
    let n_sources = 20;
    let sources: Vec<usize> = (0..n_sources).map(|_| merger.add_source()).collect();
    let mut seed = 0x1234_5678_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut last = vec![0u64; n_sources];
    let mut expected = Vec::new();
    let mut out = Vec::new();
    for step in 0..5000 {
        let s = (next() % n_sources as u64) as usize;
        last[s] += next() % 1000;
        merger.push(sources[s], packet(last[s], 1), t0);
        expected.push((s, last[s]));
        if step % 3 == 0 {
            out.extend(drain(&mut merger, t0));
        }
    }
    for &s in &sources {
        merger.close_source(s);
    }
    out.extend(drain(&mut merger, t0));
    assert!(merger.is_empty());
    expected.sort_by_key(|&(s, ts)| (ts, s));
    assert_eq!(out, expected);
}

/// A quiet source's watermark releases the others' packets up to it at once,
/// without the hold, and never past it.
#[test]
fn watermarks_release_packets_without_the_hold() {
    let t0 = Instant::now();
    let mut merger = Merger::new(HOLD, usize::MAX);
    let (busy, quiet) = (merger.add_source(), merger.add_source());
    for ts in [10, 20, 30] {
        merger.push(busy, packet(ts, 10), t0);
    }
    assert_eq!(merger.pop(t0), None);
    merger.advance(quiet, 20);
    assert_eq!(drain(&mut merger, t0), vec![(busy, 10), (busy, 20)]);
    assert!(merger.next_deadline().unwrap() > t0, "30 waits again");
    // An older watermark changes nothing; the source's own packets still come in order.
    merger.advance(quiet, 5);
    merger.push(quiet, packet(25, 10), t0);
    assert_eq!(drain(&mut merger, t0), vec![(quiet, 25)]);
    merger.advance(quiet, 40);
    assert_eq!(drain(&mut merger, t0), vec![(busy, 30)]);
    assert_eq!(merger.next_deadline(), None);
}

#[test]
fn watermark_records_are_recognised() {
    assert!(packet(7, 0).is_watermark());
    assert!(!packet(7, 1).is_watermark());
}
