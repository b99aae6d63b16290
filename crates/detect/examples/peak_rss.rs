//! Peak memory and throughput of the engine in its two memory-critical cases:
//!
//! - `hosts`: 1 million active monitored hosts (10.0.0.0/8), both directions, over 5 seconds;
//! - `spoofed`: a flood from 1 million distinct spoofed sources against one host.
//!
//! Run `cargo run --release -p floodwall-detect --example peak_rss`: each case runs in its own
//! process (peak RSS is per process) and prints VmHWM from /proc/self/status and records/s.
//! Records are generated in small batches so they do not count towards the peak.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use floodwall_detect::{DetectConfig, Engine};
use floodwall_wire::record::{proto, tcp_flags};
use floodwall_wire::FlowRecord;

const T0: u64 = 1_760_000_000_000;
const MILLION: u64 = 1_000_000;

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn config() -> DetectConfig {
    DetectConfig {
        networks: vec!["10.0.0.0/8".parse().unwrap()],
        ..DetectConfig::default()
    }
}

/// Feeds `total` records made by `make(i)` in batches; returns the time spent in the engine.
fn feed(engine: &mut Engine, total: u64, make: impl Fn(u64) -> FlowRecord) -> (Duration, usize) {
    let mut batch = Vec::with_capacity(8192);
    let mut events = Vec::new();
    let mut busy = Duration::ZERO;
    let mut i = 0;
    while i < total {
        batch.clear();
        batch.extend((i..(i + 8192).min(total)).map(&make));
        i += batch.len() as u64;
        let t = Instant::now();
        engine.ingest(&batch, &mut events);
        busy += t.elapsed();
    }
    let t = Instant::now();
    engine.finish(&mut events);
    busy += t.elapsed();
    (busy, events.len())
}

fn monitored(i: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i as u32 & 0x00ff_ffff)))
}

fn remote(i: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(
        0x2000_0000 | (i.wrapping_mul(2_654_435_761) as u32 >> 4),
    ))
}

fn hosts_case() {
    // 5 seconds; each second every one of 1M hosts receives one record and sends one.
    let seconds = 5;
    let per_s = 2 * MILLION;
    let total = seconds * per_s;
    let mut engine = Engine::new(config()).unwrap();
    let (busy, events) = feed(&mut engine, total, |i| {
        let s = i / per_s;
        let k = i % per_s;
        let host = monitored((k / 2).wrapping_mul(7_919) % (1 << 24));
        let mut r = FlowRecord {
            time_ms: T0 + s * 1000 + k * 1000 / per_s,
            protocol: proto::TCP,
            tcp_flags: tcp_flags::ACK,
            packets: 1000,
            bytes: 800_000,
            sampling_rate: 1000,
            ..FlowRecord::default()
        };
        (r.src, r.dst) = if k.is_multiple_of(2) {
            (remote(i), host)
        } else {
            (host, remote(i))
        };
        r
    });
    report("1M active hosts", total, busy, events, &engine);
}

fn spoofed_case() {
    let total = MILLION;
    let mut engine = Engine::new(config()).unwrap();
    let victim = monitored(42);
    let (busy, events) = feed(&mut engine, total, |i| FlowRecord {
        time_ms: T0 + i * 4000 / total,
        src: remote(i),
        dst: victim,
        protocol: proto::TCP,
        tcp_flags: tcp_flags::SYN,
        packets: 1,
        bytes: 60,
        ..FlowRecord::default()
    });
    report("1M spoofed sources -> 1 host", total, busy, events, &engine);
}

fn report(name: &str, records: u64, busy: Duration, events: usize, engine: &Engine) {
    let stats = engine.stats();
    println!(
        "{name}: {records} records, {:.2} M records/s, peak RSS {:.1} MiB, hosts_tracked {}, \
         prefixes_tracked {}, events {events}",
        records as f64 / busy.as_secs_f64() / 1e6,
        vm_hwm_kib() as f64 / 1024.0,
        stats.hosts_tracked,
        stats.prefixes_tracked,
    );
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("hosts") => hosts_case(),
        Some("spoofed") => spoofed_case(),
        _ => {
            let exe = std::env::current_exe().expect("own path");
            for case in ["hosts", "spoofed"] {
                let status = std::process::Command::new(&exe)
                    .arg(case)
                    .status()
                    .expect("run case");
                assert!(status.success(), "{case} failed");
            }
        }
    }
}
