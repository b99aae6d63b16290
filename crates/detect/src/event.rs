//! Attack events: the public interface of the engine (`floodwall replay --json`, the daemon's
//! event log, and every action of later stages). Field names and vocabulary are stable.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::fingerprint::Fingerprint;
use crate::time::{parse_rfc3339_ms, rfc3339_ms};
use crate::vocab::Metric;
pub use crate::vocab::Vector;

/// Where an attack is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    AttackStarted,
    AttackUpdated,
    AttackEnded,
}

/// Incoming: traffic to a monitored address (it is the victim). Outgoing: traffic from a
/// monitored address (a customer's device is attacking someone).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Incoming,
    Outgoing,
}

/// Which kind of limit a trigger crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// A static host limit.
    Threshold,
    /// The learnt normal of the host, or of the prefix for carpet bombing.
    Baseline,
    /// A static prefix limit or its ceiling.
    CarpetBombing,
}

impl TriggerKind {
    /// The name events write.
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Threshold => "threshold",
            TriggerKind::Baseline => "baseline",
            TriggerKind::CarpetBombing => "carpet_bombing",
        }
    }
}

impl fmt::Display for TriggerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What made the engine declare (or keep) an attack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// `threshold`, `baseline` or `carpet_bombing`.
    pub kind: TriggerKind,
    /// The counter that crossed, e.g. `pps`, `mbps`, `syn_pps`.
    pub metric: Metric,
    /// Its value in the bucket that crossed, and the limit it crossed.
    pub value: f64,
    pub limit: f64,
}

/// What stands behind an attack's counts since it started: how many sampled packets, how many
/// telemetry datagrams and instants, and how much of it the largest single datagram carried.
/// Telemetry is unauthenticated UDP: one forged datagram can claim any rate, so a rule may move
/// a route only once the evidence [`confirms`](Evidence::confirms) the attack.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Sampled packets (a sample is one; an unsampled flow record, its packets).
    pub samples: u64,
    /// Distinct telemetry datagrams that carried the target's records.
    pub datagrams: u64,
    /// Distinct 10-ms instants of the records' telemetry time.
    pub instants: u64,
    /// Share of the target's packets carried by its single largest datagram (0..=1).
    pub largest_datagram_share: f64,
}

impl Evidence {
    /// At most this share of an attack's packets may come from one datagram for it to count as
    /// confirmed.
    pub const MAX_LARGEST_DATAGRAM_SHARE: f64 = 0.5;

    /// Distinct instants a confirmed attack spans: three 10-ms instants cannot come from a
    /// burst sent at once (it lasts well under 10 ms), however it straddles their edges.
    pub const MIN_INSTANTS: u64 = 3;

    /// More than one datagram, more than a burst's instants, and no single datagram carrying
    /// most of it: what a rule needs before it moves a route.
    pub fn confirms(&self) -> bool {
        self.datagrams >= 2
            && self.instants >= Self::MIN_INSTANTS
            && self.largest_datagram_share <= Self::MAX_LARGEST_DATAGRAM_SHARE
    }
}

/// One attack event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttackEvent {
    pub event: EventKind,
    /// Stable for the life of the attack, and the same in a replay of the same input.
    pub attack_id: String,
    /// Telemetry time of the event: the end of the bucket that produced it.
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    pub ts: u64,
    pub direction: Direction,
    /// The attacked (incoming) or attacking (outgoing) host as /32 or /128, or the prefix for
    /// carpet bombing.
    pub target: IpNet,
    pub carpet_bombing: bool,
    /// The hostgroup whose thresholds apply to the target.
    pub hostgroup: String,
    pub vectors: Vec<Vector>,
    /// Rates of the last complete bucket, already scaled by sampling.
    pub bps: u64,
    pub pps: u64,
    pub peak_bps: u64,
    pub peak_pps: u64,
    /// Estimated distinct remote addresses (sources for incoming, destinations for outgoing).
    pub sources: u64,
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    pub started_at: u64,
    #[serde(
        serialize_with = "ser_opt_time",
        deserialize_with = "de_opt_time",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub ended_at: Option<u64>,
    pub trigger: Trigger,
    /// What stands behind the counts: a rule waits until it confirms the attack.
    pub evidence: Evidence,
    pub fingerprint: Fingerprint,
    /// The target's traffic while it was watched before the attack (no attack traffic), when
    /// there was some: what a rule would also drop. In memory only, for the planner.
    #[serde(skip)]
    pub before: Option<Fingerprint>,
    /// The campaign (attacks from one bot pool) this attack joined, once it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// The attack's sources so far (incoming attacks), for attribution to a campaign.
    #[serde(skip)]
    pub source_sketch: Option<std::sync::Arc<crate::fingerprint::SourceSketch>>,
}

impl AttackEvent {
    /// The target as a single address when it is a host (/32, /128).
    pub fn host(&self) -> Option<IpAddr> {
        (self.target.prefix_len() == self.target.max_prefix_len()).then(|| self.target.addr())
    }
}

fn ser_time<S: Serializer>(ms: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339_ms(*ms))
}

fn ser_opt_time<S: Serializer>(ms: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => s.serialize_str(&rfc3339_ms(*ms)),
        None => s.serialize_none(),
    }
}

/// Owned strings: a borrowed `&str` fails on input that cannot lend one (a reader, a `Value`).
fn de_time<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    parse_time(&String::deserialize(d)?)
}

fn de_opt_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|text| parse_time(&text))
        .transpose()
}

fn parse_time<E: serde::de::Error>(text: &str) -> Result<u64, E> {
    parse_rfc3339_ms(text)
        .ok_or_else(|| E::custom(format!("`{text}` is not a time as events write it")))
}
