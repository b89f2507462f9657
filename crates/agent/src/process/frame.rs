//! The two transport endpoints of a captured frame: what packets are matched to
//! sockets by (IPv4 and IPv6, TCP and UDP; a fragment after the first has no
//! ports and matches nothing).

use crate::ring::{Framing, Packet};

use super::programs::{PROTO_TCP, PROTO_UDP};

/// A transport endpoint. IPv4 addresses are kept IPv4-mapped (`::ffff:a.b.c.d`),
/// as a dual-stack socket reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub proto: u8,
    pub addr: [u8; 16],
    pub port: u16,
}

pub fn mapped_v4(v4: [u8; 4]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[10] = 0xff;
    a[11] = 0xff;
    a[12..].copy_from_slice(&v4);
    a
}

/// (source, destination) of the frame, if it is TCP or UDP over IP.
pub fn endpoints(framing: Framing, packet: &Packet<'_>) -> Option<(Endpoint, Endpoint)> {
    let (ethertype, l3) = match framing {
        Framing::Cooked => (packet.protocol, packet.data),
        Framing::Ethernet => {
            let d = packet.data;
            (u16::from_be_bytes([*d.get(12)?, *d.get(13)?]), d.get(14..)?)
        }
    };
    let (proto, src, dst, l4) = match ethertype {
        0x0800 => {
            let ihl = usize::from(l3.first()? & 0x0f) * 4;
            let fragment = u16::from_be_bytes([*l3.get(6)?, *l3.get(7)?]) & 0x1fff;
            if ihl < 20 || fragment != 0 {
                return None;
            }
            let src = mapped_v4(l3.get(12..16)?.try_into().ok()?);
            let dst = mapped_v4(l3.get(16..20)?.try_into().ok()?);
            (*l3.get(9)?, src, dst, l3.get(ihl..)?)
        }
        0x86dd => {
            let src: [u8; 16] = l3.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = l3.get(24..40)?.try_into().ok()?;
            (*l3.get(6)?, src, dst, l3.get(40..)?)
        }
        _ => return None,
    };
    if proto != PROTO_TCP && proto != PROTO_UDP {
        return None;
    }
    let port = |at: usize| Some(u16::from_be_bytes([*l4.get(at)?, *l4.get(at + 1)?]));
    Some((
        Endpoint {
            proto,
            addr: src,
            port: port(0)?,
        },
        Endpoint {
            proto,
            addr: dst,
            port: port(2)?,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cooked(protocol: u16, data: &[u8]) -> Packet<'_> {
        Packet {
            ts_sec: 0,
            ts_nsec: 0,
            len: data.len() as u32,
            data,
            vlan: None,
            protocol,
            ifindex: 1,
            hatype: 1,
            pkttype: 0,
            addr: &[],
        }
    }

    #[test]
    fn ipv4_tcp_and_ipv6_udp_give_their_ports() {
        let mut v4 = vec![
            0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        v4.extend_from_slice(&[0x1f, 0x90, 0xc3, 0x50]);
        let (s, d) = endpoints(Framing::Cooked, &cooked(0x0800, &v4)).unwrap();
        assert_eq!(
            (s.proto, s.addr, s.port),
            (6, mapped_v4([10, 0, 0, 1]), 8080)
        );
        assert_eq!((d.addr, d.port), (mapped_v4([10, 0, 0, 2]), 50000));

        let mut v6 = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
        v6.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        v6.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        v6.extend_from_slice(&[0, 53, 0x30, 0x39]);
        let (s, d) = endpoints(Framing::Cooked, &cooked(0x86dd, &v6)).unwrap();
        assert_eq!((s.proto, s.port, d.port), (17, 53, 12345));
        assert_eq!(d.addr[15], 2);
    }

    #[test]
    fn later_fragments_and_other_protocols_match_nothing() {
        let mut frag = vec![
            0x45, 0, 0, 40, 0, 0, 0x00, 0x10, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        frag.extend_from_slice(&[0, 80, 0, 81]);
        assert!(endpoints(Framing::Cooked, &cooked(0x0800, &frag)).is_none());
        let icmp = [
            0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 8, 0, 0, 0,
        ];
        assert!(endpoints(Framing::Cooked, &cooked(0x0800, &icmp)).is_none());
        assert!(endpoints(Framing::Cooked, &cooked(0x0806, &icmp)).is_none());
        assert!(endpoints(Framing::Ethernet, &cooked(0, &[0; 10])).is_none());
    }
}
