//! The system calls under the process attribution: bpf(2) for maps, tracepoint
//! programs and their links, and the ring buffer map's shared
//! memory.
//!
//! Everything is held by file descriptors and nothing is pinned: when the agent
//! ends, however it ends, the kernel detaches the programs and frees them and
//! the maps with the last descriptor. Nothing is left behind by construction.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::asm::Insn;

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;
pub const MAP_LRU_HASH: u32 = 9;
pub const MAP_RINGBUF: u32 = 27;
const PROG_TRACING: u32 = 26;
const TRACE_RAW_TP: u32 = 23;
const RINGBUF_BUSY: u32 = 1 << 31;
const RINGBUF_DISCARD: u32 = 1 << 30;
const RINGBUF_HEADER: usize = 8;

fn bpf(cmd: libc::c_long, attr: &mut [u8]) -> io::Result<OwnedFd> {
    // SAFETY: `attr` is a zero-filled bpf_attr of the size given.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

fn put_name(buf: &mut [u8], at: usize, name: &str) {
    let n = name.len().min(15);
    buf[at..at + n].copy_from_slice(&name.as_bytes()[..n]);
}

/// A map: `kind` (`MAP_*`), key and value sizes, capacity.
pub fn create_map(kind: u32, key: u32, value: u32, max: u32, name: &str) -> io::Result<OwnedFd> {
    let mut attr = [0u8; 72];
    put_u32(&mut attr, 0, kind);
    put_u32(&mut attr, 4, key);
    put_u32(&mut attr, 8, value);
    put_u32(&mut attr, 12, max);
    put_name(&mut attr, 28, name);
    bpf(BPF_MAP_CREATE, &mut attr)
}

/// Loads a BTF-typed raw tracepoint program for the tracepoint whose
/// `btf_trace_NAME` type id is `tracepoint`; a refusal carries the end of the
/// verifier's log.
pub fn load_raw_tracepoint(insns: &[Insn], tracepoint: u32, name: &str) -> Result<OwnedFd, String> {
    // The programs call bpf_probe_read_kernel and bpf_get_current_task, which
    // the kernel offers to GPL-compatible programs only.
    let license = c"GPL";
    let mut log = vec![0u8; 1 << 16];
    let mut attr = [0u8; 152];
    put_u32(&mut attr, 0, PROG_TRACING);
    put_u32(&mut attr, 4, insns.len() as u32);
    put_u64(&mut attr, 8, insns.as_ptr() as u64);
    put_u64(&mut attr, 16, license.as_ptr() as u64);
    put_name(&mut attr, 48, name);
    put_u32(&mut attr, 68, TRACE_RAW_TP);
    put_u32(&mut attr, 108, tracepoint);
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(fd),
        Err(first) => {
            // Again with the log, to say why.
            put_u32(&mut attr, 24, 1);
            put_u32(&mut attr, 28, log.len() as u32);
            put_u64(&mut attr, 32, log.as_mut_ptr() as u64);
            let again = bpf(BPF_PROG_LOAD, &mut attr);
            let end = log.iter().position(|&b| b == 0).unwrap_or(0);
            let text = String::from_utf8_lossy(&log[..end])
                .lines()
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .join(" / ");
            match again {
                Ok(fd) => Ok(fd),
                Err(_) if text.is_empty() => Err(first.to_string()),
                Err(e) => Err(format!("{e}: {text}")),
            }
        }
    }
}

/// Attaches a loaded tracing program; it stays attached while the returned
/// link descriptor is open.
pub fn attach_tracing(program: &OwnedFd) -> io::Result<OwnedFd> {
    let mut attr = [0u8; 16];
    put_u32(&mut attr, 8, program.as_raw_fd() as u32);
    bpf(BPF_RAW_TRACEPOINT_OPEN, &mut attr)
}

/// The user side of a `MAP_RINGBUF` map: records the programs wrote, read in order.
pub struct RingReader {
    map: OwnedFd,
    consumer: *mut libc::c_void,
    producer: *mut libc::c_void,
    page: usize,
    size: usize,
}

impl RingReader {
    /// A ring buffer of `size` bytes (a power of two, a multiple of the page size).
    pub fn new(size: u32) -> io::Result<RingReader> {
        let map = create_map(MAP_RINGBUF, 0, 0, size, "kcap_events")?;
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let size = size as usize;
        // SAFETY: the layout the kernel documents for ring buffer maps: the
        // consumer page (ours to write), then the producer page and the data twice
        // over (read only), so that no record wraps.
        let consumer = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                map.as_raw_fd(),
                0,
            )
        };
        if consumer == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above.
        let producer = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                page + 2 * size,
                libc::PROT_READ,
                libc::MAP_SHARED,
                map.as_raw_fd(),
                page as libc::off_t,
            )
        };
        if producer == libc::MAP_FAILED {
            let e = io::Error::last_os_error();
            // SAFETY: mapped just above.
            unsafe { libc::munmap(consumer, page) };
            return Err(e);
        }
        Ok(RingReader {
            map,
            consumer,
            producer,
            page,
            size,
        })
    }

    pub fn map(&self) -> &OwnedFd {
        &self.map
    }

    /// Hands every complete record to `each`, oldest first.
    pub fn drain(&mut self, mut each: impl FnMut(&[u8])) {
        // SAFETY: both positions are 8-byte aligned words at the start of their
        // pages, shared with the kernel, hence atomics.
        let consumer = unsafe { &*(self.consumer as *const AtomicU64) };
        let producer = unsafe { &*(self.producer as *const AtomicU64) };
        let data = unsafe { (self.producer as *const u8).add(self.page) };
        let mask = self.size as u64 - 1;
        let mut at = consumer.load(Ordering::Acquire);
        loop {
            let end = producer.load(Ordering::Acquire);
            if at >= end {
                break;
            }
            let offset = (at & mask) as usize;
            // SAFETY: the header of the record at `at`, inside the mapping.
            let header = unsafe { &*(data.add(offset) as *const AtomicU32) };
            let len = header.load(Ordering::Acquire);
            if len & RINGBUF_BUSY != 0 {
                break;
            }
            let body = (len & !(RINGBUF_BUSY | RINGBUF_DISCARD)) as usize;
            if len & RINGBUF_DISCARD == 0 {
                // SAFETY: the record's bytes, contiguous thanks to the double mapping.
                each(unsafe {
                    std::slice::from_raw_parts(data.add(offset + RINGBUF_HEADER), body)
                });
            }
            at += ((body + RINGBUF_HEADER + 7) & !7) as u64;
            consumer.store(at, Ordering::Release);
        }
    }
}

impl Drop for RingReader {
    fn drop(&mut self) {
        // SAFETY: the two mappings made in `new`.
        unsafe {
            libc::munmap(self.consumer, self.page);
            libc::munmap(self.producer, self.page + 2 * self.size);
        }
    }
}
