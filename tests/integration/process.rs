//! `--process` on the test bed: every packet named by the process that sent it
//! (or, coming in, the one it is for), short-lived clients included, checked
//! against the PIDs the test started; `--pname` keeping only one program's
//! packets; lines showing `curl.PID`; pods on one node named by their own
//! containers through the API (`--via node`); and no BPF program, map, link or pin
//! of kcap's left once kcap is gone, however it ended.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::*;

const PORT: u16 = 18181;

/// A long-lived HTTP server on `host`'s loopback; its PID is its first line.
fn start_server(bed: &Bed, host: &str) -> (Child, u32) {
    let script = format!(
        "import os, socketserver\n\
         class H(socketserver.StreamRequestHandler):\n\
         \x20   def handle(self):\n\
         \x20       while self.rfile.readline() not in (b'\\r\\n', b''): pass\n\
         \x20       self.wfile.write(b'HTTP/1.0 200 OK\\r\\nContent-Length: 200\\r\\n\\r\\n' + b'k' * 200)\n\
         socketserver.TCPServer.allow_reuse_address = True\n\
         s = socketserver.ThreadingTCPServer(('127.0.0.1', {PORT}), H)\n\
         print(os.getpid(), flush=True)\n\
         s.serve_forever()\n"
    );
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &bed.bed.host(host).netns,
            "python3",
            "-c",
            &script,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().parse().expect("the server's pid"))
}

/// `count` curls to the server, a new process every 200 ms; their PIDs.
fn run_clients(bed: &Bed, host: &str, count: u32) -> Vec<u32> {
    let script = format!(
        "import subprocess, time\n\
         for i in range({count}):\n\
         \x20   p = subprocess.Popen(['curl', '-s', '-o', '/dev/null', 'http://127.0.0.1:{PORT}/'])\n\
         \x20   print(p.pid, flush=True)\n\
         \x20   p.wait()\n\
         \x20   time.sleep(0.2)\n"
    );
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &bed.bed.host(host).netns,
            "python3",
            "-c",
            &script,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

/// A capture of node-a's loopback server port with `args` (given the server's
/// PID) while `clients` curls run: (kcap's output, the curls' PIDs, the server's PID).
fn capture_clients(
    bed: &Bed,
    file: &std::path::Path,
    args: impl Fn(u32) -> Vec<String>,
    clients: u32,
) -> (std::process::Output, Vec<u32>, u32) {
    let (mut server, server_pid) = start_server(bed, "node-a");
    let filter = format!("tcp port {PORT}");
    let kcap = bed
        .kcap()
        .args(["--ssh-host", "node-a", "-i", "lo", "-f", &filter])
        .args(args(server_pid))
        .arg("-o")
        .arg(file)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(bed.wait_capturing("node-a", Duration::from_secs(20)));
    let pids = run_clients(bed, "node-a", clients);
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: a plain kill(2) of our own child.
    unsafe { libc::kill(kcap.id() as i32, libc::SIGINT) };
    let out = wait(kcap, Duration::from_secs(30));
    let _ = server.kill();
    let _ = server.wait();
    assert_ok(&out);
    (out, pids, server_pid)
}

/// One `Key: value` of a packet comment as tshark prints it.
fn key<'a>(comment: &'a str, key: &str) -> Option<&'a str> {
    comment
        .split(['\n', ','])
        .flat_map(|part| part.split("\\n"))
        .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix(": "))
}

/// Waits until no kcap_ BPF program, map or link exists, nor a pin under
/// /sys/fs/bpf; returns what is left.
fn bpf_left(within: Duration) -> String {
    let deadline = std::time::Instant::now() + within;
    loop {
        let mut left = String::new();
        for kind in ["prog", "map"] {
            let out = Command::new("bpftool")
                .args([kind, "show"])
                .output()
                .unwrap();
            assert!(out.status.success(), "bpftool {kind} show failed");
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if line.contains("name kcap_") {
                    left += &format!("{kind}: {line}\n");
                }
            }
        }
        let links = Command::new("bpftool")
            .args(["link", "show"])
            .output()
            .unwrap();
        for line in String::from_utf8_lossy(&links.stdout).lines() {
            // Links of ours are raw tracepoints on these four.
            if [
                "inet_sock_set_state",
                "net_dev_queue",
                "sock_send_length",
                "sock_recv_length",
            ]
            .iter()
            .any(|tp| line.contains(tp))
            {
                left += &format!("link: {line}\n");
            }
        }
        if let Ok(pins) = std::fs::read_dir("/sys/fs/bpf") {
            for pin in pins.flatten() {
                left += &format!("pin: {}\n", pin.path().display());
            }
        }
        if left.is_empty() || std::time::Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The whole path on one SSH node: a long-lived server started before kcap and
/// a short-lived curl every 200 ms, every TCP packet named by its sender's PID.
#[test]
fn short_lived_clients_and_a_server_are_named_by_their_pids() {
    let bed = Bed::minimal();
    let file = bed.path("processes.pcapng");
    let (out, clients, server_pid) = capture_clients(&bed, &file, |_| vec!["--process".into()], 15);

    let rows = tshark_fields(&file, None, &["tcp.srcport", "frame.comment"]);
    let (mut client_total, mut client_named) = (0, 0);
    let mut pid_of_port: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    for row in &rows {
        let (port, comment) = (&row[0], row.get(1).map_or("", String::as_str));
        let pid: Option<u32> = key(comment, "PID").and_then(|p| p.parse().ok());
        if *port == PORT.to_string() {
            assert_eq!(pid, Some(server_pid), "a server packet: {comment:?}");
            assert!(
                key(comment, "Cmd").is_some_and(|c| c.contains("python3")),
                "{comment:?}"
            );
        } else {
            client_total += 1;
            if let Some(pid) = pid {
                assert!(clients.contains(&pid), "{pid} is no curl of {clients:?}");
                assert!(
                    key(comment, "Cmd").is_some_and(|c| c.ends_with("curl")),
                    "{comment:?}"
                );
                client_named += 1;
                pid_of_port.entry(port.clone()).or_default().insert(pid);
            }
        }
    }
    assert!(
        client_total >= 15 * 5,
        "{client_total} client packets:\n{}",
        stderr(&out)
    );
    eprintln!(
        "{client_named} of {client_total} client packets named, {} curls",
        clients.len()
    );
    assert!(
        client_named * 100 >= client_total * 95,
        "{client_named} of {client_total} client packets named"
    );
    // One connection, one process; and every curl was seen.
    assert!(
        pid_of_port.values().all(|p| p.len() == 1),
        "{pid_of_port:?}"
    );
    let seen: BTreeSet<u32> = pid_of_port.values().flatten().copied().collect();
    assert_eq!(
        seen.len(),
        clients.len(),
        "curls seen: {seen:?} of {clients:?}"
    );

    // Read back, the lines name the process as ptcpdump does.
    let lines = run(
        bed.kcap().arg("-r").arg(&file).arg("--print"),
        Duration::from_secs(30),
    );
    assert_ok(&lines);
    let text = String::from_utf8_lossy(&lines.stdout);
    assert!(text.contains(&format!("curl.{}", clients[0])), "{text}");
    assert!(text.contains(&format!(".{server_pid} ")), "{text}");

    assert!(
        bed.wait_capture_gone("node-a", Duration::from_secs(10))
            .is_empty()
    );
    assert_eq!(bpf_left(Duration::from_secs(5)), "");
}

/// `--pname curl` keeps the curls' packets only, and the summary says how many
/// of the others it left out; `--pid` keeps the server's only.
#[test]
fn pname_and_pid_keep_only_those_processes_packets() {
    let bed = Bed::minimal();
    let file = bed.path("curl.pcapng");
    let pname = |_| vec!["--pname".to_string(), "curl".to_string()];
    let (out, clients, _) = capture_clients(&bed, &file, pname, 5);
    let rows = tshark_fields(&file, None, &["tcp.srcport", "frame.comment"]);
    assert!(
        rows.len() >= 5 * 4,
        "{} packets kept:\n{}",
        rows.len(),
        stderr(&out)
    );
    for row in &rows {
        let comment = row.get(1).map_or("", String::as_str);
        assert_ne!(
            row[0],
            PORT.to_string(),
            "the server's packet kept: {comment:?}"
        );
        let pid: u32 = key(comment, "PID").and_then(|p| p.parse().ok()).unwrap();
        assert!(clients.contains(&pid));
    }
    assert!(stderr(&out).contains("left out"), "{}", stderr(&out));

    // --pid: the server's packets only.
    let file = bed.path("server.pcapng");
    let pid = |server: u32| vec!["--pid".to_string(), server.to_string()];
    let (out, _, server_pid) = capture_clients(&bed, &file, pid, 3);
    let rows = tshark_fields(&file, None, &["tcp.srcport", "frame.comment"]);
    assert!(
        rows.len() >= 3 * 3,
        "{} packets kept:\n{}",
        rows.len(),
        stderr(&out)
    );
    for row in &rows {
        let comment = row.get(1).map_or("", String::as_str);
        assert_eq!(
            row[0],
            PORT.to_string(),
            "a client's packet kept: {comment:?}"
        );
        assert_eq!(key(comment, "PID"), Some(server_pid.to_string().as_str()));
    }
    assert_eq!(bpf_left(Duration::from_secs(5)), "");
}

/// Every way a capture ends leaves no process and nothing of kcap's in the
/// kernel: the end of `-d`, Ctrl-C, SIGKILL of kcap, and the SSH link cut.
#[test]
fn nothing_is_left_in_the_kernel_after_any_end() {
    let bed = Bed::minimal();
    let start = || {
        bed.kcap()
            .args(["--ssh-host", "node-a", "--process", "-o"])
            .arg(bed.path("end.pcapng"))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let out = run(
        bed.kcap()
            .args(["--ssh-host", "node-a", "--process", "-d", "2s", "-o"])
            .arg(bed.path("d.pcapng")),
        Duration::from_secs(60),
    );
    assert_ok(&out);
    assert_eq!(bpf_left(Duration::from_secs(5)), "", "after -d");

    for end in ["ctrl-c", "sigkill", "link cut"] {
        let kcap = start();
        assert!(
            bed.wait_capturing("node-a", Duration::from_secs(20)),
            "{end}"
        );
        assert_ne!(
            bpf_left(Duration::ZERO),
            "",
            "{end}: the programs are not loaded"
        );
        match end {
            // SAFETY: plain kill(2)s of our own child.
            "ctrl-c" => unsafe {
                libc::kill(kcap.id() as i32, libc::SIGINT);
            },
            "sigkill" => unsafe {
                libc::kill(kcap.id() as i32, libc::SIGKILL);
            },
            _ => bed.bed.cut_link("node-a").unwrap(),
        }
        let _ = wait(kcap, Duration::from_secs(60));
        // With the link still cut: the node cleans up on its own.
        let left = bed.wait_capture_gone("node-a", Duration::from_secs(15));
        let bpf = bpf_left(Duration::from_secs(5));
        if end == "link cut" {
            bed.bed.restore_link("node-a").unwrap();
        }
        assert!(left.is_empty(), "{end}: capture processes left: {left:?}");
        assert_eq!(bpf, "", "after {end}");
    }
}

/// A login that may not load BPF is told so, with nothing captured: the agent
/// itself says why in --process's words (it tries BPF before the ring), and
/// through kcap a user that may not capture either is told that first, with the
/// way out (`--sudo`); through sudo the same capture works.
#[test]
fn a_user_that_may_not_load_bpf_is_told_why() {
    use kcap_testbed::{USER_NOPRIV, USER_SUDO};
    use std::os::unix::fs::PermissionsExt;
    let bed = Bed::minimal();
    // The agent where that user may run it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let agent = dir.path().join("kcap-agent");
    std::fs::copy(
        std::path::Path::new(KCAP).with_file_name("kcap-agent"),
        &agent,
    )
    .unwrap();
    let out = run(
        Command::new("ip")
            .args(["netns", "exec", &bed.bed.host("node-a").netns])
            .args([
                "setpriv",
                "--reuid",
                USER_NOPRIV,
                "--regid",
                USER_NOPRIV,
                "--init-groups",
            ])
            .arg(&agent)
            .args(["-i", "lo", "--process", "on", "-c", "1"]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains("kcap-remote: process-unusable:") && text.contains("not permitted"),
        "{text}"
    );
    assert!(out.stdout.is_empty(), "it wrote a capture");

    let capture = |args: &[&str]| {
        run(
            bed.kcap()
                .args(["--ssh-host", "node-a", "--process", "-c", "3", "-o"])
                .arg(bed.path("user.pcapng"))
                .args(args),
            Duration::from_secs(60),
        )
    };
    let out = capture(&["--ssh-user", USER_NOPRIV]);
    assert_exit(&out, 8, &["--sudo", "permission"]);
    let out = capture(&["--ssh-user", USER_SUDO, "--sudo"]);
    assert_ok(&out);
    assert_eq!(bpf_left(Duration::from_secs(5)), "");
}

/// Two pods on one node, captured through the API (`--via node`): every packet
/// is named by the process that sent it and that process's own pod and
/// container, on both pods' interfaces (the answers seen in the client's pod
/// are the server pod's).
#[test]
fn pods_on_one_node_are_named_by_their_own_containers() {
    kcap_testbed::require_kubectl!();
    let bed = crate::kube::cluster();
    let pod = |name: &str, container: &str, image: &str, targets: &str| {
        bed.create_pod(&serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "prod", "labels": {"app": name}},
            "spec": {"nodeName": "node-a", "containers": [{
                "name": container, "image": image,
                "env": [{"name": "TARGETS", "value": targets},
                        {"name": "INTERVAL", "value": "0.2"}],
            }]},
        }))
    };
    let srv_ip = pod("srv", "server", "kcap.test/app:1", "");
    let cli_ip = pod(
        "cli",
        "client",
        "kcap.test/client:1",
        &format!("{srv_ip}:8080"),
    );
    let file = bed.path("pods.pcapng");
    let out = run(
        bed.kcap_kube()
            .args([
                "-n",
                "prod",
                "pod/cli",
                "pod/srv",
                "--via",
                "node",
                "--process",
            ])
            // Long enough for the test bed's crictl (Python, a call per
            // container, up to its 10 s timeout on a loaded machine) to answer
            // both agents, and for a failed answer to be asked again.
            .args(["-f", "tcp port 8080", "-d", "10s", "-o"])
            .arg(&file),
        crate::kube::LIMIT,
    );
    assert_ok(&out);
    let rows = tshark_fields(
        &file,
        None,
        &["frame.interface_name", "ip.src", "frame.comment"],
    );
    let (mut with_pid, mut with_pod) = (0, 0);
    let mut seen = BTreeSet::new();
    for row in &rows {
        let (interface, src, comment) = (&row[0], &row[1], row.get(2).map_or("", String::as_str));
        let Some(pid) = key(comment, "PID") else {
            continue;
        };
        with_pid += 1;
        let (server, client) = (("srv", "server"), ("cli", "client"));
        // The sender, or the receiver when the sender's endpoint names no one
        // (other test beds running now hold the same pod addresses).
        let (sender, receiver) = if *src == srv_ip {
            (server, client)
        } else {
            assert_eq!(*src, cli_ip, "{comment:?}");
            (client, server)
        };
        // The pod comes from the node's runtime: the test bed's crictl (Python, a
        // call per container) can take seconds on a loaded machine, and packets
        // before its first answer have their process but no pod yet.
        let Some(pod) = key(comment, "PodName") else {
            continue;
        };
        with_pod += 1;
        let named = (pod, key(comment, "ContainerName").unwrap_or_default());
        assert!(named == sender || named == receiver, "{comment:?}");
        assert_eq!(key(comment, "PodNamespace"), Some("prod"));
        assert!(pid.parse::<u32>().is_ok(), "{comment:?}");
        seen.insert((interface.clone(), named.0));
    }
    eprintln!(
        "{with_pid} of {} packets named with their process, {with_pod} with their pod",
        rows.len()
    );
    assert!(
        with_pid * 100 >= rows.len() * 95,
        "{with_pid} of {} packets named:\n{}",
        rows.len(),
        stderr(&out)
    );
    // Each pod's own process on its interface, and a process of the other pod
    // named by that pod (the answers seen in the client's pod are the server's,
    // the requests seen in the server's pod the client's; one of the two is
    // enough when the bed's crictl was slow to answer the other agent, or when
    // other beds running now hold the server's address too).
    assert!(seen.contains(&("prod/cli/any".into(), "cli")), "{seen:?}");
    assert!(seen.contains(&("prod/srv/any".into(), "srv")), "{seen:?}");
    assert!(
        seen.contains(&("prod/cli/any".into(), "srv"))
            || seen.contains(&("prod/srv/any".into(), "cli")),
        "{seen:?}"
    );
    assert_eq!(bed.helpers_left(Duration::from_secs(5)), "");
    assert_eq!(bpf_left(Duration::from_secs(5)), "");
}
