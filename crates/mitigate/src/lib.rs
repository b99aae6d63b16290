//! Floodwall's mitigation plan: from attack events and the time, which routes and filters the
//! network should hold now — with the operator's guard rails applied. Pure and deterministic
//! (time is passed in); the actions that talk to routers, nftables and webhooks live in the
//! `floodwall` binary and in `floodwall-bgp`.
//!
//! - [`rule`]: what a rule asks of the network (blackhole route, traffic filter).
//! - [`derive`]: a filter from an attack's fingerprint, and how much of the attack it covers.
//! - [`plan`]: the [`Planner`] — guard rails, lifecycle, restart snapshot.

#![forbid(unsafe_code)]

pub mod config;
pub mod derive;
pub mod mitigation;
pub mod plan;
pub mod rule;
#[cfg(test)]
mod testing;

pub use config::{ConfigError, MitigationConfig};
pub use mitigation::Mitigation;
pub use plan::{
    Change, Decision, Delivery, Held, NotHeld, Planner, Refusal, Scope, Snapshot, Status,
    WithdrawReason,
};
pub use rule::{Community, FlowAction, FlowFilter, NotACommunity, Range, Rule, RuleKind, TcpFlags};
