//! The validated configuration: every flag checked and resolved before any work
//! starts, so a bad value fails in milliseconds with exit code 2, not after connecting.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kcap_capture::command::{
    AgentBinary, CaptureCommand, Direction, FULL_SNAPLEN, ProcessMode, Tool,
};
use kcap_kube::Method;

use crate::agent;
use kcap_capture::filter::{FilterSpec, Protocol};
use kcap_openssh::destination::Destination;
use kcap_ssh::ConnectOptions;

use crate::cli::Cli;
use crate::limits::FileLimits;
use crate::process::ProcessFilter;
use crate::sink::naming;

/// A flag value that cannot work. Always exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn usage(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap,
    Pcapng,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputDestination {
    File(PathBuf),
    Stdout,
}

#[derive(Debug, Clone)]
pub struct Output {
    pub destination: OutputDestination,
    pub format: Format,
}

impl Output {
    /// `stdout` or the file's path, for messages.
    pub fn target_name(&self) -> String {
        match &self.destination {
            OutputDestination::Stdout => "stdout".into(),
            OutputDestination::File(p) => p.display().to_string(),
        }
    }

    /// The path of a file output; `None` for stdout.
    pub fn file_path(&self) -> Option<&Path> {
        match &self.destination {
            OutputDestination::File(p) => Some(p),
            OutputDestination::Stdout => None,
        }
    }

    /// A live stream (stdout to Wireshark): every packet goes out at once.
    pub fn is_live(&self) -> bool {
        self.destination == OutputDestination::Stdout
    }
}

/// One node to capture on.
#[derive(Debug, Clone)]
pub struct NodeTarget {
    /// The name the user typed, used in interface names and messages.
    pub label: String,
    pub connect: ConnectOptions,
}

/// `--via`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Auto,
    Only(kcap_kube::Method),
}

impl Via {
    fn parse(input: &str) -> Option<Via> {
        Some(match input {
            "auto" => Via::Auto,
            "exec" => Via::Only(Method::Exec),
            "ephemeral" => Via::Only(Method::Ephemeral),
            "node" => Via::Only(Method::Node),
            "ssh" => Via::Only(Method::Ssh),
            _ => return None,
        })
    }
}

/// Everything about Kubernetes targets.
#[derive(Debug, Clone)]
pub struct KubeSettings {
    pub client: kcap_kube::client::ClientOptions,
    /// `-n`; `None`: the context's namespace.
    pub namespace: Option<String>,
    pub all_namespaces: bool,
    pub selector: Option<String>,
    /// `--node-selector`: which nodes `node/all` means.
    pub node_selector: Option<String>,
    pub container: Option<String>,
    pub targets: Vec<kcap_kube::target::Target>,
    pub via: Via,
    /// `--capture-point`: where `--via node` and `--via ssh` capture a pod.
    pub capture_point: kcap_kube::methods::CapturePoint,
    pub image: String,
    pub follow: bool,
    pub annotate: bool,
    /// SSH settings for `--via ssh` (the host is filled in with the pod's node).
    pub ssh_template: ConnectOptions,
}

/// The capture tool's settings, the same on every target. The filter is not here:
/// it is final only once its pod tokens are resolved (see [`crate::plan`]).
#[derive(Debug, Clone)]
pub struct CaptureSettings {
    pub tool: Tool,
    /// The first of [`Self::interfaces`] (the one most runs have).
    pub interface: String,
    /// Every `-i`, in the order given: each target is captured on each of them.
    pub interfaces: Vec<String>,
    pub snaplen: u32,
    pub buffer_kib: u32,
    /// `-Q`: which way the packets kept went.
    pub direction: Direction,
    pub sudo: bool,
    /// The capture agent to send, for `--remote-tool auto` and `agent`.
    pub agent: Option<AgentBinary>,
    /// `--process` (also implied by the process filters).
    pub process: ProcessMode,
}

/// How `--print` shows each packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrintSettings {
    pub time: TimeFormat,
    /// `--nano`: nanoseconds in the printed time instead of microseconds.
    pub nanos: bool,
    pub dump: Option<kcap_lines::Dump>,
    /// Pod, service and node names after addresses (off with `--no-names`).
    pub names: bool,
}

/// tcpdump's `-t` family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// `HH:MM:SS.ffffff`, local time (the default).
    Clock,
    /// `-t`: none.
    None,
    /// `-tt`: seconds since the epoch.
    Epoch,
    /// `-ttt`: since the previous packet.
    Delta,
    /// `-tttt`: date and local time.
    Date,
    /// `-ttttt`: since the first packet.
    SinceFirst,
}

impl PrintSettings {
    fn from_cli(cli: &Cli) -> Result<Option<PrintSettings>, UsageError> {
        let dump = match (cli.hex, cli.hex_ascii, cli.ascii) {
            (0, false, false) => None,
            (_, false, false) => Some(kcap_lines::Dump::Hex),
            (0, true, false) => Some(kcap_lines::Dump::HexAscii),
            (0, false, true) => Some(kcap_lines::Dump::Ascii),
            _ => return Err(usage("-x, -X and --ascii are one choice: give one of them")),
        };
        let asked = dump.is_some() || cli.time > 0 || cli.nano || cli.micro || cli.no_names;
        // Reading a file prints it, as tcpdump -r does, unless it is only rewritten (-o)
        // or decoded into records.
        let decoded = cli.http || cli.dns || cli.summary.is_some();
        let print = cli.print || (cli.read.is_some() && cli.output.is_none() && !decoded);
        if !print {
            if asked {
                return Err(usage(
                    "-x, -X, --ascii, -t, --nano, --micro and --no-names shape --print's lines: add --print",
                ));
            }
            return Ok(None);
        }
        let time = match cli.time {
            0 => TimeFormat::Clock,
            1 => TimeFormat::None,
            2 => TimeFormat::Epoch,
            3 => TimeFormat::Delta,
            4 => TimeFormat::Date,
            _ => TimeFormat::SinceFirst,
        };
        Ok(Some(PrintSettings {
            time,
            nanos: cli.nano,
            dump,
            names: !cli.no_names,
        }))
    }
}

/// `-r FILE`: which file, and which of its interfaces (`pod/NAME`, `--pod NAME`,
/// `node/NAME`; none named: all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSettings {
    /// `None`: standard input (`-r -`), or the served capture of `connect`.
    pub path: Option<PathBuf>,
    pub select: Vec<kcap_kube::target::Target>,
    /// `--connect URL`: a capture another kcap serves, read live.
    pub connect: Option<kcap_serve::ConnectOptions>,
}

impl ReadSettings {
    fn from_cli(cli: &Cli) -> Result<Option<ReadSettings>, UsageError> {
        use kcap_kube::target::{Kind, Target};
        let connect = crate::serve::connect_options(cli)?;
        let flag = if connect.is_some() { "--connect" } else { "-r" };
        let path = match (&cli.read, &connect) {
            (Some(path), _) => (path != Path::new("-")).then(|| path.clone()),
            (None, Some(_)) => None,
            (None, None) => return Ok(None),
        };
        if !cli.ssh_hosts.is_empty()
            || cli.selector.is_some()
            || cli.follow
            || cli.dry_run.is_some()
        {
            return Err(usage(format!(
                "{flag} reads a capture: --ssh-host, -l, --follow and --dry-run are for captures"
            )));
        }
        if cli.wireshark && connect.is_none() {
            return Err(usage(
                "-r reads a file: open it in Wireshark directly (wireshark FILE)",
            ));
        }
        if cli.filter.is_some() || !cli.ports.is_empty() || cli.protocol != "all" {
            if connect.is_some() {
                return Err(usage(
                    "--connect does not filter: the serving kcap's capture is what it is; \
                     filter there (--filter), or read it with tshark -Y",
                ));
            }
            return Err(usage(
                "-r does not filter: kcap compiles no BPF itself; filter with tcpdump first \
                 (tcpdump -r FILE -w - 'EXPR' | kcap -r -)",
            ));
        }
        let mut select = Vec::new();
        for t in &cli.targets {
            let mut target = Target::parse(t).map_err(|e| usage(e.to_string()))?;
            if target.kind == Kind::Pod {
                target.namespace = cli.namespace.clone();
            }
            if !matches!(target.kind, Kind::Pod | Kind::Node) {
                return Err(usage(format!(
                    "{flag} selects a capture's interfaces by pod/NAME or node/NAME, not {t}"
                )));
            }
            select.push(target);
        }
        for p in &cli.pods {
            select.push(Target {
                kind: Kind::Pod,
                namespace: cli.namespace.clone(),
                name: p.clone(),
            });
        }
        Ok(Some(ReadSettings {
            path,
            select,
            connect,
        }))
    }
}

/// `--dry-run[=FORMAT]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DryRun {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `-r FILE`: read a capture file instead of capturing.
    pub read: Option<ReadSettings>,
    pub nodes: Vec<NodeTarget>,
    /// Pods, workloads and nodes through the Kubernetes API; also set when only
    /// `--filter` holds pod tokens (they need the API).
    pub kube: Option<KubeSettings>,
    /// `--port`, `--protocol` and `--filter` as given (pod tokens unresolved).
    pub filter: FilterSpec,
    pub capture: CaptureSettings,
    pub duration: Option<Duration>,
    /// `-c`: packets written, all targets together (each remote tool stops there too).
    pub count: Option<u64>,
    /// The capture file; `None` with `--print` and no `-o` (like tcpdump without `-w`).
    /// With rotation or the flight recorder, its path is the template of every file's
    /// name (strftime fields unexpanded).
    pub output: Option<Output>,
    /// `-C`, `-G`, `-W`, `--max-size`, `--flight-recorder`.
    pub limits: FileLimits,
    /// Rewrite LINUX_SLL2 packets as LINUX_SLL (`--linktype LINUX_SLL`).
    pub cooked_v1: bool,
    /// `--print`: tcpdump-style lines on stdout.
    pub print: Option<PrintSettings>,
    /// `--http`, `--dns`: records as JSON lines.
    pub records: Option<crate::sink::records::RecordSettings>,
    /// `--wireshark` (or extcap's FIFO): the live stream for Wireshark.
    pub wireshark: Option<crate::wireshark::Viewer>,
    /// `--serve ADDR`: the live capture for viewers over HTTP and WebSocket.
    pub serve: Option<crate::serve::ServeSettings>,
    pub verbosity: Verbosity,
    pub dry_run: Option<DryRun>,
    /// `-D`: list each target's interfaces instead of capturing.
    pub list_interfaces: bool,
    /// `--pid`, `--pname`, `--container-name`, `--container-id`.
    pub process_filter: ProcessFilter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
    Debug,
}

impl Config {
    pub fn from_cli(cli: Cli) -> Result<Config, UsageError> {
        let read = ReadSettings::from_cli(&cli)?;
        let kube_targets = read.is_none()
            && (!cli.targets.is_empty()
                || !cli.pods.is_empty()
                || cli.selector.is_some()
                || cli.node_selector.is_some());
        if cli.ssh_hosts.is_empty() && !kube_targets && read.is_none() {
            return Err(usage(
                "no target: name pods or workloads (pod/NAME, deploy/NAME, --pod NAME, -l SELECTOR) \
                 or nodes (node/NAME, --ssh-host HOST); see kcap --help",
            ));
        }
        let filter = FilterSpec {
            ports: cli
                .ports
                .iter()
                .map(|p| parse_port(p))
                .collect::<Result<_, _>>()?,
            protocol: Protocol::parse(&cli.protocol).ok_or_else(|| {
                usage(format!(
                    "unknown --protocol {:?}: use tcp, udp or all",
                    cli.protocol
                ))
            })?,
            expression: cli.filter.clone(),
        };
        let snaplen = match cli.snaplen {
            None | Some(0) => FULL_SNAPLEN,
            Some(n) if n > FULL_SNAPLEN => {
                return Err(usage(format!(
                    "--snaplen {n} is larger than {FULL_SNAPLEN}"
                )));
            }
            Some(n) => n,
        };
        let capture = CaptureSettings {
            tool: Tool::parse(&cli.remote_tool).ok_or_else(|| {
                usage(format!(
                    "unknown --remote-tool {:?}: use auto, agent, tcpdump, tshark or dumpcap",
                    cli.remote_tool
                ))
            })?,
            interface: cli.iface.first().cloned().unwrap_or_else(|| "any".into()),
            interfaces: check_interfaces(&cli.iface)?,
            snaplen,
            buffer_kib: match cli.buffer_size {
                0 => return Err(usage("--buffer-size must be at least 1 (KiB)")),
                n => n,
            },
            direction: match cli.direction.as_deref() {
                None => Direction::InOut,
                Some(d) => Direction::parse(d).ok_or_else(|| {
                    usage(format!(
                        "unknown -Q/--direction {d:?}: use in, out or inout"
                    ))
                })?,
            },
            sudo: cli.sudo,
            agent: None,
            process: ProcessMode::Off,
        };
        let process_filter = process_filter(&cli)?;
        let process = process_mode(
            &cli,
            &process_filter,
            read.is_some(),
            kube_targets,
            capture.tool,
        )?;
        let capture = CaptureSettings {
            // The agent or nothing: the node-side wrapper does not fall back to tcpdump.
            tool: match process {
                ProcessMode::On => Tool::Agent,
                _ => capture.tool,
            },
            process,
            ..capture
        };
        let capture = CaptureSettings {
            agent: agent::for_tool(capture.tool).map_err(|e| match process {
                ProcessMode::On => usage(format!(
                    "--process needs kcap's capture agent on the node: {}",
                    e.trim_start_matches("--remote-tool agent: ")
                )),
                _ => usage(e),
            })?,
            ..capture
        };
        if cli.count == Some(0) {
            return Err(usage("--count must be at least 1"));
        }
        let duration = cli.duration.as_deref().map(parse_duration).transpose()?;
        let print = PrintSettings::from_cli(&cli)?;
        let records = crate::sink::records::RecordSettings::from_cli(&cli, print.is_some())?;
        let limits = FileLimits::from_cli(&cli)?;
        if read.is_some() && limits.any() {
            return Err(usage(
                "-C, -G, -W, --max-size and --flight-recorder are for captures, not for -r \
                 or --connect",
            ));
        }
        let serve = crate::serve::ServeSettings::from_cli(&cli)?;
        let output = match (&cli.output, &print) {
            (None, Some(_)) => None,
            (None, None) if records.is_some() => None,
            // A file read is printed; Wireshark and viewers may be all the user wants.
            (None, None) if cli.read.is_some() || cli.wireshark || serve.is_some() => None,
            _ => Some(resolve_output(
                cli.output.as_deref(),
                cli.format.as_deref(),
                limits.any(),
            )?),
        };
        limits.check_output(
            output.as_ref().is_some_and(Output::is_live),
            output.is_some(),
        )?;
        if print.is_some() && output.as_ref().is_some_and(Output::is_live) {
            return Err(usage(
                "--print writes lines on stdout, so the capture cannot go there too: \
                 give -o a file, or leave -o out",
            ));
        }
        // Only pcapng comments and --print lines carry a packet's process: a pcap
        // file alone would drop what --process asked for, silently.
        if cli.process.is_some()
            && print.is_none()
            && serve.is_none()
            && !cli.wireshark
            && output.as_ref().is_some_and(|o| o.format == Format::Pcap)
        {
            return Err(usage(
                "--process names each packet's process in its pcapng comment, and pcap has \
                 no comments: write pcapng (-o FILE.pcapng or --format pcapng), or add \
                 --print to see it",
            ));
        }
        let cooked_v1 = match cli.linktype.as_deref() {
            None => false,
            Some(t) if t.eq_ignore_ascii_case("LINUX_SLL") => true,
            Some(other) => {
                return Err(usage(format!(
                    "--linktype {other:?}: kcap can only rewrite LINUX_SLL2 as LINUX_SLL (for \
                     Wireshark before 3.0); other link types are the interface's own, pick \
                     them with --iface"
                )));
            }
        };
        let ssh = SshFlags::from_cli(&cli)?;
        let nodes = resolve_nodes(&cli, &ssh)?;
        let has_tokens = cli
            .filter
            .as_deref()
            .map(kcap_kube::filter_tokens::find)
            .transpose()
            .map_err(|e| usage(format!("--filter: {e}")))?
            .is_some_and(|t| !t.is_empty());
        let kube = (read.is_none() && (kube_targets || has_tokens))
            .then(|| resolve_kube(&cli, &ssh))
            .transpose()?;
        let verbosity = match (cli.quiet, cli.verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, 1) => Verbosity::Verbose,
            (false, _) => Verbosity::Debug,
        };
        let dry_run = match cli.dry_run.as_deref() {
            None => None,
            Some("" | "text") => Some(DryRun::Text),
            Some("json") => Some(DryRun::Json),
            Some(other) => {
                return Err(usage(format!(
                    "unknown --dry-run={other:?}: use --dry-run (text) or --dry-run=json"
                )));
            }
        };
        if cli.list_interfaces && (read.is_some() || dry_run.is_some() || cli.follow) {
            return Err(usage(
                "-D lists the targets' interfaces: not with -r, --dry-run or --follow",
            ));
        }
        let config = Config {
            read,
            nodes,
            kube,
            filter,
            capture,
            duration,
            count: cli.count,
            output,
            limits,
            cooked_v1,
            print,
            records,
            wireshark: cli.wireshark.then_some(crate::wireshark::Viewer::Launch),
            serve,
            verbosity,
            dry_run,
            list_interfaces: cli.list_interfaces,
            process_filter,
        };
        // Check the remote command line now: a hostile --iface or a NUL in --filter is a
        // usage error before anything connects.
        config
            .capture_command(config.filter.to_bpf())
            .to_shell()
            .map_err(|e| usage(e.to_string()))?;
        Ok(config)
    }

    /// The remote capture command for `filter` (the final BPF expression).
    pub fn capture_command(&self, filter: Option<String>) -> CaptureCommand {
        let c = &self.capture;
        CaptureCommand {
            tool: c.tool,
            interface: c.interface.clone(),
            snaplen: c.snaplen,
            buffer_kib: c.buffer_kib,
            count: self.count,
            direction: c.direction,
            filter,
            sudo: c.sudo,
            agent: c.agent.clone(),
            // Without the agent (`--process=auto`, none installed) nothing attributes.
            process: if c.agent.is_some() {
                c.process
            } else {
                ProcessMode::Off
            },
        }
    }
}

/// `--pid`, `--pname`, `--container-name`, `--container-id`, checked.
fn process_filter(cli: &Cli) -> Result<ProcessFilter, UsageError> {
    let pids = cli
        .pid
        .iter()
        .map(|p| {
            p.trim()
                .parse::<u32>()
                .map_err(|_| usage(format!("--pid {p:?} is not a process ID")))
        })
        .collect::<Result<_, _>>()?;
    for (flag, values) in [
        ("--pname", &cli.pname),
        ("--container-name", &cli.container_name),
    ] {
        if let Some(empty) = values
            .iter()
            .find(|v| v.trim().is_empty() || v.contains('\n'))
        {
            return Err(usage(format!("{flag} {empty:?} is not a name")));
        }
    }
    let container_ids = cli
        .container_id
        .iter()
        .map(|id| match id.trim() {
            hex if hex.len() >= 4 && hex.chars().all(|c| c.is_ascii_hexdigit()) => {
                Ok(hex.to_ascii_lowercase())
            }
            _ => Err(usage(format!(
                "--container-id {id:?}: give at least the first 4 hex digits of the container's ID"
            ))),
        })
        .collect::<Result<_, _>>()?;
    Ok(ProcessFilter {
        pids,
        names: cli.pname.clone(),
        container_names: cli.container_name.clone(),
        container_ids,
    })
}

/// `--process[=WHEN]`, or `on` when a process filter asks for it; refused where
/// kcap's agent does not capture (`-r`, `--connect`, another `--remote-tool`).
fn process_mode(
    cli: &Cli,
    filter: &ProcessFilter,
    reading: bool,
    pods: bool,
    tool: Tool,
) -> Result<ProcessMode, UsageError> {
    let mode = match cli.process.as_deref() {
        None if filter.is_empty() => return Ok(ProcessMode::Off),
        None => ProcessMode::On,
        Some(when) => match ProcessMode::parse(when) {
            Some(ProcessMode::Off) | None => {
                return Err(usage(format!(
                    "unknown --process={when:?}: use --process (on) or --process=auto"
                )));
            }
            Some(mode) => mode,
        },
    };
    let flag = match cli.process.as_deref() {
        Some(_) => "--process".to_string(),
        None => format!("{} (which implies --process)", filter.describe()),
    };
    if reading {
        return Err(usage(format!(
            "{flag} is for captures, not for -r or --connect: a file's packets keep the \
             process kcap wrote in their comments, and --print shows it"
        )));
    }
    if !matches!(tool, Tool::Auto | Tool::Agent) {
        return Err(usage(format!(
            "{flag} needs kcap's capture agent, not --remote-tool {}: use --remote-tool auto \
             or agent",
            tool.name()
        )));
    }
    if pods && let via @ ("exec" | "ephemeral") = cli.via.as_str() {
        return Err(usage(format!(
            "{flag} needs kcap's agent on the pod's node, which --via {via} does not reach: \
             use --via node or --via ssh (or leave --via auto, which then means node)"
        )));
    }
    Ok(mode)
}

/// Several `-i`: each a valid name, none twice, and `any` alone (it already holds
/// every interface: with another, that one's packets would be written twice).
fn check_interfaces(given: &[String]) -> Result<Vec<String>, UsageError> {
    if given.is_empty() {
        return Ok(vec!["any".into()]);
    }
    for (i, name) in given.iter().enumerate() {
        kcap_capture::command::validate_interface(name).map_err(|e| usage(e.to_string()))?;
        if given[..i].contains(name) {
            return Err(usage(format!("-i {name} is given twice")));
        }
    }
    if given.len() > 1 && given.iter().any(|n| n == "any") {
        return Err(usage(
            "-i any captures every interface already: give it alone, or name the interfaces",
        ));
    }
    Ok(given.to_vec())
}

fn parse_port(input: &str) -> Result<u16, UsageError> {
    match input.trim().parse::<u32>() {
        Ok(port @ 1..=65535) => Ok(port as u16),
        _ => Err(usage(format!(
            "--port {input:?} is not a port number (1-65535)"
        ))),
    }
}

/// `30s`, `5m`, `1h30m` (humantime), or plain seconds as in the design's `--duration 60`.
pub fn parse_duration(input: &str) -> Result<Duration, UsageError> {
    let trimmed = input.trim();
    let parsed = match trimmed.parse::<u64>() {
        Ok(seconds) => Ok(Duration::from_secs(seconds)),
        Err(_) => humantime::parse_duration(trimmed),
    };
    match parsed {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(usage("--duration must be longer than zero")),
        Err(e) => Err(usage(format!(
            "--duration {input:?} is not a duration ({e}): write e.g. 30s, 5m or 1h30m"
        ))),
    }
}

/// `templated`: the name is a template (rotation, flight recorder), expanded for
/// each file as it starts; otherwise strftime fields are filled in now.
fn resolve_output(
    path: Option<&Path>,
    format: Option<&str>,
    templated: bool,
) -> Result<Output, UsageError> {
    let explicit = match format {
        None => None,
        Some("pcap") => Some(Format::Pcap),
        Some("pcapng") => Some(Format::Pcapng),
        Some(other) => {
            return Err(usage(format!(
                "unknown --format {other:?}: use pcap or pcapng"
            )));
        }
    };
    let destination = match path {
        Some(p) if p == Path::new("-") => OutputDestination::Stdout,
        Some(p) => {
            if let Some(text) = p.to_str() {
                naming::check(text).map_err(usage)?;
            }
            if templated {
                OutputDestination::File(p.to_path_buf())
            } else {
                OutputDestination::File(naming::expand(p, naming::now_secs()))
            }
        }
        None => {
            let extension = if explicit == Some(Format::Pcap) {
                "pcap"
            } else {
                "pcapng"
            };
            let stamp = if templated {
                "%Y%m%d-%H%M%S".to_string()
            } else {
                crate::time::local_timestamp()
            };
            OutputDestination::File(PathBuf::from(format!("capture-{stamp}.{extension}")))
        }
    };
    let from_extension = match &destination {
        OutputDestination::File(p) => match p.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("pcap") => Some(Format::Pcap),
            Some(e) if e.eq_ignore_ascii_case("pcapng") => Some(Format::Pcapng),
            _ => None,
        },
        OutputDestination::Stdout => None,
    };
    let format = explicit.or(from_extension).unwrap_or(Format::Pcapng);
    Ok(Output {
        destination,
        format,
    })
}

/// The SSH flags that apply to every SSH connection (nodes and `--via ssh`), parsed once.
struct SshFlags {
    /// `--jump-host`: `None` leaves ssh_config's ProxyJump in force; `Some(empty)` is `none`.
    jump_hosts: Option<Vec<Destination>>,
    /// `-F`: `none` reads no file.
    ssh_config: Option<PathBuf>,
}

impl SshFlags {
    fn from_cli(cli: &Cli) -> Result<SshFlags, UsageError> {
        let jump_hosts = match cli.jump_host.as_deref() {
            None => None,
            Some("none") => Some(Vec::new()),
            Some(chain) => Some(
                Destination::parse_chain(chain).map_err(|e| usage(format!("--jump-host: {e}")))?,
            ),
        };
        let ssh_config = match cli.ssh_config.as_deref() {
            Some(p) if p == Path::new("none") => Some(PathBuf::from("/dev/null")),
            other => other.map(Path::to_path_buf),
        };
        Ok(SshFlags {
            jump_hosts,
            ssh_config,
        })
    }

    /// SSH settings for one host from the SSH flags.
    fn connect_options(&self, cli: &Cli, mut destination: Destination) -> ConnectOptions {
        if cli.ssh_user.is_some() && destination.user.is_none() {
            destination.user = cli.ssh_user.clone();
        }
        if cli.ssh_port.is_some() && destination.port.is_none() {
            destination.port = cli.ssh_port;
        }
        // Reads KCAP_SSH_PASSWORD, KCAP_SSH_KEY_PASSPHRASE and SSH_AUTH_SOCK.
        let mut connect = ConnectOptions::new(destination);
        connect.jump_hosts = self.jump_hosts.clone();
        connect.proxy_command = cli.proxy_command.clone();
        connect.identity_files = cli.ssh_keys.clone();
        connect.known_hosts_files = cli.known_hosts.clone();
        connect.accept_new_host_key = cli.accept_new_host_key;
        connect.ssh_config = self.ssh_config.clone();
        connect
    }
}

fn resolve_nodes(cli: &Cli, ssh: &SshFlags) -> Result<Vec<NodeTarget>, UsageError> {
    let mut nodes: Vec<NodeTarget> = Vec::new();
    for host in &cli.ssh_hosts {
        let destination =
            Destination::parse(host).map_err(|e| usage(format!("--ssh-host: {e}")))?;
        if nodes.iter().any(|n| n.label == destination.host) {
            return Err(usage(format!("--ssh-host {host} is given twice")));
        }
        nodes.push(NodeTarget {
            label: destination.host.clone(),
            connect: ssh.connect_options(cli, destination),
        });
    }
    Ok(nodes)
}

fn resolve_kube(cli: &Cli, ssh: &SshFlags) -> Result<KubeSettings, UsageError> {
    use kcap_kube::target::{Kind, Target, validate_name};
    let mut targets = Vec::new();
    for t in &cli.targets {
        targets.push(Target::parse(t).map_err(|e| usage(e.to_string()))?);
    }
    for p in &cli.pods {
        validate_name(p, "--pod").map_err(|e| usage(e.to_string()))?;
        targets.push(Target {
            kind: Kind::Pod,
            namespace: None,
            name: p.clone(),
        });
    }
    if let Some(ns) = cli.namespace.as_deref() {
        validate_name(ns, "--namespace").map_err(|e| usage(e.to_string()))?;
    }
    if let Some(c) = cli.container.as_deref() {
        // Container names are DNS labels: no dots either.
        validate_name(c, "--container").map_err(|e| usage(e.to_string()))?;
    }
    for (flag, value) in [
        ("--selector", &cli.selector),
        ("--node-selector", &cli.node_selector),
    ] {
        if let Some(sel) = value
            && (sel.is_empty() || sel.contains(['\n', '\0', '&', '?', '#']))
        {
            return Err(usage(format!("{flag} {sel:?} is not a label selector")));
        }
    }
    let all_nodes = |t: &Target| t.kind == Kind::Node && t.name == kcap_kube::target::ALL_NODES;
    if cli.node_selector.is_some() && !targets.iter().any(all_nodes) {
        if targets.is_empty() && cli.selector.is_none() {
            targets.push(Target {
                kind: Kind::Node,
                namespace: None,
                name: kcap_kube::target::ALL_NODES.into(),
            });
        } else {
            return Err(usage(
                "--node-selector chooses the nodes of node/all: name node/all, or no other target",
            ));
        }
    }
    let via = Via::parse(&cli.via).ok_or_else(|| {
        usage(format!(
            "unknown --via {:?}: use auto, exec, ephemeral, node or ssh",
            cli.via
        ))
    })?;
    use kcap_kube::methods::CapturePoint;
    let capture_point = CapturePoint::parse(&cli.capture_point).ok_or_else(|| {
        usage(format!(
            "unknown --capture-point {:?}: use netns or veth",
            cli.capture_point
        ))
    })?;
    if capture_point == CapturePoint::Veth
        && matches!(
            via,
            Via::Only(kcap_kube::Method::Exec | kcap_kube::Method::Ephemeral)
        )
    {
        return Err(usage(format!(
            "--capture-point veth captures from the pod's node, which --via {} does not reach: \
             use --via node or --via ssh (or leave --via auto, which then means node)",
            cli.via
        )));
    }
    if capture_point == CapturePoint::Veth && cli.iface.len() > 1 {
        return Err(usage(
            "--capture-point veth captures the pod's host-side veth, in place of -i: \
             give no -i (or one)",
        ));
    }
    if cli.image.is_empty() || cli.image.contains(char::is_whitespace) {
        return Err(usage(format!(
            "--image {:?} is not an image reference",
            cli.image
        )));
    }
    let placeholder = Destination::parse("node").expect("a valid destination");
    Ok(KubeSettings {
        client: kcap_kube::client::ClientOptions {
            kubeconfig: cli.kubeconfig.clone(),
            context: cli.context.clone(),
        },
        namespace: cli.namespace.clone(),
        all_namespaces: cli.all_namespaces,
        selector: cli.selector.clone(),
        node_selector: cli.node_selector.clone(),
        container: cli.container.clone(),
        targets,
        via,
        capture_point,
        image: cli.image.clone(),
        follow: cli.follow,
        annotate: !cli.no_annotate,
        ssh_template: ssh.connect_options(cli, placeholder),
    })
}

/// For tests: the configuration `kcap ARGS` makes (the syntax must be clap's).
#[cfg(test)]
pub(crate) fn from_args(args: &[&str]) -> Result<Config, UsageError> {
    use clap::Parser;
    let cli = Cli::try_parse_from(std::iter::once("kcap").chain(args.iter().copied()))
        .expect("clap accepts the syntax");
    Config::from_cli(cli)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Result<Config, UsageError> {
        from_args(args)
    }

    /// Every flag value kcap refuses, with the exact message: exit 2 before
    /// anything connects.
    #[test]
    fn bad_flag_values() {
        let node = ["--ssh-host", "node-a"];
        let cases: &[(&[&str], &str)] = &[
            (
                &["--port", "70000"],
                "--port \"70000\" is not a port number (1-65535)",
            ),
            (
                &["--port", "http"],
                "--port \"http\" is not a port number (1-65535)",
            ),
            (
                &["--protocol", "sctp"],
                "unknown --protocol \"sctp\": use tcp, udp or all",
            ),
            (&["--duration", "0"], "--duration must be longer than zero"),
            (
                &["--format", "csv"],
                "unknown --format \"csv\": use pcap or pcapng",
            ),
            (
                &["--remote-tool", "wireshark"],
                "unknown --remote-tool \"wireshark\": use auto, agent, tcpdump, tshark or dumpcap",
            ),
            (
                &["--snaplen", "300000"],
                "--snaplen 300000 is larger than 262144",
            ),
            (
                &["--buffer-size", "0"],
                "--buffer-size must be at least 1 (KiB)",
            ),
            (&["--count", "0"], "--count must be at least 1"),
            (
                &["-D", "--dry-run"],
                "-D lists the targets' interfaces: not with -r, --dry-run or --follow",
            ),
            (&["-i", "eth0", "-i", "eth0"], "-i eth0 is given twice"),
            (
                &["-i", "eth0", "-i", "any"],
                "-i any captures every interface already: give it alone, or name the interfaces",
            ),
            (
                &["-i", "lo", "-i", "eth0;id"],
                "invalid interface name \"eth0;id\": use letters, digits and . _ - : @ + (at most 15 characters), or `any`",
            ),
            (
                &["-i", "lo", "-i", "eth0", "--capture-point", "veth", "pod/x"],
                "--capture-point veth captures the pod's host-side veth, in place of -i: \
                 give no -i (or one)",
            ),
            (
                &["-Q", "both"],
                "unknown -Q/--direction \"both\": use in, out or inout",
            ),
            (
                &["--iface", "eth0;id"],
                "invalid interface name \"eth0;id\": use letters, digits and . _ - : @ + (at most 15 characters), or `any`",
            ),
            (
                &["--filter", "port 80\ntouch /x"],
                "--filter contains a line break; write the expression on one line",
            ),
            (
                &["--dry-run=yaml"],
                "unknown --dry-run=\"yaml\": use --dry-run (text) or --dry-run=json",
            ),
            (
                &["--ssh-host", "node-a"],
                "--ssh-host node-a is given twice",
            ),
            (
                &["--via", "magic", "pod/x"],
                "unknown --via \"magic\": use auto, exec, ephemeral, node or ssh",
            ),
            (
                &["--capture-point", "bridge", "pod/x"],
                "unknown --capture-point \"bridge\": use netns or veth",
            ),
            (
                &["--capture-point", "veth", "--via", "exec", "pod/x"],
                "--capture-point veth captures from the pod's node, which --via exec does not reach: \
                 use --via node or --via ssh (or leave --via auto, which then means node)",
            ),
            (
                &["--image", "a b", "pod/x"],
                "--image \"a b\" is not an image reference",
            ),
            (
                &["-l", "a=b&c", "pod/x"],
                "--selector \"a=b&c\" is not a label selector",
            ),
            (
                &["-C", "10", "-o", "-"],
                "-C, -G, -W, --max-size and --flight-recorder write files: they cannot \
                 rotate or limit -o - (stdout); give -o a file name",
            ),
            (
                &["-G", "1m", "--print"],
                "-C, -G, -W, --max-size and --flight-recorder shape the capture file: add -o FILE",
            ),
            (
                &["-C", "10", "-o", "cap-%q.pcap"],
                "-o \"cap-%q.pcap\": %q is not a time field kcap knows \
                 (%Y %y %m %d %H %M %S %s %F %T %%)",
            ),
            (
                &["-C", "1.5M"],
                "-C \"1.5M\" is not a size: a plain number is millions of bytes \
                 (as tcpdump's -C); or write e.g. 500k, 100M, 2G (KiB, MiB, GiB)",
            ),
        ];
        for (args, message) in cases {
            let all: Vec<&str> = node.iter().chain(args.iter()).copied().collect();
            match config(&all) {
                Err(e) => assert_eq!(e.to_string(), *message, "{args:?}"),
                Ok(_) => panic!("{args:?} was accepted"),
            }
        }
        let e = config(&["--print", "-o", "-", "--ssh-host", "n"])
            .err()
            .unwrap();
        assert!(
            e.to_string().starts_with("--print writes lines on stdout"),
            "{e}"
        );
        let e = config(&["-X", "--ssh-host", "n"]).err().unwrap();
        assert!(
            e.to_string()
                .ends_with("shape --print's lines: add --print"),
            "{e}"
        );
        let e = config(&["--print", "-x", "-X", "--ssh-host", "n"])
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "-x, -X and --ascii are one choice: give one of them"
        );
        let e = config(&["--linktype", "EN10MB", "--ssh-host", "n"])
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .starts_with("--linktype \"EN10MB\": kcap can only rewrite")
        );
        let e = config(&[]).err().unwrap();
        assert!(
            e.to_string()
                .starts_with("no target: name pods or workloads")
        );
        assert!(
            config(&["--duration", "soon", "--ssh-host", "n"])
                .err()
                .unwrap()
                .to_string()
                .starts_with("--duration \"soon\" is not a duration")
        );
    }

    #[test]
    fn good_flags_give_one_final_configuration() {
        let c = config(&[
            "--ssh-host",
            "root@node-a:2222",
            "-J",
            "ops@bastion",
            "-F",
            "none",
            "--port",
            "80",
            "--port",
            "443",
            "--protocol",
            "tcp",
            "-c",
            "5",
            "--dry-run",
        ])
        .unwrap();
        assert_eq!(c.dry_run, Some(DryRun::Text));
        assert_eq!(c.nodes.len(), 1);
        let connect = &c.nodes[0].connect;
        assert_eq!(c.nodes[0].label, "node-a");
        assert_eq!(connect.ssh_config.as_deref(), Some(Path::new("/dev/null")));
        assert_eq!(connect.jump_hosts.as_ref().unwrap()[0].host, "bastion");
        let command = c.capture_command(c.filter.to_bpf());
        assert_eq!(
            command.filter.as_deref(),
            Some("tcp and (port 80 or port 443)")
        );
        assert_eq!(command.count, Some(5));
        assert!(c.kube.is_none());
        assert!(c.print.is_none() && c.output.is_some());
        assert_eq!(c.capture.interfaces, ["any"]);
        let two = config(&["--ssh-host", "n", "-i", "eth0", "-i", "lo"]).unwrap();
        assert_eq!(two.capture.interfaces, ["eth0", "lo"]);
        assert_eq!(two.capture.interface, "eth0");
        // --print without -o writes no file; -ttt and -X shape its lines.
        let p = config(&["--ssh-host", "n", "--print", "-ttt", "-X", "--nano"]).unwrap();
        assert!(p.output.is_none());
        let print = p.print.unwrap();
        assert_eq!(
            (print.time, print.dump, print.nanos, print.names),
            (
                TimeFormat::Delta,
                Some(kcap_lines::Dump::HexAscii),
                true,
                true
            )
        );
        let k = config(&[
            "-n",
            "prod",
            "deploy/web",
            "--via",
            "node",
            "--dry-run=json",
        ])
        .unwrap();
        assert_eq!(k.dry_run, Some(DryRun::Json));
        let kube = k.kube.unwrap();
        assert_eq!(kube.via, Via::Only(kcap_kube::Method::Node));
        assert_eq!(kube.capture_point, kcap_kube::methods::CapturePoint::Netns);
        assert_eq!(kube.targets[0].to_string(), "deployment/web");
        let v = config(&["pod/web-0", "--capture-point", "veth"]).unwrap();
        let kube = v.kube.unwrap();
        assert_eq!(kube.capture_point, kcap_kube::methods::CapturePoint::Veth);
        assert_eq!(kube.via, Via::Auto);
        // Rotating without -o: every file's name gets its own start time.
        let r = config(&["--ssh-host", "n", "-G", "60", "-W", "5"]).unwrap();
        assert_eq!(
            r.output.unwrap().file_path(),
            Some(Path::new("capture-%Y%m%d-%H%M%S.pcapng"))
        );
        assert_eq!(r.limits.rotation.unwrap().ring, Some(5));
        // Without rotation, strftime fields of -o are filled in at once.
        let plain = config(&["--ssh-host", "n", "-o", "x-%Y.pcap"]).unwrap();
        let name = plain
            .output
            .unwrap()
            .file_path()
            .unwrap()
            .display()
            .to_string();
        assert!(!name.contains('%') && name.ends_with(".pcap"), "{name}");
        // Pod tokens in --filter alone need the API.
        let t = config(&["--ssh-host", "n", "--filter", "pod/web-0"]).unwrap();
        assert!(t.kube.is_some());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("443").unwrap(), 443);
        assert!(parse_port("0").is_err());
        assert!(parse_port("65536").is_err());
        assert!(parse_port("http").is_err());
    }

    #[test]
    fn output_format_follows_extension() {
        let out = resolve_output(Some(Path::new("x.pcap")), None, false).unwrap();
        assert_eq!(out.format, Format::Pcap);
        let out = resolve_output(Some(Path::new("x.PCAPNG")), None, false).unwrap();
        assert_eq!(out.format, Format::Pcapng);
        let out = resolve_output(Some(Path::new("-")), None, false).unwrap();
        assert_eq!(
            (out.destination, out.format),
            (OutputDestination::Stdout, Format::Pcapng)
        );
        let out = resolve_output(Some(Path::new("x.cap")), Some("pcap"), false).unwrap();
        assert_eq!(out.format, Format::Pcap);
        let out = resolve_output(None, None, false).unwrap();
        let OutputDestination::File(p) = out.destination else {
            panic!()
        };
        assert!(
            p.to_str().unwrap().starts_with("capture-") && p.to_str().unwrap().ends_with(".pcapng")
        );
    }

    /// `--process` and the process filters: what each makes, and each refusal.
    #[test]
    fn process_flags() {
        let node = ["--ssh-host", "node-a"];
        let with = |args: &[&str]| config(&[&node[..], args].concat());
        let refused = |args: &[&str]| match with(args) {
            Ok(_) => panic!("{args:?} accepted"),
            Err(e) => e.0,
        };
        let plain = with(&[]).unwrap();
        assert_eq!(plain.capture.process, ProcessMode::Off);
        assert!(plain.process_filter.is_empty());
        // `auto` keeps the tool; without an agent here, nothing attributes.
        let auto = with(&["--process=auto"]).unwrap();
        assert_eq!(
            (auto.capture.process, auto.capture.tool),
            (ProcessMode::Auto, Tool::Auto)
        );
        // `on` (bare, or implied by a filter) wants the agent: the test binary has
        // none next to it (unless KCAP_AGENT names one).
        let bare = ["--process"];
        let implied = ["--pname", "curl"];
        match agent::for_tool(Tool::Agent) {
            Err(_) => {
                assert_eq!(auto.capture_command(None).process, ProcessMode::Off);
                for args in [&bare[..], &implied, &["--process=on"]] {
                    let e = refused(args);
                    assert!(
                        e.starts_with(
                            "--process needs kcap's capture agent on the node: cannot read"
                        ),
                        "{e}"
                    );
                }
            }
            Ok(_) => {
                assert_eq!(auto.capture_command(None).process, ProcessMode::Auto);
                for args in [&bare[..], &implied] {
                    let on = with(args).unwrap();
                    assert_eq!(
                        (on.capture.process, on.capture.tool),
                        (ProcessMode::On, Tool::Agent)
                    );
                    assert_eq!(on.capture_command(None).process, ProcessMode::On);
                }
            }
        }
        let cases: &[(&[&str], &str)] = &[
            (
                &["--process=always"],
                "unknown --process=\"always\": use --process (on) or --process=auto",
            ),
            (
                &["--process=auto", "--remote-tool", "tcpdump"],
                "--process needs kcap's capture agent, not --remote-tool tcpdump: use \
                 --remote-tool auto or agent",
            ),
            (
                &["--pid", "42", "--remote-tool", "tshark"],
                "--pid 42 (which implies --process) needs kcap's capture agent, not \
                 --remote-tool tshark: use --remote-tool auto or agent",
            ),
            (
                &["--process=auto", "-o", "x.pcap"],
                "--process names each packet's process in its pcapng comment, and pcap has \
                 no comments: write pcapng (-o FILE.pcapng or --format pcapng), or add \
                 --print to see it",
            ),
            (&["--pid", "x"], "--pid \"x\" is not a process ID"),
            (&["--pname", ""], "--pname \"\" is not a name"),
            (
                &["--container-id", "3f2"],
                "--container-id \"3f2\": give at least the first 4 hex digits of the \
                 container's ID",
            ),
            (
                &["--container-id", "xyzw"],
                "--container-id \"xyzw\": give at least the first 4 hex digits of the \
                 container's ID",
            ),
        ];
        for (args, want) in cases {
            assert_eq!(refused(args), *want, "{args:?}");
        }
        // pcap with the process shown elsewhere, or pcapng: accepted.
        assert!(with(&["--process=auto", "-o", "x.pcap", "--print"]).is_ok());
        assert!(with(&["--process=auto", "-o", "x.pcapng"]).is_ok());
        for via in ["exec", "ephemeral"] {
            assert_eq!(
                config(&["pod/web-0", "--via", via, "--process=auto"])
                    .unwrap_err()
                    .0,
                format!(
                    "--process needs kcap's agent on the pod's node, which --via {via} does not \
                     reach: use --via node or --via ssh (or leave --via auto, which then means node)"
                )
            );
        }
        config(&["pod/web-0", "--via", "node", "--process=auto"]).unwrap();
        config(&["node/n1", "--process=auto"]).unwrap();
        for read in [&["-r", "x.pcapng"][..], &["--connect", "ws://h:9090/ws"]] {
            let e = config(&[read, &["--process=auto"][..]].concat())
                .unwrap_err()
                .0;
            assert!(
                e.starts_with("--process is for captures, not for -r or --connect"),
                "{e}"
            );
        }
    }

    #[test]
    fn process_filters_are_kept_as_given() {
        let c = config(&[
            "--ssh-host",
            "node-a",
            "--process=auto",
            "--pid",
            "42",
            "--pid",
            "7",
            "--pname",
            "curl",
            "--container-name",
            "web",
            "--container-id",
            "3F2A9c",
        ])
        .unwrap();
        assert_eq!(
            c.process_filter,
            ProcessFilter {
                pids: vec![42, 7],
                names: vec!["curl".into()],
                container_names: vec!["web".into()],
                container_ids: vec!["3f2a9c".into()],
            }
        );
        assert_eq!(c.capture.process, ProcessMode::Auto);
    }
}
