//! Which process owns which endpoint, and the text kcap is told for each process.
//!
//! Endpoints are learnt from the programs' events and, at start, from the
//! sockets that already exist (`/proc`), so a server started before the capture
//! is known too. A socket bound to every address stands for each address of its
//! network namespace. Memory is bounded: at most [`MAX_PROCESSES`] processes (the
//! least recently used gives its id up) and [`MAX_ENDPOINTS`] endpoints.
//!
//! An endpoint is an address and port, which processes in different network
//! namespaces can hold at once (the same pod addresses in two clusters on one
//! kernel, as kind's or the test bed's): each holder is kept with its
//! namespace, the one in the capture's namespace wins, and an endpoint held in
//! several other namespaces names no one (rather than a stranger).

use std::collections::HashMap;

use kcap_pcap::annotation::MAX_PROCESSES;

use super::containers::{Container, Containers};
use super::frame::{Endpoint, mapped_v4};
use super::procfs;
use super::programs::Event;

pub const MAX_ENDPOINTS: usize = 1 << 16;
/// Network namespaces whose addresses are remembered.
const MAX_NETNS: usize = 1024;
const AF_INET: u16 = 2;
/// Holders of one endpoint remembered, each in another network namespace.
const HOLDERS_PER_ENDPOINT: usize = 4;

struct Slot {
    tgid: u32,
    comm: String,
    /// Bumped when the id goes to another process: endpoints of the old one
    /// then point nowhere.
    generation: u32,
    /// The process's own keys (PID to ParentArgs), then its container's if known.
    base: String,
    text: String,
    /// Its mount namespace (its parent's if it was gone), to find its container
    /// once the runtime answers.
    mount_ns: Option<u64>,
    in_container: bool,
    /// kcap has this text for this id.
    told: bool,
    used: u64,
}

/// A process holding an endpoint in a network namespace.
#[derive(Clone, Copy)]
struct Holder {
    netns: Option<u64>,
    id: u32,
    /// The slot's generation when learnt: a slot given to another process
    /// holds nothing of the old one's.
    generation: u32,
}

/// What a packet's process is, for the stream.
pub enum Owner<'a> {
    /// A process kcap knows by `id` already.
    Known(u32),
    /// A process kcap must first be told about.
    New(u32, &'a str),
}

pub struct Table {
    slots: Vec<Slot>,
    by_tgid: HashMap<u32, u32>,
    endpoints: HashMap<Endpoint, Vec<Holder>>,
    netns_addresses: HashMap<u64, Vec<[u8; 16]>>,
    own_netns: Option<u64>,
    containers: Containers,
    /// The runtime's answer the slots were last matched against.
    containers_seen: u64,
    tick: u64,
}

impl Table {
    pub fn new(containers: Containers) -> Table {
        Table {
            slots: Vec::new(),
            by_tgid: HashMap::new(),
            endpoints: HashMap::new(),
            netns_addresses: HashMap::new(),
            own_netns: procfs::netns_of("self"),
            containers,
            containers_seen: 0,
            tick: 0,
        }
    }

    /// Takes the sockets that exist now in.
    pub fn learn_existing(&mut self) {
        for event in procfs::existing_sockets() {
            self.learn(&event);
        }
    }

    /// Takes one event in: `event.tgid` owns its endpoint(s).
    pub fn learn(&mut self, event: &Event) {
        let netns = procfs::netns_of(&event.tgid.to_string());
        self.learn_in(event, netns);
    }

    /// [`Self::learn`] for a process in network namespace `netns`.
    fn learn_in(&mut self, event: &Event, netns: Option<u64>) {
        let id = self.slot_for(event);
        let generation = self.slots[id as usize].generation;
        let addr = if event.family == AF_INET {
            mapped_v4(event.addr[..4].try_into().expect("4 bytes"))
        } else {
            event.addr
        };
        let addresses = if unspecified(&addr) {
            let v4_only = event.family == AF_INET;
            match netns.and_then(|ns| self.addresses_of(ns, event.tgid)) {
                Some(all) => all
                    .iter()
                    .filter(|a| !v4_only || is_mapped_v4(a))
                    .copied()
                    .collect(),
                None => Vec::new(),
            }
        } else {
            vec![addr]
        };
        for addr in addresses {
            // Loopback is per network namespace: only ours is captured here.
            if is_loopback(&addr) && netns.is_some() && netns != self.own_netns {
                continue;
            }
            if self.endpoints.len() >= MAX_ENDPOINTS {
                self.forget_stale_endpoints();
            }
            let endpoint = Endpoint {
                proto: event.proto,
                addr,
                port: event.port,
            };
            let slots = &self.slots;
            let holders = self.endpoints.entry(endpoint).or_default();
            holders.retain(|h| h.netns != netns && slots[h.id as usize].generation == h.generation);
            if holders.len() >= HOLDERS_PER_ENDPOINT {
                holders.remove(0);
            }
            holders.push(Holder {
                netns,
                id,
                generation,
            });
        }
    }

    /// The process that sent the packet (its source endpoint), else the one it
    /// is for (its destination): the sender's process on the way out of a host,
    /// the receiver's on the way in.
    pub fn owner(&mut self, src: &Endpoint, dst: &Endpoint) -> Option<Owner<'_>> {
        let id = [src, dst].into_iter().find_map(|e| self.holder_of(e))?;
        self.tick += 1;
        let slot = &mut self.slots[id as usize];
        slot.used = self.tick;
        if slot.told {
            Some(Owner::Known(id))
        } else {
            slot.told = true;
            Some(Owner::New(id, &slot.text))
        }
    }

    fn slot_for(&mut self, event: &Event) -> u32 {
        self.tick += 1;
        if let Some(&id) = self.by_tgid.get(&event.tgid) {
            let slot = &mut self.slots[id as usize];
            // The same process unless its pid was reused (or it exec'd).
            if slot.comm == event.comm {
                slot.used = self.tick;
                return id;
            }
        }
        let (base, mount_ns) = self.describe(event);
        let id = if self.slots.len() < MAX_PROCESSES as usize {
            self.slots.push(Slot {
                tgid: 0,
                comm: String::new(),
                generation: 0,
                base: String::new(),
                text: String::new(),
                mount_ns: None,
                in_container: false,
                told: false,
                used: 0,
            });
            self.slots.len() as u32 - 1
        } else {
            let (id, _) = self
                .slots
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.used)
                .expect("slots are full");
            id as u32
        };
        let slot = &mut self.slots[id as usize];
        if self.by_tgid.get(&slot.tgid) == Some(&id) {
            self.by_tgid.remove(&slot.tgid);
        }
        slot.generation = slot.generation.wrapping_add(1);
        slot.tgid = event.tgid;
        slot.comm = event.comm.clone();
        let container = mount_ns.and_then(|ns| self.containers.of_mount_ns(ns));
        slot.in_container = container.is_some();
        slot.text = with_container(&base, container.as_deref());
        slot.base = base;
        slot.mount_ns = mount_ns;
        slot.told = false;
        slot.used = self.tick;
        self.by_tgid.insert(event.tgid, id);
        id
    }

    /// Whether the container runtime answered (or there is none to ask).
    pub fn containers_answered(&self) -> bool {
        self.containers.generation() > 0 || !self.containers.asks()
    }

    /// Matches the processes described without a container against the
    /// runtime's newest answer, if there is a new one: one found in a container
    /// now is described again (and kcap told again).
    pub fn match_containers(&mut self) {
        let generation = self.containers.generation();
        if generation == self.containers_seen {
            return;
        }
        self.containers_seen = generation;
        for slot in self.slots.iter_mut().filter(|s| !s.in_container) {
            if let Some(c) = slot.mount_ns.and_then(|ns| self.containers.of_mount_ns(ns)) {
                slot.text = with_container(&slot.base, Some(&c));
                slot.in_container = true;
                slot.told = false;
            }
        }
    }

    /// The process's own keys in ptcpdump's order, and the mount namespace its
    /// container is found by (its parent's when it is gone: the same container).
    fn describe(&mut self, event: &Event) -> (String, Option<u64>) {
        let pid = event.tgid.to_string();
        let mut text = format!("PID: {pid}\n");
        let cmd = procfs::exe(&pid).unwrap_or_else(|| event.comm.clone());
        text += &format!("Cmd: {cmd}\n");
        if let Some(args) = procfs::cmdline(&pid) {
            text += &format!("Args: {args}\n");
        }
        let ppid = if event.ppid != 0 {
            Some(event.ppid)
        } else {
            procfs::parent(&pid)
        };
        if let Some(ppid) = ppid {
            let ppid = ppid.to_string();
            text += &format!("ParentPID: {ppid}\n");
            if let Some(cmd) = procfs::exe(&ppid).or_else(|| procfs::comm(&ppid)) {
                text += &format!("ParentCmd: {cmd}\n");
            }
            if let Some(args) = procfs::cmdline(&ppid) {
                text += &format!("ParentArgs: {args}\n");
            }
        }
        let mount_ns = Containers::mount_ns_of(&pid)
            .or_else(|| ppid.and_then(|p| Containers::mount_ns_of(&p.to_string())));
        text.pop();
        (text, mount_ns)
    }

    fn addresses_of(&mut self, netns: u64, pid: u32) -> Option<&Vec<[u8; 16]>> {
        if !self.netns_addresses.contains_key(&netns) {
            let found = procfs::local_addresses(&pid.to_string())?;
            if self.netns_addresses.len() >= MAX_NETNS {
                self.netns_addresses.clear();
            }
            self.netns_addresses.insert(netns, found);
        }
        self.netns_addresses.get(&netns)
    }

    /// The process holding `endpoint`: the one in the capture's network
    /// namespace, else the only one.
    fn holder_of(&self, endpoint: &Endpoint) -> Option<u32> {
        let (mut only, mut holders) = (None, 0);
        for h in self.endpoints.get(endpoint)? {
            if self.slots[h.id as usize].generation != h.generation {
                continue;
            }
            if h.netns.is_some() && h.netns == self.own_netns {
                return Some(h.id);
            }
            only = Some(h.id);
            holders += 1;
        }
        only.filter(|_| holders == 1)
    }

    fn forget_stale_endpoints(&mut self) {
        let slots = &self.slots;
        self.endpoints.retain(|_, holders| {
            holders.retain(|h| slots[h.id as usize].generation == h.generation);
            !holders.is_empty()
        });
        if self.endpoints.len() >= MAX_ENDPOINTS {
            self.endpoints.clear();
        }
    }
}

/// A process's comment: its own keys, then its container's and pod's.
fn with_container(base: &str, container: Option<&Container>) -> String {
    let mut text = base.to_string();
    if let Some(c) = container {
        text += &format!("\nContainerName: {}\nContainerId: {}", c.name, c.id);
        if !c.pod.is_empty() {
            text += &format!("\nPodName: {}\nPodNamespace: {}", c.pod, c.namespace);
        }
    }
    text
}

fn unspecified(a: &[u8; 16]) -> bool {
    a.iter().all(|&b| b == 0) || (is_mapped_v4(a) && a[12..].iter().all(|&b| b == 0))
}

fn is_mapped_v4(a: &[u8; 16]) -> bool {
    a[..10].iter().all(|&b| b == 0) && a[10] == 0xff && a[11] == 0xff
}

fn is_loopback(a: &[u8; 16]) -> bool {
    (is_mapped_v4(a) && a[12] == 127) || *a == std::net::Ipv6Addr::LOCALHOST.octets()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(tgid: u32, comm: &str, port: u16, v4: [u8; 4]) -> Event {
        let mut addr = [0u8; 16];
        addr[..4].copy_from_slice(&v4);
        Event {
            tgid,
            ppid: 1,
            proto: 6,
            family: AF_INET,
            port,
            addr,
            comm: comm.into(),
        }
    }

    fn ep(v4: [u8; 4], port: u16) -> Endpoint {
        Endpoint {
            proto: 6,
            addr: mapped_v4(v4),
            port,
        }
    }

    #[test]
    fn the_sender_is_named_first_and_told_once() {
        // Pids that do not exist here: the text comes from the event alone.
        let mut t = Table::new(Containers::none());
        t.learn(&event(4_000_001, "curl", 40000, [10, 0, 0, 1]));
        t.learn(&event(4_000_002, "server", 8080, [10, 0, 0, 2]));
        let (client, server) = (ep([10, 0, 0, 1], 40000), ep([10, 0, 0, 2], 8080));
        let Some(Owner::New(id, text)) = t.owner(&client, &server) else {
            panic!("the client is new");
        };
        assert!(
            text.starts_with("PID: 4000001\nCmd: curl\nParentPID: 1"),
            "{text}"
        );
        assert!(matches!(t.owner(&client, &server), Some(Owner::Known(i)) if i == id));
        assert!(matches!(t.owner(&server, &client), Some(Owner::New(..))));
        assert!(
            t.owner(&ep([10, 0, 0, 9], 1), &ep([10, 0, 0, 8], 2))
                .is_none()
        );
    }

    #[test]
    fn a_reused_pid_with_another_command_is_a_new_process() {
        let mut t = Table::new(Containers::none());
        t.learn(&event(4_000_003, "curl", 40001, [10, 0, 0, 1]));
        let old = ep([10, 0, 0, 1], 40001);
        let Some(Owner::New(first, _)) = t.owner(&old, &old) else {
            panic!()
        };
        t.learn(&event(4_000_003, "wget", 40002, [10, 0, 0, 1]));
        let Some(Owner::New(second, text)) = t.owner(&ep([10, 0, 0, 1], 40002), &old) else {
            panic!()
        };
        assert!(text.contains("Cmd: wget"));
        assert_ne!(first, second);
    }

    #[test]
    fn ids_are_reused_least_recently_used_first_and_old_endpoints_then_match_nothing() {
        let mut t = Table::new(Containers::none());
        for i in 0..MAX_PROCESSES {
            t.learn(&event(5_000_000 + i, "p", 1000 + i as u16, [10, 1, 0, 1]));
        }
        t.learn(&event(6_000_000, "late", 999, [10, 1, 0, 1]));
        // Process 0 was the least recently used: its id went to "late".
        assert!(t.owner(&ep([10, 1, 0, 1], 1000), &ep([0; 4], 0)).is_none());
        assert!(matches!(
            t.owner(&ep([10, 1, 0, 1], 999), &ep([0; 4], 0)),
            Some(Owner::New(0, _))
        ));
        assert_eq!(t.slots.len(), MAX_PROCESSES as usize);
    }

    #[test]
    fn an_endpoint_held_in_several_namespaces_is_ours_or_no_ones() {
        let mut t = Table::new(Containers::none());
        let ours = t.own_netns;
        let server = ep([10, 0, 0, 2], 8080);
        let client = ep([10, 0, 0, 1], 40000);
        t.learn_in(&event(4_000_010, "elsewhere", 8080, [10, 0, 0, 2]), Some(1));
        let owner = |t: &mut Table, src, dst| match t.owner(src, dst) {
            Some(Owner::New(id, _) | Owner::Known(id)) => t.slots[id as usize].comm.clone(),
            None => String::new(),
        };
        // Held in one other namespace only: that process.
        assert_eq!(owner(&mut t, &server, &client), "elsewhere");
        // Held in two others: no one (a stranger would be worse), then the
        // destination's holder.
        t.learn_in(&event(4_000_011, "stranger", 8080, [10, 0, 0, 2]), Some(2));
        assert_eq!(owner(&mut t, &server, &client), "");
        t.learn_in(&event(4_000_012, "client", 40000, [10, 0, 0, 1]), Some(3));
        assert_eq!(owner(&mut t, &server, &client), "client");
        // Held in the capture's namespace too: that one.
        t.learn_in(&event(4_000_013, "ours", 8080, [10, 0, 0, 2]), ours);
        assert_eq!(owner(&mut t, &server, &client), "ours");
        // A namespace's newer holder replaces its older one.
        t.learn_in(&event(4_000_014, "newer", 8080, [10, 0, 0, 2]), ours);
        assert_eq!(owner(&mut t, &server, &client), "newer");
    }
}
