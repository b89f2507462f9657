//! What Wireshark asks of an extcap, read from its argv: list the interfaces, an
//! interface's link types or options, reload one option's values, validate a
//! capture filter, or capture into a FIFO. Everything that is not one of
//! Wireshark's own `--extcap-*` flags is an interface option (`--NAME VALUE`, or
//! `--NAME` alone for a flag).

use std::path::PathBuf;

/// The steps of the extcap protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `--extcap-interfaces`.
    Interfaces,
    /// `--extcap-dlts`.
    Dlts,
    /// `--extcap-config`, or with `--extcap-reload-option NAME` only that option's values.
    Config { reload: Option<String> },
    /// `--capture --fifo PATH`.
    Capture { fifo: PathBuf },
    /// Only `--extcap-capture-filter`: Wireshark checks the filter as it is typed.
    ValidateFilter,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub step: Step,
    /// `--extcap-interface`.
    pub interface: Option<String>,
    /// `--extcap-capture-filter`.
    pub capture_filter: Option<String>,
    /// The interface's options, by name without the dashes, in argv order.
    pub options: Vec<(String, String)>,
}

/// Whether argv is Wireshark calling kcap as an extcap.
pub fn is_extcap(args: &[String]) -> bool {
    args.iter()
        .skip(1)
        .any(|a| a.starts_with("--extcap-") || a == "--capture")
}

/// Reads the request; `flags` are the option names that take no value.
pub fn parse(args: &[String], flags: &[&str]) -> Result<Request, String> {
    let (mut interfaces, mut dlts, mut config, mut capture) = (false, false, false, false);
    let (mut interface, mut capture_filter, mut fifo, mut reload) = (None, None, None, None);
    let mut options = Vec::new();
    let mut rest = args.iter().skip(1).peekable();
    while let Some(arg) = rest.next() {
        let Some(flag) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument {arg:?}"));
        };
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (flag, None),
        };
        let mut value = || -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => rest
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("--{name} needs a value")),
            }
        };
        match name {
            "extcap-interfaces" => interfaces = true,
            "extcap-dlts" => dlts = true,
            "extcap-config" => config = true,
            "capture" => capture = true,
            "extcap-interface" => interface = Some(value()?),
            "extcap-capture-filter" => capture_filter = Some(value()?),
            "extcap-reload-option" => reload = Some(value()?.trim_start_matches('-').to_string()),
            "fifo" => fifo = Some(PathBuf::from(value()?)),
            // The version comes inline; the control pipes (toolbar) kcap does not use.
            "extcap-version" => {}
            "extcap-control-in" | "extcap-control-out" => {
                value()?;
            }
            other if other.starts_with("extcap-") => {}
            other if flags.contains(&other) => {
                // Wireshark passes a set flag alone; tshark's -o may add a value.
                let on = match inline.or_else(|| {
                    rest.next_if(|v| matches!(v.as_str(), "true" | "false"))
                        .cloned()
                }) {
                    Some(v) => v == "true",
                    None => true,
                };
                if on {
                    options.push((other.to_string(), "true".to_string()));
                }
            }
            other => {
                let v = value()?;
                options.push((other.to_string(), v));
            }
        }
    }
    let step = if interfaces {
        Step::Interfaces
    } else if dlts {
        Step::Dlts
    } else if config {
        Step::Config { reload }
    } else if capture {
        Step::Capture {
            fifo: fifo.ok_or("--capture needs --fifo PATH")?,
        }
    } else if capture_filter.is_some() {
        Step::ValidateFilter
    } else {
        return Err("no extcap step (--extcap-interfaces, --extcap-config, --capture)".into());
    };
    if step != Step::Interfaces && interface.is_none() {
        return Err("--extcap-interface is missing".into());
    }
    Ok(Request {
        step,
        interface,
        capture_filter,
        options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        std::iter::once("kcap")
            .chain(words.iter().copied())
            .map(String::from)
            .collect()
    }

    #[test]
    fn the_steps_wireshark_runs() {
        let r = parse(
            &argv(&["--extcap-interfaces", "--extcap-version=4.0.17"]),
            &[],
        )
        .unwrap();
        assert_eq!((r.step, r.interface), (Step::Interfaces, None));
        let r = parse(
            &argv(&["--extcap-interface", "kcap-ssh", "--extcap-dlts"]),
            &[],
        )
        .unwrap();
        assert_eq!(r.step, Step::Dlts);
        let r = parse(
            &argv(&[
                "--extcap-config",
                "--extcap-interface",
                "kcap-k8s-prod",
                "--extcap-reload-option",
                "--target",
                "--namespace",
                "shop",
            ]),
            &[],
        )
        .unwrap();
        assert_eq!(
            r.step,
            Step::Config {
                reload: Some("target".into())
            }
        );
        assert_eq!(r.options, [("namespace".into(), "shop".into())]);
        let r = parse(
            &argv(&[
                "--extcap-interface",
                "kcap-ssh",
                "--extcap-capture-filter",
                "tcp",
            ]),
            &[],
        )
        .unwrap();
        assert_eq!(r.step, Step::ValidateFilter);
    }

    #[test]
    fn a_capture_with_options_flags_and_control_pipes() {
        let r = parse(
            &argv(&[
                "--capture",
                "--extcap-interface",
                "kcap-ssh",
                "--fifo",
                "/tmp/wireshark_extcap_x",
                "--extcap-capture-filter",
                "port 22",
                "--extcap-control-in",
                "/tmp/in",
                "--extcap-control-out",
                "/tmp/out",
                "--host",
                "node-a",
                "--sudo",
                "--follow",
                "false",
                "--duration=5s",
            ]),
            &["sudo", "follow"],
        )
        .unwrap();
        assert_eq!(
            r.step,
            Step::Capture {
                fifo: "/tmp/wireshark_extcap_x".into()
            }
        );
        assert_eq!(r.capture_filter.as_deref(), Some("port 22"));
        assert_eq!(
            r.options,
            [
                ("host".into(), "node-a".into()),
                ("sudo".into(), "true".into()),
                ("duration".into(), "5s".into()),
            ]
        );
    }

    #[test]
    fn mistakes_are_named() {
        assert!(is_extcap(&argv(&["--capture"])));
        assert!(!is_extcap(&argv(&[
            "--ssh-host",
            "n",
            "--capture-point",
            "veth"
        ])));
        assert_eq!(
            parse(&argv(&["--capture", "--extcap-interface", "kcap-ssh"]), &[]).unwrap_err(),
            "--capture needs --fifo PATH"
        );
        assert_eq!(
            parse(&argv(&["--extcap-config"]), &[]).unwrap_err(),
            "--extcap-interface is missing"
        );
        assert_eq!(
            parse(
                &argv(&["--extcap-config", "--extcap-interface", "x", "--host"]),
                &[]
            )
            .unwrap_err(),
            "--host needs a value"
        );
    }
}
