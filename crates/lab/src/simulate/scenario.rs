//! Scenario files: what traffic a scenario describes and what a correct detector should say
//! about it. TOML, parsed strictly (unknown keys are errors) with file:line:column locations.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use anyhow::{anyhow, bail, Result};
use ipnet::{IpNet, Ipv4Net};
use serde::Deserialize;

/// Unix time the scenarios start at unless they say otherwise: 2025-10-24 00:00 UTC, the day of
/// the 15.72 Tbps attack on Azure.
pub const DEFAULT_START_UNIX_S: u64 = 1_761_264_000;
/// Longest scenario: a compressed day is minutes, not hours.
const MAX_DURATION_S: u32 = 3600;
/// Most sources of one traffic component: the alias table is 16 bytes per source.
pub const MAX_SOURCES: u32 = 4_000_000;
/// Most sources of a component whose truth is judged per source.
pub const MAX_PER_SOURCE_TRUTH: u32 = 4096;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short kebab-case name.
    pub name: String,
    /// One line for `--list`.
    pub description: String,
    /// Where the numbers come from (public reports; see shared/brief/botnets.md).
    pub facts: String,
    pub duration_s: u32,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "default_start")]
    pub start_unix_s: u64,
    pub telemetry: Telemetry,
    /// Rate multipliers of the traffic components by scale name (background is never scaled);
    /// empty: the file's rates are the only scale.
    #[serde(default)]
    pub scales: BTreeMap<String, f64>,
    /// The scale used unless `--scale` says otherwise; must be a key of `scales`.
    #[serde(default)]
    pub scale: Option<String>,
    /// Ordinary traffic of the monitored hosts: `[background]` (one) or `[[background]]` (several,
    /// each with its own hosts, rates, mix and daily shape).
    #[serde(rename = "background", default, deserialize_with = "one_or_many")]
    pub backgrounds: Vec<Background>,
    #[serde(default)]
    pub traffic: Vec<Traffic>,
    /// Bot pools: populations of infected devices that attacks draw a share of their sources
    /// from (`pool`, `pool_share` of a traffic component), so attacks of one pool share bots.
    #[serde(default)]
    pub pools: Vec<Pool>,
    /// Periodic connections of monitored hosts: C2 check-ins, beacons, NTP, monitoring agents.
    #[serde(default)]
    pub periodic: Vec<Periodic>,
    /// `[hunt]` keys for the replay's configuration (`ignore`, `scan_window_seconds`, …),
    /// passed through as written; checked against the configuration's `[hunt]` when loaded.
    #[serde(default)]
    pub hunt: Option<toml::Table>,
    /// Extra lines of the C2 feed written beside the capture (IP, IP:port, CIDR, domain), after
    /// the endpoints of the `role = "c2"` periodic components: the entries nobody contacts.
    #[serde(default)]
    pub c2_feed: Vec<String>,
    pub truth: Truth,
}

/// `[[pools]]`: a bot pool. Member `j`'s address is a pure function of (seed, j): spread over
/// `prefixes` (a permutation of their addresses) or, without them, over routed, non-bogon
/// IPv4 space outside the monitored networks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub name: String,
    pub size: u32,
    #[serde(default)]
    pub prefixes: Vec<Ipv4Net>,
    #[serde(default)]
    pub seed: u64,
}

/// What a periodic component is, for the truth: `c2` (its peers go into the scenario's C2
/// feed), `beacon` (malware beaconing to an endpoint no feed knows) or `benign`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    C2,
    Beacon,
    Benign,
}

/// How one check-in looks on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Connection {
    /// A short TCP connection: SYN, SYN-ACK, ACK, `packets` data packets each way, FIN each
    /// way; a new source port each time.
    Short,
    /// One long-lived TCP connection: a keepalive (ACK out, ACK back) each period, on one
    /// source port.
    Persistent,
    /// A UDP request and its answer (NTP, a DNS query), a new source port each time unless
    /// `local_port` is given.
    Udp,
}

/// `[[periodic]]`: hosts of the monitored networks that each contact one of `peers` every
/// `period_s` (± `jitter` × period, uniformly), from a random phase.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Periodic {
    pub name: String,
    pub role: Role,
    /// The hosts: listed, or `host_count` of them drawn from `host_prefix`.
    #[serde(default)]
    pub hosts: Vec<Ipv4Addr>,
    #[serde(default)]
    pub host_prefix: Option<Ipv4Net>,
    #[serde(default)]
    pub host_count: u32,
    /// Remote endpoints `IP:port`; each check-in goes to one (by a hash of host and check-in),
    /// or to every one with `all_peers`.
    pub peers: Vec<std::net::SocketAddrV4>,
    /// Each check-in contacts every peer in turn (an NTP client polling each of its servers).
    #[serde(default)]
    pub all_peers: bool,
    pub period_s: f64,
    /// Each interval is `period_s × (1 + jitter × u)`, u uniform in [-1, 1].
    #[serde(default)]
    pub jitter: f64,
    pub connection: Connection,
    /// Data packets each way per check-in (short connections). Default 2.
    #[serde(default = "two")]
    pub packets: u32,
    /// IP length of the data packets. Default 200.
    #[serde(default = "data_size")]
    pub size: u16,
    /// UDP: the host's own port (123 for NTP daemons); default a new random port each time.
    #[serde(default)]
    pub local_port: Option<u16>,
    #[serde(default)]
    pub start_s: f64,
    /// Default: to the end of the scenario.
    #[serde(default)]
    pub duration_s: Option<f64>,
}

fn two() -> u32 {
    2
}

fn data_size() -> u16 {
    200
}

fn default_start() -> u64 {
    DEFAULT_START_UNIX_S
}

/// `[background]` (a table) or `[[background]]` (an array of tables), each parsed strictly with
/// its own error locations (an untagged enum would lose them).
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Background>, D::Error> {
    use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Vec<Background>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a [background] table or [[background]] tables")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Background::deserialize(MapAccessDeserializer::new(map)).map(|b| vec![b])
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Vec::<Background>::deserialize(SeqAccessDeserializer::new(seq))
        }
    }
    d.deserialize_any(Visitor)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Sflow,
    Netflow9,
    Ipfix,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Sflow => "sflow",
            Format::Netflow9 => "netflow9",
            Format::Ipfix => "ipfix",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    pub format: Format,
    /// 1-in-N random packet sampling.
    pub sampling: u32,
    /// The exporting router (sFlow agent address, datagram source).
    pub exporter: Ipv4Addr,
    /// Monitored networks: what `floodwall replay --network` must be given.
    pub networks: Vec<IpNet>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Towards monitored addresses.
    Incoming,
    /// From monitored addresses.
    Outgoing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    Gre,
}

impl Protocol {
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Icmp => 1,
            Protocol::Gre => 47,
        }
    }
}

/// Ordinary traffic of many monitored hosts with a daily shape, always on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Background {
    /// What these hosts are (`hosting`, `subscribers`); for errors and reports.
    #[serde(default)]
    pub name: Option<String>,
    /// The prefix the hosts are drawn from (inside a monitored network).
    pub hosts: Ipv4Net,
    /// How many hosts: at most half the addresses of `hosts`, or all 254 of a /24.
    pub host_count: u32,
    /// Median packets/s of a host (both directions) at the daily peak.
    pub pps_median: f64,
    /// Lognormal sigma of the per-host rates.
    pub pps_sigma: f64,
    /// No host above this many packets/s at the daily peak (the access line).
    pub pps_cap: f64,
    /// Distinct remote addresses the hosts talk to.
    pub clients: u32,
    /// Connections: each host talks to this many remote peers (drawn from `clients`), each on a
    /// stable pair of ports (derived from the host and peer), as real flows do. Default: every
    /// packet from a random client on a random port.
    #[serde(default)]
    pub peers: Option<u32>,
    /// The hours of the day the scenario spans, compressed into its duration: [18, 22] is the
    /// evening rise, [0, 24] a whole day.
    pub hours: [f64; 2],
    /// Relative rate per hour 0..23 (linearly interpolated); default: a residential curve.
    #[serde(default)]
    pub diurnal: Option<Vec<f64>>,
    /// Traffic mix; default: [`default_mix`].
    #[serde(default)]
    pub mix: Option<Vec<MixEntry>>,
}

/// One kind of background packet: its share of the packets and how it looks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixEntry {
    pub share: f64,
    pub direction: Direction,
    pub protocol: Protocol,
    /// The remote end's port.
    pub remote_port: Ports,
    /// The monitored host's port.
    pub local_port: Ports,
    #[serde(default)]
    pub tcp_flags: Option<Flags>,
    pub sizes: Vec<Size>,
}

/// A traffic component: an attack, or benign traffic that must not be mistaken for one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    pub name: String,
    pub kind: Kind,
    pub direction: Direction,
    /// Destination addresses: one host, or a prefix hit uniformly per packet (carpet bombing).
    /// Incoming: inside a monitored network; outgoing: the external victim.
    pub target: Ipv4Net,
    pub start_s: f64,
    pub duration_s: f64,
    #[serde(default)]
    pub ramp_up_s: f64,
    #[serde(default)]
    pub ramp_down_s: f64,
    /// Peak rate (at the scenario's default scale); give one of the two.
    #[serde(default)]
    pub peak_pps: Option<f64>,
    #[serde(default)]
    pub peak_bps: Option<f64>,
    /// Churn: each second's rate is the peak times (1 − jitter × u), u uniform in [0, 1); one
    /// second of the plateau is exactly the peak.
    #[serde(default)]
    pub jitter: f64,
    pub protocol: Protocol,
    pub sizes: Vec<Size>,
    #[serde(default = "random_high")]
    pub src_ports: Ports,
    #[serde(default = "any_port")]
    pub dst_ports: Ports,
    #[serde(default)]
    pub tcp_flags: Option<Flags>,
    /// GRE only: share of packets carrying an inner Ethernet frame (Mirai `greeth`); the rest
    /// carry IP/UDP (`greip`).
    #[serde(default)]
    pub gre_eth_share: f64,
    /// Distinct sources; with `pool`, leave it out (the pool share decides).
    #[serde(default)]
    pub sources: u32,
    /// Sources are a share of this `[[pools]]` pool: a deterministic random subset of
    /// `round(size × pool_share)` of its members, chosen by this component's own key.
    #[serde(default)]
    pub pool: Option<String>,
    #[serde(default)]
    pub pool_share: Option<f64>,
    /// Remote servers of outgoing traffic: with `destinations = N`, each packet goes to one of N
    /// public servers (lognormal popularity, `destination_sigma`), as a NAT gateway's clients'
    /// traffic does, rather than to a uniformly random address of `target`.
    #[serde(default)]
    pub destinations: Option<u32>,
    #[serde(default = "default_destination_sigma")]
    pub destination_sigma: f64,
    /// TCP sequence numbers: `"dst"` makes each one the IPv4 destination address, the probe
    /// signature of the Mirai family's scanner (visible in sFlow raw headers only).
    #[serde(default)]
    pub tcp_seq: Option<TcpSeq>,
    /// Sources drawn from this prefix (outgoing: the infected customers, inside a monitored
    /// network); default: addresses spread over public IPv4 space.
    #[serde(default)]
    pub source_prefix: Option<Ipv4Net>,
    /// Share of sources sending in any one second (churn).
    #[serde(default = "one")]
    pub active_fraction: f64,
    /// Lognormal sigma of the per-source rates.
    #[serde(default)]
    pub source_sigma: f64,
    /// Per-source rate cap as a multiple of the median (the access uplink).
    #[serde(default = "default_cap")]
    pub source_cap: f64,
    /// Share of packets with a forged random source address and a random TTL.
    #[serde(default)]
    pub spoofed: f64,
    /// The answering direction (a server's data for incoming requests and ACKs, a client's ACKs
    /// for a download, the SYN-ACKs and resets a scan draws), from each packet's destination
    /// back to its source: benign traffic and outgoing attacks.
    #[serde(default)]
    pub reply: Option<Reply>,
}

/// The reverse direction of a benign component: `ratio` reply packets per forward packet, from
/// the forward packets' destinations to their sources with the ports swapped.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    pub ratio: f64,
    pub sizes: Vec<Size>,
    /// Required for TCP, refused otherwise.
    #[serde(default)]
    pub tcp_flags: Option<Flags>,
}

fn default_destination_sigma() -> f64 {
    1.5
}

/// `tcp_seq` of a traffic component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TcpSeq {
    /// The sequence number is the destination address (Mirai's `iph->daddr`).
    Dst,
}

fn random_high() -> Ports {
    Ports::Named(NamedPorts::Random)
}

fn any_port() -> Ports {
    Ports::Named(NamedPorts::Any)
}

fn one() -> f64 {
    1.0
}

fn default_cap() -> f64 {
    50.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Attack,
    Benign,
}

/// A packet size (IP length) or a uniform range, with its share of the packets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Size {
    #[serde(default)]
    pub size: Option<u16>,
    #[serde(default)]
    pub min: Option<u16>,
    #[serde(default)]
    pub max: Option<u16>,
    pub share: f64,
}

impl Size {
    /// The inclusive range of this entry.
    pub fn range(&self) -> (u16, u16) {
        match (self.size, self.min, self.max) {
            (Some(s), _, _) => (s, s),
            (None, Some(a), Some(b)) => (a, b),
            _ => (0, 0),
        }
    }
}

/// Ports: `"random"` (1024–65535 per packet), `"any"` (1–65535), `"per-source"` (one fixed
/// random high port per source, as Mirai's scanner), one port, or weighted ports.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Ports {
    Fixed(u16),
    Named(NamedPorts),
    Weighted(Vec<PortShare>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NamedPorts {
    Random,
    Any,
    PerSource,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortShare {
    pub port: u16,
    pub share: f64,
}

/// TCP flags: one combination (`"SYN"`, `"PSH|ACK"`) or weighted combinations.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Flags {
    One(String),
    Weighted(Vec<FlagShare>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagShare {
    pub flags: String,
    pub share: f64,
}

/// What a correct detector, with Floodwall's documented default limits, should report.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Truth {
    /// Whether attacks not listed may be reported; false for every built-in scenario, so any
    /// other attack is a false positive.
    #[serde(default)]
    pub others_allowed: bool,
    #[serde(default)]
    pub expect: Vec<Expect>,
    /// Why the truth is what it is, where that is not obvious.
    #[serde(default)]
    pub notes: Option<String>,
    /// Hunting is judged: every `infected_host` must be one of `infected`, and every host
    /// listed there must be found. Implied by `infected` or `campaign` entries. Without it the
    /// hunting lines of a replay are not looked at.
    #[serde(default)]
    pub hunt: bool,
    #[serde(default)]
    pub infected: Vec<InfectedTruth>,
    #[serde(default)]
    pub campaign: Vec<CampaignTruth>,
}

/// Which sources of a component must be listed as infected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Required {
    /// Every host of the component (or `host`).
    #[default]
    All,
    /// Only the sources its per-source `[[truth.expect]]` requires as outgoing attacks; its
    /// other sources may be listed (they are infected too) or not.
    Expected,
    /// Infected, so it may be listed (with these reasons), but its evidence alone is below
    /// the default confidence (beaconing to an endpoint no feed knows).
    Optional,
}

/// `[[truth.infected]]`: hosts of a traffic or periodic component that must be listed as
/// infected with at least `reasons` (and no reason outside `reasons` and `also`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfectedTruth {
    pub traffic: String,
    /// One of the component's hosts; default: all of them.
    #[serde(default)]
    pub host: Option<Ipv4Addr>,
    pub reasons: Vec<floodwall_hunt::ReasonKind>,
    #[serde(default)]
    pub also: Vec<floodwall_hunt::ReasonKind>,
    #[serde(default)]
    pub required: Required,
    /// Listed (with all `reasons`) by this scenario second; default: by the end.
    #[serde(default)]
    pub by_s: Option<f64>,
}

/// `[[truth.campaign]]`: the attacks of `traffics` share one campaign, whose estimated
/// `sources` are within `tolerance` of the true union of their sources; the attacks of
/// `separate` are not in it, and those of `no_campaign` are in none at all.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignTruth {
    pub traffics: Vec<String>,
    #[serde(default)]
    pub separate: Vec<String>,
    #[serde(default)]
    pub no_campaign: Vec<String>,
    #[serde(default = "ten_percent")]
    pub tolerance: f64,
}

fn ten_percent() -> f64 {
    0.10
}

/// One expected detection, tied to the traffic component it is about. Target, direction, times
/// and peaks are written out so the file reads as its own truth; they are checked against the
/// traffic when the file is loaded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub traffic: String,
    /// The attacked prefix or host (incoming), or the attacking hosts' prefix (outgoing, per
    /// source).
    pub target: IpNet,
    pub direction: Direction,
    pub carpet_bombing: bool,
    /// Vectors that must be among those reported.
    pub vectors: Vec<String>,
    pub start_s: f64,
    pub end_s: f64,
    /// Peak packets/s and bits/s at the default scale (attack and background towards the
    /// target): what an unsampled meter would show as the busiest second. Optional for
    /// per-source expectations (each source has its own).
    #[serde(default)]
    pub peak_pps: Option<f64>,
    #[serde(default)]
    pub peak_bps: Option<f64>,
    /// Outgoing from several monitored sources: each source whose rate crosses the documented
    /// outgoing limits is one expected attack; sources near a limit may or may not be reported,
    /// sources well below must not be.
    #[serde(default)]
    pub per_source: bool,
}

/// Vector names the engine reports.
pub const VECTORS: [&str; 16] = [
    "udp_flood",
    "syn_flood",
    "ack_flood",
    "rst_flood",
    "tcp_flood",
    "icmp_flood",
    "gre_flood",
    "fragment_flood",
    "dns_amplification",
    "ntp_amplification",
    "ssdp_amplification",
    "memcached_amplification",
    "cldap_amplification",
    "chargen_amplification",
    "snmp_amplification",
    "wsd_amplification",
];

/// Parses a TCP flag combination such as `SYN|ACK`.
pub fn parse_flags(text: &str) -> Result<u8> {
    let mut flags = 0u8;
    for part in text.split('|') {
        flags |= match part.trim().to_ascii_uppercase().as_str() {
            "FIN" => 0x01,
            "SYN" => 0x02,
            "RST" => 0x04,
            "PSH" => 0x08,
            "ACK" => 0x10,
            "URG" => 0x20,
            other => bail!("unknown TCP flag {other:?} (FIN, SYN, RST, PSH, ACK, URG)"),
        };
    }
    Ok(flags)
}

impl Scenario {
    /// Parses scenario text; `origin` names it in errors (`file:line:column: message`).
    pub fn parse(text: &str, origin: &str) -> Result<Scenario> {
        let mut scenario: Scenario = toml::from_str(text)
            .map_err(|e| floodwall_daemon::config::located(&e, text, origin))?;
        scenario
            .resolve_pools()
            .map_err(|e| anyhow!("{origin}: {e:#}"))?;
        scenario
            .validate()
            .map_err(|e| anyhow!("{origin}: {e:#}"))?;
        Ok(scenario)
    }

    /// The multiplier of traffic rates at `scale` (the default scale when `None`).
    pub fn scale_factor(&self, scale: Option<&str>) -> Result<f64> {
        match scale.or(self.scale.as_deref()) {
            None => Ok(1.0),
            Some(name) => self.scales.get(name).copied().ok_or_else(|| {
                let known: Vec<&str> = self.scales.keys().map(String::as_str).collect();
                if known.is_empty() {
                    anyhow!("scenario {} has a single scale", self.name)
                } else {
                    anyhow!(
                        "scenario {} has no scale {name:?} (it has {})",
                        self.name,
                        known.join(", ")
                    )
                }
            }),
        }
    }

    /// Pool components' `sources`: their share of the pool, rounded.
    fn resolve_pools(&mut self) -> Result<()> {
        for (i, tr) in self.traffic.iter_mut().enumerate() {
            let Some(name) = &tr.pool else {
                if tr.pool_share.is_some() {
                    bail!("traffic[{i}] ({}): pool_share needs pool", tr.name);
                }
                continue;
            };
            let pool = self
                .pools
                .iter()
                .find(|p| &p.name == name)
                .ok_or_else(|| anyhow!("traffic[{i}] ({}): no pool named {name:?}", tr.name))?;
            let share = tr.pool_share.unwrap_or(1.0);
            if !(share > 0.0 && share <= 1.0) {
                bail!("traffic[{i}] ({}): pool_share must be in (0, 1]", tr.name);
            }
            if tr.sources != 0 {
                bail!(
                    "traffic[{i}] ({}): give pool (and pool_share) or sources, not both",
                    tr.name
                );
            }
            if tr.source_prefix.is_some() {
                bail!(
                    "traffic[{i}] ({}): a pool's members are its own addresses: no source_prefix",
                    tr.name
                );
            }
            tr.sources = ((f64::from(pool.size) * share).round() as u32).max(1);
        }
        Ok(())
    }

    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.name == name)
    }

    pub fn periodic(&self, name: &str) -> Option<&Periodic> {
        self.periodic.iter().find(|p| p.name == name)
    }

    /// Whether hunting is judged (see [`Truth::hunt`]).
    pub fn hunt_judged(&self) -> bool {
        self.truth.hunt || !self.truth.infected.is_empty() || !self.truth.campaign.is_empty()
    }

    /// The scenario's `[hunt]` keys as the replay configuration's `[hunt]`.
    pub fn hunt_config(&self) -> Result<floodwall_hunt::HuntConfig> {
        let table = self.hunt.clone().unwrap_or_default();
        toml::Value::Table(table)
            .try_into::<floodwall_hunt::HuntConfig>()
            .map_err(|e| anyhow!("hunt: {e}"))
    }

    pub fn traffic(&self, name: &str) -> Option<&Traffic> {
        self.traffic.iter().find(|t| t.name == name)
    }

    /// Whether `addr` is inside a monitored network.
    pub fn monitored(&self, addr: IpAddr) -> bool {
        self.telemetry.networks.iter().any(|n| n.contains(&addr))
    }

    fn validate(&self) -> Result<()> {
        let kebab = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !kebab {
            bail!(
                "name: must be kebab-case (a-z, 0-9, -), got {:?}",
                self.name
            );
        }
        if !(1..=MAX_DURATION_S).contains(&self.duration_s) {
            bail!("duration_s: must be in 1..={MAX_DURATION_S}");
        }
        let t = &self.telemetry;
        if t.sampling == 0 {
            bail!("telemetry.sampling: must be at least 1");
        }
        if t.networks.is_empty() {
            bail!("telemetry.networks: at least one monitored network");
        }
        for (name, factor) in &self.scales {
            if !(factor.is_finite() && *factor > 0.0) {
                bail!("scales.{name}: must be a positive number");
            }
        }
        if let Some(scale) = &self.scale {
            if !self.scales.contains_key(scale) {
                bail!("scale: {scale:?} is not one of `scales`");
            }
        }
        for (i, bg) in self.backgrounds.iter().enumerate() {
            let what = match (&bg.name, self.backgrounds.len()) {
                (_, 1) => "background".to_string(),
                (Some(name), _) => format!("background[{i}] ({name})"),
                (None, _) => format!("background[{i}]"),
            };
            bg.validate(self).map_err(|e| anyhow!("{what}.{e:#}"))?;
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, tr) in self.traffic.iter().enumerate() {
            if !names.insert(tr.name.as_str()) {
                bail!("traffic[{i}]: duplicate name {:?}", tr.name);
            }
            tr.validate(self)
                .map_err(|e| anyhow!("traffic[{i}] ({}): {e:#}", tr.name))?;
        }
        for (i, e) in self.truth.expect.iter().enumerate() {
            self.validate_expect(e)
                .map_err(|err| anyhow!("truth.expect[{i}] ({}): {err:#}", e.traffic))?;
        }
        self.validate_hunting()
    }

    fn validate_hunting(&self) -> Result<()> {
        let mut names = std::collections::BTreeSet::new();
        for (i, pool) in self.pools.iter().enumerate() {
            if !names.insert(pool.name.as_str()) {
                bail!("pools[{i}]: duplicate name {:?}", pool.name);
            }
            if pool.size == 0 || pool.size > MAX_SOURCES {
                bail!(
                    "pools[{i}] ({}): size between 1 and {MAX_SOURCES}",
                    pool.name
                );
            }
            let room: u64 = pool
                .prefixes
                .iter()
                .map(|p| 1u64 << (32 - p.prefix_len()))
                .sum();
            if !pool.prefixes.is_empty() && u64::from(pool.size) > room {
                bail!(
                    "pools[{i}] ({}): size exceeds the addresses of prefixes",
                    pool.name
                );
            }
            for p in &pool.prefixes {
                if self.monitored(IpAddr::V4(p.network())) {
                    bail!(
                        "pools[{i}] ({}): prefixes: bots are outside the monitored networks",
                        pool.name
                    );
                }
            }
        }
        for (i, p) in self.periodic.iter().enumerate() {
            if !names.insert(p.name.as_str()) || self.traffic(&p.name).is_some() {
                bail!("periodic[{i}]: duplicate name {:?}", p.name);
            }
            p.validate(self)
                .map_err(|e| anyhow!("periodic[{i}] ({}): {e:#}", p.name))?;
        }
        self.hunt_config()?;
        for (i, line) in self.c2_feed.iter().enumerate() {
            if line.trim().is_empty() || line.contains('\n') {
                bail!("c2_feed[{i}]: one non-empty entry per line");
            }
        }
        for (i, inf) in self.truth.infected.iter().enumerate() {
            self.validate_infected(inf)
                .map_err(|e| anyhow!("truth.infected[{i}] ({}): {e:#}", inf.traffic))?;
        }
        for (i, c) in self.truth.campaign.iter().enumerate() {
            if c.traffics.len() < 2 {
                bail!("truth.campaign[{i}]: traffics: at least two attacks make a campaign");
            }
            if !(c.tolerance > 0.0 && c.tolerance < 1.0) {
                bail!("truth.campaign[{i}]: tolerance must be in (0, 1)");
            }
            for name in c.traffics.iter().chain(&c.separate).chain(&c.no_campaign) {
                let tr = self
                    .traffic(name)
                    .ok_or_else(|| anyhow!("truth.campaign[{i}]: no traffic named {name:?}"))?;
                if tr.direction != Direction::Incoming || tr.kind != Kind::Attack {
                    bail!("truth.campaign[{i}]: {name:?} is not an incoming attack");
                }
                let expected = self
                    .truth
                    .expect
                    .iter()
                    .any(|e| &e.traffic == name && !e.carpet_bombing);
                if !expected {
                    bail!("truth.campaign[{i}]: {name:?} needs a [[truth.expect]] on its host (campaigns are of reported attacks)");
                }
            }
            for name in &c.traffics {
                let tr = self.traffic(name).map(|t| (t.spoofed, t.sources));
                if let Some((spoofed, sources)) = tr {
                    if spoofed > 0.0 || sources > MAX_SOURCES {
                        bail!("truth.campaign[{i}]: {name:?}: a campaign's sources must be known (no spoofing)");
                    }
                }
            }
        }
        Ok(())
    }

    fn validate_infected(&self, inf: &InfectedTruth) -> Result<()> {
        if inf.reasons.is_empty() {
            bail!("reasons: at least one");
        }
        if let Some(by) = inf.by_s {
            if !(by > 0.0 && by <= f64::from(self.duration_s)) {
                bail!("by_s: inside the scenario");
            }
        }
        if let Some(tr) = self.traffic(&inf.traffic) {
            if tr.direction != Direction::Outgoing || tr.kind != Kind::Attack {
                bail!("an infected host is a monitored source of malicious traffic: the traffic must be an outgoing attack");
            }
            if tr.sources > MAX_PER_SOURCE_TRUTH {
                bail!("at most {MAX_PER_SOURCE_TRUTH} sources");
            }
            if inf.required == Required::Expected
                && !self
                    .truth
                    .expect
                    .iter()
                    .any(|e| e.traffic == tr.name && e.per_source)
            {
                bail!("required = \"expected\" needs a per-source [[truth.expect]]");
            }
            return Ok(());
        }
        if let Some(p) = self.periodic(&inf.traffic) {
            if let Some(host) = inf.host {
                if !p.hosts.is_empty() && !p.hosts.contains(&host) {
                    bail!("host: not one of the component's hosts");
                }
            }
            if inf.required == Required::Expected {
                bail!("required = \"expected\" is for outgoing attacks");
            }
            if p.role == Role::Benign {
                bail!("the component is benign: its hosts are innocent");
            }
            return Ok(());
        }
        bail!("no traffic or periodic component of that name")
    }

    fn validate_expect(&self, e: &Expect) -> Result<()> {
        let tr = self
            .traffic(&e.traffic)
            .ok_or_else(|| anyhow!("no traffic named {:?}", e.traffic))?;
        if tr.kind != Kind::Attack {
            bail!("traffic {:?} is benign: it must not be expected", tr.name);
        }
        if e.direction != tr.direction {
            bail!("direction: the traffic is {:?}", tr.direction);
        }
        for v in &e.vectors {
            if !VECTORS.contains(&v.as_str()) {
                bail!(
                    "vectors: unknown vector {v:?} (one of {})",
                    VECTORS.join(", ")
                );
            }
        }
        let expected_target = if e.per_source {
            let prefix = tr
                .source_prefix
                .ok_or_else(|| anyhow!("per_source needs the traffic's source_prefix"))?;
            if tr.direction != Direction::Outgoing {
                bail!("per_source is for outgoing traffic");
            }
            if tr.sources > MAX_PER_SOURCE_TRUTH {
                bail!("per_source: at most {MAX_PER_SOURCE_TRUTH} sources");
            }
            IpNet::V4(prefix)
        } else {
            if tr.direction == Direction::Outgoing && tr.sources != 1 {
                bail!("outgoing traffic from several sources: use per_source = true");
            }
            match (tr.direction, tr.source_prefix) {
                (Direction::Outgoing, Some(prefix)) => IpNet::V4(prefix),
                _ => IpNet::V4(tr.target),
            }
        };
        if e.target != expected_target {
            bail!("target: the traffic's is {expected_target}");
        }
        if e.carpet_bombing != (tr.target.prefix_len() < 32 && tr.direction == Direction::Incoming)
        {
            bail!("carpet_bombing: true exactly for incoming traffic to a prefix");
        }
        let end = tr.start_s + tr.duration_s;
        if (e.start_s - tr.start_s).abs() > 1e-6 || (e.end_s - end).abs() > 1e-6 {
            bail!("start_s/end_s: the traffic runs {}..{end}", tr.start_s);
        }
        Ok(())
    }
}

fn check_shares(what: &str, shares: impl Iterator<Item = f64>) -> Result<()> {
    let mut total = 0.0;
    let mut any = false;
    for s in shares {
        if !(s.is_finite() && s >= 0.0) {
            bail!("{what}: shares must be >= 0");
        }
        total += s;
        any = true;
    }
    if !any || total <= 0.0 {
        bail!("{what}: at least one entry with a positive share");
    }
    Ok(())
}

fn check_sizes(sizes: &[Size]) -> Result<()> {
    check_shares("sizes", sizes.iter().map(|s| s.share))?;
    for s in sizes {
        let ok = match (s.size, s.min, s.max) {
            (Some(v), None, None) => (20..=9000).contains(&v),
            (None, Some(a), Some(b)) => a >= 20 && a <= b && b <= 9000,
            _ => false,
        };
        if !ok {
            bail!("sizes: each entry is {{ size = N }} or {{ min = A, max = B }}, 20..=9000 bytes");
        }
    }
    Ok(())
}

fn check_ports(what: &str, ports: &Ports) -> Result<()> {
    if let Ports::Weighted(list) = ports {
        check_shares(what, list.iter().map(|p| p.share))?;
    }
    Ok(())
}

fn check_flags(flags: &Option<Flags>, protocol: Protocol) -> Result<()> {
    match (flags, protocol) {
        (None, Protocol::Tcp) => bail!("tcp_flags: required for TCP"),
        (Some(_), p) if p != Protocol::Tcp => bail!("tcp_flags: only for TCP"),
        (Some(Flags::One(f)), _) => parse_flags(f).map(|_| ()),
        (Some(Flags::Weighted(list)), _) => {
            check_shares("tcp_flags", list.iter().map(|f| f.share))?;
            for f in list {
                parse_flags(&f.flags)?;
            }
            Ok(())
        }
        (None, _) => Ok(()),
    }
}

impl Background {
    /// The most hosts a prefix holds: half its addresses (they are spread by a permutation that
    /// skips .0 and .255), or all 254 of a /24 (a full hosting /24).
    pub fn max_hosts(prefix: Ipv4Net) -> u64 {
        if prefix.prefix_len() == 24 {
            254
        } else {
            (1u64 << (32 - prefix.prefix_len())) / 2
        }
    }

    /// Errors start with the key (the caller prefixes `background.`).
    fn validate(&self, scenario: &Scenario) -> Result<()> {
        let inside = scenario
            .telemetry
            .networks
            .iter()
            .any(|n| n.contains(&IpNet::V4(self.hosts)));
        if !inside {
            bail!("hosts: must lie inside a monitored network");
        }
        if self.host_count == 0 || u64::from(self.host_count) > Self::max_hosts(self.hosts) {
            bail!(
                "host_count: between 1 and {} for {}",
                Self::max_hosts(self.hosts),
                self.hosts
            );
        }
        for (what, v) in [("pps_median", self.pps_median), ("pps_cap", self.pps_cap)] {
            if !(v.is_finite() && v > 0.0) {
                bail!("{what}: must be positive");
            }
        }
        if !(self.pps_sigma.is_finite() && (0.0..=3.0).contains(&self.pps_sigma)) {
            bail!("pps_sigma: must be in 0..=3");
        }
        if self.clients == 0 {
            bail!("clients: at least 1");
        }
        if let Some(peers) = self.peers {
            if peers == 0 || peers > self.clients {
                bail!("peers: between 1 and `clients`");
            }
        }
        if self.name.as_deref().is_some_and(str::is_empty) {
            bail!("name: must not be empty");
        }
        let [a, b] = self.hours;
        if !(0.0..=48.0).contains(&a) || !(a..=48.0).contains(&b) {
            bail!("hours: [from, to] with 0 <= from <= to <= 48");
        }
        if let Some(d) = &self.diurnal {
            if d.len() != 24 || d.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
                bail!("diurnal: 24 non-negative numbers");
            }
        }
        if let Some(mix) = &self.mix {
            check_shares("mix", mix.iter().map(|m| m.share))?;
            for m in mix {
                check_sizes(&m.sizes)?;
                check_ports("mix.remote_port", &m.remote_port)?;
                check_ports("mix.local_port", &m.local_port)?;
                check_flags(&m.tcp_flags, m.protocol)?;
            }
        }
        Ok(())
    }
}

impl Periodic {
    fn validate(&self, scenario: &Scenario) -> Result<()> {
        match (&self.host_prefix, self.hosts.is_empty()) {
            (None, false) if self.host_count == 0 => {}
            (Some(prefix), true) => {
                let room = 1u64 << (32 - prefix.prefix_len());
                if self.host_count == 0 || u64::from(self.host_count) > (room / 2).max(1) {
                    bail!("host_count: between 1 and half the addresses of host_prefix");
                }
            }
            _ => bail!("give hosts = [..], or host_prefix and host_count"),
        }
        let hosts_monitored = self
            .hosts
            .iter()
            .map(|h| IpAddr::V4(*h))
            .chain(self.host_prefix.map(|p| IpAddr::V4(p.network())))
            .all(|a| scenario.monitored(a));
        if !hosts_monitored {
            bail!("hosts: inside the monitored networks");
        }
        if self.peers.is_empty() {
            bail!("peers: at least one IP:port");
        }
        if self
            .peers
            .iter()
            .any(|p| scenario.monitored(IpAddr::V4(*p.ip())))
        {
            bail!("peers: outside the monitored networks");
        }
        if !(self.period_s.is_finite() && self.period_s >= 1.0) {
            bail!("period_s: at least 1");
        }
        if !(0.0..1.0).contains(&self.jitter) {
            bail!("jitter: must be in [0, 1)");
        }
        if !(1..=1000).contains(&self.packets) || !(40..=1500).contains(&self.size) {
            bail!("packets: 1..=1000; size: 40..=1500");
        }
        let end = self.start_s
            + self
                .duration_s
                .unwrap_or(f64::from(scenario.duration_s) - self.start_s);
        if !(self.start_s >= 0.0 && end > self.start_s && end <= f64::from(scenario.duration_s)) {
            bail!("start_s/duration_s: must lie inside the scenario");
        }
        if self.local_port.is_some() && self.connection != Connection::Udp {
            bail!("local_port: for udp connections only");
        }
        Ok(())
    }
}

impl Traffic {
    fn validate(&self, scenario: &Scenario) -> Result<()> {
        let end = self.start_s + self.duration_s;
        if !(self.start_s >= 0.0 && self.duration_s > 0.0 && end <= f64::from(scenario.duration_s))
        {
            bail!("start_s/duration_s: must lie inside the scenario");
        }
        if self.ramp_up_s < 0.0
            || self.ramp_down_s < 0.0
            || self.ramp_up_s + self.ramp_down_s > self.duration_s
        {
            bail!("ramp_up_s + ramp_down_s: must fit in duration_s");
        }
        match (self.peak_pps, self.peak_bps) {
            (Some(v), None) | (None, Some(v)) if v.is_finite() && v > 0.0 => {}
            _ => bail!("give one of peak_pps and peak_bps, positive"),
        }
        if !(0.0..1.0).contains(&self.jitter) {
            bail!("jitter: must be in [0, 1)");
        }
        check_sizes(&self.sizes)?;
        check_ports("src_ports", &self.src_ports)?;
        check_ports("dst_ports", &self.dst_ports)?;
        check_flags(&self.tcp_flags, self.protocol)?;
        if !(0.0..=1.0).contains(&self.gre_eth_share) {
            bail!("gre_eth_share: must be in [0, 1]");
        }
        if self.sources == 0 || self.sources > MAX_SOURCES {
            bail!("sources: between 1 and {MAX_SOURCES}");
        }
        if !(self.active_fraction > 0.0 && self.active_fraction <= 1.0) {
            bail!("active_fraction: must be in (0, 1]");
        }
        if !(self.source_sigma.is_finite() && (0.0..=3.0).contains(&self.source_sigma)) {
            bail!("source_sigma: must be in 0..=3");
        }
        if !(self.source_cap.is_finite() && self.source_cap >= 1.0) {
            bail!("source_cap: must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.spoofed) {
            bail!("spoofed: must be in [0, 1]");
        }
        let target_monitored = scenario.monitored(IpAddr::V4(self.target.network()));
        match self.direction {
            Direction::Incoming if !target_monitored => {
                bail!("target: incoming traffic goes to a monitored network")
            }
            Direction::Outgoing if target_monitored => {
                bail!("target: outgoing traffic goes outside the monitored networks")
            }
            _ => {}
        }
        let sources_monitored = self
            .source_prefix
            .is_some_and(|p| scenario.monitored(IpAddr::V4(p.network())));
        if (self.direction == Direction::Outgoing) != sources_monitored {
            bail!("source_prefix: outgoing traffic comes from a monitored prefix, incoming from outside");
        }
        if let Some(prefix) = self.source_prefix {
            let room = 1u64 << (32 - prefix.prefix_len());
            if u64::from(self.sources) > (room / 2).max(1) {
                bail!("sources: at most half the addresses of source_prefix (one of a /32)");
            }
        }
        if self.tcp_seq.is_some() && self.protocol != Protocol::Tcp {
            bail!("tcp_seq: only for TCP");
        }
        if let Some(n) = self.destinations {
            if self.direction != Direction::Outgoing || n == 0 || n > MAX_SOURCES {
                bail!("destinations: outgoing traffic only, 1..={MAX_SOURCES}");
            }
            if !(self.destination_sigma.is_finite()
                && (0.0..=3.0).contains(&self.destination_sigma))
            {
                bail!("destination_sigma: must be in 0..=3");
            }
        }
        if let Some(reply) = &self.reply {
            if self.kind != Kind::Benign && self.direction != Direction::Outgoing {
                bail!("reply: only benign traffic and outgoing attacks (a scan's SYN-ACKs and resets) are answered (an incoming attack's backscatter is not modelled)");
            }
            if !(reply.ratio.is_finite() && reply.ratio > 0.0 && reply.ratio <= 100.0) {
                bail!("reply.ratio: must be in (0, 100]");
            }
            if self.spoofed > 0.0 {
                bail!("reply: spoofed sources get no answer; spoofed must be 0");
            }
            check_sizes(&reply.sizes).map_err(|e| anyhow!("reply.{e:#}"))?;
            check_flags(&reply.tcp_flags, self.protocol).map_err(|e| anyhow!("reply.{e:#}"))?;
        }
        Ok(())
    }
}

/// The background mix of a residential ISP: downloads and streaming in, acknowledgements and
/// requests out, DNS, QUIC and game traffic. Ports are the remote end's (`remote_port`) and the
/// subscriber's (`local_port`).
const DEFAULT_MIX: &str = r#"
mix = [
  { share = 0.42, direction = "incoming", protocol = "tcp", remote_port = 443, local_port = "random", tcp_flags = [{ flags = "ACK", share = 0.7 }, { flags = "PSH|ACK", share = 0.3 }], sizes = [{ size = 1500, share = 0.8 }, { min = 52, max = 1400, share = 0.2 }] },
  { share = 0.05, direction = "incoming", protocol = "tcp", remote_port = 80, local_port = "random", tcp_flags = [{ flags = "ACK", share = 0.7 }, { flags = "PSH|ACK", share = 0.3 }], sizes = [{ size = 1500, share = 0.8 }, { min = 52, max = 1400, share = 0.2 }] },
  { share = 0.13, direction = "incoming", protocol = "udp", remote_port = 443, local_port = "random", sizes = [{ min = 1200, max = 1350, share = 0.85 }, { min = 60, max = 400, share = 0.15 }] },
  { share = 0.02, direction = "incoming", protocol = "udp", remote_port = 53, local_port = "random", sizes = [{ min = 80, max = 300, share = 1.0 }] },
  { share = 0.03, direction = "incoming", protocol = "udp", remote_port = [{ port = 27015, share = 0.5 }, { port = 3074, share = 0.5 }], local_port = "random", sizes = [{ min = 60, max = 250, share = 1.0 }] },
  { share = 0.01, direction = "incoming", protocol = "tcp", remote_port = 443, local_port = "random", tcp_flags = [{ flags = "SYN|ACK", share = 0.5 }, { flags = "FIN|ACK", share = 0.5 }], sizes = [{ size = 60, share = 1.0 }] },
  { share = 0.22, direction = "outgoing", protocol = "tcp", remote_port = 443, local_port = "random", tcp_flags = [{ flags = "ACK", share = 0.9 }, { flags = "PSH|ACK", share = 0.1 }], sizes = [{ min = 52, max = 64, share = 0.9 }, { min = 100, max = 600, share = 0.1 }] },
  { share = 0.02, direction = "outgoing", protocol = "tcp", remote_port = 443, local_port = "random", tcp_flags = [{ flags = "SYN", share = 0.5 }, { flags = "FIN|ACK", share = 0.5 }], sizes = [{ size = 60, share = 1.0 }] },
  { share = 0.05, direction = "outgoing", protocol = "udp", remote_port = 443, local_port = "random", sizes = [{ min = 60, max = 1350, share = 1.0 }] },
  { share = 0.02, direction = "outgoing", protocol = "udp", remote_port = 53, local_port = "random", sizes = [{ min = 60, max = 90, share = 1.0 }] },
  { share = 0.03, direction = "outgoing", protocol = "udp", remote_port = [{ port = 27015, share = 0.5 }, { port = 3074, share = 0.5 }], local_port = "random", sizes = [{ min = 60, max = 200, share = 1.0 }] },
]
"#;

/// The default background mix (see [`DEFAULT_MIX`]).
pub fn default_mix() -> Result<Vec<MixEntry>> {
    #[derive(Deserialize)]
    struct Mix {
        mix: Vec<MixEntry>,
    }
    let mix: Mix = toml::from_str(DEFAULT_MIX).map_err(|e| anyhow!("default mix: {e}"))?;
    Ok(mix.mix)
}

/// Relative residential traffic per hour of the day: trough before dawn, peak at 21:00.
pub const DEFAULT_DIURNAL: [f64; 24] = [
    0.45, 0.35, 0.28, 0.24, 0.22, 0.24, 0.30, 0.40, 0.50, 0.55, 0.58, 0.60, 0.62, 0.63, 0.65, 0.68,
    0.72, 0.80, 0.90, 0.97, 1.00, 0.98, 0.85, 0.65,
];
