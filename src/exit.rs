//! Exit codes, and the one place that turns an error into its exit code and hint.
//! The table is repeated in `kcap --help` and README.md; keep the three in step.

use std::error::Error;

use kcap_capture::outcome::Failure;
use kcap_kube::Method;

use crate::config::UsageError;
use crate::sink::SinkError;
use crate::source::{SourceError, StreamError};

/// What kcap's process exit status means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    Success = 0,
    Other = 1,
    Usage = 2,
    Connect = 3,
    Auth = 4,
    HostKeyUnknown = 5,
    HostKeyChanged = 6,
    ToolMissing = 7,
    PermissionDenied = 8,
    CaptureRejected = 9,
    OutputFailed = 10,
    NotACapture = 11,
    ConnectionLost = 12,
    KubeNotFound = 13,
    Forbidden = 14,
    KubeUnreachable = 15,
    NoMethod = 16,
    /// `--callback` could not deliver every record.
    RecordsLost = 17,
    /// `--process`: the node cannot attribute packets to processes.
    ProcessUnusable = 18,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The first failure decides the code, so `kcap ... || handle` sees any failure.
    pub fn or(self, later: Exit) -> Exit {
        if self == Exit::Success { later } else { self }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}

/// An error's exit code and, when kcap knows one, what would fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    pub exit: Exit,
    pub hint: Option<String>,
}

fn explained(exit: Exit, hint: Option<String>) -> Explained {
    Explained { exit, hint }
}

/// The one mapping from kcap's errors to exit codes and hints.
pub fn explain(error: &(dyn Error + 'static)) -> Explained {
    if error.is::<UsageError>() {
        return explained(Exit::Usage, None);
    }
    if let Some(e) = error.downcast_ref::<SinkError>() {
        return sink(e);
    }
    if let Some(e) = error.downcast_ref::<SourceError>() {
        return source(e);
    }
    if let Some(e) = error.downcast_ref::<kcap_kube::Error>() {
        return explained(kube_exit(e), e.hint());
    }
    if let Some(e) = error.downcast_ref::<kcap_ssh::Error>() {
        return ssh(e);
    }
    if let Some(e) = error.downcast_ref::<StreamError>() {
        return stream(e);
    }
    if let Some(e) = error.downcast_ref::<crate::read::ReadError>() {
        return read(e);
    }
    if let Some(e) = error.downcast_ref::<crate::wireshark::WiresharkError>() {
        return wireshark(e);
    }
    if let Some(e) = error.downcast_ref::<kcap_serve::BindError>() {
        return serve_bind(e);
    }
    if let Some(e) = error.downcast_ref::<kcap_serve::ConnectError>() {
        return connect(e);
    }
    if error.is::<kcap_capture::Error>() {
        return explained(Exit::Usage, None);
    }
    explained(Exit::Other, None)
}

fn serve_bind(error: &kcap_serve::BindError) -> Explained {
    use kcap_serve::BindError as B;
    let hint = match error {
        B::Listen { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse => {
            "another program (or another kcap) listens there: pick another port, --serve ADDR:PORT"
        }
        B::Listen { .. } => {
            "--serve takes an address of this machine (127.0.0.1:PORT, or :PORT for every address)"
        }
        B::Tls(_) => {
            "--serve-cert takes a PEM certificate chain and --serve-key its PEM private key"
        }
        B::Thread(_) => return explained(Exit::Other, None),
    };
    explained(Exit::OutputFailed, Some(hint.into()))
}

fn connect(error: &kcap_serve::ConnectError) -> Explained {
    use kcap_serve::ConnectError as C;
    match error {
        C::Url { .. } => explained(Exit::Usage, None),
        C::Connect { .. } | C::Timeout { .. } => explained(
            Exit::Connect,
            Some("is the serving kcap running (kcap ... --serve ADDR), and is ADDR reachable from here?".into()),
        ),
        C::Tls { .. } | C::TlsConfig(_) => explained(
            Exit::Connect,
            Some("a server with its own certificate: trust its CA with --connect-ca FILE".into()),
        ),
        C::Unauthorized { .. } => explained(
            Exit::Auth,
            Some("give the token the serving kcap printed: --serve-token TOKEN, or ?token=TOKEN in the URL".into()),
        ),
        C::Status { status, .. } if status.as_u16() == 503 => explained(
            Exit::NotACapture,
            Some("that capture has ended".into()),
        ),
        C::Status { .. } => explained(
            Exit::NotACapture,
            Some("kcap serves /capture.pcapng (HTTP) and /ws (WebSocket): check the URL's path".into()),
        ),
        C::Http { .. } | C::WebSocket { .. } => explained(Exit::Connect, None),
        C::Thread(_) => explained(Exit::Other, None),
    }
}

/// The error and its causes on one line, as `a: b: c` (a cause already quoted by
/// its parent's message is not repeated). A Kubernetes error ends the line: its
/// message says the cause already, and kube-rs's own text would add a debug dump
/// of the server's status.
pub fn chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error;
    while !says_its_cause(current)
        && let Some(cause) = current.source()
    {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        current = cause;
    }
    text
}

fn says_its_cause(error: &(dyn Error + 'static)) -> bool {
    error.is::<kcap_kube::Error>()
        || matches!(
            error.downcast_ref::<SourceError>(),
            Some(SourceError::Kube(_))
        )
}

fn read(error: &crate::read::ReadError) -> Explained {
    use crate::read::ReadError;
    match error {
        ReadError::Open { .. } => explained(Exit::Other, Some("check the path given to -r".into())),
        ReadError::NotACapture { .. } => explained(
            Exit::NotACapture,
            Some(
                "-r reads pcap and pcapng files (as tcpdump -w, Wireshark and kcap write them)"
                    .into(),
            ),
        ),
        ReadError::Lost { .. } => explained(
            Exit::ConnectionLost,
            Some(
                "the serving kcap stopped, cut this viewer off for falling behind (see its \
                 log), or the network broke; what arrived before is complete"
                    .into(),
            ),
        ),
        ReadError::Truncated { .. } => explained(
            Exit::Other,
            Some(
                "the writer stopped in the middle of a packet (killed, disk full?); \
                 every complete packet before that was read"
                    .into(),
            ),
        ),
    }
}

fn wireshark(error: &crate::wireshark::WiresharkError) -> Explained {
    use crate::wireshark::WiresharkError as W;
    match error {
        W::NotFound { .. } => explained(Exit::Usage, error.hint()),
        W::Start { .. } => explained(Exit::Other, None),
        W::Fifo { .. } => explained(Exit::OutputFailed, None),
        W::Sink(e) => sink(e),
    }
}

fn sink(error: &SinkError) -> Explained {
    match error {
        SinkError::LinkTypeMismatch { .. } => explained(Exit::Usage, None),
        SinkError::Write { source, .. } => explained(
            Exit::OutputFailed,
            if source.raw_os_error() == Some(libc::ENOSPC) {
                Some("the disk is full; free space or write elsewhere with -o".into())
            } else if source.kind() == std::io::ErrorKind::BrokenPipe {
                Some("the program reading kcap's output (e.g. Wireshark) went away".into())
            } else {
                None
            },
        ),
    }
}

fn source(error: &SourceError) -> Explained {
    match error {
        SourceError::Ssh(e) => ssh(e),
        SourceError::Kube(e) => explained(kube_exit(e), e.hint()),
        SourceError::Stream(e) => stream(e),
        SourceError::Command(_) => explained(Exit::Usage, None),
        SourceError::InContainer {
            method,
            image,
            error,
            ..
        } => {
            let permission = matches!(
                error,
                StreamError::Capture {
                    failure: Failure::PermissionDenied { .. },
                    ..
                }
            );
            let exit = if permission {
                Exit::PermissionDenied
            } else {
                Exit::ToolMissing
            };
            let hint = match (method, permission) {
                (Method::Exec, false) => {
                    "capture from outside the container: --via ephemeral (a debug container with \
                     tcpdump) or --via node (a helper pod on the node)"
                        .to_string()
                }
                (Method::Exec, true) => {
                    "the container runs as non-root: use --via ephemeral (adds NET_RAW/NET_ADMIN) \
                     or --via node"
                        .to_string()
                }
                (_, _) => format!(
                    "--image {image} must have sh and tcpdump (and nsenter for --via node); \
                     pick another with --image"
                ),
            };
            explained(exit, Some(hint))
        }
    }
}

fn stream(error: &StreamError) -> Explained {
    const LOST: &str = "the file holds every packet received before the link dropped";
    match error {
        StreamError::ConnectionLost(_) => explained(Exit::ConnectionLost, Some(LOST.into())),
        StreamError::NotACapture(_) => explained(
            Exit::NotACapture,
            Some(
                "something on the node printed text on stdout before the capture (a login banner \
                 in a shell startup file?); make non-interactive logins quiet"
                    .into(),
            ),
        ),
        StreamError::Exited(_) => explained(Exit::Other, None),
        StreamError::Capture { failure, command } => match failure {
            Failure::ToolMissing { .. } => explained(
                Exit::ToolMissing,
                Some(
                    "install tcpdump on the node (apt-get install tcpdump / dnf install tcpdump), \
                     or pick another tool with --remote-tool tshark|dumpcap"
                        .into(),
                ),
            ),
            Failure::PermissionDenied { .. } => explained(
                Exit::PermissionDenied,
                Some(if command.sudo {
                    "sudo was used but the capture was still refused; check the sudoers rule".into()
                } else {
                    "capture as root (--ssh-user root), add --sudo, or give tcpdump the \
                     capabilities (setcap cap_net_raw,cap_net_admin=eip $(command -v tcpdump))"
                        .into()
                }),
            ),
            Failure::SudoNeedsPassword { .. } => explained(
                Exit::PermissionDenied,
                Some(
                    "--sudo runs `sudo -n`, which never prompts: allow the user NOPASSWD in \
                     sudoers, or log in as root"
                        .into(),
                ),
            ),
            Failure::BadFilter { .. } => explained(
                Exit::CaptureRejected,
                Some(format!(
                    "the capture tool rejected the filter {:?}; check its pcap-filter(7) syntax",
                    command.filter.as_deref().unwrap_or("")
                )),
            ),
            Failure::BadInterface { .. } => explained(
                Exit::CaptureRejected,
                Some(format!(
                    "no interface {:?} there; list them with kcap -D (same targets), or use --iface any",
                    command.interface
                )),
            ),
            Failure::NoPodNetwork { .. } => explained(
                Exit::NoMethod,
                Some(
                    "is the pod on that node and running? Without crictl on the node, kcap needs \
                     nsenter and ip there (and root) to find the namespace holding the pod's IP; \
                     --capture-point veth needs only tcpdump (and ip, bridge) on the node; or try \
                     --via exec or --via ephemeral"
                        .into(),
                ),
            ),
            Failure::ProcessUnusable { .. } => explained(
                Exit::ProcessUnusable,
                Some(
                    "kcap's agent needs root, or CAP_BPF and CAP_PERFMON, and a kernel with BTF; \
                     use --process=auto to capture without processes"
                        .into(),
                ),
            ),
            Failure::Other { .. } => explained(Exit::Other, None),
        },
    }
}

fn kube_exit(error: &kcap_kube::Error) -> Exit {
    use kcap_kube::Error as K;
    match error {
        K::Config { .. } | K::Unreachable(_) => Exit::KubeUnreachable,
        K::BadTarget(_) | K::Quote { .. } | K::FilterToken { .. } => Exit::Usage,
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

fn ssh(error: &kcap_ssh::Error) -> Explained {
    use kcap_ssh::Error as Ssh;
    let (exit, hint): (Exit, Option<String>) = match error {
        Ssh::ExecRefused => (
            Exit::Other,
            Some("the node's sshd refused to run commands (ForceCommand or a restricted account?)".into()),
        ),
        Ssh::Connect { .. } | Ssh::Timeout { .. } => (
            Exit::Connect,
            Some("check the address and port, that sshd runs there, and the route (--jump-host?)".into()),
        ),
        Ssh::ProxyCommand { .. } => (
            Exit::Connect,
            Some(
                "run the ProxyCommand by hand to see it work (or `ssh -v HOST`); \
                 --proxy-command none connects directly"
                    .into(),
            ),
        ),
        Ssh::Unsupported(_) => (Exit::Usage, None),
        Ssh::HostCertificate { .. } => (
            Exit::HostKeyChanged,
            Some(
                "ask the node's owner for a valid host certificate (ssh-keygen -s CA -h -n HOST); \
                 check the clock; or remove the @cert-authority line to check the host key itself"
                    .into(),
            ),
        ),
        Ssh::Jump { source, .. } => return ssh(source),
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
        Ssh::HostKeyRevoked { .. } => (
            Exit::HostKeyChanged,
            Some(
                "the key is marked @revoked in known_hosts or listed in ssh_config's \
                 RevokedHostKeys (the file and line above): the node's owner must give it a new key"
                    .into(),
            ),
        ),
        Ssh::KeyFile { .. } => (
            Exit::Auth,
            Some("check the key file path and its passphrase".into()),
        ),
        Ssh::Config(_) => (
            Exit::Usage,
            Some("fix the ssh_config file named above".into()),
        ),
        Ssh::Disconnected { .. } => (
            Exit::ConnectionLost,
            Some("the file holds every packet received before the link dropped".into()),
        ),
        Ssh::Protocol(_) => (Exit::Other, None),
    };
    explained(exit, hint)
}

#[cfg(test)]
#[path = "exit_tests.rs"]
mod tests;
