//! kcap: capture packets on Kubernetes nodes and pods and hand them to Wireshark.
//!
//! The flow, one module each: [`cli`] (flags) -> [`config`] (validated) -> [`run`]
//! (resolves Kubernetes targets, starts a [`source`] capture per node or pod, the
//! [`output`] writer and the [`stop`] conditions) -> [`report`] (summary, errors with
//! hints, [`exit`] code). [`reaper`] deletes helper pods if kcap is killed.

mod cli;
mod config;
mod event;
mod exit;
mod output;
mod reaper;
mod report;
mod run;
mod source;
mod stop;
mod time;

use std::io::IsTerminal;

use clap::Parser;

use crate::config::{Config, Verbosity};
use crate::exit::Exit;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(reaper::MODE) {
        return reaper::main(&args[2..]);
    }
    let cli = cli::Cli::parse();
    let config = match Config::from_cli(cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("kcap: {e}");
            return Exit::Usage.into();
        }
    };
    init_logging(config.verbosity);
    // One thread for every connection: the work per packet is small, and on a busy
    // 2-core node (sshd, the capture tool, kcap) fewer threads measured faster
    // (bench/ssh-throughput.py: ratio 0.76 -> 0.89) and smaller (29 -> 23 MiB).
    // The writer has its own thread (see run.rs).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kcap: cannot start: {e}");
            return Exit::Other.into();
        }
    };
    let outcome = runtime.block_on(run::run(config.clone()));
    // Do not wait for lingering tasks (a half-open connection): everything that
    // matters has finished or been told to.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    report::finish(&config, outcome).into()
}

fn init_logging(verbosity: Verbosity) {
    let level = match verbosity {
        Verbosity::Quiet => "error",
        Verbosity::Normal => "warn,kcap=info",
        Verbosity::Verbose => "info,kcap=debug",
        Verbosity::Debug => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("KCAP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Plain "kcap: message" lines unless asked for detail; colours only on a terminal.
    let detailed = verbosity >= Verbosity::Verbose;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_level(detailed)
        .without_time()
        .init();
}
