//! Detection settings, deserialized from the `[detection]` part of floodwall.toml. Every field has
//! a documented default; a config reference is generated from these doc comments.
//!
//! Thresholds are layered: built-in defaults per direction, overridden by the top-level
//! `incoming` / `outgoing` tables, overridden per hostgroup. A limit left unset inherits; a limit
//! of `0` disables that check.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::vocab::Metric;

/// Per-direction limits. Every field is optional: unset inherits from the layer below
/// (hostgroup → top-level `incoming`/`outgoing` → built-in default), `0` disables the check.
/// Rates are per second over a 1-second bucket (or the evidence window when a bucket holds too
/// few samples), after scaling by the sampling rate, and must be above the limit by more than
/// sampling noise.
///
/// Limits count the traffic a target's *ordinary* traffic does not explain: TCP data answered
/// by the other direction (or from a few servers, or on a service's port), a server's
/// acknowledgement stream answered by its data, SYNs and resets up to a quarter of the
/// established TCP, UDP answered by the other direction (or a download from a few servers on
/// one port), reflector answers the target asked for, tunnels that carry traffic both ways. A
/// download, a busy server or a flash crowd is never an attack however large; a flood is not
/// answered. `flows_per_s` counts every record.
///
/// The built-in limits are at least as sensitive as FastNetMon Community's defaults
/// (`threshold_pps` 20000, `threshold_mbps` 1000 per host, for every vector), and lower where
/// the traffic's shape already tells a flood from ordinary traffic.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Unexplained packets/s. Default: incoming 20000, outgoing 20000 (FastNetMon's
    /// `threshold_pps`: a flood of any vector at 20 kpps is an attack; ordinary traffic does not
    /// count, so busy servers do not reach it).
    pub pps: Option<f64>,
    /// Unexplained megabits/s. Default: incoming 1000 (FastNetMon's `threshold_mbps`),
    /// outgoing 500 (a customer's device flooding someone at half a gigabit is already far
    /// beyond any upload a subscriber line carries as one-way traffic).
    pub mbps: Option<f64>,
    /// Flows (records, unscaled) per second: scanning and spoofed floods. Default: incoming
    /// disabled (every sample of a flood is a record), outgoing 5000 (a customer's device
    /// opening thousands of flows a second is scanning or flooding).
    pub flows_per_s: Option<f64>,
    /// Unexplained TCP packets/s. Default: disabled (`pps` and the flag-specific limits apply).
    pub tcp_pps: Option<f64>,
    /// Unexplained TCP megabits/s. Default: disabled.
    pub tcp_mbps: Option<f64>,
    /// Unexplained UDP packets/s. Default: disabled (`pps` and `amplification_pps` apply).
    pub udp_pps: Option<f64>,
    /// Unexplained UDP megabits/s. Default: disabled.
    pub udp_mbps: Option<f64>,
    /// ICMP + ICMPv6 packets/s (never explained). Default: incoming 10000, outgoing 5000.
    /// Ordinary ICMP (path MTU, unreachables, monitoring pings) is a few packets a second.
    pub icmp_pps: Option<f64>,
    /// ICMP megabits/s. Default: disabled.
    pub icmp_mbps: Option<f64>,
    /// Unexplained GRE packets/s (a tunnel carries traffic both ways). Default: incoming 10000,
    /// outgoing 5000.
    pub gre_pps: Option<f64>,
    /// GRE megabits/s. Default: disabled.
    pub gre_mbps: Option<f64>,
    /// TCP SYN-without-ACK packets/s beyond a quarter of the established TCP. Default: incoming
    /// 10000, outgoing 5000. A connection carries several packets besides its SYN, so benign
    /// SYNs never exceed that share; a SYN flood is almost nothing else (FastNetMon Advanced
    /// and peers single out SYN floods the same way: SYN share, SYN without established traffic).
    pub syn_pps: Option<f64>,
    /// Unexplained ACK packets/s: bare ACKs (no payload) that no data going the other way
    /// answers, random-flag ACKs (URG), and unanswered data from many remotes on scattered
    /// ports (Mirai's `ack` carries a 512-byte payload). Default: incoming 20000, outgoing 10000.
    /// A server's acknowledgement stream and ordinary downloads and uploads do not count.
    pub ack_pps: Option<f64>,
    /// TCP RST packets/s beyond a quarter of the established TCP. Default: incoming 10000,
    /// outgoing 5000.
    pub rst_pps: Option<f64>,
    /// Unexplained IP fragment packets/s. Default: incoming 10000, outgoing 5000.
    pub fragment_pps: Option<f64>,
    /// IP fragment megabits/s. Default: disabled.
    pub fragment_mbps: Option<f64>,
    /// UDP packets/s from amplification source ports (DNS, NTP, SSDP, memcached, CLDAP, chargen,
    /// SNMP, WSD) of the size reflectors are abused for (DNS and SNMP from 400 bytes, NTP from
    /// 200), beyond twice the requests the target sent to that port; counted for incoming
    /// traffic only. Default: incoming 10000. A resolver's ordinary answers are small and asked
    /// for.
    pub amplification_pps: Option<f64>,
    /// Amplification megabits/s; incoming only. Default: disabled.
    pub amplification_mbps: Option<f64>,
}

/// For the commented-out hostgroup in `floodwall init` (inside its example `networks`).
fn example_networks() -> Vec<&'static str> {
    vec!["203.0.113.128/25"]
}

impl Thresholds {
    /// Built-in limits for traffic to monitored hosts.
    pub fn builtin_incoming() -> Self {
        Thresholds {
            pps: Some(20_000.0),
            mbps: Some(1_000.0),
            icmp_pps: Some(10_000.0),
            gre_pps: Some(10_000.0),
            syn_pps: Some(10_000.0),
            ack_pps: Some(20_000.0),
            rst_pps: Some(10_000.0),
            fragment_pps: Some(10_000.0),
            amplification_pps: Some(10_000.0),
            ..Thresholds::default()
        }
    }

    /// Built-in limits for traffic from monitored hosts: a customer's device flooding someone is
    /// suspicious sooner than a server receiving a lot.
    pub fn builtin_outgoing() -> Self {
        Thresholds {
            pps: Some(20_000.0),
            mbps: Some(500.0),
            flows_per_s: Some(5_000.0),
            icmp_pps: Some(5_000.0),
            gre_pps: Some(5_000.0),
            syn_pps: Some(5_000.0),
            ack_pps: Some(10_000.0),
            rst_pps: Some(5_000.0),
            fragment_pps: Some(5_000.0),
            ..Thresholds::default()
        }
    }

    /// The limit for `metric` as written in this layer.
    pub(crate) fn get(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::Pps => self.pps,
            Metric::Mbps => self.mbps,
            Metric::FlowsPerS => self.flows_per_s,
            Metric::TcpPps => self.tcp_pps,
            Metric::TcpMbps => self.tcp_mbps,
            Metric::UdpPps => self.udp_pps,
            Metric::UdpMbps => self.udp_mbps,
            Metric::IcmpPps => self.icmp_pps,
            Metric::IcmpMbps => self.icmp_mbps,
            Metric::GrePps => self.gre_pps,
            Metric::GreMbps => self.gre_mbps,
            Metric::SynPps => self.syn_pps,
            Metric::AckPps => self.ack_pps,
            Metric::RstPps => self.rst_pps,
            Metric::FragmentPps => self.fragment_pps,
            Metric::FragmentMbps => self.fragment_mbps,
            Metric::AmplificationPps => self.amplification_pps,
            Metric::AmplificationMbps => self.amplification_mbps,
        }
    }

    /// `what`: the key of this layer under `[detection]` (`hostgroups[0].incoming`).
    fn validate(&self, what: &str) -> Result<(), ConfigError> {
        for metric in Metric::ALL {
            if let Some(v) = self.get(metric) {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(ConfigError::new(
                        format!("{what}.{metric}"),
                        ConfigProblem::NegativeLimit(v),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Carpet-bombing overrides for one hostgroup; unset fields inherit from `[detection.carpet]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CarpetThresholds {
    /// See [`CarpetConfig::min_hosts`].
    pub min_hosts: Option<u32>,
    /// See [`CarpetConfig::max_host_share`].
    pub max_host_share: Option<f64>,
    /// See [`CarpetConfig::pps`].
    pub pps: Option<f64>,
    /// See [`CarpetConfig::mbps`].
    pub mbps: Option<f64>,
    /// See [`CarpetConfig::baseline`].
    pub baseline: Option<bool>,
    /// See [`CarpetConfig::baseline_min_pps`].
    pub baseline_min_pps: Option<f64>,
    /// See [`CarpetConfig::baseline_min_mbps`].
    pub baseline_min_mbps: Option<f64>,
    /// See [`CarpetConfig::max_pps`].
    pub max_pps: Option<f64>,
    /// See [`CarpetConfig::max_mbps`].
    pub max_mbps: Option<f64>,
}

/// A named set of networks with its own limits, matched by longest prefix. Addresses of
/// `networks` outside every hostgroup belong to the built-in `default` group.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Hostgroup {
    /// Unique name, reported in events (`default` is reserved). Required.
    #[schemars(example = &"customers")]
    pub name: String,
    /// Networks of the group; each must lie inside one of the monitored `networks`. Required.
    #[schemars(example = example_networks())]
    pub networks: Vec<IpNet>,
    /// Limits for traffic to the group; unset fields inherit the top-level `incoming`.
    pub incoming: Thresholds,
    /// Limits for traffic from the group; unset fields inherit the top-level `outgoing`.
    pub outgoing: Thresholds,
    /// Carpet-bombing overrides; default: none (the top-level `carpet` applies).
    pub carpet: Option<CarpetThresholds>,
}

/// Dynamic per-host baseline: catches attacks below the static thresholds on hosts that are
/// normally quiet, without alarming on hosts that are normally busy.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineConfig {
    /// Whether baseline detection runs. Default: true.
    pub enabled: bool,
    /// Time constant of the moving averages, in seconds (alpha = 1 / time_constant_s; the first
    /// `time_constant_s` buckets use a plain running mean). Default: 600: ten minutes follows a
    /// network's daily shape (which moves over hours) but not an attack (which surges within
    /// seconds and is over within minutes).
    pub time_constant_s: f64,
    /// Seconds of history a host needs before its baseline may alarm. Default: 300 (FastNetMon
    /// Advanced's advice for a first baseline is 10–15 minutes of traffic; five already give a
    /// mean and a deviation worth comparing with, and static limits guard the time before).
    pub min_history_s: u32,
    /// Alarm when the rate exceeds mean + `deviations` × mean absolute deviation. Default: 4
    /// (far out in the tail of an ordinary target's own variation).
    pub deviations: f64,
    /// ... and at least `min_ratio` × the mean, so busy-but-steady hosts do not alarm. Default: 4
    /// (peers set learnt thresholds at 2–3 × a week's peak, or 5 × a 7-day 95th percentile; an
    /// ordinary peak is about 2 × the mean).
    pub min_ratio: f64,
    /// ... and at least this many packets/s. Default: 5000 (a quarter of `pps`: less, however
    /// quiet the host normally is, is not worth waking an operator for).
    pub min_pps: f64,
    /// ... and (for the bandwidth baseline) at least this many megabits/s. Default: 50 (a
    /// subscriber's ordinary video streams and uploads stay below it).
    pub min_mbps: f64,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            enabled: true,
            time_constant_s: 600.0,
            min_history_s: 300,
            deviations: 4.0,
            min_ratio: 4.0,
            min_pps: 5_000.0,
            min_mbps: 50.0,
        }
    }
}

/// Carpet bombing: a whole prefix (`prefix_length_v4`/`_v6`) flooded, each host below its own
/// limits. Incoming only.
///
/// Only the prefix's *residue* counts: traffic to its hosts that are not under attack on their
/// own. A bucket is a carpet when the residue reaches `min_hosts` hosts (counted by their share),
/// no host has more than `max_host_share` of it, enough samples stand behind it (`min_samples`)
/// and one of these holds (each by more than sampling noise):
///
/// * the residue's unexplained traffic is at or above the ceiling `max_pps` / `max_mbps`,
///   whatever it looks like;
/// * it is attack-shaped: its unexplained part other than data (SYNs, bare or random-flag ACKs,
///   unanswered UDP, reflected answers, ICMP, fragments) is most of it and over `pps` / `mbps`
///   (or, once the prefix's baseline has warmed up, over its learnt level if that is higher);
/// * it surges: above the prefix's learnt level (mean + `baseline.deviations` × deviation, at
///   least `baseline.min_ratio` × mean, at least `baseline_min_pps` / `baseline_min_mbps`), the
///   rise being unexplained traffic; before the warm-up (`baseline.min_history_s`) is over, the
///   same against what the prefix carried in its first 30 seconds.
///
/// So a busy, steady prefix of ordinary traffic is learnt, not reported, from its first second.
/// The prefix baseline learns the residue of each bucket that is not part of a carpet attack
/// (attack buckets are skipped), with the time constant, warm-up, deviations and ratio of
/// `[detection.baseline]` (whose `enabled` switches the per-host baseline only); it is saved
/// across restarts with the host baselines. Inside an active carpet, a host whose traffic is of
/// the carpet's kind and no more than 4 × the carpet's rate per host is part of it, not an
/// attack of its own.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CarpetConfig {
    /// Whether carpet-bombing detection runs. Default: true.
    pub enabled: bool,
    /// Distinct hosts of the prefix that must receive traffic in the bucket, counted by their
    /// share. Default: 16 (carpets hit every address of a prefix, dark ones included; a few
    /// busy hosts are host attacks or downloads).
    pub min_hosts: u32,
    /// Largest share of the prefix's packets one host may have (else it is a host attack).
    /// Default: 0.5 (a carpet spreads evenly; one host carrying most of it is its own story).
    pub max_host_share: f64,
    /// Attack-shaped residue packets/s that is a carpet from the first second (0 disables).
    /// Default: 200000 (a prefix-wide flood at 800 pps per address of a /24: carpets seen in
    /// the wild run at 10–50 kpps per destination).
    pub pps: f64,
    /// Attack-shaped residue megabits/s that is a carpet from the first second (0 disables).
    /// Default: 2000.
    pub mbps: f64,
    /// Whether each prefix learns its normal incoming residue: surges against it are carpets,
    /// and a busy prefix's level raises `pps` / `mbps` (see above). Default: true.
    pub baseline: bool,
    /// The prefix baseline's alarm level is at least this many packets/s: below it, traffic
    /// spread over a prefix (≥ `min_hosts` hosts, a few hundred packets/s each) is not worth a
    /// prefix-wide alarm however quiet the prefix normally is. Default: 20000 (a tenth of `pps`).
    pub baseline_min_pps: f64,
    /// ... and at least this many megabits/s. Default: 200 (a tenth of `mbps`).
    pub baseline_min_mbps: f64,
    /// Ceiling: residue at or above this many packets/s is a carpet whatever the baseline has
    /// learnt (a slow ramp or an unusually busy prefix cannot raise the limit without bound).
    /// Never below `pps`; 0 disables. Default: 2000000 (10 × `pps`).
    pub max_pps: f64,
    /// Ceiling in megabits/s, as `max_pps`. Never below `mbps`; 0 disables. Default: 20000.
    pub max_mbps: f64,
}

impl Default for CarpetConfig {
    fn default() -> Self {
        CarpetConfig {
            enabled: true,
            min_hosts: 16,
            max_host_share: 0.5,
            pps: 200_000.0,
            mbps: 2_000.0,
            baseline: true,
            baseline_min_pps: 20_000.0,
            baseline_min_mbps: 200.0,
            max_pps: 2_000_000.0,
            max_mbps: 20_000.0,
        }
    }
}

impl CarpetConfig {
    /// These settings as a full set of overrides, for validation.
    fn as_overrides(&self) -> CarpetThresholds {
        CarpetThresholds {
            min_hosts: Some(self.min_hosts),
            max_host_share: Some(self.max_host_share),
            pps: Some(self.pps),
            mbps: Some(self.mbps),
            baseline: Some(self.baseline),
            baseline_min_pps: Some(self.baseline_min_pps),
            baseline_min_mbps: Some(self.baseline_min_mbps),
            max_pps: Some(self.max_pps),
            max_mbps: Some(self.max_mbps),
        }
    }
}

/// The most engine shards (`shards`).
pub const MAX_SHARDS: u32 = 256;

/// `[detection]`: what counts as an attack: static limits per direction (`incoming`,
/// `outgoing`, per hostgroup), per-host baselines and carpet bombing of whole prefixes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Monitored networks (IPv4 and IPv6). Traffic to them is incoming, from them outgoing.
    /// Default: none (nothing is monitored).
    pub networks: Vec<IpNet>,
    /// IPv4 prefix length that groups hosts for prefix accounting and carpet bombing (16..=32).
    /// Default: 24 (the smallest prefix routed between networks: what a carpet is aimed at and
    /// what a prefix-wide rule can cover).
    pub prefix_length_v4: u8,
    /// IPv6 prefix length that groups hosts for prefix accounting and carpet bombing (32..=128).
    /// Default: 48 (a site's allocation, the smallest IPv6 prefix commonly routed).
    pub prefix_length_v6: u8,
    /// Limits for traffic to monitored hosts of the `default` group, inherited by hostgroups.
    /// Default: the built-in incoming limits named with each key.
    pub incoming: Thresholds,
    /// Limits for traffic from monitored hosts of the `default` group, inherited by hostgroups.
    /// Default: the built-in outgoing limits named with each key.
    pub outgoing: Thresholds,
    /// Hostgroups with their own limits, matched by longest prefix. Default: none.
    pub hostgroups: Vec<Hostgroup>,
    /// Samples (records) a rate needs behind it before it may alarm: at 1:16384 one sample stands
    /// for 16384 packets. A bucket with fewer is judged over the `evidence_window_s` window.
    /// Default: 5 (a rate from fewer samples is off by half or more).
    pub min_samples: u32,
    /// Buckets (1..=3) over which sparse samples are accumulated: the windowed average rate must
    /// cross the limit and the window must hold `min_samples`. Default: 3 (record attacks last
    /// 35–70 s: three seconds of evidence find a heavily sampled flood early in its life).
    pub evidence_window_s: u32,
    /// Dynamic baseline settings.
    pub baseline: BaselineConfig,
    /// Carpet-bombing settings.
    pub carpet: CarpetConfig,
    /// An attack ends after this many consecutive buckets below its end level. Default: 10
    /// (botnets pause and resume within seconds: one attack, not a flapping series).
    pub quiet_period_s: u32,
    /// Hysteresis: the end level is `end_ratio` × the limit that triggered, in (0, 1].
    /// Default: 0.5 (an attack hovering at its limit does not end and restart).
    pub end_ratio: f64,
    /// At most one `attack_updated` per attack per this many seconds, and only when the peak
    /// grew ≥ 10 %, the vectors changed or the sources changed ≥ 20 %. Default: 5 (news at
    /// most every few seconds: a webhook or a log is not flooded by a changing attack).
    pub update_interval_s: u32,
    /// A target whose running bucket crosses `watch_ratio` × its lowest limit by more than
    /// sampling noise gets detailed counters and a fingerprint at once (mid-bucket), so both
    /// exist when the attack starts; it is let go after `quiet_period_s` buckets not over it.
    /// In (0, 1]. Default: 0.3 (a flood ramping up to a limit within a second is watched before
    /// it gets there).
    pub watch_ratio: f64,
    /// Most host entries kept; traffic of further new hosts is accounted only in their prefix.
    /// Default: 2000000 (every address of a /11, ~250 bytes each).
    pub max_hosts: usize,
    /// Most targets watched (detailed counters + fingerprint) without an attack; targets under
    /// attack always get them; a watched host has one per direction (whether a direction is
    /// answered needs the other). Default: 16384 (~11 KiB each).
    pub max_watched: usize,
    /// A host idle this long is forgotten even if its baseline still matters (it is forgotten
    /// after 2 × `quiet_period_s` idle once its baseline is at the floors); likewise a prefix
    /// without hosts and its carpet residue baseline. Default: 3600 (an hour without traffic
    /// says little about the host's normal any more).
    pub host_idle_timeout_s: u32,
    /// Engine threads (1..=256), each holding the targets whose prefix (of
    /// `prefix_length_v4` or `_v6`) hashes to it: a prefix and its hosts stay together.
    /// The events are the same for any number; `max_hosts` and `max_watched` are split evenly
    /// between the shards. Default: the number of cores (1 runs a single engine thread).
    #[schemars(example = 2)]
    pub shards: Option<u32>,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            networks: Vec::new(),
            prefix_length_v4: 24,
            prefix_length_v6: 48,
            incoming: Thresholds::default(),
            outgoing: Thresholds::default(),
            hostgroups: Vec::new(),
            min_samples: 5,
            evidence_window_s: 3,
            baseline: BaselineConfig::default(),
            carpet: CarpetConfig::default(),
            quiet_period_s: 10,
            end_ratio: 0.5,
            update_interval_s: 5,
            watch_ratio: 0.3,
            max_hosts: 2_000_000,
            max_watched: 16_384,
            host_idle_timeout_s: 3600,
            shards: None,
        }
    }
}

/// The largest supported `evidence_window_s`: each host keeps this many buckets of totals.
pub const MAX_EVIDENCE_WINDOW_S: u32 = 3;

/// The section of the configuration file these settings come from.
const SECTION: &str = "detection";

/// A detection setting that cannot work: the key at fault and what is wrong with it. Reads
/// `key: problem`, the key as under `[detection]` (`hostgroups[1].networks: …`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {problem}", key_of(.path))]
pub struct ConfigError {
    path: String,
    problem: ConfigProblem,
}

impl ConfigError {
    /// `key` is the setting's path under `[detection]`.
    pub(crate) fn new(key: impl std::fmt::Display, problem: ConfigProblem) -> ConfigError {
        ConfigError {
            path: format!("{SECTION}.{key}"),
            problem,
        }
    }

    /// The key at fault as a path from the top of the configuration file, the form
    /// `check-config` looks keys up by: `detection.hostgroups[2].incoming.pps`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The key under `[detection]`: `hostgroups[2].incoming.pps`.
    pub fn key(&self) -> &str {
        key_of(&self.path)
    }

    pub fn problem(&self) -> &ConfigProblem {
        &self.problem
    }
}

fn key_of(path: &str) -> &str {
    &path[SECTION.len() + 1..]
}

/// What is wrong with a detection setting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigProblem {
    #[error("must be in {min}..={max}, got {value}")]
    OutOfRange { min: u32, max: u32, value: u32 },
    #[error("must be at least 1")]
    Zero,
    /// Carpet bombing needs a few hosts to be a carpet.
    #[error("must be at least 2, got {0}")]
    TooFewHosts(u32),
    #[error("must be in (0, 1], got {0}")]
    NotAShare(f64),
    /// An idle host must outlive the quiet period that ends its attacks, twice.
    #[error("must be at least 2 × quiet_period_s")]
    IdleTimeoutTooShort,
    #[error("must be >= 1, got {0}")]
    BelowOne(f64),
    #[error("must be a finite number >= 0, got {0}")]
    Negative(f64),
    /// A limit: `0` disables it, below is an error.
    #[error("must be a finite number >= 0 (0 disables), got {0}")]
    NegativeLimit(f64),
    #[error("required")]
    NameRequired,
    #[error("`default` is reserved")]
    ReservedName,
    #[error("duplicate hostgroup `{0}`")]
    DuplicateName(String),
    #[error("must not be empty (hostgroup `{0}`)")]
    NoNetworks(String),
    /// Longest-prefix matching would be ambiguous.
    #[error("{net} of hostgroup `{group}` is also in hostgroup `{other}`")]
    NetworkInTwoGroups {
        net: IpNet,
        group: String,
        other: String,
    },
    #[error("{net} of hostgroup `{group}` is not inside any monitored network")]
    NetworkNotMonitored { net: IpNet, group: String },
}

fn unit_interval(name: &str, v: f64) -> Result<(), ConfigError> {
    if v > 0.0 && v <= 1.0 {
        Ok(())
    } else {
        Err(ConfigError::new(name, ConfigProblem::NotAShare(v)))
    }
}

fn non_negative(name: &str, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(ConfigError::new(name, ConfigProblem::Negative(v)))
    }
}

fn at_least_one(name: &str, v: u64) -> Result<(), ConfigError> {
    if v == 0 {
        Err(ConfigError::new(name, ConfigProblem::Zero))
    } else {
        Ok(())
    }
}

fn in_range(name: &str, v: u32, (min, max): (u32, u32)) -> Result<(), ConfigError> {
    if (min..=max).contains(&v) {
        Ok(())
    } else {
        Err(ConfigError::new(
            name,
            ConfigProblem::OutOfRange { min, max, value: v },
        ))
    }
}

impl DetectConfig {
    /// Checks what serde cannot: impossible values, hostgroups outside the monitored networks,
    /// duplicate names. Errors name the offending field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        in_range("prefix_length_v4", self.prefix_length_v4.into(), (16, 32))?;
        in_range("prefix_length_v6", self.prefix_length_v6.into(), (32, 128))?;
        at_least_one("min_samples", self.min_samples.into())?;
        in_range(
            "evidence_window_s",
            self.evidence_window_s,
            (1, MAX_EVIDENCE_WINDOW_S),
        )?;
        at_least_one("quiet_period_s", self.quiet_period_s.into())?;
        at_least_one("update_interval_s", self.update_interval_s.into())?;
        unit_interval("end_ratio", self.end_ratio)?;
        unit_interval("watch_ratio", self.watch_ratio)?;
        at_least_one("max_hosts", self.max_hosts as u64)?;
        at_least_one("max_watched", self.max_watched as u64)?;
        if let Some(n) = self.shards {
            in_range("shards", n, (1, MAX_SHARDS))?;
        }
        if self.host_idle_timeout_s < 2 * self.quiet_period_s {
            return Err(ConfigError::new(
                "host_idle_timeout_s",
                ConfigProblem::IdleTimeoutTooShort,
            ));
        }
        let b = &self.baseline;
        if !(b.time_constant_s.is_finite() && b.time_constant_s >= 1.0) {
            return Err(ConfigError::new(
                "baseline.time_constant_s",
                ConfigProblem::BelowOne(b.time_constant_s),
            ));
        }
        non_negative("baseline.deviations", b.deviations)?;
        if !(b.min_ratio.is_finite() && b.min_ratio >= 1.0) {
            return Err(ConfigError::new(
                "baseline.min_ratio",
                ConfigProblem::BelowOne(b.min_ratio),
            ));
        }
        non_negative("baseline.min_pps", b.min_pps)?;
        non_negative("baseline.min_mbps", b.min_mbps)?;
        validate_carpet("carpet", &self.carpet.as_overrides())?;
        self.incoming.validate("incoming")?;
        self.outgoing.validate("outgoing")?;

        let mut names = std::collections::BTreeSet::new();
        // The same network in two hostgroups would make longest-prefix matching ambiguous.
        let mut group_nets = std::collections::BTreeMap::new();
        for (i, g) in self.hostgroups.iter().enumerate() {
            let what = format!("hostgroups[{i}]");
            let name = format!("{what}.name");
            let networks = format!("{what}.networks");
            if g.name.is_empty() {
                return Err(ConfigError::new(name, ConfigProblem::NameRequired));
            }
            if g.name == "default" {
                return Err(ConfigError::new(name, ConfigProblem::ReservedName));
            }
            if !names.insert(g.name.as_str()) {
                return Err(ConfigError::new(
                    name,
                    ConfigProblem::DuplicateName(g.name.clone()),
                ));
            }
            if g.networks.is_empty() {
                return Err(ConfigError::new(
                    networks,
                    ConfigProblem::NoNetworks(g.name.clone()),
                ));
            }
            for net in &g.networks {
                if let Some(other) = group_nets.insert(net.trunc(), g.name.as_str()) {
                    if other != g.name {
                        return Err(ConfigError::new(
                            networks,
                            ConfigProblem::NetworkInTwoGroups {
                                net: *net,
                                group: g.name.clone(),
                                other: other.to_string(),
                            },
                        ));
                    }
                }
                if !self.networks.iter().any(|m| m.contains(net)) {
                    return Err(ConfigError::new(
                        networks,
                        ConfigProblem::NetworkNotMonitored {
                            net: *net,
                            group: g.name.clone(),
                        },
                    ));
                }
            }
            g.incoming.validate(&format!("{what}.incoming"))?;
            g.outgoing.validate(&format!("{what}.outgoing"))?;
            if let Some(c) = &g.carpet {
                validate_carpet(&format!("{what}.carpet"), c)?;
            }
        }
        Ok(())
    }
}

fn validate_carpet(what: &str, c: &CarpetThresholds) -> Result<(), ConfigError> {
    if let Some(h) = c.min_hosts {
        if h < 2 {
            return Err(ConfigError::new(
                format!("{what}.min_hosts"),
                ConfigProblem::TooFewHosts(h),
            ));
        }
    }
    if let Some(s) = c.max_host_share {
        unit_interval(&format!("{what}.max_host_share"), s)?;
    }
    for (name, v) in [
        ("pps", c.pps),
        ("mbps", c.mbps),
        ("baseline_min_pps", c.baseline_min_pps),
        ("baseline_min_mbps", c.baseline_min_mbps),
        ("max_pps", c.max_pps),
        ("max_mbps", c.max_mbps),
    ] {
        if let Some(v) = v {
            non_negative(&format!("{what}.{name}"), v)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::METRICS;

    /// A trigger's metric is written as the config key of its limit.
    #[test]
    fn metrics_are_written_as_their_config_keys() {
        let all = Thresholds {
            pps: Some(1.0),
            mbps: Some(1.0),
            flows_per_s: Some(1.0),
            tcp_pps: Some(1.0),
            tcp_mbps: Some(1.0),
            udp_pps: Some(1.0),
            udp_mbps: Some(1.0),
            icmp_pps: Some(1.0),
            icmp_mbps: Some(1.0),
            gre_pps: Some(1.0),
            gre_mbps: Some(1.0),
            syn_pps: Some(1.0),
            ack_pps: Some(1.0),
            rst_pps: Some(1.0),
            fragment_pps: Some(1.0),
            fragment_mbps: Some(1.0),
            amplification_pps: Some(1.0),
            amplification_mbps: Some(1.0),
        };
        let keys = serde_json::to_value(&all).unwrap();
        let keys = keys.as_object().unwrap();
        assert_eq!(keys.len(), METRICS);
        for m in Metric::ALL {
            assert_eq!(serde_json::to_value(m).unwrap(), m.name());
            assert!(keys.contains_key(m.name()), "{m}");
            assert_eq!(all.get(m), Some(1.0));
        }
    }

    /// The messages operators (and `check-config`) have always read, and the key paths
    /// `check-config` finds their lines by.
    #[test]
    fn errors_read_as_before_and_carry_their_key_path() {
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        let group = |name: &str, nets: &[&str]| Hostgroup {
            name: name.into(),
            networks: nets.iter().map(|n| net(n)).collect(),
            ..Hostgroup::default()
        };
        let monitored = vec![net("10.0.0.0/8")];
        let cases: Vec<(DetectConfig, &str, &str)> = vec![
            (
                DetectConfig {
                    prefix_length_v4: 33,
                    ..DetectConfig::default()
                },
                "detection.prefix_length_v4",
                "prefix_length_v4: must be in 16..=32, got 33",
            ),
            (
                DetectConfig {
                    prefix_length_v6: 8,
                    ..DetectConfig::default()
                },
                "detection.prefix_length_v6",
                "prefix_length_v6: must be in 32..=128, got 8",
            ),
            (
                DetectConfig {
                    evidence_window_s: 4,
                    ..DetectConfig::default()
                },
                "detection.evidence_window_s",
                "evidence_window_s: must be in 1..=3, got 4",
            ),
            (
                DetectConfig {
                    max_watched: 0,
                    ..DetectConfig::default()
                },
                "detection.max_watched",
                "max_watched: must be at least 1",
            ),
            (
                DetectConfig {
                    end_ratio: 1.5,
                    ..DetectConfig::default()
                },
                "detection.end_ratio",
                "end_ratio: must be in (0, 1], got 1.5",
            ),
            (
                DetectConfig {
                    quiet_period_s: 2000,
                    ..DetectConfig::default()
                },
                "detection.host_idle_timeout_s",
                "host_idle_timeout_s: must be at least 2 × quiet_period_s",
            ),
            (
                DetectConfig {
                    baseline: BaselineConfig {
                        min_ratio: 0.5,
                        ..BaselineConfig::default()
                    },
                    ..DetectConfig::default()
                },
                "detection.baseline.min_ratio",
                "baseline.min_ratio: must be >= 1, got 0.5",
            ),
            (
                DetectConfig {
                    baseline: BaselineConfig {
                        min_pps: -1.0,
                        ..BaselineConfig::default()
                    },
                    ..DetectConfig::default()
                },
                "detection.baseline.min_pps",
                "baseline.min_pps: must be a finite number >= 0, got -1",
            ),
            (
                DetectConfig {
                    carpet: CarpetConfig {
                        min_hosts: 1,
                        ..CarpetConfig::default()
                    },
                    ..DetectConfig::default()
                },
                "detection.carpet.min_hosts",
                "carpet.min_hosts: must be at least 2, got 1",
            ),
            (
                DetectConfig {
                    outgoing: Thresholds {
                        syn_pps: Some(f64::NAN),
                        ..Thresholds::default()
                    },
                    ..DetectConfig::default()
                },
                "detection.outgoing.syn_pps",
                "outgoing.syn_pps: must be a finite number >= 0 (0 disables), got NaN",
            ),
            (
                DetectConfig {
                    networks: monitored.clone(),
                    hostgroups: vec![group("", &["10.0.0.0/24"])],
                    ..DetectConfig::default()
                },
                "detection.hostgroups[0].name",
                "hostgroups[0].name: required",
            ),
            (
                DetectConfig {
                    networks: monitored.clone(),
                    hostgroups: vec![group("a", &["10.0.0.0/24"]), group("a", &["10.0.1.0/24"])],
                    ..DetectConfig::default()
                },
                "detection.hostgroups[1].name",
                "hostgroups[1].name: duplicate hostgroup `a`",
            ),
            (
                DetectConfig {
                    networks: monitored.clone(),
                    hostgroups: vec![group("a", &[])],
                    ..DetectConfig::default()
                },
                "detection.hostgroups[0].networks",
                "hostgroups[0].networks: must not be empty (hostgroup `a`)",
            ),
            (
                DetectConfig {
                    networks: monitored.clone(),
                    hostgroups: vec![group("a", &["11.0.0.0/24"])],
                    ..DetectConfig::default()
                },
                "detection.hostgroups[0].networks",
                "hostgroups[0].networks: 11.0.0.0/24 of hostgroup `a` is not inside any monitored network",
            ),
            (
                DetectConfig {
                    networks: monitored.clone(),
                    hostgroups: vec![
                        group("a", &["10.0.0.0/24"]),
                        Hostgroup {
                            carpet: Some(CarpetThresholds {
                                max_host_share: Some(0.0),
                                ..CarpetThresholds::default()
                            }),
                            ..group("b", &["10.0.1.0/24"])
                        },
                    ],
                    ..DetectConfig::default()
                },
                "detection.hostgroups[1].carpet.max_host_share",
                "hostgroups[1].carpet.max_host_share: must be in (0, 1], got 0",
            ),
        ];
        for (config, path, text) in cases {
            let e = config.validate().unwrap_err();
            assert_eq!(e.to_string(), text);
            assert_eq!(e.path(), path, "{text}");
        }
    }
}
