//! What the engine reports about itself: its counters and each hostgroup's rates, for the
//! daemon's metrics and status.

use crate::event::Direction;

use super::{Engine, DIRECTIONS};

/// Counters about the engine itself.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct EngineStats {
    pub records: u64,
    /// Records that touched no monitored network.
    pub records_unmonitored: u64,
    pub hosts_tracked: u64,
    pub prefixes_tracked: u64,
    pub attacks_active: u64,
    /// Targets with detailed counters and a fingerprint (watched or under attack).
    pub targets_watched: u64,
    /// Record sides accounted only in their prefix (or only their hostgroup) because
    /// `max_hosts` entries already existed.
    pub records_host_overflow: u64,
    /// Host entries forgotten after being idle.
    pub hosts_evicted: u64,
}

impl EngineStats {
    /// Shards' counters summed (each host, prefix and attack is on one shard). `records` sums
    /// the records each shard was handed: one with ends on two shards counts twice, so a
    /// sharded engine takes `records` and `records_unmonitored` from its dispatcher.
    pub fn merged<'a>(parts: impl IntoIterator<Item = &'a EngineStats>) -> EngineStats {
        parts
            .into_iter()
            .fold(EngineStats::default(), |a, b| EngineStats {
                records: a.records + b.records,
                records_unmonitored: a.records_unmonitored + b.records_unmonitored,
                hosts_tracked: a.hosts_tracked + b.hosts_tracked,
                prefixes_tracked: a.prefixes_tracked + b.prefixes_tracked,
                attacks_active: a.attacks_active + b.attacks_active,
                targets_watched: a.targets_watched + b.targets_watched,
                records_host_overflow: a.records_host_overflow + b.records_host_overflow,
                hosts_evicted: a.hosts_evicted + b.hosts_evicted,
            })
    }
}

/// Rates of one hostgroup and direction in the last complete bucket.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct HostgroupRates {
    pub hostgroup: String,
    pub direction: Direction,
    pub pps: u64,
    pub bps: u64,
    /// Records per second.
    pub flows: u64,
}

impl HostgroupRates {
    /// Shards' rates summed per hostgroup and direction (every shard lists the same ones, in
    /// the same order).
    pub fn merged(parts: impl IntoIterator<Item = Vec<HostgroupRates>>) -> Vec<HostgroupRates> {
        let mut out: Vec<HostgroupRates> = Vec::new();
        for part in parts {
            if out.is_empty() {
                out = part;
                continue;
            }
            for r in part {
                match out
                    .iter_mut()
                    .find(|o| o.hostgroup == r.hostgroup && o.direction == r.direction)
                {
                    Some(o) => {
                        o.pps += r.pps;
                        o.bps += r.bps;
                        o.flows += r.flows;
                    }
                    None => out.push(r),
                }
            }
        }
        out
    }
}

impl Engine {
    pub fn stats(&self) -> EngineStats {
        let mut s = self.stats.clone();
        s.hosts_tracked = self.host_index.len() as u64;
        s.prefixes_tracked = self.prefix_index.len() as u64;
        s.attacks_active = self.attacks_live as u64;
        s.targets_watched = self.details_live as u64;
        s
    }

    /// Per-hostgroup rates of the last complete bucket, `default` first, then config order.
    pub fn hostgroup_rates(&self) -> Vec<HostgroupRates> {
        let mut out = Vec::new();
        for g in &self.groups {
            for (d, direction) in DIRECTIONS.iter().enumerate() {
                // The last complete bucket is `open - 1`: either still `current` (no record of
                // the group since) or `last`; a group silent in it reads zero.
                let totals = &g.totals[d];
                let wanted = self.open.wrapping_sub(1);
                let t = [&totals.current, &totals.last]
                    .into_iter()
                    .find(|t| t.bucket == wanted)
                    .copied()
                    .unwrap_or_default();
                out.push(HostgroupRates {
                    hostgroup: g.name.clone(),
                    direction: *direction,
                    pps: t.packets,
                    bps: t.bytes.saturating_mul(8),
                    flows: u64::from(t.samples),
                });
            }
        }
        out
    }
}
