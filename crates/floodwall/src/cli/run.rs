//! `floodwall run`: the daemon — collectors feed the engine; events go to the actions thread,
//! which mitigates, writes the events file and notifies. SIGTERM or SIGINT stops it cleanly
//! (withdrawing mitigations unless `[mitigation] keep_on_shutdown`).

use std::fs::OpenOptions;
use std::io::BufWriter;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use floodwall_daemon::act::control;
use floodwall_daemon::act::runner::{Actions, Input};
use floodwall_daemon::act::store::Store;
use floodwall_daemon::clock::unix_ms;
use floodwall_daemon::config::Config;
use floodwall_daemon::logging::log;
use floodwall_daemon::sources::udp::{CollectorStats, UdpSource};
use floodwall_detect::{Engine, EngineStats};
use floodwall_mitigate::Planner;

use super::RunArgs;

/// Records may arrive this late (exporter batching, network) and still count in their own
/// second; a quiet collector closes buckets this long after they end.
const LIVE_LATENESS_MS: u64 = 1_000;
const TICK: Duration = Duration::from_millis(100);
const STATS_EVERY: Duration = Duration::from_secs(10);
/// How often the learnt baselines are saved (and at shutdown): a crash loses at most this much
/// learning, and the write (a few MB per 100,000 hosts) stays rare.
const BASELINES_EVERY: Duration = Duration::from_secs(300);

pub fn run(args: RunArgs) -> Result<()> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    config.add_networks(&args.network);
    config.require_networks()?;
    if args.dry_run {
        config.mitigation.dry_run = true;
        config
            .mitigation
            .hostgroups
            .iter_mut()
            .for_each(|g| g.dry_run = Some(true));
    }
    config.require_trusted_exporters()?;
    let mut engine = Engine::new(config.detection_config()).map_err(|e| anyhow!("{e}"))?;

    let events_path = &config.events.file;
    let events_file = OpenOptions::new().create(true).append(true).open(events_path).with_context(|| {
        format!(
            "cannot open the events file {} for appending: choose a writable path with `[events] file = ...`",
            events_path.display()
        )
    })?;
    let events_out = BufWriter::new(events_file);
    let store = Store::open(&config.state.dir)?;
    resume_baselines(&mut engine, &config.state.dir);
    let planner = Planner::new(config.mitigation.clone(), config.mitigation_scope())
        .map_err(|e| anyhow!("{e}"))?;
    let outputs = floodwall_daemon::act::build(&config)?;
    for kind in config.unmitigated_kinds() {
        log(format!(
            "warning: {kind} mitigation is enabled but no mitigator carries {kind} rules \
             (configure [bgp] peers with its families, [exabgp] or [nftables]): its rules will \
             be recorded as failed, not announced"
        ));
    }
    let (act_tx, act_rx) = crossbeam_channel::bounded::<Input>(1024);
    control::serve(&config.state.dir, act_tx.clone())?;
    let actions = Actions {
        planner,
        store,
        mitigators: outputs.mitigators,
        notifiers: outputs.notifiers,
        events: Box::new(events_out),
    }
    .spawn(act_rx)?;

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
    let mut last_baselines = Instant::now();
    let mut baselines_writer: Option<std::thread::JoinHandle<()>> = None;
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
        if !events.is_empty()
            && act_tx
                .send(Input::Events(std::mem::take(&mut events)))
                .is_err()
        {
            break;
        }
        if last_baselines.elapsed() >= BASELINES_EVERY
            && baselines_writer.as_ref().is_none_or(|w| w.is_finished())
        {
            // The snapshot is taken here (a copy, milliseconds); the disk is the writer's.
            let (dir, saved) = (config.state.dir.clone(), engine.baselines());
            baselines_writer = Some(std::thread::spawn(move || {
                if let Err(e) = floodwall_daemon::baselines::save(&dir, &saved, unix_ms() / 1000) {
                    log(format!(
                        "cannot save the learnt baselines in {}: {e}",
                        dir.display()
                    ));
                }
            }));
            last_baselines = Instant::now();
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
    if !events.is_empty() {
        let _ = act_tx.send(Input::Events(events));
    }
    // The actions thread withdraws (or keeps) the mitigations and saves the snapshot.
    let _ = act_tx.send(Input::Stop);
    let _ = std::fs::remove_file(control::socket_path(&config.state.dir));
    match actions.join() {
        Ok(result) => result?,
        Err(_) => return Err(anyhow!("the actions thread panicked")),
    }
    if let Some(writer) = baselines_writer {
        let _ = writer.join();
    }
    let saved = engine.baselines();
    match floodwall_daemon::baselines::save(&config.state.dir, &saved, unix_ms() / 1000) {
        Ok(()) => log(format!(
            "saved the baselines of {} hosts and {} prefixes",
            saved.hosts.len(),
            saved.prefixes.len()
        )),
        Err(e) => log(format!(
            "cannot save the learnt baselines in {}: {e}",
            config.state.dir.display()
        )),
    }
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

/// Resumes the baselines saved in state directory `dir` by the previous run, if any; a file that
/// cannot be used is reported and the engine learns again.
fn resume_baselines(engine: &mut Engine, dir: &std::path::Path) {
    match floodwall_daemon::baselines::load(dir) {
        Ok(None) => log("no saved baselines: learning from scratch"),
        Ok(Some((saved, at))) => {
            let (hosts, prefixes) = engine.restore_baselines(&saved);
            log(format!(
                "resumed the baselines of {hosts} hosts and {prefixes} prefixes saved {} s ago",
                (unix_ms() / 1000).saturating_sub(at)
            ));
        }
        Err(e) => log(format!("{e}; learning baselines again")),
    }
}

/// `N datagrams, N decode errors, N kernel drops, N not allowed, N implausible records (…),
/// N exporters evicted; N hosts tracked, N attacks`: the collector's and the engine's counters,
/// as the periodic and the final log lines show them.
fn counters(collector: &CollectorStats, engine: &EngineStats) -> String {
    let totals = collector.totals();
    format!(
        "{} datagrams, {} decode errors, {} kernel drops, {} not allowed, {} implausible records \
         ({} sampling rate out of range, {} on probation after {} rate changes, {} impossible \
         sample pools; {} samples inconsistent), {} exporters evicted; {} hosts tracked, {} attacks",
        totals.datagrams,
        totals.total_errors(),
        collector.kernel_drops(),
        collector.not_allowed(),
        totals.implausible(),
        totals.sampling_rate_out_of_range,
        totals.untrusted_rate_records,
        totals.sampling_rate_changes,
        totals.impossible_samples,
        totals.inconsistent_samples,
        totals.evictions,
        engine.hosts_tracked,
        engine.attacks_active
    )
}
