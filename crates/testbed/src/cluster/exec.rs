//! Processes handed to the caller: `exec` into a running container and
//! ephemeral (debug) containers. Both are tokio children with piped stdio; the
//! caller reaps them, the runtime still kills them with their pod.

use std::process::Stdio;
use std::time::SystemTime;

use super::container::{self, environment};
use super::ids;
use super::images;
use super::procs::Membership;
use super::runtime::{ClusterRuntime, Pod, container_info, kill_container, own_mount_ns};
use super::types::{ClusterError, ContainerInfo, ContainerRequest};
use crate::netns;

/// stdin piped only when asked, stdout always, stderr too unless a tty merges
/// it into stdout (a real tty would; there is no pty here).
fn set_stdio(cmd: &mut tokio::process::Command, stdin: bool, tty: bool) {
    cmd.stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Own process group: the runtime can kill the whole exec tree.
        .process_group(0);
    if tty {
        // SAFETY: dup2(2) is async-signal-safe; runs after stdio is set up.
        unsafe {
            cmd.pre_exec(|| {
                if libc::dup2(1, 2) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

fn not_found(what: String) -> ClusterError {
    ClusterError::NotFound { what }
}

fn find_pod<'a>(
    pods: &'a mut [Pod],
    namespace: &str,
    pod: &str,
) -> Result<&'a mut Pod, ClusterError> {
    pods.iter_mut()
        .find(|p| p.namespace == namespace && p.name == pod)
        .ok_or_else(|| not_found(format!("pod {namespace}/{pod}")))
}

impl ClusterRuntime {
    /// Runs `argv` inside a running container as its image and user would: its
    /// mount (image view), network and UTS namespaces, PATH, uid and capabilities.
    /// Must be called inside a tokio runtime.
    pub fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        argv: &[String],
        stdin: bool,
        tty: bool,
    ) -> Result<tokio::process::Child, ClusterError> {
        let mut inner = self.lock();
        let p = find_pod(&mut inner.pods, namespace, pod)?;
        let hostname = if p.host_network {
            p.node.clone()
        } else {
            p.name.clone()
        };
        let c = p
            .containers
            .iter_mut()
            .find(|c| c.name == container)
            .ok_or_else(|| not_found(format!("container {container} of pod {namespace}/{pod}")))?;
        if !netns::is_running(c.pid) {
            return Err(not_found(format!("running container {container}")));
        }
        let Some(program) = argv.first() else {
            return Err(ClusterError::failed("exec: no command"));
        };
        if container::lookup(c.pid, program).is_none() {
            return Err(ClusterError::ExecutableNotFound {
                executable: program.clone(),
            });
        }
        let mut std_cmd = container::exec_command(c.pid, &c.privileges, argv);
        std_cmd
            .env_clear()
            .envs(environment(c.privileges.uid, &hostname, &c.env));
        let mut cmd = tokio::process::Command::from(std_cmd);
        set_stdio(&mut cmd, stdin, tty);
        // nsenter joins the container's mount namespace, so the pod's teardown finds
        // this process (and its children) through the container's membership.
        let child = cmd.spawn().map_err(ClusterError::failed)?;
        Ok(child)
    }

    /// Starts an ephemeral container in a running pod: the pod's network
    /// namespace, `container.image`'s view, root with the default capabilities
    /// plus the requested ones (all if privileged). Without PID namespaces every
    /// process is visible anyway, so `target` only has to exist.
    pub fn start_ephemeral(
        &self,
        namespace: &str,
        pod: &str,
        container: &ContainerRequest,
        target: Option<&str>,
    ) -> Result<(ContainerInfo, tokio::process::Child), ClusterError> {
        let image = images::find(&container.image).ok_or_else(|| ClusterError::UnknownImage {
            image: container.image.clone(),
        })?;
        std::thread::sleep(image.pull);
        let mut inner = self.lock();
        let p = find_pod(&mut inner.pods, namespace, pod)?;
        if let Some(t) = target
            && !p.containers.iter().any(|c| c.name == t)
        {
            return Err(not_found(format!(
                "target container {t} of pod {namespace}/{pod}"
            )));
        }
        if p.containers.iter().any(|c| c.name == container.name) {
            return Err(ClusterError::failed(format!(
                "container {} already exists in pod {namespace}/{pod}",
                container.name
            )));
        }
        let mut c = self.container(container, image, ids::container_id());
        c.ephemeral = true;
        c.started_at = SystemTime::now();
        let (std_cmd, ready_file) = {
            let launch = self.launch(p, &c);
            (launch.command(), launch.ready_file)
        };
        let mut cmd = tokio::process::Command::from(std_cmd);
        set_stdio(&mut cmd, container.stdin, container.tty);
        let mut child = cmd.spawn().map_err(ClusterError::failed)?;
        c.pid = child.id().unwrap_or(0);
        let ready = container::wait_ready(&ready_file, || {
            child.try_wait().ok().flatten().map(|s| s.to_string())
        });
        if let Err(e) = ready {
            let _ = child.start_kill();
            kill_container(&mut c);
            return Err(ClusterError::failed(format!(
                "container {}: {e:#}",
                container.name
            )));
        }
        c.members = Membership::of(c.pid, own_mount_ns(c.pid));
        let info = container_info(&c);
        p.containers.push(c);
        self.save(&inner);
        Ok((info, child))
    }
}
