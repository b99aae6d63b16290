//! The bus: typed messages from the engine and the actions to every subscriber — the events
//! file, notifiers, and whatever attaches next (history store, API, metrics, hunting).
//!
//! Each subscriber has its own bounded queue and thread, and names the topics it wants, so a
//! message is copied only (as an `Arc`) to those who asked. One policy for slow or failing
//! subscribers, so that none can hold up detection or mitigation:
//! - **Full queue**: live, the message is dropped *for that subscriber* and counted
//!   ([`Backpressure::Drop`]); a replay has no clock to fall behind, so it waits
//!   ([`Backpressure::Wait`]) and loses nothing.
//! - **Failing subscriber** (an error from [`Subscriber::handle`], a full disk say): counted,
//!   logged the first time and then at most once a minute, and the subscriber goes on
//!   receiving. The first error is kept for the end of the run ([`Bus::close`]).
//! - **Gone subscriber** (its thread ended): counted as dropped from then on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use floodwall_detect::AttackEvent;
use floodwall_hunt::{HuntEvent, InfectedHost};
use floodwall_mitigate::{Decision, Delivery, Mitigation};
use serde::{Deserialize, Serialize};

use crate::logging::log;
use crate::status::{Status, SubscriberStats};

/// What travels on the bus.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Message {
    /// Attack events as the engine emitted them from one batch of records or one tick.
    Detected(Arc<Vec<AttackEvent>>),
    /// One attack event with what the mitigation plan did about it: the events file's record.
    Attack(Arc<AttackRecord>),
    /// A rule entering or leaving the network (or failing to).
    Mitigation(Arc<MitigationNotice>),
    /// The periodic snapshot of collectors, engine, attacks and mitigators.
    Status(Arc<Status>),
    /// A host listed as infected (or its reasons changed), a campaign formed or grown: the
    /// events file's `infected_host` and `campaign` lines.
    Hunt(Arc<HuntEvent>),
    /// The current records of listed hosts whose evidence grew since the last such message
    /// (about once a minute): what reports read, not an event line.
    Infected(Arc<Vec<InfectedHost>>),
}

/// The kinds of [`Message`], for subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    Detected,
    Attack,
    Mitigation,
    Status,
    Hunt,
    Infected,
}

impl Message {
    pub fn topic(&self) -> Topic {
        match self {
            Message::Detected(_) => Topic::Detected,
            Message::Attack(_) => Topic::Attack,
            Message::Mitigation(_) => Topic::Mitigation,
            Message::Status(_) => Topic::Status,
            Message::Hunt(_) => Topic::Hunt,
            Message::Infected(_) => Topic::Infected,
        }
    }
}

/// An attack event and the plan's decisions about it (empty when it caused none), each with
/// what the mitigators did: the README's event object with `mitigations`, as the events file,
/// `replay --json` and notifiers carry it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttackRecord {
    #[serde(flatten)]
    pub event: AttackEvent,
    #[serde(rename = "mitigations", default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<Decision>,
}

/// What happened to a rule, as webhooks and scripts are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MitigationEvent {
    /// In the network now.
    MitigationAnnounced,
    /// Taken by a mitigator that sends it when it can (no BGP session up yet).
    MitigationQueued,
    /// No mitigator put it in the network.
    MitigationFailed,
    MitigationWithdrawn,
}

/// A rule entering or leaving the network: the notice's JSON object is
/// `{"event", "ts", "mitigation", "mitigators" | "reason"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MitigationNotice {
    pub event: MitigationEvent,
    /// RFC 3339, milliseconds.
    pub ts: String,
    pub mitigation: Mitigation,
    /// What each mitigator did (announcements).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitigators: Option<Vec<Delivery>>,
    /// Why it was withdrawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a full queue does to the publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backpressure {
    /// Drop the message for that subscriber and count it: live telemetry cannot wait.
    Drop,
    /// Wait for room: a replay loses nothing and has no clock to fall behind.
    Wait,
}

/// A component that reads the bus on its own thread.
pub trait Subscriber: Send + 'static {
    /// For logs and counters: `events-file`, `notify`, …
    fn name(&self) -> &str;
    fn topics(&self) -> &[Topic];
    /// Handles one message. An error is counted and logged (see the module's policy); the
    /// subscriber keeps receiving.
    fn handle(&mut self, message: &Message) -> anyhow::Result<()>;
    /// The queue is empty for now: write out what is buffered.
    fn idle(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
    /// The bus closes: finish (deliver what is queued, flush).
    fn close(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
}

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

struct Subscription {
    name: String,
    topics: Vec<Topic>,
    queue: Sender<Message>,
    counters: Arc<Counters>,
}

/// The publishing side; cheap to clone (the engine and the actions both publish).
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

struct Inner {
    subscriptions: Vec<Subscription>,
    backpressure: Backpressure,
    threads: Mutex<Vec<JoinHandle<Option<anyhow::Error>>>>,
}

/// Queue length per subscriber: minutes of attack events; a queue this deep that fills means
/// the subscriber is stuck, not slow.
pub const QUEUE: usize = 4096;

/// Collects subscriptions before the bus starts.
pub struct BusBuilder {
    backpressure: Backpressure,
    subscriptions: Vec<Subscription>,
    pending: Vec<Pending>,
}

/// A subscriber waiting for the bus to start, with its queue and counters.
type Pending = (Box<dyn Subscriber>, Receiver<Message>, Arc<Counters>);

impl BusBuilder {
    pub fn new(backpressure: Backpressure) -> BusBuilder {
        BusBuilder {
            backpressure,
            subscriptions: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// A subscriber run on its own thread once the bus starts.
    pub fn subscribe(&mut self, subscriber: Box<dyn Subscriber>) {
        let (queue, rx) = self.channel(subscriber.name().to_string(), subscriber.topics());
        let counters = self.subscriptions.last().map(|s| s.counters.clone());
        drop(queue);
        self.pending
            .push((subscriber, rx, counters.unwrap_or_default()));
    }

    /// A queue read by a component that runs its own loop (the actions thread): the receiving
    /// end of the topics named.
    pub fn queue(&mut self, name: &str, topics: &[Topic]) -> Receiver<Message> {
        self.channel(name.to_string(), topics).1
    }

    fn channel(&mut self, name: String, topics: &[Topic]) -> (Sender<Message>, Receiver<Message>) {
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        self.subscriptions.push(Subscription {
            name,
            topics: topics.to_vec(),
            queue: tx.clone(),
            counters: Arc::new(Counters::default()),
        });
        (tx, rx)
    }

    /// Starts the subscribers' threads.
    pub fn start(self) -> anyhow::Result<Bus> {
        let mut threads = Vec::new();
        for (subscriber, rx, counters) in self.pending {
            let name = subscriber.name().to_string();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("bus-{name}"))
                    .spawn(move || run_subscriber(subscriber, rx, counters))?,
            );
        }
        Ok(Bus {
            inner: Arc::new(Inner {
                subscriptions: self.subscriptions,
                backpressure: self.backpressure,
                threads: Mutex::new(threads),
            }),
        })
    }
}

/// How often a failing subscriber's errors are logged after the first.
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(60);

fn run_subscriber(
    mut subscriber: Box<dyn Subscriber>,
    rx: Receiver<Message>,
    counters: Arc<Counters>,
) -> Option<anyhow::Error> {
    let mut first_error: Option<anyhow::Error> = None;
    let mut last_logged: Option<Instant> = None;
    let mut unlogged = 0u64;
    let mut failed = |error: anyhow::Error, name: &str| {
        counters.failed.fetch_add(1, Ordering::Relaxed);
        if last_logged.is_none_or(|at| at.elapsed() >= FAILURE_LOG_EVERY) {
            let more = if unlogged > 0 {
                format!(" ({unlogged} more failures since the last report)")
            } else {
                String::new()
            };
            log(format!(
                "error: {name}: {error:#}{more}; detection and mitigation go on"
            ));
            last_logged = Some(Instant::now());
            unlogged = 0;
        } else {
            unlogged += 1;
        }
        first_error.get_or_insert(error);
    };
    loop {
        let message = match rx.try_recv() {
            Ok(message) => message,
            Err(_) => {
                if let Err(e) = subscriber.idle() {
                    let name = subscriber.name().to_string();
                    failed(e, &name);
                }
                match rx.recv_timeout(Duration::from_millis(500)) {
                    Ok(message) => message,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
        };
        if let Err(e) = subscriber.handle(&message) {
            let name = subscriber.name().to_string();
            failed(e, &name);
        }
    }
    if let Err(e) = subscriber.idle().and_then(|()| subscriber.close()) {
        let name = subscriber.name().to_string();
        failed(e, &name);
    }
    first_error
}

impl Bus {
    /// Hands the message to every subscriber of its topic, as the backpressure says.
    pub fn publish(&self, message: Message) {
        let topic = message.topic();
        for s in &self.inner.subscriptions {
            if !s.topics.contains(&topic) {
                continue;
            }
            let sent = match self.inner.backpressure {
                Backpressure::Wait => s.queue.send(message.clone()).is_ok(),
                Backpressure::Drop => match s.queue.try_send(message.clone()) {
                    Ok(()) => true,
                    Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
                },
            };
            let counter = if sent {
                &s.counters.delivered
            } else {
                &s.counters.dropped
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether anyone listens to the topic (a publisher can skip building the message).
    pub fn wants(&self, topic: Topic) -> bool {
        self.inner
            .subscriptions
            .iter()
            .any(|s| s.topics.contains(&topic))
    }

    pub fn stats(&self) -> Vec<SubscriberStats> {
        self.inner
            .subscriptions
            .iter()
            .map(|s| SubscriberStats {
                name: s.name.clone(),
                delivered: s.counters.delivered.load(Ordering::Relaxed),
                dropped: s.counters.dropped.load(Ordering::Relaxed),
                failed: s.counters.failed.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Ends the bus once every publisher is done: the subscriber threads drain their queues,
    /// close, and are joined. Returns the first error of each subscriber that had one.
    /// Other clones of the bus must be dropped first, or their queues stay open.
    pub fn close(self) -> Vec<(String, anyhow::Error)> {
        let Ok(inner) = Arc::try_unwrap(self.inner) else {
            // Another handle still publishes: the subscribers cannot be waited for, and what
            // is queued may be lost. A pipeline drops every other handle first.
            log("the bus was closed while still shared: its subscribers were not drained");
            return Vec::new();
        };
        drop(inner.subscriptions);
        let threads = inner
            .threads
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        let mut errors = Vec::new();
        for thread in threads {
            let name = thread.thread().name().unwrap_or("bus").to_string();
            match thread.join() {
                Ok(Some(error)) => {
                    errors.push((name.trim_start_matches("bus-").to_string(), error))
                }
                Ok(None) => {}
                Err(_) => errors.push((name, anyhow::anyhow!("the subscriber panicked"))),
            }
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Collect {
        topics: Vec<Topic>,
        seen: Arc<Mutex<Vec<Topic>>>,
        fail: bool,
        delay: Duration,
    }

    impl Subscriber for Collect {
        fn name(&self) -> &str {
            "collect"
        }
        fn topics(&self) -> &[Topic] {
            &self.topics
        }
        fn handle(&mut self, message: &Message) -> anyhow::Result<()> {
            std::thread::sleep(self.delay);
            self.seen.lock().unwrap().push(message.topic());
            if self.fail {
                anyhow::bail!("disk full");
            }
            Ok(())
        }
    }

    fn status() -> Message {
        Message::Status(Arc::new(Status::default()))
    }

    fn detected() -> Message {
        Message::Detected(Arc::new(Vec::new()))
    }

    #[test]
    fn subscribers_get_their_topics_in_order_and_a_failing_one_keeps_receiving() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut builder = BusBuilder::new(Backpressure::Wait);
        builder.subscribe(Box::new(Collect {
            topics: vec![Topic::Status],
            seen: seen.clone(),
            fail: true,
            delay: Duration::ZERO,
        }));
        let bus = builder.start().unwrap();
        for _ in 0..3 {
            bus.publish(detected());
            bus.publish(status());
        }
        let stats = bus.stats();
        let errors = bus.close();
        assert_eq!(*seen.lock().unwrap(), vec![Topic::Status; 3]);
        assert_eq!(stats[0].delivered, 3);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].1.to_string().contains("disk full"));
    }

    /// Live, a stuck subscriber loses messages (counted); the publisher never waits on it.
    #[test]
    fn live_a_full_queue_drops_and_counts_instead_of_waiting() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut builder = BusBuilder::new(Backpressure::Drop);
        builder.subscribe(Box::new(Collect {
            topics: vec![Topic::Status],
            seen: seen.clone(),
            fail: false,
            delay: Duration::from_millis(1),
        }));
        let bus = builder.start().unwrap();
        let n = QUEUE as u64 + 100;
        for _ in 0..n {
            bus.publish(status());
        }
        let stats = bus.stats();
        assert_eq!(stats[0].delivered + stats[0].dropped, n);
        assert!(stats[0].dropped > 0, "{stats:?}");
        assert!(bus.close().is_empty());
        assert_eq!(seen.lock().unwrap().len() as u64, stats[0].delivered);
    }
}
