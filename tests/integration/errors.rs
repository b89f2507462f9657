//! Failures a user meets, each with its message and exit code.

use std::time::Duration;

use kcap_testbed::{USER_NOPRIV, USER_SUDO};

use crate::util::*;

fn kcap_node_a(bed: &Bed, args: &[&str]) -> std::process::Output {
    run(
        bed.kcap()
            .args(["--ssh-host", "node-a", "-c", "1", "-o"])
            .arg(bed.path("e.pcapng"))
            .args(args),
        Duration::from_secs(60),
    )
}

#[test]
fn unreachable_host() {
    let bed = Bed::minimal();
    let out = run(
        bed.kcap_bare()
            .args(["--ssh-host", "root@198.51.100.10:2", "-c", "1", "-o"])
            .arg(bed.path("u.pcapng")),
        Duration::from_secs(60),
    );
    assert_exit(&out, 3, &["198.51.100.10"]);
}

#[test]
fn permission_denied_suggests_sudo() {
    let bed = Bed::minimal();
    let out = kcap_node_a(&bed, &["--ssh-user", USER_NOPRIV]);
    assert_exit(&out, 8, &["--sudo", "permission"]);
    // sudo -n without a NOPASSWD rule: says so instead of hanging at a prompt.
    let out = kcap_node_a(&bed, &["--ssh-user", USER_NOPRIV, "--sudo"]);
    assert_exit(&out, 8, &["NOPASSWD"]);
    // With a NOPASSWD rule it works.
    let out = kcap_node_a(&bed, &["--ssh-user", USER_SUDO, "--sudo"]);
    assert_ok(&out);
}

#[test]
fn missing_tool_is_named_and_auto_falls_back() {
    // node-a has no tcpdump: auto mode uses tshark; node-b has no capture tool at all.
    let spec = kcap_testbed::Spec::minimal()
        .with_tool("node-a", "tcpdump", None)
        .with_tool("node-b", "tcpdump", None)
        .with_tool("node-b", "tshark", None)
        .with_tool("node-b", "dumpcap", None);
    let bed = Bed::with(spec);
    let file = bed.path("fallback.pcapng");
    let out = run(
        bed.kcap()
            .args(["--ssh-host", "node-a", "--port", "80", "-c", "5", "-o"])
            .arg(&file),
        Duration::from_secs(60),
    );
    assert_ok(&out);
    assert!(stderr(&out).contains("tshark"), "{}", stderr(&out));
    assert_eq!(tshark_count(&file, Some("tcp.port == 80")), 5);

    let out = run(
        bed.kcap()
            .args(["--ssh-host", "node-b", "-c", "1", "-o"])
            .arg(bed.path("none.pcapng")),
        Duration::from_secs(60),
    );
    assert_exit(&out, 7, &["tcpdump", "--remote-tool"]);
    let out = run(
        bed.kcap()
            .args([
                "--ssh-host",
                "node-a",
                "--remote-tool",
                "tcpdump",
                "-c",
                "1",
                "-o",
            ])
            .arg(bed.path("t.pcapng")),
        Duration::from_secs(60),
    );
    assert_exit(&out, 7, &["tcpdump is not on PATH"]);
}

#[test]
fn text_on_stdout_is_not_taken_for_a_capture() {
    // A node whose "tcpdump" prints a banner instead of pcap (as a chatty login
    // script would): kcap says so instead of writing garbage.
    let dir = tempfile::tempdir().unwrap();
    let banner = dir.path().join("tcpdump");
    std::fs::write(
        &banner,
        "#!/bin/sh\necho 'Welcome to node-a! Authorized use only.'\nsleep 1\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("755")
        .arg(&banner)
        .status()
        .unwrap();
    let bed = Bed::with(kcap_testbed::Spec::minimal().with_tool("node-a", "tcpdump", Some(banner)));
    let out = kcap_node_a(&bed, &[]);
    assert_exit(&out, 11, &["Welcome to node-a", "banner"]);
}
