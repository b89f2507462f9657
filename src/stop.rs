//! When to stop: the first of Ctrl-C/SIGTERM, `--duration`, `--count`, or every source
//! ending by itself. Everyone watches one value; the first reason set wins.

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
}

impl Stop {
    pub fn new() -> Stop {
        Stop {
            tx: watch::channel(None).0,
        }
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
