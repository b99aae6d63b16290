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
pub use output::{collector_port, Encoder, Sink};
pub use scenario::{Format, Scenario};
pub use truth::{Detected, ResolvedTruth};

/// The built-in scenarios, embedded so `--scenario NAME` works anywhere.
pub const BUILTIN: [(&str, &str); 20] = [
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
