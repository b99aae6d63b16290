use super::*;
use crate::packet::{EthernetRepr, PacketRepr, TransportRepr};
use crate::{proto, tcp_flags, Decoder, Protocol};
use proptest::prelude::*;

const NOW_MS: u64 = 1_700_000_000_000;

fn ctx() -> Context {
    Context {
        source: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 99)),
        now_ms: NOW_MS,
    }
}

fn run(
    datagram: &[u8],
) -> (
    Result<Summary, DecodeError>,
    Vec<FlowRecord>,
    ExporterCounters,
) {
    let mut out = Vec::new();
    let mut counters = ExporterCounters::default();
    let result = decode(&ctx(), datagram, &mut out, &mut counters);
    (result, out, counters)
}

/// IPv4 agent, one compact flow sample (raw Ethernet/802.1Q/IPv4/UDP header + extended switch),
/// one compact counter sample (generic interface counters).
#[rustfmt::skip]
const GOLDEN_V4: [u8; 296] = [
    0, 0, 0, 5,             // version
    0, 0, 0, 1,             // agent address type: IPv4
    10, 0, 0, 1,            // agent address
    0, 0, 0, 0,             // sub-agent id
    0, 0, 0x01, 0x2c,       // sequence 300
    0, 0x98, 0x96, 0x80,    // uptime 10 000 000 ms
    0, 0, 0, 2,             // samples
    // [28] flow sample
    0, 0, 0, 1,             // enterprise 0, format 1
    0, 0, 0, 144,           // length
    0, 0, 0, 7,             // sequence
    0, 0, 0, 3,             // source id: ifIndex 3
    0, 0, 0x04, 0,          // sampling rate 1024
    0, 1, 0, 0,             // sample pool
    0, 0, 0, 0,             // drops
    0, 0, 0, 3,             // input ifIndex 3
    0, 0, 0, 5,             // output ifIndex 5
    0, 0, 0, 2,             // records
    // [68] raw packet header record
    0, 0, 0, 1,             // format 1
    0, 0, 0, 80,            // length
    0, 0, 0, 1,             // header protocol: Ethernet
    0, 0, 0x05, 0xf2,       // frame length 1522
    0, 0, 0, 4,             // stripped (FCS)
    0, 0, 0, 64,            // header length
    // [92] header: Ethernet
    0x00, 0x1b, 0x21, 0x3c, 0x4d, 0x5e, 0x00, 0x25, 0x90, 0xaa, 0xbb, 0xcc,
    0x81, 0x00, 0x00, 0x64, // 802.1Q, VLAN 100
    0x08, 0x00,             // IPv4
    0x45, 0x00, 0x05, 0xdc, // IHL 5, total length 1500
    0x1c, 0x46, 0x40, 0x00, // DF
    0x40, 0x11, 0x2c, 0x8f, // TTL 64, UDP, checksum
    192, 0, 2, 1,
    198, 51, 100, 7,
    0x00, 0x35, 0xd4, 0x31, // UDP 53 -> 54321
    0x05, 0xc8, 0x00, 0x00,
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, // payload
    // [156] extended switch record
    0, 0, 0x03, 0xe9,       // format 1001
    0, 0, 0, 16,            // length
    0, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 0,
    // [180] counter sample
    0, 0, 0, 2,             // enterprise 0, format 2
    0, 0, 0, 108,           // length
    0, 0, 0, 9,             // sequence
    0, 0, 0, 3,             // source id
    0, 0, 0, 1,             // records
    0, 0, 0, 1,             // generic interface counters
    0, 0, 0, 88,            // length
    0, 0, 0, 3,             // ifIndex
    0, 0, 0, 6,             // ifType
    0, 0, 0, 2, 0x54, 0x0b, 0xe4, 0, // ifSpeed 10 Gb/s
    0, 0, 0, 1,             // ifDirection
    0, 0, 0, 3,             // ifStatus
    0, 0, 0, 0, 0, 0, 0x12, 0x34, // ifInOctets
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0x56, 0x78, // ifOutOctets
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0,             // ifPromiscuousMode
];

/// IPv6 agent, one expanded flow sample with a raw IPv6/TCP header and frame length 0.
#[rustfmt::skip]
const GOLDEN_V6: [u8; 176] = [
    0, 0, 0, 5,
    0, 0, 0, 2,             // agent address type: IPv6
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    0, 0, 0, 1,             // sub-agent id
    0, 0, 0, 77,            // sequence
    0, 0, 0x13, 0x88,       // uptime
    0, 0, 0, 1,             // samples
    // [40] expanded flow sample
    0, 0, 0, 3,
    0, 0, 0, 128,
    0, 0, 0, 42,            // sequence
    0, 0, 0, 0,             // source id type
    0, 0, 0x02, 0,          // source id index 512
    0, 0, 0x07, 0xd0,       // sampling rate 2000
    0, 0, 0, 0,             // sample pool
    0, 0, 0, 0,             // drops
    0, 0, 0, 0,             // input format: ifIndex
    0, 0, 0x02, 0x01,       // input 513
    0, 0, 0, 0,             // output format: ifIndex
    0, 0, 0x02, 0x02,       // output 514
    0, 0, 0, 1,             // records
    // [92] raw packet header record
    0, 0, 0, 1,
    0, 0, 0, 76,
    0, 0, 0, 12,            // header protocol: IPv6
    0, 0, 0, 0,             // frame length unknown
    0, 0, 0, 0,             // stripped
    0, 0, 0, 60,            // header length
    0x60, 0, 0, 0,
    0, 20, 6, 63,           // payload length 20, TCP, hop limit 63
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a,
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b,
    0x30, 0x39, 0x00, 0x50, // TCP 12345 -> 80
    0, 0, 0, 1, 0, 0, 0, 0,
    0x50, 0x02, 0xff, 0xff, // SYN
    0, 0, 0, 0,
];

fn golden_v4_repr() -> DatagramRepr {
    DatagramRepr {
        agent: Ipv4Addr::new(10, 0, 0, 1).into(),
        sub_agent_id: 0,
        sequence: 300,
        uptime_ms: 10_000_000,
        samples: vec![
            SampleRepr::Flow(FlowSampleRepr {
                expanded: false,
                sequence: 7,
                source_id_type: 0,
                source_id_index: 3,
                sampling_rate: 1024,
                sample_pool: 65536,
                drops: 0,
                input: 3,
                output: 5,
                records: vec![
                    FlowDataRepr::ethernet(GOLDEN_V4[92..156].to_vec(), 1522),
                    FlowDataRepr::ExtendedSwitch {
                        src_vlan: 100,
                        src_priority: 0,
                        dst_vlan: 100,
                        dst_priority: 0,
                    },
                ],
            }),
            SampleRepr::Counters(CounterSampleRepr {
                expanded: false,
                sequence: 9,
                source_id_type: 0,
                source_id_index: 3,
                if_index: 3,
                if_speed: 10_000_000_000,
                in_octets: 0x1234,
                out_octets: 0x5678,
            }),
        ],
    }
}

#[test]
fn golden_ipv4_agent_flow_and_counter_sample() {
    let (result, out, counters) = run(&GOLDEN_V4);
    assert_eq!(
        result,
        Ok(Summary {
            sequence: Some(Sequence {
                domain: 0,
                number: 300,
                advance: Some(1)
            })
        })
    );
    assert_eq!(
        out,
        vec![FlowRecord {
            exporter: Ipv4Addr::new(10, 0, 0, 1).into(),
            time_ms: NOW_MS,
            src: Ipv4Addr::new(192, 0, 2, 1).into(),
            dst: Ipv4Addr::new(198, 51, 100, 7).into(),
            protocol: proto::UDP,
            src_port: 53,
            dst_port: 54321,
            tcp_flags: 0,
            seq_is_dst: false,
            bytes: 1522 * 1024,
            packets: 1024,
            sampling_rate: 1024,
            fragment: false,
            ttl: 64,
            packet_len: 1500,
            in_if: 3,
            out_if: 5,
            datagram: 0,
        }]
    );
    assert_eq!(counters.counter_samples, 1);
    assert_eq!(counters.records_without_ip + counters.invalid_sampling, 0);
    assert_eq!(
        golden_v4_repr().to_vec(),
        GOLDEN_V4,
        "emitter matches the golden bytes"
    );
}

#[test]
fn golden_ipv6_agent_expanded_sample() {
    let (result, out, counters) = run(&GOLDEN_V6);
    assert_eq!(
        result.unwrap().sequence,
        Some(Sequence {
            domain: 1,
            number: 77,
            advance: Some(1)
        })
    );
    let v6 = |last| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last));
    assert_eq!(
        out,
        vec![FlowRecord {
            exporter: v6(1),
            time_ms: NOW_MS,
            src: v6(0x0a),
            dst: v6(0x0b),
            protocol: proto::TCP,
            src_port: 12345,
            dst_port: 80,
            tcp_flags: tcp_flags::SYN,
            seq_is_dst: false,
            bytes: 60 * 2000, // frame length 0: the IP length is accounted
            packets: 2000,
            sampling_rate: 2000,
            fragment: false,
            ttl: 63,
            packet_len: 60,
            in_if: 513,
            out_if: 514,
            datagram: 0,
        }]
    );
    assert_eq!(counters, ExporterCounters::default());
    let repr = DatagramRepr {
        agent: v6(1),
        sub_agent_id: 1,
        sequence: 77,
        uptime_ms: 5000,
        samples: vec![SampleRepr::Flow(FlowSampleRepr {
            expanded: true,
            sequence: 42,
            source_id_type: 0,
            source_id_index: 512,
            sampling_rate: 2000,
            sample_pool: 0,
            drops: 0,
            input: 513,
            output: 514,
            records: vec![FlowDataRepr::RawHeader {
                protocol: header_protocol::IPV6,
                frame_length: 0,
                stripped: 0,
                header: GOLDEN_V6[116..].to_vec(),
            }],
        })],
    };
    assert_eq!(repr.to_vec(), GOLDEN_V6);
}

#[test]
fn through_the_decoder_front_door() {
    let mut decoder = Decoder::default();
    let mut out = Vec::new();
    let source = ctx().source;
    assert_eq!(
        decoder.decode(source, 0, &GOLDEN_V4, &mut out),
        Ok(Protocol::SflowV5)
    );
    let mut later = GOLDEN_V4;
    later[16..20].copy_from_slice(&302u32.to_be_bytes()); // one datagram lost
    assert_eq!(
        decoder.decode(source, 1, &later, &mut out),
        Ok(Protocol::SflowV5)
    );
    let counters = decoder.exporter(source).unwrap();
    assert_eq!((counters.records, counters.sequence_lost), (2, 1));
    assert_eq!(out[0].exporter, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
}

#[test]
fn truncated_at_every_length() {
    for datagram in [&GOLDEN_V4[..], &GOLDEN_V6[..]] {
        for len in 0..datagram.len() {
            let (result, out, _) = run(&datagram[..len]);
            assert!(result.is_err(), "len {len}");
            assert!(out.len() <= 1);
        }
    }
    // Cut inside the counter sample: the flow sample's record stays.
    let (result, out, counters) = run(&GOLDEN_V4[..200]);
    assert_eq!(
        (result, out.len(), counters.counter_samples),
        (Err(DecodeError::Truncated), 1, 0)
    );
}

fn mutated(at: usize, bytes: &[u8]) -> Vec<u8> {
    let mut datagram = GOLDEN_V4.to_vec();
    datagram[at..at + bytes.len()].copy_from_slice(bytes);
    datagram
}

#[test]
fn sample_count_larger_than_the_datagram() {
    let (result, out, counters) = run(&mutated(24, &[0xff; 4]));
    assert_eq!(result, Err(DecodeError::BadCount));
    assert_eq!((out.len(), counters.counter_samples), (1, 1));
}

#[test]
fn zero_samples_is_fine() {
    let (result, out, _) = run(&mutated(24, &[0; 4]));
    assert!(result.is_ok());
    assert!(out.is_empty());
}

#[test]
fn sample_length_zero() {
    let (result, out, _) = run(&mutated(32, &[0; 4]));
    assert_eq!(result, Err(DecodeError::Truncated));
    assert!(out.is_empty());
}

#[test]
fn sample_length_beyond_any_datagram() {
    let (result, out, _) = run(&mutated(32, &[0xff; 4]));
    assert_eq!(result, Err(DecodeError::BadLength));
    assert!(out.is_empty());
}

#[test]
fn record_length_past_the_sample() {
    // The extended switch record claims 256 bytes: the raw header before it still counts, and the
    // counter sample after the (intact) flow sample is still read.
    let (result, out, counters) = run(&mutated(160, &[0, 0, 1, 0]));
    assert_eq!(result, Err(DecodeError::BadLength));
    assert_eq!((out.len(), counters.counter_samples), (1, 1));
}

#[test]
fn header_length_past_the_record() {
    let (result, out, counters) = run(&mutated(88, &[0, 0, 0, 65]));
    assert_eq!(result, Err(DecodeError::BadLength));
    assert_eq!((out.len(), counters.counter_samples), (0, 1));
}

#[test]
fn record_count_larger_than_the_sample() {
    let (result, out, _) = run(&mutated(64, &[0, 0, 0, 9]));
    assert_eq!(result, Err(DecodeError::BadCount));
    assert_eq!(out.len(), 1, "decode what fits");
}

#[test]
fn sampling_rate_zero_counts_as_one() {
    let (result, out, counters) = run(&mutated(44, &[0; 4]));
    assert!(result.is_ok());
    assert_eq!(counters.invalid_sampling, 1);
    assert_eq!(
        (out[0].sampling_rate, out[0].packets, out[0].bytes),
        (1, 1, 1522)
    );
}

#[test]
fn unknown_agent_address_type() {
    assert_eq!(
        run(&mutated(4, &[0, 0, 0, 7])).0,
        Err(DecodeError::BadAddress)
    );
}

#[test]
fn wrong_version() {
    assert_eq!(
        run(&mutated(0, &[0, 0, 0, 4])).0,
        Err(DecodeError::UnknownVersion)
    );
}

#[test]
fn arp_sample_has_no_ip() {
    let (result, out, counters) = run(&mutated(108, &[0x08, 0x06]));
    assert!(result.is_ok());
    assert!(out.is_empty());
    assert_eq!(counters.records_without_ip, 1);
}

#[test]
fn unknown_header_protocol_and_vendor_records_are_skipped() {
    let (result, out, counters) = run(&mutated(76, &[0, 0, 0, 2])); // 802.3 token bus
    assert!(result.is_ok());
    assert!(out.is_empty());
    assert_eq!(counters.records_without_ip, 1);
    let (result, out, _) = run(&mutated(68, &[0, 0, 0x90, 0x01])); // enterprise 9
    assert!(result.is_ok());
    assert!(out.is_empty());
}

#[test]
fn sampled_ipv4_and_ipv6_records() {
    let sample = |record| {
        SampleRepr::Flow(FlowSampleRepr {
            expanded: false,
            sequence: 1,
            source_id_type: 0,
            source_id_index: 1,
            sampling_rate: 100,
            sample_pool: 0,
            drops: 0,
            input: 1,
            output: 2 | 1 << 30, // discarded: not an interface
            records: vec![record],
        })
    };
    let datagram = DatagramRepr {
        agent: Ipv4Addr::new(10, 0, 0, 1).into(),
        sub_agent_id: 0,
        sequence: 1,
        uptime_ms: 0,
        samples: vec![
            sample(FlowDataRepr::SampledIpv4 {
                length: 40,
                protocol: 6,
                src: Ipv4Addr::new(1, 2, 3, 4),
                dst: Ipv4Addr::new(5, 6, 7, 8),
                src_port: 1000,
                dst_port: 80,
                tcp_flags: 0x12,
                tos: 0,
            }),
            sample(FlowDataRepr::SampledIpv6 {
                length: 1280,
                protocol: 17,
                src: Ipv6Addr::LOCALHOST,
                dst: Ipv6Addr::UNSPECIFIED,
                src_port: 0x1_0000, // wider than a port: garbage
                dst_port: 443,
                tcp_flags: 0,
                priority: 0,
            }),
        ],
    };
    let (result, out, _) = run(&datagram.to_vec());
    assert!(result.is_ok());
    assert_eq!(out.len(), 2);
    assert_eq!(
        (out[0].src_port, out[0].dst_port, out[0].tcp_flags),
        (1000, 80, 0x12)
    );
    assert_eq!(
        (out[0].bytes, out[0].packet_len, out[0].in_if, out[0].out_if),
        (4000, 40, 1, 0)
    );
    assert_eq!(
        (
            out[1].src,
            out[1].protocol,
            out[1].src_port,
            out[1].dst_port
        ),
        (Ipv6Addr::LOCALHOST.into(), 17, 0, 443)
    );
}

// ---- property tests ----

fn packet_strategy() -> impl Strategy<Value = PacketRepr> {
    let addresses = prop_oneof![
        (any::<[u8; 4]>(), any::<[u8; 4]>()).prop_map(|(s, d)| (IpAddr::from(s), IpAddr::from(d))),
        (any::<[u8; 16]>(), any::<[u8; 16]>())
            .prop_map(|(s, d)| (IpAddr::from(s), IpAddr::from(d))),
    ];
    let transport = prop_oneof![
        (any::<u16>(), any::<u16>(), any::<u8>()).prop_map(|(src_port, dst_port, flags)| {
            TransportRepr::Tcp {
                src_port,
                dst_port,
                flags,
            }
        }),
        (any::<u16>(), any::<u16>())
            .prop_map(|(src_port, dst_port)| TransportRepr::Udp { src_port, dst_port }),
        (any::<u8>(), any::<u8>())
            .prop_map(|(msg_type, code)| TransportRepr::Icmp { msg_type, code }),
    ];
    (
        prop::collection::vec(0u16..4096, 0..=2),
        addresses,
        1u8..,
        transport,
        0usize..1400,
    )
        .prop_map(
            |(vlans, (src, dst), ttl, transport, payload_len)| PacketRepr {
                ethernet: Some(EthernetRepr {
                    vlans,
                    ..EthernetRepr::default()
                }),
                src,
                dst,
                ttl,
                transport,
                payload_len,
            },
        )
}

/// A flow sample with a raw header cut at `snap` bytes, optionally behind/before a switch record.
fn flow_sample_strategy() -> impl Strategy<Value = (FlowSampleRepr, PacketRepr)> {
    (
        packet_strategy(),
        96usize..=128,
        any::<bool>(),
        0u8..3,
        1u32..,
        0u32..1 << 30,
        0u32..1 << 30,
        any::<u32>(),
    )
        .prop_map(
            |(packet, snap, expanded, switch_at, sampling_rate, input, output, sequence)| {
                let mut frame = packet.to_vec();
                let frame_length = (frame.len() + 4) as u32;
                frame.truncate(snap);
                let mut records = vec![FlowDataRepr::ethernet(frame, frame_length)];
                let switch = FlowDataRepr::ExtendedSwitch {
                    src_vlan: 1,
                    src_priority: 0,
                    dst_vlan: 2,
                    dst_priority: 0,
                };
                match switch_at {
                    0 => records.insert(0, switch),
                    1 => records.push(switch),
                    _ => {}
                }
                let sample = FlowSampleRepr {
                    expanded,
                    sequence,
                    source_id_type: 0,
                    source_id_index: input & 0xff_ffff,
                    sampling_rate,
                    sample_pool: 0,
                    drops: 0,
                    input,
                    output,
                    records,
                };
                (sample, packet)
            },
        )
}

fn counter_sample() -> SampleRepr {
    SampleRepr::Counters(CounterSampleRepr {
        expanded: true,
        sequence: 1,
        source_id_type: 0,
        source_id_index: 1,
        if_index: 1,
        if_speed: 1_000_000_000,
        in_octets: 1,
        out_octets: 2,
    })
}

fn datagram_strategy() -> impl Strategy<Value = (DatagramRepr, Vec<PacketRepr>)> {
    let agent = prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from)
    ];
    (
        agent,
        any::<u32>(),
        prop::collection::vec(flow_sample_strategy(), 0..8),
        0usize..3,
    )
        .prop_map(|(agent, sequence, flows, counter_samples)| {
            let packets = flows.iter().map(|(_, packet)| packet.clone()).collect();
            let mut samples: Vec<SampleRepr> = flows
                .into_iter()
                .map(|(sample, _)| SampleRepr::Flow(sample))
                .collect();
            for i in 0..counter_samples {
                samples.insert(i * 2 % (samples.len() + 1), counter_sample());
            }
            (
                DatagramRepr {
                    agent,
                    sub_agent_id: 3,
                    sequence,
                    uptime_ms: 1,
                    samples,
                },
                packets,
            )
        })
}

proptest! {
    #[test]
    fn emit_then_decode_round_trips((datagram, packets) in datagram_strategy()) {
        let (result, out, counters) = run(&datagram.to_vec());
        prop_assert_eq!(result.unwrap().sequence.map(|s| (s.domain, s.number)), Some((3, datagram.sequence)));
        let flows: Vec<&FlowSampleRepr> = datagram.samples.iter().filter_map(|s| match s {
            SampleRepr::Flow(f) => Some(f),
            SampleRepr::Counters(_) => None,
        }).collect();
        prop_assert_eq!(out.len(), flows.len());
        prop_assert_eq!(counters.counter_samples as usize, datagram.samples.len() - flows.len());
        for ((rec, sample), packet) in out.iter().zip(flows).zip(&packets) {
            let rate = u64::from(sample.sampling_rate);
            prop_assert_eq!(rec.exporter, datagram.agent);
            prop_assert_eq!((rec.src, rec.dst, rec.ttl), (packet.src, packet.dst, packet.ttl));
            prop_assert_eq!(rec.packet_len, packet.ip_len());
            prop_assert_eq!((rec.packets, rec.bytes), (rate, (packet.buffer_len() as u64 + 4) * rate));
            prop_assert_eq!((rec.in_if, rec.out_if, rec.time_ms), (sample.input, sample.output, NOW_MS));
            let (src_port, dst_port, flags) = match packet.transport {
                TransportRepr::Tcp { src_port, dst_port, flags } => (src_port, dst_port, flags),
                TransportRepr::Udp { src_port, dst_port } => (src_port, dst_port, 0),
                TransportRepr::Icmp { msg_type, code } => (0, u16::from(msg_type) << 8 | u16::from(code), 0),
                TransportRepr::Other { .. } => (0, 0, 0),
            };
            prop_assert_eq!((rec.src_port, rec.dst_port, rec.tcp_flags), (src_port, dst_port, flags));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(tail in prop::collection::vec(any::<u8>(), 0..600), v6 in any::<bool>()) {
        let mut datagram = vec![0, 0, 0, 5, 0, 0, 0, if v6 { 2 } else { 1 }];
        datagram.extend(tail);
        let (_, out, _) = run(&datagram);
        prop_assert!(out.len() <= datagram.len() / (8 + FlowSample::<&[u8]>::MIN_LEN));
    }

    #[test]
    fn mutated_datagrams_never_panic(
        (datagram, _) in datagram_strategy(),
        mutations in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = datagram.to_vec();
        for (at, value) in mutations {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        let len = bytes.len() - cut.index(bytes.len() / 4 + 1);
        let bytes = &bytes[..len];
        let (_, out, _) = run(bytes);
        let claimed = DatagramHeader::parse(bytes).map_or(0, |h| h.num_samples as usize);
        prop_assert!(out.len() <= bytes.len() / (8 + FlowSample::<&[u8]>::MIN_LEN));
        prop_assert!(out.len() <= claimed);
    }
}
