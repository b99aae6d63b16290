//! The embedded history: attacks with their updates, mitigations, each hostgroup's traffic and
//! the exporters' counters over time, in one SQLite database (WAL) in the state directory.
//!
//! A bus subscriber ([`Recorder`]) writes it on its own thread, in one transaction per burst of
//! messages, so nothing it does can hold up detection or mitigation: a slow disk fills its bus
//! queue (the bus drops and counts), a full one fails its writes (counted as dropped rows,
//! logged at most once a minute). Readers ([`query`]) open their own connections; WAL lets
//! them read while it writes, and a process killed mid-write loses at most the open
//! transaction. Retention and a size bound are enforced once a minute.

pub mod query;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use rusqlite::{params, Connection, OpenFlags};
use serde::{Deserialize, Serialize};

use crate::bus::{AttackRecord, Message, MitigationNotice, Subscriber, Topic};
use crate::clock::unix_ms;
use crate::serve::metrics::StoreCounts;
use crate::status::Status;

/// `[history]`: what the daemon remembers, for the API and the dashboard.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// Whether the daemon keeps a history. Default: true.
    pub enabled: bool,
    /// The SQLite database. Default: `history.sqlite` in `[state] dir`.
    pub path: Option<PathBuf>,
    /// How long traffic is kept per second, seconds. Default: 3600 (an attack's first hour
    /// in full detail).
    pub per_second_s: u64,
    /// How long traffic is kept per minute, days. Default: 30.
    pub per_minute_days: u64,
    /// How long attacks (with their updates and mitigations) are kept, days. Default: 365.
    pub attacks_days: u64,
    /// Largest size of the database, MiB: past it the oldest traffic, then the oldest ended
    /// attacks, are deleted. Default: 1024.
    pub max_size_mib: u64,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            enabled: true,
            path: None,
            per_second_s: 3600,
            per_minute_days: 30,
            attacks_days: 365,
            max_size_mib: 1024,
        }
    }
}

impl HistoryConfig {
    /// Where the database is, given the state directory.
    pub fn path_in(&self, state_dir: &Path) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| state_dir.join("history.sqlite"))
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.per_second_s == 0 || self.per_minute_days == 0 || self.attacks_days == 0 {
            return Err("history retention periods must be at least 1 (set [history] enabled = false to keep nothing)".into());
        }
        if self.max_size_mib < 16 {
            return Err(format!(
                "history.max_size_mib = {} is too small to hold an attack's detail: give at least 16",
                self.max_size_mib
            ));
        }
        Ok(())
    }
}

/// Opens (creating and migrating) the database for writing.
pub fn open(path: &Path) -> Result<Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create {} for the history", dir.display()))?;
    }
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open the history {}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    schema::migrate(&mut conn).with_context(|| format!("history {}", path.display()))?;
    Ok(conn)
}

/// Messages per transaction at most: a burst of attack updates is one commit.
const BATCH: usize = 2_000;
/// How often retention and the size bound are enforced.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);
/// Exporter counters are kept every this many seconds.
const EXPORTERS_EVERY_MS: u64 = 10_000;

/// The bus subscriber that writes the history.
pub struct Recorder {
    conn: Connection,
    path: PathBuf,
    config: HistoryConfig,
    counts: Arc<StoreCounts>,
    /// Rows written in the open transaction (dropped if it cannot commit).
    pending: u64,
    in_transaction: bool,
    last_housekeeping: Instant,
    last_exporters_ms: u64,
    exporters_seen: std::collections::HashSet<std::net::IpAddr>,
    /// The minute being summed from per-second traffic: (minute, rows).
    minute: Option<(u64, Vec<MinuteSum>)>,
    /// The busiest targets' sums over the same minute: (kind, direction, target) → sums.
    top_minute: std::collections::HashMap<(&'static str, &'static str, String), TopSum>,
}

/// One busy target's sums over the current minute.
#[derive(Debug, Clone, Default)]
struct TopSum {
    hostgroup: String,
    packets: u64,
    bits: u64,
    max_pps: u64,
}

/// One hostgroup and direction's sums over the current minute.
#[derive(Debug, Clone)]
struct MinuteSum {
    hostgroup: String,
    direction: &'static str,
    seconds: u64,
    packets: u64,
    bits: u64,
    flows: u64,
    max_pps: u64,
    max_bps: u64,
}

impl Recorder {
    pub fn open(path: &Path, config: HistoryConfig, counts: Arc<StoreCounts>) -> Result<Recorder> {
        let conn = open(path)?;
        // Attacks the previous run was following when it stopped (or was killed): their end
        // was not seen. They close at their last event, marked unfinished; one still going
        // on is detected anew, as a new attack.
        conn.execute(
            "UPDATE attacks SET ended_ms = last_ms, unfinished = 1 WHERE ended_ms IS NULL",
            [],
        )
        .with_context(|| format!("history {}", path.display()))?;
        let recorder = Recorder {
            conn,
            path: path.to_path_buf(),
            config,
            counts,
            pending: 0,
            in_transaction: false,
            last_housekeeping: Instant::now(),
            last_exporters_ms: 0,
            exporters_seen: std::collections::HashSet::new(),
            minute: None,
            top_minute: std::collections::HashMap::new(),
        };
        recorder.report_size();
        Ok(recorder)
    }

    fn begin(&mut self) -> Result<()> {
        if !self.in_transaction {
            self.conn.execute_batch("BEGIN")?;
            self.in_transaction = true;
        }
        Ok(())
    }

    /// Commits the open transaction; on failure its rows count as dropped.
    fn commit(&mut self) -> Result<()> {
        if !self.in_transaction {
            return Ok(());
        }
        self.in_transaction = false;
        let rows = std::mem::take(&mut self.pending);
        match self.conn.execute_batch("COMMIT") {
            Ok(()) => {
                self.counts.writes.fetch_add(rows, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                self.counts.dropped.fetch_add(rows, Ordering::Relaxed);
                Err(e).context("the history could not be written (disk full?)")
            }
        }
    }

    /// Runs one write inside the transaction; a failing statement drops its row.
    fn write(&mut self, f: impl FnOnce(&Connection) -> rusqlite::Result<usize>) -> Result<()> {
        self.begin()?;
        match f(&self.conn) {
            Ok(rows) => {
                self.pending += rows as u64;
                Ok(())
            }
            Err(e) => {
                // The whole transaction goes (SQLite may already have rolled it back on a full
                // disk): its rows and this one are counted as dropped.
                let _ = self.conn.execute_batch("ROLLBACK");
                self.in_transaction = false;
                let lost = std::mem::take(&mut self.pending) + 1;
                self.counts.dropped.fetch_add(lost, Ordering::Relaxed);
                Err(e).context("a history write failed (disk full?)")
            }
        }
    }

    /// An `infected_host` or `campaign` line: kept as it was, and an infected host's record
    /// as the current one.
    fn record_hunt(&mut self, event: &floodwall_hunt::HuntEvent) -> Result<()> {
        let json = serde_json::to_string(event)?;
        let (kind, subject) = match event {
            floodwall_hunt::HuntEvent::InfectedHost { host, .. } => {
                self.record_infected(host)?;
                ("infected_host", host.host.to_string())
            }
            floodwall_hunt::HuntEvent::Campaign { campaign, .. } => {
                ("campaign", campaign.campaign.clone())
            }
        };
        let ts = event.ts() as i64;
        self.write(|c| {
            c.execute(
                "INSERT INTO hunt_events (ts_ms, kind, subject, event) VALUES (?1, ?2, ?3, ?4)",
                params![ts, kind, subject, json],
            )
        })
    }

    /// The current record of an infected host (what reports list).
    fn record_infected(&mut self, host: &floodwall_hunt::InfectedHost) -> Result<()> {
        let json = serde_json::to_string(host)?;
        let reasons = host
            .reasons
            .iter()
            .map(|r| r.kind.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let (addr, prefix) = (host.host.to_string(), host.prefix.map(|p| p.to_string()));
        self.write(|c| {
            c.execute(
                "INSERT INTO infected_hosts (host, hostgroup, prefix, first_ms, last_ms,
                     confidence, reasons, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (host) DO UPDATE SET
                     hostgroup = excluded.hostgroup, prefix = excluded.prefix,
                     first_ms = MIN(first_ms, excluded.first_ms),
                     last_ms = MAX(last_ms, excluded.last_ms),
                     confidence = excluded.confidence, reasons = excluded.reasons,
                     record = excluded.record",
                params![
                    addr,
                    host.hostgroup,
                    prefix,
                    host.first_seen as i64,
                    host.last_seen as i64,
                    host.confidence,
                    reasons,
                    json
                ],
            )
        })
    }

    fn record_attack(&mut self, record: &AttackRecord) -> Result<()> {
        let e = &record.event;
        let json = serde_json::to_string(record)?;
        let vectors = e
            .vectors
            .iter()
            .map(|v| v.name())
            .collect::<Vec<_>>()
            .join(",");
        let direction = direction_name(e.direction);
        let event = event_name(e.event);
        let target = e.target.to_string();
        self.write(|c| {
            let mut rows = c.execute(
                "INSERT INTO attacks (id, target, direction, carpet_bombing, hostgroup, vectors,
                     started_ms, ended_ms, last_ms, bps, pps, peak_bps, peak_pps, sources, latest)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
                 ON CONFLICT (id) DO UPDATE SET
                     vectors = excluded.vectors, ended_ms = excluded.ended_ms,
                     last_ms = excluded.last_ms, bps = excluded.bps, pps = excluded.pps,
                     peak_bps = excluded.peak_bps, peak_pps = excluded.peak_pps,
                     sources = excluded.sources, latest = excluded.latest",
                params![
                    e.attack_id,
                    target,
                    direction,
                    e.carpet_bombing,
                    e.hostgroup,
                    vectors,
                    e.started_at as i64,
                    e.ended_at.map(|t| t as i64),
                    e.ts as i64,
                    e.bps as i64,
                    e.pps as i64,
                    e.peak_bps as i64,
                    e.peak_pps as i64,
                    e.sources as i64,
                    json,
                ],
            )?;
            rows += c.execute(
                "INSERT INTO attack_events (attack_id, ts_ms, event, bps, pps, sources, vectors, decisions)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    e.attack_id,
                    e.ts as i64,
                    event,
                    e.bps as i64,
                    e.pps as i64,
                    e.sources as i64,
                    vectors,
                    if record.decisions.is_empty() {
                        None
                    } else {
                        serde_json::to_string(&record.decisions).ok()
                    },
                ],
            )?;
            Ok(rows)
        })
    }

    fn record_mitigation(&mut self, notice: &MitigationNotice) -> Result<()> {
        let json = serde_json::to_string(notice)?;
        let m = &notice.mitigation;
        let event = serde_json::to_value(notice.event)?
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.write(|c| {
            c.execute(
                "INSERT INTO mitigation_events (ts_ms, mitigation_id, attack_id, kind, target, event, notice)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    unix_ms() as i64,
                    m.id,
                    m.attack_id,
                    m.rule.kind().as_str(),
                    m.rule.target().to_string(),
                    event,
                    json,
                ],
            )
        })
    }

    fn record_status(&mut self, status: &Status) -> Result<()> {
        let second = status.at_ms / 1000;
        for t in &status.traffic {
            let direction = direction_name(t.direction);
            let (pps, bps, flows) = (t.pps as i64, t.bps as i64, t.flows as i64);
            let hostgroup = t.hostgroup.clone();
            self.write(|c| {
                c.execute(
                    "INSERT OR REPLACE INTO traffic_seconds (ts, hostgroup, direction, pps, bps, flows)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![second as i64, hostgroup, direction, pps, bps, flows],
                )
            })?;
        }
        let top = &status.top;
        if top.at_ms > 0 {
            let ts = (top.at_ms / 1000) as i64 - 1;
            for (kind, prefixes) in [("host", false), ("prefix", true)] {
                for direction in [
                    floodwall_detect::Direction::Incoming,
                    floodwall_detect::Direction::Outgoing,
                ] {
                    let d = direction_name(direction);
                    for e in top.list(prefixes, direction) {
                        let target = e.target.to_string();
                        let row = (e.pps as i64, e.bps as i64);
                        let group = e.hostgroup.clone();
                        let t = target.clone();
                        self.write(|c| {
                            c.execute(
                                "INSERT OR REPLACE INTO top_seconds
                                     (ts, kind, direction, target, hostgroup, pps, bps)
                                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                                params![ts, kind, d, t, group, row.0, row.1],
                            )
                        })?;
                    }
                }
            }
        }
        self.sum_minute(second, status)?;
        // Every 10 s, and at once for an exporter heard for the first time.
        let new_exporter = status
            .collector
            .exporters
            .iter()
            .any(|x| !self.exporters_seen.contains(&x.address));
        if new_exporter || status.at_ms >= self.last_exporters_ms + EXPORTERS_EVERY_MS {
            // Bounded: spoofed exporters churning through the decoder's table would grow it.
            if self.exporters_seen.len() > 4_096 {
                self.exporters_seen.clear();
            }
            self.exporters_seen
                .extend(status.collector.exporters.iter().map(|x| x.address));
            self.last_exporters_ms = status.at_ms;
            for x in &status.collector.exporters {
                let (address, at) = (x.address.to_string(), (status.at_ms / 1000) as i64);
                let row = (
                    x.datagrams as i64,
                    x.records as i64,
                    x.decode_errors as i64,
                    x.sequence_lost as i64,
                    x.implausible as i64,
                );
                self.write(|c| {
                    c.execute(
                        "INSERT OR REPLACE INTO exporter_counters
                             (ts, exporter, datagrams, records, decode_errors, sequence_lost, implausible)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![at, address, row.0, row.1, row.2, row.3, row.4],
                    )
                })?;
            }
        }
        Ok(())
    }

    /// Adds a second to the minute's sums; a new minute writes the last one out.
    fn sum_minute(&mut self, second: u64, status: &Status) -> Result<()> {
        let minute = second / 60;
        if self.minute.as_ref().is_some_and(|(m, _)| *m != minute) {
            self.flush_top_minute()?;
            if let Some((m, sums)) = self.minute.take() {
                for s in sums {
                    let n = s.seconds.max(1);
                    let row = (
                        (s.packets / n) as i64,
                        (s.bits / n) as i64,
                        (s.flows / n) as i64,
                        s.max_pps as i64,
                        s.max_bps as i64,
                    );
                    self.write(|c| {
                        c.execute(
                            "INSERT OR REPLACE INTO traffic_minutes
                                 (ts, hostgroup, direction, pps, bps, flows, max_pps, max_bps)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                            params![
                                (m * 60) as i64,
                                s.hostgroup,
                                s.direction,
                                row.0,
                                row.1,
                                row.2,
                                row.3,
                                row.4
                            ],
                        )
                    })?;
                }
            }
        }
        for (kind, prefixes) in [("host", false), ("prefix", true)] {
            for direction in [
                floodwall_detect::Direction::Incoming,
                floodwall_detect::Direction::Outgoing,
            ] {
                for e in status.top.list(prefixes, direction) {
                    let sum = self
                        .top_minute
                        .entry((kind, direction_name(direction), e.target.to_string()))
                        .or_default();
                    sum.hostgroup.clone_from(&e.hostgroup);
                    sum.packets += e.pps;
                    sum.bits += e.bps;
                    sum.max_pps = sum.max_pps.max(e.pps);
                }
            }
        }
        let (_, sums) = self.minute.get_or_insert_with(|| (minute, Vec::new()));
        for t in &status.traffic {
            let direction = direction_name(t.direction);
            let sum = match sums
                .iter_mut()
                .position(|s| s.hostgroup == t.hostgroup && s.direction == direction)
            {
                Some(i) => &mut sums[i],
                None => {
                    sums.push(MinuteSum {
                        hostgroup: t.hostgroup.clone(),
                        direction,
                        seconds: 0,
                        packets: 0,
                        bits: 0,
                        flows: 0,
                        max_pps: 0,
                        max_bps: 0,
                    });
                    sums.last_mut().expect("just pushed")
                }
            };
            sum.seconds += 1;
            sum.packets += t.pps;
            sum.bits += t.bps;
            sum.flows += t.flows;
            sum.max_pps = sum.max_pps.max(t.pps);
            sum.max_bps = sum.max_bps.max(t.bps);
        }
        Ok(())
    }

    /// Writes the last minute's busiest targets: the `TOP_N` of each list by packets over
    /// the minute (a second out of the top counts as nothing), as means over 60 s.
    fn flush_top_minute(&mut self) -> Result<()> {
        let Some(minute) = self.minute.as_ref().map(|(m, _)| *m) else {
            self.top_minute.clear();
            return Ok(());
        };
        let sums = std::mem::take(&mut self.top_minute);
        let mut lists: std::collections::BTreeMap<(&str, &str), Vec<(String, TopSum)>> =
            std::collections::BTreeMap::new();
        for ((kind, direction, target), sum) in sums {
            lists
                .entry((kind, direction))
                .or_default()
                .push((target, sum));
        }
        for ((kind, direction), mut list) in lists {
            list.sort_by(|a, b| b.1.packets.cmp(&a.1.packets).then(a.0.cmp(&b.0)));
            list.truncate(floodwall_detect::engine::TOP_N);
            for (target, sum) in list {
                let row = (
                    (minute * 60) as i64,
                    (sum.packets / 60) as i64,
                    (sum.bits / 60) as i64,
                    sum.max_pps as i64,
                );
                self.write(|c| {
                    c.execute(
                        "INSERT OR REPLACE INTO top_minutes
                             (ts, kind, direction, target, hostgroup, pps, bps, max_pps)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        params![
                            row.0,
                            kind,
                            direction,
                            target,
                            sum.hostgroup,
                            row.1,
                            row.2,
                            row.3
                        ],
                    )
                })?;
            }
        }
        Ok(())
    }

    /// Retention, then the size bound.
    fn housekeeping(&mut self) -> Result<()> {
        self.commit()?;
        let now_s = (unix_ms() / 1000) as i64;
        let day = 86_400i64;
        let c = &self.conn;
        for table in ["traffic_seconds", "top_seconds"] {
            c.execute(
                &format!("DELETE FROM {table} WHERE ts < ?1"),
                [now_s - self.config.per_second_s as i64],
            )?;
        }
        let minute_cut = now_s - self.config.per_minute_days as i64 * day;
        c.execute("DELETE FROM traffic_minutes WHERE ts < ?1", [minute_cut])?;
        c.execute("DELETE FROM top_minutes WHERE ts < ?1", [minute_cut])?;
        c.execute("DELETE FROM exporter_counters WHERE ts < ?1", [minute_cut])?;
        let attack_cut_ms = (now_s - self.config.attacks_days as i64 * day) * 1000;
        delete_attacks_before(c, attack_cut_ms)?;
        c.execute(
            "DELETE FROM infected_hosts WHERE last_ms < ?1",
            [attack_cut_ms],
        )?;
        c.execute("DELETE FROM hunt_events WHERE ts_ms < ?1", [attack_cut_ms])?;
        // The size bound: the long tails first (per-minute traffic, exporter counters), then
        // the oldest ended attacks; the last hour per second only when nothing else is left.
        let limit = self.config.max_size_mib << 20;
        for _ in 0..64 {
            if size_bytes(c, &self.path) <= limit {
                break;
            }
            let mut deleted = delete_oldest(c, "traffic_minutes")?
                + delete_oldest(c, "top_minutes")?
                + delete_oldest(c, "exporter_counters")?;
            if deleted == 0 {
                // The hundred oldest ended attacks at a time.
                let hundredth: Option<i64> = c.query_row(
                    "SELECT MAX(started_ms) FROM (SELECT started_ms FROM attacks
                     WHERE ended_ms IS NOT NULL ORDER BY started_ms LIMIT 100)",
                    [],
                    |r| r.get(0),
                )?;
                if let Some(start) = hundredth {
                    deleted = delete_attacks_before(c, start + 1)?;
                }
            }
            if deleted == 0
                && delete_oldest(c, "traffic_seconds")? + delete_oldest(c, "top_seconds")? == 0
            {
                break;
            }
            c.execute_batch("PRAGMA incremental_vacuum; PRAGMA wal_checkpoint(TRUNCATE);")?;
        }
        c.execute_batch("PRAGMA incremental_vacuum;")?;
        self.report_size();
        Ok(())
    }

    fn report_size(&self) {
        self.counts
            .size_bytes
            .store(size_bytes(&self.conn, &self.path), Ordering::Relaxed);
    }
}

/// The database's pages in use plus its write-ahead log.
fn size_bytes(conn: &Connection, path: &Path) -> u64 {
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap_or(0);
    let free: i64 = conn
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .unwrap_or(0);
    let page: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap_or(4096);
    let wal = std::fs::metadata(format!("{}-wal", path.display()))
        .map(|m| m.len())
        .unwrap_or(0);
    ((pages - free).max(0) * page) as u64 + wal
}

/// Deletes the oldest tenth (at least one row's timestamp) of a time-keyed table.
fn delete_oldest(conn: &Connection, table: &str) -> rusqlite::Result<usize> {
    let range: (Option<i64>, Option<i64>) =
        conn.query_row(&format!("SELECT MIN(ts), MAX(ts) FROM {table}"), [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let (Some(min), Some(max)) = range else {
        return Ok(0);
    };
    let cut = min + ((max - min) / 10).max(1);
    conn.execute(&format!("DELETE FROM {table} WHERE ts < ?1"), [cut])
}

/// Deletes attacks that started before `cut_ms` and have ended, with their events.
fn delete_attacks_before(conn: &Connection, cut_ms: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM attack_events WHERE attack_id IN
             (SELECT id FROM attacks WHERE started_ms < ?1 AND ended_ms IS NOT NULL)",
        [cut_ms],
    )?;
    conn.execute(
        "DELETE FROM mitigation_events WHERE attack_id IN
             (SELECT id FROM attacks WHERE started_ms < ?1 AND ended_ms IS NOT NULL)",
        [cut_ms],
    )?;
    conn.execute(
        "DELETE FROM attacks WHERE started_ms < ?1 AND ended_ms IS NOT NULL",
        [cut_ms],
    )
}

pub(crate) fn direction_name(d: floodwall_detect::Direction) -> &'static str {
    match d {
        floodwall_detect::Direction::Incoming => "incoming",
        floodwall_detect::Direction::Outgoing => "outgoing",
    }
}

fn event_name(e: floodwall_detect::EventKind) -> &'static str {
    match e {
        floodwall_detect::EventKind::AttackStarted => "attack_started",
        floodwall_detect::EventKind::AttackUpdated => "attack_updated",
        floodwall_detect::EventKind::AttackEnded => "attack_ended",
    }
}

impl Subscriber for Recorder {
    fn name(&self) -> &str {
        "history"
    }

    fn topics(&self) -> &[Topic] {
        &[
            Topic::Attack,
            Topic::Mitigation,
            Topic::Status,
            Topic::Hunt,
            Topic::Infected,
        ]
    }

    fn handle(&mut self, message: &Message) -> Result<()> {
        match message {
            Message::Attack(record) => self.record_attack(record)?,
            Message::Mitigation(notice) => self.record_mitigation(notice)?,
            Message::Status(status) => self.record_status(status)?,
            Message::Detected(_) => {}
            Message::Hunt(event) => self.record_hunt(event)?,
            Message::Infected(hosts) => {
                for host in hosts.iter() {
                    self.record_infected(host)?;
                }
            }
        }
        if self.pending as usize >= BATCH {
            self.commit()?;
        }
        Ok(())
    }

    fn idle(&mut self) -> Result<()> {
        self.commit()?;
        if self.last_housekeeping.elapsed() >= HOUSEKEEPING_EVERY {
            self.last_housekeeping = Instant::now();
            self.housekeeping()?;
        } else {
            self.report_size();
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        self.commit()?;
        let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::query::{AttackQuery, History};
    use super::*;
    use floodwall_detect::{AttackEvent, EventKind};

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let path = std::env::temp_dir()
                .join(format!("floodwall-history-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            Dir(path)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn record(kind: EventKind, id: &str, ts_ms: u64, ended: bool) -> Message {
        let mut e: AttackEvent = serde_json::from_str(include_str!(
            "../../../../testdata/events/attack_started.json"
        ))
        .unwrap();
        e.event = kind;
        e.attack_id = id.into();
        e.started_at = ts_ms - ts_ms % 1000;
        e.ts = ts_ms;
        e.ended_at = ended.then_some(ts_ms);
        Message::Attack(Arc::new(AttackRecord {
            event: e,
            decisions: Vec::new(),
        }))
    }

    fn recorder(dir: &Dir, config: HistoryConfig) -> (Recorder, Arc<StoreCounts>, History) {
        let path = dir.0.join("history.sqlite");
        let counts = Arc::new(StoreCounts::default());
        let recorder = Recorder::open(&path, config, counts.clone()).unwrap();
        (recorder, counts, History::new(&path, 3600))
    }

    #[test]
    fn an_attack_is_kept_with_its_timeline_and_found_by_its_filters() {
        let dir = Dir::new("attack");
        let (mut r, counts, history) = recorder(&dir, HistoryConfig::default());
        let now = unix_ms();
        r.handle(&record(EventKind::AttackStarted, "a1", now - 3_000, false))
            .unwrap();
        r.handle(&record(EventKind::AttackUpdated, "a1", now - 2_000, false))
            .unwrap();
        r.idle().unwrap();
        let active = history
            .attacks(&AttackQuery {
                active: Some(true),
                ..AttackQuery::default()
            })
            .unwrap();
        assert_eq!(active.len(), 1);
        assert!(active[0].active);
        r.handle(&record(EventKind::AttackEnded, "a1", now - 1_000, true))
            .unwrap();
        r.idle().unwrap();
        assert_eq!(counts.writes.load(Ordering::Relaxed), 6);
        let query = |q: AttackQuery| history.attacks(&q).unwrap().len();
        assert_eq!(query(AttackQuery::default()), 1);
        assert_eq!(
            query(AttackQuery {
                active: Some(true),
                ..AttackQuery::default()
            }),
            0
        );
        assert_eq!(
            query(AttackQuery {
                vector: Some(floodwall_detect::Vector::NtpAmplification),
                ..AttackQuery::default()
            }),
            1
        );
        assert_eq!(
            query(AttackQuery {
                vector: Some(floodwall_detect::Vector::SynFlood),
                ..AttackQuery::default()
            }),
            0
        );
        assert_eq!(
            query(AttackQuery {
                target: Some("203.0.113.0/24".parse().unwrap()),
                ..AttackQuery::default()
            }),
            1
        );
        assert_eq!(
            query(AttackQuery {
                target: Some("203.0.113.8/32".parse().unwrap()),
                ..AttackQuery::default()
            }),
            0
        );
        // Over before `since`: not listed.
        assert_eq!(
            query(AttackQuery {
                since: Some(now.to_string()),
                ..AttackQuery::default()
            }),
            0
        );
        let detail = history.attack("a1").unwrap().unwrap();
        let events: Vec<&str> = detail.timeline.iter().map(|p| p.event.as_str()).collect();
        assert_eq!(events, ["attack_started", "attack_updated", "attack_ended"]);
        assert_eq!(detail.latest["event"], "attack_ended");
        assert!(history.attack("a2").unwrap().is_none());
    }

    #[test]
    fn retention_and_the_size_bound_delete_the_oldest_first() {
        let dir = Dir::new("retention");
        let config = HistoryConfig {
            max_size_mib: 16,
            ..HistoryConfig::default()
        };
        let (mut r, counts, history) = recorder(&dir, config);
        let now_ms = unix_ms();
        let now = (now_ms / 1000) as i64;
        // An attack over 400 days ago (ended), one as old still going on, one recent.
        let old = now_ms - 400 * 86_400_000;
        r.handle(&record(EventKind::AttackEnded, "old", old, true))
            .unwrap();
        r.handle(&record(EventKind::AttackUpdated, "old-active", old, false))
            .unwrap();
        r.handle(&record(
            EventKind::AttackEnded,
            "recent",
            now_ms - 5_000,
            true,
        ))
        .unwrap();
        r.idle().unwrap();
        // Per-second traffic from two hours ago and from now; 40 MiB of per-minute rows
        // within their retention.
        {
            let c = &r.conn;
            c.execute_batch("BEGIN").unwrap();
            for (ts, group) in [(now - 7_200, "g"), (now - 10, "g")] {
                c.execute(
                    "INSERT INTO traffic_seconds VALUES (?1, ?2, 'incoming', 1, 1, 1)",
                    params![ts, group],
                )
                .unwrap();
            }
            let padding = "x".repeat(400);
            for i in 0..100_000i64 {
                c.execute(
                    "INSERT INTO traffic_minutes VALUES (?1, ?2, 'incoming', 1, 1, 1, 1, 1)",
                    params![now - 86_400 + i / 8, format!("{padding}{i}")],
                )
                .unwrap();
            }
            c.execute_batch("COMMIT").unwrap();
        }
        assert!(size_bytes(&r.conn, &r.path) > 32 << 20);
        r.housekeeping().unwrap();
        let c = &r.conn;
        let seconds: Vec<i64> = c
            .prepare("SELECT ts FROM traffic_seconds")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(seconds, [now - 10]);
        let size = size_bytes(c, &r.path);
        assert!(size <= 16 << 20, "{size}");
        assert_eq!(counts.size_bytes.load(Ordering::Relaxed), size);
        // The newest per-minute rows stay, the oldest went.
        let (min, max): (i64, i64) = c
            .query_row("SELECT MIN(ts), MAX(ts) FROM traffic_minutes", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap();
        assert_eq!(max, now - 86_400 + 99_999 / 8);
        assert!(min > now - 86_400, "{min}");
        let ids: Vec<String> = history
            .attacks(&AttackQuery::default())
            .unwrap()
            .into_iter()
            .map(|a| a.attack_id)
            .collect();
        assert_eq!(ids, ["recent", "old-active"]);
    }

    #[test]
    fn failed_writes_are_counted_as_dropped_and_later_ones_go_through() {
        let dir = Dir::new("failing");
        let (mut r, counts, history) = recorder(&dir, HistoryConfig::default());
        let now = unix_ms();
        // A database that refuses writes, as a full disk does.
        r.conn.execute_batch("PRAGMA query_only = ON").unwrap();
        assert!(r
            .handle(&record(EventKind::AttackStarted, "a", now, false))
            .is_err());
        assert!(counts.dropped.load(Ordering::Relaxed) >= 1);
        r.conn.execute_batch("PRAGMA query_only = OFF").unwrap();
        r.handle(&record(EventKind::AttackUpdated, "a", now + 1_000, false))
            .unwrap();
        r.idle().unwrap();
        assert_eq!(history.attacks(&AttackQuery::default()).unwrap().len(), 1);
    }
}

#[cfg(test)]
mod restart_tests {
    use super::query::{AttackQuery, History};
    use super::*;

    #[test]
    fn attacks_open_when_the_daemon_stopped_are_closed_unfinished_at_the_next_start() {
        let dir =
            std::env::temp_dir().join(format!("floodwall-history-restart-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("h.sqlite");
        let counts = Arc::new(StoreCounts::default());
        let mut e: floodwall_detect::AttackEvent = serde_json::from_str(include_str!(
            "../../../../testdata/events/attack_started.json"
        ))
        .unwrap();
        e.attack_id = "open".into();
        e.started_at = 1_000_000;
        e.ts = 1_005_000;
        let message = Message::Attack(Arc::new(AttackRecord {
            event: e,
            decisions: Vec::new(),
        }));
        let mut r = Recorder::open(&path, HistoryConfig::default(), counts.clone()).unwrap();
        r.handle(&message).unwrap();
        r.idle().unwrap();
        drop(r);
        let _r = Recorder::open(&path, HistoryConfig::default(), counts).unwrap();
        let list = History::new(&path, 3600)
            .attacks(&AttackQuery::default())
            .unwrap();
        assert_eq!(list.len(), 1);
        assert!(!list[0].active && list[0].unfinished);
        assert_eq!(list[0].ended_at.as_deref(), Some(list[0].last_at.as_str()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
