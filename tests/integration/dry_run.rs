//! `--dry-run` on the test-bed cluster: it resolves and checks every target and
//! prints the plan, and starts nothing (no capture process anywhere, no helper pod,
//! no debug container). A target that cannot work gets the error a real run
//! gives. Also: a filter the capture tool rejects is the user's error whatever the
//! method (exit 9 at once, its hint quoting the filter the tool got).

use std::process::Output;

use kcap_testbed::{RequestKind, SECURE_NAMESPACE, Spec};
use serde_json::Value;

use crate::kube::LIMIT;
use crate::util::{Bed, assert_exit, run, stderr};

fn dry_run(bed: &Bed, kubeconfig: &std::path::Path, args: &[&str]) -> (Output, Value) {
    let mut cmd = bed.kcap();
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--image", crate::kube::IMAGE, "--dry-run=json"]);
    let out = run(cmd.args(args), LIMIT);
    let plan = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        )
    });
    (out, plan)
}

/// The pod IPs of the prod pods labelled `app=APP`.
fn pod_ips(bed: &Bed, app: &str) -> Vec<String> {
    bed.pod_field(app, "status.podIP")
}

fn methods(source: &Value) -> Vec<(String, bool)> {
    source["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["method"].as_str().unwrap().to_string(),
                m["ok"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// Nothing kcap could have started exists: the API server saw no create, patch,
/// delete, exec or attach (only questions), no capture process runs in any
/// namespace of the bed, no helper pod, no ephemeral container in any pod.
fn assert_untouched(bed: &Bed) {
    let requests = bed.bed.api_requests();
    let acted: Vec<_> = requests
        .iter()
        .filter(|r| r.kind != RequestKind::AccessReview)
        .collect();
    assert!(acted.is_empty(), "the API server saw {acted:#?}");
    let asked: Vec<String> = requests
        .iter()
        .filter_map(|r| r.review.as_ref())
        .map(|q| {
            format!(
                "{} {}/{}",
                q.verb,
                q.resource,
                q.subresource.as_deref().unwrap_or("")
            )
        })
        .collect();
    for question in [
        "create pods/exec",
        "patch pods/ephemeralcontainers",
        "create pods/",
    ] {
        assert!(
            asked.iter().any(|a| a == question),
            "never asked {question:?}: {asked:?}"
        );
    }
    assert_eq!(bed.capture_processes(), vec![]);
    let helpers = bed.kubectl_out(&["get", "pods", "-A", "-l", "kcap/helper", "-o", "name"]);
    assert_eq!(helpers, "");
    let ephemeral = bed.kubectl_out(&[
        "get",
        "pods",
        "-A",
        "-o",
        "jsonpath={range .items[*]}{.spec.ephemeralContainers[*].name}{end}",
    ]);
    assert_eq!(ephemeral, "");
}

#[test]
fn dry_run_plans_every_target_and_touches_nothing() {
    kcap_testbed::require_kubectl!();
    let bed = Bed::with(Spec::cluster(2).with_pod_security());
    let admin = bed.bed.kubeconfig();

    // A deployment: its three pods, each with the method auto would use and the
    // final filter.
    let (out, plan) = dry_run(
        &bed,
        &admin,
        &["-n", "prod", "deploy/web", "--port", "8080"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let sources = plan["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 3, "{plan:#}");
    let web_ips = pod_ips(&bed, "web");
    for s in sources {
        assert_eq!(s["kind"], "pod");
        assert_eq!(s["namespace"], "prod");
        assert_eq!(s["method"], "exec");
        assert_eq!(s["filter"], "port 8080");
        // The wrapper's last four words: the filter, the agent's size, the
        // direction, --process.
        let argv = s["argv"].as_array().unwrap();
        assert_eq!(argv[argv.len() - 4], "port 8080");
        assert_eq!(argv[argv.len() - 2], "inout");
        assert_eq!(argv[argv.len() - 1], "off");
        assert_eq!(s["direction"], "inout");
        assert!(
            web_ips.contains(&s["pod_ip"].as_str().unwrap().to_string()),
            "{s:#}"
        );
        assert_eq!(
            methods(s),
            [
                ("exec".into(), true),
                ("ephemeral".into(), true),
                ("node".into(), true)
            ]
        );
    }
    assert_eq!(plan["exit_code"], 0);

    // A distroless pod through a helper pod, and a non-root one: what only a try
    // can tell is said as such.
    let (out, plan) = dry_run(
        &bed,
        &admin,
        &[
            "-n",
            "prod",
            "pod/distroless",
            "--via",
            "node",
            "--filter",
            "deploy/client",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = &plan["sources"][0];
    assert_eq!(
        (s["label"].as_str(), s["method"].as_str()),
        (Some("prod/distroless"), Some("node"))
    );
    let checks = s["methods"][0]["checks"].to_string();
    let (ip, id) = (
        s["pod_ip"].as_str().unwrap(),
        s["container_id"].as_str().unwrap(),
    );
    assert_eq!(s["capture_point"], "netns");
    assert!(
        checks.contains(&format!(
            "sh, tcpdump, nsenter and ip; the pod's network namespace is found by crictl \
             (container {id}), else netns by IP (the namespace holding {ip}), else cgroup"
        )),
        "{checks}"
    );
    // The filter token is expanded to the client pods' addresses.
    let client_ip = pod_ips(&bed, "client").join(" or host ");
    assert_eq!(plan["filter"], format!("(host {client_ip})"));
    // --capture-point veth: with --via auto only the node's method reaches the
    // host-side interface, found by the pod's IP.
    let (out, plan) = dry_run(
        &bed,
        &admin,
        &["-n", "prod", "pod/distroless", "--capture-point", "veth"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = &plan["sources"][0];
    assert_eq!(s["capture_point"], "veth");
    assert_eq!(methods(s), [("node".into(), true)]);
    let checks = s["methods"][0]["checks"].to_string();
    assert!(
        checks.contains(&format!(
            "sh, tcpdump and ip (and bridge on a bridge CNI); captures on the pod's host-side \
             veth in the node's namespace, found by the route to {ip}"
        )),
        "{checks}"
    );
    let (out, plan) = dry_run(
        &bed,
        &admin,
        &["-n", "prod", "pod/nonroot", "--via", "exec"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let checks = plan["sources"][0]["methods"][0]["checks"].to_string();
    assert!(
        checks.contains("root or NET_RAW: known only by trying"),
        "{checks}"
    );

    // The Pod Security namespace: the debug container and the helper pod would be
    // refused, with the errors and exit code a real run gives.
    let (out, plan) = dry_run(
        &bed,
        &admin,
        &["-n", SECURE_NAMESPACE, "pod/app", "--via", "ephemeral"],
    );
    assert_eq!(out.status.code(), Some(16), "{}", stderr(&out));
    let error = &plan["sources"][0]["error"];
    assert_eq!(error["exit_code"], 16);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("pod secure/app: the debug container was refused by admission"),
        "{error:#}"
    );
    assert!(
        error["hint"].as_str().unwrap().contains("--via ssh"),
        "{error:#}"
    );
    let (out, plan) = dry_run(&bed, &admin, &["-n", SECURE_NAMESPACE, "pod/app"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        methods(&plan["sources"][0]),
        [
            ("exec".into(), true),
            ("ephemeral".into(), false),
            ("node".into(), false)
        ]
    );

    // An account that may only read: every method needs a verb it lacks, so the
    // plan fails as a run would, with RBAC's exit code and the verb named.
    let (out, plan) = dry_run(
        &bed,
        &bed.bed.restricted_kubeconfig(),
        &["-n", "prod", "pod/toolbox"],
    );
    assert_eq!(out.status.code(), Some(14), "{}", stderr(&out));
    let error = &plan["sources"][0]["error"];
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("forbidden: this account may not create pods/exec in namespace prod"),
        "{error:#}"
    );
    assert_eq!(
        methods(&plan["sources"][0]),
        [
            ("exec".into(), false),
            ("ephemeral".into(), false),
            ("node".into(), false)
        ]
    );

    // The text form says the same for people.
    let out = run(
        bed.kcap_kube().args([
            "-n",
            SECURE_NAMESPACE,
            "pod/app",
            "--via",
            "node",
            "--dry-run",
        ]),
        LIMIT,
    );
    assert_exit(
        &out,
        16,
        &[
            "helper pod in namespace secure on node",
            "violates PodSecurity",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("kcap dry run: nothing was started, created, patched or exec'd."),
        "{text}"
    );
    assert!(text.contains("secure/app (pod) on node"), "{text}");

    assert_untouched(&bed);
}

/// A filter tcpdump rejects: `--via auto` stops at the first method (exit 9) with
/// the tool's own message (without its informational `data link type` line), and
/// the hint quotes the filter the tool received, pod tokens expanded.
/// More pods than the bed's API server puts in one page (it gives at most
/// `PAGE_CAP` per page, as a server may): kcap reads every page, so a selector
/// plans every pod, the same ones kubectl lists.
#[test]
fn a_selector_wider_than_a_page_plans_every_pod() {
    kcap_testbed::require_kubectl!();
    let bed = crate::kube::cluster();
    let replicas = kcap_testbed::PAGE_CAP + 4;
    bed.kubectl_out(&[
        "scale",
        "-n",
        "prod",
        "deployment/web",
        &format!("--replicas={replicas}"),
    ]);
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let phases = bed.pod_field("web", "status.phase");
        if phases.len() == replicas && phases.iter().all(|p| p == "Running") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "web never scaled: {phases:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let (out, plan) = dry_run(
        &bed,
        &bed.bed.kubeconfig(),
        &["-n", "prod", "-l", "app=web"],
    );
    assert_eq!(out.status.code(), Some(0), "{}\n{plan:#}", stderr(&out));
    let mut planned: Vec<String> = plan["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    planned.sort();
    let mut listed = bed.pods_of("web");
    listed.sort();
    assert_eq!(planned, listed);
}

#[test]
fn a_rejected_filter_stops_at_once_and_quotes_what_the_tool_got() {
    kcap_testbed::require_kubectl!();
    let bed = crate::kube::cluster();
    let out = run(
        bed.kcap_kube()
            .args([
                "-n",
                "prod",
                "pod/toolbox",
                "--container",
                "tools",
                "--filter",
                "deploy/client and frobnicate",
                "-d",
                "5s",
                "-o",
            ])
            .arg(bed.path("f.pcapng")),
        LIMIT,
    );
    let client_ip = pod_ips(&bed, "client").join(" or host ");
    let expanded = format!("(host {client_ip}) and frobnicate");
    assert_exit(
        &out,
        9,
        &[
            "prod/toolbox: error:",
            "syntax error",
            &format!("hint: the capture tool rejected the filter \"{expanded}\""),
        ],
    );
    let text = stderr(&out);
    assert!(!text.contains("every capture method failed"), "{text}");
    assert!(!text.contains("data link type"), "{text}");
    assert!(!text.contains("deploy/client and"), "{text}");
}
