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

use floodwall_detect::{AttackEvent, Direction, EventKind};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::config::MitigationConfig;
use crate::derive::{coverage_of, filter_for};
use crate::mitigation::Mitigation;
use crate::rule::Rule;

/// What the actions must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Announce(Mitigation),
    Withdraw {
        mitigation: Mitigation,
        reason: &'static str,
    },
}

/// What became of one rule the plan considered for an attack event: goes into the event's
/// record, so the operator sees the rule, its coverage and why it was or was not announced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub id: String,
    pub rule: Rule,
    /// The rule as router configuration reads.
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<f64>,
    /// `announced`, `dry_run` (recorded only), `held` (already in place), `refused`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A rule in place, with what decides its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    held: BTreeMap<String, Held>,
    announcements: BTreeMap<String, Vec<u64>>,
    /// Attacks whose rules the operator withdrew or `max_seconds` ended: not announced again.
    released: Vec<String>,
}

const MS: u64 = 1_000;
/// A filter in place is derived again when it covers less than this of its attack's packets.
const REDERIVE: f64 = 0.8;
/// Released attack ids remembered; an attack lives minutes, so this covers any that can recur.
const RELEASED_KEPT: usize = 4_096;

impl Planner {
    pub fn new(config: MitigationConfig) -> Result<Planner, String> {
        config.validate()?;
        Ok(Planner {
            config,
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

    /// Resumes from a snapshot after a restart at `now`: every held rule is announced again
    /// (routes do not survive a lost session); those whose attack was still going wait
    /// `restart_confirm_seconds` for it to be detected again, the rest keep their schedule.
    pub fn restore(&mut self, snapshot: Snapshot, now: u64, changes: &mut Vec<Change>) {
        self.announcements = snapshot.announcements.into_iter().collect();
        for mut held in snapshot.held {
            if let Some(reason) = self.no_longer_wanted(&held) {
                // The configuration changed across the restart: what it no longer asks for goes.
                changes.push(Change::Withdraw {
                    mitigation: held.mitigation,
                    reason,
                });
                continue;
            }
            if held.attack_active && !held.manual {
                held.unconfirmed = true;
                let confirm_by = now + self.config.restart_confirm_seconds * MS;
                let min_until = held.mitigation.since + self.config.min_seconds * MS;
                held.withdraw_at = Some(confirm_by.max(min_until));
            }
            changes.push(Change::Announce(held.mitigation.clone()));
            self.held.insert(held.mitigation.id.clone(), held);
        }
        self.tick(now, changes);
    }

    /// Why a held rule from a snapshot is not wanted under the current configuration, if not.
    fn no_longer_wanted(&self, held: &Held) -> Option<&'static str> {
        let rule = &held.mitigation.rule;
        if self
            .config
            .never
            .iter()
            .any(|n| overlaps(n, &rule.target()))
        {
            return Some("target now never-mitigate");
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
            .then_some("no longer configured")
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
                    "attack not seen again after restart"
                } else if held.manual {
                    "duration over"
                } else if held.attack_active {
                    self.release(&held);
                    "max_seconds reached"
                } else {
                    "attack over"
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
        let text = rule.to_string();
        let decision = |status, reason: Option<String>, rule: Rule| Decision {
            id: id.clone(),
            rule,
            text: text.clone(),
            coverage,
            status,
            reason,
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
                rule: held.mitigation.rule.clone(),
                status,
                reason,
            };
            if held.manual {
                return in_place(held, "held", Some("placed by an operator".into()));
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
            // A filter follows the attack: a new attack's signature, or this one's once the rule
            // in place covers too little of it (a multi-vector attack that switched vectors).
            let outgrown = match &held.mitigation.rule {
                Rule::Filter { filter, .. } => coverage_of(filter, &event.fingerprint) < REDERIVE,
                Rule::Blackhole { .. } => false,
            };
            if held.mitigation.rule != rule && (adopting || outgrown) {
                let old = held.mitigation.clone();
                held.mitigation.rule = rule.clone();
                held.mitigation.coverage = coverage;
                changes.push(Change::Withdraw {
                    mitigation: old,
                    reason: if adopting {
                        "replaced by the rule of a new attack"
                    } else {
                        "the attack changed: rule derived again"
                    },
                });
                changes.push(Change::Announce(held.mitigation.clone()));
                let status = if held.mitigation.dry_run {
                    "dry_run"
                } else {
                    "announced"
                };
                return decision(status, None, rule);
            }
            let status = if held.mitigation.dry_run {
                "dry_run"
            } else {
                "held"
            };
            return in_place(held, status, None);
        }
        if let Some(protected) = self
            .config
            .never
            .iter()
            .find(|n| overlaps(n, &rule.target()))
        {
            return decision(
                "refused",
                Some(format!(
                    "{} overlaps never-mitigate {protected}",
                    rule.target()
                )),
                rule,
            );
        }
        if self.held.len() >= self.config.max_active {
            return decision(
                "refused",
                Some(format!(
                    "max_active = {} rules already held",
                    self.config.max_active
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
            },
        );
        changes.push(Change::Announce(mitigation));
        decision(if dry_run { "dry_run" } else { "announced" }, None, rule)
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

    /// An operator places a rule, for `seconds` (or until withdrawn). The never list and the
    /// cap apply: an operator who means it edits them.
    pub fn announce_manual(
        &mut self,
        rule: Rule,
        seconds: Option<u64>,
        now: u64,
        changes: &mut Vec<Change>,
    ) -> Result<Mitigation, String> {
        if let Some(protected) = self
            .config
            .never
            .iter()
            .find(|n| overlaps(n, &rule.target()))
        {
            return Err(format!(
                "{} overlaps never-mitigate {protected}",
                rule.target()
            ));
        }
        let id = rule_id(&rule, rule.target());
        if let Some(old) = self.held.get(&id) {
            if old.mitigation.rule == rule {
                return Ok(old.mitigation.clone());
            }
        } else if self.held.len() >= self.config.max_active {
            return Err(format!(
                "max_active = {} rules already held",
                self.config.max_active
            ));
        }
        let mitigation = Mitigation {
            id: id.clone(),
            attack_id: None,
            hostgroup: "manual".into(),
            rule,
            coverage: None,
            since: now,
            dry_run: false,
        };
        if let Some(old) = self.held.remove(&id) {
            changes.push(Change::Withdraw {
                mitigation: old.mitigation,
                reason: "replaced by an operator",
            });
        }
        self.held.insert(
            id,
            Held {
                mitigation: mitigation.clone(),
                attack_active: false,
                withdraw_at: seconds.map(|s| now + s * MS),
                unconfirmed: false,
                manual: true,
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
    ) -> Result<Mitigation, String> {
        let held = self
            .held
            .remove(id)
            .ok_or_else(|| format!("no rule `{id}` is held; `floodwall mitigations` lists them"))?;
        self.release(&held);
        changes.push(Change::Withdraw {
            mitigation: held.mitigation.clone(),
            reason: "withdrawn by an operator",
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
                reason: "shutdown",
            });
        }
    }
}

/// `blackhole:203.0.113.7/32`, `flowspec:2001:db8::/64`: one rule per kind and target.
pub fn rule_id(rule: &Rule, target: IpNet) -> String {
    format!("{}:{target}", rule.kind())
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

    fn withdrawn(changes: &[Change]) -> Vec<(String, &'static str)> {
        changes
            .iter()
            .filter_map(|c| match c {
                Change::Withdraw { mitigation, reason } => Some((mitigation.id.clone(), *reason)),
                Change::Announce(_) => None,
            })
            .collect()
    }

    #[test]
    fn an_attack_gets_its_rules_until_the_hold_down_after_it_ends() {
        let mut plan = Planner::new(config()).unwrap();
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
        assert!(decisions.iter().all(|d| d.status == "announced"));
        // Updates keep what is held; nothing is announced twice.
        changes.clear();
        let decisions = plan.on_event(
            &with_kind(EventKind::AttackUpdated, "a1", "203.0.113.7/32"),
            1_030 * S,
            &mut changes,
        );
        assert!(changes.is_empty());
        assert!(decisions.iter().all(|d| d.status == "held"));
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
                ("blackhole:203.0.113.7/32".to_string(), "attack over"),
                ("flowspec:203.0.113.7/32".to_string(), "attack over")
            ]
        );
        assert_eq!(plan.held().count(), 0);
    }

    #[test]
    fn a_short_attack_keeps_its_rules_for_the_minimum_time() {
        let mut c = config();
        c.hold_down_seconds = 0;
        let mut plan = Planner::new(c).unwrap();
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
        let mut plan = Planner::new(c).unwrap();
        let mut changes = Vec::new();
        let carpet = plan.on_event(&started("c1", "203.0.113.0/24"), 0, &mut changes);
        let host = plan.on_event(&started("h1", "203.0.113.7/32"), S, &mut changes);
        assert!(carpet.iter().chain(&host).all(|d| d.status == "announced"));
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
                ("blackhole:203.0.113.0/24".to_string(), "attack over"),
                ("flowspec:203.0.113.0/24".to_string(), "attack over")
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
        let mut plan = Planner::new(c).unwrap();
        let mut changes = Vec::new();
        let host = plan.on_event(&started("a1", "203.0.113.7/32"), 0, &mut changes);
        let carpet = plan.on_event(&started("a2", "203.0.113.0/24"), 0, &mut changes);
        let other = plan.on_event(&started("a3", "203.0.113.99/32"), 0, &mut changes);
        assert!(host.iter().chain(&carpet).all(|d| d.status == "refused"));
        assert!(host[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("never-mitigate 203.0.113.0/28"));
        assert!(other.iter().all(|d| d.status == "announced"));
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
        let mut plan = Planner::new(c).unwrap();
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
        assert_eq!(refused[0].status, "refused");
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
        assert_eq!(later[0].status, "announced");
        assert_eq!(plan.held().count(), 2);
    }

    #[test]
    fn max_seconds_withdraws_a_long_attack_and_does_not_announce_it_again() {
        let mut c = config();
        c.max_seconds = 600;
        let mut plan = Planner::new(c).unwrap();
        let mut changes = Vec::new();
        plan.on_event(&started("a1", "203.0.113.7/32"), 0, &mut changes);
        changes.clear();
        plan.tick(600 * S, &mut changes);
        assert_eq!(withdrawn(&changes)[0].1, "max_seconds reached");
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
        let mut plan = Planner::new(c).unwrap();
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
        let mut plan = Planner::new(config()).unwrap();
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
        assert!(decisions.iter().all(|d| d.status == "held"));
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
        let mut plan = Planner::new(c).unwrap();
        let mut changes = Vec::new();
        let decisions = plan.on_event(&started("a1", "203.0.113.7/32"), 0, &mut changes);
        assert_eq!(decisions.len(), 1);
        assert_eq!(decisions[0].status, "dry_run");
        assert!(
            matches!(&changes[..], [Change::Announce(m)] if m.dry_run && m.rule.kind() == "flowspec")
        );
    }

    #[test]
    fn after_a_restart_active_rules_return_and_go_unless_the_attack_is_seen_again() {
        let mut plan = Planner::new(config()).unwrap();
        let mut changes = Vec::new();
        plan.on_event(&started("a1", "203.0.113.7/32"), 0, &mut changes);
        plan.on_event(&started("a2", "203.0.113.8/32"), 0, &mut changes);
        let snapshot = plan.snapshot();
        let json = serde_json::to_string(&snapshot).unwrap();

        // The daemon crashed at 500 s and is back at 510 s.
        let mut plan = Planner::new(config()).unwrap();
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
            && *why == "attack not seen again after restart"));
        assert!(plan
            .held()
            .all(|h| h.mitigation.attack_id.as_deref() == Some("b1") && !h.unconfirmed));
    }

    #[test]
    fn an_operator_announces_and_withdraws_by_hand() {
        let mut plan = Planner::new(config()).unwrap();
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
            [("blackhole:198.51.100.9/32".to_string(), "duration over")]
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
        let mut plan = Planner::new(config()).unwrap();
        let mut changes = Vec::new();
        plan.on_event(&started("a1", "203.0.113.7/32"), 0, &mut changes);
        changes.clear();
        plan.shutdown(&mut changes);
        assert_eq!(withdrawn(&changes).len(), 2);
        assert!(plan.snapshot().held.is_empty());

        let mut c = config();
        c.keep_on_shutdown = true;
        let mut plan = Planner::new(c).unwrap();
        plan.on_event(&started("a1", "203.0.113.7/32"), 0, &mut changes);
        changes.clear();
        plan.shutdown(&mut changes);
        assert!(changes.is_empty());
        assert_eq!(plan.snapshot().held.len(), 2);
    }

    #[test]
    fn ipv6_targets_get_the_ipv6_discard_next_hop() {
        let mut plan = Planner::new(config()).unwrap();
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
        assert!(Planner::new(config())
            .unwrap()
            .on_event(&outgoing, 0, &mut changes)
            .is_empty());
        let mut c = config();
        c.outgoing = true;
        c.blackhole.enabled = false;
        let decisions = Planner::new(c)
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
        let mut plan = Planner::new(config()).unwrap();
        let mut changes = Vec::new();
        plan.on_event(&started("a1", "203.0.113.7/32"), 0, &mut changes);
        plan.on_event(&started("a2", "203.0.113.8/32"), 0, &mut changes);
        let snapshot = plan.snapshot();

        let mut c = config();
        c.blackhole.enabled = false;
        c.never = vec!["203.0.113.8/32".parse().unwrap()];
        let mut plan = Planner::new(c).unwrap();
        changes.clear();
        plan.restore(snapshot, 10 * S, &mut changes);
        assert_eq!(announced(&changes), ["flowspec:203.0.113.7/32"]);
        let mut gone = withdrawn(&changes);
        gone.sort();
        assert_eq!(
            gone,
            [
                (
                    "blackhole:203.0.113.7/32".to_string(),
                    "no longer configured"
                ),
                (
                    "blackhole:203.0.113.8/32".to_string(),
                    "target now never-mitigate"
                ),
                (
                    "flowspec:203.0.113.8/32".to_string(),
                    "target now never-mitigate"
                ),
            ]
        );
        assert_eq!(plan.held().count(), 1);
    }

    #[test]
    fn a_filter_follows_an_attack_that_switches_vectors() {
        let mut plan = Planner::new(config()).unwrap();
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
                "the attack changed: rule derived again"
            )]
        );
        assert_eq!(announced(&changes), ["flowspec:203.0.113.7/32"]);
        assert_eq!(
            decisions[1].text,
            "flowspec dst 203.0.113.7/32 proto 17 sport 53 then discard"
        );
        assert_eq!(decisions[0].status, "held", "the blackhole is unchanged");
    }
}
