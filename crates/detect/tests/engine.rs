//! Engine behaviour on hand-made telemetry with explicit telemetry times.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;

use common::*;
use floodwall_detect::event::TriggerKind;
use floodwall_detect::{AttackEvent, DetectConfig, Direction, Engine, EventKind, Metric, Vector};
use floodwall_wire::record::{proto, tcp_flags};
use floodwall_wire::FlowRecord;
use proptest::prelude::*;

/// Every started attack ends exactly once, after it started, and nothing repeats.
fn assert_lifecycles(events: &[AttackEvent]) {
    let mut seen: BTreeMap<&str, Vec<EventKind>> = BTreeMap::new();
    for e in events {
        seen.entry(&e.attack_id).or_default().push(e.event);
    }
    for (id, kinds) in &seen {
        assert_eq!(
            kinds.first(),
            Some(&EventKind::AttackStarted),
            "{id}: {kinds:?}"
        );
        assert_eq!(
            kinds.last(),
            Some(&EventKind::AttackEnded),
            "{id}: {kinds:?}"
        );
        assert_eq!(
            kinds
                .iter()
                .filter(|k| **k != EventKind::AttackUpdated)
                .count(),
            2,
            "{id}: {kinds:?}"
        );
    }
    // Never two attacks on one (direction, target) at the same time.
    let mut open: BTreeMap<(Direction, String), &str> = BTreeMap::new();
    for e in events {
        let key = (e.direction, e.target.to_string());
        match e.event {
            EventKind::AttackStarted => {
                assert!(open.insert(key, &e.attack_id).is_none(), "duplicate {e:?}")
            }
            EventKind::AttackEnded => assert!(open.remove(&key).is_some()),
            EventKind::AttackUpdated => assert!(open.contains_key(&key)),
        }
    }
    assert!(open.is_empty());
}

/// A 5-second flood of `template` at 150 000 pps (1:`rate`), then a quiet second.
fn classify_one(template: FlowRecord, rate_pps: u64) -> AttackEvent {
    let mut rng = Rng(7);
    let mut records = Vec::new();
    let host = ip("192.0.2.10");
    flood(
        &mut records,
        host,
        false,
        T0,
        5,
        rate_pps,
        template,
        &mut rng,
    );
    let events = run(config(), &records);
    assert_lifecycles(&events);
    let s = started(&events);
    assert_eq!(s.len(), 1, "{events:#?}");
    assert_eq!(s[0].host(), Some(host));
    assert_eq!(s[0].direction, Direction::Incoming);
    // The last event carries the vectors of the whole attack.
    events.last().unwrap().clone()
}

#[test]
fn classifies_each_vector() {
    let with_flags = |flags: u8| FlowRecord {
        tcp_flags: flags,
        ..sample(proto::TCP, 60, 1000)
    };
    let cases: Vec<(&str, FlowRecord, Vec<Vector>)> = vec![
        ("syn", syn(1000), vec![Vector::SynFlood]),
        (
            "ack/psh",
            with_flags(tcp_flags::ACK | tcp_flags::PSH),
            vec![Vector::AckFlood],
        ),
        ("rst", with_flags(tcp_flags::RST), vec![Vector::RstFlood]),
        (
            "random flags",
            with_flags(tcp_flags::FIN | tcp_flags::URG | tcp_flags::PSH),
            vec![Vector::TcpFlood],
        ),
        ("udp", udp(40_000, 512, 1000), vec![Vector::UdpFlood]),
        ("dns", udp(53, 1400, 1000), vec![Vector::DnsAmplification]),
        ("ntp", udp(123, 468, 1000), vec![Vector::NtpAmplification]),
        (
            "memcached",
            udp(11211, 1400, 1000),
            vec![Vector::MemcachedAmplification],
        ),
        (
            "ssdp",
            udp(1900, 300, 1000),
            vec![Vector::SsdpAmplification],
        ),
        (
            "icmp",
            sample(proto::ICMP, 84, 1000),
            vec![Vector::IcmpFlood],
        ),
        (
            "icmpv6 counts as icmp",
            sample(proto::ICMPV6, 84, 1000),
            vec![Vector::IcmpFlood],
        ),
        ("gre", sample(proto::GRE, 570, 1000), vec![Vector::GreFlood]),
        (
            "fragments",
            FlowRecord {
                fragment: true,
                src_port: 0,
                dst_port: 0,
                ..sample(proto::UDP, 1500, 1000)
            },
            vec![Vector::UdpFlood, Vector::FragmentFlood],
        ),
    ];
    for (name, template, expected) in cases {
        let last = classify_one(template, 150_000);
        assert_eq!(last.vectors, expected, "{name}");
    }
}

#[test]
fn mixed_vectors_are_all_named_in_fixed_order() {
    let mut rng = Rng(3);
    let mut records = Vec::new();
    let host = ip("192.0.2.20");
    flood(
        &mut records,
        host,
        false,
        T0,
        5,
        100_000,
        udp(53, 1400, 1000),
        &mut rng,
    );
    flood(
        &mut records,
        host,
        false,
        T0,
        5,
        60_000,
        syn(1000),
        &mut rng,
    );
    let events = run(config(), &by_time(records));
    let s = started(&events);
    assert_eq!(s.len(), 1);
    assert_eq!(
        s[0].vectors,
        vec![Vector::SynFlood, Vector::DnsAmplification]
    );
}

#[test]
fn syn_flood_is_reported_within_one_bucket_with_true_peak() {
    let mut rng = Rng(1);
    let mut records = Vec::new();
    let host = ip("192.0.2.10");
    // 10 s of a 200 kpps SYN flood at 1:1000, starting mid-second.
    flood(
        &mut records,
        host,
        false,
        T0 + 500,
        10,
        200_000,
        syn(1000),
        &mut rng,
    );
    let mut engine = Engine::new(config()).unwrap();
    let mut events = Vec::new();
    engine.ingest(&records, &mut events);
    let s = started(&events);
    assert_eq!(s.len(), 1);
    let e = s[0];
    assert_eq!(e.trigger.kind, TriggerKind::Threshold);
    assert_eq!(e.vectors, vec![Vector::SynFlood]);
    // The first full second [T0+1000, T0+2000) crosses; reported by the end of the next bucket.
    assert!(e.ts <= T0 + 3000, "ts {}", e.ts);
    assert!(e.started_at >= T0);
    assert_eq!(e.attack_id, format!("{}-in-192.0.2.10/32", e.started_at));
    engine.finish(&mut events);
    assert_lifecycles(&events);
    let end = events.last().unwrap();
    assert_eq!(end.event, EventKind::AttackEnded);
    let peak = end.peak_pps as f64;
    assert!((peak - 200_000.0).abs() <= 20_000.0, "peak {peak}");
    let peak_bps = end.peak_bps as f64;
    assert!((peak_bps - 200_000.0 * 480.0).abs() <= 0.1 * 200_000.0 * 480.0);
}

#[test]
fn heavily_sampled_terabit_flood_has_the_right_magnitude() {
    // 31.4 Tbps of 1500-byte packets ≈ 2.6 Gpps ≈ 160 000 samples/s at 1:16384.
    let pps = 31_400_000_000_000 / (1500 * 8);
    let mut rng = Rng(5);
    let mut records = Vec::new();
    flood(
        &mut records,
        ip("192.0.2.77"),
        false,
        T0,
        2,
        pps,
        udp(11211, 1500, 16384),
        &mut rng,
    );
    let events = run(config(), &records);
    let end = events.last().unwrap();
    assert_eq!(started(&events).len(), 1);
    let tbps = end.peak_bps as f64 / 1e12;
    assert!((28.0..35.0).contains(&tbps), "{tbps} Tbps");
    assert_eq!(end.vectors, vec![Vector::MemcachedAmplification]);
}

#[test]
fn one_sample_at_high_sampling_rate_is_no_evidence() {
    // One 1:16384 sample of a 1500-byte packet reads as 16 384 pps and 197 Mbps.
    let mut r = udp(53, 1500, 16384);
    r.src = ip("203.0.113.1");
    r.dst = ip("192.0.2.5");
    let mut records = Vec::new();
    for s in 0..20 {
        // A sample every few seconds: a quiet host.
        if s % 4 == 0 {
            records.push(FlowRecord {
                time_ms: T0 + s * 1000,
                ..r
            });
        }
    }
    let mut cfg = config();
    cfg.incoming.pps = Some(10_000.0);
    cfg.incoming.amplification_pps = Some(10_000.0);
    assert!(run(cfg, &records).is_empty());
}

#[test]
fn sparse_samples_accumulate_over_the_evidence_window() {
    // 7 samples/s at 1:16384 = 114 688 pps, 11 × a 20 000 pps limit: the 3-second window holds
    // 21, beyond sampling noise at that ratio, and enough to show that nothing answers the
    // flood (an answering peer would have put three or more samples in the other direction).
    let mut rng = Rng(9);
    let mut records = Vec::new();
    flood(
        &mut records,
        ip("192.0.2.6"),
        false,
        T0,
        6,
        114_688,
        udp(40_000, 200, 16384),
        &mut rng,
    );
    let events = run(config(), &records);
    let s = started(&events);
    assert_eq!(s.len(), 1, "{events:#?}");
    assert!(s[0].ts <= T0 + 3000);
    // Reported mid-bucket, with the rates of that second so far.
    assert!((90_000..=115_000).contains(&s[0].pps), "{}", s[0].pps);

    // 2 samples/s at 1:16384 = 32 768 pps, 1.6 × a 20 000 pps limit: six samples in three
    // seconds cannot tell that rate from one below the limit. Sampled telemetry is statistics.
    let mut records = Vec::new();
    flood(
        &mut records,
        ip("192.0.2.6"),
        false,
        T0,
        6,
        32_768,
        udp(40_000, 200, 16384),
        &mut rng,
    );
    assert!(run(config(), &records).is_empty());
}

#[test]
fn carpet_bombing_is_one_prefix_attack_without_host_attacks() {
    let mut rng = Rng(11);
    let mut records = Vec::new();
    // 200 hosts × 2 000 pps = 400 kpps on 198.51.100.0/24, each host far below 100 kpps.
    for h in 0..200u32 {
        let host = ip(&format!("198.51.100.{}", h + 1));
        flood(
            &mut records,
            host,
            false,
            T0,
            8,
            2_000,
            udp(123, 468, 100),
            &mut rng,
        );
    }
    let events = run(config(), &by_time(records));
    assert_lifecycles(&events);
    let s = started(&events);
    assert_eq!(s.len(), 1, "{s:#?}");
    assert!(s[0].carpet_bombing);
    assert_eq!(
        s[0].target,
        "198.51.100.0/24".parse::<ipnet::IpNet>().unwrap()
    );
    assert_eq!(s[0].trigger.kind, TriggerKind::CarpetBombing);
    assert_eq!(s[0].vectors, vec![Vector::NtpAmplification]);
    assert!(events.iter().all(|e| e.carpet_bombing));
}

#[test]
fn a_host_attack_inside_a_carpet_is_reported_on_its_own() {
    let mut rng = Rng(12);
    let mut records = Vec::new();
    for h in 0..200u32 {
        let host = ip(&format!("198.51.100.{}", h + 1));
        flood(
            &mut records,
            host,
            false,
            T0,
            8,
            2_000,
            udp(123, 468, 100),
            &mut rng,
        );
    }
    // A host inside the carpet crosses its own limit later (still < half of the prefix).
    flood(
        &mut records,
        ip("198.51.100.250"),
        false,
        T0 + 3000,
        3,
        150_000,
        udp(123, 468, 1000),
        &mut rng,
    );
    let events = run(config(), &by_time(records));
    assert_lifecycles(&events);
    let s = started(&events);
    assert_eq!(s.len(), 2, "{s:#?}");
    let (carpet, host): (Vec<&&AttackEvent>, Vec<&&AttackEvent>) =
        s.iter().partition(|e| e.carpet_bombing);
    assert_eq!(carpet[0].target.to_string(), "198.51.100.0/24");
    assert_eq!(host[0].host(), Some(ip("198.51.100.250")));
    assert_eq!(host[0].vectors, [Vector::NtpAmplification]);
    assert_eq!(host[0].started_at, T0 + 3000);
    // Both at once; the carpet's rates are its residue (400 kpps), not the host's 150 kpps.
    let ended = |id: &str| {
        events
            .iter()
            .find(|e| e.attack_id == id && e.event == EventKind::AttackEnded)
            .unwrap()
            .ended_at
            .unwrap()
    };
    assert!(ended(&carpet[0].attack_id) > host[0].started_at);
    let peak = events
        .iter()
        .filter(|e| e.attack_id == carpet[0].attack_id)
        .map(|e| e.peak_pps)
        .max()
        .unwrap();
    assert!((350_000..480_000).contains(&peak), "{peak}");
}

#[test]
fn outgoing_flood_from_a_customer() {
    let mut rng = Rng(13);
    let mut records = Vec::new();
    let bot = ip("10.1.2.3");
    flood(
        &mut records,
        bot,
        true,
        T0,
        5,
        80_000,
        udp(40_000, 512, 100),
        &mut rng,
    );
    let events = run(config(), &records);
    assert_lifecycles(&events);
    let s = started(&events);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].direction, Direction::Outgoing);
    assert_eq!(s[0].host(), Some(bot));
    assert!(s[0].attack_id.contains("-out-10.1.2.3/32"));
    assert_eq!(s[0].vectors, vec![Vector::UdpFlood]);
}

#[test]
fn traffic_between_two_monitored_hosts_counts_both_ways() {
    let mut records = Vec::new();
    for i in 0..150u64 * 5 {
        let mut r = syn(1000);
        r.time_ms = T0 + i * 1000 / 150;
        r.src = ip("10.9.9.9");
        r.dst = ip("192.0.2.9");
        records.push(r);
    }
    let events = run(config(), &records);
    let s = started(&events);
    assert_eq!(s.len(), 2);
    let mut directions: Vec<Direction> = s.iter().map(|e| e.direction).collect();
    directions.sort();
    assert_eq!(directions, [Direction::Incoming, Direction::Outgoing]);
}

/// `secs` seconds of traffic around `pps` (±10 %, deterministic), 1:100 sampled.
fn steady(records: &mut Vec<FlowRecord>, host: &str, from_s: u64, secs: u64, pps: u64) {
    let mut rng = Rng(17 + from_s);
    for s in from_s..from_s + secs {
        let jitter = 0.9 + 0.2 * (rng.next() % 1000) as f64 / 1000.0;
        let samples = (pps as f64 * jitter / 100.0) as u64;
        for i in 0..samples {
            let mut r = FlowRecord {
                tcp_flags: tcp_flags::ACK,
                ..sample(proto::TCP, 800, 100)
            };
            r.time_ms = T0 + s * 1000 + i * 1000 / samples;
            r.src = rng.remote();
            r.dst = ip(host);
            records.push(r);
        }
    }
}

#[test]
fn busy_benign_host_never_alarms() {
    // 40 kpps (256 Mbps) for 15 minutes: above the baseline floors, below static limits.
    let mut records = Vec::new();
    steady(&mut records, "192.0.2.40", 0, 900, 40_000);
    let mut engine = Engine::new(config()).unwrap();
    let mut events = Vec::new();
    engine.ingest(&records, &mut events);
    engine.finish(&mut events);
    assert!(events.is_empty(), "{events:#?}");
    assert_eq!(engine.stats().hosts_tracked, 1);
}

#[test]
fn step_above_baseline_below_static_limits_is_a_baseline_attack() {
    let mut records = Vec::new();
    steady(&mut records, "192.0.2.41", 0, 400, 2_000);
    // 16 kpps of unanswered UDP from many sources: below the 20 kpps static limit, far above
    // 4 × 2 kpps and the 5 kpps floor.
    let mut rng = Rng(5);
    let mut flood_records = Vec::new();
    flood(
        &mut flood_records,
        ip("192.0.2.41"),
        false,
        T0 + 400_000,
        20,
        16_000,
        udp(40_000, 540, 100),
        &mut rng,
    );
    steady(&mut records, "192.0.2.41", 400, 20, 2_000);
    steady(&mut records, "192.0.2.41", 420, 30, 2_000);
    let records = by_time([records, flood_records].concat());
    let events = run(config(), &records);
    assert_lifecycles(&events);
    let s = started(&events);
    assert_eq!(s.len(), 1, "{events:#?}");
    assert_eq!(s[0].trigger.kind, TriggerKind::Baseline);
    assert_eq!(s[0].trigger.metric, Metric::Pps);
    assert_eq!(s[0].vectors, [Vector::UdpFlood]);
    assert!(s[0].ts <= T0 + 402_000);
    let end = events.last().unwrap();
    assert!(end.ended_at.unwrap() <= T0 + 421_000);
    assert!((end.peak_pps as f64 - 18_000.0).abs() < 3_500.0);
}

/// The same host's ordinary traffic growing 15-fold (a big download, a busy hour) is not an
/// attack: the rise is traffic its ordinary traffic explains.
#[test]
fn ordinary_traffic_above_its_baseline_is_not_an_attack() {
    let mut records = Vec::new();
    steady(&mut records, "192.0.2.41", 0, 400, 2_000);
    steady(&mut records, "192.0.2.41", 400, 20, 30_000);
    steady(&mut records, "192.0.2.41", 420, 30, 2_000);
    let events = run(config(), &records);
    assert!(events.is_empty(), "{events:#?}");
}

#[test]
fn cold_host_does_not_alarm_on_baseline() {
    let mut records = Vec::new();
    steady(&mut records, "192.0.2.42", 0, 20, 30_000);
    assert!(run(config(), &records).is_empty());
}

#[test]
fn lifecycle_updates_are_rate_limited_and_end_after_quiet_period() {
    let mut rng = Rng(21);
    let mut records = Vec::new();
    let host = ip("192.0.2.50");
    // A flood growing 20 % a second for 12 s.
    let mut pps = 120_000.0;
    for s in 0..12 {
        flood(
            &mut records,
            host,
            false,
            T0 + s * 1000,
            1,
            pps as u64,
            syn(1000),
            &mut rng,
        );
        pps *= 1.2;
    }
    // Below half the 10 kpps SYN limit afterwards (a trickle keeps the host busy; 1:100, so
    // each bucket holds enough samples to be judged alone).
    flood(
        &mut records,
        host,
        false,
        T0 + 12_000,
        30,
        4_000,
        syn(100),
        &mut rng,
    );
    let mut engine = Engine::new(config()).unwrap();
    let mut events = Vec::new();
    engine.ingest(&records, &mut events);
    let kinds: Vec<_> = events.iter().map(|e| e.event).collect();
    assert_eq!(kinds.first(), Some(&EventKind::AttackStarted));
    assert_eq!(kinds.last(), Some(&EventKind::AttackEnded), "{kinds:?}");
    let updates: Vec<(u64, u64)> = events
        .iter()
        .filter(|e| e.event != EventKind::AttackEnded)
        .map(|e| (e.ts, e.evidence.samples))
        .collect();
    assert!(updates.len() > 1);
    // While the fingerprint settles (under 1,024 samples behind it) an update goes out each
    // time the samples double, at most one a second; after that, at most every 5 s.
    for w in updates.windows(2) {
        let ((t0, s0), (t1, s1)) = (w[0], w[1]);
        assert!(t1 > t0, "two updates in one second: {updates:?}");
        if s0 >= 1024 {
            assert!(t1 - t0 >= 5000, "updates too close: {updates:?}");
        } else {
            assert!(s1 >= 2 * s0 || t1 - t0 >= 5000, "{updates:?}");
        }
    }
    assert!(
        updates.iter().any(|&(_, s)| s >= 1024),
        "the fingerprint settles: {updates:?}"
    );
    let end = events.last().unwrap();
    // Last hot bucket [T0+11 s, T0+12 s); ended after 10 quiet buckets.
    assert_eq!(end.ended_at, Some(T0 + 12_000));
    assert_eq!(end.ts, T0 + 22_000);
    assert_eq!(engine.stats().attacks_active, 0);
    engine.finish(&mut events);
    assert_lifecycles(&events);
}

#[test]
fn finish_ends_every_active_attack() {
    let mut rng = Rng(23);
    let mut records = Vec::new();
    flood(
        &mut records,
        ip("192.0.2.60"),
        false,
        T0,
        3,
        150_000,
        syn(1000),
        &mut rng,
    );
    flood(
        &mut records,
        ip("2001:db8::60"),
        false,
        T0,
        3,
        150_000,
        syn(1000),
        &mut rng,
    );
    flood(
        &mut records,
        ip("10.0.0.60"),
        true,
        T0,
        3,
        150_000,
        syn(1000),
        &mut rng,
    );
    let records = by_time(records);
    let mut engine = Engine::new(config()).unwrap();
    let mut events = Vec::new();
    engine.ingest(&records, &mut events);
    assert_eq!(engine.stats().attacks_active, 3);
    engine.finish(&mut events);
    assert_eq!(engine.stats().attacks_active, 0);
    assert_lifecycles(&events);
    let ended: Vec<_> = events
        .iter()
        .filter(|e| e.event == EventKind::AttackEnded)
        .collect();
    assert_eq!(ended.len(), 3);
    // Sorted by direction, then target (IPv4 before IPv6).
    let order: Vec<String> = ended.iter().map(|e| e.target.to_string()).collect();
    assert_eq!(order, ["192.0.2.60/32", "2001:db8::60/128", "10.0.0.60/32"]);
}

#[test]
fn tick_closes_buckets_of_a_quiet_collector() {
    let mut rng = Rng(25);
    let mut records = Vec::new();
    flood(
        &mut records,
        ip("192.0.2.61"),
        false,
        T0,
        3,
        150_000,
        syn(1000),
        &mut rng,
    );
    let mut engine = Engine::new(config()).unwrap();
    let mut events = Vec::new();
    engine.ingest(&records, &mut events);
    engine.tick(T0 + 3_500, &mut events);
    assert_eq!(started(&events).len(), 1);
    engine.tick(T0 + 60_000, &mut events);
    assert_eq!(events.last().unwrap().event, EventKind::AttackEnded);
    assert_eq!(engine.clock_ms(), T0 + 60_000);
}

#[test]
fn late_records_count_in_the_open_bucket() {
    let mut rng = Rng(27);
    let mut records = Vec::new();
    // The clock is at T0+5 s; NetFlow reports flows that began 3 s earlier.
    flood(
        &mut records,
        ip("192.0.2.62"),
        false,
        T0 + 2000,
        1,
        150_000,
        syn(1000),
        &mut rng,
    );
    let mut first = syn(1000);
    first.time_ms = T0 + 5000;
    first.src = ip("203.0.113.9");
    first.dst = ip("192.0.2.1");
    records.insert(0, first);
    let events = run(config(), &records);
    let s = started(&events);
    assert_eq!(s.len(), 1);
    // Counted when they arrive, but the attack began when its records say it did.
    assert!(s[0].ts >= T0 + 5000);
    assert_eq!(s[0].started_at, T0 + 2000);
}

#[test]
fn spoofed_sources_do_not_grow_engine_maps() {
    let mut rng = Rng(29);
    let mut records = Vec::new();
    flood(
        &mut records,
        ip("192.0.2.99"),
        false,
        T0,
        4,
        250_000,
        syn(1),
        &mut rng,
    );
    assert_eq!(records.len(), 1_000_000);
    let mut engine = Engine::new(config()).unwrap();
    let mut events = Vec::new();
    engine.ingest(&records, &mut events);
    let stats = engine.stats();
    assert_eq!(stats.hosts_tracked, 1);
    assert_eq!(stats.prefixes_tracked, 1);
    assert_eq!(stats.records_unmonitored, 0);
    assert_eq!(started(&events).len(), 1);
}

#[test]
fn max_hosts_overflows_into_prefix_accounting() {
    let mut cfg = config();
    cfg.max_hosts = 10;
    let mut records = Vec::new();
    for h in 0..50u64 {
        let mut r = syn(1);
        r.time_ms = T0 + h;
        r.src = ip("203.0.113.1");
        r.dst = ip(&format!("10.0.1.{h}"));
        records.push(r);
    }
    let mut engine = Engine::new(cfg).unwrap();
    engine.ingest(&records, &mut Vec::new());
    let stats = engine.stats();
    assert_eq!(stats.hosts_tracked, 10);
    assert_eq!(stats.records_host_overflow, 40);
}

#[test]
fn idle_hosts_are_evicted() {
    let mut records = Vec::new();
    for h in 0..100u64 {
        let mut r = syn(1);
        r.time_ms = T0 + h;
        r.src = ip("203.0.113.1");
        r.dst = ip(&format!("10.0.2.{h}"));
        records.push(r);
    }
    let mut late = records[0];
    late.time_ms = T0 + 100_000;
    records.push(late);
    late.time_ms = T0 + 200_000;
    records.push(late);
    let mut engine = Engine::new(config()).unwrap();
    engine.ingest(&records, &mut Vec::new());
    let stats = engine.stats();
    assert_eq!(stats.hosts_tracked, 1, "{stats:?}");
    // The 100 hosts idle since the start, then the one that came back at 100 s and was idle
    // again until 200 s: the gaps are swept as if each of their buckets had closed.
    assert_eq!(stats.hosts_evicted, 101);
    assert_eq!(stats.prefixes_tracked, 1);
}

#[test]
fn hostgroup_limits_apply_by_longest_prefix() {
    let cfg: DetectConfig = toml::from_str(
        r#"
        networks = ["192.0.2.0/24", "10.0.0.0/8"]
        [[hostgroups]]
        name = "dns-servers"
        networks = ["192.0.2.0/28"]
        incoming = { pps = 500000, amplification_pps = 0 }
        [[hostgroups]]
        name = "tiny"
        networks = ["192.0.2.8/29"]
        incoming = { pps = 20000 }
        "#,
    )
    .unwrap();
    let mut rng = Rng(31);
    let mut records = Vec::new();
    // 150 kpps of DNS responses: normal for the DNS servers, an attack elsewhere.
    flood(
        &mut records,
        ip("192.0.2.3"),
        false,
        T0,
        3,
        150_000,
        udp(53, 512, 1000),
        &mut rng,
    );
    flood(
        &mut records,
        ip("192.0.2.100"),
        false,
        T0,
        3,
        150_000,
        udp(53, 512, 1000),
        &mut rng,
    );
    flood(
        &mut records,
        ip("192.0.2.9"),
        false,
        T0,
        3,
        30_000,
        udp(53, 512, 100),
        &mut rng,
    );
    let events = run(cfg, &by_time(records));
    let s = started(&events);
    let mut got: Vec<(String, String)> = s
        .iter()
        .map(|e| (e.target.to_string(), e.hostgroup.clone()))
        .collect();
    // Attacks that start early (at the crossing record) come in record order.
    got.sort_by(|a, b| b.cmp(a));
    assert_eq!(
        got,
        [
            ("192.0.2.9/32".to_string(), "tiny".to_string()),
            ("192.0.2.100/32".to_string(), "default".to_string()),
        ]
    );
}

#[test]
fn config_rejects_nonsense_and_unknown_fields() {
    assert!(toml::from_str::<DetectConfig>("bogus = 1").is_err());
    assert!(toml::from_str::<DetectConfig>("[baseline]\nalpha = 1").is_err());
    let bad = |text: &str| {
        let cfg: DetectConfig = toml::from_str(text).unwrap();
        Engine::new(cfg).err().expect(text).to_string()
    };
    assert!(bad("prefix_length_v4 = 33").contains("prefix_length_v4"));
    assert!(bad("prefix_length_v6 = 8").contains("prefix_length_v6"));
    assert!(bad("min_samples = 0").contains("min_samples"));
    assert!(bad("end_ratio = 1.5").contains("end_ratio"));
    assert!(bad("watch_ratio = 0").contains("watch_ratio"));
    assert!(bad("[carpet]\nmax_host_share = 2").contains("max_host_share"));
    assert!(bad("[carpet]\nmax_pps = -1").contains("carpet.max_pps"));
    assert!(bad("[carpet]\nbaseline_min_mbps = -5").contains("carpet.baseline_min_mbps"));
    assert!(bad(
        "networks = [\"10.0.0.0/8\"]\n[[hostgroups]]\nname = \"x\"\nnetworks = [\"10.0.0.0/24\"]\ncarpet = { baseline_min_pps = -1 }"
    )
    .contains("hostgroups[0].carpet.baseline_min_pps"));
    assert!(toml::from_str::<DetectConfig>("[carpet]\nbaseline = 1").is_err());
    assert!(bad("[incoming]\npps = -1").contains("incoming.pps"));
    assert!(bad(
        "networks = [\"10.0.0.0/8\"]\n[[hostgroups]]\nname = \"x\"\nnetworks = [\"11.0.0.0/24\"]"
    )
    .contains("not inside"));
    assert!(bad(
        "networks = [\"10.0.0.0/8\"]\n[[hostgroups]]\nname = \"default\"\nnetworks = [\"10.0.0.0/24\"]"
    )
    .contains("reserved"));
    assert!(bad(
        "networks = [\"10.0.0.0/8\"]\n[[hostgroups]]\nname = \"a\"\nnetworks = [\"10.0.0.0/24\"]\n[[hostgroups]]\nname = \"b\"\nnetworks = [\"10.0.0.0/24\"]"
    )
    .contains("also in hostgroup `a`"));
    let ok: DetectConfig = toml::from_str("").unwrap();
    assert_eq!(ok, DetectConfig::default());
    assert!(Engine::new(ok).is_ok());
}

/// Three seconds of a 150 kpps SYN flood at 192.0.2.70 seen through 1:1000 sampling: 150
/// samples a second, one every 6.7 ms from the start of each second.
fn syn_flood_150k() -> Vec<FlowRecord> {
    let mut records = Vec::new();
    flood(
        &mut records,
        ip("192.0.2.70"),
        false,
        T0,
        3,
        150_000,
        syn(1000),
        &mut Rng(33),
    );
    records
}

#[test]
fn events_serialize_with_the_public_field_names() {
    let events = run(config(), &syn_flood_150k());
    let json = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(json["event"], "attack_started");
    assert_eq!(json["direction"], "incoming");
    assert_eq!(json["vectors"][0], "syn_flood");
    assert_eq!(json["trigger"]["kind"], "threshold");
    // Reported at the record whose count crossed the 10 kpps SYN limit by more than sampling
    // noise (the 22nd of the bucket's 150 samples, one every 6.7 ms: 22 kpps, where 21 could
    // still be noise), not at the bucket's close; the attack still starts with its bucket.
    assert_eq!(json["ts"], "2025-10-09T08:53:20.140Z");
    assert_eq!(json["started_at"], "2025-10-09T08:53:20.000Z");
}

/// A mix of attacks for the determinism property.
fn mixed_records() -> Vec<FlowRecord> {
    let mut records = Vec::new();
    attack_mix(&mut records, &mut Rng(41));
    by_time(records)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn batch_splits_do_not_change_events(mut cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12)) {
        let records = mixed_records();
        let reference = run(config(), &records);
        prop_assert!(started(&reference).len() >= 5);
        let mut points: Vec<usize> = cuts.drain(..).map(|i| i.index(records.len() + 1)).collect();
        points.sort_unstable();
        let mut engine = Engine::new(config()).unwrap();
        let mut events = Vec::new();
        let mut from = 0;
        for p in points.into_iter().chain([records.len()]) {
            engine.ingest(&records[from..p], &mut events);
            from = p;
        }
        engine.finish(&mut events);
        prop_assert_eq!(events, reference);
    }
}

/// The record path skips its prefetch stages while few hosts are active: both paths account
/// alike, over attacks and many ordinary hosts (some evicted and reused between them).
#[test]
fn the_record_path_with_and_without_prefetching_gives_the_same_events() {
    let mut records = mixed_records();
    let mut rng = Rng(47);
    for i in 0..60_000u64 {
        let mut r = sample(proto::TCP, 800, 1000);
        r.dst = IpAddr::from([10, 1, (rng.next() % 40) as u8, (rng.next() % 256) as u8]);
        r.src = rng.remote();
        r.time_ms = T0 + (i % 60) * 1000 + i % 997;
        records.push(r);
    }
    let records = by_time(records);
    let run_with = |resident: bool| {
        let mut engine = Engine::new(config()).unwrap();
        engine.force_cache_resident_for_test(resident);
        let mut events = Vec::new();
        for batch in records.chunks(4096) {
            engine.ingest(batch, &mut events);
        }
        engine.finish(&mut events);
        (events, engine.stats().clone())
    };
    let (prefetched, stats) = run_with(false);
    assert!(started(&prefetched).len() >= 5);
    assert!(stats.hosts_tracked > 5_000, "{}", stats.hosts_tracked);
    let (resident, resident_stats) = run_with(true);
    assert_eq!(prefetched, resident);
    assert_eq!(format!("{stats:?}"), format!("{resident_stats:?}"));
}

#[test]
fn hostgroup_totals_report_the_last_complete_bucket() {
    let mut rng = Rng(43);
    let mut records = Vec::new();
    flood(
        &mut records,
        ip("192.0.2.80"),
        false,
        T0,
        2,
        10_000,
        syn(100),
        &mut rng,
    );
    flood(
        &mut records,
        ip("10.0.0.80"),
        true,
        T0,
        2,
        5_000,
        syn(100),
        &mut rng,
    );
    let mut engine = Engine::new(config()).unwrap();
    engine.ingest(&by_time(records), &mut Vec::new());
    engine.tick(T0 + 2_000, &mut Vec::new());
    let rates = engine.hostgroup_rates();
    assert_eq!(rates.len(), 2);
    assert_eq!(
        (rates[0].direction, rates[0].pps),
        (Direction::Incoming, 10_000)
    );
    assert_eq!(
        (rates[1].direction, rates[1].pps),
        (Direction::Outgoing, 5_000)
    );
    assert_eq!(rates[0].flows, 100);
    engine.tick(T0 + 4_000, &mut Vec::new());
    assert!(engine.hostgroup_rates().iter().all(|r| r.pps == 0));
}

#[test]
fn ipv6_carpet_bombing_of_a_48() {
    let mut rng = Rng(45);
    let mut records = Vec::new();
    // 64 hosts spread over a /48, 5 000 pps each = 320 kpps.
    for h in 0..64u32 {
        let host = ip(&format!("2001:db8:7:{h:x}::1"));
        flood(&mut records, host, false, T0, 5, 5_000, syn(100), &mut rng);
    }
    let events = run(config(), &by_time(records));
    assert_lifecycles(&events);
    let s = started(&events);
    assert_eq!(s.len(), 1, "{s:#?}");
    assert_eq!(s[0].target.to_string(), "2001:db8:7::/48");
    assert!(s[0].carpet_bombing);
    assert_eq!(s[0].vectors, vec![Vector::SynFlood]);
}

#[test]
fn watching_is_bounded_but_attacks_are_always_tracked() {
    let mut cfg = config();
    cfg.max_watched = 2;
    let mut rng = Rng(47);
    let mut records = Vec::new();
    for h in 0..6u32 {
        let host = ip(&format!("10.3.0.{h}"));
        flood(
            &mut records,
            host,
            false,
            T0,
            4,
            150_000,
            syn(1000),
            &mut rng,
        );
    }
    let mut engine = Engine::new(cfg).unwrap();
    let mut events = Vec::new();
    engine.ingest(&by_time(records), &mut events);
    assert_eq!(started(&events).len(), 6);
    let stats = engine.stats();
    assert_eq!(stats.attacks_active, 6);
    // Watches without an attack (here the /24 itself) stay within max_watched.
    assert!(
        stats.targets_watched - stats.attacks_active <= 2,
        "{stats:?}"
    );
    engine.finish(&mut events);
    assert_lifecycles(&events);
    assert_eq!(engine.stats().attacks_active, 0);
    assert!(engine.stats().targets_watched <= 2);
}

// ---- Carpet bombing against a per-prefix baseline ----

/// `secs` seconds from `from_s` of traffic to hosts .1 ..= .`hosts` of 198.51.100.0/24, in
/// round robin, at `pps(second)` true packets/s seen through 1:`template.sampling_rate`
/// sampling. Samples are spread evenly in time and their count carries fractions over from
/// second to second, so sparse sampling (below one sample a second) keeps the true average.
fn prefix_traffic(
    records: &mut Vec<FlowRecord>,
    hosts: u32,
    from_s: u64,
    secs: u64,
    pps: impl Fn(u64) -> f64,
    template: FlowRecord,
    rng: &mut common::Rng,
) {
    let mut due = 0.0;
    let mut sent = 0u64;
    for s in from_s..from_s + secs {
        due += pps(s) / f64::from(template.sampling_rate);
        let n = due as u64 - sent;
        for i in 0..n {
            let mut r = template;
            r.time_ms = T0 + s * 1000 + i * 1000 / n;
            r.src = rng.remote();
            r.dst = ip(&format!("198.51.100.{}", 1 + (sent + i) % u64::from(hosts)));
            records.push(r);
        }
        sent += n;
    }
}

fn web(size: u64, rate: u32) -> FlowRecord {
    FlowRecord {
        tcp_flags: tcp_flags::ACK,
        src_port: 443,
        dst_port: 50_000,
        ..sample(proto::TCP, size, rate)
    }
}

const CARPET_PREFIX: &str = "198.51.100.0/24";

/// A busy /24: ordinary traffic to 128 hosts at 100 kpps (half the static carpet limit) for
/// 6 minutes, then growing over 2 minutes to 300 kpps and 2.4 Gbps (1.5 × and 1.2 × the static
/// limits) for 2 minutes more. 1:1000 sampled.
///
/// The static limits apply while the prefix baseline warms up (`baseline.min_history_s`, 300 s),
/// so a prefix above them from its first second would be reported then; real traffic grows into
/// such rates, and the baseline, warmed up below the static limit, follows it.
fn busy_prefix_records() -> Vec<FlowRecord> {
    let mut rng = Rng(51);
    let mut records = Vec::new();
    let ramp = |s: u64| match s {
        0..360 => 100_000.0,
        360..480 => 100_000.0 + 200_000.0 * (s - 360) as f64 / 120.0,
        _ => 300_000.0,
    };
    prefix_traffic(&mut records, 128, 0, 600, ramp, web(1000, 1000), &mut rng);
    records
}

#[test]
fn busy_prefix_above_static_carpet_limits_is_learnt_not_alarmed() {
    let records = busy_prefix_records();
    // Defaults: the learnt normal (≥ 4 × its mean) has raised the prefix's limit above the
    // static one before the traffic reaches it.
    let events = run(config(), &records);
    assert!(events.is_empty(), "{events:#?}");

    // Without the prefix baseline the same traffic is still no carpet: ordinary traffic
    // (answered downloads, or here data from one service port) is never carpet-shaped below
    // the ceilings.
    let mut cfg = config();
    cfg.carpet.baseline = false;
    let events = run(cfg, &records);
    assert!(events.is_empty(), "{events:#?}");

    // The ceilings count unexplained traffic: this ordinary traffic stays below them whatever
    // they are set to.
    let mut cfg = config();
    cfg.carpet.max_pps = 250_000.0;
    assert!(run(cfg, &records).is_empty());
}

/// The ceiling holds whatever the residue looks like, once ordinary traffic does not explain
/// it: data nobody answers, from many remotes on scattered ports (one-way telemetry, or a data
/// carpet), is no carpet on its shape below the ceiling, and is one at it.
#[test]
fn unexplained_residue_at_the_ceiling_is_a_carpet() {
    let records = |pps: f64| {
        let mut rng = Rng(54);
        let mut records = Vec::new();
        for s in 0..20 {
            let n = (pps / 1000.0) as u64;
            for i in 0..n {
                let mut r = FlowRecord {
                    tcp_flags: tcp_flags::ACK,
                    src_port: 1024 + (rng.next() % 60_000) as u16,
                    dst_port: 1024 + (rng.next() % 60_000) as u16,
                    ..sample(proto::TCP, 1000, 1000)
                };
                r.time_ms = T0 + s * 1000 + i * 1000 / n;
                r.src = rng.remote();
                r.dst = ip(&format!("198.51.100.{}", 1 + i % 128));
                records.push(r);
            }
        }
        records
    };
    let mut cfg = config();
    cfg.carpet.max_pps = 250_000.0;
    assert!(run(cfg.clone(), &records(150_000.0)).is_empty());
    let events = run(cfg, &records(400_000.0));
    assert_lifecycles(&events);
    let s = started(&events);
    assert_eq!(s.len(), 1, "{s:#?}");
    assert!(s[0].carpet_bombing);
    assert_eq!(
        (s[0].trigger.kind, s[0].trigger.metric, s[0].trigger.limit),
        (TriggerKind::CarpetBombing, Metric::Pps, 250_000.0)
    );
    assert_eq!(s[0].vectors, [Vector::AckFlood]);
}

/// A quiet /24: 5 kpps of ordinary traffic to 64 hosts for 320 s (past the 300 s warm-up), a
/// surge to 50 kpps (160 Mbps) of UDP over the same hosts (10 ×, ~780 pps per host, a quarter
/// of the static carpet limit) for 20 s from T0 + 320 s, then 60 s of ordinary traffic again.
fn surge_records(rate: u32) -> Vec<FlowRecord> {
    let mut rng = Rng(53);
    let mut records = Vec::new();
    prefix_traffic(
        &mut records,
        64,
        0,
        320,
        |_| 5_000.0,
        web(800, rate),
        &mut rng,
    );
    prefix_traffic(
        &mut records,
        64,
        320,
        20,
        |_| 50_000.0,
        udp(40_000, 400, rate),
        &mut rng,
    );
    prefix_traffic(
        &mut records,
        64,
        340,
        60,
        |_| 5_000.0,
        web(800, rate),
        &mut rng,
    );
    records
}

#[test]
fn surge_on_a_quiet_prefix_is_one_carpet_attack_below_static_limits() {
    let events = run(config(), &surge_records(100));
    assert_lifecycles(&events);
    let s = started(&events);
    // One prefix attack, no host attack: each host stays far below its own floors.
    assert_eq!(s.len(), 1, "{events:#?}");
    let e = s[0];
    assert_eq!(e.target.to_string(), CARPET_PREFIX);
    assert!(e.carpet_bombing);
    assert_eq!(
        (e.trigger.kind, e.trigger.metric),
        (TriggerKind::Baseline, Metric::Pps)
    );
    // The learnt level: 4 × the 5 kpps normal, raised to the 20 kpps floor; below 200 kpps.
    assert_eq!(e.trigger.limit, 20_000.0);
    assert!((e.trigger.value - 50_000.0).abs() < 1_000.0, "{e:?}");
    // Reported at the close of the surge's first bucket, with its vector.
    assert_eq!(e.started_at, T0 + 320_000);
    assert_eq!(e.ts, T0 + 321_000);
    assert_eq!(e.vectors, vec![Vector::UdpFlood]);
    assert!(events.iter().all(|e| e.carpet_bombing));
    // Ends after the quiet period: the last hot bucket ends at T0 + 340 s, the ordinary 5 kpps
    // is below the end level (half the 20 kpps limit).
    let end = events.last().unwrap();
    assert_eq!(end.event, EventKind::AttackEnded);
    assert_eq!(end.ended_at, Some(T0 + 340_000));
    assert_eq!(end.ts, T0 + 350_000);
}

#[test]
fn heavily_sampled_surge_with_too_few_samples_raises_nothing() {
    // The same traffic at 1:16384: one sample stands for 16384 packets, the ordinary 5 kpps is
    // a sample every ~3 s and the surge ~3 samples a second.
    let records = surge_records(16384);
    // Defaults: a bucket shows at most 4 hosts, too few (`min_hosts` 16) to be a carpet.
    assert!(run(config(), &records).is_empty());

    // With the spread rule relaxed, the evidence rule alone holds: judged per bucket, 3-4
    // samples are fewer than `min_samples` (5), however far 49 kpps is above the learnt level.
    let mut cfg = config();
    cfg.carpet.min_hosts = 2;
    cfg.evidence_window_s = 1;
    let events = run(cfg.clone(), &records);
    assert!(events.is_empty(), "{events:#?}");

    // Accepting 3 samples as evidence is not enough either: 3 samples at ~2.5 × the learnt level
    // are well within the Poisson spread of a rate at the level (`significantly_above`).
    cfg.min_samples = 3;
    let events = run(cfg.clone(), &records);
    assert!(events.is_empty(), "{events:#?}");

    // ... while the same surge seen through 1:1000 sampling (~50 samples a second) is reported,
    // once: sampling, not the rules, is what held it back.
    let events = run(cfg, &surge_records(1000));
    assert_lifecycles(&events);
    let s = started(&events);
    assert_eq!(s.len(), 1, "{events:#?}");
    assert_eq!(s[0].target.to_string(), CARPET_PREFIX);
    assert!(s[0].carpet_bombing);
    assert_eq!(s[0].trigger.kind, TriggerKind::Baseline);
    assert!((T0 + 320_000..T0 + 340_000).contains(&s[0].started_at));
}

#[test]
fn carpet_baseline_replays_identically() {
    let records = surge_records(100);
    let reference = run(config(), &records);
    assert_eq!(started(&reference).len(), 1);
    assert_eq!(run(config(), &records), reference);
    // In uneven batches, with a tick in between, as a live collector delivers them.
    let mut engine = Engine::new(config()).unwrap();
    let mut events = Vec::new();
    for chunk in records.chunks(997) {
        engine.ingest(chunk, &mut events);
        engine.tick(chunk.last().unwrap().time_ms, &mut events);
    }
    engine.finish(&mut events);
    assert_eq!(events, reference);
}

#[test]
fn hostgroup_carpet_overrides_reach_the_prefix_baseline() {
    use floodwall_detect::config::{CarpetThresholds, Hostgroup};
    let records = surge_records(100);
    let with = |carpet: CarpetThresholds| {
        let mut cfg = config();
        cfg.hostgroups.push(Hostgroup {
            name: "quiet".into(),
            networks: vec![CARPET_PREFIX.parse().unwrap()],
            carpet: Some(carpet),
            ..Hostgroup::default()
        });
        run(cfg, &records)
    };
    // A floor above the 50 kpps surge (its 160 Mbps are below the 200 Mbps floor), or no prefix
    // baseline (static limits only): nothing.
    let events = with(CarpetThresholds {
        baseline_min_pps: Some(60_000.0),
        ..CarpetThresholds::default()
    });
    assert!(events.is_empty(), "{events:#?}");
    let events = with(CarpetThresholds {
        baseline: Some(false),
        ..CarpetThresholds::default()
    });
    assert!(events.is_empty(), "{events:#?}");
    let events = with(CarpetThresholds::default());
    assert_eq!(started(&events).len(), 1);
    assert_eq!(events[0].hostgroup, "quiet");
}

#[test]
fn a_long_carpet_attack_is_not_learnt_as_normal() {
    // The quiet /24 of `surge_records`, hit for 200 s, quiet for 80 s, hit again for 20 s.
    let mut rng = Rng(55);
    let mut records = Vec::new();
    let normal = |r: &mut Vec<FlowRecord>, from, secs, rng: &mut common::Rng| {
        prefix_traffic(r, 64, from, secs, |_| 5_000.0, web(800, 100), rng)
    };
    let surge = |r: &mut Vec<FlowRecord>, from, secs, rng: &mut common::Rng| {
        prefix_traffic(r, 64, from, secs, |_| 50_000.0, udp(40_000, 400, 100), rng)
    };
    normal(&mut records, 0, 320, &mut rng);
    surge(&mut records, 320, 200, &mut rng);
    normal(&mut records, 520, 80, &mut rng);
    surge(&mut records, 600, 20, &mut rng);
    normal(&mut records, 620, 40, &mut rng);
    let events = run(config(), &records);
    assert_lifecycles(&events);
    // Had the first attack's buckets been learnt, its 50 kpps would have lifted the prefix's
    // level (≥ 4 × the mean) above the second one.
    let s = started(&events);
    let starts: Vec<(u64, f64)> = s.iter().map(|e| (e.started_at, e.trigger.limit)).collect();
    assert_eq!(
        starts,
        [(T0 + 320_000, 20_000.0), (T0 + 600_000, 20_000.0)],
        "{events:#?}"
    );
    assert!(s.iter().all(|e| e.carpet_bombing));
}

/// Draws a Poisson count (inversion; fine for small means).
fn poisson(rng: &mut common::Rng, mean: f64) -> u64 {
    let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
    let (mut k, mut p) = (0u64, (-mean).exp());
    let mut cdf = p;
    while u > cdf && k < 1000 {
        k += 1;
        p *= mean / k as f64;
        cdf += p;
    }
    k
}

/// Ordinary subscribers: `hosts` hosts of `net`.0/24, each getting Poisson(`mean`) 800-byte
/// web samples (1:1000) every second, from second `from` for `secs` seconds.
fn quiet_subscribers(
    records: &mut Vec<FlowRecord>,
    net: &str,
    hosts: u32,
    (from, secs): (u64, u64),
    mean: f64,
    rng: &mut common::Rng,
) {
    subscribers_sending(records, net, hosts, (from, secs), mean, web(800, 1000), rng);
}

/// [`quiet_subscribers`] with another `template`.
fn subscribers_sending(
    records: &mut Vec<FlowRecord>,
    net: &str,
    hosts: u32,
    (from, secs): (u64, u64),
    mean: f64,
    template: FlowRecord,
    rng: &mut common::Rng,
) {
    for s in from..from + secs {
        for h in 0..hosts {
            for i in 0..poisson(rng, mean) {
                let mut r = template;
                r.time_ms = T0 + s * 1000 + (u64::from(h) * 7 + i * 131) % 1000;
                r.src = rng.remote();
                r.dst = ip(&format!("{net}.{}", 1 + h));
                records.push(r);
            }
        }
    }
}

#[test]
fn quiet_hosts_do_not_alarm_on_sampling_noise() {
    // 400 subscribers averaging 1.5 samples a second at 1:1000 (1.5 kpps each). A host's baseline
    // floor (5,000 pps) is five samples: Poisson noise crosses it every minute or so per host.
    // Judged by samples against that noise, none of these 400 × 700 host-seconds is an attack.
    let mut rng = Rng(61);
    let mut records = Vec::new();
    for n in 0..4 {
        quiet_subscribers(
            &mut records,
            &format!("10.1.{n}"),
            100,
            (0, 700),
            1.5,
            &mut rng,
        );
    }
    let records = by_time(records);
    let events = run(config(), &records);
    assert!(
        events.is_empty(),
        "{} events: {:#?}",
        events.len(),
        &events[..events.len().min(3)]
    );

    // The same hosts under a real surge past warm-up (a UDP flood of 15 kpps, 10 × their
    // normal, below the 20 kpps static limit; 30 samples a second at 1:500) are each reported,
    // by their baselines.
    let mut surge = Vec::new();
    let flood = udp(40_000, 540, 500);
    subscribers_sending(&mut surge, "10.1.0", 10, (600, 20), 30.0, flood, &mut rng);
    let events = run(config(), &by_time([records, surge].concat()));
    let s = started(&events);
    assert_eq!(s.len(), 10, "{events:#?}");
    assert!(s
        .iter()
        .all(|e| e.trigger.kind == TriggerKind::Baseline && !e.carpet_bombing));
}

#[test]
fn a_download_or_two_among_quiet_subscribers_is_not_a_carpet() {
    // 40 subscribers of a /24 averaging one 800-byte sample a second (~256 Mbps together), then
    // two of them download at ~450 Mbps each (1500-byte packets, below the host limits): the
    // /24's residue passes its learnt level (4 × its mean) but two hosts carry it, not many.
    let mut rng = Rng(62);
    let mut records = Vec::new();
    quiet_subscribers(&mut records, "10.2.0", 40, (0, 700), 1.0, &mut rng);
    let mut downloads = Vec::new();
    for s in 500..560 {
        for (host, server) in [("10.2.0.3", "203.0.113.80"), ("10.2.0.7", "203.0.113.81")] {
            for i in 0..38 {
                let mut r = web(1500, 1000);
                r.time_ms = T0 + s * 1000 + i * 26;
                r.src = ip(server);
                r.dst = ip(host);
                downloads.push(r);
            }
        }
    }
    let base = records.clone();
    let events = run(config(), &by_time([records, downloads].concat()));
    // No carpet. (Each downloader's own baseline sees a 40-fold surge and may report it: a host
    // matter, see NOTES.md.)
    assert!(events.iter().all(|e| !e.carpet_bombing), "{events:#?}");
    assert!(
        events
            .iter()
            .all(|e| ["10.2.0.3/32", "10.2.0.7/32"].contains(&e.target.to_string().as_str())),
        "{events:#?}"
    );

    // A surge spread over the same 40 hosts (~1.7 Gbps, each far below its limits) is a carpet.
    let mut carpet = Vec::new();
    for s in 500..530 {
        for h in 0..40u64 {
            for i in 0..10 {
                let mut r = udp(40_000, 540, 1000);
                r.time_ms = T0 + s * 1000 + h * 20 + i;
                r.src = rng.remote();
                r.dst = ip(&format!("10.2.0.{}", 1 + h));
                carpet.push(r);
            }
        }
    }
    let events = run(config(), &by_time([base, carpet].concat()));
    let s = started(&events);
    assert_eq!(s.len(), 1, "{events:#?}");
    assert!(s[0].carpet_bombing);
    assert_eq!(s[0].target.to_string(), "10.2.0.0/24");
}

#[test]
fn a_flood_far_over_a_static_limit_is_reported_at_the_record_that_crossed() {
    // 1 Mpps (10 × the 100 kpps limit) from 400 ms into a second: the open bucket crosses the
    // limit after ~100 ms of it, and the attack is reported then, not at the bucket's close.
    let mut rng = Rng(71);
    let mut records = Vec::new();
    let host = ip("192.0.2.77");
    flood(
        &mut records,
        host,
        false,
        T0 + 400,
        3,
        1_000_000,
        udp(40_000, 540, 1000),
        &mut rng,
    );
    let events = run(config(), &records);
    assert_lifecycles(&events);
    let s = started(&events);
    assert_eq!(s.len(), 1, "{events:#?}");
    assert!(
        (T0 + 400..=T0 + 520).contains(&s[0].ts),
        "reported {} ms after the flood began",
        s[0].ts as i64 - (T0 + 400) as i64
    );
    // Same id and start as a report at the close would have had; vectors from the partial bucket.
    assert_eq!(s[0].started_at, T0);
    assert_eq!(s[0].vectors, [Vector::UdpFlood]);
    // ... and at 3 × the 20 kpps limit it crosses once the count is above it by more than
    // sampling noise: 36 samples after 0.6 s of the flood, not at the 20th.
    let mut records = Vec::new();
    flood(
        &mut records,
        host,
        false,
        T0 + 100,
        3,
        60_000,
        udp(40_000, 540, 1000),
        &mut rng,
    );
    let events = run(config(), &records);
    let s = started(&events);
    assert_eq!(s.len(), 1, "{events:#?}");
    assert!((T0 + 600..=T0 + 800).contains(&s[0].ts), "{}", s[0].ts - T0);
}

/// A restart resumes the learnt baselines: a surge on a quiet host 20 s after the restart is
/// found by its baseline, which a fresh engine would still be learning for minutes.
#[test]
fn baselines_survive_a_restart() {
    let mut records = Vec::new();
    steady(&mut records, "192.0.2.41", 0, 400, 2_000);
    let mut before = Engine::new(config()).unwrap();
    let mut events = Vec::new();
    before.ingest(&records, &mut events);
    assert!(events.is_empty(), "{events:#?}");
    let saved = before.baselines();
    assert_eq!((saved.hosts.len(), saved.prefixes.len()), (1, 1));
    assert!(saved.hosts[0].1[0].history >= 399, "{saved:?}");

    // After the restart: the host's ordinary traffic again, and 20 s in a 16 kpps UDP flood
    // (below the 20 kpps static limit).
    let restart = 1_000;
    let mut after = Vec::new();
    steady(&mut after, "192.0.2.41", restart, 60, 2_000);
    let mut rng = Rng(5);
    flood(
        &mut after,
        ip("192.0.2.41"),
        false,
        T0 + (restart + 20) * 1000,
        20,
        16_000,
        udp(40_000, 540, 100),
        &mut rng,
    );
    let after = by_time(after);
    let mut resumed = Engine::new(config()).unwrap();
    // The host and its /24 (its carpet residue baseline).
    assert_eq!(resumed.restore_baselines(&saved), (1, 1));
    let mut events = Vec::new();
    resumed.ingest(&after, &mut events);
    resumed.finish(&mut events);
    let s = started(&events);
    assert_eq!(s.len(), 1, "{events:#?}");
    assert_eq!(s[0].trigger.kind, TriggerKind::Baseline);
    assert_eq!(s[0].started_at, T0 + (restart + 20) * 1000);
    // A fresh engine has nothing to compare with yet.
    assert!(run(config(), &after).is_empty());

    // Saved state for addresses no longer monitored, or invalid, is skipped.
    let mut edited = saved.clone();
    edited.hosts.push((ip("203.0.113.9"), saved.hosts[0].1));
    edited.hosts[0].1[0].mean_pps = f32::NAN;
    let mut other = Engine::new(config()).unwrap();
    // The host's only baseline (incoming) is invalid now: it learns again.
    assert_eq!(other.restore_baselines(&edited), (0, 1));
    assert!(other.baselines().hosts.is_empty());
}

/// One second of a hosting /24's ordinary incoming traffic: every one of `hosts` hosts gets
/// `pps` packets/s (1:`rate`) from thousands of clients — data (ACK and PSH-ACK, 200–1500 B) to
/// its web ports, bare ACKs, some SYNs, QUIC, DNS — and, when `answered`, sends its replies.
fn hosting_second(
    out: &mut Vec<FlowRecord>,
    net: &str,
    (hosts, pps, rate): (u32, f64, u32),
    s: u64,
    answered: bool,
    rng: &mut common::Rng,
) {
    let per_host = pps / f64::from(rate);
    for h in 0..hosts {
        let host = ip(&format!("{net}.{}", 1 + h));
        for i in 0..poisson(rng, per_host) {
            let roll = rng.next() % 100;
            let size = 200 + rng.next() % 1300;
            let mut r = match roll {
                0..70 => FlowRecord {
                    tcp_flags: if roll < 40 {
                        tcp_flags::ACK
                    } else {
                        tcp_flags::ACK | tcp_flags::PSH
                    },
                    dst_port: if roll.is_multiple_of(3) { 80 } else { 443 },
                    ..sample(proto::TCP, size, rate)
                },
                70..82 => FlowRecord {
                    tcp_flags: tcp_flags::ACK,
                    dst_port: 443,
                    ..sample(proto::TCP, 52, rate)
                },
                82..84 => FlowRecord {
                    dst_port: 443,
                    ..syn(rate)
                },
                84..96 => FlowRecord {
                    dst_port: 443,
                    ..udp(40_000, 1200, rate)
                },
                _ => FlowRecord {
                    dst_port: 53,
                    ..udp(40_000, 80, rate)
                },
            };
            r.src_port = 1024 + (rng.next() % 60_000) as u16;
            r.time_ms = T0 + s * 1000 + (u64::from(h) * 13 + i * 97) % 1000;
            r.src = IpAddr::V4(std::net::Ipv4Addr::from(
                0x2000_0000 | (rng.next() as u32 % 3000),
            ));
            r.dst = host;
            if answered && rng.next() % 10 < 9 {
                let mut reply = r;
                (reply.src, reply.dst) = (r.dst, r.src);
                (reply.src_port, reply.dst_port) = (r.dst_port, r.src_port);
                if r.protocol == proto::TCP {
                    reply.tcp_flags = tcp_flags::ACK;
                    (reply.bytes, reply.packet_len) = (1500 * u64::from(rate), 1500);
                }
                out.push(reply);
            }
            out.push(r);
        }
    }
}

/// Fault 1 of the detection issue: two busy, steady /24s of a hosting network (~750 kpps and
/// ~5 Gbps each, far above the static carpet limits) from the engine's first second, whether
/// or not the servers' replies are exported, raise nothing.
#[test]
fn busy_steady_prefixes_are_no_carpet_from_the_first_second() {
    for answered in [true, false] {
        let mut rng = common::Rng(71);
        let mut records = Vec::new();
        for s in 0..90 {
            for net in ["198.51.100", "192.0.2"] {
                hosting_second(
                    &mut records,
                    net,
                    (254, 3_000.0, 1024),
                    s,
                    answered,
                    &mut rng,
                );
            }
        }
        let events = run(config(), &by_time(records));
        assert!(events.is_empty(), "answered {answered}: {events:#?}");
    }
}

/// Fault 3: a 40 kpps SYN flood from thousands of sources at a host that had no traffic
/// before, with no answering traffic, is reported with the default configuration — unsampled
/// (as real exporters send it) and at 1:1024, inside a busy hosting /24.
#[test]
fn a_40_kpps_syn_flood_at_a_fresh_host_is_reported() {
    for rate in [1, 1024] {
        let mut rng = common::Rng(72);
        let mut records = Vec::new();
        for s in 0..40 {
            hosting_second(
                &mut records,
                "198.51.100",
                (200, 3_000.0, 1024),
                s,
                true,
                &mut rng,
            );
        }
        flood(
            &mut records,
            ip("198.51.100.251"),
            false,
            T0 + 20_000,
            15,
            40_000,
            FlowRecord {
                dst_port: 80,
                ..syn(rate)
            },
            &mut rng,
        );
        let events = run(config(), &by_time(records));
        assert_lifecycles(&events);
        let s = started(&events);
        assert_eq!(s.len(), 1, "1:{rate}: {events:#?}");
        assert_eq!(s[0].host(), Some(ip("198.51.100.251")));
        assert_eq!(s[0].vectors, [Vector::SynFlood]);
        assert_eq!(s[0].started_at, T0 + 20_000, "1:{rate}");
        assert_eq!(s[0].trigger.metric, Metric::SynPps);
    }
}

/// Fault 4: a web server answering a flash crowd sends hundreds of Mbps of PSH-ACK data to
/// thousands of clients, which acknowledge it: ordinary data, no attack in either direction.
/// A bare-ACK flood (header-sized ACKs nobody answers) at the same rate is an `ack_flood`.
#[test]
fn a_flash_crowd_is_data_and_a_bare_ack_flood_is_an_ack_flood() {
    let server = ip("198.51.100.10");
    let mut rng = common::Rng(73);
    let mut records = Vec::new();
    for s in 0..30u64 {
        let clients = 200 + 40 * s; // the crowd grows
        for i in 0..clients {
            let client = IpAddr::V4(std::net::Ipv4Addr::from(
                0x3000_0000 | (rng.next() as u32 % 150_000),
            ));
            let port = 1024 + (rng.next() % 60_000) as u16;
            let t = T0 + s * 1000 + i * 1000 / clients;
            // Out: 28 data segments of 1500 B; in: the request and 14 ACKs (1:100 sampled).
            for k in 0..3 {
                records.push(FlowRecord {
                    time_ms: t + k,
                    src: server,
                    dst: client,
                    src_port: 443,
                    dst_port: port,
                    tcp_flags: tcp_flags::ACK | tcp_flags::PSH,
                    ..sample(proto::TCP, 1500, 100)
                });
            }
            if i % 2 == 0 {
                records.push(FlowRecord {
                    time_ms: t + 3,
                    src: client,
                    dst: server,
                    src_port: port,
                    dst_port: 443,
                    tcp_flags: tcp_flags::ACK,
                    ..sample(proto::TCP, 52, 100)
                });
            }
        }
    }
    let events = run(config(), &by_time(records.clone()));
    assert!(events.is_empty(), "{events:#?}");

    let mut flood_records = Vec::new();
    flood(
        &mut flood_records,
        ip("198.51.100.11"),
        false,
        T0 + 5_000,
        10,
        300_000,
        FlowRecord {
            tcp_flags: tcp_flags::ACK,
            ..sample(proto::TCP, 52, 1000)
        },
        &mut rng,
    );
    let events = run(config(), &by_time([records, flood_records].concat()));
    let s = started(&events);
    assert_eq!(s.len(), 1, "{events:#?}");
    assert_eq!(s[0].host(), Some(ip("198.51.100.11")));
    assert_eq!(s[0].vectors, [Vector::AckFlood]);
}

/// Records of `n` datagrams over one second, `per` samples each, numbered from `first`.
fn datagrams(
    host: IpAddr,
    start_ms: u64,
    first: u32,
    n: u32,
    per: u32,
    template: FlowRecord,
) -> Vec<FlowRecord> {
    let mut rng = Rng(first.into());
    let mut out = Vec::new();
    for d in 0..n {
        for _ in 0..per {
            let mut r = template;
            r.dst = host;
            r.src = rng.remote();
            r.src_port = 1024 + (rng.next() % 60_000) as u16;
            r.time_ms = start_ms + u64::from(d) * 1000 / u64::from(n);
            r.datagram = first + d;
            out.push(r);
        }
    }
    out
}

#[test]
fn one_forged_datagram_never_confirms_an_attack() {
    // Forty samples in one datagram at 1:65536: "2.6 Mpps" of UDP at a host that had nothing.
    let host = ip("192.0.2.66");
    let mut records = datagrams(host, T0 + 200, 7, 1, 40, udp(40_000, 1400, 65_536));
    // Real, quiet traffic from the exporter goes on around it.
    records.extend(datagrams(ip("192.0.2.10"), T0, 1, 20, 1, udp(443, 200, 1)));
    records.extend(datagrams(
        ip("192.0.2.10"),
        T0 + 1000,
        100,
        20,
        1,
        udp(443, 200, 1),
    ));
    let events = run(config(), &by_time(records));
    let attack: Vec<_> = events.iter().filter(|e| e.target.addr() == host).collect();
    assert!(!attack.is_empty(), "the forged rate is over every limit");
    for e in &attack {
        assert_eq!(e.evidence.datagrams, 1, "{:?}", e.evidence);
        assert!(!e.evidence.confirms(), "{:?}", e.evidence);
    }
}

#[test]
fn a_real_flood_confirms_within_its_first_second_and_says_so() {
    // 40 kpps of UDP at 1:1024, eight samples a datagram: ~5 datagrams a second.
    let host = ip("192.0.2.67");
    let mut records = Vec::new();
    for s in 0..4 {
        records.extend(datagrams(
            host,
            T0 + s * 1000,
            1 + 10 * s as u32,
            5,
            8,
            udp(40_000, 1400, 1024),
        ));
    }
    let events = run(config(), &by_time(records));
    let first = events
        .iter()
        .find(|e| e.target.addr() == host)
        .expect("an attack");
    let confirmed = events
        .iter()
        .find(|e| e.target.addr() == host && e.evidence.confirms())
        .expect("the flood is confirmed");
    assert!(
        confirmed.ts <= first.ts + 1000,
        "{} vs {}",
        confirmed.ts,
        first.ts
    );
    assert!(confirmed.evidence.datagrams >= 2 && confirmed.evidence.instants >= 3);
    assert!(confirmed.evidence.largest_datagram_share <= 0.5);
}

/// A busy network's hosts a few samples a second over their watch level (0.3 × the 10 kpps
/// SYN/ICMP limits = 3,000 pps; here ~3,400 pps at 1:1024, 3.4 samples a second) are there
/// by sampling noise as much as by traffic: watching them all (a detail of kilobytes and
/// several cache lines per record each) would buy nothing. They are watched only now and then,
/// and let go again; a host well over its level is watched and stays watched.
#[test]
fn hosts_within_sampling_noise_of_their_watch_level_are_seldom_watched() {
    let ack = |rng: &mut common::Rng, host: IpAddr, t: u64| FlowRecord {
        tcp_flags: tcp_flags::ACK,
        time_ms: t,
        src: rng.remote(),
        dst: host,
        ..sample(proto::TCP, 800, 1024)
    };
    let watched = |records: Vec<FlowRecord>| {
        let mut engine = Engine::new(config()).unwrap();
        let mut events = Vec::new();
        engine.ingest(&by_time(records), &mut events);
        assert!(events.is_empty(), "{events:#?}");
        engine.stats()
    };
    let mut rng = Rng(53);
    let thin = 200u64;
    let mut records = Vec::new();
    for s in 0..60u64 {
        for h in 0..thin {
            // One /24 each, so no prefix comes near its own levels. Binomial(34, 0.1) samples:
            // over the level (3 or more) in two seconds of three.
            let host = ip(&format!("10.4.{h}.1"));
            let n = (0..34).filter(|_| rng.next().is_multiple_of(10)).count() as u64;
            for i in 0..n {
                let t = T0 + s * 1000 + (h * 7 + i * 1000 / n) % 1000;
                records.push(ack(&mut rng, host, t));
            }
        }
    }
    let stats = watched(records);
    assert_eq!(stats.hosts_tracked, thin);
    // A watch covers both directions of its host. About one host in four is watched at a given
    // moment (started by a rare bucket far enough over, let go after `quiet_period_s` without
    // one); watching on every crossing kept all of them.
    assert!(stats.targets_watched <= thin, "{stats:?}");

    // 12 kpps of ACKs: four times the watch level, below every limit.
    let mut records = Vec::new();
    for s in 0..60u64 {
        for i in 0..12u64 {
            records.push(ack(&mut rng, ip("10.5.0.1"), T0 + s * 1000 + i * 83));
        }
    }
    let stats = watched(records);
    assert_eq!(stats.targets_watched, 2, "{stats:?}");
}

/// A flood is watched from its first samples, not once its count for the whole second is over
/// the watch level: the evidence its early start reports (and a rule waits for) is all it sent
/// but the first sample, whatever part of the second that took.
#[test]
fn a_flood_is_watched_from_its_first_samples() {
    let events = run(config(), &syn_flood_150k());
    let start = &events[0];
    assert_eq!(start.event, EventKind::AttackStarted);
    let sent = (start.ts - T0) * 150 / 1000 + 1;
    assert!(
        start.evidence.samples + 1 >= sent,
        "{} of {sent} samples",
        start.evidence.samples
    );
}
