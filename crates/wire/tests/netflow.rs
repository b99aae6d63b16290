//! NetFlow v5 / v9 / IPFIX: golden datagrams, round trips through the writers, template cache
//! behaviour and hostile input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use floodwall_wire::export::{ExportClock, Flow, MessageWriter, TemplateRepr};
use floodwall_wire::template::{Flavor, TemplateDecoder};
use floodwall_wire::{
    netflow_v5, proto, tcp_flags, Context, DecodeError, ExporterCounters, FlowRecord, Limits,
    Sequence,
};

const EXPORTER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const OTHER_EXPORTER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
/// 2020-09-13T12:26:40Z
const UNIX_SECS: u32 = 1_600_000_000;
const NOW_MS: u64 = 1_600_000_000_100;

fn ctx(source: IpAddr, now_ms: u64) -> Context {
    Context { source, now_ms }
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

struct Harness {
    decoder: TemplateDecoder,
    counters: ExporterCounters,
    out: Vec<FlowRecord>,
}

impl Harness {
    fn new(limits: Limits) -> Self {
        Harness {
            decoder: TemplateDecoder::new(limits),
            counters: ExporterCounters::default(),
            out: Vec::new(),
        }
    }

    fn feed(
        &mut self,
        flavor: Flavor,
        source: IpAddr,
        now_ms: u64,
        datagram: &[u8],
    ) -> Result<floodwall_wire::Summary, DecodeError> {
        let ctx = ctx(source, now_ms);
        match flavor {
            Flavor::NetflowV9 => {
                self.decoder
                    .decode_v9(&ctx, datagram, &mut self.out, &mut self.counters)
            }
            Flavor::Ipfix => {
                self.decoder
                    .decode_ipfix(&ctx, datagram, &mut self.out, &mut self.counters)
            }
        }
    }
}

fn clock() -> ExportClock {
    ExportClock {
        unix_secs: UNIX_SECS,
        sys_uptime_ms: 3_600_000,
    }
}

fn flow(i: u8, ipv6: bool) -> Flow {
    let (src, dst) = if ipv6 {
        (
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(i))),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1)),
        )
    } else {
        (v4(10, 0, 0, i), v4(203, 0, 113, 7))
    };
    Flow {
        src,
        dst,
        src_port: 40_000 + u16::from(i),
        dst_port: 443,
        protocol: proto::TCP,
        tcp_flags: tcp_flags::SYN | tcp_flags::ACK,
        bytes: 1_000 + u64::from(i),
        packets: 10 + u64::from(i),
        in_if: 3,
        out_if: 7,
        start_ms: u64::from(UNIX_SECS) * 1000 - 5_000,
        end_ms: u64::from(UNIX_SECS) * 1000 - 1_000 + u64::from(i),
    }
}

fn expected(flow: &Flow, exporter: IpAddr, rate: u32) -> FlowRecord {
    FlowRecord {
        exporter,
        time_ms: flow.end_ms,
        src: flow.src,
        dst: flow.dst,
        protocol: flow.protocol,
        src_port: flow.src_port,
        dst_port: flow.dst_port,
        tcp_flags: flow.tcp_flags,
        seq_is_dst: false,
        bytes: flow.bytes * u64::from(rate),
        packets: flow.packets * u64::from(rate),
        sampling_rate: rate,
        fragment: false,
        ttl: 0,
        packet_len: 0,
        in_if: flow.in_if,
        out_if: flow.out_if,
        datagram: 0,
    }
}

// ---------------------------------------------------------------------------------------------
// Golden datagrams, written by hand from the RFCs / Cisco docs.

#[rustfmt::skip]
const V5_GOLDEN: [u8; 24 + 2 * 48] = [
    0x00, 0x05, 0x00, 0x02,             // version 5, count 2
    0x00, 0x01, 0x86, 0xa0,             // sys_uptime 100000 ms
    0x5f, 0x5e, 0x10, 0x00,             // unix_secs 1600000000
    0x1d, 0xcd, 0x65, 0x00,             // unix_nsecs 500000000
    0x00, 0x00, 0x00, 0x64,             // flow_sequence 100
    0x01, 0x02,                         // engine type 1, id 2
    0x40, 0x0a,                         // sampling mode 1, interval 10
    // record 1: TCP 10.0.0.1:12345 -> 192.0.2.1:80
    0x0a, 0x00, 0x00, 0x01,  0xc0, 0x00, 0x02, 0x01,  0x00, 0x00, 0x00, 0x00,
    0x00, 0x03, 0x00, 0x04,             // input 3, output 4
    0x00, 0x00, 0x00, 0x05,             // 5 packets
    0x00, 0x00, 0x01, 0xf4,             // 500 octets
    0x00, 0x01, 0x5f, 0x90,             // first 90000
    0x00, 0x01, 0x7e, 0xd0,             // last 98000
    0x30, 0x39, 0x00, 0x50,             // ports 12345 -> 80
    0x00, 0x12, 0x06, 0x00,             // pad, SYN|ACK, TCP, tos
    0x00, 0x00, 0x00, 0x00, 0x18, 0x18, 0x00, 0x00,
    // record 2: ICMP echo request 10.0.0.2 -> 192.0.2.2
    0x0a, 0x00, 0x00, 0x02,  0xc0, 0x00, 0x02, 0x02,  0x00, 0x00, 0x00, 0x00,
    0x00, 0x01, 0x00, 0x02,
    0x00, 0x00, 0x00, 0x01,
    0x00, 0x00, 0x00, 0x54,
    0x00, 0x01, 0x86, 0x9f,
    0x00, 0x01, 0x86, 0xa0,             // last == sys_uptime
    0x00, 0x00, 0x08, 0x00,             // type 8 code 0 in dst port
    0x00, 0x00, 0x01, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

#[test]
fn golden_netflow_v5() {
    let mut out = Vec::new();
    let mut counters = ExporterCounters::default();
    let summary =
        netflow_v5::decode(&ctx(EXPORTER, NOW_MS), &V5_GOLDEN, &mut out, &mut counters).unwrap();
    assert_eq!(
        summary.sequence,
        Some(Sequence {
            domain: 0x0102,
            number: 100,
            advance: Some(2)
        })
    );
    let export_ms = 1_600_000_000_500;
    assert_eq!(
        out,
        vec![
            FlowRecord {
                exporter: EXPORTER,
                time_ms: export_ms - 2_000,
                src: v4(10, 0, 0, 1),
                dst: v4(192, 0, 2, 1),
                protocol: proto::TCP,
                src_port: 12345,
                dst_port: 80,
                tcp_flags: tcp_flags::SYN | tcp_flags::ACK,
                seq_is_dst: false,
                bytes: 5_000,
                packets: 50,
                sampling_rate: 10,
                fragment: false,
                ttl: 0,
                packet_len: 0,
                in_if: 3,
                out_if: 4,
                datagram: 0,
            },
            FlowRecord {
                exporter: EXPORTER,
                time_ms: export_ms,
                src: v4(10, 0, 0, 2),
                dst: v4(192, 0, 2, 2),
                protocol: proto::ICMP,
                src_port: 0,
                dst_port: 0x0800,
                tcp_flags: 0,
                seq_is_dst: false,
                bytes: 840,
                packets: 10,
                sampling_rate: 10,
                fragment: false,
                ttl: 0,
                packet_len: 0,
                in_if: 1,
                out_if: 2,
                datagram: 0,
            },
        ]
    );
}

#[rustfmt::skip]
const V9_GOLDEN: [u8; 92] = [
    0x00, 0x09, 0x00, 0x02,             // version 9, count 2
    0x00, 0x00, 0x27, 0x10,             // sys_uptime 10000 ms
    0x5f, 0x5e, 0x10, 0x00,             // unix_secs 1600000000
    0x00, 0x00, 0x00, 0x07,             // sequence 7
    0x00, 0x00, 0x00, 0x2a,             // source id 42
    // template flowset
    0x00, 0x00, 0x00, 0x28,
    0x01, 0x00, 0x00, 0x08,             // template 256, 8 fields
    0x00, 0x08, 0x00, 0x04,             // IPV4_SRC_ADDR
    0x00, 0x0c, 0x00, 0x04,             // IPV4_DST_ADDR
    0x00, 0x07, 0x00, 0x02,             // L4_SRC_PORT
    0x00, 0x0b, 0x00, 0x02,             // L4_DST_PORT
    0x00, 0x04, 0x00, 0x01,             // PROTOCOL
    0x00, 0x01, 0x00, 0x04,             // IN_BYTES
    0x00, 0x02, 0x00, 0x04,             // IN_PKTS
    0x00, 0x15, 0x00, 0x04,             // LAST_SWITCHED
    // data flowset: 25-byte record + 3 bytes padding
    0x01, 0x00, 0x00, 0x20,
    0xc6, 0x33, 0x64, 0x01,             // 198.51.100.1
    0xcb, 0x00, 0x71, 0x05,             // 203.0.113.5
    0x00, 0x35, 0xd4, 0x31,             // 53 -> 54321
    0x11,                               // UDP
    0x00, 0x00, 0x05, 0xdc,             // 1500 bytes
    0x00, 0x00, 0x00, 0x0a,             // 10 packets
    0x00, 0x00, 0x1f, 0x40,             // last switched 8000
    0x00, 0x00, 0x00,
];

#[test]
fn golden_netflow_v9() {
    let mut h = Harness::new(Limits::default());
    let summary = h
        .feed(Flavor::NetflowV9, EXPORTER, NOW_MS, &V9_GOLDEN)
        .unwrap();
    assert_eq!(
        summary.sequence,
        Some(Sequence {
            domain: 42,
            number: 7,
            advance: Some(1)
        })
    );
    assert_eq!(
        h.out,
        vec![FlowRecord {
            exporter: EXPORTER,
            time_ms: 1_600_000_000_000 - 2_000,
            src: v4(198, 51, 100, 1),
            dst: v4(203, 0, 113, 5),
            protocol: proto::UDP,
            src_port: 53,
            dst_port: 54321,
            tcp_flags: 0,
            seq_is_dst: false,
            bytes: 1500,
            packets: 10,
            sampling_rate: 1,
            fragment: false,
            ttl: 0,
            packet_len: 0,
            in_if: 0,
            out_if: 0,
            datagram: 0,
        }]
    );
    assert_eq!(h.counters.templates_learned, 1);
    assert_eq!(h.decoder.template_count(), 1);
    assert_eq!(h.counters.total_errors(), 0);
}

#[rustfmt::skip]
const IPFIX_GOLDEN: [u8; 140] = [
    0x00, 0x0a, 0x00, 0x8c,             // version 10, length 140
    0x5f, 0x5e, 0x10, 0x00,             // export time 1600000000
    0x00, 0x00, 0x00, 0x00,             // sequence 0
    0x00, 0x00, 0x00, 0x07,             // observation domain 7
    // template set
    0x00, 0x02, 0x00, 0x24,
    0x01, 0x00, 0x00, 0x07,             // template 256, 7 fields
    0x00, 0x1b, 0x00, 0x10,             // sourceIPv6Address
    0x00, 0x1c, 0x00, 0x10,             // destinationIPv6Address
    0x00, 0x04, 0x00, 0x01,             // protocolIdentifier
    0x00, 0x06, 0x00, 0x02,             // tcpControlBits (2 bytes)
    0x00, 0x01, 0x00, 0x04,             // octetDeltaCount, reduced to 4
    0x00, 0x02, 0x00, 0x02,             // packetDeltaCount, reduced to 2
    0x00, 0x99, 0x00, 0x08,             // flowEndMilliseconds
    // options template set (+2 padding)
    0x00, 0x03, 0x00, 0x14,
    0x01, 0x01, 0x00, 0x02, 0x00, 0x01, // template 257, 2 fields, 1 scope
    0x00, 0x95, 0x00, 0x04,             // scope observationDomainId
    0x00, 0x22, 0x00, 0x02,             // samplingInterval, reduced to 2
    0x00, 0x00,
    // options data set (+2 padding)
    0x01, 0x01, 0x00, 0x0c,
    0x00, 0x00, 0x00, 0x07,
    0x00, 0x64,                         // 1 in 100
    0x00, 0x00,
    // data set: 49-byte record + 3 padding
    0x01, 0x00, 0x00, 0x38,
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
    0x06,
    0x00, 0x12,                         // SYN|ACK
    0x00, 0x00, 0x03, 0xe8,             // 1000 bytes
    0x00, 0x02,                         // 2 packets
    0x00, 0x00, 0x01, 0x74, 0x87, 0x6e, 0x80, 0x00, // 1600000000000 ms
    0x00, 0x00, 0x00,
];

#[test]
fn golden_ipfix_with_sampling_options() {
    let mut h = Harness::new(Limits::default());
    let summary = h
        .feed(Flavor::Ipfix, EXPORTER, NOW_MS, &IPFIX_GOLDEN)
        .unwrap();
    assert_eq!(
        summary.sequence,
        Some(Sequence {
            domain: 7,
            number: 0,
            advance: Some(2)
        })
    );
    assert_eq!(
        h.out,
        vec![FlowRecord {
            exporter: EXPORTER,
            time_ms: 1_600_000_000_000,
            src: "2001:db8::1".parse().unwrap(),
            dst: "2001:db8::2".parse().unwrap(),
            protocol: proto::TCP,
            src_port: 0,
            dst_port: 0,
            tcp_flags: tcp_flags::SYN | tcp_flags::ACK,
            seq_is_dst: false,
            bytes: 100_000,
            packets: 200,
            sampling_rate: 100,
            fragment: false,
            ttl: 0,
            packet_len: 0,
            in_if: 0,
            out_if: 0,
            datagram: 0,
        }]
    );
    assert_eq!(h.counters.templates_learned, 2);
    assert_eq!(h.decoder.template_count(), 2);
    assert_eq!(h.counters.total_errors(), 0);
}

// ---------------------------------------------------------------------------------------------
// Round trips through the writers.

#[test]
fn netflow_v5_repr_round_trip() {
    let header = netflow_v5::HeaderRepr {
        sys_uptime: 3_600_000,
        unix_secs: UNIX_SECS,
        unix_nsecs: 250_000_000,
        flow_sequence: 77,
        engine_type: 0,
        engine_id: 9,
        sampling: 0,
    };
    let records: Vec<_> = (0..30u8)
        .map(|i| netflow_v5::RecordRepr {
            src_addr: Ipv4Addr::new(10, 1, 0, i),
            dst_addr: Ipv4Addr::new(198, 51, 100, 1),
            packets: 1 + u32::from(i),
            octets: 64 * (1 + u32::from(i)),
            last: 3_599_000,
            src_port: 1024,
            dst_port: 53,
            protocol: proto::UDP,
            input: 1,
            output: 2,
            ..Default::default()
        })
        .collect();
    let datagram = netflow_v5::emit(&header, &records);
    let packet = netflow_v5::Packet::new_checked(&datagram[..]).unwrap();
    assert_eq!(netflow_v5::HeaderRepr::parse(&packet).unwrap(), header);
    let parsed: Vec<_> = packet
        .records()
        .map(|r| netflow_v5::RecordRepr::parse(&r).unwrap())
        .collect();
    assert_eq!(parsed, records);

    let mut out = Vec::new();
    let mut counters = ExporterCounters::default();
    netflow_v5::decode(&ctx(EXPORTER, NOW_MS), &datagram, &mut out, &mut counters).unwrap();
    assert_eq!(out.len(), 30);
    assert_eq!(out[29].src, v4(10, 1, 0, 29));
    assert_eq!(out[29].bytes, 64 * 30);
    assert_eq!(out[0].sampling_rate, 1, "interval 0 means unsampled");
    assert_eq!(out[0].time_ms, 1_600_000_000_250 - 1_000);
}

fn round_trip(flavor: Flavor, template: &TemplateRepr, ipv6: bool, rate: Option<u32>) {
    let options = TemplateRepr::sampling_options(flavor, 300);
    let flows: Vec<Flow> = (0..20).map(|i| flow(i, ipv6)).collect();
    let mut writer = MessageWriter::new(flavor, clock(), 1, 5);
    writer.templates(&[template]);
    if let Some(rate) = rate {
        writer.templates(&[&options]).sampling(&options, rate);
    }
    let datagram = writer.flows(template, &flows).finish();
    let mut h = Harness::new(Limits::default());
    h.feed(flavor, EXPORTER, NOW_MS, &datagram).unwrap();
    let want: Vec<_> = flows
        .iter()
        .map(|f| expected(f, EXPORTER, rate.unwrap_or(1)))
        .collect();
    assert_eq!(h.out, want);
    assert_eq!(h.counters.total_errors(), 0);
}

#[test]
fn netflow_v9_round_trips() {
    for ipv6 in [false, true] {
        let template = TemplateRepr::standard(Flavor::NetflowV9, 256, ipv6);
        round_trip(Flavor::NetflowV9, &template, ipv6, None);
        round_trip(Flavor::NetflowV9, &template, ipv6, Some(512));
    }
}

#[test]
fn ipfix_round_trips() {
    for ipv6 in [false, true] {
        let template = TemplateRepr::standard(Flavor::Ipfix, 256, ipv6);
        round_trip(Flavor::Ipfix, &template, ipv6, None);
        round_trip(Flavor::Ipfix, &template, ipv6, Some(1000));
    }
}

#[test]
fn ipfix_skips_enterprise_and_variable_length_fields() {
    round_trip(Flavor::Ipfix, &TemplateRepr::exotic(400), false, Some(4));
}

#[test]
fn ipfix_uptime_times_use_system_init_time() {
    // A template with flowEndSysUpTime: relative to systemInitTimeMilliseconds from options data.
    let template = TemplateRepr {
        id: 256,
        scope: vec![],
        fields: TemplateRepr::standard(Flavor::NetflowV9, 256, false).fields,
    };
    let options = TemplateRepr::sampling_options(Flavor::Ipfix, 300);
    let flows = [flow(1, false)];
    let mut h = Harness::new(Limits::default());
    // Without systemInitTime: export time.
    let datagram = MessageWriter::new(Flavor::Ipfix, clock(), 0, 5)
        .templates(&[&template])
        .flows(&template, &flows)
        .finish();
    h.feed(Flavor::Ipfix, EXPORTER, NOW_MS, &datagram).unwrap();
    assert_eq!(h.out[0].time_ms, u64::from(UNIX_SECS) * 1000);
    let datagram = MessageWriter::new(Flavor::Ipfix, clock(), 1, 5)
        .templates(&[&options])
        .sampling(&options, 1)
        .flows(&template, &flows)
        .finish();
    h.feed(Flavor::Ipfix, EXPORTER, NOW_MS, &datagram).unwrap();
    assert_eq!(h.out[1].time_ms, flows[0].end_ms);
}

// ---------------------------------------------------------------------------------------------
// Template cache behaviour.

#[test]
fn data_before_template_is_held_then_decoded() {
    for flavor in [Flavor::NetflowV9, Flavor::Ipfix] {
        let template = TemplateRepr::standard(flavor, 256, false);
        let flows: Vec<Flow> = (0..3).map(|i| flow(i, false)).collect();
        let mut h = Harness::new(Limits::default());
        let data = MessageWriter::new(flavor, clock(), 10, 1)
            .flows(&template, &flows)
            .finish();
        let summary = h.feed(flavor, EXPORTER, NOW_MS, &data).unwrap();
        assert!(h.out.is_empty());
        assert_eq!(h.counters.unknown_template_sets, 1);
        assert!(h.decoder.pending_bytes() > 0);
        if flavor == Flavor::Ipfix {
            assert_eq!(summary.sequence.unwrap().advance, None);
        }
        let templates = MessageWriter::new(flavor, clock(), 11, 1)
            .templates(&[&template])
            .finish();
        h.feed(flavor, EXPORTER, NOW_MS + 10, &templates).unwrap();
        assert_eq!(h.out.len(), 3, "{flavor:?}");
        assert_eq!(h.out[2], expected(&flows[2], EXPORTER, 1));
        assert_eq!(h.counters.pending_decoded, 1);
        assert_eq!(h.decoder.pending_bytes(), 0);
    }
}

#[test]
fn held_data_expires_and_is_reported() {
    let limits = Limits::default();
    let template = TemplateRepr::standard(Flavor::Ipfix, 256, false);
    let mut h = Harness::new(limits);
    let data = MessageWriter::new(Flavor::Ipfix, clock(), 0, 1)
        .flows(&template, &[flow(1, false)])
        .finish();
    h.feed(Flavor::Ipfix, EXPORTER, NOW_MS, &data).unwrap();
    h.feed(Flavor::Ipfix, OTHER_EXPORTER, NOW_MS + 3_000, &data)
        .unwrap();
    let mut dropped = Vec::new();
    h.decoder
        .expire(NOW_MS + limits.pending_max_age_ms + 1, &mut |ip, n| {
            dropped.push((ip, n))
        });
    assert_eq!(dropped, vec![(EXPORTER, 1)]);
    assert!(h.decoder.pending_bytes() > 0);
    h.decoder.expire(
        NOW_MS + 3_000 + limits.pending_max_age_ms + 1,
        &mut |ip, n| dropped.push((ip, n)),
    );
    assert_eq!(dropped, vec![(EXPORTER, 1), (OTHER_EXPORTER, 1)]);
    assert_eq!(h.decoder.pending_bytes(), 0);
    // The template arriving later finds nothing.
    let templates = MessageWriter::new(Flavor::Ipfix, clock(), 1, 1)
        .templates(&[&template])
        .finish();
    h.feed(Flavor::Ipfix, EXPORTER, NOW_MS + 20_000, &templates)
        .unwrap();
    assert!(h.out.is_empty());
}

#[test]
fn pending_buffer_is_bounded() {
    let limits = Limits {
        pending_max_bytes: 1_000,
        ..Limits::default()
    };
    let template = TemplateRepr::standard(Flavor::NetflowV9, 256, false);
    let data = MessageWriter::new(Flavor::NetflowV9, clock(), 0, 1)
        .flows(
            &template,
            &(0..10).map(|i| flow(i, false)).collect::<Vec<_>>(),
        )
        .finish();
    let mut h = Harness::new(limits);
    for _ in 0..10 {
        h.feed(Flavor::NetflowV9, EXPORTER, NOW_MS, &data).unwrap();
        assert!(h.decoder.pending_bytes() <= limits.pending_max_bytes);
    }
    assert_eq!(h.counters.unknown_template_sets, 10);
    assert!(h.counters.pending_dropped >= 7);
}

#[test]
fn template_refresh_and_replacement() {
    for flavor in [Flavor::NetflowV9, Flavor::Ipfix] {
        let v4_template = TemplateRepr::standard(flavor, 256, false);
        let v6_template = TemplateRepr::standard(flavor, 256, true);
        let mut h = Harness::new(Limits::default());
        let first = MessageWriter::new(flavor, clock(), 0, 1)
            .templates(&[&v4_template])
            .templates(&[&v4_template])
            .flows(&v4_template, &[flow(1, false)])
            .finish();
        h.feed(flavor, EXPORTER, NOW_MS, &first).unwrap();
        let second = MessageWriter::new(flavor, clock(), 1, 1)
            .templates(&[&v6_template])
            .flows(&v6_template, &[flow(2, true)])
            .finish();
        h.feed(flavor, EXPORTER, NOW_MS, &second).unwrap();
        assert_eq!(
            h.out,
            vec![
                expected(&flow(1, false), EXPORTER, 1),
                expected(&flow(2, true), EXPORTER, 1)
            ]
        );
        assert_eq!(h.counters.templates_learned, 3);
        assert_eq!(h.decoder.template_count(), 1);
    }
}

#[test]
fn ipfix_template_withdrawal() {
    let a = TemplateRepr::standard(Flavor::Ipfix, 256, false);
    let b = TemplateRepr::standard(Flavor::Ipfix, 257, true);
    let options = TemplateRepr::sampling_options(Flavor::Ipfix, 258);
    let mut h = Harness::new(Limits::default());
    let learn = MessageWriter::new(Flavor::Ipfix, clock(), 0, 1)
        .templates(&[&a, &b])
        .templates(&[&options])
        .finish();
    h.feed(Flavor::Ipfix, EXPORTER, NOW_MS, &learn).unwrap();
    assert_eq!(h.decoder.template_count(), 3);

    let withdraw_one = MessageWriter::new(Flavor::Ipfix, clock(), 0, 1)
        .withdrawal(256, false)
        .finish();
    h.feed(Flavor::Ipfix, EXPORTER, NOW_MS, &withdraw_one)
        .unwrap();
    assert_eq!(h.decoder.template_count(), 2);
    assert_eq!(h.counters.templates_withdrawn, 1);
    let data = MessageWriter::new(Flavor::Ipfix, clock(), 0, 1)
        .flows(&a, &[flow(1, false)])
        .finish();
    h.feed(Flavor::Ipfix, EXPORTER, NOW_MS, &data).unwrap();
    assert!(h.out.is_empty(), "withdrawn template must not decode");
    assert_eq!(h.counters.unknown_template_sets, 1);

    let withdraw_all = MessageWriter::new(Flavor::Ipfix, clock(), 0, 1)
        .withdrawal(2, false)
        .finish();
    h.feed(Flavor::Ipfix, EXPORTER, NOW_MS, &withdraw_all)
        .unwrap();
    assert_eq!(h.decoder.template_count(), 1, "options template survives");
    let withdraw_options = MessageWriter::new(Flavor::Ipfix, clock(), 0, 1)
        .withdrawal(3, true)
        .finish();
    h.feed(Flavor::Ipfix, EXPORTER, NOW_MS, &withdraw_options)
        .unwrap();
    assert_eq!(h.decoder.template_count(), 0);
    assert_eq!(h.counters.templates_withdrawn, 3);
}

#[test]
fn exporters_and_domains_are_separate() {
    let v4_template = TemplateRepr::standard(Flavor::Ipfix, 256, false);
    let v6_template = TemplateRepr::standard(Flavor::Ipfix, 256, true);
    let mut h = Harness::new(Limits::default());
    for (exporter, template) in [(EXPORTER, &v4_template), (OTHER_EXPORTER, &v6_template)] {
        let datagram = MessageWriter::new(Flavor::Ipfix, clock(), 0, 1)
            .templates(&[template])
            .finish();
        h.feed(Flavor::Ipfix, exporter, NOW_MS, &datagram).unwrap();
    }
    let a = MessageWriter::new(Flavor::Ipfix, clock(), 0, 1)
        .flows(&v4_template, &[flow(1, false)])
        .finish();
    let b = MessageWriter::new(Flavor::Ipfix, clock(), 0, 1)
        .flows(&v6_template, &[flow(2, true)])
        .finish();
    h.feed(Flavor::Ipfix, EXPORTER, NOW_MS, &a).unwrap();
    h.feed(Flavor::Ipfix, OTHER_EXPORTER, NOW_MS, &b).unwrap();
    // Same id in another observation domain of the same exporter is unknown.
    let c = MessageWriter::new(Flavor::Ipfix, clock(), 0, 2)
        .flows(&v4_template, &[flow(3, false)])
        .finish();
    h.feed(Flavor::Ipfix, EXPORTER, NOW_MS, &c).unwrap();
    assert_eq!(
        h.out,
        vec![
            expected(&flow(1, false), EXPORTER, 1),
            expected(&flow(2, true), OTHER_EXPORTER, 1)
        ]
    );
    assert_eq!(h.counters.unknown_template_sets, 1);
}

#[test]
fn templates_time_out() {
    let limits = Limits::default();
    let template = TemplateRepr::standard(Flavor::NetflowV9, 256, false);
    let mut h = Harness::new(limits);
    let datagram = MessageWriter::new(Flavor::NetflowV9, clock(), 0, 1)
        .templates(&[&template])
        .finish();
    h.feed(Flavor::NetflowV9, EXPORTER, NOW_MS, &datagram)
        .unwrap();
    h.decoder
        .expire(NOW_MS + limits.template_timeout_ms, &mut |_, _| {});
    assert_eq!(h.decoder.template_count(), 1);
    h.decoder
        .expire(NOW_MS + limits.template_timeout_ms + 1, &mut |_, _| {});
    assert_eq!(h.decoder.template_count(), 0);
}

// ---------------------------------------------------------------------------------------------
// Hostile input.

#[test]
fn truncated_headers_at_every_length() {
    let v9 = MessageWriter::new(Flavor::NetflowV9, clock(), 0, 1).finish();
    let ipfix = MessageWriter::new(Flavor::Ipfix, clock(), 0, 1).finish();
    let mut h = Harness::new(Limits::default());
    let mut out = Vec::new();
    let mut counters = ExporterCounters::default();
    for len in 0..24 {
        assert_eq!(
            netflow_v5::decode(
                &ctx(EXPORTER, NOW_MS),
                &V5_GOLDEN[..len],
                &mut out,
                &mut counters
            ),
            Err(DecodeError::Truncated)
        );
        if len < v9.len() {
            assert_eq!(
                h.feed(Flavor::NetflowV9, EXPORTER, NOW_MS, &v9[..len]),
                Err(DecodeError::Truncated)
            );
        }
        if len < ipfix.len() {
            assert_eq!(
                h.feed(Flavor::Ipfix, EXPORTER, NOW_MS, &ipfix[..len]),
                Err(DecodeError::Truncated)
            );
        }
    }
    assert!(out.is_empty());
}

#[test]
fn netflow_v5_counts_that_lie() {
    let mut counters = ExporterCounters::default();
    let decode = |bytes: &[u8], out: &mut Vec<FlowRecord>, counters: &mut ExporterCounters| {
        netflow_v5::decode(&ctx(EXPORTER, NOW_MS), bytes, out, counters)
    };
    for count in [0u16, 31, 0xffff] {
        let mut bytes = V5_GOLDEN.to_vec();
        bytes[2..4].copy_from_slice(&count.to_be_bytes());
        let mut out = Vec::new();
        assert_eq!(
            decode(&bytes, &mut out, &mut counters),
            Err(DecodeError::BadCount)
        );
        assert!(out.is_empty());
    }
    // Count 3 with 2 records (and half a third): the two whole ones, then Truncated.
    let mut bytes = V5_GOLDEN.to_vec();
    bytes[3] = 3;
    bytes.extend_from_slice(&[0; 20]);
    let mut out = Vec::new();
    assert_eq!(
        decode(&bytes, &mut out, &mut counters),
        Err(DecodeError::Truncated)
    );
    assert_eq!(out.len(), 2);
    // Count 1 with 2 records present: only one is decoded.
    bytes[3] = 1;
    let mut out = Vec::new();
    decode(&bytes, &mut out, &mut counters).unwrap();
    assert_eq!(out.len(), 1);
}

#[test]
fn netflow_v9_header_count_is_not_trusted() {
    for count in [0u16, 1, 1000] {
        let mut bytes = V9_GOLDEN.to_vec();
        bytes[2..4].copy_from_slice(&count.to_be_bytes());
        let mut h = Harness::new(Limits::default());
        h.feed(Flavor::NetflowV9, EXPORTER, NOW_MS, &bytes).unwrap();
        assert_eq!(h.out.len(), 1);
    }
}

#[test]
fn set_lengths_that_would_loop_stop_the_datagram() {
    for flavor in [Flavor::NetflowV9, Flavor::Ipfix] {
        for bad_len in 0..4u16 {
            let mut datagram = MessageWriter::new(flavor, clock(), 0, 1).finish();
            datagram.extend_from_slice(&[0x01, 0x00]);
            datagram.extend_from_slice(&bad_len.to_be_bytes());
            datagram.extend_from_slice(&[0; 32]);
            if flavor == Flavor::Ipfix {
                let len = datagram.len() as u16;
                datagram[2..4].copy_from_slice(&len.to_be_bytes());
            }
            let mut h = Harness::new(Limits::default());
            assert_eq!(
                h.feed(flavor, EXPORTER, NOW_MS, &datagram),
                Err(DecodeError::BadLength)
            );
        }
        // A set longer than the datagram.
        let mut datagram = MessageWriter::new(flavor, clock(), 0, 1)
            .raw_set(256, &[1; 8])
            .finish();
        let set_len_at = datagram.len() - 10;
        datagram[set_len_at..set_len_at + 2].copy_from_slice(&200u16.to_be_bytes());
        let mut h = Harness::new(Limits::default());
        assert_eq!(
            h.feed(flavor, EXPORTER, NOW_MS, &datagram),
            Err(DecodeError::Truncated)
        );
    }
}

#[test]
fn empty_sets_are_harmless() {
    for flavor in [Flavor::NetflowV9, Flavor::Ipfix] {
        let datagram = MessageWriter::new(flavor, clock(), 0, 1)
            .raw_set(flavor.template_set_id(), &[])
            .raw_set(flavor.options_template_set_id(), &[])
            .raw_set(256, &[])
            .raw_set(100, &[])
            .finish();
        let mut h = Harness::new(Limits::default());
        h.feed(flavor, EXPORTER, NOW_MS, &datagram).unwrap();
        assert_eq!(h.counters.total_errors(), 0);
        assert_eq!(h.decoder.pending_bytes(), 0);
    }
}

#[test]
fn bad_templates_are_counted_and_skipped() {
    let good = TemplateRepr::standard(Flavor::NetflowV9, 300, false);
    let no_fields = TemplateRepr {
        id: 256,
        scope: vec![],
        fields: vec![],
    };
    let zero_length = TemplateRepr {
        id: 257,
        scope: vec![],
        fields: vec![floodwall_wire::template::FieldSpec::new(8, 0)],
    };
    let huge_field = TemplateRepr {
        id: 258,
        scope: vec![],
        fields: vec![floodwall_wire::template::FieldSpec::new(8, 65535)],
    };
    let too_many = TemplateRepr {
        id: 259,
        scope: vec![],
        fields: vec![floodwall_wire::template::FieldSpec::new(1, 4); 129],
    };
    let datagram = MessageWriter::new(Flavor::NetflowV9, clock(), 0, 1)
        .templates(&[&no_fields, &zero_length, &huge_field, &too_many, &good])
        .flows(&good, &[flow(1, false)])
        .finish();
    let mut h = Harness::new(Limits::default());
    h.feed(Flavor::NetflowV9, EXPORTER, NOW_MS, &datagram)
        .unwrap();
    assert_eq!(h.counters.error(DecodeError::BadTemplate), 4);
    assert_eq!(h.decoder.template_count(), 1);
    assert_eq!(h.out, vec![expected(&flow(1, false), EXPORTER, 1)]);

    // IPFIX: a template whose fields run past its set; the next set still decodes.
    let ipfix_good = TemplateRepr::standard(Flavor::Ipfix, 256, false);
    let datagram = MessageWriter::new(Flavor::Ipfix, clock(), 0, 1)
        .raw_set(2, &[0x01, 0x01, 0x00, 0x10, 0x00, 0x08, 0x00, 0x04])
        .templates(&[&ipfix_good])
        .flows(&ipfix_good, &[flow(2, false)])
        .finish();
    let mut h = Harness::new(Limits::default());
    h.feed(Flavor::Ipfix, EXPORTER, NOW_MS, &datagram).unwrap();
    assert_eq!(h.counters.error(DecodeError::BadTemplate), 1);
    assert_eq!(h.out, vec![expected(&flow(2, false), EXPORTER, 1)]);

    // IPFIX: a 65535-length (variable) field longer than the data set.
    let variable = TemplateRepr {
        id: 256,
        scope: vec![],
        fields: vec![
            floodwall_wire::template::FieldSpec::new(8, 4),
            floodwall_wire::template::FieldSpec::new(82, 65535),
        ],
    };
    let datagram = MessageWriter::new(Flavor::Ipfix, clock(), 0, 1)
        .templates(&[&variable])
        .raw_set(256, &[10, 0, 0, 1, 255, 0xff, 0xff, 1, 2, 3])
        .finish();
    let mut h = Harness::new(Limits::default());
    h.feed(Flavor::Ipfix, EXPORTER, NOW_MS, &datagram).unwrap();
    assert!(h.out.is_empty());
}

#[test]
fn sampling_rate_zero_is_invalid() {
    for flavor in [Flavor::NetflowV9, Flavor::Ipfix] {
        let template = TemplateRepr::standard(flavor, 256, false);
        let options = TemplateRepr::sampling_options(flavor, 257);
        let datagram = MessageWriter::new(flavor, clock(), 0, 1)
            .templates(&[&template])
            .templates(&[&options])
            .sampling(&options, 0)
            .flows(&template, &[flow(1, false)])
            .finish();
        let mut h = Harness::new(Limits::default());
        h.feed(flavor, EXPORTER, NOW_MS, &datagram).unwrap();
        assert_eq!(h.out, vec![expected(&flow(1, false), EXPORTER, 1)]);
        assert_eq!(h.counters.invalid_sampling, 1);
    }
    // In-record rate 0.
    let mut template = TemplateRepr::standard(Flavor::Ipfix, 256, false);
    template
        .fields
        .push(floodwall_wire::template::FieldSpec::new(34, 4));
    let datagram = MessageWriter::new(Flavor::Ipfix, clock(), 0, 1)
        .templates(&[&template])
        .flows(&template, &[flow(1, false), flow(2, false)])
        .finish();
    let mut h = Harness::new(Limits::default());
    h.feed(Flavor::Ipfix, EXPORTER, NOW_MS, &datagram).unwrap();
    assert_eq!(h.out.len(), 2);
    assert_eq!(h.out[0].sampling_rate, 1);
    assert_eq!(h.counters.invalid_sampling, 2);
}

#[test]
fn template_flood_is_bounded_and_spares_other_exporters() {
    let limits = Limits {
        max_templates: 4096,
        ..Limits::default()
    };
    let mut h = Harness::new(limits);
    let victim = TemplateRepr::standard(Flavor::Ipfix, 256, false);
    let datagram = MessageWriter::new(Flavor::Ipfix, clock(), 0, 1)
        .templates(&[&victim])
        .finish();
    h.feed(Flavor::Ipfix, OTHER_EXPORTER, NOW_MS, &datagram)
        .unwrap();

    // 100k distinct (domain, template id) pairs from one exporter, 50 per message.
    let mut attacker = ExporterCounters::default();
    let mut out = Vec::new();
    for message in 0..2_000u32 {
        let templates: Vec<TemplateRepr> = (0..50u16)
            .map(|i| TemplateRepr {
                id: 256 + ((message as u16) % 1000) * 50 % 60_000 + i,
                scope: vec![],
                fields: vec![floodwall_wire::template::FieldSpec::new(8, 4)],
            })
            .collect();
        let refs: Vec<&TemplateRepr> = templates.iter().collect();
        let datagram = MessageWriter::new(Flavor::Ipfix, clock(), 0, message / 100)
            .templates(&refs)
            .finish();
        h.decoder
            .decode_ipfix(&ctx(EXPORTER, NOW_MS), &datagram, &mut out, &mut attacker)
            .unwrap();
        assert!(h.decoder.template_count() <= limits.max_templates);
    }
    assert!(
        attacker.templates_rejected > 90_000,
        "{}",
        attacker.templates_rejected
    );
    assert!(h.decoder.template_count() <= limits.max_templates / 8 + 1);

    // The victim's template still decodes, and a new exporter can still learn one.
    let data = MessageWriter::new(Flavor::Ipfix, clock(), 0, 1)
        .flows(&victim, &[flow(1, false)])
        .finish();
    h.feed(Flavor::Ipfix, OTHER_EXPORTER, NOW_MS, &data)
        .unwrap();
    assert_eq!(h.out.len(), 1);
    let third = v4(192, 0, 2, 3);
    let datagram = MessageWriter::new(Flavor::Ipfix, clock(), 0, 1)
        .templates(&[&victim])
        .finish();
    let learned = h.counters.templates_learned;
    h.feed(Flavor::Ipfix, third, NOW_MS, &datagram).unwrap();
    assert_eq!(h.counters.templates_learned, learned + 1);
}

// ---------------------------------------------------------------------------------------------
// Through the front door.

#[test]
fn decoder_front_door_counts_records_and_sequences() {
    let mut decoder = floodwall_wire::Decoder::default();
    let mut out = Vec::new();
    decoder
        .decode(EXPORTER, NOW_MS, &V5_GOLDEN, &mut out)
        .unwrap();
    let mut next = V5_GOLDEN;
    next[19] = 100 + 2 + 5; // 5 records lost
    decoder.decode(EXPORTER, NOW_MS, &next, &mut out).unwrap();
    decoder
        .decode(EXPORTER, NOW_MS, &V9_GOLDEN, &mut out)
        .unwrap();
    decoder
        .decode(EXPORTER, NOW_MS, &IPFIX_GOLDEN, &mut out)
        .unwrap();
    let counters = decoder.exporter(EXPORTER).unwrap();
    assert_eq!(counters.records, 6);
    assert_eq!(counters.sequence_lost, 5);
    assert_eq!(decoder.template_usage().0, 3);
}
