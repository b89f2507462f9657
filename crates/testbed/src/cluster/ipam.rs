//! Per-node IP address management (host-local IPAM): hands out addresses of
//! the node's pod /24, `.2` to `.254` (`.1` is the bridge gateway).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

#[derive(Debug)]
pub(crate) struct Ipam {
    cidr: Ipv4Addr,
    used: BTreeSet<u8>,
    /// Next host part to try: allocation goes round the range instead of reusing
    /// the lowest free address, so a stopped pod's IP is not immediately someone
    /// else's (as host-local IPAM does).
    next: u8,
}

const FIRST: u8 = 2;
const LAST: u8 = 254;

impl Ipam {
    pub(crate) fn new(cidr: Ipv4Addr) -> Ipam {
        Ipam {
            cidr,
            used: BTreeSet::new(),
            next: FIRST,
        }
    }

    pub(crate) fn allocate(&mut self) -> Option<Ipv4Addr> {
        for _ in FIRST..=LAST {
            let host = self.next;
            self.next = if host == LAST { FIRST } else { host + 1 };
            if self.used.insert(host) {
                let o = self.cidr.octets();
                return Some(Ipv4Addr::new(o[0], o[1], o[2], host));
            }
        }
        None
    }

    pub(crate) fn release(&mut self, ip: Ipv4Addr) {
        if ip.octets()[..3] == self.cidr.octets()[..3] {
            self.used.remove(&ip.octets()[3]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_round_robin_and_reuses_only_after_a_full_turn() {
        let mut ipam = Ipam::new(Ipv4Addr::new(10, 244, 1, 0));
        let a = ipam.allocate().unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 244, 1, 2));
        ipam.release(a);
        assert_eq!(ipam.allocate().unwrap(), Ipv4Addr::new(10, 244, 1, 3));
        let rest: Vec<_> = std::iter::from_fn(|| ipam.allocate()).collect();
        assert_eq!(rest.len(), 252, "all but .3 (.2 came back)");
        assert!(ipam.allocate().is_none());
    }
}
