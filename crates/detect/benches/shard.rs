//! The sharded engine's added work per record: the partition key of an address, and the
//! dispatcher's split of a batch between shards (lookups, key, copy into the shard's buffer),
//! and the same split when a collector routed the records (the routes, then the deal).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use floodwall_detect::shard::{Dispatcher, Router, ShardWork};
use floodwall_detect::{DetectConfig, Engine, Shard, ShardKey};
use floodwall_wire::FlowRecord;

const N: usize = 8192;
const T0: u64 = 1_760_000_000_000;

/// A batch of samples to 131,072 hosts of a /15 from outside, over one second.
fn batch() -> Vec<FlowRecord> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..N)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            FlowRecord {
                time_ms: T0 + (i as u64 * 1000 / N as u64),
                src: IpAddr::V4(Ipv4Addr::from(0x2d00_0000 | (x >> 40) as u32)),
                dst: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (x as u32 & 0x1_ffff))),
                packets: 1024,
                bytes: 1024 * 600,
                sampling_rate: 1024,
                ..FlowRecord::default()
            }
        })
        .collect()
}

/// A dispatcher whose work buffers were grown and emptied as a round leaves them: the split
/// reuses them.
fn warmed(
    config: &DetectConfig,
    shards: u32,
    records: &[FlowRecord],
) -> (Dispatcher, Vec<ShardWork>) {
    let (mut dispatcher, mut works) = Dispatcher::new(config, shards).expect("valid config");
    dispatcher.split(records, &mut works);
    for (index, work) in works.iter_mut().enumerate() {
        let shard = Shard {
            index: index as u32,
            count: shards,
        };
        work.run(&mut Engine::new_shard(config.clone(), shard).expect("valid"));
    }
    (dispatcher, works)
}

fn shard(c: &mut Criterion) {
    let records = batch();
    let mut g = c.benchmark_group("shard");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("key_v4_v6", |b| {
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 7, 0, 0, 0, 0, 1));
        b.iter(|| {
            let mut sum = 0u32;
            for r in &records {
                sum ^= ShardKey::of(black_box(r.dst), 24, 48).shard(4);
                sum ^= ShardKey::of(black_box(v6), 24, 48).shard(4);
            }
            sum
        })
    });
    let config = DetectConfig {
        networks: vec!["10.0.0.0/15".parse().expect("valid")],
        ..DetectConfig::default()
    };
    for shards in [2u32, 4] {
        g.bench_function(format!("split_8192_records_{shards}_shards"), |b| {
            b.iter_batched(
                || warmed(&config, shards, &records),
                |(mut dispatcher, mut works)| {
                    dispatcher.split(black_box(&records), &mut works);
                    works
                },
                BatchSize::LargeInput,
            )
        });
        // The engine thread's part when the collectors routed the batch.
        g.bench_function(format!("split_routed_8192_records_{shards}_shards"), |b| {
            let router = Router::new(&config, shards).expect("valid config");
            let mut routes = Vec::new();
            router.route_all(&records, &mut routes);
            b.iter_batched(
                || warmed(&config, shards, &records),
                |(mut dispatcher, mut works)| {
                    dispatcher.split_routed(black_box(&records), &routes, &mut works);
                    works
                },
                BatchSize::LargeInput,
            )
        });
    }
    // The collector's part: the routes of a batch.
    g.bench_function("route_8192_records_2_shards", |b| {
        let router = Router::new(&config, 2).expect("valid config");
        let mut routes = Vec::with_capacity(N);
        b.iter(|| {
            router.route_all(black_box(&records), &mut routes);
            routes.len()
        })
    });
    g.finish();
}

criterion_group!(benches, shard);
criterion_main!(benches);
