//! C2 feeds (placeholder with the agreed API; replaced by the full parser from branch hunt-c2).

use std::net::IpAddr;

use ipnet::IpNet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct C2Entry {
    pub value: String,
    pub net: IpNet,
    pub port: Option<u16>,
    pub feed: String,
    pub malware: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct C2Domain {
    pub name: String,
    pub feed: String,
    pub malware: Option<String>,
}

#[derive(Debug, Default)]
pub struct C2List {
    entries: Vec<C2Entry>,
    domains: Vec<C2Domain>,
}

impl C2List {
    pub fn from_entries(entries: Vec<C2Entry>, domains: Vec<C2Domain>) -> C2List {
        C2List { entries, domains }
    }

    pub fn lookup(&self, addr: IpAddr, port: u16) -> Option<&C2Entry> {
        self.entries
            .iter()
            .filter(|e| e.net.contains(&addr) && e.port.is_none_or(|p| p == port))
            .max_by_key(|e| (e.net.prefix_len(), e.port.is_some()))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn addresses(&self) -> impl Iterator<Item = &C2Entry> {
        self.entries.iter()
    }

    pub fn domains(&self) -> impl Iterator<Item = &C2Domain> {
        self.domains.iter()
    }
}
