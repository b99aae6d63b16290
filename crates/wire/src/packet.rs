//! Packet headers: Ethernet II / 802.1Q / QinQ / IPv4 / IPv6 (+ extension headers) / TCP / UDP /
//! ICMP / GRE, decoded as far as the bytes go.
//!
//! sFlow exporters send only the first 64–256 bytes of each sampled packet, so truncation is the
//! normal case, not an error: every complete layer is reported, and only a packet without complete
//! IP addresses is an `Err`. The views ([`EthernetFrame`], [`Ipv4Packet`], ...) are the crate's
//! one view shape (the `view!` macro): `new_checked` requires the fixed header, and even a getter
//! past the end would return zero rather than index out of bounds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::be::u16_at;
use crate::view::view;
use crate::{proto, FlowRecord};

/// Byte offsets of every fixed header field, one module per header.
mod field {
    pub mod ethernet {
        pub const DESTINATION: usize = 0;
        pub const SOURCE: usize = 6;
        pub const ETHERTYPE: usize = 12;
        pub const HEADER_LEN: usize = 14;
    }

    pub mod vlan {
        pub const TCI: usize = 0;
        pub const ETHERTYPE: usize = 2;
        pub const HEADER_LEN: usize = 4;
    }

    pub mod ipv4 {
        pub const VER_IHL: usize = 0;
        pub const LENGTH: usize = 2;
        pub const FLAGS_OFFSET: usize = 6;
        pub const TTL: usize = 8;
        pub const PROTOCOL: usize = 9;
        pub const CHECKSUM: usize = 10;
        pub const SOURCE: usize = 12;
        pub const DESTINATION: usize = 16;
        /// Everything up to and including the addresses: what a truncated sample must still hold.
        pub const HEADER_LEN: usize = 20;
    }

    pub mod ipv6 {
        pub const VER_TC_FLOW: usize = 0;
        pub const PAYLOAD_LEN: usize = 4;
        pub const NEXT_HEADER: usize = 6;
        pub const HOP_LIMIT: usize = 7;
        pub const SOURCE: usize = 8;
        pub const DESTINATION: usize = 24;
        pub const HEADER_LEN: usize = 40;
    }

    /// IPv6 extension headers share the first two bytes; the fragment header adds its offset.
    pub mod ext {
        pub const NEXT_HEADER: usize = 0;
        pub const LENGTH: usize = 1;
        pub const FRAGMENT_OFFSET: usize = 2;
        pub const MIN_LEN: usize = 8;
    }

    pub mod tcp {
        pub const SOURCE_PORT: usize = 0;
        pub const DESTINATION_PORT: usize = 2;
        pub const SEQ_NUMBER: usize = 4;
        pub const DATA_OFFSET: usize = 12;
        pub const FLAGS: usize = 13;
        pub const HEADER_LEN: usize = 20;
    }

    pub mod udp {
        pub const SOURCE_PORT: usize = 0;
        pub const DESTINATION_PORT: usize = 2;
        pub const HEADER_LEN: usize = 8;
    }

    pub mod icmp {
        pub const TYPE: usize = 0;
        pub const CODE: usize = 1;
        /// Type, code, checksum and the 4-byte rest-of-header.
        pub const HEADER_LEN: usize = 8;
    }

    pub mod gre {
        pub const FLAGS: usize = 0;
        pub const HEADER_LEN: usize = 4;
    }
}

/// EtherType values we follow.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const VLAN: u16 = 0x8100;
    pub const IPV6: u16 = 0x86dd;
    pub const MPLS: u16 = 0x8847;
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard QinQ outer tag still sent by some switches.
    pub const QINQ_LEGACY: u16 = 0x9100;
}

/// IPv6 extension header numbers we walk past.
mod ipv6_ext {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const AUTH: u8 = 51;
    pub const DESTINATION_OPTIONS: u8 = 60;
}

/// More VLAN tags than this is not a real network; stop instead of walking a hostile stack.
const MAX_VLAN_TAGS: usize = 4;
/// Bound on IPv6 extension headers walked (real traffic has one or two).
const MAX_IPV6_EXT_HEADERS: usize = 8;

fn tail(bytes: &[u8], from: usize) -> &[u8] {
    bytes.get(from..).unwrap_or(&[])
}

view! {
    /// An Ethernet II frame.
    pub struct EthernetFrame, min_len = field::ethernet::HEADER_LEN, error = HeaderError;
    pub fn destination -> [u8; 6] = field::ethernet::DESTINATION;
    pub fn source -> [u8; 6] = field::ethernet::SOURCE;
    pub fn ethertype -> u16 = field::ethernet::ETHERTYPE;
}

impl<'a> EthernetFrame<&'a [u8]> {
    /// What follows the header, borrowed for as long as the underlying buffer.
    pub fn payload(&self) -> &'a [u8] {
        tail(self.buffer, field::ethernet::HEADER_LEN)
    }
}

view! {
    /// An 802.1Q / 802.1ad tag: the 4 bytes after a VLAN TPID, ending in the inner EtherType.
    pub struct VlanTag, min_len = field::vlan::HEADER_LEN, error = HeaderError;
    fn tci -> u16 = field::vlan::TCI;
    pub fn ethertype -> u16 = field::vlan::ETHERTYPE;
}

impl<T: AsRef<[u8]>> VlanTag<T> {
    pub fn vlan_id(&self) -> u16 {
        self.tci() & 0x0fff
    }
}

impl<'a> VlanTag<&'a [u8]> {
    /// What follows the header, borrowed for as long as the underlying buffer.
    pub fn payload(&self) -> &'a [u8] {
        tail(self.buffer, field::vlan::HEADER_LEN)
    }
}

view! {
    /// An IPv4 header (the fixed 20 bytes; options follow up to `header_len`).
    pub struct Ipv4Packet, min_len = field::ipv4::HEADER_LEN, error = HeaderError;
    fn ver_ihl -> u8 = field::ipv4::VER_IHL;
    pub fn total_len -> u16 = field::ipv4::LENGTH;
    fn flags_offset -> u16 = field::ipv4::FLAGS_OFFSET;
    pub fn ttl -> u8 = field::ipv4::TTL;
    pub fn protocol -> u8 = field::ipv4::PROTOCOL;
    pub fn checksum -> u16 = field::ipv4::CHECKSUM;
    pub fn source -> Ipv4Addr = field::ipv4::SOURCE;
    pub fn destination -> Ipv4Addr = field::ipv4::DESTINATION;
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    pub fn version(&self) -> u8 {
        self.ver_ihl() >> 4
    }
    /// Header length in bytes including options (IHL × 4); below 20 means a malformed header.
    pub fn header_len(&self) -> usize {
        usize::from(self.ver_ihl() & 0x0f) * 4
    }
    pub fn more_fragments(&self) -> bool {
        self.flags_offset() & 0x2000 != 0
    }
    /// Fragment offset in 8-byte units.
    pub fn fragment_offset(&self) -> u16 {
        self.flags_offset() & 0x1fff
    }
    /// True when the header (options included) is present and its checksum is right.
    pub fn verify_checksum(&self) -> bool {
        self.bytes()
            .get(..self.header_len())
            .is_some_and(|header| internet_checksum(header) == 0)
    }
}

view! {
    /// An IPv6 fixed header.
    pub struct Ipv6Packet, min_len = field::ipv6::HEADER_LEN, error = HeaderError;
    fn ver_tc_flow -> u8 = field::ipv6::VER_TC_FLOW;
    pub fn payload_len -> u16 = field::ipv6::PAYLOAD_LEN;
    pub fn next_header -> u8 = field::ipv6::NEXT_HEADER;
    pub fn hop_limit -> u8 = field::ipv6::HOP_LIMIT;
    pub fn source -> Ipv6Addr = field::ipv6::SOURCE;
    pub fn destination -> Ipv6Addr = field::ipv6::DESTINATION;
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    pub fn version(&self) -> u8 {
        self.ver_tc_flow() >> 4
    }
}

view! {
    /// An IPv6 extension header (Hop-by-Hop, Routing, Fragment, Destination Options, AH).
    pub struct Ipv6ExtHeader, min_len = field::ext::MIN_LEN, error = HeaderError;
    pub fn next_header -> u8 = field::ext::NEXT_HEADER;
    fn length_units -> u8 = field::ext::LENGTH;
    fn fragment_word -> u16 = field::ext::FRAGMENT_OFFSET;
}

impl<T: AsRef<[u8]>> Ipv6ExtHeader<T> {
    /// Total length in bytes of an extension header of the given kind: AH counts 4-byte units
    /// minus 2, the others 8-byte units minus 1, and the fragment header is always 8.
    pub fn header_len(&self, kind: u8) -> usize {
        let units = usize::from(self.length_units());
        match kind {
            ipv6_ext::FRAGMENT => field::ext::MIN_LEN,
            ipv6_ext::AUTH => (units + 2) * 4,
            _ => (units + 1) * 8,
        }
    }
    /// Fragment offset in 8-byte units (meaningful for the fragment header only).
    pub fn fragment_offset(&self) -> u16 {
        self.fragment_word() >> 3
    }
}

view! {
    /// A TCP header.
    pub struct TcpPacket, min_len = field::tcp::HEADER_LEN, error = HeaderError;
    pub fn src_port -> u16 = field::tcp::SOURCE_PORT;
    pub fn dst_port -> u16 = field::tcp::DESTINATION_PORT;
    pub fn seq_number -> u32 = field::tcp::SEQ_NUMBER;
    fn data_offset -> u8 = field::tcp::DATA_OFFSET;
    /// The flags byte (`tcp_flags::*`; NS lives in the data-offset byte and is not reported).
    pub fn flags -> u8 = field::tcp::FLAGS;
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Header length in bytes including options (data offset × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.data_offset() >> 4) * 4
    }
}

view! {
    /// A UDP header.
    pub struct UdpPacket, min_len = field::udp::HEADER_LEN, error = HeaderError;
    pub fn src_port -> u16 = field::udp::SOURCE_PORT;
    pub fn dst_port -> u16 = field::udp::DESTINATION_PORT;
}

view! {
    /// An ICMP or ICMPv6 header.
    pub struct IcmpPacket, min_len = field::icmp::HEADER_LEN, error = HeaderError;
    pub fn msg_type -> u8 = field::icmp::TYPE;
    pub fn code -> u8 = field::icmp::CODE;
}

view! {
    /// A GRE header (RFC 2784/2890); the tunnelled packet is not decapsulated.
    pub struct GrePacket, min_len = field::gre::HEADER_LEN, error = HeaderError;
    fn flags -> u16 = field::gre::FLAGS;
}

impl<T: AsRef<[u8]>> GrePacket<T> {
    /// Header length: 4, plus 4 for each of the checksum, key and sequence-number fields present.
    pub fn header_len(&self) -> usize {
        let flags = self.flags();
        let optional = [0x8000, 0x2000, 0x1000]
            .iter()
            .filter(|&&bit| flags & bit != 0)
            .count();
        field::gre::HEADER_LEN + optional * 4
    }
}

/// What the headers of one packet say, as far as they could be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The final IP protocol: for IPv6, the next header after the extension headers walked (or the
    /// extension header that was cut off).
    pub protocol: u8,
    /// 0 unless the TCP/UDP header is complete; ICMP: 0.
    pub src_port: u16,
    /// 0 unless the TCP/UDP header is complete; ICMP: `type << 8 | code`.
    pub dst_port: u16,
    pub tcp_flags: u8,
    /// The TCP sequence number equals the IPv4 destination address: the Mirai scanner's
    /// stateless probe (`attack/scanner.c` sets `seq = daddr`).
    pub seq_is_dst: bool,
    pub fragment: bool,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 total length or IPv6 payload length + 40, as the header claims (not the bytes present).
    pub ip_len: u16,
    /// Offset within the input of the first byte after the last header decoded: the L4 payload for
    /// TCP/UDP/ICMP/GRE, the IP payload for other protocols and non-first fragments. `None` when a
    /// header was cut off.
    pub payload_offset: Option<usize>,
}

impl Headers {
    fn ip(src: IpAddr, dst: IpAddr, protocol: u8, ttl: u8, ip_len: u16, fragment: bool) -> Self {
        Headers {
            src,
            dst,
            protocol,
            src_port: 0,
            dst_port: 0,
            tcp_flags: 0,
            seq_is_dst: false,
            fragment,
            ttl,
            ip_len,
            payload_offset: None,
        }
    }

    /// Copies what the headers say into `rec` (`packet_len` = `ip_len`); leaves counts, times and
    /// interfaces alone.
    pub fn apply(&self, rec: &mut FlowRecord) {
        rec.src = self.src;
        rec.dst = self.dst;
        rec.protocol = self.protocol;
        rec.src_port = self.src_port;
        rec.dst_port = self.dst_port;
        rec.tcp_flags = self.tcp_flags;
        rec.seq_is_dst = self.seq_is_dst;
        rec.fragment = self.fragment;
        rec.ttl = self.ttl;
        rec.packet_len = self.ip_len;
    }
}

/// Why a packet yielded no IP addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// Not IPv4/IPv6 (ARP, MPLS, LLDP, too many VLAN tags, wrong IP version nibble...).
    NotIp,
    /// The bytes end before the IP addresses.
    Truncated,
}

/// Decodes an Ethernet II frame (optionally VLAN-tagged) down to L4.
pub fn parse_ethernet(frame: &[u8]) -> Result<Headers, HeaderError> {
    let eth = EthernetFrame::new_checked(frame)?;
    parse_ethertype(eth.ethertype(), eth.payload(), field::ethernet::HEADER_LEN)
}

/// Decodes a bare IPv4 or IPv6 packet, telling the two apart by the version nibble.
pub fn parse_ip(packet: &[u8]) -> Result<Headers, HeaderError> {
    match packet.first().map(|b| b >> 4) {
        None => Err(HeaderError::Truncated),
        Some(4) => parse_ipv4(packet, 0),
        Some(6) => parse_ipv6(packet, 0),
        Some(_) => Err(HeaderError::NotIp),
    }
}

/// Decodes `payload` carried under `ethertype` (following VLAN tags); `base` is the offset of
/// `payload` in the original input, so that `payload_offset` is relative to that input.
pub fn parse_ethertype(
    ethertype: u16,
    payload: &[u8],
    base: usize,
) -> Result<Headers, HeaderError> {
    let (mut ethertype, mut payload, mut base) = (ethertype, payload, base);
    for _ in 0..=MAX_VLAN_TAGS {
        match ethertype {
            ethertype::IPV4 => return parse_ipv4(payload, base),
            ethertype::IPV6 => return parse_ipv6(payload, base),
            ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_LEGACY => {
                let tag = VlanTag::new_checked(payload)?;
                ethertype = tag.ethertype();
                payload = tag.payload();
                base = base.saturating_add(field::vlan::HEADER_LEN);
            }
            _ => return Err(HeaderError::NotIp),
        }
    }
    Err(HeaderError::NotIp)
}

fn parse_ipv4(bytes: &[u8], base: usize) -> Result<Headers, HeaderError> {
    let ip = Ipv4Packet::new_checked(bytes)?;
    if ip.version() != 4 {
        return Err(HeaderError::NotIp);
    }
    let first_fragment = ip.fragment_offset() == 0;
    let mut headers = Headers::ip(
        IpAddr::V4(ip.source()),
        IpAddr::V4(ip.destination()),
        ip.protocol(),
        ip.ttl(),
        ip.total_len(),
        ip.more_fragments() || !first_fragment,
    );
    let header_len = ip.header_len();
    // A malformed IHL (< 5) leaves nothing trustworthy past the addresses; options cut off
    // likewise leave no L4.
    if header_len < field::ipv4::HEADER_LEN || header_len > bytes.len() {
        return Ok(headers);
    }
    let payload_base = base.checked_add(header_len);
    if first_fragment {
        parse_l4(&mut headers, tail(bytes, header_len), payload_base);
    } else {
        // Non-first fragments carry no L4 header: their payload is the middle of someone's data.
        headers.payload_offset = payload_base;
    }
    Ok(headers)
}

fn parse_ipv6(bytes: &[u8], base: usize) -> Result<Headers, HeaderError> {
    let ip = Ipv6Packet::new_checked(bytes)?;
    if ip.version() != 6 {
        return Err(HeaderError::NotIp);
    }
    let mut headers = Headers::ip(
        IpAddr::V6(ip.source()),
        IpAddr::V6(ip.destination()),
        ip.next_header(),
        ip.hop_limit(),
        ip.payload_len()
            .saturating_add(field::ipv6::HEADER_LEN as u16),
        false,
    );
    let mut next_header = ip.next_header();
    let mut offset = field::ipv6::HEADER_LEN;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        if !matches!(
            next_header,
            ipv6_ext::HOP_BY_HOP
                | ipv6_ext::ROUTING
                | ipv6_ext::FRAGMENT
                | ipv6_ext::AUTH
                | ipv6_ext::DESTINATION_OPTIONS
        ) {
            headers.protocol = next_header;
            parse_l4(&mut headers, tail(bytes, offset), base.checked_add(offset));
            return Ok(headers);
        }
        // The extension header being walked stands in as the protocol until we get past it.
        headers.protocol = next_header;
        let Ok(ext) = Ipv6ExtHeader::new_checked(tail(bytes, offset)) else {
            return Ok(headers);
        };
        let ext_len = ext.header_len(next_header);
        let Some(end) = offset
            .checked_add(ext_len)
            .filter(|&end| end <= bytes.len())
        else {
            return Ok(headers);
        };
        if next_header == ipv6_ext::FRAGMENT {
            headers.fragment = true;
            if ext.fragment_offset() != 0 {
                headers.protocol = ext.next_header();
                headers.payload_offset = base.checked_add(end);
                return Ok(headers);
            }
        }
        next_header = ext.next_header();
        offset = end;
    }
    // Too many extension headers: report the last one reached, with no L4.
    headers.protocol = next_header;
    Ok(headers)
}

/// Fills ports and flags from the L4 header at the start of `payload`, when it is complete.
fn parse_l4(headers: &mut Headers, payload: &[u8], base: Option<usize>) {
    let header_len = match headers.protocol {
        proto::TCP => {
            let Ok(tcp) = TcpPacket::new_checked(payload) else {
                return;
            };
            headers.src_port = tcp.src_port();
            headers.dst_port = tcp.dst_port();
            headers.tcp_flags = tcp.flags();
            headers.seq_is_dst =
                matches!(headers.dst, IpAddr::V4(dst) if u32::from(dst) == tcp.seq_number());
            tcp.header_len().max(field::tcp::HEADER_LEN)
        }
        proto::UDP => {
            let Ok(udp) = UdpPacket::new_checked(payload) else {
                return;
            };
            headers.src_port = udp.src_port();
            headers.dst_port = udp.dst_port();
            field::udp::HEADER_LEN
        }
        proto::ICMP | proto::ICMPV6 => {
            let Ok(icmp) = IcmpPacket::new_checked(payload) else {
                return;
            };
            headers.dst_port = u16::from(icmp.msg_type()) << 8 | u16::from(icmp.code());
            field::icmp::HEADER_LEN
        }
        proto::GRE => {
            let Ok(gre) = GrePacket::new_checked(payload) else {
                return;
            };
            gre.header_len()
        }
        _ => 0,
    };
    if header_len <= payload.len() {
        headers.payload_offset = base.and_then(|b| b.checked_add(header_len));
    }
}

/// RFC 1071 one's-complement sum, folded and inverted: 0 over a header with a valid checksum.
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut chunks = bytes.chunks_exact(2);
    let mut sum: u32 = chunks
        .by_ref()
        .map(|pair| u32::from(u16_at(pair, 0)))
        .fold(0u32, u32::wrapping_add);
    if let [last] = chunks.remainder() {
        sum = sum.wrapping_add(u32::from(*last) << 8);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The link layer of an emitted packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EthernetRepr {
    pub source: [u8; 6],
    pub destination: [u8; 6],
    /// VLAN ids, outermost first. With two or more, the outer tags use TPID 0x88a8 (QinQ) and the
    /// innermost 0x8100.
    pub vlans: Vec<u16>,
}

/// The L4 header of an emitted packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportRepr {
    Tcp {
        src_port: u16,
        dst_port: u16,
        flags: u8,
    },
    Udp {
        src_port: u16,
        dst_port: u16,
    },
    /// ICMP for IPv4, ICMPv6 for IPv6.
    Icmp {
        msg_type: u8,
        code: u8,
    },
    /// Any other protocol number, with no L4 header written.
    Other {
        protocol: u8,
    },
}

impl TransportRepr {
    fn protocol(&self, ipv6: bool) -> u8 {
        match *self {
            TransportRepr::Tcp { .. } => proto::TCP,
            TransportRepr::Udp { .. } => proto::UDP,
            TransportRepr::Icmp { .. } if ipv6 => proto::ICMPV6,
            TransportRepr::Icmp { .. } => proto::ICMP,
            TransportRepr::Other { protocol } => protocol,
        }
    }

    fn header_len(&self) -> usize {
        match self {
            TransportRepr::Tcp { .. } => field::tcp::HEADER_LEN,
            TransportRepr::Udp { .. } => field::udp::HEADER_LEN,
            TransportRepr::Icmp { .. } => field::icmp::HEADER_LEN,
            TransportRepr::Other { .. } => 0,
        }
    }
}

/// A packet to emit, for tests and the scenario simulator: Ethernet [+ VLAN tags] (or bare IP) +
/// IPv4/IPv6 + TCP/UDP/ICMP + `payload_len` zero bytes. The IPv4 header checksum is correct; L4
/// checksums are left zero (nothing in Floodwall reads them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketRepr {
    /// `None` emits a bare IP packet (sFlow header protocol 11/12).
    pub ethernet: Option<EthernetRepr>,
    /// Source and destination must be the same family; a mixed pair emits IPv6 with the IPv4
    /// address mapped.
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    pub transport: TransportRepr,
    pub payload_len: usize,
}

impl PacketRepr {
    fn is_ipv6(&self) -> bool {
        self.src.is_ipv6() || self.dst.is_ipv6()
    }

    fn ip_header_len(&self) -> usize {
        if self.is_ipv6() {
            field::ipv6::HEADER_LEN
        } else {
            field::ipv4::HEADER_LEN
        }
    }

    fn link_len(&self) -> usize {
        self.ethernet.as_ref().map_or(0, |eth| {
            field::ethernet::HEADER_LEN + eth.vlans.len() * field::vlan::HEADER_LEN
        })
    }

    /// Length of the IP packet (header + L4 header + payload), saturated to 16 bits.
    pub fn ip_len(&self) -> u16 {
        let len = self.ip_header_len() + self.transport.header_len() + self.payload_len;
        u16::try_from(len).unwrap_or(u16::MAX)
    }

    /// Bytes [`Self::emit`] appends.
    pub fn buffer_len(&self) -> usize {
        self.link_len() + self.ip_header_len() + self.transport.header_len() + self.payload_len
    }

    /// Appends the packet to `out`, returning the number of bytes written.
    pub fn emit(&self, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        let ipv6 = self.is_ipv6();
        let ip_ethertype = if ipv6 {
            ethertype::IPV6
        } else {
            ethertype::IPV4
        };
        if let Some(eth) = &self.ethernet {
            out.extend_from_slice(&eth.destination);
            out.extend_from_slice(&eth.source);
            for (i, vlan) in eth.vlans.iter().enumerate() {
                let tpid = if i + 1 < eth.vlans.len() {
                    ethertype::QINQ
                } else {
                    ethertype::VLAN
                };
                out.extend_from_slice(&tpid.to_be_bytes());
                out.extend_from_slice(&(vlan & 0x0fff).to_be_bytes());
            }
            out.extend_from_slice(&ip_ethertype.to_be_bytes());
        }
        let protocol = self.transport.protocol(ipv6);
        let ip_start = out.len();
        if ipv6 {
            out.extend_from_slice(&[0x60, 0, 0, 0]);
            let payload_len = self.ip_len().saturating_sub(field::ipv6::HEADER_LEN as u16);
            out.extend_from_slice(&payload_len.to_be_bytes());
            out.extend_from_slice(&[protocol, self.ttl]);
            out.extend_from_slice(&to_ipv6(self.src).octets());
            out.extend_from_slice(&to_ipv6(self.dst).octets());
        } else {
            out.extend_from_slice(&[0x45, 0]);
            out.extend_from_slice(&self.ip_len().to_be_bytes());
            out.extend_from_slice(&[0, 0, 0x40, 0, self.ttl, protocol, 0, 0]);
            out.extend_from_slice(&to_ipv4(self.src).octets());
            out.extend_from_slice(&to_ipv4(self.dst).octets());
            let ip_end = out.len();
            if let Some(header) = out.get_mut(ip_start..ip_end) {
                let checksum = internet_checksum(header).to_be_bytes();
                let at = field::ipv4::CHECKSUM;
                if let Some(slot) = header.get_mut(at..at + 2) {
                    slot.copy_from_slice(&checksum);
                }
            }
        }
        match self.transport {
            TransportRepr::Tcp {
                src_port,
                dst_port,
                flags,
            } => {
                out.extend_from_slice(&src_port.to_be_bytes());
                out.extend_from_slice(&dst_port.to_be_bytes());
                out.extend_from_slice(&[0; 8]); // sequence and acknowledgment numbers
                out.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
            }
            TransportRepr::Udp { src_port, dst_port } => {
                out.extend_from_slice(&src_port.to_be_bytes());
                out.extend_from_slice(&dst_port.to_be_bytes());
                let udp_len = u16::try_from(field::udp::HEADER_LEN + self.payload_len);
                out.extend_from_slice(&udp_len.unwrap_or(u16::MAX).to_be_bytes());
                out.extend_from_slice(&[0, 0]);
            }
            TransportRepr::Icmp { msg_type, code } => {
                out.extend_from_slice(&[msg_type, code, 0, 0, 0, 0, 0, 0]);
            }
            TransportRepr::Other { .. } => {}
        }
        out.resize(out.len() + self.payload_len, 0);
        out.len() - start
    }

    /// The packet as a fresh buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.emit(&mut out);
        out
    }
}

fn to_ipv4(addr: IpAddr) -> Ipv4Addr {
    match addr {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(v6) => v6.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
    }
}

fn to_ipv6(addr: IpAddr) -> Ipv6Addr {
    match addr {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

#[cfg(test)]
mod tests;
