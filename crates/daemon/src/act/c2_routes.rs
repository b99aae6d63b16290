//! C2 null routes: every C2 address of the feeds announced as a route to the blackhole next
//! hop, with `[hunt] c2_community` (and not RFC 7999's BLACKHOLE: routers must be able to tell
//! "cut our customers off from this C2" from "drop this attack"), through the mitigators that
//! carry blackhole routes (the built-in speaker, ExaBGP).
//!
//! The routes are a set of their own, beside the plan's attack rules: the plan's guard rails
//! are for targets *inside* the monitored networks, these are the opposite. Guard rails here:
//! - no prefix broader than /24 (IPv4) or /48 (IPv6): a feed must not take a provider offline;
//! - nothing overlapping `[mitigation] never` or the monitored `networks` (a C2 hosted by our
//!   own customer is an abuse case for people, not a route that cuts the customer off);
//! - at most `c2_max_routes`, in the list's order (by prefix);
//! - `[mitigation] dry_run` logs what would go out and announces nothing.
//!
//! How they reach the network: [`C2Carrier`] wraps a mitigator and, on its own worker thread
//! (each time the worker looks at its mitigator, every ≤ 100 ms), follows the route set of the
//! latest list: announces what is new, withdraws what left the feeds. So a slow ExaBGP
//! acknowledgement holds up only its own worker, the actions thread and the attack rules are
//! untouched, and shutdown is the mitigator's (withdraw all, or keep with `keep_on_shutdown`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use floodwall_hunt::feed::C2List;
use floodwall_mitigate::{Community, Mitigation, Rule};
use ipnet::IpNet;

use crate::act::{Channel, Mitigator, Notifier, Outcome};
use crate::hunt::feeds::FeedHandle;
use crate::logging::log;

/// The broadest C2 prefixes announced.
pub const BROADEST_V4: u8 = 24;
pub const BROADEST_V6: u8 = 48;

/// Why a C2 address is not announced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{0} is broader than /24 (IPv4) or /48 (IPv6)")]
    TooBroad(IpNet),
    #[error("{0} overlaps never-mitigate {1}")]
    Never(IpNet, IpNet),
    #[error("{0} overlaps the monitored network {1}: a C2 in our own network is an abuse case")]
    OwnNetwork(IpNet, IpNet),
    #[error("{0} is over c2_max_routes ({1})")]
    OverMax(IpNet, usize),
}

/// What the C2 routes must respect, from the configuration.
#[derive(Debug, Clone)]
pub struct C2Guard {
    pub never: Vec<IpNet>,
    pub networks: Vec<IpNet>,
    pub max_routes: usize,
    pub community: Community,
    pub next_hop_v4: IpAddr,
    pub next_hop_v6: IpAddr,
    pub dry_run: bool,
}

impl C2Guard {
    pub fn from_config(config: &crate::config::Config) -> Result<C2Guard> {
        let community: Community = config
            .hunt
            .c2_community
            .parse()
            .map_err(|e| anyhow::anyhow!("hunt.c2_community: {e}"))?;
        let mut networks: Vec<IpNet> = config
            .mitigation_scope()
            .networks
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        networks.extend(config.networks.iter().copied());
        Ok(C2Guard {
            never: config.mitigation.never.clone(),
            networks,
            max_routes: config.hunt.c2_max_routes,
            community,
            next_hop_v4: config.mitigation.blackhole.next_hop_v4,
            next_hop_v6: config.mitigation.blackhole.next_hop_v6,
            dry_run: config.mitigation.dry_run,
        })
    }

    /// The routes for `list`, by prefix, and what was refused.
    pub fn plan(&self, list: &C2List) -> C2Routes {
        let mut routes = BTreeMap::new();
        let mut refused = Vec::new();
        let overlaps = |a: &IpNet, b: &IpNet| a.contains(b) || b.contains(a);
        for entry in list.addresses() {
            let net = entry.net;
            // Several ports of one address are one route.
            if routes.contains_key(&net) {
                continue;
            }
            let broadest = match net {
                IpNet::V4(_) => BROADEST_V4,
                IpNet::V6(_) => BROADEST_V6,
            };
            let refusal = if net.prefix_len() < broadest {
                Some(Refused::TooBroad(net))
            } else if let Some(n) = self.never.iter().find(|n| overlaps(n, &net)) {
                Some(Refused::Never(net, *n))
            } else if let Some(n) = self.networks.iter().find(|n| overlaps(n, &net)) {
                Some(Refused::OwnNetwork(net, *n))
            } else if routes.len() >= self.max_routes {
                Some(Refused::OverMax(net, self.max_routes))
            } else {
                None
            };
            if let Some(r) = refusal {
                if refused.last() != Some(&r) {
                    refused.push(r);
                }
                continue;
            }
            let next_hop = if net.addr().is_ipv6() {
                self.next_hop_v6
            } else {
                self.next_hop_v4
            };
            let mitigation = Mitigation {
                id: format!("c2:{net}"),
                attack_id: None,
                hostgroup: "c2".into(),
                rule: Rule::Blackhole {
                    prefix: net,
                    next_hop,
                    communities: vec![self.community],
                },
                coverage: None,
                collateral: None,
                since: crate::clock::unix_ms(),
                dry_run: self.dry_run,
            };
            routes.insert(net, mitigation);
        }
        C2Routes { routes, refused }
    }
}

/// The C2 routes of one list.
#[derive(Debug, Clone, Default)]
pub struct C2Routes {
    pub routes: BTreeMap<IpNet, Mitigation>,
    pub refused: Vec<Refused>,
}

/// Counts for status and metrics.
#[derive(Debug, Default)]
pub struct C2RouteCounts {
    /// Routes of the latest list that passed the guard rails.
    pub routes: AtomicU64,
    /// Addresses of the latest list refused by the guard rails.
    pub refused: AtomicU64,
}

/// The feeds' lists turned into routes once per generation, shared by every carrier.
pub struct C2Source {
    feeds: FeedHandle,
    guard: C2Guard,
    planned: Mutex<(u64, Arc<C2Routes>)>,
    pub counts: C2RouteCounts,
}

impl C2Source {
    pub fn new(feeds: FeedHandle, guard: C2Guard) -> Arc<C2Source> {
        Arc::new(C2Source {
            feeds,
            guard,
            planned: Mutex::new((0, Arc::new(C2Routes::default()))),
            counts: C2RouteCounts::default(),
        })
    }

    /// The routes of the current list and its generation; planned (and its refusals logged)
    /// by whichever carrier asks first.
    pub fn routes(&self) -> (u64, Arc<C2Routes>) {
        let (generation, list) = self.feeds.current();
        let mut planned = self.planned.lock().unwrap_or_else(|e| e.into_inner());
        if planned.0 != generation {
            let routes = self.guard.plan(&list);
            for r in routes.refused.iter().take(10) {
                log(format!("C2 null route refused: {r}"));
            }
            if routes.refused.len() > 10 {
                log(format!(
                    "C2 null routes refused: {} more",
                    routes.refused.len() - 10
                ));
            }
            if self.guard.dry_run {
                log(format!(
                    "C2 null routes (dry run, not announced): {} routes with community {}",
                    routes.routes.len(),
                    self.guard.community
                ));
            }
            self.counts
                .routes
                .store(routes.routes.len() as u64, Ordering::Relaxed);
            self.counts
                .refused
                .store(routes.refused.len() as u64, Ordering::Relaxed);
            *planned = (generation, Arc::new(routes));
        }
        (planned.0, planned.1.clone())
    }
}

/// A mitigator that also carries the C2 routes (see the module's comment).
pub struct C2Carrier {
    inner: Box<dyn Mitigator>,
    source: Arc<C2Source>,
    /// The generation followed last.
    generation: u64,
    /// What this mitigator holds of the C2 routes, by prefix.
    held: BTreeMap<IpNet, Mitigation>,
    /// Some routes failed (ExaBGP not reading its pipe yet): try them again then.
    retry_at: Option<Instant>,
    /// Failures already logged for this generation (logged once, retried quietly).
    failures_logged: bool,
}

/// How long failed C2 routes wait before they are tried again.
const RETRY: Duration = Duration::from_secs(5);

impl C2Carrier {
    pub fn new(inner: Box<dyn Mitigator>, source: Arc<C2Source>) -> C2Carrier {
        C2Carrier {
            inner,
            source,
            generation: 0,
            held: BTreeMap::new(),
            retry_at: None,
            failures_logged: false,
        }
    }

    /// Follows the latest list: withdraws what left, announces what came.
    fn follow(&mut self) {
        let (generation, routes) = self.source.routes();
        let retry_due = self.retry_at.is_some_and(|at| Instant::now() >= at);
        if (generation == self.generation && !retry_due) || self.source.guard.dry_run {
            self.generation = generation;
            return;
        }
        if generation != self.generation {
            self.failures_logged = false;
        }
        self.generation = generation;
        self.retry_at = None;
        let name = self.inner.name().to_string();
        let (mut withdrawn, mut announced, mut failed) = (0, 0, 0);
        let gone: Vec<IpNet> = self
            .held
            .keys()
            .filter(|net| !routes.routes.contains_key(net))
            .copied()
            .collect();
        for net in gone {
            if let Some(m) = self.held.remove(&net) {
                match self.inner.withdraw(&m) {
                    Ok(()) => withdrawn += 1,
                    Err(e) => {
                        failed += 1;
                        if !self.failures_logged {
                            log(format!(
                                "error: {name}: C2 null route {net} not withdrawn: {e:#}"
                            ));
                        }
                        // Still in the network as far as we know: withdrawn again later.
                        self.held.insert(net, m);
                    }
                }
            }
        }
        for (net, m) in &routes.routes {
            if self.held.get(net).is_some_and(|h| h.rule == m.rule) {
                continue;
            }
            if !self.inner.accepts(&m.rule) {
                continue;
            }
            match self.inner.announce(m) {
                Ok(Outcome::Sent(_) | Outcome::Queued(_)) => {
                    announced += 1;
                    self.held.insert(*net, m.clone());
                }
                Err(e) => {
                    failed += 1;
                    if failed <= 3 && !self.failures_logged {
                        log(format!(
                            "error: {name}: C2 null route {net} not announced: {e:#}"
                        ));
                    }
                }
            }
        }
        if failed > 0 {
            self.retry_at = Some(Instant::now() + RETRY);
        }
        if announced == 0 && withdrawn == 0 && (failed == 0 || self.failures_logged) {
            return;
        }
        self.failures_logged |= failed > 0;
        log(format!(
            "C2 null routes through {name} (list {generation}): {announced} announced, {withdrawn} withdrawn, {failed} failed{}; {} held, community {}",
            if failed > 0 { " (tried again every 5 s)" } else { "" },
            self.held.len(),
            self.source.guard.community
        ));
    }
}

impl Mitigator for C2Carrier {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn accepts(&self, rule: &Rule) -> bool {
        self.inner.accepts(rule)
    }

    fn announce(&mut self, mitigation: &Mitigation) -> Result<Outcome> {
        self.inner.announce(mitigation)
    }

    fn withdraw(&mut self, mitigation: &Mitigation) -> Result<()> {
        self.inner.withdraw(mitigation)
    }

    fn shutdown(&mut self, keep: bool) -> Result<()> {
        self.held.clear();
        self.inner.shutdown(keep)
    }

    /// Called by the worker every time it looks at its mitigator: the C2 routes follow here.
    fn delivered(&mut self) -> Vec<(String, String)> {
        self.follow();
        self.inner.delivered()
    }

    fn outlives_process(&self) -> bool {
        self.inner.outlives_process()
    }

    fn health(&self) -> Vec<Channel> {
        self.inner.health()
    }

    fn withdraw_stale(&mut self, held: &std::collections::BTreeSet<String>) -> Result<Vec<String>> {
        self.inner.withdraw_stale(held)
    }
}

/// Keeps the watcher running for the daemon's lifetime: it sits among the notifiers, which the
/// bus closes last (after the actions withdrew their routes), and stops it then.
pub struct FeedsOwner(Option<crate::hunt::feeds::FeedWatcher>);

impl FeedsOwner {
    pub fn new(watcher: crate::hunt::feeds::FeedWatcher) -> FeedsOwner {
        FeedsOwner(Some(watcher))
    }
}

impl Notifier for FeedsOwner {
    fn name(&self) -> &str {
        "c2-feeds"
    }

    fn notify(&mut self, _notice: &serde_json::Value) {}

    fn close(&mut self, _timeout: std::time::Duration) -> bool {
        if let Some(watcher) = self.0.take() {
            watcher.stop();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> C2Guard {
        C2Guard {
            never: vec!["198.51.100.64/26".parse().unwrap()],
            networks: vec!["203.0.113.0/24".parse().unwrap()],
            max_routes: 3,
            community: "64512:666".parse().unwrap(),
            next_hop_v4: "192.0.2.1".parse().unwrap(),
            next_hop_v6: "100::1".parse().unwrap(),
            dry_run: false,
        }
    }

    #[test]
    fn guard_rails_refuse_broad_own_and_never_prefixes_and_cap_the_count() {
        let text = "198.51.100.7:443\n198.51.100.7:8080\n198.51.100.70\n203.0.113.9\n\
                    10.0.0.0/8\n2001:db8::/32\n2001:db8:1::/48\n192.0.2.0/24\n100.64.0.1\n100.64.0.2\n";
        let list = C2List::from_feeds(vec![C2List::parse("f", text).unwrap()]);
        let plan = guard().plan(&list);
        let routes: Vec<String> = plan.routes.keys().map(|n| n.to_string()).collect();
        assert_eq!(routes, ["100.64.0.1/32", "100.64.0.2/32", "192.0.2.0/24"]);
        let refused: Vec<String> = plan.refused.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            refused,
            [
                "10.0.0.0/8 is broader than /24 (IPv4) or /48 (IPv6)",
                "198.51.100.7/32 is over c2_max_routes (3)",
                "198.51.100.70/32 overlaps never-mitigate 198.51.100.64/26",
                "203.0.113.9/32 overlaps the monitored network 203.0.113.0/24: a C2 in our own network is an abuse case",
                "2001:db8::/32 is broader than /24 (IPv4) or /48 (IPv6)",
                "2001:db8:1::/48 is over c2_max_routes (3)",
            ]
        );
        let m = &plan.routes[&"100.64.0.1/32".parse::<IpNet>().unwrap()];
        assert_eq!(m.id, "c2:100.64.0.1/32");
        assert_eq!(
            m.rule.to_string(),
            "blackhole 100.64.0.1/32 next-hop 192.0.2.1 communities 64512:666"
        );
    }
}
