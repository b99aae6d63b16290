//! The sharded engine gives one engine's events, counters and baselines.

mod common;

use std::net::IpAddr;

use common::*;
use floodwall_detect::shard::Router;
use floodwall_detect::{AttackEvent, Baselines, Engine, ShardKey, ShardedEngine};
use floodwall_wire::FlowRecord;
use proptest::prelude::*;

/// Attacks on several prefixes, an outgoing flood, a carpet, traffic between monitored hosts of
/// different prefixes (both ends accounted, maybe on two shards), unmonitored records, late
/// records, a gap longer than the sweep period and the same host attacked again.
fn mixed() -> Vec<FlowRecord> {
    let mut rng = Rng(7);
    let mut records = Vec::new();
    attack_mix(&mut records, &mut rng);
    for h in 0..30u32 {
        // Ordinary traffic of hosts of many /24s, some of it to each other.
        let host = ip(&format!("10.{}.{}.9", h % 7, h));
        flood(
            &mut records,
            host,
            false,
            T0,
            12,
            2_000,
            udp(443, 1200, 1000),
            &mut rng,
        );
        let mut between = udp(443, 1200, 1000);
        between.src = ip(&format!("192.0.2.{}", 100 + h));
        between.dst = host;
        for s in 0..12 {
            between.time_ms = T0 + s * 1000 + 500;
            records.push(between);
        }
    }
    let mut unmonitored = udp(80, 100, 1000);
    unmonitored.src = ip("203.0.113.1");
    unmonitored.dst = ip("203.0.113.2");
    for s in 0..50 {
        unmonitored.time_ms = T0 + s * 1000;
        records.push(unmonitored);
    }
    let mut records = by_time(records);
    // Late records: some arrive up to 1.5 s after their time (counted in the open bucket).
    for i in (0..records.len()).step_by(13) {
        if i + 40 < records.len() {
            records.swap(i, i + 40);
        }
    }
    records
}

fn sharded(
    records: &[FlowRecord],
    shards: u32,
    cuts: &[usize],
) -> (Vec<AttackEvent>, ShardedEngine) {
    let mut engine = ShardedEngine::new(config(), shards).unwrap();
    let mut events = Vec::new();
    let mut from = 0;
    for &p in cuts.iter().chain([&records.len()]) {
        engine.ingest(&records[from..p], &mut events);
        from = p;
    }
    engine.finish(&mut events);
    (events, engine)
}

fn single(records: &[FlowRecord]) -> (Vec<AttackEvent>, Engine) {
    let mut engine = Engine::new(config()).unwrap();
    let mut events = Vec::new();
    engine.ingest(records, &mut events);
    engine.finish(&mut events);
    (events, engine)
}

#[test]
fn shards_give_one_engines_events_and_counters() {
    let records = mixed();
    let (reference, one) = single(&records);
    assert!(started(&reference).len() >= 5, "{reference:#?}");
    for n in [1, 2, 3, 5] {
        let (events, engine) = sharded(&records, n, &[]);
        assert_eq!(events, reference, "{n} shards");
        let (a, b) = (engine.stats(), one.stats());
        assert_eq!(a, b, "{n} shards");
        assert_eq!(
            engine.hostgroup_rates(),
            one.hostgroup_rates(),
            "{n} shards"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn batch_splits_and_shard_counts_do_not_change_events(
        mut cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
        shards in 2u32..5,
    ) {
        let records = mixed();
        let (reference, _) = single(&records);
        let mut points: Vec<usize> = cuts.drain(..).map(|i| i.index(records.len() + 1)).collect();
        points.sort_unstable();
        let (events, _) = sharded(&records, shards, &points);
        prop_assert_eq!(events, reference);
    }
}

/// Batches routed where they were decoded (as the daemon's collectors do, each batch on its
/// own) give the same events as the dispatcher routing them.
#[test]
fn batches_routed_by_collectors_give_one_engines_events() {
    let records = mixed();
    let (reference, one) = single(&records);
    for n in [2, 3] {
        let router = Router::new(&config(), n).unwrap();
        let mut engine = ShardedEngine::new(config(), n).unwrap();
        let (mut events, mut routes) = (Vec::new(), Vec::new());
        for batch in records.chunks(1024) {
            router.route_all(batch, &mut routes);
            engine.ingest_routed(batch, &routes, &mut events);
        }
        engine.finish(&mut events);
        assert_eq!(events, reference, "{n} shards");
        assert_eq!(engine.stats(), one.stats(), "{n} shards");
    }
}

/// A live engine: ticks between batches close the buckets of a quiet stream.
#[test]
fn ticks_close_the_same_buckets_on_every_shard() {
    let records = mixed();
    let mut one = Engine::new(config()).unwrap();
    let mut two = ShardedEngine::new(config(), 2).unwrap();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for chunk in records.chunks(997) {
        one.ingest(chunk, &mut a);
        two.ingest(chunk, &mut b);
        let now = chunk.last().map_or(T0, |r| r.time_ms) + 700;
        one.tick(now, &mut a);
        two.tick(now, &mut b);
    }
    one.tick(T0 + 120_000, &mut a);
    two.tick(T0 + 120_000, &mut b);
    assert!(!a.is_empty());
    assert_eq!(a, b);
}

fn sorted(mut b: Baselines) -> Baselines {
    b.hosts.sort_by_key(|(addr, _)| *addr);
    b.prefixes.sort_by_key(|(net, _)| *net);
    b
}

/// Baselines saved by any number of shards resume in any other.
#[test]
fn baselines_move_between_shard_counts() {
    let records = mixed();
    let (_, one) = single(&records);
    let saved = sorted(one.baselines());
    assert!(saved.hosts.len() > 50 && !saved.prefixes.is_empty());
    let (_, three) = sharded(&records, 3, &[]);
    assert_eq!(sorted(three.baselines()), saved);

    let mut two = ShardedEngine::new(config(), 2).unwrap();
    assert_eq!(
        two.restore_baselines(&saved),
        (saved.hosts.len(), saved.prefixes.len())
    );
    assert_eq!(sorted(two.baselines()), saved);
    let mut back = Engine::new(config()).unwrap();
    back.restore_baselines(&two.baselines());
    assert_eq!(sorted(back.baselines()), saved);
}

/// The key of a host is its prefix's: a carpet and its hosts are judged on one shard.
#[test]
fn a_prefix_and_its_hosts_share_a_shard() {
    let c = config();
    let key = |a: &str| {
        ShardKey::of(
            a.parse::<IpAddr>().unwrap(),
            c.prefix_length_v4,
            c.prefix_length_v6,
        )
    };
    for n in 1..=16 {
        let s = key("198.51.100.0").shard(n);
        for h in 1..=255 {
            assert_eq!(key(&format!("198.51.100.{h}")).shard(n), s);
        }
        assert_eq!(
            key("2001:db8:1:ffff::1").shard(n),
            key("2001:db8:1::").shard(n)
        );
    }
}
