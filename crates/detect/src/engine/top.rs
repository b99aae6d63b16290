//! The busiest targets of each closed second: the hosts and prefixes with the most packets,
//! per direction, for the operator's views (never for detection). Hosts are taken from those
//! the close evaluates anyway (over their group's quiet floors, or watched), prefixes from all
//! touched ones, so this adds no pass over the hosts.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::counters::tally_at;
use crate::event::Direction;

use super::{Engine, DIRECTIONS};

/// Targets kept per list.
pub const TOP_N: usize = 10;

/// One busy target in one second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TopEntry {
    #[schemars(with = "String")]
    pub target: IpNet,
    pub hostgroup: String,
    /// Scaled by sampling.
    pub pps: u64,
    pub bps: u64,
}

/// The busiest hosts and prefixes of a second, by packets, each list at most [`TOP_N`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TopTargets {
    /// The end of the second they describe, Unix ms (0: none closed yet).
    pub at_ms: u64,
    pub hosts_in: Vec<TopEntry>,
    pub hosts_out: Vec<TopEntry>,
    pub prefixes_in: Vec<TopEntry>,
    pub prefixes_out: Vec<TopEntry>,
}

impl TopTargets {
    pub fn list(&self, prefixes: bool, direction: Direction) -> &[TopEntry] {
        match (prefixes, direction) {
            (false, Direction::Incoming) => &self.hosts_in,
            (false, Direction::Outgoing) => &self.hosts_out,
            (true, Direction::Incoming) => &self.prefixes_in,
            (true, Direction::Outgoing) => &self.prefixes_out,
        }
    }

    /// Shards' lists of the same second merged: a target lives on one shard, so the busiest
    /// of the union are the busiest overall.
    pub fn merged<'a>(parts: impl IntoIterator<Item = &'a TopTargets>) -> TopTargets {
        let mut out = TopTargets::default();
        for part in parts {
            out.at_ms = out.at_ms.max(part.at_ms);
            out.hosts_in.extend_from_slice(&part.hosts_in);
            out.hosts_out.extend_from_slice(&part.hosts_out);
            out.prefixes_in.extend_from_slice(&part.prefixes_in);
            out.prefixes_out.extend_from_slice(&part.prefixes_out);
        }
        for list in [
            &mut out.hosts_in,
            &mut out.hosts_out,
            &mut out.prefixes_in,
            &mut out.prefixes_out,
        ] {
            sort_top(list);
        }
        out
    }
}

fn sort_top(list: &mut Vec<TopEntry>) {
    list.sort_by(|a, b| b.pps.cmp(&a.pps).then(a.target.cmp(&b.target)));
    list.truncate(TOP_N);
}

/// The candidates of the closing second: (packets, bytes, entry index) per direction.
#[derive(Debug, Default)]
pub(super) struct TopBuild {
    hosts: [Vec<(u64, u64, u32)>; 2],
    prefixes: [Vec<(u64, u64, u32)>; 2],
}

/// Keeps the `TOP_N` largest by packets; ties go to the lower index (deterministic).
fn offer(list: &mut Vec<(u64, u64, u32)>, candidate: (u64, u64, u32)) {
    if candidate.0 == 0 {
        return;
    }
    let beats = |a: &(u64, u64, u32), b: &(u64, u64, u32)| a.0 > b.0 || (a.0 == b.0 && a.2 < b.2);
    if list.len() == TOP_N {
        if !beats(&candidate, &list[TOP_N - 1]) {
            return;
        }
        list.pop();
    }
    let at = list.partition_point(|x| beats(x, &candidate));
    list.insert(at, candidate);
}

impl Engine {
    /// A host evaluated at the close of bucket `b`.
    #[inline]
    pub(super) fn offer_top_host(&mut self, h: u32, b: u32) {
        for (d, _) in DIRECTIONS.iter().enumerate() {
            let dir = self.hosts[h as usize].dir(d);
            if let Some(t) = tally_at(&dir.ring, b) {
                offer(&mut self.top_build.hosts[d], (t.packets, t.bytes, h));
            }
        }
    }

    /// A prefix evaluated at the close of bucket `b`.
    #[inline]
    pub(super) fn offer_top_prefix(&mut self, p: u32, b: u32) {
        for (d, _) in DIRECTIONS.iter().enumerate() {
            if let Some(t) = tally_at(&self.prefixes[p as usize].dirs[d].ring, b) {
                offer(&mut self.top_build.prefixes[d], (t.packets, t.bytes, p));
            }
        }
    }

    /// Turns the candidates of the closed bucket (ending at `end_ms`) into [`TopTargets`].
    pub(super) fn finish_top(&mut self, end_ms: u64) {
        let build = std::mem::take(&mut self.top_build);
        let entry = |target: IpNet, group: u16, (packets, bytes, _): (u64, u64, u32)| TopEntry {
            target,
            hostgroup: self
                .groups
                .get(group as usize)
                .map_or_else(String::new, |g| g.name.clone()),
            pps: packets,
            bps: bytes.saturating_mul(8),
        };
        let hosts = |d: usize| -> Vec<TopEntry> {
            build.hosts[d]
                .iter()
                .map(|c| {
                    let host = &self.hosts[c.2 as usize];
                    let addr: IpAddr = self.host_addrs[c.2 as usize];
                    entry(IpNet::from(addr), host.group, *c)
                })
                .collect()
        };
        let prefixes = |d: usize| -> Vec<TopEntry> {
            build.prefixes[d]
                .iter()
                .map(|c| {
                    let p = &self.prefixes[c.2 as usize];
                    entry(p.net, p.group, *c)
                })
                .collect()
        };
        self.top = TopTargets {
            at_ms: end_ms,
            hosts_in: hosts(0),
            hosts_out: hosts(1),
            prefixes_in: prefixes(0),
            prefixes_out: prefixes(1),
        };
    }

    /// The busiest hosts and prefixes of the last closed second.
    pub fn top_targets(&self) -> &TopTargets {
        &self.top
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_keeps_the_largest_in_order_and_ties_by_index() {
        let mut list = Vec::new();
        for (i, p) in [5u64, 1, 9, 0, 7, 9, 3, 2, 8, 6, 4, 10, 1]
            .iter()
            .enumerate()
        {
            offer(&mut list, (*p, 0, i as u32));
        }
        let packets: Vec<u64> = list.iter().map(|c| c.0).collect();
        assert_eq!(packets, [10, 9, 9, 8, 7, 6, 5, 4, 3, 2]);
        assert_eq!(list[1].2, 2, "the first 9 offered ranks first");
    }
}
