//! Real exporters from Debian's packages — softflowd and pmacct's pmacctd — read a crafted packet
//! capture and send their telemetry to Floodwall's collector on 127.0.0.1; the decoded records
//! must be exactly the traffic that was crafted.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use floodwall_wire::FlowRecord;
use support::*;

/// Expected totals per flow, from the crafted traffic, with `bytes_of` choosing what the exporter
/// counts (IP length for NetFlow/IPFIX, frame length for sFlow) and `rate` the sampling scale.
fn expected(
    flows: &[CraftedFlow],
    include: impl Fn(&CraftedFlow) -> bool,
    bytes_of: impl Fn(&CraftedFlow) -> u64,
) -> BTreeMap<FlowKey, (u64, u64)> {
    flows
        .iter()
        .filter(|f| include(f))
        .map(|f| (f.key, (f.packets, f.packets * bytes_of(f))))
        .collect()
}

fn packets_and_bytes(records: &[FlowRecord]) -> BTreeMap<FlowKey, (u64, u64)> {
    aggregate(records)
        .into_iter()
        .map(|(k, t)| (k, (t.packets, t.bytes)))
        .collect()
}

fn assert_common(records: &[FlowRecord], exporter: &str) {
    assert!(!records.is_empty(), "{exporter}: no records");
    for r in records {
        assert_eq!(
            r.exporter.to_string(),
            "127.0.0.1",
            "{exporter}: exporter address"
        );
    }
}

fn softflowd_case(name: &str, version: &str, extra: &[&str], include_v6: bool, rate: u32) {
    let dir = test_dir(name);
    let (frames, flows) = crafted_traffic(1_760_000_000);
    let pcap = dir.join("traffic.pcap");
    write_pcap(&pcap, &frames);
    let collector = TestCollector::start();
    run_softflowd(&dir, &pcap, collector.addr, version, extra);
    let want = expected(&flows, |f| include_v6 || f.key.src.is_ipv4(), |f| f.ip_len);
    collector.wait_until(Duration::from_secs(5), |r| packets_and_bytes(r) == want);
    let (records, stats) = collector.finish(Duration::from_millis(200));
    assert_common(&records, name);
    assert_eq!(
        packets_and_bytes(&records),
        want,
        "{name}: per-flow packets and bytes"
    );
    let totals = aggregate(&records);
    for flow in flows.iter().filter(|f| want.contains_key(&f.key)) {
        let t = &totals[&flow.key];
        assert_eq!(
            t.tcp_flags, flow.tcp_flags,
            "{name}: tcp flags of {:?}",
            flow.key
        );
        assert_eq!(
            t.sampling_rates,
            vec![rate],
            "{name}: sampling rate of {:?}",
            flow.key
        );
    }
    let counters = stats.totals();
    assert_eq!(
        counters.total_errors(),
        0,
        "{name}: decode errors {counters:?}"
    );
    assert_eq!(counters.records, records.len() as u64);
    assert_eq!(stats.kernel_drops(), 0);
}

#[test]
fn softflowd_netflow_v5() {
    // NetFlow v5 carries IPv4 only; softflowd leaves IPv6 flows out.
    softflowd_case("softflowd-v5", "5", &[], false, 1);
}

#[test]
fn softflowd_netflow_v9() {
    softflowd_case("softflowd-v9", "9", &[], true, 1);
}

#[test]
fn softflowd_ipfix() {
    softflowd_case("softflowd-ipfix", "10", &[], true, 1);
}

#[test]
fn softflowd_netflow_v9_sampled_1_in_2() {
    // Periodic 1-in-2 sampling over flows of even packet counts: scaled back, the totals are exact.
    softflowd_case("softflowd-v9-sampled", "9", &["-s", "2"], true, 2);
}

#[test]
fn softflowd_ipfix_sampled_1_in_2() {
    softflowd_case("softflowd-ipfix-sampled", "10", &["-s", "2"], true, 2);
}

fn pmacct_nfprobe_case(name: &str, version: u8) {
    let dir = test_dir(name);
    let (frames, flows) = crafted_traffic(1_760_000_000);
    let pcap = dir.join("traffic.pcap");
    write_pcap(&pcap, &frames);
    let collector = TestCollector::start();
    let plugin = format!(
        "plugins: nfprobe[nf]\naggregate[nf]: src_host,dst_host,src_port,dst_port,proto,tos\n\
         nfprobe_receiver[nf]: {}\nnfprobe_version[nf]: {version}\nnfprobe_timeouts[nf]: tcp=1:maxlife=1:general=1",
        collector.addr
    );
    let mut child = spawn_pmacctd(&dir, name, &pcap, &plugin, false);
    wait_or_kill(&mut child, Duration::from_secs(20), "pmacctd");
    let want = expected(&flows, |_| true, |f| f.ip_len);
    collector.wait_until(Duration::from_secs(5), |r| packets_and_bytes(r) == want);
    let (records, stats) = collector.finish(Duration::from_millis(200));
    assert_common(&records, name);
    assert_eq!(
        packets_and_bytes(&records),
        want,
        "{name}: per-flow packets and bytes"
    );
    // pmacct stamps flows with the capture's own time.
    for r in &records {
        assert!(
            (1_760_000_000_000..1_760_000_010_000).contains(&r.time_ms),
            "{name}: flow time {} outside the capture",
            r.time_ms
        );
    }
    assert_eq!(
        stats.totals().total_errors(),
        0,
        "{name}: {:?}",
        stats.totals()
    );
}

#[test]
fn pmacct_nfprobe_netflow_v9() {
    pmacct_nfprobe_case("pmacct-v9", 9);
}

#[test]
fn pmacct_nfprobe_ipfix() {
    pmacct_nfprobe_case("pmacct-ipfix", 10);
}

fn pmacct_sfprobe_records(
    name: &str,
    rate: u32,
    expect_samples: impl Fn(&[FlowRecord]) -> bool,
) -> (Vec<FlowRecord>, Vec<CraftedFlow>) {
    let dir = test_dir(name);
    let (frames, flows) = crafted_traffic(1_760_000_000);
    let pcap = dir.join("traffic.pcap");
    write_pcap(&pcap, &frames);
    let collector = TestCollector::start();
    let plugin = format!(
        "plugins: sfprobe[sf]\nsfprobe_receiver[sf]: {}\nsfprobe_agentip[sf]: 127.0.0.1\nsampling_rate[sf]: {rate}",
        collector.addr
    );
    // sfprobe flushes its last datagram only while running: keep pmacctd up until the samples
    // arrive, then stop it.
    let mut child = spawn_pmacctd(&dir, name, &pcap, &plugin, true);
    let arrived = collector.wait_until(Duration::from_secs(15), &expect_samples);
    interrupt_group(&mut child, Duration::from_secs(10), "pmacctd");
    let (records, stats) = collector.finish(Duration::from_millis(200));
    assert!(
        arrived,
        "{name}: samples did not arrive; got {} records",
        records.len()
    );
    assert_common(&records, name);
    assert_eq!(
        stats.totals().total_errors(),
        0,
        "{name}: {:?}",
        stats.totals()
    );
    (records, flows)
}

#[test]
fn pmacct_sfprobe_sflow_v5() {
    let total: u64 = crafted_traffic(0).1.iter().map(|f| f.packets).sum();
    let (records, flows) = pmacct_sfprobe_records("pmacct-sflow", 1, |r| r.len() as u64 >= total);
    // One sample per packet, each a raw header; sFlow counts the frame with its 4-byte FCS.
    assert_eq!(records.len() as u64, total, "{:#?}", aggregate(&records));
    let want = expected(&flows, |_| true, |f| f.frame_len + 4);
    assert_eq!(packets_and_bytes(&records), want);
    let by_key: BTreeMap<FlowKey, &CraftedFlow> = flows.iter().map(|f| (f.key, f)).collect();
    for r in &records {
        let key = FlowKey {
            src: r.src,
            dst: r.dst,
            protocol: r.protocol,
            src_port: r.src_port,
            dst_port: r.dst_port,
        };
        let flow = by_key[&key];
        assert_eq!(
            u64::from(r.packet_len),
            flow.ip_len,
            "IP length from the sampled header"
        );
        assert_eq!(r.tcp_flags, flow.tcp_flags);
        assert_eq!(r.sampling_rate, 1);
        assert!(r.ttl > 0, "TTL from the sampled header");
        assert!(!r.fragment);
    }
}

#[test]
fn pmacct_sfprobe_sflow_v5_sampled() {
    // 1-in-4 sampling: every sample stands for 4 packets and 4 frames' bytes.
    let (records, flows) = pmacct_sfprobe_records("pmacct-sflow-sampled", 4, |r| r.len() >= 3);
    let by_key: BTreeMap<FlowKey, &CraftedFlow> = flows.iter().map(|f| (f.key, f)).collect();
    for r in &records {
        let key = FlowKey {
            src: r.src,
            dst: r.dst,
            protocol: r.protocol,
            src_port: r.src_port,
            dst_port: r.dst_port,
        };
        let flow = by_key
            .get(&key)
            .unwrap_or_else(|| panic!("unexpected flow {key:?}"));
        assert_eq!(r.sampling_rate, 4);
        assert_eq!(r.packets, 4);
        assert_eq!(r.bytes, 4 * (flow.frame_len + 4));
    }
}
