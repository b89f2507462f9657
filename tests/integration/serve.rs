//! `--serve` and `--connect`: a capture of node-a served to viewers that join
//! while it runs: curl over HTTP, another kcap over WebSocket (`--connect`) and an
//! independent WebSocket client in Python (viewer.py). Each viewer's file must
//! read cleanly and hold exactly the capture file's packets from its join on; a
//! viewer that stops reading is cut off while the others and the file go on; off
//! loopback a token is required; `/status` agrees with the summary; TLS works.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

const PORT: u16 = 9090;
const VIEWER_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/integration/viewer.py");

/// A program in the bed's client namespace, where kcap serves.
fn client(bed: &Bed, program: &str) -> Command {
    let mut cmd = bed.bed.client_command(program);
    cmd.stdin(Stdio::null());
    cmd
}

/// `curl` in the client namespace: the HTTP status of `url` and its body.
fn get(bed: &Bed, url: &str, extra: &[&str]) -> (String, String) {
    let out = client(bed, "curl")
        .args(["-s", "-m", "5", "-w", "\n%{http_code}"])
        .args(extra)
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.to_string(), body.to_string())
}

/// Waits until the server answers (any HTTP status).
fn wait_serving(bed: &Bed, scheme_extra: &[&str], url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let (code, _) = get(bed, url, scheme_extra);
        if code != "000" {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("kcap --serve never answered at {url}");
}

/// Waits until `/status` counts more than `above` packets from the first
/// target, and returns the count.
fn wait_packets(bed: &Bed, above: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let (_, body) = get(bed, &url("/status"), &[]);
        let packets = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|status| status["targets"][0]["packets"].as_u64());
        if let Some(packets) = packets.filter(|&n| n > above) {
            return packets;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("kcap --serve never counted more than {above} packets in /status");
}

fn serve(bed: &Bed, args: &[&str]) -> Child {
    bed.kcap()
        .args(["--ssh-host", "node-a"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// curl writing the served stream into `file` until it ends.
fn curl_viewer(bed: &Bed, file: &Path) -> Child {
    spawn_output(
        client(bed, "curl")
            .args(["-sN", "-o"])
            .arg(file)
            .arg(url("/capture.pcapng")),
    )
}

fn spawn_output(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `viewer` holds exactly `file`'s packets from some point on (same interface,
/// time, bytes and comment), and at least one.
fn assert_suffix(viewer: &Capture, file: &Capture, who: &str) {
    assert!(!viewer.records.is_empty(), "{who} got no packet");
    assert_eq!(
        viewer.interface_names(),
        file.interface_names(),
        "{who}: interfaces differ"
    );
    let first = &viewer.records[0];
    let start = file
        .records
        .iter()
        .position(|r| r.packet == first.packet && r.interface_id == first.interface_id)
        .unwrap_or_else(|| panic!("{who}'s first packet is not in the file"));
    let rest = &file.records[start..];
    assert_eq!(
        viewer.records.len(),
        rest.len(),
        "{who}: {} packets, the file {} from its join on",
        viewer.records.len(),
        rest.len()
    );
    for (i, (v, f)) in viewer.records.iter().zip(rest).enumerate() {
        assert!(
            v.packet == f.packet && v.interface_id == f.interface_id && v.comment == f.comment,
            "{who}: packet {i} after joining differs from the file's"
        );
    }
}

fn url(path: &str) -> String {
    format!("http://127.0.0.1:{PORT}{path}")
}

#[test]
fn viewers_joining_late_get_exactly_the_files_packets_from_then_on() {
    let bed = Bed::minimal();
    let file = bed.path("capture.pcapng");
    let port = PORT.to_string();
    let kcap = serve(
        &bed,
        &[
            "-d",
            "9s",
            "--serve",
            &format!("127.0.0.1:{PORT}"),
            "-o",
            file.to_str().unwrap(),
        ],
    );
    wait_serving(&bed, &[], &url("/status"));
    let (code, page) = get(&bed, &url("/"), &[]);
    assert_eq!(code, "200");
    assert!(
        page.contains("/capture.pcapng") && page.contains("/ws"),
        "{page}"
    );

    // Each viewer joins once the file holds packets the one before could not
    // have: counted in /status, then a second for the merge to write them.
    let seen = wait_packets(&bed, 0);
    std::thread::sleep(Duration::from_secs(1));
    let by_curl = bed.path("curl.pcapng");
    let curl = curl_viewer(&bed, &by_curl);
    wait_packets(&bed, seen + 5);
    std::thread::sleep(Duration::from_secs(1));
    let by_kcap = bed.path("connect.pcapng");
    let connect = spawn_output(
        bed.kcap()
            .args(["--connect", &format!("ws://127.0.0.1:{PORT}/ws"), "-o"])
            .arg(&by_kcap),
    );
    let by_python = bed.path("python.pcapng");
    let python = spawn_output(
        client(&bed, "python3")
            .args([VIEWER_PY, "ws", "127.0.0.1", &port])
            .arg(&by_python),
    );

    let served = wait(kcap, Duration::from_secs(40));
    assert_ok(&served);
    let text = stderr(&served);
    assert!(text.contains("served 3 viewers"), "{text}");
    let curl = wait(curl, Duration::from_secs(10));
    assert!(curl.status.success(), "curl failed: {curl:?}");
    let connect = wait(connect, Duration::from_secs(10));
    assert_ok(&connect);
    assert!(
        stderr(&connect).contains("(the capture ended)"),
        "{}",
        stderr(&connect)
    );
    let python = wait(python, Duration::from_secs(10));
    let said = String::from_utf8_lossy(&python.stdout);
    assert!(
        said.contains("close 1000"),
        "python viewer: {said} {python:?}"
    );

    let file = read_capture(&file);
    for (path, who) in [
        (&by_curl, "curl"),
        (&by_kcap, "kcap --connect"),
        (&by_python, "python"),
    ] {
        assert!(
            tshark_count(path, None) > 0,
            "{who}: tshark reads no packet"
        );
        assert_suffix(&read_capture(path), &file, who);
    }
    // The later viewers joined later: they hold fewer packets than curl.
    let curl_packets = read_capture(&by_curl).records.len();
    assert!(read_capture(&by_kcap).records.len() < curl_packets);
    assert!(curl_packets < file.records.len());
}

#[test]
fn a_viewer_that_stops_reading_is_cut_off_and_the_others_are_not() {
    let bed = Bed::minimal();
    let file = bed.path("capture.pcapng");
    let kcap = serve(
        &bed,
        &[
            "-d",
            "12s",
            "--serve",
            &format!("127.0.0.1:{PORT}"),
            "--serve-buffer",
            "2M",
            "-o",
            file.to_str().unwrap(),
        ],
    );
    wait_serving(&bed, &[], &url("/status"));
    let stalled = spawn_output(client(&bed, "python3").args([
        VIEWER_PY,
        "stall",
        "127.0.0.1",
        &PORT.to_string(),
        "6",
    ]));
    let by_curl = bed.path("curl.pcapng");
    let curl = curl_viewer(&bed, &by_curl);
    assert!(bed.wait_capturing("node-a", Duration::from_secs(20)));
    // ~30 MB through the capture: far more than the stalled viewer's socket
    // buffers and its 2 MiB in kcap can hold.
    let flood = client(&bed, "ping")
        .args([
            "-f",
            "-q",
            "-c",
            "10000",
            "-s",
            "1400",
            "-w",
            "8",
            "198.51.100.10",
        ])
        .output()
        .unwrap();
    // With -c and -w, ping fails when a reply is missing at the deadline; what
    // counts here is the volume, checked on the file below.
    let _ = flood;

    let served = wait(kcap, Duration::from_secs(40));
    assert_ok(&served);
    let text = stderr(&served);
    assert!(text.contains("cut off: it fell behind"), "{text}");
    assert!(text.contains("1 cut off for falling behind"), "{text}");
    let stalled = wait(stalled, Duration::from_secs(30));
    assert_eq!(String::from_utf8_lossy(&stalled.stdout).trim(), "cut");
    let curl = wait(curl, Duration::from_secs(10));
    assert!(curl.status.success(), "curl was cut too: {curl:?}");
    let file = read_capture(&file);
    assert!(
        file.records.len() >= 10_000,
        "{} packets",
        file.records.len()
    );
    assert_suffix(&read_capture(&by_curl), &file, "curl");
}

/// Runs the real openssl.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

/// A CA and a server certificate for 127.0.0.1 signed by it, made by openssl:
/// (CA, certificate, key) paths.
fn certificate(dir: &Path) -> (String, String, String) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let ca = [
        &["req", "-x509"][..],
        &ec,
        &["-days", "1", "-subj", "/CN=kcap-test-ca"],
    ];
    openssl(
        dir,
        &[ca.concat(), vec!["-keyout", "ca.key", "-out", "ca.pem"]].concat(),
    );
    let csr = [
        &["req"][..],
        &ec,
        &["-subj", "/CN=127.0.0.1", "-keyout", "key.pem"],
    ];
    openssl(dir, &[csr.concat(), vec!["-out", "server.csr"]].concat());
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
            "-out",
            "cert.pem",
        ],
    );
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    (path("ca.pem"), path("cert.pem"), path("key.pem"))
}

#[test]
fn off_loopback_a_token_is_required_and_tls_is_offered() {
    let bed = Bed::minimal();
    let (ca_file, cert, key) = certificate(bed.scratch.path());
    let token = "s3cret-viewer-token";
    // Every address of the namespace: not loopback only.
    let kcap = serve(
        &bed,
        &[
            "-d",
            "8s",
            "--serve",
            &format!(":{PORT}"),
            "--serve-token",
            token,
            "--serve-cert",
            &cert,
            "--serve-key",
            &key,
        ],
    );
    let https = |path: &str| format!("https://127.0.0.1:{PORT}{path}");
    let ca = ["--cacert", ca_file.as_str()];
    wait_serving(&bed, &ca, &https("/status"));
    let (code, body) = get(&bed, &https("/capture.pcapng"), &ca);
    assert_eq!(code, "401", "no token: {body}");
    assert!(!body.contains("\n\r\n\x1a"), "something was streamed");
    let (code, _) = get(
        &bed,
        &https("/status"),
        &[
            "--cacert",
            &cert,
            "-H",
            "Authorization: Bearer wrong-token-x",
        ],
    );
    assert_eq!(code, "401");
    let (code, status) = get(&bed, &https(&format!("/status?token={token}")), &ca);
    assert_eq!(code, "200");
    assert!(status.contains("\"node-a\""), "{status}");

    let refused = bed
        .kcap()
        .args([
            "--connect",
            &format!("wss://127.0.0.1:{PORT}/ws"),
            "--connect-ca",
            &ca_file,
        ])
        .args(["-o", "/dev/null"])
        .output()
        .unwrap();
    assert_exit(&refused, 4, &["refused the token (401)", "--serve-token"]);
    let untrusted = bed
        .kcap()
        .args([
            "--connect",
            &format!("wss://127.0.0.1:{PORT}/ws"),
            "-o",
            "/dev/null",
        ])
        .output()
        .unwrap();
    assert_exit(&untrusted, 3, &["TLS", "--connect-ca"]);

    let by_kcap = bed.path("connect.pcapng");
    let connect = bed
        .kcap()
        .args([
            "--connect",
            &format!("wss://127.0.0.1:{PORT}/ws"),
            "--connect-ca",
            &ca_file,
        ])
        .args(["--serve-token", token, "-o"])
        .arg(&by_kcap)
        .output()
        .unwrap();
    assert_ok(&connect);
    let served = wait(kcap, Duration::from_secs(40));
    assert_ok(&served);
    assert!(tshark_count(&by_kcap, None) > 0);
    assert_eq!(read_capture(&by_kcap).interface_names(), ["node-a:any"]);
    assert!(
        !stderr(&served).contains(token),
        "the token given was printed"
    );
}

#[test]
fn a_generated_token_is_printed_once_and_works() {
    let bed = Bed::minimal();
    let kcap = serve(&bed, &["-d", "5s", "--serve", &format!("0.0.0.0:{PORT}")]);
    wait_serving(&bed, &[], &url("/status"));
    let (code, _) = get(&bed, &url("/status"), &[]);
    assert_eq!(code, "401");
    let served = wait(kcap, Duration::from_secs(30));
    assert_ok(&served);
    let text = stderr(&served);
    let token = text
        .lines()
        .find_map(|l| l.split_once("viewers need this token (off loopback): "))
        .map(|(_, t)| t.trim().to_string())
        .unwrap_or_else(|| panic!("no token printed:\n{text}"));
    assert_eq!(token.len(), 32);
    assert_eq!(
        text.matches(&token).count(),
        2,
        "printed once, with its curl line"
    );
}

#[test]
fn status_figures_match_the_summary() {
    let bed = Bed::minimal();
    let kcap = serve(
        &bed,
        &[
            "-d",
            "8s",
            "--filter",
            "icmp",
            "--serve",
            &format!("127.0.0.1:{PORT}"),
            "-o",
            bed.path("c.pcapng").to_str().unwrap(),
        ],
    );
    wait_serving(&bed, &[], &url("/status"));
    assert!(bed.wait_capturing("node-a", Duration::from_secs(20)));
    bed.ping_node_a(10, 56);
    // Everything captured has reached the sink (it flushes live).
    std::thread::sleep(Duration::from_secs(2));
    let (code, body) = get(&bed, &url("/status"), &[]);
    assert_eq!(code, "200");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    let served = wait(kcap, Duration::from_secs(30));
    assert_ok(&served);
    let packets = status["targets"][0]["packets"].as_u64().unwrap();
    assert_eq!(status["targets"][0]["name"], "node-a");
    assert!(packets >= 20, "{status}");
    let text = stderr(&served);
    assert!(
        text.contains(&format!("node-a: {packets} packets")),
        "/status says {packets} packets:\n{text}"
    );
}

#[test]
fn connect_errors_say_what_to_do() {
    let bed = Bed::minimal();
    let nothing = bed
        .kcap()
        .args([
            "--connect",
            &format!("ws://127.0.0.1:{PORT}/ws"),
            "-o",
            "/dev/null",
        ])
        .output()
        .unwrap();
    assert_exit(&nothing, 3, &["cannot connect", "--serve"]);
    let bad = bed
        .kcap()
        .args(["--connect", "ftp://127.0.0.1/x", "-o", "/dev/null"])
        .output()
        .unwrap();
    assert_exit(&bad, 2, &["ws://"]);
    let kcap = serve(&bed, &["-d", "4s", "--serve", &format!("127.0.0.1:{PORT}")]);
    wait_serving(&bed, &[], &url("/status"));
    let wrong_path = bed
        .kcap()
        .args(["--connect", &url("/nothing"), "-o", "/dev/null"])
        .output()
        .unwrap();
    assert_exit(&wrong_path, 11, &["404", "/capture.pcapng"]);
    let taken = serve(&bed, &["-d", "2s", "--serve", &format!("127.0.0.1:{PORT}")]);
    let taken: Output = wait(taken, Duration::from_secs(20));
    assert_exit(&taken, 10, &["cannot listen", "another port"]);
    assert_ok(&wait(kcap, Duration::from_secs(30)));
}

/// `--follow`: a pod that appears while a viewer watches reaches it as a new
/// interface, with its name record, as it reaches the file.
#[test]
fn a_pod_that_joins_reaches_a_viewer_already_there() {
    kcap_testbed::require_kubectl!();
    let bed = crate::kube::cluster();
    let before = bed.pods_of("web");
    let kcap = spawn_output(
        bed.kcap_kube()
            .args(["-l", "app=web", "--follow", "--via", "node", "-d", "14s"])
            .args(["--serve", &format!("127.0.0.1:{PORT}")]),
    );
    wait_serving(&bed, &[], &url("/status"));
    let by_curl = bed.path("curl.pcapng");
    let curl = curl_viewer(&bed, &by_curl);
    std::thread::sleep(Duration::from_secs(3));
    bed.kubectl_out(&["scale", "-n", "prod", "deployment/web", "--replicas=4"]);
    let served = wait(kcap, Duration::from_secs(60));
    assert_ok(&served);
    assert!(wait(curl, Duration::from_secs(10)).status.success());
    let new = crate::kube::assert_new_pod_captured(&bed, &before, &by_curl, &served);
    // Names as Wireshark shows them: from the stream's name records only.
    let hosts = Command::new("tshark")
        .args([
            "-N",
            "n",
            "-T",
            "fields",
            "-e",
            "ip.src_host",
            "-e",
            "ip.dst_host",
            "-r",
        ])
        .arg(&by_curl)
        .output()
        .unwrap();
    let host = format!("{new}.prod");
    assert!(
        String::from_utf8_lossy(&hosts.stdout)
            .split_whitespace()
            .any(|h| h == host),
        "no name record for {host} reached the viewer"
    );
    assert_eq!(bed.helpers_left(Duration::from_secs(5)), "");
}
