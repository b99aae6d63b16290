//! Botnet hunting, from the same telemetry detection reads.
//!
//! - **Infected hosts** ([`hosts`]): hosts of the monitored networks that flood outwards (the
//!   engine's outgoing attacks), scan for more victims the way the Mirai family does, contact
//!   known C2 endpoints ([`feed`]), or beacon to one external endpoint. Each is one
//!   [`InfectedHost`] record with its reasons, evidence and confidence.
//! - **C2 cut-off** ([`feed`], [`rpz`]): the C2 lists, parsed from the formats threat-intel
//!   feeds publish, turned into null routes (by the daemon's mitigators) and a DNS RPZ zone.
//! - **Campaigns** ([`campaign`]): the source set of each incoming attack, summarised by a
//!   mergeable sketch, compared with earlier attacks': attacks from one bot pool share sources.
//!
//! Pure and deterministic: records and time in, findings out. Files, threads and the bus are
//! the daemon's.

pub mod campaign;
pub mod config;
pub mod event;
pub mod feed;
pub mod hosts;
pub mod report;
pub mod rpz;

pub use config::HuntConfig;
pub use event::{CampaignChange, CampaignEvent, HuntEvent, InfectedHost, Reason, ReasonKind};
