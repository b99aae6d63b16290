//! The actions thread: attack events in, the plan's changes out to every mitigator, the event
//! record (with what became of each rule) to the events file, notices to webhooks and scripts.
//!
//! A record never claims what did not happen: a rule is `announced` only when a mitigator put
//! it in the network, `queued` when one will as soon as it can (no BGP session up yet), else
//! `failed` with the reason — no mitigator for its kind included.
//!
//! Announcing does not wait for the disk where it need not: rules through the built-in BGP
//! speaker die with the process, and nftables rules are listed and cleaned at start, so those
//! go out first and the snapshot follows on the store's own thread. Only announcements through
//! a mitigator whose rules outlive the process unseen (ExaBGP) are saved before they leave. A
//! crash thus never leaves a rule in the network that the next start neither resumes nor
//! removes.

use std::collections::BTreeMap;
use std::io::Write;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Result;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use floodwall_detect::AttackEvent;
use floodwall_mitigate::{
    Change, Decision, Delivery, FlowFilter, Mitigation, Planner, Refusal, Rule, Status,
};
use serde_json::{json, Value};

use super::control::{self, Request, Response};
use super::store::Store;
use super::{Mitigator, Notifier, Outcome};
use crate::events::{event_record, log_line};
use crate::logging::log;
use crate::sources::udp::unix_ms;

pub enum Input {
    Events(Vec<AttackEvent>),
    Control(Request, Sender<Response>),
    /// The daemon stops.
    Stop,
}

/// Everything the actions thread owns.
pub struct Actions {
    pub planner: Planner,
    pub store: Store,
    pub mitigators: Vec<Box<dyn Mitigator>>,
    pub notifiers: Vec<Box<dyn Notifier>>,
    /// The JSON-lines events file.
    pub events: Box<dyn Write + Send>,
}

/// The mitigators' health lines as last logged.
type Health = Vec<Vec<String>>;

/// What the mitigators did with each rule announced in one batch of changes, by mitigation id.
type Deliveries = BTreeMap<String, Vec<Delivery>>;

const TICK: Duration = Duration::from_millis(100);
/// How long a stopping daemon waits for webhooks and scripts to deliver what is queued.
const NOTIFY_GRACE: Duration = Duration::from_secs(5);

/// The store on its own thread: snapshots are written in order, the latest of a burst once.
struct Persister {
    tx: Option<Sender<(floodwall_mitigate::Snapshot, Option<Sender<()>>)>>,
    thread: Option<JoinHandle<()>>,
}

impl Persister {
    fn start(mut store: Store) -> Result<Persister> {
        let (tx, rx) =
            crossbeam_channel::unbounded::<(floodwall_mitigate::Snapshot, Option<Sender<()>>)>();
        let thread = std::thread::Builder::new()
            .name("store".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut latest = first.0;
                    let mut acks: Vec<Sender<()>> = first.1.into_iter().collect();
                    // A burst of changes costs one write: only the last snapshot matters.
                    while let Ok((snapshot, ack)) = rx.try_recv() {
                        latest = snapshot;
                        acks.extend(ack);
                    }
                    // A full or broken disk must not stop mitigation during an attack: the
                    // rules still go out, and the log says (each time) that a restart would
                    // not know them.
                    if let Err(e) = store.save(&latest) {
                        log(format!(
                            "error: {e:#}; mitigations go on, but a restart now would not resume them"
                        ));
                    }
                    for ack in acks {
                        let _ = ack.send(());
                    }
                }
            })?;
        Ok(Persister {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues the snapshot; with `wait`, returns once it is on disk (or failed to be).
    fn save(&self, snapshot: floodwall_mitigate::Snapshot, wait: bool) {
        let Some(tx) = &self.tx else { return };
        if wait {
            let (ack_tx, ack_rx) = crossbeam_channel::bounded(1);
            if tx.send((snapshot, Some(ack_tx))).is_ok() {
                let _ = ack_rx.recv();
            }
        } else {
            let _ = tx.send((snapshot, None));
        }
    }

    /// Writes what is queued and stops.
    fn close(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Actions {
    /// Starts the thread; it resumes from the store first. [`Input::Stop`] (or every sender
    /// gone) stops it: rules are withdrawn (or kept with `keep_on_shutdown`), the snapshot saved.
    pub fn spawn(self, input: Receiver<Input>) -> Result<JoinHandle<Result<()>>> {
        let Actions {
            mut planner,
            store,
            mitigators,
            notifiers,
            events,
        } = self;
        let mut changes = Vec::new();
        match store.load() {
            Ok(Some(snapshot)) => {
                log(format!(
                    "resuming {} mitigations from {}",
                    snapshot.held.len(),
                    store.path().display()
                ));
                planner.restore(snapshot, unix_ms(), &mut changes);
            }
            Ok(None) => {}
            Err((_, why)) => log(format!("error: {why}")),
        }
        let mut thread = ActionsThread {
            planner,
            persister: Persister::start(store)?,
            mitigators,
            notifiers,
            events,
        };
        thread.commit(&mut changes);
        let held: std::collections::BTreeSet<String> = thread
            .planner
            .held()
            .map(|h| h.mitigation.id.clone())
            .collect();
        for mitigator in &mut thread.mitigators {
            match mitigator.withdraw_stale(&held) {
                Ok(stale) if !stale.is_empty() => log(format!(
                    "{}: withdrew {} rules an earlier run left: {}",
                    mitigator.name(),
                    stale.len(),
                    stale.join(", ")
                )),
                Ok(_) => {}
                Err(e) => log(format!(
                    "error: {} could not check for rules an earlier run left: {e:#}",
                    mitigator.name()
                )),
            }
        }
        Ok(std::thread::Builder::new()
            .name("actions".into())
            .spawn(move || thread.run(input))?)
    }
}

/// The actions thread's state once started.
struct ActionsThread {
    planner: Planner,
    persister: Persister,
    mitigators: Vec<Box<dyn Mitigator>>,
    notifiers: Vec<Box<dyn Notifier>>,
    events: Box<dyn Write + Send>,
}

impl ActionsThread {
    fn run(mut self, input: Receiver<Input>) -> Result<()> {
        let mut changes = Vec::new();
        let mut health: Health = vec![Vec::new(); self.mitigators.len()];
        loop {
            self.log_health(&mut health);
            self.report_delivered();
            match input.recv_timeout(TICK) {
                Ok(Input::Events(events)) => {
                    let now = unix_ms();
                    let mut decided = Vec::with_capacity(events.len());
                    for event in &events {
                        let decisions = self.planner.on_event(event, now, &mut changes);
                        log(log_line(event));
                        decided.push(decisions);
                    }
                    let quiet = changes.is_empty();
                    let deliveries = self.commit(&mut changes);
                    if quiet && !events.is_empty() {
                        // Events change the plan without a change for the network too (an
                        // attack ended, a rule adopted): the store keeps up (identical
                        // snapshots cost nothing).
                        self.persister.save(self.planner.snapshot(), false);
                    }
                    for (event, decisions) in events.iter().zip(&mut decided) {
                        settle(decisions, &deliveries);
                        let record = event_record(event, decisions)?;
                        serde_json::to_writer(&mut self.events, &record)?;
                        self.events.write_all(b"\n")?;
                        self.notify(&record);
                    }
                    self.events.flush()?;
                }
                Ok(Input::Control(request, reply)) => {
                    let response = self.control(request, &mut changes);
                    let _ = reply.send(response);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Ok(Input::Stop) | Err(RecvTimeoutError::Disconnected) => break,
            }
            self.planner.tick(unix_ms(), &mut changes);
            self.commit(&mut changes);
        }
        self.planner.shutdown(&mut changes);
        self.commit(&mut changes);
        self.persister.close();
        let keep = self.planner.config().keep_on_shutdown;
        for mitigator in &mut self.mitigators {
            if let Err(e) = mitigator.shutdown(keep) {
                log(format!("error: {} shutdown: {e:#}", mitigator.name()));
            }
        }
        for notifier in &mut self.notifiers {
            if !notifier.close(NOTIFY_GRACE) {
                log(format!(
                    "{}: notices still queued at shutdown were dropped",
                    notifier.name()
                ));
            }
        }
        Ok(())
    }

    /// Logs a session or channel going up or down (a peer refusing the session included).
    fn log_health(&self, last: &mut Health) {
        for (mitigator, last) in self.mitigators.iter().zip(last.iter_mut()) {
            let now = mitigator.health();
            for line in &now {
                if !last.contains(line) {
                    log(line);
                }
            }
            *last = now;
        }
    }

    /// Queued rules that went out since the last look: logged and told, as they happen.
    fn report_delivered(&mut self) {
        let mut sent = Vec::new();
        for mitigator in &mut self.mitigators {
            for (id, detail) in mitigator.delivered() {
                sent.push((mitigator.name().to_string(), id, detail));
            }
        }
        for (name, id, detail) in sent {
            let Some(held) = self.planner.held().find(|h| h.mitigation.id == id) else {
                continue;
            };
            let mitigation = held.mitigation.clone();
            log(format!(
                "mitigation announced: {id} {} (queued, now sent by {name} {detail})",
                mitigation.rule
            ));
            let notice = json!({
                "event": "mitigation_announced",
                "ts": floodwall_detect::time::rfc3339_ms(unix_ms()),
                "mitigation": mitigation,
                "mitigators": [Delivery { mitigator: name, status: Status::Announced, detail: Some(detail) }],
            });
            self.notify(&notice);
        }
    }

    /// Persists the plan and carries the changes out, in the order that keeps every rule in the
    /// network known to the next start: announcements through a mitigator whose rules outlive
    /// the process are saved first; everything else goes first and is saved right after.
    fn commit(&mut self, changes: &mut Vec<Change>) -> Deliveries {
        if changes.is_empty() {
            return Deliveries::new();
        }
        let write_ahead = changes.iter().any(|c| match c {
            Change::Announce(m) => {
                !m.dry_run
                    && self
                        .mitigators
                        .iter()
                        .any(|x| x.accepts(&m.rule) && x.outlives_process())
            }
            Change::Withdraw { .. } => false,
        });
        if write_ahead {
            self.persister.save(self.planner.snapshot(), true);
        }
        let deliveries = self.apply(changes);
        if !write_ahead {
            self.persister.save(self.planner.snapshot(), false);
        }
        deliveries
    }

    fn apply(&mut self, changes: &mut Vec<Change>) -> Deliveries {
        let mut deliveries = Deliveries::new();
        for change in changes.drain(..) {
            let (mitigation, reason) = match &change {
                Change::Announce(m) => (m, None),
                Change::Withdraw { mitigation, reason } => (mitigation, Some(reason.to_string())),
            };
            if mitigation.dry_run {
                let verb = if reason.is_some() {
                    "withdrawn"
                } else {
                    "announced"
                };
                log(format!(
                    "mitigation dry run, not {verb}: {} {}{}",
                    mitigation.id,
                    mitigation.rule,
                    reason.map(|r| format!(" ({r})")).unwrap_or_default()
                ));
                continue;
            }
            let notice = match &change {
                Change::Announce(m) => {
                    let outcome = self.announce(m);
                    let status = status_of(&outcome);
                    let why = outcome
                        .iter()
                        .filter_map(|d| {
                            d.detail.as_deref().map(|t| format!("{}: {t}", d.mitigator))
                        })
                        .collect::<Vec<_>>()
                        .join("; ");
                    log(match status {
                        Status::Announced => {
                            format!("mitigation announced: {} {} ({why})", m.id, m.rule)
                        }
                        Status::Queued => {
                            format!(
                                "mitigation queued, not announced yet: {} {} ({why})",
                                m.id, m.rule
                            )
                        }
                        _ => format!(
                            "error: mitigation not announced: {} {} ({why})",
                            m.id, m.rule
                        ),
                    });
                    let event = match status {
                        Status::Announced => "mitigation_announced",
                        Status::Queued => "mitigation_queued",
                        _ => "mitigation_failed",
                    };
                    let notice = json!({
                        "event": event,
                        "ts": floodwall_detect::time::rfc3339_ms(unix_ms()),
                        "mitigation": m,
                        "mitigators": outcome,
                    });
                    deliveries.insert(m.id.clone(), outcome);
                    notice
                }
                Change::Withdraw { mitigation, reason } => {
                    log(format!(
                        "mitigation withdrawn: {} {} ({reason})",
                        mitigation.id, mitigation.rule
                    ));
                    for mitigator in &mut self.mitigators {
                        if !mitigator.accepts(&mitigation.rule) {
                            continue;
                        }
                        if let Err(e) = mitigator.withdraw(mitigation) {
                            log(format!(
                                "error: {} could not be withdrawn by {}: {e:#}",
                                mitigation.id,
                                mitigator.name()
                            ));
                        }
                    }
                    json!({
                        "event": "mitigation_withdrawn",
                        "ts": floodwall_detect::time::rfc3339_ms(unix_ms()),
                        "mitigation": mitigation,
                        "reason": reason,
                    })
                }
            };
            self.notify(&notice);
        }
        deliveries
    }

    /// Hands a rule to every mitigator that carries its kind; what each did.
    fn announce(&mut self, m: &Mitigation) -> Vec<Delivery> {
        let mut outcome = Vec::new();
        for mitigator in &mut self.mitigators {
            if !mitigator.accepts(&m.rule) {
                continue;
            }
            let (status, detail) = match mitigator.announce(m) {
                Ok(Outcome::Sent(where_)) => (Status::Announced, where_),
                Ok(Outcome::Queued(why)) => (Status::Queued, why),
                Err(e) => (Status::Failed, format!("{e:#}")),
            };
            outcome.push(Delivery {
                mitigator: mitigator.name().to_string(),
                status,
                detail: Some(detail),
            });
        }
        if outcome.is_empty() {
            outcome.push(Delivery {
                mitigator: "none".into(),
                status: Status::Failed,
                detail: Some(format!(
                    "no mitigator carries {} rules: configure [bgp], [exabgp] or [nftables]",
                    m.rule.kind()
                )),
            });
        }
        outcome
    }

    fn notify(&mut self, notice: &Value) {
        for notifier in &mut self.notifiers {
            notifier.notify(notice);
        }
    }

    fn control(&mut self, request: Request, changes: &mut Vec<Change>) -> Response {
        let now = unix_ms();
        let result: Result<Value, String> = match request {
            Request::List => Ok(json!({ "mitigations": self.planner.held().collect::<Vec<_>>() })),
            Request::Announce {
                target,
                kind,
                filter,
                seconds,
            } => match self
                .manual_rule(target, &kind, filter)
                .and_then(|rule| self.planner.announce_manual(rule, seconds, now, changes))
            {
                Ok(m) => {
                    let mut deliveries = self.commit(changes);
                    let outcome = deliveries.remove(&m.id).unwrap_or_default();
                    let status = if m.dry_run {
                        Status::DryRun
                    } else if outcome.is_empty() {
                        Status::Held
                    } else {
                        status_of(&outcome)
                    };
                    Ok(json!({ "mitigation": m, "status": status, "mitigators": outcome }))
                }
                Err(refusal) => Err(refusal.to_string()),
            },
            Request::Withdraw { id } => {
                let result = self
                    .planner
                    .withdraw_manual(&id, changes)
                    .map(|m| json!({ "mitigation": m }))
                    .map_err(|e| e.to_string());
                self.commit(changes);
                result
            }
        };
        match result {
            Ok(mut value) => {
                value["ok"] = json!(true);
                value
            }
            Err(message) => control::error(&message),
        }
    }

    /// A rule for a manual announcement, with the configured next hops, communities, action.
    fn manual_rule(
        &self,
        target: ipnet::IpNet,
        kind: &str,
        filter: Option<FlowFilter>,
    ) -> Result<Rule, Refusal> {
        let config = self.planner.config();
        match kind {
            "blackhole" => Ok(Rule::Blackhole {
                prefix: target,
                next_hop: if target.addr().is_ipv6() {
                    config.blackhole.next_hop_v6
                } else {
                    config.blackhole.next_hop_v4
                },
                communities: config.blackhole.communities.clone(),
            }),
            "flowspec" => {
                let filter = filter.unwrap_or_else(|| FlowFilter::to(target));
                if filter.destination != target {
                    return Err(Refusal::Invalid(format!(
                        "the filter's destination {} is not the target {target}",
                        filter.destination
                    )));
                }
                Ok(Rule::Filter {
                    filter,
                    action: config.flow_action(),
                    communities: config.flowspec.communities.clone(),
                })
            }
            other => Err(Refusal::Invalid(format!(
                "unknown kind `{other}`: use blackhole or flowspec"
            ))),
        }
    }
}

/// One status from every mitigator's: in the network if any put it there, else queued if any
/// will, else failed.
fn status_of(outcome: &[Delivery]) -> Status {
    if outcome.iter().any(|d| d.status == Status::Announced) {
        Status::Announced
    } else if outcome.iter().any(|d| d.status == Status::Queued) {
        Status::Queued
    } else {
        Status::Failed
    }
}

/// Replaces the plan's `announced` with what the mitigators did.
fn settle(decisions: &mut [Decision], deliveries: &Deliveries) {
    for d in decisions {
        if d.status != Status::Announced {
            continue;
        }
        if let Some(outcome) = deliveries.get(&d.id) {
            d.status = status_of(outcome);
            if d.status == Status::Failed {
                d.reason = Some(
                    outcome
                        .iter()
                        .filter_map(|x| x.detail.clone())
                        .collect::<Vec<_>>()
                        .join("; "),
                );
            }
            d.mitigators = outcome.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floodwall_detect::event::{Direction, EventKind, Evidence, Trigger, TriggerKind};
    use floodwall_detect::fingerprint::Fingerprint;
    use floodwall_mitigate::{MitigationConfig, Scope};

    fn event(kind: EventKind) -> AttackEvent {
        AttackEvent {
            event: kind,
            attack_id: "a1".into(),
            ts: 0,
            direction: Direction::Incoming,
            target: "203.0.113.7/32".parse().unwrap(),
            carpet_bombing: false,
            hostgroup: "default".into(),
            vectors: vec![],
            bps: 0,
            pps: 0,
            peak_bps: 0,
            peak_pps: 0,
            sources: 0,
            started_at: 0,
            ended_at: None,
            trigger: Trigger {
                kind: TriggerKind::Threshold,
                metric: floodwall_detect::Metric::Pps,
                value: 0.0,
                limit: 0.0,
            },
            evidence: Evidence {
                samples: 100,
                datagrams: 10,
                instants: 10,
                largest_datagram_share: 0.1,
            },
            fingerprint: Fingerprint::default(),
            before: None,
        }
    }

    /// An attack's end changes the plan (its rule's hold-down begins) without a change for the
    /// network: the store must still hear of it, or a restart would think the attack active.
    #[test]
    fn the_store_follows_the_plan_when_events_change_nothing_in_the_network() {
        let dir = std::env::temp_dir().join(format!("floodwall-runner-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut config = MitigationConfig::default();
        config.blackhole.enabled = true;
        config.dry_run = true;
        let scope = Scope {
            networks: vec![("203.0.113.0/24".parse().unwrap(), "default".into())],
            broadest_v4: 24,
            broadest_v6: 48,
        };
        let actions = Actions {
            planner: Planner::new(config, scope).unwrap(),
            store: Store::open(&dir).unwrap(),
            mitigators: Vec::new(),
            notifiers: Vec::new(),
            events: Box::new(std::io::sink()),
        };
        let (tx, rx) = crossbeam_channel::unbounded();
        let thread = actions.spawn(rx).unwrap();
        tx.send(Input::Events(vec![event(EventKind::AttackStarted)]))
            .unwrap();
        tx.send(Input::Events(vec![event(EventKind::AttackEnded)]))
            .unwrap();
        // Read the store while the daemon still runs (a crash now must find the end).
        let store = Store::open(&dir).unwrap();
        let mut ended = false;
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(20));
            if let Ok(Some(snapshot)) = store.load() {
                ended = snapshot
                    .held
                    .iter()
                    .any(|h| !h.attack_active && h.withdraw_at.is_some());
                if ended {
                    break;
                }
            }
        }
        tx.send(Input::Stop).unwrap();
        thread.join().unwrap().unwrap();
        assert!(ended, "the store never heard the attack ended");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
