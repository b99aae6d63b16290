//! What hunting reports: `{"event": "infected_host", ...}` and `{"event": "campaign", ...}`
//! lines, in the events file and `floodwall replay --json`. Field names are a contract.

use std::net::IpAddr;

use floodwall_detect::time::rfc3339_ms;
use floodwall_detect::{Direction, Vector};
use ipnet::IpNet;
use serde::{Deserialize, Serialize, Serializer};

/// Why a host is listed.
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
pub enum ReasonKind {
    /// It was the source of an outgoing attack the engine reported.
    OutgoingAttack,
    /// TCP SYNs to many distinct destinations on the ports the Mirai family probes.
    Scanning,
    /// It exchanged traffic with an endpoint of a C2 feed.
    C2Contact,
    /// Connections to one external endpoint at a regular period (a weaker signal).
    Beaconing,
}

impl ReasonKind {
    pub const ALL: [ReasonKind; 4] = [
        ReasonKind::OutgoingAttack,
        ReasonKind::Scanning,
        ReasonKind::C2Contact,
        ReasonKind::Beaconing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReasonKind::OutgoingAttack => "outgoing_attack",
            ReasonKind::Scanning => "scanning",
            ReasonKind::C2Contact => "c2_contact",
            ReasonKind::Beaconing => "beaconing",
        }
    }
}

impl std::fmt::Display for ReasonKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reason with its evidence. Times are milliseconds since the epoch inside, RFC 3339 in
/// JSON. Fields that do not apply to a kind are absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Reason {
    pub kind: ReasonKind,
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    #[schemars(with = "String")]
    pub first_seen: u64,
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    #[schemars(with = "String")]
    pub last_seen: u64,
    /// This reason's own confidence, 0–1.
    pub confidence: f64,
    /// Records (samples or flows) behind it.
    pub samples: u64,
    /// Packets behind it, scaled by sampling.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub packets: u64,
    /// The remote endpoints: C2 addresses, the beacon's peer, the attack's target, or a few of
    /// the scanned destinations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub peers: Vec<IpAddr>,
    /// Destination ports, busiest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<u16>,
    /// Scanning: distinct destinations among the samples, and the estimate for all traffic
    /// (a 99 % lower bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destinations_sampled: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destinations_estimated: Option<u64>,
    /// Scanning: probes whose TCP sequence number equals the destination address (Mirai).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirai_signature: Option<u64>,
    /// Outgoing attack: its id and vectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attack_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vectors: Vec<Vector>,
    /// C2 contact: the feed entries matched (feed name and malware family when it says).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indicators: Vec<Indicator>,
    /// Beaconing: the period and its spread (standard deviation / mean).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<f64>,
}

/// A feed entry a host was seen with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Indicator {
    /// As the feed wrote it: `203.0.113.5`, `203.0.113.5:23`, `203.0.113.0/24`.
    pub value: String,
    pub feed: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malware: Option<String>,
}

/// `{"event": "infected_host", ...}`: a host of the monitored networks that behaves as a bot.
/// One line when it is first listed and one each time its reasons change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InfectedHost {
    #[schemars(with = "String")]
    pub host: IpAddr,
    /// The monitored network (or the hostgroup's prefix) it is in: the customer line.
    #[schemars(with = "Option<String>")]
    pub prefix: Option<IpNet>,
    pub hostgroup: String,
    pub reasons: Vec<Reason>,
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    #[schemars(with = "String")]
    pub first_seen: u64,
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    #[schemars(with = "String")]
    pub last_seen: u64,
    /// 0–1: the reasons' confidences combined as independent evidence.
    pub confidence: f64,
}

impl InfectedHost {
    pub fn reason(&self, kind: ReasonKind) -> Option<&Reason> {
        self.reasons.iter().find(|r| r.kind == kind)
    }
}

/// What happened to a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CampaignChange {
    /// Two attacks were found to share their sources.
    Formed,
    /// Another attack joined.
    Grown,
}

/// `{"event": "campaign", ...}`: attacks from one bot pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CampaignEvent {
    pub campaign: String,
    pub change: CampaignChange,
    /// The attack that formed it or joined it.
    pub attack_id: String,
    /// Its share of sources in the campaign (the overlap that joined it), 0–1.
    pub overlap: f64,
    /// Attacks in the campaign (the latest 100 ids are listed).
    pub attack_count: u64,
    pub attacks: Vec<String>,
    /// Estimated distinct sources of all its attacks together (the sketches' union).
    pub sources: u64,
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    #[schemars(with = "String")]
    pub first_seen: u64,
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    #[schemars(with = "String")]
    pub last_seen: u64,
    #[schemars(with = "Vec<String>")]
    pub targets: Vec<IpNet>,
    pub vectors: Vec<Vector>,
    pub direction: Direction,
}

/// One line of hunting output: `{"event": "infected_host" | "campaign", "ts", ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum HuntEvent {
    InfectedHost {
        #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
        ts: u64,
        #[serde(flatten)]
        host: InfectedHost,
    },
    Campaign {
        #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
        ts: u64,
        #[serde(flatten)]
        campaign: CampaignEvent,
    },
}

impl HuntEvent {
    pub fn ts(&self) -> u64 {
        match self {
            HuntEvent::InfectedHost { ts, .. } | HuntEvent::Campaign { ts, .. } => *ts,
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn ser_time<S: Serializer>(ms: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339_ms(*ms))
}

fn de_time<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let text = String::deserialize(d)?;
    floodwall_detect::time::parse_rfc3339_ms(&text)
        .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {text}")))
}
