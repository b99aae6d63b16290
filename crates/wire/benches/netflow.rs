//! NetFlow v5 / v9 / IPFIX decode throughput, in flow records per second (templates learned
//! before the timing loop).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use floodwall_wire::export::{ExportClock, Flow, MessageWriter, TemplateRepr};
use floodwall_wire::template::{Flavor, TemplateDecoder};
use floodwall_wire::{netflow_v5, Context, ExporterCounters, Limits};

const EXPORTER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const CLOCK: ExportClock = ExportClock {
    unix_secs: 1_600_000_000,
    sys_uptime_ms: 3_600_000,
};

fn flows(n: u32) -> Vec<Flow> {
    (0..n)
        .map(|i| Flow {
            src: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)),
            dst: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
            src_port: 1024 + i as u16,
            dst_port: 443,
            protocol: 6,
            tcp_flags: 0x12,
            bytes: 1500 * u64::from(i + 1),
            packets: u64::from(i + 1),
            in_if: 3,
            out_if: 7,
            start_ms: 1_599_999_990_000,
            end_ms: 1_599_999_999_000,
        })
        .collect()
}

fn v5(c: &mut Criterion) {
    let header = netflow_v5::HeaderRepr {
        sys_uptime: 3_600_000,
        unix_secs: 1_600_000_000,
        sampling: 0x4000 | 100,
        ..Default::default()
    };
    let records: Vec<_> = flows(30)
        .iter()
        .map(|f| netflow_v5::RecordRepr {
            src_addr: Ipv4Addr::new(10, 0, 0, f.src_port as u8),
            dst_addr: Ipv4Addr::new(203, 0, 113, 7),
            packets: f.packets as u32,
            octets: f.bytes as u32,
            last: 3_599_000,
            src_port: f.src_port,
            dst_port: f.dst_port,
            protocol: f.protocol,
            tcp_flags: f.tcp_flags,
            ..Default::default()
        })
        .collect();
    let datagram = netflow_v5::emit(&header, &records);
    let ctx = Context {
        source: EXPORTER,
        now_ms: 1_600_000_000_000,
    };
    let mut out = Vec::with_capacity(64);
    let mut counters = ExporterCounters::default();
    let mut group = c.benchmark_group("netflow");
    group.throughput(Throughput::Elements(30));
    group.bench_function("v5_30_records", |b| {
        b.iter(|| {
            out.clear();
            netflow_v5::decode(&ctx, black_box(&datagram), &mut out, &mut counters).unwrap();
            black_box(out.len())
        })
    });
    group.finish();
}

fn templated(c: &mut Criterion, flavor: Flavor, template: TemplateRepr, name: &str, n: u32) {
    let options = TemplateRepr::sampling_options(flavor, 300);
    let setup = MessageWriter::new(flavor, CLOCK, 0, 1)
        .templates(&[&template])
        .templates(&[&options])
        .sampling(&options, 100)
        .finish();
    let datagram = MessageWriter::new(flavor, CLOCK, 1, 1)
        .flows(&template, &flows(n))
        .finish();
    let ctx = Context {
        source: EXPORTER,
        now_ms: 1_600_000_000_000,
    };
    let mut decoder = TemplateDecoder::new(Limits::default());
    let mut out = Vec::with_capacity(64);
    let mut counters = ExporterCounters::default();
    let decode =
        |decoder: &mut TemplateDecoder, bytes: &[u8], out: &mut Vec<_>, counters: &mut _| {
            match flavor {
                Flavor::NetflowV9 => decoder.decode_v9(&ctx, bytes, out, counters),
                Flavor::Ipfix => decoder.decode_ipfix(&ctx, bytes, out, counters),
            }
            .unwrap()
        };
    decode(&mut decoder, &setup, &mut out, &mut counters);
    out.clear();
    decode(&mut decoder, &datagram, &mut out, &mut counters);
    assert_eq!(out.len(), n as usize);
    let mut group = c.benchmark_group("netflow");
    group.throughput(Throughput::Elements(u64::from(n)));
    group.bench_function(name, |b| {
        b.iter(|| {
            out.clear();
            decode(&mut decoder, black_box(&datagram), &mut out, &mut counters);
            black_box(out.len())
        })
    });
    group.finish();
}

fn v9(c: &mut Criterion) {
    templated(
        c,
        Flavor::NetflowV9,
        TemplateRepr::standard(Flavor::NetflowV9, 256, false),
        "v9_v4_30_records",
        30,
    );
    templated(
        c,
        Flavor::NetflowV9,
        TemplateRepr::standard(Flavor::NetflowV9, 256, true),
        "v9_v6_20_records",
        20,
    );
}

fn ipfix(c: &mut Criterion) {
    templated(
        c,
        Flavor::Ipfix,
        TemplateRepr::standard(Flavor::Ipfix, 256, false),
        "ipfix_v4_24_records",
        24,
    );
    templated(
        c,
        Flavor::Ipfix,
        TemplateRepr::standard(Flavor::Ipfix, 256, true),
        "ipfix_v6_16_records",
        16,
    );
    templated(
        c,
        Flavor::Ipfix,
        TemplateRepr::exotic(256),
        "ipfix_varlen_20_records",
        20,
    );
}

criterion_group!(benches, v5, v9, ipfix);
criterion_main!(benches);
