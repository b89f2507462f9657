//! What `/proc` says about a process and the sockets that exist: commands,
//! parents, network namespaces and their local addresses.

use std::collections::HashMap;
use std::fs;

use super::programs::{Event, PROTO_TCP, PROTO_UDP};

/// Arguments are cut here: a comment per process, not a core dump.
const MAX_ARGS: usize = 1000;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// The inode of `pid`'s network namespace (`pid` may be `self`).
pub fn netns_of(pid: &str) -> Option<u64> {
    let link = fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    let text = link.to_str()?;
    text.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

pub fn exe(pid: &str) -> Option<String> {
    let path = fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    Some(
        path.to_string_lossy()
            .trim_end_matches(" (deleted)")
            .to_string(),
    )
}

pub fn comm(pid: &str) -> Option<String> {
    Some(
        fs::read_to_string(format!("/proc/{pid}/comm"))
            .ok()?
            .trim_end()
            .to_string(),
    )
}

/// The command line, arguments joined by spaces; `None` for a kernel thread or
/// a process gone.
pub fn cmdline(pid: &str) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    if raw.is_empty() {
        return None;
    }
    let mut text: String = String::from_utf8_lossy(&raw)
        .trim_end_matches('\0')
        .replace('\0', " ");
    if text.len() > MAX_ARGS {
        let mut end = MAX_ARGS;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    Some(text)
}

/// The parent's pid, from `/proc/PID/stat` (after the command, which may hold
/// anything, in parentheses).
pub fn parent(pid: &str) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()
}

/// The addresses of `pid`'s network namespace: IPv4 ones IPv4-mapped (from the
/// local routing table), IPv6 ones as they are.
pub fn local_addresses(pid: &str) -> Option<Vec<[u8; 16]>> {
    let trie = fs::read_to_string(format!("/proc/{pid}/net/fib_trie")).ok()?;
    let mut found = Vec::new();
    let mut last = None;
    for line in trie.lines() {
        let line = line.trim();
        if let Some(addr) = line.strip_prefix("|-- ") {
            last = addr.parse::<std::net::Ipv4Addr>().ok();
        } else if line.ends_with("host LOCAL")
            && let Some(a) = last
        {
            let mapped = a.to_ipv6_mapped().octets();
            if !found.contains(&mapped) {
                found.push(mapped);
            }
        }
    }
    if let Ok(v6) = fs::read_to_string(format!("/proc/{pid}/net/if_inet6")) {
        for line in v6.lines() {
            if let Some(a) = line.split_whitespace().next().and_then(hex16) {
                found.push(a);
            }
        }
    }
    Some(found)
}

fn hex16(hex: &str) -> Option<[u8; 16]> {
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The sockets that exist now, as events from their owners: listening and
/// connected TCP sockets and every UDP socket, in every network namespace.
pub fn existing_sockets() -> Vec<Event> {
    // socket inode -> owning process, and one process per network namespace.
    let mut owners: HashMap<u64, u32> = HashMap::new();
    let mut namespaces: HashMap<u64, u32> = HashMap::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        let mut any = false;
        for fd in fds.flatten() {
            let Ok(link) = fs::read_link(fd.path()) else {
                continue;
            };
            if let Some(inode) = link
                .to_str()
                .and_then(|l| l.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok())
            {
                owners.entry(inode).or_insert(pid);
                any = true;
            }
        }
        if any && let Some(ns) = netns_of(&pid.to_string()) {
            namespaces.entry(ns).or_insert(pid);
        }
    }
    let mut events = Vec::new();
    for pid in namespaces.into_values() {
        for (file, proto, family) in [
            ("tcp", PROTO_TCP, AF_INET),
            ("tcp6", PROTO_TCP, AF_INET6),
            ("udp", PROTO_UDP, AF_INET),
            ("udp6", PROTO_UDP, AF_INET6),
        ] {
            let Ok(table) = fs::read_to_string(format!("/proc/{pid}/net/{file}")) else {
                continue;
            };
            for line in table.lines().skip(1) {
                if let Some(e) = socket_line(line, proto, family, &owners) {
                    events.push(e);
                }
            }
        }
    }
    events
}

/// One line of `/proc/net/tcp` (or udp, tcp6, udp6) as an event of its owner.
fn socket_line(line: &str, proto: u8, family: u16, owners: &HashMap<u64, u32>) -> Option<Event> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
    // TCP: established (01) or listening (0A); the others are on their way out.
    if proto == PROTO_TCP && *state != "01" && *state != "0A" {
        return None;
    }
    let tgid = *owners.get(&inode.parse().ok()?)?;
    let (addr_hex, port_hex) = local.split_once(':')?;
    let port = u16::from_str_radix(port_hex, 16).ok()?;
    let mut addr = [0u8; 16];
    // The kernel prints each 32-bit word of the address in host byte order.
    for (i, word) in addr_hex.as_bytes().chunks(8).enumerate().take(4) {
        let w = u32::from_str_radix(std::str::from_utf8(word).ok()?, 16).ok()?;
        addr[4 * i..4 * i + 4].copy_from_slice(&w.to_ne_bytes());
    }
    let pid = tgid.to_string();
    Some(Event {
        tgid,
        ppid: parent(&pid).unwrap_or(0),
        proto,
        family,
        port,
        addr,
        comm: comm(&pid).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_lines_give_the_owner_and_the_local_endpoint() {
        let owners = HashMap::from([(4242u64, 7u32)]);
        let line = "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0";
        let e = socket_line(line, PROTO_TCP, AF_INET, &owners).unwrap();
        assert_eq!(
            (e.tgid, e.port, &e.addr[..4]),
            (7, 8080, &[127, 0, 0, 1][..])
        );
        let closing = line.replace(" 0A ", " 06 ");
        assert!(socket_line(&closing, PROTO_TCP, AF_INET, &owners).is_none());
        assert!(socket_line(&closing, PROTO_UDP, AF_INET, &owners).is_some());
        assert!(socket_line(&line.replace("4242", "99"), PROTO_TCP, AF_INET, &owners).is_none());
    }

    #[test]
    fn this_process_is_described() {
        let me = std::process::id().to_string();
        assert!(exe(&me).is_some());
        assert!(cmdline(&me).is_some());
        assert!(parent(&me).is_some());
        assert!(netns_of("self").is_some());
        let addresses = local_addresses("self").unwrap();
        assert!(addresses.contains(&std::net::Ipv4Addr::LOCALHOST.to_ipv6_mapped().octets()));
    }
}
