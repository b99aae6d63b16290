//! `floodwall bench hunt`: what hunting costs in memory and time at its bounds.
//!
//! - **Scanning**: scanners inside the monitored networks probing 10 M distinct destinations
//!   in all (and more scanning hosts than `max_hosts`, so eviction runs), through the hunter
//!   as the hunt thread feeds it: records per second and peak RSS.
//! - **Campaigns**: 100,000 campaigns of disjoint bot pools, as a daemon keeps them in its
//!   state directory, read back, then new attacks compared against all of them: milliseconds
//!   per comparison, the file's size, peak RSS.
//!
//! Each part runs in a child process of its own (`--part`), so each peak RSS is its own.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Context as _, Result};
use floodwall_detect::event::{Evidence, Trigger, TriggerKind};
use floodwall_detect::fingerprint::SourceSketch;
use floodwall_detect::{AttackEvent, DetectConfig, Direction, EventKind, Metric, Vector};
use floodwall_hunt::campaign::Campaigns;
use floodwall_hunt::hosts::Hunter;
use floodwall_hunt::HuntConfig;
use floodwall_wire::record::{proto, tcp_flags};
use floodwall_wire::FlowRecord;
use serde::{Deserialize, Serialize};

use super::procfs;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScanResult {
    pub records: u64,
    pub scanners: u64,
    pub distinct_destinations: u64,
    pub seconds: f64,
    pub records_per_second: f64,
    pub listed: u64,
    pub hosts_followed: u64,
    pub evicted: u64,
    pub baseline_rss_mib: f64,
    pub peak_rss_mib: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CampaignResult {
    pub stored: u64,
    pub sources_per_attack: u64,
    pub store_seconds: f64,
    /// Comparing one new attack against every stored pool.
    pub compare_ms_median: f64,
    pub compare_ms_max: f64,
    pub file_mib: f64,
    pub baseline_rss_mib: f64,
    pub peak_rss_mib: f64,
}

fn rss_mib() -> f64 {
    procfs::peak_rss_bytes(std::process::id()).unwrap_or(0) as f64 / (1 << 20) as f64
}

/// A well-spread public address from a counter (never 10/8, 127/8 or multicast).
fn public(i: u64) -> IpAddr {
    let x = (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as u32;
    IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + x % 0x5f00_0000))
}

/// The scanning part: `destinations` probe samples (1:1000), each to a new destination, from
/// `scanners` hosts of 10.0.0.0/8 (round robin).
pub fn scan(destinations: u64, scanners: u64) -> ScanResult {
    let baseline = rss_mib();
    let detection = DetectConfig {
        networks: vec!["10.0.0.0/8".parse().expect("prefix")],
        ..DetectConfig::default()
    };
    let mut hunter = Hunter::new(&HuntConfig::default(), &detection);
    let mut batch = Vec::with_capacity(8192);
    let started = Instant::now();
    for i in 0..destinations {
        let src = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i % scanners) as u32));
        batch.push(FlowRecord {
            time_ms: 1_765_000_000_000 + i / 1_000,
            src,
            dst: public(i),
            protocol: proto::TCP,
            src_port: 40_000,
            dst_port: if i % 10 == 0 { 2323 } else { 23 },
            tcp_flags: tcp_flags::SYN,
            seq_is_dst: true,
            packets: 1_000,
            bytes: 40_000,
            sampling_rate: 1_000,
            ..FlowRecord::default()
        });
        if batch.len() == batch.capacity() {
            hunter.observe(&batch);
            batch.clear();
        }
    }
    hunter.observe(&batch);
    hunter.tick(hunter.now_ms());
    let seconds = started.elapsed().as_secs_f64();
    let stats = hunter.stats();
    ScanResult {
        records: destinations,
        scanners,
        distinct_destinations: destinations,
        seconds,
        records_per_second: destinations as f64 / seconds,
        listed: stats.listed,
        hosts_followed: stats.hosts,
        evicted: stats.evicted,
        baseline_rss_mib: baseline,
        peak_rss_mib: rss_mib(),
    }
}

fn attack(id: u64, sources: u64) -> AttackEvent {
    let mut sketch = SourceSketch::new();
    for s in 0..sources {
        sketch.insert_addr(public(id * 1_000_003 + s));
    }
    AttackEvent {
        event: EventKind::AttackEnded,
        attack_id: format!("{id}-in-198.51.100.{}/32", id % 256),
        ts: 1_765_000_000_000 + id,
        direction: Direction::Incoming,
        target: format!("198.51.100.{}/32", id % 256)
            .parse()
            .expect("prefix"),
        carpet_bombing: false,
        hostgroup: "default".into(),
        vectors: vec![Vector::UdpFlood],
        bps: 0,
        pps: 0,
        peak_bps: 0,
        peak_pps: 0,
        sources,
        started_at: 1_765_000_000_000 + id,
        ended_at: Some(1_765_000_000_000 + id),
        trigger: Trigger {
            kind: TriggerKind::Threshold,
            metric: Metric::Pps,
            value: 0.0,
            limit: 0.0,
        },
        evidence: Evidence::default(),
        fingerprint: Default::default(),
        before: None,
        campaign: None,
        source_sketch: Some(Arc::new(sketch)),
    }
}

/// A campaigns file of `stored` pools from disjoint bot pools, `sources` each: what a daemon
/// that has seen that many attacks keeps in its state directory.
fn stored_file(stored: u64, sources: u64) -> Vec<u8> {
    let mut body = b"FWCAMP1\n".to_vec();
    body.extend_from_slice(&stored.to_le_bytes());
    body.extend_from_slice(&stored.to_le_bytes());
    for id in 0..stored {
        let meta = serde_json::json!({
            "id": format!("campaign-{}", id + 1),
            "direction": "incoming",
            "first_seen": 1_765_000_000_000u64 + id,
            "last_seen": 1_765_000_000_000u64 + id,
            "attack_count": 2,
            "attacks": [format!("{id}-a"), format!("{id}-b")],
            "targets": [format!("198.51.100.{}/32", id % 256)],
            "vectors": ["udp_flood"],
        })
        .to_string();
        body.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        body.extend_from_slice(meta.as_bytes());
        let mut sketch = SourceSketch::new();
        for s in 0..sources {
            sketch.insert_addr(public(id * 1_000_003 + s));
        }
        sketch.encode(&mut body);
    }
    floodwall_hunt::campaign::seal(&body)
}

/// The campaigns part: `stored` campaigns of `sources` sources each (disjoint pools) loaded
/// from a state file, then 20 new attacks compared against them all.
pub fn campaigns(stored: u64, sources: u64, dir: &Path) -> Result<CampaignResult> {
    let baseline = rss_mib();
    std::fs::create_dir_all(dir)?;
    let path = dir.join("campaigns.bin");
    std::fs::write(&path, stored_file(stored, sources))?;
    let file_mib = std::fs::metadata(&path)?.len() as f64 / (1 << 20) as f64;
    let started = Instant::now();
    let bytes = std::fs::read(&path)?;
    let mut book = Campaigns::decode(&bytes, 0.15, stored as usize + 100)
        .map_err(|e| anyhow!("reading the campaigns back: {e}"))?;
    drop(bytes);
    let store_seconds = started.elapsed().as_secs_f64();
    let mut times = Vec::new();
    for id in 0..20 {
        let mut a = attack(stored + 1_000 + id, sources);
        let t = Instant::now();
        book.observe(&mut a);
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(CampaignResult {
        stored: book.list().len() as u64,
        sources_per_attack: sources,
        store_seconds,
        compare_ms_median: times[times.len() / 2],
        compare_ms_max: *times.last().unwrap_or(&0.0),
        file_mib,
        baseline_rss_mib: baseline,
        peak_rss_mib: rss_mib(),
    })
}

/// Runs `floodwall bench hunt --part PART ...` and reads its JSON line.
pub fn child<T: for<'de> Deserialize<'de>>(floodwall: &Path, args: &[String]) -> Result<T> {
    let out = Command::new(floodwall)
        .args(["bench", "hunt"])
        .args(args)
        .output()
        .with_context(|| format!("running {}", floodwall.display()))?;
    if !out.status.success() {
        return Err(anyhow!(
            "bench hunt {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).context("reading the part's result")
}

pub fn markdown(scan: &ScanResult, campaigns: &CampaignResult, command: &str) -> String {
    format!(
        "### Hunting at its bounds (issue 16)\n\n`{command}` (each part in a process of its own; \
         peak RSS = VmHWM):\n\n\
         | part | work | time | peak RSS | at start |\n|---|---|---|---|---|\n\
         | scanning | {} probe samples (1:1000) to {} distinct destinations from {} scanners \
         (every probe a new address; {} hosts followed at the end, {} evicted, {} listed) | \
         {:.1} s, {:.2} M records/s \
         | {:.0} MiB | {:.0} MiB |\n\
         | campaigns | {} campaigns stored ({} sources each, disjoint pools) read from their \
         state file ({:.0} MiB), then new attacks compared against all: median {:.1} ms, max \
         {:.1} ms | {:.1} s to read \
         | {:.0} MiB | {:.0} MiB |\n",
        scan.records,
        scan.distinct_destinations,
        scan.scanners,
        scan.hosts_followed,
        scan.evicted,
        scan.listed,
        scan.seconds,
        scan.records_per_second / 1e6,
        scan.peak_rss_mib,
        scan.baseline_rss_mib,
        campaigns.stored,
        campaigns.sources_per_attack,
        campaigns.file_mib,
        campaigns.compare_ms_median,
        campaigns.compare_ms_max,
        campaigns.store_seconds,
        campaigns.peak_rss_mib,
        campaigns.baseline_rss_mib,
    )
}
