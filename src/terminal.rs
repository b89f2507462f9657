//! stderr shared by log lines and the live status area. The area is a few lines
//! redrawn in place at the bottom of the terminal; every log line goes through
//! here so it is written above the area (the area is erased, the line written,
//! the area drawn again) and the two never garble each other.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

/// The lines of the area now on screen (none: no area).
static AREA: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Whether stderr is a terminal wide enough for an area, and its width.
pub fn stderr_width() -> Option<usize> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    // SAFETY: TIOCGWINSZ fills the winsize we pass.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    let width = if ok && size.ws_col > 0 {
        size.ws_col as usize
    } else {
        80
    };
    (width >= 40).then_some(width)
}

/// Replaces the area with `lines` (each already cut to the terminal's width, so
/// none wraps and the cursor arithmetic holds). Empty `lines` removes it.
pub fn draw(lines: Vec<String>) {
    let mut area = AREA.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = erase(area.len());
    for line in &lines {
        out.push_str(line);
        out.push_str("\x1b[K\n");
    }
    *area = lines;
    let _ = std::io::stderr().write_all(out.as_bytes());
}

/// Moves to the start of the area and clears to the end of the screen.
fn erase(lines: usize) -> String {
    match lines {
        0 => String::new(),
        n => format!("\r\x1b[{n}A\x1b[J"),
    }
}

/// The writer tracing's log lines go through: each write lands above the area.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let area = AREA.lock().unwrap_or_else(|p| p.into_inner());
        let mut stderr = std::io::stderr().lock();
        if area.is_empty() {
            return stderr.write(buf);
        }
        let mut out = erase(area.len()).into_bytes();
        out.extend_from_slice(buf);
        if !buf.ends_with(b"\n") {
            out.push(b'\n');
        }
        for line in area.iter() {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\x1b[K\n");
        }
        stderr.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
