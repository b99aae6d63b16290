//! Capture files through the `floodwall flows` command: raw packet captures become 1:1 records,
//! captured telemetry is decoded by the same decoders as live UDP. Totals are cross-checked with
//! tshark, which reads the same files independently.

mod support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use floodwall_daemon::sources::udp::{UdpSource, UdpSourceConfig};
use floodwall_daemon::sources::RecordBatch;
use floodwall_wire::export::{ExportClock, Flow, MessageWriter, TemplateRepr};
use floodwall_wire::packet::{EthernetRepr, PacketRepr, TransportRepr};
use floodwall_wire::sflow::{DatagramRepr, FlowDataRepr, FlowSampleRepr, SampleRepr};
use floodwall_wire::template::Flavor;
use floodwall_wire::{netflow_v5, tcp_flags};
use serde_json::Value;
use support::*;

/// Runs `floodwall flows --json` and parses its output.
fn flows_json(args: &[&str]) -> Vec<Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_floodwall"))
        .arg("flows")
        .arg("--json")
        .args(args)
        .output()
        .expect("running floodwall");
    assert!(
        output.status.success(),
        "floodwall flows failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON record per line"))
        .collect()
}

/// (src, dst) → (packets, bytes) from JSON records.
fn totals_by_pair(records: &[Value]) -> BTreeMap<(String, String), (u64, u64)> {
    let mut totals = BTreeMap::new();
    for r in records {
        let key = (
            r["src"].as_str().unwrap().to_string(),
            r["dst"].as_str().unwrap().to_string(),
        );
        let t: &mut (u64, u64) = totals.entry(key).or_default();
        t.0 += r["packets"].as_u64().unwrap();
        t.1 += r["bytes"].as_u64().unwrap();
    }
    totals
}

/// The same totals computed by tshark from the capture.
fn tshark_totals(path: &Path) -> BTreeMap<(String, String), (u64, u64)> {
    let tshark = require_tool("tshark");
    let output = Command::new(tshark)
        .args([
            "-r",
            path.to_str().unwrap(),
            "-T",
            "fields",
            "-E",
            "separator=,",
        ])
        .args([
            "-e",
            "ip.src",
            "-e",
            "ip.dst",
            "-e",
            "ipv6.src",
            "-e",
            "ipv6.dst",
            "-e",
            "frame.len",
        ])
        .output()
        .expect("running tshark");
    assert!(
        output.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut totals = BTreeMap::new();
    for line in String::from_utf8(output.stdout).unwrap().lines() {
        let f: Vec<&str> = line.split(',').collect();
        let (src, dst) = if !f[0].is_empty() {
            (f[0], f[1])
        } else {
            (f[2], f[3])
        };
        let t: &mut (u64, u64) = totals
            .entry((src.to_string(), dst.to_string()))
            .or_default();
        t.0 += 1;
        t.1 += f[4].parse::<u64>().unwrap();
    }
    totals
}

#[test]
fn raw_packet_capture_is_one_record_per_packet_and_matches_tshark() {
    let dir = test_dir("raw-capture");
    let (frames, flows) = crafted_traffic(1_760_000_000);
    let pcap = dir.join("traffic.pcap");
    write_pcap(&pcap, &frames);

    let records = flows_json(&[pcap.to_str().unwrap()]);
    assert_eq!(records.len(), frames.len());
    assert_eq!(totals_by_pair(&records), tshark_totals(&pcap));
    for flow in &flows {
        let mine: Vec<&Value> = records
            .iter()
            .filter(|r| r["src"] == flow.key.src.to_string() && r["dst_port"] == flow.key.dst_port)
            .collect();
        assert_eq!(mine.len() as u64, flow.packets, "{:?}", flow.key);
        for r in mine {
            assert_eq!(r["protocol"], flow.key.protocol);
            assert_eq!(r["src_port"], flow.key.src_port);
            assert_eq!(r["packet_len"], flow.ip_len);
            assert_eq!(r["bytes"], flow.frame_len);
            assert_eq!(r["packets"], 1);
            assert_eq!(r["tcp_flags"], flow.tcp_flags);
            assert_eq!(r["exporter"], "0.0.0.0");
        }
    }
    // Capture time, in milliseconds: the first packet is 10 ms after the start.
    assert_eq!(records[0]["time_ms"], 1_760_000_000_010u64);

    // The same capture as pcapng (converted by Wireshark's editcap) gives the same records.
    let pcapng = dir.join("traffic.pcapng");
    let status = Command::new(require_tool("editcap"))
        .args([
            "-F",
            "pcapng",
            pcap.to_str().unwrap(),
            pcapng.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(flows_json(&[pcapng.to_str().unwrap()]), records);
}

fn sflow_datagram(agent: Ipv4Addr, sequence: u32) -> Vec<u8> {
    let header = PacketRepr {
        ethernet: Some(EthernetRepr {
            source: [2, 0, 0, 0, 0, 1],
            destination: [2, 0, 0, 0, 0, 2],
            vlans: vec![100],
        }),
        src: IpAddr::from([198, 51, 100, 7]),
        dst: IpAddr::from([203, 0, 113, 77]),
        ttl: 55,
        transport: TransportRepr::Tcp {
            src_port: 4444,
            dst_port: 443,
            flags: tcp_flags::SYN,
        },
        payload_len: 0,
    };
    let mut bytes = Vec::new();
    header.emit(&mut bytes);
    let sample = |i: u32| {
        SampleRepr::Flow(FlowSampleRepr {
            expanded: i % 2 == 1,
            sequence: i,
            source_id_type: 0,
            source_id_index: 3,
            sampling_rate: 2048,
            sample_pool: 2048 * i,
            drops: 0,
            input: 3,
            output: 4,
            records: vec![FlowDataRepr::RawHeader {
                protocol: 1,
                frame_length: 64,
                stripped: 4,
                header: bytes.clone(),
            }],
        })
    };
    let mut out = Vec::new();
    DatagramRepr {
        agent: IpAddr::V4(agent),
        sub_agent_id: 0,
        sequence,
        uptime_ms: 1000,
        samples: (0..5).map(sample).collect(),
    }
    .emit(&mut out);
    out
}

#[test]
fn telemetry_capture_decodes_every_protocol_and_matches_tshark() {
    let dir = test_dir("telemetry-capture");
    let start_us = 1_760_000_000_000_000u64;
    let mut frames = Vec::new();
    // sFlow: 2 datagrams x 5 samples of a 1:2048-sampled SYN to 203.0.113.77:443.
    frames.push(udp_frame(
        [192, 0, 2, 1],
        6343,
        &sflow_datagram(Ipv4Addr::new(192, 0, 2, 1), 1),
        start_us,
    ));
    frames.push(udp_frame(
        [192, 0, 2, 1],
        6343,
        &sflow_datagram(Ipv4Addr::new(192, 0, 2, 1), 2),
        start_us + 1000,
    ));
    // NetFlow v5: 3 records, 1:100 sampled.
    let v5_header = netflow_v5::HeaderRepr {
        sys_uptime: 100_000,
        unix_secs: 1_760_000_001,
        unix_nsecs: 0,
        flow_sequence: 10,
        engine_type: 0,
        engine_id: 0,
        sampling: (1 << 14) | 100,
    };
    let v5_records: Vec<netflow_v5::RecordRepr> = (0..3u8)
        .map(|i| netflow_v5::RecordRepr {
            src_addr: Ipv4Addr::new(198, 51, 100, 20 + i),
            dst_addr: Ipv4Addr::new(203, 0, 113, 5),
            next_hop: Ipv4Addr::UNSPECIFIED,
            input: 1,
            output: 2,
            packets: 10,
            octets: 15_000,
            first: 90_000,
            last: 99_000,
            src_port: 123,
            dst_port: 33_000,
            tcp_flags: 0,
            protocol: 17,
            tos: 0,
            src_as: 0,
            dst_as: 0,
            src_mask: 24,
            dst_mask: 24,
        })
        .collect();
    frames.push(udp_frame(
        [192, 0, 2, 2],
        2055,
        &netflow_v5::emit(&v5_header, &v5_records),
        start_us + 2000,
    ));
    // IPFIX: template + sampling options, then 4 flows in a separate message; 1:10 sampled.
    let clock = ExportClock {
        unix_secs: 1_760_000_002,
        sys_uptime_ms: 500_000,
    };
    let template = TemplateRepr::standard(Flavor::Ipfix, 300, false);
    let options = TemplateRepr::sampling_options(Flavor::Ipfix, 301);
    let first = MessageWriter::new(Flavor::Ipfix, clock, 0, 7)
        .templates(&[&template, &options])
        .sampling(&options, 10)
        .finish();
    let flows: Vec<Flow> = (0..4u8)
        .map(|i| Flow {
            src: IpAddr::from([198, 51, 100, 40 + i]),
            dst: IpAddr::from([203, 0, 113, 6]),
            src_port: 53,
            dst_port: 40_000,
            protocol: 17,
            tcp_flags: 0,
            bytes: 3_000,
            packets: 2,
            in_if: 5,
            out_if: 6,
            start_ms: 1_760_000_001_000,
            end_ms: 1_760_000_001_500,
        })
        .collect();
    let second = MessageWriter::new(Flavor::Ipfix, clock, 0, 7)
        .flows(&template, &flows)
        .finish();
    frames.push(udp_frame([192, 0, 2, 3], 4739, &first, start_us + 3000));
    frames.push(udp_frame([192, 0, 2, 3], 4739, &second, start_us + 4000));
    let pcap = dir.join("telemetry.pcap");
    write_pcap(&pcap, &frames);

    let records = flows_json(&[pcap.to_str().unwrap()]);
    assert_eq!(records.len(), 10 + 3 + 4);
    let by_exporter = |ip: &str| {
        records
            .iter()
            .filter(|r| r["exporter"] == ip)
            .collect::<Vec<_>>()
    };
    let sflow = by_exporter("192.0.2.1");
    assert_eq!(sflow.len(), 10);
    for r in &sflow {
        assert_eq!(
            (r["src"].as_str(), r["dst"].as_str(), r["dst_port"].as_u64()),
            (Some("198.51.100.7"), Some("203.0.113.77"), Some(443))
        );
        assert_eq!(
            (
                r["packets"].as_u64(),
                r["bytes"].as_u64(),
                r["sampling_rate"].as_u64()
            ),
            (Some(2048), Some(64 * 2048), Some(2048))
        );
        assert_eq!(
            (
                r["ttl"].as_u64(),
                r["tcp_flags"].as_u64(),
                r["in_if"].as_u64(),
                r["out_if"].as_u64()
            ),
            (Some(55), Some(2), Some(3), Some(4))
        );
        // Telemetry without its own clock takes the capture time.
        assert!(r["time_ms"].as_u64().unwrap() / 1000 == 1_760_000_000);
    }
    let v5 = by_exporter("192.0.2.2");
    assert_eq!(v5.len(), 3);
    for r in &v5 {
        assert_eq!(
            (
                r["packets"].as_u64(),
                r["bytes"].as_u64(),
                r["src_port"].as_u64()
            ),
            (Some(1000), Some(1_500_000), Some(123))
        );
        // Flow end: export time minus (uptime - last) = 1_760_000_001 s - 1 s.
        assert_eq!(r["time_ms"].as_u64(), Some(1_760_000_000_000));
    }
    let ipfix = by_exporter("192.0.2.3");
    assert_eq!(ipfix.len(), 4);
    for r in &ipfix {
        assert_eq!(
            (
                r["packets"].as_u64(),
                r["bytes"].as_u64(),
                r["sampling_rate"].as_u64()
            ),
            (Some(20), Some(30_000), Some(10))
        );
        assert_eq!(r["time_ms"].as_u64(), Some(1_760_000_001_500));
    }

    // tshark agrees on what the datagrams hold: sFlow samples and NetFlow/IPFIX flow counts.
    let output = Command::new(require_tool("tshark"))
        .args([
            "-r",
            pcap.to_str().unwrap(),
            "-d",
            "udp.port==6343,sflow",
            "-d",
            "udp.port==2055,cflow",
            "-d",
            "udp.port==4739,cflow",
        ])
        .args([
            "-T",
            "fields",
            "-e",
            "sflow_245.numsamples",
            "-e",
            "cflow.count",
            "-e",
            "cflow.packets",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let sflow_samples: u64 = text
        .lines()
        .filter_map(|l| l.split('\t').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(sflow_samples, 10, "tshark: {text}");
    let unscaled_packets: u64 = text
        .lines()
        .filter_map(|l| l.split('\t').nth(2))
        .flat_map(|f| f.split(',').filter_map(|p| p.parse::<u64>().ok()))
        .sum();
    assert_eq!(unscaled_packets, 3 * 10 + 4 * 2, "tshark: {text}");
}

#[test]
fn allow_list_drops_and_counts_other_exporters() {
    let datagram = sflow_datagram(Ipv4Addr::new(192, 0, 2, 1), 1);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Only 192.0.2.0/24 may send: loopback is refused.
    let refused = TestCollector::start_with(UdpSourceConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        allowed_exporters: vec!["192.0.2.0/24".parse().unwrap()],
        ..Default::default()
    });
    for _ in 0..3 {
        sender.send_to(&datagram, refused.addr).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    let (records, stats) = refused.finish(Duration::from_millis(300));
    assert!(records.is_empty());
    assert_eq!(stats.not_allowed(), 3);
    assert!(stats.exporters.is_empty());

    let allowed = TestCollector::start_with(UdpSourceConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        allowed_exporters: vec!["127.0.0.0/8".parse().unwrap()],
        ..Default::default()
    });
    sender.send_to(&datagram, allowed.addr).unwrap();
    assert!(allowed.wait_until(Duration::from_secs(5), |r| r.len() == 5));
    let (_, stats) = allowed.finish(Duration::from_millis(100));
    assert_eq!(stats.not_allowed(), 0);
    assert_eq!(stats.exporters[&IpAddr::from([127, 0, 0, 1])].records, 5);
}

#[test]
fn ipv6_listener_receives_and_counts_per_exporter_with_sequence_gaps() {
    let collector = TestCollector::start_with(UdpSourceConfig {
        listen: vec!["[::1]:0".parse().unwrap()],
        ..Default::default()
    });
    let sender = UdpSocket::bind("[::1]:0").unwrap();
    // Datagram 3 never arrives: one lost datagram by sFlow's sequence numbers.
    for seq in [1, 2, 4] {
        sender
            .send_to(
                &sflow_datagram(Ipv4Addr::new(192, 0, 2, 1), seq),
                collector.addr,
            )
            .unwrap();
    }
    sender
        .send_to(b"\x00\x00\x00\x07garbage", collector.addr)
        .unwrap();
    assert!(collector.wait_until(Duration::from_secs(5), |r| r.len() == 15));
    let (records, stats) = collector.finish(Duration::from_millis(300));
    assert_eq!(records.len(), 15);
    let counters = &stats.exporters[&"::1".parse::<IpAddr>().unwrap()];
    assert_eq!(counters.datagrams, 4);
    assert_eq!(counters.sequence_lost, 1);
    assert_eq!(
        counters.error(floodwall_wire::DecodeError::UnknownVersion),
        1
    );
}

#[test]
fn port_in_use_is_named_in_the_error() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let (tx, _rx) = crossbeam_channel::bounded::<RecordBatch>(1);
    let (_rtx, rrx) = crossbeam_channel::bounded(1);
    let config = UdpSourceConfig {
        listen: vec![addr],
        ..Default::default()
    };
    let error = UdpSource::start(&config, tx, rrx)
        .err()
        .expect("binding a taken port must fail");
    let message = format!("{error:#}");
    assert!(
        message.contains(&addr.to_string()) && message.contains("in use"),
        "{message}"
    );
}
