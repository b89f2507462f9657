//! From targets to pods: a pod by name, workloads and services through their
//! selectors, `-l` selectors, and the addresses filter tokens stand for. Not-found
//! errors list what does exist, so a typo is fixed at once.

use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::ListParams;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

use crate::target::{Kind, Target};
use crate::{Error, selector};

/// Where to look: one namespace, or all (`-A`).
#[derive(Clone)]
pub struct Scope {
    pub client: Client,
    pub namespace: String,
    pub all_namespaces: bool,
    /// `--node-selector`, for `node/all`.
    pub node_selector: Option<String>,
}

/// What a target came to: pods (and the selector to follow them by), or nodes.
#[derive(Debug, Clone)]
pub enum Resolved {
    Pods {
        pods: Vec<Pod>,
        /// `(namespace or None for all, label selector)` for --follow.
        selector: Option<(Option<String>, String)>,
    },
    Nodes(Vec<Node>),
}

impl Scope {
    fn pods_api(&self, namespace: Option<&str>) -> Api<Pod> {
        match namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }

    fn namespace_for<'a>(&'a self, target: &'a Target) -> Option<&'a str> {
        match &target.namespace {
            Some(ns) => Some(ns),
            None if self.all_namespaces => None,
            None => Some(&self.namespace),
        }
    }

    pub async fn resolve(&self, target: &Target) -> Result<Resolved, Error> {
        let ns = self.namespace_for(target);
        if target.kind == Kind::Node {
            let api: Api<Node> = Api::all(self.client.clone());
            if target.name == crate::target::ALL_NODES {
                return self.all_nodes(&api).await;
            }
            return match api.get_opt(&target.name).await {
                Ok(Some(node)) => Ok(Resolved::Nodes(vec![node])),
                Ok(None) => Err(Error::NodeNotFound {
                    name: target.name.clone(),
                    existing: names(&api).await,
                }),
                Err(e) => Err(Error::from_kube(e, "get", "nodes", "")),
            };
        }
        if target.kind == Kind::Pod {
            let pod: Pod = self.get_named(ns, target, "pods").await?;
            return Ok(Resolved::Pods {
                pods: vec![pod],
                selector: None,
            });
        }
        let selector = match target.kind {
            Kind::Deployment => label_selector(&self.get_named::<Deployment>(ns, target, "deployments").await?.spec.map(|s| s.selector)),
            Kind::ReplicaSet => label_selector(&self.get_named::<ReplicaSet>(ns, target, "replicasets").await?.spec.map(|s| s.selector)),
            Kind::StatefulSet => label_selector(&self.get_named::<StatefulSet>(ns, target, "statefulsets").await?.spec.map(|s| s.selector)),
            Kind::DaemonSet => label_selector(&self.get_named::<DaemonSet>(ns, target, "daemonsets").await?.spec.map(|s| s.selector)),
            Kind::Job => label_selector(&self.get_named::<Job>(ns, target, "jobs").await?.spec.and_then(|s| s.selector)),
            Kind::Service => {
                let svc: Service = self.get_named(ns, target, "services").await?;
                Ok(svc.spec.and_then(|s| s.selector).and_then(|m| selector::from_map(&m)))
            }
            Kind::Pod | Kind::Node => unreachable!(),
        }?
        .ok_or_else(|| Error::BadTarget(format!("{target} has no pod selector: kcap will not capture every pod of the namespace for it")))?;
        let pods = self.pods_by_selector(ns, &selector).await?;
        if pods.is_empty() {
            return Err(Error::NoPods {
                what: format!("{target} (selector {selector})"),
            });
        }
        Ok(Resolved::Pods {
            pods,
            selector: Some((ns.map(str::to_string), selector)),
        })
    }

    /// `node/all`: every node, or those `--node-selector` matches (at least one).
    async fn all_nodes(&self, api: &Api<Node>) -> Result<Resolved, Error> {
        let params = match &self.node_selector {
            Some(selector) => ListParams::default().labels(selector),
            None => ListParams::default(),
        };
        let nodes = crate::paged::list_all(api, &params)
            .await
            .map_err(|e| Error::from_kube(e, "list", "nodes", ""))?;
        if nodes.is_empty() {
            return Err(Error::NodeNotFound {
                name: format!(
                    "matching --node-selector {}",
                    self.node_selector.as_deref().unwrap_or("")
                ),
                existing: names(api).await,
            });
        }
        Ok(Resolved::Nodes(nodes))
    }

    /// With -A, a named object is looked for in every namespace.
    async fn get_named<K>(
        &self,
        ns: Option<&str>,
        target: &Target,
        resource: &str,
    ) -> Result<K, Error>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let Some(ns) = ns else {
            let api: Api<K> = Api::all(self.client.clone());
            let list = crate::paged::list_all(&api, &ListParams::default())
                .await
                .map_err(|e| Error::from_kube(e, "list", resource, "(all namespaces)"))?;
            let found: Vec<K> = list
                .into_iter()
                .filter(|o| o.meta().name.as_deref() == Some(target.name.as_str()))
                .collect();
            return match found.len() {
                1 => Ok(found.into_iter().next().expect("one")),
                0 => Err(Error::NotFound {
                    kind: target.kind.name(),
                    namespace: "any namespace".into(),
                    name: target.name.clone(),
                    existing: vec![],
                }),
                _ => Err(Error::BadTarget(format!(
                    "{target} exists in several namespaces: name one with -n"
                ))),
            };
        };
        let api: Api<K> = Api::namespaced(self.client.clone(), ns);
        match api.get_opt(&target.name).await {
            Ok(Some(object)) => Ok(object),
            Ok(None) => Err(self.not_found(&api, ns, target).await),
            Err(e) => Err(Error::from_kube(e, "get", resource, ns)),
        }
    }

    async fn not_found<K>(&self, api: &Api<K>, ns: &str, target: &Target) -> Error
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    {
        let existing = names(api).await;
        if existing.is_empty() {
            let namespaces: Api<Namespace> = Api::all(self.client.clone());
            if let Ok(list) = crate::paged::list_all(&namespaces, &ListParams::default()).await {
                let all: Vec<String> = list
                    .iter()
                    .filter_map(|n| n.metadata.name.clone())
                    .collect();
                if !all.is_empty() && !all.iter().any(|n| n == ns) {
                    return Error::NamespaceNotFound {
                        namespace: ns.into(),
                        existing: all,
                    };
                }
            }
        }
        Error::NotFound {
            kind: target.kind.name(),
            namespace: ns.into(),
            name: target.name.clone(),
            existing,
        }
    }

    pub async fn pods_by_selector(
        &self,
        ns: Option<&str>,
        selector: &str,
    ) -> Result<Vec<Pod>, Error> {
        crate::paged::list_all(&self.pods_api(ns), &ListParams::default().labels(selector))
            .await
            .map_err(|e| Error::from_kube(e, "list", "pods", ns.unwrap_or("(all namespaces)")))
    }

    /// The addresses a filter token stands for: its pods' IPs (hostNetwork pods
    /// included: their IP is the node's), and a service's cluster IPs too.
    pub async fn token_hosts(&self, target: &Target) -> Result<Vec<IpAddr>, Error> {
        let mut hosts = Vec::new();
        if target.kind == Kind::Service {
            let svc: Service = self
                .get_named(self.namespace_for(target), target, "services")
                .await?;
            for ip in svc
                .spec
                .iter()
                .flat_map(|s| s.cluster_ips.iter().flatten().chain(s.cluster_ip.iter()))
            {
                if let Ok(ip) = ip.parse::<IpAddr>()
                    && !hosts.contains(&ip)
                {
                    hosts.push(ip);
                }
            }
        }
        let pods = match self.resolve(target).await {
            Ok(Resolved::Pods { pods, .. }) => pods,
            Ok(Resolved::Nodes(_)) => vec![],
            Err(Error::NoPods { .. }) => vec![],
            Err(e) => return Err(e),
        };
        for pod in pods {
            for ip in pod.status.iter().flat_map(|s| {
                s.pod_ips
                    .iter()
                    .flatten()
                    .map(|p| p.ip.clone())
                    .chain(s.pod_ip.clone())
            }) {
                if let Ok(ip) = ip.parse::<IpAddr>()
                    && !hosts.contains(&ip)
                {
                    hosts.push(ip);
                }
            }
        }
        Ok(hosts)
    }

    /// Replaces the filter tokens of `expression` by host sets.
    pub async fn expand_filter(&self, expression: &str) -> Result<String, Error> {
        let tokens = crate::filter_tokens::find(expression)?;
        let mut hosts = Vec::new();
        for token in &tokens {
            let text = &expression[token.start..token.end];
            hosts.push(self.token_hosts(&token.target).await.map_err(|e| match e {
                e @ (Error::Forbidden { .. } | Error::Unreachable(_)) => e,
                other => Error::FilterToken {
                    token: text.to_string(),
                    source: Some(Arc::new(other)),
                },
            })?);
        }
        crate::filter_tokens::substitute(expression, &tokens, &hosts)
    }
}

fn label_selector(selector: &Option<LabelSelector>) -> Result<Option<String>, Error> {
    match selector {
        Some(s) => selector::to_query(s),
        None => Ok(None),
    }
}

/// Names of what exists, for not-found messages; empty when listing fails too.
pub(crate) async fn names<K>(api: &Api<K>) -> Vec<String>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    match crate::paged::list_all(api, &ListParams::default()).await {
        Ok(list) => list.iter().filter_map(|o| o.meta().name.clone()).collect(),
        Err(_) => Vec::new(),
    }
}

/// A node's InternalIP (for `--via ssh`).
pub fn internal_ip(node: &Node) -> Option<String> {
    node.status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .find(|a| a.type_ == "InternalIP")
        .map(|a| a.address.clone())
}
