//! The history's tables, created and upgraded by numbered migrations (`PRAGMA user_version`
//! holds how many were applied). A database from a newer Floodwall is refused, not guessed at.

use anyhow::{anyhow, Result};
use rusqlite::Connection;

/// Migration `i` takes the schema from version `i` to `i + 1`. Append, never edit.
const MIGRATIONS: &[&str] = &[
    // 1: attacks and their events, mitigations, traffic per second and minute, exporters.
    "CREATE TABLE attacks (
         id TEXT PRIMARY KEY,
         target TEXT NOT NULL,
         direction TEXT NOT NULL,
         carpet_bombing INTEGER NOT NULL,
         hostgroup TEXT NOT NULL,
         vectors TEXT NOT NULL,
         started_ms INTEGER NOT NULL,
         ended_ms INTEGER,
         last_ms INTEGER NOT NULL,
         bps INTEGER NOT NULL,
         pps INTEGER NOT NULL,
         peak_bps INTEGER NOT NULL,
         peak_pps INTEGER NOT NULL,
         sources INTEGER NOT NULL,
         latest TEXT NOT NULL,
         unfinished INTEGER NOT NULL DEFAULT 0
     );
     CREATE INDEX attacks_by_start ON attacks (started_ms);
     CREATE TABLE attack_events (
         attack_id TEXT NOT NULL,
         ts_ms INTEGER NOT NULL,
         event TEXT NOT NULL,
         bps INTEGER NOT NULL,
         pps INTEGER NOT NULL,
         sources INTEGER NOT NULL,
         vectors TEXT NOT NULL,
         decisions TEXT
     );
     CREATE INDEX attack_events_by_attack ON attack_events (attack_id, ts_ms);
     CREATE TABLE mitigation_events (
         ts_ms INTEGER NOT NULL,
         mitigation_id TEXT NOT NULL,
         attack_id TEXT,
         kind TEXT NOT NULL,
         target TEXT NOT NULL,
         event TEXT NOT NULL,
         notice TEXT NOT NULL
     );
     CREATE INDEX mitigation_events_by_attack ON mitigation_events (attack_id, ts_ms);
     CREATE INDEX mitigation_events_by_time ON mitigation_events (ts_ms);
     CREATE TABLE traffic_seconds (
         ts INTEGER NOT NULL,
         hostgroup TEXT NOT NULL,
         direction TEXT NOT NULL,
         pps INTEGER NOT NULL,
         bps INTEGER NOT NULL,
         flows INTEGER NOT NULL,
         PRIMARY KEY (hostgroup, direction, ts)
     ) WITHOUT ROWID;
     CREATE INDEX traffic_seconds_by_time ON traffic_seconds (ts);
     CREATE TABLE traffic_minutes (
         ts INTEGER NOT NULL,
         hostgroup TEXT NOT NULL,
         direction TEXT NOT NULL,
         pps INTEGER NOT NULL,
         bps INTEGER NOT NULL,
         flows INTEGER NOT NULL,
         max_pps INTEGER NOT NULL,
         max_bps INTEGER NOT NULL,
         PRIMARY KEY (hostgroup, direction, ts)
     ) WITHOUT ROWID;
     CREATE INDEX traffic_minutes_by_time ON traffic_minutes (ts);
     CREATE TABLE exporter_counters (
         ts INTEGER NOT NULL,
         exporter TEXT NOT NULL,
         datagrams INTEGER NOT NULL,
         records INTEGER NOT NULL,
         decode_errors INTEGER NOT NULL,
         sequence_lost INTEGER NOT NULL,
         implausible INTEGER NOT NULL,
         PRIMARY KEY (exporter, ts)
     ) WITHOUT ROWID;
     CREATE INDEX exporter_counters_by_time ON exporter_counters (ts);",
    // 2: the busiest hosts and prefixes per second and per minute (not every host).
    "CREATE TABLE top_seconds (
         ts INTEGER NOT NULL,
         kind TEXT NOT NULL,
         direction TEXT NOT NULL,
         target TEXT NOT NULL,
         hostgroup TEXT NOT NULL,
         pps INTEGER NOT NULL,
         bps INTEGER NOT NULL,
         PRIMARY KEY (kind, direction, ts, target)
     ) WITHOUT ROWID;
     CREATE INDEX top_seconds_by_target ON top_seconds (target, ts);
     CREATE INDEX top_seconds_by_time ON top_seconds (ts);
     CREATE TABLE top_minutes (
         ts INTEGER NOT NULL,
         kind TEXT NOT NULL,
         direction TEXT NOT NULL,
         target TEXT NOT NULL,
         hostgroup TEXT NOT NULL,
         pps INTEGER NOT NULL,
         bps INTEGER NOT NULL,
         max_pps INTEGER NOT NULL,
         PRIMARY KEY (kind, direction, ts, target)
     ) WITHOUT ROWID;
     CREATE INDEX top_minutes_by_target ON top_minutes (target, ts);
     CREATE INDEX top_minutes_by_time ON top_minutes (ts);",
    "CREATE TABLE infected_hosts (
         host TEXT PRIMARY KEY,
         hostgroup TEXT NOT NULL,
         prefix TEXT,
         first_ms INTEGER NOT NULL,
         last_ms INTEGER NOT NULL,
         confidence REAL NOT NULL,
         reasons TEXT NOT NULL,
         record TEXT NOT NULL
     );
     CREATE INDEX infected_hosts_by_last ON infected_hosts (last_ms);
     CREATE TABLE hunt_events (
         ts_ms INTEGER NOT NULL,
         kind TEXT NOT NULL,
         subject TEXT NOT NULL,
         event TEXT NOT NULL
     );
     CREATE INDEX hunt_events_by_time ON hunt_events (ts_ms);
     CREATE INDEX hunt_events_by_subject ON hunt_events (subject, ts_ms);",
];

/// The schema version this build writes.
pub const VERSION: usize = MIGRATIONS.len();

/// Sets the connection up (WAL, incremental vacuum) and applies the migrations it lacks, each
/// in its own transaction.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    // Before any table exists, or it has no effect: lets the size bound give space back.
    conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;")?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(anyhow!(
            "cannot use a write-ahead log (journal mode stays {mode}): is the directory on a network file system?"
        ));
    }
    // Committed transactions survive a killed process; a power cut may lose the last ones.
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    if version > VERSION {
        return Err(anyhow!(
            "its schema is version {version}, newer than this Floodwall's {VERSION}: it was written by a newer release (move it away to start a new history)"
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_gets_every_migration_and_a_second_open_changes_nothing() {
        let dir = std::env::temp_dir().join(format!("floodwall-schema-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("h.sqlite");
        let _ = std::fs::remove_file(&path);
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, VERSION);
        drop(conn);
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn).unwrap();
        let tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 10);
        // A newer schema is refused.
        conn.pragma_update(None, "user_version", (VERSION + 1) as i64)
            .unwrap();
        let e = migrate(&mut conn).unwrap_err().to_string();
        assert!(e.contains("newer"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
