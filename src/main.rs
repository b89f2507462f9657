//! kcap: capture packets on Kubernetes nodes and pods and hand them to Wireshark.
//!
//! The flow, one module each: [`cli`] (flags) -> [`config`] (validated, final) ->
//! [`plan`] (targets resolved, filters expanded, methods chosen; [`dry_run`] prints
//! it) -> [`run`] (one [`source`] capture per planned source, [`follow`] for pods
//! that appear later, [`stop`] conditions) -> [`pipeline`] (merge, then every
//! [`sink`]) -> [`report`] (summary; errors with hints and the [`exit`] code).
//! [`reaper`] deletes helper pods if kcap is killed; [`list`] is `-D`.

mod agent;
mod captures;
mod cli;
mod config;
mod defaults;
mod dry_run;
mod event;
mod exit;
mod extcap;
mod follow;
mod generate;
mod limits;
mod list;
mod names;
mod pipeline;
mod plan;
mod process;
mod read;
mod reaper;
mod report;
mod run;
mod serve;
mod sink;
mod source;
mod stop;
mod terminal;
mod time;
mod wireshark;

use std::io::IsTerminal;

use crate::config::{Config, Verbosity};
use crate::exit::Exit;
use crate::stop::Stop;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(reaper::MODE) {
        return reaper::main(&args[2..]);
    }
    if let Some(exit) = generate::dispatch(&args).or_else(|| extcap::dispatch(&args)) {
        return exit.into();
    }
    // Wireshark running kcap as an extcap: a capture goes on as any other.
    if extcap::is_extcap(&args) {
        return match extcap::answer(&args) {
            extcap::Answer::Done(exit) => exit.into(),
            extcap::Answer::Capture(config) => capture(&config),
        };
    }
    let cli = cli::parse(&args);
    let config = match Config::from_cli(cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("kcap: {e}");
            return Exit::Usage.into();
        }
    };
    capture(&config)
}

/// Runs what `config` asks for (a capture, a file read, a dry run) to its exit code.
fn capture(config: &Config) -> std::process::ExitCode {
    init_logging(config.verbosity);
    if config.capture.process == kcap_capture::command::ProcessMode::Auto
        && config.capture.agent.is_none()
    {
        tracing::warn!(
            "kcap: warning: --process=auto: kcap's capture agent is not installed next to kcap \
             (nor named by KCAP_AGENT); capturing without processes"
        );
    }
    // One thread for every connection: the work per packet is small, and on a busy
    // 2-core node (sshd, the capture tool, kcap) fewer threads measured faster
    // (bench/ssh-throughput.py: ratio 0.76 -> 0.89) and smaller (29 -> 23 MiB).
    // The pipeline has its own thread (see run.rs).
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
    let exit = runtime.block_on(kcap(config));
    // Do not wait for lingering tasks (a half-open connection): everything that
    // matters has finished or been told to.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    exit.into()
}

/// Read a file (`-r`), or plan, then print the plan (`--dry-run`) or capture it and report.
async fn kcap(config: &Config) -> Exit {
    if let Some(read) = &config.read {
        return match read::replay(config, read) {
            Ok(callback) if callback.as_ref().is_some_and(|c| c.lost() > 0) => Exit::RecordsLost,
            Ok(_) => Exit::Success,
            Err(e) => report::error(None, e.as_ref()),
        };
    }
    if let Some(format) = config.dry_run {
        return match plan::build(config).await {
            Ok(plan) => dry_run::check_and_print(&plan, format).await,
            Err(e) => report::error(None, &e),
        };
    }
    if config.list_interfaces {
        return list::print(config).await;
    }
    let stop = Stop::default();
    if let Err(e) = stop::watch_signals(stop.clone()) {
        eprintln!("kcap: cannot install signal handlers: {e}");
        return Exit::Other;
    }
    // Find Wireshark and open the output first: a missing program or a bad path
    // fails before anything connects.
    let viewer = match config
        .wireshark
        .as_ref()
        .map(wireshark::Prepared::find)
        .transpose()
    {
        Ok(viewer) => viewer,
        Err(e) => return report::error(None, &e),
    };
    let files = sink::FileReportHandle::default();
    let output = match config
        .output
        .as_ref()
        .map(|o| sink::output::open(o, &config.limits, &files))
        .transpose()
    {
        Ok(output) => output,
        Err(e) => return report::error(None, &e),
    };
    let quiet = config.verbosity == Verbosity::Quiet;
    let server = match config
        .serve
        .as_ref()
        .map(|s| serve::start(s, quiet))
        .transpose()
    {
        Ok(server) => server,
        Err(e) => return report::error(None, &e),
    };
    let plan = match plan::build(config).await {
        Ok(plan) => plan,
        Err(e) => return report::error(None, &e),
    };
    // Wireshark opens once there is something to show.
    let viewer = match viewer.map(|v| v.start(&stop)).transpose() {
        Ok(viewer) => viewer,
        Err(e) => return report::error(None, &e),
    };
    match run::capture(config, &plan, output, viewer, server, files, stop).await {
        Ok(outcome) => report::summary(config, &plan, &outcome),
        Err(e) => report::error(None, &e),
    }
}

fn init_logging(verbosity: Verbosity) {
    let level = match verbosity {
        Verbosity::Quiet => "error",
        // kube-rs warns of a watch the server cut ("eof in poll: Custom {..}"):
        // kcap says what it does about it; the detail is for -v.
        Verbosity::Normal => "warn,kcap=info,kube_client=error",
        Verbosity::Verbose => "info,kcap=debug",
        Verbosity::Debug => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("KCAP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Plain "kcap: message" lines unless asked for detail; colours only on a terminal.
    let detailed = verbosity >= Verbosity::Verbose;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Through the status area's writer: log lines land above the area.
        .with_writer(|| terminal::LogWriter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_level(detailed)
        .without_time()
        .init();
}
