//! The command line as typed: raw flags, parsed by clap. Nothing here is validated
//! beyond syntax; [`crate::config`] turns it into a checked configuration.

use std::path::PathBuf;

use clap::{ArgAction, CommandFactory, FromArgMatches, Parser};

/// Capture packets on Kubernetes pods, workloads and nodes (through the Kubernetes
/// API, or over SSH) and hand them to Wireshark.
///
/// The capture runs remotely (tcpdump, or tshark/dumpcap when tcpdump is missing), the
/// packets stream home and are written as pcapng (default) or pcap, or streamed to
/// stdout with `-o -` for `wireshark -k -i -`. Every pod is one interface of the file.
#[derive(Debug, Parser)]
#[command(name = "kcap", version = VERSION, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    /// Kubernetes targets as TYPE/NAME: pod/NAME, deploy/NAME, rs/NAME, sts/NAME,
    /// ds/NAME, job/NAME, svc/NAME (every pod behind it), node/NAME. Several may be given.
    #[arg(value_name = "TYPE/NAME", help_heading = "Target (Kubernetes)")]
    pub targets: Vec<String>,

    /// A pod to capture (repeatable); the same as pod/NAME.
    #[arg(
        long = "pod",
        value_name = "NAME",
        help_heading = "Target (Kubernetes)"
    )]
    pub pods: Vec<String>,

    /// Container whose network to capture (default: the pod's default container).
    /// There is no -c: kcap's -c is --count.
    #[arg(long, value_name = "NAME", help_heading = "Target (Kubernetes)")]
    pub container: Option<String>,

    /// Namespace of the targets (default: the kubeconfig context's namespace).
    #[arg(
        long,
        short = 'n',
        value_name = "NS",
        help_heading = "Target (Kubernetes)"
    )]
    pub namespace: Option<String>,

    /// Look for targets in every namespace.
    #[arg(
        long,
        short = 'A',
        conflicts_with = "namespace",
        help_heading = "Target (Kubernetes)"
    )]
    pub all_namespaces: bool,

    /// Capture every pod matching this label selector (e.g. app=web,tier!=db).
    #[arg(
        long,
        short = 'l',
        value_name = "SELECTOR",
        help_heading = "Target (Kubernetes)"
    )]
    pub selector: Option<String>,

    /// With node/all (implied when no other target is named): only the nodes
    /// matching this label selector (e.g. node-role.kubernetes.io/worker).
    #[arg(long, value_name = "SELECTOR", help_heading = "Target (Kubernetes)")]
    pub node_selector: Option<String>,

    /// kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "PATH", help_heading = "Target (Kubernetes)")]
    pub kubeconfig: Option<PathBuf>,

    /// kubeconfig context to use (default: the current context).
    #[arg(long, value_name = "NAME", help_heading = "Target (Kubernetes)")]
    pub context: Option<String>,

    /// How to reach a pod's network: auto (exec, else ephemeral, else node), exec
    /// (tcpdump in the container), ephemeral (a debug container; it stays in the pod
    /// spec), node (a privileged helper pod on the pod's node, deleted afterwards),
    /// ssh (SSH to the pod's node with the SSH flags below).
    #[arg(
        long,
        value_name = "METHOD",
        default_value = "auto",
        help_heading = "Target (Kubernetes)"
    )]
    pub via: String,

    /// Where --via node and --via ssh capture a pod: netns (inside the pod's network
    /// namespace, found by crictl, else by the pod's IP in the process table, else
    /// by the container's cgroup) or veth (the pod's host-side interface in the
    /// node's namespace, found by the pod's IP; replaces --iface; needs only tcpdump
    /// and ip on the node).
    #[arg(
        long,
        value_name = "POINT",
        default_value = "netns",
        help_heading = "Target (Kubernetes)"
    )]
    pub capture_point: String,

    /// Image of ephemeral and helper containers (needs sh and tcpdump; for --via node
    /// also nsenter and ip).
    #[arg(long, value_name = "IMAGE", default_value = kcap_kube::methods::DEFAULT_IMAGE, help_heading = "Target (Kubernetes)")]
    pub image: String,

    /// Keep watching the targets' selectors and capture pods that appear later, and
    /// pods again after they restarted (a node reboot, a crash) or the API came back.
    #[arg(long, help_heading = "Target (Kubernetes)")]
    pub follow: bool,

    /// No per-packet comments naming pod, namespace and node.
    #[arg(long, help_heading = "Output")]
    pub no_annotate: bool,

    /// Node to capture on: a host name, address or ~/.ssh/config alias; also
    /// `user@host:port`. Repeat to capture several nodes at once into one file.
    #[arg(long = "ssh-host", value_name = "HOST", help_heading = "Target (SSH)")]
    pub ssh_hosts: Vec<String>,

    /// User to log in as (default: ssh_config `User`, else the local user).
    #[arg(long, value_name = "USER", help_heading = "Target (SSH)")]
    pub ssh_user: Option<String>,

    /// SSH port (default: ssh_config `Port`, else 22).
    #[arg(long, value_name = "PORT", help_heading = "Target (SSH)")]
    pub ssh_port: Option<u16>,

    /// Jump host(s) as OpenSSH's -J takes them: `[user@]host[:port]`, comma-separated
    /// for a chain. `none` ignores ProxyJump from ssh_config.
    #[arg(
        long,
        short = 'J',
        value_name = "[USER@]HOST[:PORT],...",
        help_heading = "Target (SSH)"
    )]
    pub jump_host: Option<String>,

    /// Reach the node through this local command, like OpenSSH's ProxyCommand: run
    /// with `$SHELL -c`, `%h %p %r %n %%` expanded, SSH over its stdin/stdout
    /// (e.g. `ssh -W %h:%p bastion`). Beats ssh_config; `none` connects directly.
    #[arg(
        long,
        value_name = "CMD",
        conflicts_with = "jump_host",
        help_heading = "Target (SSH)"
    )]
    pub proxy_command: Option<String>,

    /// Private key file to try (repeatable); tried before ssh_config's IdentityFile.
    #[arg(long = "ssh-key", value_name = "PATH", help_heading = "Target (SSH)")]
    pub ssh_keys: Vec<PathBuf>,

    /// ssh_config file to read instead of ~/.ssh/config (like `ssh -F`); `none` reads none.
    #[arg(long, short = 'F', value_name = "PATH", help_heading = "Target (SSH)")]
    pub ssh_config: Option<PathBuf>,

    /// known_hosts file to verify host keys against (repeatable; default: ssh_config's
    /// UserKnownHostsFile, else ~/.ssh/known_hosts).
    #[arg(
        long = "known-hosts",
        value_name = "PATH",
        help_heading = "Target (SSH)"
    )]
    pub known_hosts: Vec<PathBuf>,

    /// Trust a host key seen for the first time and record it in known_hosts
    /// (OpenSSH's StrictHostKeyChecking=accept-new). A changed key is still refused.
    #[arg(long, help_heading = "Target (SSH)")]
    pub accept_new_host_key: bool,

    /// Run the remote capture through `sudo -n` (never prompts; needs NOPASSWD).
    #[arg(long, help_heading = "Target (SSH)")]
    pub sudo: bool,

    /// Interface to capture on. Repeat it to capture several interfaces of each
    /// target (`-i eth0 -i lo`): one interface each in the file, merged in time
    /// order (tcpdump takes one -i; this is several tcpdumps at once).
    #[arg(
        long,
        short = 'i',
        value_name = "IFACE",
        default_value = "any",
        help_heading = "Capture"
    )]
    pub iface: Vec<String>,

    /// List the interfaces of each target, as tcpdump -D does (index, name, flags;
    /// each line prefixed by the target), and exit. It runs where a capture would:
    /// over SSH, in the pod (--via exec) or its network namespace from the node's
    /// helper pod (--via node, deleted after) or over SSH (--via ssh); the names
    /// are what -i takes there. Not through ephemeral containers unless --via
    /// ephemeral (they stay in the pod).
    #[arg(long, short = 'D', help_heading = "Capture")]
    pub list_interfaces: bool,

    /// Keep only packets going this way (tcpdump's -Q): in (received), out (sent)
    /// or inout (both, the default). tshark and dumpcap, which have no -Q, get
    /// libpcap's `inbound`/`outbound` joined to the filter instead.
    #[arg(
        long,
        short = 'Q',
        value_name = "in|out|inout",
        help_heading = "Capture"
    )]
    pub direction: Option<String>,

    /// Keep only traffic on this port (repeatable: any of them).
    #[arg(long = "port", value_name = "PORT", help_heading = "Capture")]
    pub ports: Vec<String>,

    /// Keep only this transport: tcp, udp or all.
    #[arg(
        long,
        value_name = "PROTO",
        default_value = "all",
        help_heading = "Capture"
    )]
    pub protocol: String,

    /// Your own BPF expression (tcpdump syntax), joined with --port/--protocol as
    /// `(generated) and (yours)`.
    #[arg(long, short = 'f', value_name = "EXPR", help_heading = "Capture")]
    pub filter: Option<String>,

    /// Bytes kept per packet (default: whole packets).
    #[arg(long, short = 's', value_name = "BYTES", help_heading = "Capture")]
    pub snaplen: Option<u32>,

    /// Kernel capture buffer on the remote side, in KiB (tcpdump's -B). Raise it, or
    /// lower --snaplen, if the summary reports packets dropped by kernel.
    #[arg(
        long,
        short = 'B',
        value_name = "KiB",
        default_value_t = kcap_capture::command::DEFAULT_BUFFER_KIB,
        help_heading = "Capture"
    )]
    pub buffer_size: u32,

    /// Capture tool on the node: auto (tcpdump, else tshark, else dumpcap), tcpdump,
    /// tshark or dumpcap.
    #[arg(
        long,
        value_name = "TOOL",
        default_value = "auto",
        help_heading = "Capture"
    )]
    pub remote_tool: String,

    /// Name each packet's process (PID, command, parent, container), found by kcap's
    /// agent with eBPF on the node: in the file's packet comments and in --print lines.
    /// `on` (the default when given bare) fails where the node cannot (needs root or
    /// CAP_BPF and CAP_PERFMON, and BTF); `auto` captures without processes there.
    /// Node targets, and pods --via node or ssh.
    #[arg(
        long,
        value_name = "WHEN",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "on",
        help_heading = "Process"
    )]
    pub process: Option<String>,

    /// Keep only the packets of process PID (repeatable: any of them). Implies --process.
    #[arg(long, value_name = "PID", help_heading = "Process")]
    pub pid: Vec<String>,

    /// Keep only the packets of processes named NAME: the executable's file name, or
    /// its first 15 bytes (the kernel's comm). Repeatable; implies --process.
    #[arg(long, value_name = "NAME", help_heading = "Process")]
    pub pname: Vec<String>,

    /// Keep only the packets of processes in container NAME (as Kubernetes names it).
    /// Repeatable; implies --process.
    #[arg(long, value_name = "NAME", help_heading = "Process")]
    pub container_name: Vec<String>,

    /// Keep only the packets of processes in the container whose ID starts with ID
    /// (at least 4 hex digits). Repeatable; implies --process.
    #[arg(long, value_name = "ID", help_heading = "Process")]
    pub container_id: Vec<String>,

    /// Capture this long: `30s`, `5m`, `1h30m`, or plain seconds. Counts from the
    /// moment every target is capturing, so slow starters get the whole time.
    #[arg(long, short = 'd', value_name = "DURATION", help_heading = "Stop")]
    pub duration: Option<String>,

    /// Stop after writing this many packets (all nodes together).
    #[arg(long, short = 'c', value_name = "N", help_heading = "Stop")]
    pub count: Option<u64>,

    /// Stop once the files written reach SIZE in total (same units as -C; with -W the
    /// deleted files count too).
    #[arg(long, value_name = "SIZE", help_heading = "Stop")]
    pub max_size: Option<String>,

    /// Start a new file once the current one reaches SIZE. A plain number is millions
    /// of bytes, as tcpdump's -C; 10k, 100M, 1G are KiB, MiB, GiB. Files are numbered
    /// (cap.pcapng: cap-00001.pcapng, cap-00002.pcapng, ...).
    #[arg(
        long = "rotate-size",
        short = 'C',
        value_name = "SIZE",
        help_heading = "Rotation"
    )]
    pub rotate_size: Option<String>,

    /// Start a new file every SECONDS (or `10m`, `1h`), counted from a file's first
    /// packet; the next file starts with the first packet after that. strftime fields
    /// in -o (%Y %m %d %H %M %S ...) take each file's start time.
    #[arg(
        long = "rotate-every",
        short = 'G',
        value_name = "SECONDS",
        help_heading = "Rotation"
    )]
    pub rotate_every: Option<String>,

    /// With -C or -G: keep only the last COUNT files, deleting the oldest, for as long as
    /// the capture runs (tcpdump's -G -W would exit after COUNT files).
    #[arg(
        long = "ring",
        short = 'W',
        value_name = "COUNT",
        help_heading = "Rotation"
    )]
    pub ring: Option<u64>,

    /// Keep only the last DURATION of packets (by packet time) in memory and write them
    /// to -o when kcap stops (Ctrl-C, SIGTERM, --duration, --count).
    #[arg(long, value_name = "DURATION", help_heading = "Rotation")]
    pub flight_recorder: Option<String>,

    /// Memory the flight recorder may hold (default 64M); the oldest packets beyond it
    /// are dropped and counted in the summary.
    #[arg(long, value_name = "SIZE", help_heading = "Rotation")]
    pub flight_recorder_size: Option<String>,

    /// Where to write: a file, or `-` for stdout (`kcap ... -o - | wireshark -k -i -`).
    /// Default: capture-YYYYMMDD-HHMMSS.pcapng in the current directory.
    #[arg(long, short = 'o', value_name = "PATH", help_heading = "Output")]
    pub output: Option<PathBuf>,

    /// Start Wireshark on the live capture (`wireshark -k -i -`, found on PATH, else
    /// in /Applications/Wireshark.app; $KCAP_WIRESHARK names another). With -o the
    /// file is written too; without it, no file. Closing Wireshark ends the capture
    /// (exit 0). To pick pods inside Wireshark instead: `kcap extcap install`.
    #[arg(long, help_heading = "Output")]
    pub wireshark: bool,

    /// Serve the live capture at ADDR (`127.0.0.1:9090`, `:9090` for every address)
    /// while it runs, with -o or without a file: `GET /capture.pcapng` (chunked HTTP,
    /// for `curl -sN URL | wireshark -k -i -`), `/ws` (WebSocket), `/status` (JSON),
    /// `/`. Any number of viewers, joining at any time.
    #[arg(long, value_name = "ADDR", help_heading = "Serving")]
    pub serve: Option<String>,

    /// The token viewers must give (`Authorization: Bearer TOKEN` or `?token=TOKEN`);
    /// required off loopback, where kcap generates one and prints it when not given.
    /// With --connect: the token sent to the server.
    #[arg(long, value_name = "TOKEN", help_heading = "Serving")]
    pub serve_token: Option<String>,

    /// With --serve: serve HTTPS and WSS with this certificate chain (PEM).
    #[arg(
        long,
        value_name = "FILE",
        requires = "serve_key",
        help_heading = "Serving"
    )]
    pub serve_cert: Option<PathBuf>,

    /// With --serve-cert: its private key (PEM).
    #[arg(
        long,
        value_name = "FILE",
        requires = "serve_cert",
        help_heading = "Serving"
    )]
    pub serve_key: Option<PathBuf>,

    /// With --serve: how far one viewer may fall behind before it is cut off
    /// (default 8M); the capture and the other viewers never wait for it.
    #[arg(long, value_name = "SIZE", help_heading = "Serving")]
    pub serve_buffer: Option<String>,

    /// Be a viewer of a capture another kcap serves (http://HOST:PORT/capture.pcapng,
    /// ws://HOST:PORT/ws, https://, wss://) and write it as a capture of its own:
    /// -o, --print, --wireshark.
    #[arg(long, value_name = "URL", help_heading = "Serving")]
    pub connect: Option<String>,

    /// With --connect to https:// or wss://: a CA certificate (PEM) to trust besides
    /// the system's.
    #[arg(long, value_name = "FILE", help_heading = "Serving")]
    pub connect_ca: Option<PathBuf>,

    /// pcap or pcapng (default: from the file extension, else pcapng).
    #[arg(long, value_name = "FORMAT", help_heading = "Output")]
    pub format: Option<String>,

    /// LINUX_SLL: write `-i any` captures with v1 cooked headers (LINUX_SLL) instead
    /// of v2 (LINUX_SLL2), for Wireshark older than 3.0 and other old readers.
    #[arg(long, short = 'y', value_name = "LINKTYPE", help_heading = "Output")]
    pub linktype: Option<String>,

    /// Read a pcap or pcapng file (`-` for stdin) instead of capturing: print it as
    /// --print does (kcap's interface descriptions on stderr), or rewrite it with -o
    /// (pcap <-> pcapng). TYPE/NAME targets (pod/NAME, node/NAME) and --pod select
    /// interfaces of a kcap file; -c stops early.
    #[arg(long, short = 'r', value_name = "FILE", help_heading = "Lines")]
    pub read: Option<PathBuf>,

    /// Print one line per packet on stdout, like tcpdump (time, capture point, then
    /// tcpdump's `-n` text, addresses followed by pod, service or node names). With
    /// -o the file is written too; without it, no file.
    #[arg(long, help_heading = "Lines")]
    pub print: bool,

    /// One JSON line per HTTP/1.x request and response (any port, by content), with
    /// pod, service or node names on both ends, on stdout (or --http-out). With -o
    /// the file is written too; without it, no file.
    #[arg(long, help_heading = "Records")]
    pub http: bool,

    /// One JSON line per DNS query and answer (UDP and TCP ports 53 and 5353, and
    /// --dns-port).
    #[arg(long, help_heading = "Records")]
    pub dns: bool,

    /// Write the --http/--dns records to FILE instead of stdout.
    #[arg(long, value_name = "FILE", help_heading = "Records")]
    pub http_out: Option<PathBuf>,

    /// With --http: keep the first BYTES of each body in the record (default 0).
    #[arg(long, value_name = "BYTES", help_heading = "Records")]
    pub http_body: Option<usize>,

    /// With --dns: port PORT carries DNS too, UDP or TCP (repeatable).
    #[arg(long, value_name = "PORT", help_heading = "Records")]
    pub dns_port: Vec<u16>,

    /// With --http/--dns: also POST every record as JSON to URL (http:// or https://),
    /// retried with backoff on errors, 429 and 5xx; the capture never waits for it.
    /// Records it could not deliver are counted and end kcap with exit code 17.
    #[arg(long, value_name = "URL", help_heading = "Records")]
    pub callback: Option<String>,

    /// With --callback: N records per POST, as a JSON array (default 1: one object).
    #[arg(long, value_name = "N", help_heading = "Records")]
    pub callback_batch: Option<usize>,

    /// With --callback: a CA certificate (PEM) to trust besides the system's.
    #[arg(long, value_name = "FILE", help_heading = "Records")]
    pub callback_ca: Option<PathBuf>,

    /// With --callback: how long kcap waits at the end for the queued records to be
    /// delivered (default 30s).
    #[arg(long, value_name = "DURATION", help_heading = "Records")]
    pub callback_drain: Option<String>,

    /// At exit, a table per pod on stderr: HTTP requests it served by status class,
    /// those with no response, p50/p99 latency; DNS queries it made, NXDOMAIN,
    /// SERVFAIL, other errors, no answer; TCP connections to it reset or never
    /// answered (SYN without SYN-ACK). Decodes HTTP and DNS (records printed only
    /// with --http/--dns). `--summary=json`: the same as one JSON object on stdout.
    #[arg(
        long,
        value_name = "FORMAT",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "text",
        help_heading = "Records"
    )]
    pub summary: Option<String>,

    /// With --print: each packet's bytes in hex after its line (tcpdump's -x).
    #[arg(short = 'x', action = ArgAction::Count, help_heading = "Lines")]
    pub hex: u8,

    /// With --print: hex and ASCII (tcpdump's -X).
    #[arg(short = 'X', help_heading = "Lines")]
    pub hex_ascii: bool,

    /// With --print: the bytes as ASCII (tcpdump's -A; kcap's -A is --all-namespaces).
    #[arg(long, help_heading = "Lines")]
    pub ascii: bool,

    /// With --print: the time as tcpdump's -t (none), -tt (epoch seconds), -ttt (since
    /// the previous packet), -tttt (date and time), -ttttt (since the first packet).
    #[arg(short = 't', action = ArgAction::Count, help_heading = "Lines")]
    pub time: u8,

    /// With --print: nanoseconds in the time.
    #[arg(long, conflicts_with = "micro", help_heading = "Lines")]
    pub nano: bool,

    /// With --print: microseconds in the time (the default).
    #[arg(long, help_heading = "Lines")]
    pub micro: bool,

    /// With --print: addresses as numbers only, no pod, service or node names
    /// (the text is then tcpdump -n's).
    #[arg(long, help_heading = "Lines")]
    pub no_names: bool,

    /// Resolve every target, check permissions and admission, print the plan (the
    /// method each pod would use and why, the remote command line, the final filter)
    /// and exit, starting nothing: no capture, no helper pod, no debug container, no
    /// exec. `--dry-run=json` prints the same plan as JSON for scripts.
    #[arg(
        long,
        value_name = "FORMAT",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "text",
        help_heading = "Output"
    )]
    pub dry_run: Option<String>,

    /// More detail on stderr (-v, -vv).
    #[arg(long, short = 'v', action = ArgAction::Count, help_heading = "Output")]
    pub verbose: u8,

    /// Only errors on stderr: no progress and no summary.
    #[arg(long, short = 'q', conflicts_with = "verbose", help_heading = "Output")]
    pub quiet: bool,

    /// Print the settings a config file (~/.config/kcap/config.toml, or
    /// $KCAP_CONFIG) or KCAP_* variables can set, each with its value and where it
    /// came from, and exit.
    #[arg(long, help_heading = "Output")]
    pub print_config: bool,
}

/// The name kcap has as a kubectl plugin: installed as `kubectl-kcap` on PATH,
/// `kubectl kcap ARGS` runs it with the same flags (kubectl passes ARGS and the
/// environment, `KUBECONFIG` included, through unchanged).
pub const PLUGIN_EXE: &str = "kubectl-kcap";

/// Parses argv (exiting with clap's usage error, exit 2, or help/version). Called
/// as `kubectl-kcap`, help and usage say `kubectl kcap`, as the user typed it.
pub fn parse(args: &[String]) -> Cli {
    let defaults = match crate::defaults::Defaults::load() {
        Ok(defaults) => defaults,
        Err(e) => {
            let hint = "fix it, or run with KCAP_CONFIG=/dev/null to ignore it";
            eprintln!("kcap: error: {}\n  hint: {hint}", crate::exit::chain(&e));
            std::process::exit(crate::exit::Exit::Usage as i32);
        }
    };
    let mut command = defaults.apply(Cli::command());
    if invoked_as_plugin(args) {
        command = command
            .bin_name("kubectl kcap")
            .display_name("kubectl kcap")
            .after_help(AFTER_HELP.replace("\n  kcap ", "\n  kubectl kcap "));
    }
    let matches = command.clone().get_matches_from(args);
    if matches.get_flag("print_config") {
        print!("{}", defaults.describe(&command, &matches));
        std::process::exit(0);
    }
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Parses argv built by kcap itself (the extcap capture's), with the team's
/// defaults applied as for a typed command line; errors come back as text.
pub fn try_parse_with_defaults(args: &[String]) -> Result<Cli, String> {
    let defaults = crate::defaults::Defaults::load().map_err(|e| crate::exit::chain(&e))?;
    let matches = defaults
        .apply(Cli::command())
        .try_get_matches_from(args)
        .map_err(|e| e.to_string())?;
    Cli::from_arg_matches(&matches).map_err(|e| e.to_string())
}

/// Whether argv[0] is the plugin's file name (kubectl runs it by its full path).
pub fn invoked_as_plugin(args: &[String]) -> bool {
    args.first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .is_some_and(|name| name == PLUGIN_EXE)
}

/// `kcap --version`: the version, the git commit it was built from and the build
/// date (UTC), both from build.rs.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("KCAP_GIT_COMMIT"),
    ", built ",
    env!("KCAP_BUILD_DATE"),
    ")"
);

const AFTER_HELP: &str = "\
Examples:
  kcap --namespace prod --pod orders-6c9f --port 8080 --output orders.pcap
  kcap -n prod deploy/orders --port 8080                    # every pod of the deployment, one file
  kcap -n prod -l app=orders --follow -o - | wireshark -k -i -
  kcap -n prod -l app=orders --wireshark                    # Wireshark opens on the live capture
  kcap -n prod deploy/orders --serve 127.0.0.1:9090 -o orders.pcapng   # viewers: curl -sN .../capture.pcapng
  kcap --connect ws://jumpbox:9090/ws --wireshark           # a viewer of another kcap's capture
  kcap -A svc/payments --via node
  kcap -n prod pod/orders-6c9f --filter 'pod/payments-0 and tcp[tcpflags] & tcp-rst != 0'
  kcap node/worker-2 --iface eth0 --duration 30s
  kcap node/worker-2 -i eth0 -i cni0 -Q in -o in.pcapng       # two interfaces, received only (tcpdump -Q)
  kcap node/worker-2 -D                                         # its interfaces, as tcpdump -D
  kcap -n prod deploy/orders --port 8080 --dry-run          # what kcap would do, touching nothing
  kcap --ssh-user root --ssh-host 198.51.100.10 --port 443 --protocol tcp --output https.pcap
  kcap --ssh-host node-a --ssh-host node-b --port 53 --protocol udp --duration 60s
  kcap -n prod deploy/orders -C 100M -W 10 -o orders.pcapng      # a ring of the last 10 files
  kcap --ssh-host node-a -G 1h -o 'node-a-%Y%m%d-%H%M%S.pcapng'   # one file an hour
  kcap -n prod deploy/orders --flight-recorder 5m -o incident.pcapng   # the last 5 min, at Ctrl-C
  kcap --ssh-host 198.51.100.10 --jump-host ops@bastion:2222 --filter 'host 10.0.0.5' -o - | wireshark -k -i -

Shell completions, the man page and Wireshark's extcap (only as the first word):
  kcap completions bash|zsh|fish       kcap man | man -l -
  kcap extcap install|uninstall [--dir DIR]   # kcap's interfaces inside Wireshark

Passwords: kcap asks on the terminal; scripts can set KCAP_SSH_PASSWORD (and
KCAP_SSH_KEY_PASSPHRASE for an encrypted key).

Exit codes:
  0 capture finished (also: Wireshark closed)
  2 bad command line (also: --wireshark without Wireshark)
  3 cannot connect        4 authentication failed
  5 host key unknown     6 host key changed       7 capture tool missing  8 permission denied
  9 filter or interface rejected   10 cannot write output (or --serve cannot listen)   11 remote output is not a capture
  12 connection lost during the capture            13 Kubernetes object not found or not running
  14 forbidden by RBAC      15 Kubernetes API unreachable or kubeconfig unusable
  16 no capture method works for a pod (ephemeral unsupported, helper pod rejected)
  17 --callback could not deliver every record (the count is in the summary)
  18 --process: a node cannot attribute packets to processes (no BPF rights or BTF)
  1 anything else";
