//! The pipeline: one thread that takes every source's events, merges their packets
//! in time order and hands them to the sinks (files, lines), with the names of
//! the addresses before the packets that need them. It keeps
//! one [`SourceState`] per source, applies `--linktype LINUX_SLL`, and reports
//! progress ([`Progress`]) without deciding when to stop. Memory is bounded (the
//! merger's budget plus the channel) however long the capture runs.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use kcap_capture::outcome::ToolStatistics;
use kcap_pcap::{LinkType, Merger, Packet, sll};
use tokio::sync::mpsc;

use crate::event::{Event, SourceId, SourceInfo};
use crate::names::NameTable;
use crate::process::{FilterCache, MergedComment, ProcessFilter};
use crate::sink::{Interface, Sink, SinkError, SourceChange, SourceEnd};
use crate::stop::Progress;

/// How long a packet may wait for a quiet source before it is written anyway.
const MERGE_HOLD: Duration = Duration::from_secs(1);
/// Packets held for ordering, in bytes, before the oldest is written regardless.
const MERGE_BUDGET: usize = 8 << 20;
/// Sinks are flushed at least this often (at once when `live`), so a killed kcap
/// loses at most this much.
const FLUSH_INTERVAL: Duration = Duration::from_millis(500);

/// Per-source counts of what reached the sinks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    pub packets: u64,
    pub bytes: u64,
    /// Set when this source's packets could not go into a sink (pcap link type).
    pub refused: Option<String>,
    /// Of `packets`, those kcap's agent named the process of (`--process`).
    pub with_process: u64,
    /// Packets the process filters (`--pid`, `--pname`, ...) left out.
    pub other_processes: u64,
}

/// What the pipeline did, for the report.
#[derive(Debug)]
pub struct PipelineReport {
    /// Indexed by source id.
    pub per_source: Vec<Delivered>,
    /// The first sink failure that ended the capture.
    pub error: Option<SinkError>,
}

/// Everything the pipeline knows about one source.
#[derive(Debug)]
struct SourceState {
    info: SourceInfo,
    /// Rewrite its LINUX_SLL2 packets as LINUX_SLL.
    rewrite_sll: bool,
    delivered: Delivered,
    first_ts: Option<u64>,
    last_ts: Option<u64>,
    /// `Some` once it ended: the remote tool's counters, if any.
    ended: Option<Option<ToolStatistics>>,
    /// The process filters' answer for its last process.
    kept: FilterCache,
    /// Its last process text merged with its comment.
    comment: MergedComment,
}

/// A sink and the sources it refused.
struct SinkSlot {
    sink: Box<dyn Sink>,
    refused: HashSet<SourceId>,
}

pub struct Pipeline {
    sources: Vec<SourceState>,
    sinks: Vec<SinkSlot>,
    merger: Merger,
    progress: Progress,
    /// Write every packet through at once (stdout to Wireshark).
    live: bool,
    /// `--linktype LINUX_SLL`.
    cooked_v1: bool,
    last_flush: Instant,
    /// Every address name the sinks were given (those of the start, then those
    /// of pods that joined), so each goes out once.
    names: NameTable,
    /// `--pid`, `--pname`, `--container-name`, `--container-id`.
    process_filter: ProcessFilter,
}

impl Pipeline {
    /// `initial`: how the sources given at the start are described (ids `0..n`).
    pub fn new(
        initial: Vec<SourceInfo>,
        sinks: Vec<Box<dyn Sink>>,
        progress: Progress,
        live: bool,
        cooked_v1: bool,
        names: NameTable,
    ) -> Pipeline {
        let mut pipeline = Pipeline {
            sources: Vec::new(),
            sinks: sinks
                .into_iter()
                .map(|sink| SinkSlot {
                    sink,
                    refused: HashSet::new(),
                })
                .collect(),
            merger: Merger::new(MERGE_HOLD, MERGE_BUDGET),
            progress,
            live,
            cooked_v1,
            last_flush: Instant::now(),
            names,
            process_filter: ProcessFilter::default(),
        };
        for info in initial {
            pipeline.add_source(info);
        }
        pipeline
    }

    /// Keeps only the packets of the processes `filter` names (each source's
    /// packets as they come in, before the merge).
    pub fn with_process_filter(mut self, filter: ProcessFilter) -> Pipeline {
        self.process_filter = filter;
        self
    }

    /// Runs until every sender is gone, then finishes the sinks.
    pub fn run(mut self, mut events: mpsc::Receiver<Event>) -> PipelineReport {
        let result = self
            .give_names(None)
            .and_then(|()| self.pump(&mut events))
            .and_then(|()| self.end_sinks());
        if result.is_err() {
            self.progress.output_failed();
            // Keep receiving so sources are not blocked while they shut down.
            while events.blocking_recv().is_some() {}
        }
        PipelineReport {
            per_source: self.sources.into_iter().map(|s| s.delivered).collect(),
            error: result.err(),
        }
    }

    fn pump(&mut self, events: &mut mpsc::Receiver<Event>) -> Result<(), SinkError> {
        while let Some(event) = events.blocking_recv() {
            self.take(event)?;
            // Take whatever else is already queued before writing, so the merger sees
            // all sources' packets; then deliver what may go out now.
            while let Ok(event) = events.try_recv() {
                self.take(event)?;
            }
            let now = Instant::now();
            while let Some((source, packet)) = self.merger.pop(now) {
                self.deliver(source, &packet)?;
            }
            if self.live || self.last_flush.elapsed() >= FLUSH_INTERVAL {
                self.flush()?;
            }
        }
        while let Some((source, packet)) = self.merger.pop_any() {
            self.deliver(source, &packet)?;
        }
        Ok(())
    }

    fn add_source(&mut self, info: SourceInfo) {
        let id = self.merger.add_source();
        debug_assert_eq!(id, self.sources.len(), "sources are numbered as added");
        self.sources.push(SourceState {
            info,
            rewrite_sll: false,
            delivered: Delivered::default(),
            first_ts: None,
            last_ts: None,
            ended: None,
            kept: FilterCache::default(),
            comment: MergedComment::default(),
        });
    }

    fn take(&mut self, event: Event) -> Result<(), SinkError> {
        match event {
            Event::Added { source, info } => {
                debug_assert_eq!(source, self.sources.len());
                for slot in &mut self.sinks {
                    slot.sink.source_changed(SourceChange::Added {
                        source,
                        info: &info,
                    });
                }
                self.add_source(info);
            }
            Event::Started {
                source,
                header,
                info,
            } => {
                self.progress.source_settled(source);
                let mut link_type = header.link_type;
                if self.cooked_v1 && link_type == LinkType::LINUX_SLL2 {
                    link_type = LinkType::LINUX_SLL;
                    self.sources[source].rewrite_sll = true;
                }
                if !info.names.is_empty() {
                    self.give_names(Some(NameTable::new(&info.names)))?;
                }
                let SourceState {
                    info: described,
                    delivered,
                    comment,
                    ..
                } = &mut self.sources[source];
                *described = info;
                // Its comment may have changed: merge again.
                *comment = MergedComment::default();
                let interface = Interface {
                    source,
                    info: described,
                    link_type,
                    snaplen: header.snaplen,
                };
                for slot in &mut self.sinks {
                    match slot.sink.interface(interface) {
                        Ok(()) => {}
                        Err(e) if e.is_per_source() => {
                            delivered.refused.get_or_insert(e.to_string());
                            slot.refused.insert(source);
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            Event::Packets { source, packets } => {
                let now = Instant::now();
                let state = &mut self.sources[source];
                let rewrite = state.rewrite_sll;
                for mut packet in packets {
                    if !state
                        .kept
                        .keeps(&self.process_filter, packet.comment.as_ref())
                    {
                        state.delivered.other_processes += 1;
                        continue;
                    }
                    if !self.process_filter.is_empty() {
                        // Kept while its neighbours were dropped: it must not pin
                        // their chunk in the merge (whose budget counts packets).
                        packet.own_data();
                    }
                    if rewrite {
                        sll::sll2_to_sll(&mut packet);
                    }
                    self.merger.push(source, packet, now);
                }
            }
            Event::Watermark { source, ts_nanos } => self.merger.advance(source, ts_nanos),
            Event::Ended { source, statistics } => {
                self.progress.source_settled(source);
                self.merger.close_source(source);
                for slot in &mut self.sinks {
                    slot.sink.source_changed(SourceChange::Ended {
                        source,
                        statistics: statistics.as_ref(),
                    });
                }
                self.sources[source].ended = Some(statistics);
            }
            Event::Tick => {}
        }
        Ok(())
    }

    fn deliver(&mut self, source: SourceId, packet: &Packet) -> Result<(), SinkError> {
        let wanted = self.sinks.iter().any(|s| !s.refused.contains(&source));
        if !wanted || !self.progress.admit_packet() {
            return Ok(());
        }
        let state = &mut self.sources[source];
        // A packet with its process: that text, then the source's other comment lines.
        let comment = packet
            .comment
            .as_ref()
            .map(|process| state.comment.get(process, state.info.comment.as_deref()));
        for slot in &mut self.sinks {
            if !slot.refused.contains(&source) {
                slot.sink.packet(source, packet, comment)?;
            }
        }
        if self.sinks.iter().any(|s| s.sink.full()) {
            self.progress.output_full();
        }
        let state = &mut self.sources[source];
        state.first_ts.get_or_insert(packet.ts_nanos);
        state.last_ts = Some(packet.ts_nanos);
        state.delivered.packets += 1;
        state.delivered.bytes += packet.data.len() as u64;
        state.delivered.with_process += u64::from(packet.comment.is_some());
        Ok(())
    }

    /// Gives the sinks the names of the start (`None`), or those of `names` not
    /// given yet.
    fn give_names(&mut self, names: Option<NameTable>) -> Result<(), SinkError> {
        let new = match names {
            None => self.names.clone(),
            Some(names) => self.names.merge(&names),
        };
        if new.is_empty() {
            return Ok(());
        }
        self.sinks.iter_mut().try_for_each(|s| s.sink.names(&new))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.last_flush = Instant::now();
        self.sinks.iter_mut().try_for_each(|s| s.sink.flush())
    }

    /// Every source's end, then every sink's.
    fn end_sinks(&mut self) -> Result<(), SinkError> {
        for (source, state) in self.sources.iter().enumerate() {
            let Some(statistics) = &state.ended else {
                continue;
            };
            let end = SourceEnd {
                source,
                statistics: statistics.as_ref(),
                first_ts: state.first_ts,
                last_ts: state.last_ts,
            };
            for slot in &mut self.sinks {
                if !slot.refused.contains(&source) {
                    slot.sink.source_end(end)?;
                }
            }
        }
        self.sinks.iter_mut().try_for_each(|s| s.sink.finish())
    }
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
