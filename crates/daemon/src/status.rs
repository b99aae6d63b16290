//! What the daemon is doing now, as one typed snapshot: collectors and exporters, the engine,
//! the active attacks, the mitigators and the bus. The engine thread refreshes it every second
//! (and publishes it on the bus); readers — the control socket now, the API and metrics later —
//! take the latest `Arc` from the [`StatusBoard`] and never touch the engine or its locks.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

use floodwall_detect::{AttackEvent, Direction, EngineStats, EventKind, Vector};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::sources::udp::CollectorStats;

/// The daemon's state at one moment.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Status {
    /// When this snapshot was taken, Unix ms.
    pub at_ms: u64,
    /// When the pipeline started, Unix ms.
    pub started_ms: u64,
    pub collector: CollectorStatus,
    pub engine: EngineStats,
    /// Records handed to each engine shard (`[detection] shards`), in shard order; empty with
    /// one engine. A record with ends on two shards counts on both.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shard_records: Vec<u64>,
    /// Each hostgroup's traffic in and out in the last complete second (`default` first).
    #[serde(default)]
    pub traffic: Vec<floodwall_detect::HostgroupRates>,
    /// The busiest hosts and prefixes of the last complete second, in and out.
    #[serde(default)]
    pub top: floodwall_detect::TopTargets,
    /// Attacks active now, oldest first.
    pub attacks: Vec<ActiveAttack>,
    pub mitigation: MitigationStatus,
    /// The bus's subscribers and what became of their messages.
    pub bus: Vec<SubscriberStats>,
}

/// The collectors' counters (zero for a capture replay's listeners: it has none).
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CollectorStatus {
    pub listeners: Vec<ListenerStatus>,
    pub exporters: Vec<ExporterStatus>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ListenerStatus {
    pub local: Option<SocketAddr>,
    pub datagrams: u64,
    pub not_allowed: u64,
    pub kernel_drops: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExporterStatus {
    pub address: IpAddr,
    pub datagrams: u64,
    pub records: u64,
    pub decode_errors: u64,
    /// `decode_errors` by kind (`truncated`, `unknown_version`, …), kinds seen only.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub decode_errors_by_kind: std::collections::BTreeMap<String, u64>,
    pub sequence_lost: u64,
    /// Records dropped as implausible (sampling rate out of range or on probation, impossible
    /// sample pools).
    pub implausible: u64,
}

impl CollectorStatus {
    pub fn from_stats(stats: &CollectorStats) -> CollectorStatus {
        CollectorStatus {
            listeners: stats
                .listeners
                .iter()
                .map(|l| ListenerStatus {
                    local: l.local,
                    datagrams: l.datagrams,
                    not_allowed: l.not_allowed,
                    kernel_drops: l.kernel_drops,
                })
                .collect(),
            exporters: stats
                .exporters
                .iter()
                .map(|(address, c)| ExporterStatus {
                    address: *address,
                    datagrams: c.datagrams,
                    records: c.records,
                    decode_errors: c.total_errors(),
                    decode_errors_by_kind: floodwall_wire::DecodeError::ALL
                        .iter()
                        .filter(|k| c.error(**k) > 0)
                        .map(|k| (k.name().to_string(), c.error(*k)))
                        .collect(),
                    sequence_lost: c.sequence_lost,
                    implausible: c.implausible(),
                })
                .collect(),
        }
    }
}

/// An attack as its latest event left it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ActiveAttack {
    pub attack_id: String,
    pub target: IpNet,
    pub direction: Direction,
    pub carpet_bombing: bool,
    pub hostgroup: String,
    pub vectors: Vec<Vector>,
    pub bps: u64,
    pub pps: u64,
    pub peak_bps: u64,
    pub peak_pps: u64,
    /// Estimated distinct remote addresses.
    #[serde(default)]
    pub sources: u64,
    /// Telemetry time, Unix ms.
    pub started_at: u64,
    /// Its latest event's telemetry time, Unix ms.
    #[serde(default)]
    pub last_at: u64,
}

/// The attacks active now, kept from the engine's events (start and updates in, end out).
#[derive(Debug, Default)]
pub struct ActiveAttacks {
    attacks: std::collections::BTreeMap<String, ActiveAttack>,
}

impl ActiveAttacks {
    pub fn follow(&mut self, events: &[AttackEvent]) {
        for e in events {
            if e.event == EventKind::AttackEnded {
                self.attacks.remove(&e.attack_id);
                continue;
            }
            self.attacks.insert(
                e.attack_id.clone(),
                ActiveAttack {
                    attack_id: e.attack_id.clone(),
                    target: e.target,
                    direction: e.direction,
                    carpet_bombing: e.carpet_bombing,
                    hostgroup: e.hostgroup.clone(),
                    vectors: e.vectors.clone(),
                    bps: e.bps,
                    pps: e.pps,
                    peak_bps: e.peak_bps,
                    peak_pps: e.peak_pps,
                    sources: e.sources,
                    started_at: e.started_at,
                    last_at: e.ts,
                },
            );
        }
    }

    pub fn list(&self) -> Vec<ActiveAttack> {
        let mut list: Vec<ActiveAttack> = self.attacks.values().cloned().collect();
        list.sort_by_key(|a| a.started_at);
        list
    }
}

/// The actions' side: rules held and the mitigators' channels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MitigationStatus {
    /// Rules the plan holds (announced, queued, dry run, awaiting evidence).
    pub held: usize,
    /// `held` by rule kind and whether it is a dry run.
    #[serde(default)]
    pub held_by_kind: Vec<HeldCount>,
    pub mitigators: Vec<MitigatorStatus>,
}

/// Rules held of one kind, dry run or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HeldCount {
    pub kind: floodwall_mitigate::RuleKind,
    pub dry_run: bool,
    pub count: usize,
}

impl HeldCount {
    /// Counts rules by kind and dry run, in a stable order.
    pub fn tally<'a>(held: impl Iterator<Item = &'a floodwall_mitigate::Held>) -> Vec<HeldCount> {
        let mut counts: Vec<HeldCount> = Vec::new();
        for h in held {
            let (kind, dry_run) = (h.mitigation.rule.kind(), h.mitigation.dry_run);
            match counts
                .iter_mut()
                .find(|c| c.kind == kind && c.dry_run == dry_run)
            {
                Some(c) => c.count += 1,
                None => counts.push(HeldCount {
                    kind,
                    dry_run,
                    count: 1,
                }),
            }
        }
        counts.sort_by_key(|c| (c.kind, c.dry_run));
        counts
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MitigatorStatus {
    pub name: String,
    /// Rules handed to it and not yet done with (its queue).
    pub queued: usize,
    pub channels: Vec<crate::act::Channel>,
}

/// Where the latest snapshot is kept. The engine thread writes the whole snapshot; the actions
/// thread writes its part, which the next snapshot takes in.
#[derive(Debug, Default)]
pub struct StatusBoard {
    latest: RwLock<Arc<Status>>,
    mitigation: RwLock<Arc<MitigationStatus>>,
}

impl StatusBoard {
    pub fn latest(&self) -> Arc<Status> {
        self.latest
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn publish(&self, status: Arc<Status>) {
        *self.latest.write().unwrap_or_else(|e| e.into_inner()) = status;
    }

    pub fn mitigation(&self) -> Arc<MitigationStatus> {
        self.mitigation
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_mitigation(&self, mitigation: MitigationStatus) {
        *self.mitigation.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(mitigation);
    }
}

/// One subscriber's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SubscriberStats {
    pub name: String,
    pub delivered: u64,
    /// Dropped because its queue was full (or it was gone).
    pub dropped: u64,
    /// Messages it failed to handle.
    pub failed: u64,
}
