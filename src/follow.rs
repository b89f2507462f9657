//! `--follow`: while the capture runs, watch the targets' selectors and capture
//! pods that start running; a pod whose capture was lost with the API connection
//! is captured again once the API answers, and one whose capture ended because it
//! restarted (new containers: its node rebooted, it crashed) once it runs again;
//! each time a new interface in the file.

use std::collections::HashMap;
use std::sync::Arc;

use kcap_capture::command::CaptureCommand;
use kcap_kube::follow::{self, Change};
use kcap_kube::pod::PodTarget;
use tokio::sync::mpsc;

use crate::captures::{Captures, by_id};
use crate::event::SourceId;
use crate::plan::{KubePlan, PlannedSource, Target};
use crate::source::{KubeContext, SourceError, SourceReport, StreamError};

/// What is captured, by label (`ns/name` for a pod) and by source id.
#[derive(Default)]
struct Captured {
    labels: HashMap<String, Capture>,
    /// Source id -> its label.
    sources: HashMap<SourceId, String>,
    /// Source id -> (namespace, name), to look a lost pod up again.
    pods: HashMap<SourceId, (String, String)>,
}

/// One pod's (or other target's) capture.
struct Capture {
    /// The container whose network is captured (a restart makes a new one).
    container_id: Option<String>,
    /// Its sources still capturing (one per interface).
    running: usize,
}

impl Captured {
    fn insert(&mut self, id: SourceId, planned: &PlannedSource) {
        // By pod (`ns/name`), not by source: with several -i a pod has a source
        // (and a label naming its interface) per interface.
        let (label, container_id) = match &planned.target {
            Target::Pod { pod, .. } => (pod.label(), pod.container_id.clone()),
            _ => (planned.label().to_string(), None),
        };
        let capture = self.labels.entry(label.clone()).or_insert(Capture {
            container_id: container_id.clone(),
            running: 0,
        });
        if capture.running == 0 {
            capture.container_id = container_id;
        }
        capture.running += 1;
        self.sources.insert(id, label);
        if let Target::Pod { pod, .. } = &planned.target {
            self.pods
                .insert(id, (pod.namespace.clone(), pod.name.clone()));
        }
    }

    /// Source `id` ended; returns whether it was its pod's last.
    fn ended(&mut self, id: SourceId) -> bool {
        let Some(capture) = self.sources.get(&id).and_then(|l| self.labels.get_mut(l)) else {
            return false;
        };
        capture.running = capture.running.saturating_sub(1);
        capture.running == 0
    }

    /// Whether `target` (running) should be captured: never captured, or its
    /// captures all ended and it runs another container than the one captured
    /// (it restarted: a node reboot, a crash). A capture that ended while the
    /// same container runs is not started again, or it would start forever.
    fn wanted(&self, target: &PodTarget) -> Want {
        match self.labels.get(&target.label()) {
            None => Want::New,
            Some(c) if c.running == 0 && c.container_id != target.container_id => Want::Restarted,
            Some(_) => Want::No,
        }
    }
}

enum Want {
    New,
    Restarted,
    No,
}

/// Runs the captures already started (sources `0..initial.len()`) plus every pod
/// the watches report, until the stop and the end of every capture. `command` is
/// what new pods run, on each of `interfaces`. Returns every report by source id.
pub async fn supervise(
    mut captures: Captures,
    initial: &[PlannedSource],
    command: &CaptureCommand,
    interfaces: &[String],
    kube: &KubePlan,
    ctx: Arc<KubeContext>,
) -> Vec<SourceReport> {
    let mut captured = Captured::default();
    for (id, planned) in initial.iter().enumerate() {
        captured.insert(id, planned);
    }
    let (changes_tx, mut changes) = mpsc::channel::<Change>(64);
    for (ns, selector) in &kube.watch {
        tokio::spawn(follow::watch(
            ctx.client.clone(),
            ns.clone(),
            selector.clone(),
            changes_tx.clone(),
        ));
    }
    let stop = captures.stop().clone();
    let mut reports = Vec::new();
    let mut seen_stop = false;
    loop {
        if captures.is_empty() && stop.reason().is_some() {
            break;
        }
        tokio::select! {
            Some((id, report)) = captures.next_done() => {
                let last = captured.ended(id);
                if stop.reason().is_none() && lost_connection(&report) {
                    // The pod may well still run: when the watch sees it again
                    // (kube-rs re-lists once the API answers), capture it anew.
                    tracing::info!(
                        "kcap: {}: capture lost with the connection; capturing it again once the API answers",
                        report.label
                    );
                    if let Some((namespace, name)) = captured.pods.get(&id) {
                        captured.labels.remove(&format!("{namespace}/{name}"));
                        tokio::spawn(follow::when_back(
                            ctx.client.clone(),
                            namespace.clone(),
                            name.clone(),
                            changes_tx.clone(),
                        ));
                    }
                } else if stop.reason().is_none() && last
                    && let Some((namespace, name)) = captured.pods.get(&id)
                {
                    // Its pod may have restarted before this capture noticed its
                    // end (the watch's news came while it still counted): ask once.
                    tokio::spawn(follow::when_back(
                        ctx.client.clone(),
                        namespace.clone(),
                        name.clone(),
                        changes_tx.clone(),
                    ));
                }
                reports.push((id, report));
            }
            Some(change) = changes.recv(), if stop.reason().is_none() => match change {
                Change::Running(p) => {
                    let Ok(target) = PodTarget::from_pod(&p, ctx.settings.container.as_deref()) else {
                        continue;
                    };
                    match captured.wanted(&target) {
                        Want::No => continue,
                        Want::New => tracing::info!("kcap: {}: capturing it", target.label()),
                        Want::Restarted => tracing::info!(
                            "kcap: {}: restarted (new container); capturing it again",
                            target.label()
                        ),
                    }
                    for planned in PlannedSource::pods(target, command, &ctx.settings, interfaces) {
                        let id = captures.add(planned.clone()).await;
                        captured.insert(id, &planned);
                    }
                }
                Change::Gone { namespace, name } => {
                    if captured.labels.contains_key(&format!("{namespace}/{name}")) {
                        tracing::info!("kcap: {namespace}/{name}: pod deleted");
                    }
                }
            },
            _ = stop.stopped(), if !seen_stop => seen_stop = true,
        }
    }
    by_id(reports)
}

/// A capture that ended because the way to it broke, not because of the pod.
fn lost_connection(report: &SourceReport) -> bool {
    matches!(
        &report.error,
        Some(SourceError::Stream(StreamError::ConnectionLost(_)))
            | Some(SourceError::Kube(kcap_kube::Error::Unreachable(_)))
    )
}
