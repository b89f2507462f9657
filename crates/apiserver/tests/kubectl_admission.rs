//! Refusals as a real cluster words them, through the real kubectl: Pod Security
//! admission in a namespace enforcing `baseline` (kubectl debug with added
//! capabilities, kubectl run --privileged, a hostNetwork pod), then `restricted` after
//! relabelling; and an old cluster without ephemeral containers.

mod common;

use std::process::Output;

use common::{Bed, default_objects};
use kcap_apiserver::Features;
use serde_json::json;

/// The default objects plus namespace `secure` (baseline enforced) and its pod `app`.
fn secure_bed() -> Bed {
    let mut objects = default_objects();
    objects.push(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "secure",
        "labels": {"pod-security.kubernetes.io/enforce": "baseline"}}}),
    );
    objects.push(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app", "namespace": "secure"},
        "spec": {"containers": [{"name": "app", "image": "kcap.test/app:1", "command": ["sleep", "3600"]}]}}));
    Bed::with_objects(objects)
}

/// kubectl failed and said `says` on stderr.
fn refused(out: &Output, says: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "kubectl succeeded: {out:?}");
    assert!(err.contains(says), "stderr lacks {says:?}:\n{err}");
}

#[test]
fn baseline_refuses_debug_capabilities_privileged_and_host_network() {
    require_kubectl!();
    let bed = secure_bed();
    let debug = |profile: &str| {
        bed.kubectl(&[
            "debug",
            "app",
            "-n",
            "secure",
            "--image=kcap.test/debug:1",
            &format!("--profile={profile}"),
            "--",
            "true",
        ])
    };
    let out = debug("netadmin");
    refused(
        &out,
        r#"Error from server (Forbidden): pods "app" is forbidden: violates PodSecurity "baseline:latest": non-default capabilities (container "debugger-"#,
    );
    refused(
        &out,
        r#"" must not include "NET_ADMIN", "NET_RAW" in securityContext.capabilities.add)"#,
    );
    let added = bed.ok(&[
        "get",
        "pod",
        "app",
        "-n",
        "secure",
        "-o",
        "jsonpath={.spec.ephemeralContainers}",
    ]);
    assert_eq!(added.trim(), "", "a refused container stayed in the spec");
    // A debug container within the level is admitted.
    let out = debug("baseline");
    assert!(out.status.success(), "{out:?}");

    let out = bed.kubectl(&[
        "run",
        "priv",
        "-n",
        "secure",
        "--image=kcap.test/app:1",
        "--privileged",
        "--",
        "sleep",
        "60",
    ]);
    refused(
        &out,
        r#"Error from server (Forbidden): pods "priv" is forbidden: violates PodSecurity "baseline:latest": privileged (container "priv" must not set securityContext.privileged=true)"#,
    );
    let host_network = |ns: &str| {
        bed.kubectl(&[
            "run",
            "hostnet",
            "-n",
            ns,
            "--image=kcap.test/app:1",
            r#"--overrides={"apiVersion": "v1", "spec": {"hostNetwork": true}}"#,
        ])
    };
    refused(
        &host_network("secure"),
        r#"pods "hostnet" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true)"#,
    );
    let names = bed.ok(&["get", "pods", "-n", "secure", "-o", "name"]);
    assert_eq!(names.trim(), "pod/app", "refused pods were stored");
    // Namespaces without the label admit anything.
    let out = host_network("prod");
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn restricted_after_relabelling_wants_a_locked_down_pod() {
    require_kubectl!();
    let bed = secure_bed();
    bed.ok(&[
        "label",
        "namespace",
        "secure",
        "--overwrite",
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
    let out = bed.kubectl(&["run", "plain", "-n", "secure", "--image=kcap.test/app:1"]);
    refused(
        &out,
        concat!(
            r#"pods "plain" is forbidden: violates PodSecurity "restricted:latest": "#,
            r#"allowPrivilegeEscalation != false (container "plain" must set securityContext.allowPrivilegeEscalation=false), "#,
            r#"unrestricted capabilities (container "plain" must set securityContext.capabilities.drop=["ALL"]), "#,
            r#"runAsNonRoot != true (pod or container "plain" must set securityContext.runAsNonRoot=true), "#,
            r#"seccompProfile (pod or container "plain" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#
        ),
    );
}

#[test]
fn old_cluster_has_no_ephemeral_containers() {
    require_kubectl!();
    let bed = Bed::with_features(
        default_objects(),
        Features {
            ephemeral_containers: false,
        },
    );
    let out = bed.kubectl(&[
        "debug",
        "tools",
        "-n",
        "prod",
        "--image=kcap.test/debug:1",
        "--profile=general",
        "--",
        "true",
    ]);
    refused(
        &out,
        r#"error: ephemeral containers are disabled for this cluster (error from server: "the server could not find the requested resource")"#,
    );
    let discovery = bed.ok(&["get", "--raw", "/api/v1"]);
    assert!(discovery.contains("\"pods/exec\""), "{discovery}");
    assert!(!discovery.contains("ephemeralcontainers"), "{discovery}");
}
