//! `--wireshark`: kcap starts Wireshark on the live stream. A stand-in named
//! `wireshark` on PATH records its arguments and what arrives on its stdin, then
//! exits early as a user closing Wireshark would: kcap must stop cleanly (exit 0,
//! the file complete, nothing left on the node). Without Wireshark: a clear error.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::*;

/// Reads for `seconds`, then exits (closing the pipe), like a user closing Wireshark.
fn stand_in(dir: &Path, seconds: u32) {
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{dir}/args'\n\
         timeout {seconds} cat > '{dir}/stdin.pcapng'\nexit 0\n",
        dir = dir.display()
    );
    let path = dir.join("wireshark");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The pcapng blocks of `bytes` up to the last complete one: the stand-in was
/// stopped at an arbitrary byte, as Wireshark closing mid-stream is.
fn complete_blocks(bytes: &[u8]) -> &[u8] {
    let mut end = 0;
    while let Some(header) = bytes.get(end..end + 8) {
        let length = u32::from_le_bytes(header[4..8].try_into().unwrap()) as usize;
        if length < 12 || end + length > bytes.len() {
            break;
        }
        end += length;
    }
    &bytes[..end]
}

#[test]
fn wireshark_reads_the_live_stream_and_closing_it_stops_kcap() {
    let bed = Bed::minimal();
    let bin = bed.path("bin");
    std::fs::create_dir(&bin).unwrap();
    stand_in(&bin, 6);
    let file = bed.path("also.pcapng");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let started = Instant::now();
    let child = bed
        .kcap()
        .env("PATH", path)
        .env_remove("KCAP_WIRESHARK")
        .args(["--ssh-host", "node-a", "--wireshark", "-o"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // No --duration or --count: only the stand-in exiting ends the capture.
    let out = wait(child, Duration::from_secs(30));
    assert_ok(&out);
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "kcap ended before Wireshark closed"
    );
    assert!(
        stderr(&out).contains("(Wireshark closed)"),
        "{}",
        stderr(&out)
    );
    let args = std::fs::read_to_string(bin.join("args")).unwrap();
    assert_eq!(args.lines().collect::<Vec<_>>(), ["-k", "-i", "-"]);

    let received = std::fs::read(bin.join("stdin.pcapng")).unwrap();
    let trimmed = bed.path("received.pcapng");
    std::fs::write(&trimmed, complete_blocks(&received)).unwrap();
    let seen = tshark_fields(&trimmed, None, &["frame.interface_name"]);
    assert!(!seen.is_empty(), "Wireshark got no packet");
    assert!(seen.iter().all(|f| f[0].starts_with("node-a")), "{seen:?}");
    // The file got at least what Wireshark got, and is complete.
    let capture = read_capture(&file);
    assert!(capture.records.len() >= seen.len());
    assert!(
        bed.wait_capture_gone("node-a", Duration::from_secs(5))
            .is_empty(),
        "a capture survived"
    );
}

#[test]
fn wireshark_missing_says_how_to_install_it() {
    let bed = Bed::minimal();
    let started = Instant::now();
    let out = run(
        bed.kcap()
            .env("KCAP_WIRESHARK", "wireshark-not-installed")
            .args(["--ssh-host", "node-a", "--wireshark"]),
        Duration::from_secs(30),
    );
    assert_exit(
        &out,
        2,
        &[
            "cannot find Wireshark",
            "apt install wireshark",
            "https://www.wireshark.org/download.html",
            "-o - | wireshark -k -i -",
        ],
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "it connected first"
    );
    assert!(bed.bed.processes_named("node-a", "kcap-agent").is_empty());
}

/// A Wireshark that cannot start (no display, say) ends the capture at once, and
/// kcap says how it ended.
#[test]
fn wireshark_failing_at_start_stops_kcap_and_says_so() {
    let bed = Bed::minimal();
    let program = bed.path("broken-wireshark");
    std::fs::write(
        &program,
        "#!/bin/sh\necho 'cannot open display' >&2\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run(
        bed.kcap()
            .env("KCAP_WIRESHARK", &program)
            .args(["--ssh-host", "node-a", "--wireshark"]),
        Duration::from_secs(30),
    );
    assert_exit(
        &out,
        0,
        &["cannot open display", "Wireshark ended (exit status: 1)"],
    );
    assert!(
        bed.wait_capture_gone("node-a", Duration::from_secs(5))
            .is_empty(),
        "a capture survived"
    );
}
