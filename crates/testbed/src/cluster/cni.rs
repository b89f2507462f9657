//! Pod networking the way the two big CNI families do it, with `ip`:
//! bridge (flannel's `bridge` plugin: `cni0` + `veth<8 hex>`) and routed
//! (Calico: `cali<11 hex>`, /32 routes, 169.254.1.1 via proxy ARP). Nodes
//! forward between pod networks with plain routes over the lan (no overlay).

use std::net::Ipv4Addr;

use anyhow::{Context, Result};

use crate::netns;
use crate::spec::{Cni, PodNetworkSpec};
use crate::topology::Host;

use super::ids::random_hex;

pub(crate) const BRIDGE: &str = "cni0";
/// The gateway every Calico pod routes to; no one owns it, the node answers
/// ARP for it by proxy.
pub(crate) const CALICO_GATEWAY: &str = "169.254.1.1";

fn sysctl(ns: &str, key: &str, value: &str) -> Result<()> {
    // /proc/sys/net shows the namespace of the process that opens it.
    let file = format!("/proc/sys/{}", key.replace('.', "/"));
    netns::run(netns::command(ns, "sh").args(["-c", "echo \"$1\" > \"$0\"", &file, value]))
        .with_context(|| format!("sysctl {key}={value} in {ns}"))
}

fn gateway(cidr: Ipv4Addr) -> Ipv4Addr {
    let o = cidr.octets();
    Ipv4Addr::new(o[0], o[1], o[2], 1)
}

/// Prepares every node with pods: forwarding, its CNI's host side and routes
/// to the pod CIDRs of the nodes it shares a network with.
pub(crate) fn setup_nodes(hosts: &[Host]) -> Result<()> {
    for node in hosts.iter() {
        let Some(pods) = node.pods else { continue };
        let ns = node.netns.as_str();
        sysctl(ns, "net.ipv4.ip_forward", "1")?;
        // An IPv4-only cluster: without this every new pod interface sends
        // IPv6 DAD/MLD/router solicitations for seconds, which the bridge
        // floods to every pod, so a fresh pod's first captured packets would
        // be noise instead of its own traffic. Applies to interfaces made
        // from now on (cni0, the pods' host sides), not the node's uplink.
        sysctl(ns, "net.ipv6.conf.default.disable_ipv6", "1")?;
        match pods.cni {
            Cni::Bridge => {
                netns::ip(["-n", ns, "link", "add", BRIDGE, "type", "bridge"])?;
                let addr = format!("{}/24", gateway(pods.pod_cidr));
                netns::ip(["-n", ns, "addr", "add", &addr, "dev", BRIDGE])?;
                netns::ip(["-n", ns, "link", "set", BRIDGE, "up"])?;
            }
            Cni::Routed => {
                // Proxy ARP only answers for addresses the node has a unicast route
                // to via another interface. Real nodes have a default route; ours
                // have none, so route just the gateway address to lo.
                netns::ip(["-n", ns, "route", "add", CALICO_GATEWAY, "dev", "lo"])?;
            }
        }
        for peer in hosts.iter().filter(|h| h.name != node.name) {
            let Some(peer_pods) = peer.pods else { continue };
            let Some(via) = node
                .addresses
                .iter()
                .find_map(|(net, _)| peer.address_on(net))
            else {
                continue;
            };
            let dst = format!("{}/24", peer_pods.pod_cidr);
            netns::ip(["-n", ns, "route", "add", &dst, "via", &via.to_string()])?;
        }
    }
    Ok(())
}

/// Creates the pod's `eth0` and its host-side peer, addresses and routes.
/// Returns the name of the host-side interface.
pub(crate) fn attach(
    node: &Host,
    net: PodNetworkSpec,
    pod_ns: &str,
    ip: Ipv4Addr,
) -> Result<String> {
    let node_ns = node.netns.as_str();
    let host_if = match net.cni {
        Cni::Bridge => format!("veth{}", random_hex(8)),
        Cni::Routed => format!("cali{}", random_hex(11)),
    };
    // No IPv6 on the pod's side either (see `setup_nodes`).
    sysctl(pod_ns, "net.ipv6.conf.default.disable_ipv6", "1")?;
    // Created across the two namespaces directly, so it never exists elsewhere.
    netns::ip([
        "-n", pod_ns, "link", "add", "eth0", "type", "veth", "peer", "name", &host_if, "netns",
        node_ns,
    ])
    .with_context(|| format!("veth for pod namespace {pod_ns}"))?;
    let pod_ip = ip.to_string();
    match net.cni {
        Cni::Bridge => {
            netns::ip([
                "-n", node_ns, "link", "set", &host_if, "master", BRIDGE, "up",
            ])?;
            netns::ip([
                "-n",
                pod_ns,
                "addr",
                "add",
                &format!("{pod_ip}/24"),
                "dev",
                "eth0",
            ])?;
            netns::ip(["-n", pod_ns, "link", "set", "eth0", "up"])?;
            let gw = gateway(net.pod_cidr).to_string();
            netns::ip(["-n", pod_ns, "route", "add", "default", "via", &gw])?;
        }
        Cni::Routed => {
            // Calico's host side: fixed MAC, no address, proxy ARP answering
            // immediately for the fake gateway.
            netns::ip([
                "-n",
                node_ns,
                "link",
                "set",
                &host_if,
                "address",
                "ee:ee:ee:ee:ee:ee",
                "up",
            ])?;
            sysctl(node_ns, &format!("net.ipv4.conf.{host_if}.proxy_arp"), "1")?;
            sysctl(
                node_ns,
                &format!("net.ipv4.neigh.{host_if}.proxy_delay"),
                "0",
            )?;
            netns::ip([
                "-n",
                node_ns,
                "route",
                "add",
                &format!("{pod_ip}/32"),
                "dev",
                &host_if,
                "scope",
                "link",
            ])?;
            netns::ip([
                "-n",
                pod_ns,
                "addr",
                "add",
                &format!("{pod_ip}/32"),
                "dev",
                "eth0",
            ])?;
            netns::ip(["-n", pod_ns, "link", "set", "eth0", "up"])?;
            netns::ip([
                "-n",
                pod_ns,
                "route",
                "add",
                "default",
                "via",
                CALICO_GATEWAY,
                "dev",
                "eth0",
                "onlink",
            ])?;
        }
    }
    Ok(host_if)
}

/// Removes the host side of a pod (its /32 route goes with it). Deleting the pod
/// namespace would do the same; this keeps the node clean even if that fails.
pub(crate) fn detach(node_ns: &str, host_if: &str) {
    let _ = netns::ip(["-n", node_ns, "link", "del", host_if]);
}
