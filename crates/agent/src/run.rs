//! The agent's life: parse, remove its own binary, set up the ring, copy blocks to
//! stdout until stopped, print tcpdump's statistics lines.
//!
//! Exit codes: 0 after a capture, 4 when `--process on` cannot attribute here
//! (nothing captured; no fallback, since tcpdump cannot either), 3 when the capture cannot be set up here (bad
//! arguments included), before anything was written (the wrapper then falls back to
//! tcpdump). It says which on stderr in the wrapper's marker lines.

use std::io::Write;
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::args;
use crate::batch::Batch;
use crate::process::Attribution;
use crate::ring::{self, Counters, Framing, Ring};
use crate::{bpf, pcap};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

use crate::args::PACKET_OUTGOING;
/// How often an idle agent says how far its stream is complete.
const WATERMARK_EVERY: Duration = Duration::from_millis(20);
/// A packet is stamped a moment before it takes its place in the ring: a watermark
/// stays this far behind the clock.
const WATERMARK_SLACK_NANOS: u64 = 10_000_000;

fn now_nanos() -> u64 {
    // Packets are stamped with the real-time clock.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Flush the output once this much is buffered, even while blocks keep coming.
const FLUSH_AT: usize = 256 << 10;

pub fn main() -> i32 {
    // Lossy: a stand-in "tcpdump" may have printed anything as the program.
    let words = std::env::args_os()
        .skip(1)
        .map(|w| w.to_string_lossy().into_owned());
    let args = match args::parse(words) {
        Ok(args) => args,
        Err(e) => return cannot(&e),
    };
    if let Some(dir) = &args.remove {
        // The running program stays mapped; nothing is left on disk from here on.
        let _ = std::fs::remove_dir_all(dir);
    }
    let (framing, ifindex) = match Framing::of(&args.interface) {
        Ok(found) => found,
        Err(e) => return cannot(&format!("interface {}: {e}", args.interface)),
    };
    if let Some(compiled) = &args.linktype
        && compiled != framing.linktype_name()
    {
        return cannot(&format!(
            "the filter was compiled for {compiled}, the agent writes {} on {}",
            framing.linktype_name(),
            args.interface
        ));
    }
    let program = match args.bpf.as_deref().map(bpf::parse) {
        None => Ok(Vec::new()),
        Some(Ok(p)) if framing == Framing::Cooked => bpf::for_cooked(&p),
        Some(other) => other,
    };
    let program = match program {
        Ok(p) => p,
        Err(e) => return cannot(&e),
    };
    let program = bpf::without_loopback_echo(&program, loopback(), args.snaplen);
    // Before the ring: a user that may not capture may not load BPF either,
    // and --process says so in its own words.
    let mut attribution = match args.process {
        args::Process::Off => None,
        mode => match Attribution::start() {
            Ok(a) => Some(a),
            Err(why) if mode == args::Process::On => {
                eprintln!("kcap-remote: process-unusable: {why}");
                return 4;
            }
            Err(why) => {
                eprintln!("kcap-remote: process-unavailable: {why}");
                None
            }
        },
    };
    let mut ring = match Ring::open(framing, ifindex, args.buffer_kib, &program) {
        Ok(ring) => ring,
        Err(e) => return cannot(&e.to_string()),
    };
    eprintln!("kcap-remote: tool: kcap-agent");
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { libc::signal(signal, on_signal as *const () as libc::sighandler_t) };
    }
    let (written, counters) = capture(&mut ring, framing, &args, attribution.as_mut());
    eprintln!(
        "{written} packet{} captured",
        if written == 1 { "" } else { "s" }
    );
    eprintln!("{} packets received by filter", counters.received);
    eprintln!("{} packets dropped by kernel", counters.dropped);
    0
}

/// The loopback interface's index (0 if there is none).
fn loopback() -> u32 {
    // SAFETY: a valid C string.
    unsafe { libc::if_nametoindex(c"lo".as_ptr()) }
}

fn cannot(why: &str) -> i32 {
    eprintln!("kcap-remote: agent-unusable: {why}");
    3
}

/// Copies packets until a stop signal, the count, or a closed stdout.
fn capture(
    ring: &mut Ring,
    framing: Framing,
    args: &args::Args,
    mut attribution: Option<&mut Attribution>,
) -> (u64, Counters) {
    // SAFETY: fd 1 stays open for the life of the process; ManuallyDrop never closes it.
    let mut stdout = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(1) });
    let mut open = stdout
        .write_all(&pcap::header(framing, args.snaplen))
        .is_ok();
    let mut batch = Batch::new(FLUSH_AT * 2);
    let mut written = 0u64;
    let loopback = loopback() as i32;
    let mut last_pass = false;
    let mut last_write = Instant::now();
    while open {
        let mut any = false;
        // Events first: they were written before the packets they explain left.
        if let Some(a) = attribution.as_deref_mut() {
            a.update();
        }
        while ring.next_block(|packet| {
            // A packet sent on loopback comes back as received: keep that copy only,
            // as libpcap does.
            if packet.pkttype == PACKET_OUTGOING && packet.ifindex == loopback {
                return;
            }
            // -Q in user space, after the kernel filter, as libpcap on Linux does:
            // the same packets as tcpdump -Q, and the kernel's "received by filter"
            // counts the same (both ways) as tcpdump's. A BPF test of the packet
            // type would also work, but then the statistics would differ.
            if !args.direction.keeps(packet.pkttype) {
                return;
            }
            if args.count == 0 || written < args.count {
                let process = attribution
                    .as_deref_mut()
                    .and_then(|a| a.annotate(framing, packet, &mut batch));
                batch.push(framing, args.snaplen, packet, process);
                written += 1;
            }
        }) {
            any = true;
            if batch.len() >= FLUSH_AT {
                open = batch.write_to(&mut *stdout);
            }
        }
        if !batch.is_empty() {
            open &= batch.write_to(&mut *stdout);
            last_write = Instant::now();
        } else if !any && last_write.elapsed() >= WATERMARK_EVERY && ring.open_block_is_empty() {
            // Everything that reached the socket is out: say so, so that kcap
            // can release the other sources' packets without waiting for ours.
            let mut mark = Vec::with_capacity(16);
            pcap::watermark(&mut mark, now_nanos().saturating_sub(WATERMARK_SLACK_NANOS));
            open &= stdout.write_all(&mark).is_ok();
            last_write = Instant::now();
        }
        if (args.count != 0 && written >= args.count) || last_pass {
            break;
        }
        if STOP.load(Ordering::Relaxed) {
            // The kernel hands over the open block within its timeout: wait for
            // that, read what is ready one last time, then stop.
            std::thread::sleep(std::time::Duration::from_millis(
                2 * u64::from(ring::BLOCK_TIMEOUT_MS),
            ));
            last_pass = true;
        } else if !any {
            // Woken by events too: a short-lived process is described (from
            // /proc) while it still exists.
            ring.wait(
                WATERMARK_EVERY.as_millis() as i32,
                attribution.as_deref().map(Attribution::fd),
            );
        }
    }
    (written, ring.counters())
}
