//! `[mitigation]`: which rules attacks get, and the guard rails around them.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::rule::{Community, FlowAction};

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MitigationConfig {
    /// Record what would be announced (in the event record, the log, webhooks) and announce
    /// nothing. Default false.
    pub dry_run: bool,
    /// Prefixes never to mitigate: a rule whose target overlaps one is not announced (a carpet
    /// prefix holding a protected host included). Default: none.
    pub never: Vec<IpNet>,
    /// At most this many rules held at once; further ones are refused and reported. Default 100.
    pub max_active: usize,
    /// A rule stays at least this long, even if its attack ends sooner. Default 60.
    pub min_seconds: u64,
    /// A rule is withdrawn after this long even if its attack goes on (0: no limit). Default 0.
    pub max_seconds: u64,
    /// A rule stays this long after its attack ends: attacks pause and come back. Default 120.
    pub hold_down_seconds: u64,
    /// Flap damping: each earlier announcement for the same target within this window doubles
    /// the hold-down, up to `flap_max_hold_seconds`. Default 3600.
    pub flap_window_seconds: u64,
    /// The longest hold-down flap damping may reach, seconds. Default 3600.
    pub flap_max_hold_seconds: u64,
    /// After a restart, a persisted rule whose attack was still active is announced again and
    /// kept this long waiting for the attack to be detected again; withdrawn if it is not.
    /// Default 30.
    pub restart_confirm_seconds: u64,
    /// On SIGTERM, leave rules in place for the next start to take over (BGP: needs graceful
    /// restart on the peer to keep routes across the restart). Default false: withdraw all.
    pub keep_on_shutdown: bool,
    /// Mitigate attacks from the operator's own customers (outgoing) too. Default false.
    pub outgoing: bool,
    /// Blackhole settings.
    pub blackhole: BlackholeConfig,
    /// FlowSpec (and nftables) filter settings.
    pub flowspec: FlowSpecConfig,
    /// Per-hostgroup overrides, by the hostgroup's name.
    pub hostgroups: Vec<HostgroupMitigation>,
}

impl Default for MitigationConfig {
    fn default() -> Self {
        MitigationConfig {
            dry_run: false,
            never: Vec::new(),
            max_active: 100,
            min_seconds: 60,
            max_seconds: 0,
            hold_down_seconds: 120,
            flap_window_seconds: 3600,
            flap_max_hold_seconds: 3600,
            restart_confirm_seconds: 30,
            keep_on_shutdown: false,
            outgoing: false,
            blackhole: BlackholeConfig::default(),
            flowspec: FlowSpecConfig::default(),
            hostgroups: Vec::new(),
        }
    }
}

/// `[mitigation.blackhole]`: remote-triggered blackhole routes (RFC 7999).
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BlackholeConfig {
    /// Default false: a blackhole completes the attack for the target, so it is opt-in.
    pub enabled: bool,
    /// Discard next hop of IPv4 blackhole routes (routers map it to a null route). Default
    /// 192.0.2.1 (TEST-NET-1).
    pub next_hop_v4: IpAddr,
    /// Discard next hop of IPv6 blackhole routes. Default 100::1 (RFC 6666 discard prefix).
    pub next_hop_v6: IpAddr,
    /// Communities on every blackhole route. Default ["65535:666"] (BLACKHOLE).
    #[schemars(with = "Vec<String>")]
    pub communities: Vec<Community>,
    /// Blackhole the whole prefix of a carpet-bombing attack. Default false.
    pub carpet: bool,
}

impl Default for BlackholeConfig {
    fn default() -> Self {
        BlackholeConfig {
            enabled: false,
            next_hop_v4: IpAddr::from([192, 0, 2, 1]),
            next_hop_v6: "100::1".parse().expect("valid IPv6 literal"),
            communities: vec![Community::BLACKHOLE],
            carpet: false,
        }
    }
}

/// `[mitigation.flowspec]`: traffic filters derived from attack fingerprints (FlowSpec, and
/// nftables when enabled).
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FlowSpecConfig {
    /// Default false.
    pub enabled: bool,
    /// `discard` (default), `rate-limit` or `redirect`.
    pub action: FlowActionName,
    /// For `rate-limit`: bytes per second let through. Default 125000 (1 Mbit/s).
    pub rate_bytes_per_second: f32,
    /// For `redirect`: route target `ASN:VALUE` of the scrubbing VRF.
    #[schemars(example = &"65000:666")]
    #[schemars(with = "Option<String>")]
    pub redirect: Option<Community>,
    /// Communities on every FlowSpec route. Default none.
    #[schemars(with = "Vec<String>")]
    pub communities: Vec<Community>,
    /// Filter carpet-bombing attacks at their prefix. Default true.
    pub carpet: bool,
}

impl Default for FlowSpecConfig {
    fn default() -> Self {
        FlowSpecConfig {
            enabled: false,
            action: FlowActionName::Discard,
            rate_bytes_per_second: 125_000.0,
            redirect: None,
            communities: Vec::new(),
            carpet: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FlowActionName {
    Discard,
    RateLimit,
    Redirect,
}

/// `[[mitigation.hostgroups]]`: what attacks on one hostgroup get; unset fields follow the
/// global settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HostgroupMitigation {
    /// The name of a `[[detection.hostgroups]]` entry (or `default`). Required.
    #[schemars(example = &"customers")]
    pub name: String,
    /// Blackhole attacks on this group; unset: `[mitigation.blackhole] enabled`.
    pub blackhole: Option<bool>,
    /// Filter attacks on this group; unset: `[mitigation.flowspec] enabled`.
    pub flowspec: Option<bool>,
    /// Announce nothing for this group, only record; unset: `[mitigation] dry_run`.
    pub dry_run: Option<bool>,
}

/// A `[mitigation]` setting that cannot work: a sentence naming its key, which [`path`] gives
/// as the configuration file writes it (`mitigation.max_seconds`).
///
/// [`path`]: ConfigError::path
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("mitigation.blackhole.next_hop_v4 = {0} is not an IPv4 address")]
    NextHopV4NotIpv4(IpAddr),
    #[error("mitigation.blackhole.next_hop_v6 = {0} is not an IPv6 address")]
    NextHopV6NotIpv6(IpAddr),
    #[error(
        "mitigation.blackhole.next_hop_v4 is a loopback address, which routers reject as a next hop; use a discard address such as 192.0.2.1"
    )]
    NextHopV4Loopback,
    #[error(
        "mitigation.flowspec.action = \"redirect\" needs `redirect = \"ASN:VALUE\"`, the route target of the scrubbing VRF"
    )]
    RedirectWithoutTarget,
    #[error("mitigation.flowspec.rate_bytes_per_second must be a number >= 0")]
    InvalidRate,
    #[error("mitigation.max_seconds = {max} is less than min_seconds = {min}")]
    MaxBelowMin { max: u64, min: u64 },
    /// The index of the `[[mitigation.hostgroups]]` entry.
    #[error("mitigation.hostgroups[{0}] has no name")]
    UnnamedHostgroup(usize),
}

impl ConfigError {
    /// The key at fault, as a path from the top of the configuration file.
    pub fn path(&self) -> String {
        match self {
            ConfigError::NextHopV4NotIpv4(_) | ConfigError::NextHopV4Loopback => {
                "mitigation.blackhole.next_hop_v4".into()
            }
            ConfigError::NextHopV6NotIpv6(_) => "mitigation.blackhole.next_hop_v6".into(),
            ConfigError::RedirectWithoutTarget => "mitigation.flowspec.action".into(),
            ConfigError::InvalidRate => "mitigation.flowspec.rate_bytes_per_second".into(),
            ConfigError::MaxBelowMin { .. } => "mitigation.max_seconds".into(),
            ConfigError::UnnamedHostgroup(i) => format!("mitigation.hostgroups[{i}].name"),
        }
    }
}

impl MitigationConfig {
    /// Settings that cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let b = &self.blackhole;
        if !b.next_hop_v4.is_ipv4() {
            return Err(ConfigError::NextHopV4NotIpv4(b.next_hop_v4));
        }
        if !b.next_hop_v6.is_ipv6() {
            return Err(ConfigError::NextHopV6NotIpv6(b.next_hop_v6));
        }
        if b.next_hop_v4.is_loopback() {
            return Err(ConfigError::NextHopV4Loopback);
        }
        let f = &self.flowspec;
        if f.action == FlowActionName::Redirect && f.redirect.is_none() {
            return Err(ConfigError::RedirectWithoutTarget);
        }
        if !(f.rate_bytes_per_second.is_finite() && f.rate_bytes_per_second >= 0.0) {
            return Err(ConfigError::InvalidRate);
        }
        if self.max_seconds != 0 && self.max_seconds < self.min_seconds {
            return Err(ConfigError::MaxBelowMin {
                max: self.max_seconds,
                min: self.min_seconds,
            });
        }
        for (i, group) in self.hostgroups.iter().enumerate() {
            if group.name.is_empty() {
                return Err(ConfigError::UnnamedHostgroup(i));
            }
        }
        Ok(())
    }

    pub fn flow_action(&self) -> FlowAction {
        match self.flowspec.action {
            FlowActionName::Discard => FlowAction::Discard,
            FlowActionName::RateLimit => FlowAction::RateLimit {
                bytes_per_second: self.flowspec.rate_bytes_per_second,
            },
            FlowActionName::Redirect => {
                let target = self.flowspec.redirect.unwrap_or(Community(0));
                FlowAction::Redirect {
                    asn: target.asn(),
                    value: u32::from(target.value()),
                }
            }
        }
    }

    fn group(&self, name: &str) -> Option<&HostgroupMitigation> {
        self.hostgroups.iter().find(|g| g.name == name)
    }

    pub fn blackhole_for(&self, hostgroup: &str) -> bool {
        self.group(hostgroup)
            .and_then(|g| g.blackhole)
            .unwrap_or(self.blackhole.enabled)
    }

    pub fn flowspec_for(&self, hostgroup: &str) -> bool {
        self.group(hostgroup)
            .and_then(|g| g.flowspec)
            .unwrap_or(self.flowspec.enabled)
    }

    pub fn dry_run_for(&self, hostgroup: &str) -> bool {
        self.group(hostgroup)
            .and_then(|g| g.dry_run)
            .unwrap_or(self.dry_run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each message names its key first, as `path()` gives it; the texts are what operators
    /// and `check-config` have always read.
    #[test]
    fn errors_name_their_key() {
        type Edit = fn(&mut MitigationConfig);
        let cases: Vec<(Edit, &str)> = vec![
            (
                |c| c.blackhole.next_hop_v4 = "2001:db8::1".parse().unwrap(),
                "mitigation.blackhole.next_hop_v4 = 2001:db8::1 is not an IPv4 address",
            ),
            (
                |c| c.blackhole.next_hop_v6 = "192.0.2.1".parse().unwrap(),
                "mitigation.blackhole.next_hop_v6 = 192.0.2.1 is not an IPv6 address",
            ),
            (
                |c| c.blackhole.next_hop_v4 = "127.0.0.1".parse().unwrap(),
                "mitigation.blackhole.next_hop_v4 is a loopback address, which routers reject as a next hop; use a discard address such as 192.0.2.1",
            ),
            (
                |c| c.flowspec.action = FlowActionName::Redirect,
                "mitigation.flowspec.action = \"redirect\" needs `redirect = \"ASN:VALUE\"`, the route target of the scrubbing VRF",
            ),
            (
                |c| c.flowspec.rate_bytes_per_second = -1.0,
                "mitigation.flowspec.rate_bytes_per_second must be a number >= 0",
            ),
            (
                |c| c.max_seconds = 10,
                "mitigation.max_seconds = 10 is less than min_seconds = 60",
            ),
            (
                |c| c.hostgroups = vec![HostgroupMitigation::default()],
                "mitigation.hostgroups[0] has no name",
            ),
        ];
        for (change, text) in cases {
            let mut config = MitigationConfig::default();
            change(&mut config);
            let e = config.validate().unwrap_err();
            assert_eq!(e.to_string(), text);
            let path = e.path();
            let named = path.strip_suffix(".name").unwrap_or(&path);
            assert!(text.starts_with(named), "{path}: {text}");
        }
        assert_eq!(MitigationConfig::default().validate(), Ok(()));
    }
}
