//! The packet socket and its TPACKET_V3 receive ring: every `unsafe` of the agent
//! lives here.
//!
//! The ring is split into blocks; the kernel fills one block at a time with packets
//! of any size and hands it over when it is full or [`BLOCK_TIMEOUT_MS`] after its
//! first packet. Small packets take little room (unlike TPACKET_V2's fixed slots),
//! and the timeout bounds how long a packet waits at low rates.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::bpf::Insn;

/// How long the kernel keeps a block open before handing it over, at the latest.
pub const BLOCK_TIMEOUT_MS: u32 = 20;
/// Largest block; a block must hold the largest packet (64 KiB with offloads).
const MAX_BLOCK: usize = 512 << 10;
const MIN_BLOCK: usize = 128 << 10;
/// Blocks wanted at least, so the kernel can fill one while kcap reads others.
const SOME_BLOCKS: usize = 8;
/// Nominal frame size (TPACKET_V3 packs packets; the kernel only checks alignment).
const FRAME: usize = 2048;

/// `enum tpacket_versions` in linux/if_packet.h.
const TPACKET_V3: libc::c_int = 2;
const TP_STATUS_USER: u32 = 1;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_VLAN_VALID: u32 = 0x10;
const TP_STATUS_VLAN_TPID_VALID: u32 = 0x40;
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;

/// How packets are read, hence what the pcap stream's link type is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `SOCK_RAW` on an Ethernet-like interface: the frame as sent (DLT_EN10MB).
    Ethernet,
    /// `SOCK_DGRAM` (`any`, or a link without Ethernet headers): from the network
    /// header, with a LINUX_SLL2 header made from the packet's address.
    Cooked,
}

impl Framing {
    /// For `interface` (`any` or a name), as tcpdump's `-y` names it.
    pub fn of(interface: &str) -> io::Result<(Framing, u32)> {
        if interface == "any" {
            return Ok((Framing::Cooked, 0));
        }
        let name =
            CString::new(interface).map_err(|_| io::Error::other("interface name has a NUL"))?;
        // SAFETY: `name` is a valid C string.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if index == 0 {
            return Err(io::Error::other(format!("no interface {interface:?} here")));
        }
        let framing = match hardware_type(&name)? {
            ARPHRD_ETHER | ARPHRD_LOOPBACK => Framing::Ethernet,
            _ => Framing::Cooked,
        };
        Ok((framing, index))
    }

    pub fn linktype_name(self) -> &'static str {
        match self {
            Framing::Ethernet => "EN10MB",
            Framing::Cooked => "LINUX_SLL2",
        }
    }
}

/// The interface's ARPHRD_* type (`SIOCGIFHWADDR`).
fn hardware_type(name: &CString) -> io::Result<u16> {
    // SAFETY: plain socket call.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a socket we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: an all-zero ifreq is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, &src) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *dst = src as libc::c_char;
    }
    // SAFETY: `req` is a valid ifreq naming the interface.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFHWADDR fills the hwaddr member of the union.
    Ok(unsafe { req.ifr_ifru.ifru_hwaddr.sa_family })
}

/// One packet in a block, borrowed from the ring.
pub struct Packet<'a> {
    pub ts_sec: u32,
    pub ts_nsec: u32,
    /// Length on the wire (from the link or network header, as framed).
    pub len: u32,
    /// The bytes the kernel kept.
    pub data: &'a [u8],
    /// The VLAN tag the kernel took out of an Ethernet frame: (TPID, TCI).
    pub vlan: Option<(u16, u16)>,
    /// From the packet's `sockaddr_ll`.
    pub protocol: u16,
    pub ifindex: i32,
    pub hatype: u16,
    pub pkttype: u8,
    pub addr: &'a [u8],
}

/// Kernel counters since the last read (`PACKET_STATISTICS` resets them).
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    /// Packets that passed the filter, dropped ones included.
    pub received: u64,
    pub dropped: u64,
}

pub struct Ring {
    fd: OwnedFd,
    map: *mut u8,
    block_size: usize,
    blocks: usize,
    next: usize,
}

impl Ring {
    /// Opens the socket, maps a ring of about `buffer_kib`, attaches `filter` and
    /// only then binds, so no unfiltered packet enters the ring.
    pub fn open(
        framing: Framing,
        ifindex: u32,
        buffer_kib: u32,
        filter: &[Insn],
    ) -> io::Result<Ring> {
        let kind = match framing {
            Framing::Ethernet => libc::SOCK_RAW,
            Framing::Cooked => libc::SOCK_DGRAM,
        };
        // Protocol 0: the socket receives nothing until bound.
        // SAFETY: plain socket call.
        let fd = unsafe { libc::socket(libc::AF_PACKET, kind | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(context("socket(AF_PACKET)", io::Error::last_os_error()));
        }
        // SAFETY: `fd` is a socket we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        set_option(&fd, libc::SOL_PACKET, libc::PACKET_VERSION, &TPACKET_V3)
            .map_err(|e| context("TPACKET_V3", e))?;

        let (block_size, blocks) = geometry(buffer_kib);
        let request = libc::tpacket_req3 {
            tp_block_size: block_size as u32,
            tp_block_nr: blocks as u32,
            tp_frame_size: FRAME as u32,
            tp_frame_nr: (block_size / FRAME * blocks) as u32,
            tp_retire_blk_tov: BLOCK_TIMEOUT_MS,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        set_option(&fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &request)
            .map_err(|e| context("PACKET_RX_RING", e))?;
        // SAFETY: maps the ring the kernel just allocated for this socket.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                block_size * blocks,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(context("mmap of the ring", io::Error::last_os_error()));
        }
        let ring = Ring {
            fd,
            map: map.cast(),
            block_size,
            blocks,
            next: 0,
        };

        if !filter.is_empty() {
            let mut program: Vec<libc::sock_filter> = filter
                .iter()
                .map(|i| libc::sock_filter {
                    code: i.code,
                    jt: i.jt,
                    jf: i.jf,
                    k: i.k,
                })
                .collect();
            let fprog = libc::sock_fprog {
                len: program.len() as u16,
                filter: program.as_mut_ptr(),
            };
            set_option(&ring.fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
                .map_err(|e| context("attaching the filter", e))?;
        }
        // SAFETY: an all-zero sockaddr_ll is valid.
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        address.sll_ifindex = ifindex as i32;
        // SAFETY: `address` is a sockaddr_ll of the size given.
        let bound = unsafe {
            libc::bind(
                ring.fd.as_raw_fd(),
                (&address as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if bound < 0 {
            return Err(context("bind", io::Error::last_os_error()));
        }
        Ok(ring)
    }

    pub fn size(&self) -> usize {
        self.block_size * self.blocks
    }

    /// Waits up to `timeout_ms` for the socket to have a block ready.
    /// Waits for a block, `also` (another descriptor) to be readable, or the timeout.
    pub fn wait(&self, timeout_ms: i32, also: Option<std::os::fd::RawFd>) {
        let entry = |fd| libc::pollfd {
            fd,
            events: libc::POLLIN | libc::POLLERR,
            revents: 0,
        };
        let mut polls = [entry(self.fd.as_raw_fd()), entry(also.unwrap_or(-1))];
        // SAFETY: valid pollfds (a negative fd is ignored). EINTR (a stop signal)
        // just returns early.
        unsafe { libc::poll(polls.as_mut_ptr(), 2, timeout_ms) };
    }

    /// Calls `each` for every packet of the next block if the kernel has handed it
    /// over, gives the block back and returns `true`; `false` if it is not ready.
    pub fn next_block(&mut self, mut each: impl FnMut(&Packet<'_>)) -> bool {
        // SAFETY: `next < blocks`, so the block lies inside the mapping.
        let block = unsafe { self.map.add(self.next * self.block_size) };
        let status = block_status(block);
        // SAFETY: `status` points into the mapping; the kernel writes it, hence atomic.
        if status.load(std::sync::atomic::Ordering::Acquire) & TP_STATUS_USER == 0 {
            return false;
        }
        // SAFETY: the block is ours until we write TP_STATUS_KERNEL back.
        let bytes = unsafe { std::slice::from_raw_parts(block, self.block_size) };
        let count = u32_at(bytes, 12);
        let mut offset = u32_at(bytes, 16) as usize;
        for _ in 0..count {
            let Some(packet) = packet_at(bytes, offset) else {
                break;
            };
            each(&packet);
            let step = u32_at(bytes, offset) as usize;
            if step == 0 {
                break;
            }
            offset += step;
        }
        status.store(TP_STATUS_KERNEL, std::sync::atomic::Ordering::Release);
        self.next = (self.next + 1) % self.blocks;
        true
    }

    /// Whether the block the kernel fills next holds no packet yet: then every
    /// packet that reached the socket has been handed over (call after
    /// [`Self::next_block`] returned `false`).
    pub fn open_block_is_empty(&self) -> bool {
        // SAFETY: `next < blocks`; the kernel owns the block, we only read its
        // packet count (an aligned u32, written by the kernel under its lock).
        let count = unsafe {
            std::sync::atomic::AtomicU32::from_ptr(
                self.map.add(self.next * self.block_size + 12).cast(),
            )
        };
        count.load(std::sync::atomic::Ordering::Acquire) == 0
    }

    pub fn counters(&self) -> Counters {
        let mut stats = libc::tpacket_stats_v3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        };
        let mut len = std::mem::size_of_val(&stats) as libc::socklen_t;
        // SAFETY: `stats` and `len` describe a buffer of the right size.
        let got = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut stats as *mut libc::tpacket_stats_v3).cast(),
                &mut len,
            )
        };
        if got < 0 {
            return Counters::default();
        }
        // The kernel counts dropped packets in tp_packets too.
        Counters {
            received: u64::from(stats.tp_packets),
            dropped: u64::from(stats.tp_drops),
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `open` mapped; the socket closes after.
        unsafe { libc::munmap(self.map.cast(), self.size()) };
    }
}

/// Block size and count for a ring of about `buffer_kib` (at least two blocks of
/// [`MIN_BLOCK`]: 256 KiB).
fn geometry(buffer_kib: u32) -> (usize, usize) {
    let total = (buffer_kib as usize) << 10;
    let block = (total / SOME_BLOCKS)
        .next_power_of_two()
        .clamp(MIN_BLOCK, MAX_BLOCK);
    (block, (total / block).max(2))
}

/// The block's `block_status` word (`tpacket_block_desc.hdr.bh1.block_status`).
fn block_status<'a>(block: *mut u8) -> &'a std::sync::atomic::AtomicU32 {
    // SAFETY: offset 8 of a block is its 4-byte aligned status word.
    unsafe { std::sync::atomic::AtomicU32::from_ptr(block.add(8).cast()) }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .map_or(0, |b| u32::from_ne_bytes(b.try_into().unwrap()))
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    bytes
        .get(at..at + 2)
        .map_or(0, |b| u16::from_ne_bytes(b.try_into().unwrap()))
}

/// Reads the `tpacket3_hdr` at `offset` and the `sockaddr_ll` after it.
fn packet_at(bytes: &[u8], offset: usize) -> Option<Packet<'_>> {
    let header = bytes.get(offset..offset + 48)?;
    let status = u32_at(header, 20);
    let snaplen = u32_at(header, 12) as usize;
    let mac = u16_at(header, 24) as usize;
    // sockaddr_ll follows the header, 16-byte aligned (TPACKET_ALIGN(48) = 48).
    let sll = bytes.get(offset + 48..offset + 48 + 20)?;
    let halen = (sll[11] as usize).min(8);
    let vlan = (status & TP_STATUS_VLAN_VALID != 0).then(|| {
        let tpid = if status & TP_STATUS_VLAN_TPID_VALID != 0 {
            u16_at(header, 36)
        } else {
            0x8100
        };
        (tpid, u32_at(header, 32) as u16)
    });
    Some(Packet {
        ts_sec: u32_at(header, 4),
        ts_nsec: u32_at(header, 8),
        len: u32_at(header, 16),
        data: bytes.get(offset + mac..offset + mac + snaplen)?,
        vlan,
        protocol: u16::from_be_bytes([sll[2], sll[3]]),
        ifindex: i32::from_ne_bytes(sll[4..8].try_into().unwrap()),
        hatype: u16_at(sll, 8),
        pkttype: sll[10],
        addr: &sll[12..12 + halen],
    })
}

fn set_option<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a live T of the size given.
    let done = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if done < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn context(what: &str, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{what}: {error}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ring_geometry() {
        // kcap's default -B: 16 MiB as 32 blocks of 512 KiB.
        assert_eq!(super::geometry(16 << 10), (512 << 10, 32));
        assert_eq!(super::geometry(2048), (256 << 10, 8));
        // -B 1 still gets a ring that holds the largest packet.
        assert_eq!(super::geometry(1), (128 << 10, 2));
    }
}
