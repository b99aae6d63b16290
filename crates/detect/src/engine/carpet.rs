//! Carpet bombing: a prefix flooded host by host, each below its own limits. Its residue (the
//! traffic of hosts not under attack on their own) is kept per bucket as records arrive and
//! judged at the close against static limits, ceilings and the prefix's learnt level; hosts
//! that merely carry their share of an active carpet are not attacks of their own.

use crate::baseline::{significantly_above, significantly_above_by, Levels, STATIC_EVIDENCE_NATS};
use crate::counters::{pk, tally_at, Rates};
use crate::event::TriggerKind;
use crate::vocab::{Metric, Vector};
use crate::AttackEvent;

use super::entries::{Owner, IN_RESIDUE};
use super::limits::CarpetLimits;
use super::residue::square;
use super::{Crossing, Engine, IN, NONE, SURGE_UNEXPLAINED};

/// Seconds a prefix must have learnt before a surge against them is a carpet during its warm-up.
const SURGE_MIN_HISTORY_S: u32 = 30;

/// Share of a prefix's residue its attack-shaped part must have to be a carpet on its shape.
const DOMINANT_RESIDUE: f64 = 0.5;

/// How far above a carpet's rate per host a host in it must be to be an attack of its own.
const STAND_OUT: f64 = 4.0;

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
    /// Recounts the largest residual host of the prefixes in `stale_prefixes` (the other
    /// statistics are exact incrementally).
    pub(super) fn recount_tops(&mut self, b: u32) {
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

    pub(super) fn evaluate_prefix(
        &mut self,
        p: u32,
        b: u32,
        end_ms: u64,
        events: &mut Vec<AttackEvent>,
    ) {
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

    /// Whether host `h`'s open-bucket `rates` are no more than `STAND_OUT` × the mean per host
    /// of its prefix's residue so far, which many hosts carry (it may be a carpet's).
    pub(super) fn share_of_spread_residue(&self, h: u32, rates: &Rates) -> bool {
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
    pub(super) fn part_of_carpet(&self, h: u32, rates: &Rates, metric: Metric) -> bool {
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
}
