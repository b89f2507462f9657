//! When to stop: the first of Ctrl-C/SIGTERM, `--duration`, `--count`, a failed
//! output, Wireshark closed, or every source ending by itself. Everyone watches one [`Stop`]; the
//! first reason set wins. The pipeline only reports what happened ([`Progress`]);
//! the rules that turn that into a stop live here.
//!
//! `--duration` counts from the moment every target named at the start is capturing
//! (or has failed), not from kcap's start: a slow starter (an ephemeral container, a
//! helper pod, a far SSH hop) still gets the whole duration, as `timeout 10 tcpdump`
//! would on each host. Pods joining later (`--follow`) do not move the clock.

use std::collections::HashSet;
use std::time::Duration;

use tokio::sync::watch;

use crate::event::SourceId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Interrupted,
    Terminated,
    Duration,
    Count,
    /// `--max-size`: the files reached it.
    MaxSize,
    OutputFailed,
    /// Wireshark, reading the live stream, was closed (or its Stop button pressed).
    ViewerClosed,
}

/// Shared by everything that may decide to stop the capture, or must stop when it does.
#[derive(Debug, Clone)]
pub struct Stop {
    reason: watch::Sender<Option<StopReason>>,
    /// Every initial source has started capturing or ended.
    all_capturing: watch::Sender<bool>,
}

impl Default for Stop {
    fn default() -> Self {
        Stop {
            reason: watch::channel(None).0,
            all_capturing: watch::channel(false).0,
        }
    }
}

impl Stop {
    /// Records `reason` unless another reason came first.
    pub fn stop(&self, reason: StopReason) {
        self.reason.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }

    pub fn reason(&self) -> Option<StopReason> {
        *self.reason.borrow()
    }

    /// Resolves once a stop has been requested.
    pub async fn stopped(&self) {
        let mut rx = self.reason.subscribe();
        let _ = rx.wait_for(Option::is_some).await;
    }

    /// Resolves once every initial source has started capturing or ended.
    async fn until_all_capturing(&self) {
        let mut rx = self.all_capturing.subscribe();
        let _ = rx.wait_for(|all| *all).await;
    }
}

/// `--duration`: stops the capture `duration` after every initial source is capturing.
pub fn stop_after(stop: &Stop, duration: Duration) {
    let stop = stop.clone();
    tokio::spawn(async move {
        stop.until_all_capturing().await;
        tokio::time::sleep(duration).await;
        stop.stop(StopReason::Duration);
    });
}

/// What the pipeline reports as it goes, turned into stops: the sources that have
/// not started yet (for the `--duration` clock) and the packets `--count` still allows.
#[derive(Debug)]
pub struct Progress {
    stop: Stop,
    starting: HashSet<SourceId>,
    remaining: Option<u64>,
    /// The output takes no more packets (`--max-size`).
    full: bool,
}

impl Progress {
    /// `initial`: the number of sources given at the start (ids `0..initial`).
    pub fn new(stop: Stop, initial: usize, count: Option<u64>) -> Progress {
        if initial == 0 {
            stop.all_capturing.send_replace(true);
        }
        Progress {
            stop,
            starting: (0..initial).collect(),
            remaining: count,
            full: false,
        }
    }

    /// A source sent its pcap header, or ended without one.
    pub fn source_settled(&mut self, source: SourceId) {
        if self.starting.remove(&source) && self.starting.is_empty() {
            self.stop.all_capturing.send_replace(true);
        }
    }

    /// Whether one more packet may go out (`--count`); the last one allowed stops
    /// the capture.
    pub fn admit_packet(&mut self) -> bool {
        if self.full {
            return false;
        }
        match &mut self.remaining {
            None => true,
            Some(0) => false,
            Some(remaining) => {
                *remaining -= 1;
                if *remaining == 0 {
                    self.stop.stop(StopReason::Count);
                }
                true
            }
        }
    }

    /// The output reached `--max-size`: no packet goes out any more, the capture stops.
    pub fn output_full(&mut self) {
        self.full = true;
        self.stop.stop(StopReason::MaxSize);
    }

    /// The output cannot be written: nothing else is worth capturing.
    pub fn output_failed(&self) {
        self.stop.stop(StopReason::OutputFailed);
    }
}

/// Turns the first SIGINT/SIGTERM into a graceful stop. A second one means "now":
/// kcap then exits at once (the file is still complete up to the last flushed packet).
pub fn watch_signals(stop: Stop) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        let mut seen = 0;
        loop {
            let reason = tokio::select! {
                _ = int.recv() => StopReason::Interrupted,
                _ = term.recv() => StopReason::Terminated,
            };
            seen += 1;
            if seen == 1 {
                tracing::info!(
                    "kcap: stopping: finishing the capture (press Ctrl-C again to quit at once)"
                );
                stop.stop(reason);
            } else {
                std::process::exit(130);
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_admits_exactly_n_and_stops_on_the_last() {
        let stop = Stop::default();
        let mut progress = Progress::new(stop.clone(), 1, Some(2));
        assert!(progress.admit_packet());
        assert_eq!(stop.reason(), None);
        assert!(progress.admit_packet());
        assert_eq!(stop.reason(), Some(StopReason::Count));
        assert!(!progress.admit_packet());
    }

    #[test]
    fn all_capturing_once_every_initial_source_settled() {
        let stop = Stop::default();
        let mut progress = Progress::new(stop.clone(), 2, None);
        progress.source_settled(0);
        progress.source_settled(5); // joined later: does not count
        assert!(!*stop.all_capturing.borrow());
        progress.source_settled(1);
        assert!(*stop.all_capturing.borrow());
        assert!(!*Stop::default().all_capturing.borrow());
        let none = Stop::default();
        Progress::new(none.clone(), 0, None);
        assert!(*none.all_capturing.borrow());
    }

    #[test]
    fn first_reason_wins() {
        let stop = Stop::default();
        stop.stop(StopReason::Duration);
        stop.stop(StopReason::Interrupted);
        assert_eq!(stop.reason(), Some(StopReason::Duration));
    }
}
