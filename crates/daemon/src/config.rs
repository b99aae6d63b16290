//! floodwall.toml: what the daemon listens on, what it watches, where events go. Every section
//! and field is optional; the defaults are documented on each field.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use floodwall_detect::DetectConfig;
use floodwall_mitigate::MitigationConfig;
use floodwall_wire::Limits;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::sources::udp::{default_listen_addrs, UdpSourceConfig};

pub mod check;
pub mod reference;

#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Monitored networks, IPv4 and IPv6: traffic to them is incoming, traffic from them
    /// outgoing. Default: none (replay and run refuse to start without any).
    pub networks: Vec<IpNet>,
    pub collector: CollectorConfig,
    pub detection: DetectConfig,
    pub events: EventsConfig,
    pub mitigation: MitigationConfig,
    pub state: StateConfig,
    pub http: crate::serve::HttpConfig,
    pub history: crate::history::HistoryConfig,
    /// `[hunt]`: infected hosts in the monitored networks, C2 lists, campaigns.
    pub hunt: floodwall_hunt::HuntConfig,
    /// `[bgp]` and `[[bgp.peers]]`: the built-in BGP speaker. Absent: no BGP.
    pub bgp: Option<crate::act::bgp::BgpConfig>,
    /// `[exabgp]`: announce through an ExaBGP the operator runs. Default off.
    pub exabgp: crate::act::exabgp::ExaBgpConfig,
    /// `[nftables]`: drop attack traffic on this host in Floodwall's own table. Default off.
    pub nftables: crate::act::nftables::NftablesConfig,
    /// `[[webhooks]]`: JSON (or Slack) POSTs of every event and mitigation change.
    pub webhooks: Vec<crate::act::webhook::WebhookConfig>,
    /// `[[scripts]]`: a program run per event and mitigation change, the JSON on stdin.
    pub scripts: Vec<crate::act::script::ScriptConfig>,
}

/// `[state]`: where the daemon keeps what must survive a restart (active mitigations) and its
/// control socket.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// Default `floodwall-state` in the working directory (packaged installs: /var/lib/floodwall).
    pub dir: PathBuf,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            dir: PathBuf::from("floodwall-state"),
        }
    }
}

/// `[collector]`: UDP listeners for sFlow, NetFlow and IPFIX.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorConfig {
    /// Addresses to listen on. Default: 0.0.0.0 and [::] on 6343, 2055 and 4739. Any port takes
    /// any protocol.
    pub listen: Vec<SocketAddr>,
    /// Exporters allowed to send; others are counted and dropped. Default: empty, allow all —
    /// which `run` and `check-config` refuse when a listener is not on loopback and blackhole or
    /// FlowSpec is enabled: anyone who can send a UDP datagram would steer your routes. List
    /// your routers, or write `["0.0.0.0/0", "::/0"]` to accept any source knowingly.
    pub allow_exporters: Vec<IpNet>,
    /// Socket receive buffer to ask for, MiB. Default 32.
    pub recv_buffer_mib: usize,
    /// The largest 1-in-N sampling rate a record may claim. Default 65536: real deployments
    /// sample 1:1 to 1:32768, so this leaves a factor of two. A record claiming more is dropped,
    /// never scaled (one spoofed datagram of five samples at 1:4294967295 would otherwise be a
    /// 172 Tbps attack), and counted per exporter.
    pub max_sampling_rate: u32,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            listen: default_listen_addrs(),
            allow_exporters: Vec::new(),
            recv_buffer_mib: 32,
            max_sampling_rate: floodwall_wire::decoder::DEFAULT_MAX_SAMPLING_RATE,
        }
    }
}

impl CollectorConfig {
    pub fn udp_source(&self) -> UdpSourceConfig {
        UdpSourceConfig {
            listen: self.listen.clone(),
            recv_buffer_bytes: self.recv_buffer_mib << 20,
            allowed_exporters: self.allow_exporters.clone(),
            limits: self.limits(),
        }
    }

    /// The decoder's limits, with the configured sampling-rate ceiling.
    pub fn limits(&self) -> Limits {
        Limits {
            max_sampling_rate: self.max_sampling_rate,
            ..Limits::default()
        }
    }

    /// `max_sampling_rate` must admit unsampled telemetry.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_sampling_rate == 0 {
            return Err(
                "collector.max_sampling_rate = 0 would drop every record: 1 accepts only \
                 unsampled telemetry, the default 65536 every real sampling rate"
                    .into(),
            );
        }
        Ok(())
    }

    /// Listeners reachable from other hosts: any address but loopback (wildcards included).
    pub fn exposed_listeners(&self) -> Vec<SocketAddr> {
        self.listen
            .iter()
            .filter(|addr| !addr.ip().is_loopback())
            .copied()
            .collect()
    }
}

/// `[events]`: where the daemon writes attack events.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// JSON-lines file the daemon appends every event to. Default `floodwall-events.jsonl` in the
    /// working directory.
    pub file: PathBuf,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            file: PathBuf::from("floodwall-events.jsonl"),
        }
    }
}

impl Config {
    /// Reads and checks a configuration file. Errors name the file, the line and what is wrong.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("cannot read configuration {}: {e}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses configuration text; `origin` names it in errors. The checks are `check-config`'s
    /// (all of them but the networks, which `--network` may still add): every problem found
    /// is in the error, one line each.
    pub fn parse(text: &str, origin: &str) -> Result<Config> {
        let checked = check::check_with(text, check::Networks::MayComeLater);
        match checked.config {
            Some(config) => Ok(config),
            None => {
                let mut lines: Vec<String> =
                    checked.problems.iter().map(|p| p.display(origin)).collect();
                if lines.len() > 1 {
                    lines.push(format!("{} problems in {origin}", lines.len()));
                }
                Err(anyhow!("{}", lines.join("\n")))
            }
        }
    }

    /// Why this configuration would let anyone steer routes, if it would: a listener other
    /// hosts can reach, blackhole or FlowSpec enabled anywhere (dry run included: it is one
    /// flag away), and no `allow_exporters`.
    pub fn open_to_spoofing(&self) -> Option<String> {
        let m = &self.mitigation;
        let mut kinds = Vec::new();
        if m.blackhole.enabled || m.hostgroups.iter().any(|g| g.blackhole == Some(true)) {
            kinds.push("blackhole");
        }
        if m.flowspec.enabled || m.hostgroups.iter().any(|g| g.flowspec == Some(true)) {
            kinds.push("flowspec");
        }
        let exposed = self.collector.exposed_listeners();
        if kinds.is_empty() || exposed.is_empty() || !self.collector.allow_exporters.is_empty() {
            return None;
        }
        Some(format!(
            "collector.allow_exporters is empty while {} is enabled and the collector listens on \
             {}: telemetry is unauthenticated UDP, so anyone who can send a datagram there could \
             make Floodwall announce routes",
            kinds.join(" and "),
            exposed
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }

    /// Refuses to mitigate on telemetry anyone may send (see [`Config::open_to_spoofing`]).
    pub fn require_trusted_exporters(&self) -> Result<()> {
        match self.open_to_spoofing() {
            Some(problem) => Err(anyhow!("{problem}. {EXPORTERS_HINT}")),
            None => Ok(()),
        }
    }

    /// The detection settings with the top-level networks (and any given on the command line)
    /// merged in.
    pub fn detection_config(&self) -> DetectConfig {
        let mut detection = self.detection.clone();
        for net in &self.networks {
            if !detection.networks.contains(net) {
                detection.networks.push(*net);
            }
        }
        detection
    }

    /// Where mitigation rules may go: the monitored networks with their hostgroups, no broader
    /// than the detection's prefix lengths.
    pub fn mitigation_scope(&self) -> floodwall_mitigate::Scope {
        let detection = self.detection_config();
        let mut networks: Vec<(IpNet, String)> = detection
            .networks
            .iter()
            .map(|n| (*n, "default".to_string()))
            .collect();
        for group in &detection.hostgroups {
            networks.extend(group.networks.iter().map(|n| (*n, group.name.clone())));
        }
        floodwall_mitigate::Scope {
            networks,
            broadest_v4: detection.prefix_length_v4,
            broadest_v6: detection.prefix_length_v6,
        }
    }

    /// The mitigation kinds enabled somewhere (not only in dry run) that no configured
    /// mitigator carries: their rules would be recorded as `failed`. Run and check-config say so.
    pub fn unmitigated_kinds(&self) -> Vec<&'static str> {
        use floodwall_bgp::Family;
        let m = &self.mitigation;
        let live = |enabled: bool,
                    per_group: fn(
            &floodwall_mitigate::config::HostgroupMitigation,
        ) -> Option<bool>| {
            (enabled && !m.dry_run)
                || m.hostgroups
                    .iter()
                    .any(|g| per_group(g).unwrap_or(enabled) && !g.dry_run.unwrap_or(m.dry_run))
        };
        let bgp_carries = |families: [Family; 2]| {
            self.bgp.as_ref().is_some_and(|b| {
                b.peers
                    .iter()
                    .any(|p| p.families.iter().any(|f| families.contains(f)))
            })
        };
        let mut missing = Vec::new();
        if live(m.blackhole.enabled, |g| g.blackhole)
            && !bgp_carries([Family::Ipv4Unicast, Family::Ipv6Unicast])
            && !self.exabgp.enabled
            && !self.nftables.enabled
        {
            missing.push("blackhole");
        }
        let nft_filters = self.nftables.enabled
            && m.flowspec.action != floodwall_mitigate::config::FlowActionName::Redirect;
        if live(m.flowspec.enabled, |g| g.flowspec)
            && !bgp_carries([Family::Ipv4FlowSpec, Family::Ipv6FlowSpec])
            && !self.exabgp.enabled
            && !nft_filters
        {
            missing.push("flowspec");
        }
        missing
    }

    /// Adds `--network` arguments to the monitored networks.
    /// Every rule recorded, none announced: `run --dry-run`, and every replay.
    pub fn force_dry_run(&mut self) {
        self.mitigation.dry_run = true;
        self.mitigation
            .hostgroups
            .iter_mut()
            .for_each(|g| g.dry_run = Some(true));
    }

    pub fn add_networks(&mut self, networks: &[IpNet]) {
        for net in networks {
            if !self.networks.contains(net) {
                self.networks.push(*net);
            }
        }
    }

    /// Refuses to run with nothing to watch.
    pub fn require_networks(&self) -> Result<()> {
        if self.detection_config().networks.is_empty() {
            return Err(anyhow!(
                "no networks configured: Floodwall needs to know which addresses are yours. \
                 Add `networks = [\"203.0.113.0/24\", \"2001:db8::/32\"]` to the configuration, \
                 or pass --network CIDR"
            ));
        }
        Ok(())
    }
}

/// How to fix [`Config::open_to_spoofing`].
pub const EXPORTERS_HINT: &str = "List your exporters in `[collector] allow_exporters = \
    [\"192.0.2.0/24\"]`, or write `allow_exporters = [\"0.0.0.0/0\", \"::/0\"]` to accept any \
    source knowingly, or listen on loopback only";

/// A TOML error as `origin:line:column: message` (configuration and scenario files alike).
pub fn located(e: &toml::de::Error, text: &str, origin: &str) -> anyhow::Error {
    let location = e
        .span()
        .map(|span| {
            let (line, column) = line_column(text, span.start);
            format!(":{line}:{column}")
        })
        .unwrap_or_default();
    anyhow!("{origin}{location}: {}", e.message().trim())
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let config = Config::parse("", "x.toml").unwrap();
        assert!(config.networks.is_empty());
        assert_eq!(config.collector.listen.len(), 6);
        assert!(config.require_networks().is_err());
    }

    #[test]
    fn errors_name_file_line_and_problem() {
        let text = "networks = [\"203.0.113.0/24\"]\n\n[collector]\nrecv_buffer_mib = \"big\"\n";
        let error = Config::parse(text, "floodwall.toml")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("floodwall.toml:4:"), "{error}");
        assert!(error.contains("invalid type"), "{error}");

        let error = Config::parse("networks = [\"203.0.113.0/33\"]\n", "f.toml")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("f.toml:1:"), "{error}");

        let error = Config::parse(
            "[mitigation]\nmin_seconds = 60\nmax_seconds = 5\n",
            "f.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("f.toml:3:1: mitigation.max_seconds"),
            "{error}"
        );

        let error = Config::parse("[collector]\nlisen = []\n", "f.toml")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("f.toml:2:") && error.contains("lisen"),
            "{error}"
        );
    }

    #[test]
    fn networks_merge_from_file_and_command_line() {
        let mut config = Config::parse("networks = [\"203.0.113.0/24\"]\n", "f.toml").unwrap();
        config.add_networks(&[
            "2001:db8::/32".parse().unwrap(),
            "203.0.113.0/24".parse().unwrap(),
        ]);
        assert_eq!(config.detection_config().networks.len(), 2);
        assert!(config.require_networks().is_ok());
    }
}

#[cfg(test)]
mod readme {
    use super::*;

    /// The configuration example in README.md is what a new user copies: it must stay valid.
    #[test]
    fn readme_example_parses() {
        let readme = include_str!("../../../README.md");
        let start = readme
            .find("```toml\n# floodwall.toml")
            .expect("README has the example")
            + "```toml\n".len();
        let end = start + readme[start..].find("```").expect("the block ends");
        let config = Config::parse(&readme[start..end], "README.md").unwrap();
        assert_eq!(config.networks.len(), 2);
        assert_eq!(config.detection.hostgroups.len(), 1);
        assert_eq!(config.detection.incoming.pps, Some(20_000.0));
        assert!(config.detection.carpet.baseline);
        assert_eq!(config.detection.carpet.max_pps, 2_000_000.0);
    }

    /// So must the mitigation example.
    #[test]
    fn readme_mitigation_example_parses() {
        let readme = include_str!("../../../README.md");
        let start = readme
            .find("```toml\n# Mitigation")
            .expect("README has the mitigation example")
            + "```toml\n".len();
        let end = start + readme[start..].find("```").expect("the block ends");
        // It is added to a file that has the networks and the hostgroup its mitigation names.
        let file = format!(
            "networks = [\"203.0.113.0/24\"]\n[[detection.hostgroups]]\nname = \"dns-servers\"\nnetworks = [\"203.0.113.53/32\"]\n{}",
            &readme[start..end]
        );
        let config = Config::parse(&file, "README.md").unwrap();
        assert!(config.mitigation.blackhole.enabled && config.mitigation.flowspec.enabled);
        assert_eq!(config.bgp.as_ref().unwrap().peers.len(), 1);
        assert_eq!(config.webhooks.len(), 1);
        assert_eq!(config.scripts.len(), 1);
        assert!(!config.nftables.enabled && !config.exabgp.enabled);
    }
}
