//! Deleting helper pods even when kcap cannot: SIGKILL runs no cleanup code. At
//! start kcap launches a copy of itself in a hidden mode (`kcap __kcap-reaper`), in
//! its own process group (Ctrl-C in the terminal does not reach it) and ignoring
//! SIGINT/SIGTERM, holding a pipe from kcap. kcap writes `+ NS NAME` when it
//! creates a helper pod and `- NS NAME` once it deleted it. When the pipe closes,
//! however kcap ended, the reaper deletes whatever is still listed (retrying for up
//! to 15 minutes while the API is unreachable), then exits.
//! Capture processes need no reaper: the wrapper stops them 5 s after the
//! heartbeat stops.

use std::io::{BufRead, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use kcap_kube::client::ClientOptions;
use kcap_kube::methods::HelperPod;

/// The hidden first argument selecting reaper mode.
pub const MODE: &str = "__kcap-reaper";
/// How long the reaper keeps trying to delete helper pods, each attempt bounded
/// by [`ATTEMPT`], [`PAUSE`] apart.
const PATIENCE: Duration = Duration::from_secs(15 * 60);
const ATTEMPT: Duration = Duration::from_secs(10);
const PAUSE: Duration = Duration::from_secs(2);

/// kcap's end of the pipe. A disabled reaper (could not start, or no helper pods
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
                    "kcap: warning: cannot start the helper-pod reaper ({e}): if kcap is killed, delete leftovers with kubectl delete pods -l {}",
                    kcap_kube::methods::HELPER_LABEL
                );
                Reaper::disabled()
            }
        }
    }

    pub fn created(&self, helper: &HelperPod) {
        self.send('+', helper);
    }

    pub fn deleted(&self, helper: &HelperPod) {
        self.send('-', helper);
    }

    fn send(&self, op: char, helper: &HelperPod) {
        if let Some(pipe) = self.pipe.lock().expect("not poisoned").as_mut() {
            let _ = writeln!(pipe, "{op} {} {}", helper.namespace, helper.name);
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
    let mut live: Vec<HelperPod> = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let mut words = line.split(' ');
        let (Some(op), Some(ns), Some(name)) = (words.next(), words.next(), words.next()) else {
            continue;
        };
        let helper = HelperPod {
            namespace: ns.into(),
            name: name.into(),
        };
        match op {
            "+" => live.push(helper),
            "-" => live.retain(|h| *h != helper),
            _ => {}
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
        // trying, each attempt bounded, until every helper is gone or PATIENCE passed.
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !live.is_empty() && tokio::time::Instant::now() < deadline {
            let mut left = Vec::new();
            for helper in live {
                match tokio::time::timeout(ATTEMPT, helper.delete(&cluster.client)).await {
                    Ok(Ok(())) => {}
                    // Refused: asking again will not help.
                    Ok(Err(kcap_kube::Error::Forbidden { .. })) => {}
                    _ => left.push(helper),
                }
            }
            live = left;
            if !live.is_empty() {
                tokio::time::sleep(PAUSE).await;
            }
        }
    });
    std::process::ExitCode::SUCCESS
}
