//! `--print` on the test bed: the lines kcap prints live are the lines tcpdump
//! prints from the file kcap wrote (`tcpdump -n -r`; what may differ is in
//! `kcap_lines::compare`), for a Kubernetes capture (Linux cooked v2, pcapng) and
//! SSH captures (Ethernet into pcap, and cooked v1 with `-y LINUX_SLL`); and with
//! names on, pod and service addresses carry their names.

use std::process::{Command, Stdio};

use crate::kube::LIMIT;
use crate::util::{Bed, assert_ok, run, stderr, tshark_fields};

/// Runs kcap (`--print --no-names -c N -o FILE` added), then tcpdump on the file;
/// every line must agree and come from one of `points`. Returns kcap's lines.
fn print_matches_tcpdump(
    bed: &Bed,
    mut cmd: Command,
    file: &str,
    count: usize,
    points: &[String],
) -> Vec<String> {
    let path = bed.path(file);
    let out = run(
        cmd.args(["--print", "--no-names", "-c", &count.to_string(), "-o"])
            .arg(&path),
        LIMIT,
    );
    assert_ok(&out);
    let ours: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let tcpdump = Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(&path)
        .stderr(Stdio::null())
        .output()
        .expect("run tcpdump");
    let theirs: Vec<String> = String::from_utf8_lossy(&tcpdump.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(ours.len(), count, "{file}: {}", stderr(&out));
    assert_eq!(theirs.len(), count, "{file}");
    for (o, t) in ours.iter().zip(&theirs) {
        let (o_time, o_rest) = o.split_once(' ').unwrap();
        let (t_time, t_rest) = t.split_once(' ').unwrap();
        assert_eq!(o_time, t_time, "{file}:\n{o}\n{t}");
        let (point, line) = o_rest.split_once(' ').unwrap();
        assert!(
            points.iter().any(|p| p == point),
            "{file}: capture point {point:?} not in {points:?}"
        );
        assert!(
            kcap_lines::compare::agrees_with_tcpdump(t_rest, line),
            "{file}:\n   kcap: {line}\ntcpdump: {t_rest}"
        );
    }
    ours
}

/// kcap -r with ARGS on FILE: its stdout lines, stderr and exit code.
fn read_back(bed: &Bed, args: &[&str]) -> (Vec<String>, String, Option<i32>) {
    let out = run(
        Command::new(env!("CARGO_BIN_EXE_kcap"))
            .current_dir(bed.path(""))
            .arg("-r")
            .args(args),
        LIMIT,
    );
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    (lines, stderr(&out), out.status.code())
}

#[test]
fn printed_lines_are_tcpdumps_and_name_pods_and_services() {
    kcap_testbed::require_kubectl!();
    let bed = crate::kube::cluster();
    let web: Vec<String> = bed
        .pods_of("web")
        .iter()
        .map(|p| format!("prod/{p}"))
        .collect();
    let mut k = bed.kcap_kube();
    k.args(["-n", "prod", "deploy/web"]);
    let live = print_matches_tcpdump(&bed, k, "web.pcapng", 40, &web);

    // -r prints the file as --print printed it live, and shows kcap's descriptions.
    let (lines, err, code) = read_back(&bed, &["web.pcapng", "--no-names"]);
    assert_eq!(
        (lines.as_slice(), code),
        (live.as_slice(), Some(0)),
        "{err}"
    );
    assert!(err.contains("on node node-"), "{err}");
    // One pod's interface, and -c.
    let pod = live[0].split(' ').nth(1).unwrap().to_string();
    let (lines, _, _) = read_back(
        &bed,
        &[
            "web.pcapng",
            "--no-names",
            &format!("pod/{}", pod.split('/').nth(1).unwrap()),
        ],
    );
    let expected: Vec<&String> = live
        .iter()
        .filter(|l| l.split(' ').nth(1) == Some(&pod))
        .collect();
    assert_eq!(lines.iter().collect::<Vec<_>>(), expected);
    let (lines, _, _) = read_back(&bed, &["web.pcapng", "-c", "3"]);
    assert_eq!(lines.len(), 3);
    // Rewritten as pcap: the same packets for tcpdump.
    let (_, err, code) = read_back(&bed, &["web.pcapng", "-o", "web-again.pcap"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        crate::util::tshark_count(&bed.path("web-again.pcap"), None),
        40
    );
    // Rewritten as pcapng: every packet keeps its pod comment.
    let (_, err, code) = read_back(&bed, &["web.pcapng", "-o", "web-again.pcapng"]);
    assert_eq!(code, Some(0), "{err}");
    let comments = |f: &str| tshark_fields(&bed.path(f), None, &["frame.comment"]);
    assert_eq!(comments("web.pcapng"), comments("web-again.pcapng"));
    assert!(comments("web-again.pcapng")[0][0].contains("PodName: "));
    // A packet's own comment other than kcap's pod keys is shown under its line.
    let out = run(
        Command::new("editcap")
            .args(["-a", "2:checked by ops, ticket 4242"])
            .arg(bed.path("web.pcapng"))
            .arg(bed.path("noted.pcapng")),
        LIMIT,
    );
    assert_ok(&out);
    let (lines, err, _) = read_back(&bed, &["noted.pcapng", "--no-names", "-c", "3"]);
    assert_eq!(lines.len(), 3 + 1, "{lines:?}\n{err}");
    assert_eq!(lines[..2], live[..2]);
    assert_eq!(lines[2], "    checked by ops, ticket 4242", "{lines:?}");
    // A file cut inside a packet: every complete packet, then the error (exit 1).
    let whole = std::fs::read(bed.path("web.pcapng")).unwrap();
    std::fs::write(bed.path("cut.pcapng"), &whole[..whole.len() - 30]).unwrap();
    let (lines, err, code) = read_back(&bed, &["cut.pcapng", "--no-names"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("cut.pcapng ends inside a packet after"),
        "{err}"
    );
    assert!(!lines.is_empty() && live.starts_with(&lines), "{lines:?}");
    let mut eth = bed.kcap();
    eth.args(["--ssh-host", "node-a", "-i", "eth0"]);
    print_matches_tcpdump(&bed, eth, "eth.pcap", 30, &["node-a:eth0".to_string()]);
    let mut sll = bed.kcap();
    sll.args(["--ssh-host", "node-b", "-y", "LINUX_SLL"]);
    print_matches_tcpdump(&bed, sll, "sll.pcap", 30, &["node-b:any".to_string()]);

    // Names: pings from the toolbox pod to the web service's cluster IP (nobody
    // answers; the request is enough) and to a web pod.
    let svc_ip = bed.kubectl_out(&[
        "get",
        "svc",
        "-n",
        "prod",
        "web",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    let netns = bed.pod_netns("prod", "toolbox");
    // A web pod that answers before the capture starts, so the capture's packets
    // hold answers as well as requests. On a loaded machine a pod's first
    // answers have been seen to take seconds, and once (CI, 2026-12-03) one pod
    // answered none in 20 s: the next replica is tried then.
    let answers = |ip: &str| {
        Command::new("ip")
            .args([
                "netns", "exec", &netns, "ping", "-q", "-c", "1", "-w", "15", ip,
            ])
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    let web_ips = bed.pod_field("web", "status.podIP");
    let Some(web_ip) = web_ips.iter().find(|ip| answers(ip)).cloned() else {
        let routes = Command::new("ip")
            .args(["netns", "exec", &netns, "ip", "route"])
            .output()
            .unwrap();
        panic!(
            "no web pod ({web_ips:?}) answered a ping from prod/toolbox; its routes:\n{}",
            String::from_utf8_lossy(&routes.stdout)
        );
    };
    let pings: Vec<_> = [&svc_ip, &web_ip]
        .iter()
        .map(|ip| {
            Command::new("ip")
                .args([
                    "netns", "exec", &netns, "ping", "-q", "-c", "40", "-i", "0.2", ip,
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start ping")
        })
        .collect();
    let out = run(
        bed.kcap_kube()
            .args([
                "-n",
                "prod",
                "pod/toolbox",
                "--container",
                "tools",
                "--filter",
                "icmp",
            ])
            .args(["--print", "-c", "20", "-d", "30s", "-o", "names.pcapng"])
            .current_dir(bed.path("")),
        LIMIT,
    );
    for mut p in pings {
        let _ = p.kill();
        let _ = p.wait();
    }
    assert_ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    let web_name = bed.kubectl_out(&[
        "get",
        "pods",
        "-n",
        "prod",
        "-o",
        &format!("jsonpath={{.items[?(@.status.podIP==\"{web_ip}\")].metadata.name}}"),
    ]);
    for says in [
        "prod/toolbox if".to_string(),
        "IP 10.244.".to_string(),
        format!("(prod/toolbox) > {svc_ip}(prod/svc/web): ICMP echo request"),
        format!("(prod/toolbox) > {web_ip}(prod/{web_name}): ICMP echo request"),
        format!("{web_ip}(prod/{web_name}) > "),
    ] {
        assert!(text.contains(&says), "no {says:?} in:\n{text}");
    }

    // The file names them too (name records): Wireshark's names, and -r's.
    let file = bed.path("names.pcapng");
    let out = run(
        Command::new("tshark")
            .args(["-N", "n", "-r"])
            .arg(&file)
            .args(["-T", "fields", "-e", "ip.src_host", "-e", "ip.dst_host"]),
        LIMIT,
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    for pair in [
        "toolbox.prod\tweb.prod".to_string(),
        format!("toolbox.prod\t{web_name}.prod"),
        format!("{web_name}.prod\ttoolbox.prod"),
    ] {
        assert!(shown.lines().any(|l| l == pair), "no {pair:?} in:\n{shown}");
    }
    let (lines, err, _) = read_back(&bed, &["names.pcapng", "--print"]);
    let again = lines.join("\n");
    let says = format!("(toolbox.prod) > {svc_ip}(web.prod): ICMP echo request");
    assert!(again.contains(&says), "no {says:?} in:\n{again}\n{err}");
}
