//! Merge benchmark (issue 11): N classic pcap files in, one pcapng out, on one
//! thread, the way kcap's pipeline does it, and how fast.
//!
//! Each file stands for one remote stream: it is read in fixed-size chunks (64 KiB
//! by default, as SSH data arrives), each chunk goes through its own
//! [`StreamDecoder`], the chunk's packets go to the [`Merger`] as one batch (as
//! `Event::Packets` does), and after each batch whatever may go out is popped and
//! written as pcapng, one interface per source. kcap's `src/pipeline.rs` lives in
//! the binary crate and is driven by a channel, so it is mirrored here rather than
//! called: the same hold (1 s) and budget (8 MiB), `pop(now)` after every batch,
//! a flush every 500 ms, `pop_any` at the end. Memory is bounded by the chunk
//! size, the merger's budget and the writer's buffer, not by the files' size.
//!
//! ```text
//! merge_bench [--chunk BYTES] [--out PATH|sink] [--feed time|round-robin]
//!             [--stage read|decode|merge|write] FILE...
//! ```
//!
//! `--stage` stops after that part (read only; + decode; + merge; everything,
//! the default), so the parts' costs can be told apart by difference.
//! Prints one `key=value` line: bytes in, packets, bytes out, wall and CPU
//! (user+sys from getrusage) seconds, GB/s (bytes in / wall) and CPU ns per packet.

use std::fs::File;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use kcap_pcap::{InterfaceDescription, Merger, Packet, PcapngWriter, StreamDecoder};

/// As in src/pipeline.rs.
const MERGE_HOLD: Duration = Duration::from_secs(1);
const MERGE_BUDGET: usize = 8 << 20;
const FLUSH_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Clone, Copy, PartialEq)]
enum Feed {
    Time,
    RoundRobin,
}

#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Stage {
    Read,
    Decode,
    Merge,
    Write,
}

struct Source {
    file: File,
    decoder: StreamDecoder,
    open: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut chunk_size = 64 * 1024;
    let mut out_path = "/dev/null".to_owned();
    let mut stage = Stage::Write;
    let mut feed = Feed::Time;
    let mut paths = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--chunk" => chunk_size = args.next().ok_or("--chunk BYTES")?.parse()?,
            "--out" => out_path = args.next().ok_or("--out PATH")?,
            "--feed" => {
                feed = match args.next().as_deref() {
                    Some("time") => Feed::Time,
                    Some("round-robin") => Feed::RoundRobin,
                    _ => return Err("--feed time|round-robin".into()),
                }
            }
            "--stage" => {
                stage = match args.next().as_deref() {
                    Some("read") => Stage::Read,
                    Some("decode") => Stage::Decode,
                    Some("merge") => Stage::Merge,
                    Some("write") => Stage::Write,
                    _ => return Err("--stage read|decode|merge|write".into()),
                }
            }
            _ => paths.push(arg),
        }
    }
    if paths.is_empty() {
        return Err(
            "usage: merge_bench [--chunk BYTES] [--out PATH|sink] [--feed F] [--stage S] FILE..."
                .into(),
        );
    }
    let out: Box<dyn Write> = if out_path == "sink" {
        Box::new(std::io::sink())
    } else {
        Box::new(File::create(&out_path)?)
    };
    let mut sources = paths
        .iter()
        .map(|p| {
            Ok(Source {
                file: File::open(p)?,
                decoder: StreamDecoder::new(),
                open: true,
            })
        })
        .collect::<Result<Vec<_>, std::io::Error>>()?;

    let cpu_start = cpu_seconds();
    let start = Instant::now();
    let mut writer = PcapngWriter::new(out, "kcap-pcap merge_bench")?;
    let mut merger = Merger::new(MERGE_HOLD, MERGE_BUDGET);
    for _ in &sources {
        merger.add_source();
    }
    let mut batch: Vec<Packet> = Vec::new();
    let (mut bytes_in, mut packets_in, mut packets_out) = (0u64, 0u64, 0u64);
    let mut last_flush = Instant::now();
    // Per source, its interface id once its pcap header arrived (Event::Started).
    let mut interfaces: Vec<Option<u32>> = vec![None; sources.len()];
    let mut open = sources.len();
    // Which source's next chunk "arrives" next: by default the one whose stream
    // is furthest behind in packet time, as chunks of live captures arrive in
    // the order they were captured; `--feed round-robin` takes one chunk from
    // each in turn instead, so the sources drift apart until the merger's
    // budget releases packets (a worst case: one node's stream lagging).
    let mut last_ts = vec![0u64; sources.len()];
    let mut turn = 0;
    let mut max_buffered = 0;
    while open > 0 {
        let id = match feed {
            Feed::Time => (0..sources.len())
                .filter(|&i| sources[i].open)
                .min_by_key(|&i| last_ts[i])
                .expect("a source is open"),
            Feed::RoundRobin => {
                while !sources[turn % sources.len()].open {
                    turn += 1;
                }
                turn += 1;
                (turn - 1) % sources.len()
            }
        };
        let src = &mut sources[id];
        // A fresh buffer per read, as the pipeline's chunks are (each is given
        // to the decoder, whose packets share it).
        let mut chunk = vec![0u8; chunk_size];
        let n = src.file.read(&mut chunk)?;
        if n == 0 {
            src.open = false;
            open -= 1;
            merger.close_source(id);
            if src.decoder.pending_bytes() > 0 {
                eprintln!("source {id}: input ended inside a record");
            }
            continue;
        }
        bytes_in += n as u64;
        if stage == Stage::Read {
            continue;
        }
        chunk.truncate(n);
        src.decoder.push_vec(chunk);
        while let Some(packet) = src.decoder.next_packet()? {
            batch.push(packet);
        }
        packets_in += batch.len() as u64;
        if let Some(last) = batch.last() {
            last_ts[id] = last.ts_nanos;
        }
        if stage == Stage::Decode {
            batch.clear();
            continue;
        }
        if interfaces[id].is_none()
            && stage == Stage::Write
            && let Some(header) = src.decoder.header()
        {
            interfaces[id] = Some(writer.add_interface(&InterfaceDescription {
                link_type: header.link_type,
                snaplen: header.snaplen,
                name: format!("source{id}"),
                description: Some(paths[id].clone()),
            })?);
        }
        let now = Instant::now();
        for packet in batch.drain(..) {
            merger.push(id, packet, now);
        }
        max_buffered = max_buffered.max(merger.buffered_bytes());
        while let Some((source, packet)) = merger.pop(now) {
            packets_out += 1;
            if stage == Stage::Write {
                write(&mut writer, interfaces[source], &packet)?;
            }
        }
        if last_flush.elapsed() >= FLUSH_INTERVAL {
            last_flush = Instant::now();
            writer.flush()?;
        }
    }
    while let Some((source, packet)) = merger.pop_any() {
        packets_out += 1;
        if stage == Stage::Write {
            write(&mut writer, interfaces[source], &packet)?;
        }
    }
    writer.into_inner()?.flush()?;
    let wall = start.elapsed().as_secs_f64();
    let (user, sys) = cpu_seconds();
    let (user, sys) = (user - cpu_start.0, sys - cpu_start.1);
    let cpu = user + sys;
    let packets = if stage >= Stage::Merge {
        packets_out
    } else {
        packets_in
    };
    println!(
        "sources={} bytes_in={bytes_in} packets={packets} wall_s={wall:.3} user_s={user:.3} sys_s={sys:.3} \
         gbps={:.3} cpu_gbps={:.3} cpu_ns_per_packet={:.1} max_merger_bytes={max_buffered}",
        sources.len(),
        bytes_in as f64 / wall / 1e9,
        bytes_in as f64 / cpu / 1e9,
        if packets > 0 {
            cpu * 1e9 / packets as f64
        } else {
            0.0
        },
    );
    Ok(())
}

fn write<W: Write>(
    writer: &mut PcapngWriter<W>,
    interface: Option<u32>,
    packet: &Packet,
) -> Result<(), kcap_pcap::Error> {
    match interface {
        Some(id) => writer.write_packet(id, packet, None),
        None => Ok(()),
    }
}

/// User and system CPU seconds of this process so far.
fn cpu_seconds() -> (f64, f64) {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(usage.ru_utime), secs(usage.ru_stime))
}
