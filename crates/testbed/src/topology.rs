//! The concrete model of a running bed: which namespace each host and
//! switch lives in and which veth connects them. `plan` derives it from a
//! [`Spec`]; `build_*` creates it with `ip`.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::netns;
use crate::spec::{Role, Spec};

/// A layer-2 network: a bridge `br0` inside its own switch namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    pub netns: String,
    pub subnet: Ipv4Addr,
    pub prefix_len: u8,
}

/// One cable: `ifname` in the host namespace, `peer` on the bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub network: String,
    pub ifname: String,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub switch_netns: String,
    pub peer: String,
}

/// A machine of the bed (client, jump host or node), i.e. one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub name: String,
    pub netns: String,
    pub role: Role,
    /// `(network, address)` in spec order; the first is the primary one.
    pub addresses: Vec<(String, Ipv4Addr)>,
    pub links: Vec<Link>,
    /// Jump hosts the client goes through (empty if directly reachable).
    pub proxy_jump: Vec<String>,
    /// The address the previous hop (client or last jump) connects to.
    pub ssh_address: Ipv4Addr,
    /// Hosts this host sends traffic to.
    pub traffic_to: Vec<String>,
    /// Per-host files (sshd config, host keys, logs): `DIR/<name>`.
    pub dir: PathBuf,
    /// Programs hidden or replaced on this host.
    pub tools: Vec<crate::spec::ToolOverride>,
    /// Pod networking when this host is a Kubernetes-like node.
    #[serde(default)]
    pub pods: Option<crate::spec::PodNetworkSpec>,
}

impl Host {
    pub fn primary_address(&self) -> Ipv4Addr {
        self.addresses[0].1
    }

    /// The sshd's current ed25519 host public key, `ssh-ed25519 AAAA...`.
    pub fn host_key_line(&self) -> String {
        crate::pubkey::public_key_line(&self.host_key_path("ed25519").with_extension("pub"))
            .unwrap_or_else(|e| panic!("host {} has no host key: {e:#}", self.name))
    }

    /// The sshd's private host key of type `kind` (`ed25519`, `ecdsa`); the public
    /// one is beside it with extension `.pub`.
    pub(crate) fn host_key_path(&self, kind: &str) -> PathBuf {
        self.dir.join(format!("ssh_host_{kind}_key"))
    }

    /// Whether this host runs sshd.
    pub fn has_sshd(&self) -> bool {
        self.role != Role::Client
    }

    pub(crate) fn address_on(&self, network: &str) -> Option<Ipv4Addr> {
        self.addresses
            .iter()
            .find(|(n, _)| n == network)
            .map(|(_, a)| *a)
    }
}

/// Names every namespace and interface of the bed (nothing is created).
pub(crate) fn plan(spec: &Spec, prefix: &str, dir: &Path) -> (Vec<Network>, Vec<Host>) {
    let networks: Vec<Network> = spec
        .networks
        .iter()
        .map(|n| Network {
            name: n.name.clone(),
            netns: format!("{prefix}-sw-{}", n.name),
            subnet: n.subnet,
            prefix_len: n.prefix_len,
        })
        .collect();
    let hosts = spec
        .hosts
        .iter()
        .map(|h| {
            let links = h
                .addresses
                .iter()
                .enumerate()
                .map(|(i, (network, address))| {
                    let net = networks
                        .iter()
                        .find(|n| &n.name == network)
                        .expect("validated");
                    Link {
                        network: network.clone(),
                        ifname: format!("eth{i}"),
                        address: *address,
                        prefix_len: net.prefix_len,
                        switch_netns: net.netns.clone(),
                        // Host names are unique and <= 15 chars, so they are
                        // valid, unique port names on each bridge.
                        peer: h.name.clone(),
                    }
                })
                .collect();
            Host {
                name: h.name.clone(),
                netns: format!("{prefix}-{}", h.name),
                role: h.role,
                addresses: h.addresses.clone(),
                links,
                proxy_jump: h.proxy_jump.clone(),
                ssh_address: h.addresses[0].1,
                traffic_to: h.traffic_to.clone().unwrap_or_default(),
                dir: dir.join(&h.name),
                tools: h.tools.clone(),
                pods: h.pods,
            }
        })
        .collect::<Vec<_>>();
    // The address to dial is the one on a network shared with the last hop.
    let hosts = hosts
        .iter()
        .map(|h| {
            let prev = match h.proxy_jump.last() {
                Some(j) => hosts.iter().find(|x| &x.name == j),
                None => hosts.iter().find(|x| x.role == Role::Client),
            };
            let mut h = h.clone();
            if let Some(prev) = prev
                && let Some((_, a)) = h
                    .addresses
                    .iter()
                    .find(|(n, _)| prev.address_on(n).is_some())
            {
                h.ssh_address = *a;
            }
            h
        })
        .collect();
    (networks, hosts)
}

/// Creates a switch namespace with bridge `br0`.
pub(crate) fn build_switch(net: &Network) -> Result<()> {
    let ns = net.netns.as_str();
    netns::ip(["-n", ns, "link", "add", "br0", "type", "bridge"])?;
    netns::ip(["-n", ns, "link", "set", "br0", "up"])
}

/// Creates the veth pair directly across the two namespaces (so it never
/// shows up in the root namespace), plugs it into the bridge, adds the IP.
pub(crate) fn build_link(host: &Host, link: &Link) -> Result<()> {
    let (hns, sns) = (host.netns.as_str(), link.switch_netns.as_str());
    netns::ip([
        "-n",
        hns,
        "link",
        "add",
        &link.ifname,
        "type",
        "veth",
        "peer",
        "name",
        &link.peer,
        "netns",
        sns,
    ])
    .with_context(|| format!("link {} to network {}", host.name, link.network))?;
    netns::ip(["-n", sns, "link", "set", &link.peer, "master", "br0", "up"])?;
    let cidr = format!("{}/{}", link.address, link.prefix_len);
    netns::ip(["-n", hns, "addr", "add", &cidr, "dev", &link.ifname])?;
    netns::ip(["-n", hns, "link", "set", &link.ifname, "up"])
}

/// Creates `DIR/<host>` for the host's keys, configs and logs.
pub(crate) fn create_host_dir(host: &Host) -> Result<()> {
    fs::create_dir_all(&host.dir).with_context(|| format!("mkdir {}", host.dir.display()))
}
