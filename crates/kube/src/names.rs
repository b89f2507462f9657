//! Names for addresses, for lines and files that say whose traffic it is: every
//! pod's IPs, every service's cluster IPs and every node's addresses. Read once
//! through the API; what this account may not list is left out (names are a
//! help, not a requirement).

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::Api;
use kube::api::ListParams;

/// Whose address it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressName {
    Pod { namespace: String, name: String },
    Service { namespace: String, name: String },
    Node(String),
}

impl AddressName {
    /// How `--print` lines name it: `prod/web-0`, `prod/svc/web`, `node-a`.
    pub fn label(&self) -> String {
        match self {
            AddressName::Pod { namespace, name } => format!("{namespace}/{name}"),
            AddressName::Service { namespace, name } => format!("{namespace}/svc/{name}"),
            AddressName::Node(name) => name.clone(),
        }
    }

    /// How a capture file names it (pcapng name records, shown by Wireshark):
    /// `web-0.prod`, `web.prod` (the service's name in the cluster's DNS),
    /// `node-a`.
    pub fn host_name(&self) -> String {
        match self {
            AddressName::Pod { namespace, name } | AddressName::Service { namespace, name } => {
                format!("{name}.{namespace}")
            }
            AddressName::Node(name) => name.clone(),
        }
    }
}

/// Every name kcap can find. Nodes come first and hostNetwork pods are left out:
/// an address a node shares with its hostNetwork pods is the node's. An API
/// server that does not answer (as opposed to one that refuses a list) ends the
/// lookup: each further list would only wait out its own timeout.
pub async fn cluster_names(
    client: &kube::Client,
    namespace: Option<&str>,
) -> Vec<(IpAddr, AddressName)> {
    let mut names = Vec::new();
    let nodes: Api<Node> = Api::all(client.clone());
    match crate::paged::list_all(&nodes, &ListParams::default()).await {
        Err(e) if !answered(&e) => return names,
        Err(_) => {}
        Ok(list) => add_nodes(&mut names, list),
    }
    let Ok(pods) = list_scoped::<Pod>(client, namespace).await else {
        return names;
    };
    add_pods(&mut names, pods);
    if let Ok(services) = list_scoped::<Service>(client, namespace).await {
        add_services(&mut names, services);
    }
    names
}

/// The API server answered (with a refusal, say), rather than not at all.
fn answered(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(_))
}

fn add_nodes(names: &mut Vec<(IpAddr, AddressName)>, nodes: Vec<Node>) {
    for node in nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        for a in node
            .status
            .iter()
            .flat_map(|s| s.addresses.iter().flatten())
        {
            if let Ok(ip) = a.address.parse() {
                names.push((ip, AddressName::Node(name.clone())));
            }
        }
    }
}

fn add_pods(names: &mut Vec<(IpAddr, AddressName)>, pods: Vec<Pod>) {
    for pod in pods {
        if pod.spec.as_ref().and_then(|s| s.host_network) == Some(true) {
            continue;
        }
        let label = AddressName::Pod {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
        };
        for ip in pod.status.iter().flat_map(|s| {
            s.pod_ips
                .iter()
                .flatten()
                .map(|p| p.ip.clone())
                .chain(s.pod_ip.clone())
        }) {
            if let Ok(ip) = ip.parse() {
                names.push((ip, label.clone()));
            }
        }
    }
}

fn add_services(names: &mut Vec<(IpAddr, AddressName)>, services: Vec<Service>) {
    for svc in services {
        let label = AddressName::Service {
            namespace: svc.metadata.namespace.clone().unwrap_or_default(),
            name: svc.metadata.name.clone().unwrap_or_default(),
        };
        for ip in svc
            .spec
            .iter()
            .flat_map(|s| s.cluster_ips.iter().flatten().chain(s.cluster_ip.iter()))
        {
            if let Ok(ip) = ip.parse() {
                names.push((ip, label.clone()));
            }
        }
    }
}

/// Every namespace's objects if this account may list them, else `namespace`'s
/// (none if there is no namespace to fall back to, or it is refused too).
/// `Err(())`: the API server did not answer.
async fn list_scoped<K>(client: &kube::Client, namespace: Option<&str>) -> Result<Vec<K>, ()>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let all: Api<K> = Api::all(client.clone());
    match crate::paged::list_all(&all, &ListParams::default()).await {
        Ok(list) => return Ok(list),
        Err(e) if !answered(&e) => return Err(()),
        Err(_) => {}
    }
    let Some(ns) = namespace else {
        return Ok(Vec::new());
    };
    let one: Api<K> = Api::namespaced(client.clone(), ns);
    match crate::paged::list_all(&one, &ListParams::default()).await {
        Ok(list) => Ok(list),
        Err(e) if !answered(&e) => Err(()),
        Err(_) => Ok(Vec::new()),
    }
}
