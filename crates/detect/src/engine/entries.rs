//! The entries the engine keeps per host, prefix and watched target, laid out for the record
//! path: what ordinary traffic touches sits together, everything else further away. Their sizes
//! bound the engine's memory, so tests pin them.

use ipnet::IpNet;

use crate::attack::Attack;
use crate::baseline::{Baseline, BaselineParams};
use crate::counters::{tally_at, ClassCounts, Tally, NO_BUCKET, SLOTS};
use crate::fingerprint::FingerprintBuilder;
use crate::DetectConfig;

use super::limits::{watch_levels, Group};
use super::residue::Residue;
use super::{IN, NONE};

/// One direction of one host: ~112 bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct HostDir {
    pub(super) ring: [Tally; SLOTS],
    pub(super) baseline: Baseline,
    /// Index into `Engine::details`, or `NONE`.
    pub(super) detail: u32,
    /// Running-bucket packets / bytes at which watching starts (static limits and baseline).
    pub(super) watch_packets: f32,
    pub(super) watch_bytes: f32,
}

/// `Host::dirs_touched` bit: the host's incoming traffic of the open bucket is counted in its
/// prefix's carpet residue.
pub(super) const IN_RESIDUE: u8 = 1 << 2;

/// One host: 240 bytes, laid out so that the incoming direction and the header are adjacent
/// (126 bytes: ordinary traffic touches nothing else). The address lives in `Engine::host_addrs`:
/// it is needed only at bucket closes and evictions.
#[derive(Debug, Clone)]
#[repr(C)]
pub(super) struct Host {
    pub(super) dir_in: HostDir,
    /// Last bucket with traffic.
    pub(super) touched: u32,
    pub(super) evaluated: u32,
    /// Index into `Engine::prefixes`; `NONE` for a free slab slot.
    pub(super) prefix: u32,
    pub(super) group: u16,
    /// Bit `d` set: direction `d` has traffic in bucket `touched`.
    pub(super) dirs_touched: u8,
    pub(super) dir_out: HostDir,
}

impl Host {
    #[inline]
    pub(super) fn dir(&self, d: usize) -> &HostDir {
        if d == IN {
            &self.dir_in
        } else {
            &self.dir_out
        }
    }

    #[inline]
    pub(super) fn dir_mut(&mut self, d: usize) -> &mut HostDir {
        if d == IN {
            &mut self.dir_in
        } else {
            &mut self.dir_out
        }
    }

    #[inline]
    pub(super) fn dirs(&self) -> [&HostDir; 2] {
        [&self.dir_in, &self.dir_out]
    }

    #[inline]
    pub(super) fn dirs_mut(&mut self) -> [&mut HostDir; 2] {
        [&mut self.dir_in, &mut self.dir_out]
    }

    /// Whether the last bucket with traffic was closed without evaluating this host: it stayed
    /// below its group's evaluation floors, so that close only had its baseline to learn.
    #[inline]
    pub(super) fn learn_pending(&self) -> bool {
        self.touched != NO_BUCKET && (self.evaluated == NO_BUCKET || self.evaluated < self.touched)
    }

    /// Applies the pending close of bucket `touched` exactly as the quiet fast path of
    /// `Engine::evaluate_host` would have then. On the record path (a host's first record of a
    /// bucket), which lives in another module.
    #[inline]
    pub(super) fn learn_quiet(
        &mut self,
        g: &Group,
        params: &BaselineParams,
        config: &DetectConfig,
    ) {
        let b = self.touched;
        let touched = self.dirs_touched;
        for (d, dir) in self.dirs_mut().into_iter().enumerate() {
            debug_assert_eq!(dir.detail, NONE);
            // Only directions with traffic in `b` have its tally (the other is not read at all).
            debug_assert_eq!(touched & (1 << d) != 0, tally_at(&dir.ring, b).is_some());
            if touched & (1 << d) == 0 {
                continue;
            }
            let Some(t) = tally_at(&dir.ring, b).copied() else {
                continue;
            };
            dir.baseline.catch_up(b, params);
            let (pps, bps) = (t.packets as f64, t.bytes as f64 * 8.0);
            dir.baseline.learn(b, pps, bps, params);
            let (wp, wb) = watch_levels(g, d, &dir.baseline, params, config);
            dir.watch_packets = wp as f32;
            dir.watch_bytes = wb as f32;
        }
        self.evaluated = b;
    }
}

/// Totals of one direction of a prefix and its detail: 80 bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct PrefixDir {
    pub(super) ring: [Tally; SLOTS],
    pub(super) detail: u32,
}

impl Default for PrefixDir {
    fn default() -> Self {
        PrefixDir {
            ring: Default::default(),
            detail: NONE,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Prefix {
    pub(super) net: IpNet,
    pub(super) group: u16,
    /// Host entries pointing here; a prefix is evicted only without any.
    pub(super) hosts: u32,
    pub(super) touched: u32,
    pub(super) evaluated: u32,
    pub(super) live: bool,
    pub(super) dirs: [PrefixDir; 2],
    pub(super) residue: Residue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Owner {
    Host(u32),
    Prefix(u32),
}

/// Detailed counters, fingerprint and attack of one watched target and direction.
#[derive(Debug)]
pub(super) struct Detail {
    pub(super) owner: Owner,
    pub(super) dir: usize,
    pub(super) ring: [ClassCounts; SLOTS],
    pub(super) fingerprint: FingerprintBuilder,
    pub(super) attack: Option<Attack>,
    /// Consecutive buckets below the watch level (without an attack).
    pub(super) idle: u32,
    /// Evidence of the open bucket when a start was last judged mid-bucket (`early_bucket`):
    /// judged again only once it has grown by a quarter, so busy ordinary traffic over the
    /// limits' totals costs a few judgements per bucket, not one per record.
    pub(super) early_evidence: u32,
    pub(super) early_bucket: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_entries_stay_small() {
        // 1 million active hosts must fit well under 1 GiB with map, prefixes and slack.
        assert!(
            std::mem::size_of::<Host>() <= 256,
            "{}",
            std::mem::size_of::<Host>()
        );
    }

    #[test]
    fn prefix_entries_stay_small() {
        // At most one prefix per host entry (IPv6 hosts are often alone in their /48). The
        // carpet state exists once, for the incoming direction: 264 bytes before the residue
        // baseline, 272 with it, 288 with the sum of squares, 296 with the carpet's rate per host.
        assert_eq!(std::mem::size_of::<Residue>(), 96);
        assert!(
            std::mem::size_of::<Prefix>() <= 296,
            "{}",
            std::mem::size_of::<Prefix>()
        );
    }
}
