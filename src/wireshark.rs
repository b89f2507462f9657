//! Handing the live capture to Wireshark: `--wireshark` finds and starts
//! `wireshark -k -i -` on a pipe, and the extcap mode ([`crate::extcap`]) writes into
//! the FIFO Wireshark gave it. Either way the stream is a [`ViewerSink`], and the
//! viewer going away (Wireshark closed, or its Stop button) ends the capture cleanly.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::sink::viewer::ViewerSink;
use crate::sink::{Sink, SinkError};
use crate::stop::{Stop, StopReason};

/// Names another Wireshark (or a stand-in) to start for `--wireshark`: a path, or a
/// program name looked up on PATH.
pub const PROGRAM_ENV: &str = "KCAP_WIRESHARK";

/// Where Wireshark is on macOS when it is not on PATH (the .dmg installs it there).
const MACOS_APP: &str = "/Applications/Wireshark.app/Contents/MacOS/Wireshark";

/// Wireshark's arguments for a live pcapng stream on stdin: start capturing at once.
pub const LIVE_ARGS: [&str; 3] = ["-k", "-i", "-"];

/// Who reads the live stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// `--wireshark`: kcap starts Wireshark.
    Launch,
    /// Extcap: Wireshark started kcap and reads this FIFO.
    Fifo(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum WiresharkError {
    /// Exit code 2, with how to install it.
    #[error("--wireshark: cannot find Wireshark (looked for {looked_for})")]
    NotFound { looked_for: String },
    #[error("--wireshark: cannot start {}", program.display())]
    Start {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open Wireshark's FIFO {}", path.display())]
    Fifo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The first write (the section header) failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

impl WiresharkError {
    /// What would fix it, for the report.
    pub fn hint(&self) -> Option<String> {
        match self {
            WiresharkError::NotFound { .. } => Some(format!(
                "install Wireshark (apt install wireshark, dnf install wireshark, \
                 brew install --cask wireshark, or https://www.wireshark.org/download.html), \
                 or set {PROGRAM_ENV} to its path;\n\
                 or pipe the capture into it yourself: kcap ... -o - | wireshark -k -i -"
            )),
            WiresharkError::Start { .. }
            | WiresharkError::Fifo { .. }
            | WiresharkError::Sink(_) => None,
        }
    }
}

/// Where the viewer is, found before anything connects so a missing Wireshark fails
/// in milliseconds.
#[derive(Debug)]
pub enum Prepared {
    Program(PathBuf),
    Fifo(PathBuf),
}

impl Prepared {
    pub fn find(viewer: &Viewer) -> Result<Prepared, WiresharkError> {
        match viewer {
            Viewer::Launch => find_program().map(Prepared::Program),
            Viewer::Fifo(path) => Ok(Prepared::Fifo(path.clone())),
        }
    }

    /// Starts Wireshark (or opens the FIFO) and returns the sink writing to it. A
    /// started Wireshark that exits stops the capture, even while no packet flows.
    pub fn start(self, stop: &Stop) -> Result<Box<dyn Sink>, WiresharkError> {
        let (pipe, target): (Box<dyn std::io::Write + Send>, String) = match self {
            Prepared::Fifo(path) => match File::options().write(true).open(&path) {
                Ok(fifo) => (Box::new(fifo), path.display().to_string()),
                Err(source) => return Err(WiresharkError::Fifo { path, source }),
            },
            Prepared::Program(program) => match launch(&program, stop) {
                Ok(stdin) => (Box::new(stdin), format!("{}'s stdin", program.display())),
                Err(source) => return Err(WiresharkError::Start { program, source }),
            },
        };
        Ok(Box::new(ViewerSink::new(pipe, target, stop.clone())?))
    }
}

/// Told once the thread watching Wireshark has said how it ended.
static ENDED: std::sync::Mutex<Option<std::sync::mpsc::Receiver<()>>> = std::sync::Mutex::new(None);

/// When Wireshark went away, waits (up to `limit`) until how it ended is on
/// stderr: its closed pipe can stop the capture before its exit status is in,
/// and the summary should come after that line.
pub fn settle(limit: std::time::Duration) {
    let ended = ENDED.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(ended) = ended {
        let _ = ended.recv_timeout(limit);
    }
}

/// Starts `program -k -i -` with a pipe on its stdin, in its own process group so
/// a Ctrl-C meant for kcap leaves Wireshark open on what was captured.
fn launch(program: &Path, stop: &Stop) -> std::io::Result<std::process::ChildStdin> {
    let mut child = Command::new(program)
        .args(LIVE_ARGS)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()?;
    let stdin = child.stdin.take().expect("stdin is piped");
    let stop = stop.clone();
    let (said, ended) = std::sync::mpsc::channel();
    *ENDED.lock().unwrap_or_else(|p| p.into_inner()) = Some(ended);
    // When kcap ends first, Wireshark stays open: this thread just ends with kcap.
    std::thread::spawn(move || {
        match child.wait() {
            Ok(status) if status.success() => {
                tracing::info!("kcap: Wireshark closed: stopping the capture");
            }
            // Started but failed (no display?): its own message is above on stderr.
            Ok(status) => tracing::warn!("kcap: Wireshark ended ({status}): stopping the capture"),
            Err(e) => tracing::warn!("kcap: cannot wait for Wireshark ({e}): stopping the capture"),
        }
        stop.stop(StopReason::ViewerClosed);
        let _ = said.send(());
    });
    Ok(stdin)
}

/// `$KCAP_WIRESHARK`, else `wireshark` on PATH, else the macOS application.
fn find_program() -> Result<PathBuf, WiresharkError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    if let Some(named) = std::env::var_os(PROGRAM_ENV).filter(|v| !v.is_empty()) {
        let named = PathBuf::from(named);
        return locate(&named, &dirs).ok_or_else(|| WiresharkError::NotFound {
            looked_for: format!("{PROGRAM_ENV}={}", named.display()),
        });
    }
    locate(Path::new("wireshark"), &dirs)
        .or_else(|| is_executable(Path::new(MACOS_APP)).then(|| PathBuf::from(MACOS_APP)))
        .ok_or_else(|| WiresharkError::NotFound {
            looked_for: format!("wireshark on PATH and {MACOS_APP}"),
        })
}

/// A program by path (when it has a `/`) or by name in `dirs`, as a shell finds it.
fn locate(program: &Path, dirs: &[PathBuf]) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return is_executable(program).then(|| program.to_path_buf());
    }
    dirs.iter()
        .map(|d| d.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_follows_path_order_and_skips_non_executables() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(a.join("wireshark"), "not executable").unwrap();
        std::fs::write(b.join("wireshark"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(b.join("wireshark"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let dirs = vec![a.clone(), b.clone()];
        assert_eq!(
            locate(Path::new("wireshark"), &dirs),
            Some(b.join("wireshark"))
        );
        assert_eq!(locate(Path::new("tshark-none"), &dirs), None);
        assert_eq!(locate(&a.join("wireshark"), &[]), None);
        assert_eq!(locate(&b.join("wireshark"), &[]), Some(b.join("wireshark")));
    }
}
