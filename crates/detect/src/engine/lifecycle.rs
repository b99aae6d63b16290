//! The attack lifecycle per target and direction: started at a crossing (at the close, or
//! early, as soon as the open bucket's evidence suffices), updated, ended after its quiet
//! period; confirmed early once the evidence behind it does; the watch released when idle.

use ipnet::IpNet;

use crate::attack::{Attack, Start, Step};
use crate::baseline::{significantly_above_by, STATIC_EVIDENCE_NATS};
use crate::counters::{tally_at, Rates, Tally, SLOTS};
use crate::event::{EventKind, Trigger, TriggerKind};
use crate::vocab::Metric;
use crate::AttackEvent;

use super::close::static_trigger;
use super::entries::Owner;
use super::limits::over_watch;
use super::{sort_events, Crossing, Engine, DIRECTIONS, IN, NONE, OUT};

/// How unlikely sampling noise must make a bucket's rate above an attack's end level for the
/// bucket to count as still carrying the attack (`ended_at`): e^-2 ≈ 14 %, so a lone ordinary
/// sample under heavy sampling does not stretch an attack, while its own last seconds at a few
/// samples each still count.
const HOT_EVIDENCE_NATS: f64 = 2.0;

impl Engine {
    /// Starts the attacks of `early_starts`: judged on the open bucket alone, as its close
    /// would (static limits, `min_samples`, sampling noise), with the same attack id; the
    /// event's `ts` is the telemetry time of the record that crossed.
    pub(super) fn start_early(&mut self, now_ms: u64, events: &mut Vec<AttackEvent>) {
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
    pub(super) fn confirm_early(&mut self, now_ms: u64, events: &mut Vec<AttackEvent>) {
        let b = self.open;
        for (h, d) in std::mem::take(&mut self.early_confirms) {
            let host = &self.hosts[h as usize];
            let group = host.group as usize;
            let id = host.dir(d).detail;
            let Some(detail) = self.details.get_mut(id as usize).and_then(|x| x.as_mut()) else {
                continue;
            };
            detail.fingerprint.flush();
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

    /// One bucket of one target and direction: continue or end its attack, start one, or keep
    /// or drop its watch. Returns whether an attack is active afterwards.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn step_target(
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
            if detail.attack.is_some() || crossing.is_some() {
                // Read below; a watch without an attack is only marked (`age_watch`).
                detail.fingerprint.flush();
            }
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
                if d == IN {
                    detail.fingerprint.begin_sources();
                }
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
                detail.fingerprint.settle_again();
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
                    let bucket = (rates.bucket_pps, rates.bucket_bps / 8.0);
                    self.age_watch(owner, d, det, b, bucket, (watch_packets, watch_bytes));
                }
                false
            }
        }
    }

    /// A watched target without an attack and nothing crossed at this close: what it carried is
    /// its ordinary traffic, and once bucket `b`'s packets and bytes have not been over its watch
    /// levels by more than sampling noise for `quiet_period_s` buckets, it is no longer watched
    /// (a target hovering at its level by chance does not keep its watch for ever).
    fn age_watch(
        &mut self,
        owner: Owner,
        d: usize,
        det: u32,
        b: u32,
        bucket: (f64, f64),
        watch: (f64, f64),
    ) {
        let detail = self.details[det as usize].as_mut().expect("live detail");
        let slot = &detail.ring[b as usize % SLOTS];
        let evidence = if slot.bucket == b { slot.evidence } else { 0 };
        let below = !over_watch(bucket, evidence, watch, 1.0);
        detail.fingerprint.mark_before();
        detail.idle = if below { detail.idle + 1 } else { 0 };
        if detail.idle >= self.config.quiet_period_s {
            self.release_watch(owner, d, det);
        }
    }

    /// The close of a watched host direction whose total rates stayed below every limit it
    /// could cross (`t` is bucket `b`'s tally, `watch` its watch levels): rates need not be
    /// computed. Does what [`Self::step_target`] does then.
    pub(super) fn close_quiet_watch(
        &mut self,
        h: u32,
        d: usize,
        b: u32,
        t: Tally,
        watch: (f64, f64),
    ) {
        let det = self.hosts[h as usize].dir(d).detail;
        let detail = self.details[det as usize].as_mut().expect("live detail");
        // As `Rates` has them: through f64.
        let (bps, pps) = (t.bytes as f64 * 8.0, t.packets as f64);
        detail.fingerprint.bucket_rates(bps as u64, pps as u64);
        self.age_watch(Owner::Host(h), d, det, b, (pps, t.bytes as f64), watch);
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

    /// End of input: closes the open bucket and ends every active attack. Returns where the
    /// events of the attacks ended (rather than of the close) begin.
    pub fn finish(&mut self, events: &mut Vec<AttackEvent>) -> usize {
        let Some(base) = self.base_bucket else {
            return events.len();
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
        start
    }
}
