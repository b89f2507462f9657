//! `kcap-testbed`: bring a persistent test bed up or down by hand, so
//! humans can try kcap against real sshd hosts.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use kcap_testbed::{Spec, Testbed};

const DEFAULT_DIR: &str = "/tmp/kcap-testbed";
/// Fixed names (kcap-tb-client, kcap-tb-node-a, ...) that humans can type.
const PREFIX: &str = "kcap-tb";

#[derive(Parser)]
#[command(
    name = "kcap-testbed",
    about = "Build a local multi-host SSH test network (network namespaces) for kcap",
    long_about = "Build a local multi-host SSH test network for kcap: hosts are network \
namespaces named kcap-tb-<host> (client namespace kcap-tb-client), each running a real \
sshd and some HTTP/DNS traffic. Needs root. Files (keys, ssh_config, state.json) go to \
--dir, default /tmp/kcap-testbed."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Bring the test bed up and leave it running.
    Up {
        #[command(flatten)]
        dir: DirArg,
        /// Only client, bastion, node-a and node-b on one network.
        #[arg(long)]
        minimal: bool,
        /// Hide a program on a host (`node-a:tcpdump`) or replace it with an
        /// executable (`node-a:tcpdump=/path/to/stand-in`). Repeatable.
        #[arg(long = "tool", value_name = "HOST:NAME[=PATH]")]
        tools: Vec<String>,
        /// No traffic generators (quiet hosts, e.g. for benchmarks).
        #[arg(long)]
        no_traffic: bool,
    },
    /// Kill every process of the bed, delete its namespaces and files.
    Down(DirArg),
    /// List hosts, namespaces, addresses and whether sshd is alive.
    Status(DirArg),
}

#[derive(Args)]
struct DirArg {
    /// Directory for keys, ssh_config, known_hosts and state.json.
    #[arg(long, default_value = DEFAULT_DIR)]
    dir: PathBuf,
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

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Up {
            dir,
            minimal,
            tools,
            no_traffic,
        } => {
            let mut spec = if minimal {
                Spec::minimal()
            } else {
                Spec::default()
            };
            for tool in &tools {
                let (host, rest) = tool
                    .split_once(':')
                    .ok_or_else(|| anyhow::anyhow!("--tool {tool:?}: write HOST:NAME[=PATH]"))?;
                let (name, path) = match rest.split_once('=') {
                    Some((name, path)) => (name, Some(PathBuf::from(path))),
                    None => (rest, None),
                };
                spec = spec.with_tool(host, name, path);
            }
            if no_traffic {
                spec = spec.without_traffic();
            }
            let bed = Testbed::up_in(spec.with_name_prefix(PREFIX), &dir.dir)?;
            let (cfg, ns) = (bed.ssh_config(), bed.client_netns().to_string());
            print!("{}", Testbed::status_dir(bed.dir())?);
            bed.persist();
            println!("\nTry:");
            println!("  ip netns exec {ns} ssh -F {} node-a", cfg.display());
            println!(
                "  ip netns exec {ns} kcap --ssh-config {} --ssh-host node-a -c 20 -o /tmp/try.pcapng",
                cfg.display()
            );
            println!(
                "Tear down with: kcap-testbed down --dir {}",
                dir.dir.display()
            );
            Ok(())
        }
        Cmd::Down(dir) => Testbed::down_dir(&dir.dir),
        Cmd::Status(dir) => {
            print!("{}", Testbed::status_dir(&dir.dir)?);
            Ok(())
        }
    }
}
