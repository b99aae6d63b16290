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
pub mod c2_routes;
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
    /// The C2 feeds' current list, when `[hunt] c2_feeds` names any: for whoever matches
    /// traffic against it. The watcher itself lives as long as the notifiers.
    pub c2_feeds: Option<crate::hunt::feeds::FeedHandle>,
    /// The C2 null routes, when `c2_null_route` asks: their counts (routes, refused) for the
    /// status and metrics.
    pub c2_routes: Option<std::sync::Arc<crate::act::c2_routes::C2Source>>,
}

/// The mitigators and notifiers the configuration asks for, started (a BGP session comes up
/// in the background; routes wait for it).
pub fn build(config: &Config) -> Result<Outputs> {
    use crate::hunt::feeds;
    use c2_routes as routes;
    let mut outputs = Outputs::default();
    // The C2 feeds: read (and the RPZ zone written) whenever some are configured; their
    // routes ride on the mitigators that carry blackholes when `c2_null_route` asks.
    let mut c2_routes = None;
    if !config.hunt.c2_feeds.is_empty() {
        let watcher = feeds::FeedWatcher::start(&config.hunt, &config.state.dir)?;
        if config.hunt.c2_null_route {
            c2_routes = Some(routes::C2Source::new(
                watcher.handle(),
                routes::C2Guard::from_config(config)?,
            ));
        }
        outputs.c2_feeds = Some(watcher.handle());
        outputs
            .notifiers
            .push(Box::new(routes::FeedsOwner::new(watcher)));
    }
    let carry_c2 = |m: Box<dyn Mitigator>| -> Box<dyn Mitigator> {
        match &c2_routes {
            Some(source) => Box::new(routes::C2Carrier::new(m, source.clone())),
            None => m,
        }
    };
    if let Some(bgp_config) = &config.bgp {
        outputs
            .mitigators
            .push(carry_c2(Box::new(bgp::BgpMitigator::start(bgp_config)?)));
    }
    if config.exabgp.enabled {
        outputs
            .mitigators
            .push(carry_c2(Box::new(exabgp::ExaBgp::new(&config.exabgp)?)));
    }
    outputs.c2_routes = c2_routes.clone();
    if c2_routes.is_some() && config.bgp.is_none() && !config.exabgp.enabled {
        crate::logging::log(
            "warning: hunt.c2_null_route is on but neither [bgp] nor [exabgp] is configured: \
             no C2 null route will be announced",
        );
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
