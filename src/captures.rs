//! The captures running at one time, numbered in the order they started: started
//! by [`crate::run`] for the plan's sources and by [`crate::follow`] for pods that
//! appear later, and collected as each ends.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::event::{Event, SourceId};
use crate::plan::PlannedSource;
use crate::source::{self, KubeContext, SourceReport};
use crate::stop::Stop;

/// The running captures, numbered in the order they started.
pub struct Captures {
    tasks: JoinSet<(SourceId, SourceReport)>,
    next_id: SourceId,
    events: mpsc::Sender<Event>,
    stop: Stop,
    kube: Option<Arc<KubeContext>>,
}

impl Captures {
    pub fn new(
        events: mpsc::Sender<Event>,
        stop: Stop,
        kube: Option<Arc<KubeContext>>,
    ) -> Captures {
        Captures {
            tasks: JoinSet::new(),
            next_id: 0,
            events,
            stop,
            kube,
        }
    }

    /// Starts capturing `planned` as the next source.
    pub fn start(&mut self, planned: PlannedSource) -> SourceId {
        let id = self.next_id;
        self.next_id += 1;
        let capture = source::capture(
            id,
            planned,
            self.kube.clone(),
            self.events.clone(),
            self.stop.clone(),
        );
        self.tasks.spawn(async move { (id, capture.await) });
        id
    }

    /// A source that joins during the capture: the pipeline learns it first.
    pub async fn add(&mut self, planned: PlannedSource) -> SourceId {
        let info = planned.info.clone();
        let _ = self
            .events
            .send(Event::Added {
                source: self.next_id,
                info,
            })
            .await;
        self.start(planned)
    }

    /// The next capture to end; `None` when none runs.
    pub async fn next_done(&mut self) -> Option<(SourceId, SourceReport)> {
        let done = self.tasks.join_next().await?;
        Some(done.expect("capture task panicked"))
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    pub fn stop(&self) -> &Stop {
        &self.stop
    }

    /// Waits for every capture; their reports by source id.
    pub async fn wait_all(mut self) -> Vec<SourceReport> {
        let mut reports = Vec::new();
        while let Some(done) = self.next_done().await {
            reports.push(done);
        }
        by_id(reports)
    }
}

/// Reports sorted by source id, ids dropped.
pub fn by_id(mut reports: Vec<(SourceId, SourceReport)>) -> Vec<SourceReport> {
    reports.sort_by_key(|(id, _)| *id);
    reports.into_iter().map(|(_, r)| r).collect()
}
