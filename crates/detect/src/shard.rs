//! The engine split by target over shards (threads now, machines later), giving the events one
//! engine would.
//!
//! **The key.** A monitored address belongs to the shard of its [`ShardKey`]: a fixed hash of
//! its prefix (`prefix_length_v4`/`_v6`, the engine's prefix accounting and carpet prefix), so
//! a prefix and all its hosts live on one shard and carpets are judged whole. The key does not
//! depend on the number of shards and is not seeded: the same address has the same key in
//! every process and every release (the tests pin values), so it can name partitions between
//! machines too. [`ShardKey::shard`] maps it onto `n` shards by jump consistent hashing: going
//! from `n` to `n + 1` shards moves only a `1/(n+1)` share of the targets.
//!
//! **Records.** A record goes to the shard of each monitored end (once when both ends are on
//! the same shard) with the sides that shard owns; each shard accounts only those. Records with
//! no monitored end go nowhere: the [`Dispatcher`] counts them, and all records, once.
//!
//! **Time.** One engine closes a bucket when any record crosses the second, and dates early
//! starts at its clock, the latest time seen. So the dispatcher keeps the stream's clock: each
//! record carries the clock the whole stream reached with it, and every shard is told to move
//! its clock where the stream's crossed a second ([`Engine`] closes the same buckets at the
//! same point of the stream on every shard, records or not).
//!
//! **Order.** Events of a round (a batch, a tick, the end) are merged in the order one engine
//! emits them: by the record at which they arose; the closes at a record by bucket, direction
//! and target (as one engine sorts them); the early starts and confirmations of one record
//! starts first, then by direction; at the end, the last close, then the attacks ended.

use floodwall_wire::FlowRecord;
use ipnet::IpNet;

use crate::config::ConfigError;
use crate::engine::{Engine, EngineStats, HostgroupRates, TopTargets};
use crate::event::{AttackEvent, Direction, EventKind};
use crate::networks::NetworkMap;
use crate::partition::{RecordMeta, OWNS_DST, OWNS_SRC};
use crate::{Baselines, DetectConfig};

pub use crate::config::MAX_SHARDS;
pub use crate::partition::{Shard, ShardKey};

/// Where an event goes in a round's merged order (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Order {
    pos: u32,
    /// 0: a close at `pos`; 1: early at record `pos`; 2: an attack ended at the end.
    phase: u8,
    ts: u64,
    kind: u8,
    direction: Direction,
    target: IpNet,
}

impl Order {
    fn close(pos: u32, e: &AttackEvent) -> Order {
        Order {
            pos,
            phase: 0,
            ts: e.ts,
            kind: 0,
            direction: e.direction,
            target: e.target,
        }
    }

    fn early(pos: u32, e: &AttackEvent) -> Order {
        Order {
            pos,
            phase: 1,
            ts: 0,
            kind: u8::from(e.event != EventKind::AttackStarted),
            direction: e.direction,
            target: e.target,
        }
    }

    fn ended(e: &AttackEvent) -> Order {
        Order {
            pos: u32::MAX,
            phase: 2,
            ts: 0,
            kind: 0,
            direction: e.direction,
            target: e.target,
        }
    }
}

/// One shard's part of a round: its records, where the stream's clock crossed a second, and
/// (after [`ShardWork::run`]) its events. Handed to the shard's thread and back whole, so its
/// buffers are reused round after round.
#[derive(Debug, Default)]
pub struct ShardWork {
    records: Vec<FlowRecord>,
    meta: Vec<RecordMeta>,
    /// (position in the batch, time): before the records from that position on, the stream's
    /// clock moved to a new second.
    syncs: Vec<(u32, u64)>,
    finish: bool,
    baselines_wanted: bool,
    events: Vec<AttackEvent>,
    order: Vec<Order>,
    marks: Vec<(u32, u32)>,
    stats: EngineStats,
    rates: Vec<HostgroupRates>,
    top: TopTargets,
    baselines: Option<Baselines>,
}

impl ShardWork {
    /// Records handed to this shard in this round.
    pub fn records(&self) -> usize {
        self.records.len()
    }

    /// Asks for the shard's baselines with this round ([`ShardWork::take_baselines`]).
    pub fn want_baselines(&mut self) {
        self.baselines_wanted = true;
    }

    pub fn take_baselines(&mut self) -> Option<Baselines> {
        self.baselines.take()
    }

    /// The shard's counters after its last round.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// The shard's hostgroup rates of its last complete bucket, after its last round.
    pub fn rates(&self) -> &[HostgroupRates] {
        &self.rates
    }

    /// The shard's busiest targets of its last closed second, after its last round.
    pub fn top(&self) -> &TopTargets {
        &self.top
    }

    /// Runs the round on the shard's engine.
    pub fn run(&mut self, engine: &mut Engine) {
        self.events.clear();
        self.order.clear();
        let mut i = 0;
        for k in 0..self.syncs.len() {
            let (pos, t) = self.syncs[k];
            let j = i + self.meta[i..].partition_point(|m| m.pos < pos);
            self.ingest(engine, i, j);
            i = j;
            let start = self.events.len();
            engine.sync_clock(t, &mut self.events);
            let order = &mut self.order;
            order.extend(self.events[start..].iter().map(|e| Order::close(pos, e)));
        }
        self.ingest(engine, i, self.records.len());
        if self.finish {
            let start = self.events.len();
            let ended = engine.finish(&mut self.events);
            let order = &mut self.order;
            order.extend(
                self.events[start..ended]
                    .iter()
                    .map(|e| Order::close(u32::MAX, e)),
            );
            order.extend(self.events[ended..].iter().map(Order::ended));
        }
        self.records.clear();
        self.meta.clear();
        self.syncs.clear();
        self.finish = false;
        self.stats = engine.stats();
        self.rates = engine.hostgroup_rates();
        if self.top.at_ms != engine.top_targets().at_ms {
            self.top = engine.top_targets().clone();
        }
        if self.baselines_wanted {
            self.baselines = Some(engine.baselines());
            self.baselines_wanted = false;
        }
    }

    fn ingest(&mut self, engine: &mut Engine, from: usize, to: usize) {
        if from == to {
            return;
        }
        self.marks.clear();
        let start = self.events.len();
        let (records, meta) = (&self.records[from..to], &self.meta[from..to]);
        engine.ingest_shard(records, meta, &mut self.events, &mut self.marks);
        let mut done = start;
        for &(i, end) in &self.marks {
            let pos = meta[i as usize].pos;
            let order = &mut self.order;
            order.extend(
                self.events[done..end as usize]
                    .iter()
                    .map(|e| Order::early(pos, e)),
            );
            done = end as usize;
        }
    }
}

/// The shards of a record's monitored ends: its destination's and its source's,
/// [`Route::NONE`] where that end is not monitored. Computed once per record, by whichever
/// thread has the record first (a collector, in the daemon).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub dst: u16,
    pub src: u16,
}

impl Route {
    /// The end is not monitored: no shard accounts it.
    pub const NONE: u16 = u16::MAX;
}

/// Which shards a record's ends belong to: the monitored networks and the [`ShardKey`] over
/// `count` shards. Cheap to clone and shareable, so every collector thread can route the
/// records it decodes before handing them over, and the engine thread only deals them out.
#[derive(Debug, Clone)]
pub struct Router {
    networks: NetworkMap,
    prefix_length_v4: u8,
    prefix_length_v6: u8,
    count: u32,
}

impl Router {
    pub fn new(config: &DetectConfig, count: u32) -> Result<Router, ConfigError> {
        config.validate()?;
        Shard { index: 0, count }.validate()?;
        let group_nets: Vec<Vec<IpNet>> = config
            .hostgroups
            .iter()
            .map(|g| g.networks.clone())
            .collect();
        Ok(Router {
            networks: NetworkMap::new(&config.networks, &group_nets),
            prefix_length_v4: config.prefix_length_v4,
            prefix_length_v6: config.prefix_length_v6,
            count,
        })
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// The route of one record.
    #[inline]
    pub fn route(&self, r: &FlowRecord) -> Route {
        let shard_of = |addr| {
            let key = ShardKey::of(addr, self.prefix_length_v4, self.prefix_length_v6);
            key.shard(self.count) as u16
        };
        let end = |addr| match self.networks.lookup(addr) {
            Some(_) => shard_of(addr),
            None => Route::NONE,
        };
        Route {
            dst: end(r.dst),
            src: end(r.src),
        }
    }

    /// Replaces `routes` with the routes of `records`, in order.
    pub fn route_all(&self, records: &[FlowRecord], routes: &mut Vec<Route>) {
        routes.clear();
        routes.extend(records.iter().map(|r| self.route(r)));
    }
}

/// Splits batches of records between shards, keeps the stream's clock and counts, and merges
/// the shards' events. See the module docs.
pub struct Dispatcher {
    router: Router,
    started: bool,
    clock_ms: u64,
    records: u64,
    unmonitored: u64,
    merged: Vec<(Order, AttackEvent)>,
}

impl Dispatcher {
    /// A dispatcher over `count` shards, with one [`ShardWork`] for each.
    pub fn new(
        config: &DetectConfig,
        count: u32,
    ) -> Result<(Dispatcher, Vec<ShardWork>), ConfigError> {
        let dispatcher = Dispatcher {
            router: Router::new(config, count)?,
            started: false,
            clock_ms: 0,
            records: 0,
            unmonitored: 0,
            merged: Vec::new(),
        };
        let works = (0..count).map(|_| ShardWork::default()).collect();
        Ok((dispatcher, works))
    }

    pub fn count(&self) -> u32 {
        self.router.count
    }

    /// What collectors route records with: the same as this dispatcher's.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The stream's clock: the latest telemetry time seen (records or ticks).
    pub fn clock_ms(&self) -> u64 {
        self.clock_ms
    }

    fn sync(works: &mut [ShardWork], pos: u32, t: u64) {
        for w in works {
            w.syncs.push((pos, t));
        }
    }

    /// Hands each record of `batch` to the shards of its monitored ends (`works`, one per
    /// shard, as [`Dispatcher::new`] made them).
    pub fn split(&mut self, batch: &[FlowRecord], works: &mut [ShardWork]) {
        self.deal(batch, |router, _, r| router.route(r), works);
    }

    /// [`Dispatcher::split`] of a batch whose records were routed already (by the collector
    /// that decoded them, with a [`Router`] of this dispatcher's configuration and count):
    /// the engine thread then only keeps the clock and deals records out. Routes that do not
    /// match the batch are ignored and the records routed here.
    pub fn split_routed(
        &mut self,
        batch: &[FlowRecord],
        routes: &[Route],
        works: &mut [ShardWork],
    ) {
        if routes.len() != batch.len() {
            self.split(batch, works);
            return;
        }
        self.deal(batch, |_, i, _| routes[i], works);
    }

    #[inline(always)]
    fn deal(
        &mut self,
        batch: &[FlowRecord],
        route: impl Fn(&Router, usize, &FlowRecord) -> Route,
        works: &mut [ShardWork],
    ) {
        let n = self.router.count as usize;
        for (i, r) in batch.iter().enumerate() {
            let pos = i as u32;
            if !self.started {
                self.started = true;
                self.clock_ms = r.time_ms;
                Self::sync(works, pos, r.time_ms);
            } else if r.time_ms > self.clock_ms {
                if r.time_ms / 1000 > self.clock_ms / 1000 {
                    Self::sync(works, pos, r.time_ms);
                }
                self.clock_ms = r.time_ms;
            }
            self.records += 1;
            let Route { dst, src } = route(&self.router, i, r);
            // A route from elsewhere names a shard this dispatcher has, or none.
            let shard = |s: u16| (usize::from(s) < n).then_some(usize::from(s));
            let (d, s) = (shard(dst), shard(src));
            let meta = |owned| RecordMeta {
                clock_ms: self.clock_ms,
                pos,
                owned,
            };
            match (d, s) {
                (None, None) => self.unmonitored += 1,
                (Some(d), Some(s)) if d == s => works[d].push(r, meta(OWNS_DST | OWNS_SRC)),
                (d, s) => {
                    if let Some(d) = d {
                        works[d].push(r, meta(OWNS_DST));
                    }
                    if let Some(s) = s {
                        works[s].push(r, meta(OWNS_SRC));
                    }
                }
            }
        }
    }

    /// Telemetry time moved to `now_ms` without records (see [`Engine::tick`]).
    pub fn tick(&mut self, now_ms: u64, works: &mut [ShardWork]) {
        if self.started && now_ms > self.clock_ms {
            if now_ms / 1000 > self.clock_ms / 1000 {
                Self::sync(works, u32::MAX, now_ms);
            }
            self.clock_ms = now_ms;
        }
    }

    /// End of input (see [`Engine::finish`]).
    pub fn finish(&mut self, works: &mut [ShardWork]) {
        for w in works {
            w.finish = true;
        }
    }

    /// The events of a round, after every shard ran its work, in one engine's order.
    pub fn merge(&mut self, works: &mut [ShardWork], out: &mut Vec<AttackEvent>) {
        let merged = &mut self.merged;
        for w in works.iter_mut() {
            merged.extend(w.order.drain(..).zip(w.events.drain(..)));
        }
        // Stable: ties are one shard's events, in its order.
        merged.sort_by_key(|(order, _)| *order);
        out.extend(merged.drain(..).map(|(_, e)| e));
    }

    /// The shards' counters as one engine's: summed, with records counted once.
    pub fn stats<'a>(&self, shards: impl IntoIterator<Item = &'a EngineStats>) -> EngineStats {
        let mut s = EngineStats::merged(shards);
        s.records = self.records;
        s.records_unmonitored = self.unmonitored;
        s
    }
}

impl ShardWork {
    #[inline]
    fn push(&mut self, r: &FlowRecord, meta: RecordMeta) {
        self.records.push(*r);
        self.meta.push(meta);
    }
}

/// Every shard's baselines as one engine's (each target is on one shard): resumable by any
/// number of shards.
pub fn merge_baselines(parts: impl IntoIterator<Item = Baselines>) -> Baselines {
    let mut out = Baselines::default();
    for part in parts {
        out.hosts.extend(part.hosts);
        out.prefixes.extend(part.prefixes);
    }
    out
}

/// The sharded engine run on one thread, shard after shard: the reference for what threads
/// (or machines) running the same [`ShardWork`]s must produce, and a test's tool.
pub struct ShardedEngine {
    dispatcher: Dispatcher,
    engines: Vec<Engine>,
    works: Vec<ShardWork>,
}

impl ShardedEngine {
    pub fn new(config: DetectConfig, count: u32) -> Result<ShardedEngine, ConfigError> {
        let (dispatcher, works) = Dispatcher::new(&config, count)?;
        let engines = (0..count)
            .map(|index| Engine::new_shard(config.clone(), Shard { index, count }))
            .collect::<Result<_, _>>()?;
        Ok(ShardedEngine {
            dispatcher,
            engines,
            works,
        })
    }

    fn round(&mut self, events: &mut Vec<AttackEvent>) {
        for (engine, work) in self.engines.iter_mut().zip(&mut self.works) {
            work.run(engine);
        }
        self.dispatcher.merge(&mut self.works, events);
    }

    /// See [`Engine::ingest`].
    pub fn ingest(&mut self, records: &[FlowRecord], events: &mut Vec<AttackEvent>) {
        self.dispatcher.split(records, &mut self.works);
        self.round(events);
    }

    /// See [`Engine::ingest`], with the records' routes computed elsewhere (by a [`Router`]
    /// of the same configuration and shard count, as a collector would).
    pub fn ingest_routed(
        &mut self,
        records: &[FlowRecord],
        routes: &[Route],
        events: &mut Vec<AttackEvent>,
    ) {
        self.dispatcher
            .split_routed(records, routes, &mut self.works);
        self.round(events);
    }

    /// See [`Engine::tick`].
    pub fn tick(&mut self, now_ms: u64, events: &mut Vec<AttackEvent>) {
        self.dispatcher.tick(now_ms, &mut self.works);
        self.round(events);
    }

    /// See [`Engine::finish`].
    pub fn finish(&mut self, events: &mut Vec<AttackEvent>) {
        self.dispatcher.finish(&mut self.works);
        self.round(events);
    }

    pub fn stats(&self) -> EngineStats {
        let shards: Vec<EngineStats> = self.engines.iter().map(Engine::stats).collect();
        self.dispatcher.stats(&shards)
    }

    pub fn hostgroup_rates(&self) -> Vec<HostgroupRates> {
        HostgroupRates::merged(self.engines.iter().map(Engine::hostgroup_rates))
    }

    pub fn baselines(&self) -> Baselines {
        merge_baselines(self.engines.iter().map(Engine::baselines))
    }

    /// See [`Engine::restore_baselines`]: each shard takes its own targets.
    pub fn restore_baselines(&mut self, saved: &Baselines) -> (usize, usize) {
        self.engines.iter_mut().fold((0, 0), |(h, p), engine| {
            let (dh, dp) = engine.restore_baselines(saved);
            (h + dh, p + dp)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn key(a: &str) -> ShardKey {
        ShardKey::of(a.parse().unwrap(), 24, 48)
    }

    /// Records routed by a collector's router are dealt out exactly as the dispatcher would
    /// route them itself; routes that do not fit the batch are not trusted.
    #[test]
    fn routed_batches_split_like_unrouted_ones() {
        let config = DetectConfig {
            networks: vec![
                "10.0.0.0/8".parse().unwrap(),
                "2001:db8::/32".parse().unwrap(),
            ],
            ..DetectConfig::default()
        };
        let ips = [
            "10.0.0.1",
            "10.9.8.7",
            "192.0.2.1",
            "2001:db8::5",
            "10.200.0.9",
        ];
        let batch: Vec<FlowRecord> = (0..400u64)
            .map(|i| {
                let mut r = FlowRecord::empty("192.0.2.250".parse().unwrap());
                r.dst = ips[(i % 5) as usize].parse().unwrap();
                r.src = ips[(i * 7 % 5) as usize].parse().unwrap();
                r.time_ms = 1_000_000 + i * 10;
                r.packets = 1;
                r
            })
            .collect();
        for count in [1, 2, 3, 5] {
            let (mut plain, mut plain_works) = Dispatcher::new(&config, count).unwrap();
            plain.split(&batch, &mut plain_works);
            let (mut routed, mut routed_works) = Dispatcher::new(&config, count).unwrap();
            let router = routed.router().clone();
            let mut routes = Vec::new();
            router.route_all(&batch, &mut routes);
            assert!(routes
                .iter()
                .any(|r| r.dst == Route::NONE || r.src == Route::NONE));
            routed.split_routed(&batch, &routes, &mut routed_works);
            let (mut short, mut short_works) = Dispatcher::new(&config, count).unwrap();
            short.split_routed(&batch, &routes[1..], &mut short_works);
            for ((a, b), c) in plain_works.iter().zip(&routed_works).zip(&short_works) {
                assert_eq!((&a.records, &a.meta), (&b.records, &b.meta));
                assert_eq!((&a.records, &a.meta), (&c.records, &c.meta));
                assert_eq!(a.syncs, b.syncs);
            }
            assert_eq!(plain.records, routed.records);
            assert_eq!(plain.unmonitored, routed.unmonitored);
        }
    }

    /// Machines will split work by these values: they must never change.
    #[test]
    fn keys_are_pinned() {
        let pinned = [
            (key("192.0.2.1"), 16_361_707_247_571_313_428, [0, 1, 1]),
            (key("2001:db8::1"), 8_024_162_335_510_618_759, [0, 1, 1]),
        ];
        for (k, value, shards) in pinned {
            assert_eq!(k.0, value, "{k:?}");
            assert_eq!([k.shard(1), k.shard(2), k.shard(3)], shards, "{k:?}");
        }
        assert_eq!(key("192.0.2.1"), key("192.0.2.254"));
        assert_ne!(key("192.0.2.1"), key("192.0.3.1"));
        assert_eq!(key("2001:db8:0:ffff::1"), key("2001:db8::"));
        assert_ne!(key("2001:db8::1"), key("2001:db8:1::1"));
        // The family and the length are part of the key.
        assert_ne!(key("0.0.0.1"), key("::1"));
        assert_ne!(
            ShardKey::of("192.0.2.1".parse().unwrap(), 24, 48),
            ShardKey::of("192.0.2.1".parse().unwrap(), 23, 48)
        );
    }

    #[test]
    fn shards_are_balanced_and_move_little_when_added() {
        let keys: Vec<ShardKey> = (0..4096u32)
            .map(|i| ShardKey::of(IpAddr::from((0x0a00_0000 | (i << 8)).to_be_bytes()), 24, 48))
            .collect();
        for n in 1..=8u32 {
            let mut counts = vec![0u32; n as usize];
            for k in &keys {
                counts[k.shard(n) as usize] += 1;
            }
            let even = 4096 / n;
            assert!(
                counts
                    .iter()
                    .all(|&c| c > even * 8 / 10 && c < even * 12 / 10),
                "{counts:?}"
            );
            // n -> n + 1: only keys moving to the new shard move.
            for k in &keys {
                let (before, after) = (k.shard(n), k.shard(n + 1));
                assert!(after == before || after == n, "{k:?}");
            }
        }
        assert_eq!(key("192.0.2.1").shard(1), 0);
    }

    #[test]
    fn shard_counts_are_checked() {
        assert!(Shard { index: 0, count: 0 }.validate().is_err());
        assert!(Shard {
            index: 0,
            count: MAX_SHARDS + 1
        }
        .validate()
        .is_err());
        assert!(Shard { index: 2, count: 2 }.validate().is_err());
        assert!(Shard { index: 1, count: 2 }.validate().is_ok());
        let config = DetectConfig {
            shards: Some(0),
            ..DetectConfig::default()
        };
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "shards: must be in 1..=256, got 0"
        );
    }

    #[test]
    fn stats_merge_counts_records_once() {
        let shard = |records, hosts| EngineStats {
            records,
            hosts_tracked: hosts,
            attacks_active: 1,
            ..EngineStats::default()
        };
        let merged = EngineStats::merged(&[shard(10, 3), shard(7, 4)]);
        assert_eq!(
            (merged.records, merged.hosts_tracked, merged.attacks_active),
            (17, 7, 2)
        );
        let config = DetectConfig::default();
        let (mut d, mut works) = Dispatcher::new(&config, 2).unwrap();
        d.split(&[FlowRecord::default(); 3], &mut works);
        let s = d.stats(&[shard(10, 3), shard(7, 4)]);
        assert_eq!(
            (s.records, s.records_unmonitored, s.hosts_tracked),
            (3, 3, 7)
        );
    }
}
