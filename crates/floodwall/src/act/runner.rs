//! The actions thread: attack events in, the plan's changes out to every mitigator, the event
//! record (with the mitigations it caused) to the events file, notices to webhooks and
//! scripts. The snapshot is saved before a change leaves, so a crash never loses a rule the
//! network holds.

use std::io::Write;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Result;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use floodwall_detect::AttackEvent;
use floodwall_mitigate::{Change, FlowFilter, Mitigation, Planner, Rule};
use serde_json::{json, Value};

use super::control::{self, Request, Response};
use super::store::Store;
use super::{Mitigator, Notifier};
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

const TICK: Duration = Duration::from_millis(100);
/// How long a stopping daemon waits for webhooks and scripts to deliver what is queued.
const NOTIFY_GRACE: Duration = Duration::from_secs(5);

impl Actions {
    /// Starts the thread; it resumes from the store first. [`Input::Stop`] (or every sender
    /// gone) stops it: rules are withdrawn (or kept with `keep_on_shutdown`), the snapshot saved.
    pub fn spawn(mut self, input: Receiver<Input>) -> Result<JoinHandle<Result<()>>> {
        let mut changes = Vec::new();
        match self.store.load() {
            Ok(Some(snapshot)) => {
                log(format!(
                    "resuming {} mitigations from {}",
                    snapshot.held.len(),
                    self.store.path().display()
                ));
                self.planner.restore(snapshot, unix_ms(), &mut changes);
            }
            Ok(None) => {}
            Err((_, why)) => log(format!("error: {why}")),
        }
        self.commit(&mut changes)?;
        let held: std::collections::BTreeSet<String> = self
            .planner
            .held()
            .map(|h| h.mitigation.id.clone())
            .collect();
        for mitigator in &mut self.mitigators {
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
            .spawn(move || self.run(input))?)
    }

    fn run(mut self, input: Receiver<Input>) -> Result<()> {
        let mut changes = Vec::new();
        let mut health: Health = vec![Vec::new(); self.mitigators.len()];
        loop {
            self.log_health(&mut health);
            match input.recv_timeout(TICK) {
                Ok(Input::Events(events)) => {
                    let now = unix_ms();
                    let mut records = Vec::with_capacity(events.len());
                    for event in &events {
                        let decisions = self.planner.on_event(event, now, &mut changes);
                        let record = event_record(event, &decisions)?;
                        log(log_line(event));
                        records.push(record);
                    }
                    // Saved before the events are written: a record never names a rule the
                    // store does not hold.
                    self.save_if(&changes, !events.is_empty())?;
                    for record in &records {
                        serde_json::to_writer(&mut self.events, record)?;
                        self.events.write_all(b"\n")?;
                    }
                    self.events.flush()?;
                    self.apply(&mut changes);
                    for record in &records {
                        self.notify(record);
                    }
                }
                Ok(Input::Control(request, reply)) => {
                    let response = self.control(request, &mut changes);
                    self.commit(&mut changes)?;
                    let _ = reply.send(response);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Ok(Input::Stop) | Err(RecvTimeoutError::Disconnected) => break,
            }
            self.planner.tick(unix_ms(), &mut changes);
            self.commit(&mut changes)?;
        }
        self.planner.shutdown(&mut changes);
        self.commit(&mut changes)?;
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

    /// Saves the snapshot, then carries the changes out.
    fn commit(&mut self, changes: &mut Vec<Change>) -> Result<()> {
        self.save_if(changes, false)?;
        self.apply(changes);
        Ok(())
    }

    fn save_if(&mut self, changes: &[Change], touched: bool) -> Result<()> {
        if changes.is_empty() && !touched {
            return Ok(());
        }
        // A full or broken disk must not stop mitigation during an attack: the rules still go
        // out, and the log says (each time) that a restart would not know them.
        if let Err(e) = self.store.save(&self.planner.snapshot()) {
            log(format!(
                "error: {e:#}; mitigations go on, but a restart now would not resume them"
            ));
        }
        Ok(())
    }

    fn apply(&mut self, changes: &mut Vec<Change>) {
        for change in changes.drain(..) {
            let (verb, mitigation, reason) = match &change {
                Change::Announce(m) => ("announced", m, None),
                Change::Withdraw { mitigation, reason } => ("withdrawn", mitigation, Some(*reason)),
            };
            let dry = if mitigation.dry_run {
                "dry run, not "
            } else {
                ""
            };
            log(format!(
                "mitigation {}{verb}: {} {}{}",
                dry,
                mitigation.id,
                mitigation.rule,
                reason.map(|r| format!(" ({r})")).unwrap_or_default()
            ));
            if !mitigation.dry_run {
                for mitigator in &mut self.mitigators {
                    if !mitigator.accepts(&mitigation.rule) {
                        continue;
                    }
                    let result = match &change {
                        Change::Announce(m) => mitigator.announce(m),
                        Change::Withdraw { mitigation, .. } => mitigator.withdraw(mitigation),
                    };
                    if let Err(e) = result {
                        log(format!(
                            "error: {} could not be {verb} by {}: {e:#}",
                            mitigation.id,
                            mitigator.name()
                        ));
                    }
                }
            }
            let notice = json!({
                "event": format!("mitigation_{verb}"),
                "ts": floodwall_detect::time::rfc3339_ms(unix_ms()),
                "mitigation": mitigation,
                "reason": reason,
            });
            self.notify(&notice);
        }
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
            } => self
                .manual_rule(target, &kind, filter)
                .and_then(|rule| self.planner.announce_manual(rule, seconds, now, changes))
                .map(|m: Mitigation| json!({ "mitigation": m })),
            Request::Withdraw { id } => self
                .planner
                .withdraw_manual(&id, changes)
                .map(|m| json!({ "mitigation": m })),
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
    ) -> Result<Rule, String> {
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
                    return Err(format!(
                        "the filter's destination {} is not the target {target}",
                        filter.destination
                    ));
                }
                Ok(Rule::Filter {
                    filter,
                    action: config.flow_action(),
                    communities: config.flowspec.communities.clone(),
                })
            }
            other => Err(format!("unknown kind `{other}`: use blackhole or flowspec")),
        }
    }
}
