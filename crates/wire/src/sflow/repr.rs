//! The emit side: sFlow v5 datagrams built from plain structs, for tests, benches and the
//! scenario simulator. `decode(emit(x))` yields one record per flow sample with an IP header.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{header_protocol, record_format, sample_format, VERSION};

/// A datagram to emit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatagramRepr {
    pub agent: IpAddr,
    pub sub_agent_id: u32,
    pub sequence: u32,
    pub uptime_ms: u32,
    pub samples: Vec<SampleRepr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SampleRepr {
    Flow(FlowSampleRepr),
    Counters(CounterSampleRepr),
}

/// A flow sample, compact (format 1) or expanded (format 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowSampleRepr {
    pub expanded: bool,
    pub sequence: u32,
    /// Source id type (0 = ifIndex); the compact format keeps only its low 8 bits.
    pub source_id_type: u32,
    /// Source id index; the compact format keeps only its low 24 bits.
    pub source_id_index: u32,
    pub sampling_rate: u32,
    pub sample_pool: u32,
    pub drops: u32,
    /// Interface format in the top 2 bits, value in the low 30 (format 0 = ifIndex), as in the
    /// compact format; the expanded format writes the two parts as separate words.
    pub input: u32,
    pub output: u32,
    pub records: Vec<FlowDataRepr>,
}

/// A flow record inside a flow sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowDataRepr {
    /// `protocol` is a `header_protocol` value; `header` is padded to 4 bytes on the wire.
    RawHeader {
        protocol: u32,
        frame_length: u32,
        stripped: u32,
        header: Vec<u8>,
    },
    SampledIpv4 {
        length: u32,
        protocol: u32,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        src_port: u32,
        dst_port: u32,
        tcp_flags: u32,
        tos: u32,
    },
    SampledIpv6 {
        length: u32,
        protocol: u32,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        src_port: u32,
        dst_port: u32,
        tcp_flags: u32,
        priority: u32,
    },
    ExtendedSwitch {
        src_vlan: u32,
        src_priority: u32,
        dst_vlan: u32,
        dst_priority: u32,
    },
}

impl FlowDataRepr {
    /// A raw Ethernet header record of a packet `frame_length` bytes long on the wire.
    pub fn ethernet(header: Vec<u8>, frame_length: u32) -> Self {
        FlowDataRepr::RawHeader {
            protocol: header_protocol::ETHERNET,
            frame_length,
            stripped: 4,
            header,
        }
    }
}

/// A counter sample holding one generic interface counters record (the rest of its fields zero).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterSampleRepr {
    pub expanded: bool,
    pub sequence: u32,
    pub source_id_type: u32,
    pub source_id_index: u32,
    pub if_index: u32,
    pub if_speed: u64,
    pub in_octets: u64,
    pub out_octets: u64,
}

/// Appends XDR words and length-prefixed opaque blocks to a Vec.
struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    fn u32(&mut self, value: u32) -> &mut Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }

    fn u64(&mut self, value: u64) -> &mut Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }

    fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        self
    }

    fn pad(&mut self) -> &mut Self {
        let len = self.0.len();
        self.0.resize(super::padded(len), 0);
        self
    }

    /// Writes `format` (enterprise 0) and the opaque block `body` writes, prefixed by its length.
    fn envelope(&mut self, format: u32, body: impl FnOnce(&mut Self)) -> &mut Self {
        self.u32(format);
        let length_at = self.0.len();
        self.u32(0);
        body(self);
        let length = u32::try_from(self.0.len() - length_at - 4).unwrap_or(u32::MAX);
        if let Some(slot) = self.0.get_mut(length_at..length_at + 4) {
            slot.copy_from_slice(&length.to_be_bytes());
        }
        self
    }

    fn address(&mut self, address: IpAddr) -> &mut Self {
        match address {
            IpAddr::V4(v4) => self.u32(super::ADDRESS_IPV4).bytes(&v4.octets()),
            IpAddr::V6(v6) => self.u32(super::ADDRESS_IPV6).bytes(&v6.octets()),
        }
    }
}

fn count(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

impl DatagramRepr {
    /// Appends the datagram to `out`, returning the number of bytes written.
    pub fn emit(&self, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        let mut w = Writer(out);
        w.u32(VERSION)
            .address(self.agent)
            .u32(self.sub_agent_id)
            .u32(self.sequence)
            .u32(self.uptime_ms)
            .u32(count(self.samples.len()));
        for sample in &self.samples {
            match sample {
                SampleRepr::Flow(flow) => flow.emit(&mut w),
                SampleRepr::Counters(counters) => counters.emit(&mut w),
            }
        }
        out.len() - start
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.emit(&mut out);
        out
    }
}

impl FlowSampleRepr {
    fn emit(&self, w: &mut Writer<'_>) {
        let format = if self.expanded {
            sample_format::EXPANDED_FLOW
        } else {
            sample_format::FLOW
        };
        w.envelope(format, |w| {
            w.u32(self.sequence);
            if self.expanded {
                w.u32(self.source_id_type).u32(self.source_id_index);
            } else {
                w.u32(self.source_id_type << 24 | (self.source_id_index & 0x00ff_ffff));
            }
            w.u32(self.sampling_rate)
                .u32(self.sample_pool)
                .u32(self.drops);
            for interface in [self.input, self.output] {
                if self.expanded {
                    w.u32(interface >> 30).u32(interface & 0x3fff_ffff);
                } else {
                    w.u32(interface);
                }
            }
            w.u32(count(self.records.len()));
            for record in &self.records {
                record.emit(w);
            }
        });
    }
}

impl FlowDataRepr {
    fn emit(&self, w: &mut Writer<'_>) {
        match self {
            FlowDataRepr::RawHeader {
                protocol,
                frame_length,
                stripped,
                header,
            } => w.envelope(record_format::RAW_PACKET_HEADER, |w| {
                w.u32(*protocol)
                    .u32(*frame_length)
                    .u32(*stripped)
                    .u32(count(header.len()))
                    .bytes(header)
                    .pad();
            }),
            FlowDataRepr::SampledIpv4 {
                length,
                protocol,
                src,
                dst,
                src_port,
                dst_port,
                tcp_flags,
                tos,
            } => w.envelope(record_format::SAMPLED_IPV4, |w| {
                w.u32(*length)
                    .u32(*protocol)
                    .bytes(&src.octets())
                    .bytes(&dst.octets())
                    .u32(*src_port)
                    .u32(*dst_port)
                    .u32(*tcp_flags)
                    .u32(*tos);
            }),
            FlowDataRepr::SampledIpv6 {
                length,
                protocol,
                src,
                dst,
                src_port,
                dst_port,
                tcp_flags,
                priority,
            } => w.envelope(record_format::SAMPLED_IPV6, |w| {
                w.u32(*length)
                    .u32(*protocol)
                    .bytes(&src.octets())
                    .bytes(&dst.octets())
                    .u32(*src_port)
                    .u32(*dst_port)
                    .u32(*tcp_flags)
                    .u32(*priority);
            }),
            FlowDataRepr::ExtendedSwitch {
                src_vlan,
                src_priority,
                dst_vlan,
                dst_priority,
            } => w.envelope(record_format::EXTENDED_SWITCH, |w| {
                w.u32(*src_vlan)
                    .u32(*src_priority)
                    .u32(*dst_vlan)
                    .u32(*dst_priority);
            }),
        };
    }
}

impl CounterSampleRepr {
    fn emit(&self, w: &mut Writer<'_>) {
        let format = if self.expanded {
            sample_format::EXPANDED_COUNTERS
        } else {
            sample_format::COUNTERS
        };
        w.envelope(format, |w| {
            w.u32(self.sequence);
            if self.expanded {
                w.u32(self.source_id_type).u32(self.source_id_index);
            } else {
                w.u32(self.source_id_type << 24 | (self.source_id_index & 0x00ff_ffff));
            }
            w.u32(1); // one counter record
            w.envelope(record_format::GENERIC_INTERFACE, |w| {
                w.u32(self.if_index)
                    .u32(6) // ifType: ethernetCsmacd
                    .u64(self.if_speed)
                    .u32(1) // ifDirection: full duplex
                    .u32(3) // ifStatus: admin and oper up
                    .u64(self.in_octets)
                    .bytes(&[0; 24]) // in unicast/multicast/broadcast/discards/errors/unknown
                    .u64(self.out_octets)
                    .bytes(&[0; 20]) // out unicast/multicast/broadcast/discards/errors
                    .u32(0); // promiscuous mode
            });
        });
    }
}
