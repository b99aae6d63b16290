//! One peer: connect, run the session, back off, reconnect — on its own thread.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use rustbgpd_wire::{encode_message, DecodeError, Message, NotificationCode, NotificationMessage};
use socket2::{Domain, Protocol, Socket, Type};

use crate::encode::{self, Route, RouteKey, SessionEncoding};
use crate::fsm::{Fsm, LocalOpen, MessageReader, Negotiated, Step};
use crate::{Family, PeerConfig, PeerStatus, SessionState, SpeakerConfig};

/// A TCP connect that takes longer is a failed attempt (and delays shutdown at most this long).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A peer that stops reading for this long is dead to us; writes must not hang the session.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// RFC 4271 §8: the large hold time while waiting for the peer's OPEN.
const OPEN_HOLD_TIME: Duration = Duration::from_secs(240);
/// Table changes are sent this long after the first of them, so that a burst (an attack
/// wave, a withdrawal of everything) goes out in a few packed UPDATEs rather than one each.
const BATCH_WINDOW: Duration = Duration::from_millis(10);
/// A session that stayed up this long resets the reconnect backoff to its minimum.
const STABLE_SESSION: Duration = Duration::from_secs(30);
/// After our last message (NOTIFICATION or GR close) we half-close and give the peer this
/// long to read everything and close its side, so nothing we sent is lost to a reset.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// State shared by the speaker's handle and its peer threads.
pub(crate) struct Shared {
    pub config: SpeakerConfig,
    /// The Adj-RIB-Out: every route we want the peers to hold.
    pub table: Mutex<BTreeMap<RouteKey, Arc<Route>>>,
    pub status: Mutex<Vec<PeerStatus>>,
    pub status_changed: Condvar,
}

impl Shared {
    pub fn status(&self) -> MutexGuard<'_, Vec<PeerStatus>> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn table(&self) -> MutexGuard<'_, BTreeMap<RouteKey, Arc<Route>>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) enum Event {
    Received { connection: u64, message: Message },
    Malformed { connection: u64, error: DecodeError },
    Closed { connection: u64, reason: String },
    TableChanged,
    Shutdown { keep: bool },
}

enum End {
    /// The speaker is shutting down: the thread exits.
    Shutdown,
    Failed {
        reason: String,
        established_for: Option<Duration>,
    },
}

pub(crate) struct PeerThread {
    pub index: usize,
    pub peer: PeerConfig,
    pub shared: Arc<Shared>,
    pub events: Receiver<Event>,
    /// For this peer's reader threads.
    pub sender: Sender<Event>,
}

impl PeerThread {
    fn update(&self, change: impl FnOnce(&mut PeerStatus)) {
        let mut status = self.shared.status();
        change(&mut status[self.index]);
        drop(status);
        self.shared.status_changed.notify_all();
    }

    pub fn run(self) {
        let config = self.shared.config.clone();
        let mut backoff = config.connect_retry_min;
        let mut connection = 0u64;
        loop {
            self.update(|s| s.state = SessionState::Connect);
            let end = match connect(&self.peer) {
                Ok(stream) => {
                    connection += 1;
                    self.session(stream, connection)
                }
                Err(e) => End::Failed {
                    reason: format!("connecting to {}: {e}", self.peer.address),
                    established_for: None,
                },
            };
            let (reason, established_for) = match end {
                End::Shutdown => {
                    self.update(|s| {
                        s.state = SessionState::Idle;
                        s.established_since = None;
                        s.routes_advertised = 0;
                    });
                    return;
                }
                End::Failed {
                    reason,
                    established_for,
                } => (reason, established_for),
            };
            if established_for.is_some_and(|d| d >= STABLE_SESSION) {
                backoff = config.connect_retry_min;
            }
            self.update(|s| {
                s.state = SessionState::Idle;
                s.established_since = None;
                s.routes_advertised = 0;
                s.families.clear();
                s.last_error = Some(reason);
            });
            // Wait out the backoff; table changes reach the peer with the next session.
            let until = Instant::now() + backoff;
            loop {
                let left = until.saturating_duration_since(Instant::now());
                match self.events.recv_timeout(left) {
                    Ok(Event::Shutdown { .. }) | Err(RecvTimeoutError::Disconnected) => {
                        self.update(|s| s.state = SessionState::Idle);
                        return;
                    }
                    Ok(_) => continue,
                    Err(RecvTimeoutError::Timeout) => break,
                }
            }
            backoff = (backoff * 2).min(config.connect_retry_max.max(config.connect_retry_min));
        }
    }

    fn session(&self, stream: TcpStream, connection: u64) -> End {
        let reader = match stream.try_clone() {
            Ok(read_half) => {
                let sender = self.sender.clone();
                thread::Builder::new()
                    .name(format!("bgp-read-{}", self.peer.name))
                    .spawn(move || read_messages(read_half, sender, connection))
            }
            Err(e) => Err(e),
        };
        let reader = match reader {
            Ok(reader) => reader,
            Err(e) => {
                return End::Failed {
                    reason: format!("starting the reader: {e}"),
                    established_for: None,
                }
            }
        };
        let mut session = Session {
            thread: self,
            stream,
            connection,
            fsm: Fsm::open_sent(self.local_open()),
            sent: HashMap::new(),
            established_at: None,
            shutdown_requested: false,
        };
        let end = session.run();
        let established_for = session.established_at.map(|at| at.elapsed());
        let _ = session.stream.shutdown(Shutdown::Both);
        let _ = reader.join();
        match end {
            _ if session.shutdown_requested => End::Shutdown,
            End::Failed { reason, .. } => End::Failed {
                reason,
                established_for,
            },
            End::Shutdown => End::Shutdown,
        }
    }

    fn local_open(&self) -> LocalOpen {
        let config = &self.shared.config;
        let hold = config.hold_time.as_secs().min(u64::from(u16::MAX)) as u16;
        LocalOpen {
            local_as: config.local_as,
            router_id: config.router_id,
            // RFC 4271 §4.2: 0 or at least 3.
            hold_time: if hold == 1 || hold == 2 { 3 } else { hold },
            families: self.peer.families.clone(),
            graceful_restart: config.graceful_restart,
            remote_as: self.peer.remote_as,
        }
    }
}

fn connect(peer: &PeerConfig) -> std::io::Result<TcpStream> {
    let socket = Socket::new(
        Domain::for_address(peer.address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    if let Some(local) = peer.local_address {
        socket.bind(&SocketAddr::new(local, 0).into())?;
    }
    socket.connect_timeout(&peer.address.into(), CONNECT_TIMEOUT)?;
    let stream: TcpStream = socket.into();
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    Ok(stream)
}

/// The reader thread: frames and decodes what the peer sends until the connection ends.
fn read_messages(mut stream: TcpStream, events: Sender<Event>, connection: u64) {
    let mut reader = MessageReader::default();
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut buffer) {
            Ok(0) => {
                let reason = "peer closed the connection".to_string();
                let _ = events.send(Event::Closed { connection, reason });
                return;
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let reason = format!("reading from the peer: {e}");
                let _ = events.send(Event::Closed { connection, reason });
                return;
            }
        };
        reader.push(&buffer[..n]);
        loop {
            match reader.next_message() {
                Ok(Some(message)) => {
                    if events
                        .send(Event::Received {
                            connection,
                            message,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    let _ = events.send(Event::Malformed { connection, error });
                    return;
                }
            }
        }
    }
}

struct Session<'a> {
    thread: &'a PeerThread,
    stream: TcpStream,
    connection: u64,
    fsm: Fsm,
    /// What this peer holds from us: the table as of our last sync, for the negotiated
    /// families only.
    sent: HashMap<RouteKey, Arc<Route>>,
    established_at: Option<Instant>,
    /// A shutdown that arrived while closing for another reason.
    shutdown_requested: bool,
}

fn failed(reason: impl Into<String>) -> End {
    End::Failed {
        reason: reason.into(),
        established_for: None,
    }
}

impl Session<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), End> {
        self.stream
            .write_all(bytes)
            .map_err(|e| failed(format!("writing to the peer: {e}")))
    }

    fn send(&mut self, message: &Message) -> Result<(), End> {
        let bytes = encode_message(message).map_err(|e| failed(format!("encoding: {e}")))?;
        self.write(&bytes)
    }

    fn negotiated(&self) -> Option<&Negotiated> {
        self.fsm.negotiated.as_ref()
    }

    fn run(&mut self) -> End {
        match self.run_until_end() {
            Ok(end) | Err(end) => end,
        }
    }

    fn run_until_end(&mut self) -> Result<End, End> {
        self.send(&Message::Open(self.fsm.local.message()))?;
        self.thread.update(|s| s.state = SessionState::OpenSent);
        let mut hold_deadline = Instant::now() + OPEN_HOLD_TIME;
        let mut keepalive_at: Option<Instant> = None;
        // When the first table change since the last sync arrived.
        let mut dirty_since: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if now >= hold_deadline {
                let expired =
                    NotificationMessage::new(NotificationCode::HoldTimerExpired, 0, Bytes::new());
                self.close_with(Some(expired));
                return Ok(failed("hold timer expired"));
            }
            if let Some(at) = keepalive_at.filter(|&at| now >= at) {
                self.send(&Message::Keepalive)?;
                let interval = self.negotiated().and_then(|n| n.keepalive_interval());
                keepalive_at = interval.map(|i| (at + i).max(now));
            }
            let established = self.fsm.state == SessionState::Established;
            let event = if let (Some(since), true) = (dirty_since, established) {
                let flush_at = since + BATCH_WINDOW;
                match self
                    .thread
                    .events
                    .recv_timeout(flush_at.saturating_duration_since(now))
                {
                    Ok(event) => event,
                    Err(RecvTimeoutError::Timeout) => {
                        self.sync()?;
                        dirty_since = None;
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => Event::Shutdown { keep: true },
                }
            } else {
                let wake = keepalive_at.map_or(hold_deadline, |k| k.min(hold_deadline));
                match self
                    .thread
                    .events
                    .recv_timeout(wake.saturating_duration_since(now))
                {
                    Ok(event) => event,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => Event::Shutdown { keep: true },
                }
            };
            let step = match event {
                Event::TableChanged => {
                    dirty_since.get_or_insert_with(Instant::now);
                    continue;
                }
                Event::Shutdown { keep } => {
                    self.shutdown(keep);
                    return Ok(End::Shutdown);
                }
                Event::Received {
                    connection,
                    message,
                } if connection == self.connection => {
                    if let Some(hold) = self.negotiated().map(|n| n.hold_time) {
                        if !hold.is_zero() {
                            hold_deadline = Instant::now() + hold;
                        }
                    }
                    self.fsm.on_message(message)
                }
                Event::Malformed { connection, error } if connection == self.connection => {
                    self.fsm.on_decode_error(&error)
                }
                Event::Closed { connection, reason } if connection == self.connection => {
                    return Ok(failed(reason));
                }
                // Left over from an earlier connection.
                _ => continue,
            };
            match step {
                Step::Nothing => {}
                Step::Confirm => {
                    self.send(&Message::Keepalive)?;
                    self.thread.update(|s| s.state = SessionState::OpenConfirm);
                    let negotiated = self.negotiated().cloned().expect("set by the OPEN");
                    let now = Instant::now();
                    hold_deadline = if negotiated.hold_time.is_zero() {
                        // No hold timer: the session lives until TCP says otherwise.
                        now + Duration::from_secs(100 * 365 * 24 * 3600)
                    } else {
                        now + negotiated.hold_time
                    };
                    keepalive_at = negotiated.keepalive_interval().map(|i| now + i);
                }
                Step::Established => {
                    self.established_at = Some(Instant::now());
                    let families = self.negotiated().map(|n| n.families.clone());
                    self.thread.update(|s| {
                        s.state = SessionState::Established;
                        s.established_since = Some(SystemTime::now());
                        s.sessions_established += 1;
                        s.families = families.unwrap_or_default();
                        s.last_error = None;
                    });
                    self.sync()?;
                    dirty_since = None;
                    let families = self.negotiated().map(|n| n.families.clone());
                    let end_of_rib: Vec<u8> = families
                        .unwrap_or_default()
                        .into_iter()
                        .flat_map(encode::end_of_rib)
                        .collect();
                    self.write(&end_of_rib)?;
                }
                Step::Refresh(family) => {
                    self.sent.retain(|(f, _), _| *f != family);
                    dirty_since.get_or_insert_with(Instant::now);
                }
                Step::Close {
                    notification,
                    reason,
                    malformed,
                } => {
                    if malformed {
                        self.thread.update(|s| s.malformed_messages += 1);
                    }
                    self.close_with(notification);
                    return Ok(failed(reason));
                }
            }
        }
    }

    /// Sends what changed in the table since the last sync: withdrawals first, then
    /// announcements packed by shared attributes.
    fn sync(&mut self) -> Result<(), End> {
        let Some(negotiated) = self.negotiated().cloned() else {
            return Ok(());
        };
        let table = self.thread.shared.table().clone();
        let mut withdrawn: BTreeMap<Family, Vec<RouteKey>> = BTreeMap::new();
        for key in self.sent.keys() {
            if !table.contains_key(key) {
                withdrawn.entry(key.0).or_default().push(key.clone());
            }
        }
        let announced: Vec<(&RouteKey, &Arc<Route>)> = table
            .iter()
            .filter(|(key, route)| {
                negotiated.families.contains(&key.0)
                    && self.sent.get(*key).is_none_or(|sent| **sent != ***route)
            })
            .collect();
        if withdrawn.is_empty() && announced.is_empty() {
            return Ok(());
        }
        let mut messages = Vec::new();
        for (family, keys) in &withdrawn {
            let nlris: Vec<&[u8]> = keys.iter().map(|k| k.1.as_slice()).collect();
            messages.extend(encode::withdrawals(*family, &nlris));
        }
        let encoding = SessionEncoding {
            local_as: self.thread.shared.config.local_as,
            ibgp: negotiated.ibgp,
            four_octet_as: negotiated.four_octet_as,
        };
        let routes: Vec<&Route> = announced.iter().map(|(_, r)| r.as_ref()).collect();
        messages.extend(encode::announcements(encoding, &routes));
        self.write(&messages.concat())?;
        for keys in withdrawn.values() {
            for key in keys {
                self.sent.remove(key);
            }
        }
        for (key, route) in announced {
            self.sent.insert(key.clone(), route.clone());
        }
        let (count, advertised) = (messages.len() as u64, self.sent.len());
        self.thread.update(|s| {
            s.updates_sent += count;
            s.routes_advertised = advertised;
        });
        Ok(())
    }

    fn shutdown(&mut self, keep: bool) {
        if keep {
            // No NOTIFICATION: a Graceful Restart helper treats a plain TCP close as our
            // restart and keeps the routes (stale) until we are back.
            self.close_with(None);
            return;
        }
        if self.fsm.state == SessionState::Established {
            let mut by_family: BTreeMap<Family, Vec<&[u8]>> = BTreeMap::new();
            for key in self.sent.keys() {
                by_family.entry(key.0).or_default().push(&key.1);
            }
            let messages: Vec<u8> = by_family
                .iter()
                .flat_map(|(family, nlris)| encode::withdrawals(*family, nlris))
                .flatten()
                .collect();
            if self.write(&messages).is_ok() {
                self.sent.clear();
            }
        }
        // RFC 4486 subcode 2: Administrative Shutdown.
        let cease = NotificationMessage::new(NotificationCode::Cease, 2, Bytes::new());
        self.close_with(Some(cease));
    }

    /// Sends `notification` if any, then half-closes and waits (bounded) for the peer to
    /// close, so it reads everything before the connection goes away.
    fn close_with(&mut self, notification: Option<NotificationMessage>) {
        if let Some(notification) = notification {
            let _ = self.send(&Message::Notification(notification));
        }
        let _ = self.stream.shutdown(Shutdown::Write);
        let until = Instant::now() + CLOSE_GRACE;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.thread.events.recv_timeout(left) {
                Ok(Event::Closed { connection, .. } | Event::Malformed { connection, .. })
                    if connection == self.connection =>
                {
                    break
                }
                // Not lost: the thread exits after this session instead of reconnecting.
                Ok(Event::Shutdown { .. }) => self.shutdown_requested = true,
                Err(RecvTimeoutError::Disconnected) => {
                    self.shutdown_requested = true;
                    break;
                }
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => break,
            }
        }
        self.fsm.state = SessionState::Idle;
    }
}
