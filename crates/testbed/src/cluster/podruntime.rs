//! [`ClusterRuntime`] as the API server's `PodRuntime`: converts its launch
//! requests and our answers and errors, one to one.

use kcap_apiserver::runtime::{
    ContainerLaunch, ContainerStarted, PodLaunch, PodRuntime, PodStarted, RuntimeError,
};

use super::runtime::ClusterRuntime;
use super::types::{ClusterError, ContainerInfo, ContainerRequest, PodRequest};

fn container_request(c: &ContainerLaunch) -> ContainerRequest {
    ContainerRequest {
        name: c.name.clone(),
        image: c.image.clone(),
        command: c.command.clone(),
        args: c.args.clone(),
        env: c.env.clone(),
        privileged: c.privileged,
        run_as_user: c.run_as_user,
        add_capabilities: c.add_capabilities.clone(),
        stdin: c.stdin,
        tty: c.tty,
    }
}

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
        let req = PodRequest {
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            uid: pod.uid.clone(),
            node: pod.node.clone(),
            host_network: pod.host_network,
            host_pid: pod.host_pid,
            containers: pod.containers.iter().map(container_request).collect(),
        };
        let info = ClusterRuntime::start_pod(self, &req)?;
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
        let (info, child) = ClusterRuntime::start_ephemeral(
            self,
            namespace,
            pod,
            &container_request(container),
            target,
        )?;
        Ok((started(info), child))
    }
}
