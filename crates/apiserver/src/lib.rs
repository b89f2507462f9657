//! A Kubernetes API server for kcap's test bed: enough of the real wire protocol
//! (discovery, objects, watch, exec/attach over WebSocket, ephemeral containers) that
//! the real kubectl and kube-rs accept it. Pods are run by a [`runtime::PodRuntime`].

pub mod runtime;
