//! What the daemon writes reads back as it was: an attack's record (the event with its
//! fingerprint, and the plan's decisions with the mitigators' deliveries), serialized,
//! deserialized and serialized again, gives the same bytes; so does the plan's snapshot.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use floodwall_detect::{AttackEvent, DetectConfig, Engine};
use floodwall_mitigate::{Decision, Delivery, MitigationConfig, Planner, Scope, Status};
use floodwall_wire::record::{proto, tcp_flags};
use floodwall_wire::FlowRecord;
use serde::{Deserialize, Serialize};

/// An event's record as the daemon writes it: the event's fields, then `mitigations` when the
/// plan considered any rule.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Record {
    #[serde(flatten)]
    event: AttackEvent,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    mitigations: Vec<Decision>,
}

const T0: u64 = 1_760_000_000_000;

/// Floods on an IPv4 and an IPv6 host from many sources, over a few seconds of many datagrams,
/// with the sizes and TTLs sFlow carries, and some ordinary traffic before and around them.
fn records() -> Vec<FlowRecord> {
    let victim4 = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    let victim6 = IpAddr::V6("2001:db8::7".parse::<Ipv6Addr>().unwrap());
    let mut x = 0x5eed_u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = Vec::new();
    for s in 0..30u64 {
        let flooding = s >= 20;
        let per_s = if flooding { 400 } else { 40 };
        for i in 0..per_s {
            let n = next();
            let mut r = FlowRecord::empty(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
            r.time_ms = T0 + s * 1000 + i * 1000 / per_s;
            r.sampling_rate = 1000;
            r.packets = 1000;
            r.datagram = (r.time_ms / 20) as u32;
            r.in_if = 3;
            r.out_if = (n % 3) as u32;
            r.src = IpAddr::V4(Ipv4Addr::from(0x2000_0000 | ((n >> 40) as u32 % 5000)));
            r.dst = victim4;
            r.ttl = 50 + (n % 20) as u8;
            if !flooding || i % 4 == 0 {
                // Ordinary web traffic to the host.
                r.protocol = proto::TCP;
                r.tcp_flags = tcp_flags::ACK | tcp_flags::PSH;
                r.src_port = 443;
                r.dst_port = 40_000 + (n % 1000) as u16;
                r.packet_len = 1400;
            } else if i % 4 == 1 {
                // A SYN flood on the IPv6 host.
                r.src = IpAddr::V6(Ipv6Addr::from(
                    0x2a00_0000_0000_0000_0000_0000_0000_0000 | u128::from(n % 10_000),
                ));
                r.dst = victim6;
                r.protocol = proto::TCP;
                r.tcp_flags = tcp_flags::SYN;
                r.src_port = (n % 60_000) as u16 + 1024;
                r.dst_port = 443;
                r.packet_len = 60;
            } else {
                // NTP reflection on the IPv4 host.
                r.protocol = proto::UDP;
                r.src_port = 123;
                r.dst_port = (n % 60_000) as u16 + 1024;
                r.packet_len = 468;
            }
            r.bytes = r.packets * u64::from(r.packet_len);
            out.push(r);
        }
    }
    out
}

fn round_trip<T: Serialize + for<'de> Deserialize<'de>>(value: &T) -> (String, T) {
    let first = serde_json::to_string(value).unwrap();
    let back: T = serde_json::from_str(&first).unwrap();
    let again = serde_json::to_string(&back).unwrap();
    assert_eq!(first, again);
    (first, back)
}

#[test]
fn records_and_snapshots_read_back_as_written() {
    let detection = DetectConfig {
        networks: vec![
            "203.0.113.0/24".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ],
        ..DetectConfig::default()
    };
    let mut engine = Engine::new(detection).unwrap();
    let mut events = Vec::new();
    engine.ingest(&records(), &mut events);
    engine.finish(&mut events);

    let mut config = MitigationConfig::default();
    config.blackhole.enabled = true;
    config.flowspec.enabled = true;
    let scope = Scope {
        networks: vec![
            ("203.0.113.0/24".parse().unwrap(), "default".into()),
            ("2001:db8::/32".parse().unwrap(), "default".into()),
        ],
        broadest_v4: 24,
        broadest_v6: 48,
    };
    let mut planner = Planner::new(config, scope).unwrap();
    let mut changes = Vec::new();
    let (mut with_decisions, mut with_fingerprint_details, mut ended) = (0, 0, 0);
    for event in events {
        let mut mitigations = planner.on_event(&event, event.ts, &mut changes);
        // What the actions fill in.
        for d in &mut mitigations {
            if d.status == Status::Announced {
                d.mitigators = vec![Delivery {
                    mitigator: "bgp".into(),
                    status: Status::Queued,
                    detail: Some("no session established yet".into()),
                }];
            }
        }
        with_decisions += usize::from(!mitigations.is_empty());
        ended += usize::from(event.ended_at.is_some());
        let fp = &event.fingerprint;
        with_fingerprint_details += usize::from(
            fp.packet_sizes.is_some() && fp.ttls.is_some() && !fp.top_sources.is_empty(),
        );
        let record = Record {
            // Kept in memory only: not written, not read.
            event: AttackEvent {
                before: None,
                source_sketch: None,
                ..event
            },
            mitigations,
        };
        let (text, back) = round_trip(&record);
        assert_eq!(back, record, "{text}");
    }
    assert!(with_decisions >= 2, "{with_decisions}");
    assert!(with_fingerprint_details >= 2, "{with_fingerprint_details}");
    assert!(ended >= 2, "{ended}");

    let (_, snapshot) = round_trip(&planner.snapshot());
    assert!(!snapshot.held.is_empty());
    assert_eq!(snapshot, planner.snapshot());
}
