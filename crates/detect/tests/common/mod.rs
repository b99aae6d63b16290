//! Hand-made telemetry for the engine tests.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};

use floodwall_detect::{AttackEvent, DetectConfig, Engine, EventKind};
use floodwall_wire::record::{proto, tcp_flags};
use floodwall_wire::FlowRecord;

/// 2025-10-09T08:53:20Z, a whole second.
pub const T0: u64 = 1_760_000_000_000;

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn config() -> DetectConfig {
    DetectConfig {
        networks: vec![
            "192.0.2.0/24".parse().unwrap(),
            "198.51.100.0/24".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ],
        ..DetectConfig::default()
    }
}

/// Deterministic pseudo-random numbers (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A source outside the monitored networks.
    pub fn remote(&mut self) -> IpAddr {
        let x = self.next() as u32;
        IpAddr::V4(Ipv4Addr::from(0x2000_0000 | (x & 0x0fff_ffff)))
    }
}

/// A template record: one sample of a `size`-byte packet at 1:`rate`, to be placed by [`flood`].
pub fn sample(protocol: u8, size: u64, rate: u32) -> FlowRecord {
    FlowRecord {
        protocol,
        packets: u64::from(rate),
        bytes: size * u64::from(rate),
        sampling_rate: rate,
        packet_len: size as u16,
        ttl: 60,
        src_port: 40_000,
        dst_port: 80,
        ..FlowRecord::default()
    }
}

pub fn syn(rate: u32) -> FlowRecord {
    FlowRecord {
        tcp_flags: tcp_flags::SYN,
        ..sample(proto::TCP, 60, rate)
    }
}

pub fn udp(sport: u16, size: u64, rate: u32) -> FlowRecord {
    FlowRecord {
        src_port: sport,
        ..sample(proto::UDP, size, rate)
    }
}

/// Records of a flood of `pps` true packets/s to (incoming) or from (outgoing) `host` for
/// `secs` seconds from `start_ms`, spread evenly over each second, random remotes.
#[allow(clippy::too_many_arguments)]
pub fn flood(
    out: &mut Vec<FlowRecord>,
    host: IpAddr,
    outgoing: bool,
    start_ms: u64,
    secs: u64,
    pps: u64,
    template: FlowRecord,
    rng: &mut Rng,
) {
    let per_s = (pps / template.packets).max(1);
    for s in 0..secs {
        for i in 0..per_s {
            let mut r = template;
            r.time_ms = start_ms + s * 1000 + i * 1000 / per_s;
            let remote = rng.remote();
            (r.src, r.dst) = if outgoing {
                (host, remote)
            } else {
                (remote, host)
            };
            out.push(r);
        }
    }
}

/// Sorts records by time (stable), as telemetry arrives.
pub fn by_time(mut records: Vec<FlowRecord>) -> Vec<FlowRecord> {
    records.sort_by_key(|r| r.time_ms);
    records
}

/// Runs records through a fresh engine in one batch, then `finish`.
pub fn run(config: DetectConfig, records: &[FlowRecord]) -> Vec<AttackEvent> {
    let mut engine = Engine::new(config).unwrap();
    let mut events = Vec::new();
    engine.ingest(records, &mut events);
    engine.finish(&mut events);
    events
}

pub fn started(events: &[AttackEvent]) -> Vec<&AttackEvent> {
    events
        .iter()
        .filter(|e| e.event == EventKind::AttackStarted)
        .collect()
}

/// Attacks on several targets (a SYN flood on a host attacked again after a gap, an outgoing
/// flood, an IPv6 reflection flood, 40 NTP-reflection targets of one /24), unsorted: the shared
/// part of the mixed inputs of the determinism and sharding properties.
#[allow(dead_code)]
pub fn attack_mix(records: &mut Vec<FlowRecord>, rng: &mut Rng) {
    flood(
        records,
        ip("192.0.2.10"),
        false,
        T0,
        6,
        150_000,
        syn(1000),
        rng,
    );
    flood(
        records,
        ip("10.0.0.5"),
        true,
        T0 + 2000,
        5,
        80_000,
        udp(40_000, 512, 1000),
        rng,
    );
    flood(
        records,
        ip("2001:db8::1"),
        false,
        T0 + 1000,
        4,
        150_000,
        udp(53, 1400, 1000),
        rng,
    );
    for h in 0..40u32 {
        let host = ip(&format!("198.51.100.{}", h + 1));
        flood(
            records,
            host,
            false,
            T0,
            8,
            10_000,
            udp(123, 468, 1000),
            rng,
        );
    }
    // A gap, then a second attack on the same host.
    flood(
        records,
        ip("192.0.2.10"),
        false,
        T0 + 40_000,
        3,
        150_000,
        syn(1000),
        rng,
    );
}
