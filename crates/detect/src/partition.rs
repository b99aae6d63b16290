//! The partition key: which shard (thread now, machine later) holds a monitored address. See
//! [`crate::shard`] for how the engine is split by it.

use std::net::IpAddr;

use crate::config::{ConfigError, ConfigProblem, MAX_SHARDS};

/// The partition key of a monitored address: a fixed 64-bit hash of its prefix. See the
/// module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardKey(pub u64);

impl ShardKey {
    /// The key of `addr`, from its prefix of `prefix_length_v4` or `prefix_length_v6` bits:
    /// the prefix's bits, its length and its family, mixed (SplitMix64's finalizer).
    pub fn of(addr: IpAddr, prefix_length_v4: u8, prefix_length_v6: u8) -> ShardKey {
        match addr {
            IpAddr::V4(a) => {
                let len = u32::from(prefix_length_v4.min(32));
                let bits = u64::from(u32::from(a).checked_shr(32 - len).unwrap_or(0));
                ShardKey(mix(bits ^ (u64::from(len) << 40) ^ (4 << 48)))
            }
            IpAddr::V6(a) => {
                let len = u32::from(prefix_length_v6.min(128));
                let bits = u128::from(a).checked_shr(128 - len).unwrap_or(0);
                let (hi, lo) = ((bits >> 64) as u64, bits as u64);
                ShardKey(mix(mix(hi ^ (u64::from(len) << 40) ^ (6 << 48)) ^ lo))
            }
        }
    }

    /// The shard of `n` (at least 1) this key falls on: jump consistent hashing (Lamping and
    /// Veach, 2014).
    pub fn shard(self, n: u32) -> u32 {
        if n <= 1 {
            return 0;
        }
        let mut key = self.0;
        let (mut b, mut j) = (-1i64, 0i64);
        while j < i64::from(n) {
            b = j;
            key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
            j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
        }
        b as u32
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Which part of the targets an engine holds: shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Every target: an unsharded engine.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    pub(crate) fn validate(self) -> Result<(), ConfigError> {
        if !(1..=MAX_SHARDS).contains(&self.count) {
            return Err(ConfigError::new(
                "shards",
                ConfigProblem::OutOfRange {
                    min: 1,
                    max: MAX_SHARDS,
                    value: self.count,
                },
            ));
        }
        if self.index >= self.count {
            return Err(ConfigError::new(
                "shard",
                ConfigProblem::OutOfRange {
                    min: 0,
                    max: self.count - 1,
                    value: self.index,
                },
            ));
        }
        Ok(())
    }
}

pub(crate) const OWNS_DST: u8 = 1;
pub(crate) const OWNS_SRC: u8 = 2;

/// What a shard is told of each of its records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RecordMeta {
    /// The stream's clock with this record: the latest time seen so far, this record's included.
    pub clock_ms: u64,
    /// The record's place in its batch.
    pub pos: u32,
    /// `OWNS_DST` | `OWNS_SRC`: the sides this shard accounts.
    pub owned: u8,
}
