use super::*;
use crate::tcp_flags;
use proptest::prelude::*;

const V4_SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const V4_DST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const V6_SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const V6_DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0xbeef, 2);

fn repr(vlans: &[u16], src: IpAddr, dst: IpAddr, transport: TransportRepr) -> PacketRepr {
    PacketRepr {
        ethernet: Some(EthernetRepr {
            source: [2, 0, 0, 0, 0, 1],
            destination: [2, 0, 0, 0, 0, 2],
            vlans: vlans.to_vec(),
        }),
        src,
        dst,
        ttl: 57,
        transport,
        payload_len: 10,
    }
}

fn udp_v4(vlans: &[u16]) -> PacketRepr {
    repr(
        vlans,
        V4_SRC.into(),
        V4_DST.into(),
        TransportRepr::Udp {
            src_port: 53,
            dst_port: 40000,
        },
    )
}

fn tcp_v6() -> PacketRepr {
    repr(
        &[],
        V6_SRC.into(),
        V6_DST.into(),
        TransportRepr::Tcp {
            src_port: 443,
            dst_port: 51000,
            flags: tcp_flags::SYN | tcp_flags::ACK,
        },
    )
}

#[test]
fn ipv4_udp_over_ethernet() {
    let bytes = udp_v4(&[]).to_vec();
    let h = parse_ethernet(&bytes).unwrap();
    assert_eq!(
        h,
        Headers {
            src: V4_SRC.into(),
            dst: V4_DST.into(),
            protocol: proto::UDP,
            src_port: 53,
            dst_port: 40000,
            tcp_flags: 0,
            seq_is_dst: false,
            fragment: false,
            ttl: 57,
            ip_len: 20 + 8 + 10,
            payload_offset: Some(14 + 20 + 8),
        }
    );
    assert!(Ipv4Packet::new_checked(&bytes[14..])
        .unwrap()
        .verify_checksum());
}

#[test]
fn single_vlan_tag() {
    let bytes = udp_v4(&[100]).to_vec();
    assert_eq!(&bytes[12..16], &[0x81, 0x00, 0x00, 100]);
    let h = parse_ethernet(&bytes).unwrap();
    assert_eq!((h.src_port, h.dst_port), (53, 40000));
    assert_eq!(h.payload_offset, Some(18 + 28));
}

#[test]
fn qinq_and_legacy_tpid() {
    let mut bytes = udp_v4(&[10, 20]).to_vec();
    assert_eq!(&bytes[12..14], &[0x88, 0xa8]);
    assert_eq!(
        parse_ethernet(&bytes).unwrap().payload_offset,
        Some(22 + 28)
    );
    bytes[12..14].copy_from_slice(&ethertype::QINQ_LEGACY.to_be_bytes());
    assert_eq!(parse_ethernet(&bytes).unwrap().dst_port, 40000);
}

#[test]
fn too_many_vlan_tags_is_not_ip() {
    let ok = udp_v4(&[1; MAX_VLAN_TAGS]).to_vec();
    assert!(parse_ethernet(&ok).is_ok());
    let too_many = udp_v4(&[1; MAX_VLAN_TAGS + 1]).to_vec();
    assert_eq!(parse_ethernet(&too_many), Err(HeaderError::NotIp));
}

#[test]
fn non_ip_ethertypes() {
    for ethertype in [ethertype::ARP, ethertype::MPLS, 0x88cc] {
        let mut bytes = udp_v4(&[]).to_vec();
        bytes[12..14].copy_from_slice(&ethertype.to_be_bytes());
        assert_eq!(parse_ethernet(&bytes), Err(HeaderError::NotIp));
    }
    // An IPv4 ethertype whose payload says version 6 is not trusted either way.
    let mut bytes = udp_v4(&[]).to_vec();
    bytes[14] = 0x65;
    assert_eq!(parse_ethernet(&bytes), Err(HeaderError::NotIp));
    assert_eq!(parse_ip(&[0x10; 40]), Err(HeaderError::NotIp));
    assert_eq!(parse_ip(&[]), Err(HeaderError::Truncated));
}

#[test]
fn ipv4_options_are_skipped_via_ihl() {
    let plain = udp_v4(&[]).to_vec();
    let mut bytes = plain[..34].to_vec();
    bytes[14] = 0x47; // IHL 7: 8 bytes of options
    bytes.extend_from_slice(&[1, 1, 1, 1, 1, 1, 1, 0]); // NOPs, end of options
    bytes.extend_from_slice(&plain[34..]);
    let h = parse_ethernet(&bytes).unwrap();
    assert_eq!((h.src_port, h.dst_port), (53, 40000));
    assert_eq!(h.payload_offset, Some(14 + 28 + 8));
    // Options cut off: addresses but no L4.
    let h = parse_ethernet(&bytes[..14 + 24]).unwrap();
    assert_eq!(
        (h.src, h.protocol, h.src_port, h.payload_offset),
        (V4_SRC.into(), proto::UDP, 0, None)
    );
}

#[test]
fn ipv4_malformed_ihl_keeps_addresses() {
    let mut bytes = udp_v4(&[]).to_vec();
    bytes[14] = 0x42;
    let h = parse_ethernet(&bytes).unwrap();
    assert_eq!(
        (h.dst, h.dst_port, h.payload_offset),
        (V4_DST.into(), 0, None)
    );
}

#[test]
fn ipv4_first_fragment_has_ports() {
    let mut bytes = udp_v4(&[]).to_vec();
    bytes[20] = 0x20; // MF, offset 0
    let h = parse_ethernet(&bytes).unwrap();
    assert!(h.fragment);
    assert_eq!((h.src_port, h.dst_port), (53, 40000));
}

#[test]
fn ipv4_later_fragment_has_no_l4() {
    let mut bytes = udp_v4(&[]).to_vec();
    bytes[20..22].copy_from_slice(&[0x00, 0xb9]); // last fragment, offset 185 × 8
    let h = parse_ethernet(&bytes).unwrap();
    assert!(h.fragment);
    assert_eq!((h.protocol, h.src_port, h.dst_port), (proto::UDP, 0, 0));
    assert_eq!(h.payload_offset, Some(34));
}

/// IPv6 + Hop-by-Hop (8 bytes) + Fragment header + `l4`, as a bare IP packet.
fn ipv6_with_ext_headers(fragment_offset: u16, l4: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0x60, 0, 0, 0];
    bytes.extend_from_slice(&((16 + l4.len()) as u16).to_be_bytes());
    bytes.extend_from_slice(&[ipv6_ext::HOP_BY_HOP, 64]);
    bytes.extend_from_slice(&V6_SRC.octets());
    bytes.extend_from_slice(&V6_DST.octets());
    bytes.extend_from_slice(&[ipv6_ext::FRAGMENT, 0, 1, 4, 0, 0, 0, 0]); // hop-by-hop, PadN
    bytes.extend_from_slice(&[proto::UDP, 0]);
    bytes.extend_from_slice(&((fragment_offset << 3) | 1).to_be_bytes());
    bytes.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    bytes.extend_from_slice(l4);
    bytes
}

#[test]
fn ipv6_hop_by_hop_and_first_fragment() {
    let udp = [0x13, 0x88, 0x00, 0x35, 0, 8, 0, 0];
    let bytes = ipv6_with_ext_headers(0, &udp);
    let h = parse_ip(&bytes).unwrap();
    assert_eq!(
        h,
        Headers {
            src: V6_SRC.into(),
            dst: V6_DST.into(),
            protocol: proto::UDP,
            src_port: 5000,
            dst_port: 53,
            tcp_flags: 0,
            seq_is_dst: false,
            fragment: true,
            ttl: 64,
            ip_len: 40 + 24,
            payload_offset: Some(64),
        }
    );
    // Cut inside the fragment header: the protocol is the header we could not get past.
    let h = parse_ip(&bytes[..52]).unwrap();
    assert_eq!(
        (h.protocol, h.fragment, h.src_port),
        (ipv6_ext::FRAGMENT, false, 0)
    );
}

#[test]
fn ipv6_later_fragment_has_no_l4() {
    let bytes = ipv6_with_ext_headers(100, &[0x13, 0x88, 0x00, 0x35, 0, 8, 0, 0]);
    let h = parse_ip(&bytes).unwrap();
    assert!(h.fragment);
    assert_eq!((h.protocol, h.src_port, h.dst_port), (proto::UDP, 0, 0));
    assert_eq!(h.payload_offset, Some(56));
}

#[test]
fn ipv6_auth_header_length_in_4_byte_units() {
    let mut bytes = vec![0x60, 0, 0, 0, 0, 32, ipv6_ext::AUTH, 64];
    bytes.extend_from_slice(&V6_SRC.octets());
    bytes.extend_from_slice(&V6_DST.octets());
    bytes.extend_from_slice(&[proto::TCP, 4, 0, 0]); // (4 + 2) × 4 = 24 bytes
    bytes.extend_from_slice(&[0; 20]);
    bytes.extend_from_slice(&[0, 22, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, tcp_flags::RST]);
    bytes.extend_from_slice(&[0; 6]);
    let h = parse_ip(&bytes).unwrap();
    assert_eq!(
        (h.protocol, h.src_port, h.dst_port, h.tcp_flags),
        (proto::TCP, 22, 80, tcp_flags::RST)
    );
}

#[test]
fn ipv6_extension_header_chain_is_bounded() {
    let mut bytes = vec![0x60, 0, 0, 0, 0, 0, ipv6_ext::DESTINATION_OPTIONS, 64];
    bytes.extend_from_slice(&V6_SRC.octets());
    bytes.extend_from_slice(&V6_DST.octets());
    for _ in 0..MAX_IPV6_EXT_HEADERS + 4 {
        bytes.extend_from_slice(&[ipv6_ext::DESTINATION_OPTIONS, 0, 1, 4, 0, 0, 0, 0]);
    }
    let h = parse_ip(&bytes).unwrap();
    assert_eq!(
        (h.protocol, h.payload_offset),
        (ipv6_ext::DESTINATION_OPTIONS, None)
    );
}

#[test]
fn tcp_over_ipv6() {
    let bytes = tcp_v6().to_vec();
    let h = parse_ethernet(&bytes).unwrap();
    assert_eq!((h.src, h.dst), (V6_SRC.into(), V6_DST.into()));
    assert_eq!(
        (h.protocol, h.src_port, h.dst_port),
        (proto::TCP, 443, 51000)
    );
    assert_eq!(h.tcp_flags, tcp_flags::SYN | tcp_flags::ACK);
    assert_eq!((h.ttl, h.ip_len, h.payload_offset), (57, 70, Some(14 + 60)));
}

#[test]
fn icmp_type_and_code_in_dst_port() {
    let icmp = TransportRepr::Icmp {
        msg_type: 3,
        code: 4,
    };
    let h = parse_ethernet(&repr(&[], V4_SRC.into(), V4_DST.into(), icmp).to_vec()).unwrap();
    assert_eq!(
        (h.protocol, h.src_port, h.dst_port),
        (proto::ICMP, 0, 0x0304)
    );
    let echo = TransportRepr::Icmp {
        msg_type: 128,
        code: 0,
    };
    let h = parse_ethernet(&repr(&[], V6_SRC.into(), V6_DST.into(), echo).to_vec()).unwrap();
    assert_eq!(
        (h.protocol, h.src_port, h.dst_port),
        (proto::ICMPV6, 0, 128 << 8)
    );
}

#[test]
fn gre_is_not_decapsulated() {
    let mut packet = repr(
        &[],
        V4_SRC.into(),
        V4_DST.into(),
        TransportRepr::Other {
            protocol: proto::GRE,
        },
    );
    packet.payload_len = 40;
    let mut bytes = packet.to_vec();
    bytes[34..38].copy_from_slice(&[0x20, 0x00, 0x08, 0x00]); // key present, IPv4 inside
    let h = parse_ethernet(&bytes).unwrap();
    assert_eq!((h.protocol, h.src_port, h.dst_port), (proto::GRE, 0, 0));
    assert_eq!((h.src, h.payload_offset), (V4_SRC.into(), Some(34 + 8)));
}

#[test]
fn unknown_protocol_payload_starts_after_ip() {
    let packet = repr(
        &[],
        V4_SRC.into(),
        V4_DST.into(),
        TransportRepr::Other { protocol: 132 },
    );
    let h = parse_ethernet(&packet.to_vec()).unwrap();
    assert_eq!(
        (h.protocol, h.src_port, h.payload_offset),
        (132, 0, Some(34))
    );
}

#[test]
fn cut_before_addresses_is_truncated() {
    let bytes = udp_v4(&[7]).to_vec();
    assert_eq!(
        parse_ethernet(&bytes[..18 + 19]),
        Err(HeaderError::Truncated)
    );
    assert!(parse_ethernet(&bytes[..18 + 20]).is_ok());
    let bytes = tcp_v6().to_vec();
    assert_eq!(
        parse_ethernet(&bytes[..14 + 39]),
        Err(HeaderError::Truncated)
    );
}

/// How much a parse result tells: it must never shrink as the input grows.
fn information(result: &Result<Headers, HeaderError>) -> u8 {
    match result {
        Err(_) => 0,
        Ok(h) if h.payload_offset.is_none() && h.src_port == 0 && h.dst_port == 0 => 1,
        Ok(h) if h.payload_offset.is_none() => 2,
        Ok(_) => 3,
    }
}

#[test]
fn truncation_at_every_length_degrades_monotonically() {
    let frames = [
        udp_v4(&[10, 20]).to_vec(),
        tcp_v6().to_vec(),
        repr(
            &[5],
            V4_SRC.into(),
            V4_DST.into(),
            TransportRepr::Icmp {
                msg_type: 8,
                code: 0,
            },
        )
        .to_vec(),
        {
            let mut eth = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
            eth.extend(ipv6_with_ext_headers(
                0,
                &[0x13, 0x88, 0x00, 0x35, 0, 8, 0, 0],
            ));
            eth
        },
    ];
    for frame in &frames {
        let full = parse_ethernet(frame).unwrap();
        let mut previous = 0;
        for len in 0..=frame.len() {
            let result = parse_ethernet(&frame[..len]);
            let info = information(&result);
            assert!(info >= previous, "len {len}: {result:?}");
            previous = info;
            if let Ok(h) = result {
                assert_eq!(
                    (h.src, h.dst, h.ttl, h.ip_len),
                    (full.src, full.dst, full.ttl, full.ip_len)
                );
                if h.payload_offset.is_some() {
                    assert!(h.payload_offset <= Some(len));
                }
                if info == 3 {
                    assert_eq!(h, full, "len {len}");
                }
            }
        }
        assert_eq!(previous, 3);
    }
}

#[test]
fn apply_copies_header_fields() {
    let h = parse_ethernet(&tcp_v6().to_vec()).unwrap();
    let mut rec = FlowRecord {
        packets: 9,
        ..FlowRecord::default()
    };
    h.apply(&mut rec);
    assert_eq!((rec.src, rec.dst, rec.protocol), (h.src, h.dst, proto::TCP));
    assert_eq!(
        (rec.src_port, rec.dst_port, rec.tcp_flags),
        (443, 51000, h.tcp_flags)
    );
    assert_eq!(
        (rec.ttl, rec.packet_len, rec.fragment, rec.packets),
        (57, 70, false, 9)
    );
}

#[test]
fn checksum_matches_etherparse() {
    let bytes = udp_v4(&[]).to_vec();
    let header = etherparse::Ipv4HeaderSlice::from_slice(&bytes[14..]).unwrap();
    assert_eq!(
        header.header_checksum(),
        header.to_header().calc_header_checksum()
    );
}

// ---- property tests ----

#[derive(Debug, Clone)]
enum L4 {
    Tcp(u16, u16, u8),
    Udp(u16, u16),
    Icmp(u8, u8),
}

fn l4_strategy() -> impl Strategy<Value = L4> {
    prop_oneof![
        (any::<u16>(), any::<u16>(), 0u8..0x40).prop_map(|(s, d, f)| L4::Tcp(s, d, f)),
        (any::<u16>(), any::<u16>()).prop_map(|(s, d)| L4::Udp(s, d)),
        (any::<u8>(), any::<u8>()).prop_map(|(t, c)| L4::Icmp(t, c)),
    ]
}

fn ip_pair() -> impl Strategy<Value = (IpAddr, IpAddr)> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<[u8; 4]>()).prop_map(|(s, d)| (IpAddr::from(s), IpAddr::from(d))),
        (any::<[u8; 16]>(), any::<[u8; 16]>())
            .prop_map(|(s, d)| (IpAddr::from(s), IpAddr::from(d))),
    ]
}

/// Builds a frame with etherparse's own `PacketBuilder`, independent of our emit side.
fn etherparse_frame(
    vlans: &[u16],
    (src, dst): (IpAddr, IpAddr),
    ttl: u8,
    l4: &L4,
    payload: &[u8],
) -> Vec<u8> {
    use etherparse::{PacketBuilder, VlanId};
    let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let vid = |i: usize| VlanId::try_new(vlans[i]).unwrap();
    let ip = match (vlans.len(), src, dst) {
        (0, IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), ttl),
        (1, IpAddr::V4(s), IpAddr::V4(d)) => {
            eth.single_vlan(vid(0)).ipv4(s.octets(), d.octets(), ttl)
        }
        (_, IpAddr::V4(s), IpAddr::V4(d)) => {
            eth.double_vlan(vid(0), vid(1))
                .ipv4(s.octets(), d.octets(), ttl)
        }
        (0, s, d) => eth.ipv6(to_ipv6(s).octets(), to_ipv6(d).octets(), ttl),
        (1, s, d) => eth
            .single_vlan(vid(0))
            .ipv6(to_ipv6(s).octets(), to_ipv6(d).octets(), ttl),
        (_, s, d) => {
            eth.double_vlan(vid(0), vid(1))
                .ipv6(to_ipv6(s).octets(), to_ipv6(d).octets(), ttl)
        }
    };
    let mut out = Vec::new();
    match *l4 {
        L4::Tcp(s, d, flags) => {
            let mut tcp = ip.tcp(s, d, 1, 1000);
            if flags & tcp_flags::FIN != 0 {
                tcp = tcp.fin();
            }
            if flags & tcp_flags::SYN != 0 {
                tcp = tcp.syn();
            }
            if flags & tcp_flags::RST != 0 {
                tcp = tcp.rst();
            }
            if flags & tcp_flags::PSH != 0 {
                tcp = tcp.psh();
            }
            if flags & tcp_flags::ACK != 0 {
                tcp = tcp.ack(7);
            }
            if flags & tcp_flags::URG != 0 {
                tcp = tcp.urg(9);
            }
            tcp.write(&mut out, payload).unwrap();
        }
        L4::Udp(s, d) => ip.udp(s, d).write(&mut out, payload).unwrap(),
        L4::Icmp(t, c) if src.is_ipv4() => ip
            .icmpv4_raw(t, c, [0; 4])
            .write(&mut out, payload)
            .unwrap(),
        L4::Icmp(t, c) => ip
            .icmpv6_raw(t, c, [0; 4])
            .write(&mut out, payload)
            .unwrap(),
    }
    out
}

/// The fields etherparse's lax parser reports, in our terms.
fn etherparse_view(frame: &[u8]) -> (IpAddr, IpAddr, u8, u8, u16, u16, u8) {
    use etherparse::{LaxNetSlice, LaxSlicedPacket, TransportSlice};
    let packet = LaxSlicedPacket::from_ethernet(frame).unwrap();
    let (src, dst, ttl, protocol) = match packet.net.as_ref().unwrap() {
        LaxNetSlice::Ipv4(ip) => (
            IpAddr::V4(ip.header().source_addr()),
            IpAddr::V4(ip.header().destination_addr()),
            ip.header().ttl(),
            ip.payload().ip_number.0,
        ),
        LaxNetSlice::Ipv6(ip) => (
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
            ip.header().hop_limit(),
            ip.payload().ip_number.0,
        ),
        LaxNetSlice::Arp(_) => panic!("arp"),
    };
    let (sport, dport, flags) = match packet.transport.as_ref().unwrap() {
        TransportSlice::Tcp(t) => {
            let flags = [t.fin(), t.syn(), t.rst(), t.psh(), t.ack(), t.urg()]
                .iter()
                .enumerate()
                .fold(0u8, |acc, (bit, &set)| acc | (u8::from(set) << bit));
            (t.source_port(), t.destination_port(), flags)
        }
        TransportSlice::Udp(u) => (u.source_port(), u.destination_port(), 0),
        TransportSlice::Icmpv4(i) => (0, u16::from(i.type_u8()) << 8 | u16::from(i.code_u8()), 0),
        TransportSlice::Icmpv6(i) => (0, u16::from(i.type_u8()) << 8 | u16::from(i.code_u8()), 0),
        TransportSlice::Igmp(_) => panic!("igmp"),
    };
    (src, dst, ttl, protocol, sport, dport, flags)
}

fn our_view(h: &Headers) -> (IpAddr, IpAddr, u8, u8, u16, u16, u8) {
    (
        h.src,
        h.dst,
        h.ttl,
        h.protocol,
        h.src_port,
        h.dst_port,
        h.tcp_flags,
    )
}

proptest! {
    #[test]
    fn agrees_with_etherparse(
        vlans in prop::collection::vec(0u16..4096, 0..=2),
        addrs in ip_pair(),
        ttl in any::<u8>(),
        l4 in l4_strategy(),
        payload in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let frame = etherparse_frame(&vlans, addrs, ttl, &l4, &payload);
        let ours = parse_ethernet(&frame).unwrap();
        prop_assert_eq!(our_view(&ours), etherparse_view(&frame));
        prop_assert_eq!(ours.payload_offset, Some(frame.len() - payload.len()));
    }

    #[test]
    fn emit_is_read_back_by_etherparse(
        vlans in prop::collection::vec(0u16..4096, 0..=2),
        (src, dst) in ip_pair(),
        ttl in any::<u8>(),
        l4 in l4_strategy(),
        payload_len in 0usize..64,
    ) {
        let transport = match l4 {
            L4::Tcp(src_port, dst_port, flags) => TransportRepr::Tcp { src_port, dst_port, flags },
            L4::Udp(src_port, dst_port) => TransportRepr::Udp { src_port, dst_port },
            L4::Icmp(msg_type, code) => TransportRepr::Icmp { msg_type, code },
        };
        let packet = PacketRepr { ttl, payload_len, ..repr(&vlans, src, dst, transport) };
        let frame = packet.to_vec();
        prop_assert_eq!(frame.len(), packet.buffer_len());
        let ours = parse_ethernet(&frame).unwrap();
        prop_assert_eq!(our_view(&ours), etherparse_view(&frame));
        prop_assert_eq!(ours.ip_len, packet.ip_len());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200), ethertype in any::<u16>()) {
        // A base near the top of usize must not overflow the payload offset.
        let _ = parse_ethertype(ethertype, &bytes, usize::MAX - 3);
        if let Ok(h) = parse_ip(&bytes) {
            prop_assert!(h.payload_offset.is_none_or(|o| o <= bytes.len()));
        }
        if let Ok(h) = parse_ethernet(&bytes) {
            prop_assert!(h.payload_offset.is_none_or(|o| o <= bytes.len()));
        }
    }

    #[test]
    fn ip_looking_bytes_never_panic(tail in prop::collection::vec(any::<u8>(), 0..120), v6 in any::<bool>(), next in prop::sample::select(vec![0u8, 6, 17, 1, 47, 43, 44, 51, 60, 58])) {
        let mut bytes = if v6 { vec![0x60, 0, 0, 0, 0, 0, next, 1] } else { vec![0x45, 0, 0, 0, 0, 0, 0, 0, 1, next, 0, 0] };
        bytes.extend(tail);
        if let Ok(h) = parse_ip(&bytes) {
            prop_assert!(h.payload_offset.is_none_or(|o| o <= bytes.len()));
        }
    }
}
