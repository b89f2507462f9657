//! Decode benchmark (issue 9): one capture file through [`kcap_records::Decoder`]
//! on one thread, every record serialized as the JSON line kcap would write (to
//! memory, counted, not kept), and how fast.
//!
//! ```text
//! decode_bench FILE
//! ```
//!
//! Prints one `key=value` line: bytes and packets read, records, JSON bytes, wall
//! seconds, records/s, MB/s (file bytes / wall) and peak RSS (VmHWM, KiB).

use std::time::Instant;

use kcap_records::{Decoder, Limits, Settings};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: decode_bench FILE")?;
    let bytes = std::fs::metadata(&path)?.len();
    let start = Instant::now();
    let mut reader = kcap_pcap::open(path.as_ref())?;
    let mut decoder = Decoder::new(Settings {
        http: true,
        dns: true,
        dns_ports: vec![53, 5353],
        body_bytes: 0,
        limits: Limits::default(),
    });
    let (mut packets, mut records, mut json_bytes) = (0u64, 0u64, 0u64);
    let mut out = Vec::new();
    let mut line = Vec::new();
    while let Some(record) = reader.next() {
        let record = record?;
        packets += 1;
        let link = reader.interfaces()[record.interface_id as usize].link_type;
        let p = &record.packet;
        decoder.packet("bench", link, p.ts_nanos, &p.data, &mut out);
        for r in out.drain(..) {
            line.clear();
            serde_json::to_writer(&mut line, &r)?;
            json_bytes += line.len() as u64 + 1;
            records += 1;
        }
    }
    decoder.finish(&mut out);
    records += out.len() as u64;
    let wall = start.elapsed().as_secs_f64();
    let status = std::fs::read_to_string("/proc/self/status")?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .map(|v| v.trim().trim_end_matches(" kB").to_string())
        .unwrap_or_default();
    println!(
        "bytes={bytes} packets={packets} records={records} json_bytes={json_bytes} \
         wall_s={wall:.3} records_per_s={:.0} mb_per_s={:.1} peak_rss_kib={hwm}",
        records as f64 / wall,
        bytes as f64 / wall / 1e6,
    );
    Ok(())
}
