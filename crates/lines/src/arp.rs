//! ARP for IPv4 over Ethernet: `ARP, Request who-has A tell B` and
//! `ARP, Reply A is-at MAC`, with the length after the link header (padding included).

use std::net::{IpAddr, Ipv4Addr};

use crate::Out;
use crate::bytes::{u8_at, u16_at};

pub fn print(data: &[u8], length: u32, out: &mut Out) {
    let (Some(hrd), Some(pro), Some(hln), Some(pln), Some(op)) = (
        u16_at(data, 0),
        u16_at(data, 2),
        u8_at(data, 4),
        u8_at(data, 5),
        u16_at(data, 6),
    ) else {
        out.push("ARP, [|arp]");
        return;
    };
    if hrd != 1 || pro != 0x0800 || hln != 6 || pln != 4 {
        out.fmt(format_args!(
            "ARP, hardware #{hrd}, protocol 0x{pro:04x}, length {length}"
        ));
        return;
    }
    let ip_at = |at: usize| {
        data.get(at..at + 4)
            .map(|b| IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])))
    };
    let (Some(sha), Some(spa), Some(tha), Some(tpa)) =
        (data.get(8..14), ip_at(14), data.get(18..24), ip_at(24))
    else {
        out.push("ARP, [|arp]");
        return;
    };
    match op {
        1 => {
            out.push("ARP, Request who-has ");
            out.addr(tpa);
            if tha.iter().any(|b| *b != 0) {
                out.fmt(format_args!(" ({})", mac(tha)));
            }
            out.push(" tell ");
            out.addr(spa);
        }
        2 => {
            out.push("ARP, Reply ");
            out.addr(spa);
            out.fmt(format_args!(" is-at {}", mac(sha)));
        }
        other => out.fmt(format_args!("ARP, unknown op {other}")),
    }
    out.fmt(format_args!(", length {length}"));
}

fn mac(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
