//! Capture sources: a planned source ([`crate::plan::PlannedSource`]) run to its
//! end. An SSH node ([`ssh`]) or a Kubernetes pod or node ([`pod`]): whatever the
//! transport, a source is a remote process running kcap's wrapper, and
//! [`stream::drive`] is the one loop that decodes its pcap stream, keeps the
//! heartbeat going, stops it and says how it ended.

pub mod helper_pool;
mod outcome;
pub mod pod;
pub mod ssh;
pub mod stream;

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

pub use outcome::{SourceError, SourceReport};
pub use pod::KubeContext;
pub use stream::StreamError;

use crate::event::{Event, SourceId};
use crate::plan::{PlannedSource, Target};
use crate::stop::Stop;

/// Captures `planned` until its remote tool ends or `stop` fires. Always sends
/// `Event::Ended` for this source, whatever happens.
pub async fn capture(
    id: SourceId,
    planned: PlannedSource,
    kube: Option<Arc<KubeContext>>,
    events: mpsc::Sender<Event>,
    stop: Stop,
) -> SourceReport {
    let started = Instant::now();
    let mut report = SourceReport::new(planned.label().to_string());
    let result = match (&planned.target, kube) {
        (Target::Ssh(node), _) => {
            let feed = stream::Feed {
                source: id,
                info: &planned.info,
                command: &planned.command,
                events: &events,
                stop: &stop,
            };
            match planned.command.to_shell() {
                Ok(line) => ssh::capture(node, &line, &feed, &mut report).await,
                Err(e) => Err(e.into()),
            }
        }
        (_, Some(ctx)) => pod::capture(id, &planned, &ctx, &events, &stop, &mut report).await,
        (_, None) => unreachable!("Kubernetes sources are planned with a cluster"),
    };
    report.error = result.err();
    report.elapsed = started.elapsed();
    let statistics = report.statistics;
    let _ = events
        .send(Event::Ended {
            source: id,
            statistics,
        })
        .await;
    report
}
