//! The data plane of a Kubernetes-like cluster on the bed's nodes: pods with
//! real networking in two CNI styles (`cni`), per-node IPAM (`ipam`), emulated
//! container images (`images`), container processes (`container`, `exec`,
//! `procs`), the runtime tying them together (`runtime`) and `crictl` on the
//! nodes (`crictl`). The API server drives it through
//! `kcap_apiserver::runtime::PodRuntime`; tests may call it directly.

mod cni;
mod container;
mod crictl;
mod exec;
mod ids;
mod images;
mod ipam;
mod podruntime;
mod procs;
mod runtime;
mod types;

pub(crate) use cni::setup_nodes;
pub(crate) use crictl::{
    bin_dir as crictl_bin_dir, load as load_cri_state, state_path as cri_state_path,
};
pub use images::LARGE_PULL;
pub use images::names as image_names;
pub use runtime::ClusterRuntime;
pub use types::{ClusterError, ContainerInfo, ContainerRequest, PodInfo, PodRequest};
