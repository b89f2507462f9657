//! What a test bed should look like: networks, hosts and their addresses.
//!
//! A [`Spec`] is pure data; `topology` turns it into namespaces and links. The
//! constructors encode the standard layouts so tests only pick one.

use std::collections::{HashSet, VecDeque};
use std::net::Ipv4Addr;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

pub use crate::scenario::{SECURE_NAMESPACE, Scenario};

/// Name of the host the API server runs on in [`Spec::cluster`].
pub const CONTROL_PLANE: &str = "control-plane";
/// Its address on `lan`; the API server listens on port [`API_PORT`] there.
pub const CONTROL_PLANE_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 5);
pub const API_PORT: u16 = 6443;

/// What a host is for; decides which daemons it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The workstation kcap runs on: no sshd, only a traffic client.
    Client,
    /// An SSH jump host (bastion): sshd with TCP forwarding.
    Jump,
    /// A capture target (a Kubernetes node later): sshd, HTTP/DNS servers.
    Node,
    /// The Kubernetes control plane: the API server listens in its namespace
    /// (sshd only, no traffic generator, no pods).
    ControlPlane,
}

/// One layer-2 segment (a bridge in its own switch namespace).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    pub name: String,
    pub subnet: Ipv4Addr,
    pub prefix_len: u8,
}

/// One host: its role and one address per network it is attached to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    pub name: String,
    pub role: Role,
    /// `(network, address)`; the first entry is the primary address.
    pub addresses: Vec<(String, Ipv4Addr)>,
    /// Jump hosts to reach this host from the client; computed by
    /// [`Spec::complete`] when left empty.
    pub proxy_jump: Vec<String>,
    /// Hosts this host sends HTTP + DNS traffic to; computed when `None`.
    pub traffic_to: Option<Vec<String>>,
    /// Programs that look different on this host than on the machine (see
    /// [`ToolOverride`]), e.g. a node without tcpdump.
    pub tools: Vec<ToolOverride>,
    /// Pod networking of a Kubernetes-like node (`None`: the node runs no pods).
    pub pods: Option<PodNetworkSpec>,
}

/// How a node wires its pods, after the two families of real CNI plugins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cni {
    /// flannel-like: bridge `cni0` (first address of the pod CIDR) and one
    /// `veth<8 hex>` per pod on it; pods get a /24 and route via the bridge.
    Bridge,
    /// Calico-like: one `cali<11 hex>` per pod, a /32 route to the pod on the node,
    /// pods get a /32 and a default route via 169.254.1.1 (answered by proxy ARP).
    Routed,
}

/// A node's pod network: its CNI style and pod CIDR (a /24 in 10.0.0.0/8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodNetworkSpec {
    pub cni: Cni,
    /// Network address of the node's /24, e.g. 10.244.0.0.
    pub pod_cidr: Ipv4Addr,
}

/// What a program (looked up by name in the system's bin directories) is on one
/// host. Applied with bind mounts in the private mount namespace of that host's sshd,
/// so every SSH session there sees it and the machine's own files stay untouched.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ToolOverride {
    pub name: String,
    /// `None` hides the program (nothing executable by that name); `Some(path)`
    /// puts that executable in its place (e.g. a stand-in that replays a file).
    pub replacement: Option<std::path::PathBuf>,
}

/// A whole test bed. `Spec::default()` is the standard three-network layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub networks: Vec<NetworkSpec>,
    pub hosts: Vec<HostSpec>,
    /// Run the traffic generators (HTTP on 80, DNS-like UDP on 53).
    pub traffic: bool,
    /// Fixed namespace prefix (e.g. `kcap-tb` for the CLI bed); `None` means
    /// a unique `kcap-<pid>-<n>` so beds can run in parallel.
    pub name_prefix: Option<String>,
    /// Run a Kubernetes API server on the `control-plane` host with these
    /// workloads (set by [`Spec::cluster`]).
    pub api_server: Option<Scenario>,
}

fn net(name: &str, subnet: [u8; 4], prefix_len: u8) -> NetworkSpec {
    NetworkSpec {
        name: name.into(),
        subnet: subnet.into(),
        prefix_len,
    }
}

fn host(name: &str, role: Role, addresses: &[(&str, [u8; 4])]) -> HostSpec {
    HostSpec {
        name: name.into(),
        role,
        addresses: addresses
            .iter()
            .map(|(n, a)| (n.to_string(), Ipv4Addr::from(*a)))
            .collect(),
        proxy_jump: Vec::new(),
        traffic_to: None,
        tools: Vec::new(),
        pods: None,
    }
}

impl Default for Spec {
    /// lan (client, bastion, node-a, node-b), dmz (bastion, inner-jump) and
    /// private (inner-jump, node-c): node-c needs two jumps.
    fn default() -> Self {
        let mut spec = Spec::minimal();
        spec.networks.push(net("dmz", [203, 0, 113, 0], 26));
        spec.networks.push(net("private", [203, 0, 113, 64], 26));
        spec.hosts[1]
            .addresses
            .push(("dmz".into(), [203, 0, 113, 2].into()));
        spec.hosts.push(host(
            "inner-jump",
            Role::Jump,
            &[("dmz", [203, 0, 113, 3]), ("private", [203, 0, 113, 66])],
        ));
        spec.hosts.push(host(
            "node-c",
            Role::Node,
            &[("private", [203, 0, 113, 70])],
        ));
        spec
    }
}

impl Spec {
    /// client, bastion, node-a and node-b on `lan` only: quick to start.
    pub fn minimal() -> Self {
        Spec::lan(2)
    }

    /// client + bastion + `nodes` nodes (node-a, node-b, ...) on `lan`
    /// 198.51.100.0/24, nodes from .10 upwards.
    pub fn lan(nodes: usize) -> Self {
        assert!((1..=26).contains(&nodes), "1..=26 nodes supported");
        let mut hosts = vec![
            host("client", Role::Client, &[("lan", [198, 51, 100, 1])]),
            host("bastion", Role::Jump, &[("lan", [198, 51, 100, 2])]),
        ];
        for i in 0..nodes {
            let name = format!("node-{}", (b'a' + i as u8) as char);
            hosts.push(host(
                &name,
                Role::Node,
                &[("lan", [198, 51, 100, 10 + i as u8])],
            ));
        }
        Spec {
            networks: vec![net("lan", [198, 51, 100, 0], 24)],
            hosts,
            traffic: true,
            name_prefix: None,
            api_server: None,
        }
    }

    /// [`Spec::lan`] with pod networking on every node, CNI styles alternating:
    /// node-a bridge 10.244.0.0/24, node-b routed 10.244.1.0/24, node-c bridge
    /// 10.244.2.0/24, ..., plus a `control-plane` host (198.51.100.5) whose
    /// Kubernetes API server (https://198.51.100.5:6443) starts the pods of the
    /// default [`Scenario`]. See [`Testbed::kubectl`]; without the API server
    /// ([`Spec::without_api_server`]) pods are started through [`Testbed::runtime`].
    ///
    /// [`Testbed::runtime`]: crate::Testbed::runtime
    /// [`Testbed::kubectl`]: crate::Testbed::kubectl
    pub fn cluster(nodes: usize) -> Self {
        let mut spec = Spec::lan(nodes);
        spec.hosts.push(host(
            CONTROL_PLANE,
            Role::ControlPlane,
            &[("lan", CONTROL_PLANE_ADDRESS.octets())],
        ));
        spec.api_server = Some(Scenario::default());
        for (i, h) in spec
            .hosts
            .iter_mut()
            .filter(|h| h.role == Role::Node)
            .enumerate()
        {
            let cni = if i % 2 == 0 { Cni::Bridge } else { Cni::Routed };
            h.pods = Some(PodNetworkSpec {
                cni,
                pod_cidr: Ipv4Addr::new(10, 244, i as u8, 0),
            });
        }
        spec
    }

    /// Gives node `host` a pod network (or changes its CNI style / CIDR).
    pub fn with_pod_network(mut self, host: &str, cni: Cni, pod_cidr: Ipv4Addr) -> Self {
        let h = self
            .hosts
            .iter_mut()
            .find(|h| h.name == host)
            .unwrap_or_else(|| panic!("no host {host} in the spec"));
        h.pods = Some(PodNetworkSpec { cni, pod_cidr });
        self
    }

    /// No API server (the `control-plane` host stays, idle): tests that drive
    /// [`Testbed::runtime`](crate::Testbed::runtime) directly and count on an
    /// empty cluster (first pod on node-a gets 10.244.0.2).
    pub fn without_api_server(mut self) -> Self {
        self.api_server = None;
        self
    }

    /// Scales the default scenario: `web` gets `k` replicas per node.
    pub fn with_pods_per_node(mut self, k: usize) -> Self {
        let nodes = self.hosts.iter().filter(|h| h.pods.is_some()).count();
        if let Some(s) = &mut self.api_server {
            s.web_replicas = k * nodes.max(1);
        }
        self
    }

    /// Adds the Pod Security scenario: namespace `secure` enforcing `baseline`, with
    /// pod `app` (see [`Scenario::pod_security`]).
    pub fn with_pod_security(mut self) -> Self {
        if let Some(s) = &mut self.api_server {
            s.pod_security = true;
        }
        self
    }

    /// An API server without `pods/ephemeralcontainers` (404, as an old cluster).
    pub fn without_ephemeral_containers(mut self) -> Self {
        if let Some(s) = &mut self.api_server {
            s.ephemeral_containers = false;
        }
        self
    }

    /// Use fixed namespace names `<prefix>-<role>` (for humans / the CLI).
    pub fn with_name_prefix(mut self, prefix: &str) -> Self {
        self.name_prefix = Some(prefix.into());
        self
    }

    /// Hides (`replacement: None`) or replaces program `tool` on `host`.
    pub fn with_tool(
        mut self,
        host: &str,
        tool: &str,
        replacement: Option<std::path::PathBuf>,
    ) -> Self {
        let h = self
            .hosts
            .iter_mut()
            .find(|h| h.name == host)
            .unwrap_or_else(|| panic!("no host {host} in the spec"));
        h.tools.push(ToolOverride {
            name: tool.into(),
            replacement,
        });
        self
    }

    /// Do not start traffic generators.
    pub fn without_traffic(mut self) -> Self {
        self.traffic = false;
        self
    }

    pub fn host(&self, name: &str) -> Option<&HostSpec> {
        self.hosts.iter().find(|h| h.name == name)
    }

    fn client(&self) -> Result<&HostSpec> {
        let mut clients = self.hosts.iter().filter(|h| h.role == Role::Client);
        match (clients.next(), clients.next()) {
            (Some(c), None) => Ok(c),
            _ => bail!("a spec needs exactly one host with Role::Client"),
        }
    }

    /// Checks names/addresses and fills in `proxy_jump` and `traffic_to`.
    pub(crate) fn complete(mut self) -> Result<Self> {
        self.validate()?;
        let jumps = self.jump_chains()?;
        let traffic = self.default_traffic();
        for h in &mut self.hosts {
            if h.proxy_jump.is_empty() {
                h.proxy_jump = jumps
                    .iter()
                    .find(|(n, _)| *n == h.name)
                    .map(|(_, c)| c.clone())
                    .unwrap_or_default();
            }
            if h.traffic_to.is_none() {
                h.traffic_to = Some(
                    traffic
                        .iter()
                        .filter(|(from, _)| *from == h.name)
                        .map(|(_, to)| to.clone())
                        .collect(),
                );
            }
        }
        Ok(self)
    }

    fn validate(&self) -> Result<()> {
        if let Some(n) = self.networks.iter().find(|n| n.prefix_len > 30) {
            bail!("network {} needs a prefix length of at most 30", n.name);
        }
        let mut names = HashSet::new();
        for h in &self.hosts {
            if !names.insert(h.name.as_str()) {
                bail!("duplicate host name {}", h.name);
            }
            // Host names become namespace suffixes and veth names.
            if h.name.len() > 15
                || !h
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                bail!("host name {:?} must be <= 15 chars of [a-zA-Z0-9-]", h.name);
            }
            if h.addresses.is_empty() {
                bail!("host {} has no address", h.name);
            }
            for (network, addr) in &h.addresses {
                let Some(n) = self.networks.iter().find(|n| &n.name == network) else {
                    bail!("host {} uses unknown network {network}", h.name);
                };
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(n.prefix_len))
                    .unwrap_or(0);
                if u32::from(*addr) & mask != u32::from(n.subnet) & mask {
                    bail!(
                        "{} address {addr} is outside {}/{}",
                        h.name,
                        n.subnet,
                        n.prefix_len
                    );
                }
            }
        }
        self.client()?;
        if self.api_server.is_some() && self.host(CONTROL_PLANE).is_none() {
            bail!("an API server needs a host named {CONTROL_PLANE}");
        }
        self.validate_pod_networks()
    }

    /// Pod CIDRs must be distinct /24s inside 10.0.0.0/8 (never the documentation
    /// ranges the bed's own networks use) and only nodes run pods.
    fn validate_pod_networks(&self) -> Result<()> {
        let mut cidrs = HashSet::new();
        for h in &self.hosts {
            let Some(p) = &h.pods else { continue };
            if h.role != Role::Node {
                bail!("only nodes run pods, not {}", h.name);
            }
            let o = p.pod_cidr.octets();
            if o[0] != 10 || o[3] != 0 {
                bail!(
                    "{}: pod CIDR {}/24 must be a /24 in 10.0.0.0/8",
                    h.name,
                    p.pod_cidr
                );
            }
            if !cidrs.insert(p.pod_cidr) {
                bail!("pod CIDR {}/24 is used by two nodes", p.pod_cidr);
            }
        }
        Ok(())
    }

    fn shares_network(a: &HostSpec, b: &HostSpec) -> bool {
        a.addresses
            .iter()
            .any(|(n, _)| b.addresses.iter().any(|(m, _)| m == n))
    }

    /// Breadth-first search from the client through jump hosts: the
    /// shortest chain of jumps to every SSH host.
    fn jump_chains(&self) -> Result<Vec<(String, Vec<String>)>> {
        let client = self.client()?;
        let mut chains: Vec<(String, Vec<String>)> = Vec::new();
        let mut queue: VecDeque<(&HostSpec, Vec<String>)> = VecDeque::from([(client, Vec::new())]);
        let mut seen: HashSet<&str> = HashSet::from([client.name.as_str()]);
        while let Some((from, chain)) = queue.pop_front() {
            for h in &self.hosts {
                if seen.contains(h.name.as_str()) || !Self::shares_network(from, h) {
                    continue;
                }
                seen.insert(&h.name);
                chains.push((h.name.clone(), chain.clone()));
                if h.role == Role::Jump {
                    let mut next = chain.clone();
                    next.push(h.name.clone());
                    queue.push_back((h, next));
                }
            }
        }
        if let Some(h) = self.hosts.iter().find(|h| !seen.contains(h.name.as_str())) {
            bail!(
                "host {} is unreachable from the client, even through jump hosts",
                h.name
            );
        }
        Ok(chains)
    }

    /// Every node gets traffic: from the client if they share a network,
    /// otherwise from a jump host next to it; the first node of a network
    /// also talks to the other nodes there (node-a -> node-b).
    fn default_traffic(&self) -> Vec<(String, String)> {
        let client = self.client().expect("validated");
        let nodes: Vec<&HostSpec> = self.hosts.iter().filter(|h| h.role == Role::Node).collect();
        let mut pairs = Vec::new();
        for node in &nodes {
            let source = if Self::shares_network(client, node) {
                Some(client)
            } else {
                self.hosts
                    .iter()
                    .find(|h| h.role == Role::Jump && Self::shares_network(h, node))
            };
            if let Some(s) = source {
                pairs.push((s.name.clone(), node.name.clone()));
            }
        }
        for network in &self.networks {
            let on_net: Vec<&&HostSpec> = nodes
                .iter()
                .filter(|n| n.addresses.iter().any(|(m, _)| *m == network.name))
                .collect();
            if let Some((first, rest)) = on_net.split_first() {
                pairs.extend(rest.iter().map(|n| (first.name.clone(), n.name.clone())));
            }
        }
        pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_completes_with_two_jumps_to_node_c() {
        let spec = Spec::default().complete().unwrap();
        assert_eq!(
            spec.host("node-c").unwrap().proxy_jump,
            ["bastion", "inner-jump"]
        );
        assert_eq!(spec.host("inner-jump").unwrap().proxy_jump, ["bastion"]);
        assert!(spec.host("node-a").unwrap().proxy_jump.is_empty());
        assert_eq!(
            spec.host("client").unwrap().traffic_to.as_deref().unwrap(),
            ["node-a", "node-b"]
        );
        assert_eq!(
            spec.host("node-a").unwrap().traffic_to.as_deref().unwrap(),
            ["node-b"]
        );
        assert_eq!(
            spec.host("inner-jump")
                .unwrap()
                .traffic_to
                .as_deref()
                .unwrap(),
            ["node-c"]
        );
    }

    #[test]
    fn cluster_spec_alternates_cni_styles() {
        let spec = Spec::cluster(3).complete().unwrap();
        let pods = |n: &str| spec.host(n).unwrap().pods.unwrap();
        assert_eq!(pods("node-a").cni, Cni::Bridge);
        assert_eq!(pods("node-a").pod_cidr, Ipv4Addr::new(10, 244, 0, 0));
        assert_eq!(pods("node-b").cni, Cni::Routed);
        assert_eq!(pods("node-b").pod_cidr, Ipv4Addr::new(10, 244, 1, 0));
        assert_eq!(pods("node-c").cni, Cni::Bridge);
        assert!(spec.host("client").unwrap().pods.is_none());
        let clash =
            Spec::cluster(2).with_pod_network("node-b", Cni::Bridge, [10, 244, 0, 0].into());
        assert!(clash.complete().is_err());
    }

    #[test]
    fn rejects_addresses_outside_their_network() {
        let mut spec = Spec::minimal();
        spec.hosts[2].addresses[0].1 = [10, 0, 0, 1].into();
        assert!(spec.complete().is_err());
    }
}
