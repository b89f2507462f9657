//! What Wireshark shows for kcap: the interfaces (one per kubeconfig context, one
//! for SSH nodes), their link type, and the options of each interface's dialog, in
//! the extcap protocol's text form. Nothing here contacts a cluster: Wireshark
//! and tshark ask for every interface's options at every start, so the lists that
//! come from the API (namespaces, targets) are filled only by the dialog's reload
//! button ([`super::reload`]).

use std::fmt::Write;

use kcap_kube::methods::DEFAULT_IMAGE;

/// The SSH interface's name.
pub const SSH_INTERFACE: &str = "kcap-ssh";
/// A Kubernetes interface's name is this and the context's name.
pub const KUBE_PREFIX: &str = "kcap-k8s-";

/// One kcap interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interface {
    Ssh,
    /// A kubeconfig context, by its name in the kubeconfig.
    Kube {
        context: String,
    },
}

impl Interface {
    /// Its extcap name: characters an interface name should not hold become `_`.
    pub fn name(&self) -> String {
        match self {
            Interface::Ssh => SSH_INTERFACE.to_string(),
            Interface::Kube { context } => format!("{KUBE_PREFIX}{}", sanitize(context)),
        }
    }

    fn display(&self) -> String {
        match self {
            Interface::Ssh => "kcap SSH nodes".to_string(),
            Interface::Kube { context } => format!("kcap Kubernetes {context}"),
        }
    }

    /// The interface `name` means, given the kubeconfig's contexts.
    pub fn find(name: &str, contexts: &[String]) -> Option<Interface> {
        if name == SSH_INTERFACE {
            return Some(Interface::Ssh);
        }
        let wanted = name.strip_prefix(KUBE_PREFIX)?;
        contexts
            .iter()
            .find(|c| sanitize(c) == wanted)
            .map(|c| Interface::Kube { context: c.clone() })
    }

    /// Its options in dialog order (their index is their extcap `number`).
    pub fn options(&self) -> impl Iterator<Item = &'static Opt> {
        let own = match self {
            Interface::Ssh => SSH_OPTIONS,
            Interface::Kube { .. } => KUBE_OPTIONS,
        };
        own.iter().chain(CAPTURE_OPTIONS)
    }
}

fn sanitize(context: &str) -> String {
    context
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

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
    fn name(self) -> &'static str {
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
const CAPTURE_OPTIONS: &[Opt] = &[
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

const SSH_OPTIONS: &[Opt] = &[
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

const KUBE_OPTIONS: &[Opt] = &[
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

/// `--extcap-interfaces`: the version line and every interface.
pub fn interfaces(list: &[Interface]) -> String {
    // No {help=URL}: kcap has no web page to point the dialog's Help button at.
    let mut out = format!("extcap {{version={}}}\n", env!("CARGO_PKG_VERSION"));
    for interface in list {
        let _ = writeln!(
            out,
            "interface {{value={}}}{{display={}}}",
            interface.name(),
            interface.display()
        );
    }
    out
}

/// `--extcap-dlts`: pcapng carries each interface's own link type, so one line does.
pub fn dlts() -> String {
    "dlt {number=1}{name=EN10MB}{display=kcap (pcapng: each pod or node has its own link type)}\n"
        .to_string()
}

/// `--extcap-config`: every option of the interface, with fixed choices.
pub fn config(interface: &Interface) -> String {
    let mut out = String::new();
    for (number, o) in interface.options().enumerate() {
        let _ = write!(
            out,
            "arg {{number={number}}}{{call=--{}}}{{display={}}}{{tooltip={}}}{{type={}}}",
            o.call,
            o.display,
            o.tooltip,
            o.kind.name()
        );
        if let Some(default) = o.default {
            let _ = write!(out, "{{default={default}}}");
        }
        if o.required {
            out.push_str("{required=true}");
        }
        if o.reload {
            out.push_str("{reload=true}");
        }
        let _ = writeln!(out, "{{group={}}}", o.group);
        for (i, (value, display)) in o.values.iter().enumerate() {
            let _ = writeln!(
                out,
                "value {{arg={number}}}{{value={value}}}{{display={display}}}{{default={}}}",
                i == 0
            );
        }
    }
    out
}

/// The values of a reloaded option (`--extcap-reload-option`), as `value` lines.
pub fn values(interface: &Interface, call: &str, values: &[String]) -> Option<String> {
    let number = interface.options().position(|o| o.call == call)?;
    let mut out = String::new();
    for v in values {
        let _ = writeln!(out, "value {{arg={number}}}{{value={v}}}{{display={v}}}");
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_and_back() {
        let contexts = vec!["kind-prod".to_string(), "arn:aws:eks/x".to_string()];
        let kube = Interface::Kube {
            context: contexts[1].clone(),
        };
        assert_eq!(kube.name(), "kcap-k8s-arn_aws_eks_x");
        assert_eq!(
            Interface::find("kcap-k8s-arn_aws_eks_x", &contexts),
            Some(kube)
        );
        assert_eq!(Interface::find("kcap-ssh", &[]), Some(Interface::Ssh));
        assert_eq!(Interface::find("kcap-k8s-other", &contexts), None);
        let list = interfaces(&[Interface::Ssh]);
        assert!(list.starts_with("extcap {version="));
        assert!(list.ends_with("interface {value=kcap-ssh}{display=kcap SSH nodes}\n"));
    }

    #[test]
    fn config_lines() {
        let ssh = config(&Interface::Ssh);
        assert!(ssh.starts_with(
            "arg {number=0}{call=--host}{display=Hosts}{tooltip=Nodes to capture on: "
        ));
        assert!(ssh.contains("{type=string}{required=true}{group=Node}\n"));
        assert!(ssh.contains("{call=--sudo}{display=sudo}"));
        let kube = config(&Interface::Kube {
            context: "c".into(),
        });
        assert!(kube.contains("{call=--target}"));
        assert!(kube.contains("{type=selector}{reload=true}"));
        let via = KUBE_OPTIONS.iter().position(|o| o.call == "via").unwrap();
        assert!(kube.contains(&format!(
            "value {{arg={via}}}{{value=auto}}{{display=auto: exec, else ephemeral, else node}}{{default=true}}\n"
        )));
        assert_eq!(
            values(
                &Interface::Kube {
                    context: "c".into()
                },
                "namespace",
                &["prod".into()]
            ),
            Some("value {arg=0}{value=prod}{display=prod}\n".into())
        );
        assert_eq!(flag_names(), ["accept-new-host-key", "sudo", "follow"]);
    }
}
