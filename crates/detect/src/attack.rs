//! One active attack and its lifecycle: started → updated (rate-limited) → ended after a quiet
//! period below the hysteresis level.

use ipnet::IpNet;

use crate::classify::classify;
use crate::counters::{ClassCounts, Rates};
use crate::event::{AttackEvent, Direction, EventKind, Evidence, Trigger};
use crate::fingerprint::{Fingerprint, FingerprintBuilder};
use crate::vocab::{Metric, Vector};

/// Peak growth that justifies an `attack_updated`.
const PEAK_GROWTH: f64 = 1.1;
/// Relative change of distinct sources that justifies an `attack_updated`.
const SOURCES_CHANGE: f64 = 0.2;

/// A fingerprint behind this many samples has settled (shares within a few per cent); before,
/// an update goes out each time the samples behind it double, so a rule derived from the first
/// partial second is derived again as the picture sharpens.
const SETTLED_SAMPLES: u64 = 1024;

/// What was last reported, to rate-limit updates.
#[derive(Debug, Clone)]
struct Reported {
    bucket: u32,
    peak_pps: u64,
    peak_bps: u64,
    vectors: Vec<Vector>,
    sources: u64,
    /// The evidence confirmed the attack: its first confirmation is news at once.
    confirmed: bool,
    samples: u64,
}

/// Evidence summed over buckets.
#[derive(Debug, Clone, Copy, Default)]
struct EvidenceSum {
    samples: u64,
    datagrams: u64,
    instants: u64,
    packets: u64,
    largest: u64,
}

impl EvidenceSum {
    fn of(counts: &ClassCounts) -> EvidenceSum {
        let p = &counts.provenance;
        EvidenceSum {
            samples: counts.evidence,
            datagrams: u64::from(p.datagrams),
            instants: u64::from(p.instants),
            packets: p.packets,
            largest: p.largest(),
        }
    }

    fn plus(self, o: EvidenceSum) -> EvidenceSum {
        EvidenceSum {
            samples: self.samples.saturating_add(o.samples),
            datagrams: self.datagrams + o.datagrams,
            instants: self.instants + o.instants,
            packets: self.packets.saturating_add(o.packets),
            largest: self.largest.max(o.largest),
        }
    }

    fn evidence(self) -> Evidence {
        Evidence {
            samples: self.samples,
            datagrams: self.datagrams,
            instants: self.instants,
            largest_datagram_share: if self.packets == 0 {
                1.0
            } else {
                (self.largest as f64 / self.packets as f64).min(1.0)
            },
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Attack {
    id: String,
    direction: Direction,
    target: IpNet,
    carpet: bool,
    started_at: u64,
    trigger: Trigger,
    /// The trigger's metric and the level it must stay below for the quiet period to end.
    metric: Metric,
    end_level: f64,
    /// Union of the vectors seen in the attack's buckets: a multi-vector attack keeps them all.
    vectors: Vec<Vector>,
    bps: u64,
    pps: u64,
    peak_bps: u64,
    peak_pps: u64,
    sources: u64,
    /// Consecutive buckets below the end level.
    quiet: u32,
    /// End of the last bucket at or above the end level: `ended_at`.
    last_hot_end: u64,
    reported: Reported,
    /// Evidence of the buckets before `open_bucket`, and of that bucket so far (an early start
    /// and its bucket's close account the same bucket: the second replaces the first).
    evidence_closed: EvidenceSum,
    evidence_open: EvidenceSum,
    open_bucket: u32,
    /// The target's traffic before the attack, as the fingerprint builder last marked it.
    before: Option<Fingerprint>,
}

/// What the engine decided at the crossing bucket.
pub(crate) struct Start {
    /// The earliest record time counted in the crossing bucket (`u64::MAX`: none known).
    pub first_ms: u64,
    pub direction: Direction,
    pub target: IpNet,
    pub carpet: bool,
    pub trigger: Trigger,
    pub metric: Metric,
}

/// Lifecycle settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifecycle {
    pub quiet_period: u32,
    pub end_ratio: f64,
    pub update_interval: u32,
}

/// The outcome of one bucket of an active attack.
pub(crate) enum Step {
    Continue,
    Ended,
}

impl Attack {
    /// Starts an attack at bucket `b` ending at `end_ms`, whose rates are `rates`.
    /// `counts` are the target's detailed counts of bucket `b`, if kept; `fingerprint` the
    /// target's builder (its mark of the traffic before the attack is kept).
    pub fn start(
        s: Start,
        rates: &Rates,
        (b, end_ms): (u32, u64),
        lc: &Lifecycle,
        counts: Option<&ClassCounts>,
        fingerprint: &FingerprintBuilder,
    ) -> Attack {
        // Flow records arrive late (exporters batch them): the earliest one counted in the
        // crossing bucket tells when the attack's traffic began better than the bucket does.
        // In whole seconds, as buckets are.
        let started_at = (end_ms - 1000).min(s.first_ms / 1000 * 1000);
        let dir = match s.direction {
            Direction::Incoming => "in",
            Direction::Outgoing => "out",
        };
        let vectors = if rates.has_classes {
            classify(&rates.unexplained)
        } else {
            Vec::new()
        };
        let (pps, bps) = (rates.total_pps as u64, rates.total_bps as u64);
        let evidence_open = counts
            .filter(|c| c.bucket == b)
            .map(EvidenceSum::of)
            .unwrap_or_default();
        let evidence = evidence_open.evidence();
        Attack {
            id: format!("{started_at}-{dir}-{}", s.target),
            direction: s.direction,
            target: s.target,
            carpet: s.carpet,
            started_at,
            end_level: s.trigger.limit * lc.end_ratio,
            trigger: s.trigger,
            metric: s.metric,
            reported: Reported {
                bucket: b,
                peak_pps: pps,
                peak_bps: bps,
                vectors: vectors.clone(),
                sources: 0,
                confirmed: evidence.confirms(),
                samples: evidence.samples,
            },
            vectors,
            bps,
            pps,
            peak_bps: bps,
            peak_pps: pps,
            sources: 0,
            quiet: 0,
            last_hot_end: end_ms,
            evidence_closed: EvidenceSum::default(),
            evidence_open,
            open_bucket: b,
            before: fingerprint.before(),
        }
    }

    /// Accounts the target's detailed counts of bucket `b` as evidence.
    fn account(&mut self, b: u32, counts: Option<&ClassCounts>) {
        let Some(counts) = counts.filter(|c| c.bucket == b) else {
            return;
        };
        if b != self.open_bucket {
            self.evidence_closed = self.evidence_closed.plus(self.evidence_open);
            self.open_bucket = b;
        }
        self.evidence_open = EvidenceSum::of(counts);
    }

    /// Accounts the open bucket's counts as they grow, while the attack is not confirmed yet;
    /// true once they confirm it (then the confirmation is due as an update, at once).
    pub fn confirms_early(&mut self, b: u32, counts: &ClassCounts) -> bool {
        if self.reported.confirmed {
            return false;
        }
        self.account(b, Some(counts));
        self.evidence().confirms()
    }

    /// The `attack_updated` that says the evidence now confirms the attack.
    pub fn confirmed_event(
        &mut self,
        b: u32,
        ts: u64,
        fingerprint: &FingerprintBuilder,
        hostgroup: &str,
    ) -> AttackEvent {
        let evidence = self.evidence();
        self.reported.confirmed = true;
        self.reported.samples = evidence.samples;
        self.reported.bucket = self.reported.bucket.max(b);
        self.event(EventKind::AttackUpdated, ts, fingerprint, hostgroup)
    }

    /// What stands behind the attack so far.
    pub fn evidence(&self) -> Evidence {
        self.evidence_closed.plus(self.evidence_open).evidence()
    }

    pub fn is_carpet(&self) -> bool {
        self.carpet
    }

    /// The vectors seen so far.
    pub fn vectors(&self) -> &[Vector] {
        &self.vectors
    }

    /// The metric whose crossing started the attack, and the level it must stay at to go on.
    pub fn end(&self) -> (Metric, f64) {
        (self.metric, self.end_level)
    }

    /// Sets the sources estimate; at start, before the first event.
    pub fn set_sources(&mut self, sources: u64) {
        self.sources = sources;
        self.reported.sources = sources;
    }

    /// Accounts bucket `b`. `still_crossing` says whether a start limit is crossed again (keeps the
    /// attack alive even if its original metric calmed down); `bucket_hot` says whether bucket `b`
    /// alone still carried the attack (the rates may average the evidence window, which trails
    /// its end), which places `ended_at` at the end of the last such bucket. Emits
    /// `attack_updated` when due.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        rates: &Rates,
        counts: Option<&ClassCounts>,
        still_crossing: bool,
        bucket_hot: bool,
        sources: u64,
        b: u32,
        end_ms: u64,
        lc: &Lifecycle,
        fingerprint: &FingerprintBuilder,
        hostgroup: &str,
        events: &mut Vec<AttackEvent>,
    ) -> Step {
        self.pps = rates.total_pps as u64;
        self.bps = rates.total_bps as u64;
        self.peak_pps = self.peak_pps.max(self.pps);
        self.peak_bps = self.peak_bps.max(self.bps);
        self.sources = sources;
        self.account(b, counts);
        let hot = still_crossing || rates.values[self.metric as usize] >= self.end_level;
        // Only the attack's own buckets name vectors: during the quiet period what is left is
        // the target's ordinary traffic (a carpet's /24 background of web ACKs and DNS answers
        // would otherwise be named `ack_flood` and `dns_amplification`).
        if hot && rates.confident && rates.has_classes {
            for v in classify(&rates.unexplained) {
                if let Err(i) = self.vectors.binary_search(&v) {
                    self.vectors.insert(i, v);
                }
            }
        }
        if bucket_hot {
            self.last_hot_end = end_ms;
        }
        if hot {
            self.quiet = 0;
        } else {
            self.quiet += 1;
            if self.quiet >= lc.quiet_period {
                return Step::Ended;
            }
        }
        let r = &self.reported;
        let changed = self.peak_pps as f64 >= r.peak_pps as f64 * PEAK_GROWTH
            || self.peak_bps as f64 >= r.peak_bps as f64 * PEAK_GROWTH
            || self.vectors != r.vectors
            || (self.sources as f64 - r.sources as f64).abs()
                >= SOURCES_CHANGE * (r.sources.max(1) as f64);
        // A rule waits for confirmation, and follows the fingerprint while it settles: both
        // are news at once, whatever the update interval.
        let evidence = self.evidence();
        let confirmed = evidence.confirms() && !r.confirmed;
        let settling = r.samples < SETTLED_SAMPLES
            && evidence.samples >= r.samples.max(1).saturating_mul(2)
            && b >= r.bucket;
        if (changed && b >= r.bucket + lc.update_interval) || confirmed || settling {
            self.reported = Reported {
                bucket: b,
                peak_pps: self.peak_pps,
                peak_bps: self.peak_bps,
                vectors: self.vectors.clone(),
                sources: self.sources,
                confirmed: r.confirmed || evidence.confirms(),
                samples: evidence.samples,
            };
            events.push(self.event(EventKind::AttackUpdated, end_ms, fingerprint, hostgroup));
        }
        Step::Continue
    }

    pub fn event(
        &self,
        kind: EventKind,
        ts: u64,
        fingerprint: &FingerprintBuilder,
        hostgroup: &str,
    ) -> AttackEvent {
        AttackEvent {
            event: kind,
            attack_id: self.id.clone(),
            ts,
            direction: self.direction,
            target: self.target,
            carpet_bombing: self.carpet,
            hostgroup: hostgroup.to_string(),
            vectors: self.vectors.clone(),
            bps: self.bps,
            pps: self.pps,
            peak_bps: self.peak_bps,
            peak_pps: self.peak_pps,
            sources: self.sources,
            started_at: self.started_at,
            ended_at: (kind == EventKind::AttackEnded).then_some(self.last_hot_end),
            trigger: self.trigger.clone(),
            evidence: self.evidence(),
            fingerprint: fingerprint.snapshot(),
            before: self.before.clone(),
            campaign: None,
            source_sketch: fingerprint
                .sources_sketch()
                .cloned()
                .map(std::sync::Arc::new),
        }
    }
}
