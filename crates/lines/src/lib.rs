//! tcpdump's one-line packet descriptions (`tcpdump -n` without `-v`), so people
//! who read tcpdump read kcap: the link part of Linux cooked captures, IPv4, IPv6,
//! ARP, ICMP, ICMPv6, TCP (flags, relative seq/ack, win, options, length) and UDP.
//! Application-layer decodes (DNS, HTTP, ...) are left out: a line ends where
//! tcpdump's transport part ends. Addresses may carry names: `10.0.0.5(prod/web-0).8080`.
//!
//! Everything reads from the packet's bytes with bounds checks: a truncated or
//! hostile packet gives a shorter line (`[|tcp]`, as tcpdump), never a panic. The
//! only state is TCP's table of initial sequence numbers, capped in size.

mod arp;
mod bytes;
pub mod compare;
mod hex;
mod icmp;
mod ip;
mod link;
mod tcp;
mod udp;

use std::net::IpAddr;

pub use hex::{Dump, dump};
use kcap_pcap::LinkType;

/// Names addresses: a pod, service or node name for an IP, if known.
pub trait Names {
    fn name(&self, ip: IpAddr) -> Option<&str>;
}

/// No names: tcpdump's `-n` text exactly.
pub struct NoNames;

impl Names for NoNames {
    fn name(&self, _: IpAddr) -> Option<&str> {
        None
    }
}

/// Describes packets one after another (TCP's relative sequence numbers need
/// the packets seen before).
#[derive(Default)]
pub struct Printer {
    tcp: tcp::Conversations,
}

/// One described packet: the text, and where the link layer ends (for `-x`,
/// which dumps the packet without its link header, as tcpdump does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub text: String,
    pub link_header_len: usize,
}

impl Printer {
    pub fn new() -> Printer {
        Printer::default()
    }

    /// The line tcpdump prints after the timestamp for a packet of `link` type
    /// whose captured bytes are `data` and whose length on the wire was `orig_len`.
    pub fn describe(
        &mut self,
        link: LinkType,
        data: &[u8],
        orig_len: u32,
        names: &dyn Names,
    ) -> Line {
        let mut out = Out {
            text: String::with_capacity(128),
            names,
        };
        let link_header_len = link::print(self, link, data, orig_len, &mut out);
        Line {
            text: out.text,
            link_header_len,
        }
    }
}

/// Where a line is built, with the names to print beside addresses.
pub(crate) struct Out<'a> {
    pub text: String,
    pub names: &'a dyn Names,
}

impl Out<'_> {
    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    /// An address, with its name in parentheses when known.
    pub fn addr(&mut self, ip: IpAddr) {
        use std::fmt::Write;
        let _ = write!(self.text, "{ip}");
        if let Some(name) = self.names.name(ip) {
            let _ = write!(self.text, "({name})");
        }
    }

    /// `addr.port`, tcpdump's form for transport endpoints.
    pub fn endpoint(&mut self, ip: IpAddr, port: u16) {
        use std::fmt::Write;
        self.addr(ip);
        let _ = write!(self.text, ".{port}");
    }

    /// `src > dst`.
    pub fn addresses(&mut self, addrs: ip::Addresses) {
        self.addr(addrs.src);
        self.push(" > ");
        self.addr(addrs.dst);
    }

    /// `src.sport > dst.dport`.
    pub fn endpoints(&mut self, addrs: ip::Addresses, sport: u16, dport: u16) {
        self.endpoint(addrs.src, sport);
        self.push(" > ");
        self.endpoint(addrs.dst, dport);
    }

    pub fn fmt(&mut self, args: std::fmt::Arguments<'_>) {
        use std::fmt::Write;
        let _ = self.text.write_fmt(args);
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    /// IPv4/TCP SYN from 10.0.0.1:40000 to 10.0.0.2:8080 over Ethernet, with MSS
    /// and SACK-permitted options.
    fn syn() -> Vec<u8> {
        let mut p = vec![0u8; 12];
        p.extend_from_slice(&[0x08, 0x00]);
        p.extend_from_slice(&[
            0x45, 0, 0, 48, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        p.extend_from_slice(&[
            0x9c, 0x40, 0x1f, 0x90, 0, 0, 0, 100, 0, 0, 0, 0, 0x70, 0x02, 0xff, 0xff, 0, 0, 0, 0,
        ]);
        p.extend_from_slice(&[2, 4, 0x05, 0xb4, 4, 2, 1, 1]);
        p
    }

    struct Pods;
    impl Names for Pods {
        fn name(&self, ip: IpAddr) -> Option<&str> {
            (ip.to_string() == "10.0.0.2").then_some("prod/web-0")
        }
    }

    #[test]
    fn names_follow_addresses_and_ports_follow_names() {
        let p = syn();
        let line = Printer::new().describe(LinkType::ETHERNET, &p, p.len() as u32, &Pods);
        assert_eq!(
            line.text,
            "IP 10.0.0.1.40000 > 10.0.0.2(prod/web-0).8080: Flags [S], seq 100, win 65535, options [mss 1460,sackOK,nop,nop], length 0"
        );
        assert_eq!(line.link_header_len, 14);
    }

    /// Every prefix of a packet, on every link type: a line, never a panic.
    #[test]
    fn truncated_packets_give_short_lines() {
        let p = syn();
        for link in [
            LinkType::ETHERNET,
            LinkType::LINUX_SLL,
            LinkType::LINUX_SLL2,
            LinkType::RAW,
            LinkType::NULL,
            LinkType(12345),
        ] {
            let mut printer = Printer::new();
            for cut in 0..=p.len() {
                let line = printer.describe(link, &p[..cut], p.len() as u32, &NoNames);
                assert!(!line.text.is_empty(), "{link:?} {cut}");
            }
        }
        let mut printer = Printer::new();
        let cut = printer.describe(LinkType::ETHERNET, &p[..40], p.len() as u32, &NoNames);
        assert_eq!(cut.text, "IP 10.0.0.1.40000 > 10.0.0.2.8080: [|tcp]");
    }

    #[test]
    fn dumps_in_tcpdumps_layout() {
        let data: Vec<u8> = (0x41..0x41 + 18).collect();
        assert_eq!(
            dump(Dump::Hex, &data),
            "\n\t0x0000:  4142 4344 4546 4748 494a 4b4c 4d4e 4f50\n\t0x0010:  5152"
        );
        assert_eq!(
            dump(Dump::HexAscii, &data[..3]),
            "\n\t0x0000:  4142 43                                  ABC"
        );
        assert_eq!(dump(Dump::Ascii, b"GET /\r\nx\ty\x01"), "\nGET /\nx\ty.");
    }
}
