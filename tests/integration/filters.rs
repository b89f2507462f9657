//! Filters: --port/--protocol and --filter select exactly the expected packets; hostile
//! input never runs as a command; the remote tool's own message for a bad filter.

use std::time::Duration;

use crate::util::*;

fn capture(bed: &Bed, name: &str, args: &[&str]) -> (std::process::Output, std::path::PathBuf) {
    let file = bed.path(name);
    let out = run(
        bed.kcap()
            .args(["--ssh-host", "node-a"])
            .args(args)
            .arg("-o")
            .arg(&file),
        Duration::from_secs(60),
    );
    (out, file)
}

#[test]
fn port_and_protocol_select_exactly() {
    let bed = Bed::minimal();
    let (out, file) = capture(
        &bed,
        "udp53.pcapng",
        &["--port", "53", "--protocol", "udp", "-c", "12"],
    );
    assert_ok(&out);
    assert_eq!(tshark_count(&file, None), 12);
    assert_eq!(tshark_count(&file, Some("udp.port == 53")), 12);

    let (out, file) = capture(
        &bed,
        "tcp80.pcap",
        &["--port", "80", "--protocol", "tcp", "-c", "12"],
    );
    assert_ok(&out);
    assert_eq!(tshark_count(&file, Some("tcp.port == 80")), 12);

    // Several ports: any of them, nothing else.
    let (out, file) = capture(
        &bed,
        "both.pcapng",
        &["--port", "80", "--port", "53", "-d", "3s"],
    );
    assert_ok(&out);
    let total = tshark_count(&file, None);
    assert!(tshark_count(&file, Some("udp.port == 53")) > 0);
    assert!(tshark_count(&file, Some("tcp.port == 80")) > 0);
    assert_eq!(
        tshark_count(&file, Some("udp.port == 53 || tcp.port == 80")),
        total
    );
}

#[test]
fn custom_filter_is_joined_with_the_generated_one() {
    let bed = Bed::minimal();
    let (out, file) = capture(
        &bed,
        "custom.pcapng",
        &[
            "--port",
            "80",
            "--filter",
            "src host 198.51.100.10",
            "-c",
            "8",
        ],
    );
    assert_ok(&out);
    assert_eq!(
        tshark_count(&file, Some("tcp.port == 80 && ip.src == 198.51.100.10")),
        8
    );
}

#[test]
fn hostile_filter_runs_nothing_and_bad_filter_is_reported() {
    let bed = Bed::minimal();
    let marker = bed.path("pwned");
    let hostile = format!("port 80; touch {}", marker.display());
    let (out, _) = capture(&bed, "h.pcapng", &["--filter", &hostile, "-c", "1"]);
    assert_exit(&out, 9, &["filter"]);
    assert!(!marker.exists(), "the filter ran a command on the node");

    let (out, _) = capture(
        &bed,
        "bad.pcapng",
        &["--filter", "port nonsense", "-c", "1"],
    );
    // tcpdump's own words come through.
    assert_exit(&out, 9, &["tcpdump", "nonsense"]);
}

#[test]
fn hostile_interface_is_refused_before_connecting() {
    let bed = Bed::minimal();
    let marker = bed.path("pwned-iface");
    let iface = format!("eth0$(touch {})", marker.display());
    let (out, _) = capture(&bed, "i.pcapng", &["--iface", &iface, "-c", "1"]);
    assert_exit(&out, 2, &["interface"]);
    assert!(!marker.exists());

    let (out, _) = capture(&bed, "i.pcapng", &["--iface", "nosuch0", "-c", "1"]);
    assert_exit(&out, 9, &["nosuch0"]);
}
