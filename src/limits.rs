//! Long captures, as flags: rotation (`-C`, `-G`, `-W`), `--max-size` and the flight
//! recorder (`--flight-recorder`, `--flight-recorder-size`), parsed and checked
//! together so that a combination that cannot work is refused (exit 2) before
//! anything connects. The sinks that carry them out are `sink/rotate.rs` and
//! `sink/flight.rs`.

use std::time::Duration;

use crate::cli::Cli;
use crate::config::UsageError;

/// The flight recorder's memory when `--flight-recorder-size` is not given.
pub const DEFAULT_FLIGHT_BYTES: u64 = 64 << 20;

/// `-C`, `-G`, `-W`: when to start the next file, and how many to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// `-C`: bytes at which the current file is closed.
    pub size: Option<u64>,
    /// `-G`: how long a file stays current.
    pub every: Option<Duration>,
    /// `-W`: how many files are kept (the oldest is deleted); `None`: all.
    pub ring: Option<usize>,
}

/// `--flight-recorder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlightRecorder {
    /// Packets older than this (before the newest packet) are discarded.
    pub window: Duration,
    /// Memory the held packets may take; the oldest beyond it are dropped.
    pub max_bytes: u64,
}

/// Every limit on the file output; all `None` for a plain capture.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileLimits {
    pub rotation: Option<Rotation>,
    /// `--max-size`: total bytes after which the capture stops.
    pub max_size: Option<u64>,
    pub flight: Option<FlightRecorder>,
}

impl FileLimits {
    /// Any limit that needs the output to be a file (not stdout).
    pub fn any(&self) -> bool {
        self.rotation.is_some() || self.max_size.is_some() || self.flight.is_some()
    }

    /// The limits asked for on the command line, checked against each other.
    pub fn from_cli(cli: &Cli) -> Result<FileLimits, UsageError> {
        let size = cli
            .rotate_size
            .as_deref()
            .map(|s| parse_size("-C", s))
            .transpose()?;
        let every = cli
            .rotate_every
            .as_deref()
            .map(|s| parse_seconds("-G", s))
            .transpose()?;
        let ring = match cli.ring {
            None => None,
            Some(0) => return Err(usage("-W must be at least 1 (files kept)")),
            Some(_) if size.is_none() && every.is_none() => {
                return Err(usage(
                    "-W keeps a ring of rotated files: add -C SIZE or -G SECONDS",
                ));
            }
            Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        };
        let rotation =
            (size.is_some() || every.is_some()).then_some(Rotation { size, every, ring });
        let max_size = cli
            .max_size
            .as_deref()
            .map(|s| parse_size("--max-size", s))
            .transpose()?;
        let flight_bytes = cli
            .flight_recorder_size
            .as_deref()
            .map(|s| parse_size("--flight-recorder-size", s))
            .transpose()?;
        let flight = match (&cli.flight_recorder, flight_bytes) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(usage(
                    "--flight-recorder-size sizes the flight recorder: add --flight-recorder DURATION",
                ));
            }
            (Some(window), bytes) => Some(FlightRecorder {
                window: parse_seconds("--flight-recorder", window)?,
                max_bytes: bytes.unwrap_or(DEFAULT_FLIGHT_BYTES),
            }),
        };
        if flight.is_some() && (rotation.is_some() || max_size.is_some()) {
            return Err(usage(
                "--flight-recorder writes one file when kcap stops: -C, -G, -W and --max-size \
                 are for files written as the capture runs",
            ));
        }
        Ok(FileLimits {
            rotation,
            max_size,
            flight,
        })
    }

    /// Refuses limits the output cannot carry. `to_stdout`: `-o -`; `has_file`: the
    /// capture writes a file at all (not `--print` alone).
    pub fn check_output(&self, to_stdout: bool, has_file: bool) -> Result<(), UsageError> {
        if !self.any() {
            return Ok(());
        }
        if to_stdout {
            return Err(usage(
                "-C, -G, -W, --max-size and --flight-recorder write files: they cannot \
                 rotate or limit -o - (stdout); give -o a file name",
            ));
        }
        if !has_file {
            return Err(usage(
                "-C, -G, -W, --max-size and --flight-recorder shape the capture file: add -o FILE",
            ));
        }
        Ok(())
    }
}

fn usage(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
}

/// A size as tcpdump's -C takes it: a plain number is millions of bytes; a `k`, `m`
/// or `g` suffix (any case, optionally followed by `iB` or `B`) means KiB, MiB, GiB.
pub fn parse_size(flag: &str, input: &str) -> Result<u64, UsageError> {
    let bad = || {
        usage(format!(
            "{flag} {input:?} is not a size: a plain number is millions of bytes \
             (as tcpdump's -C); or write e.g. 500k, 100M, 2G (KiB, MiB, GiB)"
        ))
    };
    let trimmed = input.trim();
    let digits = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let unit = unit.to_ascii_lowercase();
    let multiplier: u64 = match unit.as_str() {
        "" => 1_000_000,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        _ => return Err(bad()),
    };
    match number.checked_mul(multiplier) {
        Some(0) => Err(usage(format!("{flag} must be larger than zero"))),
        Some(bytes) => Ok(bytes),
        None => Err(bad()),
    }
}

/// Plain seconds (tcpdump's -G) or a humantime duration (`90s`, `10m`, `1h`).
pub fn parse_seconds(flag: &str, input: &str) -> Result<Duration, UsageError> {
    let trimmed = input.trim();
    let parsed = match trimmed.parse::<u64>() {
        Ok(seconds) => Ok(Duration::from_secs(seconds)),
        Err(_) => humantime::parse_duration(trimmed),
    };
    match parsed {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(usage(format!("{flag} must be longer than zero"))),
        Err(e) => Err(usage(format!(
            "{flag} {input:?} is not a duration ({e}): write seconds, or e.g. 30s, 10m, 1h"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(args: &[&str]) -> Result<FileLimits, UsageError> {
        use clap::Parser;
        let cli = Cli::try_parse_from(std::iter::once("kcap").chain(args.iter().copied()))
            .expect("clap accepts the syntax");
        FileLimits::from_cli(&cli)
    }

    #[test]
    fn sizes_are_tcpdumps_millions_or_binary_suffixes() {
        assert_eq!(parse_size("-C", "10").unwrap(), 10_000_000);
        assert_eq!(parse_size("-C", "10k").unwrap(), 10 * 1024);
        assert_eq!(parse_size("-C", "10K").unwrap(), 10 * 1024);
        assert_eq!(parse_size("-C", "100M").unwrap(), 100 << 20);
        assert_eq!(parse_size("-C", "100MiB").unwrap(), 100 << 20);
        assert_eq!(parse_size("-C", "2g").unwrap(), 2 << 30);
        for bad in [
            "",
            "k",
            "1.5M",
            "10T",
            "-1",
            "10 M x",
            "99999999999999999999G",
        ] {
            assert!(parse_size("-C", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_size("-C", "0").unwrap_err().to_string(),
            "-C must be larger than zero"
        );
    }

    #[test]
    fn seconds_plain_or_humantime() {
        assert_eq!(parse_seconds("-G", "60").unwrap(), Duration::from_secs(60));
        assert_eq!(
            parse_seconds("-G", "10m").unwrap(),
            Duration::from_secs(600)
        );
        assert_eq!(
            parse_seconds("-G", "500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert!(parse_seconds("-G", "0").is_err());
        assert!(parse_seconds("-G", "soon").is_err());
    }

    #[test]
    fn combinations() {
        let l = limits(&["-C", "1M", "-G", "1m", "-W", "3", "--max-size", "1G"]).unwrap();
        assert_eq!(
            l.rotation,
            Some(Rotation {
                size: Some(1 << 20),
                every: Some(Duration::from_secs(60)),
                ring: Some(3)
            })
        );
        assert_eq!(l.max_size, Some(1 << 30));
        let f = limits(&["--flight-recorder", "30s"])
            .unwrap()
            .flight
            .unwrap();
        assert_eq!(f.window, Duration::from_secs(30));
        assert_eq!(f.max_bytes, DEFAULT_FLIGHT_BYTES);
        assert!(!limits(&[]).unwrap().any());
        let refused: &[(&[&str], &str)] = &[
            (&["-W", "3"], "-W keeps a ring"),
            (&["-W", "0", "-C", "1"], "-W must be at least 1"),
            (
                &["--flight-recorder-size", "1M"],
                "--flight-recorder-size sizes",
            ),
            (
                &["--flight-recorder", "5s", "-C", "1"],
                "--flight-recorder writes one file",
            ),
            (
                &["--flight-recorder", "5s", "--max-size", "1"],
                "--flight-recorder writes one file",
            ),
        ];
        for (args, start) in refused {
            let e = limits(args).unwrap_err().to_string();
            assert!(e.starts_with(start), "{args:?}: {e}");
        }
        let l = limits(&["-C", "1"]).unwrap();
        assert!(l.check_output(true, true).is_err());
        assert!(l.check_output(false, false).is_err());
        assert!(l.check_output(false, true).is_ok());
    }
}
