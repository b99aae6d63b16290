//! The engine: accounting per host, prefix and hostgroup in 1-second buckets of telemetry time;
//! detection (carpet bombing against static or per-prefix baseline limits, static thresholds,
//! per-host dynamic baseline) at each bucket close;
//! classification and the attack lifecycle.
//!
//! Memory is bounded by design: host and prefix entries live in slabs indexed by keyed hash maps
//! of *monitored* addresses only (remote addresses are never keys; they reach only the bounded
//! fingerprints of watched targets), idle entries are evicted, and detailed counters exist only
//! for watched targets and attacks.
//!
//! By stage, each `impl Engine` in its own file:
//! - `ingest`: records in, prefetched, accounted per side (hostgroup, host, carpet residue,
//!   prefix, watched details);
//! - `close`: a bucket's close and the host decisions (static limits, baseline);
//! - `carpet`: the carpet residue of prefixes and its decisions;
//! - `lifecycle`: attacks started, updated, ended; early starts and confirmations;
//! - `entries` / `slabs`: the host, prefix and detail entries, their creation and eviction;
//! - `limits`: the configuration resolved per hostgroup;
//! - `baselines`, `stats`: what is saved across restarts, what is reported about the engine.

mod baselines;
mod carpet;
mod close;
mod entries;
mod ingest;
mod lifecycle;
mod limits;
mod top;
pub use limits::{effective_limits, EffectiveLimits};
pub use top::{TopEntry, TopTargets, TOP_N};
mod residue;
mod slabs;
mod stats;

use std::collections::HashMap;
use std::net::IpAddr;

use foldhash::fast::RandomState;
use ipnet::IpNet;

use crate::addrmap::AddrMap;
use crate::attack::Lifecycle;
use crate::baseline::BaselineParams;
use crate::config::{BaselineConfig, ConfigError};
use crate::counters::{ClassCounts, Reverse, SLOTS};
use crate::event::{Direction, TriggerKind};
use crate::networks::NetworkMap;
use crate::partition::{Shard, ShardKey};
use crate::vocab::Metric;
use crate::{AttackEvent, DetectConfig};

use entries::{Detail, Host, Owner, Prefix};
use limits::{resolve_group, Group};
pub use stats::{EngineStats, HostgroupRates};

/// A slab index that points nowhere: no detail, a free host slot.
const NONE: u32 = u32::MAX;
/// Directions as indices of per-direction arrays and entries.
const IN: usize = 0;
const OUT: usize = 1;
const DIRECTIONS: [Direction; 2] = [Direction::Incoming, Direction::Outgoing];
/// Share of a rise above the learnt mean that must be unexplained traffic for a baseline
/// crossing to count (hosts and carpets alike).
const SURGE_UNEXPLAINED: f64 = 0.5;

/// The detection engine. See the module docs.
pub struct Engine {
    config: DetectConfig,
    networks: NetworkMap,
    groups: Vec<Group>,
    baseline: BaselineParams,
    /// The parameters of `[detection.baseline]` for prefix residue baselines, without floors:
    /// those are each hostgroup's carpet floors.
    carpet_baseline: BaselineParams,
    lifecycle: Lifecycle,
    watch_min_samples: u32,

    host_index: AddrMap,
    hosts: Vec<Host>,
    /// The address of each host entry (stale for free slots).
    host_addrs: Vec<IpAddr>,
    free_hosts: Vec<u32>,
    prefix_index: HashMap<IpNet, u32, RandomState>,
    prefixes: Vec<Prefix>,
    free_prefixes: Vec<u32>,
    details: Vec<Option<Detail>>,
    free_details: Vec<u32>,
    details_live: usize,
    attacks_live: usize,

    /// Hosts touched in the open bucket, with their prefix.
    touched_hosts: Vec<(u32, u32)>,
    /// Hosts of the open bucket whose running bucket reached its group's evaluation floor
    /// (possibly twice); every other touched host without a detail only learns its baseline,
    /// which is applied lazily at its next touch (or sweep).
    eval_hosts: Vec<u32>,
    /// Prefixes where a host counted in the carpet residue crossed a host limit alone in the
    /// open bucket: its packets may have been the recorded top, which is recounted at the close.
    stale_prefixes: Vec<u32>,
    touched_prefixes: Vec<u32>,
    /// The busiest targets of the bucket closing, and of the last closed one.
    top_build: top::TopBuild,
    top: TopTargets,
    /// Watched host directions whose open bucket already crossed a static limit at ingest:
    /// their attacks start right after the record, not at the bucket's close.
    early_starts: Vec<(u32, usize)>,
    /// Attacked host directions whose open bucket's evidence just confirmed their attack.
    early_confirms: Vec<(u32, usize)>,
    /// Scratch list of targets to evaluate at a bucket close.
    scratch: Vec<u32>,

    /// Absolute bucket (Unix seconds) of relative bucket 0, set by the first record.
    base_bucket: Option<u64>,
    /// The open bucket, relative to `base_bucket`.
    open: u32,
    clock_ms: u64,
    last_sweep: u32,
    stats: EngineStats,
    /// Time spent closing buckets (detection), for the benchmark's per-stage breakdown: two
    /// clock reads per second of telemetry, never read by detection itself.
    close_time: std::time::Duration,
    /// Whether watched targets' records feed their fingerprints: off only to measure what
    /// fingerprinting costs (`floodwall bench replay`).
    fingerprinting: bool,
    /// Whether the last bucket touched so few hosts that their entries stay in cache: ingest
    /// then skips its prefetch stages.
    cache_resident: bool,
    /// Forces one record path whatever the working set (tests of their equivalence).
    force_cache_resident: Option<bool>,
    /// The part of the targets this engine holds ([`Shard::ALL`] unless sharded).
    shard: Shard,
}

/// A limit crossed at a bucket close: metric, value, limit, trigger kind.
type Crossing = (Metric, f64, f64, TriggerKind);

impl Engine {
    pub fn new(config: DetectConfig) -> Result<Engine, ConfigError> {
        Engine::new_shard(config, Shard::ALL)
    }

    /// The engine of one shard: it accounts only the record sides whose target
    /// ([`ShardKey`]) falls on `shard`, and resumes only their baselines. `max_hosts` and
    /// `max_watched` are split evenly between the shards (rounded up).
    pub fn new_shard(mut config: DetectConfig, shard: Shard) -> Result<Engine, ConfigError> {
        config.validate()?;
        shard.validate()?;
        let count = shard.count as usize;
        config.max_hosts = config.max_hosts.div_ceil(count);
        config.max_watched = config.max_watched.div_ceil(count);
        let group_nets: Vec<Vec<IpNet>> = config
            .hostgroups
            .iter()
            .map(|g| g.networks.clone())
            .collect();
        let networks = NetworkMap::new(&config.networks, &group_nets);
        let mut groups = vec![resolve_group(&config, "default", None, None, None)];
        for g in &config.hostgroups {
            groups.push(resolve_group(
                &config,
                &g.name,
                Some(&g.incoming),
                Some(&g.outgoing),
                g.carpet.as_ref(),
            ));
        }
        let watch_min_samples =
            ((f64::from(config.min_samples) * config.watch_ratio).ceil() as u32).max(1);
        let baseline = BaselineParams::new(&config.baseline);
        let carpet_baseline = BaselineParams::new(&BaselineConfig {
            enabled: true,
            min_pps: 0.0,
            min_mbps: 0.0,
            ..config.baseline.clone()
        });
        for g in &mut groups {
            for d in [IN, OUT] {
                let (mut fp, mut fb) = (g.watch_packets[d], g.watch_bytes[d]);
                if let Some((min_pps, min_bps)) = baseline.floors() {
                    // Same arithmetic as `watch_levels`, at the lowest possible alarm levels.
                    fp = fp.min(min_pps * config.watch_ratio);
                    fb = fb.min(min_bps / 8.0 * config.watch_ratio);
                }
                g.floor_packets[d] = fp;
                g.floor_bytes[d] = fb;
            }
        }
        Ok(Engine {
            networks,
            groups,
            baseline,
            carpet_baseline,
            lifecycle: Lifecycle {
                quiet_period: config.quiet_period_s,
                end_ratio: config.end_ratio,
                update_interval: config.update_interval_s,
            },
            watch_min_samples,
            host_index: AddrMap::default(),
            hosts: Vec::new(),
            host_addrs: Vec::new(),
            free_hosts: Vec::new(),
            prefix_index: HashMap::with_hasher(RandomState::default()),
            prefixes: Vec::new(),
            free_prefixes: Vec::new(),
            details: Vec::new(),
            free_details: Vec::new(),
            details_live: 0,
            attacks_live: 0,
            touched_hosts: Vec::new(),
            cache_resident: false,
            force_cache_resident: None,
            eval_hosts: Vec::new(),
            stale_prefixes: Vec::new(),
            touched_prefixes: Vec::new(),
            top_build: top::TopBuild::default(),
            top: TopTargets::default(),
            early_starts: Vec::new(),
            early_confirms: Vec::new(),
            scratch: Vec::new(),
            base_bucket: None,
            open: 0,
            clock_ms: 0,
            last_sweep: 0,
            stats: EngineStats::default(),
            close_time: std::time::Duration::ZERO,
            fingerprinting: true,
            shard,
            config,
        })
    }

    /// Which part of the targets this engine holds.
    pub fn shard(&self) -> Shard {
        self.shard
    }

    /// Whether monitored address `addr` is one of this engine's targets.
    pub(crate) fn owns(&self, addr: IpAddr) -> bool {
        self.shard.count == 1
            || ShardKey::of(
                addr,
                self.config.prefix_length_v4,
                self.config.prefix_length_v6,
            )
            .shard(self.shard.count)
                == self.shard.index
    }

    pub fn config(&self) -> &DetectConfig {
        &self.config
    }

    /// Time spent closing buckets so far: the detection stage of the benchmark's breakdown.
    pub fn close_time(&self) -> std::time::Duration {
        self.close_time
    }

    /// Stops feeding fingerprints, so a benchmark can tell what fingerprinting costs. Events
    /// then carry empty fingerprints: never for detection.
    #[doc(hidden)]
    pub fn disable_fingerprints_for_benchmark(&mut self) {
        self.fingerprinting = false;
    }

    /// Takes the record path with (`false`) or without (`true`) prefetching whatever the
    /// working set, so tests can show both give the same events.
    #[doc(hidden)]
    pub fn force_cache_resident_for_test(&mut self, resident: bool) {
        self.force_cache_resident = Some(resident);
        self.cache_resident = resident;
    }

    /// The engine clock: the latest telemetry time seen (records or `tick`).
    pub fn clock_ms(&self) -> u64 {
        self.clock_ms
    }

    /// Advances telemetry time without records (a live collector that went quiet).
    pub fn tick(&mut self, now_ms: u64, events: &mut Vec<AttackEvent>) {
        if self.base_bucket.is_some() {
            self.advance(now_ms, events);
        }
    }

    /// Moves a shard's clock to the whole stream's, `now_ms` (the first record's time starts
    /// it), as a record at that time would: every shard closes the same buckets at the same
    /// point of the stream, whichever shard that record went to.
    pub(crate) fn sync_clock(&mut self, now_ms: u64, events: &mut Vec<AttackEvent>) {
        self.advance(now_ms, events);
    }

    /// Moves the clock to `time_ms`, closing every bucket that ends at or before it. Called per
    /// record: inlined into the record path, which lives in another module.
    #[inline]
    fn advance(&mut self, time_ms: u64, events: &mut Vec<AttackEvent>) {
        let abs = time_ms / 1000;
        let base = *self.base_bucket.get_or_insert(abs);
        self.clock_ms = self.clock_ms.max(time_ms);
        // Relative buckets are u32: 136 years of telemetry.
        let target = abs.saturating_sub(base).min(u64::from(u32::MAX - 16)) as u32;
        while self.open < target {
            let started = std::time::Instant::now();
            self.close_bucket(events);
            self.close_time += started.elapsed();
            self.open += 1;
            // Nothing watched or under attack and nothing touched: empty buckets change nothing
            // (baselines catch up lazily) but for their sweeps, so jump over the gap and sweep
            // where their closes would have. Eviction then does not depend on whether anything
            // was watched meanwhile (on a shard: by another shard).
            if self.details_live == 0 && self.open < target {
                self.sweep_gap(target - 1);
                self.open = target;
            }
        }
    }

    /// The sweeps that closes of empty buckets up to `last` would have made.
    #[cold]
    fn sweep_gap(&mut self, last: u32) {
        let period = 2 * self.config.quiet_period_s;
        let mut b = self.last_sweep + period;
        while b <= last {
            self.sweep(b);
            self.last_sweep = b;
            if self.host_index.len() == 0 && self.prefix_index.is_empty() {
                // Nothing left to evict: later sweeps would find nothing either.
                self.last_sweep = last - (last - b) % period;
                break;
            }
            b += period;
        }
    }

    /// The evidence window at bucket `b`: never reaching before the first bucket.
    fn window(&self, b: u32) -> u32 {
        self.config.evidence_window_s.min(b + 1)
    }

    fn group_of(&self, owner: Owner) -> usize {
        match owner {
            Owner::Host(h) => self.hosts[h as usize].group as usize,
            Owner::Prefix(p) => self.prefixes[p as usize].group as usize,
        }
    }

    /// The other direction of host `h` as seen from direction `d`.
    fn reverse_of_host(&self, h: u32, d: usize) -> Reverse<'_> {
        let other = self.hosts[h as usize].dir(1 - d);
        Reverse {
            ring: Some(&other.ring),
            classes: self.detail_ring(other.detail),
        }
    }

    /// The class counts of detail `id`, if it is live.
    fn detail_ring(&self, id: u32) -> Option<&[ClassCounts; SLOTS]> {
        self.details
            .get(id as usize)
            .and_then(|d| d.as_ref())
            .map(|d| &d.ring)
    }

    /// The incoming carpet residue's other direction: the prefix's outgoing traffic.
    fn reverse_of_prefix(&self, p: u32) -> Reverse<'_> {
        let out = &self.prefixes[p as usize].dirs[OUT];
        Reverse {
            ring: Some(&out.ring),
            classes: self.detail_ring(out.detail),
        }
    }
}

fn sort_events(events: &mut [AttackEvent]) {
    events.sort_by_key(|e| (e.direction, e.target));
}
