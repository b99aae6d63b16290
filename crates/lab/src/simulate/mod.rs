//! The scenario simulator: telemetry (sFlow v5, NetFlow v9, IPFIX) describing botnet attacks and
//! ordinary traffic, with the ground truth a correct detector should report. It describes
//! traffic; it never sends any but telemetry.
//!
//! - [`scenario`]: the TOML scenario files (built-in ones are embedded from `scenarios/`).
//! - [`model`]: rates, weights and distributions; the seeded sample generator.
//! - [`output`]: sampled packets → datagrams, through the wire crate's encoders.
//! - [`truth`]: the truth resolved second by second, and the check of detected attacks.

pub mod model;
pub mod output;
pub mod scenario;
pub mod truth;

use std::path::Path;

use anyhow::{anyhow, Result};

pub use model::{Options, Plan};
pub use output::{collector_port, write_frame, Encoder, Sink};
pub use scenario::{Format, Scenario};
pub use truth::{Detected, Replayed, ResolvedTruth};

/// The built-in scenarios, embedded so `--scenario NAME` works anywhere.
pub const BUILTIN: [(&str, &str); 23] = [
    ("demo", include_str!("../../../../scenarios/demo.toml")),
    (
        "busy-day",
        include_str!("../../../../scenarios/busy-day.toml"),
    ),
    (
        "aisuru-burst",
        include_str!("../../../../scenarios/aisuru-burst.toml"),
    ),
    (
        "carpet-24",
        include_str!("../../../../scenarios/carpet-24.toml"),
    ),
    (
        "carpet-22",
        include_str!("../../../../scenarios/carpet-22.toml"),
    ),
    (
        "gre-flood",
        include_str!("../../../../scenarios/gre-flood.toml"),
    ),
    (
        "ack-flood",
        include_str!("../../../../scenarios/ack-flood.toml"),
    ),
    (
        "syn-flood",
        include_str!("../../../../scenarios/syn-flood.toml"),
    ),
    (
        "dns-amplification",
        include_str!("../../../../scenarios/dns-amplification.toml"),
    ),
    (
        "outgoing-flood",
        include_str!("../../../../scenarios/outgoing-flood.toml"),
    ),
    (
        "mirai-scan",
        include_str!("../../../../scenarios/mirai-scan.toml"),
    ),
    (
        "hosting-day",
        include_str!("../../../../scenarios/hosting-day.toml"),
    ),
    (
        "eyeball-evening",
        include_str!("../../../../scenarios/eyeball-evening.toml"),
    ),
    (
        "cdn-flash-crowd",
        include_str!("../../../../scenarios/cdn-flash-crowd.toml"),
    ),
    (
        "hosting-attacks",
        include_str!("../../../../scenarios/hosting-attacks.toml"),
    ),
    (
        "hosting-vectors",
        include_str!("../../../../scenarios/hosting-vectors.toml"),
    ),
    (
        "eyeball-attacks",
        include_str!("../../../../scenarios/eyeball-attacks.toml"),
    ),
    (
        "cdn-attacks",
        include_str!("../../../../scenarios/cdn-attacks.toml"),
    ),
    (
        "hunt-scan",
        include_str!("../../../../scenarios/hunt-scan.toml"),
    ),
    (
        "hunt-c2",
        include_str!("../../../../scenarios/hunt-c2.toml"),
    ),
    (
        "campaigns",
        include_str!("../../../../scenarios/campaigns.toml"),
    ),
    (
        "record-15t",
        include_str!("../../../../scenarios/record-15t.toml"),
    ),
    (
        "record-31t",
        include_str!("../../../../scenarios/record-31t.toml"),
    ),
];

/// A built-in scenario by name, or a scenario file by path.
pub fn load(name_or_path: &str) -> Result<Scenario> {
    if let Some((name, text)) = BUILTIN.iter().find(|(name, _)| *name == name_or_path) {
        return Scenario::parse(text, &format!("scenarios/{name}.toml"));
    }
    let path = Path::new(name_or_path);
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("cannot read scenario {}: {e}", path.display()))?;
        return Scenario::parse(&text, &path.display().to_string());
    }
    let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
    Err(anyhow!(
        "no scenario {name_or_path:?}: not a built-in one ({}) nor a file",
        names.join(", ")
    ))
}

impl Sink for crate::bench::sender::PacedSender {
    fn datagram(&mut self, ts_us: u64, bytes: &[u8]) -> Result<()> {
        Ok(crate::bench::sender::PacedSender::datagram(
            self, ts_us, bytes,
        )?)
    }
}

/// The C2 feed of a scenario, one entry a line: the peers (`IP:port`) of its `role = "c2"`
/// periodic components, then its `c2_feed` lines.
pub fn c2_feed(scenario: &Scenario) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for p in &scenario.periodic {
        if p.role == scenario::Role::C2 {
            for peer in &p.peers {
                let line = peer.to_string();
                if !lines.contains(&line) {
                    lines.push(line);
                }
            }
        }
    }
    lines.extend(scenario.c2_feed.iter().cloned());
    lines
}

/// The replay configuration a scenario's hunting is judged with: its `[hunt]` keys and, when it
/// has a C2 feed, `c2_feeds` naming `feed` (written by [`write_hunt_files`]). TOML text.
pub fn hunt_config_text(scenario: &Scenario, feed: Option<&Path>) -> Result<String> {
    let mut hunt = scenario.hunt.clone().unwrap_or_default();
    if let Some(feed) = feed {
        let mut feeds = match hunt.remove("c2_feeds") {
            Some(toml::Value::Array(a)) => a,
            _ => Vec::new(),
        };
        feeds.push(toml::Value::String(feed.display().to_string()));
        hunt.insert("c2_feeds".into(), toml::Value::Array(feeds));
    }
    let mut root = toml::Table::new();
    root.insert("hunt".into(), toml::Value::Table(hunt));
    Ok(format!(
        "# Written by `floodwall simulate` for scenario {}: the default configuration plus the\n# scenario's [hunt] keys.\n{}",
        scenario.name,
        toml::to_string(&root).map_err(|e| anyhow!("hunt configuration: {e}"))?
    ))
}

/// Beside a capture `X`: `X.c2.txt` (the scenario's C2 feed, when it has one) and
/// `X.hunt.toml` (for `floodwall replay --config`), when the scenario has hunting keys, a
/// feed or hunting truth. Returns the configuration's path.
pub fn write_hunt_files(scenario: &Scenario, capture: &Path) -> Result<Option<std::path::PathBuf>> {
    let feed = c2_feed(scenario);
    if scenario.hunt.is_none() && feed.is_empty() && !scenario.hunt_judged() {
        return Ok(None);
    }
    let with_suffix = |suffix: &str| {
        let mut name = capture.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    };
    let feed_path = if feed.is_empty() {
        None
    } else {
        let path = with_suffix(".c2.txt");
        let mut text = format!("# C2 endpoints of scenario {}\n", scenario.name);
        for line in &feed {
            text.push_str(line);
            text.push('\n');
        }
        std::fs::write(&path, text).map_err(|e| anyhow!("cannot write {}: {e}", path.display()))?;
        // The configuration names it absolutely: replays run from anywhere.
        Some(std::path::absolute(&path).unwrap_or(path))
    };
    let config = with_suffix(".hunt.toml");
    std::fs::write(&config, hunt_config_text(scenario, feed_path.as_deref())?)
        .map_err(|e| anyhow!("cannot write {}: {e}", config.display()))?;
    Ok(Some(config))
}

/// What one run produced.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub samples: u64,
    pub datagrams: u64,
    pub bytes: u64,
}

/// Counts what passes through to another sink.
struct Counting<'a> {
    inner: &'a mut dyn Sink,
    bytes: u64,
}

impl Sink for Counting<'_> {
    fn datagram(&mut self, ts_us: u64, bytes: &[u8]) -> Result<()> {
        self.bytes += bytes.len() as u64;
        self.inner.datagram(ts_us, bytes)
    }
}

/// Generates `plan`'s telemetry into `sink`, datagram by datagram in time order.
pub fn run(plan: &Plan, sink: &mut dyn Sink) -> Result<Summary> {
    let mut encoder = Encoder::new(
        plan.format,
        plan.scenario.telemetry.exporter,
        plan.sampling,
        plan.start_ms,
    );
    let mut counting = Counting {
        inner: sink,
        bytes: 0,
    };
    let samples = model::generate(plan, |step| match step {
        model::Step::Packet(p) => encoder.packet(p, &mut counting),
        model::Step::SliceEnd(now_us) => encoder.slice_end(now_us, &mut counting),
    })?;
    Ok(Summary {
        samples,
        datagrams: encoder.datagrams(),
        bytes: counting.bytes,
    })
}
