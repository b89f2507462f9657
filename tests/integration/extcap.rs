//! kcap as a Wireshark extcap, with the real tshark as the extcap host: `kcap
//! extcap install` makes `tshark -D` list kcap's interfaces, a capture through
//! tshark (options as `-o extcap.kcap_ssh.NAME:VALUE`) reads kcap's annotated
//! packets, stopping it leaves nothing behind, and `uninstall` removes the link.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::util::*;

/// A kubeconfig with two contexts (never contacted: listing interfaces reads the
/// file only).
const KUBECONFIG: &str = "\
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: 'https://127.0.0.1:1'}
users:
- name: u
  user: {token: t}
contexts:
- name: kind-prod
  context: {cluster: c, user: u}
- name: dev@east
  context: {cluster: c, user: u}
current-context: kind-prod
";

fn kcap_extcap(home: &Path, words: &[&str]) -> Output {
    let out = run(
        Command::new(KCAP).env("HOME", home).args(words),
        Duration::from_secs(30),
    );
    assert_ok(&out);
    out
}

fn tshark_interfaces(home: &Path, kubeconfig: &Path) -> String {
    let out = Command::new("tshark")
        .arg("-D")
        .env("HOME", home)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `call`s of `--extcap-config`'s `arg` lines, in order.
fn config_calls(home: &Path, interface: &str) -> Vec<String> {
    let out = kcap_extcap(home, &["--extcap-interface", interface, "--extcap-config"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("arg {"))
        .map(|l| {
            let call = l.split("{call=--").nth(1).expect("a call");
            call[..call.find('}').unwrap()].to_string()
        })
        .collect()
}

#[test]
fn extcap_install_lists_kcap_in_tshark_and_uninstall_removes_it() {
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = home.path().join("kubeconfig");
    std::fs::write(&kubeconfig, KUBECONFIG).unwrap();
    assert!(!tshark_interfaces(home.path(), &kubeconfig).contains("kcap"));

    let out = kcap_extcap(home.path(), &["extcap", "install"]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    // tshark 4.0 runs personal extcaps from ~/.config/wireshark/extcap; newer ones
    // name their folder in `tshark -G folders`.
    let folders = Command::new("tshark")
        .args(["-G", "folders"])
        .env("HOME", home.path())
        .output()
        .unwrap();
    let folders = String::from_utf8_lossy(&folders.stdout).into_owned();
    let dir = folders
        .lines()
        .find_map(|l| l.strip_prefix("Personal Extcap path:"))
        .map(|p| p.trim().into())
        .unwrap_or_else(|| home.path().join(".config/wireshark/extcap"));
    let link = dir.join("kcap");
    assert!(said.contains(&link.display().to_string()), "{said}");
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new(KCAP));

    let listed = tshark_interfaces(home.path(), &kubeconfig);
    assert!(listed.contains("kcap-ssh (kcap SSH nodes)"), "{listed}");
    assert!(
        listed.contains("kcap-k8s-kind-prod (kcap Kubernetes kind-prod)"),
        "{listed}"
    );
    assert!(
        listed.contains("kcap-k8s-dev_east (kcap Kubernetes dev@east)"),
        "{listed}"
    );

    assert_eq!(
        config_calls(home.path(), "kcap-ssh"),
        [
            "host",
            "user",
            "jump-host",
            "ssh-key",
            "ssh-config",
            "known-hosts",
            "accept-new-host-key",
            "sudo",
            "iface",
            "port",
            "protocol",
            "duration"
        ]
    );
    let kube = Command::new(KCAP)
        .env("KUBECONFIG", &kubeconfig)
        .args(["--extcap-interface", "kcap-k8s-dev_east", "--extcap-config"])
        .output()
        .unwrap();
    let kube = String::from_utf8_lossy(&kube.stdout).into_owned();
    for call in ["namespace", "target", "container", "via", "image", "port"] {
        assert!(
            kube.contains(&format!("{{call=--{call}}}")),
            "{call}: {kube}"
        );
    }
    assert!(kube.contains("{call=--target}{display=Target}"));
    assert!(kube.contains("{type=selector}{reload=true}"));

    let out = kcap_extcap(home.path(), &["extcap", "uninstall"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed"));
    assert!(std::fs::symlink_metadata(&link).is_err());
    assert!(!tshark_interfaces(home.path(), &kubeconfig).contains("kcap"));

    // --dir: any folder (a global extcap folder, a packaged install).
    let dir = home.path().join("elsewhere");
    let given = dir.to_str().unwrap();
    kcap_extcap(home.path(), &["extcap", "install", "--dir", given]);
    assert_eq!(
        std::fs::read_link(dir.join("kcap")).unwrap(),
        Path::new(KCAP)
    );
    kcap_extcap(home.path(), &["extcap", "uninstall", "--dir", given]);
    assert!(std::fs::symlink_metadata(dir.join("kcap")).is_err());
}

#[test]
fn extcap_unknown_interface_is_a_readable_error() {
    let home = tempfile::tempdir().unwrap();
    let out = run(
        Command::new(KCAP)
            .env("HOME", home.path())
            .env("KUBECONFIG", home.path().join("none"))
            .args(["--extcap-interface", "kcap-k8s-gone", "--extcap-dlts"]),
        Duration::from_secs(30),
    );
    assert_exit(
        &out,
        2,
        &["no kcap interface \"kcap-k8s-gone\"", "none found"],
    );
}

/// What tshark says when the capture cannot start: kcap's message and hint, as
/// Wireshark's error dialog would show them.
#[test]
fn extcap_errors_reach_tshark_readable() {
    let home = tempfile::tempdir().unwrap();
    kcap_extcap(home.path(), &["extcap", "install"]);
    let tshark = |prefs: &[&str]| {
        let mut cmd = Command::new("tshark");
        cmd.env("HOME", home.path())
            .args(["-i", "kcap-ssh", "-a", "duration:5"]);
        for p in prefs {
            cmd.arg("-o").arg(p);
        }
        let out = run(cmd.stdin(Stdio::null()), Duration::from_secs(60));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let said = tshark(&[]);
    assert!(
        said.contains("Error by extcap pipe: kcap: no node to capture: fill in Hosts"),
        "{said}"
    );
    let said = tshark(&["extcap.kcap_ssh.host:no-such-node.invalid"]);
    assert!(
        said.contains("cannot connect to no-such-node.invalid") && said.contains("hint: check"),
        "{said}"
    );
}

/// Whether a kcap started by tshark (its argv holds `--extcap-interface`) still runs.
fn extcap_processes() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                c.split(|&b| b == 0).any(|w| w == b"--extcap-interface")
                    && c.split(|&b| b == 0).any(|w| w == b"kcap-ssh")
            })
        })
        .collect()
}

#[test]
fn extcap_capture_through_tshark_reads_annotated_packets_and_leaves_nothing() {
    let bed = Bed::minimal();
    let home = bed.scratch.path();
    kcap_extcap(home, &["extcap", "install"]);
    let file = bed.path("through-tshark.pcapng");
    let ssh_config = format!(
        "extcap.kcap_ssh.sshconfig:{}",
        bed.bed.ssh_config().display()
    );
    let out = run(
        bed.bed
            .client_command("tshark")
            .env("HOME", home)
            .args(["-i", "kcap-ssh", "-o", "extcap.kcap_ssh.host:node-a", "-o"])
            .arg(&ssh_config)
            // The capture filter reaches kcap as --extcap-capture-filter.
            .args(["-o", "extcap.kcap_ssh.protocol:tcp", "-f", "port 80"])
            .args(["-a", "duration:8", "-w"])
            .arg(&file)
            .stdin(Stdio::null()),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let packets = tshark_fields(
        &file,
        None,
        &[
            "frame.interface_name",
            "frame.interface_description",
            "tcp.port",
        ],
    );
    assert!(!packets.is_empty(), "no packet came through tshark");
    for p in &packets {
        assert_eq!(p[0], "node-a:any", "{p:?}");
        assert_eq!(p[1], "node-a via ssh, interface any", "{p:?}");
        assert!(
            p[2].split(',').any(|port| port == "80"),
            "not port 80: {p:?}"
        );
    }
    assert!(
        bed.wait_capture_gone("node-a", Duration::from_secs(5))
            .is_empty(),
        "a capture survived tshark's stop"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !extcap_processes().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        extcap_processes(),
        Vec::<u32>::new(),
        "kcap outlived tshark"
    );
}

/// kcap as the extcap of the test bed's cluster (context `kcap`): the reload
/// buttons list namespaces and the namespace's targets from the API, and a capture
/// of pod/toolbox through tshark carries the pod's annotations; nothing is left in
/// the pod afterwards.
#[test]
fn extcap_kubernetes_reload_lists_targets_and_capture_is_annotated() {
    let bed = crate::kube::cluster();
    let home = bed.scratch.path();
    let kubeconfig = bed.bed.kubeconfig();
    let reload = |call: &str, namespace: Option<&str>| -> Vec<String> {
        let mut cmd = bed.bed.client_command(KCAP);
        cmd.env("HOME", home).env("KUBECONFIG", &kubeconfig).args([
            "--extcap-interface",
            "kcap-k8s-kcap",
            "--extcap-config",
            "--extcap-reload-option",
            call,
        ]);
        if let Some(ns) = namespace {
            cmd.args(["--namespace", ns]);
        }
        let out = run(&mut cmd, Duration::from_secs(30));
        assert_ok(&out);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let value = l.split("{value=").nth(1).expect("a value line");
                value[..value.find('}').unwrap()].to_string()
            })
            .collect()
    };
    let namespaces = reload("namespace", None);
    assert!(namespaces.iter().any(|n| n == "prod"), "{namespaces:?}");
    let targets = reload("target", Some("prod"));
    for want in ["deploy/web", "pod/toolbox"] {
        assert!(targets.iter().any(|t| t == want), "{want}: {targets:?}");
    }

    kcap_extcap(home, &["extcap", "install"]);
    let file = bed.path("pod-through-tshark.pcapng");
    let pref = |name: &str, value: &str| format!("extcap.kcap_k8s_kcap.{name}:{value}");
    let mut tshark = bed.bed.client_command("tshark");
    tshark
        .env("HOME", home)
        .env("KUBECONFIG", &kubeconfig)
        .args(["-i", "kcap-k8s-kcap"]);
    for (name, value) in [
        ("namespace", "prod"),
        ("target", "pod/toolbox"),
        ("via", "exec"),
        ("image", crate::kube::IMAGE),
    ] {
        tshark.arg("-o").arg(pref(name, value));
    }
    let out = run(
        tshark
            .args(["-a", "duration:10", "-w"])
            .arg(&file)
            .stdin(Stdio::null()),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let packets = tshark_fields(&file, None, &["frame.interface_name", "frame.comment"]);
    assert!(!packets.is_empty(), "no packet came through tshark");
    for p in &packets {
        assert_eq!(p[0], "prod/toolbox/any", "{p:?}");
        assert!(
            p[1].contains("PodName: toolbox") && p[1].contains("PodNamespace: prod"),
            "{p:?}"
        );
    }
    assert_eq!(
        bed.wait_no_capture(Duration::from_secs(10)),
        Vec::<(u32, String)>::new(),
        "a capture survived tshark's stop"
    );
}
