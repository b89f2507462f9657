//! What Wireshark shows for kcap: the interfaces (one per kubeconfig context, one
//! for SSH nodes), their link type, and the options of each interface's dialog, in
//! the extcap protocol's text form. Nothing here contacts a cluster: Wireshark
//! and tshark ask for every interface's options at every start, so the lists that
//! come from the API (namespaces, targets) are filled only by the dialog's reload
//! button ([`super::reload`]).

use std::fmt::Write;

use super::options::{CAPTURE_OPTIONS, KUBE_OPTIONS, Opt, SSH_OPTIONS};

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
    }
}
