//! The remote capture command: one line for the remote login shell that runs the
//! wrapper script in `remote.sh` with every user value passed as a quoted argument.

use crate::{Error, quote::quote};

/// The wrapper script run by `sh -c` on the remote host. It picks the tool, excludes
/// kcap's own SSH session from the capture and stops the tool when kcap's heartbeat
/// on stdin stops.
pub const REMOTE_SCRIPT: &str = include_str!("remote.sh");

/// What kcap writes to the remote command's stdin every [`HEARTBEAT_INTERVAL`]; the
/// wrapper stops the capture after 5 s without one.
pub const HEARTBEAT: &[u8] = b"k\n";
pub const HEARTBEAT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Marker lines the wrapper writes on stderr.
pub const MARKER_TOOL: &str = "kcap-remote: tool: ";
/// The wrapper has read kcap's agent from stdin: the heartbeat may start (before
/// the tool line, so a slow start, such as `--process` on a busy node, does not
/// outlast the wrapper's 5 s without one).
pub const MARKER_AGENT_READ: &str = "kcap-remote: agent-read";
pub const MARKER_MISSING_TOOL: &str = "kcap-remote: missing-tool: ";
/// kcap's agent cannot attribute packets to processes there (`--process on`):
/// it exits 4 and captured nothing. The rest of the line says why.
pub const MARKER_PROCESS_UNUSABLE: &str = "kcap-remote: process-unusable: ";
/// Same, with `--process auto`: the capture goes on without processes.
pub const MARKER_PROCESS_UNAVAILABLE: &str = "kcap-remote: process-unavailable: ";
/// The wrapper stopped the tool because kcap's heartbeat went silent for 5 s.
pub const MARKER_HEARTBEAT_LOST: &str = "kcap-remote: heartbeat-lost";

/// Marker lines of the script that finds a pod's network from its node
/// (`netns.sh` in crates/kube): the way it was found (`crictl`, `netns by IP`,
/// `cgroup`, `veth caliXXXX`), or what every way found when none worked.
pub const MARKER_NETNS_WAY: &str = "kcap-netns: way: ";
pub const MARKER_NETNS_NOT_FOUND: &str = "kcap-netns: not-found: ";

/// The largest snaplen tcpdump accepts, and what `-s 0` means to it.
pub const FULL_SNAPLEN: u32 = 262_144;

/// Default kernel capture buffer, in KiB (the tool's `-B`). kcap asks for immediate
/// delivery (the live view and the merge need packets at once); in that mode libpcap
/// keeps one packet per slot sized for the largest packet, so its own 2 MiB default
/// holds ~18 packets on a veth and ~1 on `any` at full snaplen: a burst arriving
/// while the tool waits for the network is dropped. 16 MiB holds ~240 and ~40
/// (`bench/capture-buffer.py`, BENCHMARKS.md); it is kernel memory on the node for
/// the length of the capture, hence not more by default.
pub const DEFAULT_BUFFER_KIB: u32 = 16 << 10;

/// `--remote-tool`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tool {
    /// kcap's capture agent if kcap has it and it runs there, else tcpdump, else
    /// tshark, else dumpcap.
    #[default]
    Auto,
    /// kcap's capture agent, or fail (for benchmarks, and users who want its
    /// guarantees or nothing).
    Agent,
    Tcpdump,
    Tshark,
    Dumpcap,
    /// Not a capture: the wrapper lists the interfaces where it runs (`-D`), as
    /// `tcpdump -D` prints them, and exits. Not a `--remote-tool` value.
    ListInterfaces,
}

impl Tool {
    pub fn name(self) -> &'static str {
        match self {
            Tool::Auto => "auto",
            Tool::Agent => "agent",
            Tool::Tcpdump => "tcpdump",
            Tool::Tshark => "tshark",
            Tool::Dumpcap => "dumpcap",
            Tool::ListInterfaces => "list-interfaces",
        }
    }

    pub fn parse(input: &str) -> Option<Tool> {
        [
            Tool::Auto,
            Tool::Agent,
            Tool::Tcpdump,
            Tool::Tshark,
            Tool::Dumpcap,
        ]
        .into_iter()
        .find(|t| t.name() == input)
    }
}

/// `-Q`/`--direction`: which packets of an interface to keep, as tcpdump's `-Q`.
/// Linux tells a packet's direction by its `sll_pkttype`: PACKET_OUTGOING is
/// `out`, everything else (to us, broadcast, multicast, another host's) is `in`,
/// as libpcap does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Both ways (the default; nothing is passed to the tool).
    #[default]
    InOut,
    In,
    Out,
}

impl Direction {
    /// tcpdump's word for it (`-Q in`), also the wrapper's and the agent's.
    pub fn name(self) -> &'static str {
        match self {
            Direction::InOut => "inout",
            Direction::In => "in",
            Direction::Out => "out",
        }
    }

    pub fn parse(input: &str) -> Option<Direction> {
        [Direction::InOut, Direction::In, Direction::Out]
            .into_iter()
            .find(|d| d.name() == input)
    }
}

/// `--process`: whether kcap's capture agent names each packet's process (the
/// wrapper's 11th argument, passed on to the agent as `--process on|auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProcessMode {
    /// No process attribution (the default).
    #[default]
    Off,
    /// Attribute every packet, or fail when the node cannot (`process-unusable`).
    On,
    /// Attribute when the node can, else capture without (`process-unavailable`).
    Auto,
}

impl ProcessMode {
    /// The wrapper's and the agent's word for it.
    pub fn name(self) -> &'static str {
        match self {
            ProcessMode::Off => "off",
            ProcessMode::On => "on",
            ProcessMode::Auto => "auto",
        }
    }

    pub fn parse(input: &str) -> Option<ProcessMode> {
        [ProcessMode::Off, ProcessMode::On, ProcessMode::Auto]
            .into_iter()
            .find(|m| m.name() == input)
    }
}

/// Everything that decides the remote command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureCommand {
    pub tool: Tool,
    pub interface: String,
    pub snaplen: u32,
    /// Kernel capture buffer in KiB (tcpdump's `-B`; tshark and dumpcap get MiB).
    pub buffer_kib: u32,
    /// Stop after this many packets (the remote tool's `-c`).
    pub count: Option<u64>,
    /// `-Q`: tcpdump and the agent take it as is; tshark and dumpcap, which have no
    /// such flag, get `inbound`/`outbound` joined to the filter (see remote.sh).
    pub direction: Direction,
    /// The complete BPF expression (see [`crate::filter::FilterSpec::to_bpf`]).
    pub filter: Option<String>,
    /// Run the wrapper through `sudo -n` (never prompts: fails instead).
    pub sudo: bool,
    /// kcap's capture agent, sent ahead of the heartbeat on stdin (see remote.sh).
    pub agent: Option<AgentBinary>,
    /// `--process`: tell the agent to name each packet's process.
    pub process: ProcessMode,
}

/// The bytes of kcap's capture agent (crates/agent), shared by every source.
#[derive(Clone)]
pub struct AgentBinary(pub std::sync::Arc<[u8]>);

impl AgentBinary {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for AgentBinary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AgentBinary({} bytes)", self.0.len())
    }
}

impl PartialEq for AgentBinary {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for AgentBinary {}

/// Checks an interface name before it is used anywhere. Linux names are at most 15
/// bytes; this also refuses anything that looks like shell syntax, so a hostile
/// `--iface` fails clearly here rather than relying on quoting alone.
pub fn validate_interface(name: &str) -> Result<(), Error> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "._-:@+".contains(c);
    if name.is_empty() || name.len() > 15 || !name.chars().all(ok_char) {
        return Err(Error::Interface(name.to_string()));
    }
    Ok(())
}

/// Where [`CaptureCommand::to_argv`] puts the SSH session to exclude.
const ARGV_SSH_CONNECTION: usize = 4;

impl CaptureCommand {
    /// The command line for an SSH `exec` request (interpreted by the remote user's
    /// POSIX login shell): [`Self::to_argv`] with every word quoted, except the
    /// session to exclude, which is `"$SSH_CONNECTION"`: the only thing the remote
    /// shell expands.
    pub fn to_shell(&self) -> Result<String, Error> {
        self.to_shell_after(&[])
    }

    /// [`Self::to_shell`] with `prefix` run first and the wrapper as its arguments
    /// (e.g. a program that enters a pod's network namespace, then runs the rest).
    /// Every prefix word is quoted too; `sudo -n` goes before the prefix.
    pub fn to_shell_after(&self, prefix: &[String]) -> Result<String, Error> {
        let words = prefix
            .iter()
            .map(|word| quote(word, "argument"))
            .chain(
                self.to_argv("")?
                    .iter()
                    .enumerate()
                    .map(|(i, word)| match i {
                        ARGV_SSH_CONNECTION => Ok("\"$SSH_CONNECTION\"".to_string()),
                        _ => quote(word, "--filter"),
                    }),
            )
            .collect::<Result<Vec<_>, _>>()?;
        let sudo = if self.sudo { "sudo -n " } else { "" };
        Ok(format!("{sudo}{}", words.join(" ")))
    }

    /// The same wrapper as an argument vector, for transports that run a program
    /// directly (Kubernetes exec, a container command, `nsenter`): no shell parses
    /// the user's values, so nothing needs quoting. `ssh_connection` is the session
    /// to exclude from the capture (`""` when there is none, as over the Kubernetes
    /// API). `sudo` is ignored: the container decides who the capture runs as.
    pub fn to_argv(&self, ssh_connection: &str) -> Result<Vec<String>, Error> {
        validate_interface(&self.interface)?;
        let filter = self.filter.as_deref().unwrap_or("");
        if filter.contains(['\n', '\r']) {
            return Err(Error::LineBreak { what: "--filter" });
        }
        if filter.contains('\0') {
            return Err(Error::Nul { what: "--filter" });
        }
        // Keep ARGV_SSH_CONNECTION pointing at `ssh_connection`.
        Ok(vec![
            "sh".into(),
            "-c".into(),
            REMOTE_SCRIPT.into(),
            "kcap".into(),
            ssh_connection.into(),
            self.tool.name().into(),
            self.interface.clone(),
            self.snaplen.to_string(),
            self.buffer_kib.to_string(),
            self.count.unwrap_or(0).to_string(),
            filter.into(),
            self.agent.as_ref().map_or(0, |a| a.0.len()).to_string(),
            self.direction.name().into(),
            self.process.name().into(),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(filter: &str) -> CaptureCommand {
        CaptureCommand {
            tool: Tool::Auto,
            interface: "any".into(),
            snaplen: FULL_SNAPLEN,
            buffer_kib: DEFAULT_BUFFER_KIB,
            count: Some(3),
            direction: Direction::InOut,
            filter: Some(filter.into()),
            sudo: false,
            agent: None,
            process: ProcessMode::Off,
        }
    }

    #[test]
    fn hostile_interfaces_are_refused() {
        for name in [
            "eth0$(reboot)",
            "eth0;id",
            "",
            "a b",
            "averyveryverylongname",
        ] {
            assert!(validate_interface(name).is_err(), "{name}");
        }
        for name in ["any", "eth0", "cali1234.5", "veth@if3", "br-x_y"] {
            validate_interface(name).unwrap();
        }
    }

    #[test]
    fn line_breaks_in_filters_are_refused() {
        assert_eq!(
            command("port 80\ntouch /x").to_shell(),
            Err(Error::LineBreak { what: "--filter" })
        );
    }

    /// The argv form runs the same script with the values as separate words: a
    /// hostile filter stays one argument of the tool.
    #[test]
    fn argv_keeps_values_as_words() {
        let argv = command("port 80; id").to_argv("").unwrap();
        assert_eq!(&argv[..2], ["sh", "-c"]);
        assert_eq!(
            argv[3..].to_vec(),
            [
                "kcap",
                "",
                "auto",
                "any",
                "262144",
                "16384",
                "3",
                "port 80; id",
                "0",
                "inout",
                "off"
            ]
        );
        assert!(command("a\nb").to_argv("").is_err());
    }

    /// A prefix (the netns entry of `--via ssh`) is quoted word by word, before the
    /// wrapper, with `sudo -n` in front of everything.
    #[test]
    fn shell_line_after_a_prefix() {
        let mut c = command("port 80");
        c.sudo = true;
        c.process = ProcessMode::On;
        let line = c
            .to_shell_after(&["nsenter-ish".into(), "it's".into()])
            .unwrap();
        assert!(
            line.starts_with("sudo -n 'nsenter-ish' 'it'\\''s' 'sh' '-c' "),
            "{line}"
        );
        assert!(
            line.ends_with(
                " 'kcap' \"$SSH_CONNECTION\" 'auto' 'any' '262144' '16384' '3' 'port 80' '0' 'inout' 'on'"
            ),
            "{line}"
        );
        assert_eq!(c.to_shell_after(&[]).unwrap(), c.to_shell().unwrap());
    }

    #[test]
    fn script_is_valid_posix_sh() {
        let status = std::process::Command::new("sh")
            .args(["-n", "-c", REMOTE_SCRIPT])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Runs the generated line through a real shell with a fake `tcpdump` first on
    /// PATH that prints its arguments, so we see exactly what the tool would get.
    /// A stand-in capture tool in `dir` that prints each argument it gets as
    /// `<arg>` on stderr.
    fn recording_tool(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
        let fake = dir.join(name);
        std::fs::write(
            &fake,
            "#!/bin/sh\nfor a in \"$@\"; do printf '<%s>' \"$a\" >&2; done\n",
        )
        .unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&fake)
            .status()
            .unwrap();
        fake
    }

    #[test]
    fn tool_receives_the_filter_as_one_argument() {
        let dir = std::env::temp_dir().join(format!("kcap-cmd-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        recording_tool(&dir, "tcpdump");
        let marker = dir.join("pwned");
        let hostile = format!("port 80; touch {}", marker.display());
        let line = command(&hostile).to_shell().unwrap();
        let ssh = "198.51.100.1 40000 198.51.100.10 22";
        let stderr = wrapper_stderr(&line, &dir, Some(ssh));
        assert!(!marker.exists(), "hostile filter ran a command");
        assert!(stderr.contains("kcap-remote: tool: tcpdump"), "{stderr}");
        let expected_filter = format!(
            "<not (tcp and ((src host 198.51.100.1 and src port 40000 and dst host 198.51.100.10 and dst port 22) or (src host 198.51.100.10 and src port 22 and dst host 198.51.100.1 and dst port 40000))) and ({hostile})>"
        );
        assert!(stderr.contains(&expected_filter), "{stderr}");
        assert!(
            stderr.contains("<-i><any><-B><16384><-w><-><-c><3>"),
            "{stderr}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Runs `command`'s wrapper line with a fake `tool` first on PATH that prints
    /// its arguments as `<word>`; returns the wrapper's stderr.
    fn arguments_given_to(tool: &str, command: &CaptureCommand) -> String {
        let dir = std::env::temp_dir().join(format!(
            "kcap-dir-test-{}-{tool}-{}",
            std::process::id(),
            command.direction.name()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        recording_tool(&dir, tool);
        let stderr = wrapper_stderr(&command.to_shell().unwrap(), &dir, None);
        std::fs::remove_dir_all(&dir).unwrap();
        stderr
    }

    /// Runs a wrapper `line` with `dir` first on PATH (and `ssh_connection` as
    /// sshd would set it); returns its stderr. Stdin stays open (as kcap's
    /// heartbeat does) until the wrapper ended: at end of stdin it would stop the
    /// tool, maybe before the tool printed anything.
    fn wrapper_stderr(line: &str, dir: &std::path::Path, ssh_connection: Option<&str>) -> String {
        let mut shell = std::process::Command::new("sh");
        shell
            .arg("-c")
            .arg(line)
            .env("PATH", format!("{}:/usr/bin:/bin", dir.display()))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        match ssh_connection {
            Some(value) => shell.env("SSH_CONNECTION", value),
            None => shell.env_remove("SSH_CONNECTION"),
        };
        let mut child = shell.spawn().unwrap();
        let heartbeat = child.stdin.take().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        drop(heartbeat);
        child.wait().unwrap();
        stderr
    }

    /// `-Q` reaches tcpdump as its own flag, before the filter; tshark and dumpcap
    /// get libpcap's `inbound`/`outbound` in their filter instead; `inout` adds
    /// nothing (a tcpdump without -Q still works).
    #[test]
    fn direction_reaches_each_tool_its_own_way() {
        let mut c = command("port 80");
        c.count = None;
        c.direction = Direction::Out;
        c.tool = Tool::Tcpdump;
        let got = arguments_given_to("tcpdump", &c);
        assert!(got.contains("<-w><-><-Q><out><port 80>"), "{got}");
        c.direction = Direction::In;
        c.tool = Tool::Tshark;
        let got = arguments_given_to("tshark", &c);
        assert!(got.contains("<-w><-><-f><inbound and (port 80)>"), "{got}");
        c.filter = None;
        c.tool = Tool::Dumpcap;
        let got = arguments_given_to("dumpcap", &c);
        assert!(got.ends_with("<-w><-><-f><inbound>"), "{got}");
        c.direction = Direction::InOut;
        c.tool = Tool::Tcpdump;
        let got = arguments_given_to("tcpdump", &c);
        assert!(!got.contains("<-Q>") && got.ends_with("<-w><->"), "{got}");
        c.tool = Tool::Tshark;
        let got = arguments_given_to("tshark", &c);
        assert!(got.ends_with("<-w><->"), "{got}");
    }

    /// `-D` with tcpdump there: its own `-D` list; without it, the names and flags
    /// of /sys/class/net in the same shape.
    #[test]
    fn list_mode_prints_tcpdumps_list_or_the_kernels() {
        let mut c = command("");
        c.tool = Tool::ListInterfaces;
        c.count = None;
        let run = |path: &str| {
            // By its path: Command looks the program up on the child's PATH.
            std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(c.to_shell().unwrap())
                .env("PATH", path)
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap()
        };
        let dir = std::env::temp_dir().join(format!("kcap-list-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("tcpdump"),
            "#!/bin/sh\n[ \"$*\" = -D ] && echo '1.fake0 [Up, Running]'\n",
        )
        .unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(dir.join("tcpdump"))
            .status()
            .unwrap();
        let out = run(&format!("{}:/usr/bin:/bin", dir.display()));
        assert!(out.status.success());
        assert_eq!(out.stdout, b"1.fake0 [Up, Running]\n");
        // A tcpdump that fails, and only sh besides: the kernel's list.
        std::fs::write(dir.join("tcpdump"), "#!/bin/sh\nexit 1\n").unwrap();
        std::os::unix::fs::symlink("/bin/sh", dir.join("sh")).unwrap();
        let out = run(&dir.display().to_string());
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let listed: Vec<&str> = text.lines().collect();
        assert_eq!(listed.len(), names.len(), "{text}");
        for (i, line) in listed.iter().enumerate() {
            let (index, rest) = line.split_once('.').unwrap();
            assert_eq!(index, (i + 1).to_string(), "{text}");
            let name = rest.split(' ').next().unwrap();
            assert!(names.iter().any(|n| n == name), "{text}");
        }
        assert!(text.contains(".lo [Up, Running, Loopback]"), "{text}");
    }

    /// Runs the wrapper with a fake tcpdump that just waits, feeding one heartbeat;
    /// then either closes stdin (kcap's stop) or goes silent (a stalled link).
    /// Returns the wrapper's stderr and how long it took to end.
    fn heartbeat_run(close_stdin: bool) -> (String, std::time::Duration) {
        use std::io::{Read, Write};
        let dir =
            std::env::temp_dir().join(format!("kcap-hb-test-{}-{close_stdin}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = dir.join("tcpdump");
        std::fs::write(&fake, "#!/bin/sh\nexec sleep 30\n").unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&fake)
            .status()
            .unwrap();
        let started = std::time::Instant::now();
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(command("").to_shell().unwrap())
            .env("PATH", format!("{}:/usr/bin:/bin", dir.display()))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(HEARTBEAT).unwrap();
        let kept = if close_stdin {
            drop(stdin);
            None
        } else {
            Some(stdin)
        };
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let took = started.elapsed();
        drop(kept);
        child.wait().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        (stderr, took)
    }

    #[test]
    fn closed_stdin_stops_the_tool_at_once() {
        let (stderr, took) = heartbeat_run(true);
        assert!(!stderr.contains(MARKER_HEARTBEAT_LOST), "{stderr}");
        assert!(took < std::time::Duration::from_secs(3), "{took:?}");
    }

    /// A silent heartbeat stops the tool after 5 s and says so; the session's
    /// stderr closes then too (nothing in the wrapper keeps a copy open).
    #[test]
    fn silent_heartbeat_stops_the_tool_and_says_so() {
        let (stderr, took) = heartbeat_run(false);
        assert!(stderr.contains(MARKER_HEARTBEAT_LOST), "{stderr}");
        assert!(took < std::time::Duration::from_secs(8), "{took:?}");
    }
}
