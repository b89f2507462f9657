//! `kcap-testbed`: bring a persistent test bed up or down by hand, so humans
//! can try kcap against real sshd hosts and a Kubernetes-like cluster (pods,
//! API server, the real kubectl).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use kcap_testbed::{Cni, Spec, Testbed, daemon};

const DEFAULT_DIR: &str = "/tmp/kcap-testbed";
/// Fixed names (kcap-tb-client, kcap-tb-node-a, ...) that humans can type.
const PREFIX: &str = "kcap-tb";

#[derive(Parser)]
#[command(
    name = "kcap-testbed",
    about = "Build a local Kubernetes-like cluster and SSH test network (network namespaces) for kcap",
    long_about = "Build a local test network for kcap: hosts are network namespaces named \
kcap-tb-<host> (client namespace kcap-tb-client; --prefix changes kcap-tb) running a real sshd; by default the nodes \
run pods (bridge and routed CNI styles) and a Kubernetes API server on the control-plane host \
(https://198.51.100.5:6443) serves them to the real kubectl. Needs root. Files (keys, \
ssh_config, kubeconfig, state.json, serve.log) go to --dir, default /tmp/kcap-testbed."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Args, Clone)]
struct BedArgs {
    /// Number of nodes (node-a, node-b, ...).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=26))]
    nodes: u8,
    /// CNI style per node, in order (bridge or routed); the rest alternate
    /// starting with bridge.
    #[arg(long, value_delimiter = ',', value_parser = parse_cni)]
    cni: Vec<Cni>,
    /// Hide a program on a host (`node-a:tcpdump`) or replace it with an
    /// executable (`node-a:tcpdump=/path/to/stand-in`). Repeatable.
    #[arg(long = "tool", value_name = "HOST:NAME[=PATH]")]
    tools: Vec<String>,
    /// No traffic generators on the hosts (pods still talk to each other).
    #[arg(long)]
    no_traffic: bool,
    #[command(flatten)]
    prefix: PrefixArg,
    /// Replicas of Deployment prod/web per node (default: 3 in all).
    #[arg(long, value_name = "K")]
    pods_per_node: Option<usize>,
    /// Add namespace `secure`, where Pod Security admission enforces `baseline` (so
    /// kcap's debug containers and helper pods are refused), with pod `app` (no tcpdump).
    #[arg(long)]
    pod_security: bool,
    /// The API server has no ephemeral containers (404, as an old cluster).
    #[arg(long)]
    no_ephemeral_containers: bool,
}

#[derive(Args, Clone)]
struct PrefixArg {
    /// Namespace names are PREFIX-<host> (PREFIX-client, PREFIX-node-a, ...): another
    /// prefix lets a second bed run beside one made with the default.
    #[arg(long, default_value = PREFIX, value_parser = parse_prefix)]
    prefix: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// Bring the test bed up and leave it running (the cluster runs in a
    /// background `kcap-testbed serve` process logging to DIR/serve.log).
    Up {
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        bed: BedArgs,
        /// SSH only, no cluster: client, bastion, node-a and node-b on one network.
        #[arg(long, conflicts_with = "ssh_only")]
        minimal: bool,
        /// SSH only, no cluster: three networks, node-c behind two jump hosts.
        #[arg(long)]
        ssh_only: bool,
    },
    /// Run a cluster bed in the foreground until SIGTERM/SIGINT (what `up` starts).
    #[command(hide = true)]
    Serve {
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        bed: BedArgs,
    },
    /// Stop the serve process, kill every process of the bed, delete its
    /// namespaces (all PREFIX-*, default kcap-tb-*) and files.
    Down {
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        prefix: PrefixArg,
    },
    /// List hosts, namespaces, addresses, sshds and pods with their IPs.
    Status(DirArg),
}

#[derive(Args, Clone)]
struct DirArg {
    /// Directory for keys, ssh_config, kubeconfig and state.json.
    #[arg(long, default_value = DEFAULT_DIR)]
    dir: PathBuf,
}

fn parse_prefix(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 20
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    // `kcap-<digits>-` names belong to test beds, whose owners' deaths are collected.
    let test_bed_like = s
        .strip_prefix("kcap-")
        .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()));
    if ok && !test_bed_like {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?}: lowercase letters, digits and '-', at most 20, not kcap-<digits>"
        ))
    }
}

fn parse_cni(s: &str) -> Result<Cni, String> {
    match s {
        "bridge" => Ok(Cni::Bridge),
        "routed" => Ok(Cni::Routed),
        _ => Err(format!("{s:?}: write bridge or routed")),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kcap-testbed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn with_tools(mut spec: Spec, tools: &[String]) -> anyhow::Result<Spec> {
    for tool in tools {
        let (host, rest) = tool
            .split_once(':')
            .ok_or_else(|| anyhow::anyhow!("--tool {tool:?}: write HOST:NAME[=PATH]"))?;
        let (name, path) = match rest.split_once('=') {
            Some((name, path)) => (name, Some(PathBuf::from(path))),
            None => (rest, None),
        };
        spec = spec.with_tool(host, name, path);
    }
    Ok(spec)
}

fn cluster_spec(bed: &BedArgs) -> anyhow::Result<Spec> {
    let mut spec = Spec::cluster(bed.nodes.into());
    for (i, cni) in bed.cni.iter().enumerate().take(bed.nodes.into()) {
        let node = format!("node-{}", (b'a' + i as u8) as char);
        spec = spec.with_pod_network(&node, *cni, Ipv4Addr::new(10, 244, i as u8, 0));
    }
    if bed.no_traffic {
        spec = spec.without_traffic();
    }
    if let Some(k) = bed.pods_per_node {
        spec = spec.with_pods_per_node(k);
    }
    if bed.pod_security {
        spec = spec.with_pod_security();
    }
    if bed.no_ephemeral_containers {
        spec = spec.without_ephemeral_containers();
    }
    with_tools(spec.with_name_prefix(&bed.prefix.prefix), &bed.tools)
}

/// The arguments `up` hands to `serve`.
fn serve_args(bed: &BedArgs) -> Vec<String> {
    let mut args = vec!["--nodes".to_string(), bed.nodes.to_string()];
    if !bed.cni.is_empty() {
        let names: Vec<&str> = bed
            .cni
            .iter()
            .map(|c| match c {
                Cni::Bridge => "bridge",
                Cni::Routed => "routed",
            })
            .collect();
        args.extend(["--cni".to_string(), names.join(",")]);
    }
    for t in &bed.tools {
        args.extend(["--tool".to_string(), t.clone()]);
    }
    if bed.no_traffic {
        args.push("--no-traffic".into());
    }
    args.extend(["--prefix".to_string(), bed.prefix.prefix.clone()]);
    if let Some(k) = bed.pods_per_node {
        args.extend(["--pods-per-node".to_string(), k.to_string()]);
    }
    if bed.pod_security {
        args.push("--pod-security".into());
    }
    if bed.no_ephemeral_containers {
        args.push("--no-ephemeral-containers".into());
    }
    args
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Up {
            dir,
            bed,
            minimal,
            ssh_only,
        } => {
            if minimal || ssh_only {
                return up_ssh_only(&dir.dir, &bed, minimal);
            }
            cluster_spec(&bed)?; // Reject bad arguments here, not in serve.log.
            daemon::spawn_serve(&dir.dir, &serve_args(&bed))?;
            let dir = dir.dir.canonicalize()?;
            print!("{}", Testbed::status_dir(&dir)?);
            print_try(&dir, &bed.prefix.prefix, true);
            Ok(())
        }
        Cmd::Serve { dir, bed } => daemon::serve(cluster_spec(&bed)?, &dir.dir),
        Cmd::Down { dir, prefix } => daemon::down(&dir.dir, &prefix.prefix),
        Cmd::Status(dir) => {
            print!("{}", Testbed::status_dir(&dir.dir)?);
            Ok(())
        }
    }
}

/// The SSH-only beds: persisted, no process stays behind.
fn up_ssh_only(dir: &Path, bed: &BedArgs, minimal: bool) -> anyhow::Result<()> {
    let mut spec = if minimal {
        Spec::minimal()
    } else {
        Spec::default()
    };
    if bed.no_traffic {
        spec = spec.without_traffic();
    }
    let spec = with_tools(spec.with_name_prefix(&bed.prefix.prefix), &bed.tools)?;
    let tb = Testbed::up_in(spec, dir)?;
    print!("{}", Testbed::status_dir(tb.dir())?);
    let dir = tb.dir().to_path_buf();
    tb.persist();
    print_try(&dir, &bed.prefix.prefix, false);
    Ok(())
}

fn print_try(dir: &Path, prefix: &str, cluster: bool) {
    let ns = format!("{prefix}-client");
    let cfg = dir.join("ssh_config");
    println!("\nssh config: {}", cfg.display());
    if cluster {
        let kc = dir.join("kubeconfig");
        println!("kubeconfig: {}", kc.display());
        println!("\nTry:");
        println!(
            "  ip netns exec {ns} kubectl --kubeconfig {} get pods -A -o wide",
            kc.display()
        );
    } else {
        println!("\nTry:");
    }
    println!("  ip netns exec {ns} ssh -F {} node-a", cfg.display());
    println!(
        "  ip netns exec {ns} kcap --ssh-config {} --ssh-host node-a -c 20 -o /tmp/try.pcapng",
        cfg.display()
    );
    let prefix_arg = if prefix == PREFIX {
        String::new()
    } else {
        format!(" --prefix {prefix}")
    };
    println!(
        "Tear down with: kcap-testbed down --dir {}{prefix_arg}",
        dir.display()
    );
}
