//! The live status area on stderr (only when it is a terminal, and not `-q`):
//! redrawn about twice a second, one line of totals (packets, bytes, rate, time
//! elapsed, what ends the capture) and one row per target (its state, packets,
//! bytes, rate, drops). Many targets fold into the busiest few and a count of the
//! rest. It goes away when the capture ends, so the summary stays alone below
//! the log lines.

use std::time::{Duration, Instant};

use kcap_capture::outcome::ToolStatistics;
use kcap_pcap::Packet;

use super::{Interface, Sink, SinkError, SourceChange, SourceEnd};
use crate::event::{SourceId, SourceInfo};
use crate::names::NameTable;
use crate::report::human_bytes;
use crate::stop::Stop;
use crate::terminal;

/// How often the area is redrawn.
const REDRAW: Duration = Duration::from_millis(500);
/// Target rows shown before the rest fold into one line.
const MAX_ROWS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting,
    Capturing,
    /// Captured again after its capture was lost (`--follow`).
    Recaptured,
    /// Ended because the capture was told to stop (or `-c` was reached).
    Ended,
    /// Ended on its own while the others go on.
    Lost,
    /// Replaced by a later row of the same target (shown there).
    Replaced,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Connecting => "starting",
            State::Capturing => "capturing",
            State::Recaptured => "re-captured",
            State::Ended => "ended",
            State::Lost => "lost",
            State::Replaced => "",
        }
    }
}

struct Row {
    label: String,
    state: State,
    packets: u64,
    bytes: u64,
    /// Packets at the previous redraw, for the rate.
    drawn_packets: u64,
    rate: f64,
    dropped: Option<u64>,
    /// It started or ended.
    settled: bool,
}

/// What ends the capture, for the totals line.
#[derive(Debug, Clone, Copy)]
pub struct Ending {
    pub duration: Option<Duration>,
    pub count: Option<u64>,
}

pub struct StatusSink {
    rows: Vec<Row>,
    /// Sources given at the start (ids `0..initial`), and how many of them have
    /// not started or ended yet: `--duration` counts from the moment none is left.
    initial: usize,
    starting: usize,
    all_started: Option<Instant>,
    ending: Ending,
    stop: Stop,
    width: usize,
    since: Instant,
    drawn: Option<Instant>,
    drawn_packets: u64,
    packets: u64,
    bytes: u64,
}

impl StatusSink {
    /// `width`: the terminal's ([`terminal::stderr_width`]).
    pub fn new(initial: &[SourceInfo], ending: Ending, stop: Stop, width: usize) -> StatusSink {
        let mut sink = StatusSink {
            rows: Vec::new(),
            initial: initial.len(),
            starting: initial.len(),
            all_started: initial.is_empty().then(Instant::now),
            ending,
            stop,
            width,
            since: Instant::now(),
            drawn: None,
            drawn_packets: 0,
            packets: 0,
            bytes: 0,
        };
        for (source, info) in initial.iter().enumerate() {
            sink.add(source, info);
        }
        sink
    }

    /// Rows are indexed by source id: sources are numbered as they are added.
    fn add(&mut self, source: SourceId, info: &SourceInfo) {
        debug_assert_eq!(source, self.rows.len());
        let mut row = Row {
            label: info.label.clone(),
            state: State::Connecting,
            packets: 0,
            bytes: 0,
            drawn_packets: 0,
            rate: 0.0,
            dropped: None,
            settled: false,
        };
        // The same target again (its capture was lost and `--follow` started it
        // anew): one row, counting both.
        if let Some(old) = self
            .rows
            .iter_mut()
            .find(|r| r.label == row.label && matches!(r.state, State::Lost | State::Ended))
        {
            old.state = State::Replaced;
            row.packets = old.packets;
            row.bytes = old.bytes;
            row.drawn_packets = old.packets;
            row.state = State::Recaptured;
        }
        self.rows.push(row);
    }

    /// A source started or ended: once every source given at the start did,
    /// `--duration` counts.
    fn settled(&mut self, source: SourceId) {
        if source < self.initial && !std::mem::replace(&mut self.rows[source].settled, true) {
            self.starting -= 1;
            if self.starting == 0 {
                self.all_started.get_or_insert_with(Instant::now);
            }
        }
    }

    fn redraw(&mut self, now: Instant) {
        let elapsed = self.drawn.map(|d| now - d).unwrap_or(now - self.since);
        let seconds = elapsed.as_secs_f64().max(0.001);
        for row in &mut self.rows {
            row.rate = (row.packets - row.drawn_packets) as f64 / seconds;
            row.drawn_packets = row.packets;
        }
        let rate = (self.packets - self.drawn_packets) as f64 / seconds;
        self.drawn_packets = self.packets;
        self.drawn = Some(now);
        let mut lines = vec![self.totals(now, rate)];
        lines.extend(self.table());
        terminal::draw(lines.into_iter().map(|l| cut(l, self.width)).collect());
    }

    fn totals(&self, now: Instant, rate: f64) -> String {
        let shown = self.rows.iter().filter(|r| r.state != State::Replaced);
        let capturing = shown
            .filter(|r| matches!(r.state, State::Capturing | State::Recaptured))
            .count();
        let mut line = format!(
            "kcap: {capturing} capturing · {} packets · {} · {}/s · {}",
            thousands(self.packets),
            human_bytes(self.bytes),
            thousands(rate.round() as u64),
            clock(now - self.since),
        );
        match (self.ending.count, self.ending.duration, self.all_started) {
            (Some(count), _, _) => line.push_str(&format!(
                " · {} packets to go (-c {count})",
                thousands(count.saturating_sub(self.packets))
            )),
            (None, Some(d), Some(from)) => line.push_str(&format!(
                " · {} left (-d)",
                clock(d.saturating_sub(now - from))
            )),
            (None, Some(_), None) => line.push_str(" · -d waits for every target"),
            (None, None, _) => line.push_str(" · Ctrl-C stops"),
        }
        line
    }

    fn table(&self) -> Vec<String> {
        let mut rows: Vec<&Row> = self
            .rows
            .iter()
            .filter(|r| r.state != State::Replaced)
            .collect();
        let folded = rows.len() > MAX_ROWS;
        if folded {
            // Busiest first: the ones worth watching.
            rows.sort_by(|a, b| b.rate.total_cmp(&a.rate).then(b.packets.cmp(&a.packets)));
        }
        let shown = if folded { MAX_ROWS - 1 } else { rows.len() };
        let label_width = rows
            .iter()
            .map(|r| r.label.chars().count())
            .max()
            .unwrap_or(0)
            .min(self.width / 2);
        let mut lines: Vec<String> = rows[..shown]
            .iter()
            .map(|r| {
                let dropped = match r.dropped {
                    Some(d) => format!("  {} dropped", thousands(d)),
                    None => String::new(),
                };
                format!(
                    "  {:<label_width$}  {:<11} {:>9} pkts {:>10} {:>8}/s{dropped}",
                    cut(r.label.clone(), label_width),
                    r.state.name(),
                    thousands(r.packets),
                    human_bytes(r.bytes),
                    thousands(r.rate.round() as u64),
                )
            })
            .collect();
        if folded {
            let rest = &rows[shown..];
            let mut states: Vec<(&str, usize)> = Vec::new();
            for r in rest {
                match states.iter_mut().find(|(s, _)| *s == r.state.name()) {
                    Some((_, n)) => *n += 1,
                    None => states.push((r.state.name(), 1)),
                }
            }
            let states: Vec<String> = states.iter().map(|(s, n)| format!("{n} {s}")).collect();
            let packets: u64 = rest.iter().map(|r| r.packets).sum();
            lines.push(format!(
                "  … {} more ({}): {} pkts",
                rest.len(),
                states.join(", "),
                thousands(packets)
            ));
        }
        lines
    }
}

impl Sink for StatusSink {
    fn names(&mut self, _: &NameTable) -> Result<(), SinkError> {
        Ok(())
    }

    fn interface(&mut self, interface: Interface<'_>) -> Result<(), SinkError> {
        if let Some(row) = self.rows.get_mut(interface.source) {
            if row.state == State::Connecting {
                row.state = State::Capturing;
            }
            row.label.clone_from(&interface.info.label);
        }
        self.settled(interface.source);
        Ok(())
    }

    fn packet(
        &mut self,
        source: SourceId,
        packet: &Packet,
        _comment: Option<&str>,
    ) -> Result<(), SinkError> {
        self.packets += 1;
        self.bytes += packet.data.len() as u64;
        if let Some(row) = self.rows.get_mut(source) {
            row.packets += 1;
            row.bytes += packet.data.len() as u64;
        }
        Ok(())
    }

    fn source_changed(&mut self, change: SourceChange<'_>) {
        match change {
            SourceChange::Added { source, info } => self.add(source, info),
            SourceChange::Ended { source, statistics } => {
                let stopping = self.stop.reason().is_some();
                if let Some(row) = self.rows.get_mut(source) {
                    row.state = if stopping { State::Ended } else { State::Lost };
                    row.dropped = statistics.and_then(|s: &ToolStatistics| s.dropped_by_kernel);
                }
                self.settled(source);
            }
        }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let now = Instant::now();
        if self.drawn.is_none_or(|d| now - d >= REDRAW) {
            self.redraw(now);
        }
        Ok(())
    }

    fn source_end(&mut self, _: SourceEnd<'_>) -> Result<(), SinkError> {
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        terminal::draw(Vec::new());
        Ok(())
    }
}

impl Drop for StatusSink {
    /// Also when the pipeline ended on an error, before the summary is printed.
    fn drop(&mut self) {
        terminal::draw(Vec::new());
    }
}

/// `line` cut to `width` characters (the area's lines must not wrap).
fn cut(line: String, width: usize) -> String {
    match line.char_indices().nth(width) {
        Some((at, _)) => line[..at].to_string(),
        None => line,
    }
}

/// 1234567 -> "1,234,567".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Elapsed time as `m:ss`, or `h:mm:ss` from an hour on.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    match s / 3600 {
        0 => format!("{}:{:02}", s / 60, s % 60),
        h => format!("{h}:{:02}:{:02}", s / 60 % 60, s % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(label: &str) -> SourceInfo {
        SourceInfo {
            label: label.into(),
            point: label.into(),
            interface_name: label.into(),
            description: String::new(),
            comment: None,
            names: Vec::new(),
        }
    }

    fn packet(len: usize) -> Packet {
        Packet {
            ts_nanos: 1,
            orig_len: len as u32,
            data: vec![0; len].into(),
            comment: None,
        }
    }

    #[test]
    fn numbers_and_times_read_easily() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(100), "100");
        assert_eq!(clock(Duration::from_secs(75)), "1:15");
        assert_eq!(clock(Duration::from_secs(3723)), "1:02:03");
        assert_eq!(cut("abcdef".into(), 3), "abc");
        assert_eq!(cut("ab".into(), 3), "ab");
    }

    #[test]
    fn many_targets_fold_busiest_first_and_a_lost_one_is_recaptured() {
        let initial: Vec<SourceInfo> = (0..12).map(|i| info(&format!("prod/web-{i}"))).collect();
        let ending = Ending {
            duration: None,
            count: Some(1000),
        };
        let mut sink = StatusSink::new(&initial, ending, Stop::default(), 120);
        for (source, info) in initial.iter().enumerate().take(11) {
            let interface = Interface {
                source,
                info,
                link_type: kcap_pcap::LinkType::ETHERNET,
                snaplen: 65535,
            };
            sink.interface(interface).unwrap();
        }
        for _ in 0..50 {
            sink.packet(3, &packet(100), None).unwrap();
        }
        sink.packet(5, &packet(100), None).unwrap();
        sink.source_changed(SourceChange::Ended {
            source: 5,
            statistics: None,
        });
        let now = Instant::now();
        for row in &mut sink.rows {
            row.rate = (row.packets - row.drawn_packets) as f64;
        }
        let totals = sink.totals(now, 51.0);
        assert!(totals.contains("10 capturing · 51 packets"), "{totals}");
        assert!(totals.contains("949 packets to go (-c 1000)"), "{totals}");
        let table = sink.table();
        assert_eq!(table.len(), MAX_ROWS, "{table:#?}");
        assert!(table[0].contains("prod/web-3 ") && table[0].contains("50 pkts"));
        assert!(table[1].contains("prod/web-5 ") && table[1].contains("lost"));
        let last = table.last().unwrap();
        assert!(
            last.contains("… 5 more (") && last.contains("1 starting"),
            "{last}"
        );

        // --follow starts web-5 again: one row, re-captured, counting both.
        sink.source_changed(SourceChange::Added {
            source: 12,
            info: &initial[5],
        });
        sink.packet(12, &packet(10), None).unwrap();
        let again = &sink.rows[12];
        assert_eq!((again.state, again.packets), (State::Recaptured, 2));
        assert_eq!(sink.rows[5].state, State::Replaced);
    }
}
