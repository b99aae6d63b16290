//! The built-in BGP speaker as a mitigator: blackhole routes and FlowSpec filters announced to
//! the configured peers (`floodwall-bgp`).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{bail, Result};
use floodwall_bgp::{Family, PeerConfig, PeerStatus, Speaker, SpeakerConfig};
use floodwall_mitigate::{Mitigation, Rule};
use serde::{Deserialize, Deserializer, Serialize};

use super::{Mitigator, Outcome};

/// `[bgp]`: the built-in speaker. It only connects (never listens) and only announces.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BgpConfig {
    /// Our AS number (4-octet ASNs work). Default: none, must be set.
    #[schemars(example = 64512)]
    pub local_as: u32,
    /// BGP identifier. Default: none, must be set.
    #[schemars(example = &"192.0.2.254")]
    pub router_id: Option<Ipv4Addr>,
    /// Hold time offered to peers, seconds; the session uses the smaller of ours and the
    /// peer's, with keepalives every third. 0 turns both off; 1 and 2 are invalid. Default 90.
    pub hold_time: u16,
    /// Advertise Graceful Restart with this restart time (seconds, at most 4095), so that
    /// peers acting as helpers keep our routes while Floodwall restarts (shutdown with
    /// `keep`). Default: none, not advertised.
    #[schemars(example = 120)]
    pub graceful_restart_seconds: Option<u16>,
    /// Longest wait between reconnection attempts, seconds (the first wait is 1 s, doubling
    /// per failure). Default 60.
    pub connect_retry_max_seconds: u64,
    /// `[[bgp.peers]]`. Default: none (a `[bgp]` section without peers is refused).
    pub peers: Vec<BgpPeerConfig>,
}

impl Default for BgpConfig {
    fn default() -> Self {
        BgpConfig {
            local_as: 0,
            router_id: None,
            hold_time: 90,
            graceful_restart_seconds: None,
            connect_retry_max_seconds: 60,
            peers: Vec::new(),
        }
    }
}

/// `[[bgp.peers]]`: one neighbour, a router or route server configured for us passively or
/// actively.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BgpPeerConfig {
    /// For logs and status. Default: the address.
    #[schemars(example = &"edge1")]
    pub name: String,
    /// Where to connect. Default 127.0.0.1:179.
    #[schemars(example = &"198.51.100.1:179")]
    pub address: SocketAddr,
    /// The peer's AS; equal to `local_as` makes an iBGP session. Default: none, must be set.
    #[schemars(example = 64511)]
    pub remote_as: u32,
    /// Source address to connect from (the one the peer expects). Default: chosen by the OS.
    #[schemars(example = &"198.51.100.2")]
    pub local_address: Option<IpAddr>,
    /// Families to offer: `ipv4-unicast` and `ipv6-unicast` carry blackhole routes,
    /// `ipv4-flowspec` and `ipv6-flowspec` filters. Default: all four.
    #[serde(deserialize_with = "families", serialize_with = "family_names")]
    #[schemars(with = "Vec<String>")]
    pub families: Vec<Family>,
}

impl Default for BgpPeerConfig {
    fn default() -> Self {
        BgpPeerConfig {
            name: String::new(),
            address: SocketAddr::from(([127, 0, 0, 1], 179)),
            remote_as: 0,
            local_address: None,
            families: Family::ALL.to_vec(),
        }
    }
}

fn families<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Family>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    names
        .iter()
        .map(|n| n.parse().map_err(serde::de::Error::custom))
        .collect()
}

fn family_names<S: serde::Serializer>(families: &[Family], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(families.iter().map(|f| f.to_string()))
}

impl BgpConfig {
    /// Refuses what cannot work, naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.local_as == 0 {
            bail!("bgp.local_as must be set");
        }
        if self.router_id.is_none() {
            bail!("bgp.router_id must be set (an IPv4 address, e.g. the loopback of this host)");
        }
        if matches!(self.hold_time, 1 | 2) {
            bail!("bgp.hold_time must be 0 or at least 3 seconds (RFC 4271)");
        }
        if self.graceful_restart_seconds.is_some_and(|s| s > 4095) {
            bail!("bgp.graceful_restart_seconds must be at most 4095");
        }
        if self.connect_retry_max_seconds == 0 {
            bail!("bgp.connect_retry_max_seconds must be at least 1");
        }
        if self.peers.is_empty() {
            bail!("[bgp] needs at least one [[bgp.peers]]");
        }
        let mut names = std::collections::HashSet::new();
        // The index lets `check-config` find the entry in the file.
        for (i, peer) in self.peers.iter().enumerate() {
            let name = peer.display_name();
            if peer.remote_as == 0 {
                bail!("bgp.peers[{i}] ({name}): remote_as must be set");
            }
            if peer.families.is_empty() {
                bail!("bgp.peers[{i}] ({name}): families is empty");
            }
            if !names.insert(name.clone()) {
                bail!("bgp.peers[{i}] ({name}) is configured twice");
            }
        }
        Ok(())
    }

    pub fn speaker_config(&self) -> SpeakerConfig {
        let mut config = SpeakerConfig::new(
            self.local_as,
            self.router_id.unwrap_or(Ipv4Addr::UNSPECIFIED),
        );
        config.hold_time = Duration::from_secs(u64::from(self.hold_time));
        config.graceful_restart = self.graceful_restart_seconds;
        config.connect_retry_max = Duration::from_secs(self.connect_retry_max_seconds.max(1));
        config
    }

    pub fn peer_configs(&self) -> Vec<PeerConfig> {
        self.peers
            .iter()
            .map(|p| PeerConfig {
                name: p.display_name(),
                address: p.address,
                remote_as: p.remote_as,
                local_address: p.local_address,
                families: p.families.clone(),
            })
            .collect()
    }
}

impl BgpPeerConfig {
    fn display_name(&self) -> String {
        if self.name.is_empty() {
            self.address.to_string()
        } else {
            self.name.clone()
        }
    }
}

/// Announces mitigations' rules through the built-in speaker. Several mitigations may hold
/// the same route (same NLRI): it stays announced until the last of them is withdrawn.
pub struct BgpMitigator {
    speaker: Option<Speaker>,
    /// Families some peer is configured for.
    families: Vec<Family>,
    /// Mitigation id → its rule, for the mitigations announced through us.
    held: BTreeMap<String, Rule>,
    /// Held ids not yet sent: no peer of their family was established when they came.
    queued: BTreeMap<String, Family>,
}

impl BgpMitigator {
    /// Validates the configuration and starts the sessions (connecting in the background).
    pub fn start(config: &BgpConfig) -> Result<BgpMitigator> {
        config.validate()?;
        let mut families: Vec<Family> = config
            .peers
            .iter()
            .flat_map(|p| p.families.iter().copied())
            .collect();
        families.sort();
        families.dedup();
        Ok(BgpMitigator {
            speaker: Some(Speaker::start(
                config.speaker_config(),
                config.peer_configs(),
            )),
            families,
            held: BTreeMap::new(),
            queued: BTreeMap::new(),
        })
    }

    /// The sessions, for status output.
    pub fn status(&self) -> Vec<PeerStatus> {
        self.speaker
            .as_ref()
            .map(Speaker::status)
            .unwrap_or_default()
    }

    /// The established peers that carry `family`, as `name (address)`.
    fn carriers(&self, family: Family) -> Vec<String> {
        self.status()
            .iter()
            .filter(|p| {
                p.state == floodwall_bgp::SessionState::Established && p.families.contains(&family)
            })
            .map(|p| format!("{} ({})", p.name, p.address))
            .collect()
    }

    fn speaker(&self) -> Result<&Speaker> {
        match &self.speaker {
            Some(speaker) => Ok(speaker),
            None => bail!("the BGP speaker is shut down"),
        }
    }
}

impl Mitigator for BgpMitigator {
    fn health(&self) -> Vec<super::Channel> {
        self.status()
            .iter()
            .map(|p| super::Channel {
                name: format!("bgp peer {} ({})", p.name, p.address),
                state: if p.state == floodwall_bgp::SessionState::Established {
                    super::ChannelState::Established
                } else {
                    match &p.last_error {
                        Some(e) => super::ChannelState::Down(e.to_string()),
                        None => super::ChannelState::Connecting,
                    }
                },
            })
            .collect()
    }

    fn name(&self) -> &str {
        "bgp"
    }

    fn accepts(&self, rule: &Rule) -> bool {
        self.families.contains(&floodwall_bgp::family_of(rule))
    }

    /// The speaker sends a route to every established peer of its family at once, and to the
    /// others when their sessions come up: sent if one is up now, else queued.
    fn announce(&mut self, mitigation: &Mitigation) -> Result<Outcome> {
        // The actions never hand over a dry run; should one come, it goes nowhere.
        if mitigation.dry_run {
            bail!("{} is a dry run: recorded, never announced", mitigation.id);
        }
        self.speaker()?.announce(&mitigation.rule)?;
        self.held
            .insert(mitigation.id.clone(), mitigation.rule.clone());
        let family = floodwall_bgp::family_of(&mitigation.rule);
        let carriers = self.carriers(family);
        if carriers.is_empty() {
            self.queued.insert(mitigation.id.clone(), family);
            return Ok(Outcome::Queued(format!(
                "no BGP session carrying {family} is established: sent when one comes up"
            )));
        }
        self.queued.remove(&mitigation.id);
        Ok(Outcome::Sent(format!("to {}", carriers.join(", "))))
    }

    fn delivered(&mut self) -> Vec<(String, String)> {
        if self.queued.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (id, family) in std::mem::take(&mut self.queued) {
            let carriers = self.carriers(family);
            if carriers.is_empty() {
                self.queued.insert(id, family);
            } else {
                out.push((id, format!("to {}", carriers.join(", "))));
            }
        }
        out
    }

    fn withdraw(&mut self, mitigation: &Mitigation) -> Result<()> {
        self.queued.remove(&mitigation.id);
        let Some(rule) = self.held.remove(&mitigation.id) else {
            return Ok(());
        };
        let speaker = self.speaker()?;
        // Another mitigation holding the same route keeps it, with its own attributes.
        match self
            .held
            .values()
            .find(|other| floodwall_bgp::same_route(other, &rule))
        {
            Some(other) => speaker.announce(other)?,
            None => speaker.withdraw(&rule)?,
        }
        Ok(())
    }

    fn shutdown(&mut self, keep: bool) -> Result<()> {
        if let Some(speaker) = self.speaker.take() {
            speaker.shutdown(keep);
        }
        self.held.clear();
        self.queued.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        bgp: BgpConfig,
    }

    fn parse(text: &str) -> Result<BgpConfig, toml::de::Error> {
        toml::from_str::<File>(text).map(|f| f.bgp)
    }

    #[test]
    fn a_minimal_section_gets_the_documented_defaults() {
        let config = parse(
            "[bgp]\nlocal_as = 65001\nrouter_id = \"192.0.2.9\"\n\
             [[bgp.peers]]\nremote_as = 65000\n",
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.hold_time, 90);
        assert_eq!(config.graceful_restart_seconds, None);
        assert_eq!(config.connect_retry_max_seconds, 60);
        let peer = &config.peers[0];
        assert_eq!(peer.address, "127.0.0.1:179".parse().unwrap());
        assert_eq!(peer.families, Family::ALL);
        assert_eq!(config.peer_configs()[0].name, "127.0.0.1:179");
        let speaker = config.speaker_config();
        assert_eq!(speaker.hold_time, Duration::from_secs(90));
        assert_eq!(speaker.connect_retry_min, Duration::from_secs(1));
    }

    #[test]
    fn every_field_parses_and_mistakes_are_named() {
        let config = parse(
            "[bgp]\nlocal_as = 4200000001\nrouter_id = \"192.0.2.9\"\nhold_time = 30\n\
             graceful_restart_seconds = 120\nconnect_retry_max_seconds = 10\n\
             [[bgp.peers]]\nname = \"edge1\"\naddress = \"[2001:db8::1]:179\"\nremote_as = 65000\n\
             local_address = \"2001:db8::9\"\nfamilies = [\"ipv6-unicast\", \"ipv6-flowspec\"]\n",
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(
            config.peers[0].families,
            [Family::Ipv6Unicast, Family::Ipv6FlowSpec]
        );
        assert_eq!(config.speaker_config().graceful_restart, Some(120));

        let unknown = parse("[bgp]\nlocal_as = 1\nrouter = \"x\"\n").unwrap_err();
        assert!(
            unknown.to_string().contains("unknown field `router`"),
            "{unknown}"
        );
        let family = parse("[bgp]\n[[bgp.peers]]\nfamilies = [\"ipv4-multicast\"]\n").unwrap_err();
        assert!(family.to_string().contains("ipv4-multicast"), "{family}");

        let mut bad = config.clone();
        bad.hold_time = 2;
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("hold_time"));
        let mut bad = config.clone();
        bad.peers.push(bad.peers[0].clone());
        assert!(bad.validate().unwrap_err().to_string().contains("twice"));
        let mut bad = config;
        bad.router_id = None;
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("router_id"));
    }
}
