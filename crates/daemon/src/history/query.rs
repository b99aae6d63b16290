//! Reading the history: the API's attack list and detail, and traffic over time. Each reader
//! has its own read-only connection (WAL: it never waits for the writer, nor the writer for
//! it).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context as _, Result};
use floodwall_detect::time::rfc3339_ms;
use rusqlite::{params_from_iter, Connection, OpenFlags, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An attack as the list shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AttackSummary {
    pub attack_id: String,
    /// The host (/32, /128) or, for carpet bombing, the prefix.
    pub target: String,
    /// `incoming` or `outgoing`.
    pub direction: String,
    pub carpet_bombing: bool,
    pub hostgroup: String,
    pub vectors: Vec<String>,
    /// RFC 3339, telemetry time.
    pub started_at: String,
    /// Absent while it goes on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    pub active: bool,
    /// The daemon stopped while it went on: it ended at or after `ended_at`.
    #[serde(default)]
    pub unfinished: bool,
    /// Its latest event's time.
    pub last_at: String,
    pub bps: u64,
    pub pps: u64,
    pub peak_bps: u64,
    pub peak_pps: u64,
    pub sources: u64,
}

/// One point of an attack's timeline: each of its events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TimelinePoint {
    pub ts: String,
    /// `attack_started`, `attack_updated`, `attack_ended`.
    pub event: String,
    pub bps: u64,
    pub pps: u64,
    pub sources: u64,
    pub vectors: Vec<String>,
    /// What the plan decided with this event (the rules, their coverage, their status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitigations: Option<Value>,
}

/// A rule's change, as the mitigation notices say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MitigationEntry {
    pub ts: String,
    pub mitigation_id: String,
    /// `blackhole` or `flowspec`.
    pub kind: String,
    pub target: String,
    /// `mitigation_announced`, `mitigation_queued`, `mitigation_failed`, `mitigation_withdrawn`.
    pub event: String,
    /// The notice as webhooks receive it (rule, mitigators, reason).
    pub notice: Value,
}

/// `/api/v1/attacks/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AttackDetail {
    pub summary: AttackSummary,
    /// The latest event as the events file has it: trigger, evidence, fingerprint (top
    /// sources, ports, sizes, TTLs) and the plan's rules.
    pub latest: Value,
    pub timeline: Vec<TimelinePoint>,
    pub mitigations: Vec<MitigationEntry>,
}

/// A filter of the attack list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttackQuery {
    pub active: Option<bool>,
    pub direction: Option<floodwall_detect::Direction>,
    pub vector: Option<floodwall_detect::Vector>,
    pub hostgroup: Option<String>,
    /// Targets inside this prefix (or this address).
    pub target: Option<ipnet::IpNet>,
    /// Attacks going on at or after this time (RFC 3339 or Unix ms).
    pub since: Option<String>,
    /// Attacks started before this time.
    pub until: Option<String>,
    /// At most this many, newest first. Default 100, at most 10,000.
    pub limit: Option<usize>,
}

/// Traffic of one hostgroup and direction over time.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficQuery {
    pub hostgroup: Option<String>,
    pub direction: Option<floodwall_detect::Direction>,
    pub since: Option<String>,
    pub until: Option<String>,
}

/// `/api/v1/traffic`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TrafficSeries {
    pub hostgroup: String,
    pub direction: String,
    /// Seconds between points: 1 for ranges within the per-second retention, else 60.
    pub step_s: u64,
    pub points: Vec<TrafficPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TrafficPoint {
    /// Unix seconds.
    pub t: u64,
    pub pps: u64,
    pub bps: u64,
    pub flows: u64,
}

/// The busy hosts or prefixes of a time range (or of the last second).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopQuery {
    /// `host` (default) or `prefix`.
    pub kind: Option<TopKind>,
    pub direction: Option<floodwall_detect::Direction>,
    /// Without it: the last second, from the status.
    pub since: Option<String>,
    pub until: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopKind {
    Host,
    Prefix,
}

impl TopKind {
    fn name(self) -> &'static str {
        match self {
            TopKind::Host => "host",
            TopKind::Prefix => "prefix",
        }
    }
}

/// One of the busiest targets of a range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TopRow {
    pub target: String,
    pub hostgroup: String,
    /// Mean over the range (a second out of the top counts as nothing).
    pub pps: u64,
    pub bps: u64,
    /// Its busiest second (or minute's mean, for ranges kept per minute).
    pub peak_pps: u64,
}

/// A host's or prefix's traffic over time, as far as it was among the busiest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesQuery {
    pub direction: Option<floodwall_detect::Direction>,
    pub since: Option<String>,
    pub until: Option<String>,
}

/// `/api/v1/targets/{target}/series`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TargetSeries {
    pub target: String,
    pub direction: String,
    pub step_s: u64,
    /// Only the seconds (minutes) it was among the busiest [`TOP_N`](floodwall_detect::engine::TOP_N).
    pub points: Vec<TrafficPoint>,
}

/// One exporter's counters over time (`/api/v1/exporters/{address}/series`), every 10 s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExporterSeries {
    pub exporter: String,
    pub points: Vec<ExporterPoint>,
}

/// The exporter's counters since the daemon started, as of `t`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExporterPoint {
    /// Unix seconds.
    pub t: u64,
    pub datagrams: u64,
    pub records: u64,
    pub decode_errors: u64,
    pub sequence_lost: u64,
    pub implausible: u64,
}

/// A time range only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    pub since: Option<String>,
    pub until: Option<String>,
}

/// Why a query is refused: the caller's doing, told apart from the store's failures.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    BadRequest(String),
    #[error("the history cannot be read: {0:#}")]
    Store(anyhow::Error),
}

impl From<rusqlite::Error> for QueryError {
    fn from(e: rusqlite::Error) -> Self {
        QueryError::Store(e.into())
    }
}

/// A time given as RFC 3339 or Unix milliseconds.
pub fn parse_time(text: &str) -> Result<u64, QueryError> {
    text.parse::<u64>()
        .ok()
        .or_else(|| floodwall_detect::time::parse_rfc3339_ms(text))
        .ok_or_else(|| {
            QueryError::BadRequest(format!(
                "`{text}` is not a time: give RFC 3339 (2026-12-07T10:00:00Z) or Unix milliseconds"
            ))
        })
}

/// The history as the API reads it.
pub struct History {
    path: PathBuf,
    per_second_s: u64,
    conn: Mutex<Option<Connection>>,
}

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 10_000;

impl History {
    pub fn new(path: &Path, per_second_s: u64) -> History {
        History {
            path: path.to_path_buf(),
            per_second_s,
            conn: Mutex::new(None),
        }
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, QueryError>,
    ) -> Result<T, QueryError> {
        let mut guard = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            let conn = Connection::open_with_flags(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .with_context(|| format!("opening {}", self.path.display()))
            .map_err(QueryError::Store)?;
            conn.busy_timeout(Duration::from_secs(5))?;
            *guard = Some(conn);
        }
        let result = f(guard.as_ref().expect("opened"));
        if matches!(result, Err(QueryError::Store(_))) {
            // Reopen next time (the file may have been replaced).
            *guard = None;
        }
        result
    }

    pub fn attacks(&self, q: &AttackQuery) -> Result<Vec<AttackSummary>, QueryError> {
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
        if limit == 0 {
            return Err(QueryError::BadRequest("limit must be at least 1".into()));
        }
        let since = q.since.as_deref().map(parse_time).transpose()?;
        let until = q.until.as_deref().map(parse_time).transpose()?;
        let mut sql = String::from("SELECT * FROM attacks WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(active) = q.active {
            sql.push_str(if active {
                " AND ended_ms IS NULL"
            } else {
                " AND ended_ms IS NOT NULL"
            });
        }
        if let Some(d) = q.direction {
            sql.push_str(" AND direction = ?");
            args.push(super::direction_name(d).to_string().into());
        }
        if let Some(g) = &q.hostgroup {
            sql.push_str(" AND hostgroup = ?");
            args.push(g.clone().into());
        }
        if let Some(v) = q.vector {
            // Names never contain commas: match a whole element of the list.
            sql.push_str(" AND (',' || vectors || ',') LIKE ?");
            args.push(format!("%,{},%", v.name()).into());
        }
        if let Some(since) = since {
            sql.push_str(" AND (ended_ms IS NULL OR ended_ms >= ?)");
            args.push((since as i64).into());
        }
        if let Some(until) = until {
            sql.push_str(" AND started_ms < ?");
            args.push((until as i64).into());
        }
        sql.push_str(" ORDER BY started_ms DESC, id");
        // The prefix filter is applied here, so the limit comes after it.
        let target = q.target;
        self.with(|c| {
            let mut stmt = c.prepare(&sql)?;
            let mut rows = stmt.query(params_from_iter(args.iter()))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let summary = summary(row)?;
                if let Some(net) = target {
                    let inside = summary
                        .target
                        .parse::<ipnet::IpNet>()
                        .is_ok_and(|t| net.contains(&t));
                    if !inside {
                        continue;
                    }
                }
                out.push(summary);
                if out.len() >= limit {
                    break;
                }
            }
            Ok(out)
        })
    }

    pub fn attack(&self, id: &str) -> Result<Option<AttackDetail>, QueryError> {
        self.with(|c| {
            let found = c
                .query_row("SELECT * FROM attacks WHERE id = ?1", [id], |row| {
                    Ok((summary(row)?, row.get::<_, String>("latest")?))
                })
                .optional()?;
            let Some((summary, latest)) = found else {
                return Ok(None);
            };
            let latest: Value = serde_json::from_str(&latest).unwrap_or(Value::Null);
            let mut stmt = c.prepare(
                "SELECT ts_ms, event, bps, pps, sources, vectors, decisions FROM attack_events
                 WHERE attack_id = ?1 ORDER BY ts_ms, rowid",
            )?;
            let timeline = stmt
                .query_map([id], |r| {
                    Ok(TimelinePoint {
                        ts: rfc3339_ms(r.get::<_, i64>(0)? as u64),
                        event: r.get(1)?,
                        bps: r.get::<_, i64>(2)? as u64,
                        pps: r.get::<_, i64>(3)? as u64,
                        sources: r.get::<_, i64>(4)? as u64,
                        vectors: split(&r.get::<_, String>(5)?),
                        mitigations: r
                            .get::<_, Option<String>>(6)?
                            .and_then(|t| serde_json::from_str(&t).ok()),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut stmt = c.prepare(
                "SELECT ts_ms, mitigation_id, kind, target, event, notice FROM mitigation_events
                 WHERE attack_id = ?1 ORDER BY ts_ms, rowid",
            )?;
            let mitigations = stmt
                .query_map([id], |r| {
                    Ok(MitigationEntry {
                        ts: rfc3339_ms(r.get::<_, i64>(0)? as u64),
                        mitigation_id: r.get(1)?,
                        kind: r.get(2)?,
                        target: r.get(3)?,
                        event: r.get(4)?,
                        notice: serde_json::from_str(&r.get::<_, String>(5)?)
                            .unwrap_or(Value::Null),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Some(AttackDetail {
                summary,
                latest,
                timeline,
                mitigations,
            }))
        })
    }

    pub fn traffic(&self, q: &TrafficQuery, now_ms: u64) -> Result<TrafficSeries, QueryError> {
        let (since, until, per_second) =
            self.range(q.since.as_deref(), q.until.as_deref(), now_ms)?;
        let hostgroup = q.hostgroup.clone().unwrap_or_else(|| "default".into());
        let direction =
            super::direction_name(q.direction.unwrap_or(floodwall_detect::Direction::Incoming));
        let (table, step_s) = if per_second {
            ("traffic_seconds", 1)
        } else {
            ("traffic_minutes", 60)
        };
        self.with(|c| {
            let points = points(c, table, "hostgroup", &hostgroup, direction, since, until)?;
            Ok(TrafficSeries {
                hostgroup: hostgroup.clone(),
                direction: direction.to_string(),
                step_s,
                points,
            })
        })
    }
}

impl From<&crate::status::ActiveAttack> for AttackSummary {
    /// An active attack as the list shows it (without a history, the list is these).
    fn from(a: &crate::status::ActiveAttack) -> AttackSummary {
        AttackSummary {
            attack_id: a.attack_id.clone(),
            target: a.target.to_string(),
            direction: super::direction_name(a.direction).to_string(),
            carpet_bombing: a.carpet_bombing,
            hostgroup: a.hostgroup.clone(),
            vectors: a.vectors.iter().map(|v| v.name().to_string()).collect(),
            started_at: rfc3339_ms(a.started_at),
            ended_at: None,
            active: true,
            unfinished: false,
            last_at: rfc3339_ms(a.last_at),
            bps: a.bps,
            pps: a.pps,
            peak_bps: a.peak_bps,
            peak_pps: a.peak_pps,
            sources: a.sources,
        }
    }
}

impl History {
    /// The range's (since, until, per second?) from a query's times, default the last 15 min:
    /// per second while the range is still kept per second (and not too long to draw).
    fn range(
        &self,
        since: Option<&str>,
        until: Option<&str>,
        now_ms: u64,
    ) -> Result<(u64, u64, bool), QueryError> {
        let until = until.map(parse_time).transpose()?.unwrap_or(now_ms);
        let since = since
            .map(parse_time)
            .transpose()?
            .unwrap_or(until.saturating_sub(15 * 60 * 1000));
        if since > until {
            return Err(QueryError::BadRequest("since is after until".into()));
        }
        let per_second =
            now_ms.saturating_sub(since) <= self.per_second_s * 1000 && until - since <= 3_600_000;
        Ok((since, until, per_second))
    }

    pub fn top(&self, q: &TopQuery, now_ms: u64) -> Result<Vec<TopRow>, QueryError> {
        let (since, until, per_second) =
            self.range(q.since.as_deref(), q.until.as_deref(), now_ms)?;
        let kind = q.kind.unwrap_or(TopKind::Host).name();
        let direction =
            super::direction_name(q.direction.unwrap_or(floodwall_detect::Direction::Incoming));
        let (table, scale) = if per_second {
            ("top_seconds", 1)
        } else {
            ("top_minutes", 60)
        };
        let seconds = ((until - since) / 1000).max(1) as i64;
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT target, MAX(hostgroup), SUM(pps) * ?5, SUM(bps) * ?5, MAX(pps) FROM {table}
                 WHERE kind = ?1 AND direction = ?2 AND ts >= ?3 AND ts <= ?4
                 GROUP BY target ORDER BY SUM(pps) DESC, target LIMIT ?6"
            ))?;
            let rows = stmt
                .query_map(
                    rusqlite::params![
                        kind,
                        direction,
                        (since / 1000) as i64,
                        (until / 1000) as i64,
                        scale,
                        floodwall_detect::engine::TOP_N as i64
                    ],
                    |r| {
                        Ok(TopRow {
                            target: r.get(0)?,
                            hostgroup: r.get(1)?,
                            pps: (r.get::<_, i64>(2)? / seconds) as u64,
                            bps: (r.get::<_, i64>(3)? / seconds) as u64,
                            peak_pps: r.get::<_, i64>(4)? as u64,
                        })
                    },
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    pub fn target_series(
        &self,
        target: &str,
        q: &SeriesQuery,
        now_ms: u64,
    ) -> Result<TargetSeries, QueryError> {
        let net: ipnet::IpNet = target
            .parse()
            .or_else(|_| target.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| {
                QueryError::BadRequest(format!("`{target}` is not an address or a prefix"))
            })?;
        let target = net.to_string();
        let (since, until, per_second) =
            self.range(q.since.as_deref(), q.until.as_deref(), now_ms)?;
        let direction =
            super::direction_name(q.direction.unwrap_or(floodwall_detect::Direction::Incoming));
        let (table, step_s) = if per_second {
            ("top_seconds", 1)
        } else {
            ("top_minutes", 60)
        };
        self.with(|c| {
            let points = points(c, table, "target", &target, direction, since, until)?;
            Ok(TargetSeries {
                target: target.clone(),
                direction: direction.to_string(),
                step_s,
                points,
            })
        })
    }
}

impl History {
    pub fn exporter_series(
        &self,
        exporter: &str,
        q: &RangeQuery,
        now_ms: u64,
    ) -> Result<ExporterSeries, QueryError> {
        let address: std::net::IpAddr = exporter.parse().map_err(|_| {
            QueryError::BadRequest(format!("`{exporter}` is not an exporter's address"))
        })?;
        let (since, until, _) = self.range(q.since.as_deref(), q.until.as_deref(), now_ms)?;
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT ts, datagrams, records, decode_errors, sequence_lost, implausible
                 FROM exporter_counters WHERE exporter = ?1 AND ts >= ?2 AND ts <= ?3 ORDER BY ts",
            )?;
            let points = stmt
                .query_map(
                    rusqlite::params![
                        address.to_string(),
                        (since / 1000) as i64,
                        (until / 1000) as i64
                    ],
                    |r| {
                        Ok(ExporterPoint {
                            t: r.get::<_, i64>(0)? as u64,
                            datagrams: r.get::<_, i64>(1)? as u64,
                            records: r.get::<_, i64>(2)? as u64,
                            decode_errors: r.get::<_, i64>(3)? as u64,
                            sequence_lost: r.get::<_, i64>(4)? as u64,
                            implausible: r.get::<_, i64>(5)? as u64,
                        })
                    },
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(ExporterSeries {
                exporter: address.to_string(),
                points,
            })
        })
    }
}

/// The points of one hostgroup's (`key_column` `hostgroup`) or one target's (`target`) traffic
/// in one direction, from a per-second or per-minute table; the top tables keep no flows.
fn points(
    c: &Connection,
    table: &str,
    key_column: &str,
    key: &str,
    direction: &str,
    since_ms: u64,
    until_ms: u64,
) -> rusqlite::Result<Vec<TrafficPoint>> {
    let flows = if table.starts_with("traffic_") {
        "flows"
    } else {
        "0"
    };
    let mut stmt = c.prepare(&format!(
        "SELECT ts, pps, bps, {flows} FROM {table}
         WHERE {key_column} = ?1 AND direction = ?2 AND ts >= ?3 AND ts <= ?4 ORDER BY ts"
    ))?;
    let points = stmt.query_map(
        rusqlite::params![
            key,
            direction,
            (since_ms / 1000) as i64,
            (until_ms / 1000) as i64
        ],
        |r| {
            Ok(TrafficPoint {
                t: r.get::<_, i64>(0)? as u64,
                pps: r.get::<_, i64>(1)? as u64,
                bps: r.get::<_, i64>(2)? as u64,
                flows: r.get::<_, i64>(3)? as u64,
            })
        },
    )?;
    points.collect()
}

fn split(list: &str) -> Vec<String> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn summary(row: &Row<'_>) -> rusqlite::Result<AttackSummary> {
    let ended: Option<i64> = row.get("ended_ms")?;
    Ok(AttackSummary {
        attack_id: row.get("id")?,
        target: row.get("target")?,
        direction: row.get("direction")?,
        carpet_bombing: row.get("carpet_bombing")?,
        hostgroup: row.get("hostgroup")?,
        vectors: split(&row.get::<_, String>("vectors")?),
        started_at: rfc3339_ms(row.get::<_, i64>("started_ms")? as u64),
        ended_at: ended.map(|t| rfc3339_ms(t as u64)),
        active: ended.is_none(),
        unfinished: row.get("unfinished")?,
        last_at: rfc3339_ms(row.get::<_, i64>("last_ms")? as u64),
        bps: row.get::<_, i64>("bps")? as u64,
        pps: row.get::<_, i64>("pps")? as u64,
        peak_bps: row.get::<_, i64>("peak_bps")? as u64,
        peak_pps: row.get::<_, i64>("peak_pps")? as u64,
        sources: row.get::<_, i64>("sources")? as u64,
    })
}

/// `GET /api/v1/infected` and `floodwall report infected`: hosts listed as infected.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InfectedQuery {
    /// Seen since (RFC 3339 or Unix ms); default: the last 24 hours.
    pub since: Option<String>,
    /// Only this hostgroup.
    pub hostgroup: Option<String>,
    /// Default 1,000, at most 100,000.
    pub limit: Option<usize>,
}

impl History {
    /// Infected hosts seen since the query's time (their current records), most recent first.
    pub fn infected(
        &self,
        q: &InfectedQuery,
        now_ms: u64,
    ) -> Result<Vec<floodwall_hunt::InfectedHost>, QueryError> {
        let limit = q.limit.unwrap_or(1_000).min(100_000);
        let since = match q.since.as_deref() {
            Some(text) => parse_time(text)?,
            None => now_ms.saturating_sub(86_400_000),
        };
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT record FROM infected_hosts WHERE last_ms >= ?1
                 AND (?2 IS NULL OR hostgroup = ?2) ORDER BY last_ms DESC, host LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                rusqlite::params![since as i64, q.hostgroup, limit as i64],
                |r| r.get::<_, String>(0),
            )?;
            let mut out = Vec::new();
            for row in rows {
                let json = row?;
                let host = serde_json::from_str(&json).map_err(|e| {
                    QueryError::Store(anyhow::anyhow!("an infected host's record: {e}"))
                })?;
                out.push(host);
            }
            Ok(out)
        })
    }
}
