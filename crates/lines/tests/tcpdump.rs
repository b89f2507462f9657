//! kcap's lines against real tcpdump's (`tcpdump -n -r`) on the same files: real
//! traffic on this machine's loopback (ICMP, ICMPv6, TCP handshakes, data,
//! resets, UDP, unreachables), captured by real tcpdump as Ethernet-less loopback
//! (`-i lo`: Ethernet framing) and as Linux cooked v2 (`-i any`). Needs root.
//! What may differ is in `kcap_lines::compare`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use kcap_lines::{NoNames, Printer};

/// Every packet of `file` printed by kcap, then by tcpdump; they must agree line by line.
pub fn compare(file: &Path) -> usize {
    let tcpdump = Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(file)
        .stderr(Stdio::null())
        .output()
        .expect("run tcpdump");
    let theirs: Vec<String> = String::from_utf8_lossy(&tcpdump.stdout)
        .lines()
        // Drop the timestamp (compared separately).
        .map(|l| {
            l.split_once(' ')
                .map(|(_, rest)| rest.to_string())
                .unwrap_or_default()
        })
        .collect();
    let mut reader = kcap_pcap::open(file).expect("open the capture");
    let mut printer = Printer::new();
    let mut ours = Vec::new();
    while let Some(record) = reader.next() {
        let record = record.expect("read a record");
        let link = reader.interfaces()[record.interface_id as usize].link_type;
        let p = &record.packet;
        ours.push(printer.describe(link, &p.data, p.orig_len, &NoNames).text);
    }
    assert_eq!(
        ours.len(),
        theirs.len(),
        "{}: packet counts",
        file.display()
    );
    let mut differ = Vec::new();
    for (t, o) in theirs.iter().zip(&ours) {
        if !kcap_lines::compare::agrees_with_tcpdump(t, o) {
            differ.push(format!("tcpdump: {t}\n   kcap: {o}"));
        }
    }
    assert!(
        differ.is_empty(),
        "{}:\n{}",
        file.display(),
        differ.join("\n")
    );
    ours.len()
}

/// Two network namespaces joined by a veth pair, removed on drop (a failing
/// test too).
struct Pair {
    a: String,
    b: String,
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("run ip");
    assert!(status.success(), "ip {args:?}");
}

fn in_ns(ns: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).args(args);
    cmd
}

impl Pair {
    fn new() -> Pair {
        let id = std::process::id();
        let pair = Pair {
            a: format!("kcap-lines-{id}-a"),
            b: format!("kcap-lines-{id}-b"),
        };
        ip(&["netns", "add", &pair.a]);
        ip(&["netns", "add", &pair.b]);
        ip(&[
            "-n", &pair.a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns",
            &pair.b,
        ]);
        for (ns, v4, v6) in [
            (&pair.a, "10.77.0.1/24", "2001:db8:77::1/64"),
            (&pair.b, "10.77.0.2/24", "2001:db8:77::2/64"),
        ] {
            ip(&["-n", ns, "addr", "add", v4, "dev", "eth0"]);
            ip(&["-n", ns, "addr", "add", v6, "dev", "eth0", "nodad"]);
            ip(&["-n", ns, "link", "set", "eth0", "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        pair
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "delete", ns]).status();
        }
    }
}

/// Real traffic from a to b: ARP and neighbor discovery, pings, a TCP exchange with
/// data, a refused TCP connection, UDP to closed ports (ICMP and ICMPv6
/// unreachables) and a DNS-looking query.
fn traffic(pair: &Pair) {
    let mut server = in_ns(&pair.b, &["python3", "-c", "import socket\ns=socket.socket(socket.AF_INET6)\ns.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\ns.bind(('::', 8080))\ns.listen()\nfor _ in range(2):\n    c,_=s.accept()\n    c.recv(100)\n    c.sendall(b'HTTP/1.0 200 OK\\r\\n\\r\\nhello world\\n'*40)\n    c.close()\n"])
        .spawn()
        .expect("start the server");
    std::thread::sleep(Duration::from_millis(300));
    let client = "import socket,sys\nfor host in ['10.77.0.2','2001:db8:77::2']:\n    c=socket.create_connection((host,8080))\n    c.sendall(b'GET / HTTP/1.1\\r\\nHost: b\\r\\n\\r\\n')\n    while c.recv(65536): pass\n    c.close()\n    try: socket.create_connection((host,9))\n    except OSError: pass\n    u=socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET, socket.SOCK_DGRAM)\n    u.sendto(b'x'*21,(host,9999))\n    u.sendto(b'\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x01a\\x00\\x00\\x01\\x00\\x01',(host,53))\n";
    for args in [
        &["ping", "-c", "2", "-i", "0.2", "10.77.0.2"][..],
        &["ping", "-6", "-c", "2", "-i", "0.2", "2001:db8:77::2"],
        &["python3", "-c", client],
    ] {
        let status = in_ns(&pair.a, args)
            .stdout(Stdio::null())
            .status()
            .expect("run traffic");
        assert!(status.success(), "{args:?}");
    }
    let _ = server.wait();
}

#[test]
fn lines_match_tcpdump_for_every_link_type_kcap_writes() {
    let pair = Pair::new();
    let dir = tempfile::tempdir().unwrap();
    // Ethernet (the veth), Linux cooked v2 (`any`) and v1 (`-y LINUX_SLL`).
    let captures = [
        ("eth.pcap", vec!["-i", "eth0"]),
        ("any.pcap", vec!["-i", "any"]),
        ("sll1.pcap", vec!["-i", "any", "-y", "LINUX_SLL"]),
    ];
    let mut tcpdumps = Vec::new();
    for (name, args) in &captures {
        let file = dir.path().join(name);
        // Immediate mode: without it, what is still in the kernel ring when tcpdump
        // is stopped (up to its 1 s timeout) never reaches the file. Its ring then
        // has one slot per packet: a large buffer, so a loaded CI machine that is
        // slow to read it drops nothing (three captures of the same traffic).
        let mut cmd = in_ns(
            &pair.a,
            &["tcpdump", "--immediate-mode", "-B", "32768", "-U", "-w"],
        );
        cmd.arg(&file).args(args).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start tcpdump");
        // Capturing once it says it listens (a busy machine may take a while).
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0
            && !line.contains("listening on")
        {
            line.clear();
        }
        tcpdumps.push(child);
    }
    traffic(&pair);
    // Time for each tcpdump to read the last packets from its ring before SIGTERM.
    std::thread::sleep(Duration::from_millis(1500));
    for mut t in tcpdumps {
        terminate(t.id());
        let _ = t.wait();
    }
    for (name, _) in &captures {
        let n = compare(&dir.path().join(name));
        // 4 pings and replies, 2 TCP exchanges (>= 10 packets each), the refusals,
        // the unreachables and the neighbor discovery.
        let listing = Command::new("tcpdump")
            .args(["-n", "-r"])
            .arg(dir.path().join(name))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        assert!(n >= 40, "{name}: only {n} packets:\n{listing}");
        eprintln!("{name}: {n} packets agree");
    }
}

/// SIGTERM, so tcpdump flushes and closes its file.
fn terminate(pid: u32) {
    let _ = Command::new("kill").arg(pid.to_string()).status();
}
