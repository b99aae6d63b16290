//! Synthetic telemetry: distinct, router-like datagrams of each protocol, built with the wire
//! crate's own emitters so a benchmark measures exactly the bytes the decoders accept.
//!
//! Deterministic (a fixed-seed PRNG) so runs are comparable, and varied (addresses, ports, packet
//! sizes, TCP/UDP, IPv4/IPv6) so branch predictors and hash tables see a realistic mix rather
//! than one datagram repeated.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use floodwall_wire::export::{ExportClock, Flow, MessageWriter, TemplateRepr};
use floodwall_wire::netflow_v5;
use floodwall_wire::packet::{EthernetRepr, PacketRepr, TransportRepr};
use floodwall_wire::sflow::{DatagramRepr, FlowDataRepr, FlowSampleRepr, SampleRepr};
use floodwall_wire::template::Flavor;
use floodwall_wire::{proto, tcp_flags, Protocol};

/// The exporter (sFlow agent) the synthetic telemetry claims to come from.
pub const EXPORTER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
/// 1-in-N packet sampling of every protocol, typical of routers facing DDoS-scale traffic.
pub const SAMPLING_RATE: u32 = 1000;
pub const SFLOW_SAMPLES_PER_DATAGRAM: usize = 10;
/// Bytes of each sampled packet's header: the usual sFlow agent default.
pub const SFLOW_HEADER_BYTES: usize = 128;
pub const NETFLOW_V5_RECORDS: usize = netflow_v5::MAX_RECORDS as usize;
/// NetFlow v9 / IPFIX records per data datagram: what fits a 1500-byte MTU with the standard
/// templates (IPFIX: 55-byte IPv4 and 79-byte IPv6 records).
pub const TEMPLATE_IPV4_RECORDS: usize = 25;
pub const TEMPLATE_IPV6_RECORDS: usize = 18;
/// Every this many datagrams carries IPv6 traffic (sFlow samples, NetFlow v9/IPFIX data sets).
const IPV6_EVERY: usize = 5;

const TEMPLATE_IPV4: u16 = 256;
const TEMPLATE_IPV6: u16 = 257;
const TEMPLATE_SAMPLING: u16 = 258;
/// The exporter's sysUpTime at export: one day, so flow start times never precede boot.
const UPTIME_MS: u32 = 86_400_000;
/// Destination ports of the generated flows: common services and reflection vectors.
const SERVICE_PORTS: [u16; 8] = [80, 443, 53, 123, 22, 25, 11211, 1900];

/// One datagram and the flow records it decodes to (0 for template-only messages).
#[derive(Debug, Clone)]
pub struct Datagram {
    pub bytes: Vec<u8>,
    pub records: u32,
}

/// A stream of datagrams from one exporter, in the order it must be sent and decoded.
#[derive(Debug, Clone)]
pub struct Workload {
    pub protocol: Protocol,
    /// Export time (Unix ms); decode with this as the receive time.
    pub exported_ms: u64,
    pub datagrams: Vec<Datagram>,
}

impl Workload {
    /// `data_datagrams` distinct datagrams of `protocol`, exported at `now_ms` (Unix ms).
    ///
    /// NetFlow v9 and IPFIX streams start with a template message (IPv4 and IPv6 data templates,
    /// the sampling options template and its data), as exporters send it; a sender cycling
    /// through the stream thus refreshes templates periodically, as exporters also do.
    pub fn generate(protocol: Protocol, data_datagrams: usize, now_ms: u64) -> Workload {
        let mut rng = Rng(0x5eed ^ protocol as u64);
        let clock = ExportClock {
            unix_secs: u32::try_from(now_ms / 1000).unwrap_or(u32::MAX),
            sys_uptime_ms: UPTIME_MS,
        };
        let mut datagrams = Vec::with_capacity(data_datagrams + 1);
        match protocol {
            Protocol::SflowV5 => {
                for seq in 0..data_datagrams {
                    datagrams.push(sflow_datagram(&mut rng, seq, now_ms));
                }
            }
            Protocol::NetflowV5 => {
                for seq in 0..data_datagrams {
                    datagrams.push(netflow_v5_datagram(&mut rng, seq, &clock, now_ms));
                }
            }
            Protocol::NetflowV9 | Protocol::Ipfix => {
                let flavor = if protocol == Protocol::Ipfix {
                    Flavor::Ipfix
                } else {
                    Flavor::NetflowV9
                };
                template_stream(
                    &mut rng,
                    flavor,
                    &clock,
                    now_ms,
                    data_datagrams,
                    &mut datagrams,
                );
            }
        }
        Workload {
            protocol,
            exported_ms: now_ms,
            datagrams,
        }
    }

    /// Flow records (sFlow flow samples) the whole stream decodes to.
    pub fn records(&self) -> u64 {
        self.datagrams.iter().map(|d| u64::from(d.records)).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.datagrams.iter().map(|d| d.bytes.len() as u64).sum()
    }

    /// The most records one datagram decodes to: the output capacity a decoder needs.
    pub fn max_records_per_datagram(&self) -> usize {
        self.datagrams
            .iter()
            .map(|d| d.records as usize)
            .max()
            .unwrap_or(0)
    }
}

/// SplitMix64: tiny, fast and good enough to vary synthetic traffic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform-enough integer in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A flow from a spread of sources towards a few destinations; `bytes / packets` is the packet
/// size, between [`SFLOW_HEADER_BYTES`] and 1500.
fn flow(rng: &mut Rng, ipv6: bool, now_ms: u64) -> Flow {
    let (src, dst) = if ipv6 {
        let src = Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(rng.next()));
        let dst = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1 + rng.below(16) as u16);
        (IpAddr::V6(src), IpAddr::V6(dst))
    } else {
        let src = Ipv4Addr::from(0x0a00_0000 | (rng.next() as u32 & 0x00ff_ffff));
        let dst = Ipv4Addr::new(198, 51, 100, rng.below(64) as u8);
        (IpAddr::V4(src), IpAddr::V4(dst))
    };
    let tcp = rng.below(10) < 6;
    let packets = 1 + rng.below(64);
    let size = SFLOW_HEADER_BYTES as u64 + rng.below(1500 - SFLOW_HEADER_BYTES as u64 + 1);
    let end_ms = now_ms - rng.below(10_000);
    Flow {
        src,
        dst,
        src_port: 1024 + rng.below(64_512) as u16,
        dst_port: rng.pick(&SERVICE_PORTS),
        protocol: if tcp { proto::TCP } else { proto::UDP },
        tcp_flags: if tcp {
            rng.pick(&[
                tcp_flags::SYN,
                tcp_flags::SYN | tcp_flags::ACK,
                tcp_flags::ACK,
                tcp_flags::PSH | tcp_flags::ACK,
                tcp_flags::FIN | tcp_flags::ACK,
            ])
        } else {
            0
        },
        bytes: packets * size,
        packets,
        in_if: 1 + rng.below(48) as u32,
        out_if: 1 + rng.below(48) as u32,
        start_ms: end_ms - rng.below(60_000),
        end_ms,
    }
}

fn sflow_datagram(rng: &mut Rng, seq: usize, now_ms: u64) -> Datagram {
    let ipv6 = seq % IPV6_EVERY == IPV6_EVERY - 1;
    let samples = (0..SFLOW_SAMPLES_PER_DATAGRAM)
        .map(|i| {
            let flow = flow(rng, ipv6, now_ms);
            let sample_seq = (seq * SFLOW_SAMPLES_PER_DATAGRAM + i) as u32;
            SampleRepr::Flow(FlowSampleRepr {
                expanded: false,
                sequence: sample_seq,
                source_id_type: 0,
                source_id_index: flow.in_if,
                sampling_rate: SAMPLING_RATE,
                sample_pool: sample_seq.wrapping_mul(SAMPLING_RATE),
                drops: 0,
                input: flow.in_if,
                output: flow.out_if,
                records: vec![sampled_header(rng, &flow)],
            })
        })
        .collect();
    let datagram = DatagramRepr {
        agent: EXPORTER,
        sub_agent_id: 0,
        sequence: seq as u32,
        uptime_ms: UPTIME_MS,
        samples,
    };
    Datagram {
        bytes: datagram.to_vec(),
        records: SFLOW_SAMPLES_PER_DATAGRAM as u32,
    }
}

/// The first [`SFLOW_HEADER_BYTES`] of one Ethernet frame of `flow`.
fn sampled_header(rng: &mut Rng, flow: &Flow) -> FlowDataRepr {
    let frame_len = (flow.bytes / flow.packets) as usize;
    let transport = if flow.protocol == proto::TCP {
        TransportRepr::Tcp {
            src_port: flow.src_port,
            dst_port: flow.dst_port,
            flags: flow.tcp_flags,
        }
    } else {
        TransportRepr::Udp {
            src_port: flow.src_port,
            dst_port: flow.dst_port,
        }
    };
    let mut packet = PacketRepr {
        ethernet: Some(EthernetRepr {
            source: [0x02, 0, 0, 0, 0, rng.below(256) as u8],
            destination: [0x02, 0, 0, 0, 1, 1],
            vlans: Vec::new(),
        }),
        src: flow.src,
        dst: flow.dst,
        ttl: 32 + rng.below(96) as u8,
        transport,
        payload_len: 0,
    };
    packet.payload_len = frame_len.saturating_sub(packet.buffer_len());
    let mut header = packet.to_vec();
    header.truncate(SFLOW_HEADER_BYTES);
    // The frame on the wire includes the 4-byte FCS that `ethernet` records as stripped.
    FlowDataRepr::ethernet(header, frame_len as u32 + 4)
}

fn netflow_v5_datagram(rng: &mut Rng, seq: usize, clock: &ExportClock, now_ms: u64) -> Datagram {
    let uptime = |unix_ms: u64| unix_ms.saturating_sub(clock.boot_ms()) as u32;
    let records: Vec<_> = (0..NETFLOW_V5_RECORDS)
        .map(|_| {
            let flow = flow(rng, false, now_ms);
            let v4 = |ip: IpAddr| match ip {
                IpAddr::V4(v4) => v4,
                IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
            };
            netflow_v5::RecordRepr {
                src_addr: v4(flow.src),
                dst_addr: v4(flow.dst),
                next_hop: Ipv4Addr::new(192, 0, 2, 254),
                input: flow.in_if as u16,
                output: flow.out_if as u16,
                packets: flow.packets as u32,
                octets: flow.bytes as u32,
                first: uptime(flow.start_ms),
                last: uptime(flow.end_ms),
                src_port: flow.src_port,
                dst_port: flow.dst_port,
                tcp_flags: flow.tcp_flags,
                protocol: flow.protocol,
                ..Default::default()
            }
        })
        .collect();
    let header = netflow_v5::HeaderRepr {
        sys_uptime: clock.sys_uptime_ms,
        unix_secs: clock.unix_secs,
        unix_nsecs: 0,
        flow_sequence: (seq * NETFLOW_V5_RECORDS) as u32,
        engine_type: 0,
        engine_id: 0,
        // Mode 01 (packet interval) in the top two bits, the interval in the low 14.
        sampling: 0x4000 | SAMPLING_RATE as u16,
    };
    Datagram {
        bytes: netflow_v5::emit(&header, &records),
        records: NETFLOW_V5_RECORDS as u32,
    }
}

/// A template message followed by `data_datagrams` data messages, one in [`IPV6_EVERY`] IPv6.
fn template_stream(
    rng: &mut Rng,
    flavor: Flavor,
    clock: &ExportClock,
    now_ms: u64,
    data_datagrams: usize,
    out: &mut Vec<Datagram>,
) {
    let v4 = TemplateRepr::standard(flavor, TEMPLATE_IPV4, false);
    let v6 = TemplateRepr::standard(flavor, TEMPLATE_IPV6, true);
    let sampling = TemplateRepr::sampling_options(flavor, TEMPLATE_SAMPLING);
    // NetFlow v9 numbers export packets; IPFIX numbers data records.
    let mut sequence = 0u32;
    let templates = MessageWriter::new(flavor, *clock, sequence, 0)
        .templates(&[&v4, &v6])
        .templates(&[&sampling])
        .sampling(&sampling, SAMPLING_RATE)
        .finish();
    out.push(Datagram {
        bytes: templates,
        records: 0,
    });
    // The sampling options record is an IPFIX data record too (RFC 7011 §3.1).
    if flavor == Flavor::Ipfix {
        sequence = 1;
    }
    for seq in 0..data_datagrams {
        if flavor == Flavor::NetflowV9 {
            sequence = seq as u32 + 1;
        }
        let ipv6 = seq % IPV6_EVERY == IPV6_EVERY - 1;
        let (template, count) = if ipv6 {
            (&v6, TEMPLATE_IPV6_RECORDS)
        } else {
            (&v4, TEMPLATE_IPV4_RECORDS)
        };
        let flows: Vec<_> = (0..count).map(|_| flow(rng, ipv6, now_ms)).collect();
        let bytes = MessageWriter::new(flavor, *clock, sequence, 0)
            .flows(template, &flows)
            .finish();
        if flavor == Flavor::Ipfix {
            sequence = sequence.wrapping_add(count as u32);
        }
        out.push(Datagram {
            bytes,
            records: count as u32,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floodwall_wire::Decoder;

    /// Every generated datagram decodes without error to exactly the records it promises.
    #[test]
    fn workloads_decode_to_their_record_counts() {
        let now_ms = 1_700_000_000_000;
        for protocol in Protocol::ALL {
            let workload = Workload::generate(protocol, 20, now_ms);
            let mut decoder = Decoder::default();
            let mut out = Vec::new();
            for (i, datagram) in workload.datagrams.iter().enumerate() {
                out.clear();
                let decoded = decoder.decode(EXPORTER, now_ms, &datagram.bytes, &mut out);
                assert_eq!(decoded, Ok(protocol), "{protocol:?} datagram {i}");
                assert_eq!(
                    out.len(),
                    datagram.records as usize,
                    "{protocol:?} datagram {i}"
                );
                assert!(
                    datagram.bytes.len() <= 2048,
                    "{protocol:?} datagram {i} too long"
                );
                for record in &out {
                    assert_eq!(record.sampling_rate, SAMPLING_RATE, "{protocol:?}");
                    assert!(record.dst_port != 0 && record.packets >= u64::from(SAMPLING_RATE));
                }
            }
            let expected = match protocol {
                Protocol::SflowV5 => 20 * SFLOW_SAMPLES_PER_DATAGRAM,
                Protocol::NetflowV5 => 20 * NETFLOW_V5_RECORDS,
                Protocol::NetflowV9 | Protocol::Ipfix => {
                    16 * TEMPLATE_IPV4_RECORDS + 4 * TEMPLATE_IPV6_RECORDS
                }
            };
            assert_eq!(workload.records(), expected as u64, "{protocol:?}");
            let totals = decoder.totals();
            assert_eq!(totals.total_errors(), 0, "{protocol:?}: {totals:?}");
            assert_eq!(totals.records_without_ip, 0, "{protocol:?}");
            assert_eq!(
                (totals.sequence_lost, totals.sequence_resets),
                (0, 0),
                "{protocol:?}: the sequence numbers are the protocol's"
            );
        }
    }

    #[test]
    fn sflow_samples_carry_full_headers_and_both_families() {
        let workload = Workload::generate(Protocol::SflowV5, IPV6_EVERY, 1_700_000_000_000);
        // Datagram header (28) + 10 × (sample 8 + 32 + record 8 + 16 + header 128).
        assert!(workload
            .datagrams
            .iter()
            .all(|d| d.bytes.len() == 28 + 10 * 192));
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        for datagram in &workload.datagrams {
            decoder
                .decode(EXPORTER, 0, &datagram.bytes, &mut out)
                .unwrap();
        }
        assert!(out.iter().any(|r| r.src.is_ipv6()) && out.iter().any(|r| r.src.is_ipv4()));
        assert!(out
            .iter()
            .all(|r| r.packet_len >= SFLOW_HEADER_BYTES as u16 - 14));
    }
}
