//! Hunting in the daemon: the `hunt` thread, fed by the engine thread with every record batch
//! (after the engine is done with it: no copy) and every attack event, publishing
//! `infected_host` lines on the bus; the campaigns kept by the engine thread; the C2 feeds read
//! from files and reloaded, the RPZ zone written, C2 null routes.
//!
//! The hunt thread runs beside the engine on its own core. Live, a batch that finds its queue
//! full goes straight back to the source and is counted (`records_skipped`): hunting may miss
//! records under overload, detection never waits for it. A replay waits and misses nothing.

pub mod feeds;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use floodwall_detect::AttackEvent;
use floodwall_hunt::campaign::{CampaignSummary, Campaigns};
use floodwall_hunt::hosts::{HuntStats, Hunter};
use floodwall_hunt::{HuntEvent, InfectedHost};
use serde::Serialize;

use crate::bus::{Bus, Message};
use crate::config::Config;
use crate::logging::log;
use crate::sources::RecordBatch;

use self::feeds::FeedWatcher;

/// Batches queued for the hunt thread (live); more are skipped.
const QUEUE: usize = 64;
/// How often listed hosts' grown evidence goes to the store (live).
const UPDATED_EVERY: Duration = Duration::from_secs(60);
const VIEW_EVERY: Duration = Duration::from_secs(1);
/// The campaigns file in the state directory.
pub const CAMPAIGNS_FILE: &str = "campaigns.bin";

/// What the API and the status read: the hunt as of the last second.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct HuntSnapshot {
    #[schemars(with = "serde_json::Value")]
    pub stats: HuntStats,
    /// Batches the hunt thread could not take in time (live overload).
    pub records_skipped: u64,
    /// Entries and domains of the C2 feeds loaded.
    pub c2_entries: usize,
    pub c2_domains: usize,
    /// C2 null routes of the current list that passed the guard rails, and those refused.
    pub c2_routes: u64,
    pub c2_routes_refused: u64,
    pub infected: Vec<InfectedHost>,
    pub campaigns: Vec<CampaignSummary>,
}

/// Where hunting's lines go: the bus at once (live), or held until the replay's attack
/// records are all out (the pipeline publishes them then, by time), so that a replay prints
/// the same lines in the same order every time, whatever the threads' pace.
#[derive(Clone)]
pub struct HuntOut {
    bus: Bus,
    held: Option<Arc<Mutex<Vec<HuntEvent>>>>,
}

impl HuntOut {
    pub fn new(bus: Bus, hold: bool) -> HuntOut {
        HuntOut {
            bus,
            held: hold.then(Default::default),
        }
    }

    fn send(&self, event: HuntEvent) {
        match &self.held {
            Some(held) => held.lock().unwrap_or_else(|e| e.into_inner()).push(event),
            None => self.bus.publish(Message::Hunt(Arc::new(event))),
        }
    }

    /// Publishes what was held, by time.
    pub fn release(&self) {
        let Some(held) = &self.held else {
            return;
        };
        let mut events = std::mem::take(&mut *held.lock().unwrap_or_else(|e| e.into_inner()));
        // Two threads hold lines here (the hunt's, the engine's campaigns): equal times are
        // ordered by the lines themselves.
        events.sort_by_cached_key(|e| (e.ts(), serde_json::to_string(e).unwrap_or_default()));
        for event in events {
            self.bus.publish(Message::Hunt(Arc::new(event)));
        }
    }
}

/// Shared between the hunt thread, the engine thread (campaigns) and the readers.
#[derive(Debug, Default)]
pub struct HuntView {
    inner: Mutex<HuntSnapshot>,
}

impl HuntView {
    pub fn snapshot(&self) -> HuntSnapshot {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update(&self, f: impl FnOnce(&mut HuntSnapshot)) {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

enum Input {
    Records(RecordBatch),
    Attacks(Arc<Vec<AttackEvent>>),
}

/// Which campaign each active attack is in, as the hunt thread found (live): the engine thread
/// reads it to fill in the `campaign` of the attack's next events.
#[derive(Debug, Default)]
pub struct CampaignTags(Mutex<std::collections::HashMap<String, String>>);

impl CampaignTags {
    /// Fills in the campaign of events whose attack is in one.
    pub fn fill(&self, events: &mut [AttackEvent]) {
        let tags = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if tags.is_empty() {
            return;
        }
        for e in events {
            if let Some(c) = tags.get(&e.attack_id) {
                e.campaign = Some(c.clone());
            }
        }
    }

    fn follow(&self, events: &[AttackEvent], campaigns: &Campaigns) {
        let mut tags = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for e in events {
            if e.event == floodwall_detect::EventKind::AttackEnded {
                tags.remove(&e.attack_id);
            } else if let Some(c) = campaigns.campaign_of(&e.attack_id) {
                tags.insert(e.attack_id.clone(), c.to_string());
            }
        }
    }

    fn formed(&self, attacks: &[String], campaigns: &Campaigns) {
        let mut tags = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for id in attacks {
            if let Some(c) = campaigns.campaign_of(id) {
                tags.insert(id.clone(), c.to_string());
            }
        }
    }
}

/// The engine thread's end of the hunt: hands batches and events over.
pub struct HuntLink {
    tx: Sender<Input>,
    recycle: Sender<RecordBatch>,
    wait: bool,
    skipped: Arc<AtomicU64>,
    /// Live, the hunt thread keeps the campaigns: incoming attacks' events go there too.
    campaigns: bool,
    /// Live, events that found the queue full, sent before anything else once it has room:
    /// the engine thread never waits for the hunt, and events are not lost to a burst.
    pending: std::collections::VecDeque<Arc<Vec<AttackEvent>>>,
}

/// Event batches kept for a hunt thread that cannot keep up; beyond, the oldest are dropped.
const PENDING_EVENTS: usize = 4_096;

impl HuntLink {
    /// Hands a batch the engine has read to the hunt thread, which recycles it; live, a full
    /// queue recycles it at once (counted).
    pub fn records(&mut self, batch: RecordBatch) {
        self.flush_pending();
        if self.wait {
            if let Err(e) = self.tx.send(Input::Records(batch)) {
                self.give_back(e.0);
            }
            return;
        }
        match self.tx.try_send(Input::Records(batch)) {
            Ok(()) => {}
            Err(TrySendError::Full(input)) | Err(TrySendError::Disconnected(input)) => {
                self.skipped.fetch_add(1, Ordering::Relaxed);
                self.give_back(input);
            }
        }
    }

    fn give_back(&self, input: Input) {
        if let Input::Records(mut batch) = input {
            batch.records.clear();
            let _ = self.recycle.try_send(batch);
        }
    }

    /// The engine's events: outgoing attacks (infected hosts) and, live, attacks with their
    /// sources (campaigns).
    pub fn attacks(&mut self, events: Arc<Vec<AttackEvent>>) {
        if !events.iter().any(|e| {
            e.direction == floodwall_detect::Direction::Outgoing
                || (self.campaigns && e.source_sketch.is_some())
        }) {
            return;
        }
        if self.wait {
            let _ = self.tx.send(Input::Attacks(events));
            return;
        }
        if self.pending.len() == PENDING_EVENTS {
            self.pending.pop_front();
            self.skipped.fetch_add(1, Ordering::Relaxed);
        }
        self.pending.push_back(events);
        self.flush_pending();
    }

    /// The engine is done: the events kept back go too (waiting for room), then the hunt
    /// thread sees its input end.
    pub fn close(mut self) {
        while let Some(events) = self.pending.pop_front() {
            if self.tx.send(Input::Attacks(events)).is_err() {
                return;
            }
        }
    }

    /// Sends the events kept back, in order, while the queue has room.
    fn flush_pending(&mut self) {
        while let Some(events) = self.pending.pop_front() {
            match self.tx.try_send(Input::Attacks(events)) {
                Ok(()) => {}
                Err(TrySendError::Full(Input::Attacks(events))) => {
                    self.pending.push_front(events);
                    return;
                }
                Err(_) => return,
            }
        }
    }
}

/// The running hunt thread.
pub struct HuntWorker {
    thread: JoinHandle<()>,
}

impl HuntWorker {
    /// Waits for the thread to finish: the engine dropped its link (end of input or stop).
    pub fn join(self) {
        if self.thread.join().is_err() {
            log("the hunt thread panicked");
        }
    }
}

/// Starts the hunt thread. `wait`: replay (no record is skipped). `campaigns`: the thread
/// keeps them (live: comparing an attack with 100,000 stored pools takes milliseconds, which
/// the engine thread must not wait for), tagging attacks in `tags`.
pub fn start(
    config: &Config,
    wait: bool,
    out: HuntOut,
    recycle: Sender<RecordBatch>,
    view: Arc<HuntView>,
    campaigns: Option<(CampaignBook, Arc<CampaignTags>)>,
) -> Result<(HuntLink, HuntWorker)> {
    // A replay matches the feeds but writes no zone: the running daemon owns it.
    let mut hunt_config = config.hunt.clone();
    if wait {
        hunt_config.rpz_file = None;
    }
    let feeds = if hunt_config.c2_feeds.is_empty() && hunt_config.rpz_file.is_none() {
        None
    } else {
        Some(FeedWatcher::start(&hunt_config, &config.state.dir)?)
    };
    let hunter = Hunter::new(&config.hunt, &config.detection_config());
    let (tx, rx) = crossbeam_channel::bounded(if wait { 4 } else { QUEUE });
    let skipped = Arc::new(AtomicU64::new(0));
    let keeps_campaigns = campaigns.is_some();
    let thread = HuntThread {
        campaigns,
        hunter,
        rx,
        recycle: recycle.clone(),
        out,
        feeds,
        generation: None,
        view,
        skipped: skipped.clone(),
        live: !wait,
    };
    let thread = std::thread::Builder::new()
        .name("hunt".into())
        .spawn(move || thread.run())?;
    Ok((
        HuntLink {
            tx,
            recycle,
            wait,
            skipped,
            campaigns: keeps_campaigns,
            pending: Default::default(),
        },
        HuntWorker { thread },
    ))
}

struct HuntThread {
    campaigns: Option<(CampaignBook, Arc<CampaignTags>)>,
    hunter: Hunter,
    rx: Receiver<Input>,
    recycle: Sender<RecordBatch>,
    out: HuntOut,
    feeds: Option<FeedWatcher>,
    generation: Option<u64>,
    view: Arc<HuntView>,
    skipped: Arc<AtomicU64>,
    live: bool,
}

impl HuntThread {
    fn run(mut self) {
        self.follow_feeds();
        let mut last_view = Instant::now();
        let mut last_updated = Instant::now();
        loop {
            match self.rx.recv_timeout(Duration::from_millis(200)) {
                Ok(Input::Records(mut batch)) => {
                    self.hunter.observe(&batch.records);
                    batch.records.clear();
                    let _ = self.recycle.try_send(batch);
                }
                Ok(Input::Attacks(events)) => {
                    for e in events.iter() {
                        self.hunter.attack(e);
                    }
                    if let Some((book, tags)) = &mut self.campaigns {
                        let mut copy = (*events).clone();
                        book.follow(&mut copy, &self.out, Some(tags));
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.hunter.tick(self.hunter.now_ms());
            self.publish();
            if self.live && last_view.elapsed() >= VIEW_EVERY {
                self.follow_feeds();
                self.refresh_view();
                last_view = Instant::now();
            }
            if let Some((book, _)) = &mut self.campaigns {
                book.save(false);
            }
            if self.live && last_updated.elapsed() >= UPDATED_EVERY {
                self.publish_updated();
                last_updated = Instant::now();
            }
        }
        self.hunter.tick(self.hunter.now_ms());
        self.publish();
        self.publish_updated();
        self.refresh_view();
        if let Some((book, _)) = &mut self.campaigns {
            book.save(true);
        }
        if let Some(feeds) = self.feeds.take() {
            feeds.stop();
        }
    }

    /// Takes a reloaded C2 list.
    fn follow_feeds(&mut self) {
        let Some(feeds) = &self.feeds else {
            return;
        };
        let (generation, list) = feeds.current();
        if self.generation != Some(generation) {
            self.generation = Some(generation);
            let domains = list.domains().count();
            let entries = list.len();
            self.hunter.set_c2(list);
            self.view.update(|v| {
                v.c2_entries = entries;
                v.c2_domains = domains;
            });
        }
    }

    fn publish(&mut self) {
        for event in self.hunter.take_events() {
            self.out.send(event);
        }
    }

    fn publish_updated(&mut self) {
        let updated = self.hunter.take_updated();
        if !updated.is_empty() {
            self.out.bus.publish(Message::Infected(Arc::new(updated)));
        }
    }

    fn refresh_view(&self) {
        let (stats, infected) = (self.hunter.stats(), self.hunter.listed());
        let skipped = self.skipped.load(Ordering::Relaxed);
        self.view.update(|v| {
            v.stats = stats;
            v.infected = infected;
            v.records_skipped = skipped;
        });
    }
}

/// The campaigns, kept by the engine thread: each attack event passes through them before it
/// is published, so that it carries its campaign.
pub struct CampaignBook {
    campaigns: Campaigns,
    /// Live: where they are saved; a replay keeps them in memory only.
    path: Option<PathBuf>,
    changed: bool,
    last_save: Instant,
    view: Arc<HuntView>,
}

/// Saved at most this often (and at the end).
const SAVE_EVERY: Duration = Duration::from_secs(10);

impl CampaignBook {
    /// The campaigns saved in `state_dir` (live), or none (replay, or `None`).
    pub fn open(config: &Config, state_dir: Option<&Path>, view: Arc<HuntView>) -> CampaignBook {
        let (overlap, max) = (config.hunt.campaign_overlap, config.hunt.max_campaigns);
        let path = state_dir.map(|d| d.join(CAMPAIGNS_FILE));
        let campaigns = match &path {
            None => Campaigns::new(overlap, max),
            Some(path) => load(path, overlap, max),
        };
        let book = CampaignBook {
            campaigns,
            path,
            changed: false,
            last_save: Instant::now(),
            view,
        };
        book.refresh_view();
        book
    }

    /// Follows the events (filling in their campaign); campaign changes go on the bus, and
    /// into `tags` for the engine thread when it does not keep the campaigns itself.
    pub fn follow(
        &mut self,
        events: &mut [AttackEvent],
        out: &HuntOut,
        tags: Option<&CampaignTags>,
    ) {
        let mut grew = false;
        for e in events.iter_mut() {
            if e.source_sketch.is_none() {
                continue;
            }
            self.changed = true;
            if let Some(change) = self.campaigns.observe(e) {
                grew = true;
                if let Some(tags) = tags {
                    tags.formed(&change.attacks, &self.campaigns);
                }
                out.send(HuntEvent::Campaign {
                    ts: e.ts,
                    campaign: change,
                });
            }
        }
        if let Some(tags) = tags {
            tags.follow(events, &self.campaigns);
        }
        if grew {
            self.refresh_view();
        }
    }

    fn refresh_view(&self) {
        let list = self.campaigns.list();
        self.view.update(|v| v.campaigns = list);
    }

    /// Saves the campaigns when they changed and the last save is old enough (`force`: now).
    pub fn save(&mut self, force: bool) {
        let Some(path) = &self.path else {
            return;
        };
        if !self.changed || (!force && self.last_save.elapsed() < SAVE_EVERY) {
            return;
        }
        self.changed = false;
        self.last_save = Instant::now();
        if let Err(e) = write_atomically(path, &self.campaigns.encode()) {
            log(format!(
                "cannot save the campaigns in {}: {e}",
                path.display()
            ));
        }
    }
}

/// The saved campaigns, or none (said why) when the file cannot be used: moved aside.
fn load(path: &Path, overlap: f64, max: usize) -> Campaigns {
    let bytes = match crate::state_file::read(path) {
        Ok(None) => return Campaigns::new(overlap, max),
        Ok(Some(bytes)) => bytes,
        Err(e) => {
            log(format!("{e}; starting without saved campaigns"));
            return Campaigns::new(overlap, max);
        }
    };
    match Campaigns::decode(&bytes, overlap, max) {
        Ok(c) => {
            log(format!("resumed {} campaigns", c.list().len()));
            c
        }
        Err(e) => {
            let aside = path.with_extension("bin.unreadable");
            log(format!(
                "{}; starting without saved campaigns",
                crate::state_file::move_aside(
                    path,
                    &aside,
                    &format!("{} is unusable ({e})", path.display())
                )
            ));
            Campaigns::new(overlap, max)
        }
    }
}

/// Reads the campaigns saved in `state_dir`, for `floodwall campaigns`.
pub fn saved_campaigns(state_dir: &Path) -> Result<Vec<CampaignSummary>> {
    let path = state_dir.join(CAMPAIGNS_FILE);
    match crate::state_file::read(&path)? {
        None => Ok(Vec::new()),
        Some(bytes) => Ok(Campaigns::decode(&bytes, 1.0, usize::MAX)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            .list()),
    }
}

/// Temp file, fsync, rename: a crash leaves the old file or the new one, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}
