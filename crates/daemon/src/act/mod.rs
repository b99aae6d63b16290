//! Actions: where mitigations and attack events leave Floodwall — BGP (built-in speaker or
//! ExaBGP), nftables, webhooks and scripts. The plan (`floodwall-mitigate`) decides *what*
//! the network should hold; the types here carry it out. The actions thread plans; each
//! mitigator does its I/O on its own worker thread with its own queue ([`worker`]), so a slow
//! ExaBGP acknowledgement or `nft` call holds up nobody else.

use anyhow::Result;

use crate::config::Config;
use floodwall_mitigate::{Mitigation, Rule};

pub mod bgp;

/// What a mitigator did with a rule it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// In the network now; the text says where (`to edge1 (192.0.2.1:179)`, `ExaBGP answered done`).
    Sent(String),
    /// Taken, and sent when it can be; the text says why not now (no BGP session up).
    Queued(String),
}

/// Something that puts rules into the network and takes them out again.
pub trait Mitigator: Send {
    /// For logs and errors: `bgp`, `exabgp`, `nftables`.
    fn name(&self) -> &str;
    /// Whether this mitigator carries rules of this kind (blackhole routes, filters).
    fn accepts(&self, rule: &Rule) -> bool;
    /// Puts the rule in place, or queues it to go when it can. Idempotent: announcing what is
    /// already announced is a no-op.
    fn announce(&mut self, mitigation: &Mitigation) -> Result<Outcome>;
    /// Takes the rule out. Idempotent.
    fn withdraw(&mut self, mitigation: &Mitigation) -> Result<()>;
    /// The daemon stops: withdraw everything, or with `keep` leave it in place for the next
    /// start to take over.
    fn shutdown(&mut self, keep: bool) -> Result<()>;
    /// Queued rules that went into the network since the last call: (mitigation id, where).
    fn delivered(&mut self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// Whether rules it sent outlive this process with no way to find them again at start
    /// (ExaBGP keeps its own RIB): announcements through it are saved to disk before they leave.
    /// Rules that die with the process (BGP sessions) or are listed and cleaned at start
    /// (nftables) go first and are saved right after.
    fn outlives_process(&self) -> bool {
        false
    }
    /// Its sessions or channels (BGP peers) and their state, logged when they change.
    fn health(&self) -> Vec<Channel> {
        Vec::new()
    }
    /// At start, after the held rules were announced again: take out what an earlier run left
    /// that is not held any more (a lost or corrupt snapshot). Returns the ids taken out.
    /// Mitigators whose rules die with the process (BGP sessions) have nothing to do.
    fn withdraw_stale(
        &mut self,
        _held: &std::collections::BTreeSet<String>,
    ) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// One session or channel of a mitigator: a BGP peer, say.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Channel {
    /// `bgp peer edge1 (192.0.2.1:179)`.
    pub name: String,
    pub state: ChannelState,
}

/// Whether a channel can carry rules now.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(tag = "state", content = "error", rename_all = "snake_case")]
pub enum ChannelState {
    Established,
    Connecting,
    /// Down, with the last error (`connection refused`).
    Down(String),
}

impl std::fmt::Display for Channel {
    /// The log line: `bgp peer edge1 (192.0.2.1:179): established` or `...: down (why)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.state {
            ChannelState::Established => write!(f, "{}: established", self.name),
            ChannelState::Connecting => write!(f, "{}: connecting", self.name),
            ChannelState::Down(why) => write!(f, "{}: down ({why})", self.name),
        }
    }
}

/// Something told about attack events and mitigation changes (webhooks, scripts). Notices are
/// JSON objects: an attack event (README schema) with the mitigations it caused, or a
/// mitigation announced/withdrawn.
pub trait Notifier: Send {
    fn name(&self) -> &str;
    /// Must not block for long: queue and deliver on an own thread, count what is dropped.
    fn notify(&mut self, notice: &serde_json::Value);
    /// The daemon stops: deliver what is queued within `timeout`. False if some was not.
    fn close(&mut self, _timeout: std::time::Duration) -> bool {
        true
    }
}

pub mod actions;
pub mod control;
pub mod exabgp;
pub mod nftables;
pub mod notice;
pub mod script;
pub mod store;
pub mod webhook;
pub mod worker;

/// Where mitigations and notices go, as the configuration asks.
#[derive(Default)]
pub struct Outputs {
    pub mitigators: Vec<Box<dyn Mitigator>>,
    pub notifiers: Vec<Box<dyn Notifier>>,
}

/// The mitigators and notifiers the configuration asks for, started (a BGP session comes up
/// in the background; routes wait for it).
pub fn build(config: &Config) -> Result<Outputs> {
    let mut outputs = Outputs::default();
    if let Some(bgp_config) = &config.bgp {
        outputs
            .mitigators
            .push(Box::new(bgp::BgpMitigator::start(bgp_config)?));
    }
    if config.exabgp.enabled {
        outputs
            .mitigators
            .push(Box::new(exabgp::ExaBgp::new(&config.exabgp)?));
    }
    if config.nftables.enabled {
        outputs
            .mitigators
            .push(Box::new(nftables::Nftables::new(&config.nftables)?));
    }
    for webhook in &config.webhooks {
        outputs
            .notifiers
            .push(Box::new(webhook::Webhook::new(webhook)?));
    }
    for script in &config.scripts {
        outputs
            .notifiers
            .push(Box::new(script::Script::new(script)?));
    }
    Ok(outputs)
}
