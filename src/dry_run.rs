//! `--dry-run`: the plan, checked and printed, with nothing started. For each pod
//! it asks the API what each `--via` method needs (SelfSubjectAccessReview for the
//! verbs, the namespace's Pod Security level, whether ephemeral containers exist)
//! and says which method a real run would use and why; for each SSH node it
//! connects and logs in (a host key or login problem shows now) but runs nothing.
//! What can only be known by trying (is tcpdump in the image?) is said as such.
//! A target that cannot work gets the message, hint and exit code a real run
//! would give.

use kcap_capture::command::{CaptureCommand, ProcessMode, REMOTE_SCRIPT};
use kcap_kube::methods::CapturePoint;
use kcap_kube::{Error as KubeError, Method, access};
use serde_json::{Value, json};

use crate::config::DryRun;
use crate::exit::{self, Exit};
use crate::plan::{Plan, PlannedSource, Target};

/// One `--via` method judged for one target.
struct Verdict {
    method: Method,
    /// What was checked and found, as short sentences.
    checks: Vec<String>,
    /// Why it cannot work, if it cannot.
    error: Option<KubeError>,
}

/// A source judged: the method a run would use, or the error it would meet.
struct Judged<'a> {
    source: &'a PlannedSource,
    verdicts: Vec<Verdict>,
    /// SSH: the session description once connected.
    session: Option<String>,
    chosen: Option<Method>,
    error: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// Judges every planned source, prints the plan, returns the exit code.
pub async fn check_and_print(plan: &Plan, format: DryRun) -> Exit {
    let mut judged = Vec::new();
    for source in &plan.sources {
        judged.push(judge(plan, source).await);
    }
    let mut exit = Exit::Success;
    for failed in &plan.failed {
        exit = exit.or(exit::explain(&failed.error).exit);
    }
    for j in &judged {
        if let Some(e) = &j.error {
            exit = exit.or(exit::explain(e.as_ref()).exit);
        }
    }
    match format {
        DryRun::Json => println!(
            "{}",
            serde_json::to_string_pretty(&as_json(plan, &judged, exit))
                .expect("JSON values serialize")
        ),
        DryRun::Text => print_text(plan, &judged),
    }
    exit
}

async fn judge<'a>(plan: &Plan, source: &'a PlannedSource) -> Judged<'a> {
    let mut judged = Judged {
        source,
        verdicts: Vec::new(),
        session: None,
        chosen: None,
        error: None,
    };
    if let Target::Ssh(node) = &source.target {
        match kcap_ssh::connect(&node.connect).await {
            Ok(session) => {
                judged.session = Some(session.describe());
                session.disconnect().await;
            }
            Err(e) => judged.error = Some(Box::new(e)),
        }
        return judged;
    }
    let Some(kube) = &plan.kube else {
        return judged;
    };
    for &method in source.target.methods() {
        let verdict = check(&kube.client, &source.target, method).await;
        if verdict.error.is_none() && judged.chosen.is_none() {
            judged.chosen = Some(method);
        }
        judged.verdicts.push(verdict);
    }
    if judged.chosen.is_none() {
        judged.error = Some(Box::new(no_method(source, &judged.verdicts)));
    }
    judged
}

/// The error a real run reports when no method works: the only method's own, all
/// RBAC refusals as one, else every method's reason.
fn no_method(source: &PlannedSource, verdicts: &[Verdict]) -> KubeError {
    let errors: Vec<&KubeError> = verdicts.iter().filter_map(|v| v.error.as_ref()).collect();
    match errors.as_slice() {
        [only] => (*only).clone(),
        [first, ..]
            if errors
                .iter()
                .all(|e| matches!(e, KubeError::Forbidden { .. })) =>
        {
            (*first).clone()
        }
        _ => KubeError::AllMethodsFailed {
            pod: source.label().to_string(),
            attempts: verdicts
                .iter()
                .filter_map(|v| Some((v.method, exit::chain(v.error.as_ref()?))))
                .collect(),
        },
    }
}

/// What `method` needs for `target`, asked of the API.
async fn check(client: &kube::Client, target: &Target, method: Method) -> Verdict {
    let mut verdict = Verdict {
        method,
        checks: Vec::new(),
        error: None,
    };
    let (namespace, pod_label, container) = match target {
        Target::Pod { pod, .. } => (pod.namespace.clone(), pod.label(), pod.container.clone()),
        Target::Node {
            namespace, name, ..
        } => (namespace.clone(), format!("node/{name}"), String::new()),
        Target::Ssh(_) => return verdict,
    };
    let needs: &[(&str, &str, Option<&str>)] = match method {
        Method::Exec => &[("create", "pods", Some("exec"))],
        Method::Ephemeral => &[
            ("patch", "pods", Some("ephemeralcontainers")),
            ("create", "pods", Some("attach")),
        ],
        Method::Node => &[
            ("create", "pods", None),
            ("create", "pods", Some("exec")),
            ("delete", "pods", None),
        ],
        Method::Ssh => &[],
    };
    for (verb, resource, sub) in needs {
        let name = match sub {
            Some(s) => format!("{resource}/{s}"),
            None => resource.to_string(),
        };
        match access::can_i(client, verb, resource, *sub, &namespace).await {
            Ok(true) => verdict.checks.push(format!("may {verb} {name}")),
            Ok(false) => {
                verdict.error.get_or_insert(KubeError::Forbidden {
                    verb: verb.to_string(),
                    resource: name.clone(),
                    namespace: namespace.clone(),
                    message: "SelfSubjectAccessReview: not allowed".into(),
                    source: None,
                });
                verdict.checks.push(format!("may not {verb} {name}"));
            }
            Err(e) => verdict.checks.push(format!(
                "may {verb} {name}: unknown, the API server did not answer the question ({e})"
            )),
        }
    }
    let level = match method {
        Method::Ephemeral | Method::Node => access::pod_security_enforce(client, &namespace)
            .await
            .ok()
            .flatten(),
        _ => None,
    };
    let restricting = level.as_deref().filter(|l| *l != "privileged");
    match method {
        Method::Exec => verdict.checks.push(format!(
            "needs sh and tcpdump in container {container}, and root or NET_RAW: known only by trying"
        )),
        Method::Ephemeral => {
            match access::has_ephemeral_containers(client).await {
                Ok(false) => {
                    verdict.error = Some(KubeError::EphemeralUnsupported {
                        pod: pod_label.clone(),
                        message: "the API server has no pods/ephemeralcontainers subresource (before Kubernetes 1.23?)".into(),
                        source: None,
                    });
                    verdict.checks.push("no ephemeral containers on this API server".into());
                }
                Ok(true) => verdict.checks.push("the API server has ephemeral containers".into()),
                Err(e) => verdict.checks.push(format!("cannot read discovery: {e}")),
            }
            if let Some(level) = restricting {
                verdict.error.get_or_insert(KubeError::EphemeralRejected {
                    pod: pod_label.clone(),
                    message: format!(
                        "adding capabilities NET_ADMIN, NET_RAW violates PodSecurity \"{level}:latest\" (namespace {namespace} is labelled {}={level})",
                        access::ENFORCE_LABEL
                    ),
                    source: None,
                });
                verdict.checks.push(format!("namespace enforces Pod Security {level}"));
            }
            verdict.checks.push("needs the --image to have sh and tcpdump: known only by trying".into());
        }
        Method::Node => {
            if let Some(level) = restricting {
                let node = match target {
                    Target::Pod { pod, .. } => pod.node.clone().unwrap_or_default(),
                    Target::Node { name, .. } => name.clone(),
                    Target::Ssh(_) => String::new(),
                };
                verdict.error.get_or_insert(KubeError::HelperRejected {
                    namespace: namespace.clone(),
                    node,
                    message: format!(
                        "a privileged hostNetwork/hostPID pod violates PodSecurity \"{level}:latest\" (namespace {namespace} is labelled {}={level})",
                        access::ENFORCE_LABEL
                    ),
                    source: None,
                });
                verdict.checks.push(format!("namespace enforces Pod Security {level}"));
            }
            verdict
                .checks
                .push(format!("needs the --image to have {}", from_node(target)));
        }
        Method::Ssh => verdict.checks.push(format!(
            "SSH to the node with the SSH flags; needs there {}",
            from_node(target)
        )),
    }
    verdict
}

/// What `--via node` and `--via ssh` need on the node, and the ways the node-side
/// script will try to reach the pod (which one answers is known only by trying).
fn from_node(target: &Target) -> String {
    let side = target.node_side();
    if side.container_id.is_empty() && side.pod_ip.is_empty() {
        return "sh and tcpdump (the node's own network): known only by trying".into();
    }
    let ip = if side.pod_ip.is_empty() {
        "?"
    } else {
        &side.pod_ip
    };
    let id = if side.container_id.is_empty() {
        "?"
    } else {
        &side.container_id
    };
    match side.point {
        CapturePoint::Netns => format!(
            "sh, tcpdump, nsenter and ip; the pod's network namespace is found by crictl \
             (container {id}), else netns by IP (the namespace holding {ip}), else cgroup (the \
             process whose /proc/PID/cgroup names the container): known only by trying"
        ),
        CapturePoint::Veth => format!(
            "sh, tcpdump and ip (and bridge on a bridge CNI); captures on the pod's host-side \
             veth in the node's namespace, found by the route to {ip} (or the bridge's \
             forwarding entry for its MAC): known only by trying"
        ),
    }
}

/// The command's words, the wrapper scripts shortened for reading.
fn readable_command(target: &Target, command: &CaptureCommand) -> String {
    let argv = command.to_argv(session_word(target)).unwrap_or_default();
    let words: Vec<String> = argv
        .iter()
        .map(|w| {
            if w == REMOTE_SCRIPT {
                "<kcap wrapper script>".to_string()
            } else {
                kcap_capture::quote::quote(w, "argument").unwrap_or_else(|_| format!("{w:?}"))
            }
        })
        .collect();
    let sudo = if command.sudo { "sudo -n " } else { "" };
    format!("{sudo}{}", words.join(" "))
}

/// What stands for the SSH session to exclude: expanded by the node's shell over
/// SSH; nothing to exclude through the Kubernetes API.
fn session_word(target: &Target) -> &'static str {
    match target {
        Target::Ssh(_) => "$SSH_CONNECTION",
        _ => "",
    }
}

fn print_text(plan: &Plan, judged: &[Judged<'_>]) {
    println!("kcap dry run: nothing was started, created, patched or exec'd.");
    println!(
        "filter: {}",
        plan.command
            .filter
            .as_deref()
            .unwrap_or("(none: every packet)")
    );
    if plan.command.process != ProcessMode::Off {
        println!(
            "process: {} (kcap's agent names each packet's process)",
            plan.command.process.name()
        );
    }
    for j in judged {
        println!();
        let s = j.source;
        match &s.target {
            Target::Ssh(node) => {
                println!("{} (ssh node)", node.label);
                match &j.session {
                    Some(session) => println!(
                        "  ssh: {session}: host key verified against known_hosts, logged in"
                    ),
                    None => println!("  ssh: cannot connect (see the error below)"),
                }
            }
            Target::Pod { pod, .. } => {
                println!(
                    "{} (pod) on node {}, container {}, pod IP {}{}",
                    pod.label(),
                    pod.node.as_deref().unwrap_or("?"),
                    pod.container,
                    pod.ip.as_deref().unwrap_or("?"),
                    if pod.host_network {
                        ", hostNetwork: captured on its node, filtered to its ports"
                    } else {
                        ""
                    }
                );
            }
            Target::Node {
                name, internal_ip, ..
            } => println!(
                "node/{name} (node) InternalIP {}",
                internal_ip.as_deref().unwrap_or("?")
            ),
        }
        for v in &j.verdicts {
            let verdict = if v.error.is_some() { "no" } else { "ok" };
            println!("  --via {}: {verdict}: {}", v.method, v.checks.join("; "));
        }
        if let Some(m) = j.chosen {
            println!("  would use: --via {m}");
        }
        println!("  interface: {}", s.info.interface_name);
        println!(
            "  filter: {}",
            s.command.filter.as_deref().unwrap_or("(none)")
        );
        if s.command.direction != kcap_capture::command::Direction::InOut {
            println!("  direction: {} (-Q)", s.command.direction.name());
        }
        println!("  command: {}", readable_command(&s.target, &s.command));
        if let Some(e) = &j.error {
            crate::report::error(Some(s.label()), e.as_ref());
        }
    }
    for failed in &plan.failed {
        crate::report::error(Some(&failed.label), &failed.error);
    }
}

fn error_json(error: &(dyn std::error::Error + 'static)) -> Value {
    let explained = exit::explain(error);
    json!({
        "message": exit::chain(error),
        "hint": explained.hint,
        "exit_code": explained.exit.code(),
    })
}

fn as_json(plan: &Plan, judged: &[Judged<'_>], exit: Exit) -> Value {
    let sources: Vec<Value> = judged
        .iter()
        .map(|j| {
            let s = j.source;
            let mut v = match &s.target {
                Target::Ssh(node) => json!({
                    "kind": "ssh",
                    "label": node.label,
                    "session": j.session,
                    "host_key": if j.session.is_some() { "verified" } else { "see error" },
                }),
                Target::Pod { pod, point, .. } => json!({
                    "kind": "pod",
                    "capture_point": point.name(),
                    "label": pod.label(),
                    "namespace": pod.namespace,
                    "name": pod.name,
                    "node": pod.node,
                    "container": pod.container,
                    "container_id": pod.container_id,
                    "pod_ip": pod.ip,
                    "host_network": pod.host_network,
                }),
                Target::Node {
                    name,
                    internal_ip,
                    namespace,
                    ..
                } => json!({
                    "kind": "node",
                    "label": format!("node/{name}"),
                    "name": name,
                    "internal_ip": internal_ip,
                    "helper_namespace": namespace,
                }),
            };
            v["methods"] = j
                .verdicts
                .iter()
                .map(|m| {
                    json!({
                        "method": m.method.name(),
                        "ok": m.error.is_none(),
                        "checks": m.checks,
                        "error": m.error.as_ref().map(|e| error_json(e)),
                    })
                })
                .collect();
            v["method"] = json!(j.chosen.map(|m| m.name()));
            v["interface"] = json!(s.info.interface_name);
            v["filter"] = json!(s.command.filter);
            v["direction"] = json!(s.command.direction.name());
            v["argv"] = json!(
                s.command
                    .to_argv(session_word(&s.target))
                    .unwrap_or_default()
            );
            v["error"] = j
                .error
                .as_ref()
                .map(|e| error_json(e.as_ref()))
                .unwrap_or(Value::Null);
            v
        })
        .collect();
    let failed: Vec<Value> = plan
        .failed
        .iter()
        .map(|f| {
            let mut v = error_json(&f.error);
            v["label"] = json!(f.label);
            v
        })
        .collect();
    json!({
        "dry_run": true,
        "filter": plan.command.filter,
        "process": plan.command.process.name(),
        "sources": sources,
        "failed": failed,
        "exit_code": exit.code(),
    })
}
