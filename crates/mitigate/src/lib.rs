//! Floodwall's mitigation plan: from attack events and the time, which routes and filters the
//! network should hold now — with the operator's guard rails applied. Pure and deterministic
//! (time is passed in); the actions that talk to routers, nftables and webhooks live in the
//! `floodwall` binary and in `floodwall-bgp`.

pub mod rule;

pub use rule::{Community, FlowAction, FlowFilter, Range, Rule, TcpFlags};
pub mod mitigation;

pub use mitigation::Mitigation;
