//! `--callback` on the test bed: the web pods' live HTTP records POSTed to a real
//! local HTTP server (crates/callback/tests/collector.py) in the client namespace.
//! A collector that answers 503 twice and then recovers gets every record once,
//! in order, the same records `--http-out` wrote; one that never answers loses
//! them, and kcap says how many and exits 17.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::kube::LIMIT;
use crate::util::{Bed, assert_exit, assert_ok, run, stderr};

const COLLECTOR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/crates/callback/tests/collector.py"
);
const PORT: u16 = 18080;

struct Collector(Child);

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The collector in the client namespace, where kcap runs; waits until it listens.
fn collector(bed: &Bed, log: &Path, mode: &[&str]) -> Collector {
    let child = bed
        .bed
        .client_command("python3")
        .arg(COLLECTOR)
        .arg(PORT.to_string())
        .arg(log)
        .args(mode)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let collector = Collector(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let probe = bed
            .bed
            .client_command("curl")
            .args(["-s", "-o", "/dev/null", "-m", "1"])
            .arg(format!("http://127.0.0.1:{PORT}/"))
            .status()
            .unwrap();
        // Any HTTP answer (curl exit 0 or 22) means it listens.
        if probe.code() != Some(7) {
            return collector;
        }
        assert!(Instant::now() < deadline, "the collector never listened");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn every_record_reaches_a_collector_that_fails_then_recovers_once_in_order() {
    kcap_testbed::require_kubectl!();
    let bed = crate::kube::cluster();
    let log = bed.path("collected");
    let _collector = collector(&bed, &log, &["flaky", "2"]);
    let out_file = bed.path("records.jsonl");
    let out = run(
        bed.kcap_kube()
            .args([
                "-n",
                "prod",
                "deploy/web",
                "--http",
                "-d",
                "5s",
                "--http-out",
            ])
            .arg(&out_file)
            .args(["--callback", &format!("http://127.0.0.1:{PORT}/ingest")]),
        LIMIT,
    );
    assert_ok(&out);
    let written = lines(&out_file);
    assert!(
        written.len() >= 5,
        "{} records:\n{}",
        written.len(),
        stderr(&out)
    );
    let collected = lines(&log);
    assert_eq!(
        collected, written,
        "the collector got other records than --http-out"
    );
    let text = stderr(&out);
    assert!(
        text.contains(&format!("--callback: {} records delivered", written.len()))
            && text.contains("none lost"),
        "{text}"
    );
}

#[test]
fn a_collector_that_never_answers_is_a_counted_loss_and_exit_17() {
    kcap_testbed::require_kubectl!();
    let bed = crate::kube::cluster();
    let _collector = collector(&bed, &bed.path("collected"), &["silent"]);
    let out = run(
        bed.kcap_kube()
            .args(["-n", "prod", "deploy/web", "--http", "-d", "3s"])
            .args(["--http-out", "/dev/null", "--callback-drain", "2s"])
            .args(["--callback", &format!("http://127.0.0.1:{PORT}/ingest")])
            .args(["--callback-batch", "10"])
            .stdout(Stdio::null()),
        LIMIT,
    );
    assert_exit(&out, 17, &["--callback", "LOST", "undelivered"]);
}
