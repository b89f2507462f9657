//! One capture from start to end: open the output, resolve Kubernetes targets,
//! start every source's capture and the writer, follow selectors for new pods,
//! apply the stop conditions, and collect what happened.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use kcap_kube::follow::{self, Change};
use kcap_kube::pod::PodTarget;
use kcap_kube::resolve::{self, Resolved, Scope};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::config::{Config, KubeSettings, Via};
use crate::event::{CHANNEL_BATCHES, Event, SourceId};
use crate::output::{self, OutputError, SourceInfo, WriterReport};
use crate::reaper::Reaper;
use crate::source::pod::{self, KubeContext, KubeJob};
use crate::source::{SourceError, SourceReport, StreamError, ssh};
use crate::stop::{Stop, StopReason, watch_signals};

/// Everything [`crate::report`] needs to print the summary and pick the exit code.
pub struct Outcome {
    /// Indexed by source id.
    pub sources: Vec<SourceReport>,
    /// Targets that failed before any capture started (not found, forbidden, ...).
    pub failed_targets: Vec<(String, kcap_kube::Error)>,
    pub writer: WriterReport,
    pub stop: Option<StopReason>,
    pub elapsed: std::time::Duration,
}

pub enum RunError {
    Output(OutputError),
    Signals(std::io::Error),
    Kube(kcap_kube::Error),
}

/// Kubernetes targets resolved to what will be captured.
struct Plan {
    ctx: Arc<KubeContext>,
    jobs: Vec<KubeJob>,
    /// Selectors to watch with --follow: (namespace or all, selector).
    selectors: Vec<(Option<String>, String)>,
    failed: Vec<(String, kcap_kube::Error)>,
}

pub async fn run(config: Config) -> Result<Outcome, RunError> {
    let started = Instant::now();
    let stop = Stop::new();
    watch_signals(stop.clone()).map_err(RunError::Signals)?;
    let file = output::open(&config.output).map_err(RunError::Output)?;
    let mut config = config;
    let plan = match config.kube.clone() {
        Some(settings) => Some(plan(&mut config, settings).await.map_err(RunError::Kube)?),
        None => None,
    };

    if let Some(duration) = config.duration {
        let stop = stop.clone();
        tokio::spawn(async move {
            stop.until_all_capturing().await;
            tokio::time::sleep(duration).await;
            stop.stop(StopReason::Duration);
        });
    }

    let iface = config.command.interface.clone();
    let mut infos: Vec<SourceInfo> = config
        .nodes
        .iter()
        .map(|n| SourceInfo {
            label: n.label.clone(),
            interface_name: format!("{}:{iface}", n.label),
            description: format!("{} via ssh, interface {iface}", n.label),
            comment: None,
        })
        .collect();
    if let Some(plan) = &plan {
        for job in &plan.jobs {
            infos.push(job.info(&iface, None, plan.ctx.settings.annotate));
        }
    }
    let (events, receiver) = mpsc::channel(CHANNEL_BATCHES);
    let writer = {
        let (output, stop, count) = (config.output.clone(), stop.clone(), config.count);
        let sources = infos.clone();
        std::thread::spawn(move || output::run(&output, file, sources, receiver, stop, count))
    };
    let ticker = {
        let events = events.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
            loop {
                tick.tick().await;
                if events.send(Event::Tick).await.is_err() {
                    break;
                }
            }
        })
    };
    let mut tasks: JoinSet<(SourceId, SourceReport)> = JoinSet::new();
    let line = config
        .command
        .to_shell()
        .expect("validated with the configuration");
    for (source, target) in config.nodes.iter().enumerate() {
        let fut = ssh::capture(
            source,
            target.clone(),
            infos[source].clone(),
            line.clone(),
            events.clone(),
            stop.clone(),
        );
        tasks.spawn(async move { (source, fut.await) });
    }
    let mut next_id = config.nodes.len();
    let mut captured: HashSet<String> = HashSet::new();
    // Source id -> (namespace, name) of the pods being captured.
    let mut pods: HashMap<SourceId, (String, String)> = HashMap::new();
    let (changes_tx, mut changes) = mpsc::channel::<Change>(64);
    let mut failed_targets = Vec::new();
    if let Some(plan) = plan {
        failed_targets = plan.failed;
        for job in plan.jobs {
            captured.insert(job.label());
            if let KubeJob::Pod(t) = &job {
                pods.insert(next_id, (t.namespace.clone(), t.name.clone()));
            }
            let fut = pod::capture(next_id, job, plan.ctx.clone(), events.clone(), stop.clone());
            let id = next_id;
            tasks.spawn(async move { (id, fut.await) });
            next_id += 1;
        }
        if plan.ctx.settings.follow {
            for (ns, selector) in plan.selectors {
                tokio::spawn(follow::watch(
                    plan.ctx.client.clone(),
                    ns,
                    selector,
                    changes_tx.clone(),
                ));
            }
            let ctx = plan.ctx.clone();
            let mut reports = Vec::new();
            let mut seen_stop = false;
            loop {
                if tasks.is_empty() && stop.reason().is_some() {
                    break;
                }
                tokio::select! {
                    Some(done) = tasks.join_next() => {
                        let (id, report) = done.expect("capture task panicked");
                        if stop.reason().is_none() && lost_connection(&report) {
                            // The pod may well still run: when the watch sees it again
                            // (kube-rs re-lists once the API answers), capture it anew.
                            tracing::info!(
                                "kcap: {}: capture lost with the connection; capturing it again once the API answers",
                                report.label
                            );
                            captured.remove(&report.label);
                            if let Some((namespace, name)) = pods.get(&id) {
                                tokio::spawn(follow::when_back(
                                    ctx.client.clone(),
                                    namespace.clone(),
                                    name.clone(),
                                    changes_tx.clone(),
                                ));
                            }
                        }
                        reports.push((id, report));
                    }
                    Some(change) = changes.recv(), if stop.reason().is_none() => match change {
                        Change::Running(p) => {
                            let Ok(target) = PodTarget::from_pod(&p, ctx.settings.container.as_deref()) else { continue };
                            if !captured.insert(target.label()) {
                                continue;
                            }
                            tracing::info!("kcap: {}: capturing it", target.label());
                            let id = next_id;
                            pods.insert(id, (target.namespace.clone(), target.name.clone()));
                            let job = KubeJob::Pod(target);
                            let info = job.info(&iface, None, ctx.settings.annotate);
                            next_id += 1;
                            let _ = events.send(Event::Added { source: id, info }).await;
                            let fut = pod::capture(id, job, ctx.clone(), events.clone(), stop.clone());
                            tasks.spawn(async move { (id, fut.await) });
                        }
                        Change::Gone { namespace, name } => {
                            if captured.contains(&format!("{namespace}/{name}")) {
                                tracing::info!("kcap: {namespace}/{name}: pod deleted");
                            }
                        }
                    },
                    _ = stop.stopped(), if !seen_stop => seen_stop = true,
                }
            }
            return finish(
                reports,
                failed_targets,
                events,
                ticker,
                writer,
                &stop,
                started,
            )
            .await;
        }
    }
    let mut reports = Vec::new();
    while let Some(done) = tasks.join_next().await {
        reports.push(done.expect("capture task panicked"));
    }
    finish(
        reports,
        failed_targets,
        events,
        ticker,
        writer,
        &stop,
        started,
    )
    .await
}

/// A capture that ended because the way to it broke, not because of the pod.
fn lost_connection(report: &SourceReport) -> bool {
    matches!(
        &report.error,
        Some(SourceError::Stream(StreamError::ConnectionLost(_)))
            | Some(SourceError::Kube(kcap_kube::Error::Unreachable(_)))
    )
}

async fn finish(
    mut reports: Vec<(SourceId, SourceReport)>,
    failed_targets: Vec<(String, kcap_kube::Error)>,
    events: mpsc::Sender<Event>,
    ticker: tokio::task::JoinHandle<()>,
    writer: std::thread::JoinHandle<WriterReport>,
    stop: &Stop,
    started: Instant,
) -> Result<Outcome, RunError> {
    drop(events);
    ticker.abort();
    let _ = ticker.await;
    let writer = tokio::task::spawn_blocking(move || writer.join())
        .await
        .expect("join the writer")
        .expect("writer thread panicked");
    reports.sort_by_key(|(id, _)| *id);
    Ok(Outcome {
        sources: reports.into_iter().map(|(_, r)| r).collect(),
        failed_targets,
        writer,
        stop: stop.reason(),
        elapsed: started.elapsed(),
    })
}

/// Connects to the cluster, expands filter tokens and resolves every target.
/// Targets that fail are kept as errors while others remain; if none remains,
/// the first error ends the run.
async fn plan(config: &mut Config, settings: KubeSettings) -> Result<Plan, kcap_kube::Error> {
    let cluster = kcap_kube::client::connect(&settings.client).await?;
    let namespace = settings
        .namespace
        .clone()
        .unwrap_or(cluster.default_namespace.clone());
    let scope = Scope {
        client: cluster.client.clone(),
        namespace: namespace.clone(),
        all_namespaces: settings.all_namespaces,
    };
    if let Some(expression) = config.filter.expression.clone()
        && !kcap_kube::filter_tokens::find(&expression)?.is_empty()
    {
        let expanded = scope.expand_filter(&expression).await?;
        tracing::info!("kcap: --filter: {expanded}");
        let mut spec = config.filter.clone();
        spec.expression = Some(expanded);
        config.command.filter = spec.to_bpf();
    }
    let may_need_helpers = matches!(settings.via, Via::Auto | Via::Only(kcap_kube::Method::Node));
    let has_targets = !settings.targets.is_empty() || settings.selector.is_some();
    let reaper = if may_need_helpers && has_targets {
        Reaper::start(&settings.client)
    } else {
        Reaper::disabled()
    };
    let mut jobs = Vec::new();
    let mut selectors = Vec::new();
    let mut failed = Vec::new();
    let mut pods = Vec::new();
    for target in &settings.targets {
        match scope.resolve(target).await {
            Ok(Resolved::Pods {
                pods: found,
                selector,
            }) => {
                pods.extend(found);
                selectors.extend(selector);
            }
            Ok(Resolved::Node(node)) => jobs.push(KubeJob::Node {
                name: node.metadata.name.clone().unwrap_or_default(),
                internal_ip: resolve::internal_ip(&node),
                namespace: namespace.clone(),
            }),
            Err(e) => failed.push((target.to_string(), e)),
        }
    }
    if let Some(selector) = &settings.selector {
        let ns = (!settings.all_namespaces).then(|| namespace.clone());
        match scope.pods_by_selector(ns.as_deref(), selector).await {
            Ok(found) if found.is_empty() && !settings.follow => failed.push((
                format!("-l {selector}"),
                kcap_kube::Error::NoPods {
                    what: format!("selector {selector}"),
                },
            )),
            Ok(found) => pods.extend(found),
            Err(e) => failed.push((format!("-l {selector}"), e)),
        }
        selectors.push((ns, selector.clone()));
    }
    let mut seen = HashSet::new();
    for p in pods {
        match PodTarget::from_pod(&p, settings.container.as_deref()) {
            Ok(t) if seen.insert(t.label()) => jobs.push(KubeJob::Pod(t)),
            Ok(_) => {}
            Err(e) => failed.push((format!("pod/{}", p.metadata.name.unwrap_or_default()), e)),
        }
    }
    let will_follow = settings.follow && !selectors.is_empty();
    if jobs.is_empty() && !will_follow && config.nodes.is_empty() {
        if !failed.is_empty() {
            return Err(failed.swap_remove(0).1);
        }
        if has_targets {
            return Err(kcap_kube::Error::NoPods {
                what: "the targets".into(),
            });
        }
    }
    let ctx = Arc::new(KubeContext {
        client: cluster.client,
        settings,
        command: config.command.clone(),
        reaper,
        helpers: Default::default(),
    });
    Ok(Plan {
        ctx,
        jobs,
        selectors,
        failed,
    })
}
