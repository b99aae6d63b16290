//! Floodwall's detection engine: normalised flow records and telemetry time in, attack events out.
//!
//! Pure and deterministic — no I/O, no clocks: time is the telemetry's own, so a live run and a
//! replay of the same records produce the same events.
//!
//! - [`config`]: monitored networks, hostgroups, thresholds, baseline and carpet-bombing settings.
//! - [`counters`]: what is counted per target per 1-second bucket.
//! - [`fingerprint`]: bounded per-attack sketches (distinct sources, top talkers, ports, sizes).
//! - [`event`]: the attack events, the public JSON interface.
//! - [`vocab`]: the words all of these share (attack vectors, metrics).
//! - [`engine`]: accounting, detection, classification and the attack lifecycle.
//! - [`shard`]: the engine split by target over shards, with the events of one engine.
//!
//! Internals: `networks` (address → monitored hostgroup by binary search over ranges),
//! `addrmap` (prefetchable host index), `baseline` (lazy EWMA baselines), `classify` (vectors
//! from per-class shares), `attack` (lifecycle and rate-limited updates).

#![deny(unsafe_code)]

mod addrmap;
mod attack;
mod baseline;
mod classify;
pub mod config;
pub mod counters;
pub mod engine;
pub mod event;
pub mod fingerprint;
pub mod networks;
mod partition;
// SAFETY: the crate's only unsafe code, two hints that cannot change results: a cache prefetch
// intrinsic (never faults, no architectural effect) and an madvise over the spare capacity of a
// live allocation. Each `unsafe` block there states why it is sound.
#[allow(unsafe_code)]
mod prefetch;
pub mod shard;
pub mod time;
pub mod vocab;

pub use baseline::{BaselineState, Baselines};
pub use config::{ConfigError, DetectConfig};
pub use engine::{
    effective_limits, EffectiveLimits, Engine, EngineStats, HostgroupRates, TopEntry, TopTargets,
};
pub use event::{AttackEvent, Direction, EventKind};
pub use shard::{Shard, ShardKey, ShardedEngine};
pub use vocab::{Metric, Vector};
