//! `FingerprintBuilder::observe` throughput on a random-source flood: the engine calls it for
//! every record of a watched target, so it bounds how many records per second a flood can cost.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use floodwall_detect::fingerprint::FingerprintBuilder;
use floodwall_wire::{proto, tcp_flags, FlowRecord};

const N: usize = 1 << 16;

/// Spoofed-source flood records: random sources, source ports, sizes and TTLs; sampled 1:1000.
fn flood(v6: bool) -> Vec<FlowRecord> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..N)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let src = if v6 {
                IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(x) << 16))
            } else {
                IpAddr::V4(Ipv4Addr::from(x as u32))
            };
            let udp = x >> 63 == 0;
            FlowRecord {
                src,
                dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                protocol: if udp { proto::UDP } else { proto::TCP },
                src_port: (x >> 32) as u16,
                dst_port: if udp { (x >> 48) as u16 } else { 80 },
                tcp_flags: if udp { 0 } else { tcp_flags::SYN },
                packets: 1000,
                bytes: 1000 * u64::from((x >> 40) as u16 & 0x5ff),
                sampling_rate: 1000,
                ttl: (x >> 24) as u8,
                packet_len: (x >> 40) as u16 & 0x5ff,
                in_if: (x >> 56) as u32 & 3,
                out_if: 1,
                ..FlowRecord::empty(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)))
            }
        })
        .collect()
}

fn observe(c: &mut Criterion) {
    let mut g = c.benchmark_group("fingerprint");
    g.throughput(Throughput::Elements(N as u64));
    // A settled builder samples (see `Exact::stride`); the unsampled one is the exact reference
    // the sampling replaced, for the before/after of issue 14.
    for (name, v6, sampled) in [
        ("observe_flood_v4", false, true),
        ("observe_flood_v6", true, true),
        ("observe_flood_v4_unsampled", false, false),
    ] {
        let records = flood(v6);
        let mut fp = if sampled {
            FingerprintBuilder::new()
        } else {
            FingerprintBuilder::unsampled()
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                for r in &records {
                    fp.observe(black_box(r), r.src);
                }
            })
        });
        black_box(fp.snapshot());
    }
    g.finish();
    c.bench_function("fingerprint/snapshot", |b| {
        let mut fp = FingerprintBuilder::new();
        for r in &flood(false) {
            fp.observe(r, r.src);
        }
        b.iter(|| black_box(fp.snapshot()))
    });
}

criterion_group!(benches, observe);
criterion_main!(benches);
