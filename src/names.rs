//! Names for addresses: which pod, service or node an IP belongs to. Read from
//! the API when the plan is made (and learned from pods that join with
//! `--follow`, or from a file's name records with `-r`), then given to every
//! sink: `--print` lines show them after addresses, pcapng files carry them as
//! Name Resolution Blocks so Wireshark shows them too.

use std::collections::BTreeMap;
use std::net::IpAddr;

use kcap_kube::names::AddressName;

/// The two spellings of one address's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    /// In `--print` lines: `prod/web-0`, `prod/svc/web`, `node-a`.
    pub label: String,
    /// In capture files (and so in Wireshark): `web-0.prod`, `web.prod`, `node-a`.
    pub host: String,
    /// Whose it is, when known from the API (not from a file's name records):
    /// `--http`/`--dns` records give kind, namespace and name separately.
    pub address: Option<AddressName>,
}

impl From<&AddressName> for Name {
    fn from(name: &AddressName) -> Name {
        Name {
            label: name.label(),
            host: name.host_name(),
            address: Some(name.clone()),
        }
    }
}

/// Addresses and their names, in address order (files come out the same on
/// every run). Memory is the cluster's size, never the capture's.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NameTable(BTreeMap<IpAddr, Name>);

impl NameTable {
    /// The first name of an address wins: the API lists nodes before the
    /// hostNetwork pods that share their addresses.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a (IpAddr, AddressName)>) -> NameTable {
        let mut table = NameTable::default();
        for (ip, name) in names {
            table.insert(*ip, name.into());
        }
        table
    }

    /// Names as a capture file gives them (its host name is shown everywhere).
    pub fn from_file(names: Vec<(IpAddr, String)>) -> NameTable {
        let mut table = NameTable::default();
        for (ip, host) in names {
            table.insert(
                ip,
                Name {
                    label: host.clone(),
                    host,
                    address: None,
                },
            );
        }
        table
    }

    /// Adds `name` unless the address has one; returns whether it was added.
    pub fn insert(&mut self, ip: IpAddr, name: Name) -> bool {
        match self.0.entry(ip) {
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(name);
                true
            }
            std::collections::btree_map::Entry::Occupied(_) => false,
        }
    }

    /// Adds every name of `other` this table lacks; returns those added.
    pub fn merge(&mut self, other: &NameTable) -> NameTable {
        let mut added = NameTable::default();
        for (ip, name) in other.iter() {
            if self.insert(ip, name.clone()) {
                added.insert(ip, name.clone());
            }
        }
        added
    }

    pub fn get(&self, ip: IpAddr) -> Option<&Name> {
        self.0.get(&ip)
    }

    pub fn iter(&self) -> impl Iterator<Item = (IpAddr, &Name)> {
        self.0.iter().map(|(ip, name)| (*ip, name))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl kcap_lines::Names for NameTable {
    fn name(&self, ip: IpAddr) -> Option<&str> {
        self.0.get(&ip).map(|n| n.label.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str) -> AddressName {
        AddressName::Pod {
            namespace: "prod".into(),
            name: name.into(),
        }
    }

    #[test]
    fn first_name_wins_and_merge_returns_only_new_names() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let names = [
            (ip("10.0.0.1"), AddressName::Node("node-a".into())),
            (ip("10.0.0.1"), pod("host-net")),
            (ip("10.244.0.5"), pod("web-0")),
        ];
        let mut table = NameTable::new(&names);
        assert_eq!(table.len(), 2);
        let node = table.iter().next().unwrap().1;
        assert_eq!(
            (node.label.as_str(), node.host.as_str()),
            ("node-a", "node-a")
        );
        let later = NameTable::new(&[
            (ip("10.244.0.5"), pod("other")),
            (ip("10.244.0.6"), pod("web-1")),
        ]);
        let added = table.merge(&later);
        let added: Vec<_> = added
            .iter()
            .map(|(ip, n)| (ip.to_string(), n.host.clone()))
            .collect();
        assert_eq!(
            added,
            [("10.244.0.6".to_string(), "web-1.prod".to_string())]
        );
        assert_eq!(
            kcap_lines::Names::name(&table, ip("10.244.0.5")),
            Some("prod/web-0")
        );
    }
}
