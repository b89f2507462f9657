//! tcpdump's payload dumps: `-x` (hex), `-X` (hex and ASCII) and `-A` (ASCII),
//! 16 bytes a line, each line starting with a tab and the offset.

use std::fmt::Write;

/// How to dump a packet's bytes after its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dump {
    Hex,
    HexAscii,
    Ascii,
}

/// The dump of `data` as tcpdump prints it after the packet's line (each output
/// line starts with `\n`, so it appends to the packet's line as tcpdump's does).
pub fn dump(kind: Dump, data: &[u8]) -> String {
    let mut out = String::new();
    match kind {
        Dump::Hex => {
            for (i, line) in data.chunks(16).enumerate() {
                let _ = write!(out, "\n\t0x{:04x}: ", i * 16);
                for pair in line.chunks(2) {
                    out.push(' ');
                    for b in pair {
                        let _ = write!(out, "{b:02x}");
                    }
                }
            }
        }
        Dump::HexAscii => {
            for (i, line) in data.chunks(16).enumerate() {
                let mut hex = String::new();
                for pair in line.chunks(2) {
                    hex.push(' ');
                    for b in pair {
                        let _ = write!(hex, "{b:02x}");
                    }
                }
                let ascii: String = line
                    .iter()
                    .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
                    .collect();
                let _ = write!(out, "\n\t0x{:04x}: {hex:<40}  {ascii}", i * 16);
            }
        }
        Dump::Ascii => {
            out.push('\n');
            for (i, &b) in data.iter().enumerate() {
                match b {
                    // A CR before LF is the line end's; any other is shown as a dot.
                    b'\r' if data.get(i + 1) == Some(&b'\n') => {}
                    b'\r' => out.push('.'),
                    b'\t' | b' ' | b'\n' => out.push(b as char),
                    b if b.is_ascii_graphic() => out.push(b as char),
                    _ => out.push('.'),
                }
            }
        }
    }
    out
}
