//! Helpers shared by the integration tests: deterministic sample packets,
//! a write-recording sink and a tshark wrapper.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::Write;
use std::path::Path;
use std::process::Command;

use kcap_pcap::Packet;

/// A tiny deterministic PRNG (xorshift64*), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// `n` packets with increasing nanosecond timestamps (not multiples of
/// 1000, to catch microsecond truncation), varied lengths including 0 and
/// odd ones (to exercise padding), and some with orig_len > caplen.
pub fn sample_packets(n: usize, seed: u64) -> Vec<Packet> {
    let mut rng = Rng::new(seed);
    let mut ts = 1_700_000_000_123_456_789u64;
    (0..n)
        .map(|i| {
            ts += 1 + rng.below(5_000_000_000);
            let len = match i % 7 {
                0 => 0,
                1 => 1,
                2 => 3,
                _ => rng.below(1600) as usize,
            };
            let data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let orig_len = if i % 5 == 0 {
                len as u32 + 100
            } else {
                len as u32
            };
            Packet {
                ts_nanos: ts,
                orig_len,
                data: data.into(),
                comment: None,
            }
        })
        .collect()
}

/// A `Write` that keeps every byte and remembers where each `write` call ended.
#[derive(Default)]
pub struct RecordingWriter {
    pub bytes: Vec<u8>,
    pub write_ends: Vec<usize>,
    pub flushes: usize,
}

impl Write for RecordingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        self.write_ends.push(self.bytes.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.flushes += 1;
        Ok(())
    }
}

/// The tshark binary, or `None` (with a message) so the caller can skip.
pub fn tshark() -> Option<&'static str> {
    let path = "/usr/bin/tshark";
    if Path::new(path).exists() {
        Some(path)
    } else {
        eprintln!("SKIPPED: tshark not found at {path}");
        None
    }
}

/// Runs tshark on `file` and returns one row of `fields` per frame. Fails the
/// test if tshark reports any problem with the file.
pub fn tshark_fields(tshark: &str, file: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new(tshark);
    cmd.args(["-n", "-r"]).arg(file).args([
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-E",
        "occurrence=f",
    ]);
    for field in fields {
        cmd.args(["-e", field]);
    }
    run_tshark(cmd)
        .lines()
        .map(|line| line.split('|').map(str::to_owned).collect())
        .collect()
}

/// The raw bytes of every frame of `file` as tshark sees them, in hex.
pub fn tshark_frames_hex(tshark: &str, file: &Path) -> Vec<String> {
    let mut cmd = Command::new(tshark);
    cmd.args(["-n", "-r"]).arg(file).args(["-T", "json", "-x"]);
    let json = run_tshark(cmd);
    // One JSON object per frame, each starting with "_index"; an empty frame
    // has no "frame_raw" at all, so look for it per object.
    json.split("\"_index\"")
        .skip(1)
        .map(|frame| match frame.split_once("\"frame_raw\": [") {
            Some((_, rest)) => {
                let value = rest
                    .trim_start()
                    .split('"')
                    .nth(1)
                    .expect("frame_raw value");
                value.to_owned()
            }
            None => String::new(),
        })
        .collect()
}

/// Runs tshark, failing the test if it reports any problem with the file.
fn run_tshark(mut cmd: Command) -> String {
    let output = cmd.output().expect("run tshark");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let problems: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains("Running as user \"root\""))
        .collect();
    assert!(output.status.success(), "tshark failed: {stderr}");
    assert!(problems.is_empty(), "tshark complained: {problems:?}");
    String::from_utf8(output.stdout).expect("tshark output is UTF-8")
}

/// Lower-case hex, as tshark prints bytes fields.
pub fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// tshark's `frame.time_epoch` ("1700000000.123456789") as nanoseconds.
pub fn parse_epoch(text: &str) -> u64 {
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let mut frac = frac.to_owned();
    assert!(frac.len() <= 9, "unexpected precision in {text}");
    while frac.len() < 9 {
        frac.push('0');
    }
    secs.parse::<u64>().unwrap() * 1_000_000_000 + frac.parse::<u64>().unwrap()
}
