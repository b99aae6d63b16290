//! Dynamic baseline of a host direction (or of a prefix's incoming carpet residue): exponentially
//! weighted moving averages of packets/s and bits/s and of their mean absolute deviation.
//!
//! Targets are touched only when they have traffic, so silent buckets are applied lazily (in
//! closed form for long gaps) when the target is next evaluated; an idle one costs nothing.
//! Attack buckets are skipped, so an attack is never learnt as normal.

use crate::config::BaselineConfig;
use crate::counters::NO_BUCKET;

/// How unlikely, in nats, sampling noise must make a crossing of a learnt level before it counts:
/// e^-9.2 ≈ 1e-4 per target and bucket for a target whose true rate sits exactly at its level,
/// far less for the many quiet targets whose rate is well below it.
const EVIDENCE_NATS: f64 = 9.2;

/// Whether a `rate` measured from `samples` samples is above `level` by more than sampling noise.
///
/// Each sample stands for rate / samples of the rate, so a true rate at `level` would give
/// μ = samples × level / rate samples on average; counts are Poisson. The Chernoff bound
/// P(X ≥ s) ≤ exp(−(s·ln(s/μ) − s + μ)) must fall below e^−EVIDENCE_NATS. At 1:1000 a quiet host
/// with a 5,000 pps floor needs 18 samples (18 kpps), not 5; a thousand-sample flood needs to be
/// only ~14 % over its level.
pub(crate) fn significantly_above(rate: f64, level: f64, samples: u64) -> bool {
    significantly_above_by(rate, level, samples, EVIDENCE_NATS)
}

/// How unlikely sampling noise must make a crossing of a static limit: e^-4.6 ≈ 1 % for a
/// target whose true rate sits exactly at the limit. Static limits are set far above ordinary
/// traffic (and count only unexplained traffic), so this only keeps a rate estimated from a
/// handful of samples from alarming; a flood twice the limit needs ~25 samples (a second at
/// 1:2048 for 50 kpps over 20 kpps), ten times the limit 5.
pub(crate) const STATIC_EVIDENCE_NATS: f64 = 4.6;

/// How unlikely sampling noise must make a crossing of a watch level before a target is
/// watched (and how far over it a watched target must be to stay busy): e^-2.3 ≈ 10 %. A watch
/// costs a detail of kilobytes and several cache lines per record, so a target a few samples a
/// second over its level by chance (a busy network has thousands) is not watched; a flood at its
/// limit is watched after ~5 samples (the limit is 1 / `watch_ratio` × the level), one at ten
/// times its limit at the first samples as before. Always weaker than an alarm's evidence, so a
/// bucket that can start an attack has its target watched.
pub(crate) const WATCH_EVIDENCE_NATS: f64 = 2.3;

/// [`significantly_above`] at another significance, in nats.
pub(crate) fn significantly_above_by(rate: f64, level: f64, samples: u64, nats: f64) -> bool {
    // NaN rates or levels compare false: never evidence.
    if rate.partial_cmp(&level).is_none_or(|o| o.is_lt()) || samples == 0 {
        return false;
    }
    if level <= 0.0 {
        return true;
    }
    let s = samples as f64;
    let ratio = rate / level;
    s * ratio.ln() - s + s / ratio >= nats
}

/// Baseline parameters, derived once from the config.
#[derive(Debug, Clone)]
pub(crate) struct BaselineParams {
    pub enabled: bool,
    alpha: f64,
    /// Buckets of history after which `alpha` applies; before, a plain running mean.
    warm_steps: u32,
    /// The weight `a` of each warm-up step by history (`1 / (history + 1)`, at least `alpha`),
    /// precomputed when the warm-up is not too long.
    warm_alpha: Box<[f64]>,
    /// For silent warm-up steps in closed form, by history `h` (from 1): `warm_decay[h]` is
    /// the product of `(1 - a_k)` for k in 1..h, `warm_sum[h]` the sum of `a_k / (1 - a_k)`.
    /// Empty when `warm_alpha` is.
    warm_decay: Box<[f64]>,
    warm_sum: Box<[f64]>,
    min_history: u32,
    deviations: f64,
    min_ratio: f64,
    min_pps: f64,
    min_bps: f64,
}

impl BaselineParams {
    /// The floors no alarm level goes below (packets/s, bits/s), when baselines are enabled.
    pub fn floors(&self) -> Option<(f64, f64)> {
        self.enabled.then_some((self.min_pps, self.min_bps))
    }

    pub fn new(c: &BaselineConfig) -> Self {
        let alpha = 1.0 / c.time_constant_s;
        let steps = c.time_constant_s.ceil() as u32;
        let warm_alpha: Box<[f64]> = if steps <= 1 << 16 {
            (0..steps)
                .map(|h| (1.0 / f64::from(h + 1)).max(alpha))
                .collect()
        } else {
            Box::default()
        };
        // Index 0 is unused (a history of 0 has nothing to decay); a_k < 1 for k >= 1.
        let (mut decay, mut sum) = (
            vec![1.0; warm_alpha.len() + 1],
            vec![0.0; warm_alpha.len() + 1],
        );
        for k in 1..warm_alpha.len() {
            let a = warm_alpha[k];
            decay[k + 1] = decay[k] * (1.0 - a);
            sum[k + 1] = sum[k] + a / (1.0 - a);
        }
        if warm_alpha.is_empty() {
            (decay, sum) = (Vec::new(), Vec::new());
        }
        BaselineParams {
            enabled: c.enabled,
            alpha,
            warm_steps: steps,
            warm_alpha,
            warm_decay: decay.into(),
            warm_sum: sum.into(),
            min_history: c.min_history_s,
            deviations: c.deviations,
            min_ratio: c.min_ratio,
            min_pps: c.min_pps,
            min_bps: c.min_mbps * 1e6,
        }
    }
}

/// 24 bytes per host and direction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Baseline {
    mean_pps: f32,
    dev_pps: f32,
    mean_bps: f32,
    dev_bps: f32,
    /// Buckets learnt (including lazily applied silent ones), saturating.
    history: u32,
    /// The next bucket to account for; `NO_BUCKET` before the host was first evaluated.
    next: u32,
}

impl Default for Baseline {
    fn default() -> Self {
        Baseline {
            mean_pps: 0.0,
            dev_pps: 0.0,
            mean_bps: 0.0,
            dev_bps: 0.0,
            history: 0,
            next: NO_BUCKET,
        }
    }
}

/// Alarm levels of a warmed-up baseline, and the learnt means they stand on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Levels {
    pub pps: f64,
    pub bps: f64,
    pub mean_pps: f64,
    pub mean_bps: f64,
}

/// Every baseline an engine has learnt, to save across restarts ([`crate::Engine::baselines`])
/// and resume with ([`crate::Engine::restore_baselines`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Baselines {
    /// Per host: incoming and outgoing.
    pub hosts: Vec<(std::net::IpAddr, [BaselineState; 2])>,
    /// Per prefix: its incoming carpet residue.
    pub prefixes: Vec<(ipnet::IpNet, BaselineState)>,
}

/// What a baseline has learnt, as it is saved across restarts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BaselineState {
    pub mean_pps: f32,
    pub dev_pps: f32,
    pub mean_bps: f32,
    pub dev_bps: f32,
    /// Seconds learnt.
    pub history: u32,
}

impl Baseline {
    /// The weight of the next step.
    #[inline]
    fn weight(&self, p: &BaselineParams) -> f64 {
        if self.history < p.warm_steps {
            match p.warm_alpha.get(self.history as usize) {
                Some(&a) => a,
                None => (1.0 / f64::from(self.history + 1)).max(p.alpha),
            }
        } else {
            p.alpha
        }
    }

    fn step(&mut self, pps: f64, bps: f64, p: &BaselineParams) {
        let a = self.weight(p);
        let ewma = |mean: &mut f32, dev: &mut f32, x: f64| {
            let m = f64::from(*mean);
            *dev = ((1.0 - a) * f64::from(*dev) + a * (x - m).abs()) as f32;
            *mean = ((1.0 - a) * m + a * x) as f32;
        };
        ewma(&mut self.mean_pps, &mut self.dev_pps, pps);
        ewma(&mut self.mean_bps, &mut self.dev_bps, bps);
        self.history = self.history.saturating_add(1);
    }

    /// `step(0.0, 0.0, p)` with the zero terms left out: bit for bit the same, since means and
    /// deviations are never negative (so `(1 - a)·m + a·0 = (1 - a)·m` and `|0 - m| = m`).
    #[inline]
    fn step_silent(&mut self, p: &BaselineParams) {
        let a = self.weight(p);
        let decay = |mean: &mut f32, dev: &mut f32| {
            debug_assert!(*mean >= 0.0 && mean.is_sign_positive());
            let m = f64::from(*mean);
            *dev = ((1.0 - a) * f64::from(*dev) + a * m) as f32;
            *mean = ((1.0 - a) * m) as f32;
        };
        decay(&mut self.mean_pps, &mut self.dev_pps);
        decay(&mut self.mean_bps, &mut self.dev_bps);
        self.history = self.history.saturating_add(1);
    }

    /// Applies the silent buckets between the last evaluation and bucket `b` (exclusive).
    pub fn catch_up(&mut self, b: u32, p: &BaselineParams) {
        if self.next == NO_BUCKET || b <= self.next {
            self.next = self.next.min(b);
            return;
        }
        let mut gap = b - self.next;
        self.next = b;
        if gap > 1 && self.history >= 1 && self.history < p.warm_steps && !p.warm_decay.is_empty() {
            // Silent warm-up steps in closed form: with m_h = M·P_h/P_h0, the deviation after
            // them is P_h1/P_h0 · (dev + M·(S_h1 - S_h0)) (see `warm_decay`, `warm_sum`).
            let h0 = self.history as usize;
            let h1 = (self.history + gap).min(p.warm_steps) as usize;
            let ratio = p.warm_decay[h1] / p.warm_decay[h0];
            let spread = p.warm_sum[h1] - p.warm_sum[h0];
            let decay = |mean: &mut f32, dev: &mut f32| {
                let m = f64::from(*mean);
                *dev = (ratio * (f64::from(*dev) + m * spread)) as f32;
                *mean = (m * ratio) as f32;
            };
            decay(&mut self.mean_pps, &mut self.dev_pps);
            decay(&mut self.mean_bps, &mut self.dev_bps);
            gap -= (h1 - h0) as u32;
            self.history = h1 as u32;
        }
        while gap > 0 && self.history < p.warm_steps {
            self.step_silent(p);
            gap -= 1;
        }
        if gap == 0 {
            return;
        }
        // x = 0 for g steps: mean_g = m·β^g, dev_g = β^g·dev + α·m·g·β^(g-1).
        let beta = 1.0 - p.alpha;
        let g = gap.min(i32::MAX as u32) as i32;
        let bg = beta.powi(g);
        let bg1 = beta.powi(g - 1);
        let decay = |mean: &mut f32, dev: &mut f32| {
            let m = f64::from(*mean);
            *dev = (bg * f64::from(*dev) + p.alpha * m * f64::from(g) * bg1) as f32;
            *mean = (m * bg) as f32;
        };
        decay(&mut self.mean_pps, &mut self.dev_pps);
        decay(&mut self.mean_bps, &mut self.dev_bps);
        self.history = self.history.saturating_add(gap);
    }

    /// Learns bucket `b` (call after [`Baseline::catch_up`] to `b`).
    pub fn learn(&mut self, b: u32, pps: f64, bps: f64, p: &BaselineParams) {
        self.step(pps, bps, p);
        self.next = b + 1;
    }

    /// Lets bucket `b` pass without learning it (the host was under attack).
    pub fn skip(&mut self, b: u32) {
        self.next = b + 1;
    }

    /// The alarm levels, once the baseline has enough history.
    #[inline]
    pub fn levels(&self, p: &BaselineParams) -> Option<Levels> {
        self.levels_above(p, p.min_pps, p.min_bps)
    }

    /// [`Baseline::levels`] with other floors (packets/s, bits/s) than `p`'s: prefixes share
    /// the parameters of hosts but not their floors.
    pub fn levels_above(&self, p: &BaselineParams, min_pps: f64, min_bps: f64) -> Option<Levels> {
        self.levels_after(p, p.min_history, min_pps, min_bps)
    }

    /// [`Baseline::levels_above`] once `min_history` seconds are learnt (fewer than the warm-up:
    /// a surge against the first seconds of a prefix).
    pub fn levels_after(
        &self,
        p: &BaselineParams,
        min_history: u32,
        min_pps: f64,
        min_bps: f64,
    ) -> Option<Levels> {
        if !p.enabled || self.history < min_history {
            return None;
        }
        let level = |mean: f32, dev: f32, floor: f64| {
            let (m, d) = (f64::from(mean), f64::from(dev));
            (m + p.deviations * d).max(p.min_ratio * m).max(floor)
        };
        Some(Levels {
            pps: level(self.mean_pps, self.dev_pps, min_pps),
            bps: level(self.mean_bps, self.dev_bps, min_bps),
            mean_pps: f64::from(self.mean_pps),
            mean_bps: f64::from(self.mean_bps),
        })
    }

    /// What was learnt, to save it.
    pub fn state(&self) -> BaselineState {
        BaselineState {
            mean_pps: self.mean_pps,
            dev_pps: self.dev_pps,
            mean_bps: self.mean_bps,
            dev_bps: self.dev_bps,
            history: self.history,
        }
    }

    /// A baseline resuming `state` (saved before a restart) from bucket `b`: the time the
    /// daemon was down was not observed, so it is neither learnt nor caught up as silence.
    pub fn restored(state: &BaselineState, b: u32) -> Option<Baseline> {
        let finite = [state.mean_pps, state.dev_pps, state.mean_bps, state.dev_bps]
            .iter()
            .all(|v| v.is_finite() && *v >= 0.0);
        (finite && state.history > 0).then_some(Baseline {
            mean_pps: state.mean_pps,
            dev_pps: state.dev_pps,
            mean_bps: state.mean_bps,
            dev_bps: state.dev_bps,
            history: state.history,
            next: b,
        })
    }

    /// Whether forgetting this baseline loses nothing but its warm-up: its levels are the floors.
    #[inline]
    pub fn negligible(&self, p: &BaselineParams) -> bool {
        self.negligible_below(p, p.min_pps, p.min_bps)
    }

    /// [`Baseline::negligible`] with other floors than `p`'s.
    pub fn negligible_below(&self, p: &BaselineParams, min_pps: f64, min_bps: f64) -> bool {
        let below = |mean: f32, dev: f32, floor: f64| {
            let (m, d) = (f64::from(mean), f64::from(dev));
            m + p.deviations * d < floor && p.min_ratio * m < floor
        };
        below(self.mean_pps, self.dev_pps, min_pps) && below(self.mean_bps, self.dev_bps, min_bps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> BaselineParams {
        BaselineParams::new(&BaselineConfig {
            time_constant_s: 10.0,
            min_history_s: 5,
            ..BaselineConfig::default()
        })
    }

    #[test]
    fn closed_form_gap_matches_stepping() {
        let p = params();
        let mut stepped = Baseline::default();
        let mut lazy = Baseline::default();
        for b in 0..20 {
            stepped.catch_up(b, &p);
            stepped.learn(b, 10_000.0, 1e8, &p);
            lazy.catch_up(b, &p);
            lazy.learn(b, 10_000.0, 1e8, &p);
        }
        for b in 20..57 {
            stepped.catch_up(b, &p);
            stepped.learn(b, 0.0, 0.0, &p);
        }
        lazy.catch_up(57, &p);
        stepped.catch_up(57, &p);
        assert_eq!(stepped.history, lazy.history);
        assert!((stepped.mean_pps - lazy.mean_pps).abs() < 1e-2 * stepped.mean_pps.max(1.0));
        assert!((stepped.dev_pps - lazy.dev_pps).abs() < 1e-2 * stepped.dev_pps.max(1.0));
    }

    #[test]
    fn closed_form_warm_up_gap_matches_stepping() {
        let p = BaselineParams::new(&BaselineConfig {
            time_constant_s: 600.0,
            ..BaselineConfig::default()
        });
        for (learnt, gap) in [(1, 2), (1, 599), (3, 40), (100, 450), (590, 30), (2, 5000)] {
            let mut stepped = Baseline::default();
            for b in 0..learnt {
                stepped.catch_up(b, &p);
                stepped.learn(b, 1000.0 + f64::from(b % 7) * 100.0, 8e6, &p);
            }
            let mut lazy = stepped;
            for b in learnt..learnt + gap {
                stepped.catch_up(b, &p);
                stepped.step_silent(&p);
                stepped.next = b + 1;
            }
            lazy.catch_up(learnt + gap, &p);
            stepped.catch_up(learnt + gap, &p);
            assert_eq!(stepped.history, lazy.history, "{learnt} {gap}");
            let close = |a: f32, b: f32| (a - b).abs() <= 1e-4 * a.abs().max(1e-3);
            assert!(
                close(stepped.mean_pps, lazy.mean_pps),
                "{learnt} {gap}: {stepped:?} {lazy:?}"
            );
            assert!(
                close(stepped.dev_pps, lazy.dev_pps),
                "{learnt} {gap}: {stepped:?} {lazy:?}"
            );
            assert!(close(stepped.mean_bps, lazy.mean_bps), "{learnt} {gap}");
            assert!(close(stepped.dev_bps, lazy.dev_bps), "{learnt} {gap}");
        }
    }

    #[test]
    fn crossings_need_more_than_sampling_noise() {
        // 1:1000, level 5,000 pps: 17 samples (17 kpps) could still be noise, 18 are not.
        assert!(!significantly_above(17_000.0, 5_000.0, 17));
        assert!(significantly_above(18_000.0, 5_000.0, 18));
        // Below the level never; a thousand samples 15 % over it are enough.
        assert!(!significantly_above(4_999.0, 5_000.0, 1_000_000));
        assert!(significantly_above(1_150_000.0, 1_000_000.0, 1000));
        assert!(!significantly_above(1_050_000.0, 1_000_000.0, 1000));
        assert!(!significantly_above(1e9, 5_000.0, 0));
    }

    #[test]
    fn warm_up_and_levels() {
        let p = params();
        let mut b = Baseline::default();
        for t in 0..4 {
            b.catch_up(t, &p);
            b.learn(t, 20_000.0, 2e8, &p);
        }
        assert!(b.levels(&p).is_none(), "still warming up");
        b.catch_up(4, &p);
        b.learn(4, 20_000.0, 2e8, &p);
        let l = b.levels(&p).unwrap();
        assert!(
            (l.pps - 80_000.0).abs() < 1.0,
            "min_ratio × mean: {}",
            l.pps
        );
        assert!(!b.negligible(&p));
    }
}
