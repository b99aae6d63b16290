//! The engine on every core: one engine, or `[detection] shards` of them, each on its own
//! thread, behind the one interface the engine thread uses.
//!
//! Sharded, the engine thread is the dispatcher ([`floodwall_detect::shard`]): it splits each
//! batch by target (one pass, records copied into each shard's reused work buffers), runs
//! shard 0 itself while the others run on their threads, and merges their events in one
//! engine's order. A batch is one round: one hand-over per shard thread and back, never per
//! record. Counters come back with every round, so the status reads them without asking.

use std::thread::JoinHandle;

use anyhow::{anyhow, Result};
use crossbeam_channel::{Receiver, Sender};
use floodwall_detect::shard::{merge_baselines, Dispatcher, Route, Router, ShardWork};
use floodwall_detect::{
    AttackEvent, Baselines, DetectConfig, Engine, EngineStats, HostgroupRates, Shard, TopTargets,
};
use floodwall_wire::FlowRecord;

use crate::logging::log;

/// The shards to run when `[detection] shards` is not set: one per core.
pub fn default_shards() -> u32 {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get() as u32)
        .min(floodwall_detect::shard::MAX_SHARDS)
}

/// One engine or shards of one.
pub enum Engines {
    One(Box<Engine>),
    Sharded(Box<ShardPool>),
}

impl Engines {
    /// `[detection] shards` engines (default: one per core), with `saved` baselines resumed;
    /// returns the hosts and prefixes resumed.
    pub fn new(
        config: DetectConfig,
        saved: Option<&Baselines>,
    ) -> Result<(Engines, (usize, usize))> {
        let count = config.shards.unwrap_or_else(default_shards);
        let mut engines = (0..count)
            .map(|index| Engine::new_shard(config.clone(), Shard { index, count }))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow!("{e}"))?;
        let mut resumed = (0, 0);
        if let Some(saved) = saved {
            for engine in &mut engines {
                let (h, p) = engine.restore_baselines(saved);
                resumed = (resumed.0 + h, resumed.1 + p);
            }
        }
        let engines = if count == 1 {
            Engines::One(Box::new(engines.remove(0)))
        } else {
            Engines::Sharded(Box::new(ShardPool::start(&config, engines)?))
        };
        Ok((engines, resumed))
    }

    /// Records not routed yet: a sharded engine routes them on this thread.
    pub fn ingest(&mut self, records: &[FlowRecord], events: &mut Vec<AttackEvent>) {
        self.ingest_routed(records, &[], events);
    }

    /// [`Engines::ingest`] of records a source routed with [`Engines::router`] (routes of
    /// another length are ignored, and a single engine needs none).
    pub fn ingest_routed(
        &mut self,
        records: &[FlowRecord],
        routes: &[Route],
        events: &mut Vec<AttackEvent>,
    ) {
        match self {
            Engines::One(engine) => engine.ingest(records, events),
            Engines::Sharded(pool) => {
                pool.dispatcher
                    .split_routed(records, routes, &mut pool.works);
                pool.round(events);
            }
        }
    }

    /// What sources route records to the shards with; `None` for a single engine.
    pub fn router(&self) -> Option<Router> {
        match self {
            Engines::One(_) => None,
            Engines::Sharded(pool) => Some(pool.dispatcher.router().clone()),
        }
    }

    pub fn tick(&mut self, now_ms: u64, events: &mut Vec<AttackEvent>) {
        match self {
            Engines::One(engine) => engine.tick(now_ms, events),
            Engines::Sharded(pool) => {
                let before = pool.dispatcher.clock_ms();
                pool.dispatcher.tick(now_ms, &mut pool.works);
                // Within the second: nothing for the shards to do (records carry the clock).
                if now_ms / 1000 > before / 1000 {
                    pool.round(events);
                }
            }
        }
    }

    pub fn finish(&mut self, events: &mut Vec<AttackEvent>) {
        match self {
            Engines::One(engine) => {
                engine.finish(events);
            }
            Engines::Sharded(pool) => {
                pool.dispatcher.finish(&mut pool.works);
                pool.round(events);
            }
        }
    }

    /// The counters of the whole engine (sharded: as of the last round).
    pub fn stats(&self) -> EngineStats {
        match self {
            Engines::One(engine) => engine.stats(),
            Engines::Sharded(pool) => pool.dispatcher.stats(pool.works.iter().map(|w| w.stats())),
        }
    }

    /// Each hostgroup's rates of the last complete bucket, in and out (sharded: summed over
    /// the shards as of the last round).
    pub fn hostgroup_rates(&self) -> Vec<HostgroupRates> {
        match self {
            Engines::One(engine) => engine.hostgroup_rates(),
            Engines::Sharded(pool) => {
                HostgroupRates::merged(pool.works.iter().map(|w| w.rates().to_vec()))
            }
        }
    }

    /// The busiest hosts and prefixes of the last closed second (sharded: merged).
    pub fn top_targets(&self) -> TopTargets {
        match self {
            Engines::One(engine) => engine.top_targets().clone(),
            Engines::Sharded(pool) => TopTargets::merged(pool.works.iter().map(|w| w.top())),
        }
    }

    /// Records each shard was handed, in shard order (empty unsharded).
    pub fn shard_records(&self) -> Vec<u64> {
        match self {
            Engines::One(_) => Vec::new(),
            Engines::Sharded(pool) => pool.works.iter().map(|w| w.stats().records).collect(),
        }
    }

    /// Every baseline learnt so far: one file for any number of shards.
    pub fn baselines(&mut self) -> Baselines {
        match self {
            Engines::One(engine) => engine.baselines(),
            Engines::Sharded(pool) => {
                for w in &mut pool.works {
                    w.want_baselines();
                }
                pool.round(&mut Vec::new());
                merge_baselines(pool.works.iter_mut().filter_map(|w| w.take_baselines()))
            }
        }
    }
}

/// Shard 0 on the caller's thread, the others each on a thread of their own.
pub struct ShardPool {
    dispatcher: Dispatcher,
    local: Engine,
    works: Vec<ShardWork>,
    workers: Vec<Worker>,
}

struct Worker {
    /// Dropped to stop the thread.
    to: Option<Sender<ShardWork>>,
    from: Receiver<ShardWork>,
    thread: Option<JoinHandle<()>>,
    lost: bool,
}

impl ShardPool {
    fn start(config: &DetectConfig, mut engines: Vec<Engine>) -> Result<ShardPool> {
        let (dispatcher, works) =
            Dispatcher::new(config, engines.len() as u32).map_err(|e| anyhow!("{e}"))?;
        let mut workers = Vec::new();
        for (i, mut engine) in engines.drain(1..).enumerate() {
            // One round in flight per shard: the dispatcher waits for every answer.
            let (to, rx) = crossbeam_channel::bounded::<ShardWork>(1);
            let (tx, from) = crossbeam_channel::bounded::<ShardWork>(1);
            let thread = std::thread::Builder::new()
                .name(format!("shard-{}", i + 1))
                .spawn(move || {
                    for mut work in rx {
                        work.run(&mut engine);
                        if tx.send(work).is_err() {
                            break;
                        }
                    }
                })?;
            workers.push(Worker {
                to: Some(to),
                from,
                thread: Some(thread),
                lost: false,
            });
        }
        let local = engines
            .pop()
            .ok_or_else(|| anyhow!("no engine for shard 0"))?;
        Ok(ShardPool {
            dispatcher,
            local,
            works,
            workers,
        })
    }

    /// Every shard runs its work (shard 0 here, meanwhile), then the events are merged.
    fn round(&mut self, events: &mut Vec<AttackEvent>) {
        let (first, rest) = self.works.split_at_mut(1);
        for (work, worker) in rest.iter_mut().zip(&mut self.workers) {
            if let Some(to) = &worker.to {
                if to.send(std::mem::take(work)).is_err() {
                    worker.lost = true;
                }
            }
        }
        first[0].run(&mut self.local);
        for (i, (work, worker)) in rest.iter_mut().zip(&mut self.workers).enumerate() {
            if worker.lost {
                continue;
            }
            match worker.from.recv() {
                Ok(done) => *work = done,
                Err(_) => {
                    // Only a bug ends a shard's thread: say so once, keep the others going.
                    log(format!(
                        "engine shard {} stopped; its targets are lost",
                        i + 1
                    ));
                    worker.lost = true;
                }
            }
        }
        self.dispatcher.merge(&mut self.works, events);
    }
}

impl Drop for ShardPool {
    fn drop(&mut self) {
        for worker in &mut self.workers {
            worker.to = None;
        }
        for worker in &mut self.workers {
            if let Some(thread) = worker.thread.take() {
                let _ = thread.join();
            }
        }
    }
}
