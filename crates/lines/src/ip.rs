//! IPv4 and IPv6: `IP src > dst: ` (`IP6` for v6), then the transport, with the
//! length the IP header says it carries (not what was captured).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::bytes::{u8_at, u16_at};
use crate::{Out, Printer, icmp, tcp, udp};

/// The addresses of one IP packet, for the transport to print beside its ports.
#[derive(Debug, Clone, Copy)]
pub struct Addresses {
    pub src: IpAddr,
    pub dst: IpAddr,
}

pub fn print(p: &mut Printer, data: &[u8], length: u32, out: &mut Out) {
    match u8_at(data, 0).map(|b| b >> 4) {
        Some(4) => v4(p, data, length, out),
        Some(6) => v6(p, data, out),
        Some(v) => out.fmt(format_args!("IP{v} (unknown version), length {length}")),
        None => out.push("[|ip]"),
    }
}

fn v4(p: &mut Printer, data: &[u8], length: u32, out: &mut Out) {
    let ihl = usize::from(data[0] & 0x0f) * 4;
    let (Some(total), Some(frag), Some(proto), Some(src), Some(dst)) = (
        u16_at(data, 2),
        u16_at(data, 6),
        u8_at(data, 9),
        data.get(12..16),
        data.get(16..20),
    ) else {
        out.push("IP [|ip]");
        return;
    };
    let addrs = Addresses {
        src: IpAddr::V4(Ipv4Addr::new(src[0], src[1], src[2], src[3])),
        dst: IpAddr::V4(Ipv4Addr::new(dst[0], dst[1], dst[2], dst[3])),
    };
    out.push("IP ");
    let total = if total == 0 { length } else { u32::from(total) };
    let payload_len = total.saturating_sub(ihl as u32);
    let payload = data.get(ihl..).unwrap_or(&[]);
    if frag & 0x1fff != 0 {
        // A later fragment: no transport header to read.
        out.addresses(addrs);
        out.fmt(format_args!(": {}", proto_name(proto)));
        return;
    }
    transport(p, proto, addrs, payload, payload_len, out);
}

fn v6(p: &mut Printer, data: &[u8], out: &mut Out) {
    let (Some(plen), Some(mut next), Some(src), Some(dst)) = (
        u16_at(data, 4),
        u8_at(data, 6),
        data.get(8..24),
        data.get(24..40),
    ) else {
        out.push("IP6 [|ip6]");
        return;
    };
    let v6addr = |b: &[u8]| {
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        IpAddr::V6(Ipv6Addr::from(a))
    };
    let addrs = Addresses {
        src: v6addr(src),
        dst: v6addr(dst),
    };
    out.push("IP6 ");
    let mut at = 40;
    let mut remaining = u32::from(plen);
    let mut prefix = String::new();
    // Extension headers that tcpdump names before the transport.
    loop {
        let name = match next {
            0 => "HBH",
            60 => "DSTOPT",
            43 => "srcrt",
            _ => break,
        };
        let (Some(following), Some(units)) = (u8_at(data, at), u8_at(data, at + 1)) else {
            break;
        };
        let len = (usize::from(units) + 1) * 8;
        prefix.push_str(name);
        prefix.push(' ');
        next = following;
        at += len;
        remaining = remaining.saturating_sub(len as u32);
    }
    if next == 44 {
        out.addresses(addrs);
        out.fmt(format_args!(": {prefix}frag"));
        return;
    }
    let payload = data.get(at..).unwrap_or(&[]);
    if !prefix.is_empty() {
        // tcpdump prints the addresses, then the extension headers, then the rest.
        out.addresses(addrs);
        out.fmt(format_args!(": {prefix}"));
        transport_after_addresses(p, next, addrs, payload, remaining, out);
        return;
    }
    transport(p, next, addrs, payload, remaining, out);
}

fn transport(
    p: &mut Printer,
    proto: u8,
    addrs: Addresses,
    payload: &[u8],
    length: u32,
    out: &mut Out,
) {
    // TCP and UDP put their ports on the addresses themselves.
    if proto != 6 && proto != 17 {
        out.addresses(addrs);
        out.push(": ");
    }
    transport_after_addresses(p, proto, addrs, payload, length, out);
}

/// What follows `src > dst: ` (for TCP and UDP: the whole `src.port > dst.port: ...`).
fn transport_after_addresses(
    p: &mut Printer,
    proto: u8,
    addrs: Addresses,
    payload: &[u8],
    length: u32,
    out: &mut Out,
) {
    match proto {
        1 => icmp::v4(payload, length, out),
        58 => icmp::v6(payload, length, out),
        // A TCP or UDP packet behind IPv6 extension headers: tcpdump prints the
        // endpoints again there; kcap keeps the same shape.
        6 => tcp::print(p, addrs, payload, length, out),
        17 => udp::print(addrs, payload, length, out),
        other => out.fmt(format_args!("{} {length}", proto_name(other))),
    }
}

fn proto_name(proto: u8) -> String {
    match proto {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "icmp6".into(),
        n => format!("ip-proto-{n}"),
    }
}
