//! One thread per mitigator: its commands queue up in order and its I/O (a BGP UPDATE, an
//! ExaBGP acknowledgement, an `nft` call of up to 2 s) holds up only its own queue. What it did
//! comes back to the actions thread as [`Report`]s; the worker also watches its mitigator for
//! queued rules that went out and for sessions going up or down.

use std::collections::BTreeSet;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Result;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use floodwall_mitigate::{Delivery, Mitigation, Status};

use super::{Channel, Mitigator, Outcome};
use crate::logging::log;

/// What the actions thread asks of a mitigator.
pub enum Command {
    /// Put the rule in the network; with `after`, once that signal came (the snapshot that
    /// names the rule is on disk).
    Announce {
        mitigation: Mitigation,
        after: Option<Receiver<()>>,
    },
    Withdraw {
        mitigation: Mitigation,
    },
    /// At start: take out what an earlier run left that is not held now.
    WithdrawStale {
        held: BTreeSet<String>,
    },
}

/// What a worker tells the actions thread.
#[derive(Debug)]
pub enum Report {
    /// The answer to an [`Command::Announce`]: what it did, or `None` if it does not carry
    /// rules of this kind.
    Announced {
        worker: usize,
        id: String,
        delivery: Option<Delivery>,
    },
    /// A queued rule went out.
    Delivered {
        worker: usize,
        id: String,
        detail: String,
    },
    /// Its channels changed.
    Health {
        worker: usize,
        channels: Vec<Channel>,
    },
}

/// The actions thread's handle on one worker.
pub struct Worker {
    pub name: String,
    /// Its rules outlive the process unseen (ExaBGP): announce only what is on disk.
    pub outlives_process: bool,
    commands: Option<Sender<Command>>,
    thread: Option<JoinHandle<()>>,
    /// Announcements sent and not answered yet.
    pub pending: usize,
}

/// How often an idle worker looks at its mitigator's queued rules and channels.
const POLL: Duration = Duration::from_millis(100);

impl Worker {
    /// Starts the thread; `keep` is what it does with its rules when the actions end.
    pub fn spawn(
        index: usize,
        mut mitigator: Box<dyn Mitigator>,
        reports: Sender<Report>,
        keep: bool,
    ) -> Result<Worker> {
        let name = mitigator.name().to_string();
        let outlives_process = mitigator.outlives_process();
        let (tx, rx) = crossbeam_channel::unbounded::<Command>();
        let thread = std::thread::Builder::new()
            .name(format!("mitigator-{name}"))
            .spawn(move || {
                let mut channels = Vec::new();
                loop {
                    watch(index, mitigator.as_mut(), &reports, &mut channels);
                    match rx.recv_timeout(POLL) {
                        Ok(command) => execute(index, mitigator.as_mut(), command, &reports),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                if let Err(e) = mitigator.shutdown(keep) {
                    log(format!("error: {} shutdown: {e:#}", mitigator.name()));
                }
            })?;
        Ok(Worker {
            name,
            outlives_process,
            commands: Some(tx),
            thread: Some(thread),
            pending: 0,
        })
    }

    pub fn send(&mut self, command: Command) {
        if matches!(command, Command::Announce { .. }) {
            self.pending += 1;
        }
        if let Some(tx) = &self.commands {
            let _ = tx.send(command);
        }
    }

    /// Finishes the queue, shuts the mitigator down and joins the thread.
    pub fn stop(&mut self) {
        self.commands = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn execute(index: usize, m: &mut dyn Mitigator, command: Command, reports: &Sender<Report>) {
    match command {
        Command::Announce { mitigation, after } => {
            let delivery = m.accepts(&mitigation.rule).then(|| {
                if let Some(after) = after {
                    let _ = after.recv();
                }
                let (status, detail) = match m.announce(&mitigation) {
                    Ok(Outcome::Sent(where_)) => (Status::Announced, where_),
                    Ok(Outcome::Queued(why)) => (Status::Queued, why),
                    Err(e) => (Status::Failed, format!("{e:#}")),
                };
                Delivery {
                    mitigator: m.name().to_string(),
                    status,
                    detail: Some(detail),
                }
            });
            let _ = reports.send(Report::Announced {
                worker: index,
                id: mitigation.id,
                delivery,
            });
        }
        Command::Withdraw { mitigation } => {
            if m.accepts(&mitigation.rule) {
                if let Err(e) = m.withdraw(&mitigation) {
                    log(format!(
                        "error: {} could not be withdrawn by {}: {e:#}",
                        mitigation.id,
                        m.name()
                    ));
                }
            }
        }
        Command::WithdrawStale { held } => match m.withdraw_stale(&held) {
            Ok(stale) if !stale.is_empty() => log(format!(
                "{}: withdrew {} rules an earlier run left: {}",
                m.name(),
                stale.len(),
                stale.join(", ")
            )),
            Ok(_) => {}
            Err(e) => log(format!(
                "error: {} could not check for rules an earlier run left: {e:#}",
                m.name()
            )),
        },
    }
}

/// Logs channels going up or down (a peer refusing the session included) and reports queued
/// rules that went out.
fn watch(index: usize, m: &mut dyn Mitigator, reports: &Sender<Report>, last: &mut Vec<Channel>) {
    let now = m.health();
    if now != *last {
        for channel in &now {
            if !last.contains(channel) {
                log(channel.to_string());
            }
        }
        *last = now.clone();
        let _ = reports.send(Report::Health {
            worker: index,
            channels: now,
        });
    }
    for (id, detail) in m.delivered() {
        let _ = reports.send(Report::Delivered {
            worker: index,
            id,
            detail,
        });
    }
}
