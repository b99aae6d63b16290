//! Writes the fuzz seed corpora (fuzz/seeds/<target>/) from the crate's own emitters, so the
//! fuzzers start with valid headers, templates and records instead of discovering them.
//!
//!     cargo run -p floodwall-wire --example fuzz_seeds -- fuzz/seeds
//!
//! Deterministic: rerunning rewrites identical files.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use floodwall_wire::export::{ExportClock, Flow, MessageWriter, TemplateRepr};
use floodwall_wire::netflow_v5;
use floodwall_wire::packet::{EthernetRepr, PacketRepr, TransportRepr};
use floodwall_wire::sflow::{
    header_protocol, CounterSampleRepr, DatagramRepr, FlowDataRepr, FlowSampleRepr, SampleRepr,
};
use floodwall_wire::template::Flavor;

/// The byte at which the netflow_v9, ipfix and decoder targets split their input into datagrams.
const MARKER: u8 = 0xA5;

const V4_SRC: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const V4_DST: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const V6_SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7);
const V6_DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x10);

const CLOCK: ExportClock = ExportClock {
    unix_secs: 1_700_000_000,
    sys_uptime_ms: 3_600_000,
};

fn main() {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/seeds".into()),
    );
    let sflow = sflow_datagrams();
    let v5 = netflow_v5_datagram();
    let v9 = template_messages(Flavor::NetflowV9);
    let ipfix = template_messages(Flavor::Ipfix);

    for (i, datagram) in sflow.iter().enumerate() {
        write(&root, "sflow", &format!("datagram{i}"), datagram);
    }
    write(&root, "netflow_v5", "datagram", &v5);
    for (i, packet) in packets().iter().enumerate() {
        write(&root, "packet", &format!("packet{i}"), packet);
    }
    for (name, flavor, messages) in [
        ("netflow_v9", Flavor::NetflowV9, &v9),
        ("ipfix", Flavor::Ipfix, &ipfix),
    ] {
        // The target prepends the 2-byte version to every chunk and alternates the exporter
        // (chunk i comes from 192.0.2.(i % 2)); an empty chunk keeps template and data on one
        // exporter. Also: data before its template (held, then released) and all in one chunk.
        let strip = |m: &Vec<u8>| strip_version(flavor, m);
        let [templates, data] = [&messages.templates, &messages.data].map(strip);
        write(
            &root,
            name,
            "template_then_data",
            &join(&[&templates, &[], &data]),
        );
        write(
            &root,
            name,
            "data_then_template",
            &join(&[&data, &[], &templates]),
        );
        write(&root, name, "one_message", &strip(&messages.combined));
        if let Some(withdrawal) = &messages.withdrawal {
            let withdrawal = strip(withdrawal);
            write(
                &root,
                name,
                "withdrawal",
                &join(&[&templates, &[], &withdrawal, &[], &data]),
            );
        }
    }
    // The decoder target feeds whole datagrams, chunk i from 192.0.2.(i % 3): each data message
    // sits three chunks after its templates, so both come from the same exporter.
    let mixed = join(&[
        &v9.templates,
        &sflow[0],
        &ipfix.templates,
        &v9.data,
        &v5,
        &ipfix.data,
    ]);
    write(&root, "decoder", "mixed", &mixed);
    write(&root, "decoder", "v9", &v9.combined);
    write(&root, "decoder", "ipfix", &ipfix.combined);
}

fn write(root: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = root.join(target);
    std::fs::create_dir_all(&dir).expect("create seed directory");
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

/// Datagrams joined with the marker; a marker inside one would split it, so that is refused.
fn join(datagrams: &[&[u8]]) -> Vec<u8> {
    for datagram in datagrams {
        assert!(
            !datagram.contains(&MARKER),
            "seed datagram contains the 0x{MARKER:02x} split marker; change a value"
        );
    }
    datagrams.join(&MARKER)
}

fn strip_version(flavor: Flavor, message: &[u8]) -> Vec<u8> {
    let version: u8 = match flavor {
        Flavor::NetflowV9 => 9,
        Flavor::Ipfix => 10,
    };
    assert_eq!(message[..2], [0, version]);
    message[2..].to_vec()
}

fn flow(src: IpAddr, dst: IpAddr, protocol: u8, dst_port: u16) -> Flow {
    let end_ms = u64::from(CLOCK.unix_secs) * 1000 - 1_500;
    Flow {
        src,
        dst,
        src_port: 40_000,
        dst_port,
        protocol,
        tcp_flags: 0x12,
        bytes: 64_000,
        packets: 100,
        in_if: 3,
        out_if: 7,
        start_ms: end_ms - 20_000,
        end_ms,
    }
}

struct TemplateMessages {
    /// Data and options templates.
    templates: Vec<u8>,
    /// Options data (sampling) and data sets for those templates.
    data: Vec<u8>,
    /// Templates and data in one message.
    combined: Vec<u8>,
    /// IPFIX only: withdraws the IPv6 template.
    withdrawal: Option<Vec<u8>>,
}

fn template_messages(flavor: Flavor) -> TemplateMessages {
    let v4 = TemplateRepr::standard(flavor, 256, false);
    let v6 = TemplateRepr::standard(flavor, 257, true);
    let options = TemplateRepr::sampling_options(flavor, 258);
    let exotic = (flavor == Flavor::Ipfix).then(|| TemplateRepr::exotic(259));
    let v4_flows = [
        flow(V4_SRC.into(), V4_DST.into(), 6, 443),
        flow(V4_DST.into(), V4_SRC.into(), 17, 53),
    ];
    let v6_flows = [flow(V6_SRC.into(), V6_DST.into(), 58, 0)];

    let add_templates = |w: &mut MessageWriter| {
        let mut data = vec![&v4, &v6];
        data.extend(exotic.as_ref());
        w.templates(&data).templates(&[&options]);
    };
    let add_data = |w: &mut MessageWriter| {
        w.sampling(&options, 1000)
            .flows(&v4, &v4_flows)
            .flows(&v6, &v6_flows);
        if let Some(exotic) = &exotic {
            w.flows(exotic, &v4_flows[..1]);
        }
    };

    let mut w = MessageWriter::new(flavor, CLOCK, 10, 1);
    add_templates(&mut w);
    let templates = w.finish();
    let mut w = MessageWriter::new(flavor, CLOCK, 11, 1);
    add_data(&mut w);
    let data = w.finish();
    let mut w = MessageWriter::new(flavor, CLOCK, 12, 1);
    add_templates(&mut w);
    add_data(&mut w);
    let combined = w.finish();
    let withdrawal = (flavor == Flavor::Ipfix).then(|| {
        MessageWriter::new(flavor, CLOCK, 13, 1)
            .withdrawal(257, false)
            .finish()
    });
    TemplateMessages {
        templates,
        data,
        combined,
        withdrawal,
    }
}

fn netflow_v5_datagram() -> Vec<u8> {
    let header = netflow_v5::HeaderRepr {
        sys_uptime: CLOCK.sys_uptime_ms,
        unix_secs: CLOCK.unix_secs,
        unix_nsecs: 0,
        flow_sequence: 1,
        engine_type: 0,
        engine_id: 1,
        sampling: 0x4000 | 100, // mode 1 (deterministic), 1 in 100
    };
    let record = |src_addr, dst_addr, protocol, dst_port| netflow_v5::RecordRepr {
        src_addr,
        dst_addr,
        next_hop: Ipv4Addr::new(192, 0, 2, 254),
        input: 3,
        output: 7,
        packets: 10,
        octets: 15_000,
        first: CLOCK.sys_uptime_ms - 20_000,
        last: CLOCK.sys_uptime_ms - 1_000,
        src_port: 40_000,
        dst_port,
        tcp_flags: 0x1b,
        protocol,
        tos: 0,
        src_as: 64_500,
        dst_as: 64_501,
        src_mask: 24,
        dst_mask: 24,
    };
    netflow_v5::emit(
        &header,
        &[
            record(V4_SRC, V4_DST, 6, 443),
            record(V4_DST, V4_SRC, 17, 53),
        ],
    )
}

fn packets() -> Vec<Vec<u8>> {
    let eth = |vlans: Vec<u16>| EthernetRepr {
        source: [2, 0, 0, 0, 0, 1],
        destination: [2, 0, 0, 0, 0, 2],
        vlans,
    };
    let packet = |ethernet, src: IpAddr, dst: IpAddr, transport| PacketRepr {
        ethernet,
        src,
        dst,
        ttl: 64,
        transport,
        payload_len: 8,
    };
    let tcp = TransportRepr::Tcp {
        src_port: 40_000,
        dst_port: 443,
        flags: 0x02,
    };
    let udp = TransportRepr::Udp {
        src_port: 40_000,
        dst_port: 53,
    };
    let icmp = TransportRepr::Icmp {
        msg_type: 8,
        code: 0,
    };
    [
        packet(Some(eth(vec![])), V4_SRC.into(), V4_DST.into(), tcp),
        packet(Some(eth(vec![10])), V6_SRC.into(), V6_DST.into(), udp),
        packet(Some(eth(vec![100, 20])), V4_SRC.into(), V4_DST.into(), icmp),
        packet(None, V4_SRC.into(), V4_DST.into(), udp),
        packet(None, V6_SRC.into(), V6_DST.into(), icmp),
        packet(
            None,
            V4_SRC.into(),
            V4_DST.into(),
            TransportRepr::Other { protocol: 47 },
        ),
    ]
    .iter()
    .map(PacketRepr::to_vec)
    .collect()
}

fn sflow_datagrams() -> Vec<Vec<u8>> {
    let flow_sample = |expanded, records| {
        SampleRepr::Flow(FlowSampleRepr {
            expanded,
            sequence: 1,
            source_id_type: 0,
            source_id_index: 3,
            sampling_rate: 1024,
            sample_pool: 4096,
            drops: 0,
            input: 3,
            output: 7,
            records,
        })
    };
    let ethernet_tcp = PacketRepr {
        ethernet: Some(EthernetRepr {
            source: [2, 0, 0, 0, 0, 1],
            destination: [2, 0, 0, 0, 0, 2],
            vlans: vec![10],
        }),
        src: V4_SRC.into(),
        dst: V4_DST.into(),
        ttl: 64,
        transport: TransportRepr::Tcp {
            src_port: 40_000,
            dst_port: 443,
            flags: 0x02,
        },
        payload_len: 0,
    };
    let ipv6_udp = PacketRepr {
        ethernet: None,
        src: V6_SRC.into(),
        dst: V6_DST.into(),
        ttl: 64,
        transport: TransportRepr::Udp {
            src_port: 40_000,
            dst_port: 53,
        },
        payload_len: 0,
    };
    let datagram = |agent: IpAddr, samples| {
        DatagramRepr {
            agent,
            sub_agent_id: 0,
            sequence: 1,
            uptime_ms: CLOCK.sys_uptime_ms,
            samples,
        }
        .to_vec()
    };
    vec![
        datagram(
            V4_SRC.into(),
            vec![
                flow_sample(
                    false,
                    vec![
                        FlowDataRepr::ethernet(ethernet_tcp.to_vec(), 1518),
                        FlowDataRepr::ExtendedSwitch {
                            src_vlan: 10,
                            src_priority: 0,
                            dst_vlan: 20,
                            dst_priority: 0,
                        },
                    ],
                ),
                SampleRepr::Counters(CounterSampleRepr {
                    expanded: false,
                    sequence: 1,
                    source_id_type: 0,
                    source_id_index: 3,
                    if_index: 3,
                    if_speed: 10_000_000_000,
                    in_octets: 1 << 40,
                    out_octets: 1 << 39,
                }),
            ],
        ),
        datagram(
            V6_SRC.into(),
            vec![
                flow_sample(
                    true,
                    vec![FlowDataRepr::RawHeader {
                        protocol: header_protocol::IPV6,
                        frame_length: 1280,
                        stripped: 0,
                        header: ipv6_udp.to_vec(),
                    }],
                ),
                flow_sample(
                    false,
                    vec![
                        FlowDataRepr::SampledIpv4 {
                            length: 1500,
                            protocol: 6,
                            src: V4_SRC,
                            dst: V4_DST,
                            src_port: 40_000,
                            dst_port: 80,
                            tcp_flags: 0x10,
                            tos: 0,
                        },
                        FlowDataRepr::SampledIpv6 {
                            length: 1280,
                            protocol: 17,
                            src: V6_SRC,
                            dst: V6_DST,
                            src_port: 40_000,
                            dst_port: 53,
                            tcp_flags: 0,
                            priority: 0,
                        },
                    ],
                ),
            ],
        ),
    ]
}
