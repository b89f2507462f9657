//! Finding kcap's capture agent (crates/agent) to send with each capture.
//!
//! The agent is installed next to kcap (`cargo install` builds both). `KCAP_AGENT`
//! names another file (a release build for benchmarks, say). Without one,
//! `--remote-tool auto` captures with tcpdump as before; `--remote-tool agent` is
//! refused here, before anything is started.

use std::path::PathBuf;
use std::sync::Arc;

use kcap_capture::command::{AgentBinary, Tool};

/// The agent for `tool`: `None` when it is not wanted or (for `auto`) not found.
pub fn for_tool(tool: Tool) -> Result<Option<AgentBinary>, String> {
    if !matches!(tool, Tool::Auto | Tool::Agent) {
        return Ok(None);
    }
    let path = match std::env::var_os("KCAP_AGENT") {
        Some(path) => PathBuf::from(path),
        None => match std::env::current_exe() {
            Ok(exe) => exe.with_file_name("kcap-agent"),
            Err(_) => return Ok(None),
        },
    };
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(AgentBinary(Arc::from(bytes)))),
        Err(e) if tool == Tool::Agent => Err(format!(
            "--remote-tool agent: cannot read kcap's capture agent {}: {e}; install kcap with `cargo install --path .` (it installs kcap-agent next to kcap) or set KCAP_AGENT to its path",
            path.display()
        )),
        Err(e) => {
            tracing::debug!(
                "no capture agent at {}: {e}; capturing with tcpdump",
                path.display()
            );
            Ok(None)
        }
    }
}
