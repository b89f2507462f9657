//! The kernel side of the attribution: small programs on the kernel's socket
//! tracepoints (BTF-typed raw tracepoints, which need no kprobes), each sending
//! events (who, and which local address and port) into a ring buffer.
//!
//! - A send or receive on a socket (`sock_send_length`, `sock_recv_length`): in
//!   the calling process, after the call, so an unbound UDP socket has its port.
//! - A TCP socket starting to listen (`inet_sock_set_state` to LISTEN).
//! - A TCP connect: the connecting process is remembered when the socket goes to
//!   SYN_SENT (its port is not chosen yet), and reported when that socket's first
//!   packet, the SYN, is queued to a device (`net_dev_queue`): before the capture
//!   sees it. So a `curl` that lives 20 ms is attributed from its first packet.
//!
//! A table of what was reported already (LRU, by process and endpoint) keeps a
//! busy connection from sending an event per call.

use std::os::fd::{AsRawFd, OwnedFd};

use super::asm::{Asm, FP, Insn, R0, R1, R2, R3, R4, R6, R7, R8, Size};
use super::btf::Offsets;

/// Helper function ids (include/uapi/linux/bpf.h).
const MAP_LOOKUP: i32 = 1;
const MAP_UPDATE: i32 = 2;
const MAP_DELETE: i32 = 3;
const GET_CURRENT_PID_TGID: i32 = 14;
const GET_CURRENT_COMM: i32 = 16;
const GET_CURRENT_TASK: i32 = 35;
const PROBE_READ_KERNEL: i32 = 113;
const RINGBUF_OUTPUT: i32 = 130;
const AF_INET: i32 = 2;
const AF_INET6: i32 = 10;

pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const TCP_SYN_SENT: i32 = 2;
pub const TCP_LISTEN: i32 = 10;

/// The event each program sends, as laid out on its stack.
pub const EVENT_LEN: usize = 64;
const EVENT: i16 = -64;
const E_PORT: i16 = EVENT + 8;
const E_FAMILY: i16 = EVENT + 10;
const E_PROTO: i16 = EVENT + 12;
const E_ADDR: i16 = EVENT + 16;
const E_COMM: i16 = EVENT + 32;
const E_PPID: i16 = EVENT + 48;
/// The dedup key: the event's first 32 bytes (who and which endpoint), the
/// thread id zeroed.
const KEY: i16 = -96;
const KEY_LEN: u32 = 32;
const VALUE: i16 = -104;
const SCRATCH: i16 = -112;
/// The socket, as a map key.
const SOCK: i16 = -120;
const STACK_USED: i16 = 120;

/// The maps the programs share.
pub struct Maps {
    pub events: i32,
    pub seen: i32,
    /// Connecting sockets -> the event of their process, waiting for a port.
    pub connecting: i32,
}

impl Maps {
    pub fn of(events: &OwnedFd, seen: &OwnedFd, connecting: &OwnedFd) -> Maps {
        Maps {
            events: events.as_raw_fd(),
            seen: seen.as_raw_fd(),
            connecting: connecting.as_raw_fd(),
        }
    }

    pub const SEEN_KEY: u32 = KEY_LEN;
    pub const CONNECTING_VALUE: u32 = EVENT_LEN as u32;
}

/// Where a program finds its socket in its tracepoint's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sock {
    /// Argument N is the socket.
    Arg(i16),
    /// Argument N is a socket buffer; its socket, if any.
    BufferArg(i16),
}

/// What a program does with its socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Report it as the current process's.
    Report,
    /// Remember the current process for it (it has no port yet).
    Remember,
    /// Report it as the remembered process's, once it has a port.
    Deliver,
}

/// A program for one tracepoint: the socket found by `sock`, `action` done
/// with it, only when argument `when.0` equals `when.1` (if given).
pub fn program(
    sock: Sock,
    action: Action,
    when: Option<(i16, i32)>,
    o: &Offsets,
    maps: &Maps,
) -> Vec<Insn> {
    let mut a = Asm::default();
    if let Some((arg, value)) = when {
        a.load(Size::DW, R2, R1, 8 * arg).if_ne(R2, value, "out");
    }
    // Every byte the helpers read must be written first.
    for slot in 1..=STACK_USED / 8 {
        a.store_imm(Size::DW, FP, -8 * slot, 0);
    }
    match sock {
        Sock::Arg(n) => {
            a.load(Size::DW, R6, R1, 8 * n);
        }
        Sock::BufferArg(n) => {
            a.load(Size::DW, R3, R1, 8 * n)
                .add_imm(R3, o.skb_sock.into())
                .stack_ptr(R1, SCRATCH)
                .mov_imm(R2, 8)
                .call(PROBE_READ_KERNEL)
                .load(Size::DW, R6, FP, SCRATCH);
        }
    }
    a.if_eq(R6, 0, "out").store(Size::DW, FP, SOCK, R6);
    // Internet sockets of TCP and UDP only.
    read_field(&mut a, E_FAMILY, 2, o.family);
    read_field(&mut a, E_PROTO, 1, o.protocol);
    a.load(Size::H, R1, FP, E_FAMILY)
        .if_eq(R1, AF_INET, "family")
        .if_ne(R1, AF_INET6, "out")
        .label("family")
        .load(Size::B, R1, FP, E_PROTO)
        .if_eq(R1, PROTO_TCP.into(), "proto")
        .if_ne(R1, PROTO_UDP.into(), "out")
        .label("proto");
    if action == Action::Remember {
        who(&mut a, o);
        a.map(R1, maps.connecting)
            .stack_ptr(R2, SOCK)
            .stack_ptr(R3, EVENT)
            .mov_imm(R4, 0)
            .call(MAP_UPDATE)
            .goto("out");
    } else {
        // Not bound yet (nothing to match packets by): nothing to say.
        read_field(&mut a, E_PORT, 2, o.local_port);
        a.load(Size::H, R1, FP, E_PORT)
            .if_eq(R1, 0, "out")
            .load(Size::H, R1, FP, E_FAMILY)
            .if_eq(R1, AF_INET6, "v6");
        read_field(&mut a, E_ADDR, 4, o.local_v4);
        a.goto("address").label("v6");
        read_field(&mut a, E_ADDR, 16, o.local_v6);
        a.label("address");
        if action == Action::Report {
            // Said already for this process and endpoint?
            a.call(GET_CURRENT_PID_TGID).store(Size::DW, FP, EVENT, R0);
            for word in 0..(KEY_LEN as i16 / 8) {
                a.load(Size::DW, R1, FP, EVENT + 8 * word)
                    .store(Size::DW, FP, KEY + 8 * word, R1);
            }
            a.store_imm(Size::W, FP, KEY, 0)
                .map(R1, maps.seen)
                .stack_ptr(R2, KEY)
                .call(MAP_LOOKUP)
                .if_ne(R0, 0, "out");
            who(&mut a, o);
        } else {
            // The process that connected, remembered at SYN_SENT.
            a.map(R1, maps.connecting)
                .stack_ptr(R2, SOCK)
                .call(MAP_LOOKUP)
                .if_eq(R0, 0, "out")
                .mov(R7, R0);
            for at in [0, 32, 40, 48] {
                a.load(Size::DW, R1, R7, at)
                    .store(Size::DW, FP, EVENT + at, R1);
            }
            a.map(R1, maps.connecting)
                .stack_ptr(R2, SOCK)
                .call(MAP_DELETE);
        }
        a.map(R1, maps.events)
            .stack_ptr(R2, EVENT)
            .mov_imm(R3, EVENT_LEN as i32)
            .mov_imm(R4, 0)
            .call(RINGBUF_OUTPUT);
        if action == Action::Report {
            // Remembered only once said: a full ring loses nothing for good.
            a.if_ne(R0, 0, "out")
                .map(R1, maps.seen)
                .stack_ptr(R2, KEY)
                .stack_ptr(R3, VALUE)
                .mov_imm(R4, 0)
                .call(MAP_UPDATE);
        }
    }
    a.label("out").mov_imm(R0, 0).exit();
    a.finish()
}

/// The current process into the event: pid and tgid, command, parent's tgid.
fn who(a: &mut Asm, o: &Offsets) {
    a.call(GET_CURRENT_PID_TGID)
        .store(Size::DW, FP, EVENT, R0)
        .stack_ptr(R1, E_COMM)
        .mov_imm(R2, 16)
        .call(GET_CURRENT_COMM)
        .call(GET_CURRENT_TASK)
        .mov(R8, R0)
        .stack_ptr(R1, SCRATCH)
        .mov_imm(R2, 8)
        .mov(R3, R8)
        .add_imm(R3, o.real_parent.into())
        .call(PROBE_READ_KERNEL)
        .load(Size::DW, R3, FP, SCRATCH)
        .add_imm(R3, o.tgid.into())
        .stack_ptr(R1, E_PPID)
        .mov_imm(R2, 4)
        .call(PROBE_READ_KERNEL);
}

/// `bpf_probe_read_kernel(FP + to, len, R6 + offset)`: a field of the socket.
fn read_field(a: &mut Asm, to: i16, len: i32, offset: i16) {
    a.stack_ptr(R1, to)
        .mov_imm(R2, len)
        .mov(R3, R6)
        .add_imm(R3, offset.into())
        .call(PROBE_READ_KERNEL);
}

/// One event, as the programs wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub tgid: u32,
    pub ppid: u32,
    pub proto: u8,
    pub family: u16,
    pub port: u16,
    pub addr: [u8; 16],
    pub comm: String,
}

impl Event {
    pub fn parse(b: &[u8]) -> Option<Event> {
        if b.len() < EVENT_LEN {
            return None;
        }
        let at = |o: i16| (o - EVENT) as usize;
        let u16_at = |o: i16| u16::from_ne_bytes([b[at(o)], b[at(o) + 1]]);
        let comm = &b[at(E_COMM)..at(E_COMM) + 16];
        let comm = &comm[..comm.iter().position(|&c| c == 0).unwrap_or(16)];
        Some(Event {
            tgid: u32::from_ne_bytes(b[4..8].try_into().ok()?),
            ppid: u32::from_ne_bytes(b[at(E_PPID)..at(E_PPID) + 4].try_into().ok()?),
            proto: b[at(E_PROTO)],
            family: u16_at(E_FAMILY),
            port: u16_at(E_PORT),
            addr: b[at(E_ADDR)..at(E_ADDR) + 16].try_into().ok()?,
            comm: String::from_utf8_lossy(comm).into_owned(),
        })
    }
}
