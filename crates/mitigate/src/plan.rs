//! The plan: which rules the network holds now, and the guard rails that decide when they come
//! and go. Attack events and operator commands go in with the time; changes (announce,
//! withdraw) come out for the actions to carry out. Its state serialises to a snapshot the
//! daemon persists before acting, so a restart or a crash resumes it: nothing stuck, nothing
//! lost.
//!
//! One rule per kind and target (`blackhole:203.0.113.7/32`, `flowspec:203.0.113.0/24`):
//! a new attack on a target already held adopts its rule, so an attack that pauses and
//! returns, or one detected again after a restart, keeps its routes instead of flapping them.

use std::collections::BTreeMap;

use floodwall_detect::fingerprint::Fingerprint;
use floodwall_detect::{AttackEvent, Direction, EventKind};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, MitigationConfig};
use crate::derive::{coverage_of, filter_for};
use crate::mitigation::Mitigation;
use crate::rule::Rule;

/// What the actions must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Announce(Mitigation),
    Withdraw {
        mitigation: Mitigation,
        reason: WithdrawReason,
    },
}

/// Why a rule goes (or, for a rule followed by a new one, was replaced). Written as its sentence:
/// in logs, the withdrawal notice's `reason` and a decision's `reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WithdrawReason {
    /// After a restart, the attack of a rule it was still holding was not detected again.
    #[error("attack not seen again after restart")]
    NotSeenAfterRestart,
    /// A manual rule's duration ran out.
    #[error("duration over")]
    DurationOver,
    /// `max_seconds` ended a rule whose attack goes on.
    #[error("max_seconds reached")]
    MaxSeconds,
    /// The attack ended and its hold-down ran out.
    #[error("attack over")]
    AttackOver,
    /// A filter in place covered too little of its attack.
    #[error("the attack changed: rule derived again")]
    AttackChanged,
    /// A filter derived while its fingerprint was still settling.
    #[error("the fingerprint settled: rule derived again")]
    FingerprintSettled,
    /// A narrower filter covers as much of the attack.
    #[error("a narrower rule covers as much")]
    Narrower,
    /// A new attack on a held target adopted the rule with its own.
    #[error("replaced by the rule of a new attack")]
    NewAttack,
    /// An operator placed another rule of the same id.
    #[error("replaced by an operator")]
    ReplacedByOperator,
    #[error("withdrawn by an operator")]
    WithdrawnByOperator,
    /// The daemon stops without `keep_on_shutdown`.
    #[error("shutdown")]
    Shutdown,
    /// Restored from a snapshot, its target is now in `never`.
    #[error("target now never-mitigate")]
    NowNeverMitigate,
    /// Restored from a snapshot, its kind (or dry run) is no longer configured for its group.
    #[error("no longer configured")]
    NoLongerConfigured,
    /// A snapshot entry whose id is not its rule's.
    #[error("its id {id} is not its rule's ({rule_id})")]
    IdMismatch { id: String, rule_id: String },
    /// Restored from a snapshot, a guard rail refuses it now.
    #[error(transparent)]
    Refused(#[from] Refusal),
}

impl Serialize for WithdrawReason {
    /// As its sentence, which is what the withdrawal notice has always carried.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What became of a rule. The plan says `announced` for a rule it hands to the actions; the
/// actions replace that with what the mitigators did (`announced` only when one put it in the
/// network, else `queued` or `failed` with the reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// In the network: at least one mitigator sent it (a BGP peer up, ExaBGP took the command,
    /// nftables applied it).
    Announced,
    /// Handed to a mitigator that sends it when it can (no BGP session established yet).
    Queued,
    /// Wanted but in no network: no mitigator carries its kind, or each one failed.
    Failed,
    /// Recorded only: `dry_run`.
    DryRun,
    /// Already in place.
    Held,
    /// The attack's evidence does not confirm it yet (one datagram or one instant so far).
    AwaitingEvidence,
    /// A guard rail said no; the reason names it.
    Refused,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Announced => "announced",
            Status::Queued => "queued",
            Status::Failed => "failed",
            Status::DryRun => "dry_run",
            Status::Held => "held",
            Status::AwaitingEvidence => "awaiting_evidence",
            Status::Refused => "refused",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a guard rail refused a rule: the same rails for automatic, manual and restored rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The rule's target overlaps a `never` prefix.
    #[error("{target} overlaps never-mitigate {protected}")]
    NeverMitigate { target: IpNet, protected: IpNet },
    /// `max_active` rules are already held.
    #[error("max_active = {max} rules already held")]
    MaxActive { max: usize },
    /// The target is not inside the monitored networks.
    #[error(
        "{target} is not inside the monitored networks: Floodwall only mitigates for its own networks"
    )]
    OutsideNetworks { target: IpNet },
    /// The target is broader than the detection's prefix length allows.
    #[error(
        "{target} is broader than /{broadest}, the detection's prefix length: no rule covers more than one prefix"
    )]
    TooBroad { target: IpNet, broadest: u8 },
    /// A manual duration out of range.
    #[error(
        "{seconds} seconds is out of range: give 1 to {max} (a year), or none to hold until withdrawn",
        max = MAX_MANUAL_SECONDS
    )]
    Duration { seconds: u64 },
    /// A manual rule that is no rule (an unknown kind, a filter not aimed at its target).
    #[error("{0}")]
    Invalid(String),
}

/// An operator asked to withdraw a rule the plan does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no rule `{id}` is held; `floodwall mitigations` lists them")]
pub struct NotHeld {
    pub id: String,
}

/// The longest manual rule: a year. Longer is a typo, and would overflow the clock.
pub const MAX_MANUAL_SECONDS: u64 = 365 * 24 * 3600;

/// Where rules may go: the monitored networks (each with its hostgroup) and the broadest prefix
/// a rule may cover per family — the detection's prefix length, what a carpet is aimed at.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    /// The most specific network containing a target names its hostgroup.
    pub networks: Vec<(IpNet, String)>,
    pub broadest_v4: u8,
    pub broadest_v6: u8,
}

impl Scope {
    /// The hostgroup of `target`, if it lies inside the monitored networks.
    pub fn group_of(&self, target: &IpNet) -> Option<&str> {
        self.networks
            .iter()
            .filter(|(net, _)| net.contains(target))
            .max_by_key(|(net, _)| net.prefix_len())
            .map(|(_, group)| group.as_str())
    }
}

/// What became of one rule the plan considered for an attack event: goes into the event's
/// record, so the operator sees the rule, its coverage and why it was or was not announced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub id: String,
    pub rule: Rule,
    /// The rule as router configuration reads.
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<f64>,
    /// Estimated share of the target's traffic before the attack the rule also matches
    /// (filters, when that traffic was seen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collateral: Option<f64>,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What each mitigator did with it, filled in by the actions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mitigators: Vec<Delivery>,
}

/// One mitigator's outcome for one rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Delivery {
    /// `bgp`, `exabgp`, `nftables`.
    pub mitigator: String,
    /// `announced`, `queued` or `failed`.
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A rule in place, with what decides its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Held {
    pub mitigation: Mitigation,
    /// The attack it answers is going on (or, after a restart, was when we stopped).
    pub attack_active: bool,
    /// Withdraw at this time (Unix ms), whatever happens; `None` while the attack lasts.
    pub withdraw_at: Option<u64>,
    /// After a restart: the attack has not been seen again yet.
    #[serde(default)]
    pub unconfirmed: bool,
    /// Placed by an operator: only the operator or its duration takes it out.
    #[serde(default)]
    pub manual: bool,
    /// Sampled packets behind the fingerprint the rule was derived from: under
    /// [`SETTLED_SAMPLES`] the rule follows the fingerprint as it settles.
    #[serde(default)]
    pub derived_from_samples: u64,
}

/// Everything the plan needs to resume after a restart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub held: Vec<Held>,
    /// Announcement times (Unix ms) per rule id within the flap window.
    pub announcements: Vec<(String, Vec<u64>)>,
}

pub struct Planner {
    config: MitigationConfig,
    scope: Scope,
    held: BTreeMap<String, Held>,
    announcements: BTreeMap<String, Vec<u64>>,
    /// Attacks whose rules the operator withdrew or `max_seconds` ended: not announced again.
    released: Vec<String>,
}

const MS: u64 = 1_000;
/// A filter in place is derived again when it covers less than this of its attack's packets.
const REDERIVE: f64 = 0.8;
/// A fingerprint behind fewer samples is still settling: a filter derived from it is derived
/// again as the samples double (shares' error halves every fourfold).
pub const SETTLED_SAMPLES: u64 = 1024;
/// A narrower filter replaces the one in place when it covers at least this close to as much.
const NARROWER_SLACK: f64 = 0.01;
/// Released attack ids remembered; an attack lives minutes, so this covers any that can recur.
const RELEASED_KEPT: usize = 4_096;

impl Planner {
    /// A planner for `config` whose rules stay inside `scope`.
    pub fn new(config: MitigationConfig, scope: Scope) -> Result<Planner, ConfigError> {
        config.validate()?;
        Ok(Planner {
            config,
            scope,
            held: BTreeMap::new(),
            announcements: BTreeMap::new(),
            released: Vec::new(),
        })
    }

    pub fn config(&self) -> &MitigationConfig {
        &self.config
    }

    /// Rules in place (and recorded dry-run ones), by id.
    pub fn held(&self) -> impl Iterator<Item = &Held> {
        self.held.values()
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            held: self.held.values().cloned().collect(),
            announcements: self
                .announcements
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// Resumes from a snapshot after a restart at `now`: every held rule the guard rails still
    /// admit is announced again (routes do not survive a lost session); those whose attack was
    /// still going wait `restart_confirm_seconds` for it to be detected again, the rest keep
    /// their schedule. Rules over `max_active` (operators' first, then the newest) and rules the
    /// rails refuse are withdrawn with the reason, so nothing an earlier run left stays behind.
    pub fn restore(&mut self, snapshot: Snapshot, now: u64, changes: &mut Vec<Change>) {
        self.announcements = snapshot.announcements.into_iter().collect();
        let mut held = snapshot.held;
        // A snapshot is a file an operator can edit: the same id twice keeps the first.
        held.sort_by(|a, b| {
            b.manual
                .cmp(&a.manual)
                .then(b.mitigation.since.cmp(&a.mitigation.since))
        });
        let mut seen = std::collections::BTreeSet::new();
        for mut held in held {
            let id = rule_id(&held.mitigation.rule, held.mitigation.rule.target());
            if !seen.insert(id.clone()) {
                // The rule's first entry decided it: a duplicate neither holds nor withdraws.
                continue;
            }
            let refusal = if held.mitigation.id != id {
                Some(WithdrawReason::IdMismatch {
                    id: held.mitigation.id.clone(),
                    rule_id: id.clone(),
                })
            } else {
                self.no_longer_wanted(&held).or_else(|| {
                    self.admit(&held.mitigation.rule, &id)
                        .err()
                        .map(WithdrawReason::Refused)
                })
            };
            if let Some(reason) = refusal {
                // The configuration changed across the restart, or the snapshot asks for what
                // the rails refuse: it goes.
                changes.push(Change::Withdraw {
                    mitigation: held.mitigation,
                    reason,
                });
                continue;
            }
            if held.attack_active && !held.manual {
                held.unconfirmed = true;
                let confirm_by = now.saturating_add(self.config.restart_confirm_seconds * MS);
                let min_until = held
                    .mitigation
                    .since
                    .saturating_add(self.config.min_seconds * MS);
                held.withdraw_at = Some(confirm_by.max(min_until));
            }
            changes.push(Change::Announce(held.mitigation.clone()));
            self.held.insert(id, held);
        }
        self.tick(now, changes);
    }

    /// The guard rails every rule passes before it is held, whoever asks for it: never-mitigate,
    /// the monitored networks, the broadest prefix, and `max_active` (for a rule not held yet).
    pub fn admit(&self, rule: &Rule, id: &str) -> Result<(), Refusal> {
        let target = rule.target();
        let broadest = match target {
            IpNet::V4(_) => self.scope.broadest_v4,
            IpNet::V6(_) => self.scope.broadest_v6,
        };
        if target.prefix_len() == 0 || target.prefix_len() < broadest {
            return Err(Refusal::TooBroad { target, broadest });
        }
        if self.scope.group_of(&target).is_none() {
            return Err(Refusal::OutsideNetworks { target });
        }
        if let Some(protected) = self.config.never.iter().find(|n| overlaps(n, &target)) {
            return Err(Refusal::NeverMitigate {
                target,
                protected: *protected,
            });
        }
        if !self.held.contains_key(id) && self.held.len() >= self.config.max_active {
            return Err(Refusal::MaxActive {
                max: self.config.max_active,
            });
        }
        Ok(())
    }

    /// Why a held rule from a snapshot is not wanted under the current configuration, if not.
    fn no_longer_wanted(&self, held: &Held) -> Option<WithdrawReason> {
        let rule = &held.mitigation.rule;
        if self
            .config
            .never
            .iter()
            .any(|n| overlaps(n, &rule.target()))
        {
            return Some(WithdrawReason::NowNeverMitigate);
        }
        if held.manual {
            return None;
        }
        let group = &held.mitigation.hostgroup;
        let enabled = match rule {
            Rule::Blackhole { .. } => self.config.blackhole_for(group),
            Rule::Filter { .. } => self.config.flowspec_for(group),
        };
        (!enabled || held.mitigation.dry_run != self.config.dry_run_for(group))
            .then_some(WithdrawReason::NoLongerConfigured)
    }

    /// Rules due to go at `now` are withdrawn.
    pub fn tick(&mut self, now: u64, changes: &mut Vec<Change>) {
        let due: Vec<String> = self
            .held
            .iter()
            .filter(|(_, h)| h.withdraw_at.is_some_and(|t| t <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            if let Some(held) = self.held.remove(&id) {
                let reason = if held.unconfirmed {
                    WithdrawReason::NotSeenAfterRestart
                } else if held.manual {
                    WithdrawReason::DurationOver
                } else if held.attack_active {
                    self.release(&held);
                    WithdrawReason::MaxSeconds
                } else {
                    WithdrawReason::AttackOver
                };
                changes.push(Change::Withdraw {
                    mitigation: held.mitigation,
                    reason,
                });
            }
        }
        let window = self.config.flap_window_seconds * MS;
        self.announcements.retain(|_, times| {
            times.retain(|&t| t + window > now);
            !times.is_empty()
        });
    }

    /// Takes an attack event at `now`; returns what became of each rule it asked for.
    pub fn on_event(
        &mut self,
        event: &AttackEvent,
        now: u64,
        changes: &mut Vec<Change>,
    ) -> Vec<Decision> {
        if event.direction == Direction::Outgoing && !self.config.outgoing {
            return Vec::new();
        }
        match event.event {
            EventKind::AttackEnded => {
                self.on_end(event, now);
                self.tick(now, changes);
                Vec::new()
            }
            EventKind::AttackStarted | EventKind::AttackUpdated => {
                if self.released.contains(&event.attack_id) {
                    return Vec::new();
                }
                self.wanted(event)
                    .into_iter()
                    .map(|(rule, coverage)| self.place(event, rule, coverage, now, changes))
                    .collect()
            }
        }
    }

    /// The rules an attack calls for under the configuration.
    fn wanted(&self, event: &AttackEvent) -> Vec<(Rule, Option<f64>)> {
        let mut rules = Vec::new();
        let group = &event.hostgroup;
        let carpet = event.carpet_bombing;
        if self.config.blackhole_for(group) && (!carpet || self.config.blackhole.carpet) {
            let b = &self.config.blackhole;
            let next_hop = if event.target.addr().is_ipv6() {
                b.next_hop_v6
            } else {
                b.next_hop_v4
            };
            rules.push((
                Rule::Blackhole {
                    prefix: event.target,
                    next_hop,
                    communities: b.communities.clone(),
                },
                None,
            ));
        }
        if self.config.flowspec_for(group) && (!carpet || self.config.flowspec.carpet) {
            let (mut filter, coverage) = filter_for(event);
            if event.direction == Direction::Outgoing {
                // The customer's device is the source: filter what it sends, wherever to.
                filter.source = Some(event.target);
                filter.destination = any_of_family(event.target);
            }
            rules.push((
                Rule::Filter {
                    filter,
                    action: self.config.flow_action(),
                    communities: self.config.flowspec.communities.clone(),
                },
                Some(coverage),
            ));
        }
        rules
    }

    fn place(
        &mut self,
        event: &AttackEvent,
        rule: Rule,
        coverage: Option<f64>,
        now: u64,
        changes: &mut Vec<Change>,
    ) -> Decision {
        let id = rule_id(&rule, event.target);
        let collateral = collateral_of(&rule, event.before.as_ref());
        let samples = event.evidence.samples;
        let decision = |status, reason: Option<String>, rule: Rule| Decision {
            id: id.clone(),
            text: rule.to_string(),
            rule,
            coverage,
            collateral,
            status,
            reason,
            mitigators: Vec::new(),
        };
        let hard_stop = self.hard_stop(self.held.get(&id).map_or(now, |h| h.mitigation.since));
        if let Some(held) = self.held.get_mut(&id) {
            let in_place = |held: &Held, status, reason: Option<String>| Decision {
                id: id.clone(),
                text: held.mitigation.rule.to_string(),
                coverage: match &held.mitigation.rule {
                    Rule::Filter { filter, .. } => Some(coverage_of(filter, &event.fingerprint)),
                    Rule::Blackhole { .. } => None,
                },
                collateral: collateral_of(&held.mitigation.rule, event.before.as_ref()),
                rule: held.mitigation.rule.clone(),
                status,
                reason,
                mitigators: Vec::new(),
            };
            if held.manual {
                return in_place(held, Status::Held, Some("placed by an operator".into()));
            }
            // A new attack on a held target (or the same one seen again after a restart) adopts
            // the rule.
            let adopting = held.mitigation.attack_id.as_deref() != Some(&event.attack_id);
            held.attack_active = true;
            held.unconfirmed = false;
            held.withdraw_at = hard_stop;
            if adopting {
                held.mitigation.attack_id = Some(event.attack_id.clone());
            }
            // A filter follows its attack both ways: a new attack's signature; a wider one when
            // the rule in place covers too little (a multi-vector attack switched vectors); the
            // fingerprint's while it settles (a rule from the first partial second); a narrower
            // one that covers as much.
            let follow = match (&held.mitigation.rule, &rule) {
                (Rule::Filter { filter: old, .. }, Rule::Filter { filter: new, .. }) => {
                    let covered = coverage_of(old, &event.fingerprint);
                    let settling = held.derived_from_samples < SETTLED_SAMPLES
                        && samples >= held.derived_from_samples.saturating_mul(2);
                    let narrower =
                        new.within(old) && coverage.unwrap_or(1.0) + NARROWER_SLACK >= covered;
                    (covered < REDERIVE)
                        .then_some(WithdrawReason::AttackChanged)
                        .or(settling.then_some(WithdrawReason::FingerprintSettled))
                        .or(narrower.then_some(WithdrawReason::Narrower))
                }
                _ => None,
            };
            let reason = if adopting {
                Some(WithdrawReason::NewAttack)
            } else {
                follow
            };
            if held.mitigation.rule != rule {
                if let Some(reason) = reason {
                    let old = held.mitigation.clone();
                    held.mitigation.rule = rule.clone();
                    held.mitigation.coverage = coverage;
                    held.mitigation.collateral = collateral;
                    held.derived_from_samples = samples;
                    let text = reason.to_string();
                    changes.push(Change::Withdraw {
                        mitigation: old,
                        reason,
                    });
                    changes.push(Change::Announce(held.mitigation.clone()));
                    let status = if held.mitigation.dry_run {
                        Status::DryRun
                    } else {
                        Status::Announced
                    };
                    return decision(status, Some(text), rule);
                }
            }
            let status = if held.mitigation.dry_run {
                Status::DryRun
            } else {
                Status::Held
            };
            return in_place(held, status, None);
        }
        if let Err(refusal) = self.admit(&rule, &id) {
            return decision(Status::Refused, Some(refusal.to_string()), rule);
        }
        // Telemetry is unauthenticated UDP: nothing moves a route on one datagram's word.
        if !event.evidence.confirms() {
            let e = &event.evidence;
            return decision(
                Status::AwaitingEvidence,
                Some(format!(
                    "{} datagram(s) at {} instant(s) so far, the largest carrying {:.0} %: a rule waits for 2 datagrams at {} instants, none carrying most of the attack",
                    e.datagrams,
                    e.instants,
                    100.0 * e.largest_datagram_share,
                    floodwall_detect::event::Evidence::MIN_INSTANTS
                )),
                rule,
            );
        }
        let dry_run = self.config.dry_run_for(&event.hostgroup);
        let mitigation = Mitigation {
            id: id.clone(),
            attack_id: Some(event.attack_id.clone()),
            hostgroup: event.hostgroup.clone(),
            rule: rule.clone(),
            coverage,
            collateral,
            since: now,
            dry_run,
        };
        self.announcements.entry(id.clone()).or_default().push(now);
        self.held.insert(
            id.clone(),
            Held {
                mitigation: mitigation.clone(),
                attack_active: true,
                withdraw_at: self.hard_stop(now),
                unconfirmed: false,
                manual: false,
                derived_from_samples: samples,
            },
        );
        changes.push(Change::Announce(mitigation));
        let status = if dry_run {
            Status::DryRun
        } else {
            Status::Announced
        };
        decision(status, None, rule)
    }

    fn on_end(&mut self, event: &AttackEvent, now: u64) {
        let config = &self.config;
        for (id, held) in self.held.iter_mut() {
            if held.manual || held.mitigation.attack_id.as_deref() != Some(&event.attack_id) {
                continue;
            }
            let earlier = self
                .announcements
                .get(id)
                .map_or(0, |t| t.len().saturating_sub(1));
            let hold = (config.hold_down_seconds * MS)
                .saturating_mul(1u64 << earlier.min(20))
                .min(config.flap_max_hold_seconds.max(config.hold_down_seconds) * MS);
            held.attack_active = false;
            let min_until = held.mitigation.since + config.min_seconds * MS;
            let at = (now + hold).max(min_until);
            held.withdraw_at = Some(match held.withdraw_at {
                Some(hard_stop) => hard_stop.min(at),
                None => at,
            });
        }
    }

    /// `since + max_seconds`, if there is a maximum.
    fn hard_stop(&self, since: u64) -> Option<u64> {
        (self.config.max_seconds > 0).then(|| since + self.config.max_seconds * MS)
    }

    fn release(&mut self, held: &Held) {
        if let Some(attack) = &held.mitigation.attack_id {
            if self.released.len() >= RELEASED_KEPT {
                self.released.remove(0);
            }
            self.released.push(attack.clone());
        }
    }

    /// An operator places a rule, for `seconds` (or until withdrawn). The same guard rails as
    /// for attacks' rules apply — never-mitigate, the monitored networks, the broadest prefix,
    /// the cap — and the target's hostgroup's dry run: an operator who means it edits them.
    pub fn announce_manual(
        &mut self,
        rule: Rule,
        seconds: Option<u64>,
        now: u64,
        changes: &mut Vec<Change>,
    ) -> Result<Mitigation, Refusal> {
        let until = match seconds {
            None => None,
            Some(s) if (1..=MAX_MANUAL_SECONDS).contains(&s) => Some(now.saturating_add(s * MS)),
            Some(seconds) => return Err(Refusal::Duration { seconds }),
        };
        let id = rule_id(&rule, rule.target());
        self.admit(&rule, &id)?;
        let group = self
            .scope
            .group_of(&rule.target())
            .unwrap_or("default")
            .to_string();
        let dry_run = self.config.dry_run_for(&group);
        if let Some(old) = self.held.get(&id) {
            if old.mitigation.rule == rule && old.mitigation.dry_run == dry_run {
                return Ok(old.mitigation.clone());
            }
        }
        let mitigation = Mitigation {
            id: id.clone(),
            attack_id: None,
            hostgroup: "manual".into(),
            rule,
            coverage: None,
            collateral: None,
            since: now,
            dry_run,
        };
        if let Some(old) = self.held.remove(&id) {
            changes.push(Change::Withdraw {
                mitigation: old.mitigation,
                reason: WithdrawReason::ReplacedByOperator,
            });
        }
        self.held.insert(
            id,
            Held {
                mitigation: mitigation.clone(),
                attack_active: false,
                withdraw_at: until,
                unconfirmed: false,
                manual: true,
                derived_from_samples: 0,
            },
        );
        changes.push(Change::Announce(mitigation.clone()));
        Ok(mitigation)
    }

    /// An operator withdraws a rule by id; an attack's rule is not announced again for that
    /// attack.
    pub fn withdraw_manual(
        &mut self,
        id: &str,
        changes: &mut Vec<Change>,
    ) -> Result<Mitigation, NotHeld> {
        let held = self
            .held
            .remove(id)
            .ok_or_else(|| NotHeld { id: id.into() })?;
        self.release(&held);
        changes.push(Change::Withdraw {
            mitigation: held.mitigation.clone(),
            reason: WithdrawReason::WithdrawnByOperator,
        });
        Ok(held.mitigation)
    }

    /// The daemon stops. Without `keep_on_shutdown` every rule is withdrawn and forgotten.
    pub fn shutdown(&mut self, changes: &mut Vec<Change>) {
        if self.config.keep_on_shutdown {
            return;
        }
        for (_, held) in std::mem::take(&mut self.held) {
            changes.push(Change::Withdraw {
                mitigation: held.mitigation,
                reason: WithdrawReason::Shutdown,
            });
        }
    }
}

/// `blackhole:203.0.113.7/32`, `flowspec:2001:db8::/64`: one rule per kind and target.
pub fn rule_id(rule: &Rule, target: IpNet) -> String {
    format!("{}:{target}", rule.kind())
}

/// The share of the target's traffic before the attack a filter also matches, when it is known.
fn collateral_of(rule: &Rule, before: Option<&Fingerprint>) -> Option<f64> {
    match (rule, before) {
        (Rule::Filter { filter, .. }, Some(before)) if before.packets > 0 => {
            Some(coverage_of(filter, before))
        }
        _ => None,
    }
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(b) || b.contains(a)
}

fn any_of_family(net: IpNet) -> IpNet {
    match net {
        IpNet::V4(_) => "0.0.0.0/0".parse().expect("valid literal"),
        IpNet::V6(_) => "::/0".parse().expect("valid literal"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{event, ntp_flood};

    const S: u64 = 1_000;

    /// The monitored networks of the tests.
    fn scope() -> Scope {
        Scope {
            networks: ["203.0.113.0/24", "198.51.100.0/24", "2001:db8::/32"]
                .iter()
                .map(|n| (n.parse().unwrap(), "default".to_string()))
                .collect(),
            broadest_v4: 24,
            broadest_v6: 48,
        }
    }

    fn config() -> MitigationConfig {
        let mut c = MitigationConfig::default();
        c.blackhole.enabled = true;
        c.flowspec.enabled = true;
        c.min_seconds = 60;
        c.hold_down_seconds = 120;
        c
    }

    fn started(id: &str, target: &str) -> AttackEvent {
        event(EventKind::AttackStarted, id, target, ntp_flood())
    }

    fn with_kind(kind: EventKind, id: &str, target: &str) -> AttackEvent {
        event(kind, id, target, ntp_flood())
    }

    fn announced(changes: &[Change]) -> Vec<String> {
        changes
            .iter()
            .filter_map(|c| match c {
                Change::Announce(m) => Some(m.id.clone()),
                Change::Withdraw { .. } => None,
            })
            .collect()
    }

    fn withdrawn(changes: &[Change]) -> Vec<(String, WithdrawReason)> {
        changes
            .iter()
            .filter_map(|c| match c {
                Change::Withdraw { mitigation, reason } => {
                    Some((mitigation.id.clone(), reason.clone()))
                }
                Change::Announce(_) => None,
            })
            .collect()
    }

    #[test]
    fn an_attack_gets_its_rules_until_the_hold_down_after_it_ends() {
        let mut plan = Planner::new(config(), scope()).unwrap();
        let mut changes = Vec::new();
        let decisions = plan.on_event(&started("a1", "203.0.113.7/32"), 1_000 * S, &mut changes);
        assert_eq!(
            announced(&changes),
            ["blackhole:203.0.113.7/32", "flowspec:203.0.113.7/32"]
        );
        assert_eq!(
            decisions[1].text,
            "flowspec dst 203.0.113.7/32 proto 17 sport 123 then discard"
        );
        assert_eq!(decisions[1].coverage, Some(1.0));
        assert!(decisions.iter().all(|d| d.status == Status::Announced));
        // Updates keep what is held; nothing is announced twice.
        changes.clear();
        let decisions = plan.on_event(
            &with_kind(EventKind::AttackUpdated, "a1", "203.0.113.7/32"),
            1_030 * S,
            &mut changes,
        );
        assert!(changes.is_empty());
        assert!(decisions.iter().all(|d| d.status == Status::Held));
        plan.on_event(
            &with_kind(EventKind::AttackEnded, "a1", "203.0.113.7/32"),
            1_100 * S,
            &mut changes,
        );
        plan.tick(1_219 * S, &mut changes);
        assert!(
            changes.is_empty(),
            "withdrawn before the hold-down: {changes:?}"
        );
        plan.tick(1_220 * S, &mut changes);
        assert_eq!(
            withdrawn(&changes),
            [
                (
                    "blackhole:203.0.113.7/32".to_string(),
                    WithdrawReason::AttackOver
                ),
                (
                    "flowspec:203.0.113.7/32".to_string(),
                    WithdrawReason::AttackOver
                )
            ]
        );
        assert_eq!(plan.held().count(), 0);
    }

    #[test]
    fn a_short_attack_keeps_its_rules_for_the_minimum_time() {
        let mut c = config();
        c.hold_down_seconds = 0;
        let mut plan = Planner::new(c, scope()).unwrap();
        let mut changes = Vec::new();
        plan.on_event(&started("a1", "203.0.113.7/32"), 0, &mut changes);
        plan.on_event(
            &with_kind(EventKind::AttackEnded, "a1", "203.0.113.7/32"),
            5 * S,
            &mut changes,
        );
        changes.clear();
        plan.tick(59 * S, &mut changes);
        assert!(changes.is_empty());
        plan.tick(60 * S, &mut changes);
        assert_eq!(withdrawn(&changes).len(), 2);
    }

    /// A host attack inside a prefix under a carpet attack (both reported, each on its own):
    /// the host's /32 rules and the prefix's rules are held side by side, and each goes with its
    /// own attack.
    #[test]
    fn a_host_attack_and_a_carpet_on_its_prefix_hold_their_rules_side_by_side() {
        let mut c = config();
        c.blackhole.carpet = true;
        c.flowspec.carpet = true;
        c.hold_down_seconds = 0;
        let mut plan = Planner::new(c, scope()).unwrap();
        let mut changes = Vec::new();
        let carpet = plan.on_event(&started("c1", "203.0.113.0/24"), 0, &mut changes);
        let host = plan.on_event(&started("h1", "203.0.113.7/32"), S, &mut changes);
        assert!(carpet
            .iter()
            .chain(&host)
            .all(|d| d.status == Status::Announced));
        assert_eq!(
            announced(&changes),
            [
                "blackhole:203.0.113.0/24",
                "flowspec:203.0.113.0/24",
                "blackhole:203.0.113.7/32",
                "flowspec:203.0.113.7/32"
            ]
        );
        assert_eq!(plan.held().count(), 4);
        // The carpet ends first: only its rules go; the host's stay while its attack lasts.
        changes.clear();
        plan.on_event(
            &with_kind(EventKind::AttackEnded, "c1", "203.0.113.0/24"),
            10 * S,
            &mut changes,
        );
        plan.tick(70 * S, &mut changes);
        assert_eq!(
            withdrawn(&changes),
            [
                (
                    "blackhole:203.0.113.0/24".to_string(),
                    WithdrawReason::AttackOver
                ),
                (
                    "flowspec:203.0.113.0/24".to_string(),
                    WithdrawReason::AttackOver
                )
            ]
        );
        let held: Vec<String> = plan.held().map(|h| h.mitigation.id.clone()).collect();
        assert_eq!(
            held,
            ["blackhole:203.0.113.7/32", "flowspec:203.0.113.7/32"]
        );
    }

    #[test]
    fn never_mitigate_prefixes_are_not_announced_even_inside_a_carpet() {
        let mut c = config();
        c.never = vec!["203.0.113.0/28".parse().unwrap()];
        c.blackhole.carpet = true;
        let mut plan = Planner::new(c, scope()).unwrap();
        let mut changes = Vec::new();
        let host = plan.on_event(&started("a1", "203.0.113.7/32"), 0, &mut changes);
        let carpet = plan.on_event(&started("a2", "203.0.113.0/24"), 0, &mut changes);
        let other = plan.on_event(&started("a3", "203.0.113.99/32"), 0, &mut changes);
        assert!(host
            .iter()
            .chain(&carpet)
            .all(|d| d.status == Status::Refused));
        assert!(host[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("never-mitigate 203.0.113.0/28"));
        assert!(other.iter().all(|d| d.status == Status::Announced));
        assert_eq!(
            announced(&changes),
            ["blackhole:203.0.113.99/32", "flowspec:203.0.113.99/32"]
        );
    }

    #[test]
    fn the_cap_holds_and_a_refused_attack_is_mitigated_when_room_frees_up() {
        let mut c = config();
        c.flowspec.enabled = false;
        c.max_active = 2;
        c.min_seconds = 0;
        c.hold_down_seconds = 0;
        let mut plan = Planner::new(c, scope()).unwrap();
        let mut changes = Vec::new();
        for (i, target) in ["198.51.100.1/32", "198.51.100.2/32", "198.51.100.3/32"]
            .iter()
            .enumerate()
        {
            plan.on_event(&started(&format!("a{i}"), target), 0, &mut changes);
        }
        assert_eq!(plan.held().count(), 2);
        let refused = plan.on_event(
            &with_kind(EventKind::AttackUpdated, "a2", "198.51.100.3/32"),
            S,
            &mut changes,
        );
        assert_eq!(refused[0].status, Status::Refused);
        assert!(refused[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("max_active = 2"));
        plan.on_event(
            &with_kind(EventKind::AttackEnded, "a0", "198.51.100.1/32"),
            2 * S,
            &mut changes,
        );
        changes.clear();
        let later = plan.on_event(
            &with_kind(EventKind::AttackUpdated, "a2", "198.51.100.3/32"),
            3 * S,
            &mut changes,
        );
        assert_eq!(later[0].status, Status::Announced);
        assert_eq!(plan.held().count(), 2);
    }

    #[test]
    fn max_seconds_withdraws_a_long_attack_and_does_not_announce_it_again() {
        let mut c = config();
        c.max_seconds = 600;
        let mut plan = Planner::new(c, scope()).unwrap();
        let mut changes = Vec::new();
        plan.on_event(&started("a1", "203.0.113.7/32"), 0, &mut changes);
        changes.clear();
        plan.tick(600 * S, &mut changes);
        assert_eq!(withdrawn(&changes)[0].1, WithdrawReason::MaxSeconds);
        changes.clear();
        let decisions = plan.on_event(
            &with_kind(EventKind::AttackUpdated, "a1", "203.0.113.7/32"),
            601 * S,
            &mut changes,
        );
        assert!(decisions.is_empty() && changes.is_empty());
    }

    #[test]
    fn a_flapping_target_is_held_twice_as_long_each_time() {
        let mut c = config();
        c.flowspec.enabled = false;
        c.min_seconds = 0;
        c.hold_down_seconds = 100;
        let mut plan = Planner::new(c, scope()).unwrap();
        let mut changes = Vec::new();
        let mut t = 0;
        let mut holds = Vec::new();
        for i in 0..3 {
            let id = format!("a{i}");
            plan.on_event(&started(&id, "203.0.113.7/32"), t, &mut changes);
            plan.on_event(
                &with_kind(EventKind::AttackEnded, &id, "203.0.113.7/32"),
                t + 10 * S,
                &mut changes,
            );
            let withdraw_at = plan.held().next().unwrap().withdraw_at.unwrap();
            holds.push((withdraw_at - (t + 10 * S)) / S);
            t = withdraw_at;
            plan.tick(t, &mut changes);
        }
        assert_eq!(holds, [100, 200, 400]);
    }

    #[test]
    fn an_attack_returning_during_the_hold_down_keeps_its_rule_without_a_flap() {
        let mut plan = Planner::new(config(), scope()).unwrap();
        let mut changes = Vec::new();
        plan.on_event(&started("a1", "203.0.113.7/32"), 0, &mut changes);
        plan.on_event(
            &with_kind(EventKind::AttackEnded, "a1", "203.0.113.7/32"),
            100 * S,
            &mut changes,
        );
        changes.clear();
        let decisions = plan.on_event(&started("a2", "203.0.113.7/32"), 150 * S, &mut changes);
        assert!(changes.is_empty(), "same rule: no withdraw/announce churn");
        assert!(decisions.iter().all(|d| d.status == Status::Held));
        plan.tick(10_000 * S, &mut changes);
        assert!(changes.is_empty(), "the new attack is still going");
        assert!(plan
            .held()
            .all(|h| h.mitigation.attack_id.as_deref() == Some("a2")));
    }

    #[test]
    fn dry_run_records_without_announcing_per_hostgroup() {
        let mut c = config();
        c.hostgroups.push(crate::config::HostgroupMitigation {
            name: "default".into(),
            dry_run: Some(true),
            blackhole: Some(false),
            flowspec: None,
        });
        let mut plan = Planner::new(c, scope()).unwrap();
        let mut changes = Vec::new();
        let decisions = plan.on_event(&started("a1", "203.0.113.7/32"), 0, &mut changes);
        assert_eq!(decisions.len(), 1);
        assert_eq!(decisions[0].status, Status::DryRun);
        assert!(
            matches!(&changes[..], [Change::Announce(m)] if m.dry_run && m.rule.kind() == crate::RuleKind::Flowspec)
        );
    }

    #[test]
    fn after_a_restart_active_rules_return_and_go_unless_the_attack_is_seen_again() {
        let mut plan = Planner::new(config(), scope()).unwrap();
        let mut changes = Vec::new();
        plan.on_event(&started("a1", "203.0.113.7/32"), 0, &mut changes);
        plan.on_event(&started("a2", "203.0.113.8/32"), 0, &mut changes);
        let snapshot = plan.snapshot();
        let json = serde_json::to_string(&snapshot).unwrap();

        // The daemon crashed at 500 s and is back at 510 s.
        let mut plan = Planner::new(config(), scope()).unwrap();
        changes.clear();
        plan.restore(serde_json::from_str(&json).unwrap(), 510 * S, &mut changes);
        assert_eq!(
            announced(&changes).len(),
            4,
            "every held rule is announced again"
        );
        // .7 is still under attack and detected again (a new attack id); .8 is not.
        plan.on_event(&started("b1", "203.0.113.7/32"), 512 * S, &mut changes);
        changes.clear();
        plan.tick(540 * S, &mut changes);
        let gone = withdrawn(&changes);
        assert_eq!(gone.len(), 2);
        assert!(gone.iter().all(|(id, why)| id.ends_with("203.0.113.8/32")
            && *why == WithdrawReason::NotSeenAfterRestart));
        assert!(plan
            .held()
            .all(|h| h.mitigation.attack_id.as_deref() == Some("b1") && !h.unconfirmed));
    }

    #[test]
    fn an_operator_announces_and_withdraws_by_hand() {
        let mut plan = Planner::new(config(), scope()).unwrap();
        let mut changes = Vec::new();
        let rule = Rule::Blackhole {
            prefix: "198.51.100.9/32".parse().unwrap(),
            next_hop: "192.0.2.1".parse().unwrap(),
            communities: vec![crate::Community::BLACKHOLE],
        };
        let m = plan
            .announce_manual(rule, Some(30), 0, &mut changes)
            .unwrap();
        assert_eq!(m.id, "blackhole:198.51.100.9/32");
        plan.tick(29 * S, &mut changes);
        assert_eq!(withdrawn(&changes).len(), 0);
        plan.tick(30 * S, &mut changes);
        assert_eq!(
            withdrawn(&changes),
            [(
                "blackhole:198.51.100.9/32".to_string(),
                WithdrawReason::DurationOver
            )]
        );

        // Withdrawing an attack's rule by hand keeps it out for that attack.
        plan.on_event(&started("a1", "203.0.113.7/32"), 0, &mut changes);
        plan.withdraw_manual("flowspec:203.0.113.7/32", &mut changes)
            .unwrap();
        changes.clear();
        plan.on_event(
            &with_kind(EventKind::AttackUpdated, "a1", "203.0.113.7/32"),
            S,
            &mut changes,
        );
        assert!(changes.is_empty());
        assert!(plan
            .withdraw_manual("flowspec:203.0.113.7/32", &mut changes)
            .is_err());
    }

    #[test]
    fn shutdown_withdraws_everything_unless_told_to_keep() {
        let mut plan = Planner::new(config(), scope()).unwrap();
        let mut changes = Vec::new();
        plan.on_event(&started("a1", "203.0.113.7/32"), 0, &mut changes);
        changes.clear();
        plan.shutdown(&mut changes);
        assert_eq!(withdrawn(&changes).len(), 2);
        assert!(plan.snapshot().held.is_empty());

        let mut c = config();
        c.keep_on_shutdown = true;
        let mut plan = Planner::new(c, scope()).unwrap();
        plan.on_event(&started("a1", "203.0.113.7/32"), 0, &mut changes);
        changes.clear();
        plan.shutdown(&mut changes);
        assert!(changes.is_empty());
        assert_eq!(plan.snapshot().held.len(), 2);
    }

    #[test]
    fn ipv6_targets_get_the_ipv6_discard_next_hop() {
        let mut plan = Planner::new(config(), scope()).unwrap();
        let mut changes = Vec::new();
        plan.on_event(&started("a1", "2001:db8::7/128"), 0, &mut changes);
        match &changes[0] {
            Change::Announce(m) => {
                assert_eq!(
                    m.rule.to_string(),
                    "blackhole 2001:db8::7/128 next-hop 100::1 communities 65535:666"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn outgoing_attacks_are_filtered_at_their_source_only_when_asked() {
        let mut outgoing = started("o1", "203.0.113.9/32");
        outgoing.direction = Direction::Outgoing;
        let mut changes = Vec::new();
        assert!(Planner::new(config(), scope())
            .unwrap()
            .on_event(&outgoing, 0, &mut changes)
            .is_empty());
        let mut c = config();
        c.outgoing = true;
        c.blackhole.enabled = false;
        let decisions = Planner::new(c, scope())
            .unwrap()
            .on_event(&outgoing, 0, &mut changes);
        assert_eq!(decisions.len(), 1);
        assert_eq!(decisions[0].id, "flowspec:203.0.113.9/32");
        assert_eq!(
            decisions[0].text,
            "flowspec dst 0.0.0.0/0 src 203.0.113.9/32 proto 17 sport 123 then discard"
        );
    }

    #[test]
    fn a_restart_under_a_changed_configuration_withdraws_what_it_no_longer_asks_for() {
        let mut plan = Planner::new(config(), scope()).unwrap();
        let mut changes = Vec::new();
        plan.on_event(&started("a1", "203.0.113.7/32"), 0, &mut changes);
        plan.on_event(&started("a2", "203.0.113.8/32"), 0, &mut changes);
        let snapshot = plan.snapshot();

        let mut c = config();
        c.blackhole.enabled = false;
        c.never = vec!["203.0.113.8/32".parse().unwrap()];
        let mut plan = Planner::new(c, scope()).unwrap();
        changes.clear();
        plan.restore(snapshot, 10 * S, &mut changes);
        assert_eq!(announced(&changes), ["flowspec:203.0.113.7/32"]);
        let mut gone = withdrawn(&changes);
        gone.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            gone,
            [
                (
                    "blackhole:203.0.113.7/32".to_string(),
                    WithdrawReason::NoLongerConfigured
                ),
                (
                    "blackhole:203.0.113.8/32".to_string(),
                    WithdrawReason::NowNeverMitigate
                ),
                (
                    "flowspec:203.0.113.8/32".to_string(),
                    WithdrawReason::NowNeverMitigate
                ),
            ]
        );
        assert_eq!(plan.held().count(), 1);
    }

    #[test]
    fn a_filter_follows_an_attack_that_switches_vectors() {
        let mut plan = Planner::new(config(), scope()).unwrap();
        let mut changes = Vec::new();
        plan.on_event(&started("a1", "203.0.113.7/32"), 0, &mut changes);
        changes.clear();
        // Still NTP: the rule stays.
        let same = plan.on_event(
            &with_kind(EventKind::AttackUpdated, "a1", "203.0.113.7/32"),
            S,
            &mut changes,
        );
        assert!(changes.is_empty());
        assert_eq!(same[1].coverage, Some(1.0));
        // Now DNS reflection: port 123 covers nothing of it.
        let mut dns = crate::testing::ntp_flood();
        dns.top_source_ports[0].value = 53;
        let switched = event(EventKind::AttackUpdated, "a1", "203.0.113.7/32", dns);
        let decisions = plan.on_event(&switched, 2 * S, &mut changes);
        assert_eq!(
            withdrawn(&changes),
            [(
                "flowspec:203.0.113.7/32".to_string(),
                WithdrawReason::AttackChanged
            )]
        );
        assert_eq!(announced(&changes), ["flowspec:203.0.113.7/32"]);
        assert_eq!(
            decisions[1].text,
            "flowspec dst 203.0.113.7/32 proto 17 sport 53 then discard"
        );
        assert_eq!(
            decisions[0].status,
            Status::Held,
            "the blackhole is unchanged"
        );
    }

    /// The sentences operators and notices have always read.
    #[test]
    fn reasons_read_as_they_always_have() {
        let target: IpNet = "203.0.113.0/16".parse().unwrap();
        for (reason, text) in [
            (
                WithdrawReason::NotSeenAfterRestart,
                "attack not seen again after restart",
            ),
            (WithdrawReason::DurationOver, "duration over"),
            (WithdrawReason::MaxSeconds, "max_seconds reached"),
            (WithdrawReason::AttackOver, "attack over"),
            (
                WithdrawReason::AttackChanged,
                "the attack changed: rule derived again",
            ),
            (
                WithdrawReason::FingerprintSettled,
                "the fingerprint settled: rule derived again",
            ),
            (WithdrawReason::Narrower, "a narrower rule covers as much"),
            (WithdrawReason::NewAttack, "replaced by the rule of a new attack"),
            (WithdrawReason::ReplacedByOperator, "replaced by an operator"),
            (WithdrawReason::WithdrawnByOperator, "withdrawn by an operator"),
            (WithdrawReason::Shutdown, "shutdown"),
            (WithdrawReason::NowNeverMitigate, "target now never-mitigate"),
            (WithdrawReason::NoLongerConfigured, "no longer configured"),
            (
                WithdrawReason::IdMismatch {
                    id: "x".into(),
                    rule_id: "blackhole:203.0.113.7/32".into(),
                },
                "its id x is not its rule's (blackhole:203.0.113.7/32)",
            ),
            (
                WithdrawReason::Refused(Refusal::TooBroad {
                    target,
                    broadest: 24,
                }),
                "203.0.113.0/16 is broader than /24, the detection's prefix length: no rule covers more than one prefix",
            ),
        ] {
            assert_eq!(reason.to_string(), text);
            assert_eq!(serde_json::to_value(&reason).unwrap(), text);
        }
        for (refusal, text) in [
            (
                Refusal::NeverMitigate {
                    target,
                    protected: "203.0.113.7/32".parse().unwrap(),
                },
                "203.0.113.0/16 overlaps never-mitigate 203.0.113.7/32",
            ),
            (
                Refusal::MaxActive { max: 3 },
                "max_active = 3 rules already held",
            ),
            (
                Refusal::OutsideNetworks { target },
                "203.0.113.0/16 is not inside the monitored networks: Floodwall only mitigates for its own networks",
            ),
            (
                Refusal::Duration { seconds: 0 },
                "0 seconds is out of range: give 1 to 31536000 (a year), or none to hold until withdrawn",
            ),
            (Refusal::Invalid("no such kind".into()), "no such kind"),
        ] {
            assert_eq!(refusal.to_string(), text);
        }
        assert_eq!(
            NotHeld { id: "x".into() }.to_string(),
            "no rule `x` is held; `floodwall mitigations` lists them"
        );
    }

    fn blackhole(prefix: &str) -> Rule {
        Rule::Blackhole {
            prefix: prefix.parse().unwrap(),
            next_hop: "192.0.2.1".parse().unwrap(),
            communities: vec![crate::Community::BLACKHOLE],
        }
    }

    #[test]
    fn manual_rules_pass_the_same_guard_rails() {
        let mut c = config();
        c.dry_run = true;
        c.max_active = 1;
        let mut plan = Planner::new(c, scope()).unwrap();
        let mut changes = Vec::new();
        for (prefix, refusal) in [
            ("0.0.0.0/0", "broader than /24"),
            ("::/0", "broader than /48"),
            ("203.0.0.0/16", "broader than /24"),
            ("192.0.2.7/32", "not inside the monitored networks"),
        ] {
            let err = plan
                .announce_manual(blackhole(prefix), None, 0, &mut changes)
                .unwrap_err();
            assert!(err.to_string().contains(refusal), "{prefix}: {err}");
        }
        let err = plan
            .announce_manual(blackhole("203.0.113.9/32"), Some(u64::MAX), 0, &mut changes)
            .unwrap_err();
        assert_eq!(err, Refusal::Duration { seconds: u64::MAX });
        assert!(changes.is_empty());
        // Dry run holds for an operator's rule too: recorded, never announced.
        let m = plan
            .announce_manual(blackhole("203.0.113.9/32"), Some(60), 0, &mut changes)
            .unwrap();
        assert!(m.dry_run);
        let err = plan
            .announce_manual(blackhole("203.0.113.10/32"), None, 0, &mut changes)
            .unwrap_err();
        assert_eq!(err, Refusal::MaxActive { max: 1 });
    }

    #[test]
    fn a_restored_snapshot_passes_the_guard_rails_and_the_cap() {
        let mut c = config();
        c.max_active = 100;
        let mut held: Vec<Held> = (0..500u64)
            .map(|i| Held {
                mitigation: Mitigation {
                    id: format!("blackhole:203.0.113.{}/32", i % 250),
                    attack_id: Some(format!("a{i}")),
                    hostgroup: "default".into(),
                    rule: blackhole(&format!("203.0.113.{}/32", i % 250)),
                    coverage: None,
                    collateral: None,
                    since: i * S,
                    dry_run: false,
                },
                attack_active: true,
                withdraw_at: None,
                unconfirmed: false,
                manual: false,
                derived_from_samples: 0,
            })
            .collect();
        let mut zero = held[0].clone();
        zero.mitigation.id = "blackhole:0.0.0.0/0".into();
        zero.mitigation.rule = blackhole("0.0.0.0/0");
        zero.manual = true;
        held.push(zero);
        let mut plan = Planner::new(c, scope()).unwrap();
        let mut changes = Vec::new();
        plan.restore(
            Snapshot {
                held,
                announcements: vec![],
            },
            1_000 * S,
            &mut changes,
        );
        assert_eq!(plan.held().count(), 100);
        assert_eq!(announced(&changes).len(), 100);
        assert!(!announced(&changes).contains(&"blackhole:0.0.0.0/0".to_string()));
        // 250 distinct rules (the rest repeat them): 100 held, 150 over the cap, and the /0.
        let gone = withdrawn(&changes);
        assert_eq!(gone.len(), 151);
        assert!(gone
            .iter()
            .any(|(id, why)| id == "blackhole:0.0.0.0/0"
                && why.to_string().contains("broader than /24")));
        // The newest are kept.
        assert!(plan.held().all(|h| h.mitigation.since >= 400 * S));
    }

    fn evidence(datagrams: u64, instants: u64, share: f64) -> floodwall_detect::event::Evidence {
        floodwall_detect::event::Evidence {
            samples: 40,
            datagrams,
            instants,
            largest_datagram_share: share,
        }
    }

    #[test]
    fn no_rule_on_the_word_of_one_datagram() {
        let mut plan = Planner::new(config(), scope()).unwrap();
        let mut changes = Vec::new();
        let mut forged = started("a1", "203.0.113.7/32");
        forged.evidence = evidence(1, 1, 1.0);
        let decisions = plan.on_event(&forged, 0, &mut changes);
        assert!(changes.is_empty());
        assert!(decisions
            .iter()
            .all(|d| d.status == Status::AwaitingEvidence && d.reason.is_some()));
        // Two datagrams at one instant, or one carrying most of it: still waiting.
        for (d, i, share) in [(2, 1, 0.5), (5, 3, 0.9)] {
            let mut e = with_kind(EventKind::AttackUpdated, "a1", "203.0.113.7/32");
            e.evidence = evidence(d, i, share);
            plan.on_event(&e, S, &mut changes);
            assert!(changes.is_empty(), "{d} {i} {share}");
        }
        let mut e = with_kind(EventKind::AttackUpdated, "a1", "203.0.113.7/32");
        e.evidence = evidence(6, 3, 0.3);
        let decisions = plan.on_event(&e, 2 * S, &mut changes);
        assert_eq!(announced(&changes).len(), 2);
        assert!(decisions.iter().all(|d| d.status == Status::Announced));
    }

    /// DNS amplification as the first partial second shows it (92 % from port 53, 6 % TCP of
    /// the target's own traffic), then as it settles.
    fn dns_fingerprint(dns: f64, tcp: f64) -> Fingerprint {
        use floodwall_detect::fingerprint::{Histogram, ProtocolMix, Share};
        Fingerprint {
            packets: 100_000,
            protocols: ProtocolMix {
                tcp,
                udp: 1.0 - tcp,
                ..Default::default()
            },
            top_source_ports: vec![Share {
                value: 53,
                share: dns,
                packets: (dns * 1e5) as u64,
            }],
            packet_sizes: Some(Histogram {
                upper_bounds: vec![64, 128, 256, 512, 1024, 1500, 65535],
                shares: vec![0.02, 0.0, 0.0, 0.0, 0.4, 0.58, 0.0],
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_broad_early_rule_is_narrowed_as_the_fingerprint_settles() {
        let mut c = config();
        c.blackhole.enabled = false;
        let mut plan = Planner::new(c, scope()).unwrap();
        let mut changes = Vec::new();
        let mut first = event(
            EventKind::AttackStarted,
            "a1",
            "203.0.113.7/32",
            dns_fingerprint(0.92, 0.06),
        );
        first.evidence.samples = 60;
        // The resolver's own traffic before: half DNS answers, half web.
        first.before = Some(dns_fingerprint(0.5, 0.5));
        let d = plan.on_event(&first, 0, &mut changes);
        assert!(d[0].text.contains("proto 6,17"), "{}", d[0].text);
        assert!(!d[0].text.contains("sport 53"), "{}", d[0].text);
        assert!(
            d[0].collateral.is_some_and(|c| c > 0.9),
            "{:?}",
            d[0].collateral
        );
        changes.clear();
        let mut settled = event(
            EventKind::AttackUpdated,
            "a1",
            "203.0.113.7/32",
            dns_fingerprint(0.995, 0.002),
        );
        settled.evidence.samples = 2_000;
        settled.before = first.before.clone();
        let d = plan.on_event(&settled, 3 * S, &mut changes);
        assert_eq!(
            d[0].text,
            "flowspec dst 203.0.113.7/32 proto 17 sport 53 len 513-1500 then discard"
        );
        assert_eq!(
            withdrawn(&changes),
            [(
                "flowspec:203.0.113.7/32".to_string(),
                WithdrawReason::FingerprintSettled
            )]
        );
        let collateral = d[0].collateral.unwrap();
        assert!((0.2..0.5).contains(&collateral), "{collateral}");
        // Settled, the rule stays as long as nothing narrower covers as much.
        changes.clear();
        let mut later = settled.clone();
        later.evidence.samples = 10_000;
        plan.on_event(&later, 10 * S, &mut changes);
        assert!(changes.is_empty(), "{changes:?}");
    }

    /// After the fingerprint settled, a rule is still narrowed when a narrower one covers as
    /// much: the TCP a mixed start let in is gone from the attack, so `proto 6,17` becomes 17.
    #[test]
    fn a_settled_rule_is_narrowed_when_a_narrower_one_covers_as_much() {
        let mut c = config();
        c.blackhole.enabled = false;
        let mut plan = Planner::new(c, scope()).unwrap();
        let mut changes = Vec::new();
        let mut mixed = event(
            EventKind::AttackStarted,
            "a1",
            "203.0.113.7/32",
            dns_fingerprint(0.5, 0.1),
        );
        mixed.evidence.samples = 5_000;
        let d = plan.on_event(&mixed, 0, &mut changes);
        assert!(d[0].text.contains("proto 6,17"), "{}", d[0].text);
        changes.clear();
        let mut pure = event(
            EventKind::AttackUpdated,
            "a1",
            "203.0.113.7/32",
            dns_fingerprint(0.5, 0.0),
        );
        // Not settling: the samples have not doubled.
        pure.evidence.samples = 6_000;
        let d = plan.on_event(&pure, 5 * S, &mut changes);
        assert_eq!(
            d[0].text,
            "flowspec dst 203.0.113.7/32 proto 17 len 513-1500 then discard"
        );
        assert_eq!(
            d[0].reason.as_deref(),
            Some("a narrower rule covers as much")
        );
        assert_eq!(announced(&changes), ["flowspec:203.0.113.7/32"]);
        // And a wider one never replaces it while it covers enough.
        changes.clear();
        plan.on_event(&mixed, 6 * S, &mut changes);
        assert!(changes.is_empty(), "{changes:?}");
    }
}
