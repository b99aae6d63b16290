//! The ground truth of a generated scenario, resolved against the traffic actually described,
//! and the check of a detector's attacks against it.
//!
//! The scenario file says *which* attacks a correct detector reports (target, direction, carpet,
//! vectors, times, peaks). This module computes, from the same rate functions the generator
//! draws from, what those mean second by second: the expected packets and bits towards each
//! target (attack plus background), the second the rate crosses Floodwall's documented default
//! limits, and how far sampling noise may move a measured peak. The rules:
//!
//! * **found**: every required attack is reported exactly once, with the same target, direction
//!   and carpet flag, and at least the required vectors. A carpet over a prefix wider than the
//!   detector's prefix length (/24) is expected as one carpet attack per /24 inside it.
//! * **start**: `started_at` (the start of the bucket that crossed) is not before the attack
//!   starts and at most [`START_SLACK_MS`] after the start of the first second whose expected
//!   rate is clearly over a limit (over it by the noise margin below): ramps are allowed for, and
//!   detection may take one more bucket to gather `min_samples`.
//! * **end**: `ended_at` (the end of the last bucket over the end level) is at or after the end
//!   of the last second whose expected rate still crosses a limit — for an attack far above its
//!   limits that is the truth's end — and at most [`END_SLACK_MS`] after the truth's end. When
//!   that last second holds fewer than 30 expected samples, its end cannot be told to the second
//!   beyond sampling noise, and `ended_at` may be up to [`END_SLACK_MS`] before it (twice that
//!   below 10 samples a second).
//! * **peak**: measured peak pps and bps within the tolerance of the truth's peak:
//!   `max(10 %, 5 σ)` (the peak is the highest of many noisy seconds), where σ is the relative
//!   standard deviation of a one-second estimate from
//!   `n` samples (the truth peak's packets ÷ the sampling rate): `1/√n` for packets,
//!   `√((1 + cv²)/n)` for bits (cv: the packet sizes' coefficient of variation). With ≥ 2,500
//!   samples in the peak second (as in every built-in scenario's main attack) the tolerance is
//!   10 %.
//! * **under the limits**: an expected attack whose rate never crosses a documented default limit
//!   (a correct detector finds it by its shape: a SYN-only stream from thousands of sources, say)
//!   is judged from the first second it runs at half its peak, and may end up to
//!   [`END_SLACK_MS`] before the last such second.
//! * **carpets are residues**: a carpet's expected rates leave out the hosts of its prefix that
//!   are expected as host attacks, while they are attacked (they are reported on their own).
//! * **nothing else**: an attack that matches no expectation is a false positive, unless the
//!   truth allows others. Per-source expectations make sources near a limit *allowed* (neither
//!   required nor a false positive): within the noise margin `max(10 %, 4/√(L/N))` of the limit
//!   L at sampling 1:N.

use std::net::Ipv4Addr;

use anyhow::Result;
use floodwall_detect::config::{CarpetConfig, Thresholds};
use floodwall_detect::time::rfc3339_ms;
use floodwall_detect::{AttackEvent, EventKind};
use ipnet::{IpNet, Ipv4Net};
use serde::Serialize;

use super::model::{Composition, Plan, SLICES_PER_SECOND};
use super::scenario::{Direction, Required};
use floodwall_hunt::{CampaignChange, HuntEvent, ReasonKind};

/// How long after the crossing second's start an attack may be reported as starting.
pub const START_SLACK_MS: u64 = 2000;
/// How long after the truth's end an attack may still be hot.
pub const END_SLACK_MS: u64 = 2000;
/// The detector's default carpet prefix length (`prefix_length_v4`).
const CARPET_PREFIX_LEN: u8 = 24;
const MIN_TOLERANCE: f64 = 0.10;
/// Samples a second below which an attack's last seconds are sparse (see `last_crossing_end_ms`).
const SPARSE_SAMPLES: f64 = 30.0;

/// One detection a correct detector makes (or may make).
#[derive(Debug, Clone, Serialize)]
pub struct Expectation {
    pub traffic: String,
    pub target: IpNet,
    pub direction: Direction,
    pub carpet_bombing: bool,
    pub vectors: Vec<String>,
    /// False: near a limit, may or may not be reported.
    pub required: bool,
    pub start: String,
    pub end: String,
    pub start_ms: u64,
    pub end_ms: u64,
    /// Start of the first second clearly over a limit, and end of the last second over one.
    pub crossing_ms: u64,
    pub last_crossing_end_ms: u64,
    /// The busiest second's expected rates towards (or from) the target, everything included.
    pub peak_pps: f64,
    pub peak_bps: f64,
    /// Relative tolerances of the measured peaks.
    pub tolerance_pps: f64,
    pub tolerance_bps: f64,
    /// The limit crossed at the peak, and by how much (rate ÷ limit).
    pub metric: String,
    pub ratio: f64,
}

/// The truth of one generated scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ResolvedTruth {
    pub scenario: String,
    pub description: String,
    pub facts: String,
    pub format: String,
    pub sampling: u32,
    pub seed: u64,
    pub scale: Option<String>,
    pub start: String,
    pub duration_s: u64,
    pub networks: Vec<IpNet>,
    pub others_allowed: bool,
    pub notes: Option<String>,
    pub expect: Vec<Expectation>,
    /// Hunting truth, when the scenario has some (see [`Truth::hunt`](super::scenario::Truth)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hunt: Option<HuntTruth>,
}

/// What hunting must say about a scenario.
#[derive(Debug, Clone, Serialize)]
pub struct HuntTruth {
    /// Hosts that may be listed as infected; every other host is innocent.
    pub infected: Vec<InfectedExpectation>,
    pub campaigns: Vec<CampaignExpectation>,
    /// What each host of the scenario's components is, to name an innocent host listed.
    #[serde(skip)]
    pub roles: std::collections::HashMap<Ipv4Addr, String>,
}

/// One infected host.
#[derive(Debug, Clone, Serialize)]
pub struct InfectedExpectation {
    pub traffic: String,
    pub host: Ipv4Addr,
    pub reasons: Vec<ReasonKind>,
    /// Reasons it may also be listed with.
    pub also: Vec<ReasonKind>,
    /// False: infected, so it may be listed, but too quiet to be required.
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(skip)]
    pub by_ms: Option<u64>,
}

/// One incoming attack of a campaign truth: where and when.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignAttack {
    pub traffic: String,
    pub target: IpNet,
    pub start_ms: u64,
    pub end_ms: u64,
    /// Distinct real sources (0 for a spoofed flood's forged ones).
    pub sources: u64,
}

/// Attacks that must share one campaign, and those that must not join it.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignExpectation {
    pub attacks: Vec<CampaignAttack>,
    pub separate: Vec<CampaignAttack>,
    pub no_campaign: Vec<CampaignAttack>,
    /// Distinct sources of `attacks` together: the true union.
    pub union_sources: u64,
    /// Sources shared by every pair of `attacks`, in order (a, b, shared).
    pub shared: Vec<(String, String, u64)>,
    /// The union's sources that sampling is expected to show at least once.
    pub union_sampled: f64,
    pub tolerance: f64,
}

/// Expected rates of one second towards (or from) a target, by the classes the engine counts.
#[derive(Debug, Clone, Copy, Default)]
struct SecondRates {
    pps: f64,
    bps: f64,
    syn: f64,
    rst: f64,
    icmp: f64,
    gre: f64,
    amp: f64,
    /// Sum of packets × mean square size, for the bytes' variance.
    size_square: f64,
}

impl SecondRates {
    fn add(&mut self, packets: f64, c: &Composition) {
        self.pps += packets;
        self.bps += packets * c.mean_size * 8.0;
        self.syn += packets * c.syn * c.tcp;
        self.rst += packets * c.rst * c.tcp;
        self.icmp += packets * c.icmp;
        self.gre += packets * c.gre;
        self.amp += packets * c.amp;
        self.size_square += packets * c.mean_square_size;
    }

    /// Takes `other` away (a host attack's traffic from its prefix's residue), never below 0.
    fn subtract(&mut self, other: &SecondRates) {
        let sub = |a: &mut f64, b: f64| *a = (*a - b).max(0.0);
        sub(&mut self.pps, other.pps);
        sub(&mut self.bps, other.bps);
        sub(&mut self.syn, other.syn);
        sub(&mut self.rst, other.rst);
        sub(&mut self.icmp, other.icmp);
        sub(&mut self.gre, other.gre);
        sub(&mut self.amp, other.amp);
        sub(&mut self.size_square, other.size_square);
    }

    /// The largest rate ÷ limit over the metrics with a limit, with the metric's name and
    /// limit (packets/s; bits/s for `mbps`).
    fn crossing(&self, limits: &Thresholds) -> (f64, &'static str, f64) {
        let mut best = (0.0, "pps", f64::INFINITY);
        let mut consider = |value: f64, limit: Option<f64>, name: &'static str, scale: f64| {
            if let Some(l) = limit.filter(|l| *l > 0.0) {
                let ratio = value / (l * scale);
                if ratio > best.0 {
                    best = (ratio, name, l * scale);
                }
            }
        };
        consider(self.pps, limits.pps, "pps", 1.0);
        consider(self.bps, limits.mbps, "mbps", 1e6);
        consider(self.syn, limits.syn_pps, "syn_pps", 1.0);
        consider(self.rst, limits.rst_pps, "rst_pps", 1.0);
        consider(self.icmp, limits.icmp_pps, "icmp_pps", 1.0);
        consider(self.gre, limits.gre_pps, "gre_pps", 1.0);
        consider(self.amp, limits.amplification_pps, "amplification_pps", 1.0);
        best
    }
}

/// Which traffic a target receives (or sends).
#[derive(Debug, Clone, Copy)]
enum Scope {
    /// Incoming to the addresses of a prefix (a host is a /32).
    To(Ipv4Net),
    /// Outgoing from one monitored host.
    From(Ipv4Addr),
}

fn overlap(a: Ipv4Net, b: Ipv4Net) -> f64 {
    // The share of `a`'s addresses inside `b`.
    if b.contains(&a) {
        1.0
    } else if a.contains(&b) {
        2f64.powi(i32::from(a.prefix_len()) - i32::from(b.prefix_len()))
    } else {
        0.0
    }
}

/// The noise margin of a limit of `limit` packets/s at 1:`sampling`.
fn margin(limit_pps: f64, sampling: u32) -> f64 {
    let samples = limit_pps / f64::from(sampling);
    (4.0 / samples.max(1e-9).sqrt()).max(MIN_TOLERANCE)
}

impl Plan {
    /// Per-second expected rates of everything in `scope`: every background, every traffic
    /// component and every reply of a benign one.
    fn rates(&self, scope: Scope) -> Vec<SecondRates> {
        let seconds = self.duration_s();
        let mut out = vec![SecondRates::default(); seconds as usize];
        let mut packets = Vec::new();
        // Background shares of the scope, per background and mix entry: fixed over time.
        let bg_shares: Vec<Vec<f64>> = self
            .backgrounds
            .iter()
            .map(|bg| {
                let mix_total: f64 = bg.mix.iter().map(|m| m.share).sum();
                bg.mix
                    .iter()
                    .map(|m| {
                        let hosts: f64 = bg
                            .hosts
                            .iter()
                            .zip(&bg.host_pps)
                            .filter(|(h, _)| match (scope, m.direction) {
                                (Scope::To(net), Direction::Incoming) => net.contains(*h),
                                (Scope::From(addr), Direction::Outgoing) => **h == addr,
                                _ => false,
                            })
                            .map(|(_, pps)| pps)
                            .sum();
                        m.share / mix_total * hosts / bg.total_pps
                    })
                    .collect()
            })
            .collect();
        // Reply shares of the scope: answers leave the answered component's targets (uniform
        // over a prefix) and go to its sources (in proportion to their weights).
        let reply_shares: Vec<f64> = self
            .replies
            .iter()
            .map(|r| {
                let t = &self.traffic[r.traffic];
                match (scope, r.direction) {
                    (Scope::From(addr), Direction::Outgoing) => {
                        overlap(t.target, Ipv4Net::from(addr))
                    }
                    (Scope::To(net), Direction::Incoming) => {
                        if t.sources <= u64::from(super::scenario::MAX_PER_SOURCE_TRUTH) {
                            let total: f64 = (0..t.sources).map(|i| t.weight(i)).sum();
                            let inside: f64 = (0..t.sources)
                                .filter(|&i| net.contains(&t.source_address(i)))
                                .map(|i| t.weight(i))
                                .sum();
                            inside / total.max(f64::MIN_POSITIVE)
                        } else {
                            t.source_prefix.map_or(0.0, |p| overlap(p, net))
                        }
                    }
                    _ => 0.0,
                }
            })
            .collect();
        // Outgoing traffic components: the scope host's source index and its weight.
        let sources: Vec<Option<u64>> = self
            .traffic
            .iter()
            .map(|t| match scope {
                Scope::From(addr) if t.direction == Direction::Outgoing => {
                    (0..t.sources).find(|&i| t.source_address(i) == addr)
                }
                _ => None,
            })
            .collect();
        let first = self.first_traffic();
        let replies_at = first + self.traffic.len();
        for s in 0..seconds {
            let shares: Vec<f64> = self
                .traffic
                .iter()
                .zip(&sources)
                .map(|(t, source)| match (scope, t.direction) {
                    (Scope::To(net), Direction::Incoming) => overlap(t.target, net),
                    (Scope::From(_), Direction::Outgoing) => {
                        source.map_or(0.0, |i| t.source_share(i, s))
                    }
                    _ => 0.0,
                })
                .collect();
            let r = &mut out[s as usize];
            for k in s * SLICES_PER_SECOND..(s + 1) * SLICES_PER_SECOND {
                self.slice_packets(k, &mut packets);
                for (b, (bg, shares)) in self.backgrounds.iter().zip(&bg_shares).enumerate() {
                    let total = packets[b];
                    for (m, share) in bg.mix.iter().zip(shares) {
                        r.add(total * share, &m.composition);
                    }
                }
                for ((t, share), p) in self.traffic.iter().zip(&shares).zip(&packets[first..]) {
                    if *share > 0.0 {
                        r.add(p * share, &t.composition);
                    }
                }
                for ((reply, share), p) in self
                    .replies
                    .iter()
                    .zip(&reply_shares)
                    .zip(&packets[replies_at..])
                {
                    if *share > 0.0 {
                        r.add(p * share, &reply.composition);
                    }
                }
            }
        }
        out
    }

    /// The expected host attacks (incoming, not carpets) inside `net`, with the seconds their
    /// traffic runs: a carpet over `net` is the residue of the other hosts, so their traffic is
    /// not the carpet's while they are attacked.
    fn host_attacks_in(&self, net: Ipv4Net) -> Vec<(Ipv4Net, f64, f64)> {
        self.scenario
            .truth
            .expect
            .iter()
            .filter(|e| e.direction == Direction::Incoming && !e.carpet_bombing)
            .filter_map(|e| self.traffic.iter().find(|t| t.name == e.traffic))
            .filter(|t| t.target.prefix_len() == 32 && net.contains(&t.target))
            .map(|t| (t.target, t.start, t.end))
            .collect()
    }

    /// Resolves the scenario's truth for this plan.
    pub fn truth(&self) -> Result<ResolvedTruth> {
        let incoming = Thresholds::builtin_incoming();
        let outgoing = Thresholds::builtin_outgoing();
        let carpet = CarpetConfig::default();
        let carpet_limits = Thresholds {
            pps: Some(carpet.pps),
            mbps: Some(carpet.mbps),
            ..Thresholds::default()
        };
        let mut expect = Vec::new();
        for e in &self.scenario.truth.expect {
            let Some(t) = self.traffic.iter().find(|t| t.name == e.traffic) else {
                continue;
            };
            let start_ms = self.start_ms + (t.start * 1000.0) as u64;
            let end_ms = self.start_ms + (t.end * 1000.0) as u64;
            let mut scopes: Vec<(IpNet, Scope, bool)> = Vec::new();
            if e.per_source {
                for i in 0..t.sources {
                    let addr = t.source_address(i);
                    scopes.push((IpNet::V4(Ipv4Net::from(addr)), Scope::From(addr), true));
                }
            } else if e.carpet_bombing && t.target.prefix_len() < CARPET_PREFIX_LEN {
                for net in t.target.subnets(CARPET_PREFIX_LEN).into_iter().flatten() {
                    scopes.push((IpNet::V4(net), Scope::To(net), false));
                }
            } else if e.carpet_bombing {
                let net = Ipv4Net::new(t.target.network(), CARPET_PREFIX_LEN)
                    .map(|n| n.trunc())
                    .unwrap_or(t.target);
                scopes.push((IpNet::V4(net), Scope::To(net), false));
            } else {
                scopes.push((IpNet::V4(t.target), Scope::To(t.target), false));
            }
            let limits = match (e.direction, e.carpet_bombing) {
                (Direction::Outgoing, _) => &outgoing,
                (Direction::Incoming, true) => &carpet_limits,
                (Direction::Incoming, false) => &incoming,
            };
            for (target, scope, per_source) in scopes {
                let mut rates = self.rates(scope);
                if let (true, Scope::To(net)) = (e.carpet_bombing, scope) {
                    for (host, start, end) in self.host_attacks_in(net) {
                        let host_rates = self.rates(Scope::To(host));
                        for (s, r) in rates.iter_mut().enumerate() {
                            let t0 = s as f64;
                            if t0 + 1.0 > start && t0 < end {
                                r.subtract(&host_rates[s]);
                            }
                        }
                    }
                }
                let during = |s: usize| {
                    let t0 = s as f64;
                    t0 + 1.0 > t.start && t0 < t.end
                };
                let (peak_s, peak) = rates
                    .iter()
                    .enumerate()
                    .filter(|(s, _)| during(*s))
                    .max_by(|a, b| a.1.pps.total_cmp(&b.1.pps))
                    .map(|(s, r)| (s, *r))
                    .unwrap_or_default();
                let (ratio, metric, limit) = peak.crossing(limits);
                // The noise margin counts the samples behind a rate at the limit.
                let mean_size = peak.bps / 8.0 / peak.pps.max(1e-9);
                let limit_pps = if metric == "mbps" {
                    limit / (8.0 * mean_size.max(1.0))
                } else {
                    limit
                };
                let m = margin(limit_pps, self.sampling);
                let required = !per_source || ratio >= 1.0 + m;
                let allowed = required || ratio >= 1.0 - m;
                if !allowed {
                    continue;
                }
                let clearly = |r: &SecondRates| r.crossing(limits).0 >= 1.0 + m;
                // An attack the documented limits miss (a correct detector finds it by its
                // shape) is judged from when it runs at half its peak. Not for sources near a
                // limit, which may or may not be reported.
                let near_peak =
                    |s: usize| !per_source && during(s) && rates[s].pps >= 0.5 * peak.pps;
                let crossing_s = (0..rates.len())
                    .find(|&s| during(s) && clearly(&rates[s]))
                    .or_else(|| (0..rates.len()).find(|&s| near_peak(s)))
                    .unwrap_or(peak_s);
                // Such an attack may look over a second or two early at a few samples a second.
                let end_slack_s = (END_SLACK_MS / 1000) as usize;
                let last_s = (0..rates.len())
                    .rev()
                    .find(|&s| during(s) && rates[s].crossing(limits).0 >= 1.0)
                    .or_else(|| {
                        (0..rates.len())
                            .rev()
                            .find(|&s| near_peak(s))
                            .map(|s| s.saturating_sub(end_slack_s).max(crossing_s))
                    })
                    .unwrap_or(peak_s);
                // The last seconds of an attack seen through a few samples a second cannot be
                // told from its end beyond noise: it may end up to `END_SLACK_MS` early.
                let per_second = rates[last_s].pps / f64::from(self.sampling);
                let early_s = match per_second {
                    n if n < SPARSE_SAMPLES / 3.0 => 2 * end_slack_s,
                    n if n < SPARSE_SAMPLES => end_slack_s,
                    _ => 0,
                };
                let last_s = last_s.saturating_sub(early_s).max(crossing_s);
                let n = peak.pps / f64::from(self.sampling);
                let cv2 =
                    (peak.size_square / peak.pps.max(1e-9) / (mean_size * mean_size).max(1e-9)
                        - 1.0)
                        .max(0.0);
                // The measured peak is the highest of many noisy seconds: a minute of them puts
                // the highest ~2.4 σ up on average and past 4 σ now and then.
                let tol = |sigma: f64| (5.0 * sigma).max(MIN_TOLERANCE);
                expect.push(Expectation {
                    traffic: e.traffic.clone(),
                    target,
                    direction: e.direction,
                    carpet_bombing: e.carpet_bombing,
                    vectors: e.vectors.clone(),
                    required,
                    start: rfc3339_ms(start_ms),
                    end: rfc3339_ms(end_ms),
                    start_ms,
                    end_ms,
                    crossing_ms: self.start_ms + crossing_s as u64 * 1000,
                    last_crossing_end_ms: self.start_ms + (last_s as u64 + 1) * 1000,
                    peak_pps: peak.pps,
                    peak_bps: peak.bps,
                    tolerance_pps: tol(1.0 / n.max(1e-9).sqrt()),
                    tolerance_bps: tol(((1.0 + cv2) / n.max(1e-9)).sqrt()),
                    metric: metric.to_string(),
                    ratio,
                });
            }
        }
        let networks = self.scenario.telemetry.networks.clone();
        Ok(ResolvedTruth {
            scenario: self.scenario.name.clone(),
            description: self.scenario.description.clone(),
            facts: self.scenario.facts.clone(),
            format: self.format.name().to_string(),
            sampling: self.sampling,
            seed: self.seed,
            scale: self.scale_name.clone(),
            start: rfc3339_ms(self.start_ms),
            duration_s: self.duration_s(),
            networks,
            others_allowed: self.scenario.truth.others_allowed,
            notes: self.scenario.truth.notes.clone(),
            hunt: self.hunt_truth(&expect)?,
            expect,
        })
    }

    /// The hosts of a component (traffic sources, or periodic hosts), by name.
    fn component_hosts(&self, name: &str) -> Vec<Ipv4Addr> {
        if let Some(t) = self.traffic.iter().find(|t| t.name == name) {
            if t.sources <= u64::from(super::scenario::MAX_PER_SOURCE_TRUTH) {
                return (0..t.sources).map(|i| t.source_address(i)).collect();
            }
            return Vec::new();
        }
        self.periodic
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.hosts.clone())
            .unwrap_or_default()
    }

    fn campaign_attack(&self, name: &str, expect: &[Expectation]) -> Option<CampaignAttack> {
        let t = self.traffic.iter().find(|t| t.name == name)?;
        let e = expect.iter().find(|e| e.traffic == name)?;
        Some(CampaignAttack {
            traffic: name.to_string(),
            target: e.target,
            start_ms: e.start_ms,
            end_ms: e.end_ms,
            sources: if t.spoofs() {
                0
            } else {
                t.source_set().len() as u64
            },
        })
    }

    fn hunt_truth(&self, expect: &[Expectation]) -> Result<Option<HuntTruth>> {
        if !self.scenario.hunt_judged() {
            return Ok(None);
        }
        let ignore = self.scenario.hunt_config()?.ignore;
        let mut roles = std::collections::HashMap::new();
        for t in &self.traffic {
            if t.direction == Direction::Outgoing {
                for host in self.component_hosts(&t.name) {
                    roles.entry(host).or_insert_with(|| t.name.clone());
                }
            } else if t.target.prefix_len() == 32 {
                // A server receiving it (and answering).
                roles
                    .entry(t.target.network())
                    .or_insert_with(|| t.name.clone());
            }
        }
        for p in &self.periodic {
            for host in &p.hosts {
                roles.entry(*host).or_insert_with(|| p.name.clone());
            }
        }
        let mut infected = Vec::new();
        for inf in &self.scenario.truth.infected {
            let hosts = match inf.host {
                Some(h) => vec![h],
                None => self.component_hosts(&inf.traffic),
            };
            let by_ms = inf.by_s.map(|s| self.start_ms + (s * 1000.0) as u64);
            for host in hosts {
                if ignore
                    .iter()
                    .any(|n| n.contains(&std::net::IpAddr::V4(host)))
                {
                    anyhow::bail!(
                        "truth.infected ({}): {host} is in [hunt] ignore: it can never be listed",
                        inf.traffic
                    );
                }
                let required = match inf.required {
                    Required::All => true,
                    Required::Optional => false,
                    Required::Expected => expect.iter().any(|e| {
                        e.traffic == inf.traffic
                            && e.required
                            && e.target == IpNet::V4(Ipv4Net::from(host))
                    }),
                };
                infected.push(InfectedExpectation {
                    traffic: inf.traffic.clone(),
                    host,
                    reasons: inf.reasons.clone(),
                    also: inf.also.clone(),
                    required,
                    by: by_ms.map(rfc3339_ms),
                    by_ms,
                });
            }
        }
        let mut campaigns = Vec::new();
        for c in &self.scenario.truth.campaign {
            let attacks = |names: &[String]| -> Vec<CampaignAttack> {
                names
                    .iter()
                    .filter_map(|n| self.campaign_attack(n, expect))
                    .collect()
            };
            let sets: Vec<(String, std::collections::HashSet<Ipv4Addr>)> = c
                .traffics
                .iter()
                .filter_map(|n| self.traffic.iter().find(|t| &t.name == n))
                .map(|t| (t.name.clone(), t.source_set()))
                .collect();
            let mut union = std::collections::HashSet::new();
            for (_, set) in &sets {
                union.extend(set.iter().copied());
            }
            let mut shared = Vec::new();
            for (i, (a, sa)) in sets.iter().enumerate() {
                for (b, sb) in &sets[i + 1..] {
                    shared.push((a.clone(), b.clone(), sa.intersection(sb).count() as u64));
                }
            }
            campaigns.push(CampaignExpectation {
                attacks: attacks(&c.traffics),
                separate: attacks(&c.separate),
                no_campaign: attacks(&c.no_campaign),
                union_sources: union.len() as u64,
                shared,
                union_sampled: self.sampled_union(&c.traffics),
                tolerance: c.tolerance,
            });
        }
        Ok(Some(HuntTruth {
            infected,
            campaigns,
            roles,
        }))
    }

    /// Expected distinct sources of `names` together that sampling shows at least once: each
    /// source's packets over all the components, P(seen) = 1 − e^(−packets / N).
    fn sampled_union(&self, names: &[String]) -> f64 {
        let mut packets: std::collections::HashMap<Ipv4Addr, f64> =
            std::collections::HashMap::new();
        for t in self.traffic.iter().filter(|t| names.contains(&t.name)) {
            let total: f64 = (0..self.duration_s() * SLICES_PER_SECOND)
                .map(|k| {
                    let mid = (k as f64 + 0.5) / SLICES_PER_SECOND as f64;
                    t.rate(mid) / SLICES_PER_SECOND as f64
                })
                .sum();
            let weights: f64 = (0..t.sources).map(|i| t.weight(i)).sum();
            for i in 0..t.sources {
                *packets.entry(t.source_address(i)).or_default() +=
                    total * t.weight(i) / weights.max(f64::MIN_POSITIVE);
            }
        }
        packets
            .values()
            .map(|p| 1.0 - (-p / f64::from(self.sampling)).exp())
            .sum()
    }
}

/// What `floodwall replay --json` printed, parsed: attack events (with the campaign each
/// attack joined) and hunting lines.
#[derive(Debug, Clone, Default)]
pub struct Replayed {
    /// Attack events as the detect crate reads them (for [`Detected::from_events`]).
    pub attacks: Vec<AttackEvent>,
    /// The same lines, read for what campaigns need only.
    pub attack_refs: Vec<AttackRef>,
    /// Attack lines the detect crate could not read, with the reason.
    pub unreadable: Vec<String>,
    /// Attack id → the campaign its events last named.
    pub attack_campaign: std::collections::HashMap<String, String>,
    pub hunt: Vec<HuntEvent>,
}

impl Replayed {
    /// Parses JSON lines; lines of other kinds are skipped, malformed ones are errors.
    pub fn parse(text: &str) -> Result<Replayed> {
        let mut out = Replayed::default();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let value: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| anyhow::anyhow!("line {}: {e}: {line}", n + 1))?;
            let kind = value["event"].as_str().unwrap_or_default().to_string();
            match kind.as_str() {
                "infected_host" | "campaign" => {
                    let event: HuntEvent = serde_json::from_value(value)
                        .map_err(|e| anyhow::anyhow!("line {}: {e}: {line}", n + 1))?;
                    out.hunt.push(event);
                }
                k if k.starts_with("attack_") => {
                    if let (Some(id), Some(c)) =
                        (value["attack_id"].as_str(), value["campaign"].as_str())
                    {
                        out.attack_campaign.insert(id.to_string(), c.to_string());
                    }
                    let r: AttackRef = serde_json::from_value(value.clone())
                        .map_err(|e| anyhow::anyhow!("line {}: {e}: {line}", n + 1))?;
                    out.attack_refs.push(r);
                    match serde_json::from_value::<AttackEvent>(value) {
                        Ok(event) => out.attacks.push(event),
                        Err(e) => out.unreadable.push(format!("line {}: {e}", n + 1)),
                    }
                }
                _ => {}
            }
        }
        // Campaign lines name their attacks too.
        for e in &out.hunt {
            if let HuntEvent::Campaign { campaign, .. } = e {
                for id in campaign.attacks.iter().chain([&campaign.attack_id]) {
                    out.attack_campaign
                        .entry(id.clone())
                        .or_insert_with(|| campaign.campaign.clone());
                }
            }
        }
        Ok(out)
    }
}

/// What the campaign check needs of an attack line.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct AttackRef {
    pub attack_id: String,
    pub direction: floodwall_detect::Direction,
    pub target: IpNet,
    pub started_at: String,
    #[serde(default)]
    pub ended_at: Option<String>,
    pub ts: String,
}

impl AttackRef {
    fn span_ms(&self) -> (u64, u64) {
        let t = |s: &str| floodwall_detect::time::parse_rfc3339_ms(s).unwrap_or(0);
        let end = self.ended_at.as_deref().unwrap_or(&self.ts);
        (t(&self.started_at), t(end))
    }
}

/// A host's listing, folded over its `infected_host` lines.
#[derive(Debug, Clone, Default)]
struct Listing {
    /// Each reason and the time of the first line that had it.
    reasons: std::collections::BTreeMap<ReasonKind, u64>,
    lines: usize,
    /// The reasons of the latest line.
    last: Option<std::collections::BTreeSet<ReasonKind>>,
}

impl ResolvedTruth {
    /// Every way the hunting lines depart from the hunting truth, one line each; empty when
    /// they match or the scenario has no hunting truth. The rules:
    ///
    /// * **infected**: every required host is listed, with each of its reasons (by `by_s` when
    ///   given), and with no reason outside its `reasons` and `also`.
    /// * **innocent**: no other host is listed (busy servers, NAT gateways, NTP clients, the
    ///   allow-listed scanner…); hosts of a component that are infected but not required may be.
    /// * **campaigns**: the attacks of `traffics` (found by target and time) share one campaign
    ///   id; `separate` attacks are in none or another, `no_campaign` ones in none; the last
    ///   `campaign` line of the campaign estimates the union of sources within `tolerance`; no
    ///   other campaign forms (one grouping attacks not all of one expected campaign is false).
    pub fn check_hunt(&self, out: &Replayed) -> Vec<String> {
        let Some(hunt) = &self.hunt else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        let mut listed: std::collections::BTreeMap<std::net::IpAddr, Listing> =
            std::collections::BTreeMap::new();
        for e in &out.hunt {
            if let HuntEvent::InfectedHost { ts, host } = e {
                let l = listed.entry(host.host).or_default();
                l.lines += 1;
                // The contract: a line when first listed, one each time the reasons change.
                let kinds: std::collections::BTreeSet<ReasonKind> =
                    host.reasons.iter().map(|r| r.kind).collect();
                if l.last.as_ref() == Some(&kinds) {
                    problems.push(format!(
                        "{}: line at {} repeats the reasons {kinds:?} of the one before",
                        host.host,
                        rfc3339_ms(*ts)
                    ));
                }
                l.last = Some(kinds);
                let monitored = self.networks.iter().any(|n| n.contains(&host.host));
                let prefix_ok = host.prefix.is_none_or(|p| p.contains(&host.host));
                if !monitored || !prefix_ok {
                    problems.push(format!(
                        "{}: listed with prefix {:?}, outside it or the monitored networks",
                        host.host, host.prefix
                    ));
                }
                if host.reasons.is_empty() || !(0.0..=1.0).contains(&host.confidence) {
                    problems.push(format!(
                        "{}: listed with no reason or a confidence {} outside 0-1",
                        host.host, host.confidence
                    ));
                }
                for r in &host.reasons {
                    let at = l.reasons.entry(r.kind).or_insert(*ts);
                    *at = (*at).min(*ts);
                }
            }
        }
        for (host, l) in &listed {
            let entries: Vec<&InfectedExpectation> = hunt
                .infected
                .iter()
                .filter(|e| std::net::IpAddr::V4(e.host) == *host)
                .collect();
            let kinds: Vec<&str> = l.reasons.keys().map(|k| k.as_str()).collect();
            if entries.is_empty() {
                let what = match host {
                    std::net::IpAddr::V4(v4) => hunt
                        .roles
                        .get(v4)
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default(),
                    _ => String::new(),
                };
                problems.push(format!(
                    "innocent host {host}{what} listed as infected: {kinds:?}"
                ));
                continue;
            }
            for kind in l.reasons.keys() {
                let allowed = entries
                    .iter()
                    .any(|e| e.reasons.contains(kind) || e.also.contains(kind));
                if !allowed {
                    problems.push(format!(
                        "{host} ({}): listed with reason {kind}, not in its truth",
                        entries[0].traffic
                    ));
                }
            }
        }
        for e in hunt.infected.iter().filter(|e| e.required) {
            let what = format!("{} {}", e.traffic, e.host);
            let Some(l) = listed.get(&std::net::IpAddr::V4(e.host)) else {
                problems.push(format!("{what}: not listed as infected ({:?})", e.reasons));
                continue;
            };
            for kind in &e.reasons {
                match l.reasons.get(kind) {
                    None => problems.push(format!(
                        "{what}: listed without reason {kind} ({:?})",
                        l.reasons.keys().collect::<Vec<_>>()
                    )),
                    Some(&at) if e.by_ms.is_some_and(|by| at > by) => problems.push(format!(
                        "{what}: reason {kind} first at {}, after {}",
                        rfc3339_ms(at),
                        e.by.as_deref().unwrap_or_default()
                    )),
                    Some(_) => {}
                }
            }
        }
        for c in &hunt.campaigns {
            problems.extend(self.check_campaign(c, out));
        }
        problems.extend(self.false_campaigns(hunt, out));
        problems
    }

    /// The traffic component an attack line is about: the expectation on its target it
    /// overlaps in time.
    fn traffic_of(&self, attack: &AttackRef) -> Option<&str> {
        let (started, ended) = attack.span_ms();
        let outgoing = attack.direction == floodwall_detect::Direction::Outgoing;
        self.expect
            .iter()
            .find(|e| {
                e.target == attack.target
                    && (e.direction == Direction::Outgoing) == outgoing
                    && started < e.end_ms + END_SLACK_MS
                    && ended + END_SLACK_MS > e.start_ms
            })
            .map(|e| e.traffic.as_str())
    }

    /// Campaigns the truth does not expect: every campaign's attacks must all belong to the
    /// `traffics` of one `[[truth.campaign]]` (none: no campaign may form).
    fn false_campaigns(&self, hunt: &HuntTruth, out: &Replayed) -> Vec<String> {
        let mut by_campaign: std::collections::BTreeMap<&str, std::collections::BTreeSet<String>> =
            std::collections::BTreeMap::new();
        for (id, campaign) in &out.attack_campaign {
            let name = out
                .attack_refs
                .iter()
                .find(|a| &a.attack_id == id)
                .and_then(|a| self.traffic_of(a))
                .map_or_else(|| format!("unexpected attack {id}"), str::to_string);
            by_campaign.entry(campaign).or_default().insert(name);
        }
        by_campaign
            .into_iter()
            .filter(|(_, names)| {
                !hunt.campaigns.iter().any(|c| {
                    names
                        .iter()
                        .all(|n| c.attacks.iter().any(|a| &a.traffic == n))
                })
            })
            .map(|(campaign, names)| {
                format!("false campaign {campaign}: groups the attacks of {names:?}")
            })
            .collect()
    }

    fn check_campaign(&self, c: &CampaignExpectation, out: &Replayed) -> Vec<String> {
        let mut problems = Vec::new();
        // The attack ids reported on an expectation's target while it ran.
        let ids = |a: &CampaignAttack| -> Vec<String> {
            let mut ids: Vec<String> = out
                .attack_refs
                .iter()
                .filter(|e| {
                    let (started, ended) = e.span_ms();
                    e.direction == floodwall_detect::Direction::Incoming
                        && e.target == a.target
                        && started < a.end_ms + END_SLACK_MS
                        && ended + END_SLACK_MS > a.start_ms
                })
                .map(|e| e.attack_id.clone())
                .collect();
            ids.sort();
            ids.dedup();
            ids
        };
        let names: Vec<&str> = c.attacks.iter().map(|a| a.traffic.as_str()).collect();
        let what = format!("campaign of {names:?}");
        let mut campaign: Option<String> = None;
        for a in &c.attacks {
            let found = ids(a);
            if found.is_empty() {
                problems.push(format!(
                    "{what}: {} ({}) not reported as an attack",
                    a.traffic, a.target
                ));
            }
            for id in found {
                match (out.attack_campaign.get(&id), &campaign) {
                    (None, _) => problems.push(format!(
                        "{what}: {} (attack {id}) in no campaign",
                        a.traffic
                    )),
                    (Some(got), None) => campaign = Some(got.clone()),
                    (Some(got), Some(first)) if got != first => problems.push(format!(
                        "{what}: {} (attack {id}) in campaign {got}, the others in {first}",
                        a.traffic
                    )),
                    _ => {}
                }
            }
        }
        for (list, none) in [(&c.separate, false), (&c.no_campaign, true)] {
            for a in list.iter() {
                for id in ids(a) {
                    match out.attack_campaign.get(&id) {
                        Some(got) if none || Some(got) == campaign.as_ref() => {
                            problems.push(format!(
                                "{} (attack {id}): in campaign {got}, must be in {}",
                                a.traffic,
                                if none { "none" } else { "none or another" }
                            ))
                        }
                        _ => {}
                    }
                }
            }
        }
        if let Some(id) = &campaign {
            let last = out
                .hunt
                .iter()
                .filter_map(|e| match e {
                    HuntEvent::Campaign { ts, campaign } if &campaign.campaign == id => {
                        Some((*ts, campaign))
                    }
                    _ => None,
                })
                .max_by_key(|(ts, c)| (*ts, c.attack_count));
            match last {
                None => problems.push(format!("{what}: no campaign line for {id}")),
                Some((_, event)) => {
                    let truth = c.union_sources as f64;
                    let off = relative(event.sources as f64, truth);
                    if off > c.tolerance {
                        problems.push(format!(
                            "{what}: {id} estimates {} sources, {:.1} % off the true union {} (tolerance {:.0} %; ~{:.0} of them sampled at least once)",
                            event.sources,
                            off * 100.0,
                            c.union_sources,
                            c.tolerance * 100.0,
                            c.union_sampled
                        ));
                    }
                    if (event.attack_count as usize) < c.attacks.len()
                        || event.direction != floodwall_detect::Direction::Incoming
                    {
                        problems.push(format!(
                            "{what}: {id}'s last line counts {} {:?} attacks, the truth {} incoming",
                            event.attack_count,
                            event.direction,
                            c.attacks.len()
                        ));
                    }
                    if event.change == CampaignChange::Formed && c.attacks.len() > 2 {
                        problems.push(format!(
                            "{what}: {id}'s last line says formed, yet {} attacks joined",
                            c.attacks.len()
                        ));
                    }
                }
            }
        }
        problems
    }
}

/// An attack as a detector reported it (from an `attack_ended` event).
#[derive(Debug, Clone)]
pub struct Detected {
    pub target: IpNet,
    pub outgoing: bool,
    pub carpet_bombing: bool,
    pub vectors: Vec<String>,
    pub started_at_ms: u64,
    pub ended_at_ms: u64,
    pub peak_pps: f64,
    pub peak_bps: f64,
    /// Why it was declared: `threshold`, `baseline` or `carpet_bombing`.
    pub trigger: String,
}

impl Detected {
    /// The attacks of a detector's events: one per `attack_ended`.
    pub fn from_events(events: &[AttackEvent]) -> Vec<Detected> {
        events
            .iter()
            .filter(|e| e.event == EventKind::AttackEnded)
            .map(|e| Detected {
                target: e.target,
                outgoing: e.direction == floodwall_detect::Direction::Outgoing,
                carpet_bombing: e.carpet_bombing,
                vectors: e
                    .vectors
                    .iter()
                    .filter_map(|v| serde_json::to_value(v).ok())
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                started_at_ms: e.started_at,
                ended_at_ms: e.ended_at.unwrap_or(e.ts),
                peak_pps: e.peak_pps as f64,
                peak_bps: e.peak_bps as f64,
                trigger: e.trigger.kind.to_string(),
            })
            .collect()
    }

    pub fn describe(&self) -> String {
        format!(
            "{} {} carpet={} vectors={:?} {}..{} peak {:.0} pps {:.0} bps ({})",
            if self.outgoing {
                "outgoing"
            } else {
                "incoming"
            },
            self.target,
            self.carpet_bombing,
            self.vectors,
            rfc3339_ms(self.started_at_ms),
            rfc3339_ms(self.ended_at_ms),
            self.peak_pps,
            self.peak_bps,
            self.trigger
        )
    }
}

fn relative(measured: f64, truth: f64) -> f64 {
    (measured - truth).abs() / truth.max(1e-9)
}

impl ResolvedTruth {
    /// Every way `detected` departs from the truth, one line each; empty when it matches.
    pub fn check(&self, detected: &[Detected]) -> Vec<String> {
        let mut problems = Vec::new();
        let mut used = vec![false; detected.len()];
        for e in &self.expect {
            let outgoing = e.direction == Direction::Outgoing;
            let matches: Vec<usize> = detected
                .iter()
                .enumerate()
                // A report of the attack overlaps it in time (the same target may be attacked
                // again later, as in the hours of `floodwall bench false-alarms`).
                .filter(|(_, d)| {
                    d.target == e.target
                        && d.outgoing == outgoing
                        && d.started_at_ms < e.end_ms + END_SLACK_MS
                        && d.ended_at_ms + END_SLACK_MS > e.start_ms
                })
                .map(|(i, _)| i)
                .collect();
            for &i in &matches {
                used[i] = true;
            }
            let what = format!("{} {:?} {}", e.traffic, e.direction, e.target);
            match matches.as_slice() {
                [] if e.required => problems.push(format!("{what}: not detected")),
                [] => {}
                [i] => {
                    let d = &detected[*i];
                    if d.carpet_bombing != e.carpet_bombing {
                        problems.push(format!(
                            "{what}: carpet_bombing {} (truth {})",
                            d.carpet_bombing, e.carpet_bombing
                        ));
                    }
                    for v in &e.vectors {
                        if !d.vectors.contains(v) {
                            problems.push(format!("{what}: vector {v} missing ({:?})", d.vectors));
                        }
                    }
                    if d.started_at_ms < e.start_ms {
                        problems.push(format!(
                            "{what}: started {} before the attack ({})",
                            rfc3339_ms(d.started_at_ms),
                            e.start
                        ));
                    }
                    if d.started_at_ms > e.crossing_ms + START_SLACK_MS {
                        problems.push(format!(
                            "{what}: started {}, more than {} ms after the crossing second {}",
                            rfc3339_ms(d.started_at_ms),
                            START_SLACK_MS,
                            rfc3339_ms(e.crossing_ms)
                        ));
                    }
                    if d.ended_at_ms < e.last_crossing_end_ms.min(e.end_ms) {
                        problems.push(format!(
                            "{what}: ended {} before {}",
                            rfc3339_ms(d.ended_at_ms),
                            rfc3339_ms(e.last_crossing_end_ms.min(e.end_ms))
                        ));
                    }
                    if d.ended_at_ms > e.end_ms + END_SLACK_MS {
                        problems.push(format!(
                            "{what}: ended {}, after the attack's end {} + {} ms",
                            rfc3339_ms(d.ended_at_ms),
                            e.end,
                            END_SLACK_MS
                        ));
                    }
                    if e.required {
                        let (p, b) = (
                            relative(d.peak_pps, e.peak_pps),
                            relative(d.peak_bps, e.peak_bps),
                        );
                        if p > e.tolerance_pps {
                            problems.push(format!(
                                "{what}: peak {:.0} pps is {:.1} % off the truth {:.0} (tolerance {:.1} %)",
                                d.peak_pps, p * 100.0, e.peak_pps, e.tolerance_pps * 100.0
                            ));
                        }
                        if b > e.tolerance_bps {
                            problems.push(format!(
                                "{what}: peak {:.0} bps is {:.1} % off the truth {:.0} (tolerance {:.1} %)",
                                d.peak_bps, b * 100.0, e.peak_bps, e.tolerance_bps * 100.0
                            ));
                        }
                    }
                }
                many => problems.push(format!(
                    "{what}: reported {} times: {}",
                    many.len(),
                    many.iter()
                        .map(|&i| detected[i].describe())
                        .collect::<Vec<_>>()
                        .join("; ")
                )),
            }
        }
        if !self.others_allowed {
            for (d, used) in detected.iter().zip(&used) {
                if !used {
                    problems.push(format!("false positive: {}", d.describe()));
                }
            }
        }
        problems
    }

    /// Expected attacks that must be reported.
    pub fn required(&self) -> impl Iterator<Item = &Expectation> {
        self.expect.iter().filter(|e| e.required)
    }
}
