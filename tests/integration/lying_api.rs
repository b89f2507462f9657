//! An API server that lies: kubeconfig points kcap at a server (a real socket on
//! loopback, `lying_api.py`) whose answers are endless, claim 4 GB, drip a byte a
//! second, never come, never end their head, or stop short. kcap must end with
//! the documented exit (15, the API server cannot be used), naming what was wrong,
//! in bounded time and memory.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::*;

/// A running `lying_api.py` and the port it listens on; killed when dropped.
struct LyingApi {
    child: Child,
    port: u16,
}

impl LyingApi {
    fn start(mode: &str) -> LyingApi {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/integration/lying_api.py"
        );
        let mut child = Command::new("python3")
            .args([script, mode])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap();
        LyingApi { child, port }
    }
}

impl Drop for LyingApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// kcap against a lying server: its output, how long it took, its peak RSS in MiB.
fn capture_against(mode: &str) -> (std::process::Output, Duration, u64) {
    let api = LyingApi::start(mode);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\n\
             clusters: [{{name: c, cluster: {{server: \"http://127.0.0.1:{}\"}}}}]\n\
             users: [{{name: u, user: {{token: t}}}}]\n\
             contexts: [{{name: x, context: {{cluster: c, user: u, namespace: prod}}}}]\n\
             current-context: x\n",
            api.port
        ),
    )
    .unwrap();
    run_with_peak_rss(
        Command::new(KCAP)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["pod/web", "-o"])
            .arg(dir.path().join("out.pcapng")),
    )
}

#[test]
fn a_lying_api_server_gets_an_error_in_bounded_time_and_memory() {
    // (mode, what the error must say, the longest it may take). Every lookup that
    // has to wait counts: the names lookup gives up on the first list, then the
    // target's own request waits (10 s for a head, 30 s for a whole answer).
    let cases: &[(&str, &str, u64)] = &[
        ("huge", "is over 64 MiB", 40),
        ("liar", "is over 64 MiB", 40),
        ("slow", "did not end within 30s", 75),
        (
            "silent",
            "did not answer GET /api/v1/namespaces/prod/pods/web within 10s",
            30,
        ),
        ("header", "cannot reach the Kubernetes API server", 10),
        ("truncated", "cannot reach the Kubernetes API server", 10),
    ];
    // All at once: the slow ones wait out their timeouts side by side.
    let runs: Vec<_> = cases
        .iter()
        .map(|&(mode, _, _)| std::thread::spawn(move || capture_against(mode)))
        .collect();
    for (&(mode, says, within), run) in cases.iter().zip(runs) {
        let (out, took, rss) = run.join().unwrap();
        assert_exit(&out, 15, &[says]);
        assert!(
            took < Duration::from_secs(within),
            "{mode}: took {took:?}\n{}",
            stderr(&out)
        );
        assert!(rss < 160, "{mode}: peak RSS {rss} MiB");
    }
}
