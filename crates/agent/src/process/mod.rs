//! `--process`: which process each packet belongs to, by eBPF.
//!
//! Programs on the kernel's socket tracepoints (see `programs`) tell the agent which process owns
//! which local endpoint, the moment it connects, accepts, listens, sends or
//! receives; the sockets that already exist are read from `/proc` at start. Each
//! captured packet is matched by its endpoints (`frame`), sender first, and the
//! stream carries the answer in-band (`kcap_pcap::annotation`): kcap writes it as
//! the packet's comment in ptcpdump's keys.
//!
//! Nothing outlives the agent: programs, maps and links are file descriptors
//! (never pinned), which the kernel releases when the process ends, however.
//! (Tracepoints rather than kprobes or fentry: they need only BTF, and kernels
//! without kprobes, or that refuse fentry, as this machine's, still have them.)

mod asm;
mod btf;
mod containers;
mod frame;
mod json;
mod procfs;
mod programs;
mod sys;
mod table;

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::batch::Batch;
use crate::ring::{Framing, Packet};

use containers::Containers;
use programs::{Action, Event, Maps, Sock};
use table::{Owner, Table};

/// The events' ring buffer: 4 MiB holds about 60,000 events.
const EVENTS_BYTES: u32 = 4 << 20;
/// How long the start waits for the container runtime's first answer.
const FIRST_CONTAINERS_WAIT: std::time::Duration = std::time::Duration::from_secs(4);
/// What was reported already (process and endpoint).
const SEEN_ENTRIES: u32 = 1 << 16;
/// Connects waiting for their first packet.
const CONNECTING_ENTRIES: u32 = 1 << 14;

/// A program on a tracepoint; a required one that cannot be attached makes
/// attribution unusable.
struct Hook {
    /// The program's name (`bpftool prog` shows it; kcap's all start `kcap_`).
    name: &'static str,
    tracepoint: &'static str,
    sock: Sock,
    action: Action,
    when: Option<(i16, i32)>,
    required: bool,
}

const HOOKS: &[Hook] = &[
    // inet_sock_set_state(sk, oldstate, newstate)
    Hook {
        name: "kcap_connect",
        tracepoint: "inet_sock_set_state",
        sock: Sock::Arg(0),
        action: Action::Remember,
        when: Some((2, programs::TCP_SYN_SENT)),
        required: true,
    },
    Hook {
        name: "kcap_listen",
        tracepoint: "inet_sock_set_state",
        sock: Sock::Arg(0),
        action: Action::Report,
        when: Some((2, programs::TCP_LISTEN)),
        required: true,
    },
    // net_dev_queue(skb)
    Hook {
        name: "kcap_syn",
        tracepoint: "net_dev_queue",
        sock: Sock::BufferArg(0),
        action: Action::Deliver,
        when: None,
        required: true,
    },
    // sock_send_length(sk, ret, flags), sock_recv_length(sk, ret, flags)
    Hook {
        name: "kcap_send",
        tracepoint: "sock_send_length",
        sock: Sock::Arg(0),
        action: Action::Report,
        when: None,
        required: true,
    },
    Hook {
        name: "kcap_recv",
        tracepoint: "sock_recv_length",
        sock: Sock::Arg(0),
        action: Action::Report,
        when: None,
        required: true,
    },
];

/// The running attribution: probes attached, events read into the table.
pub struct Attribution {
    events: sys::RingReader,
    table: Table,
    /// Held for their lifetime only: the links, then what they use.
    _links: Vec<OwnedFd>,
    _programs: Vec<OwnedFd>,
    _maps: [OwnedFd; 2],
}

impl Attribution {
    /// Loads and attaches the programs; the error says why this node refuses.
    pub fn start() -> Result<Attribution, String> {
        if !cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
            return Err("process attribution is built for x86_64 and arm64 only".into());
        }
        let names: Vec<&'static str> = HOOKS.iter().map(|h| h.tracepoint).collect();
        let (offsets, tracepoints) = btf::read(&names)?;
        let denied = |what: &str, e: io::Error| match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => format!(
                "{what}: {e}: loading eBPF programs is not permitted to this user here (kcap's agent needs root, or CAP_BPF and CAP_PERFMON)"
            ),
            _ => format!("{what}: {e}"),
        };
        let events = sys::RingReader::new(EVENTS_BYTES)
            .map_err(|e| denied("creating the events ring buffer", e))?;
        let seen = sys::create_map(
            sys::MAP_LRU_HASH,
            Maps::SEEN_KEY,
            4,
            SEEN_ENTRIES,
            "kcap_seen",
        )
        .map_err(|e| denied("creating a map", e))?;
        let connecting = sys::create_map(
            sys::MAP_LRU_HASH,
            8,
            Maps::CONNECTING_VALUE,
            CONNECTING_ENTRIES,
            "kcap_connects",
        )
        .map_err(|e| denied("creating a map", e))?;
        let maps = Maps::of(events.map(), &seen, &connecting);
        let (mut links, mut programs) = (Vec::new(), Vec::new());
        for hook in HOOKS {
            let traced = match tracepoints.get(hook.tracepoint) {
                Some(&id) => attach(hook, id, &offsets, &maps),
                None => Err(format!(
                    "the kernel has no tracepoint {} (Linux 6.4 or later has every one kcap uses)",
                    hook.tracepoint
                )),
            };
            match traced {
                Ok((program, link)) => {
                    programs.push(program);
                    links.push(link);
                }
                Err(why) if hook.required => return Err(why),
                Err(_) => {}
            }
        }
        let mut table = Table::new(Containers::from_runtime());
        // After the programs: a socket made in between is seen by one or the other.
        table.learn_existing();
        // The runtime's first answer (asked for at once, on its own thread), so
        // the first packets have their pods too; not longer than this, since the
        // capture waits (a node's crictl answers in tens of milliseconds).
        let deadline = std::time::Instant::now() + FIRST_CONTAINERS_WAIT;
        while !table.containers_answered() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        table.match_containers();
        Ok(Attribution {
            events,
            table,
            _links: links,
            _programs: programs,
            _maps: [seen, connecting],
        })
    }

    /// Readable when events wait (for `poll`).
    pub fn fd(&self) -> RawFd {
        self.events.map().as_raw_fd()
    }

    /// Takes the events waiting in: call before matching packets captured since.
    pub fn update(&mut self) {
        self.table.match_containers();
        let table = &mut self.table;
        self.events.drain(|bytes| {
            if let Some(event) = Event::parse(bytes) {
                table.learn(&event);
            }
        });
    }

    /// The process id to annotate `packet` with, defining it in `batch` first
    /// when kcap has not been told of it yet.
    pub fn annotate(
        &mut self,
        framing: Framing,
        packet: &Packet<'_>,
        batch: &mut Batch,
    ) -> Option<u32> {
        let (src, dst) = frame::endpoints(framing, packet)?;
        match self.table.owner(&src, &dst)? {
            Owner::Known(id) => Some(id),
            Owner::New(id, text) => {
                batch.define(id, text);
                Some(id)
            }
        }
    }
}

/// Loads the program for `hook` and attaches it to its tracepoint (BTF type
/// id `id`): (program, link).
fn attach(
    hook: &Hook,
    id: u32,
    offsets: &btf::Offsets,
    maps: &Maps,
) -> Result<(OwnedFd, OwnedFd), String> {
    let insns = programs::program(hook.sock, hook.action, hook.when, offsets, maps);
    let program = sys::load_raw_tracepoint(&insns, id, hook.name)
        .map_err(|e| format!("loading the program for {}: {e}", hook.tracepoint))?;
    let link = sys::attach_tracing(&program).map_err(|e| match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => format!(
            "attaching to {}: {e}: not permitted to this user here (kcap's agent needs root, or CAP_BPF and CAP_PERFMON)",
            hook.tracepoint
        ),
        _ => format!("attaching to {}: {e}", hook.tracepoint),
    })?;
    Ok((program, link))
}

/// For kcap's fuzzing (crates/fuzzing): the parsers of what the agent reads from
/// outside, on any bytes: a frame's endpoints (both framings) and crictl's JSON.
#[doc(hidden)]
pub fn fuzz_entry(data: &[u8]) {
    let packet = Packet {
        ts_sec: 0,
        ts_nsec: 0,
        len: data.len() as u32,
        data,
        vlan: None,
        protocol: if data.first().is_some_and(|b| b & 1 == 1) {
            0x86dd
        } else {
            0x0800
        },
        ifindex: 1,
        hatype: 1,
        pkttype: 0,
        addr: &[],
    };
    for framing in [Framing::Ethernet, Framing::Cooked] {
        let _ = frame::endpoints(framing, &packet);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = json::parse(text);
    }
}
