//! The handle Floodwall holds: the Adj-RIB-Out and the peer threads.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use floodwall_mitigate::Rule;

use crate::encode::{self, RuleError};
use crate::peer::{Event, PeerThread, Shared};
use crate::{PeerConfig, PeerStatus, SessionState, SpeakerConfig};

struct PeerHandle {
    events: Sender<Event>,
    thread: Option<JoinHandle<()>>,
}

/// An announce-only BGP speaker with sessions to several peers. `announce` and `withdraw`
/// only change the table and return; the peer threads carry changes to every Established
/// peer that negotiated the route's family, and the whole table to each peer that (re)connects.
///
/// Dropping a `Speaker` without `shutdown` closes the sessions without withdrawing, like a
/// crash would.
pub struct Speaker {
    shared: Arc<Shared>,
    peers: Vec<PeerHandle>,
}

impl Speaker {
    /// Starts one thread per peer; each connects at once and keeps reconnecting.
    pub fn start(config: SpeakerConfig, peers: Vec<PeerConfig>) -> Speaker {
        let status = peers
            .iter()
            .map(|p| PeerStatus {
                name: p.name.clone(),
                address: p.address,
                state: SessionState::Idle,
                established_since: None,
                families: Vec::new(),
                updates_sent: 0,
                routes_advertised: 0,
                sessions_established: 0,
                malformed_messages: 0,
                last_error: None,
            })
            .collect();
        let shared = Arc::new(Shared {
            config,
            table: Mutex::new(BTreeMap::new()),
            status: Mutex::new(status),
            status_changed: Condvar::new(),
        });
        let peers = peers
            .into_iter()
            .enumerate()
            .map(|(index, peer)| {
                let (sender, events) = mpsc::channel();
                let name = format!("bgp-{}", peer.name);
                let worker = PeerThread {
                    index,
                    peer,
                    shared: shared.clone(),
                    events,
                    sender: sender.clone(),
                };
                let thread = thread::Builder::new()
                    .name(name)
                    .spawn(move || worker.run())
                    .expect("spawning a BGP peer thread");
                PeerHandle {
                    events: sender,
                    thread: Some(thread),
                }
            })
            .collect();
        Speaker { shared, peers }
    }

    fn changed(&self) {
        for peer in &self.peers {
            let _ = peer.events.send(Event::TableChanged);
        }
    }

    /// Adds `rule` to the table, or replaces the route with the same NLRI. Announcing what
    /// is already announced changes nothing and sends nothing.
    pub fn announce(&self, rule: &Rule) -> Result<(), RuleError> {
        let route = encode::route(rule)?;
        let key = route.key();
        let mut table = self.shared.table();
        if table.get(&key).is_some_and(|r| **r == route) {
            return Ok(());
        }
        table.insert(key, Arc::new(route));
        drop(table);
        self.changed();
        Ok(())
    }

    /// Removes the route `rule` announced (matched by NLRI only). Idempotent.
    pub fn withdraw(&self, rule: &Rule) -> Result<(), RuleError> {
        let key = encode::nlri(rule)?;
        let removed = self.shared.table().remove(&key).is_some();
        if removed {
            self.changed();
        }
        Ok(())
    }

    /// Whether `rule`'s NLRI is in the table.
    pub fn is_announced(&self, rule: &Rule) -> bool {
        encode::nlri(rule).is_ok_and(|key| self.shared.table().contains_key(&key))
    }

    /// Routes in the table.
    pub fn routes(&self) -> usize {
        self.shared.table().len()
    }

    pub fn status(&self) -> Vec<PeerStatus> {
        self.shared.status().clone()
    }

    /// Waits until every peer's session is Established; false on timeout.
    pub fn wait_established(&self, timeout: Duration) -> bool {
        self.wait_for(timeout, |status| {
            status.iter().all(|s| s.state == SessionState::Established)
        })
    }

    /// Waits until `done` holds for the peers' status; false on timeout.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[PeerStatus]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut status = self.shared.status();
        loop {
            if done(&status) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            status = self
                .shared
                .status_changed
                .wait_timeout(status, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Ends every session and waits for the peer threads. Without `keep`, each Established
    /// peer first gets withdrawals of all our routes, then NOTIFICATION Cease/Administrative
    /// Shutdown. With `keep`, the connection is closed without either, so a peer that
    /// negotiated Graceful Restart keeps the routes (stale) until the next speaker takes over.
    pub fn shutdown(mut self, keep: bool) {
        for peer in &self.peers {
            let _ = peer.events.send(Event::Shutdown { keep });
        }
        for peer in &mut self.peers {
            if let Some(thread) = peer.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for Speaker {
    /// Without `shutdown`: the sessions close as in a crash, routes not withdrawn (peer
    /// threads hold their own channel senders, so they must be told).
    fn drop(&mut self) {
        for peer in &self.peers {
            if peer.thread.is_some() {
                let _ = peer.events.send(Event::Shutdown { keep: true });
            }
        }
    }
}
