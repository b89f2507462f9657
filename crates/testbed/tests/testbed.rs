//! End-to-end tests of the test bed with real namespaces, sshd, OpenSSH
//! client, tcpdump and tshark. Need root (like kcap's integration tests).

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use kcap_testbed::{Spec, TEST_PASSWORD, Testbed, USER_NOPRIV, USER_SUDO};

/// Runs real OpenSSH from the client namespace with the bed's ssh_config.
fn ssh(bed: &Testbed, args: &[&str]) -> Output {
    bed.client_command("ssh")
        .arg("-F")
        .arg(bed.ssh_config())
        .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=5"])
        .args(args)
        .output()
        .expect("run ssh")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}): stdout {:?} stderr {:?}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn namespaces() -> Vec<String> {
    fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Running = exists and is not a zombie (zombies of killed processes that
/// were re-parented to a non-reaping pid 1 are dead for our purposes).
fn running(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

fn bed_namespaces(bed: &Testbed) -> Vec<String> {
    let mut ns: Vec<String> = bed.hosts().map(|h| h.netns.clone()).collect();
    ns.extend(bed.networks().iter().map(|n| n.netns.clone()));
    ns
}

#[test]
fn ssh_reaches_every_host_including_node_c_through_two_jumps() {
    let start = Instant::now();
    let bed = Testbed::up(Spec::default()).expect("up");
    eprintln!("default bed up in {:?}", start.elapsed());

    for host in ["bastion", "node-a", "node-b", "inner-jump", "node-c"] {
        let out = ssh(&bed, &[host, "hostname"]);
        assert_ok(&out, &format!("ssh {host} hostname"));
        assert_eq!(stdout(&out), host);
    }
    assert_eq!(
        bed.host("node-c").primary_address().to_string(),
        "203.0.113.70"
    );

    // Unprivileged users: kcaptb has passwordless sudo, kcapnp has none.
    let out = ssh(&bed, &["-l", USER_SUDO, "node-c", "id -un; sudo -n id -u"]);
    assert_ok(&out, "kcaptb sudo");
    assert_eq!(stdout(&out), format!("{USER_SUDO}\n0"));
    let out = ssh(&bed, &["-l", USER_NOPRIV, "node-a", "sudo -n true"]);
    assert!(!out.status.success(), "kcapnp must not have sudo");

    // node-c is only reachable via the jumps: no route from the client.
    let out = bed
        .client_command("nc")
        .args(["-z", "-w", "2", "203.0.113.70", "22"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "node-c must not be reachable from the client"
    );
    let out = bed.run_on("bastion", "nc -z -w 2 203.0.113.70 22").unwrap();
    assert!(
        !out.status.success(),
        "bastion must not reach node-c either"
    );

    // known_hosts carries every host's key under name and address.
    let known = fs::read_to_string(bed.known_hosts()).unwrap();
    assert!(known.contains(&format!(
        "node-c,203.0.113.70 {}",
        bed.host("node-c").host_key_line()
    )));
}

#[test]
fn password_login_works_when_sshpass_is_installed() {
    if !Path::new("/usr/bin/sshpass").exists() {
        eprintln!("skipping: sshpass not installed");
        return;
    }
    let bed = Testbed::up(Spec::minimal().without_traffic()).expect("up");
    let out = bed
        .client_command("sshpass")
        .args(["-p", TEST_PASSWORD, "ssh", "-F"])
        .arg(bed.ssh_config())
        .args([
            "-o",
            "PubkeyAuthentication=no",
            "-l",
            USER_SUDO,
            "node-b",
            "id -un",
        ])
        .output()
        .unwrap();
    assert_ok(&out, "password login");
    assert_eq!(stdout(&out), USER_SUDO);
}

#[test]
fn tcpdump_on_a_node_sees_http_and_dns_traffic() {
    let bed = Testbed::up(Spec::minimal()).expect("up");
    let pcap = bed.dir().join("node-a.pcap");
    let cmd = format!(
        "timeout 15 tcpdump -i any -nn -c 30 -w {} 'port 80 or port 53'",
        pcap.display()
    );
    let out = bed.run_on("node-a", &cmd).unwrap();
    assert_ok(&out, "tcpdump");
    let count = |filter: &str| -> usize {
        let out = Command::new("tshark")
            .arg("-r")
            .arg(&pcap)
            .args(["-Y", filter])
            .output()
            .unwrap();
        assert_ok(&out, "tshark");
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    assert!(count("tcp.port == 80") > 0, "no HTTP packets");
    assert!(count("dns") > 0, "no DNS packets");
    // node-a talks to node-b as well as being queried by the client.
    assert!(count("ip.src == 198.51.100.10 && ip.dst == 198.51.100.11") > 0);
    assert!(count("ip.src == 198.51.100.1") > 0);
}

#[test]
fn drop_removes_namespaces_processes_and_files() {
    let bed = Testbed::up(Spec::minimal()).expect("up");
    let names = bed_namespaces(&bed);
    let dir = bed.dir().to_path_buf();
    // A live ssh session: its sshd child and shell must die too.
    let mut session = bed
        .client_command("ssh")
        .arg("-F")
        .arg(bed.ssh_config())
        .args(["-o", "BatchMode=yes", "node-a", "sleep 600"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while bed.processes_named("node-a", "sleep").is_empty() {
        assert!(Instant::now() < deadline, "remote sleep never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut pids = bed.processes_named("node-a", "sshd");
    pids.extend(bed.processes_named("node-a", "sleep"));
    pids.extend(bed.processes_named("node-a", "python3"));
    pids.extend(bed.processes_named("client", "python3"));
    assert!(
        pids.len() >= 5,
        "expected sshd, session, sleep and traffic: {pids:?}"
    );

    drop(bed);
    let _ = session.wait();
    let left: Vec<_> = namespaces()
        .into_iter()
        .filter(|n| names.contains(n))
        .collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
    let alive: Vec<_> = pids.into_iter().filter(|&p| running(p)).collect();
    assert!(alive.is_empty(), "processes left behind: {alive:?}");
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn a_panicking_test_still_cleans_up() {
    let mut names = Vec::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let bed = Testbed::up(Spec::minimal().without_traffic()).expect("up");
        names = bed_namespaces(&bed);
        panic!("test failure while the bed is up");
    }));
    assert!(result.is_err());
    assert!(!names.is_empty());
    let left: Vec<_> = namespaces()
        .into_iter()
        .filter(|n| names.contains(n))
        .collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
}

#[test]
fn a_failure_halfway_through_up_cleans_up_what_exists() {
    let dir = tempfile::tempdir().unwrap();
    // Writing ssh_config fails after namespaces, links and keys exist.
    fs::create_dir(dir.path().join("ssh_config")).unwrap();
    let prefix = format!("kcap-tbfail-{}", std::process::id());
    let err = Testbed::up_in(Spec::minimal().with_name_prefix(&prefix), dir.path())
        .err()
        .expect("up must fail");
    assert!(format!("{err:#}").contains("ssh_config"), "{err:#}");
    let left: Vec<_> = namespaces()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
    assert!(!dir.path().join("id_ed25519").exists());
    assert!(!dir.path().join("node-a").exists());
    assert!(
        dir.path().join("ssh_config").is_dir(),
        "pre-existing files must survive"
    );
}

#[test]
fn two_beds_run_side_by_side() {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| Testbed::up(Spec::minimal()).expect("up a"));
        let b = s.spawn(|| Testbed::up(Spec::minimal()).expect("up b"));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_ne!(a.client_netns(), b.client_netns());
    for bed in [&a, &b] {
        let out = ssh(bed, &["node-b", "hostname"]);
        assert_ok(&out, "ssh node-b");
        assert_eq!(stdout(&out), "node-b");
    }
    // Same addresses, different keys: each bed only trusts its own hosts.
    assert_ne!(
        a.host("node-b").host_key_line(),
        b.host("node-b").host_key_line()
    );
}

#[test]
fn rotated_host_key_is_rejected_and_cut_links_time_out() {
    let bed = Testbed::up(Spec::minimal().without_traffic()).expect("up");
    let old = bed.host("node-a").host_key_line();
    bed.rotate_host_key("node-a").unwrap();
    assert_ne!(bed.host("node-a").host_key_line(), old);
    let out = ssh(&bed, &["node-a", "true"]);
    assert!(!out.status.success(), "changed host key must be rejected");
    assert!(String::from_utf8_lossy(&out.stderr).contains("HOST IDENTIFICATION HAS CHANGED"));

    bed.cut_link("node-b").unwrap();
    let out = ssh(&bed, &["-o", "ConnectTimeout=2", "node-b", "true"]);
    assert!(!out.status.success(), "ssh over a cut link must fail");
    bed.restore_link("node-b").unwrap();
    assert_ok(&ssh(&bed, &["node-b", "true"]), "ssh after restore_link");
    // The listener survives; the session's own sshd process may take a moment to go.
    let deadline = Instant::now() + Duration::from_secs(10);
    while bed.processes_named("node-b", "sshd").len() > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(bed.processes_named("node-b", "sshd").len(), 1);
}

#[test]
fn up_collects_beds_of_dead_processes() {
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = format!("kcap-{dead}-0-node-a");
    let out = Command::new("ip")
        .args(["netns", "add", &stale])
        .output()
        .unwrap();
    assert_ok(&out, "ip netns add");
    let _bed = Testbed::up(Spec::lan(1).without_traffic()).expect("up");
    assert!(
        !namespaces().contains(&stale),
        "stale namespace {stale} not collected"
    );
}

#[test]
fn persisted_bed_is_removed_by_down_dir() {
    let dir = tempfile::tempdir().unwrap();
    let bed = Testbed::up_in(Spec::minimal().without_traffic(), dir.path()).expect("up");
    let names = bed_namespaces(&bed);
    let sshd = bed.processes_named("node-a", "sshd");
    bed.persist();
    assert!(names.iter().all(|n| namespaces().contains(n)));
    let status = Testbed::status_dir(dir.path()).unwrap();
    assert!(
        status.contains("node-a") && status.contains("sshd alive"),
        "{status}"
    );
    Testbed::down_dir(dir.path()).unwrap();
    assert!(names.iter().all(|n| !namespaces().contains(n)));
    assert!(sshd.iter().all(|&p| !running(p)));
    assert!(!dir.path().join("state.json").exists());
}

/// A tool hidden on one host is gone there (and only there); a replaced one runs
/// the replacement.
#[test]
fn tools_can_be_hidden_or_replaced_per_host() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("fake-tshark");
    std::fs::write(&fake, "#!/bin/sh\necho fake-tshark\n").unwrap();
    std::process::Command::new("chmod")
        .arg("755")
        .arg(&fake)
        .status()
        .unwrap();
    let spec = Spec::minimal()
        .without_traffic()
        .with_tool("node-a", "tcpdump", None)
        .with_tool("node-a", "tshark", Some(fake));
    let bed = Testbed::up(spec).unwrap();
    let ssh = |host: &str, command: &str| {
        let out = bed
            .client_command("ssh")
            .arg("-F")
            .arg(bed.ssh_config())
            .args(["-o", "BatchMode=yes", host, command])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // POSIX sh, as kcap's remote wrapper uses (bash's `command -v` also names
    // non-executable files).
    assert_eq!(
        ssh("node-a", "sh -c 'command -v tcpdump || echo none'"),
        "none"
    );
    assert_eq!(ssh("node-a", "tshark"), "fake-tshark");
    assert_eq!(ssh("node-b", "command -v tcpdump"), "/usr/bin/tcpdump");
    // The machine itself is untouched.
    assert!(
        std::path::Path::new("/usr/bin/tcpdump")
            .metadata()
            .unwrap()
            .len()
            > 1000
    );
}
