//! Capturing a Kubernetes pod (or node) through the API: try the planned methods
//! in order (`--via`, or auto: exec, else ephemeral, else node), start one, hand
//! the stream to [`super::stream::drive`], and give back what kcap created
//! (helper pods, debug containers) on the way out. Which method captured is reported.

use kcap_capture::command::CaptureCommand;
use kcap_capture::outcome::Failure;
use kcap_kube::debug_container;
use kcap_kube::methods;
use kcap_kube::pod::PodTarget;
use kcap_kube::process::{self as kprocess, PodProcess};
use kcap_kube::{Error as KubeError, Method};
use tokio::sync::mpsc;

use super::helper_pool::HelperPool;
use super::outcome::{SourceError, SourceReport};
use super::stream::{self, Chunk, Feed, Process, StreamError};
use crate::config::{KubeSettings, NodeTarget};
use crate::event::{Event, SourceId, SourceInfo};
use crate::plan::{self, PlannedSource, Target};
use crate::reaper::Reaper;
use crate::stop::Stop;

impl Process for PodProcess {
    async fn next(&mut self) -> Result<Option<Chunk>, String> {
        match PodProcess::next(self).await {
            Ok(Some(kprocess::Chunk::Stdout(b))) => Ok(Some(Chunk::Stdout(b))),
            Ok(Some(kprocess::Chunk::Stderr(b))) => Ok(Some(Chunk::Stderr(b))),
            Ok(Some(kprocess::Chunk::Exit(None))) => Ok(Some(Chunk::Exit(None))),
            Ok(Some(kprocess::Chunk::Exit(Some((code, message))))) => Ok(Some(Chunk::Exit(Some(
                format!("exit code {code}{} {message}", killed_by(code))
                    .trim_end()
                    .to_string(),
            )))),
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn write_stdin(&mut self, bytes: &[u8]) {
        let _ = PodProcess::write_stdin(self, bytes).await;
    }

    async fn close_stdin(&mut self) {
        PodProcess::close_stdin(self).await;
    }
}

/// A shell's exit code 128 + N is signal N's: said in words, with who sends it.
fn killed_by(code: i32) -> String {
    match code - 128 {
        9 => " (killed by SIGKILL: the pod stopped, its node rebooted, or the OOM killer)".into(),
        15 => " (stopped by SIGTERM: the pod is stopping)".into(),
        signal @ 1..=64 => format!(" (killed by signal {signal})"),
        _ => String::new(),
    }
}

/// What the Kubernetes sources share.
pub struct KubeContext {
    pub client: kube::Client,
    pub settings: KubeSettings,
    /// `--via node` helper pods, one per node.
    pub helpers: HelperPool,
    /// Ends what kcap made in the cluster if kcap cannot.
    pub reaper: std::sync::Arc<Reaper>,
}

/// Tries the source's methods in order until one captures. A method that fails
/// before capturing lets the next one try; one that captured and then failed
/// (e.g. the API connection was lost) is the result.
pub async fn capture(
    source: SourceId,
    planned: &PlannedSource,
    ctx: &KubeContext,
    events: &mpsc::Sender<Event>,
    stop: &Stop,
    report: &mut SourceReport,
) -> Result<(), SourceError> {
    let methods = planned.target.methods();
    if let Target::Pod { pod, .. } = &planned.target
        && pod.host_network
    {
        // Same network as the node: captured there, on the pod's ports.
        tracing::info!(
            "kcap: {}: hostNetwork pod: capturing node {} filtered to its ports {:?}",
            pod.label(),
            pod.node.as_deref().unwrap_or("?"),
            pod.ports
        );
    }
    let mut attempts: Vec<(Method, String)> = Vec::new();
    let mut last: Option<SourceError> = None;
    for &method in methods {
        if stop.reason().is_some() {
            return Ok(());
        }
        let info = SourceInfo {
            // The plan's label: with several -i it names the interface too.
            label: planned.info.label.clone(),
            ..plan::describe(
                &planned.target,
                &planned.command.interface,
                Some(method),
                ctx.settings.annotate,
            )
        };
        let feed = Feed {
            source,
            info: &info,
            command: &planned.command,
            events,
            stop,
        };
        let error = match attempt(method, &planned.target, ctx, &feed, report).await {
            Ok(()) => {
                report.method = Some(method);
                return Ok(());
            }
            Err(failed) => failed,
        };
        let error_text;
        let error = match error {
            Failed {
                error,
                started: true,
            } => {
                report.method = Some(method);
                return Err(explain(
                    &planned.target,
                    method,
                    *error,
                    &ctx.settings.image,
                ));
            }
            // The user's filter or interface is wrong whatever the method: say so once.
            Failed { error, .. } if is_rejection(&error) => return Err(*error),
            Failed { error, .. } => {
                let e = explain(&planned.target, method, *error, &ctx.settings.image);
                error_text = crate::exit::chain(&e);
                e
            }
        };
        tracing::debug!(
            "kcap: {}: --via {method} failed: {error_text}",
            planned.label()
        );
        attempts.push((method, error_text));
        last = Some(error);
    }
    match (last, attempts.len()) {
        (Some(e), 1) => Err(e),
        (Some(e @ SourceError::Kube(KubeError::Forbidden { .. })), _)
            if attempts.iter().all(|(_, w)| w.contains("forbidden")) =>
        {
            Err(e)
        }
        _ => Err(KubeError::AllMethodsFailed {
            pod: planned.label().to_string(),
            attempts,
        }
        .into()),
    }
}

/// The capture tool refused the filter or the interface it was given.
fn is_rejection(error: &SourceError) -> bool {
    matches!(
        error,
        SourceError::Stream(StreamError::Capture {
            failure: Failure::BadFilter { .. } | Failure::BadInterface { .. },
            ..
        })
    )
}

/// How an attempt failed: before its capture started (the next method may be
/// tried) or after.
struct Failed {
    error: Box<SourceError>,
    started: bool,
}

impl<E: Into<SourceError>> From<E> for Failed {
    fn from(error: E) -> Failed {
        Failed {
            error: Box::new(error.into()),
            started: false,
        }
    }
}

/// One method, start to end.
async fn attempt(
    method: Method,
    target: &Target,
    ctx: &KubeContext,
    feed: &Feed<'_>,
    report: &mut SourceReport,
) -> Result<(), Failed> {
    let client = &ctx.client;
    let command = feed.command;
    let node = target.node();
    let side = target.node_side();
    match method {
        Method::Exec | Method::Ephemeral => {
            let Target::Pod { pod, .. } = target else {
                unreachable!("node targets use node methods")
            };
            // An ephemeral container gets its stdin only once kcap attaches, after
            // it started: the agent is not sent there (tcpdump captures, as before).
            let without_agent;
            let feed = if method == Method::Ephemeral && command.agent.is_some() {
                without_agent = CaptureCommand {
                    agent: None,
                    ..command.clone()
                };
                &Feed {
                    command: &without_agent,
                    ..*feed
                }
            } else {
                feed
            };
            let command = feed.command;
            let process = match method {
                Method::Exec => tokio::select! {
                    p = methods::exec(client, pod, command) => Some(p?),
                    _ = feed.stop.stopped() => None,
                },
                _ => open_debug(ctx, pod, command, feed.stop.stopped()).await?,
            };
            let Some(mut process) = process else {
                return Ok(());
            };
            report.session = Some(format!("via {method}"));
            outcome_of(stream::drive(&mut process, feed).await, report)
        }
        Method::Node => {
            let namespace = match target {
                Target::Pod { pod, .. } => &pod.namespace,
                Target::Node { namespace, .. } => namespace,
                Target::Ssh(_) => unreachable!("SSH nodes have no methods"),
            };
            let lease = ctx.helpers.lease(namespace, &node);
            let result = async {
                let helper = tokio::select! {
                    h = ctx.helpers.ready(&lease) => h?,
                    _ = feed.stop.stopped() => return Ok(()),
                };
                report.session = Some(format!(
                    "via node (helper pod {}/{} on {node})",
                    helper.namespace, helper.name
                ));
                let mut process = methods::exec_in_helper(client, &helper, &side, command).await?;
                outcome_of(stream::drive(&mut process, feed).await, report)
            }
            .await;
            ctx.helpers.release(lease).await;
            result
        }
        Method::Ssh => {
            let ip = match target {
                Target::Node { internal_ip, .. } => internal_ip.clone(),
                _ => None,
            };
            let node_target = ssh_target(ctx, &node, ip).await;
            let line = command.to_shell_after(&methods::netns_prefix(&side))?;
            // The only method tried for its target: whether it started does not matter.
            Ok(super::ssh::capture(&node_target, &line, feed, report).await?)
        }
    }
}

/// How long kcap itself tries to end a debug container it did not open (it may
/// still be starting); after that its reaper keeps trying once kcap has ended.
const END_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Starts a capture in a debug container (`--via ephemeral`); `None` when
/// `stopped` came first. From before the API is asked for the container until
/// it is opened, the reaper knows it; stopped (or failed) in between, kcap ends the
/// container itself, so it does not wait a minute at its gate.
pub(crate) async fn open_debug(
    ctx: &KubeContext,
    pod: &PodTarget,
    command: &CaptureCommand,
    stopped: impl Future<Output = ()>,
) -> Result<Option<PodProcess>, KubeError> {
    let client = &ctx.client;
    let container = debug_container::DebugContainer::new(pod);
    // Told before asking: kcap may be killed while the PATCH is on its way.
    ctx.reaper.made(&container);
    let mut stopped = std::pin::pin!(stopped);
    let mut add = std::pin::pin!(debug_container::add(
        client,
        pod,
        &container,
        command,
        &ctx.settings.image
    ));
    // A stop does not cut the PATCH short: it may have reached the API already,
    // and a container kcap does not know of cannot be ended.
    let (added, stop) = tokio::select! {
        added = &mut add => (added, false),
        () = &mut stopped => match tokio::time::timeout(END_TIMEOUT, add).await {
            Ok(added) => (added, true),
            // The reaper finds out whether it was added.
            Err(_) => return Ok(None),
        },
    };
    if let Err(e) = added {
        // Refused by the API: nothing was added. Unanswered: the reaper checks.
        if !matches!(e, KubeError::Unreachable(_)) {
            ctx.reaper.dealt_with(&container);
        }
        return Err(e);
    }
    let opened = if stop {
        None
    } else {
        tokio::select! {
            p = debug_container::open(client, pod, &container) => Some(p),
            () = &mut stopped => None,
        }
    };
    if let Some(Ok(process)) = opened {
        ctx.reaper.dealt_with(&container);
        return Ok(Some(process));
    }
    match tokio::time::timeout(END_TIMEOUT, container.end(client)).await {
        Ok(Ok(())) => ctx.reaper.dealt_with(&container),
        Ok(Err(e)) => tracing::debug!("kcap: cannot end debug container {}: {e}", container.name),
        Err(_) => tracing::debug!(
            "kcap: debug container {} still starting; the reaper ends it",
            container.name
        ),
    }
    match opened {
        Some(Err(e)) => Err(e),
        _ => Ok(None),
    }
}

fn outcome_of(ended: stream::Ended, report: &mut SourceReport) -> Result<(), Failed> {
    report.record(&ended);
    ended.result.map_err(|e| Failed {
        error: Box::new(e.into()),
        started: ended.started,
    })
}

/// The node over SSH: an ssh_config alias named like the node, else its InternalIP.
pub(crate) async fn ssh_target(ctx: &KubeContext, node: &str, ip: Option<String>) -> NodeTarget {
    let ip = match ip {
        Some(ip) => Some(ip),
        None => {
            let api: kube::Api<k8s_openapi::api::core::v1::Node> =
                kube::Api::all(ctx.client.clone());
            api.get_opt(node)
                .await
                .ok()
                .flatten()
                .and_then(|n| kcap_kube::resolve::internal_ip(&n))
        }
    };
    let template = &ctx.settings.ssh_template;
    let config = template
        .ssh_config
        .clone()
        .unwrap_or_else(kcap_openssh::config::default_user_config);
    let has_alias = kcap_openssh::config::SshConfig::load(&config)
        .ok()
        .and_then(|c| c.resolve(node).ok())
        .is_some_and(|c| c.hostname.is_some_and(|h| h != node));
    let host = if has_alias {
        node.to_string()
    } else {
        ip.unwrap_or_else(|| node.to_string())
    };
    let mut connect = template.clone();
    connect.destination.host = host;
    NodeTarget {
        label: node.to_string(),
        connect,
    }
}

/// A failure inside a container (no tool, no permission, no shell) says which
/// container or image, so the hint can point elsewhere.
fn explain(target: &Target, method: Method, error: SourceError, image: &str) -> SourceError {
    let Target::Pod { pod, .. } = target else {
        return error;
    };
    let inside = match &error {
        SourceError::Stream(StreamError::Capture { failure, .. }) => matches!(
            failure,
            Failure::ToolMissing { .. } | Failure::PermissionDenied { .. }
        ),
        SourceError::Stream(StreamError::Exited(message)) => {
            message.contains("executable file not found") || message.contains("no such file")
        }
        _ => false,
    };
    match error {
        SourceError::Stream(error) if inside && method != Method::Ssh => SourceError::InContainer {
            pod: pod.label(),
            container: pod.container.clone(),
            method,
            image: image.to_string(),
            error,
        },
        other => other,
    }
}
