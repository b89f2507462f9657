//! Ending what kcap made in the cluster even when kcap cannot: SIGKILL runs no
//! cleanup code. At start kcap launches a copy of itself in a hidden mode
//! (`kcap __kcap-reaper`), in its own process group (Ctrl-C in the terminal does
//! not reach it) and ignoring SIGINT/SIGTERM, holding a pipe from kcap. kcap writes
//! a `+` line for each [`Leftover`] it made (a helper pod it created, a debug
//! container it added) and a `-` line once it is dealt with (the helper deleted,
//! the debug container opened or ended). When the pipe closes, however kcap ended,
//! the reaper ends whatever is still listed (retrying for up to 15 minutes while
//! the API is unreachable), then exits.
//! Capture processes need no reaper: the wrapper stops them 5 s after the
//! heartbeat stops.

use std::io::{BufRead, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use kcap_kube::client::ClientOptions;
use kcap_kube::debug_container::DebugContainer;
use kcap_kube::debug_container::START_TIMEOUT;
use kcap_kube::methods::HelperPod;

/// The hidden first argument selecting reaper mode.
pub const MODE: &str = "__kcap-reaper";
/// How long the reaper keeps trying to end leftovers, each attempt bounded by
/// [`ATTEMPT`] (a debug container may first take [`START_TIMEOUT`] to start),
/// [`PAUSE`] apart.
const PATIENCE: Duration = Duration::from_secs(15 * 60);
const ATTEMPT: Duration = Duration::from_secs(10);
const PAUSE: Duration = Duration::from_secs(2);

/// What kcap made in the cluster and must not leave there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leftover {
    Helper(HelperPod),
    Debug(DebugContainer),
}

impl Leftover {
    /// The pipe's line for it, after the `+`/`-`.
    fn line(&self) -> String {
        match self {
            Leftover::Helper(h) => format!("helper {} {}", h.namespace, h.name),
            Leftover::Debug(d) => format!("debug {} {} {}", d.namespace, d.pod, d.name),
        }
    }

    /// A pipe line back: `Some((added, leftover))`.
    fn parse(line: &str) -> Option<(bool, Leftover)> {
        let words: Vec<&str> = line.split(' ').collect();
        let added = match *words.first()? {
            "+" => true,
            "-" => false,
            _ => return None,
        };
        let leftover = match words[1..] {
            ["helper", namespace, name] => Leftover::Helper(HelperPod {
                namespace: namespace.into(),
                name: name.into(),
            }),
            ["debug", namespace, pod, name] => Leftover::Debug(DebugContainer {
                namespace: namespace.into(),
                pod: pod.into(),
                name: name.into(),
            }),
            _ => return None,
        };
        Some((added, leftover))
    }

    /// Deletes the helper pod, or ends the debug container at its gate.
    async fn end(&self, client: &kube::Client) -> Result<(), kcap_kube::Error> {
        match self {
            Leftover::Helper(h) => h.delete(client).await,
            Leftover::Debug(d) => d.end(client).await,
        }
    }
}

impl From<&HelperPod> for Leftover {
    fn from(h: &HelperPod) -> Leftover {
        Leftover::Helper(h.clone())
    }
}

impl From<&DebugContainer> for Leftover {
    fn from(d: &DebugContainer) -> Leftover {
        Leftover::Debug(d.clone())
    }
}

/// kcap's end of the pipe. A disabled reaper (could not start, or nothing to reap
/// possible) just does nothing.
pub struct Reaper {
    pipe: Mutex<Option<ChildStdin>>,
    _child: Option<Child>,
}

impl Reaper {
    pub fn disabled() -> Reaper {
        Reaper {
            pipe: Mutex::new(None),
            _child: None,
        }
    }

    pub fn start(options: &ClientOptions) -> Reaper {
        use std::os::unix::process::CommandExt;
        let Ok(exe) = std::env::current_exe() else {
            return Reaper::disabled();
        };
        let mut cmd = Command::new(exe);
        cmd.arg(MODE);
        if let Some(k) = &options.kubeconfig {
            cmd.arg("--kubeconfig").arg(k);
        }
        if let Some(c) = &options.context {
            cmd.arg("--context").arg(c);
        }
        // Its own process group: a terminal's Ctrl-C goes to kcap's group only.
        cmd.process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match cmd.spawn() {
            Ok(mut child) => Reaper {
                pipe: Mutex::new(child.stdin.take()),
                _child: Some(child),
            },
            Err(e) => {
                tracing::warn!(
                    "kcap: warning: cannot start the reaper ({e}): if kcap is killed, delete leftover helper pods with kubectl delete pods -l {}",
                    kcap_kube::methods::HELPER_LABEL
                );
                Reaper::disabled()
            }
        }
    }

    /// kcap made `leftover`: the reaper ends it unless told [`Reaper::dealt_with`].
    pub fn made(&self, leftover: impl Into<Leftover>) {
        self.send('+', &leftover.into());
    }

    pub fn dealt_with(&self, leftover: impl Into<Leftover>) {
        self.send('-', &leftover.into());
    }

    fn send(&self, op: char, leftover: &Leftover) {
        if let Some(pipe) = self.pipe.lock().expect("not poisoned").as_mut() {
            let _ = writeln!(pipe, "{op} {}", leftover.line());
        }
    }
}

/// Reaper mode: `args` are what follows [`MODE`].
pub fn main(args: &[String]) -> std::process::ExitCode {
    // SAFETY: setting signal dispositions to SIG_IGN before any thread starts.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let mut options = ClientOptions::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--kubeconfig" => options.kubeconfig = it.next().map(Into::into),
            "--context" => options.context = it.next().cloned(),
            _ => {}
        }
    }
    let mut live: Vec<Leftover> = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match Leftover::parse(&line) {
            Some((true, leftover)) => live.push(leftover),
            Some((false, leftover)) => live.retain(|l| *l != leftover),
            None => {}
        }
    }
    if live.is_empty() {
        return std::process::ExitCode::SUCCESS;
    }
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return std::process::ExitCode::FAILURE;
    };
    runtime.block_on(async {
        let Ok(cluster) = kcap_kube::client::connect(&options).await else {
            return;
        };
        // The API may be unreachable for a while (the reason kcap ended?): keep
        // trying, each attempt bounded, until every leftover is gone or PATIENCE
        // passed. Leftovers are ended side by side: a debug container may first
        // have to finish starting.
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !live.is_empty() && tokio::time::Instant::now() < deadline {
            let mut attempts = tokio::task::JoinSet::new();
            for leftover in live.drain(..) {
                let client = cluster.client.clone();
                attempts.spawn(async move {
                    let limit = match leftover {
                        Leftover::Helper(_) => ATTEMPT,
                        Leftover::Debug(_) => START_TIMEOUT + ATTEMPT,
                    };
                    match tokio::time::timeout(limit, leftover.end(&client)).await {
                        Ok(Ok(())) => None,
                        // Refused: asking again will not help.
                        Ok(Err(kcap_kube::Error::Forbidden { .. })) => None,
                        _ => Some(leftover),
                    }
                });
            }
            live = attempts.join_all().await.into_iter().flatten().collect();
            if !live.is_empty() {
                tokio::time::sleep(PAUSE).await;
            }
        }
    });
    std::process::ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_lines_round_trip() {
        let helper = Leftover::Helper(HelperPod {
            namespace: "prod".into(),
            name: "kcap-helper-bcdfg".into(),
        });
        let debug = Leftover::Debug(DebugContainer {
            namespace: "prod".into(),
            pod: "web-0".into(),
            name: "kcap-bcdfg".into(),
        });
        for leftover in [helper, debug] {
            let line = leftover.line();
            assert_eq!(
                Leftover::parse(&format!("+ {line}")),
                Some((true, leftover.clone()))
            );
            assert_eq!(
                Leftover::parse(&format!("- {line}")),
                Some((false, leftover))
            );
        }
        assert_eq!(Leftover::parse("+ debug prod web-0"), None);
        assert_eq!(Leftover::parse("* helper prod x"), None);
        assert_eq!(Leftover::parse(""), None);
    }
}
