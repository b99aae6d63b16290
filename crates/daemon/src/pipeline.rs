//! The pipeline, built from the configuration: sources → decode → engine → bus → subscribers.
//! `floodwall run` and `floodwall replay` are the same pipeline with different ends:
//!
//! | | [`Pipeline::daemon`] | [`Pipeline::replay`] |
//! |---|---|---|
//! | source | UDP collectors of `[collector]` | capture files |
//! | engine clock | now, less the lateness allowed | the records' own time; finished at the end |
//! | full subscriber queue | drop and count | wait |
//! | actions | mitigators, store, control socket | the plan only, in dry run |
//! | subscribers | events file, notifiers | the caller's (stdout) |
//!
//! Threads: the source's own, the engine thread (this module), the actions thread with one
//! worker per mitigator, one thread per bus subscriber, the store's, the control socket's.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use crossbeam_channel::RecvTimeoutError;
use floodwall_detect::{AttackEvent, Baselines, EngineStats, EventKind};
use floodwall_mitigate::Planner;

use crate::act::actions::{Actions, ActionsHandle, PlanClock};
use crate::act::control;
use crate::act::store::Store;
use crate::bus::{Backpressure, Bus, BusBuilder, Message, Subscriber, Topic};
use crate::clock::unix_ms;
use crate::config::Config;
use crate::logging::log;
use crate::serve::{HttpContext, HttpServer};
use crate::shards::Engines;
use crate::sinks::{EventsFile, Notify};
use crate::sources::udp::CollectorStats;
use crate::sources::{BatchOutput, RecordBatch, RunningSource, Source, SourceReport};
use crate::status::{ActiveAttacks, CollectorStatus, Status, StatusBoard};

/// Records may arrive this late (exporter batching, network) and still count in their own
/// second; a quiet collector closes buckets this long after they end.
const LIVE_LATENESS_MS: u64 = 1_000;
const TICK: Duration = Duration::from_millis(100);
const STATS_EVERY: Duration = Duration::from_secs(10);
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// How often the learnt baselines are saved (and at shutdown): a crash loses at most this much
/// learning, and the write (a few MB per 100,000 hosts) stays rare.
const BASELINES_EVERY: Duration = Duration::from_secs(300);
/// Batches in flight between the source and the engine: live, room for bursts (a collector
/// that finds it full blocks, and the kernel counts the drops); a capture only needs to stay a
/// step ahead of the engine, and each batch holds 8,192 records.
const LIVE_BATCHES: usize = 256;
const REPLAY_BATCHES: usize = 4;

/// Live telemetry or a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Live,
    Replay,
}

/// A started pipeline.
pub struct Pipeline {
    mode: Mode,
    config: Config,
    stop: Arc<AtomicBool>,
    engine: Option<JoinHandle<EngineEnd>>,
    actions: Option<ActionsHandle>,
    bus: Option<Bus>,
    status: Arc<StatusBoard>,
    local_addrs: Vec<SocketAddr>,
    control_socket: Option<PathBuf>,
    http: Option<HttpServer>,
    hunt: Option<crate::hunt::HuntWorker>,
    hunt_view: Arc<crate::hunt::HuntView>,
    /// Replay: hunting's lines, held until the attack records are out. Taken before the bus
    /// closes: a bus still shared cannot wait for its subscribers.
    hunt_out: Option<crate::hunt::HuntOut>,
}

/// What the engine thread hands back at the end.
struct EngineEnd {
    engine: Engines,
    source: SourceReport,
    records: u64,
    attacks_started: u64,
}

/// What a finished pipeline did.
#[derive(Debug)]
pub struct Report {
    pub records: u64,
    pub attacks_started: u64,
    pub engine: EngineStats,
    pub collector: CollectorStats,
    /// Captures cut off mid-packet (replay).
    pub warnings: Vec<String>,
    /// Why the input could not be read to its end (replay).
    pub source_error: Option<anyhow::Error>,
    /// Subscribers that failed, with their first error (a closed stdout, a full disk).
    pub subscriber_errors: Vec<(String, anyhow::Error)>,
}

impl Pipeline {
    /// The daemon: the configured collectors, mitigators, store, control socket, events file and
    /// notifiers. `extra` subscribers attach to the bus beside them.
    pub fn daemon(config: Config, extra: Vec<Box<dyn Subscriber>>) -> Result<Pipeline> {
        let events_file = EventsFile::open(&config.events.file)?;
        let store = Store::open(&config.state.dir)?;
        let engine = resume_baselines(config.detection_config(), &config.state.dir)?;
        let planner = Planner::new(config.mitigation.clone(), config.mitigation_scope())
            .map_err(|e| anyhow!("{e}"))?;
        let outputs = crate::act::build(&config)?;
        for kind in config.unmitigated_kinds() {
            log(format!(
                "warning: {kind} mitigation is enabled but no mitigator carries {kind} rules \
                 (configure [bgp] peers with its families, [exabgp] or [nftables]): its rules will \
                 be recorded as failed, not announced"
            ));
        }
        let status = Arc::new(StatusBoard::default());
        let hunt_view = Arc::new(crate::hunt::HuntView::default());
        let mut subscribers: Vec<Box<dyn Subscriber>> = vec![
            Box::new(events_file),
            Box::new(Notify::new(outputs.notifiers)),
        ];
        subscribers.extend(extra);
        let (calls_tx, calls) = crossbeam_channel::bounded(64);
        let history = if config.history.enabled {
            let path = config.history.path_in(&config.state.dir);
            let counts = Arc::new(crate::serve::metrics::StoreCounts::default());
            let recorder =
                crate::history::Recorder::open(&path, config.history.clone(), counts.clone())?;
            subscribers.push(Box::new(recorder));
            Some((
                Arc::new(crate::history::query::History::new(
                    &path,
                    config.history.per_second_s,
                )),
                counts,
            ))
        } else {
            None
        };
        let http = if config.http.enabled {
            let counters = Arc::new(crate::serve::metrics::Counters::default());
            subscribers.push(Box::new(crate::serve::metrics::CountOnBus(
                counters.clone(),
            )));
            Some(HttpServer::start(
                &config.http,
                HttpContext {
                    board: status.clone(),
                    calls: calls_tx.clone(),
                    counters,
                    history: history.clone(),
                    config: crate::serve::redacted_config(&config),
                    limits: floodwall_detect::effective_limits(&config.detection_config()),
                    hunt: hunt_view.clone(),
                    c2_routes: outputs.c2_routes.clone(),
                },
            )?)
        } else {
            None
        };
        let control_socket = control::serve(&config.state.dir, calls_tx, status.clone())?;
        let actions = Actions {
            planner,
            clock: PlanClock::Wall,
            store: Some(store),
            mitigators: outputs.mitigators,
            status: Some(status.clone()),
        };
        let source = Box::new(crate::sources::Udp(config.collector.udp_source()));
        let mut pipeline = Pipeline::start(
            Mode::Live,
            config,
            engine,
            source,
            actions,
            calls,
            subscribers,
            status,
            hunt_view,
        )?;
        pipeline.control_socket = Some(control_socket);
        pipeline.http = http;
        Ok(pipeline)
    }

    /// A replay: the captures through the engine and the plan (dry run, on telemetry time),
    /// records to `output`. Nothing is announced, saved or listened on.
    pub fn replay(
        mut config: Config,
        source: Box<dyn Source>,
        output: Box<dyn Subscriber>,
    ) -> Result<Pipeline> {
        let (engine, _) = Engines::new(config.detection_config(), None)?;
        // What the configured mitigation would do: a replay never announces.
        config.force_dry_run();
        let planner = Planner::new(config.mitigation.clone(), config.mitigation_scope())
            .map_err(|e| anyhow!("{e}"))?;
        let actions = Actions {
            planner,
            clock: PlanClock::Telemetry,
            store: None,
            mitigators: Vec::new(),
            status: None,
        };
        let status = Arc::new(StatusBoard::default());
        Pipeline::start(
            Mode::Replay,
            config,
            engine,
            source,
            actions,
            crossbeam_channel::never(),
            vec![output],
            status,
            Arc::new(crate::hunt::HuntView::default()),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn start(
        mode: Mode,
        config: Config,
        engine: Engines,
        source: Box<dyn Source>,
        actions: Actions,
        calls: crossbeam_channel::Receiver<control::Call>,
        subscribers: Vec<Box<dyn Subscriber>>,
        status: Arc<StatusBoard>,
        hunt_view: Arc<crate::hunt::HuntView>,
    ) -> Result<Pipeline> {
        let mut bus = BusBuilder::new(match mode {
            Mode::Live => Backpressure::Drop,
            Mode::Replay => Backpressure::Wait,
        });
        let detected = bus.queue("actions", &[Topic::Detected]);
        for subscriber in subscribers {
            bus.subscribe(subscriber);
        }
        let bus = bus.start()?;
        let actions = actions.spawn(detected, calls, bus.clone())?;

        let batches = match mode {
            Mode::Live => LIVE_BATCHES,
            Mode::Replay => REPLAY_BATCHES,
        };
        let (tx, rx) = crossbeam_channel::bounded(batches);
        let (recycle_tx, recycle_rx) = crossbeam_channel::bounded(batches);
        // Sharded, the sources route each batch to the shards on their own threads.
        let output = BatchOutput::new(tx, engine.router().map(std::sync::Arc::new));
        let source = source.start(output, recycle_rx)?;
        let local_addrs = source.local_addrs();
        let stop = Arc::new(AtomicBool::new(false));
        // The campaigns: live, on the hunt thread (comparing with every stored pool takes
        // milliseconds); in a replay, on the engine thread, so that attack lines carry their
        // campaign deterministically.
        let mut campaigns = config.hunt.enabled.then(|| {
            crate::hunt::CampaignBook::open(
                &config,
                (mode == Mode::Live).then_some(config.state.dir.as_path()),
                hunt_view.clone(),
            )
        });
        let mut campaign_tags = None;
        let hunt_campaigns = match (mode, campaigns.take()) {
            (Mode::Live, Some(book)) => {
                let tags = Arc::new(crate::hunt::CampaignTags::default());
                campaign_tags = Some(tags.clone());
                Some((book, tags))
            }
            (_, book) => {
                campaigns = book;
                None
            }
        };
        let hunt_out = crate::hunt::HuntOut::new(bus.clone(), mode == Mode::Replay);
        let (hunt_link, hunt) = if config.hunt.enabled {
            let (link, worker) = crate::hunt::start(
                &config,
                mode == Mode::Replay,
                hunt_out.clone(),
                recycle_tx.clone(),
                hunt_view.clone(),
                hunt_campaigns,
            )?;
            (Some(link), Some(worker))
        } else {
            (None, None)
        };
        let engine_thread = EngineThread {
            mode,
            engine,
            source: Some(source),
            batches: rx,
            recycle: recycle_tx,
            bus: bus.clone(),
            status: status.clone(),
            stop: stop.clone(),
            state_dir: config.state.dir.clone(),
            hunt: hunt_link,
            campaigns,
            campaign_tags,
            hunt_out: hunt_out.clone(),
        };
        let engine = std::thread::Builder::new()
            .name("engine".into())
            .spawn(move || engine_thread.run())?;
        Ok(Pipeline {
            mode,
            config,
            stop,
            engine: Some(engine),
            actions: Some(actions),
            bus: Some(bus),
            status,
            local_addrs,
            control_socket: None,
            http: None,
            hunt,
            hunt_view,
            hunt_out: Some(hunt_out),
        })
    }

    /// What hunting found so far (infected hosts, campaigns), as of the last second.
    pub fn hunt(&self) -> Arc<crate::hunt::HuntView> {
        self.hunt_view.clone()
    }

    /// Where the collectors listen.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Where the HTTP API, metrics and dashboard answer (`http://127.0.0.1:9188`), if on.
    pub fn http_url(&self) -> Option<String> {
        self.http.as_ref().map(HttpServer::url)
    }

    /// The latest status snapshot, refreshed every second.
    pub fn status(&self) -> Arc<StatusBoard> {
        self.status.clone()
    }

    /// Setting it stops the pipeline (signal handlers set it).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Runs to the end — the stop flag set (daemon) or the input read (replay) — then stops
    /// the source, lets the actions handle every event, withdraws (or keeps) the rules, drains
    /// the subscribers and saves the baselines.
    pub fn wait(mut self) -> Result<Report> {
        let mut end = self
            .engine
            .take()
            .map(|t| t.join())
            .ok_or_else(|| anyhow!("the pipeline was already waited for"))?
            .map_err(|_| anyhow!("the engine thread panicked"))?;
        // The engine dropped its end: the hunt reads what it was handed and publishes the rest.
        if let Some(hunt) = self.hunt.take() {
            hunt.join();
        }
        // Before the actions: a rule request arriving now would wait for nobody.
        if let Some(http) = self.http.take() {
            http.stop();
        }
        let actions = self.actions.take().map(ActionsHandle::stop);
        // A replay's hunting lines come after its attack records, in time order.
        if let Some(out) = self.hunt_out.take() {
            out.release();
        }
        if let Some(path) = &self.control_socket {
            let _ = std::fs::remove_file(path);
        }
        let subscriber_errors = self.bus.take().map(Bus::close).unwrap_or_default();
        actions.transpose()?;
        if self.mode == Mode::Live {
            let saved = end.engine.baselines();
            match crate::baselines::save(&self.config.state.dir, &saved, unix_ms() / 1000) {
                Ok(()) => log(format!(
                    "saved the baselines of {} hosts and {} prefixes",
                    saved.hosts.len(),
                    saved.prefixes.len()
                )),
                Err(e) => log(format!(
                    "cannot save the learnt baselines in {}: {e}",
                    self.config.state.dir.display()
                )),
            }
        }
        let engine = end.engine.stats();
        if self.mode == Mode::Live {
            // Attacks still active are not declared over: the traffic did not stop, we did.
            // The totals since start are what benchmarks and operators compare with what was
            // sent.
            log(format!(
                "stopped; {} records, {} were active",
                engine.records,
                counters(&end.source.stats, &engine)
            ));
        }
        Ok(Report {
            records: end.records,
            attacks_started: end.attacks_started,
            engine,
            collector: end.source.stats,
            warnings: end.source.warnings,
            source_error: end.source.error,
            subscriber_errors,
        })
    }
}

/// The engine's thread: batches in, events onto the bus, the clock, the status, the baselines.
struct EngineThread {
    mode: Mode,
    engine: Engines,
    /// Taken when it stops.
    source: Option<Box<dyn RunningSource>>,
    batches: crossbeam_channel::Receiver<RecordBatch>,
    recycle: crossbeam_channel::Sender<RecordBatch>,
    bus: Bus,
    status: Arc<StatusBoard>,
    stop: Arc<AtomicBool>,
    state_dir: PathBuf,
    hunt: Option<crate::hunt::HuntLink>,
    /// Replay: the campaigns, kept here.
    campaigns: Option<crate::hunt::CampaignBook>,
    /// Live: the campaigns the hunt thread found for active attacks.
    campaign_tags: Option<Arc<crate::hunt::CampaignTags>>,
    hunt_out: crate::hunt::HuntOut,
}

impl EngineThread {
    /// A batch the engine has read: to the hunt, which recycles it, or back to the source.
    fn done_with(&mut self, mut batch: RecordBatch) {
        match &mut self.hunt {
            Some(hunt) => hunt.records(batch),
            None => {
                batch.records.clear();
                let _ = self.recycle.try_send(batch);
            }
        }
    }

    fn run(mut self) -> EngineEnd {
        let live = self.mode == Mode::Live;
        let started_ms = unix_ms();
        let mut events = Vec::new();
        let mut active = ActiveAttacks::default();
        let mut records = 0u64;
        let mut attacks_started = 0u64;
        let mut input_ended = false;
        let mut last_tick = Instant::now();
        let mut last_stats = Instant::now();
        let mut last_status = Instant::now();
        let mut records_since = 0u64;
        let mut last_baselines = Instant::now();
        let mut baselines_writer: Option<JoinHandle<()>> = None;
        while !self.stop.load(Ordering::Relaxed) {
            match self.batches.recv_timeout(TICK) {
                Ok(batch) => {
                    records += batch.records.len() as u64;
                    records_since += batch.records.len() as u64;
                    self.engine
                        .ingest_routed(&batch.records, &batch.routes, &mut events);
                    self.done_with(batch);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    input_ended = true;
                    break;
                }
            }
            if live && last_tick.elapsed() >= TICK {
                self.engine
                    .tick(unix_ms().saturating_sub(LIVE_LATENESS_MS), &mut events);
                last_tick = Instant::now();
            }
            attacks_started += self.publish(&mut events, &mut active);
            if !live {
                continue;
            }
            if let Some(campaigns) = &mut self.campaigns {
                campaigns.save(false);
            }
            if last_baselines.elapsed() >= BASELINES_EVERY
                && baselines_writer.as_ref().is_none_or(|w| w.is_finished())
            {
                // The snapshot is taken here (a copy, milliseconds); the disk is the writer's.
                let (dir, saved) = (self.state_dir.clone(), self.engine.baselines());
                baselines_writer = Some(std::thread::spawn(move || {
                    if let Err(e) = crate::baselines::save(&dir, &saved, unix_ms() / 1000) {
                        log(format!(
                            "cannot save the learnt baselines in {}: {e}",
                            dir.display()
                        ));
                    }
                }));
                last_baselines = Instant::now();
            }
            if last_status.elapsed() >= STATUS_EVERY {
                self.refresh_status(started_ms, &active);
                last_status = Instant::now();
            }
            if last_stats.elapsed() >= STATS_EVERY {
                log(format!(
                    "{:.0} records/s; {} active",
                    records_since as f64 / last_stats.elapsed().as_secs_f64(),
                    counters(&self.source_stats(), &self.engine.stats())
                ));
                records_since = 0;
                last_stats = Instant::now();
            }
        }
        if live {
            log("stopping");
        }
        let source = match self.source.take() {
            Some(source) => source.stop(),
            None => SourceReport::default(),
        };
        // What the source handed over before it stopped still counts.
        while let Ok(batch) = self.batches.try_recv() {
            records += batch.records.len() as u64;
            self.engine
                .ingest_routed(&batch.records, &batch.routes, &mut events);
            self.done_with(batch);
        }
        // A capture read to its end is over; live traffic is not (we stopped, it did not).
        if input_ended && !live && source.error.is_none() {
            self.engine.finish(&mut events);
        }
        attacks_started += self.publish(&mut events, &mut active);
        if let Some(hunt) = self.hunt.take() {
            hunt.close();
        }
        if let Some(campaigns) = &mut self.campaigns {
            campaigns.save(true);
        }
        if let Some(writer) = baselines_writer {
            let _ = writer.join();
        }
        EngineEnd {
            engine: self.engine,
            source,
            records,
            attacks_started,
        }
    }

    /// Puts the events on the bus; returns how many attacks started.
    fn publish(&mut self, events: &mut Vec<AttackEvent>, active: &mut ActiveAttacks) -> u64 {
        if events.is_empty() {
            return 0;
        }
        if let Some(campaigns) = &mut self.campaigns {
            campaigns.follow(events, &self.hunt_out, None);
        }
        if let Some(tags) = &self.campaign_tags {
            tags.fill(events);
        }
        active.follow(events);
        let started = events
            .iter()
            .filter(|e| e.event == EventKind::AttackStarted)
            .count() as u64;
        let events = Arc::new(std::mem::take(events));
        if let Some(hunt) = &mut self.hunt {
            hunt.attacks(events.clone());
        }
        self.bus.publish(Message::Detected(events));
        started
    }

    fn source_stats(&self) -> CollectorStats {
        self.source.as_ref().map(|s| s.stats()).unwrap_or_default()
    }

    fn refresh_status(&self, started_ms: u64, active: &ActiveAttacks) {
        let status = Arc::new(Status {
            at_ms: unix_ms(),
            started_ms,
            collector: CollectorStatus::from_stats(&self.source_stats()),
            engine: self.engine.stats(),
            shard_records: self.engine.shard_records(),
            traffic: self.engine.hostgroup_rates(),
            top: self.engine.top_targets(),
            attacks: active.list(),
            mitigation: (*self.status.mitigation()).clone(),
            bus: self.bus.stats(),
        });
        self.status.publish(status.clone());
        if self.bus.wants(Topic::Status) {
            self.bus.publish(Message::Status(status));
        }
    }
}

/// The engines, with the baselines saved in state directory `dir` by the previous run resumed,
/// if any (whatever number of shards saved them); a file that cannot be used is reported and
/// the engines learn again.
fn resume_baselines(
    config: floodwall_detect::DetectConfig,
    dir: &std::path::Path,
) -> Result<Engines> {
    let saved: Option<(Baselines, u64)> = match crate::baselines::load(dir) {
        Ok(None) => {
            log("no saved baselines: learning from scratch");
            None
        }
        Ok(Some(saved)) => Some(saved),
        Err(e) => {
            log(format!("{e}; learning baselines again"));
            None
        }
    };
    let (engines, (hosts, prefixes)) = Engines::new(config, saved.as_ref().map(|(b, _)| b))?;
    if let Some((_, at)) = saved {
        log(format!(
            "resumed the baselines of {hosts} hosts and {prefixes} prefixes saved {} s ago",
            (unix_ms() / 1000).saturating_sub(at)
        ));
    }
    Ok(engines)
}

/// `N datagrams, N decode errors, N kernel drops, N not allowed, N implausible records (…),
/// N exporters evicted; N hosts tracked, N attacks`: the collector's and the engine's counters,
/// as the periodic and the final log lines show them.
pub fn counters(collector: &CollectorStats, engine: &EngineStats) -> String {
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
