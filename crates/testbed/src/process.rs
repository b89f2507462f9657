//! Spawning long-running daemons (sshd, traffic generators) detached from
//! the caller's terminal so a persisted bed outlives `kcap-testbed up`.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// Spawns `cmd` in a new session: no controlling terminal, so closing the
/// terminal (SIGHUP) or Ctrl-C in it does not kill the bed.
pub(crate) fn spawn_daemon(cmd: &mut Command) -> io::Result<Child> {
    // SAFETY: setsid(2) is async-signal-safe and touches no Rust state.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}
