//! The one normalised flow record every decoder produces and everything downstream consumes.

use std::net::{IpAddr, Ipv4Addr};

/// IP protocol numbers the rest of the pipeline cares about.
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const GRE: u8 = 47;
    pub const ICMPV6: u8 = 58;
}

/// TCP flag bits as they appear in the TCP header (and in NetFlow/IPFIX `tcpControlBits`).
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
}

/// A flow (or sampled packet) normalised from any telemetry protocol.
///
/// `bytes` and `packets` are **already scaled** by `sampling_rate`: a 1:1000 sFlow sample of one
/// 1500-byte packet becomes `packets = 1000, bytes = 1_500_000`. Fields the telemetry did not carry
/// are zero (`ttl`, `packet_len`, ports of non-TCP/UDP traffic, interfaces).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowRecord {
    /// Address of the exporting device (sFlow agent address, else the datagram's source address).
    pub exporter: IpAddr,
    /// Observation time, milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IP protocol number (`proto::*`); for ICMP, `src_port` is 0 and `dst_port` is `type << 8 | code`.
    pub protocol: u8,
    pub src_port: u16,
    pub dst_port: u16,
    /// Cumulative TCP flags (`tcp_flags::*`), 0 when not TCP or not exported.
    pub tcp_flags: u8,
    /// A sampled TCP header whose sequence number equals the destination address: the Mirai
    /// family's stateless scan probe. False when no header was sampled (flows).
    pub seq_is_dst: bool,
    /// Bytes, scaled by `sampling_rate`.
    pub bytes: u64,
    /// Packets, scaled by `sampling_rate`.
    pub packets: u64,
    /// The 1-in-N sampling rate that was applied to `bytes` and `packets` (1 when unsampled).
    pub sampling_rate: u32,
    /// The packet (or flow) is an IP fragment: IPv4 MF set or offset non-zero, IPv6 fragment header.
    pub fragment: bool,
    /// IPv4 TTL or IPv6 hop limit, 0 when unknown.
    pub ttl: u8,
    /// Length of the IP packet in bytes (IPv4 total length, IPv6 payload length + 40), 0 when unknown.
    pub packet_len: u16,
    /// SNMP ifIndex of the input and output interface, 0 when unknown.
    pub in_if: u32,
    pub out_if: u32,
    /// Which received datagram carried the record, numbered by the collector (0 = unknown:
    /// each such record counts as its own datagram). Detection asks how many datagrams stand
    /// behind an attack before a rule may move a route: one spoofed datagram is not enough.
    pub datagram: u32,
}

impl FlowRecord {
    /// An all-zero record for the given exporter, for decoders to fill in.
    pub const fn empty(exporter: IpAddr) -> Self {
        FlowRecord {
            exporter,
            time_ms: 0,
            src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            protocol: 0,
            src_port: 0,
            dst_port: 0,
            tcp_flags: 0,
            seq_is_dst: false,
            bytes: 0,
            packets: 0,
            sampling_rate: 1,
            fragment: false,
            ttl: 0,
            packet_len: 0,
            in_if: 0,
            out_if: 0,
            datagram: 0,
        }
    }
}

impl Default for FlowRecord {
    fn default() -> Self {
        Self::empty(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }
}
