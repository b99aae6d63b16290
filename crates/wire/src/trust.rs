//! Plausibility of what an exporter claims, judged against what the same exporter claimed before.
//!
//! Telemetry is unauthenticated UDP: a record's sampling rate multiplies everything it says, so a
//! forged rate turns one datagram into terabits. Two checks, both per exporter and allocation-free:
//!
//! - [`RateTrust`]: the sampling rates an exporter uses are learnt. Real exporters (routers,
//!   hsflowd, softflowd, pmacct) keep one rate per interface or source id for days, and an exporter
//!   has a handful at most. The rates of an exporter's first sampled datagram are trusted at once
//!   (a new exporter must work from its first datagram); a rate it has not used before is on
//!   probation until it has been seen in [`PROBATION_DATAGRAMS`] datagrams, and its records are
//!   dropped meanwhile. A reconfigured router loses two datagrams' worth of records; a spoofer
//!   must send several datagrams from the exporter's address before a new rate counts.
//! - [`SamplePools`]: an sFlow flow sample carries its source's sample sequence number and
//!   sample pool (packets that could have been sampled). Every sample is one packet of the pool,
//!   so the pool of a source grows by at least the number of samples between two of its samples;
//!   a sample whose pool grew less is impossible and dropped (a forged sample grafted onto a real
//!   stream, or an exporter counting wrongly). Over windows of samples the pool must also grow by
//!   about `rate × samples`; windows off by more than [`POOL_TOLERANCE`]× are counted, not
//!   dropped (exporters differ in what the pool counts, and sampling is random).
//!
//! Neither stops a careful forger who sends from an allowed address with consistent numbers: that
//! is what `allow_exporters`, the sampling-rate ceiling and detection's evidence from several
//! datagrams are for.

use crate::ExporterCounters;

/// Datagrams a new sampling rate must be seen in before its records count.
pub const PROBATION_DATAGRAMS: u16 = 3;
/// (stream, rate) pairs remembered per exporter; a router with per-interface rates uses a few.
const RATES_PER_EXPORTER: usize = 16;
/// sFlow sources (source ids) whose sample pool is followed per exporter.
const POOLS_PER_EXPORTER: usize = 16;
/// Samples per consistency window: enough that random sampling is within a factor of 2.
const POOL_WINDOW_SAMPLES: u32 = 64;
/// A window whose pool grew by less than 1/4 or more than 4× `rate × samples` is inconsistent.
pub const POOL_TOLERANCE: u64 = 4;
/// A sequence step larger than this (or backwards) is a restart or reordering, not judged.
const MAX_SEQUENCE_STEP: u32 = 1 << 20;
/// Steps claiming more pool growth than this are not judged: with random skips the real growth
/// may pass 2^32 and wrap the counter.
const MAX_JUDGED_GROWTH: u64 = 1 << 31;

#[derive(Debug, Clone, Copy, Default)]
struct RateEntry {
    /// The stream (protocol and sFlow sub-agent / v9 source id / IPFIX domain / v5 engine).
    stream: u64,
    rate: u32,
    /// Distinct datagrams the rate was seen in (saturating).
    datagrams: u16,
    last_datagram: u64,
    /// The stream's first sampled datagram: its rates are trusted at once.
    stream_first: u64,
}

/// The sampling rates one exporter has used, per stream.
#[derive(Debug, Clone, Default)]
pub struct RateTrust {
    entries: [RateEntry; RATES_PER_EXPORTER],
    len: usize,
    /// The last (stream, rate, datagram) judged and the verdict: records of a datagram share
    /// their rate, so the table is searched about once per datagram.
    cached: Option<(u64, u32, u64, bool)>,
}

impl RateTrust {
    /// Whether a record of `stream` sampled at `rate` (> 1), carried by the exporter's
    /// datagram number `datagram` (counting from 1), may be trusted. Counts rate changes.
    #[inline]
    pub fn admit(
        &mut self,
        stream: u64,
        rate: u32,
        datagram: u64,
        counters: &mut ExporterCounters,
    ) -> bool {
        if let Some((s, r, d, trusted)) = self.cached {
            if s == stream && r == rate && d == datagram {
                return trusted;
            }
        }
        let trusted = self.judge(stream, rate, datagram, counters);
        self.cached = Some((stream, rate, datagram, trusted));
        trusted
    }

    fn judge(
        &mut self,
        stream: u64,
        rate: u32,
        datagram: u64,
        counters: &mut ExporterCounters,
    ) -> bool {
        let entries = &mut self.entries[..self.len];
        if let Some(entry) = entries
            .iter_mut()
            .find(|e| e.stream == stream && e.rate == rate)
        {
            if entry.last_datagram != datagram {
                entry.last_datagram = datagram;
                entry.datagrams = entry.datagrams.saturating_add(1);
            }
            return entry.datagrams >= PROBATION_DATAGRAMS || entry.stream_first == datagram;
        }
        let stream_first = entries
            .iter()
            .find(|e| e.stream == stream)
            .map_or(datagram, |e| e.stream_first);
        let established = stream_first == datagram;
        if !established {
            counters.sampling_rate_changes += 1;
        }
        let entry = RateEntry {
            stream,
            rate,
            datagrams: if established { PROBATION_DATAGRAMS } else { 1 },
            last_datagram: datagram,
            stream_first,
        };
        if self.len < RATES_PER_EXPORTER {
            self.entries[self.len] = entry;
            self.len += 1;
        } else if let Some(oldest) = self.entries.iter_mut().min_by_key(|e| e.last_datagram) {
            // Full (a source cycling streams or rates): the one not seen for longest makes room.
            *oldest = entry;
        }
        established
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct PoolStream {
    /// The sFlow agent (address and sub-agent, folded) and source id: two agents behind one
    /// address number their sources independently.
    key: u64,
    sequence: u32,
    pool: u32,
    /// The window: Σ rate × Δsequence claimed, Σ Δpool seen, samples in it.
    claimed: u64,
    seen: u64,
    samples: u32,
}

/// The stream key of an sFlow source: agent address, sub-agent id and source id.
pub fn pool_key(agent: std::net::IpAddr, sub_agent_id: u32, source_id: u32) -> u64 {
    let agent = match agent {
        std::net::IpAddr::V4(v4) => u32::from(v4),
        std::net::IpAddr::V6(v6) => {
            let words = v6.to_bits();
            (words ^ (words >> 32) ^ (words >> 64) ^ (words >> 96)) as u32
        }
    };
    (u64::from(agent ^ sub_agent_id.rotate_left(16)) << 32) | u64::from(source_id)
}

/// What [`SamplePools::check`] says of one flow sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolVerdict {
    /// Consistent, or nothing to compare with yet.
    Plausible,
    /// The pool grew by less than the samples taken from it: drop the sample.
    Impossible,
}

/// The sample pools of one exporter's sFlow sources.
#[derive(Debug, Clone, Default)]
pub struct SamplePools {
    streams: [PoolStream; POOLS_PER_EXPORTER],
    len: usize,
    /// Next slot to reuse when full (round robin: cycling source ids cannot pin a slot).
    next_victim: usize,
}

impl SamplePools {
    /// Judges a flow sample of source `key` (see [`pool_key`]) with its sequence number, pool
    /// and rate. Exporters that leave the pool at 0 are not judged.
    pub fn check(
        &mut self,
        key: u64,
        sequence: u32,
        pool: u32,
        rate: u32,
        counters: &mut ExporterCounters,
    ) -> PoolVerdict {
        let Some(stream) = self.streams[..self.len].iter_mut().find(|s| s.key == key) else {
            let fresh = PoolStream {
                key,
                sequence,
                pool,
                ..PoolStream::default()
            };
            if self.len < POOLS_PER_EXPORTER {
                self.streams[self.len] = fresh;
                self.len += 1;
            } else {
                self.streams[self.next_victim] = fresh;
                self.next_victim = (self.next_victim + 1) % POOLS_PER_EXPORTER;
            }
            return PoolVerdict::Plausible;
        };
        let step = sequence.wrapping_sub(stream.sequence);
        let grown = pool.wrapping_sub(stream.pool);
        // The 32-bit pool wraps: a step whose claimed growth could wrap it says nothing.
        let claimed = u64::from(rate) * u64::from(step);
        let judged = step != 0
            && step <= MAX_SEQUENCE_STEP
            && claimed <= MAX_JUDGED_GROWTH
            && (pool | stream.pool) != 0;
        if !judged {
            // A restart, a repeat, a long gap or a source without pool: start again from here.
            *stream = PoolStream {
                key,
                sequence,
                pool,
                ..PoolStream::default()
            };
            return PoolVerdict::Plausible;
        }
        if grown < step {
            // Not followed: the real stream goes on from where it was.
            counters.impossible_samples += 1;
            return PoolVerdict::Impossible;
        }
        stream.sequence = sequence;
        stream.pool = pool;
        stream.claimed += claimed;
        stream.seen += u64::from(grown);
        stream.samples += step;
        if stream.samples >= POOL_WINDOW_SAMPLES {
            if stream.seen * POOL_TOLERANCE < stream.claimed
                || stream.seen > stream.claimed * POOL_TOLERANCE
            {
                counters.inconsistent_samples += u64::from(stream.samples);
            }
            stream.claimed = 0;
            stream.seen = 0;
            stream.samples = 0;
        }
        PoolVerdict::Plausible
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_datagrams_rates_are_trusted_and_a_new_rate_waits_three_datagrams() {
        let mut trust = RateTrust::default();
        let mut counters = ExporterCounters::default();
        // Two interfaces at two rates in the first datagram: both trusted.
        assert!(trust.admit(0, 1000, 1, &mut counters));
        assert!(trust.admit(0, 2000, 1, &mut counters));
        assert!(trust.admit(0, 1000, 2, &mut counters));
        // A new rate: on probation in datagrams 3 and 4, trusted from its third datagram.
        assert!(!trust.admit(0, 65536, 3, &mut counters));
        assert!(!trust.admit(0, 65536, 3, &mut counters)); // same datagram: no second sighting
        assert!(!trust.admit(0, 65536, 4, &mut counters));
        assert!(trust.admit(0, 65536, 5, &mut counters));
        assert!(trust.admit(0, 1000, 6, &mut counters));
        // Another stream (a second source id) starts with its own rates.
        assert!(trust.admit(1, 100, 7, &mut counters));
        assert!(!trust.admit(1, 200, 8, &mut counters));
        assert_eq!(counters.sampling_rate_changes, 2);
    }

    #[test]
    fn steady_random_sampling_is_consistent_and_a_pool_that_does_not_grow_is_impossible() {
        let mut pools = SamplePools::default();
        let mut counters = ExporterCounters::default();
        // Random skips around 1:1000 (deterministic here): 1..1999, mean ~1000.
        let mut pool = 5_000u32;
        let mut state = 12345u32;
        for seq in 1..=10_000u32 {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            pool = pool.wrapping_add(1 + (state >> 16) % 1999);
            assert_eq!(
                pools.check(7, seq, pool, 1000, &mut counters),
                PoolVerdict::Plausible
            );
        }
        assert_eq!(
            (counters.inconsistent_samples, counters.impossible_samples),
            (0, 0)
        );
        // A forged sample on the same source: the next number, a pool that did not move.
        assert_eq!(
            pools.check(7, 10_001, pool, 1000, &mut counters),
            PoolVerdict::Impossible
        );
        assert_eq!(counters.impossible_samples, 1);
        // The real stream goes on.
        assert_eq!(
            pools.check(7, 10_001, pool.wrapping_add(900), 1000, &mut counters),
            PoolVerdict::Plausible
        );
        // Claiming 1:65536 while the pool grows by 1:1000: counted per window, not dropped.
        let mut seq = 10_001;
        for _ in 0..128 {
            seq += 1;
            pool = pool.wrapping_add(1000);
            assert_eq!(
                pools.check(7, seq, pool, 65536, &mut counters),
                PoolVerdict::Plausible
            );
        }
        assert_eq!(counters.inconsistent_samples, 128);
        // A long gap at a coarse rate may wrap the 32-bit pool: not judged.
        let mut counters = ExporterCounters::default();
        assert_eq!(
            pools.check(8, 1, 1000, 65536, &mut counters),
            PoolVerdict::Plausible
        );
        assert_eq!(
            pools.check(8, 65_537, 1000, 65536, &mut counters),
            PoolVerdict::Plausible
        );
        assert_eq!(counters.impossible_samples, 0);
        // An exporter that leaves the pool at 0 is not judged.
        for seq in 1..100 {
            assert_eq!(
                pools.check(9, seq, 0, 1000, &mut counters),
                PoolVerdict::Plausible
            );
        }
    }
}
