//! From captured bytes to addresses and a TCP or UDP payload, for the link types
//! kcap writes. etherparse parses Ethernet (VLANs included), IP and the transport
//! header; the Linux cooked headers and loopback's family word are skipped here.
//! Truncated packets (snaplen) still give the bytes that were captured.

use std::net::{IpAddr, SocketAddr};

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};
use kcap_pcap::LinkType;

/// What a TCP segment says that reassembly needs.
#[derive(Debug, Clone, Copy)]
pub struct TcpFlags {
    pub seq: u32,
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

/// A TCP segment or UDP datagram with its two ends.
#[derive(Debug)]
pub struct Datagram<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// `None` for UDP.
    pub tcp: Option<TcpFlags>,
    pub payload: &'a [u8],
}

/// The transport payload of `data` captured on `link`, or `None` when it is not
/// TCP or UDP over IP (ARP, ICMP, fragments after the first, unknown link types).
pub fn parse(link: LinkType, data: &[u8]) -> Option<Datagram<'_>> {
    let sliced = match link {
        LinkType::ETHERNET => LaxSlicedPacket::from_ethernet(data).ok()?,
        // LINUX_SLL: 16 bytes, the protocol (an EtherType) in the last two.
        LinkType::LINUX_SLL => ether_type_at(data, 14, 16)?,
        // LINUX_SLL2: 20 bytes, the protocol in the first two.
        LinkType::LINUX_SLL2 => ether_type_at(data, 0, 20)?,
        LinkType::RAW | LinkType::IPV4 | LinkType::IPV6 => LaxSlicedPacket::from_ip(data).ok()?,
        // BSD loopback: a 4-byte address family; the IP version tells the rest.
        LinkType::NULL | LinkType::LOOP => LaxSlicedPacket::from_ip(data.get(4..)?).ok()?,
        _ => return None,
    };
    let (src_ip, dst_ip): (IpAddr, IpAddr) = match sliced.net.as_ref()? {
        LaxNetSlice::Ipv4(v4) => (
            v4.header().source_addr().into(),
            v4.header().destination_addr().into(),
        ),
        LaxNetSlice::Ipv6(v6) => (
            v6.header().source_addr().into(),
            v6.header().destination_addr().into(),
        ),
        LaxNetSlice::Arp(_) => return None,
    };
    match sliced.transport? {
        TransportSlice::Tcp(tcp) => Some(Datagram {
            src: SocketAddr::new(src_ip, tcp.source_port()),
            dst: SocketAddr::new(dst_ip, tcp.destination_port()),
            tcp: Some(TcpFlags {
                seq: tcp.sequence_number(),
                syn: tcp.syn(),
                ack: tcp.ack(),
                fin: tcp.fin(),
                rst: tcp.rst(),
            }),
            payload: tcp.payload(),
        }),
        TransportSlice::Udp(udp) => Some(Datagram {
            src: SocketAddr::new(src_ip, udp.source_port()),
            dst: SocketAddr::new(dst_ip, udp.destination_port()),
            tcp: None,
            payload: udp.payload(),
        }),
        _ => None,
    }
}

fn ether_type_at(data: &[u8], at: usize, header_len: usize) -> Option<LaxSlicedPacket<'_>> {
    let protocol = u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]);
    Some(LaxSlicedPacket::from_ether_type(
        EtherType(protocol),
        data.get(header_len..)?,
    ))
}
