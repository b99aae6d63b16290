//! `[hunt]`: finding infected hosts, cutting them off from their C2, grouping attacks into
//! campaigns.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Ports the Mirai family and its descendants probe (telnet first, then exploit ports: SSH,
/// HTTP admin pages, Android ADB, Huawei HG532, Realtek SDK, TR-069).
pub const DEFAULT_SCAN_PORTS: [u16; 12] = [
    23, 2323, 22, 80, 81, 8080, 5555, 7547, 37215, 52869, 60001, 9527,
];

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HuntConfig {
    /// Look for infected hosts and campaigns. Default true: it reads the telemetry already
    /// collected and contacts nothing.
    pub enabled: bool,
    /// Hosts never listed as infected: your own vulnerability scanners, honeypots,
    /// measurement probes. Default: none.
    pub ignore: Vec<IpNet>,
    /// Destination ports a scan is counted on: telnet and the IoT exploit ports the Mirai
    /// family probes, and SSH and HTTP (which need more evidence: much legitimate traffic goes
    /// there). Default `[23, 2323, 22, 80, 81, 8080, 5555, 7547, 37215, 52869, 60001, 9527]`.
    pub scan_ports: Vec<u16>,
    /// How far back scanning evidence reaches, seconds. Default 600: at 1:1000 sampling a
    /// 160 probes/s scanner gives a sample every ~6 s.
    pub scan_window_seconds: u64,
    /// A host is scanning when it probed at least this many distinct destinations within the
    /// window (estimated from the samples, with 99 % confidence). Default 200.
    pub scan_min_destinations: u64,
    /// Threat-intel feeds of C2 endpoints: plain lists (IP, IP:port, CIDR, domain per line),
    /// abuse.ch-style CSV or JSON (Feodo Tracker, ThreatFox). File paths, re-read when they
    /// change; or `http://`/`https://` URLs, the only thing in `[hunt]` that contacts another
    /// host. A feed that breaks keeps its last list. Default: none.
    pub c2_feeds: Vec<String>,
    /// How often `http://` and `https://` entries of `c2_feeds` are fetched again, seconds (at
    /// least 60). Fetched copies are kept in the state directory, so a restart or an
    /// unreachable server keeps the last list. Default 3600.
    pub c2_refresh_seconds: u64,
    /// Announce each C2 address of the feeds as a null route through the BGP speaker (and
    /// ExaBGP), so infected customers cannot reach it. Default false.
    pub c2_null_route: bool,
    /// Community on C2 null routes, so routers can tell them from attack blackholes (which
    /// carry RFC 7999's 65535:666). Default 64512:666, a private value: set your own.
    pub c2_community: String,
    /// At most this many C2 null routes at once; the rest are refused and counted. Default
    /// 10000.
    pub c2_max_routes: usize,
    /// Write the feeds' C2 domains as a DNS RPZ zone to this file (atomically, on change), for
    /// Unbound, BIND or Knot Resolver to answer NXDOMAIN. Default: none.
    pub rpz_file: Option<std::path::PathBuf>,
    /// The RPZ zone's name (its trailing dot may be left out). Default `rpz.floodwall`.
    pub rpz_zone: String,
    /// A host is listed when its confidence reaches this. Default 0.5: beaconing alone (0.3)
    /// lists no one.
    pub min_confidence: f64,
    /// Hosts followed at once (scanning sketches, beacons, listed hosts): bounded memory.
    /// Default 100000.
    pub max_hosts: usize,
    /// An attack joins a campaign when at least this share of its sources (or the campaign's,
    /// whichever set is smaller) is in the campaign. Default 0.15.
    pub campaign_overlap: f64,
    /// Campaigns kept (the least recently seen go first). Default 100000.
    pub max_campaigns: usize,
}

impl Default for HuntConfig {
    fn default() -> Self {
        HuntConfig {
            enabled: true,
            ignore: Vec::new(),
            scan_ports: DEFAULT_SCAN_PORTS.to_vec(),
            scan_window_seconds: 600,
            scan_min_destinations: 200,
            c2_feeds: Vec::new(),
            c2_null_route: false,
            c2_community: "64512:666".into(),
            c2_max_routes: 10_000,
            rpz_file: None,
            rpz_zone: "rpz.floodwall".into(),
            c2_refresh_seconds: 3600,
            min_confidence: 0.5,
            max_hosts: 100_000,
            campaign_overlap: 0.15,
            max_campaigns: 100_000,
        }
    }
}

impl HuntConfig {
    /// The C2 settings that can be wrong: the community, the zone name, the refresh period,
    /// the feed locations. The message names the key.
    /// What serde cannot check: shares in range, windows and bounds not zero, then the C2 keys.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.campaign_overlap > 0.0 && self.campaign_overlap <= 1.0) {
            return Err(format!(
                "hunt.campaign_overlap = {} must be in (0, 1]: the share of the smaller source set found in the other",
                self.campaign_overlap
            ));
        }
        if !(0.0..=1.0).contains(&self.min_confidence) {
            return Err(format!(
                "hunt.min_confidence = {} must be in [0, 1]",
                self.min_confidence
            ));
        }
        if self.scan_window_seconds == 0 || self.scan_min_destinations == 0 {
            return Err(
                "hunt.scan_window_seconds and hunt.scan_min_destinations must be at least 1".into(),
            );
        }
        if self.max_hosts == 0 || self.max_campaigns == 0 {
            return Err("hunt.max_hosts and hunt.max_campaigns must be at least 1 (set hunt.enabled = false to hunt nothing)".into());
        }
        self.validate_c2()
    }

    pub fn validate_c2(&self) -> Result<(), String> {
        if self.c2_community.split_once(':').is_none_or(|(a, v)| {
            a.trim().parse::<u16>().is_err() || v.trim().parse::<u16>().is_err()
        }) {
            return Err(format!(
                "hunt.c2_community = {:?} is not a BGP community: write ASN:VALUE, e.g. 64512:666",
                self.c2_community
            ));
        }
        if let Err(e) = crate::rpz::zone_name(&self.rpz_zone) {
            return Err(format!("hunt.{e}"));
        }
        if self.c2_refresh_seconds < 60 {
            return Err(
                "hunt.c2_refresh_seconds must be at least 60 (be kind to feed servers)".into(),
            );
        }
        for (i, feed) in self.c2_feeds.iter().enumerate() {
            if feed.trim().is_empty() {
                return Err(format!("hunt.c2_feeds[{i}] is empty"));
            }
            if let Some((scheme, _)) = feed.split_once("://") {
                if scheme != "http" && scheme != "https" {
                    return Err(format!(
                        "hunt.c2_feeds[{i}] = {feed:?}: only http:// and https:// URLs, or file paths"
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c2_settings_are_checked_and_named() {
        assert_eq!(HuntConfig::default().validate_c2(), Ok(()));
        let bad = |edit: fn(&mut HuntConfig), key: &str| {
            let mut config = HuntConfig::default();
            edit(&mut config);
            let e = config.validate_c2().unwrap_err();
            assert!(e.contains(key), "{e}");
        };
        bad(|c| c.c2_community = "666".into(), "hunt.c2_community");
        let invalid = |edit: fn(&mut HuntConfig), key: &str| {
            let mut config = HuntConfig::default();
            edit(&mut config);
            let e = config.validate().unwrap_err();
            assert!(e.contains(key), "{e}");
        };
        assert_eq!(HuntConfig::default().validate(), Ok(()));
        invalid(|c| c.campaign_overlap = 0.0, "hunt.campaign_overlap");
        invalid(|c| c.campaign_overlap = 1.5, "hunt.campaign_overlap");
        invalid(|c| c.min_confidence = -0.1, "hunt.min_confidence");
        invalid(|c| c.scan_window_seconds = 0, "hunt.scan_window_seconds");
        invalid(|c| c.max_hosts = 0, "hunt.max_hosts");
        bad(|c| c.c2_community = "65536:1".into(), "hunt.c2_community");
        bad(|c| c.rpz_zone = "bad zone".into(), "rpz_zone");
        bad(|c| c.c2_refresh_seconds = 5, "hunt.c2_refresh_seconds");
        bad(
            |c| c.c2_feeds = vec!["ftp://x/y".into()],
            "hunt.c2_feeds[0]",
        );
        bad(|c| c.c2_feeds = vec![" ".into()], "hunt.c2_feeds[0]");
        let ok = HuntConfig {
            c2_feeds: vec![
                "/etc/floodwall/c2.txt".into(),
                "https://feodotracker.abuse.ch/downloads/ipblocklist.csv".into(),
            ],
            ..HuntConfig::default()
        };
        assert_eq!(ok.validate_c2(), Ok(()));
    }
}
