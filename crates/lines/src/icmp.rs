//! ICMP and ICMPv6 in tcpdump's words: echo id/seq, unreachables with the
//! quoted packet's destination and port, neighbor discovery targets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::Out;
use crate::bytes::{u8_at, u16_at};

pub fn v4(data: &[u8], length: u32, out: &mut Out) {
    let (Some(kind), Some(code)) = (u8_at(data, 0), u8_at(data, 1)) else {
        out.push("[|icmp]");
        return;
    };
    out.push("ICMP ");
    let id_seq = |out: &mut Out| {
        out.fmt(format_args!(
            ", id {}, seq {}",
            u16_at(data, 4).unwrap_or(0),
            u16_at(data, 6).unwrap_or(0)
        ))
    };
    match kind {
        0 => {
            out.push("echo reply");
            id_seq(out);
        }
        8 => {
            out.push("echo request");
            id_seq(out);
        }
        3 => unreachable_v4(data.get(8..).unwrap_or(&[]), code, out),
        11 if code == 1 => out.push("ip reassembly time exceeded"),
        11 => out.push("time exceeded in-transit"),
        4 => out.push("source quench"),
        10 => out.push("router solicitation"),
        13 => out.push("time stamp request"),
        14 => out.push("time stamp reply"),
        _ => out.fmt(format_args!("type-#{kind}")),
    }
    out.fmt(format_args!(", length {length}"));
}

/// The packet an ICMP error quotes: its destination, protocol and destination port.
fn quoted_v4(inner: &[u8]) -> Option<(IpAddr, u8, Option<u16>)> {
    let ihl = usize::from(u8_at(inner, 0)? & 0x0f) * 4;
    let d = inner.get(16..20)?;
    let dst = IpAddr::V4(Ipv4Addr::new(d[0], d[1], d[2], d[3]));
    Some((dst, u8_at(inner, 9)?, u16_at(inner, ihl + 2)))
}

fn unreachable_v4(inner: &[u8], code: u8, out: &mut Out) {
    let Some((dst, proto, port)) = quoted_v4(inner) else {
        out.push("[|icmp]");
        return;
    };
    match code {
        0 => {
            out.push("net ");
            out.addr(dst);
            out.push(" unreachable");
        }
        1 => {
            out.push("host ");
            out.addr(dst);
            out.push(" unreachable");
        }
        2 => {
            out.addr(dst);
            out.fmt(format_args!(" protocol {proto} unreachable"));
        }
        3 => {
            out.addr(dst);
            let port = port.unwrap_or(0);
            match proto {
                6 => out.fmt(format_args!(" tcp port {port} unreachable")),
                17 => out.fmt(format_args!(" udp port {port} unreachable")),
                p => out.fmt(format_args!(" protocol {p} port {port} unreachable")),
            }
        }
        _ => {
            out.addr(dst);
            out.fmt(format_args!(" unreachable - #{code}"));
        }
    }
}

fn v6_at(data: &[u8], at: usize) -> Option<IpAddr> {
    let b: [u8; 16] = data.get(at..at + 16)?.try_into().ok()?;
    Some(IpAddr::V6(Ipv6Addr::from(b)))
}

pub fn v6(data: &[u8], length: u32, out: &mut Out) {
    let (Some(kind), Some(code)) = (u8_at(data, 0), u8_at(data, 1)) else {
        out.push("[|icmp6]");
        return;
    };
    out.push("ICMP6, ");
    let name = match kind {
        1 => "destination unreachable",
        2 => "packet too big",
        3 => "time exceeded in-transit",
        4 => "parameter problem",
        128 => "echo request",
        129 => "echo reply",
        130 => "multicast listener query",
        131 => "multicast listener report",
        132 => "multicast listener done",
        133 => "router solicitation",
        134 => "router advertisement",
        135 => "neighbor solicitation",
        136 => "neighbor advertisement",
        137 => "redirect",
        143 => "multicast listener report v2",
        _ => "",
    };
    if name.is_empty() {
        out.fmt(format_args!("unknown icmp6 type ({kind})"));
    } else {
        out.push(name);
    }
    match kind {
        1 => {
            let inner = data.get(8..).unwrap_or(&[]);
            let codes = [
                "unreachable route",
                " unreachable prohibited",
                "beyond scope",
                "unreachable address",
                "unreachable port",
            ];
            match codes.get(usize::from(code)) {
                Some(c) => out.fmt(format_args!(", {c}")),
                None => out.fmt(format_args!(", unknown unreach code ({code})")),
            }
            if let Some(dst) = v6_at(inner, 24) {
                out.push(", ");
                out.addr(dst);
                if code == 4 {
                    let port = u16_at(inner, 42).unwrap_or(0);
                    match u8_at(inner, 6) {
                        Some(6) => out.fmt(format_args!(" tcp port {port}")),
                        Some(17) => out.fmt(format_args!(" udp port {port}")),
                        Some(p) => out.fmt(format_args!(" protocol {p} port {port} unreachable")),
                        None => {}
                    }
                }
            }
        }
        2 => out.fmt(format_args!(
            ", mtu {}",
            crate::bytes::u32_at(data, 4).unwrap_or(0)
        )),
        128 | 129 => out.fmt(format_args!(
            ", id {}, seq {}",
            u16_at(data, 4).unwrap_or(0),
            u16_at(data, 6).unwrap_or(0)
        )),
        135 | 136 => {
            if let Some(target) = v6_at(data, 8) {
                out.push(if kind == 135 {
                    ", who has "
                } else {
                    ", tgt is "
                });
                out.addr(target);
            }
        }
        143 => out.fmt(format_args!(
            ", {} group record(s)",
            u16_at(data, 6).unwrap_or(0)
        )),
        _ => {}
    }
    out.fmt(format_args!(", length {length}"));
}
