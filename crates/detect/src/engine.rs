//! The engine: accounting per host, prefix and hostgroup in 1-second buckets of telemetry time;
//! detection (carpet bombing against static or per-prefix baseline limits, static thresholds,
//! per-host dynamic baseline) at each bucket close;
//! classification and the attack lifecycle.
//!
//! Memory is bounded by design: host and prefix entries live in slabs indexed by keyed hash maps
//! of *monitored* addresses only (remote addresses are never keys; they reach only the bounded
//! fingerprints of watched targets), idle entries are evicted, and detailed counters exist only
//! for watched targets and attacks.

use std::collections::HashMap;
use std::net::IpAddr;

use floodwall_wire::FlowRecord;
use foldhash::fast::RandomState;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::addrmap::{AddrMap, Key};
use crate::attack::{Attack, Lifecycle, Start, Step};
use crate::baseline::{
    significantly_above, significantly_above_by, Baseline, BaselineParams, Baselines, Levels,
    STATIC_EVIDENCE_NATS,
};
use crate::config::{BaselineConfig, CarpetConfig, ConfigError, Thresholds};
use crate::counters::{
    class_slot, pk, remote_hash, tally_at, tally_slot, ClassCounts, Rates, RecordClass, Reverse,
    Tally, NO_BUCKET, SLOTS,
};
use crate::event::{Direction, EventKind, Trigger, TriggerKind};
use crate::fingerprint::FingerprintBuilder;
use crate::networks::NetworkMap;
use crate::prefetch::prefetch;
use crate::vocab::{Metric, Vector, METRICS};
use crate::{AttackEvent, DetectConfig};

/// Counters about the engine itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

/// Rates of one hostgroup and direction in the last complete bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct HostgroupRates {
    pub hostgroup: String,
    pub direction: Direction,
    pub pps: u64,
    pub bps: u64,
    /// Records per second.
    pub flows: u64,
}

const NONE: u32 = u32::MAX;
/// Seconds a prefix must have learnt before a surge against them is a carpet during its warm-up.
const SURGE_MIN_HISTORY_S: u32 = 30;
/// Share of a rise above the learnt mean that must be unexplained traffic for a baseline
/// crossing to count.
const SURGE_UNEXPLAINED: f64 = 0.5;
/// How unlikely sampling noise must make a bucket's rate above an attack's end level for the
/// bucket to count as still carrying the attack (`ended_at`): e^-2 ≈ 14 %, so a lone ordinary
/// sample under heavy sampling does not stretch an attack, while its own last seconds at a few
/// samples each still count.
const HOT_EVIDENCE_NATS: f64 = 2.0;
/// Share of a prefix's residue its attack-shaped part must have to be a carpet on its shape.
const DOMINANT_RESIDUE: f64 = 0.5;
/// How far above a carpet's rate per host a host in it must be to be an attack of its own.
const STAND_OUT: f64 = 4.0;
/// `Host::dirs_touched` bit: the host's incoming traffic of the open bucket is counted in its
/// prefix's carpet residue.
const IN_RESIDUE: u8 = 1 << 2;
/// How many records ahead ingest prefetches host entries (map slots twice as far).
const PREFETCH_AHEAD: usize = 16;
/// Records whose hostgroup lookups are in flight: more than `2 * PREFETCH_AHEAD`.
const LOOKAHEAD_RING: usize = 64;
/// Hostgroups of a record's destination and source, `None` when not monitored.
type Sides = (Option<u16>, Option<u16>);
const IN: usize = 0;
const OUT: usize = 1;
const DIRECTIONS: [Direction; 2] = [Direction::Incoming, Direction::Outgoing];

/// One direction of one host: ~112 bytes.
#[derive(Debug, Clone, Copy)]
struct HostDir {
    ring: [Tally; SLOTS],
    baseline: Baseline,
    /// Index into `Engine::details`, or `NONE`.
    detail: u32,
    /// Running-bucket packets / bytes at which watching starts (static limits and baseline).
    watch_packets: f32,
    watch_bytes: f32,
}

/// One host: 240 bytes, laid out so that the incoming direction and the header are adjacent
/// (126 bytes: ordinary traffic touches nothing else). The address lives in `Engine::host_addrs`:
/// it is needed only at bucket closes and evictions.
#[derive(Debug, Clone)]
#[repr(C)]
struct Host {
    dir_in: HostDir,
    /// Last bucket with traffic.
    touched: u32,
    evaluated: u32,
    /// Index into `Engine::prefixes`; `NONE` for a free slab slot.
    prefix: u32,
    group: u16,
    /// Bit `d` set: direction `d` has traffic in bucket `touched`.
    dirs_touched: u8,
    dir_out: HostDir,
}

impl Host {
    #[inline]
    fn dir(&self, d: usize) -> &HostDir {
        if d == IN {
            &self.dir_in
        } else {
            &self.dir_out
        }
    }

    #[inline]
    fn dir_mut(&mut self, d: usize) -> &mut HostDir {
        if d == IN {
            &mut self.dir_in
        } else {
            &mut self.dir_out
        }
    }

    #[inline]
    fn dirs(&self) -> [&HostDir; 2] {
        [&self.dir_in, &self.dir_out]
    }

    #[inline]
    fn dirs_mut(&mut self) -> [&mut HostDir; 2] {
        [&mut self.dir_in, &mut self.dir_out]
    }

    /// Whether the last bucket with traffic was closed without evaluating this host: it stayed
    /// below its group's evaluation floors, so that close only had its baseline to learn.
    #[inline]
    fn learn_pending(&self) -> bool {
        self.touched != NO_BUCKET && (self.evaluated == NO_BUCKET || self.evaluated < self.touched)
    }

    /// Applies the pending close of bucket `touched` exactly as the quiet fast path of
    /// `Engine::evaluate_host` would have then.
    fn learn_quiet(&mut self, g: &Group, params: &BaselineParams, config: &DetectConfig) {
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
struct PrefixDir {
    ring: [Tally; SLOTS],
    detail: u32,
}

impl Default for PrefixDir {
    fn default() -> Self {
        PrefixDir {
            ring: Default::default(),
            detail: NONE,
        }
    }
}

/// The carpet-bombing state of a prefix: 72 bytes, once per prefix since carpet bombing is
/// incoming only (outgoing prefix totals are accounting). The fields read per record come first.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct Residue {
    /// Running-bucket packets / bytes at which the prefix is watched: `watch_ratio` × its current
    /// carpet limits (static, or from `baseline`); infinite when carpet detection is off.
    watch_packets: f32,
    watch_bytes: f32,
    /// In bucket `stat_bucket`: hosts with traffic that are not under attack on their own (the
    /// carpet's residue), their packets and bytes, and the largest one's packets. A host attack's
    /// traffic is its own, not the carpet's.
    hosts_active: u32,
    stat_bucket: u32,
    residual_packets: u64,
    residual_bytes: u64,
    /// Sum over the residue's hosts of their packets squared: with `residual_packets` it gives
    /// the effective number of hosts carrying the residue, (Σx)² / Σx².
    /// (A `u128` kept as two words: its 16-byte alignment would pad the entry.)
    residual_sq: [u64; 2],
    top_host_packets: u64,
    /// Bucket in which `top_host_packets` may hold a host no longer in the residue.
    top_stale: u32,
    /// The learnt normal of the residue: learnt at the close of each bucket with incoming
    /// traffic, caught up lazily over silent ones, attack buckets skipped.
    baseline: Baseline,
    /// While a carpet attack is active: the residue's highest mean packets/s and bits/s per
    /// host in its buckets so far. A host crossing its own limits is a host attack only if it stands out from
    /// that (a carpet spreading 50 kpps over each address is one carpet, not 256 host attacks).
    carpet_host_pps: f32,
    carpet_host_bps: f32,
}

impl Residue {
    fn sq(&self) -> u128 {
        (u128::from(self.residual_sq[0]) << 64) | u128::from(self.residual_sq[1])
    }

    /// Adds `plus` and takes `minus` from the sum of squares.
    fn add_sq(&mut self, plus: u128, minus: u128) {
        let v = self.sq() + plus - minus;
        self.residual_sq = [(v >> 64) as u64, v as u64];
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

#[derive(Debug, Clone)]
struct Prefix {
    net: IpNet,
    group: u16,
    /// Host entries pointing here; a prefix is evicted only without any.
    hosts: u32,
    touched: u32,
    evaluated: u32,
    live: bool,
    dirs: [PrefixDir; 2],
    residue: Residue,
}

/// Carpet-bombing limits resolved for one hostgroup (`f64::INFINITY` = disabled).
#[derive(Debug, Clone, Copy)]
struct CarpetLimits {
    enabled: bool,
    min_hosts: u32,
    max_host_share: f64,
    /// Static residue limits: the limits of a prefix without a warmed-up baseline.
    pps: f64,
    mbps: f64,
    /// Whether prefixes learn a residue baseline.
    baseline: bool,
    /// Floors of the baseline alarm levels (packets/s, bits/s).
    floor_pps: f64,
    floor_bps: f64,
    /// Ceilings (never below the static limits): a baseline never raises the limits above them.
    max_pps: f64,
    max_mbps: f64,
    /// Watch levels of a prefix without a warmed-up baseline (`watch_ratio` × static limits).
    watch_packets: f64,
    watch_bytes: f64,
}

impl CarpetLimits {
    /// The lowest residue limits (packets/s, megabits/s) that can trigger, for the watch: the
    /// static ones, the ceilings, and the baseline's `levels` when there are some.
    fn lowest(&self, levels: Option<Levels>) -> (f64, f64) {
        let (mut p, mut m) = (self.pps.min(self.max_pps), self.mbps.min(self.max_mbps));
        if let Some(l) = levels {
            p = p.min(l.pps);
            m = m.min(l.bps / 1e6);
        }
        (p, m)
    }

    /// The levels of a prefix's residue baseline, when it learns one and has warmed up.
    fn levels(&self, baseline: &Baseline, params: &BaselineParams) -> Option<Levels> {
        if self.enabled && self.baseline {
            baseline.levels_above(params, self.floor_pps, self.floor_bps)
        } else {
            None
        }
    }
}

/// Per-hostgroup totals of one direction.
#[derive(Debug, Clone, Default)]
struct GroupTotals {
    current: Tally,
    last: Tally,
}

/// A hostgroup with its resolved limits (`f64::INFINITY` = disabled).
#[derive(Debug, Clone)]
struct Group {
    name: String,
    limits: [[f64; METRICS]; 2],
    watch_packets: [f64; 2],
    watch_bytes: [f64; 2],
    watch_samples: [u32; 2],
    /// The lowest running-bucket packets / bytes at which a host direction without a detail can
    /// leave the quiet fast path at a bucket close, whatever its baseline: `watch_packets` /
    /// `watch_bytes` capped by `watch_ratio` × the baseline floors (alarm levels never go below
    /// them). Hosts whose bucket stays below these (and below `watch_samples`) only learn.
    floor_packets: [f64; 2],
    floor_bytes: [f64; 2],
    /// The lowest packets/s and bits/s limits: a running bucket below both crosses nothing.
    lowest_packets: [f64; 2],
    lowest_bits: [f64; 2],
    carpet: CarpetLimits,
    totals: [GroupTotals; 2],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Host(u32),
    Prefix(u32),
}

/// Detailed counters, fingerprint and attack of one watched target and direction.
#[derive(Debug)]
struct Detail {
    owner: Owner,
    dir: usize,
    ring: [ClassCounts; SLOTS],
    fingerprint: FingerprintBuilder,
    attack: Option<Attack>,
    /// Consecutive buckets below the watch level (without an attack).
    idle: u32,
    /// Evidence of the open bucket when a start was last judged mid-bucket (`early_bucket`):
    /// judged again only once it has grown by a quarter, so busy ordinary traffic over the
    /// limits' totals costs a few judgements per bucket, not one per record.
    early_evidence: u32,
    early_bucket: u32,
}

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
}

fn resolve_limits(
    builtin: &Thresholds,
    global: &Thresholds,
    group: Option<&Thresholds>,
) -> [f64; METRICS] {
    let mut out = [f64::INFINITY; METRICS];
    for m in Metric::ALL {
        let v = group
            .and_then(|g| g.get(m))
            .or(global.get(m))
            .or(builtin.get(m));
        if let Some(v) = v.filter(|v| *v > 0.0) {
            out[m as usize] = v;
        }
    }
    out
}

fn resolve_group(
    config: &DetectConfig,
    name: &str,
    incoming: Option<&Thresholds>,
    outgoing: Option<&Thresholds>,
    carpet: Option<&crate::config::CarpetThresholds>,
) -> Group {
    let limits = [
        resolve_limits(&Thresholds::builtin_incoming(), &config.incoming, incoming),
        resolve_limits(&Thresholds::builtin_outgoing(), &config.outgoing, outgoing),
    ];
    let r = config.watch_ratio;
    let watch = |l: &[f64; METRICS], packets: bool| {
        Metric::ALL
            .iter()
            .filter(|m| m.is_packets() == packets && **m != Metric::FlowsPerS)
            .map(|m| l[*m as usize])
            .fold(f64::INFINITY, f64::min)
            * r
    };
    let watch_samples = |l: &[f64; METRICS]| {
        let f = l[Metric::FlowsPerS as usize] * r;
        if f.is_finite() {
            (f.ceil() as u32).max(1)
        } else {
            u32::MAX
        }
    };
    let c: &CarpetConfig = &config.carpet;
    let pick = |o: Option<f64>, d: f64| {
        let v = o.unwrap_or(d);
        if v > 0.0 {
            v
        } else {
            f64::INFINITY
        }
    };
    let (pps, mbps) = (
        pick(carpet.and_then(|c| c.pps), c.pps),
        pick(carpet.and_then(|c| c.mbps), c.mbps),
    );
    // A ceiling below the static limit would lower the limit of prefixes without history.
    let ceiling = |o: Option<f64>, d: f64, limit: f64| {
        let v = pick(o, d);
        if limit.is_finite() {
            v.max(limit)
        } else {
            v
        }
    };
    Group {
        name: name.to_string(),
        watch_packets: [watch(&limits[IN], true), watch(&limits[OUT], true)],
        watch_bytes: [
            watch(&limits[IN], false) * 1e6 / 8.0,
            watch(&limits[OUT], false) * 1e6 / 8.0,
        ],
        watch_samples: [watch_samples(&limits[IN]), watch_samples(&limits[OUT])],
        floor_packets: [f64::INFINITY; 2],
        floor_bytes: [f64::INFINITY; 2],
        lowest_packets: [watch(&limits[IN], true) / r, watch(&limits[OUT], true) / r],
        lowest_bits: [
            watch(&limits[IN], false) * 1e6 / r,
            watch(&limits[OUT], false) * 1e6 / r,
        ],
        limits,
        carpet: CarpetLimits {
            enabled: c.enabled,
            min_hosts: carpet.and_then(|c| c.min_hosts).unwrap_or(c.min_hosts),
            max_host_share: carpet
                .and_then(|c| c.max_host_share)
                .unwrap_or(c.max_host_share),
            pps,
            mbps,
            baseline: carpet.and_then(|c| c.baseline).unwrap_or(c.baseline),
            floor_pps: carpet
                .and_then(|c| c.baseline_min_pps)
                .unwrap_or(c.baseline_min_pps),
            floor_bps: carpet
                .and_then(|c| c.baseline_min_mbps)
                .unwrap_or(c.baseline_min_mbps)
                * 1e6,
            max_pps: ceiling(carpet.and_then(|c| c.max_pps), c.max_pps, pps),
            max_mbps: ceiling(carpet.and_then(|c| c.max_mbps), c.max_mbps, mbps),
            watch_packets: pps * r,
            watch_bytes: mbps * r * 1e6 / 8.0,
        },
        totals: Default::default(),
    }
}

/// Running-bucket packets and bytes at which a host direction is watched: `watch_ratio` × its
/// lowest static limit or its baseline alarm level, whichever is lower.
fn watch_levels(
    g: &Group,
    d: usize,
    baseline: &Baseline,
    params: &BaselineParams,
    config: &DetectConfig,
) -> (f64, f64) {
    let (mut wp, mut wb) = (g.watch_packets[d], g.watch_bytes[d]);
    if let Some(levels) = baseline.levels(params) {
        wp = wp.min(levels.pps * config.watch_ratio);
        wb = wb.min(levels.bps / 8.0 * config.watch_ratio);
    }
    (wp, wb)
}

/// The static limit crossed furthest (by value / limit) by more than sampling noise (see
/// `STATIC_EVIDENCE_NATS`). Class metrics count only when known.
fn static_trigger(limits: &[f64; METRICS], rates: &Rates) -> Option<(Metric, f64, f64)> {
    let mut best: Option<(Metric, f64, f64)> = None;
    for m in Metric::ALL {
        if m.needs_classes() && !rates.has_classes {
            continue;
        }
        let (v, l) = (rates.values[m as usize], limits[m as usize]);
        if v >= l
            && best.is_none_or(|(_, bv, bl)| v / l > bv / bl)
            && (m == Metric::FlowsPerS
                || significantly_above_by(v, l, rates.evidence_of(m), STATIC_EVIDENCE_NATS))
        {
            best = Some((m, v, l));
        }
    }
    best
}

/// The carpet limit a prefix's residue crosses, if any, by more than sampling noise. `ps` and
/// `bs` are the residue's shares of the prefix's packets and bytes; `levels` the learnt (or,
/// during warm-up, first seconds') levels, `warm` whether the warm-up is over.
///
/// 1. The ceilings, on the residue's unexplained traffic: at `max_pps` / `max_mbps` it is a
///    carpet whatever it looks like (a CDN prefix's acknowledgements answered by its data are
///    not).
/// 2. The static limits (raised to the learnt level once warm: a busy prefix's normal) on the
///    attack-shaped residue, when it is most of the residue: what ordinary traffic does not
///    explain, other than data. Data that nobody answers, from scattered ports, is also what
///    one-way telemetry or peer-to-peer traffic of a busy prefix looks like, so alone it needs a
///    surge or the ceilings.
/// 3. A surge: the residue significantly above its level, the rise being unexplained traffic.
fn carpet_crossing(
    c: &CarpetLimits,
    levels: Option<Levels>,
    warm: bool,
    rates: &Rates,
    (ps, bs): (f64, f64),
) -> Option<Crossing> {
    let pps = rates.total_pps * ps;
    let mbps = rates.total_bps / 1e6 * bs;
    // Evidence behind a part `v` of the residue (`all`: the residue in the same unit).
    let evidence = |v: f64, all: f64| {
        if all > 0.0 {
            (rates.evidence * ps * (v / all).min(1.0)) as u64
        } else {
            0
        }
    };
    let crossed = |v: f64, l: f64, all: f64| {
        v >= l && significantly_above_by(v, l, evidence(v, all), STATIC_EVIDENCE_NATS)
    };
    let pick = |(pv, pl): (f64, f64), (mv, ml): (f64, f64), kind| {
        let (p_ok, m_ok) = (crossed(pv, pl, pps), crossed(mv, ml, mbps));
        match (p_ok, m_ok) {
            (true, true) if mv / ml > pv / pl => Some((Metric::Mbps, mv, ml, kind)),
            (true, _) => Some((Metric::Pps, pv, pl, kind)),
            (false, true) => Some((Metric::Mbps, mv, ml, kind)),
            (false, false) => None,
        }
    };
    let (u_pps, u_mbps) = (rates.pps() * ps, rates.values[Metric::Mbps as usize] * bs);
    let ceiling = pick(
        (u_pps, c.max_pps),
        (u_mbps, c.max_mbps),
        TriggerKind::CarpetBombing,
    );
    if ceiling.is_some() {
        return ceiling;
    }
    let strong_pps = (rates.pps() - rates.unexplained[pk::DATA]).max(0.0) * ps;
    let strong_mbps =
        (rates.values[Metric::Mbps as usize] - rates.unexplained_bps[pk::DATA] / 1e6).max(0.0) * bs;
    let (lp, lm) = match levels.filter(|_| warm) {
        Some(l) => (
            l.pps.max(c.pps).min(c.max_pps),
            (l.bps / 1e6).max(c.mbps).min(c.max_mbps),
        ),
        None => (c.pps, c.mbps),
    };
    // The attack shape must dominate the residue: a busy prefix's ordinary traffic always has
    // some unanswered UDP and bare ACKs (all of it when only one direction is exported).
    let dominant = |part: f64, all: f64| {
        if part >= DOMINANT_RESIDUE * all {
            part
        } else {
            0.0
        }
    };
    let shaped = pick(
        (dominant(strong_pps, pps), lp),
        (dominant(strong_mbps, mbps), lm),
        TriggerKind::CarpetBombing,
    );
    if shaped.is_some() {
        return shaped;
    }
    let l = levels?;
    let all = evidence(pps, pps);
    if significantly_above(pps, l.pps, all) && u_pps >= SURGE_UNEXPLAINED * (pps - l.mean_pps) {
        return Some((Metric::Pps, pps, l.pps, TriggerKind::Baseline));
    }
    let mean_mbps = l.mean_bps / 1e6;
    if significantly_above(mbps, l.bps / 1e6, all)
        && u_mbps >= SURGE_UNEXPLAINED * (mbps - mean_mbps)
    {
        return Some((Metric::Mbps, mbps, l.bps / 1e6, TriggerKind::Baseline));
    }
    None
}

impl Engine {
    pub fn new(config: DetectConfig) -> Result<Engine, ConfigError> {
        config.validate()?;
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
            eval_hosts: Vec::new(),
            stale_prefixes: Vec::new(),
            touched_prefixes: Vec::new(),
            early_starts: Vec::new(),
            early_confirms: Vec::new(),
            scratch: Vec::new(),
            base_bucket: None,
            open: 0,
            clock_ms: 0,
            last_sweep: 0,
            stats: EngineStats::default(),
            config,
        })
    }

    pub fn config(&self) -> &DetectConfig {
        &self.config
    }

    /// The engine clock: the latest telemetry time seen (records or `tick`).
    pub fn clock_ms(&self) -> u64 {
        self.clock_ms
    }

    /// Accounts records. Telemetry time advances with the records' `time_ms`; crossing a bucket
    /// boundary closes the bucket and runs detection, appending events. Records older than the
    /// open bucket (late flows) are counted in the open bucket.
    pub fn ingest(&mut self, records: &[FlowRecord], events: &mut Vec<AttackEvent>) {
        // Memory-latency bound on many hosts: fetch map slots 2 × PREFETCH_AHEAD records ahead,
        // the map entries they point to 1.5 × ahead, host entries PREFETCH_AHEAD ahead. Each record's hostgroups are looked up once, at the
        // first stage, and kept in a small ring until the record is accounted.
        let mut sides = [(None, None); LOOKAHEAD_RING];
        // Host entries found when prefetching, `NONE` if not (yet) there; checked before use.
        let mut found = [(NONE, NONE); LOOKAHEAD_RING];
        for (j, r) in records.iter().take(2 * PREFETCH_AHEAD).enumerate() {
            sides[j % LOOKAHEAD_RING] = self.sides(r);
        }
        for (i, r) in records.iter().enumerate() {
            if let Some(ahead) = records.get(i + 2 * PREFETCH_AHEAD) {
                let s = self.sides(ahead);
                sides[(i + 2 * PREFETCH_AHEAD) % LOOKAHEAD_RING] = s;
                self.prefetch_slots(ahead, s);
            }
            if let Some(ahead) = records.get(i + PREFETCH_AHEAD * 3 / 2) {
                self.prefetch_entries(ahead, sides[(i + PREFETCH_AHEAD * 3 / 2) % LOOKAHEAD_RING]);
            }
            if let Some(ahead) = records.get(i + PREFETCH_AHEAD) {
                let j = (i + PREFETCH_AHEAD) % LOOKAHEAD_RING;
                found[j] = self.prefetch_hosts(ahead, sides[j]);
            }
            if let Some(ahead) = records.get(i + PREFETCH_AHEAD / 2) {
                self.prefetch_prefixes(ahead, found[(i + PREFETCH_AHEAD / 2) % LOOKAHEAD_RING]);
            }
            self.stats.records += 1;
            let evicted = self.stats.hosts_evicted;
            self.advance(r.time_ms, events);
            if self.stats.hosts_evicted != evicted {
                // Freed entries may be reused for other addresses: look up again.
                found = [(NONE, NONE); LOOKAHEAD_RING];
            }
            self.account(r, sides[i % LOOKAHEAD_RING], found[i % LOOKAHEAD_RING]);
            if !self.early_starts.is_empty() {
                // Reported at the engine's clock: a late record does not date the report back.
                self.start_early(self.clock_ms, events);
            }
            if !self.early_confirms.is_empty() {
                self.confirm_early(self.clock_ms, events);
            }
        }
    }

    /// Starts the attacks of `early_starts`: judged on the open bucket alone, as its close
    /// would (static limits, `min_samples`, sampling noise), with the same attack id; the
    /// event's `ts` is the telemetry time of the record that crossed.
    fn start_early(&mut self, now_ms: u64, events: &mut Vec<AttackEvent>) {
        let Some(base) = self.base_bucket else {
            return;
        };
        let b = self.open;
        let end_ms = (base + u64::from(b) + 1) * 1000;
        let mut starts = std::mem::take(&mut self.early_starts);
        for &(h, d) in &starts {
            let host = &self.hosts[h as usize];
            let (group, dir) = (host.group as usize, host.dir(d));
            let Some(detail) = self
                .details
                .get(dir.detail as usize)
                .and_then(|x| x.as_ref())
            else {
                continue;
            };
            if detail.attack.is_some() {
                continue;
            }
            let rates = Rates::compute(
                &dir.ring,
                Some(&detail.ring),
                self.reverse_of_host(h, d),
                b,
                1,
                self.config.min_samples,
            );
            let crossing = static_trigger(&self.groups[group].limits[d], &rates)
                .map(|(m, v, l)| (m, v, l, TriggerKind::Threshold));
            // Inside a prefix whose open bucket is spread over many hosts, a host that does not
            // stand out waits for the close, where the carpet is judged first.
            let in_carpet = d == IN
                && crossing.is_some_and(|(m, ..)| {
                    self.part_of_carpet(h, &rates, m) || self.share_of_spread_residue(h, &rates)
                });
            if !rates.confident || crossing.is_none() || in_carpet {
                continue;
            }
            let watch = (f64::from(dir.watch_packets), f64::from(dir.watch_bytes));
            let first = events.len();
            self.step_target(
                Owner::Host(h),
                d,
                &rates,
                crossing,
                watch,
                b,
                end_ms,
                events,
            );
            for e in &mut events[first..] {
                e.ts = now_ms.min(e.ts);
            }
        }
        starts.clear();
        self.early_starts = starts;
    }

    /// Reports the attacks of `early_confirms` as confirmed, at `now_ms`.
    fn confirm_early(&mut self, now_ms: u64, events: &mut Vec<AttackEvent>) {
        let b = self.open;
        for (h, d) in std::mem::take(&mut self.early_confirms) {
            let host = &self.hosts[h as usize];
            let group = host.group as usize;
            let id = host.dir(d).detail;
            let Some(detail) = self.details.get_mut(id as usize).and_then(|x| x.as_mut()) else {
                continue;
            };
            if let Some(attack) = detail.attack.as_mut() {
                events.push(attack.confirmed_event(
                    b,
                    now_ms,
                    &detail.fingerprint,
                    &self.groups[group].name,
                ));
            }
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

    /// The hostgroups of a record's destination and source, when monitored.
    #[inline]
    fn sides(&self, r: &FlowRecord) -> Sides {
        (self.networks.lookup(r.dst), self.networks.lookup(r.src))
    }

    /// Advances telemetry time without records (a live collector that went quiet).
    pub fn tick(&mut self, now_ms: u64, events: &mut Vec<AttackEvent>) {
        if self.base_bucket.is_some() {
            self.advance(now_ms, events);
        }
    }

    /// End of input: closes the open bucket and ends every active attack.
    pub fn finish(&mut self, events: &mut Vec<AttackEvent>) {
        let Some(base) = self.base_bucket else {
            return;
        };
        let end_ms = (base + u64::from(self.open) + 1) * 1000;
        self.close_bucket(events);
        let start = events.len();
        for i in 0..self.details.len() {
            let Some(owner) = self.details[i].as_ref().map(|d| d.owner) else {
                continue;
            };
            let group = self.group_of(owner);
            let detail = self.details[i].as_mut().expect("live detail");
            if let Some(attack) = detail.attack.take() {
                events.push(attack.event(
                    EventKind::AttackEnded,
                    end_ms,
                    &detail.fingerprint,
                    &self.groups[group].name,
                ));
                self.attacks_live -= 1;
                self.free_detail(i as u32);
            }
        }
        sort_events(&mut events[start..]);
        self.open += 1;
    }

    /// Every baseline learnt so far (hosts and prefixes with any history), to save.
    pub fn baselines(&self) -> Baselines {
        let mut out = Baselines::default();
        for (i, host) in self.hosts.iter().enumerate() {
            let states = [host.dir_in.baseline.state(), host.dir_out.baseline.state()];
            if host.prefix != NONE && states.iter().any(|s| s.history > 0) {
                out.hosts.push((self.host_addrs[i], states));
            }
        }
        for prefix in &self.prefixes {
            let state = prefix.residue.baseline.state();
            if prefix.live && state.history > 0 {
                out.prefixes.push((prefix.net, state));
            }
        }
        out
    }

    /// Resumes baselines saved by [`Engine::baselines`] (before a restart), for addresses and
    /// prefixes still monitored, up to `max_hosts`; invalid entries (non-finite, negative) are
    /// skipped. Call before ingesting: the time the daemon was down is not counted as silence.
    /// Returns the host and prefix baselines resumed.
    pub fn restore_baselines(&mut self, saved: &Baselines) -> (usize, usize) {
        let b = self.open;
        let mut restored = (0, 0);
        for (addr, states) in &saved.hosts {
            let Some(group) = self.networks.lookup(*addr) else {
                continue;
            };
            let h = match self.host_index.get(Key::of(*addr)) {
                Some(h) => h,
                None => match self.new_host(*addr, group) {
                    Some(h) => h,
                    None => break,
                },
            };
            let params = &self.baseline;
            let g = &self.groups[group as usize];
            let host = &mut self.hosts[h as usize];
            // Aged from now: forgotten after `host_idle_timeout_s` if it never comes back.
            host.touched = b;
            let mut any = false;
            for (d, state) in states.iter().enumerate() {
                if let Some(baseline) = Baseline::restored(state, b) {
                    let dir = host.dir_mut(d);
                    dir.baseline = baseline;
                    let (wp, wb) = watch_levels(g, d, &dir.baseline, params, &self.config);
                    dir.watch_packets = wp as f32;
                    dir.watch_bytes = wb as f32;
                    any = true;
                }
            }
            restored.0 += usize::from(any);
        }
        for (net, state) in &saved.prefixes {
            let addr = net.network();
            let Some(group) = self.networks.lookup(addr) else {
                continue;
            };
            let Some(p) = self.prefix_of(addr, group) else {
                break;
            };
            let prefix = &mut self.prefixes[p as usize];
            if prefix.net != *net {
                continue; // saved with another prefix length
            }
            if let Some(baseline) = Baseline::restored(state, b) {
                prefix.touched = b;
                prefix.residue.baseline = baseline;
                let c = &self.groups[group as usize].carpet;
                let (lp, lm) = c.lowest(c.levels(&baseline, &self.carpet_baseline));
                let r = self.config.watch_ratio;
                prefix.residue.watch_packets = (lp * r) as f32;
                prefix.residue.watch_bytes = (lm * r * 1e6 / 8.0) as f32;
                restored.1 += 1;
            }
        }
        restored
    }

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

    #[inline]
    fn prefetch_slots(&self, r: &FlowRecord, (dst, src): Sides) {
        for (group, addr) in [(dst, r.dst), (src, r.src)] {
            if group.is_some() {
                self.host_index.prefetch(Key::of(addr));
            }
        }
    }

    /// Prefetches the address-map entries of a record's monitored sides (their slots were
    /// prefetched earlier).
    #[inline]
    fn prefetch_entries(&self, r: &FlowRecord, (dst, src): Sides) {
        for (group, addr) in [(dst, r.dst), (src, r.src)] {
            if group.is_some() {
                self.host_index.prefetch_entry(Key::of(addr));
            }
        }
    }

    /// Prefetches the host entries of a record's monitored sides and returns their indices
    /// (`NONE` where there is none yet).
    #[inline]
    fn prefetch_hosts(&self, r: &FlowRecord, (dst, src): Sides) -> (u32, u32) {
        let mut found = [NONE; 2];
        for (d, group, addr) in [(IN, dst, r.dst), (OUT, src, r.src)] {
            if group.is_some() {
                if let Some(h) = self.host_index.get(Key::of(addr)) {
                    found[d] = h;
                    // The header and the whole direction: a first touch in a bucket may apply
                    // a pending learn (ring and baseline).
                    let host = &self.hosts[h as usize];
                    let dir = host.dir(d);
                    prefetch(&host.touched);
                    prefetch(&dir.ring[0]);
                    // Between ring[0] and watch_bytes lies up to a whole line (host entries
                    // are not line-aligned).
                    prefetch(&dir.baseline);
                    prefetch(&dir.watch_bytes);
                }
            }
        }
        (found[IN], found[OUT])
    }

    /// Prefetches the prefix entries of host entries found (and prefetched) earlier, and the
    /// fingerprint state of watched ones.
    #[inline]
    fn prefetch_prefixes(&self, r: &FlowRecord, (dst_h, src_h): (u32, u32)) {
        for (d, h) in [(IN, dst_h), (OUT, src_h)] {
            if let Some(host) = self.hosts.get(h as usize) {
                // A watched host's fingerprint: the sketch register this record will update.
                if let Some(Some(detail)) = self.details.get(host.dir(d).detail as usize) {
                    detail
                        .fingerprint
                        .prefetch(if d == IN { r.src } else { r.dst });
                }
                if let Some(p) = self.prefixes.get(host.prefix as usize) {
                    let pd = &p.dirs[d];
                    prefetch(&p.touched);
                    prefetch(&pd.ring[self.open as usize % SLOTS]);
                    prefetch(&pd.detail);
                    if d == IN {
                        prefetch(&p.residue);
                    }
                }
            }
        }
    }

    fn group_of(&self, owner: Owner) -> usize {
        match owner {
            Owner::Host(h) => self.hosts[h as usize].group as usize,
            Owner::Prefix(p) => self.prefixes[p as usize].group as usize,
        }
    }

    /// Moves the clock to `time_ms`, closing every bucket that ends at or before it.
    fn advance(&mut self, time_ms: u64, events: &mut Vec<AttackEvent>) {
        let abs = time_ms / 1000;
        let base = *self.base_bucket.get_or_insert(abs);
        self.clock_ms = self.clock_ms.max(time_ms);
        // Relative buckets are u32: 136 years of telemetry.
        let target = abs.saturating_sub(base).min(u64::from(u32::MAX - 16)) as u32;
        while self.open < target {
            self.close_bucket(events);
            self.open += 1;
            // Nothing watched or under attack and nothing touched: empty buckets change nothing
            // (baselines catch up lazily), so jump over the gap.
            if self.details_live == 0 && self.open < target {
                self.open = target;
            }
        }
    }

    #[inline]
    fn account(&mut self, r: &FlowRecord, (dst, src): Sides, (dst_h, src_h): (u32, u32)) {
        if dst.is_none() && src.is_none() {
            self.stats.records_unmonitored += 1;
            return;
        }
        let class = RecordClass::of(r);
        if let Some(g) = dst {
            self.account_side(r.dst, dst_h, g, IN, r, r.src, &class);
        }
        if let Some(g) = src {
            self.account_side(r.src, src_h, g, OUT, r, r.dst, &class);
        }
    }

    /// Accounts one side of a record: `addr` is the monitored end, `remote` the other.
    /// `found` is the host entry of `addr` as looked up a few records earlier (or `NONE`): used
    /// when it still holds `addr`.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn account_side(
        &mut self,
        addr: IpAddr,
        found: u32,
        group: u16,
        d: usize,
        r: &FlowRecord,
        remote: IpAddr,
        class: &RecordClass,
    ) {
        let b = self.open;
        let incoming = d == IN;
        let g = &mut self.groups[group as usize];
        let totals = &mut g.totals[d];
        if totals.current.bucket != b {
            totals.last = totals.current;
            totals.current = Tally {
                bucket: b,
                ..Tally::default()
            };
        }
        totals.current.add(r);
        // Only watched targets' class counts key by the remote: hashed where they are counted.
        let rh = || remote_hash(remote);
        // `found` is cleared whenever hosts were evicted since it was looked up.
        let host = if found != NONE {
            Some(found)
        } else {
            match self.host_index.get(Key::of(addr)) {
                Some(h) => Some(h),
                None => self.new_host(addr, group),
            }
        };
        // Whether the record's host is part of its prefix's carpet residue: not over a host
        // limit on its own and not under attack on its own (its traffic is that attack's, so
        // the carpet's counts and fingerprint leave it out).
        let mut in_residue = false;
        let prefix = match host {
            Some(h) => {
                let host = &mut self.hosts[h as usize];
                if host.touched != b {
                    if host.learn_pending() {
                        let g = &self.groups[host.group as usize];
                        host.learn_quiet(g, &self.baseline, &self.config);
                    }
                    host.touched = b;
                    host.dirs_touched = 0;
                    self.touched_hosts.push((h, host.prefix));
                }
                host.dirs_touched |= 1 << d;
                let g = &self.groups[host.group as usize];
                let (floor_packets, floor_bytes, floor_samples) =
                    (g.floor_packets[d], g.floor_bytes[d], g.watch_samples[d]);
                let prefix = host.prefix;
                let detail_id = host.dir(d).detail;
                let attacked = detail_id != NONE
                    && self.details[detail_id as usize]
                        .as_ref()
                        .is_some_and(|x| x.attack.is_some());
                let dir = host.dir_mut(d);
                let t = tally_slot(&mut dir.ring, b);
                let before = *t;
                t.add(r);
                let t = *t;
                let quiet = |t: &Tally| {
                    (t.packets as f64) < floor_packets
                        && (t.bytes as f64) < floor_bytes
                        && t.samples < floor_samples
                };
                if (before.samples == 0 || quiet(&before)) && !quiet(&t) {
                    self.eval_hosts.push(h);
                }
                if incoming {
                    // The carpet residue of the prefix (see `Residue`), kept incrementally.
                    let was_in = host.dirs_touched & IN_RESIDUE != 0;
                    in_residue = !attacked;
                    if in_residue {
                        host.dirs_touched |= IN_RESIDUE;
                    } else {
                        host.dirs_touched &= !IN_RESIDUE;
                    }
                    let res = &mut self.prefixes[prefix as usize].residue;
                    if res.stat_bucket != b {
                        res.stat_bucket = b;
                        res.hosts_active = 0;
                        res.residual_packets = 0;
                        res.residual_bytes = 0;
                        res.residual_sq = [0; 2];
                        res.top_host_packets = 0;
                    }
                    // A host leaves the residue for good within a bucket (attacks end only at
                    // closes); it enters it only with its first record.
                    match (was_in, in_residue) {
                        (false, true) => {
                            res.hosts_active += 1;
                            res.residual_packets += t.packets;
                            res.residual_bytes += t.bytes;
                            res.add_sq(square(t.packets), 0);
                            res.top_host_packets = res.top_host_packets.max(t.packets);
                        }
                        (true, true) => {
                            res.residual_packets += t.packets - before.packets;
                            res.residual_bytes += t.bytes - before.bytes;
                            res.add_sq(square(t.packets), square(before.packets));
                            res.top_host_packets = res.top_host_packets.max(t.packets);
                        }
                        (true, false) => {
                            res.hosts_active -= 1;
                            res.residual_packets -= before.packets;
                            res.residual_bytes -= before.bytes;
                            res.add_sq(0, square(before.packets));
                            // Its packets may be the recorded top: recount at the close.
                            if res.top_stale != b {
                                res.top_stale = b;
                                self.stale_prefixes.push(prefix);
                            }
                        }
                        (false, false) => {}
                    }
                }
                let host = &mut self.hosts[h as usize];
                let dir = host.dir_mut(d);
                if dir.detail != NONE {
                    let id = dir.detail;
                    let detail = self.details[id as usize].as_mut().expect("live detail");
                    let slot = class_slot(&mut detail.ring, b);
                    slot.add(r, class, incoming, rh());
                    let evidence = slot.evidence.min(u64::from(u32::MAX)) as u32;
                    detail.fingerprint.observe(r, remote);
                    // An attack that started on evidence from one datagram or instant is
                    // confirmed as soon as more arrives, not at the bucket's close.
                    if let Some(attack) = detail.attack.as_mut() {
                        if attack.confirms_early(b, slot) {
                            self.early_confirms.push((h, d));
                        }
                    }
                    // The count can only grow within the bucket: once it crosses a static
                    // limit with enough evidence, waiting for the close only adds latency.
                    // Judged again as evidence grows by a quarter (ordinary traffic over the
                    // totals of the limits is judged a few times a bucket, not per record).
                    if !attacked
                        && t.samples >= self.config.min_samples
                        && (t.packets as f64 >= g.lowest_packets[d]
                            || t.bytes as f64 * 8.0 >= g.lowest_bits[d])
                        && (detail.early_bucket != b
                            || evidence >= detail.early_evidence + detail.early_evidence / 4)
                    {
                        detail.early_bucket = b;
                        detail.early_evidence = evidence;
                        self.early_starts.push((h, d));
                    }
                } else if t.samples >= self.watch_min_samples
                    && (t.packets as f32 >= dir.watch_packets
                        || t.bytes as f32 >= dir.watch_bytes
                        || t.samples >= self.groups[group as usize].watch_samples[d])
                    && self.details_live - self.attacks_live < self.config.max_watched
                {
                    let id = self.new_detail(Owner::Host(h), d);
                    let detail = self.details[id as usize].as_mut().expect("new detail");
                    class_slot(&mut detail.ring, b).add(r, class, incoming, rh());
                    detail.fingerprint.observe(r, remote);
                    // Whether this direction is answered needs the other one's classes too.
                    if self.hosts[h as usize].dir(1 - d).detail == NONE {
                        self.new_detail(Owner::Host(h), 1 - d);
                    }
                }
                self.hosts[h as usize].prefix
            }
            None => {
                self.stats.records_host_overflow += 1;
                match self.prefix_of(addr, group) {
                    Some(p) => p,
                    None => return,
                }
            }
        };
        let p = &mut self.prefixes[prefix as usize];
        if p.touched != b {
            p.touched = b;
            self.touched_prefixes.push(prefix);
        }
        let pd = &mut p.dirs[d];
        let t = tally_slot(&mut pd.ring, b);
        t.add(r);
        if pd.detail != NONE {
            // The incoming detail describes the residue (a carpet); the outgoing one only says
            // what the prefix answers.
            if !incoming || in_residue {
                let detail = self.details[pd.detail as usize]
                    .as_mut()
                    .expect("live detail");
                class_slot(&mut detail.ring, b).add(r, class, incoming, rh());
                if incoming {
                    detail.fingerprint.observe(r, remote);
                }
            }
        } else if incoming {
            // Infinite watch levels when carpet detection is off.
            let res = &p.residue;
            if t.samples >= self.watch_min_samples
                && (t.packets as f32 >= res.watch_packets || t.bytes as f32 >= res.watch_bytes)
                && self.details_live - self.attacks_live < self.config.max_watched
            {
                let id = self.new_detail(Owner::Prefix(prefix), d);
                if in_residue {
                    let detail = self.details[id as usize].as_mut().expect("new detail");
                    class_slot(&mut detail.ring, b).add(r, class, incoming, rh());
                    detail.fingerprint.observe(r, remote);
                }
                if self.prefixes[prefix as usize].dirs[OUT].detail == NONE {
                    self.new_detail(Owner::Prefix(prefix), OUT);
                }
            }
        }
    }
}

#[inline]
fn square(x: u64) -> u128 {
    u128::from(x) * u128::from(x)
}

/// A limit crossed at a bucket close: metric, value, limit, trigger kind.
type Crossing = (Metric, f64, f64, TriggerKind);

impl Engine {
    fn new_host(&mut self, addr: IpAddr, group: u16) -> Option<u32> {
        if self.host_index.len() >= self.config.max_hosts {
            return None;
        }
        let prefix = self.prefix_of(addr, group)?;
        self.prefixes[prefix as usize].hosts += 1;
        let g = &self.groups[group as usize];
        let dir = |d: usize| HostDir {
            ring: Default::default(),
            baseline: Baseline::default(),
            detail: NONE,
            watch_packets: g.watch_packets[d] as f32,
            watch_bytes: g.watch_bytes[d] as f32,
        };
        let host = Host {
            dir_in: dir(IN),
            touched: NO_BUCKET,
            evaluated: NO_BUCKET,
            prefix,
            group,
            dirs_touched: 0,
            dir_out: dir(OUT),
        };
        let idx = match self.free_hosts.pop() {
            Some(i) => {
                self.hosts[i as usize] = host;
                self.host_addrs[i as usize] = addr;
                i
            }
            None => {
                // Fault in the slab's next 2 MiB at once, before it is written entry by entry.
                const POPULATE_HOSTS: usize = (2 << 20) / std::mem::size_of::<Host>();
                if self.hosts.len().is_multiple_of(POPULATE_HOSTS) {
                    self.hosts.reserve(POPULATE_HOSTS);
                    let spare = self.hosts.spare_capacity_mut();
                    let n = spare.len().min(POPULATE_HOSTS);
                    crate::prefetch::populate(&mut spare[..n]);
                }
                self.hosts.push(host);
                self.host_addrs.push(addr);
                (self.hosts.len() - 1) as u32
            }
        };
        self.host_index.insert(Key::of(addr), idx);
        Some(idx)
    }

    /// The prefix entry of a monitored address, created on first use (at most `max_hosts`).
    fn prefix_of(&mut self, addr: IpAddr, group: u16) -> Option<u32> {
        let net = match addr {
            IpAddr::V4(a) => IpNet::V4(
                Ipv4Net::new(a, self.config.prefix_length_v4)
                    .expect("validated prefix length")
                    .trunc(),
            ),
            IpAddr::V6(a) => IpNet::V6(
                Ipv6Net::new(a, self.config.prefix_length_v6)
                    .expect("validated prefix length")
                    .trunc(),
            ),
        };
        if let Some(&p) = self.prefix_index.get(&net) {
            return Some(p);
        }
        if self.prefix_index.len() >= self.config.max_hosts {
            return None;
        }
        let c = &self.groups[group as usize].carpet;
        let mut residue = Residue::default();
        if c.enabled {
            residue.watch_packets = c.watch_packets as f32;
            residue.watch_bytes = c.watch_bytes as f32;
        }
        let prefix = Prefix {
            net,
            group,
            hosts: 0,
            touched: NO_BUCKET,
            evaluated: NO_BUCKET,
            live: true,
            dirs: Default::default(),
            residue,
        };
        let idx = match self.free_prefixes.pop() {
            Some(i) => {
                self.prefixes[i as usize] = prefix;
                i
            }
            None => {
                self.prefixes.push(prefix);
                (self.prefixes.len() - 1) as u32
            }
        };
        self.prefix_index.insert(net, idx);
        Some(idx)
    }

    fn new_detail(&mut self, owner: Owner, dir: usize) -> u32 {
        let detail = Detail {
            owner,
            dir,
            ring: Default::default(),
            fingerprint: FingerprintBuilder::new(),
            attack: None,
            idle: 0,
            early_evidence: 0,
            early_bucket: NO_BUCKET,
        };
        self.details_live += 1;
        let id = match self.free_details.pop() {
            Some(i) => {
                self.details[i as usize] = Some(detail);
                i
            }
            None => {
                self.details.push(Some(detail));
                (self.details.len() - 1) as u32
            }
        };
        match owner {
            Owner::Host(h) => self.hosts[h as usize].dir_mut(dir).detail = id,
            Owner::Prefix(p) => self.prefixes[p as usize].dirs[dir].detail = id,
        }
        id
    }

    fn free_detail(&mut self, id: u32) {
        if let Some(detail) = self.details[id as usize].take() {
            match detail.owner {
                Owner::Host(h) => self.hosts[h as usize].dir_mut(detail.dir).detail = NONE,
                Owner::Prefix(p) => self.prefixes[p as usize].dirs[detail.dir].detail = NONE,
            }
            self.details_live -= 1;
            self.free_details.push(id);
        }
    }

    /// The evidence window at bucket `b`: never reaching before the first bucket.
    fn window(&self, b: u32) -> u32 {
        self.config.evidence_window_s.min(b + 1)
    }

    /// Closes the open bucket: detection, lifecycle, eviction. Events come out sorted by
    /// direction and target.
    fn close_bucket(&mut self, events: &mut Vec<AttackEvent>) {
        let b = self.open;
        let base = self.base_bucket.expect("a bucket is open");
        let end_ms = (base + u64::from(b) + 1) * 1000;
        let start = events.len();

        // Hosts active per prefix and the largest one, for carpet bombing: kept at account time,
        // recounted here only when a host left the residue (its packets may be the top).
        if !self.stale_prefixes.is_empty() {
            self.recount_tops(b);
        }

        self.close_targets(b, end_ms, events);
        self.touched_hosts.clear();
        self.touched_prefixes.clear();
        sort_events(&mut events[start..]);

        if b >= self.last_sweep + 2 * self.config.quiet_period_s {
            self.sweep(b);
            self.last_sweep = b;
        }
    }

    /// Recounts the largest residual host of the prefixes in `stale_prefixes` (the other
    /// statistics are exact incrementally).
    fn recount_tops(&mut self, b: u32) {
        let mut stale = std::mem::take(&mut self.stale_prefixes);
        for &p in &stale {
            self.prefixes[p as usize].residue.top_host_packets = 0;
        }
        let few = stale.len() <= 8;
        for &(h, p) in &self.touched_hosts {
            let is_stale = if few {
                stale.contains(&p)
            } else {
                self.prefixes[p as usize].residue.top_stale == b
            };
            if !is_stale {
                continue;
            }
            let host = &self.hosts[h as usize];
            if host.dirs_touched & IN_RESIDUE == 0 {
                continue;
            }
            if let Some(t) = tally_at(&host.dir_in.ring, b) {
                let res = &mut self.prefixes[p as usize].residue;
                debug_assert_eq!(res.stat_bucket, b);
                res.top_host_packets = res.top_host_packets.max(t.packets);
            }
        }
        stale.clear();
        self.stale_prefixes = stale;
    }

    fn close_targets(&mut self, b: u32, end_ms: u64, events: &mut Vec<AttackEvent>) {
        // Prefixes first, then hosts: each stands on its own (a host attack inside a carpet is
        // reported as such, and its traffic is not the carpet's).
        let mut todo = std::mem::take(&mut self.scratch);
        todo.clear();
        todo.extend_from_slice(&self.touched_prefixes);
        todo.extend(self.details.iter().flatten().filter_map(|d| match d.owner {
            Owner::Prefix(p) => Some(p),
            Owner::Host(_) => None,
        }));
        for &p in &todo {
            if self.prefixes[p as usize].evaluated != b {
                self.prefixes[p as usize].evaluated = b;
                self.evaluate_prefix(p, b, end_ms, events);
            }
        }
        todo.clear();
        // Touched hosts below their evaluation floors only learn, lazily (`Host::learn_quiet`).
        todo.extend_from_slice(&self.eval_hosts);
        self.eval_hosts.clear();
        todo.extend(self.details.iter().flatten().filter_map(|d| match d.owner {
            Owner::Host(h) => Some(h),
            Owner::Prefix(_) => None,
        }));
        for (i, &h) in todo.iter().enumerate() {
            if let Some(&ahead) = todo.get(i + PREFETCH_AHEAD) {
                // The whole entry is read: baselines and rings of both directions.
                let host = &self.hosts[ahead as usize];
                prefetch(&host.evaluated);
                for dir in host.dirs() {
                    prefetch(&dir.ring[0]);
                    prefetch(&dir.ring[SLOTS - 1]);
                    prefetch(&dir.baseline);
                    prefetch(&dir.detail);
                }
            }
            if self.hosts[h as usize].evaluated != b {
                self.hosts[h as usize].evaluated = b;
                self.evaluate_host(h, b, end_ms, events);
            }
        }
        todo.clear();
        self.scratch = todo;
    }

    fn evaluate_prefix(&mut self, p: u32, b: u32, end_ms: u64, events: &mut Vec<AttackEvent>) {
        let window = self.window(b);
        // Carpet bombing is incoming only; outgoing prefix totals are accounting, not detection.
        let d = IN;
        let prefix = &mut self.prefixes[p as usize];
        let pd = &prefix.dirs[d];
        if tally_at(&pd.ring, b).is_none() && pd.detail == NONE {
            return;
        }
        let c = self.groups[prefix.group as usize].carpet;
        let learns = c.enabled && c.baseline;
        let res = &mut prefix.residue;
        if learns {
            // Silent buckets since the last close with traffic, before the levels are read.
            res.baseline.catch_up(b, &self.carpet_baseline);
        }
        let levels = c.levels(&res.baseline, &self.carpet_baseline);
        // Before the warm-up is over, a surge against what the prefix carried in its first
        // seconds (fewer than `SURGE_MIN_HISTORY_S` learnt: nothing to compare with).
        let early = if learns && levels.is_none() {
            res.baseline.levels_after(
                &self.carpet_baseline,
                SURGE_MIN_HISTORY_S,
                c.floor_pps,
                c.floor_bps,
            )
        } else {
            None
        };
        let (hosts, residual_packets, residual_bytes, residual_sq) = if res.stat_bucket == b {
            (
                res.hosts_active,
                res.residual_packets,
                res.residual_bytes,
                res.sq(),
            )
        } else {
            (0, 0, 0, 0)
        };
        let top_host_packets = res.top_host_packets;
        let pd = &self.prefixes[p as usize].dirs[d];
        let rates = Rates::compute(
            &pd.ring,
            self.detail_ring(pd.detail),
            self.reverse_of_prefix(p),
            b,
            window,
            self.config.min_samples,
        );
        let mut crossing = None;
        let total = tally_at(&pd.ring, b).copied().unwrap_or_default();
        let share = |part: u64, all: u64| {
            if all == 0 {
                0.0
            } else {
                part as f64 / all as f64
            }
        };
        // The residue's shares of the prefix's packets and bytes in this bucket.
        let shares = (
            share(residual_packets, total.packets),
            share(residual_bytes, total.bytes),
        );
        // `confident`: the evidence rule (`min_samples` over the window) holds for the baseline
        // levels as for the static limits, so sparse samples never alarm on a quiet prefix.
        if c.enabled && rates.confident {
            // Many hosts must carry the residue, not merely have some traffic: a download or
            // two among a /24 of quiet subscribers is not a carpet. The effective number of
            // hosts (inverse Simpson index of their packets) counts hosts by their share.
            let effective_hosts = if residual_sq == 0 {
                0.0
            } else {
                square(residual_packets) as f64 / residual_sq as f64
            };
            let spread = residual_packets > 0
                && (top_host_packets as f64) <= c.max_host_share * residual_packets as f64
                && effective_hosts >= f64::from(c.min_hosts);
            if hosts >= c.min_hosts && spread {
                crossing = carpet_crossing(&c, levels.or(early), levels.is_some(), &rates, shares);
            }
        }
        // The carpet is its residue: its rates, and the unexplained rates its lifecycle follows.
        let rates = rates.scaled(
            shares,
            (residual_packets as f64, residual_bytes as f64 * 8.0),
        );
        let watch = {
            let res = &self.prefixes[p as usize].residue;
            (f64::from(res.watch_packets), f64::from(res.watch_bytes))
        };
        let active = self.step_target(
            Owner::Prefix(p),
            d,
            &rates,
            crossing,
            watch,
            b,
            end_ms,
            events,
        );
        let res = &mut self.prefixes[p as usize].residue;
        // The carpet's highest rate per host so far: a host still carrying it as it fades (its
        // rates averaged over the evidence window) is not an attack of its own either.
        (res.carpet_host_pps, res.carpet_host_bps) = if active {
            let n = f64::from(hosts.max(1));
            (
                res.carpet_host_pps
                    .max((residual_packets as f64 / n) as f32),
                res.carpet_host_bps
                    .max((residual_bytes as f64 * 8.0 / n) as f32),
            )
        } else {
            (0.0, 0.0)
        };
        if learns {
            let res = &mut self.prefixes[p as usize].residue;
            let baseline = &mut res.baseline;
            if active || crossing.is_some() {
                // Never learn an attack as normal.
                baseline.skip(b);
            } else {
                let (pps, bps) = (residual_packets as f64, residual_bytes as f64 * 8.0);
                baseline.learn(b, pps, bps, &self.carpet_baseline);
            }
            // The watch follows the lowest limit that can trigger, so a quiet prefix has its
            // fingerprint from the first bucket of a surge.
            let (lp, lm) = c.lowest(c.levels(baseline, &self.carpet_baseline));
            let r = self.config.watch_ratio;
            res.watch_packets = (lp * r) as f32;
            res.watch_bytes = (lm * r * 1e6 / 8.0) as f32;
        }
    }

    /// Rates, crossing of its limits (static, class, baseline) and the rates the attack
    /// lifecycle follows, for host `h` in direction `d` at bucket `b`.
    fn judge_host(&self, h: u32, d: usize, b: u32, window: u32) -> (Rates, Option<Crossing>) {
        let host = &self.hosts[h as usize];
        let dir = host.dir(d);
        let limits = &self.groups[host.group as usize].limits[d];
        let (classes, reverse) = (self.detail_ring(dir.detail), self.reverse_of_host(h, d));
        let min_samples = self.config.min_samples;
        let rates = Rates::compute(&dir.ring, classes, reverse, b, window, min_samples);
        let mut crossing =
            static_trigger(limits, &rates).map(|(m, v, l)| (m, v, l, TriggerKind::Threshold));
        let over = Metric::ALL
            .iter()
            .any(|&m| rates.values[m as usize] >= limits[m as usize]);
        if crossing.is_none() && over && rates.span < window {
            // One bucket's samples may be too few to tell its crossing from sampling noise: a
            // flood near a limit under heavy sampling is evident over the evidence window
            // (only a bucket over a limit looks back, so an attack's end is not held up).
            let first = b + 1 - window;
            let wide = Rates::compute_over(&dir.ring, classes, reverse, first, b, min_samples);
            crossing =
                static_trigger(limits, &wide).map(|(m, v, l)| (m, v, l, TriggerKind::Threshold));
        }
        if crossing.is_none() {
            if let Some(levels) = dir.baseline.levels(&self.baseline) {
                // A quiet host's level is a few samples a second: only a crossing that
                // sampling noise cannot explain counts; and the rise must be traffic its
                // ordinary traffic does not explain (a download on a quiet host is not an
                // attack).
                let (pps, bps) = (rates.total_pps, rates.total_bps);
                let (u_pps, u_bps) = (rates.pps(), rates.values[Metric::Mbps as usize] * 1e6);
                let evidence = rates.evidence as u64;
                if significantly_above(pps, levels.pps, evidence)
                    && u_pps >= SURGE_UNEXPLAINED * (pps - levels.mean_pps)
                {
                    crossing = Some((Metric::Pps, pps, levels.pps, TriggerKind::Baseline));
                } else if significantly_above(bps, levels.bps, evidence)
                    && u_bps >= SURGE_UNEXPLAINED * (bps - levels.mean_bps)
                {
                    crossing = Some((
                        Metric::Mbps,
                        bps / 1e6,
                        levels.bps / 1e6,
                        TriggerKind::Baseline,
                    ));
                }
            }
        }
        let in_carpet = |(m, ..): Crossing| d == IN && self.part_of_carpet(h, &rates, m);
        if !rates.confident || crossing.is_some_and(in_carpet) {
            crossing = None;
        }
        (rates, crossing)
    }

    /// Whether host `h`'s open-bucket `rates` are no more than `STAND_OUT` × the mean per host
    /// of its prefix's residue so far, which many hosts carry (it may be a carpet's).
    fn share_of_spread_residue(&self, h: u32, rates: &Rates) -> bool {
        let prefix = &self.prefixes[self.hosts[h as usize].prefix as usize];
        let res = &prefix.residue;
        let c = &self.groups[prefix.group as usize].carpet;
        if !c.enabled || res.stat_bucket != self.open || res.hosts_active == 0 {
            return false;
        }
        let sq = res.sq();
        let effective = if sq == 0 {
            0.0
        } else {
            square(res.residual_packets) as f64 / sq as f64
        };
        let mean = res.residual_packets as f64 / f64::from(res.hosts_active);
        effective >= f64::from(c.min_hosts) && rates.total_pps < STAND_OUT * mean
    }

    /// Whether host `h`'s incoming traffic `rates`, crossing `metric`, is its share of a
    /// carpet attack on its prefix rather than an attack of its own: no more than `STAND_OUT` ×
    /// the carpet's rate per host, on a metric the carpet's vectors already account for (a SYN
    /// flood at one host inside a UDP carpet stands out by its kind).
    fn part_of_carpet(&self, h: u32, rates: &Rates, metric: Metric) -> bool {
        let prefix = &self.prefixes[self.hosts[h as usize].prefix as usize];
        let res = &prefix.residue;
        if res.carpet_host_pps <= 0.0 {
            return false;
        }
        let carpet = self
            .details
            .get(prefix.dirs[IN].detail as usize)
            .and_then(|x| x.as_ref())
            .and_then(|x| x.attack.as_ref());
        let Some(carpet) = carpet else {
            return false;
        };
        let vectors = carpet.vectors();
        let has = |f: fn(Vector) -> bool| vectors.iter().any(|v| f(*v));
        let same_kind = match metric {
            Metric::Pps | Metric::Mbps | Metric::FlowsPerS => true,
            Metric::SynPps => has(|v| v == Vector::SynFlood),
            Metric::AckPps => has(|v| v == Vector::AckFlood),
            Metric::RstPps => has(|v| v == Vector::RstFlood),
            Metric::TcpPps | Metric::TcpMbps => has(|v| {
                matches!(
                    v,
                    Vector::SynFlood | Vector::AckFlood | Vector::RstFlood | Vector::TcpFlood
                )
            }),
            Metric::UdpPps | Metric::UdpMbps => {
                has(|v| v == Vector::UdpFlood || v.is_amplification())
            }
            Metric::IcmpPps | Metric::IcmpMbps => has(|v| v == Vector::IcmpFlood),
            Metric::GrePps | Metric::GreMbps => has(|v| v == Vector::GreFlood),
            Metric::FragmentPps | Metric::FragmentMbps => has(|v| v == Vector::FragmentFlood),
            Metric::AmplificationPps | Metric::AmplificationMbps => has(Vector::is_amplification),
        };
        same_kind
            && rates.total_pps < STAND_OUT * f64::from(res.carpet_host_pps)
            && rates.total_bps < STAND_OUT * f64::from(res.carpet_host_bps)
    }

    fn evaluate_host(&mut self, h: u32, b: u32, end_ms: u64, events: &mut Vec<AttackEvent>) {
        let window = self.window(b);
        for d in [IN, OUT] {
            let host = &mut self.hosts[h as usize];
            let group = host.group as usize;
            let dir = host.dir_mut(d);
            if tally_at(&dir.ring, b).is_none() && dir.detail == NONE {
                continue;
            }
            dir.baseline.catch_up(b, &self.baseline);
            let g = &self.groups[group];
            if dir.detail == NONE {
                // Fast path for the many quiet hosts: below every watch level nothing can cross
                // (each limit is at least watch level / watch_ratio), so only learn.
                let (wp, wb) = watch_levels(g, d, &dir.baseline, &self.baseline, &self.config);
                let t = tally_at(&dir.ring, b).copied().unwrap_or_default();
                if (t.packets as f64) < wp
                    && (t.bytes as f64) < wb
                    && t.samples < g.watch_samples[d]
                {
                    let (pps, bps) = (t.packets as f64, t.bytes as f64 * 8.0);
                    dir.baseline.learn(b, pps, bps, &self.baseline);
                    let (wp, wb) = watch_levels(g, d, &dir.baseline, &self.baseline, &self.config);
                    dir.watch_packets = wp as f32;
                    dir.watch_bytes = wb as f32;
                    continue;
                }
            }
            let watch = (f64::from(dir.watch_packets), f64::from(dir.watch_bytes));
            let (rates, crossing) = self.judge_host(h, d, b, window);
            let active = self.step_target(
                Owner::Host(h),
                d,
                &rates,
                crossing,
                watch,
                b,
                end_ms,
                events,
            );

            let dir = self.hosts[h as usize].dir_mut(d);
            if active || crossing.is_some() {
                dir.baseline.skip(b);
            } else {
                dir.baseline
                    .learn(b, rates.bucket_pps, rates.bucket_bps, &self.baseline);
            }
            let g = &self.groups[group];
            let (wp, wb) = watch_levels(g, d, &dir.baseline, &self.baseline, &self.config);
            dir.watch_packets = wp as f32;
            dir.watch_bytes = wb as f32;
        }
    }

    /// Whether bucket `b` alone still carried the attack of `owner` in direction `d`, whose
    /// trigger metric must stay at `end_level` (`rates` may average the evidence window).
    fn bucket_hot(
        &self,
        owner: Owner,
        d: usize,
        rates: &Rates,
        metric: Metric,
        end_level: f64,
        b: u32,
    ) -> bool {
        if rates.span == 1 {
            let value = rates.values[metric as usize];
            return value >= end_level
                && significantly_above_by(
                    value,
                    end_level,
                    rates.evidence_of(metric),
                    HOT_EVIDENCE_NATS,
                );
        }
        let (ring, detail, reverse) = match owner {
            Owner::Host(h) => {
                let dir = self.hosts[h as usize].dir(d);
                (&dir.ring, dir.detail, self.reverse_of_host(h, d))
            }
            Owner::Prefix(p) => {
                let pd = &self.prefixes[p as usize].dirs[d];
                (&pd.ring, pd.detail, self.reverse_of_prefix(p))
            }
        };
        if tally_at(ring, b).is_none() {
            return false;
        }
        let alone = Rates::compute_over(ring, self.detail_ring(detail), reverse, b, b, 1);
        // Beyond sampling noise: under heavy sampling one ordinary sample is far over any level.
        let value = alone.values[metric as usize];
        value >= end_level
            && significantly_above_by(
                value,
                end_level,
                alone.evidence_of(metric),
                STATIC_EVIDENCE_NATS,
            )
    }

    /// One bucket of one target and direction: continue or end its attack, start one, or keep
    /// or drop its watch. Returns whether an attack is active afterwards.
    #[allow(clippy::too_many_arguments)]
    fn step_target(
        &mut self,
        owner: Owner,
        d: usize,
        rates: &Rates,
        crossing: Option<Crossing>,
        (watch_packets, watch_bytes): (f64, f64),
        b: u32,
        end_ms: u64,
        events: &mut Vec<AttackEvent>,
    ) -> bool {
        let (mut det, group, target, carpet) = match owner {
            Owner::Host(h) => {
                let host = &self.hosts[h as usize];
                let addr = self.host_addrs[h as usize];
                let len = if addr.is_ipv4() { 32 } else { 128 };
                (
                    host.dir(d).detail,
                    host.group as usize,
                    IpNet::new(addr, len).expect("host prefix length"),
                    false,
                )
            }
            Owner::Prefix(p) => {
                let prefix = &self.prefixes[p as usize];
                (
                    prefix.dirs[d].detail,
                    prefix.group as usize,
                    prefix.net,
                    true,
                )
            }
        };
        let (bucket_bps, bucket_pps) = (rates.bucket_bps as u64, rates.bucket_pps as u64);
        let hot_alone = (det != NONE)
            .then(|| self.details[det as usize].as_ref())
            .flatten()
            .and_then(|x| x.attack.as_ref())
            .map(|a| a.end())
            .map(|(metric, level)| self.bucket_hot(owner, d, rates, metric, level, b));
        if det != NONE {
            let detail = self.details[det as usize].as_mut().expect("live detail");
            detail.fingerprint.bucket_rates(bucket_bps, bucket_pps);
            if let Some(attack) = detail.attack.as_mut() {
                let sources = detail.fingerprint.distinct_remotes();
                let step = attack.step(
                    rates,
                    Some(&detail.ring[b as usize % SLOTS]),
                    crossing.is_some(),
                    hot_alone.unwrap_or(false),
                    sources,
                    b,
                    end_ms,
                    &self.lifecycle,
                    &detail.fingerprint,
                    &self.groups[group].name,
                    events,
                );
                return match step {
                    Step::Continue => true,
                    Step::Ended => {
                        let attack = detail.attack.take().expect("active");
                        events.push(attack.event(
                            EventKind::AttackEnded,
                            end_ms,
                            &detail.fingerprint,
                            &self.groups[group].name,
                        ));
                        self.attacks_live -= 1;
                        self.free_detail(det);
                        if let Owner::Prefix(p) = owner {
                            let out = self.prefixes[p as usize].dirs[OUT].detail;
                            if out != NONE {
                                self.free_detail(out);
                            }
                        }
                        false
                    }
                };
            }
        }
        match crossing {
            Some((metric, value, limit, kind)) => {
                if det == NONE {
                    det = self.new_detail(owner, d);
                    let detail = self.details[det as usize].as_mut().expect("new detail");
                    detail.fingerprint.bucket_rates(bucket_bps, bucket_pps);
                }
                let detail = self.details[det as usize].as_mut().expect("live detail");
                let slot = &detail.ring[b as usize % SLOTS];
                let first_ms = if slot.bucket == b {
                    slot.first_ms
                } else {
                    u64::MAX
                };
                let mut attack = Attack::start(
                    Start {
                        first_ms,
                        direction: DIRECTIONS[d],
                        target,
                        carpet,
                        trigger: Trigger {
                            kind,
                            metric,
                            value,
                            limit,
                        },
                        metric,
                    },
                    rates,
                    (b, end_ms),
                    &self.lifecycle,
                    Some(slot),
                    &detail.fingerprint,
                );
                attack.set_sources(detail.fingerprint.distinct_remotes());
                events.push(attack.event(
                    EventKind::AttackStarted,
                    end_ms,
                    &detail.fingerprint,
                    &self.groups[group].name,
                ));
                debug_assert_eq!(attack.is_carpet(), carpet);
                detail.attack = Some(attack);
                detail.idle = 0;
                self.attacks_live += 1;
                true
            }
            None => {
                if det != NONE {
                    let detail = self.details[det as usize].as_mut().expect("live detail");
                    // What it carried until now is the target's ordinary traffic.
                    detail.fingerprint.mark_before();
                    let below =
                        rates.bucket_pps < watch_packets && rates.bucket_bps / 8.0 < watch_bytes;
                    detail.idle = if below { detail.idle + 1 } else { 0 };
                    if detail.idle >= self.config.quiet_period_s {
                        self.release_watch(owner, d, det);
                    }
                }
                false
            }
        }
    }

    /// Drops the idle watch `det` of `owner` in direction `d` together with its other
    /// direction's (kept for telling answered traffic apart), once that one is idle too.
    fn release_watch(&mut self, owner: Owner, d: usize, det: u32) {
        let partner = match owner {
            Owner::Host(h) => self.hosts[h as usize].dir(1 - d).detail,
            // The outgoing watch of a prefix only serves its incoming one.
            Owner::Prefix(p) => self.prefixes[p as usize].dirs[OUT].detail,
        };
        let partner_idle = match self.details.get(partner as usize).and_then(|x| x.as_ref()) {
            None => true,
            Some(x) => {
                x.attack.is_none()
                    && (matches!(owner, Owner::Prefix(_)) || x.idle >= self.config.quiet_period_s)
            }
        };
        if partner_idle {
            self.free_detail(det);
            if partner != NONE && partner != det {
                self.free_detail(partner);
            }
        }
    }

    /// Forgets idle hosts (after 2 × quiet period once their baseline is at the floors, or after
    /// `host_idle_timeout_s`) and prefixes without hosts.
    fn sweep(&mut self, b: u32) {
        let short = 2 * self.config.quiet_period_s;
        let long = self.config.host_idle_timeout_s;
        for i in 0..self.hosts.len() {
            let host = &mut self.hosts[i];
            if host.prefix == NONE {
                continue;
            }
            let idle = b.saturating_sub(host.touched);
            if idle < short || host.dirs().iter().any(|d| d.detail != NONE) {
                continue;
            }
            if host.learn_pending() {
                let g = &self.groups[host.group as usize];
                host.learn_quiet(g, &self.baseline, &self.config);
            }
            let params = &self.baseline;
            let forget = idle >= long
                || host.dirs_mut().into_iter().all(|d| {
                    d.baseline.catch_up(b, params);
                    d.baseline.negligible(params)
                });
            if forget {
                self.host_index.remove(Key::of(self.host_addrs[i]));
                self.prefixes[host.prefix as usize].hosts -= 1;
                host.prefix = NONE;
                self.free_hosts.push(i as u32);
                self.stats.hosts_evicted += 1;
            }
        }
        for i in 0..self.prefixes.len() {
            let prefix = &mut self.prefixes[i];
            let idle = b.saturating_sub(prefix.touched);
            if !prefix.live
                || prefix.hosts != 0
                || idle < short
                || prefix.dirs.iter().any(|d| d.detail != NONE)
            {
                continue;
            }
            // The residue baseline outlives the hosts (each may be negligible alone while their
            // sum is not), like a host's baseline, up to `host_idle_timeout_s`.
            let c = &self.groups[prefix.group as usize].carpet;
            let forget = idle >= long || {
                let params = &self.carpet_baseline;
                let baseline = &mut prefix.residue.baseline;
                baseline.catch_up(b, params);
                baseline.negligible_below(params, c.floor_pps, c.floor_bps)
            };
            if forget {
                self.prefix_index.remove(&prefix.net);
                prefix.live = false;
                self.free_prefixes.push(i as u32);
            }
        }
    }
}

fn sort_events(events: &mut [AttackEvent]) {
    events.sort_by_key(|e| (e.direction, e.target));
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
