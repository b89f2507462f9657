//! kcap-testbed: a real multi-host network on one Linux machine, for kcap's
//! integration tests and for trying kcap by hand.
//!
//! Every host (the "client" workstation, jump hosts, nodes) is a network
//! namespace; networks are bridges in their own switch namespaces; every
//! non-client host runs a real OpenSSH sshd with fresh host keys, and small
//! traffic generators keep packets flowing. Nothing touches the root
//! namespace, so any number of beds can use the same addresses at once.
//!
//! ```no_run
//! let bed = kcap_testbed::Testbed::up(kcap_testbed::Spec::minimal())?;
//! let out = bed
//!     .client_command("ssh")
//!     .arg("-F")
//!     .arg(bed.ssh_config())
//!     .args(["node-a", "hostname"])
//!     .output()?;
//! assert!(out.status.success());
//! # anyhow::Ok(())
//! ```
//!
//! [`Spec::cluster`] makes the nodes Kubernetes-like: pods with real networking
//! (bridge and routed CNI styles), emulated container images, `crictl` on the
//! nodes, and a Kubernetes API server (`kcap_apiserver`) on a `control-plane`
//! host at `https://198.51.100.5:6443` that runs the default [`Scenario`]
//! (Deployments, a StatefulSet, a DaemonSet, Services, pods of every image)
//! through [`Testbed::runtime`]. The real kubectl talks to it from the client
//! namespace:
//!
//! ```no_run
//! let bed = kcap_testbed::Testbed::up(kcap_testbed::Spec::cluster(2))?;
//! let out = bed.kubectl().args(["get", "pods", "-A", "-o", "wide"]).output()?;
//! assert!(out.status.success());
//! # anyhow::Ok(())
//! ```
//!
//! Requires root, iproute2, openssh-server/-client, python3, util-linux
//! (`unshare`), passwd (`useradd`, `chpasswd`) and sudo.

mod cleanup;
mod cluster;
mod control_plane;
pub mod daemon;
mod keys;
mod netns;
mod process;
mod pubkey;
mod scenario;
mod spec;
mod sshconfig;
mod sshd;
mod state;
mod status;
mod testbed;
mod topology;
mod traffic;
mod users;

pub use cluster::{
    ClusterError, ClusterRuntime, ContainerInfo, ContainerRequest, LARGE_PULL, PodInfo, PodRequest,
    image_names,
};
pub use kcap_apiserver::paging::PAGE_CAP;
pub use kcap_apiserver::{AccessQuestion, ApiRequest, RequestKind};
pub use spec::{
    API_PORT, CONTROL_PLANE, CONTROL_PLANE_ADDRESS, Cni, HostSpec, NetworkSpec, PodNetworkSpec,
    Role, SECURE_NAMESPACE, Scenario, Spec, ToolOverride,
};
pub use testbed::Testbed;
pub use topology::{Host, Link, Network};

/// Password of [`USER_SUDO`] and [`USER_NOPRIV`] on every host.
pub const TEST_PASSWORD: &str = "kcap-testbed-pw";
/// Unprivileged user with passwordless sudo (password + key login).
pub const USER_SUDO: &str = "kcaptb";
/// Unprivileged user without sudo (for permission-denied tests).
pub const USER_NOPRIV: &str = "kcapnp";

/// Whether the real kubectl runs here (`kubectl version --client`, asked once). Tests
/// that drive kubectl skip without it, through [`require_kubectl!`]: a user's fresh
/// machine need not have it, and its absence is not a failure of kcap.
pub fn kubectl_installed() -> bool {
    static INSTALLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *INSTALLED.get_or_init(|| {
        std::process::Command::new("kubectl")
            .args(["version", "--client"])
            .stdin(std::process::Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// First line of a test that runs the real kubectl: without kubectl the test says
/// `SKIP: kubectl not installed` on one line and returns (passing).
#[macro_export]
macro_rules! require_kubectl {
    () => {
        if !$crate::kubectl_installed() {
            eprintln!("SKIP: kubectl not installed (this test drives the real kubectl)");
            return;
        }
    };
}
