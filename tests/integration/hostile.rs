//! Hostile input, table-driven: every value that reaches a remote shell or the
//! API (host, user, jump spec, interface, filter, pod, container, namespace,
//! image, selector, filter tokens) is given each of many hostile strings. Each
//! run must end with kcap's own error (refused, or passed as data and refused by
//! the node or the API), never a panic, and a sentinel file that every payload
//! tries to create must never exist: nothing ran, here or on a node (the
//! namespaces share this file system).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::util::*;

/// Hostile strings around a command that creates `sentinel`.
fn payloads(sentinel: &Path) -> Vec<String> {
    let s = sentinel.display();
    let touch = format!("touch {s}");
    let mut all = vec![
        format!("$({touch})"),
        format!("`{touch}`"),
        format!("; {touch}"),
        format!(";{touch};"),
        format!("| {touch}"),
        format!("&& {touch}"),
        format!("|| {touch}"),
        format!("& {touch} &"),
        format!("\n{touch}\n"),
        format!("\r\n{touch}"),
        format!("'; {touch}; '"),
        format!("\"; {touch}; \""),
        format!("'\"$({touch})\"'"),
        format!("$(touch${{IFS}}{s})"),
        format!("${{IFS}};{touch}"),
        format!("x$({touch})y"),
        format!("a`{touch}`b"),
        format!("> {s}"),
        format!(">{s}"),
        format!(">>{s}"),
        format!("2>{s}"),
        format!("< /etc/passwd; {touch}"),
        format!("$'\\x3b' {touch}"),
        format!("\\; {touch}"),
        format!("\\`{touch}\\`"),
        format!("{{{touch},x}}"),
        format!("!{touch}"),
        format!("# \n{touch}"),
        format!("-oProxyCommand={touch}"),
        format!("-o ProxyCommand={touch}"),
        format!("--exec={touch}"),
        format!("-e {touch}"),
        format!("-w {s}"),
        format!("-z {touch}"),
        format!("-V {s}"),
        format!("%h$({touch})%p"),
        format!("${{HOME}}$({touch})"),
        format!("~root/$({touch})"),
        format!("*;{touch}"),
        format!("?$({touch})"),
        format!("[a]$({touch})"),
        format!("\t{touch}"),
        format!("\u{202e}$({touch})"),
        format!("é$({touch})"),
        format!("{}$({touch})", "a".repeat(300)),
        format!("x\u{0b}{touch}"),
        format!("x\u{0c}{touch}"),
        format!("eval {touch}"),
        format!("$(sh -c '{touch}')"),
        format!("$(printf '{touch}' | sh)"),
    ];
    // Plain shapes that are not commands but break naive parsers.
    all.extend(
        [
            "", " ", "-", "--", "..", "../../..", "/", "@", ":", "a@b@c", "[::1", "%", "%%", "=",
            ",",
        ]
        .map(String::from),
    );
    all
}

/// How one flag gets a hostile value: the arguments of a kcap run.
struct Input {
    name: &'static str,
    args: fn(&str) -> Vec<String>,
    kube: bool,
}

fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

const INPUTS: &[Input] = &[
    Input {
        name: "--ssh-host",
        args: |p| v(&["--ssh-host", p]),
        kube: false,
    },
    Input {
        name: "--ssh-user",
        args: |p| v(&["--ssh-host", "node-a", "--ssh-user", p]),
        kube: false,
    },
    Input {
        name: "--jump-host",
        args: |p| v(&["--ssh-host", "node-a", "--jump-host", p]),
        kube: false,
    },
    Input {
        name: "--iface",
        args: |p| v(&["--ssh-host", "node-a", "--iface", p]),
        kube: false,
    },
    Input {
        name: "--filter",
        args: |p| v(&["--ssh-host", "node-a", "--filter", p]),
        kube: false,
    },
    Input {
        name: "pod/NAME",
        args: |p| v(&[&format!("pod/{p}")]),
        kube: true,
    },
    Input {
        name: "--pod",
        args: |p| v(&["--pod", p]),
        kube: true,
    },
    Input {
        name: "--container",
        args: |p| v(&["pod/toolbox", "--container", p]),
        kube: true,
    },
    Input {
        name: "--namespace",
        args: |p| v(&["pod/toolbox", "--namespace", p]),
        kube: true,
    },
    Input {
        name: "--image",
        args: |p| v(&["pod/toolbox", "--via", "ephemeral", "--image", p]),
        kube: true,
    },
    Input {
        name: "-l",
        args: |p| v(&["-l", p]),
        kube: true,
    },
    Input {
        name: "filter token",
        args: |p| v(&["pod/toolbox", "--filter", &format!("pod/{p}")]),
        kube: true,
    },
];

/// Runs every case of `inputs`, a few at a time; returns (case, output) pairs.
fn run_all(bed: &Bed, cases: Vec<(String, Vec<String>, bool)>) -> Vec<(String, Output)> {
    let mut results = Vec::new();
    for batch in cases.chunks(8) {
        let children: Vec<_> = batch
            .iter()
            .map(|(label, args, kube)| {
                let mut cmd: Command = if *kube { bed.kcap_kube() } else { bed.kcap() };
                cmd.args(["-d", "3s", "-c", "1", "-o", "/dev/null"])
                    .args(args)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped());
                (label.clone(), cmd.spawn().unwrap())
            })
            .collect();
        for (label, child) in children {
            results.push((label, wait(child, Duration::from_secs(60))));
        }
    }
    results
}

#[test]
fn hostile_values_are_refused_or_passed_as_data_and_nothing_runs() {
    kcap_testbed::require_kubectl!();
    let bed = crate::kube::cluster();
    let sentinel = bed.path("SENTINEL-nothing-may-create-me");
    let payloads = payloads(&sentinel);
    assert!(payloads.len() >= 50, "{} hostile strings", payloads.len());
    let mut cases = Vec::new();
    for input in INPUTS {
        for payload in &payloads {
            let label = format!("{} {payload:?}", input.name);
            cases.push((label, (input.args)(payload), input.kube));
        }
    }
    let total = cases.len();
    let results = run_all(&bed, cases);
    let mut refused = 0;
    let mut worked = Vec::new();
    for (label, out) in &results {
        let text = stderr(out);
        assert!(
            !text.contains("panicked"),
            "{label}: kcap panicked:\n{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("kcap: ") || l.starts_with("error: ")),
            "{label}: no message of kcap's:\n{text}"
        );
        match out.status.success() {
            false => refused += 1,
            true => worked.push(label.as_str()),
        }
        assert!(
            !sentinel.exists(),
            "{label}: the sentinel was created: something ran"
        );
    }
    // Passed as data, a value can still be harmless and work (a filter that is
    // valid BPF after all); most are refused.
    eprintln!(
        "{total} hostile runs, {refused} refused with an error, none ran anything; \
         harmless as data: {worked:?}"
    );
    assert!(
        refused * 10 >= total * 9,
        "only {refused} of {total} refused"
    );
    assert!(!sentinel.exists());
}
