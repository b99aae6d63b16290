//! Fingerprints sample long floods (issue 14): once settled, one record in up to 16 feeds the
//! top lists and histograms. The FlowSpec rule derived from a sampled fingerprint must be the
//! rule the exact computation gives, with its coverage within 2 percentage points, and a rule's
//! coverage of the attack must be judged the same way.

use std::net::{IpAddr, Ipv4Addr};

use floodwall_detect::event::{Evidence, Trigger, TriggerKind};
use floodwall_detect::fingerprint::{Fingerprint, FingerprintBuilder};
use floodwall_detect::{AttackEvent, Direction, EventKind, Metric};
use floodwall_mitigate::derive::{coverage_of, filter_for};
use floodwall_wire::FlowRecord;

/// Deterministic xorshift: the same records on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        (self.next() % 1_000_000) as f64 / 1e6 < p
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const TARGET: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);

fn record(protocol: u8, src_port: u16, dst_port: u16, len: u16, rng: &mut Rng) -> FlowRecord {
    let mut r = FlowRecord::empty(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    r.src = IpAddr::V4(Ipv4Addr::from(rng.next() as u32 | 0x0100_0000));
    r.dst = IpAddr::V4(TARGET);
    r.protocol = protocol;
    r.src_port = src_port;
    r.dst_port = dst_port;
    r.packet_len = len;
    r.ttl = 40 + rng.below(80) as u8;
    r.sampling_rate = 1024;
    r.packets = 1024;
    r.bytes = 1024 * u64::from(len);
    r.in_if = 1 + rng.below(3) as u32;
    r.out_if = 9;
    r
}

/// A flood of `n` sampled packets: `make` draws each record.
fn flood(n: usize, seed: u64, mut make: impl FnMut(&mut Rng) -> FlowRecord) -> Vec<FlowRecord> {
    let mut rng = Rng(seed);
    (0..n).map(|_| make(&mut rng)).collect()
}

fn random_port(rng: &mut Rng) -> u16 {
    1024 + rng.below(64_000) as u16
}

fn event(fingerprint: Fingerprint) -> AttackEvent {
    AttackEvent {
        event: EventKind::AttackStarted,
        attack_id: "sampled".into(),
        ts: 0,
        direction: Direction::Incoming,
        target: "203.0.113.7/32".parse().expect("valid"),
        carpet_bombing: false,
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
        evidence: Evidence {
            samples: 2_000,
            datagrams: 250,
            instants: 30,
            largest_datagram_share: 0.01,
        },
        fingerprint,
        before: None,
        campaign: None,
        source_sketch: None,
    }
}

/// Feeds `before` as the target's ordinary traffic (marked, as the engine does at closes while
/// it is watched), then `attack` after the attack started; returns the sampled and the exact
/// fingerprint.
fn fingerprints(before: &[FlowRecord], attack: &[FlowRecord]) -> (Fingerprint, Fingerprint) {
    // As the engine builds them: for a watch, settling again when the attack starts.
    let mut sampled = FingerprintBuilder::watching();
    let mut exact = FingerprintBuilder::unsampled();
    for fp in [&mut sampled, &mut exact] {
        for r in before {
            fp.observe(r, r.src);
        }
        if !before.is_empty() {
            fp.mark_before();
        }
        fp.settle_again();
        for r in attack {
            fp.observe(r, r.src);
        }
    }
    (sampled.snapshot(), exact.snapshot())
}

/// The rule from the sampled fingerprint is the exact one, and both coverage numbers (of the
/// derivation, and of the rule against the attack) are within 2 percentage points.
fn assert_same_rule(name: &str, before: &[FlowRecord], attack: &[FlowRecord]) {
    let (sampled, exact) = fingerprints(before, attack);
    assert_eq!(sampled.packets, exact.packets, "{name}: packets are exact");
    assert_eq!(
        sampled.protocols, exact.protocols,
        "{name}: protocols exact"
    );
    assert_eq!(
        sampled.fragments, exact.fragments,
        "{name}: fragments exact"
    );
    let (rule, coverage) = filter_for(&event(sampled.clone()));
    let (exact_rule, exact_coverage) = filter_for(&event(exact.clone()));
    assert_eq!(rule.to_string(), exact_rule.to_string(), "{name}: rule");
    assert!(
        (coverage - exact_coverage).abs() <= 0.02,
        "{name}: coverage {coverage:.4} sampled vs {exact_coverage:.4} exact"
    );
    let (on_sampled, on_exact) = (
        coverage_of(&exact_rule, &sampled),
        coverage_of(&exact_rule, &exact),
    );
    assert!(
        (on_sampled - on_exact).abs() <= 0.02,
        "{name}: the rule covers {on_sampled:.4} of the sampled, {on_exact:.4} of the exact"
    );
    // Top lists: the same heaviest values, shares within 2 points.
    for (top, exact_top) in [
        (&sampled.top_source_ports, &exact.top_source_ports),
        (&sampled.top_destination_ports, &exact.top_destination_ports),
    ] {
        for (a, b) in top
            .iter()
            .zip(exact_top)
            .take_while(|(_, b)| b.share >= 0.05)
        {
            assert_eq!(a.value, b.value, "{name}: top port");
            assert!((a.share - b.share).abs() <= 0.02, "{name}: port share");
        }
    }
}

const FLOOD: usize = 300_000;

#[test]
fn an_ntp_reflection_flood_gets_the_exact_rule() {
    let attack = flood(FLOOD, 1, |rng| {
        if rng.chance(0.97) {
            let len = 440 + rng.below(30) as u16;
            record(17, 123, random_port(rng), len, rng)
        } else {
            let len = 60 + rng.below(1400) as u16;
            record(6, 443, random_port(rng), len, rng)
        }
    });
    assert_same_rule("ntp", &[], &attack);
}

#[test]
fn a_syn_flood_on_two_ports_gets_the_exact_rule() {
    let attack = flood(FLOOD, 2, |rng| {
        let port = if rng.chance(0.8) { 443 } else { 80 };
        let mut r = record(6, random_port(rng), port, 60, rng);
        r.tcp_flags = if rng.chance(0.96) { 0x02 } else { 0x10 };
        r
    });
    assert_same_rule("syn", &[], &attack);
}

#[test]
fn a_dns_flood_after_ordinary_traffic_gets_the_exact_rule() {
    // A web server watched for a while (HTTPS replies to many clients), then a DNS reflection
    // flood with a few large-answer sizes: the rule is derived from the attack alone.
    let before = flood(50_000, 3, |rng| {
        let mut r = record(6, random_port(rng), 443, 1400, rng);
        r.tcp_flags = 0x18;
        r
    });
    let attack = flood(FLOOD, 4, |rng| {
        if rng.chance(0.9) {
            let len = if rng.chance(0.7) { 1500 } else { 1100 };
            record(17, 53, random_port(rng), len, rng)
        } else {
            let mut r = record(6, random_port(rng), 443, 1400, rng);
            r.tcp_flags = 0x18;
            r
        }
    });
    assert_same_rule("dns after https", &before, &attack);
}

#[test]
fn a_mixed_flood_and_fat_flow_records_get_the_exact_rule() {
    // UDP to random ports and TCP ACKs, and NetFlow-style records of very different weights:
    // the fat ones are always kept at their weight, the rest sampled.
    let attack = flood(FLOOD, 5, |rng| {
        let mut r = if rng.chance(0.6) {
            let len = 64 + rng.below(1400) as u16;
            record(17, random_port(rng), random_port(rng), len, rng)
        } else {
            let mut r = record(6, random_port(rng), 80, 52, rng);
            r.tcp_flags = 0x10;
            r
        };
        let packets = if rng.chance(0.01) {
            500_000
        } else {
            1 + rng.below(2_000)
        };
        r.packets = packets;
        r.bytes = packets * u64::from(r.packet_len);
        r
    });
    assert_same_rule("mixed, fat flows", &[], &attack);
}

#[test]
fn a_flood_that_changes_vector_midway_gets_the_exact_rule() {
    // Memcached for the first tenth, then chargen: shares of both are weighed over the whole
    // attack, as the exact computation does.
    let mut i = 0u64;
    let attack = flood(FLOOD, 6, |rng| {
        i += 1;
        let port = if i < FLOOD as u64 / 10 { 11211 } else { 19 };
        let len = 1000 + rng.below(400) as u16;
        record(17, port, random_port(rng), len, rng)
    });
    assert_same_rule("changing vector", &[], &attack);
}
