//! [`ClusterRuntime`] as the API server's `PodRuntime`: the launch requests are
//! shared types; our answers and errors are converted one to one.

use kcap_apiserver::runtime::{
    ContainerLaunch, ContainerStarted, PodLaunch, PodRuntime, PodStarted, RuntimeError,
};

use super::runtime::ClusterRuntime;
use super::types::{ClusterError, ContainerInfo};

fn started(c: ContainerInfo) -> ContainerStarted {
    ContainerStarted {
        name: c.name,
        container_id: c.container_id,
        image_id: c.image_id,
        started_at: c.started_at,
    }
}

impl From<ClusterError> for RuntimeError {
    fn from(e: ClusterError) -> RuntimeError {
        match e {
            ClusterError::UnknownImage { image } => RuntimeError::UnknownImage { image },
            ClusterError::UnknownNode { node } => RuntimeError::UnknownNode { node },
            ClusterError::NotFound { what } => RuntimeError::NotFound { what },
            ClusterError::ExecutableNotFound { executable } => {
                RuntimeError::ExecutableNotFound { executable }
            }
            ClusterError::Failed { message } => RuntimeError::Failed { message },
        }
    }
}

impl PodRuntime for ClusterRuntime {
    fn start_pod(&self, pod: &PodLaunch) -> Result<PodStarted, RuntimeError> {
        let info = ClusterRuntime::start_pod(self, pod)?;
        Ok(PodStarted {
            pod_ip: info.pod_ip,
            host_ip: info.host_ip,
            containers: info.containers.into_iter().map(started).collect(),
        })
    }

    fn stop_pod(&self, namespace: &str, name: &str) -> Result<(), RuntimeError> {
        Ok(ClusterRuntime::stop_pod(self, namespace, name)?)
    }

    fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        argv: &[String],
        stdin: bool,
        tty: bool,
    ) -> Result<tokio::process::Child, RuntimeError> {
        Ok(ClusterRuntime::exec(
            self, namespace, pod, container, argv, stdin, tty,
        )?)
    }

    fn start_ephemeral(
        &self,
        namespace: &str,
        pod: &str,
        container: &ContainerLaunch,
        target: Option<&str>,
    ) -> Result<(ContainerStarted, tokio::process::Child), RuntimeError> {
        let (info, child) =
            ClusterRuntime::start_ephemeral(self, namespace, pod, container, target)?;
        Ok((started(info), child))
    }
}
