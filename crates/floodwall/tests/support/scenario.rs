//! Scenario replays for the scenario tests: a built-in scenario generated straight into the
//! real decoder and engine (no capture file), its attacks checked against its truth.

use std::net::IpAddr;
use std::time::Instant;

use anyhow::Result;
use floodwall_detect::{AttackEvent, DetectConfig, Engine};
use floodwall_lab::simulate::{self, Detected, Format, Options, Plan, Sink};
use floodwall_wire::{Decoder, FlowRecord};

/// Decodes each datagram as a collector would (the exporter's address, the datagram's time)
/// and runs the engine on the records.
pub struct EngineSink {
    exporter: IpAddr,
    decoder: Decoder,
    engine: Engine,
    records: Vec<FlowRecord>,
    events: Vec<AttackEvent>,
    decoded: u64,
}

impl Sink for EngineSink {
    fn datagram(&mut self, ts_us: u64, bytes: &[u8]) -> Result<()> {
        // Decode errors are counted by the decoder and asserted to be zero at the end.
        let _ = self
            .decoder
            .decode(self.exporter, ts_us / 1000, bytes, &mut self.records);
        if self.records.len() >= 8192 {
            self.flush();
        }
        Ok(())
    }
}

impl EngineSink {
    fn flush(&mut self) {
        self.decoded += self.records.len() as u64;
        self.engine.ingest(&self.records, &mut self.events);
        self.records.clear();
    }
}

/// Generates the scenario, runs it through decoder and engine, and returns the truth's
/// complaints (empty: it matches).
pub fn replay(name: &str, options: Options) -> (Vec<String>, Vec<Detected>) {
    let started = Instant::now();
    let scenario = simulate::load(name).expect("built-in scenario");
    let plan = Plan::new(scenario, &options).expect("plan");
    let truth = plan.truth().expect("truth");
    let mut sink = EngineSink {
        exporter: IpAddr::V4(plan.scenario.telemetry.exporter),
        decoder: Decoder::default(),
        engine: Engine::new(DetectConfig {
            networks: plan.scenario.telemetry.networks.clone(),
            ..DetectConfig::default()
        })
        .expect("engine"),
        records: Vec::new(),
        events: Vec::new(),
        decoded: 0,
    };
    let summary = simulate::run(&plan, &mut sink).expect("generating");
    sink.flush();
    let mut events = std::mem::take(&mut sink.events);
    sink.engine.finish(&mut events);
    let totals = sink.decoder.totals();
    assert_eq!(totals.total_errors(), 0, "{name}: decode errors {totals:?}");
    assert_eq!(
        totals.pending_dropped, 0,
        "{name}: records before templates"
    );
    if plan.format == Format::Sflow {
        assert_eq!(
            sink.decoded, summary.samples,
            "{name}: one record per sample"
        );
    }
    let detected = Detected::from_events(&events);
    let problems = truth.check(&detected);
    eprintln!(
        "{name} {} 1:{}{}: {} samples, {} datagrams, {} attacks, {} expected ({} required), {:.1} s",
        plan.format.name(),
        plan.sampling,
        plan.scale_name
            .as_deref()
            .map(|s| format!(" {s}"))
            .unwrap_or_default(),
        summary.samples,
        summary.datagrams,
        detected.len(),
        truth.expect.len(),
        truth.required().count(),
        started.elapsed().as_secs_f64()
    );
    if detected.len() <= 20 {
        for d in &detected {
            eprintln!("  detected {}", d.describe());
        }
    }
    (problems, detected)
}

pub fn assert_matches_truth(name: &str, options: Options) {
    let (problems, _) = replay(name, options);
    assert!(
        problems.is_empty(),
        "{name}: {} departures from the truth:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

pub fn format(format: Format) -> Options {
    Options {
        format: Some(format),
        ..Options::default()
    }
}
