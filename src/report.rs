//! The end of a run: one summary line per node on stderr, every error with its likely
//! cause and next step, and the exit code.

use kcap_capture::outcome::Failure;

use crate::config::{Config, Verbosity};
use crate::exit::Exit;
use crate::output::{self, OutputError};
use crate::run::{Outcome, RunError};
use crate::source::{SourceError, SourceReport, StreamError};
use crate::stop::StopReason;

/// Prints the summary and errors; returns the exit code. The first failing node
/// decides the code, so `kcap ... || handle` sees any failure.
pub fn finish(config: &Config, outcome: Result<Outcome, RunError>) -> Exit {
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(RunError::Output(e)) => return print_output_error(&e),
        Err(RunError::Signals(e)) => {
            eprintln!("kcap: cannot install signal handlers: {e}");
            return Exit::Other;
        }
        Err(RunError::Kube(e)) => return print_kube_error(None, &e),
    };
    let mut exit = Exit::Success;
    for (label, error) in &outcome.failed_targets {
        exit = first(exit, print_kube_error(Some(label), error));
    }
    for (node, written) in outcome.sources.iter().zip(&outcome.writer.per_source) {
        if config.verbosity > Verbosity::Quiet {
            eprintln!(
                "kcap: {}",
                summary_line(node, written.packets, written.bytes)
            );
        }
        if let Some(refused) = &written.refused {
            eprintln!("kcap: {}: {refused}", node.label);
            exit = first(exit, Exit::Usage);
        }
        if let Some(error) = &node.error {
            exit = first(exit, print_node_error(config, node, error));
        }
    }
    let dropped: u64 = outcome
        .sources
        .iter()
        .filter_map(|s| s.statistics.as_ref()?.dropped_by_kernel)
        .sum();
    if dropped > 0 && config.verbosity > Verbosity::Quiet {
        eprintln!(
            "  hint: the capture buffer overflowed ({dropped} packets dropped by kernel): \
             raise -B/--buffer-size (now {} KiB) or lower -s/--snaplen; \
             a narrower --filter also helps",
            config.command.buffer_kib
        );
    }
    if let Some(error) = &outcome.writer.error {
        exit = first(exit, print_output_error(error));
    } else if config.verbosity > Verbosity::Quiet
        && let Some(path) = output::file_path(&config.output)
    {
        let total: u64 = outcome.writer.per_source.iter().map(|w| w.packets).sum();
        let why = match outcome.stop {
            Some(StopReason::Duration) => " (duration reached)",
            Some(StopReason::Count) => " (count reached)",
            Some(StopReason::Interrupted) => " (interrupted)",
            Some(StopReason::Terminated) => " (terminated)",
            Some(StopReason::OutputFailed) | None => "",
        };
        eprintln!(
            "kcap: wrote {total} packets to {} in {:.1}s{why}",
            path.display(),
            outcome.elapsed.as_secs_f64()
        );
    }
    exit
}

fn first(current: Exit, new: Exit) -> Exit {
    if current == Exit::Success {
        new
    } else {
        current
    }
}

fn summary_line(node: &SourceReport, packets: u64, bytes: u64) -> String {
    let mut line = format!(
        "{}: {packets} packets, {} in {:.1}s",
        node.label,
        human_bytes(bytes),
        node.elapsed.as_secs_f64()
    );
    if let Some(method) = node.method {
        line.push_str(&format!(" via {method}"));
    }
    if let Some(tool) = &node.tool {
        line.push_str(&format!(" ({tool}"));
        if let Some(stats) = &node.statistics {
            if let Some(d) = stats.dropped_by_kernel {
                line.push_str(&format!(", {d} dropped by kernel"));
            }
            if let Some(d) = stats.dropped_by_interface {
                line.push_str(&format!(", {d} dropped by interface"));
            }
        }
        line.push(')');
    }
    if node.error.is_some() {
        line.push_str(" - failed");
    }
    line
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn print_output_error(error: &OutputError) -> Exit {
    eprintln!("kcap: error: {}", chain(error));
    match error {
        OutputError::Io { source, .. } if source.raw_os_error() == Some(libc::ENOSPC) => {
            eprintln!("  hint: the disk is full; free space or write elsewhere with -o");
        }
        OutputError::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe => {
            eprintln!("  hint: the program reading kcap's output (e.g. Wireshark) went away");
        }
        _ => {}
    }
    match error {
        OutputError::LinkTypeMismatch { .. } => Exit::Usage,
        OutputError::Io { .. } => Exit::OutputFailed,
    }
}

/// The error and its causes on one line, as `a: b: c`.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A Kubernetes error with its hint; `label` names the target when there is one.
fn print_kube_error(label: Option<&str>, error: &kcap_kube::Error) -> Exit {
    match label {
        Some(l) => eprintln!("kcap: {l}: error: {}", chain(error)),
        None => eprintln!("kcap: error: {}", chain(error)),
    }
    if let Some(hint) = error.hint() {
        eprintln!("  hint: {hint}");
    }
    kube_exit(error)
}

fn kube_exit(error: &kcap_kube::Error) -> Exit {
    use kcap_kube::Error as K;
    match error {
        K::Config(_) | K::Unreachable(_) => Exit::KubeUnreachable,
        K::BadTarget(_) | K::FilterToken { .. } => Exit::Usage,
        K::NamespaceNotFound { .. }
        | K::NotFound { .. }
        | K::NodeNotFound { .. }
        | K::ContainerNotFound { .. }
        | K::NoPods { .. }
        | K::PodNotRunning { .. } => Exit::KubeNotFound,
        K::Forbidden { .. } => Exit::Forbidden,
        K::ToolMissing { .. } => Exit::ToolMissing,
        K::PermissionDenied { .. } => Exit::PermissionDenied,
        K::EphemeralUnsupported { .. }
        | K::EphemeralRejected { .. }
        | K::HelperNotStarted { .. }
        | K::HelperRejected { .. }
        | K::AllMethodsFailed { .. } => Exit::NoMethod,
        K::Api { .. } | K::Runtime { .. } => Exit::Other,
    }
}

fn print_node_error(config: &Config, node: &SourceReport, error: &SourceError) -> Exit {
    eprintln!("kcap: {}: error: {}", node.label, chain(error));
    let (exit, hint) = explain(config, error);
    if let Some(hint) = hint {
        for line in hint.lines() {
            eprintln!("  hint: {line}");
        }
    }
    exit
}

fn explain(config: &Config, error: &SourceError) -> (Exit, Option<String>) {
    let error = match error {
        SourceError::Ssh(ssh) => return explain_ssh(ssh),
        SourceError::Kube(k) => return (kube_exit(k), k.hint()),
        SourceError::Stream(s) => s,
    };
    match error {
        StreamError::ConnectionLost(_) => (
            Exit::ConnectionLost,
            Some("the file holds every packet received before the link dropped".into()),
        ),
        StreamError::NotACapture(_) => (
            Exit::NotACapture,
            Some(
                "something on the node printed text on stdout before the capture (a login banner \
                 in a shell startup file?); make non-interactive logins quiet"
                    .into(),
            ),
        ),
        StreamError::Exited(_) => (Exit::Other, None),
        StreamError::Capture(failure) => match failure {
            Failure::ToolMissing { .. } => (
                Exit::ToolMissing,
                Some(
                    "install tcpdump on the node (apt-get install tcpdump / dnf install tcpdump), \
                     or pick another tool with --remote-tool tshark|dumpcap"
                        .into(),
                ),
            ),
            Failure::PermissionDenied { .. } => (
                Exit::PermissionDenied,
                Some(if config.command.sudo {
                    "sudo was used but the capture was still refused; check the sudoers rule".into()
                } else {
                    "capture as root (--ssh-user root), add --sudo, or give tcpdump the \
                     capabilities (setcap cap_net_raw,cap_net_admin=eip $(command -v tcpdump))"
                        .into()
                }),
            ),
            Failure::SudoNeedsPassword { .. } => (
                Exit::PermissionDenied,
                Some("--sudo runs `sudo -n`, which never prompts: allow the user NOPASSWD in sudoers, or log in as root".into()),
            ),
            Failure::BadFilter { .. } => (
                Exit::CaptureRejected,
                Some(format!(
                    "the capture tool rejected the filter {:?}; check its pcap-filter(7) syntax",
                    config.command.filter.as_deref().unwrap_or("")
                )),
            ),
            Failure::BadInterface { .. } => (
                Exit::CaptureRejected,
                Some(format!(
                    "no interface {:?} on this node; list them with `ip -br link` there, or use --iface any",
                    config.command.interface
                )),
            ),
            Failure::Other { .. } => (Exit::Other, None),
        },
    }
}

fn explain_ssh(error: &kcap_ssh::Error) -> (Exit, Option<String>) {
    use kcap_ssh::Error as Ssh;
    match error {
        Ssh::ExecRefused => (Exit::Other, Some("the node's sshd refused to run commands (ForceCommand or a restricted account?)".into())),
        Ssh::Connect { .. } | Ssh::Timeout { .. } => (
            Exit::Connect,
            Some("check the address and port, that sshd runs there, and the route (--jump-host?)".into()),
        ),
        Ssh::ProxyCommand { .. } => (
            Exit::Connect,
            Some("run the ProxyCommand by hand to see it work (or `ssh -v HOST`); --proxy-command none connects directly".into()),
        ),
        Ssh::Unsupported(_) => (Exit::Usage, None),
        Ssh::Jump { source, .. } => explain_ssh(source),
        Ssh::Auth { .. } => (
            Exit::Auth,
            Some(
                "give a key with --ssh-key, load it into ssh-agent, or set KCAP_SSH_PASSWORD; \
                 check --ssh-user"
                    .into(),
            ),
        ),
        Ssh::HostKeyUnknown { .. } => (
            Exit::HostKeyUnknown,
            Some(
                "verify the fingerprint with the node's owner (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the node);\n\
                 if it is right, run again with --accept-new-host-key to record it in known_hosts"
                    .into(),
            ),
        ),
        Ssh::HostKeyChanged { file, line, .. } => (
            Exit::HostKeyChanged,
            Some(format!(
                "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY (a man-in-the-middle attack).\n\
                 If the node was reinstalled, remove the old key: ssh-keygen -R HOST -f {} (line {line})",
                file.display()
            )),
        ),
        Ssh::HostCertificate { .. } => (
            Exit::HostKeyChanged,
            Some("ask the node's owner for a valid host certificate (ssh-keygen -s CA -h -n HOST); \
                  check the clock; or remove the @cert-authority line to check the host key itself".into()),
        ),
        Ssh::HostKeyRevoked { .. } => (Exit::HostKeyChanged, Some("the key is marked @revoked in known_hosts".into())),
        Ssh::KeyFile { .. } => (Exit::Auth, Some("check the key file path and its passphrase".into())),
        Ssh::Config(_) => (Exit::Usage, Some("fix the ssh_config file named above".into())),
        Ssh::Disconnected { .. } => (
            Exit::ConnectionLost,
            Some("the file holds every packet received before the link dropped".into()),
        ),
        Ssh::Protocol(_) => (Exit::Other, None),
    }
}
