//! `-D`/`--list-interfaces`: the interfaces of every target, as `tcpdump -D` prints
//! them, each line prefixed by the target. It goes where a capture would go and the
//! same way: kcap's wrapper script in its listing mode ([`Tool::ListInterfaces`]),
//! its words quoted or passed as argv exactly as for a capture, over SSH, by exec in
//! the pod, or from the node's helper pod inside the pod's network namespace. So
//! the names listed are the names `-i` takes there. Helper pods are leased from the
//! same pool as captures and deleted after (the reaper covers a killed kcap).

use std::time::Duration;

use kcap_capture::command::{CaptureCommand, Tool};
use kcap_kube::Method;
use kcap_kube::methods;

use crate::config::{Config, Via};
use crate::exit::Exit;
use crate::plan::{self, PlannedSource, Target};
use crate::report;
use crate::source::ssh::run_to_end;
use crate::source::stream::{Chunk, Process};
use crate::source::{KubeContext, SourceError, StreamError, pod};

/// How long one target may take to answer (a helper pod's start included).
const LIST_TIMEOUT: Duration = Duration::from_secs(120);

/// Lists every target's interfaces on stdout; errors go to stderr as a capture's
/// do. The first failure decides the exit code; 0 when every target answered.
pub async fn print(config: &Config) -> Exit {
    let plan = match plan::build(config).await {
        Ok(plan) => plan,
        Err(e) => return report::error(None, &e),
    };
    let mut exit = Exit::Success;
    for failed in &plan.failed {
        exit = exit.or(report::error(Some(&failed.label), &failed.error));
    }
    let kube = plan
        .kube
        .as_ref()
        .map(|k| crate::run::kube_context(k, &plan));
    // Several -i plan one source per interface: a target is listed once.
    let first = plan.interfaces.first().map(String::as_str).unwrap_or("any");
    for source in plan.sources.iter().filter(|s| s.command.interface == first) {
        let label = target_label(source);
        let listed = tokio::time::timeout(LIST_TIMEOUT, list_one(source, kube.as_ref()))
            .await
            .unwrap_or_else(|_| {
                Err(StreamError::ConnectionLost(format!(
                    "no answer within {} s",
                    LIST_TIMEOUT.as_secs()
                ))
                .into())
            });
        match listed {
            Ok(text) => {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    println!("{label}: {line}");
                }
            }
            Err(e) => exit = exit.or(report::error(Some(&label), &e)),
        }
    }
    exit
}

/// The target without the interface several -i add to a source's label.
fn target_label(source: &PlannedSource) -> String {
    match &source.target {
        Target::Ssh(node) => node.label.clone(),
        Target::Pod { pod, .. } => pod.label(),
        Target::Node { name, .. } => format!("node/{name}"),
    }
}

/// The listing command: the source's own, in listing mode (no agent, no filter).
fn listing(command: &CaptureCommand) -> CaptureCommand {
    CaptureCommand {
        tool: Tool::ListInterfaces,
        count: None,
        filter: None,
        agent: None,
        process: kcap_capture::command::ProcessMode::Off,
        ..command.clone()
    }
}

/// One target's list, by the first of its methods that answers. An ephemeral
/// container stays in the pod's spec for good, so `-D` uses one only when
/// `--via ephemeral` asks for it.
async fn list_one(
    source: &PlannedSource,
    kube: Option<&KubeContext>,
) -> Result<String, SourceError> {
    let command = listing(&source.command);
    let (target, ctx) = match (&source.target, kube) {
        (Target::Ssh(node), _) => return run_to_end(node, &command.to_shell()?).await,
        (target, Some(ctx)) => (target, ctx),
        (_, None) => unreachable!("Kubernetes sources are planned with a cluster"),
    };
    let explicit = ctx.settings.via == Via::Only(Method::Ephemeral);
    let mut last = None;
    for &method in target.methods() {
        if method == Method::Ephemeral && !explicit {
            continue;
        }
        match list_by(method, target, ctx, &command).await {
            Ok(text) => return Ok(text),
            Err(e) => {
                tracing::debug!("kcap: {}: -D via {method}: {e}", target_label(source));
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        StreamError::Exited("no --via method can list this target's interfaces".into()).into()
    }))
}

async fn list_by(
    method: Method,
    target: &Target,
    ctx: &KubeContext,
    command: &CaptureCommand,
) -> Result<String, SourceError> {
    let client = &ctx.client;
    let side = target.node_side();
    let node = target.node();
    match method {
        Method::Exec | Method::Ephemeral => {
            let Target::Pod { pod, .. } = target else {
                unreachable!("node targets use node methods")
            };
            let process = match method {
                Method::Exec => Some(methods::exec(client, pod, command).await?),
                _ => pod::open_debug(ctx, pod, command, std::future::pending()).await?,
            };
            let Some(mut process) = process else {
                unreachable!("a listing is never stopped");
            };
            collect(&mut process).await
        }
        Method::Node => {
            let namespace = match target {
                Target::Pod { pod, .. } => &pod.namespace,
                Target::Node { namespace, .. } => namespace,
                Target::Ssh(_) => unreachable!("SSH nodes have no methods"),
            };
            let lease = ctx.helpers.lease(namespace, &node);
            let result = async {
                let helper = ctx.helpers.ready(&lease).await?;
                let mut process = methods::exec_in_helper(client, &helper, &side, command).await?;
                collect(&mut process).await
            }
            .await;
            // The last lease deletes the helper pod, as after a capture.
            ctx.helpers.release(lease).await;
            result
        }
        Method::Ssh => {
            let ip = match target {
                Target::Node { internal_ip, .. } => internal_ip.clone(),
                _ => None,
            };
            let node_target = pod::ssh_target(ctx, &node, ip).await;
            let line = command.to_shell_after(&methods::netns_prefix(&side))?;
            run_to_end(&node_target, &line).await
        }
    }
}

/// Reads a listing process to its end: its stdout, or why it failed (its exit
/// status with the end of its stderr).
pub async fn collect(process: &mut impl Process) -> Result<String, SourceError> {
    let (mut stdout, mut stderr, mut failed) = (Vec::new(), Vec::new(), None);
    loop {
        match process.next().await {
            Ok(Some(Chunk::Stdout(bytes))) => stdout.extend(bytes),
            Ok(Some(Chunk::Stderr(bytes))) => stderr.extend(bytes),
            Ok(Some(Chunk::Exit(status))) => failed = status,
            Ok(None) => break,
            Err(e) => return Err(StreamError::ConnectionLost(e).into()),
        }
    }
    let stderr = String::from_utf8_lossy(&stderr);
    let stderr = stderr.trim();
    match failed {
        Some(status) => Err(StreamError::Exited(if stderr.is_empty() {
            status
        } else {
            format!("{status}: {stderr}")
        })
        .into()),
        None if stdout.is_empty() => Err(StreamError::Exited(format!(
            "success, but no interface listed{}{stderr}",
            if stderr.is_empty() { "" } else { ": " }
        ))
        .into()),
        None => Ok(String::from_utf8_lossy(&stdout).into_owned()),
    }
}
