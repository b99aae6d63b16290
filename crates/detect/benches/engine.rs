//! Ingest throughput on a realistic mix: 100k active monitored hosts, both directions, mixed
//! protocols and flags, 1:100 sampling (~200 pps per host, ~50 kpps per /24), and a few attacks
//! (SYN flood, DNS amplification, an outgoing UDP flood) so detection, watching and fingerprints
//! are exercised.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use floodwall_detect::config::Hostgroup;
use floodwall_detect::{DetectConfig, Engine};
use floodwall_wire::record::{proto, tcp_flags};
use floodwall_wire::FlowRecord;
use ipnet::IpNet;

const T0: u64 = 1_760_000_000_000;
const HOSTS: u32 = 100_000;
const SECONDS: u64 = 10;
const PER_SECOND: u64 = 200_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn host(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i))
}

fn records() -> Vec<FlowRecord> {
    let mut rng = Rng(0x5eed);
    let mut out = Vec::with_capacity((SECONDS * PER_SECOND) as usize);
    for s in 0..SECONDS {
        for i in 0..PER_SECOND {
            let x = rng.next();
            let remote = IpAddr::V4(Ipv4Addr::from(0x2000_0000 | (x >> 36) as u32));
            let mut r = FlowRecord {
                time_ms: T0 + s * 1000 + i * 1000 / PER_SECOND,
                sampling_rate: 100,
                packets: 100,
                ttl: 57,
                ..FlowRecord::default()
            };
            // Customers fill their prefixes: 100k hosts in 391 /24s.
            let local = host((x % u64::from(HOSTS)) as u32);
            let (mut src, mut dst) = (remote, local);
            match x % 100 {
                // Attacks: SYN flood and DNS amplification on two hosts, a bot flooding out.
                0..=2 => {
                    dst = host(1);
                    r.protocol = proto::TCP;
                    r.tcp_flags = tcp_flags::SYN;
                    r.bytes = 6_000;
                }
                3..=4 => {
                    dst = host(2);
                    r.protocol = proto::UDP;
                    r.src_port = 53;
                    r.bytes = 140_000;
                }
                5 => {
                    (src, dst) = (host(3), remote);
                    r.protocol = proto::UDP;
                    r.dst_port = 80;
                    r.bytes = 51_200;
                }
                6..=60 => {
                    r.protocol = proto::TCP;
                    r.tcp_flags = tcp_flags::ACK | tcp_flags::PSH;
                    r.src_port = 443;
                    r.bytes = 120_000;
                }
                61..=75 => {
                    (src, dst) = (local, remote);
                    r.protocol = proto::TCP;
                    r.tcp_flags = tcp_flags::ACK;
                    r.dst_port = 443;
                    r.bytes = 8_000;
                }
                76..=92 => {
                    r.protocol = proto::UDP;
                    r.src_port = 443;
                    r.bytes = 110_000;
                }
                93..=96 => {
                    r.protocol = proto::ICMP;
                    r.bytes = 8_400;
                }
                _ => {
                    r.protocol = proto::GRE;
                    r.bytes = 60_000;
                }
            }
            r.src = src;
            r.dst = dst;
            out.push(r);
        }
    }
    out
}

/// Every record attack traffic: SYN floods and DNS reflection on 64 hosts from random sources,
/// 100,000 records a second for 10 s. What an Aisuru-class attack makes of the telemetry: the
/// cost per *attack* record (class counts, fingerprints, attack lifecycle).
fn flood_records() -> Vec<FlowRecord> {
    let mut rng = Rng(0xf100d);
    let per_second = 100_000u64;
    (0..10 * per_second)
        .map(|i| {
            let x = rng.next();
            let dns = x.is_multiple_of(3);
            FlowRecord {
                time_ms: T0 + i * 1000 / per_second,
                sampling_rate: 1000,
                packets: 1000,
                bytes: if dns { 1_400_000 } else { 60_000 },
                ttl: 40 + (x >> 56) as u8 % 80,
                src: IpAddr::V4(Ipv4Addr::from((x >> 32) as u32 | 0x0100_0000)),
                // One host in each of 64 /24s: 64 host attacks, not a carpet.
                dst: host(((x >> 8) as u32 % 64) << 8 | 10),
                protocol: if dns { proto::UDP } else { proto::TCP },
                src_port: if dns { 53 } else { (x >> 16) as u16 },
                dst_port: if dns { (x >> 16) as u16 } else { 80 },
                tcp_flags: if dns { 0 } else { tcp_flags::SYN },
                packet_len: if dns { 1400 } else { 60 },
                ..FlowRecord::default()
            }
        })
        .collect()
}

/// An ISP-sized config: 1 002 monitored networks (IPv4 and IPv6) and 20 hostgroups, so network
/// matching costs what it would in production.
fn config() -> DetectConfig {
    let mut networks: Vec<IpNet> = vec![
        "10.0.0.0/16".parse().unwrap(),
        "10.1.0.0/16".parse().unwrap(),
    ];
    for k in 0..800u32 {
        let a = Ipv4Addr::from(0xac10_0000 + (k << 10));
        networks.push(IpNet::new(IpAddr::V4(a), 22).unwrap());
    }
    for k in 0..200u16 {
        networks.push(format!("2001:{k:x}::/32").parse().unwrap());
    }
    let hostgroups = (0..20u32)
        .map(|g| Hostgroup {
            name: format!("group-{g}"),
            networks: vec![
                IpNet::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (g << 12))), 20).unwrap(),
            ],
            ..Hostgroup::default()
        })
        .collect();
    DetectConfig {
        networks,
        hostgroups,
        ..DetectConfig::default()
    }
}

fn ingest(c: &mut Criterion) {
    let records = records();
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.sample_size(10);
    group.bench_function("ingest_mixed_100k_hosts", |b| {
        b.iter(|| {
            let mut engine = Engine::new(config()).unwrap();
            let mut events = Vec::new();
            for chunk in records.chunks(4096) {
                engine.ingest(black_box(chunk), &mut events);
            }
            engine.finish(&mut events);
            assert!(events.len() >= 6, "{} events", events.len());
            black_box(events.len())
        })
    });
    let flood = flood_records();
    group.throughput(Throughput::Elements(flood.len() as u64));
    group.bench_function("ingest_flood_64_hosts", |b| {
        b.iter(|| {
            let mut engine = Engine::new(config()).unwrap();
            let mut events = Vec::new();
            for chunk in flood.chunks(4096) {
                engine.ingest(black_box(chunk), &mut events);
            }
            engine.finish(&mut events);
            assert!(events.len() >= 64, "{} events", events.len());
            black_box(events.len())
        })
    });
    group.throughput(Throughput::Elements(records.len() as u64));
    // Steady state: the engine has seen every host once (first second, untimed), so the timed
    // part is what a long-running collector does every second.
    let first_second = (PER_SECOND) as usize;
    group.throughput(Throughput::Elements((records.len() - first_second) as u64));
    group.bench_function("ingest_mixed_100k_hosts_steady", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                let mut engine = Engine::new(config()).unwrap();
                let mut events = Vec::new();
                engine.ingest(&records[..first_second], &mut events);
                let start = std::time::Instant::now();
                for chunk in records[first_second..].chunks(4096) {
                    engine.ingest(black_box(chunk), &mut events);
                }
                engine.finish(&mut events);
                total += start.elapsed();
                assert!(events.len() >= 6, "{} events", events.len());
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
