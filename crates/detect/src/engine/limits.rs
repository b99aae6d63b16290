//! The configuration resolved once per hostgroup: the layered limits (built-in, top-level,
//! hostgroup) as one array per direction, the watch levels derived from them and the
//! carpet-bombing limits, so the record path and the bucket close read numbers, not options.

use crate::baseline::{
    significantly_above_by, Baseline, BaselineParams, Levels, STATIC_EVIDENCE_NATS,
    WATCH_EVIDENCE_NATS,
};
use crate::config::{CarpetConfig, CarpetThresholds, Thresholds};
use crate::counters::{Tally, INSTANT_MS};
use crate::vocab::{Metric, METRICS};
use crate::DetectConfig;

use super::{IN, OUT};

/// Carpet-bombing limits resolved for one hostgroup (`f64::INFINITY` = disabled).
#[derive(Debug, Clone, Copy)]
pub(super) struct CarpetLimits {
    pub(super) enabled: bool,
    pub(super) min_hosts: u32,
    pub(super) max_host_share: f64,
    /// Static residue limits: the limits of a prefix without a warmed-up baseline.
    pub(super) pps: f64,
    pub(super) mbps: f64,
    /// Whether prefixes learn a residue baseline.
    pub(super) baseline: bool,
    /// Floors of the baseline alarm levels (packets/s, bits/s).
    pub(super) floor_pps: f64,
    pub(super) floor_bps: f64,
    /// Ceilings (never below the static limits): a baseline never raises the limits above them.
    pub(super) max_pps: f64,
    pub(super) max_mbps: f64,
    /// Watch levels of a prefix without a warmed-up baseline (`watch_ratio` × static limits).
    pub(super) watch_packets: f64,
    pub(super) watch_bytes: f64,
}

impl CarpetLimits {
    /// The lowest residue limits (packets/s, megabits/s) that can trigger, for the watch: the
    /// static ones, the ceilings, and the baseline's `levels` when there are some.
    pub(super) fn lowest(&self, levels: Option<Levels>) -> (f64, f64) {
        let (mut p, mut m) = (self.pps.min(self.max_pps), self.mbps.min(self.max_mbps));
        if let Some(l) = levels {
            p = p.min(l.pps);
            m = m.min(l.bps / 1e6);
        }
        (p, m)
    }

    /// The levels of a prefix's residue baseline, when it learns one and has warmed up.
    pub(super) fn levels(&self, baseline: &Baseline, params: &BaselineParams) -> Option<Levels> {
        if self.enabled && self.baseline {
            baseline.levels_above(params, self.floor_pps, self.floor_bps)
        } else {
            None
        }
    }
}

/// Per-hostgroup totals of one direction.
#[derive(Debug, Clone, Default)]
pub(super) struct GroupTotals {
    pub(super) current: Tally,
    pub(super) last: Tally,
}

/// A hostgroup with its resolved limits (`f64::INFINITY` = disabled).
#[derive(Debug, Clone)]
pub(super) struct Group {
    pub(super) name: String,
    pub(super) limits: [[f64; METRICS]; 2],
    pub(super) watch_packets: [f64; 2],
    pub(super) watch_bytes: [f64; 2],
    pub(super) watch_samples: [u32; 2],
    /// The lowest running-bucket packets / bytes at which a host direction without a detail can
    /// leave the quiet fast path at a bucket close, whatever its baseline: `watch_packets` /
    /// `watch_bytes` capped by `watch_ratio` × the baseline floors (alarm levels never go below
    /// them). Hosts whose bucket stays below these (and below `watch_samples`) only learn.
    pub(super) floor_packets: [f64; 2],
    pub(super) floor_bytes: [f64; 2],
    /// The lowest packets/s and bits/s limits: a running bucket below both crosses nothing.
    pub(super) lowest_packets: [f64; 2],
    pub(super) lowest_bits: [f64; 2],
    pub(super) carpet: CarpetLimits,
    pub(super) totals: [GroupTotals; 2],
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

pub(super) fn resolve_group(
    config: &DetectConfig,
    name: &str,
    incoming: Option<&Thresholds>,
    outgoing: Option<&Thresholds>,
    carpet: Option<&CarpetThresholds>,
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
#[inline]
pub(super) fn watch_levels(
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

/// Whether a bucket's `packets` or `bytes`, measured from `evidence` sampled packets, is over the
/// watch level by more than sampling noise (see [`WATCH_EVIDENCE_NATS`]); or, `elapsed` (0..=1)
/// of the way into a running bucket, over the level's share of that time by more than a static
/// limit's noise (see [`STATIC_EVIDENCE_NATS`]): a flood is watched from its first samples, so
/// its evidence and fingerprint are whole when it starts, while a target's few samples of a
/// second stay unwatched wherever they fall. At a close `elapsed` is 1.
#[inline]
pub(super) fn over_watch(
    (packets, bytes): (f64, f64),
    evidence: u64,
    (watch_packets, watch_bytes): (f64, f64),
    elapsed: f64,
) -> bool {
    let over = |value: f64, level: f64| {
        (value >= level && significantly_above_by(value, level, evidence, WATCH_EVIDENCE_NATS))
            || (elapsed < 1.0 && {
                let so_far = level * elapsed;
                value >= so_far
                    && significantly_above_by(value, so_far, evidence, STATIC_EVIDENCE_NATS)
            })
    };
    over(packets, watch_packets) || over(bytes, watch_bytes)
}

/// How far into its bucket the clock is, for [`over_watch`]: never less than one instant (10
/// ms), where a burst of one datagram would otherwise look like any rate.
#[inline]
fn bucket_elapsed(clock_ms: u64) -> f64 {
    (clock_ms % 1000).max(INSTANT_MS) as f64 / 1000.0
}

/// Sampled packets behind a running bucket's tally, from one of its records' sampling rate (a
/// target's records share their exporter's rate): one per sample, every packet of unsampled
/// flows. Never fewer than the records.
#[inline]
fn tally_evidence(t: &Tally, sampling_rate: u32) -> u64 {
    (t.packets / u64::from(sampling_rate.max(1))).max(u64::from(t.samples))
}

/// Whether the open bucket's tally `t` of an unwatched target, its records sampled at
/// `sampling_rate`, is over its watch levels `(packets, bytes)` by more than sampling noise so
/// far, the engine's clock at `clock_ms` (see [`over_watch`]).
#[inline]
pub(super) fn running_over_watch(
    t: &Tally,
    sampling_rate: u32,
    (watch_packets, watch_bytes): (f32, f32),
    clock_ms: u64,
) -> bool {
    over_watch(
        (t.packets as f64, t.bytes as f64),
        tally_evidence(t, sampling_rate),
        (f64::from(watch_packets), f64::from(watch_bytes)),
        bucket_elapsed(clock_ms),
    )
}

/// One hostgroup's limits as the engine applies them: each field of the group, else the
/// top-level `incoming`/`outgoing`/`carpet`, else the built-in default; a limit of 0 or less
/// is off (absent here).
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct EffectiveLimits {
    pub hostgroup: String,
    /// The group's networks (`default`: the monitored networks outside every group).
    pub networks: Vec<ipnet::IpNet>,
    /// Limits by metric name (`pps`, `mbps`, `syn_pps`, …).
    pub incoming: std::collections::BTreeMap<String, f64>,
    pub outgoing: std::collections::BTreeMap<String, f64>,
    /// Carpet bombing of the group's prefixes (absent when carpet detection is off).
    pub carpet: Option<CarpetThresholds>,
}

/// The limits of the `default` group and of every configured hostgroup.
pub fn effective_limits(config: &DetectConfig) -> Vec<EffectiveLimits> {
    let named = |l: [f64; METRICS]| {
        Metric::ALL
            .iter()
            .filter(|m| l[**m as usize].is_finite())
            .map(|m| (m.name().to_string(), l[*m as usize]))
            .collect()
    };
    let carpet = |over: Option<&CarpetThresholds>| {
        let c = &config.carpet;
        let o = over.cloned().unwrap_or_default();
        c.enabled.then(|| CarpetThresholds {
            min_hosts: o.min_hosts.or(Some(c.min_hosts)),
            max_host_share: o.max_host_share.or(Some(c.max_host_share)),
            pps: o.pps.or(Some(c.pps)),
            mbps: o.mbps.or(Some(c.mbps)),
            baseline: o.baseline.or(Some(c.baseline)),
            baseline_min_pps: o.baseline_min_pps.or(Some(c.baseline_min_pps)),
            baseline_min_mbps: o.baseline_min_mbps.or(Some(c.baseline_min_mbps)),
            max_pps: o.max_pps.or(Some(c.max_pps)),
            max_mbps: o.max_mbps.or(Some(c.max_mbps)),
        })
    };
    let mut out = vec![EffectiveLimits {
        hostgroup: "default".into(),
        networks: config.networks.clone(),
        incoming: named(resolve_limits(
            &Thresholds::builtin_incoming(),
            &config.incoming,
            None,
        )),
        outgoing: named(resolve_limits(
            &Thresholds::builtin_outgoing(),
            &config.outgoing,
            None,
        )),
        carpet: carpet(None),
    }];
    for g in &config.hostgroups {
        out.push(EffectiveLimits {
            hostgroup: g.name.clone(),
            networks: g.networks.clone(),
            incoming: named(resolve_limits(
                &Thresholds::builtin_incoming(),
                &config.incoming,
                Some(&g.incoming),
            )),
            outgoing: named(resolve_limits(
                &Thresholds::builtin_outgoing(),
                &config.outgoing,
                Some(&g.outgoing),
            )),
            carpet: carpet(g.carpet.as_ref()),
        });
    }
    out
}
