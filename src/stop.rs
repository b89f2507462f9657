//! When to stop: the first of Ctrl-C/SIGTERM, `--duration`, `--count`, or every source
//! ending by itself. Everyone watches one value; the first reason set wins.
//!
//! `--duration` counts from the moment every target named at the start is capturing
//! (or has failed), not from kcap's start: a slow starter (an ephemeral container, a
//! helper pod, a far SSH hop) still gets the whole duration, as `timeout 10 tcpdump`
//! would on each host. Pods joining later (`--follow`) do not move the clock.

use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Interrupted,
    Terminated,
    Duration,
    Count,
    OutputFailed,
}

/// Shared by everything that may decide to stop the capture.
#[derive(Debug, Clone)]
pub struct Stop {
    tx: watch::Sender<Option<StopReason>>,
    /// Every initial source has started capturing or ended.
    all_capturing: watch::Sender<bool>,
}

impl Stop {
    pub fn new() -> Stop {
        Stop {
            tx: watch::channel(None).0,
            all_capturing: watch::channel(false).0,
        }
    }

    /// Called by the writer once every initial source has sent its pcap header or
    /// ended.
    pub fn all_capturing(&self) {
        self.all_capturing.send_replace(true);
    }

    /// Resolves once [`Stop::all_capturing`] was called.
    pub async fn until_all_capturing(&self) {
        let mut rx = self.all_capturing.subscribe();
        let _ = rx.wait_for(|all| *all).await;
    }

    /// Records `reason` unless another reason came first.
    pub fn stop(&self, reason: StopReason) {
        self.tx.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }

    pub fn reason(&self) -> Option<StopReason> {
        *self.tx.borrow()
    }

    /// Resolves once a stop has been requested.
    pub async fn stopped(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(Option::is_some).await;
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
