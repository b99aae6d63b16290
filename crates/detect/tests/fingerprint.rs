//! Fingerprint sketches: accuracy, bounded memory, determinism and the snapshot's invariants.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use floodwall_detect::fingerprint::{Fingerprint, FingerprintBuilder};
use floodwall_detect::Vector;
use floodwall_wire::{proto, tcp_flags, FlowRecord};
use proptest::prelude::*;

const VICTIM: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const EXPORTER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 255, 0, 1));

fn rec(src: IpAddr, protocol: u8, src_port: u16, dst_port: u16, packets: u64) -> FlowRecord {
    FlowRecord {
        src,
        dst: VICTIM,
        protocol,
        src_port,
        dst_port,
        packets,
        bytes: packets * 60,
        ..FlowRecord::empty(EXPORTER)
    }
}

/// Deterministic pseudo-random numbers (xorshift64*), so tests never flake.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn v4(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(i))
}

fn within(estimate: f64, truth: f64, tolerance: f64) -> bool {
    (estimate - truth).abs() <= tolerance * truth
}

#[test]
fn distinct_remotes_within_5_percent() {
    for (n, v6) in [
        (1u64, false),
        (100, false),
        (10_000, false),
        (10_000, true),
        (1_000_000, false),
        (1_000_000, true),
    ] {
        let mut fp = FingerprintBuilder::new();
        // Sequential addresses, each seen twice: the hash must spread them, duplicates must not count.
        for round in 0..2 {
            for i in 0..n {
                let a = if v6 {
                    IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i) << 64))
                } else {
                    v4(0x0a00_0000 + i as u32)
                };
                if round == 0 || i % 7 == 0 {
                    fp.observe(&rec(a, proto::UDP, 53, 4444, 1), a);
                }
            }
        }
        let est = fp.distinct_remotes();
        eprintln!(
            "distinct n={n} v6={v6}: estimate {est} ({:+.2}%)",
            (est as f64 / n as f64 - 1.0) * 100.0
        );
        assert!(within(est as f64, n as f64, 0.05), "n={n}: {est}");
        assert_eq!(fp.snapshot().sources_estimate, est);
    }
    assert_eq!(FingerprintBuilder::new().distinct_remotes(), 0);
}

#[test]
fn heavy_sources_found_under_a_million_source_flood() {
    let heavy = [v4(0xc633_6401), v4(0xc633_6402), v4(0xc633_6403)];
    // 100-packet records: 300k, 200k, 100k packets, among 1M one-packet sources.
    let mut left = [3000u32, 2000, 1000];
    let mut rng = Rng(42);
    let mut fp = FingerprintBuilder::new();
    let mut light = 0u32;
    while light < 1_000_000 || left.iter().any(|&l| l > 0) {
        let r = rng.next() % 1000;
        let h = match r {
            0..=2 => 0,
            3..=4 => 1,
            5 => 2,
            _ => 3,
        };
        if h < 3 && left[h] > 0 {
            left[h] -= 1;
            fp.observe(&rec(heavy[h], proto::UDP, 123, 80, 100), heavy[h]);
        } else if light < 1_000_000 {
            let a = v4(0x0100_0000 + (rng.next() as u32 & 0x3fff_ffff));
            light += 1;
            fp.observe(&rec(a, proto::UDP, 123, 80, 1), a);
        }
    }
    let snap = fp.snapshot();
    let total = 1_600_000.0;
    assert_eq!(snap.packets, 1_600_000);
    for (i, (addr, packets)) in heavy
        .iter()
        .zip([300_000.0, 200_000.0, 100_000.0])
        .enumerate()
    {
        let top = &snap.top_sources[i];
        eprintln!(
            "heavy {addr}: share {:.4} (true {:.4}), packets {}",
            top.share,
            packets / total,
            top.packets
        );
        assert_eq!(top.value, *addr);
        assert!(within(top.share, packets / total, 0.05), "{top:?}");
        // Past the first records the sketches are fed a decimated stream: estimates, not bounds.
        assert!(within(top.packets as f64, packets, 0.05), "{top:?}");
    }
    assert!(snap.top_sources.len() <= 10);
    assert!(snap.top_sources[3..].iter().all(|s| s.share < 0.001));
    assert!(within(snap.sources_estimate as f64, 1_000_000.0, 0.05));
}

#[test]
fn amplification_counts_exact() {
    let mut fp = FingerprintBuilder::new();
    let mut expect = [0u64; 8];
    let mut rng = Rng(7);
    for i in 0..20_000u32 {
        let (port, _) = Vector::AMPLIFICATION[(rng.next() % 8) as usize];
        let packets = 1 + rng.next() % 4096;
        let src = v4(0x0a00_0000 + i);
        match rng.next() % 4 {
            // Only UDP from the reflector port counts.
            0 => fp.observe(&rec(src, proto::TCP, port, 80, packets), src),
            1 => fp.observe(&rec(src, proto::UDP, 40_000, port, packets), src),
            _ => {
                let idx = Vector::AMPLIFICATION.iter().position(|(p, _)| *p == port);
                expect[idx.unwrap()] += packets;
                fp.observe(&rec(src, proto::UDP, port, 80, packets), src);
            }
        }
    }
    assert_eq!(fp.amplification_packets(), expect);
    assert!(expect.iter().all(|&e| e > 0));
}

#[test]
fn histograms_sum_to_one_when_present_and_are_absent_otherwise() {
    let mut fp = FingerprintBuilder::new();
    let a = v4(1);
    fp.observe(&rec(a, proto::UDP, 1, 2, 10), a);
    let snap = fp.snapshot();
    assert_eq!(snap.packet_sizes, None);
    assert_eq!(snap.ttls, None);
    let json = serde_json::to_value(&snap).unwrap();
    assert!(json.get("packet_sizes").is_none() && json.get("ttls").is_none());

    // Boundaries are inclusive upper bounds.
    for (len, ttl, packets) in [
        (64, 32, 1),
        (65, 33, 2),
        (1500, 64, 4),
        (1501, 128, 8),
        (65535, 255, 16),
    ] {
        let r = FlowRecord {
            packet_len: len,
            ttl,
            ..rec(a, proto::UDP, 1, 2, packets)
        };
        fp.observe(&r, a);
    }
    let snap = fp.snapshot();
    let sizes = snap.packet_sizes.unwrap();
    let ttls = snap.ttls.unwrap();
    assert_eq!(sizes.upper_bounds, [64, 128, 256, 512, 1024, 1500, 65535]);
    assert_eq!(ttls.upper_bounds, [32, 64, 128, 255]);
    let d = 31.0;
    assert_eq!(
        sizes.shares,
        [1.0 / d, 2.0 / d, 0.0, 0.0, 0.0, 4.0 / d, 24.0 / d]
    );
    assert_eq!(ttls.shares, [1.0 / d, 6.0 / d, 8.0 / d, 16.0 / d]);
    for h in [&sizes, &ttls] {
        assert!((h.shares.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
}

#[test]
fn protocol_mix_fragments_flags_and_exporters() {
    let mut fp = FingerprintBuilder::new();
    let a = v4(5);
    let syn = FlowRecord {
        tcp_flags: tcp_flags::SYN,
        ..rec(a, proto::TCP, 1234, 80, 60)
    };
    let ack = FlowRecord {
        tcp_flags: tcp_flags::ACK,
        ..rec(a, proto::TCP, 1234, 443, 20)
    };
    let frag = FlowRecord {
        fragment: true,
        ..rec(a, proto::UDP, 0, 0, 10)
    };
    fp.observe(&syn, a);
    fp.observe(&ack, a);
    fp.observe(&frag, a);
    fp.observe(&rec(a, proto::ICMP, 0, 0x0800, 4), a);
    fp.observe(&rec(a, proto::ICMPV6, 0, 0x8000, 2), a);
    fp.observe(&rec(a, proto::GRE, 0, 0, 3), a);
    fp.observe(&rec(a, 132, 0, 0, 1), a);
    let s = fp.snapshot();
    assert_eq!(s.packets, 100);
    assert_eq!(fp.remote_packets_total(), 100);
    assert_eq!(s.bytes, 6000);
    assert_eq!(
        (
            s.protocols.tcp,
            s.protocols.udp,
            s.protocols.icmp,
            s.protocols.gre,
            s.protocols.other
        ),
        (0.8, 0.1, 0.06, 0.03, 0.01)
    );
    assert_eq!(s.fragments, 0.1);
    // Flag shares are of TCP packets.
    let flags: Vec<_> = s.top_tcp_flags.iter().map(|f| (f.value, f.share)).collect();
    assert_eq!(flags, [(tcp_flags::SYN, 0.75), (tcp_flags::ACK, 0.25)]);
    // Ports only for TCP and UDP; shares of all packets.
    let dports: Vec<_> = s
        .top_destination_ports
        .iter()
        .map(|p| (p.value, p.packets))
        .collect();
    assert_eq!(dports, [(80, 60), (443, 20), (0, 10)]);
    assert_eq!(s.top_source_ports[0].value, 1234);
    assert_eq!(s.top_source_ports[0].share, 0.8);

    // More than eight paths: at most eight reported, the heavy ones exact and first.
    for i in 0..50u32 {
        let r = FlowRecord {
            in_if: i,
            out_if: 7,
            ..rec(a, proto::UDP, 1, 2, 1)
        };
        fp.observe(&r, a);
    }
    let s = fp.snapshot();
    assert!(s.exporters.len() <= 8);
    assert_eq!(
        (
            s.exporters[0].exporter,
            s.exporters[0].in_if,
            s.exporters[0].out_if
        ),
        (EXPORTER, 0, 0)
    );
    assert_eq!(s.exporters[0].packets, 100);
    assert!((s.exporters[0].share - 100.0 / 150.0).abs() < 1e-12);

    fp.bucket_rates(1_000, 10);
    fp.bucket_rates(500, 20);
    let s = fp.snapshot();
    assert_eq!((s.peak_bps, s.peak_pps), (1_000, 20));
}

#[test]
fn ipv6_and_mapped_remotes() {
    let mut fp = FingerprintBuilder::new();
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    let mapped: IpAddr = "::ffff:198.51.100.7".parse().unwrap();
    fp.observe(&rec(v6, proto::UDP, 1, 2, 3), v6);
    fp.observe(&rec(mapped, proto::UDP, 1, 2, 2), mapped);
    fp.observe(&rec(v4(0xc633_6407), proto::UDP, 1, 2, 1), v4(0xc633_6407));
    let s = fp.snapshot();
    let top: Vec<_> = s.top_sources.iter().map(|t| (t.value, t.packets)).collect();
    // Ties by value: IPv4 (mapped) before IPv6, as `IpAddr` orders them.
    assert_eq!(top, [(v4(0xc633_6407), 3), (v6, 3)]);
    assert_eq!(s.sources_estimate, 2);
}

fn flood(seed: u64, n: usize) -> Vec<FlowRecord> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| {
            let x = rng.next();
            FlowRecord {
                tcp_flags: (x >> 40) as u8,
                ttl: (x >> 48) as u8,
                packet_len: (x >> 32) as u16 & 0x7ff,
                in_if: (x >> 56) as u32 & 0xf,
                ..rec(
                    v4(x as u32 & 0xfff),
                    [proto::TCP, proto::UDP][(x >> 63) as usize],
                    (x >> 16) as u16 & 0x3f,
                    (x >> 24) as u16 & 0x3f,
                    1 + (x >> 20) % 100,
                )
            }
        })
        .collect()
}

fn build(records: &[FlowRecord]) -> FingerprintBuilder {
    let mut fp = FingerprintBuilder::new();
    for r in records {
        fp.observe(r, r.src);
    }
    fp
}

#[test]
fn snapshot_is_deterministic() {
    let records = flood(99, 200_000);
    let a = build(&records).snapshot();
    let b = build(&records).snapshot();
    assert_eq!(a, b);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    assert_eq!(a.top_sources.len(), 10);
    assert_eq!(a.top_tcp_flags.len(), 10);
    assert_eq!(a.exporters.len(), 8);
    let sorted = |v: Vec<(u64, u64)>| {
        v.windows(2)
            .all(|w| w[0].0 > w[1].0 || (w[0].0 == w[1].0 && w[0].1 < w[1].1))
    };
    assert!(sorted(
        a.top_destination_ports
            .iter()
            .map(|s| (s.packets, u64::from(s.value)))
            .collect()
    ));

    // Below capacity the result is exact, so insertion order cannot matter; ties go by value.
    let mut small: Vec<_> = (0..20u16)
        .map(|p| rec(v4(u32::from(p)), proto::UDP, p, 7, 5))
        .collect();
    let forward = build(&small).snapshot();
    small.reverse();
    let backward = build(&small).snapshot();
    assert_eq!(forward, backward);
    let ports: Vec<u16> = forward.top_source_ports.iter().map(|s| s.value).collect();
    assert_eq!(ports, (0..10).collect::<Vec<_>>());
}

#[test]
fn memory_is_bounded_and_constant() {
    let mut fp = FingerprintBuilder::new();
    let before = std::mem::size_of::<FingerprintBuilder>() + fp.heap_bytes();
    eprintln!(
        "FingerprintBuilder: {} bytes inline + {} heap",
        std::mem::size_of::<FingerprintBuilder>(),
        fp.heap_bytes()
    );
    // 8 KiB of sketches, plus ~1 KiB since issue 12: a copy of the port and flag weights at
    // the last close before an attack (what the attack's fingerprint leaves out), plus 1 KiB
    // since issue 14: kept records batched before they reach the sketches.
    assert!(before <= 10 * 1024, "{before}");
    let mut rng = Rng(3);
    for _ in 0..1_000_000 {
        let x = rng.next();
        let a = if x & 1 == 0 {
            v4(x as u32)
        } else {
            IpAddr::V6(Ipv6Addr::from(u128::from(x) << 32))
        };
        let r = FlowRecord {
            tcp_flags: (x >> 8) as u8,
            exporter: v4((x >> 40) as u32),
            in_if: (x >> 20) as u32,
            ..rec(a, proto::TCP, (x >> 32) as u16, (x >> 48) as u16, 1)
        };
        fp.observe(&r, a);
    }
    assert_eq!(
        std::mem::size_of::<FingerprintBuilder>() + fp.heap_bytes(),
        before
    );
}

#[test]
fn empty_snapshot_is_all_zero() {
    let s = FingerprintBuilder::new().snapshot();
    assert_eq!(s, Fingerprint::default());
    serde_json::to_string(&s).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn snapshot_invariants(seed in any::<u64>(), n in 0usize..3000) {
        let s = build(&flood(seed | 1, n)).snapshot();
        let all = [&s.top_sources.iter().map(|t| t.share).collect::<Vec<_>>(),
            &s.top_source_ports.iter().map(|t| t.share).collect(),
            &s.top_destination_ports.iter().map(|t| t.share).collect(),
            &s.top_tcp_flags.iter().map(|t| t.share).collect(),
            &s.exporters.iter().map(|t| t.share).collect()];
        for shares in all {
            prop_assert!(shares.len() <= 10);
            prop_assert!(shares.iter().all(|x| (0.0..=1.0).contains(x)));
            prop_assert!(shares.iter().sum::<f64>() <= 1.0 + 1e-9);
        }
        let p = &s.protocols;
        let mix = p.tcp + p.udp + p.icmp + p.gre + p.other;
        let mix_ok = if s.packets > 0 {
            (mix - 1.0).abs() < 1e-9
        } else {
            mix == 0.0
        };
        prop_assert!(mix_ok, "mix {}", mix);
        prop_assert!(s.sources_estimate <= 4096 + 4096 / 20);
    }
}

#[test]
fn heavy_sources_stay_accurate_once_the_sketches_are_decimated() {
    // 2 M one-packet records: far past the exact phase. Three heavy sources send 20%, 10% and 5%
    // of the records; the rest come from ever-new addresses.
    let mut fp = FingerprintBuilder::new();
    let heavy = [v4(0xc633_6401), v4(0xc633_6402), v4(0xc633_6403)];
    let mut rng = Rng(11);
    for i in 0..2_000_000u32 {
        let a = match i % 20 {
            0..=3 => heavy[0],
            4..=5 => heavy[1],
            6 => heavy[2],
            _ => v4(0x0100_0000 + (rng.next() as u32 & 0x3fff_ffff)),
        };
        fp.observe(&rec(a, proto::UDP, 123, 80, 1), a);
    }
    let snap = fp.snapshot();
    for (i, share) in [0.2, 0.1, 0.05].into_iter().enumerate() {
        let top = &snap.top_sources[i];
        assert_eq!(top.value, heavy[i]);
        assert!(within(top.share, share, 0.05), "{top:?} vs {share}");
    }
}

/// Decimated sketches once gave a share of 1.0041 to a port carrying every packet: shares are
/// taken of the weight the sketch was given, so they never pass the traffic they describe.
#[test]
fn decimated_shares_never_exceed_the_whole() {
    let mut b = FingerprintBuilder::new();
    for i in 0..200_000u32 {
        // Weights vary so that the decimated sample's weight drifts from the exact total.
        let packets = 1 + u64::from(i % 7) * 300;
        b.observe(&rec(v4(i), proto::UDP, 53, 40_000, packets), v4(i));
    }
    let s = b.snapshot();
    let top = &s.top_source_ports[0];
    assert_eq!(top.value, 53);
    assert!(top.share <= 1.0 && top.share > 0.999, "{}", top.share);
    assert!(s.top_destination_ports.iter().all(|p| p.share <= 1.0));
    let sum: f64 = s.top_sources.iter().map(|x| x.share).sum();
    assert!(sum <= 1.0, "{sum}");
}

/// What the target carried before its attack is kept at each mark and not changed by what
/// comes after.
#[test]
fn the_traffic_before_an_attack_is_kept_apart() {
    let mut b = FingerprintBuilder::new();
    assert!(b.before().is_none());
    for i in 0..100u32 {
        b.observe(&rec(v4(i), proto::TCP, 40_000, 443, 10), v4(i));
    }
    b.mark_before();
    for i in 0..10_000u32 {
        b.observe(&rec(v4(i), proto::UDP, 53, 40_000, 100), v4(i));
    }
    let before = b.before().expect("marked");
    assert_eq!(before.packets, 1_000);
    assert_eq!(before.protocols.tcp, 1.0);
    assert_eq!(before.top_destination_ports[0].value, 443);
    assert_eq!(before.top_destination_ports[0].share, 1.0);
    assert!(b.snapshot().protocols.udp > 0.99);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// A mark is what the fingerprint showed at that moment, however many records came before
    /// and after it (marks are copied lazily: only once the sketches move on), and marking
    /// changes nothing else: the final snapshot's sources, exporters and totals are those of a
    /// builder never marked.
    #[test]
    fn a_mark_is_the_fingerprint_at_that_moment(
        seed in any::<u64>(),
        gaps in proptest::collection::vec(0usize..40, 1..30),
    ) {
        let records = flood(seed, gaps.iter().sum::<usize>() + 20);
        let mut marked = FingerprintBuilder::new();
        let mut at = 0;
        let mut last_mark = None;
        for gap in gaps {
            for r in &records[at..at + gap] {
                marked.observe(r, r.src);
            }
            at += gap;
            marked.mark_before();
            if at > 0 {
                last_mark = Some(at);
            }
        }
        for r in &records[at..] {
            marked.observe(r, r.src);
        }
        let before = marked.before();
        match last_mark {
            Some(k) if k >= 8 => {
                let reference = build(&records[..k]).snapshot();
                let before = before.expect("marked");
                prop_assert_eq!(before.packets, reference.packets);
                prop_assert_eq!(before.protocols, reference.protocols);
                prop_assert_eq!(before.packet_sizes, reference.packet_sizes);
                prop_assert_eq!(before.top_source_ports, reference.top_source_ports);
                prop_assert_eq!(before.top_destination_ports, reference.top_destination_ports);
                prop_assert_eq!(before.top_tcp_flags, reference.top_tcp_flags);
            }
            _ => prop_assert!(before.is_none()),
        }
        let (now, unmarked) = (marked.snapshot(), build(&records).snapshot());
        prop_assert_eq!(now.top_sources, unmarked.top_sources);
        prop_assert_eq!(now.exporters, unmarked.exporters);
        prop_assert_eq!(now.sources_estimate, unmarked.sources_estimate);
        prop_assert_eq!(now.ttls, unmarked.ttls);
    }
}

/// A watch without an attack samples one record in 16 after its first 256 (a busy network's
/// watched prefixes see hundreds a second): the profile of its ordinary traffic (ports, flags,
/// sizes) stays within 2 percentage points of the exact one, and the exact counts stay exact.
/// (Once an attack starts, its own records settle the fingerprint as before: the rules derived
/// from it are tested in `mitigate/tests/sampled_fingerprints.rs`.)
#[test]
fn a_watch_samples_its_ordinary_traffic_within_two_points() {
    let mut rng = Rng(71);
    let mut watched = FingerprintBuilder::watching();
    let mut exact = FingerprintBuilder::unsampled();
    for i in 0..40_000u32 {
        // A web server: HTTPS and HTTP from many clients, a little SSH; acks and data.
        let x = rng.next() % 100;
        let port = match x {
            0..=64 => 443,
            65..=94 => 80,
            _ => 22,
        };
        let mut r = rec(
            v4(0x0a00_0000 | i),
            proto::TCP,
            1024 + (i % 60_000) as u16,
            port,
            1024,
        );
        r.tcp_flags = if rng.next().is_multiple_of(3) {
            tcp_flags::ACK
        } else {
            tcp_flags::ACK | tcp_flags::PSH
        };
        r.packet_len = if r.tcp_flags == tcp_flags::ACK {
            52
        } else {
            1500
        };
        r.bytes = 1024 * u64::from(r.packet_len);
        for fp in [&mut watched, &mut exact] {
            fp.observe(&r, r.src);
        }
    }
    watched.mark_before();
    exact.mark_before();
    let (w, e) = (
        watched.before().expect("marked"),
        exact.before().expect("marked"),
    );
    assert_eq!(w.packets, e.packets);
    assert_eq!(w.protocols, e.protocols);
    assert_eq!(w.top_destination_ports.len(), 3);
    for (a, b) in w.top_destination_ports.iter().zip(&e.top_destination_ports) {
        assert_eq!(a.value, b.value);
        assert!((a.share - b.share).abs() <= 0.02, "{a:?} vs {b:?}");
    }
    for (a, b) in w.top_tcp_flags.iter().zip(&e.top_tcp_flags) {
        assert_eq!(a.value, b.value);
        assert!((a.share - b.share).abs() <= 0.02, "{a:?} vs {b:?}");
    }
    let (ws, es) = (
        w.packet_sizes.expect("sizes"),
        e.packet_sizes.expect("sizes"),
    );
    for (a, b) in ws.shares.iter().zip(&es.shares) {
        assert!((a - b).abs() <= 0.02, "{ws:?} vs {es:?}");
    }
    // An attack starts: from there on every record counts, exactly, and the attack's own
    // counts are what its rule is derived from.
    watched.settle_again();
    exact.settle_again();
    for i in 0..300u32 {
        let mut r = rec(v4(0xc000_0000 | i), proto::UDP, 53, 4444, 1024);
        r.packet_len = 1400;
        r.bytes = 1024 * 1400;
        for fp in [&mut watched, &mut exact] {
            fp.observe(&r, r.src);
        }
    }
    let (w, e) = (watched.snapshot(), exact.snapshot());
    // Distinct remotes: the watch's first 256 ordinary clients, one in 16 of its other 39,744,
    // and all the attack's 300 sources (the reference counts every remote the target ever had).
    let expected = 256.0 + 39_744.0 / 16.0 + 300.0;
    let off = (w.sources_estimate as f64 - expected).abs() / expected;
    assert!(
        off <= 0.1,
        "{} sources, {expected} expected",
        w.sources_estimate
    );
    assert!(e.sources_estimate > 38_000, "{}", e.sources_estimate);
    assert_eq!(w.packets, 300 * 1024);
    assert_eq!(w.packets, e.packets);
    assert_eq!(w.bytes, e.bytes);
    assert_eq!(w.protocols, e.protocols);
    assert_eq!(w.top_source_ports, e.top_source_ports);
}

#[test]
fn an_attack_on_a_long_watched_target_counts_its_first_seconds_sources() {
    let mut watched = FingerprintBuilder::watching();
    // Hours of ordinary traffic from 4,000 clients, closed bucket by bucket: counted one in 16
    // once the watch has settled.
    for i in 0..4_000u32 {
        let r = rec(v4(0x0a00_0000 | i), proto::TCP, 40_000, 443, 1024);
        watched.observe(&r, r.src);
        if i % 500 == 499 {
            watched.mark_before();
        }
    }
    let before = watched.distinct_remotes();
    assert!(
        within(before as f64, 256.0 + 3_744.0 / 16.0, 0.15),
        "{before}"
    );
    // The attack's first second: 3,000 spoofed sources, judged at the bucket's close.
    for i in 0..3_000u32 {
        let r = rec(v4(0xc000_0000 | i), proto::UDP, 53, 4444, 1024);
        watched.observe(&r, r.src);
    }
    watched.settle_again();
    let at_start = watched.distinct_remotes();
    assert!(within(at_start as f64, 3_000.0, 0.4), "{at_start}");
    assert_eq!(watched.snapshot().sources_estimate, at_start);
    // From there on every source counts in the full sketch.
    for i in 3_000..20_000u32 {
        let r = rec(v4(0xc000_0000 | i), proto::UDP, 53, 4444, 1024);
        watched.observe(&r, r.src);
    }
    let later = watched.distinct_remotes();
    assert!(
        within(later as f64, 17_000.0 + 3_000.0 / 16.0 + 490.0, 0.1),
        "{later}"
    );
}
