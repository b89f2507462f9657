//! A pod chosen for capture, reduced to what capturing needs: where it runs, which
//! container, that container's runtime ID (for nsenter), its IP and whether it
//! shares the node's network.

use k8s_openapi::api::core::v1::Pod;

use crate::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodTarget {
    pub namespace: String,
    pub name: String,
    pub node: Option<String>,
    pub container: String,
    pub containers: Vec<String>,
    /// The runtime's ID without the `containerd://` scheme, once the container started.
    pub container_id: Option<String>,
    pub ip: Option<String>,
    pub host_network: bool,
    /// The pod's phase, for messages (`Pending`, `Succeeded`, ...).
    pub phase: String,
    /// [`is_running`] when the pod was read: whether there is a network to capture.
    pub running: bool,
    /// Container ports, used to filter a hostNetwork pod's node capture.
    pub ports: Vec<u16>,
}

impl PodTarget {
    /// `container`: `-c` when given, else kubectl's default container annotation,
    /// else the first container.
    pub fn from_pod(pod: &Pod, container: Option<&str>) -> Result<PodTarget, Error> {
        let namespace = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = pod.metadata.name.clone().unwrap_or_default();
        let spec = pod.spec.clone().unwrap_or_default();
        let containers: Vec<String> = spec.containers.iter().map(|c| c.name.clone()).collect();
        let annotated = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("kubectl.kubernetes.io/default-container"))
            .filter(|c| containers.contains(c));
        let chosen = match container {
            Some(c) if containers.iter().any(|x| x == c) => c.to_string(),
            Some(c) => {
                return Err(Error::ContainerNotFound {
                    pod: format!("{namespace}/{name}"),
                    container: c.to_string(),
                    existing: containers,
                });
            }
            None => annotated
                .cloned()
                .or_else(|| containers.first().cloned())
                .unwrap_or_default(),
        };
        let status = pod.status.clone().unwrap_or_default();
        let container_id = status
            .container_statuses
            .iter()
            .flatten()
            .find(|s| s.name == chosen)
            .and_then(|s| s.container_id.clone())
            .map(|id| {
                id.split_once("://")
                    .map(|(_, id)| id.to_string())
                    .unwrap_or(id)
            });
        let ports = spec
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .filter_map(|p| u16::try_from(p.container_port).ok())
            .collect();
        Ok(PodTarget {
            namespace,
            name,
            node: spec.node_name.clone(),
            container: chosen,
            containers,
            container_id,
            ip: status.pod_ip.clone(),
            host_network: spec.host_network.unwrap_or(false),
            phase: status.phase.unwrap_or_else(|| "Pending".into()),
            running: is_running(pod),
            ports,
        })
    }

    /// `namespace/name`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub fn check_running(&self) -> Result<(), Error> {
        if self.running {
            Ok(())
        } else {
            Err(Error::PodNotRunning {
                pod: self.label(),
                phase: self.phase.clone(),
            })
        }
    }
}

/// Whether the pod runs: its phase is `Running`, so its containers started and its
/// network namespace exists. The one place kcap decides it (targets, `--follow`,
/// helper pods).
pub fn is_running(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(phase: Option<&str>) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-0", "namespace": "prod"},
            "spec": {"containers": [{"name": "web"}]},
            "status": phase.map(|p| serde_json::json!({"phase": p})),
        }))
        .unwrap()
    }

    #[test]
    fn running_is_the_running_phase() {
        assert!(is_running(&pod(Some("Running"))));
        for phase in [None, Some("Pending"), Some("Succeeded"), Some("Failed")] {
            assert!(!is_running(&pod(phase)), "{phase:?}");
        }
    }

    #[test]
    fn targets_check_the_same_way() {
        let running = PodTarget::from_pod(&pod(Some("Running")), None).unwrap();
        assert!(running.check_running().is_ok());
        let pending = PodTarget::from_pod(&pod(None), None).unwrap();
        let e = pending.check_running().unwrap_err();
        assert_eq!(
            e.to_string(),
            "pod prod/web-0 is Pending, not Running: there is no network to capture"
        );
    }
}
