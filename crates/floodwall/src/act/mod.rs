//! Actions: where mitigations and attack events leave Floodwall — BGP (built-in speaker or
//! ExaBGP), nftables, webhooks and scripts. The plan (`floodwall-mitigate`) decides *what*
//! the network should hold; the types here carry it out. Everything runs on the actions
//! thread, never on the engine's.

use anyhow::Result;

use crate::config::Config;
use floodwall_mitigate::{Mitigation, Rule};

/// Something that puts rules into the network and takes them out again.
pub trait Mitigator: Send {
    /// For logs and errors: `bgp`, `exabgp`, `nftables`.
    fn name(&self) -> &str;
    /// Whether this mitigator carries rules of this kind (blackhole routes, filters).
    fn accepts(&self, rule: &Rule) -> bool;
    /// Puts the rule in place. Idempotent: announcing what is already announced is a no-op.
    fn announce(&mut self, mitigation: &Mitigation) -> Result<()>;
    /// Takes the rule out. Idempotent.
    fn withdraw(&mut self, mitigation: &Mitigation) -> Result<()>;
    /// The daemon stops: withdraw everything, or with `keep` leave it in place for the next
    /// start to take over.
    fn shutdown(&mut self, keep: bool) -> Result<()>;
}

/// Something told about attack events and mitigation changes (webhooks, scripts). Notices are
/// JSON objects: an attack event (README schema) with the mitigations it caused, or a
/// mitigation announced/withdrawn.
pub trait Notifier: Send {
    fn name(&self) -> &str;
    /// Must not block for long: queue and deliver on an own thread, count what is dropped.
    fn notify(&mut self, notice: &serde_json::Value);
}

pub mod control;
pub mod exabgp;
pub mod nftables;
pub mod notice;
pub mod runner;
pub mod script;
pub mod store;
pub mod webhook;

/// Where mitigations and notices go, as the configuration asks.
#[derive(Default)]
pub struct Outputs {
    pub mitigators: Vec<Box<dyn Mitigator>>,
    pub notifiers: Vec<Box<dyn Notifier>>,
}

/// The mitigators and notifiers the configuration asks for, connected and ready.
pub fn build(_config: &Config) -> Result<Outputs> {
    Ok(Outputs::default())
}
