//! UDP: `src.port > dst.port: UDP, length N` (the payload length the UDP header
//! gives). tcpdump decodes well-known ports' payloads (DNS, NTP, ...); kcap stops here.

use crate::Out;
use crate::bytes::u16_at;
use crate::ip::Addresses;

pub fn print(addrs: Addresses, data: &[u8], length: u32, out: &mut Out) {
    let (Some(sport), Some(dport), Some(ulen)) =
        (u16_at(data, 0), u16_at(data, 2), u16_at(data, 4))
    else {
        out.addresses(addrs);
        out.push(": [|udp]");
        return;
    };
    out.endpoints(addrs, sport, dport);
    let ulen = u32::from(ulen);
    if ulen < 8 {
        out.fmt(format_args!(": UDP, bad length {ulen} < 8"));
    } else if ulen > length {
        out.fmt(format_args!(": UDP, bad length {ulen} > {length}"));
    } else {
        out.fmt(format_args!(": UDP, length {}", ulen - 8));
    }
}
