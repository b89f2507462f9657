//! Node objects built from the test bed's [`crate::NodeInfo`].

use serde_json::{Value, json};

use crate::NodeInfo;

pub fn manifest(n: &NodeInfo) -> Value {
    let mut labels = serde_json::Map::new();
    for (k, v) in [
        ("kubernetes.io/hostname", n.name.as_str()),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("beta.kubernetes.io/os", "linux"),
        ("beta.kubernetes.io/arch", "amd64"),
    ] {
        labels.insert(k.into(), json!(v));
    }
    for (k, v) in &n.labels {
        labels.insert(k.clone(), json!(v));
    }
    let now = crate::util::now_rfc3339();
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": n.name, "labels": labels, "annotations": {}},
        "spec": {"podCIDR": n.pod_cidr, "podCIDRs": [n.pod_cidr]},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": n.internal_ip.to_string()},
                {"type": "Hostname", "address": n.name},
            ],
            "capacity": {"cpu": "2", "memory": "4026524Ki", "pods": "110", "ephemeral-storage": "20134592Ki"},
            "allocatable": {"cpu": "2", "memory": "3924124Ki", "pods": "110", "ephemeral-storage": "18556039957"},
            "conditions": [
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "message": "kubelet has sufficient memory available", "lastHeartbeatTime": now, "lastTransitionTime": now},
                {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure", "message": "kubelet has no disk pressure", "lastHeartbeatTime": now, "lastTransitionTime": now},
                {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID", "message": "kubelet has sufficient PID available", "lastHeartbeatTime": now, "lastTransitionTime": now},
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now},
            ],
            "nodeInfo": {
                "machineID": crate::util::random_hex(16),
                "systemUUID": crate::util::new_uid(),
                "bootID": crate::util::new_uid(),
                "kernelVersion": "6.1.0-kcap",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "containerRuntimeVersion": "containerd://1.7.24",
                "kubeletVersion": "v1.32.0",
                "kubeProxyVersion": "v1.32.0",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        },
    })
}
