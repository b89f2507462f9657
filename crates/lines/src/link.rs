//! The link layer: what tcpdump prints of it without `-e` (for Linux cooked v2:
//! the interface and direction; for the others nothing), and the protocol it
//! carries.

use kcap_pcap::LinkType;

use crate::bytes::{u8_at, u16_at, u32_at};
use crate::{Out, Printer, arp, ip};

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_IPV6: u16 = 0x86dd;

/// Prints the packet; returns the length of its link-layer header.
pub fn print(p: &mut Printer, link: LinkType, data: &[u8], orig_len: u32, out: &mut Out) -> usize {
    let (header, ethertype) = match link {
        LinkType::ETHERNET => {
            let Some(mut ethertype) = u16_at(data, 12) else {
                out.push("[|ether]");
                return data.len();
            };
            let mut header = 14;
            // 802.1Q tags: the protocol follows the tag.
            while ethertype == ETHERTYPE_VLAN {
                match u16_at(data, header + 2) {
                    Some(inner) => ethertype = inner,
                    None => {
                        out.push("[|vlan]");
                        return data.len();
                    }
                }
                header += 4;
            }
            (header, Some(ethertype))
        }
        LinkType::LINUX_SLL => (16, u16_at(data, 14)),
        LinkType::LINUX_SLL2 => {
            let (Some(ifindex), Some(pkttype)) = (u32_at(data, 4), u8_at(data, 10)) else {
                out.push("[|sll2]");
                return data.len();
            };
            // tcpdump names the interface from the reading machine's own table, which
            // says nothing about the capturing node's: kcap prints the index.
            out.fmt(format_args!(
                "{:<5} {:<3} ",
                format!("if{ifindex}"),
                direction(pkttype)
            ));
            (20, u16_at(data, 0))
        }
        LinkType::RAW | LinkType::IPV4 | LinkType::IPV6 => (0, None),
        LinkType::NULL | LinkType::LOOP => (4, None),
        other => {
            out.fmt(format_args!(
                "unsupported link type {}, length {orig_len}",
                other.name()
            ));
            return data.len();
        }
    };
    let Some(payload) = data.get(header..) else {
        out.push("[|link]");
        return data.len();
    };
    let length = orig_len.saturating_sub(header as u32);
    match ethertype {
        // Raw IP and BSD loopback: the IP version says which.
        None => ip::print(p, payload, length, out),
        Some(ETHERTYPE_IPV4) | Some(ETHERTYPE_IPV6) => ip::print(p, payload, length, out),
        Some(ETHERTYPE_ARP) => arp::print(payload, length, out),
        Some(other) => out.fmt(format_args!(
            "ethertype Unknown (0x{other:04x}), length {}",
            orig_len
        )),
    }
    header
}

/// The Linux packet type as tcpdump names it.
fn direction(pkttype: u8) -> &'static str {
    match pkttype {
        0 => "In",
        1 => "B",
        2 => "M",
        3 => "P",
        4 => "Out",
        _ => "?",
    }
}
