//! kcap's Kubernetes side, on kube-rs (no kubectl binary): connecting with the
//! user's kubeconfig ([`client`]), `TYPE/NAME` targets ([`target`]), selectors and
//! resolution of workloads and services to pods ([`selector`], [`resolve`]), filter
//! tokens ([`filter_tokens`]), the capture methods ([`method`] names them,
//! [`methods`] and [`debug_container`] run them) producing a [`process::PodProcess`], and watching a
//! selector for new pods ([`follow`]). [`access`] asks what the account may do
//! before doing it.

pub mod access;
pub mod answer_limits;
pub mod client;
pub mod debug_container;
pub mod error;
pub mod filter_tokens;
pub mod follow;
pub mod method;
pub mod methods;
pub mod names;
pub mod paged;
pub mod pod;
pub mod process;
pub mod resolve;
pub mod selector;
mod start;
pub mod target;

pub use error::Error;
pub use method::Method;
