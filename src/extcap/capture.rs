//! An extcap capture is a normal kcap capture: the interface's options become
//! kcap's own flags (the same validation, the same pipeline), and the stream goes
//! into Wireshark's FIFO instead of a file. Values are passed as separate argv
//! words, never through a shell.

use super::dialog::Interface;

/// kcap's command line (program name first) for a capture on `interface` with the
/// dialog's `options` and Wireshark's capture filter.
pub fn kcap_args(
    interface: &Interface,
    options: &[(String, String)],
    capture_filter: Option<&str>,
) -> Result<Vec<String>, String> {
    // -q: Wireshark shows whatever the extcap writes on stderr as an error.
    let mut args: Vec<String> = vec!["kcap".into(), "-q".into(), "--wireshark".into()];
    let mut targets = 0;
    for (name, value) in options {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        match (interface, name.as_str()) {
            (_, "iface") => push(&mut args, "--iface", value),
            (_, "port") => list(value).for_each(|p| push(&mut args, "--port", p)),
            (_, "protocol") => push(&mut args, "--protocol", value),
            (_, "duration") => push(&mut args, "--duration", value),
            (Interface::Ssh, "host") => list(value).for_each(|h| {
                targets += 1;
                push(&mut args, "--ssh-host", h)
            }),
            (Interface::Ssh, "user") => push(&mut args, "--ssh-user", value),
            (Interface::Ssh, "jump-host") => push(&mut args, "--jump-host", value),
            (Interface::Ssh, "ssh-key") => push(&mut args, "--ssh-key", value),
            (Interface::Ssh, "ssh-config") => push(&mut args, "--ssh-config", value),
            (Interface::Ssh, "known-hosts") => push(&mut args, "--known-hosts", value),
            (Interface::Ssh, "accept-new-host-key") => args.push("--accept-new-host-key".into()),
            (Interface::Ssh, "sudo") => args.push("--sudo".into()),
            (Interface::Kube { .. }, "namespace") => push(&mut args, "--namespace", value),
            (Interface::Kube { .. }, "target") => list(value).for_each(|t| {
                targets += 1;
                // A bare name in the dialog is a pod, as kubectl's.
                if t.contains('/') {
                    args.push(t.to_string());
                } else {
                    push(&mut args, "--pod", t);
                }
            }),
            (Interface::Kube { .. }, "selector") => {
                targets += 1;
                push(&mut args, "--selector", value)
            }
            (Interface::Kube { .. }, "container") => push(&mut args, "--container", value),
            (Interface::Kube { .. }, "via") => push(&mut args, "--via", value),
            (Interface::Kube { .. }, "image") => push(&mut args, "--image", value),
            (Interface::Kube { .. }, "follow") => args.push("--follow".into()),
            (_, other) => {
                return Err(format!(
                    "the {} interface has no option {other:?}",
                    interface.name()
                ));
            }
        }
    }
    if targets == 0 {
        return Err(match interface {
            Interface::Ssh => "no node to capture: fill in Hosts in the interface's options \
                               (the gear next to kcap-ssh; tshark: -o extcap.kcap_ssh.host:NODE)"
                .into(),
            Interface::Kube { .. } => "no target: choose a Target or a Label selector in the \
                                       interface's options (the gear next to the interface)"
                .into(),
        });
    }
    if let Interface::Kube { context } = interface {
        args.push("--context".into());
        args.push(context.clone());
    }
    if let Some(filter) = capture_filter.map(str::trim).filter(|f| !f.is_empty()) {
        args.push("--filter".into());
        args.push(filter.to_string());
    }
    Ok(args)
}

fn push(args: &mut Vec<String>, flag: &str, value: &str) {
    args.push(flag.to_string());
    args.push(value.to_string());
}

/// A list typed in one field: comma- or space-separated.
fn list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ssh_options_become_kcap_flags() {
        let args = kcap_args(
            &Interface::Ssh,
            &options(&[
                ("host", "node-a, root@node-b:2222"),
                ("ssh-config", "/etc/kcap/ssh_config"),
                ("port", "80,443"),
                ("user", ""),
                ("sudo", "true"),
            ]),
            Some("not arp"),
        )
        .unwrap();
        assert_eq!(
            args,
            [
                "kcap",
                "-q",
                "--wireshark",
                "--ssh-host",
                "node-a",
                "--ssh-host",
                "root@node-b:2222",
                "--ssh-config",
                "/etc/kcap/ssh_config",
                "--port",
                "80",
                "--port",
                "443",
                "--sudo",
                "--filter",
                "not arp",
            ]
        );
    }

    #[test]
    fn kube_options_become_kcap_flags() {
        let kube = Interface::Kube {
            context: "kind-prod".into(),
        };
        let args = kcap_args(
            &kube,
            &options(&[
                ("namespace", "shop"),
                ("target", "deploy/orders web-0"),
                ("via", "node"),
            ]),
            Some(""),
        )
        .unwrap();
        assert_eq!(
            args[3..],
            [
                "--namespace",
                "shop",
                "deploy/orders",
                "--pod",
                "web-0",
                "--via",
                "node",
                "--context",
                "kind-prod",
            ]
        );
        let none = kcap_args(&kube, &options(&[("namespace", "shop")]), None).unwrap_err();
        assert!(none.starts_with("no target"), "{none}");
        let bad = kcap_args(&Interface::Ssh, &options(&[("target", "pod/x")]), None).unwrap_err();
        assert_eq!(bad, "the kcap-ssh interface has no option \"target\"");
    }
}
