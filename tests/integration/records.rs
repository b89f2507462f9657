//! `--http` and `--dns` on the test bed: the client pod's real HTTP and DNS-like
//! traffic to the web pods decoded live into records with pod names on both
//! ends, and the same capture read back with `-r FILE --http` agreeing with what
//! tshark decodes from the file (requests, responses, methods, status codes).

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

use crate::kube::LIMIT;
use crate::util::{Bed, assert_ok, run, stderr, tshark_fields};

fn records(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// `kind namespace/name` of one end of a record.
fn who(peer: &Value) -> String {
    let n = &peer["name"];
    format!(
        "{} {}/{}",
        n["kind"].as_str().unwrap_or("-"),
        n["namespace"].as_str().unwrap_or("-"),
        n["name"].as_str().unwrap_or("-")
    )
}

/// A `records: a 1, b 2` count from kcap's stderr, 0 when not there.
fn counted(err: &str, name: &str) -> usize {
    err.lines()
        .filter_map(|l| l.strip_prefix("kcap: records: "))
        .flat_map(|l| l.split(", "))
        .filter_map(|kv| kv.split_once(' '))
        .find(|(k, _)| *k == name)
        .map_or(0, |(_, v)| v.parse().unwrap())
}

#[test]
fn live_http_and_dns_records_name_both_pods_and_match_tshark_on_the_file() {
    kcap_testbed::require_kubectl!();
    let bed = crate::kube::cluster();
    let web = bed.pods_of("web");
    let file = bed.path("records.pcapng");
    let out = run(
        bed.kcap_kube()
            .args([
                "-n",
                "prod",
                "deploy/web",
                "--http",
                "--dns",
                "-d",
                "4s",
                "-o",
            ])
            .arg(&file),
        LIMIT,
    );
    assert_ok(&out);
    let err = stderr(&out);
    let live = records(&out.stdout);
    let http: Vec<&Value> = live.iter().filter(|r| r["type"] == "http").collect();
    let dns: Vec<&Value> = live.iter().filter(|r| r["type"] == "dns").collect();
    // The client calls each endpoint every 0.2 s: many exchanges in 4 s.
    assert!(http.len() >= 5 && dns.len() >= 5, "{live:?}\n{err}");
    for r in &http {
        assert_eq!(
            (r["method"].as_str(), r["path"].as_str()),
            (Some("GET"), Some("/")),
            "{r}"
        );
        if r["status"].is_null() {
            assert!(r["reason"].is_string(), "{r}");
            continue;
        }
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["server"]["port"], 8080, "{r}");
        assert!(r["latency_ms"].as_f64().unwrap() >= 0.0, "{r}");
        assert!(r["point"].as_str().unwrap().starts_with("prod/web-"), "{r}");
    }
    for r in http.iter().chain(&dns) {
        let (client, server) = (who(&r["client"]), who(&r["server"]));
        // The client deployment calls, and other pods of the bed too.
        assert!(client.starts_with("pod prod/"), "{client}: {r}");
        assert!(
            web.iter().any(|w| server == format!("pod prod/{w}")),
            "{server} not one of {web:?}: {r}"
        );
    }
    let from_client = |rs: &[&Value]| {
        rs.iter()
            .any(|r| who(&r["client"]).starts_with("pod prod/client-"))
    };
    assert!(from_client(&http) && from_client(&dns), "{live:?}");
    let answered_dns: Vec<&&Value> = dns.iter().filter(|r| !r["rcode"].is_null()).collect();
    assert!(!answered_dns.is_empty(), "{dns:?}");
    for r in answered_dns {
        assert_eq!(
            (r["name"].as_str(), r["qtype"].as_str()),
            (Some("probe.kcap.test"), Some("A")),
            "{r}"
        );
        assert_eq!(r["rcode"], "NoError", "{r}");
        assert_eq!(r["server"]["port"], 5353, "{r}");
    }

    // The file, read back: the same HTTP records as live, and what tshark decodes.
    let back = run(
        Command::new(env!("CARGO_BIN_EXE_kcap"))
            .arg("-r")
            .arg(&file)
            .arg("--http"),
        LIMIT,
    );
    assert_ok(&back);
    let back_err = stderr(&back);
    let read = records(&back.stdout);
    let key = |r: &Value| (r["request_time"].to_string(), r["status"].to_string());
    assert_eq!(
        read.iter().map(key).collect::<Vec<_>>(),
        http.iter().map(|r| key(r)).collect::<Vec<_>>()
    );
    // tshark: one row per request or response frame.
    let decoded = tshark_fields(
        &file,
        Some("http"),
        &["http.request.method", "http.response.code"],
    );
    let mut tshark_methods = BTreeMap::new();
    let mut tshark_statuses = BTreeMap::new();
    for row in &decoded {
        match (row[0].as_str(), row[1].as_str()) {
            ("", "") => {}
            ("", status) => *tshark_statuses.entry(status.to_string()).or_insert(0) += 1,
            (method, _) => *tshark_methods.entry(method.to_string()).or_insert(0) += 1,
        }
    }
    let mut ours_methods = BTreeMap::new();
    let mut ours_statuses = BTreeMap::new();
    for r in &read {
        *ours_methods
            .entry(r["method"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
        if let Some(s) = r["status"].as_u64() {
            *ours_statuses.entry(s.to_string()).or_insert(0) += 1;
        }
    }
    assert_eq!(ours_methods, tshark_methods, "{back_err}");
    // A response whose request came before the capture started has no record.
    let unpaired = counted(&back_err, "responses_without_request");
    *ours_statuses.entry("200".to_string()).or_insert(0) += unpaired;
    assert_eq!(ours_statuses, tshark_statuses, "{back_err}");
}

/// Records and `--print` lines never share stdout: a usage error (exit 2).
#[test]
fn records_and_print_on_stdout_is_a_usage_error() {
    let bed = Bed::minimal();
    let out = run(
        bed.kcap()
            .args(["--ssh-host", "node-a", "--http", "--print"]),
        LIMIT,
    );
    crate::util::assert_exit(&out, 2, &["would share stdout", "--http-out FILE"]);
}

/// An SSH capture of a whole node with `-i any` (Linux cooked v2): with the
/// bridge CNI each pod packet is seen twice (the pod's veth and the bridge),
/// yet every exchange is one record.
#[test]
fn node_capture_with_any_gives_each_exchange_once() {
    kcap_testbed::require_kubectl!();
    let bed = crate::kube::cluster();
    let out = run(
        bed.kcap_kube()
            .args(["--ssh-host", "node-a", "--http", "-d", "3s"]),
        LIMIT,
    );
    assert_ok(&out);
    let err = stderr(&out);
    let http = records(&out.stdout);
    assert!(http.len() >= 5, "{http:?}\n{err}");
    assert!(counted(&err, "duplicate_segments") > 0, "{err}");
    // The client opens a connection per request: its port names the exchange.
    let mut exchanges: Vec<String> = http
        .iter()
        .map(|r| format!("{}:{}", r["client"]["ip"], r["client"]["port"]))
        .collect();
    let all = exchanges.len();
    exchanges.sort();
    exchanges.dedup();
    assert_eq!(exchanges.len(), all, "an exchange written twice: {http:?}");
    assert!(http.iter().all(|r| r["point"] == "node-a:any"), "{http:?}");
    // (An SSH node capture names no pods: names come from the API's targets.)
    assert!(
        http.iter()
            .all(|r| r["status"] == 200 || r["reason"].is_string()),
        "{http:?}"
    );
}

/// `--summary=json` on the bed's traffic plus trouble made on purpose from the
/// toolbox pod: connections to a closed port of a web pod (reset) and POSTs it
/// answers 501. Each web pod served requests, with latencies; the client pod's DNS
/// queries were answered; the resets and 501s are the ones tshark finds in the
/// capture file written alongside.
#[test]
fn summary_counts_per_pod_with_resets_and_errors_made_on_purpose() {
    kcap_testbed::require_kubectl!();
    let bed = crate::kube::cluster();
    let web_ip = bed.pod_field("web", "status.podIP")[0].clone();
    let netns = bed.pod_netns("prod", "toolbox");
    let trouble = format!(
        "import socket, time, http.client\n\
         for i in range(25):\n\
         \x20   s = socket.socket(); s.settimeout(1)\n\
         \x20   try: s.connect(('{web_ip}', 8081))\n\
         \x20   except OSError: pass\n\
         \x20   s.close()\n\
         \x20   c = http.client.HTTPConnection('{web_ip}', 8080, timeout=1)\n\
         \x20   try: c.request('POST', '/oops', body=b'x'); c.getresponse().read()\n\
         \x20   except OSError: pass\n\
         \x20   c.close(); time.sleep(0.25)\n"
    );
    let mut maker = Command::new("ip")
        .args(["netns", "exec", &netns, "python3", "-c", &trouble])
        .spawn()
        .expect("start the trouble maker");
    let file = bed.path("summary.pcapng");
    let out = run(
        bed.kcap_kube()
            .args([
                "-n",
                "prod",
                "deploy/web",
                "--summary=json",
                "-d",
                "4s",
                "-o",
            ])
            .arg(&file),
        LIMIT,
    );
    let _ = maker.kill();
    let _ = maker.wait();
    assert_ok(&out);
    let summary: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let rows = summary["pods"].as_array().unwrap();
    let n = |r: &Value, k: &str| r[k].as_u64().unwrap();
    let web: Vec<&Value> = rows
        .iter()
        .filter(|r| r["pod"].as_str().unwrap().starts_with("prod/web-"))
        .collect();
    assert!(!web.is_empty(), "{summary}");
    for r in &web {
        assert!(n(r, "http_requests") > 0, "{r}");
        assert_eq!(
            n(r, "http_2xx") + n(r, "http_5xx") + n(r, "http_no_response"),
            n(r, "http_requests"),
            "{r}"
        );
        assert_eq!(n(r, "http_4xx"), 0, "{r}");
        assert!(
            r["http_p50_ms"].as_f64().unwrap() <= r["http_p99_ms"].as_f64().unwrap(),
            "{r}"
        );
    }
    let client = rows
        .iter()
        .find(|r| r["pod"].as_str().unwrap().starts_with("prod/client-"))
        .unwrap_or_else(|| panic!("no client row: {summary}"));
    assert!(n(client, "dns_queries") > 0, "{client}");
    assert_eq!(
        n(client, "dns_nxdomain") + n(client, "dns_servfail"),
        0,
        "{client}"
    );
    assert_eq!(
        summary["counters"]["http_records"].as_u64().unwrap(),
        rows.iter()
            .map(|r| n(r, "http_requests") - n(r, "http_no_response"))
            .sum::<u64>(),
        "{summary}"
    );
    // The trouble, as tshark sees it in the file: connections with a reset (the
    // closed port's, and the server's after a 501 left the POST body unread), 501s.
    let mut reset = tshark_fields(&file, Some("tcp.flags.reset == 1"), &["tcp.stream"]);
    reset.sort();
    reset.dedup();
    let errors = tshark_fields(&file, Some("http.response.code == 501"), &["frame.number"]).len();
    let ours = |k: &str| rows.iter().map(|r| n(r, k)).sum::<u64>() as usize;
    assert!(
        !reset.is_empty() && errors > 0,
        "no trouble captured: {summary}"
    );
    assert_eq!(ours("tcp_resets"), reset.len(), "{summary}");
    assert_eq!(ours("http_5xx"), errors, "{summary}");
}

/// A generator of our own in the toolbox pod makes 30 HTTP requests, one every
/// 100 ms, and logs each (method, path, status). A quarter of the TCP packets it
/// receives are dropped after the capture (nftables), so the server sends some again. kcap's records from the toolbox hold
/// exactly the generator's log, in order; `--summary` counts retransmissions.
#[test]
fn records_match_the_generators_own_log_and_retransmissions_are_counted() {
    kcap_testbed::require_kubectl!();
    let bed = crate::kube::cluster();
    let web_ip = bed.pod_field("web", "status.podIP")[0].clone();
    let netns = bed.pod_netns("prod", "toolbox");
    let generator = format!(
        "import http.client, time, sys\n\
         for i in range(30):\n\
         \x20   c = http.client.HTTPConnection('{web_ip}', 8080, timeout=10)\n\
         \x20   c.request('GET', '/gen-%d' % i); r = c.getresponse(); r.read()\n\
         \x20   print('GET /gen-%d %d' % (i, r.status), flush=True)\n\
         \x20   c.close(); time.sleep(0.1)\n"
    );
    // A quarter of the TCP packets the pod receives are dropped (nftables, random)
    // after the capture saw them: the server sends them again, and the capture
    // sees both. (A packet dropped on its way out is never captured: its resend
    // is the first copy the capture sees.)
    let nft = |rules: &str| {
        Command::new("ip")
            .args(["netns", "exec", &netns, "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(rules.as_bytes())?;
                c.wait()
            })
            .unwrap()
    };
    let lossy = nft(
        "table inet kcaploss {\n chain in {\n  type filter hook input priority 0;\n  \
         meta l4proto tcp numgen random mod 4 0 drop\n }\n}\n",
    );
    assert!(lossy.success(), "nft");
    let records_file = bed.path("records.jsonl");
    let kcap = bed
        .kcap_kube()
        .args([
            "-n",
            "prod",
            "pod/toolbox",
            "--http",
            "--summary=json",
            "-d",
            "120s",
        ])
        .arg("--http-out")
        .arg(&records_file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(bed.wait_capture_in_pod("prod", "toolbox", std::time::Duration::from_secs(30)));
    let maker = Command::new("ip")
        .args(["netns", "exec", &netns, "python3", "-c", &generator])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the generator");
    let generated = maker.wait_with_output().unwrap();
    // The last exchange reaches kcap, then Ctrl-C ends the capture.
    std::thread::sleep(std::time::Duration::from_secs(1));
    // SAFETY: kill(2) of our own child (`ip netns exec` execs kcap: same pid).
    unsafe { libc::kill(kcap.id() as i32, libc::SIGINT) };
    let summary_out = crate::util::wait(kcap, std::time::Duration::from_secs(30));
    let _ = nft("delete table inet kcaploss\n");
    assert_ok(&summary_out);
    let log: Vec<String> = String::from_utf8_lossy(&generated.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(log.len(), 30, "the generator's log: {log:?}");
    let ours: Vec<String> = std::fs::read_to_string(&records_file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["path"].as_str().is_some_and(|p| p.starts_with("/gen-")))
        .map(|r| {
            format!(
                "{} {} {}",
                r["method"].as_str().unwrap(),
                r["path"].as_str().unwrap(),
                r["status"]
            )
        })
        .collect();
    assert_eq!(ours, log, "records against the generator's log");
    let summary: Value = serde_json::from_slice(&summary_out.stdout).expect("one JSON object");
    let retransmitted: u64 = summary["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tcp_retransmissions"].as_u64().unwrap())
        .sum();
    assert!(
        retransmitted > 0,
        "25% loss and no retransmission counted: {summary}"
    );
    assert_eq!(
        summary["counters"]["tcp_retransmissions"].as_u64(),
        Some(retransmitted),
        "{summary}"
    );
}
