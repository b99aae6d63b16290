//! Attack events for the unit tests.

use floodwall_detect::event::{Direction, EventKind, Evidence, Trigger, TriggerKind};
use floodwall_detect::fingerprint::{Fingerprint, ProtocolMix, Share};
use floodwall_detect::{AttackEvent, Metric};

pub fn event(kind: EventKind, id: &str, target: &str, fingerprint: Fingerprint) -> AttackEvent {
    let target: ipnet::IpNet = target.parse().expect("test target");
    AttackEvent {
        event: kind,
        attack_id: id.into(),
        ts: 0,
        direction: Direction::Incoming,
        target,
        carpet_bombing: target.prefix_len() < target.max_prefix_len(),
        hostgroup: "default".into(),
        vectors: vec![],
        bps: 0,
        pps: 0,
        peak_bps: 0,
        peak_pps: 0,
        sources: 0,
        started_at: 0,
        ended_at: None,
        trigger: Trigger {
            kind: TriggerKind::Threshold,
            metric: Metric::Pps,
            value: 0.0,
            limit: 0.0,
        },
        evidence: confirmed(),
        fingerprint,
        before: None,
        campaign: None,
        source_sketch: None,
    }
}

/// Evidence of an attack seen in many datagrams over a few seconds.
pub fn confirmed() -> Evidence {
    Evidence {
        samples: 2_000,
        datagrams: 250,
        instants: 30,
        largest_datagram_share: 0.01,
    }
}

/// An NTP reflection flood's fingerprint: UDP from port 123.
pub fn ntp_flood() -> Fingerprint {
    Fingerprint {
        packets: 100_000,
        protocols: ProtocolMix {
            udp: 1.0,
            ..Default::default()
        },
        top_source_ports: vec![Share {
            value: 123,
            share: 1.0,
            packets: 100_000,
        }],
        ..Default::default()
    }
}
