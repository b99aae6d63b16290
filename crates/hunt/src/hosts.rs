//! Infected hosts: which hosts of the monitored networks behave as bots.
//!
//! Four kinds of evidence, each a [`Reason`] with its own confidence:
//! - **outgoing attacks** the engine reported with a host of ours as the source;
//! - **scanning**: TCP SYNs without ACK, to the ports the Mirai family probes, towards many
//!   distinct destinations. At 1:1000 sampling a 160 probes/s scanner yields a sample every
//!   ~6 s, each to a new random address, so the test is on the *sampled* distinct
//!   destinations: how unlikely they are if the host had probed fewer than
//!   `scan_min_destinations` within the window (a Poisson tail at the sampling rate). A host
//!   whose records to those ports are mostly not bare SYNs (a NAT gateway's web traffic, a
//!   server) is not scanning, however many destinations it has;
//! - **C2 contacts**: traffic from a host of ours to an endpoint of a C2 feed;
//! - **beaconing**: connections to one external endpoint at a regular period. A weaker signal
//!   (NTP, monitoring agents and updaters beacon too): alone it lists no one.
//!
//! Memory is bounded by `max_hosts`: hosts followed (and, separately, beacon pairs); the
//! oldest unlisted go first. Deterministic: the same records give the same findings.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use floodwall_detect::networks::NetworkMap;
use floodwall_detect::{AttackEvent, DetectConfig, Direction, EventKind, Vector};
use floodwall_wire::record::{proto, tcp_flags};
use floodwall_wire::FlowRecord;
use ipnet::IpNet;

use crate::config::HuntConfig;
use crate::event::{HuntEvent, Indicator, InfectedHost, Reason, ReasonKind};
use crate::feed::C2List;

/// Ports where a bare SYN is a Mirai-family probe beyond doubt: telnet and the IoT exploit
/// ports. The others of `scan_ports` (SSH, HTTP) carry much legitimate traffic and need more
/// evidence.
const STRONG_PORTS: [u16; 8] = [23, 2323, 5555, 7547, 37215, 52869, 60001, 9527];
/// Distinct sampled destinations a scan needs at least, on the strong ports and on all.
const MIN_STRONG_DESTINATIONS: u64 = 3;
const MIN_WEAK_DESTINATIONS: u64 = 8;
/// Share of a host's records to the scan ports that must be bare SYNs: a scanner sends little
/// else there; any real connection sends at least an ACK and a request after its SYN.
const MIN_PROBE_SHARE: f64 = 0.8;
/// One-sided significance of "more than `scan_min_destinations`".
const SCAN_SIGNIFICANCE: f64 = 0.01;
/// Beaconing: regular intervals between connection starts.
const BEACON_MIN_INTERVALS: usize = 6;
const BEACON_MAX_JITTER: f64 = 0.1;
const BEACON_MIN_PERIOD_MS: u64 = 10_000;
const BEACON_MAX_PERIOD_MS: u64 = 6 * 3_600_000;
/// Starts closer than this are one burst (several flows of one check-in).
const BEACON_BURST_MS: u64 = 1_000;
/// Beacons are only told from near-unsampled telemetry: at 1:1000 a check-in is rarely seen.
const BEACON_MAX_SAMPLING: u32 = 10;
const BEACON_CONFIDENCE: f64 = 0.3;
/// A listed host with no new evidence for this long leaves the current list (its history
/// stays in the store).
pub const FORGET_AFTER_MS: u64 = 24 * 3_600_000;
/// Listed per reason: peers, ports, indicators.
const LISTED: usize = 8;

/// What the hunter has counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct HuntStats {
    pub records: u64,
    pub probes: u64,
    pub mirai_probes: u64,
    pub c2_contacts: u64,
    pub beacon_starts: u64,
    /// Hosts currently followed, and listed.
    pub hosts: u64,
    pub listed: u64,
    /// Hosts and beacon pairs forgotten to stay within `max_hosts`.
    pub evicted: u64,
}

/// Distinct 32-bit hashes: exact up to [`KMV`], then the K-minimum-values estimate.
#[derive(Debug, Clone, Default)]
struct Distinct {
    mins: Vec<u32>,
}

const KMV: usize = 64;

impl Distinct {
    fn insert(&mut self, h: u32) {
        if self.mins.contains(&h) {
            return;
        }
        if self.mins.len() < KMV {
            self.mins.push(h);
            return;
        }
        let (i, max) = self
            .mins
            .iter()
            .enumerate()
            .max_by_key(|(_, v)| **v)
            .map(|(i, v)| (i, *v))
            .expect("full");
        if h < max {
            self.mins[i] = h;
        }
    }

    fn estimate(&self) -> u64 {
        if self.mins.len() < KMV {
            return self.mins.len() as u64;
        }
        let max = f64::from(*self.mins.iter().max().expect("full")) + 1.0;
        ((KMV as f64 - 1.0) * 4_294_967_296.0 / max).round() as u64
    }
}

/// Scanning evidence of the current window.
#[derive(Debug, Clone, Default)]
struct Scan {
    window_start: u64,
    first_ms: u64,
    last_ms: u64,
    probes: u64,
    packets: u64,
    /// Records to the scan ports, probes included.
    port_records: u64,
    strong: Distinct,
    all: Distinct,
    rate_sum: u64,
    mirai: u64,
    ports: Vec<(u16, u64)>,
    examples: Vec<IpAddr>,
    /// The strongest finding so far (kept across windows).
    found: Option<Reason>,
}

#[derive(Debug, Clone, Default)]
struct C2Seen {
    first_ms: u64,
    last_ms: u64,
    records: u64,
    packets: u64,
    /// Distinct seconds with a contact.
    instants: u64,
    last_second: u64,
    with_port: bool,
    indicators: Vec<Indicator>,
    peers: Vec<IpAddr>,
    ports: Vec<u16>,
}

#[derive(Debug, Clone, Default)]
struct AttackSeen {
    first_ms: u64,
    last_ms: u64,
    samples: u64,
    packets: u64,
    confirmed: bool,
    ids: Vec<String>,
    vectors: Vec<Vector>,
    peers: Vec<IpAddr>,
}

#[derive(Debug, Default)]
struct Host {
    group: u16,
    scan: Option<Box<Scan>>,
    c2: Option<Box<C2Seen>>,
    beacon: Option<Box<Reason>>,
    attack: Option<Box<AttackSeen>>,
    /// The reason kinds last reported; empty while not listed.
    listed: Vec<ReasonKind>,
    /// In [`Hunter::updated`].
    updated: bool,
    first_seen: u64,
    last_seen: u64,
    dirty: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct BeaconKey {
    src: IpAddr,
    dst: IpAddr,
    port: u16,
    protocol: u8,
}

#[derive(Debug, Clone, Default)]
struct Beacon {
    starts: [u64; 16],
    n: usize,
    count: u64,
    last: u64,
}

/// The hunter: records, attack events and time in; `infected_host` events out.
pub struct Hunter {
    ignore: Vec<IpNet>,
    scan_ports: Box<[u64; 1024]>,
    window_ms: u64,
    min_destinations: f64,
    min_confidence: f64,
    max_hosts: usize,
    networks: NetworkMap,
    group_names: Vec<String>,
    /// Per hostgroup index, its networks (index 0: the monitored networks).
    group_nets: Vec<Vec<IpNet>>,
    c2: Arc<C2List>,
    hosts: HashMap<IpAddr, Host>,
    beacons: HashMap<BeaconKey, Beacon>,
    dirty: Vec<IpAddr>,
    /// Listed hosts judged with new evidence since [`Hunter::take_updated`].
    updated: Vec<IpAddr>,
    now_ms: u64,
    last_forget: u64,
    stats: HuntStats,
    events: Vec<HuntEvent>,
}

impl Hunter {
    pub fn new(config: &HuntConfig, detection: &DetectConfig) -> Hunter {
        let group_nets: Vec<Vec<IpNet>> = detection
            .hostgroups
            .iter()
            .map(|g| g.networks.clone())
            .collect();
        let networks = NetworkMap::new(&detection.networks, &group_nets);
        let mut scan_ports = Box::new([0u64; 1024]);
        for &p in &config.scan_ports {
            scan_ports[usize::from(p) / 64] |= 1 << (p % 64);
        }
        Hunter {
            ignore: config.ignore.clone(),
            scan_ports,
            window_ms: config.scan_window_seconds.max(1) * 1000,
            min_destinations: config.scan_min_destinations.max(1) as f64,
            min_confidence: config.min_confidence,
            max_hosts: config.max_hosts.max(16),
            networks,
            group_names: std::iter::once("default".to_string())
                .chain(detection.hostgroups.iter().map(|g| g.name.clone()))
                .collect(),
            group_nets: std::iter::once(detection.networks.clone())
                .chain(group_nets)
                .collect(),
            c2: Arc::new(C2List::default()),
            hosts: HashMap::new(),
            beacons: HashMap::new(),
            dirty: Vec::new(),
            updated: Vec::new(),
            now_ms: 0,
            last_forget: 0,
            stats: HuntStats::default(),
            events: Vec::new(),
        }
    }

    /// The C2 list to match against (the feeds were reloaded).
    pub fn set_c2(&mut self, list: Arc<C2List>) {
        self.c2 = list;
    }

    pub fn stats(&self) -> HuntStats {
        let mut s = self.stats;
        s.hosts = self.hosts.len() as u64;
        s.listed = self.hosts.values().filter(|h| !h.listed.is_empty()).count() as u64;
        s
    }

    /// The telemetry time the hunter has reached.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    #[inline]
    fn scan_port(&self, port: u16) -> bool {
        self.scan_ports[usize::from(port) / 64] & (1 << (port % 64)) != 0
    }

    /// Reads a batch of records.
    pub fn observe(&mut self, records: &[FlowRecord]) {
        let c2 = !self.c2.is_empty();
        for r in records {
            self.stats.records += 1;
            if r.time_ms / 1000 > self.now_ms / 1000 {
                // Judged every telemetry second, so findings carry the time they were made.
                self.tick(r.time_ms);
            }
            self.now_ms = self.now_ms.max(r.time_ms);
            let tcp = r.protocol == proto::TCP;
            let syn = tcp && r.tcp_flags & tcp_flags::SYN != 0;
            let scan_port = tcp && self.scan_port(r.dst_port);
            // Most records are none of it: sampled data packets of established flows.
            let unsampled = r.sampling_rate <= BEACON_MAX_SAMPLING;
            if !(c2 || syn || unsampled || (scan_port && !self.hosts.is_empty())) {
                continue;
            }
            let Some(group) = self.networks.lookup(r.src) else {
                continue;
            };
            let outbound = self.networks.lookup(r.dst).is_none();
            if c2 && outbound {
                self.c2_contact(r, group);
            }
            if scan_port {
                self.scan_record(r, group, syn && r.tcp_flags & tcp_flags::ACK == 0);
            }
            // A bare SYN to a scan port is a probe, not a check-in: scanners would flood the
            // beacon table with one-off pairs.
            let probe = scan_port && syn && r.tcp_flags & tcp_flags::ACK == 0;
            if outbound && r.sampling_rate <= BEACON_MAX_SAMPLING && check_in(r, syn, probe) {
                self.beacon_start(r, group);
            }
        }
    }

    fn ignored(&self, addr: IpAddr) -> bool {
        self.ignore.iter().any(|n| n.contains(&addr))
    }

    /// The host's entry, made if there is room (or room can be made).
    fn host(&mut self, addr: IpAddr, group: u16, at: u64) -> Option<&mut Host> {
        if !self.hosts.contains_key(&addr) {
            if self.ignored(addr) {
                return None;
            }
            if self.hosts.len() >= self.max_hosts {
                self.evict_hosts();
            }
            self.hosts.insert(
                addr,
                Host {
                    group,
                    first_seen: at,
                    last_seen: at,
                    ..Host::default()
                },
            );
        }
        let host = self.hosts.get_mut(&addr).expect("present");
        host.last_seen = host.last_seen.max(at);
        if !host.dirty {
            host.dirty = true;
            self.dirty.push(addr);
        }
        Some(host)
    }

    /// Forgets the oldest eighth of the unlisted hosts (all hosts if every one is listed).
    fn evict_hosts(&mut self) {
        let mut ages: Vec<(bool, u64, IpAddr)> = self
            .hosts
            .iter()
            .map(|(a, h)| (!h.listed.is_empty(), h.last_seen, *a))
            .collect();
        let n = (ages.len() / 8).max(1);
        ages.select_nth_unstable(n - 1);
        for (_, _, addr) in &ages[..n] {
            self.hosts.remove(addr);
        }
        self.dirty.retain(|a| self.hosts.contains_key(a));
        self.stats.evicted += n as u64;
    }

    fn scan_record(&mut self, r: &FlowRecord, group: u16, probe: bool) {
        let at = r.time_ms;
        let window = self.window_ms;
        if !probe {
            // Only counted for hosts already probing: the share of bare SYNs among their records.
            if let Some(host) = self.hosts.get_mut(&r.src) {
                if let Some(scan) = host.scan.as_mut() {
                    if at.saturating_sub(scan.window_start) <= window {
                        scan.port_records += 1;
                    }
                }
            }
            return;
        }
        self.stats.probes += 1;
        self.stats.mirai_probes += u64::from(r.seq_is_dst);
        let Some(host) = self.host(r.src, group, at) else {
            return;
        };
        let scan = host.scan.get_or_insert_with(|| {
            Box::new(Scan {
                window_start: at,
                first_ms: at,
                ..Scan::default()
            })
        });
        if at.saturating_sub(scan.window_start) > window {
            let found = scan.found.take();
            **scan = Scan {
                window_start: at,
                first_ms: at,
                found,
                ..Scan::default()
            };
        }
        scan.last_ms = scan.last_ms.max(at);
        scan.first_ms = scan.first_ms.min(at);
        scan.probes += 1;
        scan.port_records += 1;
        scan.packets = scan.packets.saturating_add(r.packets);
        scan.rate_sum = scan
            .rate_sum
            .saturating_add(u64::from(r.sampling_rate.max(1)));
        scan.mirai += u64::from(r.seq_is_dst);
        let h = floodwall_detect::fingerprint::hash_ip(r.dst) as u32;
        scan.all.insert(h);
        if STRONG_PORTS.contains(&r.dst_port) {
            scan.strong.insert(h);
        }
        if let Some((_, n)) = scan.ports.iter_mut().find(|(p, _)| *p == r.dst_port) {
            *n += 1;
        } else if scan.ports.len() < 16 {
            scan.ports.push((r.dst_port, 1));
        }
        if scan.examples.len() < 4 && !scan.examples.contains(&r.dst) {
            scan.examples.push(r.dst);
        }
    }

    fn c2_contact(&mut self, r: &FlowRecord, group: u16) {
        let Some(entry) = self.c2.lookup(r.dst, r.dst_port) else {
            return;
        };
        let indicator = Indicator {
            value: entry.value.clone(),
            feed: entry.feed.clone(),
            malware: entry.malware.clone(),
        };
        let with_port = entry.port.is_some();
        self.stats.c2_contacts += 1;
        let at = r.time_ms;
        let Some(host) = self.host(r.src, group, at) else {
            return;
        };
        let seen = host.c2.get_or_insert_with(|| {
            Box::new(C2Seen {
                first_ms: at,
                last_second: u64::MAX,
                ..C2Seen::default()
            })
        });
        seen.first_ms = seen.first_ms.min(at);
        seen.last_ms = seen.last_ms.max(at);
        seen.records += 1;
        seen.packets = seen.packets.saturating_add(r.packets);
        if at / 1000 != seen.last_second {
            seen.last_second = at / 1000;
            seen.instants += 1;
        }
        seen.with_port |= with_port;
        if seen.indicators.len() < LISTED && !seen.indicators.contains(&indicator) {
            seen.indicators.push(indicator);
        }
        if seen.peers.len() < LISTED && !seen.peers.contains(&r.dst) {
            seen.peers.push(r.dst);
        }
        if seen.ports.len() < LISTED && !seen.ports.contains(&r.dst_port) {
            seen.ports.push(r.dst_port);
        }
    }

    fn beacon_start(&mut self, r: &FlowRecord, group: u16) {
        let key = BeaconKey {
            src: r.src,
            dst: r.dst,
            port: r.dst_port,
            protocol: r.protocol,
        };
        let at = r.time_ms;
        if !self.beacons.contains_key(&key) {
            if self.ignored(r.src) {
                return;
            }
            if self.beacons.len() >= self.max_hosts {
                self.evict_beacons();
            }
        }
        let b = self.beacons.entry(key).or_default();
        if b.count > 0 && at.abs_diff(b.last) < BEACON_BURST_MS {
            return;
        }
        self.stats.beacon_starts += 1;
        b.starts[b.n % b.starts.len()] = at;
        b.n += 1;
        b.count += 1;
        b.last = at;
        let Some(reason) = beacon_reason(b, &key) else {
            return;
        };
        if let Some(host) = self.host(r.src, group, at) {
            let stronger = host
                .beacon
                .as_ref()
                .is_none_or(|old| old.peers == reason.peers || old.samples <= reason.samples);
            if stronger {
                host.beacon = Some(Box::new(reason));
            }
        }
    }

    fn evict_beacons(&mut self) {
        let mut ages: Vec<(u64, BeaconKey)> =
            self.beacons.iter().map(|(k, b)| (b.last, *k)).collect();
        let n = (ages.len() / 8).max(1);
        ages.select_nth_unstable_by_key(n - 1, |(last, _)| *last);
        for (_, k) in &ages[..n] {
            self.beacons.remove(k);
        }
        self.stats.evicted += n as u64;
    }

    /// Follows an attack event: outgoing attacks from a host of ours make it a suspect.
    pub fn attack(&mut self, event: &AttackEvent) {
        if event.direction != Direction::Outgoing {
            return;
        }
        // A prefix-wide outgoing flood names no single host.
        let Some(addr) = event.host() else {
            return;
        };
        let Some(group) = self.networks.lookup(addr) else {
            return;
        };
        let at = event.ts;
        self.now_ms = self.now_ms.max(at);
        let Some(host) = self.host(addr, group, at) else {
            return;
        };
        let seen = host.attack.get_or_insert_with(|| {
            Box::new(AttackSeen {
                first_ms: event.started_at,
                ..AttackSeen::default()
            })
        });
        seen.first_ms = seen.first_ms.min(event.started_at);
        seen.last_ms = seen.last_ms.max(event.ended_at.unwrap_or(at));
        seen.confirmed |= event.evidence.confirms();
        seen.samples = seen.samples.max(event.evidence.samples);
        seen.packets = seen.packets.max(event.peak_pps);
        if !seen.ids.contains(&event.attack_id) {
            if seen.ids.len() >= LISTED {
                seen.ids.remove(0);
            }
            seen.ids.push(event.attack_id.clone());
        }
        for v in &event.vectors {
            if !seen.vectors.contains(v) {
                seen.vectors.push(*v);
            }
        }
        seen.vectors.sort();
        for s in event.fingerprint.top_sources.iter().take(LISTED) {
            if seen.peers.len() < LISTED && !seen.peers.contains(&s.value) {
                seen.peers.push(s.value);
            }
        }
        if event.event == EventKind::AttackEnded {
            seen.last_ms = seen.last_ms.max(event.ended_at.unwrap_or(at));
        }
        // Judged at the event's time: records may have been read ahead of it.
        self.judge(addr, at.min(self.now_ms));
    }

    /// Judges the hosts with new evidence at telemetry time `now_ms`; listings and changes
    /// become events ([`Self::take_events`]).
    pub fn tick(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        for addr in &dirty {
            self.judge(*addr, self.now_ms);
        }
        dirty.clear();
        self.dirty = dirty;
        if self.now_ms.saturating_sub(self.last_forget) >= 10_000 {
            self.last_forget = self.now_ms;
            self.forget(self.now_ms);
        }
    }

    /// The current records of listed hosts with new evidence since the last call (for the
    /// store that reports read; listing changes are events of their own).
    pub fn take_updated(&mut self) -> Vec<InfectedHost> {
        let mut addrs = std::mem::take(&mut self.updated);
        addrs.sort_unstable();
        for a in &addrs {
            if let Some(h) = self.hosts.get_mut(a) {
                h.updated = false;
            }
        }
        addrs
            .into_iter()
            .filter_map(|a| self.record_of(a))
            .collect()
    }

    /// Judges one host's evidence at `ts`: a listing, or a change of its reasons, is an event.
    fn judge(&mut self, addr: IpAddr, ts: u64) {
        let Some(host) = self.hosts.get_mut(&addr) else {
            return;
        };
        host.dirty = false;
        if let Some(scan) = host.scan.as_mut() {
            if let Some(found) = scan_reason(scan, self.min_destinations) {
                let better = scan.found.as_ref().is_none_or(|old| {
                    found.confidence >= old.confidence || old.last_seen < found.first_seen
                });
                if better {
                    scan.found = Some(found);
                } else if let Some(old) = scan.found.as_mut() {
                    old.last_seen = old.last_seen.max(found.last_seen);
                }
            }
        }
        let Some(record) = self.record_of(addr) else {
            return;
        };
        if record.confidence < self.min_confidence {
            return;
        }
        let kinds: Vec<ReasonKind> = record.reasons.iter().map(|r| r.kind).collect();
        let host = self.hosts.get_mut(&addr).expect("present");
        if !host.listed.is_empty() && !host.updated {
            host.updated = true;
            self.updated.push(addr);
        }
        if host.listed != kinds {
            host.listed = kinds;
            self.events
                .push(HuntEvent::InfectedHost { ts, host: record });
        }
    }

    /// Listed hosts silent for [`FORGET_AFTER_MS`], and unlisted evidence older than the
    /// window, are dropped (every 10 s of telemetry time).
    fn forget(&mut self, now: u64) {
        let horizon = self.window_ms.max(60_000);
        self.hosts.retain(|_, h| {
            let age = now.saturating_sub(h.last_seen);
            if h.listed.is_empty() {
                age <= horizon || h.dirty
            } else {
                age <= FORGET_AFTER_MS
            }
        });
        let beacon_horizon = BEACON_MAX_PERIOD_MS * 2;
        if self.beacons.len() > 1024 {
            self.beacons
                .retain(|_, b| now.saturating_sub(b.last) <= beacon_horizon);
        }
    }

    /// The host's record as it stands (reasons with evidence, confidence), if it has any.
    pub fn record_of(&self, addr: IpAddr) -> Option<InfectedHost> {
        let host = self.hosts.get(&addr)?;
        let mut reasons = Vec::new();
        if let Some(a) = &host.attack {
            reasons.push(Reason {
                kind: ReasonKind::OutgoingAttack,
                first_seen: a.first_ms,
                last_seen: a.last_ms,
                confidence: if a.confirmed { 0.95 } else { 0.6 },
                samples: a.samples,
                packets: a.packets,
                peers: a.peers.clone(),
                vectors: a.vectors.clone(),
                attack_id: a.ids.last().cloned(),
                ..empty_reason(ReasonKind::OutgoingAttack)
            });
        }
        if let Some(found) = host.scan.as_ref().and_then(|s| s.found.clone()) {
            reasons.push(found);
        }
        if let Some(c) = &host.c2 {
            let base: f64 = if c.with_port { 0.7 } else { 0.5 };
            let confidence = (1.0 - (1.0 - base).powi(c.instants.min(64) as i32)).min(0.99);
            reasons.push(Reason {
                kind: ReasonKind::C2Contact,
                first_seen: c.first_ms,
                last_seen: c.last_ms,
                confidence: round3(confidence),
                samples: c.records,
                packets: c.packets,
                peers: c.peers.clone(),
                ports: c.ports.clone(),
                indicators: c.indicators.clone(),
                ..empty_reason(ReasonKind::C2Contact)
            });
        }
        if let Some(b) = &host.beacon {
            reasons.push((**b).clone());
        }
        if reasons.is_empty() {
            return None;
        }
        let confidence = 1.0 - reasons.iter().map(|r| 1.0 - r.confidence).product::<f64>();
        Some(InfectedHost {
            host: addr,
            prefix: self.prefix_of(addr, host.group),
            hostgroup: self.group_names[usize::from(host.group)].clone(),
            first_seen: reasons
                .iter()
                .map(|r| r.first_seen)
                .min()
                .unwrap_or(host.first_seen),
            last_seen: reasons
                .iter()
                .map(|r| r.last_seen)
                .max()
                .unwrap_or(host.last_seen),
            reasons,
            confidence: round3(confidence.min(0.999)),
        })
    }

    /// The hosts listed now, by address.
    pub fn listed(&self) -> Vec<InfectedHost> {
        let mut addrs: Vec<IpAddr> = self
            .hosts
            .iter()
            .filter(|(_, h)| !h.listed.is_empty())
            .map(|(a, _)| *a)
            .collect();
        addrs.sort_unstable();
        addrs
            .into_iter()
            .filter_map(|a| self.record_of(a))
            .collect()
    }

    /// The most specific hostgroup (or monitored) network holding `addr`.
    fn prefix_of(&self, addr: IpAddr, group: u16) -> Option<IpNet> {
        let nets = self.group_nets.get(usize::from(group))?;
        nets.iter()
            .chain(&self.group_nets[0])
            .filter(|n| n.contains(&addr))
            .max_by_key(|n| n.prefix_len())
            .copied()
    }

    /// Events since the last call.
    pub fn take_events(&mut self) -> Vec<HuntEvent> {
        std::mem::take(&mut self.events)
    }
}

/// Whether a record may be a check-in: a new TCP connection (not a scan probe), a heartbeat
/// on a kept connection (a packet or two of a few bytes: Mirai's bots send two every 60 s), or
/// a small UDP exchange. Bulk transfers, exported in periodic slices by the exporter's active
/// timeout, are not.
fn check_in(r: &FlowRecord, syn: bool, probe: bool) -> bool {
    let rate = u64::from(r.sampling_rate.max(1));
    let (packets, bytes) = (r.packets / rate, r.bytes / rate);
    match r.protocol {
        proto::TCP if syn => !probe,
        proto::TCP => packets <= 3 && bytes <= 200 * packets.max(1),
        proto::UDP => packets <= 20,
        _ => false,
    }
}

fn empty_reason(kind: ReasonKind) -> Reason {
    Reason {
        kind,
        first_seen: 0,
        last_seen: 0,
        confidence: 0.0,
        samples: 0,
        packets: 0,
        peers: Vec::new(),
        ports: Vec::new(),
        destinations_sampled: None,
        destinations_estimated: None,
        mirai_signature: None,
        attack_id: None,
        vectors: Vec::new(),
        indicators: Vec::new(),
        period_s: None,
        jitter: None,
    }
}

/// The scanning finding of the window so far, if the evidence makes one.
fn scan_reason(scan: &Scan, min_destinations: f64) -> Option<Reason> {
    if scan.probes == 0 {
        return None;
    }
    let share = scan.probes as f64 / scan.port_records.max(1) as f64;
    let (strong, all) = (scan.strong.estimate(), scan.all.estimate());
    // Spread: a flood hammers a few destinations; a scan rarely repeats one.
    let spread = all as f64 >= 0.5 * scan.probes as f64;
    let rate = scan.rate_sum as f64 / scan.probes as f64;
    let expected = min_destinations / rate;
    let mirai = scan.mirai;
    let evidence = if strong >= MIN_STRONG_DESTINATIONS {
        strong
    } else if all >= MIN_WEAK_DESTINATIONS {
        all
    } else {
        0
    };
    let p = if evidence == 0 {
        1.0
    } else {
        poisson_tail(evidence, expected)
    };
    // Two probes whose sequence number is their destination address are Mirai's own code.
    let signed = mirai >= 2 && strong >= 2;
    if !signed && (share < MIN_PROBE_SHARE || !spread || p > SCAN_SIGNIFICANCE) {
        return None;
    }
    let mut confidence = (1.0 - p).min(0.99);
    if mirai >= 1 {
        confidence = confidence.max(if signed { 0.99 } else { 0.95 });
    }
    let mut ports = scan.ports.clone();
    ports.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Some(Reason {
        kind: ReasonKind::Scanning,
        first_seen: scan.first_ms,
        last_seen: scan.last_ms,
        confidence: round3(confidence),
        samples: scan.probes,
        packets: scan.packets,
        peers: scan.examples.clone(),
        ports: ports.iter().take(LISTED).map(|(p, _)| *p).collect(),
        destinations_sampled: Some(all),
        destinations_estimated: Some((poisson_lower(all, 2.326) * rate).round() as u64),
        mirai_signature: (mirai > 0).then_some(mirai),
        ..empty_reason(ReasonKind::Scanning)
    })
}

/// The beaconing finding of one pair, if its last starts are regular.
fn beacon_reason(b: &Beacon, key: &BeaconKey) -> Option<Reason> {
    let len = b.starts.len();
    let n = b.n.min(len);
    if n < BEACON_MIN_INTERVALS + 1 {
        return None;
    }
    let mut starts: Vec<u64> = (0..n).map(|i| b.starts[(b.n - n + i) % len]).collect();
    starts.sort_unstable();
    let gaps: Vec<f64> = starts.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    if mean < BEACON_MIN_PERIOD_MS as f64 || mean > BEACON_MAX_PERIOD_MS as f64 {
        return None;
    }
    let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
    let jitter = var.sqrt() / mean;
    if jitter > BEACON_MAX_JITTER {
        return None;
    }
    Some(Reason {
        kind: ReasonKind::Beaconing,
        first_seen: starts[0],
        last_seen: b.last,
        confidence: BEACON_CONFIDENCE,
        samples: b.count,
        peers: vec![key.dst],
        ports: vec![key.port],
        period_s: Some((mean / 100.0).round() / 10.0),
        jitter: Some(round3(jitter)),
        ..empty_reason(ReasonKind::Beaconing)
    })
}

/// P(X ≥ k) for X ~ Poisson(λ): how unlikely `k` sampled destinations are if the host had
/// probed only λ·rate of them.
pub fn poisson_tail(k: u64, lambda: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if lambda <= 0.0 {
        return 0.0;
    }
    if lambda > 100.0 {
        // Normal approximation with continuity correction.
        let z = (k as f64 - 0.5 - lambda) / lambda.sqrt();
        return 0.5 * erfc(z / std::f64::consts::SQRT_2);
    }
    // 1 - P(X < k), summing the head in log space.
    let mut term = (-lambda).exp();
    let mut head = term;
    for i in 1..k.min(100_000) {
        term *= lambda / i as f64;
        head += term;
        if term < 1e-18 * head && i as f64 > lambda {
            break;
        }
    }
    (1.0 - head).max(0.0)
}

/// A lower confidence bound on a Poisson mean from `k` events (Wilson–Hilferty; `z` = 2.326
/// for 99 %).
fn poisson_lower(k: u64, z: f64) -> f64 {
    if k == 0 {
        return 0.0;
    }
    let k = k as f64;
    (k * (1.0 - 1.0 / (9.0 * k) - z / (3.0 * k.sqrt())).powi(3)).max(0.0)
}

/// Complementary error function (Numerical Recipes' erfcc, |error| < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::feed::C2Entry;

    fn detection() -> DetectConfig {
        DetectConfig {
            networks: vec!["198.51.100.0/24".parse().unwrap()],
            ..DetectConfig::default()
        }
    }

    fn v4(a: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
    }

    fn host(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, last))
    }

    fn record(src: IpAddr, dst: IpAddr, port: u16, flags: u8, rate: u32, t: u64) -> FlowRecord {
        FlowRecord {
            time_ms: t,
            src,
            dst,
            protocol: proto::TCP,
            src_port: 40_000,
            dst_port: port,
            tcp_flags: flags,
            packets: u64::from(rate),
            bytes: 40 * u64::from(rate),
            sampling_rate: rate,
            ..FlowRecord::default()
        }
    }

    fn listed(h: &mut Hunter) -> Vec<InfectedHost> {
        h.tick(h.now_ms());
        h.take_events()
            .into_iter()
            .filter_map(|e| match e {
                HuntEvent::InfectedHost { host, .. } => Some(host),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_slow_telnet_scanner_is_found_from_sparse_samples() {
        let mut h = Hunter::new(&HuntConfig::default(), &detection());
        // 1:1000, one sample every ~6 s to a random address: six samples in 36 s.
        for i in 0..6u32 {
            let mut r = record(
                host(7),
                v4(0x0b00_0000 + i * 7919 * 65_537),
                23,
                tcp_flags::SYN,
                1000,
                6_000 * u64::from(i),
            );
            r.seq_is_dst = i % 2 == 0;
            h.observe(&[r]);
        }
        let found = listed(&mut h);
        // Listed once, as soon as three samples made it certain; the evidence grows on.
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0]
                .reason(ReasonKind::Scanning)
                .unwrap()
                .destinations_sampled,
            Some(3)
        );
        let found = [h.record_of(host(7)).unwrap()];
        let scan = found[0].reason(ReasonKind::Scanning).expect("scanning");
        assert_eq!(scan.destinations_sampled, Some(6));
        assert!(scan.destinations_estimated.unwrap() >= 1_000, "{scan:?}");
        assert_eq!(scan.mirai_signature, Some(3));
        assert!(found[0].confidence >= 0.95);
        assert_eq!(found[0].prefix, Some("198.51.100.0/24".parse().unwrap()));
    }

    #[test]
    fn one_or_two_samples_list_no_one() {
        let mut h = Hunter::new(&HuntConfig::default(), &detection());
        for i in 0..2u32 {
            h.observe(&[record(
                host(7),
                v4(0x0b00_0000 + i * 104_729),
                23,
                tcp_flags::SYN,
                1000,
                1_000 * u64::from(i),
            )]);
        }
        assert!(listed(&mut h).is_empty());
    }

    #[test]
    fn a_nat_gateway_opening_web_connections_everywhere_is_not_scanning() {
        let mut h = Hunter::new(&HuntConfig::default(), &detection());
        let mut t = 0;
        for i in 0..2_000u32 {
            let dst = v4(0x2000_0000 + i * 7_919);
            // Every connection: SYN, then ACK and data (sampled alike at 1:1000, so here 1 in
            // 5 of the records of port 80 are SYNs).
            h.observe(&[record(host(9), dst, 80, tcp_flags::SYN, 1000, t)]);
            for _ in 0..4 {
                h.observe(&[record(
                    host(9),
                    dst,
                    80,
                    tcp_flags::ACK | tcp_flags::PSH,
                    1000,
                    t,
                )]);
            }
            t += 100;
        }
        assert!(listed(&mut h).is_empty());
    }

    #[test]
    fn hosts_in_the_ignore_list_are_never_listed() {
        let config = HuntConfig {
            ignore: vec!["198.51.100.7/32".parse().unwrap()],
            ..HuntConfig::default()
        };
        let mut h = Hunter::new(&config, &detection());
        for i in 0..50u32 {
            h.observe(&[record(
                host(7),
                v4(0x0b00_0000 + i * 104_729),
                23,
                tcp_flags::SYN,
                1000,
                1_000 * u64::from(i),
            )]);
        }
        assert!(listed(&mut h).is_empty());
        assert_eq!(h.stats().hosts, 0);
    }

    #[test]
    fn c2_contacts_and_their_beacon_list_a_host_once_per_change_of_reasons() {
        let mut h = Hunter::new(&HuntConfig::default(), &detection());
        let c2 = v4(0xcb00_7105);
        h.set_c2(Arc::new(C2List::from_entries(
            vec![C2Entry {
                value: "203.0.113.5:23".into(),
                net: IpNet::from(c2),
                port: Some(23),
                feed: "c2.txt".into(),
                malware: Some("mirai".into()),
            }],
            Vec::new(),
        )));
        let mut events = Vec::new();
        for i in 0..10u64 {
            h.observe(&[record(
                host(5),
                c2,
                23,
                tcp_flags::SYN | tcp_flags::ACK,
                1,
                60_000 * i,
            )]);
            events.extend(listed(&mut h));
        }
        // Listed at the first contact, again when the check-ins turned out periodic.
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0].reasons.len(), 1);
        let kinds: Vec<ReasonKind> = events[1].reasons.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, [ReasonKind::C2Contact, ReasonKind::Beaconing]);
        let beacon = events[1].reason(ReasonKind::Beaconing).unwrap();
        assert_eq!(beacon.period_s, Some(60.0));
        // The same contacts to another port are not this entry's.
        h.observe(&[record(host(6), c2, 443, tcp_flags::SYN, 1, 700_000)]);
        assert!(listed(&mut h).is_empty());
    }

    #[test]
    fn beaconing_alone_lists_no_one() {
        let mut h = Hunter::new(&HuntConfig::default(), &detection());
        for i in 0..20u64 {
            let mut r = record(host(4), v4(0xc000_0201), 123, 0, 1, 64_000 * i);
            r.protocol = proto::UDP;
            r.packets = 1;
            h.observe(&[r]);
        }
        assert!(listed(&mut h).is_empty());
    }

    #[test]
    fn memory_stays_within_max_hosts() {
        let config = HuntConfig {
            max_hosts: 1_000,
            ..HuntConfig::default()
        };
        let detection = DetectConfig {
            networks: vec!["10.0.0.0/8".parse().unwrap()],
            ..DetectConfig::default()
        };
        let mut h = Hunter::new(&config, &detection);
        for i in 0..100_000u32 {
            h.observe(&[record(
                v4(0x0a00_0000 + i),
                v4(0x0b00_0000 + i * 31),
                23,
                tcp_flags::SYN,
                1000,
                u64::from(i),
            )]);
        }
        assert!(h.stats().hosts <= 1_000);
        assert!(h.stats().evicted > 0);
    }

    #[test]
    fn the_poisson_tail_is_right() {
        assert!((poisson_tail(3, 0.2) - 0.001_148).abs() < 1e-5);
        assert!((poisson_tail(1, 2.0) - (1.0 - (-2.0f64).exp())).abs() < 1e-12);
        assert!(poisson_tail(250, 200.0) < 0.001);
        assert!(poisson_tail(190, 200.0) > 0.5);
    }
}
