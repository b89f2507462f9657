//! The real kubectl against the API server: discovery, get (tables, selectors, JSON),
//! errors and the restricted user.

mod common;

use common::Bed;

#[test]
fn get_pods_all_namespaces_wide() {
    require_kubectl!();
    let bed = Bed::start();
    let out = bed.ok(&["get", "pods", "-A", "-o", "wide"]);
    let header = out.lines().next().unwrap();
    for col in ["NAMESPACE", "NAME", "READY", "STATUS", "IP", "NODE"] {
        assert!(header.contains(col), "missing {col}: {out}");
    }
    // 2 web + 2 agent + 2 db + static + tools
    assert_eq!(out.lines().count(), 9, "{out}");
    assert!(
        out.contains("Running") && out.contains("127.1.") && out.contains("node-b"),
        "{out}"
    );
}

/// kubectl reads lists in chunks (`--chunk-size`, `limit` and `continue`): every
/// pod once, in the same order as a whole list, as names and as a table.
#[test]
fn chunked_lists_follow_continue_tokens() {
    require_kubectl!();
    let bed = Bed::start();
    let whole = bed.ok(&["get", "pods", "-A", "--chunk-size=0", "-o", "name"]);
    assert_eq!(whole.lines().count(), 8, "{whole}");
    let out = bed.kubectl(&["get", "pods", "-A", "--chunk-size=3", "-o", "name", "-v=6"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), whole);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(log.matches("limit=3").count(), 3, "three pages:\n{log}");
    assert_eq!(log.matches("continue=").count(), 2, "{log}");
    let table = bed.ok(&["get", "pods", "-A", "--chunk-size=3"]);
    assert_eq!(table.lines().count(), 9, "one header, eight pods:\n{table}");
}

#[test]
fn get_with_label_selectors_and_kinds() {
    require_kubectl!();
    let bed = Bed::start();
    let web = bed.ok(&["get", "pods", "-l", "app=web", "-o", "name"]);
    assert_eq!(web.lines().count(), 2, "{web}");
    assert!(web.lines().all(|l| l.starts_with("pod/web-")), "{web}");
    let set = bed.ok(&[
        "get",
        "pods",
        "-A",
        "-l",
        "app in (db, tools),app!=tools",
        "-o",
        "name",
    ]);
    assert_eq!(set.lines().count(), 2, "{set}");
    let none = bed.ok(&["get", "pods", "-A", "-l", "!app", "-o", "name"]);
    assert!(none.lines().all(|l| l.starts_with("pod/agent-")), "{none}");
    let on_b = bed.ok(&[
        "get",
        "pods",
        "-A",
        "--field-selector",
        "spec.nodeName=node-b,status.phase=Running",
        "-o",
        "name",
    ]);
    assert!(on_b.contains("pod/static"), "{on_b}");

    let all = bed.ok(&["get", "deploy,ds,sts,svc", "-A"]);
    for want in [
        "deployment.apps/web",
        "daemonset.apps/agent",
        "statefulset.apps/db",
        "service/web",
        "2/2",
        "10.96.",
    ] {
        assert!(all.contains(want), "missing {want}: {all}");
    }
    let more = bed.ok(&["get", "nodes,ns,rs,ep", "-A", "-o", "wide"]);
    for want in [
        "node/node-a",
        "containerd://1.7",
        "namespace/prod",
        "replicaset.apps/web-",
        "endpoints/web",
        ":8080",
    ] {
        assert!(more.contains(want), "missing {want}: {more}");
    }
}

#[test]
fn get_pod_json_and_errors() {
    require_kubectl!();
    let bed = Bed::start();
    let out = bed.ok(&["get", "pod", "tools", "-n", "prod", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["kind"], "Pod");
    assert_eq!(v["apiVersion"], "v1");
    assert_eq!(v["status"]["phase"], "Running");
    assert!(
        v["status"]["containerStatuses"][0]["containerID"]
            .as_str()
            .unwrap()
            .starts_with("containerd://")
    );
    assert!(v["metadata"]["uid"].is_string() && v["metadata"]["resourceVersion"].is_string());

    let db = bed.ok(&["get", "pod", "db-0", "-n", "prod", "-o", "json"]);
    let db: serde_json::Value = serde_json::from_str(&db).unwrap();
    assert_eq!(db["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");
    let web = bed.pod("default", "web-");
    let w: serde_json::Value =
        serde_json::from_str(&bed.ok(&["get", "pod", &web, "-o", "json"])).unwrap();
    assert_eq!(w["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");

    let missing = bed.kubectl(&["get", "pod", "nosuch"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains(r#"pods "nosuch" not found"#));
    let dup = bed.kubectl(&[
        "run",
        "tools",
        "-n",
        "prod",
        "--image=kcap.test/tools:1",
        "--",
        "sleep",
        "60",
    ]);
    assert!(
        String::from_utf8_lossy(&dup.stderr).contains("already exists"),
        "{dup:?}"
    );
}

#[test]
fn restricted_user_reads_but_cannot_exec() {
    require_kubectl!();
    let bed = Bed::start();
    let out = bed.kubectl_restricted(&["get", "pods"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("tools"));
    let exec = bed.kubectl_restricted(&["exec", "tools", "--", "true"]);
    assert!(!exec.status.success());
    let err = String::from_utf8_lossy(&exec.stderr);
    assert!(
        err.contains(r#"pods "tools" is forbidden: User "restricted" cannot create resource "pods/exec" in API group "" in the namespace "prod""#),
        "{err}"
    );
    let del = bed.kubectl_restricted(&["delete", "pod", "tools", "--wait=false"]);
    assert!(
        String::from_utf8_lossy(&del.stderr).contains("cannot delete resource \"pods\""),
        "{del:?}"
    );
    // A wrong token is told to log in.
    let bad = bed.dir.path().join("bad.kubeconfig");
    std::fs::write(&bad, bed.server.kubeconfig("wrong-token", "default")).unwrap();
    let out = bed.run(bed.command("kubectl", &bad, &["get", "pods"]));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("You must be logged in"),
        "{out:?}"
    );
}
