//! Rewriting Linux "cooked" headers from v2 (LINKTYPE_LINUX_SLL2, what `tcpdump -i any`
//! writes since libpcap 1.10) to v1 (LINKTYPE_LINUX_SLL), which Wireshark before 3.0
//! and many older tools read. Both carry the same facts except v2's interface index,
//! which v1 has no room for.

use crate::Packet;

/// Bytes of a LINUX_SLL2 header.
pub const SLL2_HEADER: usize = 20;
/// Bytes of a LINUX_SLL header.
pub const SLL_HEADER: usize = 16;

/// Rewrites one LINUX_SLL2 packet as LINUX_SLL in place. A packet cut inside its
/// header (a tiny snaplen) gets a v1 header from the fields that were captured,
/// zeros for the rest.
pub fn sll2_to_sll(packet: &mut Packet) {
    // v2: protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1) addrlen(1) addr(8)
    let mut v2 = [0u8; SLL2_HEADER];
    let cut = packet.data.len().min(SLL2_HEADER);
    v2[..cut].copy_from_slice(&packet.data[..cut]);
    // v1: pkttype(2) hatype(2) addrlen(2) addr(8) protocol(2)
    let mut v1 = [0u8; SLL_HEADER];
    v1[1] = v2[10];
    v1[2..4].copy_from_slice(&v2[8..10]);
    v1[5] = v2[11];
    v1[6..14].copy_from_slice(&v2[12..20]);
    v1[14..16].copy_from_slice(&v2[0..2]);
    // A new buffer: the data may share its chunk with other packets.
    let mut data = Vec::with_capacity(SLL_HEADER + packet.data.len() - cut);
    data.extend_from_slice(&v1);
    data.extend_from_slice(&packet.data[cut..]);
    packet.data = data.into();
    packet.orig_len = packet
        .orig_len
        .saturating_sub((SLL2_HEADER - SLL_HEADER) as u32);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(data: Vec<u8>, orig_len: u32) -> Packet {
        Packet {
            ts_nanos: 1,
            orig_len,
            data: data.into(),
            comment: None,
        }
    }

    #[test]
    fn every_field_lands_in_its_v1_place() {
        let v2 = [
            0x08, 0x00, // protocol: IPv4
            0x00, 0x00, // reserved
            0x00, 0x00, 0x00, 0x07, // interface index
            0x00, 0x01, // ARPHRD_ETHER
            0x04, // outgoing
            0x06, // address length
            0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x00, // address
        ];
        let mut p = packet([&v2[..], b"IP..."].concat(), 40);
        sll2_to_sll(&mut p);
        let v1 = [
            0x00, 0x04, // outgoing
            0x00, 0x01, // ARPHRD_ETHER
            0x00, 0x06, // address length
            0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x00, // address
            0x08, 0x00, // protocol
        ];
        assert_eq!(p.data, [&v1[..], b"IP..."].concat());
        assert_eq!(p.orig_len, 36);
    }

    #[test]
    fn a_cut_header_gets_zeros() {
        let mut p = packet(vec![0x86, 0xdd, 0, 0], 60);
        sll2_to_sll(&mut p);
        assert_eq!(p.data.len(), SLL_HEADER);
        assert_eq!(&p.data[14..16], [0x86, 0xdd]);
        assert_eq!(p.orig_len, 56);
    }
}
