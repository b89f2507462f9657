//! Capturing a Kubernetes pod (or node) through the API: pick the method
//! (`--via`, or auto: exec, else ephemeral, else node), start it, hand the stream
//! to [`super::stream::drive`], and remove what kcap created (helper pods) on the
//! way out. Which method captured is reported.

use std::sync::Arc;
use std::time::Instant;

use kcap_capture::command::CaptureCommand;
use kcap_capture::outcome::Failure;
use kcap_kube::methods;
use kcap_kube::pod::PodTarget;
use kcap_kube::process::{self as kprocess, PodProcess};
use kcap_kube::{Error as KubeError, Method};
use tokio::sync::mpsc;

use super::helpers::HelperPool;
use super::stream::{self, Chunk, Process, StreamError};
use super::{SourceError, SourceReport};
use crate::config::{KubeSettings, NodeTarget, Via};
use crate::event::{Event, SourceId};
use crate::output::SourceInfo;
use crate::reaper::Reaper;
use crate::stop::Stop;

impl Process for PodProcess {
    async fn next(&mut self) -> Result<Option<Chunk>, String> {
        match PodProcess::next(self).await {
            Ok(Some(kprocess::Chunk::Stdout(b))) => Ok(Some(Chunk::Stdout(b))),
            Ok(Some(kprocess::Chunk::Stderr(b))) => Ok(Some(Chunk::Stderr(b))),
            Ok(Some(kprocess::Chunk::Exit(None))) => Ok(Some(Chunk::Exit(None))),
            Ok(Some(kprocess::Chunk::Exit(Some((code, message))))) => Ok(Some(Chunk::Exit(Some(
                format!("exit code {code} {message}").trim_end().to_string(),
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

/// What the Kubernetes sources share.
pub struct KubeContext {
    pub client: kube::Client,
    pub settings: KubeSettings,
    pub command: CaptureCommand,
    pub reaper: Reaper,
    /// `--via node` helper pods, one per node.
    pub helpers: HelperPool,
}

/// One thing to capture through the API.
#[derive(Debug, Clone)]
pub enum KubeJob {
    Pod(PodTarget),
    Node {
        name: String,
        internal_ip: Option<String>,
        namespace: String,
    },
}

impl KubeJob {
    pub fn label(&self) -> String {
        match self {
            KubeJob::Pod(p) => p.label(),
            KubeJob::Node { name, .. } => format!("node/{name}"),
        }
    }

    /// The file's names for this source (the method is filled in once known).
    pub fn info(&self, iface: &str, method: Option<Method>, annotate: bool) -> SourceInfo {
        let via = method.map(|m| m.name()).unwrap_or("?");
        match self {
            KubeJob::Pod(p) => {
                let node = p.node.as_deref().unwrap_or("?");
                SourceInfo {
                    label: p.label(),
                    interface_name: format!("{}/{}/{iface}", p.namespace, p.name),
                    description: format!(
                        "pod {} on node {node}, container {}, pod IP {}, via {via}{}",
                        p.label(),
                        p.container,
                        p.ip.as_deref().unwrap_or("?"),
                        if p.host_network {
                            " (hostNetwork: the node's traffic on the pod's ports)"
                        } else {
                            ""
                        }
                    ),
                    comment: annotate.then(|| {
                        format!(
                            "PodName: {}\nPodNamespace: {}\nContainerName: {}\nNodeName: {node}",
                            p.name, p.namespace, p.container
                        )
                    }),
                }
            }
            KubeJob::Node { name, .. } => SourceInfo {
                label: format!("node/{name}"),
                interface_name: format!("node/{name}/{iface}"),
                description: format!("node {name}, via {via}"),
                comment: annotate.then(|| format!("NodeName: {name}")),
            },
        }
    }
}

pub async fn capture(
    source: SourceId,
    job: KubeJob,
    ctx: Arc<KubeContext>,
    events: mpsc::Sender<Event>,
    stop: Stop,
) -> SourceReport {
    let started = Instant::now();
    let mut report = SourceReport::new(job.label());
    report.error = run(source, &job, &ctx, &events, &stop, &mut report)
        .await
        .err();
    report.elapsed = started.elapsed();
    let statistics = report.statistics;
    let _ = events.send(Event::Ended { source, statistics }).await;
    report
}

async fn run(
    source: SourceId,
    job: &KubeJob,
    ctx: &KubeContext,
    events: &mpsc::Sender<Event>,
    stop: &Stop,
    report: &mut SourceReport,
) -> Result<(), SourceError> {
    let mut command = ctx.command.clone();
    let (methods, container_id): (Vec<Method>, String) = match job {
        KubeJob::Pod(pod) => {
            pod.check_running()?;
            if pod.host_network {
                // Same network as the node: capture there, on the pod's ports.
                tracing::info!(
                    "kcap: {}: hostNetwork pod: capturing node {} filtered to its ports {:?}",
                    pod.label(),
                    pod.node.as_deref().unwrap_or("?"),
                    pod.ports
                );
                command.filter = port_filter(&pod.ports, command.filter.take());
                (node_methods(ctx.settings.via), String::new())
            } else {
                let methods = match ctx.settings.via {
                    Via::Auto => methods::AUTO_ORDER.to_vec(),
                    Via::Only(m) => vec![m],
                };
                (methods, pod.container_id.clone().unwrap_or_default())
            }
        }
        KubeJob::Node { .. } => (node_methods(ctx.settings.via), String::new()),
    };
    let mut attempts: Vec<(Method, String)> = Vec::new();
    let mut last: Option<SourceError> = None;
    for method in &methods {
        if stop.reason().is_some() {
            return Ok(());
        }
        let info = job.info(&command.interface, Some(*method), ctx.settings.annotate);
        let outcome = attempt(
            *method,
            source,
            job,
            &container_id,
            &command,
            ctx,
            &info,
            events,
            stop,
            report,
        )
        .await;
        match outcome {
            Ok(()) => {
                report.method = Some(*method);
                return Ok(());
            }
            Err(Failed {
                error,
                started: true,
            }) => {
                // It captured, then failed (e.g. the API connection was lost): that
                // is this method's result, not a reason to start another one.
                report.method = Some(*method);
                return Err(explain(job, *error));
            }
            Err(Failed { error, .. }) => {
                let e = explain(job, *error);
                tracing::debug!("kcap: {}: --via {method} failed: {e}", job.label());
                attempts.push((*method, e.to_string()));
                last = Some(e);
            }
        }
    }
    match (last, attempts.len()) {
        (Some(e), 1) => Err(e),
        (Some(e @ SourceError::Kube(KubeError::Forbidden { .. })), _)
            if attempts.iter().all(|(_, w)| w.contains("forbidden")) =>
        {
            Err(e)
        }
        _ => Err(KubeError::AllMethodsFailed {
            pod: job.label(),
            attempts,
        }
        .into()),
    }
}

fn node_methods(via: Via) -> Vec<Method> {
    match via {
        Via::Only(Method::Ssh) => vec![Method::Ssh],
        _ => vec![Method::Node],
    }
}

/// `(port a or port b) and (rest)`.
fn port_filter(ports: &[u16], rest: Option<String>) -> Option<String> {
    if ports.is_empty() {
        return rest;
    }
    let set = ports
        .iter()
        .map(|p| format!("port {p}"))
        .collect::<Vec<_>>()
        .join(" or ");
    Some(match rest {
        Some(r) => format!("({set}) and ({r})"),
        None => format!("({set})"),
    })
}

/// How an attempt failed: before its capture started (the next method may be
/// tried) or after.
struct Failed {
    error: Box<SourceError>,
    started: bool,
}

impl From<SourceError> for Failed {
    fn from(error: SourceError) -> Failed {
        Failed {
            error: Box::new(error),
            started: false,
        }
    }
}

impl From<KubeError> for Failed {
    fn from(error: KubeError) -> Failed {
        SourceError::from(error).into()
    }
}

/// One method, start to end.
#[allow(clippy::too_many_arguments)]
async fn attempt(
    method: Method,
    source: SourceId,
    job: &KubeJob,
    container_id: &str,
    command: &CaptureCommand,
    ctx: &KubeContext,
    info: &SourceInfo,
    events: &mpsc::Sender<Event>,
    stop: &Stop,
    report: &mut SourceReport,
) -> Result<(), Failed> {
    let client = &ctx.client;
    match method {
        Method::Exec | Method::Ephemeral => {
            let KubeJob::Pod(pod) = job else {
                unreachable!("node jobs use node methods")
            };
            let mut process = tokio::select! {
                p = async { if method == Method::Exec { methods::exec(client, pod, command).await } else { methods::ephemeral(client, pod, command, &ctx.settings.image).await } } => p?,
                _ = stop.stopped() => return Ok(()),
            };
            report.session = Some(format!("via {method}"));
            finish(
                stream::drive(&mut process, source, info, events, stop).await,
                report,
            )
        }
        Method::Node => {
            let (node, namespace) = match job {
                KubeJob::Pod(p) => (p.node.clone().unwrap_or_default(), p.namespace.clone()),
                KubeJob::Node {
                    name, namespace, ..
                } => (name.clone(), namespace.clone()),
            };
            let lease = ctx.helpers.lease(&namespace, &node);
            let result = async {
                let helper = tokio::select! {
                    h = lease.ready(ctx) => h?,
                    _ = stop.stopped() => return Ok(()),
                };
                report.session = Some(format!(
                    "via node (helper pod {}/{} on {node})",
                    helper.namespace, helper.name
                ));
                let mut process =
                    methods::exec_in_helper(client, &helper, container_id, command).await?;
                finish(
                    stream::drive(&mut process, source, info, events, stop).await,
                    report,
                )
            }
            .await;
            ctx.helpers.release(ctx, lease).await;
            result
        }
        Method::Ssh => {
            let (node, ip) = match job {
                KubeJob::Pod(p) => (p.node.clone().unwrap_or_default(), None),
                KubeJob::Node {
                    name, internal_ip, ..
                } => (name.clone(), internal_ip.clone()),
            };
            let target = ssh_target(ctx, &node, ip).await?;
            let capture = command
                .to_argv("")
                .map_err(|e| KubeError::BadTarget(e.to_string()))?;
            let argv = methods::netns_argv(container_id, capture);
            let mut words = Vec::new();
            for a in &argv {
                words.push(
                    kcap_capture::quote::quote(a, "argument")
                        .map_err(|e| KubeError::BadTarget(e.to_string()))?,
                );
            }
            let sudo = if ctx.settings.ssh_sudo {
                "sudo -n "
            } else {
                ""
            };
            let line = format!("{sudo}{}", words.join(" "));
            // The only method tried for its target: whether it started does not matter.
            Ok(super::ssh::run(source, &target, info, &line, events, stop, report).await?)
        }
    }
}

fn finish(ended: stream::Ended, report: &mut SourceReport) -> Result<(), Failed> {
    report.tool = ended.tool;
    report.statistics = ended.statistics;
    ended.result.map_err(|e| Failed {
        error: Box::new(e.into()),
        started: ended.started,
    })
}

/// The node over SSH: an ssh_config alias named like the node, else its InternalIP.
async fn ssh_target(
    ctx: &KubeContext,
    node: &str,
    ip: Option<String>,
) -> Result<NodeTarget, SourceError> {
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
    let config = ctx
        .settings
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
    let mut connect = ctx.settings.ssh_template.clone();
    connect.destination.host = host.clone();
    Ok(NodeTarget {
        label: node.to_string(),
        connect,
    })
}

/// Turns what the tool said into the Kubernetes-specific error with its hint.
fn explain(job: &KubeJob, e: SourceError) -> SourceError {
    let KubeJob::Pod(pod) = job else { return e };
    match e {
        SourceError::Stream(StreamError::Capture(Failure::ToolMissing { message })) => {
            KubeError::ToolMissing {
                pod: pod.label(),
                container: pod.container.clone(),
                message,
            }
            .into()
        }
        SourceError::Stream(StreamError::Capture(Failure::PermissionDenied { message })) => {
            KubeError::PermissionDenied {
                pod: pod.label(),
                container: pod.container.clone(),
                message,
            }
            .into()
        }
        SourceError::Stream(StreamError::Exited(message))
            if message.contains("executable file not found")
                || message.contains("no such file") =>
        {
            KubeError::ToolMissing {
                pod: pod.label(),
                container: pod.container.clone(),
                message: format!("no shell in the image ({message})"),
            }
            .into()
        }
        other => other,
    }
}
