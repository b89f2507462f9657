//! Controllers as kubectl sees them: deleting pods brings replacements, scaling,
//! creating and deleting pods, watches that see it all.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Bed;

#[test]
fn watch_sees_delete_and_replacement() {
    require_kubectl!();
    let bed = Bed::start();
    let victim = bed.pod("default", "web-");
    let mut cmd = bed.command(
        "kubectl",
        &bed.admin,
        &[
            "get",
            "pods",
            "-l",
            "app=web",
            "--watch",
            "--output-watch-events",
        ],
    );
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut watcher = cmd.spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = watcher.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("watch: {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Both current pods are listed first.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.iter().filter(|l: &&String| l.contains("web-")).count() < 2
        && Instant::now() < deadline
    {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(l);
        }
    }
    let out = bed.kubectl(&["delete", "pod", &victim]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("pod \"{victim}\" deleted")));
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut deleted, mut added_new) = (false, false);
    while !(deleted && added_new) && Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            deleted |= l.starts_with("DELETED") && l.contains(&victim);
            added_new |= l.starts_with("ADDED") && !l.contains(&victim) && !seen.contains(&l);
            seen.push(l);
        }
    }
    let _ = watcher.kill();
    let _ = watcher.wait();
    assert!(deleted && added_new, "watch saw: {seen:#?}");
    let pods = bed.ok(&["get", "pods", "-l", "app=web", "-o", "name"]);
    assert_eq!(pods.lines().count(), 2, "{pods}");
    assert!(!pods.contains(&victim));

    // A StatefulSet pod comes back under its own name, with a new uid.
    // `--wait=false`: once, under a loaded CI run, kubectl's wait for a deleted pod
    // whose name is immediately reused never returned (a race between its GET and
    // watch and our replacement, not yet understood); the churn is what this checks.
    let uid = |bed: &Bed| {
        // Not found for a moment while it is being replaced: that is an empty uid.
        let out = bed.kubectl(&[
            "get",
            "pod",
            "db-1",
            "-n",
            "prod",
            "-o",
            "jsonpath={.metadata.uid}",
        ]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let before = uid(&bed);
    let out = bed.kubectl(&["delete", "pod", "db-1", "-n", "prod", "--wait=false"]);
    assert!(out.status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while [String::new(), before.clone()].contains(&uid(&bed)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let after = uid(&bed);
    assert!(
        !after.is_empty() && after != before,
        "db-1 was not replaced"
    );
    bed.server.wait_ready(Duration::from_secs(30)).unwrap();
    assert!(
        bed.ok(&["get", "pod", "db-1", "-n", "prod"])
            .contains("Running")
    );
}

#[test]
fn scale_run_and_delete() {
    require_kubectl!();
    let bed = Bed::start();
    let out = bed.ok(&["scale", "deploy/web", "--replicas=4"]);
    assert!(out.contains("scaled"), "{out}");
    bed.server.wait_ready(Duration::from_secs(30)).unwrap();
    assert_eq!(
        bed.ok(&["get", "pods", "-l", "app=web", "-o", "name"])
            .lines()
            .count(),
        4
    );
    let ep = bed.ok(&["get", "endpoints", "web", "-o", "json"]);
    let ep: serde_json::Value = serde_json::from_str(&ep).unwrap();
    assert_eq!(
        ep["subsets"][0]["addresses"].as_array().unwrap().len(),
        4,
        "{ep}"
    );
    assert_eq!(ep["subsets"][0]["addresses"][0]["targetRef"]["kind"], "Pod");

    bed.ok(&["scale", "deploy/web", "--replicas=1"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while bed
        .ok(&["get", "pods", "-l", "app=web", "-o", "name"])
        .lines()
        .count()
        != 1
    {
        assert!(Instant::now() < deadline, "scale down did not finish");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(bed.ok(&["get", "deploy", "web"]).contains("1/1"));

    bed.ok(&[
        "run",
        "extra",
        "--image=kcap.test/app:1",
        "--",
        "sleep",
        "60",
    ]);
    bed.server.wait_ready(Duration::from_secs(30)).unwrap();
    assert!(bed.ok(&["get", "pod", "extra"]).contains("Running"));
    bed.ok(&["delete", "pod", "extra"]);
    let out = bed.kubectl(&["get", "pod", "extra"]);
    assert!(!out.status.success());

    bed.ok(&["run", "broken", "--image=kcap.test/doesnotexist:1"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(bed.ok(&["get", "pod", "broken"]).contains("ErrImagePull"));
}
