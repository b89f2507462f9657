//! The live status area: drawn on stderr when it is a terminal (read here
//! through a real pseudo-terminal made by `script`), absent when stderr is a
//! file, and gone before the summary.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::{Bed, assert_ok, read_capture, run, stderr};

/// `cmd` run by `script` on a pseudo-terminal (stdin, stdout and stderr all the
/// terminal); returns what the terminal received.
fn on_a_terminal(cmd: &Command, bed: &Bed) -> (std::process::Output, String) {
    let quote = |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"));
    let line: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(quote)
        .collect();
    let typescript = bed.path("typescript");
    let mut script = Command::new("script");
    script
        .args(["-q", "-e", "-c", &line.join(" ")])
        .arg(&typescript)
        .stdin(Stdio::null());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => script.env(key, v),
            None => script.env_remove(key),
        };
    }
    let out = run(&mut script, Duration::from_secs(60));
    let seen = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    (out, seen)
}

#[test]
fn status_area_on_a_terminal_and_none_on_a_file() {
    let bed = Bed::minimal();
    let file = bed.path("status.pcapng");
    let mut kcap = bed.kcap();
    kcap.args([
        "--ssh-host",
        "node-a",
        "--ssh-host",
        "node-b",
        "-d",
        "3s",
        "-o",
    ])
    .arg(&file);
    let (out, seen) = on_a_terminal(&kcap, &bed);
    assert!(out.status.success(), "{seen}");
    // Redrawn in place: cursor up over the area's three lines, cleared, drawn.
    let redraws = seen.matches("\x1b[3A\x1b[J").count();
    assert!(redraws >= 4, "{redraws} redraws in:\n{seen}");
    for says in [
        "kcap: 2 capturing · ",
        " left (-d)",
        "  node-a  ",
        "  node-b  ",
    ] {
        assert!(seen.contains(says), "no {says:?} in:\n{seen}");
    }
    assert!(
        seen.contains("starting") || seen.contains("capturing"),
        "{seen}"
    );
    // The summary comes after the area was erased for the last time.
    let last_erase = seen.rfind("\x1b[J").unwrap();
    let summary = seen.find("kcap: wrote ").expect("a summary");
    assert!(summary > last_erase, "{seen}");
    assert!(!seen[summary..].contains("capturing ·"), "{seen}");
    // What the area counted is what the file holds.
    let wrote: usize = seen[summary..]["kcap: wrote ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(read_capture(&file).records.len(), wrote);

    // stderr a file (here a pipe): the same capture prints no area.
    let mut kcap = bed.kcap();
    kcap.args(["--ssh-host", "node-a", "-d", "2s", "-o"])
        .arg(bed.path("plain.pcapng"));
    let out = run(&mut kcap, Duration::from_secs(60));
    assert_ok(&out);
    let text = stderr(&out);
    assert!(
        !text.contains('\x1b') && !text.contains("capturing ·"),
        "{text}"
    );
    assert!(text.contains("kcap: wrote "), "{text}");
}
