//! The engine sharded over 2 and 3 shards gives one engine's events on every lab scenario:
//! each scenario generated straight into the decoder, its records fed in the same batches to
//! one engine and to the sharded ones, the events compared whole. And `floodwall replay
//! --shards` (the pipeline with its shard threads) prints the same lines for 1 and 2 shards.
//! The seven largest scenarios (millions of samples) run with `--features scenario-tests`
//! (release, `scripts/test`).

use std::net::IpAddr;
use std::process::Command;

use anyhow::Result;
use floodwall_detect::{AttackEvent, DetectConfig, Engine, ShardedEngine};
use floodwall_lab::simulate::{self, Options, Plan, Sink};
use floodwall_wire::{Decoder, FlowRecord};

/// Decodes each datagram as a collector would and feeds every engine the same batches.
struct Engines {
    exporter: IpAddr,
    decoder: Decoder,
    one: Engine,
    sharded: Vec<ShardedEngine>,
    records: Vec<FlowRecord>,
    events: Vec<Vec<AttackEvent>>,
}

impl Sink for Engines {
    fn datagram(&mut self, ts_us: u64, bytes: &[u8]) -> Result<()> {
        let _ = self
            .decoder
            .decode(self.exporter, ts_us / 1000, bytes, &mut self.records);
        if self.records.len() >= 8192 {
            self.flush();
        }
        Ok(())
    }
}

impl Engines {
    fn flush(&mut self) {
        self.one.ingest(&self.records, &mut self.events[0]);
        for (engine, events) in self.sharded.iter_mut().zip(&mut self.events[1..]) {
            engine.ingest(&self.records, events);
        }
        self.records.clear();
    }
}

fn assert_shards_agree(name: &str) {
    let scenario = simulate::load(name).expect("built-in scenario");
    let plan = Plan::new(scenario, &Options::default()).expect("plan");
    let config = DetectConfig {
        networks: plan.scenario.telemetry.networks.clone(),
        ..DetectConfig::default()
    };
    let mut sink = Engines {
        exporter: IpAddr::V4(plan.scenario.telemetry.exporter),
        decoder: Decoder::default(),
        one: Engine::new(config.clone()).expect("engine"),
        sharded: [2, 3]
            .map(|n| ShardedEngine::new(config.clone(), n).expect("shards"))
            .into(),
        records: Vec::new(),
        events: vec![Vec::new(); 3],
    };
    simulate::run(&plan, &mut sink).expect("generating");
    sink.flush();
    sink.one.finish(&mut sink.events[0]);
    for (engine, events) in sink.sharded.iter_mut().zip(&mut sink.events[1..]) {
        engine.finish(events);
    }
    let one = sink.one.stats();
    for (engine, events) in sink.sharded.iter().zip(&sink.events[1..]) {
        assert!(events == &sink.events[0], "{name}: the events differ");
        assert_eq!(engine.stats(), one, "{name}");
    }
    eprintln!(
        "{name}: {} events, {} records",
        sink.events[0].len(),
        one.records
    );
}

macro_rules! scenarios {
    ($($(#[$attr:meta])* $test:ident: $name:literal,)*) => {$(
        $(#[$attr])*
        #[test]
        fn $test() {
            assert_shards_agree($name);
        }
    )*};
}

scenarios! {
    demo: "demo",
    busy_day: "busy-day",
    aisuru_burst: "aisuru-burst",
    carpet_24: "carpet-24",
    carpet_22: "carpet-22",
    gre_flood: "gre-flood",
    ack_flood: "ack-flood",
    syn_flood: "syn-flood",
    dns_amplification: "dns-amplification",
    outgoing_flood: "outgoing-flood",
    mirai_scan: "mirai-scan",
    #[cfg(feature = "scenario-tests")]
    cdn_flash_crowd: "cdn-flash-crowd",
    #[cfg(feature = "scenario-tests")]
    cdn_attacks: "cdn-attacks",
    #[cfg(feature = "scenario-tests")]
    hosting_day: "hosting-day",
    #[cfg(feature = "scenario-tests")]
    eyeball_evening: "eyeball-evening",
    #[cfg(feature = "scenario-tests")]
    hosting_attacks: "hosting-attacks",
    #[cfg(feature = "scenario-tests")]
    hosting_vectors: "hosting-vectors",
    #[cfg(feature = "scenario-tests")]
    eyeball_attacks: "eyeball-attacks",
}

fn floodwall() -> Command {
    Command::new(env!("CARGO_BIN_EXE_floodwall"))
}

/// The pipeline's shard threads: `floodwall replay --shards 1` and `--shards 2` print the same
/// lines (events with the plan's decisions).
#[test]
fn replay_prints_the_same_lines_for_any_number_of_shards() {
    let dir = std::env::temp_dir().join(format!("floodwall-shards-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("outgoing.pcap");
    let status = floodwall()
        .args(["simulate", "--scenario", "outgoing-flood", "--pcap"])
        .arg(&pcap)
        .output()
        .unwrap()
        .status;
    assert!(status.success());
    let replay = |shards: &str| {
        let output = floodwall()
            .args(["replay", "--json", "--network", "198.18.0.0/15"])
            .args(["--shards", shards])
            .arg(&pcap)
            .output()
            .unwrap();
        assert!(output.status.success(), "{shards} shards");
        String::from_utf8(output.stdout).unwrap()
    };
    let one = replay("1");
    assert!(one.lines().count() > 10, "{one}");
    assert_eq!(replay("2"), one);
    let refused = floodwall()
        .args(["replay", "--shards", "0", "--network", "198.18.0.0/15"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}
