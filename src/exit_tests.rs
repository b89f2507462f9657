//! The exit code and hint of every kind of error kcap reports.

use std::path::PathBuf;

use kcap_capture::command::{CaptureCommand, DEFAULT_BUFFER_KIB, FULL_SNAPLEN, Tool};

use super::*;

fn command(filter: &str, sudo: bool) -> Box<CaptureCommand> {
    Box::new(CaptureCommand {
        tool: Tool::Auto,
        interface: "eth9".into(),
        snaplen: FULL_SNAPLEN,
        buffer_kib: DEFAULT_BUFFER_KIB,
        count: None,
        direction: kcap_capture::command::Direction::InOut,
        filter: Some(filter.into()),
        sudo,
        agent: None,
        process: kcap_capture::command::ProcessMode::Off,
    })
}

fn capture(failure: Failure, sudo: bool) -> StreamError {
    StreamError::Capture {
        failure,
        command: command("(port 80) and (host 10.244.0.5 or host 10.244.1.3)", sudo),
    }
}

fn message() -> String {
    "tool says no".into()
}

fn exit_of(error: &(dyn Error + 'static)) -> Exit {
    explain(error).exit
}

fn hint_of(error: &(dyn Error + 'static)) -> String {
    explain(error).hint.unwrap_or_default()
}

#[test]
fn every_capture_failure_has_its_code_and_the_filter_it_got() {
    let cases = [
        (
            Failure::ToolMissing { message: message() },
            Exit::ToolMissing,
        ),
        (
            Failure::PermissionDenied { message: message() },
            Exit::PermissionDenied,
        ),
        (
            Failure::SudoNeedsPassword { message: message() },
            Exit::PermissionDenied,
        ),
        (
            Failure::BadFilter { message: message() },
            Exit::CaptureRejected,
        ),
        (
            Failure::BadInterface { message: message() },
            Exit::CaptureRejected,
        ),
        (Failure::NoPodNetwork { message: message() }, Exit::NoMethod),
        (
            Failure::ProcessUnusable { message: message() },
            Exit::ProcessUnusable,
        ),
        (Failure::Other { message: message() }, Exit::Other),
    ];
    for (failure, exit) in cases {
        let error = capture(failure.clone(), false);
        assert_eq!(exit_of(&error), exit, "{failure:?}");
        // Wrapped in a source error, the same.
        assert_eq!(exit_of(&SourceError::Stream(capture(failure, false))), exit);
    }
    assert_eq!(
        hint_of(&capture(Failure::BadFilter { message: message() }, false)),
        "the capture tool rejected the filter \"(port 80) and (host 10.244.0.5 or host 10.244.1.3)\"; \
         check its pcap-filter(7) syntax"
    );
    assert_eq!(Exit::ProcessUnusable.code(), 18);
    assert_eq!(
        hint_of(&capture(
            Failure::ProcessUnusable { message: message() },
            false
        )),
        "kcap's agent needs root, or CAP_BPF and CAP_PERFMON, and a kernel with BTF; \
         use --process=auto to capture without processes"
    );
    assert_eq!(
        hint_of(&capture(
            Failure::BadInterface { message: message() },
            false
        )),
        "no interface \"eth9\" there; list them with kcap -D (same targets), or use --iface any"
    );
    let hints = [
        (
            Failure::PermissionDenied { message: message() },
            false,
            "add --sudo",
        ),
        (
            Failure::PermissionDenied { message: message() },
            true,
            "check the sudoers rule",
        ),
        (
            Failure::SudoNeedsPassword { message: message() },
            true,
            "NOPASSWD",
        ),
        (
            Failure::ToolMissing { message: message() },
            false,
            "install tcpdump on the node",
        ),
    ];
    for (failure, sudo, says) in hints {
        let hint = hint_of(&capture(failure, sudo));
        assert!(hint.contains(says), "{hint}");
    }
    assert_eq!(
        explain(&capture(Failure::Other { message: message() }, false)).hint,
        None
    );
}

#[test]
fn stream_endings() {
    assert_eq!(
        exit_of(&StreamError::ConnectionLost("reset".into())),
        Exit::ConnectionLost
    );
    assert_eq!(
        exit_of(&StreamError::Exited("exit code 3".into())),
        Exit::Other
    );
    let not_pcap = StreamError::NotACapture(kcap_pcap::Error::NotPcap {
        start: "Welcome".into(),
    });
    assert_eq!(exit_of(&not_pcap), Exit::NotACapture);
    assert!(hint_of(&not_pcap).contains("login banner"));
}

#[test]
fn a_failure_inside_a_container_points_elsewhere() {
    let inside = |method, failure| SourceError::InContainer {
        pod: "prod/web-0".into(),
        container: "web".into(),
        method,
        image: "kcap.test/capture:1".into(),
        error: capture(failure, false),
    };
    let missing = inside(Method::Exec, Failure::ToolMissing { message: message() });
    assert_eq!(exit_of(&missing), Exit::ToolMissing);
    assert_eq!(
        missing.to_string(),
        "pod prod/web-0, container web: no capture tool (tcpdump) in the container"
    );
    assert!(hint_of(&missing).starts_with("capture from outside the container: --via ephemeral"));
    let nonroot = inside(
        Method::Exec,
        Failure::PermissionDenied { message: message() },
    );
    assert_eq!(exit_of(&nonroot), Exit::PermissionDenied);
    assert!(hint_of(&nonroot).contains("--via ephemeral (adds NET_RAW/NET_ADMIN)"));
    let image = inside(
        Method::Ephemeral,
        Failure::ToolMissing { message: message() },
    );
    assert_eq!(
        image.to_string(),
        "pod prod/web-0, --via ephemeral: no capture tool (tcpdump) in the image kcap.test/capture:1"
    );
    assert!(hint_of(&image).starts_with("--image kcap.test/capture:1 must have sh and tcpdump"));
    // The chain shows the tool's own words after kcap's.
    assert_eq!(
        chain(&missing),
        "pod prod/web-0, container web: no capture tool (tcpdump) in the container: tool says no"
    );
}

#[test]
fn output_errors() {
    let full = SinkError::Write {
        target: "x.pcapng".into(),
        source: std::io::Error::from_raw_os_error(libc::ENOSPC),
    };
    assert_eq!(exit_of(&full), Exit::OutputFailed);
    assert!(hint_of(&full).contains("the disk is full"));
    let pipe = SinkError::Write {
        target: "stdout".into(),
        source: std::io::ErrorKind::BrokenPipe.into(),
    };
    assert!(hint_of(&pipe).contains("went away"));
    let mismatch = SinkError::LinkTypeMismatch {
        label: "b".into(),
        theirs: "LINUX_SLL2",
        ours: "EN10MB",
    };
    assert_eq!(exit_of(&mismatch), Exit::Usage);
    assert_eq!(exit_of(&UsageError("bad".into())), Exit::Usage);
    assert_eq!(
        exit_of(&kcap_capture::Error::Nul { what: "--filter" }),
        Exit::Usage
    );
    assert_eq!(exit_of(&std::io::Error::other("anything")), Exit::Other);
}

#[test]
fn ssh_errors() {
    use kcap_ssh::Error as Ssh;
    let connect = || Ssh::Connect {
        target: "node-a".into(),
        address: "198.51.100.10:22".into(),
        source: std::io::ErrorKind::ConnectionRefused.into(),
    };
    let key = |line| (PathBuf::from("/k"), line);
    let cases: Vec<(Ssh, Exit)> = vec![
        (connect(), Exit::Connect),
        (
            Ssh::Timeout {
                target: "n".into(),
                after: std::time::Duration::from_secs(10),
            },
            Exit::Connect,
        ),
        (
            Ssh::Jump {
                hop: "bastion".into(),
                source: Box::new(connect()),
            },
            Exit::Connect,
        ),
        (
            Ssh::Auth {
                user: "root".into(),
                host: "n".into(),
                tried: vec!["password".into()],
            },
            Exit::Auth,
        ),
        (
            Ssh::HostKeyUnknown {
                host: "n".into(),
                algorithm: "ssh-ed25519".into(),
                fingerprint: "SHA256:x".into(),
                known_hosts: "/k".into(),
            },
            Exit::HostKeyUnknown,
        ),
        (
            Ssh::HostKeyChanged {
                host: "n".into(),
                algorithm: "a".into(),
                fingerprint: "f".into(),
                file: key(3).0,
                line: key(3).1,
            },
            Exit::HostKeyChanged,
        ),
        (
            Ssh::HostKeyRevoked {
                host: "n".into(),
                algorithm: "a".into(),
                fingerprint: "f".into(),
                file: key(4).0,
                line: key(4).1,
            },
            Exit::HostKeyChanged,
        ),
        (Ssh::ExecRefused, Exit::Other),
        (
            Ssh::ProxyCommand {
                target: "node-a".into(),
                command: "nc gw %h %p".into(),
                reason: "exited with status 1".into(),
                stderr: "nc: connection refused".into(),
            },
            Exit::Connect,
        ),
        (Ssh::Unsupported("ProxyUseFdpass yes".into()), Exit::Usage),
        (
            Ssh::HostCertificate {
                host: "node-a".into(),
                fingerprint: "SHA256:x".into(),
                ca: "SHA256:ca".into(),
                reason: "expired".into(),
            },
            Exit::HostKeyChanged,
        ),
        (
            Ssh::Disconnected {
                reason: "gone".into(),
            },
            Exit::ConnectionLost,
        ),
    ];
    for (error, exit) in cases {
        assert_eq!(exit_of(&error), exit, "{error:?}");
        assert_eq!(exit_of(&SourceError::Ssh(error)), exit);
    }
    let changed = Ssh::HostKeyChanged {
        host: "n".into(),
        algorithm: "a".into(),
        fingerprint: "f".into(),
        file: "/root/.ssh/known_hosts".into(),
        line: 7,
    };
    assert!(hint_of(&changed).contains("ssh-keygen -R HOST -f /root/.ssh/known_hosts (line 7)"));
    assert!(hint_of(&connect()).contains("--jump-host"));
}

#[test]
fn kubernetes_errors() {
    use kcap_kube::Error as K;
    let cause = || -> kcap_kube::error::Cause { std::sync::Arc::new(std::io::Error::other("x")) };
    let cases = [
        (
            K::Config {
                path: None,
                source: cause(),
            },
            Exit::KubeUnreachable,
        ),
        (K::Unreachable(cause()), Exit::KubeUnreachable),
        (
            K::Quote {
                what: "the capture command",
                source: kcap_capture::Error::Nul { what: "--filter" },
            },
            Exit::Usage,
        ),
        (K::BadTarget("x".into()), Exit::Usage),
        (
            K::FilterToken {
                token: "pod/x".into(),
                source: None,
            },
            Exit::Usage,
        ),
        (
            K::NamespaceNotFound {
                namespace: "x".into(),
                existing: vec![],
            },
            Exit::KubeNotFound,
        ),
        (
            K::NotFound {
                kind: "pod",
                namespace: "p".into(),
                name: "x".into(),
                existing: vec![],
            },
            Exit::KubeNotFound,
        ),
        (
            K::NodeNotFound {
                name: "x".into(),
                existing: vec![],
            },
            Exit::KubeNotFound,
        ),
        (
            K::ContainerNotFound {
                pod: "p/x".into(),
                container: "c".into(),
                existing: vec![],
            },
            Exit::KubeNotFound,
        ),
        (K::NoPods { what: "x".into() }, Exit::KubeNotFound),
        (
            K::PodNotRunning {
                pod: "p/x".into(),
                phase: "Pending".into(),
            },
            Exit::KubeNotFound,
        ),
        (
            K::Forbidden {
                verb: "create".into(),
                resource: "pods/exec".into(),
                namespace: "prod".into(),
                message: "no".into(),
                source: None,
            },
            Exit::Forbidden,
        ),
        (
            K::EphemeralUnsupported {
                pod: "p/x".into(),
                message: "404".into(),
                source: None,
            },
            Exit::NoMethod,
        ),
        (
            K::EphemeralRejected {
                pod: "p/x".into(),
                message: "no".into(),
                source: None,
            },
            Exit::NoMethod,
        ),
        (
            K::HelperNotStarted {
                helper: "h".into(),
                node: "n".into(),
                message: "m".into(),
            },
            Exit::NoMethod,
        ),
        (
            K::HelperRejected {
                namespace: "p".into(),
                node: "n".into(),
                message: "m".into(),
                source: None,
            },
            Exit::NoMethod,
        ),
        (
            K::AllMethodsFailed {
                pod: "p/x".into(),
                attempts: vec![(Method::Exec, "a".into())],
            },
            Exit::NoMethod,
        ),
        (
            K::Api {
                what: "get pods".into(),
                source: cause(),
            },
            Exit::Other,
        ),
    ];
    for (error, exit) in cases {
        assert_eq!(exit_of(&error), exit, "{error:?}");
        assert_eq!(explain(&error).hint, error.hint(), "{error:?}");
        assert_eq!(exit_of(&SourceError::Kube(error)), exit);
    }
}

#[test]
fn the_first_failure_decides() {
    assert_eq!(Exit::Success.or(Exit::Auth), Exit::Auth);
    assert_eq!(Exit::Connect.or(Exit::Auth), Exit::Connect);
    assert_eq!(Exit::Success.or(Exit::Success), Exit::Success);
}
