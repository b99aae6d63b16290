//! Synthetic telemetry for detection tests: sFlow datagrams describing traffic at given rates,
//! wrapped in UDP frames with capture timestamps, written as a pcap for `floodwall replay` or
//! sent to a collector on loopback. Deterministic for a seed. Describes traffic; sends none.

use std::net::{IpAddr, Ipv4Addr};

use floodwall_wire::packet::{EthernetRepr, PacketRepr, TransportRepr};
use floodwall_wire::sflow::{DatagramRepr, FlowDataRepr, FlowSampleRepr, SampleRepr};

use super::Frame;

/// xorshift64*: a small deterministic generator, enough to spread addresses and ports.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One sampled packet: what its header says and how long the frame was.
#[derive(Clone)]
pub struct Packet {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub transport: TransportRepr,
    pub ttl: u8,
    /// IP length of the packet.
    pub ip_len: u16,
}

/// An sFlow agent: samples are collected with their time, then packed in time order into
/// datagrams of up to 8 samples (a datagram carries no per-sample time, so samples far apart
/// must not share one).
pub struct SflowAgent {
    agent: Ipv4Addr,
    sampling_rate: u32,
    sequence: u32,
    pending: Vec<(u64, SampleRepr)>,
}

const SAMPLES_PER_DATAGRAM: usize = 8;
const FLUSH_AFTER_US: u64 = 50_000;

impl SflowAgent {
    pub fn new(agent: Ipv4Addr, sampling_rate: u32) -> Self {
        SflowAgent {
            agent,
            sampling_rate,
            sequence: 0,
            pending: Vec::new(),
        }
    }

    /// Adds one flow sample of `packet` seen at `ts_us`.
    pub fn sample(&mut self, ts_us: u64, packet: &Packet) {
        let repr = PacketRepr {
            ethernet: Some(EthernetRepr {
                source: [2, 0, 0, 0, 0, 1],
                destination: [2, 0, 0, 0, 0, 2],
                vlans: vec![],
            }),
            src: packet.src,
            dst: packet.dst,
            ttl: packet.ttl,
            transport: packet.transport,
            payload_len: 0,
        };
        let headers_len = usize::from(repr.ip_len());
        let payload = usize::from(packet.ip_len).saturating_sub(headers_len);
        // Exporters send at most the first 128 bytes of a packet.
        let repr = PacketRepr {
            payload_len: payload.min(128usize.saturating_sub(14 + headers_len)),
            ..repr
        };
        let mut header = Vec::with_capacity(128);
        repr.emit(&mut header);
        // The IP length field must say the real length, not the truncated one.
        patch_ip_length(&mut header, packet);
        self.sequence += 1;
        self.pending.push((
            ts_us,
            SampleRepr::Flow(FlowSampleRepr {
                expanded: false,
                sequence: self.sequence,
                source_id_type: 0,
                source_id_index: 1,
                sampling_rate: self.sampling_rate,
                sample_pool: self.sequence.wrapping_mul(self.sampling_rate),
                drops: 0,
                input: 1,
                output: 2,
                records: vec![FlowDataRepr::RawHeader {
                    protocol: 1,
                    frame_length: u32::from(packet.ip_len) + 18,
                    stripped: 4,
                    header,
                }],
            }),
        ));
    }

    /// Packs the samples, in time order, into datagrams stamped with their first sample's time.
    pub fn frames(mut self) -> Vec<Frame> {
        self.pending.sort_by_key(|(ts, _)| *ts);
        let agent = self.agent;
        let mut frames = Vec::new();
        let mut batch: Vec<SampleRepr> = Vec::new();
        let mut first_us = 0;
        let flush = |batch: &mut Vec<SampleRepr>, first_us: u64, frames: &mut Vec<Frame>| {
            if batch.is_empty() {
                return;
            }
            let mut datagram = Vec::with_capacity(1500);
            DatagramRepr {
                agent: IpAddr::V4(agent),
                sub_agent_id: 0,
                sequence: frames.len() as u32 + 1,
                uptime_ms: (first_us / 1000) as u32,
                samples: std::mem::take(batch),
            }
            .emit(&mut datagram);
            frames.push(super::udp_frame(agent.octets(), 6343, &datagram, first_us));
        };
        for (ts, sample) in self.pending.drain(..) {
            if !batch.is_empty() && ts >= first_us + FLUSH_AFTER_US {
                flush(&mut batch, first_us, &mut frames);
            }
            if batch.is_empty() {
                first_us = ts;
            }
            batch.push(sample);
            if batch.len() >= SAMPLES_PER_DATAGRAM {
                flush(&mut batch, first_us, &mut frames);
            }
        }
        flush(&mut batch, first_us, &mut frames);
        frames
    }

    /// Samples traffic of `pps` packets/s for `[start_s, end_s)`, spread evenly in time, each
    /// packet drawn by `make`. Sampling is statistical: on average one sample per `sampling_rate`
    /// packets, as a router's would be.
    pub fn traffic(
        &mut self,
        rng: &mut Rng,
        start_us: u64,
        seconds: f64,
        pps: f64,
        mut make: impl FnMut(&mut Rng) -> Packet,
    ) {
        let samples = (pps * seconds / f64::from(self.sampling_rate)).round() as u64;
        if samples == 0 {
            return;
        }
        let step = (seconds * 1e6) / samples as f64;
        for i in 0..samples {
            let ts = start_us + (i as f64 * step) as u64 + rng.below((step as u64).max(1));
            let packet = make(rng);
            self.sample(ts, &packet);
        }
    }
}

fn patch_ip_length(header: &mut [u8], packet: &Packet) {
    let ip = 14;
    match packet.src {
        IpAddr::V4(_) => {
            if header.len() >= ip + 20 {
                header[ip + 2..ip + 4].copy_from_slice(&packet.ip_len.to_be_bytes());
                // Recompute the header checksum over the changed header.
                header[ip + 10..ip + 12].copy_from_slice(&[0, 0]);
                let sum = floodwall_wire::packet::internet_checksum(&header[ip..ip + 20]);
                header[ip + 10..ip + 12].copy_from_slice(&sum.to_be_bytes());
            }
        }
        IpAddr::V6(_) => {
            if header.len() >= ip + 40 {
                let payload = packet.ip_len.saturating_sub(40);
                header[ip + 4..ip + 6].copy_from_slice(&payload.to_be_bytes());
            }
        }
    }
}

/// Merges the frames of several agents in time order (a capture of them all).
pub fn merge(agents: Vec<SflowAgent>) -> Vec<Frame> {
    let mut frames: Vec<Frame> = agents.into_iter().flat_map(SflowAgent::frames).collect();
    frames.sort_by_key(|f| f.ts_us);
    frames
}
