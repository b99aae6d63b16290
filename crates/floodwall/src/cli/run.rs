//! `floodwall run`: the daemon — collectors feed the engine; events go to the log and to a
//! JSON-lines file. SIGTERM or SIGINT stops it cleanly.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use floodwall::config::Config;
use floodwall::events::{log_line, write_json};
use floodwall::sources::udp::{unix_ms, CollectorStats, UdpSource};
use floodwall_detect::time::rfc3339_ms;
use floodwall_detect::{Engine, EngineStats};

use super::RunArgs;

/// Records may arrive this late (exporter batching, network) and still count in their own
/// second; a quiet collector closes buckets this long after they end.
const LIVE_LATENESS_MS: u64 = 1_000;
const TICK: Duration = Duration::from_millis(100);
const STATS_EVERY: Duration = Duration::from_secs(10);

fn log(message: impl AsRef<str>) {
    eprintln!("{} floodwall: {}", rfc3339_ms(unix_ms()), message.as_ref());
}

pub fn run(args: RunArgs) -> Result<()> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    config.add_networks(&args.network);
    config.require_networks()?;
    let mut engine = Engine::new(config.detection_config()).map_err(|e| anyhow!("{e}"))?;

    let events_path = &config.events.file;
    let events_file = OpenOptions::new().create(true).append(true).open(events_path).with_context(|| {
        format!(
            "cannot open the events file {} for appending: choose a writable path with `[events] file = ...`",
            events_path.display()
        )
    })?;
    let mut events_out = BufWriter::new(events_file);

    let (tx, rx) = crossbeam_channel::bounded(256);
    let (recycle_tx, recycle_rx) = crossbeam_channel::bounded(256);
    let source = UdpSource::start(&config.collector.udp_source(), tx, recycle_rx)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
    }
    log(format!(
        "listening on {}; watching {} networks; events to {}",
        source
            .local_addrs()
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        engine.config().networks.len(),
        events_path.display()
    ));

    let mut events = Vec::new();
    let mut last_tick = Instant::now();
    let mut last_stats = Instant::now();
    let mut records_since = 0u64;
    while !stop.load(Ordering::Relaxed) {
        match rx.recv_timeout(TICK) {
            Ok(mut batch) => {
                records_since += batch.len() as u64;
                engine.ingest(&batch, &mut events);
                batch.clear();
                let _ = recycle_tx.try_send(batch);
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        }
        if last_tick.elapsed() >= TICK {
            engine.tick(unix_ms().saturating_sub(LIVE_LATENESS_MS), &mut events);
            last_tick = Instant::now();
        }
        if !events.is_empty() {
            for event in events.drain(..) {
                log(log_line(&event));
                write_json(&mut events_out, &event)?;
            }
            events_out.flush()?;
        }
        if last_stats.elapsed() >= STATS_EVERY {
            log(format!(
                "{:.0} records/s; {} active",
                records_since as f64 / last_stats.elapsed().as_secs_f64(),
                counters(&source.stats(), &engine.stats())
            ));
            records_since = 0;
            last_stats = Instant::now();
        }
    }
    log("stopping");
    let collector = source.stop();
    while let Ok(batch) = rx.try_recv() {
        engine.ingest(&batch, &mut events);
    }
    for event in events.drain(..) {
        log(log_line(&event));
        write_json(&mut events_out, &event)?;
    }
    events_out.flush()?;
    // Attacks still active are not declared over: the traffic did not stop, we did.
    // The totals since start are what benchmarks and operators compare with what was sent.
    let engine_stats = engine.stats();
    log(format!(
        "stopped; {} records, {} were active",
        engine_stats.records,
        counters(&collector, &engine_stats)
    ));
    Ok(())
}

/// `N datagrams, N decode errors, N kernel drops, N not allowed; N hosts tracked, N attacks`:
/// the collector's and the engine's counters, as the periodic and the final log lines show them.
fn counters(collector: &CollectorStats, engine: &EngineStats) -> String {
    let totals = collector.totals();
    format!(
        "{} datagrams, {} decode errors, {} kernel drops, {} not allowed; {} hosts tracked, {} attacks",
        totals.datagrams,
        totals.total_errors(),
        collector.kernel_drops(),
        collector.not_allowed(),
        engine.hosts_tracked,
        engine.attacks_active
    )
}
