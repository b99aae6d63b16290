//! A prefix's carpet-bombing state, the residue: the traffic of its hosts not under attack on
//! their own, per bucket. Its own file because both the prefix entries (which hold one) and the
//! carpet judgement (which reads it) use it, and they should not import each other.

use crate::baseline::Baseline;
use crate::counters::{Tally, NO_BUCKET};

/// The carpet-bombing state of a prefix: 72 bytes, once per prefix since carpet bombing is
/// incoming only (outgoing prefix totals are accounting). The fields read per record come first.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub(super) struct Residue {
    /// Running-bucket packets / bytes at which the prefix is watched: `watch_ratio` × its current
    /// carpet limits (static, or from `baseline`); infinite when carpet detection is off.
    pub(super) watch_packets: f32,
    pub(super) watch_bytes: f32,
    /// In bucket `stat_bucket`: hosts with traffic that are not under attack on their own (the
    /// carpet's residue), their packets and bytes, and the largest one's packets. A host attack's
    /// traffic is its own, not the carpet's.
    pub(super) hosts_active: u32,
    pub(super) stat_bucket: u32,
    pub(super) residual_packets: u64,
    pub(super) residual_bytes: u64,
    /// Sum over the residue's hosts of their packets squared: with `residual_packets` it gives
    /// the effective number of hosts carrying the residue, (Σx)² / Σx².
    /// (A `u128` kept as two words: its 16-byte alignment would pad the entry.)
    pub(super) residual_sq: [u64; 2],
    pub(super) top_host_packets: u64,
    /// Bucket in which `top_host_packets` may hold a host no longer in the residue.
    pub(super) top_stale: u32,
    /// The learnt normal of the residue: learnt at the close of each bucket with incoming
    /// traffic, caught up lazily over silent ones, attack buckets skipped.
    pub(super) baseline: Baseline,
    /// While a carpet attack is active: the residue's highest mean packets/s and bits/s per
    /// host in its buckets so far. A host crossing its own limits is a host attack only if it stands out from
    /// that (a carpet spreading 50 kpps over each address is one carpet, not 256 host attacks).
    pub(super) carpet_host_pps: f32,
    pub(super) carpet_host_bps: f32,
}

impl Residue {
    pub(super) fn sq(&self) -> u128 {
        (u128::from(self.residual_sq[0]) << 64) | u128::from(self.residual_sq[1])
    }

    /// Adds `plus` and takes `minus` from the sum of squares.
    #[inline]
    pub(super) fn add_sq(&mut self, plus: u128, minus: u128) {
        let v = self.sq() + plus - minus;
        self.residual_sq = [(v >> 64) as u64, v as u64];
    }
}

impl Residue {
    /// Counts a host's record in the open bucket `b`: `before` and `after` are the host's
    /// incoming totals around it, `was_in` / `is_in` whether the host was and is in the residue.
    /// True the first time in a bucket a host leaves the residue: its packets may be the
    /// recorded top, to be recounted at the close.
    #[inline(always)]
    pub(super) fn count(
        &mut self,
        b: u32,
        (was_in, is_in): (bool, bool),
        before: Tally,
        after: Tally,
    ) -> bool {
        if self.stat_bucket != b {
            self.stat_bucket = b;
            self.hosts_active = 0;
            self.residual_packets = 0;
            self.residual_bytes = 0;
            self.residual_sq = [0; 2];
            self.top_host_packets = 0;
        }
        // A host leaves the residue for good within a bucket (attacks end only at
        // closes); it enters it only with its first record.
        match (was_in, is_in) {
            (false, true) => {
                self.hosts_active += 1;
                self.residual_packets += after.packets;
                self.residual_bytes += after.bytes;
                self.add_sq(square(after.packets), 0);
                self.top_host_packets = self.top_host_packets.max(after.packets);
            }
            (true, true) => {
                self.residual_packets += after.packets - before.packets;
                self.residual_bytes += after.bytes - before.bytes;
                self.add_sq(square(after.packets), square(before.packets));
                self.top_host_packets = self.top_host_packets.max(after.packets);
            }
            (true, false) => {
                self.hosts_active -= 1;
                self.residual_packets -= before.packets;
                self.residual_bytes -= before.bytes;
                self.add_sq(0, square(before.packets));
                if self.top_stale != b {
                    self.top_stale = b;
                    return true;
                }
            }
            (false, false) => {}
        }
        false
    }
}

impl Default for Residue {
    fn default() -> Self {
        Residue {
            watch_packets: f32::INFINITY,
            watch_bytes: f32::INFINITY,
            hosts_active: 0,
            stat_bucket: NO_BUCKET,
            residual_packets: 0,
            residual_bytes: 0,
            residual_sq: [0; 2],
            top_host_packets: 0,
            top_stale: NO_BUCKET,
            baseline: Baseline::default(),
            carpet_host_pps: 0.0,
            carpet_host_bps: 0.0,
        }
    }
}

#[inline]
pub(super) fn square(x: u64) -> u128 {
    u128::from(x) * u128::from(x)
}
