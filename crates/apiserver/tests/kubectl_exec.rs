//! exec, attach (kubectl debug) and other kubectl versions, over the WebSocket protocol.

mod common;

use std::process::Stdio;
use std::time::Instant;

use common::Bed;

#[test]
fn exec_exit_codes_and_errors() {
    require_kubectl!();
    let bed = Bed::start();
    let out = bed.kubectl(&["exec", "static", "--", "echo", "hello"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    let web = bed.pod("default", "web-");
    let out = bed.kubectl(&[
        "exec",
        &web,
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("err"));

    // stdin is forwarded and its end closes the process's stdin.
    let mut cmd = bed.command(
        "kubectl",
        &bed.admin,
        &["exec", "-i", &web, "--", "wc", "-c"],
    );
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&vec![b'x'; 100_000]).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "100000",
        "{out:?}"
    );

    let out = bed.kubectl(&["exec", "static", "--", "sh", "-c", "true"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            r#"OCI runtime exec failed: exec failed: unable to start container process: exec: "sh": executable file not found in $PATH: unknown"#
        ),
        "{out:?}"
    );
    let out = bed.kubectl(&["exec", "static", "-c", "nosuch", "--", "true"]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("container nosuch is not valid for pod static"),
        "{out:?}"
    );
    let out = bed.kubectl(&["exec", "nosuch", "--", "true"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(r#"pods "nosuch" not found"#),
        "{out:?}"
    );
}

fn sha256(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn exec_streams_200_mb_byte_identical() {
    require_kubectl!();
    let bed = Bed::start();
    let file = bed.dir.path().join("random.bin");
    let status = std::process::Command::new("head")
        .args(["-c", "200000000", "/dev/urandom"])
        .stdout(std::fs::File::create(&file).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let want = sha256(std::process::Command::new("sha256sum").arg(&file));
    let out_file = bed.dir.path().join("copy.bin");
    let mut cmd = bed.command(
        "kubectl",
        &bed.admin,
        &[
            "exec",
            "tools",
            "-n",
            "prod",
            "--",
            "cat",
            file.to_str().unwrap(),
        ],
    );
    cmd.stdout(std::fs::File::create(&out_file).unwrap());
    let start = Instant::now();
    let status = cmd.status().unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert!(status.success());
    eprintln!(
        "EXEC THROUGHPUT: 200 MB in {secs:.2} s = {:.0} MB/s (into a file)",
        200.0 / secs
    );
    let got = sha256(std::process::Command::new("sha256sum").arg(&out_file));
    assert_eq!(got, want);

    let mut cmd = bed.command(
        "kubectl",
        &bed.admin,
        &[
            "exec",
            "tools",
            "-n",
            "prod",
            "--",
            "cat",
            file.to_str().unwrap(),
        ],
    );
    cmd.stdout(Stdio::null());
    let start = Instant::now();
    assert!(cmd.status().unwrap().success());
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "EXEC THROUGHPUT: 200 MB in {secs:.2} s = {:.0} MB/s (to /dev/null)",
        200.0 / secs
    );
}

/// Slow (~100 s): kubectl dies after ~60 s without pongs; every line must arrive.
#[test]
fn slow_exec_stream_held_open_past_90_seconds() {
    require_kubectl!();
    let bed = Bed::start();
    let out = bed.kubectl(&[
        "exec",
        "tools",
        "-n",
        "prod",
        "--",
        "sh",
        "-c",
        "for i in $(seq 100); do echo $i; sleep 1; done",
    ]);
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    let want: Vec<String> = (1..=100).map(|i| i.to_string()).collect();
    assert_eq!(lines, want);
}

#[test]
fn debug_runs_an_ephemeral_container() {
    require_kubectl!();
    let bed = Bed::start();
    let out = bed.kubectl(&[
        "debug",
        "tools",
        "-n",
        "prod",
        "-i",
        "--image=kcap.test/debug:1",
        "--target=app",
        "--",
        "sh",
        "-c",
        "sleep 2; echo hello-from-debug; echo to-stderr >&2",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("hello-from-debug"),
        "{out:?}"
    );
    let pod = bed.ok(&["get", "pod", "tools", "-n", "prod", "-o", "json"]);
    let pod: serde_json::Value = serde_json::from_str(&pod).unwrap();
    let st = &pod["status"]["ephemeralContainerStatuses"][0];
    assert_eq!(st["state"]["terminated"]["exitCode"], 0, "{st}");
    assert_eq!(st["state"]["terminated"]["reason"], "Completed", "{st}");
    assert_eq!(
        pod["spec"]["ephemeralContainers"][0]["targetContainerName"],
        "app"
    );

    // Without -i kubectl only starts it; what it printed is in its logs. (With -i
    // a command this quick may end before kubectl attaches, and attach, as on a
    // real cluster, streams only what comes after: a race, not a test.)
    let out = bed.kubectl(&[
        "debug",
        "tools",
        "-n",
        "prod",
        "--image=kcap.test/debug:1",
        "--container=quick",
        "--",
        "echo",
        "quick-one",
    ]);
    assert!(out.status.success(), "{out:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let logs = bed.kubectl(&["logs", "tools", "-n", "prod", "-c", "quick"]);
        if String::from_utf8_lossy(&logs.stdout).contains("quick-one") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{logs:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn other_kubectl_versions() {
    require_kubectl!();
    let bed = Bed::start();
    for v in ["kubectl.1.31", "kubectl.1.33", "kubectl.1.30"] {
        if !common::kubectl_dir().join(v).exists() {
            continue;
        }
        let out = bed.run(bed.command(v, &bed.admin, &["get", "pods", "-o", "wide"]));
        assert!(out.status.success(), "{v}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("static"));
        let out = bed.run(bed.command(
            v,
            &bed.admin,
            &[
                "exec",
                "-n",
                "prod",
                "tools",
                "--",
                "sh",
                "-c",
                "echo v; exit 4",
            ],
        ));
        assert_eq!(out.status.code(), Some(4), "{v}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "v\n");
    }
}
