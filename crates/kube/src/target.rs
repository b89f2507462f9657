//! `TYPE/NAME` targets as kubectl spells them (`pod/x`, `deploy/x`,
//! `deployments.apps/x`, `svc/x`, `no/x`, ...), optionally prefixed by a namespace
//! (`prod/pod/x`, the filter-token form). Names are checked against Kubernetes'
//! own rules here, so nothing odd ever reaches a URL or a command.

use crate::Error;

/// `node/all`: every node of the cluster (those matching `--node-selector`, if
/// given). A node really named `all` is one of them.
pub const ALL_NODES: &str = "all";

/// What a target names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Pod,
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    Job,
    Service,
    Node,
}

impl Kind {
    /// kubectl's names for each kind: short, singular, plural, with API group.
    pub fn parse(word: &str) -> Option<Kind> {
        let word = word.to_ascii_lowercase();
        let kind =
            match word.as_str() {
                "po" | "pod" | "pods" => Kind::Pod,
                "deploy" | "deployment" | "deployments" | "deployment.apps"
                | "deployments.apps" => Kind::Deployment,
                "rs" | "replicaset" | "replicasets" | "replicaset.apps" | "replicasets.apps" => {
                    Kind::ReplicaSet
                }
                "sts" | "statefulset" | "statefulsets" | "statefulset.apps"
                | "statefulsets.apps" => Kind::StatefulSet,
                "ds" | "daemonset" | "daemonsets" | "daemonset.apps" | "daemonsets.apps" => {
                    Kind::DaemonSet
                }
                "job" | "jobs" | "job.batch" | "jobs.batch" => Kind::Job,
                "svc" | "service" | "services" => Kind::Service,
                "no" | "node" | "nodes" => Kind::Node,
                _ => return None,
            };
        Some(kind)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Pod => "pod",
            Kind::Deployment => "deployment",
            Kind::ReplicaSet => "replicaset",
            Kind::StatefulSet => "statefulset",
            Kind::DaemonSet => "daemonset",
            Kind::Job => "job",
            Kind::Service => "service",
            Kind::Node => "node",
        }
    }
}

/// One thing to capture.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub kind: Kind,
    /// Given in the target itself (`ns/kind/name`); else the -n namespace applies.
    pub namespace: Option<String>,
    pub name: String,
}

impl Target {
    /// `TYPE/NAME` (a positional argument). A namespace prefix is not kubectl's
    /// syntax for arguments, so it is refused here (use -n).
    pub fn parse(input: &str) -> Result<Target, Error> {
        let (kind, name) = input.split_once('/').ok_or_else(|| {
            Error::BadTarget(format!(
                "target {input:?} is not TYPE/NAME: write e.g. pod/web-0, deploy/web, svc/web, node/worker-1 (or --pod NAME)"
            ))
        })?;
        let kind = Kind::parse(kind).ok_or_else(|| {
            Error::BadTarget(format!(
                "unknown type {kind:?} in {input:?}: use pod, deploy, rs, sts, ds, job, svc or node"
            ))
        })?;
        validate_name(name, kind.name())?;
        Ok(Target {
            kind,
            namespace: None,
            name: name.to_string(),
        })
    }

    /// `[NAMESPACE/]TYPE/NAME`, the filter-token form. `None` when `input` is not
    /// shaped like a token at all (so `tcp[13]` or `10.0.0.0/8` stay BPF).
    pub fn parse_token(input: &str) -> Option<Result<Target, Error>> {
        let parts: Vec<&str> = input.split('/').collect();
        let (namespace, kind, name) = match parts[..] {
            [kind, name] => (None, kind, name),
            [ns, kind, name] => (Some(ns), kind, name),
            _ => return None,
        };
        let kind = match Kind::parse(kind)? {
            Kind::Node | Kind::Job | Kind::ReplicaSet => return None,
            k => k,
        };
        let checked = namespace
            .map(|ns| validate_name(ns, "namespace"))
            .transpose()
            .and_then(|_| validate_name(name, kind.name()));
        Some(checked.map(|()| Target {
            kind,
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        }))
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(ns) = &self.namespace {
            write!(f, "{ns}/")?;
        }
        write!(f, "{}/{}", self.kind.name(), self.name)
    }
}

/// A Kubernetes object name: a DNS-1123 subdomain (lowercase letters, digits, `-`
/// and `.`, starting and ending alphanumeric, at most 253 characters).
pub fn validate_name(name: &str, what: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(Error::BadTarget(format!(
            "{what} name {name:?} is not a valid Kubernetes name (lowercase letters, digits, '-' and '.')"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_spellings() {
        for (input, kind) in [
            ("pod/a", Kind::Pod),
            ("po/a", Kind::Pod),
            ("deploy/a", Kind::Deployment),
            ("deployments.apps/a", Kind::Deployment),
            ("rs/a", Kind::ReplicaSet),
            ("sts/a", Kind::StatefulSet),
            ("statefulset/a", Kind::StatefulSet),
            ("ds/a", Kind::DaemonSet),
            ("job/a", Kind::Job),
            ("svc/a", Kind::Service),
            ("service/a", Kind::Service),
            ("node/a", Kind::Node),
            ("no/a", Kind::Node),
            ("Deploy/a", Kind::Deployment),
        ] {
            assert_eq!(Target::parse(input).unwrap().kind, kind, "{input}");
        }
    }

    #[test]
    fn bad_targets_explain_themselves() {
        for input in [
            "web", "cm/x", "pod/", "pod/Web", "pod/a;id", "pod/-a", "pod/$(x)",
        ] {
            let e = Target::parse(input).unwrap_err().to_string();
            assert!(!e.is_empty(), "{input}");
        }
    }

    #[test]
    fn tokens() {
        let t = Target::parse_token("prod/svc/web").unwrap().unwrap();
        assert_eq!(
            (t.kind, t.namespace.as_deref(), t.name.as_str()),
            (Kind::Service, Some("prod"), "web")
        );
        assert!(Target::parse_token("10.0.0.0/8").is_none());
        assert!(Target::parse_token("tcp[13]").is_none());
        assert!(Target::parse_token("node/x").is_none());
        assert!(Target::parse_token("pod/X!").unwrap().is_err());
    }
}
