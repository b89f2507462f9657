//! The options of kcap's interfaces in Wireshark's dialog (and tshark's
//! `-o extcap.IFACE.NAME:VALUE` preferences): SSH ones, Kubernetes ones, and the
//! capture options both share. [`super::capture`] turns them into kcap's flags.

use kcap_kube::methods::DEFAULT_IMAGE;

/// Option types of the extcap protocol that kcap uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    /// A drop-down. (Not `editselector`, which could also be typed into: tshark
    /// 4.0 makes no `-o extcap...` preference of one.)
    Selector,
    /// A checkbox: `--NAME` alone when checked.
    BoolFlag,
    FileSelect,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Selector => "selector",
            Kind::BoolFlag => "boolflag",
            Kind::FileSelect => "fileselect",
        }
    }
}

/// One option of an interface's dialog; `call` is its name on kcap's extcap
/// command line (`--call`), and in tshark's `-o extcap.IFACE.call:VALUE`.
#[derive(Debug)]
pub struct Opt {
    pub call: &'static str,
    pub display: &'static str,
    pub tooltip: &'static str,
    pub kind: Kind,
    pub default: Option<&'static str>,
    /// Fixed choices of a selector, as (value, display); the first is the default.
    pub values: &'static [(&'static str, &'static str)],
    /// Its values come from the API (the reload button).
    pub reload: bool,
    pub required: bool,
    pub group: &'static str,
}

const fn opt(call: &'static str, display: &'static str, tooltip: &'static str) -> Opt {
    Opt {
        call,
        display,
        tooltip,
        kind: Kind::String,
        default: None,
        values: &[],
        reload: false,
        required: false,
        group: "Capture",
    }
}

const PROTOCOLS: &[(&str, &str)] = &[("all", "all"), ("tcp", "TCP"), ("udp", "UDP")];
const VIAS: &[(&str, &str)] = &[
    ("auto", "auto: exec, else ephemeral, else node"),
    ("exec", "exec: tcpdump in the container"),
    ("ephemeral", "ephemeral: a debug container"),
    ("node", "node: a helper pod on the pod's node"),
    ("ssh", "ssh: SSH to the pod's node"),
];

/// What both kinds of interface capture with, after their own options.
pub const CAPTURE_OPTIONS: &[Opt] = &[
    Opt {
        default: Some("any"),
        ..opt(
            "iface",
            "Interface",
            "Interface on the node or in the pod (any: all of them)",
        )
    },
    opt(
        "port",
        "Ports",
        "Keep only traffic on these ports (comma-separated)",
    ),
    Opt {
        kind: Kind::Selector,
        values: PROTOCOLS,
        ..opt("protocol", "Protocol", "Keep only this transport")
    },
    opt(
        "duration",
        "Duration",
        "Stop after this long (30s, 5m, 1h30m); empty: until Stop",
    ),
];

pub const SSH_OPTIONS: &[Opt] = &[
    Opt {
        required: true,
        group: "Node",
        ..opt(
            "host",
            "Hosts",
            "Nodes to capture on: host, user@host:port or ~/.ssh/config alias; comma-separated for several",
        )
    },
    Opt {
        group: "Node",
        ..opt(
            "user",
            "User",
            "User to log in as (default: ssh_config User, else yours)",
        )
    },
    Opt {
        group: "Node",
        ..opt(
            "jump-host",
            "Jump hosts",
            "[user@]host[:port], comma-separated for a chain (as ssh -J)",
        )
    },
    Opt {
        kind: Kind::FileSelect,
        group: "Node",
        ..opt("ssh-key", "Private key", "Key file to try first")
    },
    Opt {
        kind: Kind::FileSelect,
        group: "Node",
        ..opt(
            "ssh-config",
            "ssh_config file",
            "Read this instead of ~/.ssh/config",
        )
    },
    Opt {
        kind: Kind::FileSelect,
        group: "Node",
        ..opt(
            "known-hosts",
            "known_hosts file",
            "Verify host keys against this file",
        )
    },
    Opt {
        kind: Kind::BoolFlag,
        group: "Node",
        ..opt(
            "accept-new-host-key",
            "Accept a new host key",
            "Trust a host key seen for the first time and record it (a changed one is still refused)",
        )
    },
    Opt {
        kind: Kind::BoolFlag,
        group: "Node",
        ..opt(
            "sudo",
            "sudo",
            "Run the capture through sudo -n (needs NOPASSWD)",
        )
    },
];

pub const KUBE_OPTIONS: &[Opt] = &[
    Opt {
        kind: Kind::Selector,
        reload: true,
        group: "Target",
        ..opt(
            "namespace",
            "Namespace",
            "Namespace of the targets (empty: the context's); reload lists them",
        )
    },
    Opt {
        kind: Kind::Selector,
        reload: true,
        group: "Target",
        ..opt(
            "target",
            "Target",
            "pod/NAME, deploy/NAME, sts/NAME, ds/NAME, svc/NAME or node/NAME (comma-separated for several); reload lists the namespace's",
        )
    },
    Opt {
        group: "Target",
        ..opt(
            "selector",
            "Label selector",
            "Every pod matching it, e.g. app=web",
        )
    },
    Opt {
        group: "Target",
        ..opt(
            "container",
            "Container",
            "Container whose network to capture (default: the pod's default)",
        )
    },
    Opt {
        kind: Kind::BoolFlag,
        group: "Target",
        ..opt("follow", "Follow", "Also capture pods that appear later")
    },
    Opt {
        kind: Kind::Selector,
        values: VIAS,
        group: "Method",
        ..opt("via", "Via", "How to reach a pod's network")
    },
    Opt {
        default: Some(DEFAULT_IMAGE),
        group: "Method",
        ..opt(
            "image",
            "Image",
            "Image of debug and helper containers (sh, tcpdump; nsenter and ip for node)",
        )
    },
];

/// Flags (no value) among all options, for [`super::request::parse`].
pub fn flag_names() -> Vec<&'static str> {
    SSH_OPTIONS
        .iter()
        .chain(KUBE_OPTIONS)
        .filter(|o| o.kind == Kind::BoolFlag)
        .map(|o| o.call)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_unique_calls() {
        assert_eq!(flag_names(), ["accept-new-host-key", "sudo", "follow"]);
        for own in [SSH_OPTIONS, KUBE_OPTIONS] {
            let mut calls: Vec<&str> = own.iter().chain(CAPTURE_OPTIONS).map(|o| o.call).collect();
            let all = calls.len();
            calls.sort();
            calls.dedup();
            assert_eq!(calls.len(), all, "an option name is used twice");
        }
    }
}
