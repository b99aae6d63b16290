//! The actions: the bus's attack events in, the plan's changes out to every mitigator's worker,
//! each event's record (with what became of each rule) and the mitigation notices back onto
//! the bus for the events file, notifiers and whoever else listens.
//!
//! A record never claims what did not happen: a rule is `announced` only when a mitigator put
//! it in the network, `queued` when one will as soon as it can (no BGP session up yet), else
//! `failed` with the reason — no mitigator for its kind included. So a record that announced a
//! rule is published once every mitigator answered; records keep their order, and planning
//! never waits for them.
//!
//! Announcing does not wait for the disk where it need not: rules through the built-in BGP
//! speaker die with the process, and nftables rules are listed and cleaned at start, so those
//! go out at once and the snapshot follows on the store's own thread. Only a mitigator whose
//! rules outlive the process unseen (ExaBGP) waits until the snapshot that names the rule is on
//! disk. A crash thus never leaves a rule in the network that the next start neither resumes
//! nor removes.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Result;
use crossbeam_channel::{select, Receiver, Sender};
use floodwall_detect::AttackEvent;
use floodwall_mitigate::{
    Change, Decision, Delivery, FlowFilter, Mitigation, Planner, Refusal, Rule, RuleKind, Snapshot,
    Status,
};

use super::control::{Call, Reply, Request};
use super::store::Store;
use super::worker::{Command, Report, Worker};
use super::Mitigator;
use crate::bus::{AttackRecord, Bus, Message, MitigationEvent, MitigationNotice};
use crate::clock::unix_ms;
use crate::events::log_line;
use crate::logging::log;
use crate::status::{HeldCount, MitigationStatus, MitigatorStatus, StatusBoard};

/// Which clock the plan runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanClock {
    /// The daemon: now.
    Wall,
    /// A replay: each event's own time, so hold-downs and flap windows follow the capture.
    Telemetry,
}

/// Everything the actions own. Without a store and mitigators it plans only (a replay).
pub struct Actions {
    pub planner: Planner,
    pub clock: PlanClock,
    pub store: Option<Store>,
    pub mitigators: Vec<Box<dyn Mitigator>>,
    pub status: Option<Arc<StatusBoard>>,
}

/// The running actions thread.
pub struct ActionsHandle {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl ActionsHandle {
    /// Handles every event already published, withdraws (or keeps, `keep_on_shutdown`) the
    /// rules, saves the snapshot and stops the mitigators.
    pub fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the actions thread panicked"))
    }
}

const TICK: Duration = Duration::from_millis(100);

/// The store on its own thread: snapshots are written in order, the latest of a burst once.
struct Persister {
    tx: Option<Sender<(Snapshot, Option<Sender<()>>)>>,
    thread: Option<JoinHandle<()>>,
}

impl Persister {
    fn start(mut store: Store) -> Result<Persister> {
        let (tx, rx) = crossbeam_channel::unbounded::<(Snapshot, Option<Sender<()>>)>();
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
                    // The disk-error policy: a full or broken disk must not stop mitigation
                    // during an attack; the rules still go out, and the log says (each time)
                    // that a restart would not know them.
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

    /// Queues the snapshot; with `signal`, the returned receiver hears once it is on disk (or
    /// failed to be).
    fn save(&self, snapshot: Snapshot, signal: bool) -> Option<Receiver<()>> {
        let tx = self.tx.as_ref()?;
        if signal {
            let (ack_tx, ack_rx) = crossbeam_channel::bounded(1);
            tx.send((snapshot, Some(ack_tx))).ok()?;
            Some(ack_rx)
        } else {
            let _ = tx.send((snapshot, None));
            None
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

/// An attack record waiting for the mitigators' answers on the rules it announced.
struct PendingRecord {
    record: AttackRecord,
    waiting: BTreeSet<String>,
}

/// An announcement waiting for its workers.
struct Awaited {
    answers_due: usize,
    outcome: Vec<Delivery>,
    mitigation: Mitigation,
}

/// A manual announcement whose caller waits for the mitigators' answers.
struct PendingReply {
    mitigation: Mitigation,
    reply: Sender<Reply>,
}

impl Actions {
    /// Starts the thread; it resumes from the store first. It reads attack events from
    /// `events` (a bus queue of [`crate::bus::Topic::Detected`]) and operators' requests from
    /// `control`, and publishes records and notices on `bus`.
    pub fn spawn(
        self,
        events: Receiver<Message>,
        control: Receiver<Call>,
        bus: Bus,
    ) -> Result<ActionsHandle> {
        let Actions {
            mut planner,
            clock,
            store,
            mitigators,
            status,
        } = self;
        let keep = planner.config().keep_on_shutdown;
        let (reports_tx, reports) = crossbeam_channel::unbounded();
        let mut workers = Vec::with_capacity(mitigators.len());
        for (index, mitigator) in mitigators.into_iter().enumerate() {
            workers.push(Worker::spawn(index, mitigator, reports_tx.clone(), keep)?);
        }
        let mut changes = Vec::new();
        let persister = match store {
            Some(store) => {
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
                Some(Persister::start(store)?)
            }
            None => None,
        };
        let mut thread = ActionsThread {
            planner,
            clock,
            persister,
            workers,
            channels: Vec::new(),
            bus,
            status,
            awaited: BTreeMap::new(),
            settled: BTreeMap::new(),
            records: VecDeque::new(),
            replies: Vec::new(),
            _reports: reports_tx,
        };
        thread.channels = vec![Vec::new(); thread.workers.len()];
        thread.commit(&mut changes);
        let held: BTreeSet<String> = thread
            .planner
            .held()
            .map(|h| h.mitigation.id.clone())
            .collect();
        for worker in &mut thread.workers {
            worker.send(Command::WithdrawStale { held: held.clone() });
        }
        let (stop_tx, stop) = crossbeam_channel::bounded(1);
        let handle = std::thread::Builder::new()
            .name("actions".into())
            .spawn(move || thread.run(events, control, reports, stop))?;
        Ok(ActionsHandle {
            stop: stop_tx,
            thread: handle,
        })
    }
}

/// The actions thread's state once started.
struct ActionsThread {
    planner: Planner,
    clock: PlanClock,
    persister: Option<Persister>,
    workers: Vec<Worker>,
    /// Each worker's channels as last reported.
    channels: Vec<Vec<super::Channel>>,
    bus: Bus,
    status: Option<Arc<StatusBoard>>,
    /// Announcements the workers have not all answered, by mitigation id.
    awaited: BTreeMap<String, Awaited>,
    /// Announcements every worker answered: what they did, by mitigation id, until the
    /// records that wait for them are out.
    settled: BTreeMap<String, Vec<Delivery>>,
    /// Records in event order; the head is published once its announcements are answered.
    records: VecDeque<PendingRecord>,
    replies: Vec<PendingReply>,
    /// Kept so that the reports channel never disconnects (with no mitigator, a disconnected
    /// channel would make `select!` spin).
    _reports: Sender<Report>,
}

impl ActionsThread {
    fn run(
        mut self,
        events: Receiver<Message>,
        control: Receiver<Call>,
        reports: Receiver<Report>,
        stop: Receiver<()>,
    ) {
        let mut changes = Vec::new();
        loop {
            select! {
                recv(events) -> message => match message {
                    Ok(Message::Detected(batch)) => self.on_events(&batch, &mut changes),
                    Ok(_) => {}
                    Err(_) => break,
                },
                recv(control) -> call => {
                    if let Ok((request, reply)) = call {
                        self.control(request, reply, &mut changes);
                    }
                }
                recv(reports) -> report => {
                    if let Ok(report) = report {
                        self.on_report(report);
                        self.forget_settled();
                    }
                }
                recv(stop) -> _ => {
                    // Everything the engine published before it said stop is queued: handle it.
                    while let Ok(message) = events.try_recv() {
                        if let Message::Detected(batch) = message {
                            self.on_events(&batch, &mut changes);
                        }
                    }
                    break;
                }
                default(TICK) => {}
            }
            if self.clock == PlanClock::Wall {
                self.planner.tick(unix_ms(), &mut changes);
                self.commit(&mut changes);
            }
        }
        self.planner.shutdown(&mut changes);
        self.commit(&mut changes);
        if let Some(persister) = &mut self.persister {
            persister.close();
        }
        // The workers finish their queues (the withdrawals above), then shut down; their last
        // answers complete the records still waiting.
        for worker in &mut self.workers {
            worker.stop();
        }
        while let Ok(report) = reports.try_recv() {
            self.on_report(report);
        }
        self.flush_records(true);
    }

    fn now(&self, event: &AttackEvent) -> u64 {
        match self.clock {
            PlanClock::Wall => unix_ms(),
            PlanClock::Telemetry => event.ts,
        }
    }

    fn on_events(&mut self, events: &[AttackEvent], changes: &mut Vec<Change>) {
        let mut records = Vec::with_capacity(events.len());
        for event in events {
            let now = self.now(event);
            if self.clock == PlanClock::Telemetry {
                self.planner.tick(now, changes);
            }
            let decisions = self.planner.on_event(event, now, changes);
            if self.clock == PlanClock::Wall {
                log(log_line(event));
            }
            records.push(AttackRecord {
                event: event.clone(),
                decisions,
            });
        }
        let quiet = changes.is_empty();
        let announced = self.commit(changes);
        if quiet && !events.is_empty() {
            // Events change the plan without a change for the network too (an attack ended, a
            // rule adopted): the store keeps up (identical snapshots cost nothing).
            if let Some(persister) = &self.persister {
                persister.save(self.planner.snapshot(), false);
            }
        }
        for record in records {
            let waiting = record
                .decisions
                .iter()
                .filter(|d| d.status == Status::Announced && announced.contains(&d.id))
                .map(|d| d.id.clone())
                .collect();
            self.records.push_back(PendingRecord { record, waiting });
        }
        self.flush_records(false);
        self.forget_settled();
    }

    /// Publishes the records whose announcements are answered, in order.
    fn flush_records(&mut self, all: bool) {
        while let Some(head) = self.records.front() {
            if !all && head.waiting.iter().any(|id| self.awaited.contains_key(id)) {
                break;
            }
            let Some(PendingRecord { mut record, .. }) = self.records.pop_front() else {
                break;
            };
            settle(&mut record.decisions, &self.settled);
            self.bus.publish(Message::Attack(Arc::new(record)));
        }
    }

    /// Outcomes no record waits for any more are forgotten (called once a step is done, never
    /// between an announcement and the records that name it).
    fn forget_settled(&mut self) {
        if self.records.is_empty() {
            self.settled.clear();
        }
    }

    /// Persists the plan and hands the changes to the workers, in the order that keeps every
    /// rule in the network known to the next start. Returns the ids announced.
    fn commit(&mut self, changes: &mut Vec<Change>) -> BTreeSet<String> {
        let mut announced = BTreeSet::new();
        if changes.is_empty() {
            return announced;
        }
        let write_ahead = changes
            .iter()
            .any(|c| matches!(c, Change::Announce(m) if !m.dry_run))
            && self.workers.iter().any(|w| w.outlives_process);
        let snapshot = self.planner.snapshot();
        let on_disk = self
            .persister
            .as_ref()
            .and_then(|p| p.save(snapshot, write_ahead));
        for change in changes.drain(..) {
            match change {
                Change::Announce(m) if m.dry_run => {
                    if self.clock == PlanClock::Wall {
                        log_dry_run(&m, None)
                    }
                }
                Change::Withdraw { mitigation, reason } if mitigation.dry_run => {
                    if self.clock == PlanClock::Wall {
                        log_dry_run(&mitigation, Some(&reason.to_string()))
                    }
                }
                Change::Announce(m) => {
                    announced.insert(m.id.clone());
                    self.announce(m, on_disk.as_ref());
                }
                Change::Withdraw { mitigation, reason } => {
                    log(format!(
                        "mitigation withdrawn: {} {} ({reason})",
                        mitigation.id, mitigation.rule
                    ));
                    for worker in &mut self.workers {
                        worker.send(Command::Withdraw {
                            mitigation: mitigation.clone(),
                        });
                    }
                    self.notice(MitigationNotice {
                        event: MitigationEvent::MitigationWithdrawn,
                        ts: floodwall_detect::time::rfc3339_ms(unix_ms()),
                        mitigation,
                        mitigators: None,
                        reason: Some(reason.to_string()),
                    });
                }
            }
        }
        self.publish_status();
        announced
    }

    /// Hands a rule to every worker; the answers come back as reports.
    fn announce(&mut self, m: Mitigation, on_disk: Option<&Receiver<()>>) {
        if self.workers.is_empty() {
            self.awaited.insert(
                m.id.clone(),
                Awaited {
                    answers_due: 0,
                    outcome: Vec::new(),
                    mitigation: m.clone(),
                },
            );
            self.complete(&m.id);
            return;
        }
        for worker in &mut self.workers {
            let after = if worker.outlives_process {
                on_disk.cloned()
            } else {
                None
            };
            worker.send(Command::Announce {
                mitigation: m.clone(),
                after,
            });
        }
        self.awaited.insert(
            m.id.clone(),
            Awaited {
                answers_due: self.workers.len(),
                outcome: Vec::new(),
                mitigation: m,
            },
        );
    }

    fn on_report(&mut self, report: Report) {
        match report {
            Report::Announced {
                worker,
                id,
                delivery,
            } => {
                if let Some(w) = self.workers.get_mut(worker) {
                    w.pending = w.pending.saturating_sub(1);
                }
                let Some(awaited) = self.awaited.get_mut(&id) else {
                    return;
                };
                awaited.outcome.extend(delivery);
                awaited.answers_due = awaited.answers_due.saturating_sub(1);
                if awaited.answers_due == 0 {
                    self.complete(&id);
                }
            }
            Report::Delivered { worker, id, detail } => {
                let name = self
                    .workers
                    .get(worker)
                    .map(|w| w.name.clone())
                    .unwrap_or_default();
                let Some(held) = self.planner.held().find(|h| h.mitigation.id == id) else {
                    return;
                };
                let mitigation = held.mitigation.clone();
                log(format!(
                    "mitigation announced: {id} {} (queued, now sent by {name} {detail})",
                    mitigation.rule
                ));
                self.notice(MitigationNotice {
                    event: MitigationEvent::MitigationAnnounced,
                    ts: floodwall_detect::time::rfc3339_ms(unix_ms()),
                    mitigation,
                    mitigators: Some(vec![Delivery {
                        mitigator: name,
                        status: Status::Announced,
                        detail: Some(detail),
                    }]),
                    reason: None,
                });
            }
            Report::Health { worker, channels } => {
                if let Some(slot) = self.channels.get_mut(worker) {
                    *slot = channels;
                }
                self.publish_status();
            }
        }
    }

    /// Every worker answered an announcement: log, tell, answer a waiting operator, and let
    /// the records that wait for it go.
    fn complete(&mut self, id: &str) {
        let Some(Awaited {
            mut outcome,
            mitigation: m,
            ..
        }) = self.awaited.remove(id)
        else {
            return;
        };
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
        let status = status_of(&outcome);
        let why = outcome
            .iter()
            .filter_map(|d| d.detail.as_deref().map(|t| format!("{}: {t}", d.mitigator)))
            .collect::<Vec<_>>()
            .join("; ");
        log(match status {
            Status::Announced => format!("mitigation announced: {} {} ({why})", m.id, m.rule),
            Status::Queued => format!(
                "mitigation queued, not announced yet: {} {} ({why})",
                m.id, m.rule
            ),
            _ => format!(
                "error: mitigation not announced: {} {} ({why})",
                m.id, m.rule
            ),
        });
        let event = match status {
            Status::Announced => MitigationEvent::MitigationAnnounced,
            Status::Queued => MitigationEvent::MitigationQueued,
            _ => MitigationEvent::MitigationFailed,
        };
        self.notice(MitigationNotice {
            event,
            ts: floodwall_detect::time::rfc3339_ms(unix_ms()),
            mitigation: m.clone(),
            mitigators: Some(outcome.clone()),
            reason: None,
        });
        if let Some(i) = self.replies.iter().position(|r| r.mitigation.id == m.id) {
            let pending = self.replies.swap_remove(i);
            let _ = pending.reply.send(Reply::announced(
                pending.mitigation,
                status,
                outcome.clone(),
            ));
        }
        self.settled.insert(m.id, outcome);
        self.flush_records(false);
        self.publish_status();
    }

    fn notice(&self, notice: MitigationNotice) {
        self.bus.publish(Message::Mitigation(Arc::new(notice)));
    }

    /// The actions' part of the status snapshot.
    fn publish_status(&self) {
        let Some(board) = &self.status else { return };
        board.set_mitigation(MitigationStatus {
            held: self.planner.held().count(),
            held_by_kind: HeldCount::tally(self.planner.held()),
            mitigators: self
                .workers
                .iter()
                .zip(&self.channels)
                .map(|(w, channels)| MitigatorStatus {
                    name: w.name.clone(),
                    queued: w.pending,
                    channels: channels.clone(),
                })
                .collect(),
        });
    }

    fn control(&mut self, request: Request, reply: Sender<Reply>, changes: &mut Vec<Change>) {
        let now = unix_ms();
        let answer = match request {
            Request::List => Reply::list(self.planner.held().cloned().collect()),
            // The control thread answers status itself; should one come here, answer it too.
            Request::Status => match &self.status {
                Some(board) => Reply::status(board.latest()),
                None => Reply::error("no status here"),
            },
            Request::Announce {
                target,
                kind,
                filter,
                seconds,
            } => match self
                .manual_rule(target, kind, filter)
                .and_then(|rule| self.planner.announce_manual(rule, seconds, now, changes))
            {
                Ok(m) if m.dry_run => {
                    self.commit(changes);
                    Reply::announced(m, Status::DryRun, Vec::new())
                }
                Ok(m) => {
                    // Answered when the mitigators have (at once if there are none).
                    self.replies.push(PendingReply {
                        mitigation: m.clone(),
                        reply,
                    });
                    let announced = self.commit(changes);
                    self.forget_settled();
                    if announced.contains(&m.id) {
                        return;
                    }
                    // Already held: nothing new went out.
                    let Some(i) = self.replies.iter().position(|r| r.mitigation.id == m.id) else {
                        return;
                    };
                    let pending = self.replies.swap_remove(i);
                    let _ = pending
                        .reply
                        .send(Reply::announced(m, Status::Held, Vec::new()));
                    return;
                }
                Err(refusal) => Reply::error(&refusal.to_string()),
            },
            Request::Withdraw { id } => {
                let result = self.planner.withdraw_manual(&id, changes);
                self.commit(changes);
                match result {
                    Ok(m) => Reply::withdrawn(m),
                    Err(message) => Reply::error(&message.to_string()),
                }
            }
        };
        let _ = reply.send(answer);
    }

    /// A rule for a manual announcement, with the configured next hops, communities, action.
    fn manual_rule(
        &self,
        target: ipnet::IpNet,
        kind: RuleKind,
        filter: Option<FlowFilter>,
    ) -> Result<Rule, Refusal> {
        let config = self.planner.config();
        match kind {
            RuleKind::Blackhole => Ok(Rule::Blackhole {
                prefix: target,
                next_hop: if target.addr().is_ipv6() {
                    config.blackhole.next_hop_v6
                } else {
                    config.blackhole.next_hop_v4
                },
                communities: config.blackhole.communities.clone(),
            }),
            RuleKind::Flowspec => {
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
        }
    }
}

fn log_dry_run(mitigation: &Mitigation, reason: Option<&String>) {
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
fn settle(decisions: &mut [Decision], settled: &BTreeMap<String, Vec<Delivery>>) {
    for d in decisions {
        if d.status != Status::Announced {
            continue;
        }
        if let Some(outcome) = settled.get(&d.id) {
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
    use crate::bus::{Backpressure, BusBuilder, Topic};
    use floodwall_detect::event::{Direction, EventKind, Evidence, Trigger};
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
                kind: floodwall_detect::event::TriggerKind::Threshold,
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
            campaign: None,
            source_sketch: None,
        }
    }

    fn planner(dry_run: bool) -> Planner {
        let mut config = MitigationConfig::default();
        config.blackhole.enabled = true;
        config.dry_run = dry_run;
        let scope = Scope {
            networks: vec![("203.0.113.0/24".parse().unwrap(), "default".into())],
            broadest_v4: 24,
            broadest_v6: 48,
        };
        Planner::new(config, scope).unwrap()
    }

    /// An attack's end changes the plan (its rule's hold-down begins) without a change for the
    /// network: the store must still hear of it, or a restart would think the attack active.
    #[test]
    fn the_store_follows_the_plan_when_events_change_nothing_in_the_network() {
        let dir = std::env::temp_dir().join(format!("floodwall-actions-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut bus = BusBuilder::new(Backpressure::Wait);
        let detected = bus.queue("actions", &[Topic::Detected]);
        let bus = bus.start().unwrap();
        let actions = Actions {
            planner: planner(true),
            clock: PlanClock::Wall,
            store: Some(Store::open(&dir).unwrap()),
            mitigators: Vec::new(),
            status: None,
        }
        .spawn(detected, crossbeam_channel::never(), bus.clone())
        .unwrap();
        for kind in [EventKind::AttackStarted, EventKind::AttackEnded] {
            bus.publish(Message::Detected(Arc::new(vec![event(kind)])));
        }
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
        actions.stop().unwrap();
        assert!(ended, "the store never heard the attack ended");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A mitigator that takes its time: the record of an attack waits for its answer, the
    /// plan does not, and a second mitigator's rule is not held up by the first's I/O.
    struct Slow {
        name: &'static str,
        delay: Duration,
    }

    impl Mitigator for Slow {
        fn name(&self) -> &str {
            self.name
        }
        fn accepts(&self, _rule: &Rule) -> bool {
            true
        }
        fn announce(&mut self, _m: &Mitigation) -> Result<super::super::Outcome> {
            std::thread::sleep(self.delay);
            Ok(super::super::Outcome::Sent(format!(
                "after {:?}",
                self.delay
            )))
        }
        fn withdraw(&mut self, _m: &Mitigation) -> Result<()> {
            Ok(())
        }
        fn shutdown(&mut self, _keep: bool) -> Result<()> {
            Ok(())
        }
    }

    struct Records(crossbeam_channel::Sender<(Topic, String)>);

    impl crate::bus::Subscriber for Records {
        fn name(&self) -> &str {
            "records"
        }
        fn topics(&self) -> &[Topic] {
            &[Topic::Attack, Topic::Mitigation]
        }
        fn handle(&mut self, message: &Message) -> anyhow::Result<()> {
            let text = match message {
                Message::Attack(r) => serde_json::to_string(r.as_ref())?,
                Message::Mitigation(n) => serde_json::to_string(n.as_ref())?,
                _ => return Ok(()),
            };
            let _ = self.0.send((message.topic(), text));
            Ok(())
        }
    }

    #[test]
    fn a_record_waits_for_every_mitigators_answer_and_says_what_each_did() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut bus = BusBuilder::new(Backpressure::Wait);
        let detected = bus.queue("actions", &[Topic::Detected]);
        bus.subscribe(Box::new(Records(tx)));
        let bus = bus.start().unwrap();
        let actions = Actions {
            planner: planner(false),
            clock: PlanClock::Wall,
            store: None,
            mitigators: vec![
                Box::new(Slow {
                    name: "fast",
                    delay: Duration::ZERO,
                }),
                Box::new(Slow {
                    name: "slow",
                    delay: Duration::from_millis(300),
                }),
            ],
            status: None,
        }
        .spawn(detected, crossbeam_channel::never(), bus.clone())
        .unwrap();
        bus.publish(Message::Detected(Arc::new(vec![event(
            EventKind::AttackStarted,
        )])));
        let (topic, notice) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(topic, Topic::Mitigation);
        assert!(notice.contains("\"mitigation_announced\""), "{notice}");
        let (topic, record) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(topic, Topic::Attack);
        assert!(record.contains("\"status\":\"announced\""), "{record}");
        assert!(record.contains("\"mitigator\":\"fast\""), "{record}");
        assert!(record.contains("\"mitigator\":\"slow\""), "{record}");
        actions.stop().unwrap();
        drop(bus);
    }

    /// CPU ticks (1/100 s) used so far by this process's threads of that name.
    fn thread_ticks(name: &str) -> u64 {
        let mut ticks = 0;
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim() != name {
                continue;
            }
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            // After the command in parentheses: state is field 3, utime 14, stime 15.
            let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or_default();
            let fields: Vec<&str> = rest.split_whitespace().collect();
            ticks += fields
                .get(11)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0);
            ticks += fields
                .get(12)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0);
        }
        ticks
    }

    /// With no mitigator and no control socket (a replay, or a daemon that only detects), the
    /// actions thread waits for work: it must not spin on channels that have no sender.
    #[test]
    fn idle_actions_without_mitigators_sleep() {
        let mut bus = BusBuilder::new(Backpressure::Wait);
        let detected = bus.queue("actions", &[Topic::Detected]);
        let bus = bus.start().unwrap();
        let actions = Actions {
            planner: planner(true),
            clock: PlanClock::Telemetry,
            store: None,
            mitigators: Vec::new(),
            status: None,
        }
        .spawn(detected, crossbeam_channel::never(), bus.clone())
        .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let before = thread_ticks("actions");
        std::thread::sleep(Duration::from_secs(1));
        let used = thread_ticks("actions") - before;
        actions.stop().unwrap();
        // A spinning thread uses ~100 ticks a second; a waiting one a few at most.
        assert!(
            used < 20,
            "the idle actions thread used {used} ticks in a second"
        );
    }
}
