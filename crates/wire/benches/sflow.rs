//! sFlow v5 decode throughput: a typical datagram of 10 flow samples, each a 128-byte raw
//! Ethernet/IPv4/TCP header plus an extended switch record, decoded to `FlowRecord`s.
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use floodwall_wire::packet::{EthernetRepr, PacketRepr, TransportRepr};
use floodwall_wire::sflow::{self, DatagramRepr, FlowDataRepr, FlowSampleRepr, SampleRepr};
use floodwall_wire::{Context, ExporterCounters};

const SAMPLES: u32 = 10;
const SNAP_LEN: usize = 128;

fn datagram() -> Vec<u8> {
    let samples = (0..SAMPLES)
        .map(|i| {
            let packet = PacketRepr {
                ethernet: Some(EthernetRepr {
                    vlans: vec![100],
                    ..EthernetRepr::default()
                }),
                src: Ipv4Addr::new(203, 0, 113, i as u8).into(),
                dst: Ipv4Addr::new(198, 51, 100, 7).into(),
                ttl: 60,
                transport: TransportRepr::Tcp {
                    src_port: 40000 + i as u16,
                    dst_port: 443,
                    flags: 0x10,
                },
                payload_len: 1400,
            };
            let mut frame = packet.to_vec();
            let frame_length = frame.len() as u32 + 4;
            frame.truncate(SNAP_LEN);
            SampleRepr::Flow(FlowSampleRepr {
                expanded: false,
                sequence: i,
                source_id_type: 0,
                source_id_index: 3,
                sampling_rate: 4096,
                sample_pool: 4096 * i,
                drops: 0,
                input: 3,
                output: 5,
                records: vec![
                    FlowDataRepr::ethernet(frame, frame_length),
                    FlowDataRepr::ExtendedSwitch {
                        src_vlan: 100,
                        src_priority: 0,
                        dst_vlan: 100,
                        dst_priority: 0,
                    },
                ],
            })
        })
        .collect();
    DatagramRepr {
        agent: Ipv4Addr::new(10, 0, 0, 1).into(),
        sub_agent_id: 0,
        sequence: 1,
        uptime_ms: 1000,
        samples,
    }
    .to_vec()
}

fn bench_sflow(c: &mut Criterion) {
    let datagram = datagram();
    let ctx = Context {
        source: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        now_ms: 1_700_000_000_000,
    };
    let mut out = Vec::with_capacity(SAMPLES as usize);
    let mut counters = ExporterCounters::default();
    let mut group = c.benchmark_group("sflow");
    group.throughput(Throughput::Elements(u64::from(SAMPLES)));
    group.bench_function("decode_10_samples_128b_headers", |b| {
        b.iter(|| {
            out.clear();
            let result = sflow::decode(&ctx, black_box(&datagram), &mut out, &mut counters);
            assert_eq!(out.len(), SAMPLES as usize);
            black_box(result)
        })
    });
    group.finish();
}

criterion_group!(benches, bench_sflow);
criterion_main!(benches);
