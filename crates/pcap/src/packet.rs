//! The packet and link-type values shared by every reader, writer and the merger.

use bytes::Bytes;

/// One captured packet. Timestamps are nanoseconds since the Unix epoch,
/// whatever the source resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub ts_nanos: u64,
    /// Length of the packet on the wire; `data` may be shorter (snaplen).
    pub orig_len: u32,
    /// Shares the chunk it was decoded from (one allocation per read, not one per
    /// packet), so a packet kept long after its neighbours went keeps the whole
    /// chunk alive: whatever keeps packets past the merge calls [`Self::own_data`].
    pub data: Bytes,
    /// The packet's own comment: the process text kcap's capture agent gave it
    /// (see [`crate::annotation`]), or a comment read back from a pcapng file.
    /// Shared: every packet of one process holds the same text.
    pub comment: Option<std::sync::Arc<str>>,
}

impl Packet {
    /// A record with no data and length 0 on the wire, which no real packet has:
    /// kcap's capture agent sends one when it has handed over everything, to say
    /// that no later record of its stream is older than `ts_nanos`. Never written.
    pub fn is_watermark(&self) -> bool {
        self.orig_len == 0 && self.data.is_empty()
    }

    /// Gives the packet a copy of its data of its own, letting go of the chunk
    /// it shared: for packets kept while their neighbours are dropped (the
    /// flight recorder's window, the survivors of a filter), which would
    /// otherwise pin whole chunks for a few bytes each.
    pub fn own_data(&mut self) {
        self.data = Bytes::copy_from_slice(&self.data);
    }
}

/// A libpcap `LINKTYPE_` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    pub const RAW: LinkType = LinkType(101);
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const NFLOG: LinkType = LinkType(239);
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// The name tcpdump uses for this link type (`tcpdump -L`), or
    /// `LINKTYPE_<n>` for ones we do not know.
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "NULL",
            1 => "EN10MB",
            101 => "RAW",
            108 => "LOOP",
            113 => "LINUX_SLL",
            228 => "IPV4",
            229 => "IPV6",
            239 => "NFLOG",
            276 => "LINUX_SLL2",
            n => unknown_name(n),
        }
    }
}

/// `LINKTYPE_<n>` as a `&'static str`: each distinct unknown value is leaked
/// once and cached, so memory is bounded by the link types actually seen.
fn unknown_name(n: u32) -> &'static str {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashMap<u32, &'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    names
        .entry(n)
        .or_insert_with(|| Box::leak(format!("LINKTYPE_{n}").into_boxed_str()))
}

impl std::fmt::Display for LinkType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::LinkType;

    #[test]
    fn names_match_tcpdump_and_fall_back_to_the_number() {
        assert_eq!(LinkType::ETHERNET.name(), "EN10MB");
        assert_eq!(LinkType::LINUX_SLL2.name(), "LINUX_SLL2");
        assert_eq!(LinkType(4242).name(), "LINKTYPE_4242");
        // The fallback is cached: the same &'static str comes back.
        assert!(std::ptr::eq(LinkType(4242).name(), LinkType(4242).name()));
        assert_eq!(LinkType::RAW.to_string(), "RAW");
    }
}
