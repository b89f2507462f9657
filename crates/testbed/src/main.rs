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
kcap-tb-<host> (client namespace kcap-tb-client) running a real sshd; by default the nodes \
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
    /// namespaces (all kcap-tb-*) and files.
    Down(DirArg),
    /// List hosts, namespaces, addresses, sshds and pods with their IPs.
    Status(DirArg),
}

#[derive(Args, Clone)]
struct DirArg {
    /// Directory for keys, ssh_config, kubeconfig and state.json.
    #[arg(long, default_value = DEFAULT_DIR)]
    dir: PathBuf,
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
    with_tools(spec.with_name_prefix(PREFIX), &bed.tools)
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
            print_try(&dir, true);
            Ok(())
        }
        Cmd::Serve { dir, bed } => daemon::serve(cluster_spec(&bed)?, &dir.dir),
        Cmd::Down(dir) => daemon::down(&dir.dir, PREFIX),
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
    let spec = with_tools(spec.with_name_prefix(PREFIX), &bed.tools)?;
    let tb = Testbed::up_in(spec, dir)?;
    print!("{}", Testbed::status_dir(tb.dir())?);
    let dir = tb.dir().to_path_buf();
    tb.persist();
    print_try(&dir, false);
    Ok(())
}

fn print_try(dir: &Path, cluster: bool) {
    let ns = format!("{PREFIX}-client");
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
    println!("Tear down with: kcap-testbed down --dir {}", dir.display());
}
