//! What the remote side said when it ended: why a capture failed (from the tool's
//! stderr and exit status) and the drop statistics tcpdump, tshark and dumpcap print.

use crate::command::{
    MARKER_AGENT_READ, MARKER_MISSING_TOOL, MARKER_NETNS_NOT_FOUND, MARKER_NETNS_WAY,
    MARKER_PROCESS_UNAVAILABLE, MARKER_PROCESS_UNUSABLE, MARKER_TOOL,
};

/// Why a remote capture did not run. Each kind maps to its own exit code in kcap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No capture tool (or not the requested one) on the remote PATH.
    ToolMissing { message: String },
    /// The tool may not open the device: not root, no CAP_NET_RAW, or sudo refused.
    PermissionDenied { message: String },
    /// `sudo -n` wants a password.
    SudoNeedsPassword { message: String },
    /// The tool rejected the filter expression.
    BadFilter { message: String },
    /// The tool rejected the interface.
    BadInterface { message: String },
    /// The pod's network was not found from its node: what each way found.
    NoPodNetwork { message: String },
    /// `--process`: kcap's agent cannot attribute packets to processes on that
    /// node (no BPF rights, no BTF); `message` is its reason, control characters
    /// escaped.
    ProcessUnusable { message: String },
    /// Anything else: the tool's own words.
    Other { message: String },
}

impl Failure {
    pub fn message(&self) -> &str {
        match self {
            Failure::ToolMissing { message }
            | Failure::PermissionDenied { message }
            | Failure::SudoNeedsPassword { message }
            | Failure::BadFilter { message }
            | Failure::BadInterface { message }
            | Failure::NoPodNetwork { message }
            | Failure::ProcessUnusable { message }
            | Failure::Other { message } => message,
        }
    }
}

/// Lines of stderr that are the tool talking about itself rather than an error.
fn is_chatter(line: &str) -> bool {
    line.starts_with(MARKER_TOOL)
        || line.starts_with(MARKER_AGENT_READ)
        || line.starts_with(MARKER_NETNS_WAY)
        || line.starts_with(MARKER_PROCESS_UNAVAILABLE)
        || line.contains("listening on ")
        || line.starts_with("Capturing on ")
        // tcpdump's note on -i any ("tcpdump: data link type LINUX_SLL2"), printed
        // before a filter error: not part of the error.
        || line.contains(": data link type ")
        || line.is_empty()
}

/// The tool's own error text: stderr without kcap's markers and the start-up banner.
pub fn error_text(stderr: &str) -> String {
    stderr
        .lines()
        .map(str::trim_end)
        .filter(|l| !is_chatter(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `--process=auto` on a node where the agent cannot attribute packets: why
/// (control characters escaped), when the agent said so. The capture goes on.
pub fn process_unavailable(stderr: &str) -> Option<String> {
    marked(stderr, MARKER_PROCESS_UNAVAILABLE)
}

/// The rest of the first line starting with `marker`, as data: the node's text may
/// hold anything, so control characters are escaped.
fn marked(stderr: &str, marker: &str) -> Option<String> {
    let line = stderr.lines().find(|l| l.starts_with(marker))?;
    let mut why = String::new();
    for c in line[marker.len()..].trim_end().chars() {
        if c.is_control() {
            why.extend(c.escape_default());
        } else {
            why.push(c);
        }
    }
    Some(why)
}

/// Classifies a capture that failed (non-zero exit, or ended before sending a pcap
/// header) from the tool's stderr.
pub fn classify(stderr: &str) -> Failure {
    let lower = stderr.to_ascii_lowercase();
    if let Some(line) = stderr.lines().find(|l| l.starts_with(MARKER_MISSING_TOOL)) {
        return Failure::ToolMissing {
            message: line[MARKER_MISSING_TOOL.len()..].to_string(),
        };
    }
    if let Some(why) = marked(stderr, MARKER_PROCESS_UNUSABLE) {
        return Failure::ProcessUnusable {
            message: format!(
                "--process: cannot attribute packets to processes on this node: {why}"
            ),
        };
    }
    if let Some(line) = stderr
        .lines()
        .find(|l| l.starts_with(MARKER_NETNS_NOT_FOUND))
    {
        return Failure::NoPodNetwork {
            message: format!(
                "the pod's network was not found from its node: {}",
                &line[MARKER_NETNS_NOT_FOUND.len()..]
            ),
        };
    }
    let message = error_text(stderr);
    let has = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    if has(&[
        "sudo: a password is required",
        "sudo: a terminal is required",
    ]) {
        Failure::SudoNeedsPassword { message }
    } else if has(&["sudo: not found", "sudo: command not found"]) {
        Failure::ToolMissing { message }
    } else if has(&[
        "syntax error in filter expression",
        "can't parse filter expression",
        "invalid capture filter",
        "illegal token",
        "unknown host",
        "unknown port",
        "unknown network",
        "expression rejects all packets",
        "not a valid filter",
    ]) {
        Failure::BadFilter { message }
    } else if has(&[
        "no such device",
        "there is no device named",
        "is not a valid interface",
        "doesn't exist",
        "no such interface",
    ]) {
        Failure::BadInterface { message }
    } else if has(&[
        "permission to capture",
        "permission to perform this capture",
        "operation not permitted",
        "permission denied",
        "you don't have permission",
        "is not in the sudoers file",
        "not allowed to execute",
    ]) {
        Failure::PermissionDenied { message }
    } else {
        Failure::Other { message }
    }
}

/// The tool named by the wrapper's marker line, once it has started.
pub fn tool_used(stderr: &str) -> Option<&str> {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix(MARKER_TOOL))
        .map(str::trim)
}

/// How the pod's network was found from its node, once it was (`crictl`,
/// `netns by IP`, `cgroup`, `veth caliXXXX`).
pub fn netns_way(stderr: &str) -> Option<&str> {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix(MARKER_NETNS_WAY))
        .map(str::trim)
}

/// Counters the remote tool prints when it stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ToolStatistics {
    pub captured: Option<u64>,
    pub received: Option<u64>,
    pub dropped_by_kernel: Option<u64>,
    pub dropped_by_interface: Option<u64>,
}

impl ToolStatistics {
    /// Parses tcpdump's "N packets dropped by kernel" lines, tshark's
    /// "N packets captured" and dumpcap's "Packets received/dropped on interface 'x': R/D".
    pub fn parse(stderr: &str) -> Option<ToolStatistics> {
        let mut stats = ToolStatistics::default();
        let mut found = false;
        for line in stderr.lines().map(str::trim) {
            let leading = || line.split_whitespace().next()?.parse::<u64>().ok();
            if let Some(rest) = line.strip_prefix("Packets captured:") {
                stats.captured = rest.trim().parse().ok();
            } else if line.starts_with("Packets received/dropped on interface") {
                let numbers = line.rsplit_once(": ").map(|(_, n)| n).unwrap_or("");
                let pair = numbers.split_whitespace().next().unwrap_or("");
                if let Some((r, d)) = pair.split_once('/') {
                    stats.received = r.parse().ok();
                    stats.dropped_by_kernel = d.parse().ok();
                }
            } else if line.ends_with("packets captured") || line.ends_with("packet captured") {
                stats.captured = leading();
            } else if line.ends_with("received by filter") {
                stats.received = leading();
            } else if line.ends_with("dropped by kernel") {
                stats.dropped_by_kernel = leading();
            } else if line.ends_with("dropped by interface") {
                stats.dropped_by_interface = leading();
            } else {
                continue;
            }
            found = true;
        }
        found.then_some(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The agent's words come as data (an escape sequence stays visible text), and
    /// win over the permission heuristics their text may trip.
    #[test]
    fn the_agents_process_markers() {
        let stderr = "kcap-remote: tool: agent\n\
                      kcap-remote: process-unusable: bpf(): Operation not permitted \x1b[31m\u{7}\n";
        assert_eq!(
            classify(stderr),
            Failure::ProcessUnusable {
                message: "--process: cannot attribute packets to processes on this node: \
                          bpf(): Operation not permitted \\u{1b}[31m\\u{7}"
                    .into()
            }
        );
        let auto = "kcap-remote: process-unavailable: no BTF at /sys/kernel/btf/vmlinux\n\
                    kcap-remote: tool: agent\n";
        assert_eq!(
            process_unavailable(auto).as_deref(),
            Some("no BTF at /sys/kernel/btf/vmlinux")
        );
        assert_eq!(process_unavailable("kcap-remote: tool: agent\n"), None);
        assert_eq!(error_text(auto), "");
    }

    #[test]
    fn classifies_real_tool_messages() {
        let cases = [
            (
                "kcap-remote: missing-tool: none of tcpdump, tshark, dumpcap is on PATH (/usr/bin)\n",
                "missing",
            ),
            (
                "tcpdump: any: You don't have permission to perform this capture on that device\n(socket: Operation not permitted)\n",
                "perm",
            ),
            (
                "tcpdump: listening on any\ntcpdump: can't parse filter expression: syntax error\n",
                "filter",
            ),
            (
                "tcpdump: eth9: No such device exists\n(No such device exists)\n",
                "iface",
            ),
            ("sudo: a password is required\n", "sudo"),
            (
                "kcap-netns: not-found: container abc, pod IP 10.244.0.9: crictl: crictl is not on PATH; netns by IP: none of the 9 network namespaces of the node's processes holds 10.244.0.9; cgroup: no process's /proc/PID/cgroup names container abc\n",
                "netns",
            ),
            (
                "Capturing on 'any'\ntshark: Invalid capture filter \"port x\" for interface 'any'.\n",
                "filter",
            ),
        ];
        for (stderr, want) in cases {
            let got = match classify(stderr) {
                Failure::ToolMissing { .. } => "missing",
                Failure::PermissionDenied { .. } => "perm",
                Failure::BadFilter { .. } => "filter",
                Failure::BadInterface { .. } => "iface",
                Failure::SudoNeedsPassword { .. } => "sudo",
                Failure::NoPodNetwork { .. } => "netns",
                Failure::ProcessUnusable { .. } => "process",
                Failure::Other { .. } => "other",
            };
            assert_eq!(got, want, "{stderr}");
        }
        assert_eq!(
            classify("tcpdump: listening on any\ntcpdump: boom\n").message(),
            "tcpdump: boom"
        );
    }

    /// The way the pod's network was found is told, and is not part of an error.
    #[test]
    fn the_netns_way_is_read_and_is_no_error() {
        let stderr = "kcap-netns: way: netns by IP\nkcap-remote: tool: tcpdump\ntcpdump: boom\n";
        assert_eq!(netns_way(stderr), Some("netns by IP"));
        assert_eq!(error_text(stderr), "tcpdump: boom");
        assert_eq!(netns_way("kcap-remote: tool: tcpdump\n"), None);
    }

    /// tcpdump's `-i any` note comes before its filter error; only the error is the message.
    #[test]
    fn the_data_link_note_is_not_part_of_the_error() {
        let stderr = "kcap-remote: tool: tcpdump\ntcpdump: data link type LINUX_SLL2\ntcpdump: can't parse filter expression: syntax error\n";
        assert_eq!(
            classify(stderr),
            Failure::BadFilter {
                message: "tcpdump: can't parse filter expression: syntax error".into()
            }
        );
    }

    #[test]
    fn parses_statistics() {
        let tcpdump = "kcap-remote: tool: tcpdump\n12 packets captured\n14 packets received by filter\n2 packets dropped by kernel\n";
        assert_eq!(
            ToolStatistics::parse(tcpdump),
            Some(ToolStatistics {
                captured: Some(12),
                received: Some(14),
                dropped_by_kernel: Some(2),
                dropped_by_interface: None
            })
        );
        assert_eq!(tool_used(tcpdump), Some("tcpdump"));
        let dumpcap = "Packets captured: 7\nPackets received/dropped on interface 'any': 9/1 (pcap:0/dumpcap:0/flushed:0/ps_ifdrop:0) (100.0%)\n";
        let stats = ToolStatistics::parse(dumpcap).unwrap();
        assert_eq!(
            (stats.captured, stats.received, stats.dropped_by_kernel),
            (Some(7), Some(9), Some(1))
        );
        assert_eq!(ToolStatistics::parse("nothing here"), None);
    }
}
