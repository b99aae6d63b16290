//! A bucket's close: the targets it must judge (prefixes first, then hosts), and the host
//! decisions: static limits (over the evidence window when a bucket's samples are too few) and
//! the per-host baseline, each beyond sampling noise.

use crate::baseline::{significantly_above, significantly_above_by, STATIC_EVIDENCE_NATS};
use crate::counters::{tally_at, Rates, SLOTS};
use crate::event::TriggerKind;
use crate::prefetch::prefetch;
use crate::vocab::{Metric, METRICS};
use crate::AttackEvent;

use super::entries::{Detail, Host, Owner};
use super::ingest::PREFETCH_AHEAD;
use super::limits::watch_levels;
use super::{sort_events, Crossing, Engine, IN, NONE, OUT, SURGE_UNEXPLAINED};

/// The static limit crossed furthest (by value / limit) by more than sampling noise (see
/// `STATIC_EVIDENCE_NATS`). Class metrics count only when known.
pub(super) fn static_trigger(limits: &[f64; METRICS], rates: &Rates) -> Option<(Metric, f64, f64)> {
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

/// Bytes of host entries and watched targets' details a bucket may touch for them to stay in
/// cache (a quarter of this machine class's L3): ingest then skips its prefetch stages.
const CACHE_RESIDENT_BYTES: usize = 8 << 20;

impl Engine {
    /// Closes the open bucket: detection, lifecycle, eviction. Events come out sorted by
    /// direction and target.
    pub(super) fn close_bucket(&mut self, events: &mut Vec<AttackEvent>) {
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
        let working_set = self.touched_hosts.len() * (size_of::<Host>() + size_of::<u64>())
            + self.details_live * size_of::<Detail>();
        self.cache_resident = self
            .force_cache_resident
            .unwrap_or(working_set <= CACHE_RESIDENT_BYTES);
        self.touched_hosts.clear();
        self.touched_prefixes.clear();
        sort_events(&mut events[start..]);

        if b >= self.last_sweep + 2 * self.config.quiet_period_s {
            self.sweep(b);
            self.last_sweep = b;
        }
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
                self.offer_top_prefix(p, b);
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
            if let Some(&ahead) = todo.get(i + PREFETCH_AHEAD / 2) {
                // Its details were fetched below: now the fingerprints they will mark.
                for dir in self.hosts[ahead as usize].dirs() {
                    if let Some(Some(detail)) = self.details.get(dir.detail as usize) {
                        detail.fingerprint.prefetch_mark();
                    }
                }
            }
            if let Some(&ahead) = todo.get(i + PREFETCH_AHEAD) {
                // The whole entry is read: baselines and rings of both directions.
                let host = &self.hosts[ahead as usize];
                prefetch(&host.evaluated);
                for dir in host.dirs() {
                    prefetch(&dir.ring[0]);
                    prefetch(&dir.ring[SLOTS - 1]);
                    prefetch(&dir.baseline);
                    prefetch(&dir.detail);
                    // The detail's fingerprint box, read a few hosts later.
                    if let Some(Some(detail)) = self.details.get(dir.detail as usize) {
                        prefetch(&detail.fingerprint);
                    }
                }
            }
            if self.hosts[h as usize].evaluated != b {
                self.hosts[h as usize].evaluated = b;
                self.evaluate_host(h, b, end_ms, events);
                self.offer_top_host(h, b);
            }
        }
        todo.clear();
        self.scratch = todo;
        self.finish_top(end_ms);
    }

    pub(super) fn evaluate_host(
        &mut self,
        h: u32,
        b: u32,
        end_ms: u64,
        events: &mut Vec<AttackEvent>,
    ) {
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
            if dir.detail != NONE && self.quiet_watch(h, d, b, window) {
                // Watched without an attack and below every limit in total: no limit can be
                // crossed.
                let dir = self.hosts[h as usize].dir(d);
                let t = tally_at(&dir.ring, b).copied().unwrap_or_default();
                self.close_quiet_watch(h, d, b, t, watch);
                let dir = self.hosts[h as usize].dir_mut(d);
                dir.baseline
                    .learn(b, t.packets as f64, t.bytes as f64 * 8.0, &self.baseline);
                let g = &self.groups[group];
                let (wp, wb) = watch_levels(g, d, &dir.baseline, &self.baseline, &self.config);
                dir.watch_packets = wp as f32;
                dir.watch_bytes = wb as f32;
                continue;
            }
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

    /// Whether host `h`'s watched direction `d` has no attack and its total rates, over the
    /// span `judge_host` would take, stay below every limit it could cross: each static limit
    /// (every per-class rate is a part of the total) and its baseline's levels. Then nothing can
    /// cross, and the class rates need not be computed: a busy network's hosts hovering over
    /// their watch levels cost a few additions per close, not a class mix.
    fn quiet_watch(&self, h: u32, d: usize, b: u32, window: u32) -> bool {
        let host = &self.hosts[h as usize];
        let dir = host.dir(d);
        if self
            .details
            .get(dir.detail as usize)
            .and_then(|x| x.as_ref())
            .is_none_or(|x| x.attack.is_some())
        {
            return false;
        }
        // The span of `Rates::compute`.
        let bucket = tally_at(&dir.ring, b).copied().unwrap_or_default();
        let first = if bucket.samples >= self.config.min_samples || window <= 1 {
            b
        } else {
            b + 1 - window.min(b + 1)
        };
        let (mut packets, mut bytes, mut samples) = (0u64, 0u64, 0u64);
        for bb in first..=b {
            if let Some(t) = tally_at(&dir.ring, bb) {
                packets += t.packets;
                bytes += t.bytes;
                samples += u64::from(t.samples);
            }
        }
        let span = f64::from(b - first + 1);
        // A margin for the rounding of the class mix's extrapolation.
        let margin = 1.0 + 1e-9;
        let pps = packets as f64 / span * margin;
        let bps = bytes as f64 * 8.0 / span * margin;
        let limits = &self.groups[host.group as usize].limits[d];
        let below_limits = Metric::ALL.iter().all(|&m| {
            let limit = limits[m as usize];
            match m {
                Metric::FlowsPerS => (samples as f64 / span) < limit,
                m if m.is_packets() => pps < limit,
                _ => bps / 1e6 < limit,
            }
        });
        below_limits
            && dir
                .baseline
                .levels(&self.baseline)
                .is_none_or(|levels| pps < levels.pps && bps < levels.bps)
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
}
