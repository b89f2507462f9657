//! TCP as tcpdump prints it: `src.port > dst.port: Flags [S.], seq A:B, ack C, win W,
//! options [...], length N`, with sequence numbers relative to the first ones seen
//! in each conversation (tcpdump's default, without `-S`).

use std::collections::HashMap;
use std::net::IpAddr;

use crate::bytes::{u8_at, u16_at, u32_at};
use crate::ip::Addresses;
use crate::{Out, Printer};

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;
const URG: u8 = 0x20;

/// Conversations remembered for relative sequence numbers. Past this many the
/// table starts afresh (tcpdump's grows without bound): a long capture's memory
/// stays flat, at the price of absolute numbers once for older conversations.
const MAX_CONVERSATIONS: usize = 1 << 16;

/// Both directions of a conversation under one key, in tcpdump's collating order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    a: IpAddr,
    b: IpAddr,
    ports: u32,
}

/// The first sequence number seen in each direction (tcpdump's `th->seq`, `th->ack`).
#[derive(Debug, Clone, Copy)]
struct Bases {
    seq: u32,
    ack: u32,
}

#[derive(Default)]
pub struct Conversations {
    bases: HashMap<Key, Bases>,
}

pub fn print(p: &mut Printer, addrs: Addresses, data: &[u8], length: u32, out: &mut Out) {
    let (Some(sport), Some(dport)) = (u16_at(data, 0), u16_at(data, 2)) else {
        out.addresses(addrs);
        out.push(": [|tcp]");
        return;
    };
    out.endpoints(addrs, sport, dport);
    out.push(":");
    let (Some(seq), Some(ack), Some(off), Some(flags), Some(win), Some(urp)) = (
        u32_at(data, 4),
        u32_at(data, 8),
        u8_at(data, 12),
        u8_at(data, 13),
        u16_at(data, 14),
        u16_at(data, 18),
    ) else {
        out.push(" [|tcp]");
        return;
    };
    let hlen = u32::from(off >> 4) * 4;
    if hlen < 20 {
        out.fmt(format_args!(
            " tcp {} [bad hdr length {hlen} - too short, < 20]",
            length.saturating_sub(20)
        ));
        return;
    }
    if hlen > length {
        out.fmt(format_args!(
            " [bad hdr length {hlen} - too long, > {length}]"
        ));
        return;
    }
    out.fmt(format_args!(" Flags [{}]", flag_letters(flags)));
    // tcpdump's collating order: one entry for both directions.
    let rev = sport > dport || (sport == dport && addr_bytes(addrs.src) > addr_bytes(addrs.dst));
    let (mut seq_shown, mut ack_shown) = (seq, ack);
    let (mut thseq, mut thack) = (0, 0);
    if flags & ACK != 0 {
        let key = if rev {
            Key {
                a: addrs.dst,
                b: addrs.src,
                ports: u32::from(dport) << 16 | u32::from(sport),
            }
        } else {
            Key {
                a: addrs.src,
                b: addrs.dst,
                ports: u32::from(sport) << 16 | u32::from(dport),
            }
        };
        let table = &mut p.tcp.bases;
        let bases = match table.get(&key) {
            Some(b) if flags & SYN == 0 => {
                if rev {
                    seq_shown = seq.wrapping_sub(b.ack);
                    ack_shown = ack.wrapping_sub(b.seq);
                } else {
                    seq_shown = seq.wrapping_sub(b.seq);
                    ack_shown = ack.wrapping_sub(b.ack);
                }
                *b
            }
            _ => {
                if table.len() >= MAX_CONVERSATIONS {
                    table.clear();
                }
                let b = if rev {
                    Bases {
                        ack: seq,
                        seq: ack.wrapping_sub(1),
                    }
                } else {
                    Bases {
                        seq,
                        ack: ack.wrapping_sub(1),
                    }
                };
                table.insert(key, b);
                b
            }
        };
        thseq = bases.seq;
        thack = bases.ack;
    }
    let payload = length - hlen;
    if payload > 0 || flags & (SYN | FIN | RST) != 0 {
        out.fmt(format_args!(", seq {seq_shown}"));
        if payload > 0 {
            out.fmt(format_args!(":{}", seq_shown.wrapping_add(payload)));
        }
    }
    if flags & ACK != 0 {
        out.fmt(format_args!(", ack {ack_shown}"));
    }
    out.fmt(format_args!(", win {win}"));
    if flags & URG != 0 {
        out.fmt(format_args!(", urg {urp}"));
    }
    if hlen > 20 {
        out.push(", options [");
        let options = data.get(20..hlen as usize);
        let complete = options.is_some();
        let options = options.unwrap_or_else(|| data.get(20..).unwrap_or(&[]));
        print_options(options, rev, thseq, thack, out);
        if !complete {
            out.push("[|tcp]");
            return;
        }
        out.push("]");
    }
    out.fmt(format_args!(", length {payload}"));
}

fn addr_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// tcpdump's letters in its order; `none` for no flag.
fn flag_letters(flags: u8) -> String {
    const LETTERS: [(u8, char); 8] = [
        (FIN, 'F'),
        (SYN, 'S'),
        (RST, 'R'),
        (0x08, 'P'),
        (ACK, '.'),
        (URG, 'U'),
        (0x40, 'E'),
        (0x80, 'W'),
    ];
    let s: String = LETTERS
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, c)| *c)
        .collect();
    if s.is_empty() { "none".into() } else { s }
}

fn option_name(kind: u8) -> String {
    match kind {
        0 => "eol".into(),
        1 => "nop".into(),
        2 => "mss".into(),
        3 => "wscale".into(),
        4 => "sackOK".into(),
        5 => "sack".into(),
        6 => "echo".into(),
        7 => "echoreply".into(),
        8 => "TS".into(),
        11 => "cc".into(),
        12 => "ccnew".into(),
        19 => "md5".into(),
        20 => "scps".into(),
        28 => "uto".into(),
        29 => "tcp-ao".into(),
        30 => "mptcp".into(),
        34 => "tfo".into(),
        254 => "exp".into(),
        n => format!("unknown-{n}"),
    }
}

fn print_options(mut opts: &[u8], rev: bool, thseq: u32, thack: u32, out: &mut Out) {
    let mut first = true;
    while let Some(&kind) = opts.first() {
        if !first {
            out.push(",");
        }
        first = false;
        out.push(&option_name(kind));
        if kind == 0 || kind == 1 {
            opts = &opts[1..];
            if kind == 0 {
                break;
            }
            continue;
        }
        let Some(len) = u8_at(opts, 1).map(usize::from) else {
            return;
        };
        if len < 2 {
            out.fmt(format_args!("[bad opt {len}]"));
            return;
        }
        let Some(body) = opts.get(2..len) else {
            return;
        };
        let expected = match kind {
            2 => {
                out.fmt(format_args!(" {}", u16_at(body, 0).unwrap_or(0)));
                Some(2)
            }
            3 => {
                out.fmt(format_args!(" {}", u8_at(body, 0).unwrap_or(0)));
                Some(1)
            }
            4 => Some(0),
            8 => {
                out.fmt(format_args!(
                    " val {} ecr {}",
                    u32_at(body, 0).unwrap_or(0),
                    u32_at(body, 4).unwrap_or(0)
                ));
                Some(8)
            }
            5 if body.len() % 8 == 0 => {
                out.fmt(format_args!(" {} ", body.len() / 8));
                for block in body.chunks(8) {
                    let (s, e) = (u32_at(block, 0).unwrap_or(0), u32_at(block, 4).unwrap_or(0));
                    let base = if rev { thseq } else { thack };
                    out.fmt(format_args!(
                        "{{{}:{}}}",
                        s.wrapping_sub(base),
                        e.wrapping_sub(base)
                    ));
                }
                None
            }
            5 => {
                out.push(" invalid sack");
                None
            }
            _ => {
                if !body.is_empty() {
                    out.push(" 0x");
                }
                for b in body {
                    out.fmt(format_args!("{b:02x}"));
                }
                None
            }
        };
        if let Some(expected) = expected
            && expected + 2 != len
        {
            out.fmt(format_args!("[len {len}]"));
        }
        opts = &opts[len..];
    }
}
