//! The pcap stream the agent writes: nanosecond timestamps, link type EN10MB for
//! Ethernet framing or LINUX_SLL2 for cooked framing, as tcpdump would write it.

use crate::ring::{Framing, Packet};

const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
const LINKTYPE_ETHERNET: u32 = 1;
const LINKTYPE_LINUX_SLL2: u32 = 276;
const SLL2_HEADER: usize = 20;
const ETHERNET_ADDRESSES: usize = 12;

/// The 24-byte file header.
pub fn header(framing: Framing, snaplen: u32) -> Vec<u8> {
    let linktype = match framing {
        Framing::Ethernet => LINKTYPE_ETHERNET,
        Framing::Cooked => LINKTYPE_LINUX_SLL2,
    };
    let mut out = Vec::with_capacity(24);
    out.extend_from_slice(&MAGIC_NANOS.to_ne_bytes());
    out.extend_from_slice(&2u16.to_ne_bytes());
    out.extend_from_slice(&4u16.to_ne_bytes());
    out.extend_from_slice(&0i32.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&snaplen.to_ne_bytes());
    out.extend_from_slice(&linktype.to_ne_bytes());
    out
}

/// Appends one record for `packet` to `out`, at most `snaplen` bytes of it.
pub fn record(out: &mut Vec<u8>, framing: Framing, snaplen: u32, packet: &Packet<'_>) {
    let snaplen = snaplen as usize;
    let (prefix, original) = match framing {
        Framing::Cooked => (sll2(packet), packet.len as usize + SLL2_HEADER),
        Framing::Ethernet => (
            Vec::new(),
            packet.len as usize + if packet.vlan.is_some() { 4 } else { 0 },
        ),
    };
    let start = out.len();
    out.extend_from_slice(&packet.ts_sec.to_ne_bytes());
    out.extend_from_slice(&packet.ts_nsec.to_ne_bytes());
    out.extend_from_slice(&[0; 8]); // lengths, filled in below
    out.extend_from_slice(&prefix);
    match packet.vlan {
        // The kernel took the 802.1Q tag out of the frame; put it back where it was.
        Some((tpid, tci))
            if framing == Framing::Ethernet && packet.data.len() >= ETHERNET_ADDRESSES =>
        {
            out.extend_from_slice(&packet.data[..ETHERNET_ADDRESSES]);
            out.extend_from_slice(&tpid.to_be_bytes());
            out.extend_from_slice(&tci.to_be_bytes());
            out.extend_from_slice(&packet.data[ETHERNET_ADDRESSES..]);
        }
        _ => out.extend_from_slice(packet.data),
    }
    let kept = (out.len() - start - 16).min(snaplen);
    out.truncate(start + 16 + kept);
    out[start + 8..start + 12].copy_from_slice(&(kept as u32).to_ne_bytes());
    out[start + 12..start + 16].copy_from_slice(&(original.max(kept) as u32).to_ne_bytes());
}

/// A watermark: a record with no data and length 0 on the wire (no real packet has
/// that), stamped `ts_nanos`, saying that no later record of this stream is older.
/// kcap's merge then need not wait for this stream to release other sources'
/// packets (see kcap-pcap's `Packet::is_watermark`); it never reaches a file.
pub fn watermark(out: &mut Vec<u8>, ts_nanos: u64) {
    out.extend_from_slice(&((ts_nanos / 1_000_000_000) as u32).to_ne_bytes());
    out.extend_from_slice(&((ts_nanos % 1_000_000_000) as u32).to_ne_bytes());
    out.extend_from_slice(&[0; 8]);
}

/// The LINUX_SLL2 header: protocol, reserved, interface index, hardware type,
/// packet type, address length, address (all big-endian, address padded to 8).
fn sll2(packet: &Packet<'_>) -> Vec<u8> {
    let mut h = Vec::with_capacity(SLL2_HEADER);
    h.extend_from_slice(&packet.protocol.to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(&packet.ifindex.to_be_bytes());
    h.extend_from_slice(&packet.hatype.to_be_bytes());
    h.push(packet.pkttype);
    h.push(packet.addr.len() as u8);
    let mut addr = [0u8; 8];
    addr[..packet.addr.len()].copy_from_slice(packet.addr);
    h.extend_from_slice(&addr);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet<'a>(data: &'a [u8], vlan: Option<(u16, u16)>) -> Packet<'a> {
        Packet {
            ts_sec: 7,
            ts_nsec: 9,
            len: data.len() as u32 + 100,
            data,
            vlan,
            protocol: 0x0800,
            ifindex: 3,
            hatype: 1,
            pkttype: 4,
            addr: &[1, 2, 3, 4, 5, 6],
        }
    }

    #[test]
    fn cooked_records_carry_an_sll2_header() {
        let mut out = Vec::new();
        record(
            &mut out,
            Framing::Cooked,
            262_144,
            &packet(&[0x45; 30], None),
        );
        assert_eq!(out.len(), 16 + 20 + 30);
        assert_eq!(u32::from_ne_bytes(out[8..12].try_into().unwrap()), 50);
        assert_eq!(u32::from_ne_bytes(out[12..16].try_into().unwrap()), 150);
        assert_eq!(&out[16..28], &[8, 0, 0, 0, 0, 0, 0, 3, 0, 1, 4, 6]);
        assert_eq!(out[36], 0x45);
    }

    #[test]
    fn vlan_tags_go_back_into_ethernet_frames_and_snaplen_cuts() {
        let frame: Vec<u8> = (0..20).collect();
        let mut out = Vec::new();
        record(
            &mut out,
            Framing::Ethernet,
            14,
            &packet(&frame, Some((0x8100, 5))),
        );
        assert_eq!(u32::from_ne_bytes(out[8..12].try_into().unwrap()), 14);
        assert_eq!(
            &out[16..30],
            &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x81, 0x00]
        );
        assert_eq!(header(Framing::Cooked, 100)[20], 20);
    }
}
