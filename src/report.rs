//! The end of a run: one summary line per source on stderr, every error with its
//! likely cause and next step ([`crate::exit::explain`]), and the exit code.

use std::error::Error;

use kcap_capture::command::ProcessMode;

use crate::config::{Config, Verbosity};
use crate::exit::{self, Exit};
use crate::pipeline::Delivered;
use crate::plan::Plan;
use crate::run::Outcome;
use crate::sink::FileReport;
use crate::source::SourceReport;
use crate::stop::StopReason;

/// Prints `error` with its causes and hint; returns its exit code. `label` names
/// the target when there is one.
pub fn error(label: Option<&str>, error: &(dyn Error + 'static)) -> Exit {
    match label {
        Some(l) => eprintln!("kcap: {l}: error: {}", exit::chain(error)),
        None => eprintln!("kcap: error: {}", exit::chain(error)),
    }
    let explained = exit::explain(error);
    for line in explained.hint.iter().flat_map(|h| h.lines()) {
        eprintln!("  hint: {line}");
    }
    explained.exit
}

/// Prints the summary and errors of a finished capture; returns the exit code.
/// The first failure decides it, so `kcap ... || handle` sees any failure.
pub fn summary(config: &Config, plan: &Plan, outcome: &Outcome) -> Exit {
    let quiet = config.verbosity == Verbosity::Quiet;
    let mut exit = Exit::Success;
    for failed in &plan.failed {
        exit = exit.or(error(Some(&failed.label), &failed.error));
    }
    for (source, delivered) in outcome.sources.iter().zip(&outcome.pipeline.per_source) {
        if !quiet {
            eprintln!("kcap: {}", summary_line(source, delivered, config));
            for line in process_lines(source, delivered, config) {
                eprintln!("kcap: {line}");
            }
        }
        if let Some(refused) = &delivered.refused {
            eprintln!("kcap: {}: {refused}", source.label);
            exit = exit.or(Exit::Usage);
        }
        if let Some(e) = &source.error {
            exit = exit.or(error(Some(&source.label), e));
        }
    }
    let dropped: u64 = outcome
        .sources
        .iter()
        .filter_map(|s| s.statistics.as_ref()?.dropped_by_kernel)
        .sum();
    if dropped > 0 && !quiet {
        eprintln!(
            "  hint: the capture buffer overflowed ({dropped} packets dropped by kernel): \
             raise -B/--buffer-size (now {} KiB) or lower -s/--snaplen; \
             a narrower --filter also helps",
            config.capture.buffer_kib
        );
    }
    if outcome.callback.as_ref().is_some_and(|c| c.lost() > 0) {
        exit = exit.or(Exit::RecordsLost);
    }
    if let Some(serve) = &outcome.serve {
        // A viewer cut off is said even with -q: it did not get the whole capture.
        if !quiet || serve.status.viewers_cut_off > 0 {
            eprintln!("kcap: {}", crate::serve::summary_line(serve));
        }
    }
    if let Some(e) = &outcome.pipeline.error {
        exit = exit.or(error(None, e));
    } else if !quiet && let Some(path) = config.output.as_ref().and_then(|o| o.file_path()) {
        let total: u64 = outcome.pipeline.per_source.iter().map(|w| w.packets).sum();
        let why = match outcome.stop {
            Some(StopReason::Duration) => " (duration reached)",
            Some(StopReason::Count) => " (count reached)",
            Some(StopReason::MaxSize) => " (--max-size reached)",
            Some(StopReason::Interrupted) => " (interrupted)",
            Some(StopReason::Terminated) => " (terminated)",
            Some(StopReason::ViewerClosed) => " (Wireshark closed)",
            Some(StopReason::OutputFailed) | None => "",
        };
        let elapsed = outcome.elapsed.as_secs_f64();
        match &outcome.files {
            None => eprintln!(
                "kcap: wrote {total} packets to {} in {elapsed:.1}s{why}",
                path.display()
            ),
            Some(files) => eprintln!("kcap: {}", files_line(config, files, elapsed, why)),
        }
    }
    exit
}

/// The summary of rotated files or the flight recorder.
fn files_line(config: &Config, files: &FileReport, elapsed: f64, why: &str) -> String {
    let name = |p: &Option<std::path::PathBuf>| {
        p.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    let packets = files.packets;
    let size = human_bytes(files.bytes);
    if let Some(flight) = config.limits.flight {
        let mut line = format!(
            "wrote {packets} packets ({size}, the last {} of the capture) to {} in \
             {elapsed:.1}s{why}; flight recorder: {} older packets aged out",
            humantime::format_duration(flight.window),
            name(&files.last),
            files.aged_out,
        );
        if files.over_memory > 0 {
            line.push_str(&format!(
                ", {} dropped to stay within {} (raise --flight-recorder-size)",
                files.over_memory,
                human_bytes(flight.max_bytes)
            ));
        }
        return line;
    }
    let (first, last) = (name(&files.first), name(&files.last));
    let written = match (files.files, files.deleted) {
        (1, _) => format!("wrote {packets} packets ({size}) to {last}"),
        (n, 0) => format!("wrote {packets} packets ({size}) to {n} files, {first} .. {last}"),
        (n, deleted) => format!(
            "wrote {packets} packets ({size}) to {n} files, the last {} kept ({deleted} \
             deleted by -W): {first} .. {last}",
            n - deleted
        ),
    };
    format!("{written} in {elapsed:.1}s{why}")
}

fn summary_line(source: &SourceReport, delivered: &Delivered, config: &Config) -> String {
    let packets = delivered.packets;
    let attributed = match config.capture.process {
        ProcessMode::Off => String::new(),
        _ => format!(" ({} with their process)", delivered.with_process),
    };
    let mut line = format!(
        "{}: {packets} packets{attributed}, {} in {:.1}s",
        source.label,
        human_bytes(delivered.bytes),
        source.elapsed.as_secs_f64()
    );
    if let Some(method) = source.method {
        line.push_str(&format!(" via {method}"));
    }
    if let Some(way) = &source.way {
        line.push_str(&format!(", {way}"));
    }
    if let Some(tool) = &source.tool {
        line.push_str(&format!(" ({tool}"));
        if let Some(stats) = &source.statistics {
            if let Some(d) = stats.dropped_by_kernel {
                line.push_str(&format!(", {d} dropped by kernel"));
            }
            if let Some(d) = stats.dropped_by_interface {
                line.push_str(&format!(", {d} dropped by interface"));
            }
        }
        line.push(')');
    }
    if source.error.is_some() {
        line.push_str(" - failed");
    }
    line
}

/// With `--process`: the packets the process filters left out, and why a node
/// with `--process=auto` could not attribute any.
fn process_lines(source: &SourceReport, delivered: &Delivered, config: &Config) -> Vec<String> {
    let mut lines = Vec::new();
    if delivered.other_processes > 0 {
        lines.push(format!(
            "{}: {} packets of other processes left out ({})",
            source.label,
            delivered.other_processes,
            config.process_filter.describe()
        ));
    }
    if let Some(why) = &source.process_unavailable {
        lines.push(format!(
            "{}: no processes: the node cannot attribute packets to them ({why})",
            source.label
        ));
    }
    lines
}

pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(
            ["kcap", "--ssh-host", "n"].iter().chain(args).copied(),
        )
        .unwrap();
        Config::from_cli(cli).unwrap()
    }

    #[test]
    fn rotated_files_and_the_flight_recorder_in_the_summary() {
        let files = FileReport {
            packets: 10,
            bytes: 2048,
            files: 5,
            first: Some("c-00004.pcap".into()),
            last: Some("c-00005.pcap".into()),
            deleted: 3,
            ..FileReport::default()
        };
        let ring = config(&["-C", "1k", "-W", "2", "-o", "c.pcap"]);
        assert_eq!(
            files_line(&ring, &files, 1.0, " (duration reached)"),
            "wrote 10 packets (2.0 KiB) to 5 files, the last 2 kept (3 deleted by -W): \
             c-00004.pcap .. c-00005.pcap in 1.0s (duration reached)"
        );
        let one = FileReport {
            files: 1,
            deleted: 0,
            ..files.clone()
        };
        assert_eq!(
            files_line(&ring, &one, 1.0, ""),
            "wrote 10 packets (2.0 KiB) to c-00005.pcap in 1.0s"
        );
        let flight = config(&["--flight-recorder", "2s", "-o", "f.pcapng"]);
        let recorded = FileReport {
            files: 1,
            deleted: 0,
            aged_out: 7,
            over_memory: 2,
            last: Some("f.pcapng".into()),
            ..files
        };
        assert_eq!(
            files_line(&flight, &recorded, 6.0, " (interrupted)"),
            "wrote 10 packets (2.0 KiB, the last 2s of the capture) to f.pcapng in 6.0s \
             (interrupted); flight recorder: 7 older packets aged out, 2 dropped to stay \
             within 64.0 MiB (raise --flight-recorder-size)"
        );
    }

    #[test]
    fn the_summary_counts_packets_with_their_process_and_those_left_out() {
        let mut source = SourceReport::new("node-a".into());
        source.elapsed = std::time::Duration::from_secs(2);
        let delivered = Delivered {
            packets: 5000,
            bytes: 2048,
            with_process: 4870,
            other_processes: 1234,
            ..Delivered::default()
        };
        // As `--pname curl` makes it, without needing kcap's agent here.
        let mut filtered = config(&[]);
        filtered.capture.process = ProcessMode::On;
        filtered.process_filter.names = vec!["curl".into()];
        assert_eq!(
            summary_line(&source, &delivered, &filtered),
            "node-a: 5000 packets (4870 with their process), 2.0 KiB in 2.0s"
        );
        assert_eq!(
            summary_line(&source, &delivered, &config(&[])),
            "node-a: 5000 packets, 2.0 KiB in 2.0s"
        );
        source.process_unavailable = Some("no BTF".into());
        assert_eq!(
            process_lines(&source, &delivered, &filtered),
            [
                "node-a: 1234 packets of other processes left out (--pname curl)",
                "node-a: no processes: the node cannot attribute packets to them (no BTF)"
            ]
        );
    }

    #[test]
    fn byte_units() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 20), "5.0 MiB");
    }
}
