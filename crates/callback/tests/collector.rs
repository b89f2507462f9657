//! The callback against a real HTTP server (tests/collector.py): one that is down
//! at first, then answers 503, then recovers (every record arrives exactly once,
//! in order), and one that never answers (every record is counted as lost).

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kcap_callback::{Callback, CallbackOptions};

const COLLECTOR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/collector.py");

/// A port nothing listens on yet.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Collector(Child);

impl Collector {
    fn start(port: u16, log: &Path, mode: &[&str]) -> Collector {
        let child = Command::new("python3")
            .arg(COLLECTOR)
            .arg(port.to_string())
            .arg(log)
            .args(mode)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the collector never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        Collector(child)
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn record(i: usize) -> Bytes {
    Bytes::from(format!("{{\"n\":{i},\"method\":\"GET\"}}"))
}

fn options(port: u16, batch: usize, queue: usize) -> CallbackOptions {
    CallbackOptions {
        url: format!("http://127.0.0.1:{port}/ingest"),
        ca: None,
        batch,
        queue,
    }
}

/// The record numbers the collector logged, in order (arrays flattened).
fn logged(log: &Path) -> Vec<usize> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.split("\"n\":")
        .skip(1)
        .map(|rest| rest.split([',', '}']).next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn down_then_503_then_recovered_every_record_arrives_once_in_order() {
    for batch in [1, 5] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let port = free_port();
        let callback = Callback::start(options(port, batch, 1000)).unwrap();
        for i in 0..23 {
            callback.send(record(i));
        }
        // Down for a second (connection refused), then 503 twice.
        std::thread::sleep(Duration::from_secs(1));
        let _collector = Collector::start(port, &log, &["flaky", "2"]);
        for i in 23..40 {
            callback.send(record(i));
        }
        let report = callback.finish(Duration::from_secs(30));
        assert_eq!(report.delivered, 40, "batch {batch}: {report:?}");
        assert_eq!(report.lost(), 0, "batch {batch}: {report:?}");
        assert!(report.retries >= 3, "batch {batch}: {report:?}");
        assert_eq!(logged(&log), (0..40).collect::<Vec<_>>(), "batch {batch}");
        if batch > 1 {
            let text = std::fs::read_to_string(&log).unwrap();
            assert!(text.lines().all(|l| l.starts_with('[') && l.ends_with(']')));
        }
    }
}

#[test]
fn a_collector_that_never_answers_loses_everything_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _collector = Collector::start(port, &dir.path().join("log"), &["silent"]);
    let callback = Callback::start(options(port, 1, 10)).unwrap();
    for i in 0..30 {
        callback.send(record(i));
    }
    let started = Instant::now();
    let report = callback.finish(Duration::from_secs(2));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the drain is bounded"
    );
    assert_eq!(report.delivered, 0);
    assert_eq!(report.lost(), 30, "{report:?}");
    assert!(report.dropped >= 19, "the queue holds 10: {report:?}");
    assert!(report.undelivered >= 10, "{report:?}");
}

#[test]
fn urls_are_checked() {
    assert!(
        Callback::start(CallbackOptions {
            url: "ftp://x/".into(),
            ca: None,
            batch: 1,
            queue: 1
        })
        .is_err()
    );
    assert!(
        Callback::start(CallbackOptions {
            url: "collector:8080".into(),
            ca: None,
            batch: 1,
            queue: 1
        })
        .is_err()
    );
}
