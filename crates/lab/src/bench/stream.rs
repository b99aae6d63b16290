//! sFlow streams for the comparison with FastNetMon: IPv4 raw-header samples (Ethernet frames),
//! 1-in-1000 sampling, ten samples a datagram, as a router's sFlow agent sends them.
//!
//! High-rate streams ([`PatchedStream`]) are a ring of pre-built datagrams whose sample
//! addresses are rewritten in place before each send (with the IPv4 header checksum), so a
//! stream can walk a million hosts or a million spoofed sources without building a million
//! datagrams. The latency stream ([`LatencySchedule`]) is low-rate and built datagram by
//! datagram on a timetable.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use floodwall_wire::packet::{internet_checksum, EthernetRepr, PacketRepr, TransportRepr};
use floodwall_wire::sflow::{DatagramRepr, FlowDataRepr, FlowSampleRepr, SampleRepr};

use super::hash::{scatter, splitmix};
use super::synthetic::{Workload, EXPORTER};

pub const SAMPLES_PER_DATAGRAM: usize = 10;
pub const SAMPLING_RATE: u32 = 1000;
/// Bytes of each sampled packet's header, the usual agent default.
pub const HEADER_BYTES: usize = 128;
/// Distinct datagrams in a patched stream's ring.
pub const RING: usize = 256;
/// A million hosts, or a million sources: 2^20, the domain of [`scatter`].
pub const MILLION: u64 = 1 << 20;
/// Datagrams that carry one sample for each of [`MILLION`] addresses.
pub const MILLION_DATAGRAMS: u64 = MILLION.div_ceil(SAMPLES_PER_DATAGRAM as u64);

/// Sources of every stream: outside all monitored networks (45.0.0.0/12).
const SOURCE_BASE: u32 = 0x2d00_0000;
/// Offset of the sequence number in an sFlow v5 datagram with an IPv4 agent.
const DATAGRAM_SEQUENCE: usize = 16;

/// One sampled packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub transport: TransportRepr,
    /// IP length (header + L4 + payload); the frame is 18 bytes longer (Ethernet + FCS).
    pub ip_len: u16,
}

impl Packet {
    /// Frame length on the wire, FCS included: what the agent reports and both tools count.
    pub fn frame_len(&self) -> u32 {
        u32::from(self.ip_len) + 18
    }
}

/// One sFlow v5 datagram from [`EXPORTER`] holding a 1-in-[`SAMPLING_RATE`] flow sample of each
/// packet.
pub fn sflow_datagram(sequence: u32, packets: &[Packet]) -> Vec<u8> {
    let samples = packets
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let l4 = match p.transport {
                TransportRepr::Tcp { .. } => 20,
                TransportRepr::Udp { .. } => 8,
                TransportRepr::Icmp { .. } => 8,
                TransportRepr::Other { .. } => 0,
            };
            let packet = PacketRepr {
                ethernet: Some(EthernetRepr {
                    source: [2, 0, 0, 0, 0, 1],
                    destination: [2, 0, 0, 0, 0, 2],
                    vlans: Vec::new(),
                }),
                src: IpAddr::V4(p.src),
                dst: IpAddr::V4(p.dst),
                ttl: 57,
                transport: p.transport,
                payload_len: usize::from(p.ip_len).saturating_sub(20 + l4),
            };
            let mut header = Vec::with_capacity(packet.buffer_len());
            packet.emit(&mut header);
            header.truncate(HEADER_BYTES);
            let sample_sequence = sequence
                .wrapping_mul(SAMPLES_PER_DATAGRAM as u32)
                .wrapping_add(i as u32);
            SampleRepr::Flow(FlowSampleRepr {
                expanded: false,
                sequence: sample_sequence,
                source_id_type: 0,
                source_id_index: 1,
                sampling_rate: SAMPLING_RATE,
                sample_pool: sample_sequence.wrapping_mul(SAMPLING_RATE),
                drops: 0,
                input: 1,
                output: 2,
                records: vec![FlowDataRepr::ethernet(header, p.frame_len())],
            })
        })
        .collect();
    DatagramRepr {
        agent: EXPORTER,
        sub_agent_id: 0,
        sequence,
        uptime_ms: 86_400_000,
        samples,
    }
    .to_vec()
}

/// What a high-rate stream describes; every sample's addresses come from its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Ordinary traffic to the hosts of `network` (an IPv4 prefix of at least 2^16 addresses,
    /// drawn at random per sample) from a pool of 65,536 sources: TCP and UDP, 64–1500 bytes.
    Ingest { network: Ipv4Addr, host_bits: u32 },
    /// Every address of `network` (a /12: 2^20 hosts) sampled once per round of
    /// [`MILLION_DATAGRAMS`] datagrams, in a scattered order.
    Hosts { network: Ipv4Addr },
    /// A UDP flood at one host from 2^20 distinct spoofed sources, each once per round.
    Spoofed { victim: Ipv4Addr },
}

impl Scenario {
    /// Addresses of sample `k`.
    pub fn addresses(&self, k: u64) -> (Ipv4Addr, Ipv4Addr) {
        let r = splitmix(k);
        match *self {
            Scenario::Ingest { network, host_bits } => {
                let host = (r as u32) & ((1u32 << host_bits) - 1);
                let src = SOURCE_BASE | ((r >> 40) as u32 & 0xffff);
                (
                    Ipv4Addr::from(src),
                    Ipv4Addr::from(u32::from(network) | host),
                )
            }
            Scenario::Hosts { network } => {
                let host = scatter((k % MILLION) as u32);
                let src = SOURCE_BASE | ((r >> 40) as u32 & 0xffff);
                (
                    Ipv4Addr::from(src),
                    Ipv4Addr::from(u32::from(network) | host),
                )
            }
            Scenario::Spoofed { victim } => {
                let src = SOURCE_BASE | scatter((k % MILLION) as u32);
                (Ipv4Addr::from(src), victim)
            }
        }
    }

    /// The packet of template sample `i` (its addresses are overwritten when sent).
    fn template_packet(&self, i: u64) -> Packet {
        let r = splitmix(i ^ 0x7e57);
        let placeholder = Ipv4Addr::UNSPECIFIED;
        match self {
            Scenario::Spoofed { .. } => Packet {
                src: placeholder,
                dst: placeholder,
                transport: TransportRepr::Udp {
                    src_port: 1024 + (r % 60_000) as u16,
                    dst_port: 80,
                },
                ip_len: 46,
            },
            Scenario::Ingest { .. } | Scenario::Hosts { .. } => Packet {
                src: placeholder,
                dst: placeholder,
                transport: ordinary_transport(r),
                ip_len: 60 + ((r >> 16) % 1441) as u16,
            },
        }
    }
}

/// Ordinary traffic to a monitored host, drawn from the hash `r`: three in four are TCP from a
/// web server (ACK), the rest UDP from a DNS server, to a client port.
fn ordinary_transport(r: u64) -> TransportRepr {
    let client_port = 1024 + ((r >> 40) % 60_000) as u16;
    if !(r >> 32).is_multiple_of(4) {
        TransportRepr::Tcp {
            src_port: 443,
            dst_port: client_port,
            flags: 0x10,
        }
    } else {
        TransportRepr::Udp {
            src_port: 53,
            dst_port: client_port,
        }
    }
}

/// A source of datagrams for [`super::sender::send`]: a ring of buffers, each made ready just
/// before it is sent.
pub trait Stream {
    /// Protocol name for the report.
    fn protocol(&self) -> &str;
    /// Buffers in the ring (at least one).
    fn ring_len(&self) -> usize;
    /// Makes buffer `slot` hold datagram number `seq` of the stream; returns its flow records.
    fn prepare(&mut self, slot: usize, seq: u64) -> u32;
    fn datagram(&self, slot: usize) -> &[u8];
}

/// A workload is a ring of fixed datagrams: nothing to prepare.
impl Stream for Workload {
    fn protocol(&self) -> &str {
        self.protocol.name()
    }

    fn ring_len(&self) -> usize {
        self.datagrams.len()
    }

    fn prepare(&mut self, slot: usize, _seq: u64) -> u32 {
        self.datagrams[slot].records
    }

    fn datagram(&self, slot: usize) -> &[u8] {
        &self.datagrams[slot].bytes
    }
}

/// A ring of sFlow datagrams whose sample addresses are rewritten for every send.
pub struct PatchedStream {
    scenario: Scenario,
    datagrams: Vec<Vec<u8>>,
    /// Offset of each sample's IPv4 header, per datagram.
    headers: Vec<[usize; SAMPLES_PER_DATAGRAM]>,
}

impl PatchedStream {
    pub fn new(scenario: Scenario) -> PatchedStream {
        let mut datagrams = Vec::with_capacity(RING);
        let mut headers = Vec::with_capacity(RING);
        for d in 0..RING {
            // Marker addresses, unique within the datagram, locate each sample's IP header.
            let markers: Vec<(Ipv4Addr, Ipv4Addr)> = (0..SAMPLES_PER_DATAGRAM as u32)
                .map(|i| {
                    (
                        Ipv4Addr::from(0xf0f0_0000 | i),
                        Ipv4Addr::from(0xf1f1_0000 | i),
                    )
                })
                .collect();
            let packets: Vec<Packet> = markers
                .iter()
                .enumerate()
                .map(|(i, &(src, dst))| Packet {
                    src,
                    dst,
                    ..scenario.template_packet((d * SAMPLES_PER_DATAGRAM + i) as u64)
                })
                .collect();
            let bytes = sflow_datagram(d as u32, &packets);
            let mut offsets = [0; SAMPLES_PER_DATAGRAM];
            for (offset, (src, dst)) in offsets.iter_mut().zip(&markers) {
                let mut pair = [0u8; 8];
                pair[..4].copy_from_slice(&src.octets());
                pair[4..].copy_from_slice(&dst.octets());
                let at = bytes
                    .windows(8)
                    .position(|w| w == pair)
                    .expect("every sample carries its marker addresses");
                // Source and destination are the last 8 bytes of the 20-byte IPv4 header.
                *offset = at - 12;
            }
            datagrams.push(bytes);
            headers.push(offsets);
        }
        PatchedStream {
            scenario,
            datagrams,
            headers,
        }
    }
}

impl Stream for PatchedStream {
    fn protocol(&self) -> &str {
        "sflow5"
    }

    fn ring_len(&self) -> usize {
        self.datagrams.len()
    }

    fn prepare(&mut self, slot: usize, seq: u64) -> u32 {
        let bytes = &mut self.datagrams[slot];
        bytes[DATAGRAM_SEQUENCE..DATAGRAM_SEQUENCE + 4]
            .copy_from_slice(&(seq as u32).to_be_bytes());
        for (i, &ip) in self.headers[slot].iter().enumerate() {
            let (src, dst) = self
                .scenario
                .addresses(seq * SAMPLES_PER_DATAGRAM as u64 + i as u64);
            let header = &mut bytes[ip..ip + 20];
            header[12..16].copy_from_slice(&src.octets());
            header[16..20].copy_from_slice(&dst.octets());
            header[10..12].copy_from_slice(&[0, 0]);
            let checksum = internet_checksum(header);
            header[10..12].copy_from_slice(&checksum.to_be_bytes());
        }
        SAMPLES_PER_DATAGRAM as u32
    }

    fn datagram(&self, slot: usize) -> &[u8] {
        &self.datagrams[slot]
    }
}

/// The detection-latency stream: background traffic below every threshold to the hosts of
/// `hosts`, and from `attack_after` on a UDP flood of `attack_pps` (before sampling) at
/// `victim`. Samples of both are merged in time order, ten to a datagram; a datagram is due
/// when its last sample is.
#[derive(Debug, Clone)]
pub struct LatencySchedule {
    /// Background samples per second (each stands for [`SAMPLING_RATE`] packets).
    pub background_samples_per_s: f64,
    pub hosts: Vec<Ipv4Addr>,
    pub victim: Ipv4Addr,
    pub attack_pps: f64,
    pub attack_after: Duration,
    pub seed: u64,
    next_background: u64,
    next_attack: u64,
    sequence: u32,
}

/// One datagram of the latency stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledDatagram {
    /// When to send it, from the start of the stream.
    pub due: Duration,
    pub bytes: Vec<u8>,
    /// Attack samples in it.
    pub attack_samples: u32,
}

impl LatencySchedule {
    pub fn new(
        background_samples_per_s: f64,
        hosts: Vec<Ipv4Addr>,
        victim: Ipv4Addr,
        attack_pps: f64,
        attack_after: Duration,
        seed: u64,
    ) -> LatencySchedule {
        assert!(!hosts.is_empty() && background_samples_per_s > 0.0);
        LatencySchedule {
            background_samples_per_s,
            hosts,
            victim,
            attack_pps,
            attack_after,
            seed,
            next_background: 0,
            next_attack: 0,
            sequence: 0,
        }
    }

    fn background_time(&self, n: u64) -> f64 {
        n as f64 / self.background_samples_per_s
    }

    fn attack_time(&self, n: u64) -> f64 {
        let per_s = self.attack_pps / f64::from(SAMPLING_RATE);
        if per_s <= 0.0 {
            return f64::INFINITY;
        }
        self.attack_after.as_secs_f64() + n as f64 / per_s
    }

    /// The next datagram: the next ten samples in time order.
    pub fn next_datagram(&mut self) -> ScheduledDatagram {
        let mut packets = Vec::with_capacity(SAMPLES_PER_DATAGRAM);
        let mut due = 0.0f64;
        let mut attack_samples = 0;
        for _ in 0..SAMPLES_PER_DATAGRAM {
            let background = self.background_time(self.next_background);
            let attack = self.attack_time(self.next_attack);
            if attack <= background {
                let r = splitmix(self.seed ^ (self.next_attack << 1 | 1));
                packets.push(Packet {
                    src: Ipv4Addr::from(SOURCE_BASE | (r as u32 & 0xf_ffff)),
                    dst: self.victim,
                    transport: TransportRepr::Udp {
                        src_port: 1024 + ((r >> 32) % 60_000) as u16,
                        dst_port: 80,
                    },
                    ip_len: 46,
                });
                self.next_attack += 1;
                attack_samples += 1;
                due = due.max(attack);
            } else {
                let r = splitmix(self.seed ^ (self.next_background << 1));
                let host = self.hosts[(r % self.hosts.len() as u64) as usize];
                packets.push(Packet {
                    src: Ipv4Addr::from(SOURCE_BASE | ((r >> 8) as u32 & 0xf_ffff)),
                    dst: host,
                    transport: ordinary_transport(r),
                    ip_len: 60 + ((r >> 16) % 1441) as u16,
                });
                self.next_background += 1;
                due = due.max(background);
            }
        }
        let bytes = sflow_datagram(self.sequence, &packets);
        self.sequence = self.sequence.wrapping_add(1);
        ScheduledDatagram {
            due: Duration::from_secs_f64(due),
            bytes,
            attack_samples,
        }
    }
}

/// The 512 hosts of the latency and spoofed-flood networks, 198.51.100.0/24 and 203.0.113.0/24.
pub fn documentation_hosts() -> Vec<Ipv4Addr> {
    (0..=255u8)
        .map(|h| Ipv4Addr::new(198, 51, 100, h))
        .chain((0..=255u8).map(|h| Ipv4Addr::new(203, 0, 113, h)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use floodwall_wire::{Decoder, FlowRecord, Protocol};
    use std::collections::HashSet;

    fn decode(bytes: &[u8]) -> Vec<FlowRecord> {
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        assert_eq!(
            decoder.decode(EXPORTER, 1_700_000_000_000, bytes, &mut out),
            Ok(Protocol::SflowV5)
        );
        out
    }

    #[test]
    fn patched_samples_decode_to_the_scenario_addresses() {
        let network = Ipv4Addr::new(10, 0, 0, 0);
        for scenario in [
            Scenario::Ingest {
                network,
                host_bits: 15,
            },
            Scenario::Hosts { network },
            Scenario::Spoofed {
                victim: Ipv4Addr::new(203, 0, 113, 77),
            },
        ] {
            let mut stream = PatchedStream::new(scenario);
            for seq in [0u64, 1, 300, 123_456] {
                let slot = (seq % RING as u64) as usize;
                assert_eq!(stream.prepare(slot, seq), 10);
                let bytes = stream.datagram(slot);
                assert!(bytes.len() <= 1500 + 28 + 10 * 64, "{}", bytes.len());
                let records = decode(bytes);
                assert_eq!(records.len(), 10);
                for (i, r) in records.iter().enumerate() {
                    let (src, dst) = scenario.addresses(seq * 10 + i as u64);
                    assert_eq!((r.src, r.dst), (IpAddr::V4(src), IpAddr::V4(dst)));
                    assert_eq!(r.sampling_rate, SAMPLING_RATE);
                    assert!(r.packets == u64::from(SAMPLING_RATE));
                }
                // The rewritten IPv4 header checksums verify.
                for &ip in &stream.headers[slot] {
                    assert_eq!(internet_checksum(&bytes[ip..ip + 20]), 0);
                }
            }
        }
    }

    #[test]
    fn a_round_covers_a_million_distinct_addresses() {
        let hosts = Scenario::Hosts {
            network: Ipv4Addr::new(10, 0, 0, 0),
        };
        let spoofed = Scenario::Spoofed {
            victim: Ipv4Addr::new(203, 0, 113, 77),
        };
        let dsts: HashSet<_> = (0..MILLION).map(|k| hosts.addresses(k).1).collect();
        assert_eq!(dsts.len() as u64, MILLION);
        assert!(dsts
            .iter()
            .all(|d| d.octets()[0] == 10 && d.octets()[1] < 16));
        let srcs: HashSet<_> = (0..MILLION).map(|k| spoofed.addresses(k).0).collect();
        assert_eq!(srcs.len() as u64, MILLION);
        assert_eq!(MILLION_DATAGRAMS * 10, MILLION + 4);
    }

    #[test]
    fn latency_schedule_merges_background_and_attack_in_time_order() {
        let victim = Ipv4Addr::new(203, 0, 113, 9);
        let mut schedule = LatencySchedule::new(
            2000.0,
            documentation_hosts(),
            victim,
            200_000.0,
            Duration::from_millis(1500),
            7,
        );
        let (mut attack, mut background, mut first_attack_due) = (0, 0, None);
        let mut last_due = Duration::ZERO;
        loop {
            let d = schedule.next_datagram();
            assert!(d.due >= last_due);
            last_due = d.due;
            if d.due > Duration::from_millis(2500) {
                break;
            }
            let records = decode(&d.bytes);
            // The victim is one of the background hosts too; the flood is UDP to port 80.
            let to_victim = records
                .iter()
                .filter(|r| r.dst == IpAddr::V4(victim) && r.dst_port == 80)
                .count();
            assert_eq!(to_victim as u32, d.attack_samples);
            if d.attack_samples > 0 && first_attack_due.is_none() {
                first_attack_due = Some(d.due);
            }
            attack += d.attack_samples;
            background += 10 - d.attack_samples;
        }
        // 2.5 s of background at 2000/s, 1 s of attack at 200 samples/s (200 kpps / 1000).
        assert!((4990..=5010).contains(&background), "{background}");
        assert!((199..=201).contains(&attack), "{attack}");
        let first = first_attack_due.unwrap();
        assert!(
            first >= Duration::from_millis(1500) && first < Duration::from_millis(1510),
            "{first:?}"
        );
    }
}
