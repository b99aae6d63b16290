//! `GET /metrics`: the status snapshot and the bus's counts in Prometheus's text format
//! (version 0.0.4), written from typed values on each scrape. Names start with `floodwall_`
//! and carry their unit; labels are bounded — per listener, exporter, vector, direction, rule
//! kind, mitigator, channel and bus subscriber, never per host or attack.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use floodwall_detect::{Direction, EventKind, Vector};
use floodwall_mitigate::{RuleKind, Status as Decided};

use crate::act::ChannelState;
use crate::bus::{Message, MitigationEvent, Subscriber, Topic};
use crate::status::Status;

const DIRECTIONS: [Direction; 2] = [Direction::Incoming, Direction::Outgoing];
const KINDS: [RuleKind; 2] = [RuleKind::Blackhole, RuleKind::Flowspec];

fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::Incoming => "incoming",
        Direction::Outgoing => "outgoing",
    }
}

fn kind_index(k: RuleKind) -> usize {
    match k {
        RuleKind::Blackhole => 0,
        RuleKind::Flowspec => 1,
    }
}

/// What became of rules, counted from the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Announced,
    Queued,
    Failed,
    Withdrawn,
    Refused,
}

const CHANGES: [Change; 5] = [
    Change::Announced,
    Change::Queued,
    Change::Failed,
    Change::Withdrawn,
    Change::Refused,
];

impl Change {
    fn metric(self) -> (&'static str, &'static str) {
        match self {
            Change::Announced => (
                "floodwall_mitigations_announced_total",
                "Rules put in the network by at least one mitigator.",
            ),
            Change::Queued => (
                "floodwall_mitigations_queued_total",
                "Rules handed to a mitigator that sends them once it can (no BGP session up yet).",
            ),
            Change::Failed => (
                "floodwall_mitigations_failed_total",
                "Rules wanted that no mitigator put in the network.",
            ),
            Change::Withdrawn => (
                "floodwall_mitigations_withdrawn_total",
                "Rules taken out of the network.",
            ),
            Change::Refused => (
                "floodwall_mitigations_refused_total",
                "Rules a guard rail refused (never, scope, rate limits, coverage).",
            ),
        }
    }
}

/// Counts kept from the bus since the daemon started.
#[derive(Debug, Default)]
pub struct Counters {
    /// By direction and main vector.
    attacks_started: [[AtomicU64; 16]; 2],
    /// By rule kind and [`Change`].
    changes: [[AtomicU64; 5]; 2],
}

impl Counters {
    fn count_change(&self, kind: RuleKind, change: Change) {
        let c = CHANGES.iter().position(|x| *x == change).unwrap_or(0);
        self.changes[kind_index(kind)][c].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts what one bus message says.
    pub fn observe(&self, message: &Message) {
        match message {
            Message::Attack(record) => {
                let e = &record.event;
                if e.event == EventKind::AttackStarted {
                    let d = DIRECTIONS
                        .iter()
                        .position(|x| *x == e.direction)
                        .unwrap_or(0);
                    let v = e.vectors.first().copied().unwrap_or(Vector::UdpFlood);
                    self.attacks_started[d][v.index()].fetch_add(1, Ordering::Relaxed);
                }
                for decision in &record.decisions {
                    if decision.status == Decided::Refused {
                        self.count_change(decision.rule.kind(), Change::Refused);
                    }
                }
            }
            Message::Mitigation(notice) => {
                let change = match notice.event {
                    MitigationEvent::MitigationAnnounced => Change::Announced,
                    MitigationEvent::MitigationQueued => Change::Queued,
                    MitigationEvent::MitigationFailed => Change::Failed,
                    MitigationEvent::MitigationWithdrawn => Change::Withdrawn,
                };
                self.count_change(notice.mitigation.rule.kind(), change);
            }
            Message::Detected(_) | Message::Status(_) | Message::Hunt(_) | Message::Infected(_) => {
            }
        }
    }
}

/// The bus subscriber that keeps [`Counters`].
pub struct CountOnBus(pub Arc<Counters>);

impl Subscriber for CountOnBus {
    fn name(&self) -> &str {
        "metrics"
    }

    fn topics(&self) -> &[Topic] {
        &[Topic::Attack, Topic::Mitigation]
    }

    fn handle(&mut self, message: &Message) -> anyhow::Result<()> {
        self.0.observe(message);
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Type {
    Counter,
    Gauge,
}

/// The exposition being written: a family's `# HELP` and `# TYPE`, then its samples.
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: Type, help: &str) {
        let kind = match kind {
            Type::Counter => "counter",
            Type::Gauge => "gauge",
        };
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                self.text.push_str(key);
                self.text.push_str("=\"");
                escape_into(&mut self.text, value);
                self.text.push('"');
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// A family of one unlabelled sample.
    fn single(&mut self, name: &str, kind: Type, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// Label values escape backslash, double quote and newline.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The whole exposition for one scrape.
pub fn render(
    status: &Status,
    counters: &Counters,
    store: Option<&StoreCounts>,
    hunt: Option<&crate::hunt::HuntSnapshot>,
) -> String {
    let mut m = Exposition {
        text: String::with_capacity(16 << 10),
    };
    m.family(
        "floodwall_build_info",
        Type::Gauge,
        "Always 1; the version of the running daemon.",
    );
    m.sample(
        "floodwall_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    m.single(
        "floodwall_start_time_seconds",
        Type::Gauge,
        "When the pipeline started, Unix seconds.",
        status.started_ms as f64 / 1000.0,
    );
    m.single(
        "floodwall_status_time_seconds",
        Type::Gauge,
        "When the status these figures come from was taken (refreshed every second), Unix seconds.",
        status.at_ms as f64 / 1000.0,
    );

    // Collectors.
    let listeners = &status.collector.listeners;
    let listener_name = |l: &crate::status::ListenerStatus| {
        l.local
            .map_or_else(|| "unknown".to_string(), |a| a.to_string())
    };
    type ListenerField = fn(&crate::status::ListenerStatus) -> u64;
    let listener_families: [(&str, &str, ListenerField); 3] = [
        (
            "floodwall_listener_datagrams_total",
            "Datagrams received per collector listener.",
            |l| l.datagrams,
        ),
        (
            "floodwall_listener_not_allowed_datagrams_total",
            "Datagrams from senders not in collector.allow_exporters, dropped.",
            |l| l.not_allowed,
        ),
        (
            "floodwall_listener_kernel_drops_total",
            "Datagrams the kernel dropped before the collector read them (receive buffer full).",
            |l| l.kernel_drops,
        ),
    ];
    for (name, help, field) in listener_families {
        m.family(name, Type::Counter, help);
        for l in listeners {
            m.sample(name, &[("listener", &listener_name(l))], field(l) as f64);
        }
    }
    let exporters = &status.collector.exporters;
    type ExporterField = fn(&crate::status::ExporterStatus) -> u64;
    let exporter_families: [(&str, &str, ExporterField); 4] = [
        (
            "floodwall_exporter_datagrams_total",
            "Telemetry datagrams received per exporter.",
            |x| x.datagrams,
        ),
        (
            "floodwall_exporter_records_total",
            "Flow records decoded per exporter.",
            |x| x.records,
        ),
        (
            "floodwall_exporter_sequence_lost_total",
            "Datagrams (sFlow, NetFlow v9) or records (NetFlow v5, IPFIX) lost by the exporter's sequence numbers.",
            |x| x.sequence_lost,
        ),
        (
            "floodwall_exporter_implausible_records_total",
            "Records dropped as implausible: sampling rate out of range or on probation, impossible sample pools.",
            |x| x.implausible,
        ),
    ];
    for (name, help, field) in exporter_families {
        m.family(name, Type::Counter, help);
        for x in exporters {
            m.sample(
                name,
                &[("exporter", &x.address.to_string())],
                field(x) as f64,
            );
        }
    }
    let name = "floodwall_exporter_decode_errors_total";
    m.family(
        name,
        Type::Counter,
        "Datagrams (or rests of datagrams) that could not be decoded, per exporter and kind.",
    );
    for x in exporters {
        let exporter = x.address.to_string();
        for (kind, count) in &x.decode_errors_by_kind {
            m.sample(
                name,
                &[("exporter", &exporter), ("kind", kind)],
                *count as f64,
            );
        }
    }

    // Engine.
    let e = &status.engine;
    m.single(
        "floodwall_engine_records_total",
        Type::Counter,
        "Flow records the detection engine accounted.",
        e.records as f64,
    );
    m.single(
        "floodwall_engine_unmonitored_records_total",
        Type::Counter,
        "Records that touched no monitored network.",
        e.records_unmonitored as f64,
    );
    m.single(
        "floodwall_engine_host_overflow_records_total",
        Type::Counter,
        "Record sides counted only in their prefix because detection.max_hosts entries existed.",
        e.records_host_overflow as f64,
    );
    m.single(
        "floodwall_engine_hosts_evicted_total",
        Type::Counter,
        "Host entries forgotten after being idle.",
        e.hosts_evicted as f64,
    );
    m.single(
        "floodwall_engine_hosts_tracked",
        Type::Gauge,
        "Hosts the engine keeps counters for.",
        e.hosts_tracked as f64,
    );
    m.single(
        "floodwall_engine_prefixes_tracked",
        Type::Gauge,
        "Prefixes the engine keeps counters for.",
        e.prefixes_tracked as f64,
    );
    m.single(
        "floodwall_engine_targets_watched",
        Type::Gauge,
        "Targets with detailed counters and a fingerprint (watched or under attack).",
        e.targets_watched as f64,
    );
    let name = "floodwall_engine_shard_records_total";
    m.family(
        name,
        Type::Counter,
        "Records handed to each engine shard (absent with one engine).",
    );
    for (i, records) in status.shard_records.iter().enumerate() {
        m.sample(name, &[("shard", &i.to_string())], *records as f64);
    }

    // Each hostgroup's traffic in the last complete second.
    type RateField = fn(&floodwall_detect::HostgroupRates) -> u64;
    let rate_families: [(&str, &str, RateField); 3] = [
        (
            "floodwall_hostgroup_packets_per_second",
            "Packets per second to (incoming) or from (outgoing) each hostgroup, last complete second, scaled by sampling.",
            |r| r.pps,
        ),
        (
            "floodwall_hostgroup_bytes_per_second",
            "Bytes per second to or from each hostgroup, last complete second, scaled by sampling.",
            |r| r.bps / 8,
        ),
        (
            "floodwall_hostgroup_records_per_second",
            "Flow records (samples) per second to or from each hostgroup, last complete second.",
            |r| r.flows,
        ),
    ];
    for (name, help, field) in rate_families {
        m.family(name, Type::Gauge, help);
        for r in &status.traffic {
            m.sample(
                name,
                &[
                    ("hostgroup", &r.hostgroup),
                    ("direction", direction_name(r.direction)),
                ],
                field(r) as f64,
            );
        }
    }

    // Attacks.
    let mut active = [[0u64; 16]; 2];
    for a in &status.attacks {
        let d = DIRECTIONS
            .iter()
            .position(|x| *x == a.direction)
            .unwrap_or(0);
        let v = a.vectors.first().copied().unwrap_or(Vector::UdpFlood);
        active[d][v.index()] += 1;
    }
    for (name, kind, help, values) in [
        (
            "floodwall_attacks_active",
            Type::Gauge,
            "Attacks going on now, by direction and main vector.",
            active,
        ),
        (
            "floodwall_attacks_started_total",
            Type::Counter,
            "Attacks started since the daemon started, by direction and main vector (at the start).",
            std::array::from_fn(|d| {
                std::array::from_fn(|v| counters.attacks_started[d][v].load(Ordering::Relaxed))
            }),
        ),
    ] {
        m.family(name, kind, help);
        for (d, direction) in DIRECTIONS.iter().enumerate() {
            for vector in Vector::ALL {
                m.sample(
                    name,
                    &[
                        ("direction", direction_name(*direction)),
                        ("vector", vector.name()),
                    ],
                    values[d][vector.index()] as f64,
                );
            }
        }
    }

    // Mitigation.
    let name = "floodwall_mitigations_active";
    m.family(
        name,
        Type::Gauge,
        "Rules held now (announced, queued, awaiting evidence or recorded in dry run), by kind.",
    );
    for kind in KINDS {
        for dry_run in [false, true] {
            let count = status
                .mitigation
                .held_by_kind
                .iter()
                .filter(|h| h.kind == kind && h.dry_run == dry_run)
                .map(|h| h.count)
                .sum::<usize>();
            m.sample(
                name,
                &[
                    ("kind", kind.as_str()),
                    ("dry_run", if dry_run { "true" } else { "false" }),
                ],
                count as f64,
            );
        }
    }
    for (c, change) in CHANGES.iter().enumerate() {
        let (name, help) = change.metric();
        m.family(name, Type::Counter, help);
        for kind in KINDS {
            m.sample(
                name,
                &[("kind", kind.as_str())],
                counters.changes[kind_index(kind)][c].load(Ordering::Relaxed) as f64,
            );
        }
    }
    let name = "floodwall_mitigator_queued_rules";
    m.family(
        name,
        Type::Gauge,
        "Rules handed to a mitigator and not yet done with.",
    );
    for x in &status.mitigation.mitigators {
        m.sample(name, &[("mitigator", &x.name)], x.queued as f64);
    }
    let name = "floodwall_mitigator_channel_up";
    m.family(
        name,
        Type::Gauge,
        "1 when a mitigator's channel (a BGP session, say) can carry rules now, else 0.",
    );
    for x in &status.mitigation.mitigators {
        for channel in &x.channels {
            let up = matches!(channel.state, ChannelState::Established);
            m.sample(
                name,
                &[("mitigator", &x.name), ("channel", &channel.name)],
                if up { 1.0 } else { 0.0 },
            );
        }
    }

    // The bus and the history store.
    type BusField = fn(&crate::status::SubscriberStats) -> u64;
    let bus_families: [(&str, &str, BusField); 3] = [
        (
            "floodwall_bus_delivered_messages_total",
            "Messages handed to each bus subscriber.",
            |s| s.delivered,
        ),
        (
            "floodwall_bus_dropped_messages_total",
            "Messages a subscriber lost because its queue was full (it could not keep up).",
            |s| s.dropped,
        ),
        (
            "floodwall_bus_failed_messages_total",
            "Messages a subscriber failed to handle (a full disk, an unreachable webhook).",
            |s| s.failed,
        ),
    ];
    for (name, help, field) in bus_families {
        m.family(name, Type::Counter, help);
        for s in &status.bus {
            m.sample(name, &[("subscriber", &s.name)], field(s) as f64);
        }
    }
    if let Some(store) = store {
        m.single(
            "floodwall_store_writes_total",
            Type::Counter,
            "Rows written to the history store.",
            store.writes.load(Ordering::Relaxed) as f64,
        );
        m.single(
            "floodwall_store_dropped_writes_total",
            Type::Counter,
            "Rows the history store could not write (disk full or slow); detection went on.",
            store.dropped.load(Ordering::Relaxed) as f64,
        );
        m.single(
            "floodwall_store_size_bytes",
            Type::Gauge,
            "Size of the history database and its write-ahead log.",
            store.size_bytes.load(Ordering::Relaxed) as f64,
        );
    }
    if let Some(hunt) = hunt {
        hunt_families(&mut m, hunt);
    }
    m.text
}

/// Hunting: what it read and found.
fn hunt_families(m: &mut Exposition, hunt: &crate::hunt::HuntSnapshot) {
    let s = &hunt.stats;
    let counters: [(&str, &str, u64); 5] = [
        (
            "floodwall_hunt_records_total",
            "Records the hunt read.",
            s.records,
        ),
        (
            "floodwall_hunt_scan_probes_total",
            "Bare TCP SYNs from monitored hosts to the scan ports.",
            s.probes,
        ),
        (
            "floodwall_hunt_mirai_probes_total",
            "Probes whose TCP sequence number is their destination address (Mirai).",
            s.mirai_probes,
        ),
        (
            "floodwall_hunt_c2_contacts_total",
            "Records from monitored hosts to endpoints of the C2 feeds.",
            s.c2_contacts,
        ),
        (
            "floodwall_hunt_skipped_batches_total",
            "Record batches the hunt could not take in time (overload; detection went on).",
            hunt.records_skipped,
        ),
    ];
    for (name, help, value) in counters {
        m.single(name, Type::Counter, help, value as f64);
    }
    let gauges: [(&str, &str, f64); 7] = [
        (
            "floodwall_hunt_hosts",
            "Hosts the hunt follows (bounded by hunt.max_hosts).",
            s.hosts as f64,
        ),
        (
            "floodwall_infected_hosts",
            "Hosts listed as infected now.",
            s.listed as f64,
        ),
        (
            "floodwall_c2_feed_entries",
            "Addresses and prefixes in the C2 feeds loaded.",
            hunt.c2_entries as f64,
        ),
        (
            "floodwall_c2_feed_domains",
            "Domains in the C2 feeds loaded.",
            hunt.c2_domains as f64,
        ),
        (
            "floodwall_c2_null_routes",
            "C2 null routes of the current feeds that passed the guard rails.",
            hunt.c2_routes as f64,
        ),
        (
            "floodwall_c2_null_routes_refused",
            "C2 feed entries the guard rails refused as null routes (too broad, never, our own networks, over c2_max_routes).",
            hunt.c2_routes_refused as f64,
        ),
        (
            "floodwall_campaigns",
            "Campaigns known (attacks sharing a bot pool).",
            hunt.campaigns.len() as f64,
        ),
    ];
    for (name, help, value) in gauges {
        m.single(name, Type::Gauge, help, value);
    }
}

/// The history store's counters, shared with the store's thread.
#[derive(Debug, Default)]
pub struct StoreCounts {
    pub writes: AtomicU64,
    pub dropped: AtomicU64,
    pub size_bytes: AtomicU64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        escape_into(&mut out, "a\"b\\c\nd");
        assert_eq!(out, "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn every_family_has_help_and_type_before_its_samples() {
        let text = render(
            &Status::default(),
            &Counters::default(),
            None,
            Some(&Default::default()),
        );
        let mut declared = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(declared.insert(name.to_string()), "{name} twice");
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(declared.contains(name), "{name} sampled before its TYPE");
            }
        }
        assert!(text
            .contains("floodwall_attacks_active{direction=\"incoming\",vector=\"syn_flood\"} 0"));
    }
}

#[cfg(test)]
mod grafana {
    use super::*;

    /// docs/grafana/floodwall.json queries only metrics the daemon exposes.
    #[test]
    fn the_grafana_dashboard_asks_for_metrics_that_exist() {
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../../../../docs/grafana/floodwall.json")).unwrap();
        let exposed = render(
            &Status::default(),
            &Counters::default(),
            Some(&StoreCounts::default()),
            Some(&Default::default()),
        );
        let families: std::collections::HashSet<&str> = exposed
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        let mut asked = 0;
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                let mut rest = expr;
                while let Some(at) = rest.find("floodwall_") {
                    let name: String = rest[at..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    assert!(families.contains(name.as_str()), "{name} in `{expr}`");
                    asked += 1;
                    rest = &rest[at + name.len()..];
                }
            }
        }
        assert!(asked >= 20, "{asked}");
    }
}
