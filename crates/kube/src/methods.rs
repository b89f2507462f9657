//! The ways into a pod's network namespace (`--via`): `exec` the wrapper in the
//! target container, run it in an `ephemeral` debug container (see
//! [`crate::debug_container`]), or enter the pod's
//! namespace from the node (`node`: a privileged helper pod; `ssh`: see
//! [`netns_argv`], run by the caller over SSH). Every method yields a process that
//! writes the pcap stream on stdout and stops when kcap's heartbeat stops.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kcap_capture::command::CaptureCommand;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;

use crate::Error;
use crate::pod::PodTarget;
use crate::process::{PodProcess, params};
use crate::start::{self, START_TIMEOUT, Start};

/// Where callers found the `--via auto` order before it moved next to [`crate::Method`].
pub use crate::method::AUTO_ORDER;

/// Default image for ephemeral and helper containers: public, has sh, tcpdump,
/// nsenter and ip (no crictl: [`NETNS`] finds pods without it); tests pass
/// `--image kcap.test/capture:1` or `kcap.test/netshoot:1`.
pub const DEFAULT_IMAGE: &str = "docker.io/nicolaka/netshoot:latest";

/// Finds a pod's network from its node and runs the rest of the arguments there
/// (`netns.sh`: crictl, else the namespace holding the pod's IP, else the process
/// whose cgroup names the container; or the pod's host-side veth), or stays in the
/// node's own namespace (empty container ID and IP: a node or hostNetwork pod).
pub const NETNS: &str = include_str!("netns.sh");

/// Where a pod is captured from its node (`--capture-point`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CapturePoint {
    /// Inside the pod's network namespace: what the pod sees.
    #[default]
    Netns,
    /// On the pod's host-side interface in the node's namespace: what the node
    /// sees; needs only the capture tool on the node.
    Veth,
}

impl CapturePoint {
    pub fn name(self) -> &'static str {
        match self {
            CapturePoint::Netns => "netns",
            CapturePoint::Veth => "veth",
        }
    }

    pub fn parse(input: &str) -> Option<CapturePoint> {
        [CapturePoint::Netns, CapturePoint::Veth]
            .into_iter()
            .find(|p| p.name() == input)
    }
}

/// Where a capture runs, seen from the pod's node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeSide {
    /// The container's runtime ID (empty: the node's own namespace).
    pub container_id: String,
    /// The pod's IP (empty: unknown, or the node's own namespace).
    pub pod_ip: String,
    pub point: CapturePoint,
}

/// The command that captures at `side` from the pod's node.
pub fn netns_argv(side: &NodeSide, capture: Vec<String>) -> Vec<String> {
    let mut argv = netns_prefix(side);
    argv.extend(capture);
    argv
}

/// The words that reach `side` before the capture's own (for a shell line over
/// SSH: see `CaptureCommand::to_shell_after`). Every value is its own argument.
pub fn netns_prefix(side: &NodeSide) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        NETNS.into(),
        "kcap-netns".into(),
        side.container_id.clone(),
        side.pod_ip.clone(),
        side.point.name().into(),
    ]
}

pub async fn exec(
    client: &kube::Client,
    pod: &PodTarget,
    command: &CaptureCommand,
) -> Result<PodProcess, Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
    let argv = command.to_argv("").map_err(capture_command_error)?;
    let attached = api
        .exec(&pod.name, argv, &params(&pod.container))
        .await
        .map_err(|e| exec_error(e, pod))?;
    Ok(PodProcess::new(attached))
}

/// The capture command's values (interface, filter) cannot be passed on.
pub(crate) fn capture_command_error(source: kcap_capture::Error) -> Error {
    Error::Quote {
        what: "the capture command",
        source,
    }
}

fn exec_error(e: kube::Error, pod: &PodTarget) -> Error {
    let text = e.to_string();
    // No shell in the image (distroless): the runtime cannot start `sh`.
    if text.contains("executable file not found") || text.contains("no such file") {
        return Error::ToolMissing {
            pod: pod.label(),
            container: pod.container.clone(),
            message: "the image has no shell (sh) to run the capture".into(),
            source: Some(Arc::new(e)),
        };
    }
    Error::from_kube(e, "create", "pods/exec", &pod.namespace)
}

/// A helper pod kcap created; [`HelperPod::delete`] removes it. The reaper (see the
/// binary) deletes it too if kcap dies without doing so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperPod {
    pub namespace: String,
    pub name: String,
}

impl HelperPod {
    pub async fn delete(&self, client: &kube::Client) -> Result<(), Error> {
        let api: Api<Pod> = Api::namespaced(client.clone(), &self.namespace);
        match api
            .delete(
                &self.name,
                &DeleteParams {
                    grace_period_seconds: Some(0),
                    ..Default::default()
                },
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if Error::is_not_found(&e) => Ok(()),
            Err(e) => Err(Error::from_kube(e, "delete", "pods", &self.namespace)),
        }
    }
}

/// Label on every helper pod, so leftovers can be found (`kubectl get pods -l kcap/helper`).
pub const HELPER_LABEL: &str = "kcap/helper";

/// Creates the helper pod on `node`. `on_created` runs right after the API
/// accepted it, before waiting, so the reaper knows it from the first moment.
pub async fn create_helper(
    client: &kube::Client,
    namespace: &str,
    node: &str,
    image: &str,
    on_created: impl FnOnce(&HelperPod),
) -> Result<HelperPod, Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let name = format!("kcap-helper-{}", random_suffix());
    let manifest: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {HELPER_LABEL: "true"}},
        "spec": {
            "nodeName": node,
            "hostNetwork": true,
            "hostPID": true,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "tolerations": [{"operator": "Exists"}],
            "containers": [{
                "name": "capture",
                "image": image,
                // Idle; captures are exec'd in. Bounded, so a helper orphaned by a
                // killed kcap and its killed reaper still ends within a day.
                "command": ["sleep", "86400"],
                "securityContext": {"privileged": true, "runAsUser": 0},
            }],
        },
    }))
    .expect("static manifest");
    api.create(&PostParams::default(), &manifest)
        .await
        .map_err(|e| {
            // Refused by admission, or as invalid: the server's reason is the message.
            let message = match &e {
                kube::Error::Api(s)
                    if s.code == 422 || s.code == 400 || Error::admission_refusal(&e).is_some() =>
                {
                    Some(s.message.clone())
                }
                _ => None,
            };
            match message {
                Some(message) => Error::HelperRejected {
                    namespace: namespace.into(),
                    node: node.into(),
                    message,
                    source: Some(Arc::new(e)),
                },
                None => Error::from_kube(e, "create", "pods", namespace),
            }
        })?;
    let helper = HelperPod {
        namespace: namespace.into(),
        name: name.clone(),
    };
    on_created(&helper);
    let last = start::await_start(&api, &name, start::helper_pod).await?;
    let message = match last.as_ref().map(start::helper_pod) {
        Some(Start::Running) => return Ok(helper),
        Some(Start::Failed(why)) => why,
        Some(Start::Pending) | None => format!(
            "not running after {START_TIMEOUT:?} {}",
            last.as_ref()
                .map(start::pending_reasons)
                .unwrap_or_default()
        ),
    };
    Err(Error::HelperNotStarted {
        helper: name,
        node: node.into(),
        message,
    })
}

/// Captures at `side` (see [`NETNS`]) from the helper.
pub async fn exec_in_helper(
    client: &kube::Client,
    helper: &HelperPod,
    side: &NodeSide,
    command: &CaptureCommand,
) -> Result<PodProcess, Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &helper.namespace);
    let capture = command.to_argv("").map_err(capture_command_error)?;
    let attached = api
        .exec(&helper.name, netns_argv(side, capture), &params("capture"))
        .await
        .map_err(|e| Error::from_kube(e, "create", "pods/exec", &helper.namespace))?;
    Ok(PodProcess::new(attached))
}

pub(crate) fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = h.finish();
    (0..5)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NETNS's functions (not its main part), then `body`, run by the real `sh`.
    fn netns_sh(body: &str, args: &[&str]) -> String {
        let (functions, _) = NETNS.split_once("# ---- main ----").expect("a main part");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{functions}\n{body}"))
            .arg("netns-test")
            .args(args)
            .output()
            .expect("sh runs");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    const ID: &str = "4c3f1b0e9d8a7c6b5a49382716f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3";
    const UID: &str = "6f7c0b7e_3c2a_4d43_9a57_1f0e2b9c8d11";

    /// `/proc/PID/cgroup` lines as containerd, CRI-O and Docker write them, with
    /// the systemd and cgroupfs drivers, on cgroup v2 (`0::`) and v1
    /// (`N:controllers:`): each names the container; the others name none.
    fn recorded_lines() -> Vec<(String, &'static str)> {
        let dashed = UID.replace('_', "-");
        vec![
            // containerd, systemd driver, v2 and v1.
            (
                format!(
                    "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID}.slice/cri-containerd-{ID}.scope"
                ),
                ID,
            ),
            (
                format!(
                    "1:name=systemd:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID}.slice/cri-containerd-{ID}.scope"
                ),
                ID,
            ),
            // containerd, cgroupfs driver, v1 and v2.
            (
                format!("11:memory:/kubepods/burstable/pod{dashed}/{ID}"),
                ID,
            ),
            (format!("0::/kubepods/besteffort/pod{dashed}/{ID}"), ID),
            // CRI-O, v2 and v1; its conmon is not the container.
            (
                format!(
                    "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID}.slice/crio-{ID}.scope"
                ),
                ID,
            ),
            (
                format!(
                    "4:pids:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID}.slice/crio-{ID}.scope"
                ),
                ID,
            ),
            (
                format!(
                    "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID}.slice/crio-conmon-{ID}.scope"
                ),
                "",
            ),
            // Docker (cri-dockerd), systemd driver v2, cgroupfs v1.
            (format!("0::/system.slice/docker-{ID}.scope"), ID),
            (format!("12:devices:/docker/{ID}"), ID),
            (
                format!("9:cpu,cpuacct:/kubepods/besteffort/pod{dashed}/{ID}"),
                ID,
            ),
            // Not containers.
            (
                format!(
                    "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID}.slice"
                ),
                "",
            ),
            ("0::/user.slice/user-0.slice/session-3.scope".into(), ""),
            ("0::/init.scope".into(), ""),
            ("0::/".into(), ""),
        ]
    }

    #[test]
    fn cgroup_lines_of_every_runtime_name_their_container() {
        for (line, id) in recorded_lines() {
            let got = netns_sh(r#"cgroup_id "$1"; printf '%s' "$id""#, &[&line]);
            assert_eq!(got, id, "{line}");
        }
    }

    /// The process table way: in a recorded /proc (one cgroup file per process),
    /// the process whose cgroup names the container is found, whichever runtime
    /// wrote it; conmon and the pod's slice are passed over.
    #[test]
    fn the_process_whose_cgroup_names_the_container_is_found() {
        /// Removed however the test ends.
        struct Scratch(std::path::PathBuf);
        impl Drop for Scratch {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let scratch =
            Scratch(std::env::temp_dir().join(format!("kcap-cgroups-{}", std::process::id())));
        let root = &scratch.0;
        let lines = recorded_lines();
        for (i, (line, id)) in lines.iter().enumerate() {
            let _ = std::fs::remove_dir_all(root);
            // Process 10: the pod's slice, 20: CRI-O's conmon, 30 + i: the recorded line.
            for (pid, text) in [
                (10, lines[10].0.clone()),
                (20, lines[6].0.clone()),
                (30 + i, format!("2:cpu:/\n{line}\n")),
            ] {
                std::fs::create_dir_all(root.join(pid.to_string())).unwrap();
                std::fs::write(root.join(format!("{pid}/cgroup")), text).unwrap();
            }
            let got = netns_sh(
                r#"cid=$2; if pid_in_cgroups "$1"; then printf '%s' "$pid"; else printf none; fi"#,
                &[root.to_str().unwrap(), ID],
            );
            let want = if *id == ID {
                (30 + i).to_string()
            } else {
                "none".into()
            };
            assert_eq!(got, want, "{line}");
        }
    }

    /// NETNS puts the veth in the wrapper's 7th word (`sh -c SCRIPT kcap CONN TOOL IFACE`).
    #[test]
    fn the_wrapper_interface_is_the_seventh_word() {
        let command = CaptureCommand {
            tool: kcap_capture::command::Tool::Auto,
            interface: "eth0".into(),
            snaplen: 100,
            buffer_kib: 1,
            count: None,
            direction: kcap_capture::command::Direction::InOut,
            filter: None,
            sudo: false,
            agent: None,
            process: kcap_capture::command::ProcessMode::Off,
        };
        assert_eq!(command.to_argv("").unwrap()[6], "eth0");
        assert!(NETNS.contains(r#"if [ "$i" -eq 7 ]; then a=$dev; fi"#));
    }
}
