//! The plan: everything a run will do, learned by connecting to the cluster once
//! and fixed before anything is captured. Pod tokens of `--filter` are expanded,
//! every target is resolved to pods and nodes, and each source gets its final
//! remote command and the `--via` methods it may use, in order. `--dry-run` prints
//! the plan ([`crate::dry_run`]), a real run executes it ([`crate::run`]), the
//! report reads it ([`crate::report`]). Nothing here starts, creates or execs.

use std::collections::HashSet;
use std::sync::Arc;

use kcap_capture::command::{CaptureCommand, ProcessMode};
use kcap_capture::filter::{FilterSpec, Protocol};
use kcap_kube::Method;
use kcap_kube::methods::{AUTO_ORDER, CapturePoint, NodeSide};
use kcap_kube::pod::PodTarget;
use kcap_kube::resolve::{self, Resolved, Scope};

use crate::config::{Config, KubeSettings, NodeTarget, Via};
use crate::event::SourceInfo;
use crate::names::NameTable;
use kcap_kube::names::AddressName;

/// What a run captures.
pub struct Plan {
    /// The sources given at the start; a source's id is its index.
    pub sources: Vec<PlannedSource>,
    /// Targets that cannot be captured (not found, not running, ...): reported,
    /// while the others go on.
    pub failed: Vec<FailedTarget>,
    /// The Kubernetes side, when there is one.
    pub kube: Option<KubePlan>,
    /// The remote command every source starts from, its filter final (pod tokens
    /// expanded); a hostNetwork pod's own command adds its ports to the filter.
    pub command: CaptureCommand,
    /// Names for addresses in `--print` lines (empty unless they are printed).
    pub names: Arc<NameTable>,
    /// Every `-i`: each target has one source per interface (pods that join
    /// later with `--follow` too).
    pub interfaces: Vec<String>,
}

/// A target that resolved to nothing capturable.
#[derive(Debug)]
pub struct FailedTarget {
    /// As the user named it: `deploy/web`, `-l app=x`, `pod/NAME`.
    pub label: String,
    pub error: kcap_kube::Error,
}

/// The cluster connection and what `--follow` watches.
pub struct KubePlan {
    pub client: kube::Client,
    pub settings: KubeSettings,
    /// Label selectors to watch with `--follow`: (namespace, or `None` for all; selector).
    pub watch: Vec<(Option<String>, String)>,
}

/// One source: where, how, and the exact command it runs.
#[derive(Debug, Clone)]
pub struct PlannedSource {
    pub target: Target,
    pub info: SourceInfo,
    /// The remote command with its final filter.
    pub command: CaptureCommand,
}

#[derive(Debug, Clone)]
pub enum Target {
    /// An SSH node (`--ssh-host`).
    Ssh(NodeTarget),
    /// A pod through the API, with the methods to try in order, and where the
    /// node methods capture it (`--capture-point`).
    Pod {
        pod: PodTarget,
        methods: Vec<Method>,
        point: CapturePoint,
    },
    /// A node through the API (`node/NAME`).
    Node {
        name: String,
        internal_ip: Option<String>,
        /// Where its helper pod would run.
        namespace: String,
        methods: Vec<Method>,
    },
}

impl Target {
    /// The `--via` methods this target may use, in order (none for SSH nodes).
    pub fn methods(&self) -> &[Method] {
        match self {
            Target::Ssh(_) => &[],
            Target::Pod { methods, .. } | Target::Node { methods, .. } => methods,
        }
    }

    /// The node it runs on (for `--via node` and `--via ssh`).
    pub fn node(&self) -> String {
        match self {
            Target::Pod { pod, .. } => pod.node.clone().unwrap_or_default(),
            Target::Node { name, .. } => name.clone(),
            Target::Ssh(node) => node.label.clone(),
        }
    }

    /// Where the capture runs, seen from the node: the pod's network (its
    /// container ID and IP, found by the node-side script) or the node's own
    /// (nodes and hostNetwork pods: nothing to find).
    pub fn node_side(&self) -> NodeSide {
        match self {
            Target::Pod { pod, point, .. } if !pod.host_network => NodeSide {
                container_id: pod.container_id.clone().unwrap_or_default(),
                pod_ip: pod.ip.clone().unwrap_or_default(),
                point: *point,
            },
            _ => NodeSide::default(),
        }
    }
}

impl PlannedSource {
    /// An SSH node.
    pub fn ssh(node: NodeTarget, command: CaptureCommand) -> PlannedSource {
        let target = Target::Ssh(node);
        let info = describe(&target, &command.interface, None, false);
        PlannedSource {
            target,
            info,
            command,
        }
    }

    /// A pod: a hostNetwork pod is captured on its node, filtered to its ports.
    pub fn pod(pod: PodTarget, base: &CaptureCommand, settings: &KubeSettings) -> PlannedSource {
        let mut command = base.clone();
        let methods = if pod.host_network {
            command.filter = FilterSpec {
                ports: pod.ports.clone(),
                protocol: Protocol::All,
                expression: command.filter.take(),
            }
            .to_bpf();
            node_methods(settings.via)
        } else {
            match settings.via {
                // Only the node's methods reach the host-side veth.
                Via::Auto if settings.capture_point == CapturePoint::Veth => vec![Method::Node],
                // kcap's agent attributes processes from the node.
                Via::Auto if base.process != ProcessMode::Off => vec![Method::Node],
                Via::Auto => AUTO_ORDER.to_vec(),
                Via::Only(m) => vec![m],
            }
        };
        let target = Target::Pod {
            pod,
            methods,
            point: settings.capture_point,
        };
        let info = describe(&target, &command.interface, None, settings.annotate);
        PlannedSource {
            target,
            info,
            command,
        }
    }

    /// A pod on each of `interfaces` (see [`per_interface`]).
    pub fn pods(
        pod: PodTarget,
        base: &CaptureCommand,
        settings: &KubeSettings,
        interfaces: &[String],
    ) -> Vec<PlannedSource> {
        per_interface(base, interfaces, |command| {
            PlannedSource::pod(pod.clone(), command, settings)
        })
    }

    /// Whether this is the Kubernetes node `name` (not an SSH node or a pod).
    fn is_node(&self, node: &str) -> bool {
        matches!(&self.target, Target::Node { name, .. } if name == node)
    }

    fn node(
        name: String,
        internal_ip: Option<String>,
        namespace: String,
        base: &CaptureCommand,
        settings: &KubeSettings,
    ) -> PlannedSource {
        let target = Target::Node {
            name,
            internal_ip,
            namespace,
            methods: node_methods(settings.via),
        };
        let info = describe(&target, &base.interface, None, settings.annotate);
        PlannedSource {
            target,
            info,
            command: base.clone(),
        }
    }

    /// `prod/web-0`, `node/worker-1`, `node-a`.
    pub fn label(&self) -> &str {
        &self.info.label
    }
}

/// One source per interface (several `-i`), each made by `make` from `base` with
/// its interface. With more than one, each label names its interface too
/// (`node-a:eth0`, `prod/web-0:lo`), so messages and the summary tell them apart.
fn per_interface(
    base: &CaptureCommand,
    interfaces: &[String],
    mut make: impl FnMut(&CaptureCommand) -> PlannedSource,
) -> Vec<PlannedSource> {
    interfaces
        .iter()
        .map(|iface| {
            let command = CaptureCommand {
                interface: iface.clone(),
                ..base.clone()
            };
            let mut source = make(&command);
            if interfaces.len() > 1 {
                source.info.label = format!("{}:{iface}", source.info.label);
            }
            source
        })
        .collect()
}

fn node_methods(via: Via) -> Vec<Method> {
    match via {
        Via::Only(Method::Ssh) => vec![Method::Ssh],
        _ => vec![Method::Node],
    }
}

/// The file's names for a Kubernetes source (the method is filled in once known).
pub fn describe(
    target: &Target,
    iface: &str,
    method: Option<Method>,
    annotate: bool,
) -> SourceInfo {
    let via = method.map(|m| m.name()).unwrap_or("?");
    match target {
        Target::Pod { pod: p, .. } => {
            let node = p.node.as_deref().unwrap_or("?");
            SourceInfo {
                label: p.label(),
                point: p.label(),
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
                // hostNetwork pods share the node's address: it stays the node's.
                names: p
                    .ip
                    .as_deref()
                    .and_then(|ip| ip.parse().ok())
                    .filter(|_| !p.host_network)
                    .map(|ip| {
                        let name = AddressName::Pod {
                            namespace: p.namespace.clone(),
                            name: p.name.clone(),
                        };
                        vec![(ip, name)]
                    })
                    .unwrap_or_default(),
            }
        }
        Target::Node { name, .. } => SourceInfo {
            label: format!("node/{name}"),
            point: format!("{name}:{iface}"),
            interface_name: format!("node/{name}/{iface}"),
            description: format!("node {name}, via {via}"),
            comment: annotate.then(|| format!("NodeName: {name}")),
            names: Vec::new(),
        },
        Target::Ssh(node) => SourceInfo {
            label: node.label.clone(),
            point: format!("{}:{iface}", node.label),
            interface_name: format!("{}:{iface}", node.label),
            description: format!("{} via ssh, interface {iface}", node.label),
            comment: None,
            names: Vec::new(),
        },
    }
}

/// `info` once the node-side script told how it found the pod's network (`way`:
/// `crictl`, `netns by IP`, `cgroup`, `veth caliXXXX`): the description says so,
/// and a capture on the host-side veth is named after that interface.
pub fn found_by(info: &SourceInfo, way: &str) -> SourceInfo {
    let mut info = info.clone();
    info.description = format!("{} ({way})", info.description);
    if let Some(veth) = way.strip_prefix("veth ")
        && let Some((pod, _)) = info.interface_name.rsplit_once('/')
    {
        info.interface_name = format!("{pod}/{veth}");
    }
    info
}

/// Builds the plan. Kubernetes targets that fail are kept as [`FailedTarget`]s
/// while others remain; if nothing at all remains, the first failure is the error.
pub async fn build(config: &Config) -> Result<Plan, kcap_kube::Error> {
    let mut filter = config.filter.to_bpf();
    let mut sources = Vec::new();
    let mut failed = Vec::new();
    let mut kube = None;
    let mut names = NameTable::default();
    if let Some(settings) = &config.kube {
        let cluster = kcap_kube::client::connect(&settings.client).await?;
        let namespace = settings
            .namespace
            .clone()
            .unwrap_or(cluster.default_namespace.clone());
        let scope = Scope {
            client: cluster.client.clone(),
            namespace: namespace.clone(),
            all_namespaces: settings.all_namespaces,
            node_selector: settings.node_selector.clone(),
        };
        if let Some(expression) = &config.filter.expression
            && !kcap_kube::filter_tokens::find(expression)?.is_empty()
        {
            let expanded = scope.expand_filter(expression).await?;
            tracing::info!("kcap: --filter: {expanded}");
            filter = FilterSpec {
                expression: Some(expanded),
                ..config.filter.clone()
            }
            .to_bpf();
        }
        // Names for the lines, the records, and a pcapng file's name records.
        let file_names = settings.annotate
            && config
                .output
                .as_ref()
                .is_some_and(|o| o.format == crate::config::Format::Pcapng);
        if config.print.is_some_and(|p| p.names) || file_names || config.records.is_some() {
            let scope = (!settings.all_namespaces).then_some(namespace.as_str());
            let found = kcap_kube::names::cluster_names(&cluster.client, scope).await;
            names = NameTable::new(&found);
            tracing::debug!("kcap: {} addresses have names", names.len());
        }
        let base = config.capture_command(filter.clone());
        let interfaces = &config.capture.interfaces;
        let (found, watch) =
            resolve_targets(&scope, settings, &base, interfaces, &mut failed).await;
        sources.extend(found);
        kube = Some(KubePlan {
            client: cluster.client,
            settings: settings.clone(),
            watch: if settings.follow { watch } else { Vec::new() },
        });
    }
    let command = config.capture_command(filter);
    let ssh: Vec<PlannedSource> = config
        .nodes
        .iter()
        .flat_map(|n| {
            per_interface(&command, &config.capture.interfaces, |c| {
                PlannedSource::ssh(n.clone(), c.clone())
            })
        })
        .collect();
    // SSH nodes first: their ids are the order the user gave them.
    let sources: Vec<PlannedSource> = ssh.into_iter().chain(sources).collect();
    let will_follow = kube.as_ref().is_some_and(|k| !k.watch.is_empty());
    if sources.is_empty() && !will_follow {
        if !failed.is_empty() {
            return Err(failed.swap_remove(0).error);
        }
        if config.kube.is_some() {
            return Err(kcap_kube::Error::NoPods {
                what: "the targets".into(),
            });
        }
    }
    Ok(Plan {
        sources,
        failed,
        kube,
        command,
        names: Arc::new(names),
        interfaces: config.capture.interfaces.clone(),
    })
}

/// Every target and `-l` resolved to sources; failures go to `failed`. Also
/// returns the selectors `--follow` would watch.
async fn resolve_targets(
    scope: &Scope,
    settings: &KubeSettings,
    base: &CaptureCommand,
    interfaces: &[String],
    failed: &mut Vec<FailedTarget>,
) -> (Vec<PlannedSource>, Vec<(Option<String>, String)>) {
    let mut sources = Vec::new();
    let mut watch = Vec::new();
    let mut pods = Vec::new();
    for target in &settings.targets {
        match scope.resolve(target).await {
            Ok(Resolved::Pods {
                pods: found,
                selector,
            }) => {
                pods.extend(found);
                watch.extend(selector);
            }
            Ok(Resolved::Nodes(nodes)) => {
                for node in nodes {
                    let name = node.metadata.name.clone().unwrap_or_default();
                    // node/all and node/NAME together: each node once.
                    if sources.iter().any(|s: &PlannedSource| s.is_node(&name)) {
                        continue;
                    }
                    let internal_ip = resolve::internal_ip(&node);
                    sources.extend(per_interface(base, interfaces, |command| {
                        PlannedSource::node(
                            name.clone(),
                            internal_ip.clone(),
                            scope.namespace.clone(),
                            command,
                            settings,
                        )
                    }));
                }
            }
            Err(error) => failed.push(FailedTarget {
                label: target.to_string(),
                error,
            }),
        }
    }
    if let Some(selector) = &settings.selector {
        let label = format!("-l {selector}");
        let ns = (!settings.all_namespaces).then(|| scope.namespace.clone());
        match scope.pods_by_selector(ns.as_deref(), selector).await {
            Ok(found) if found.is_empty() && !settings.follow => failed.push(FailedTarget {
                label,
                error: kcap_kube::Error::NoPods {
                    what: format!("selector {selector}"),
                },
            }),
            Ok(found) => pods.extend(found),
            Err(error) => failed.push(FailedTarget { label, error }),
        }
        watch.push((ns, selector.clone()));
    }
    let mut seen = HashSet::new();
    for p in pods {
        match PodTarget::from_pod(&p, settings.container.as_deref()) {
            Ok(t) if !seen.insert(t.label()) => {}
            Ok(t) => match t.check_running() {
                Ok(()) => sources.extend(PlannedSource::pods(t, base, settings, interfaces)),
                Err(error) => failed.push(FailedTarget {
                    label: t.label(),
                    error,
                }),
            },
            Err(error) => failed.push(FailedTarget {
                label: format!("pod/{}", p.metadata.name.unwrap_or_default()),
                error,
            }),
        }
    }
    (sources, watch)
}
