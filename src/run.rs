//! Executing a plan: start the pipeline and one capture per planned source, let
//! `--follow` add pods as they appear, wait for the stop, and collect how every
//! source went. Deciding what to capture is [`crate::plan`]'s job; when to stop,
//! [`crate::stop`]'s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::captures::Captures;
use crate::config::{Config, Via};
use crate::event::SourceInfo;
use crate::event::{CHANNEL_BATCHES, Event};
use crate::pipeline::{Pipeline, PipelineReport};
use crate::plan::{KubePlan, Plan};
use crate::reaper::Reaper;
use crate::sink::lines::LinesSink;
use crate::sink::output::Opened;
use crate::sink::records::{CallbackReportHandle, RecordsSink};
use crate::sink::serve::ServeSink;
use crate::sink::status::{Ending, StatusSink};
use crate::sink::{FileReport, FileReportHandle, Sink, SinkError, Unnamed};
use crate::source::helper_pool::HelperPool;
use crate::source::{KubeContext, SourceReport};
use crate::stop::{self, Progress, Stop, StopReason};

/// How often the pipeline is woken to release held packets and flush.
const TICK: Duration = Duration::from_millis(250);

/// Everything the report needs about a finished capture.
pub struct Outcome {
    /// Indexed by source id.
    pub sources: Vec<SourceReport>,
    pub pipeline: PipelineReport,
    pub stop: Option<StopReason>,
    pub elapsed: Duration,
    /// What rotated files or the flight recorder wrote (`None` for a plain file).
    pub files: Option<FileReport>,
    /// `--serve`: the viewers.
    pub serve: Option<kcap_serve::ServeReport>,
    /// `--callback`: what became of the records.
    pub callback: Option<kcap_callback::CallbackReport>,
}

/// Captures what `plan` says into `output` (and `viewer`, Wireshark's live stream,
/// and `server`'s viewers) until `stop` fires or every source ended.
pub async fn capture(
    config: &Config,
    plan: &Plan,
    output: Option<Opened>,
    viewer: Option<Box<dyn Sink>>,
    server: Option<kcap_serve::Server>,
    files: FileReportHandle,
    stop: Stop,
) -> Result<Outcome, SinkError> {
    let started = Instant::now();
    if let Some(duration) = config.duration {
        stop::stop_after(&stop, duration);
    }
    let (events, receiver) = mpsc::channel(CHANNEL_BATCHES);
    let served = server.as_ref().map(|s| s.hub());
    let (pipeline, callback) =
        start_pipeline(config, plan, output, viewer, served, receiver, &stop)?;
    let ticker = tokio::spawn(tick(events.clone()));
    let kube = plan.kube.as_ref().map(|k| Arc::new(kube_context(k, plan)));
    let mut captures = Captures::new(events, stop.clone(), kube.clone());
    for planned in &plan.sources {
        captures.start(planned.clone());
    }
    let reports = match (&plan.kube, kube) {
        (Some(kube_plan), Some(ctx)) if !kube_plan.watch.is_empty() => {
            crate::follow::supervise(
                captures,
                &plan.sources,
                &plan.command,
                &plan.interfaces,
                kube_plan,
                ctx,
            )
            .await
        }
        _ => captures.wait_all().await,
    };
    ticker.abort();
    let _ = ticker.await;
    if stop.reason() == Some(StopReason::ViewerClosed) {
        let settled =
            tokio::task::spawn_blocking(|| crate::wireshark::settle(Duration::from_secs(2)));
        let _ = settled.await;
    }
    let pipeline = tokio::task::spawn_blocking(move || pipeline.join())
        .await
        .expect("join the pipeline")
        .expect("pipeline thread panicked");
    // The pipeline ended every viewer's stream: give them time to take the rest.
    let serve = match server {
        Some(server) => tokio::task::spawn_blocking(move || server.finish(crate::serve::DRAIN))
            .await
            .ok(),
        None => None,
    };
    let callback = callback.lock().expect("callback report").take();
    Ok(Outcome {
        callback,
        serve,
        sources: reports,
        pipeline,
        stop: stop.reason(),
        elapsed: started.elapsed(),
        files: config
            .limits
            .any()
            .then(|| files.lock().expect("file report").clone()),
    })
}

/// The pipeline on its own thread (writing is blocking I/O), with its sinks: the
/// capture file, Wireshark's stream and `--print`'s lines, as asked.
fn start_pipeline(
    config: &Config,
    plan: &Plan,
    output: Option<Opened>,
    viewer: Option<Box<dyn Sink>>,
    served: Option<Arc<kcap_serve::Hub>>,
    receiver: mpsc::Receiver<Event>,
    stop: &Stop,
) -> Result<
    (
        std::thread::JoinHandle<PipelineReport>,
        CallbackReportHandle,
    ),
    SinkError,
> {
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    let callback = CallbackReportHandle::default();
    let annotate = config.kube.as_ref().is_none_or(|k| k.annotate);
    if let (Some(open), Some(output)) = (output, &config.output) {
        let file = open.into_sink(output)?;
        sinks.push(match annotate {
            true => file,
            false => Box::new(Unnamed(file)),
        });
    }
    if let Some(print) = config.print {
        sinks.push(Box::new(LinesSink::stdout(print)));
    }
    if let Some(records) = &config.records {
        let quiet = config.verbosity == crate::config::Verbosity::Quiet;
        sinks.push(Box::new(RecordsSink::open(records, quiet, &callback)?));
    }
    let initial: Vec<SourceInfo> = plan.sources.iter().map(|s| s.info.clone()).collect();
    if let Some(width) = status_area_width(config) {
        let ending = Ending {
            duration: config.duration,
            count: config.count,
        };
        sinks.push(Box::new(StatusSink::new(
            &initial,
            ending,
            stop.clone(),
            width,
        )));
    }
    if let Some(hub) = served {
        let stream: Box<dyn Sink> = Box::new(ServeSink::new(hub, &initial)?);
        sinks.push(match annotate {
            true => stream,
            false => Box::new(Unnamed(stream)),
        });
    }
    let live = config.print.is_some()
        || config.records.is_some()
        || viewer.is_some()
        || config.serve.is_some()
        || config.output.as_ref().is_some_and(|o| o.is_live());
    // --no-annotate leaves the name records out of Wireshark's stream too.
    sinks.extend(viewer.map(|viewer| match annotate {
        true => viewer,
        false => Box::new(Unnamed(viewer)) as Box<dyn Sink>,
    }));
    let progress = Progress::new(stop.clone(), plan.sources.len(), config.count);
    let names = plan.names.as_ref().clone();
    let pipeline = Pipeline::new(initial, sinks, progress, live, config.cooked_v1, names)
        .with_process_filter(config.process_filter.clone());
    Ok((std::thread::spawn(move || pipeline.run(receiver)), callback))
}

/// The live status area goes on stderr when it is a terminal and not `-q`, and
/// not when `--print` lines go to the same terminal (they would scroll through it).
fn status_area_width(config: &Config) -> Option<usize> {
    use std::io::IsTerminal;
    if config.verbosity == crate::config::Verbosity::Quiet
        || ((config.print.is_some() || config.records.as_ref().is_some_and(|r| r.out.is_none()))
            && std::io::stdout().is_terminal())
    {
        return None;
    }
    crate::terminal::stderr_width()
}

/// Wakes the pipeline regularly until it is gone.
async fn tick(events: mpsc::Sender<Event>) {
    let mut tick = tokio::time::interval(TICK);
    loop {
        tick.tick().await;
        if events.send(Event::Tick).await.is_err() {
            break;
        }
    }
}

/// What Kubernetes captures share. The reaper runs only when a helper pod or a
/// debug container may be made (it is a process of its own).
pub(crate) fn kube_context(kube: &KubePlan, plan: &Plan) -> KubeContext {
    use kcap_kube::Method;
    let may_leave_something = matches!(
        kube.settings.via,
        Via::Auto | Via::Only(Method::Node | Method::Ephemeral)
    );
    let has_pods =
        !kube.watch.is_empty() || plan.sources.iter().any(|s| !s.target.methods().is_empty());
    let reaper = Arc::new(if may_leave_something && has_pods {
        Reaper::start(&kube.settings.client)
    } else {
        Reaper::disabled()
    });
    KubeContext {
        client: kube.client.clone(),
        settings: kube.settings.clone(),
        helpers: HelperPool::new(
            kube.client.clone(),
            kube.settings.image.clone(),
            reaper.clone(),
        ),
        reaper,
    }
}
