//! sFlow v5 datagrams (<https://sflow.org/sflow_version_5.txt>): XDR, big-endian, opaque data
//! padded to 4 bytes.
//!
//! One [`FlowRecord`] per flow sample, built from its raw packet header record (decoded with
//! [`crate::packet`]) or, failing that, its sampled IPv4/IPv6 record. Counter samples are counted
//! and skipped; extended records and anything unknown are skipped by their length.
//!
//! Errors: a fixed-size structure cut off by the end of the data is [`DecodeError::Truncated`]; a
//! declared length running past its container is [`DecodeError::BadLength`] (a sample running
//! past the datagram is `Truncated`, since the datagram may have been cut, unless its length could
//! not fit in any datagram); a sample or record count larger than the bytes present is
//! [`DecodeError::BadCount`]. A bad sample is skipped and decoding continues with the next one (its
//! length is known); the first error is returned after the rest of the datagram is decoded. Every
//! loop consumes at least 8 bytes per iteration, so a lying count cannot make it spin.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::packet::{self, Headers};
use crate::trust::{pool_key, PoolVerdict, SamplePools};
use crate::view::view;
use crate::{Context, DecodeError, ExporterCounters, FlowRecord, Sequence, Summary};

/// Byte offsets of the fixed-layout structures, one module per structure.
mod field {
    /// Datagram header up to the agent address.
    pub mod datagram {
        pub const VERSION: usize = 0;
        pub const ADDRESS_TYPE: usize = 4;
        pub const ADDRESS: usize = 8;
    }

    /// Datagram header after the (variable-length) agent address.
    pub mod datagram_tail {
        pub const SUB_AGENT_ID: usize = 0;
        pub const SEQUENCE: usize = 4;
        pub const UPTIME: usize = 8;
        pub const NUM_SAMPLES: usize = 12;
        pub const LEN: usize = 16;
    }

    /// `data_format` (enterprise << 12 | format) + opaque length: the envelope of samples and records.
    pub mod envelope {
        pub const DATA_FORMAT: usize = 0;
        pub const LENGTH: usize = 4;
        pub const LEN: usize = 8;
    }

    pub mod flow_sample {
        pub const SEQUENCE: usize = 0;
        pub const SOURCE_ID: usize = 4;
        pub const SAMPLING_RATE: usize = 8;
        pub const SAMPLE_POOL: usize = 12;
        pub const DROPS: usize = 16;
        pub const INPUT: usize = 20;
        pub const OUTPUT: usize = 24;
        pub const NUM_RECORDS: usize = 28;
        pub const LEN: usize = 32;
    }

    pub mod expanded_flow_sample {
        pub const SEQUENCE: usize = 0;
        pub const SOURCE_ID_TYPE: usize = 4;
        pub const SOURCE_ID_INDEX: usize = 8;
        pub const SAMPLING_RATE: usize = 12;
        pub const SAMPLE_POOL: usize = 16;
        pub const DROPS: usize = 20;
        pub const INPUT_FORMAT: usize = 24;
        pub const INPUT_VALUE: usize = 28;
        pub const OUTPUT_FORMAT: usize = 32;
        pub const OUTPUT_VALUE: usize = 36;
        pub const NUM_RECORDS: usize = 40;
        pub const LEN: usize = 44;
    }

    pub mod raw_header {
        pub const PROTOCOL: usize = 0;
        pub const FRAME_LENGTH: usize = 4;
        pub const STRIPPED: usize = 8;
        pub const HEADER_LENGTH: usize = 12;
        pub const LEN: usize = 16;
    }

    pub mod sampled_ipv4 {
        pub const LENGTH: usize = 0;
        pub const PROTOCOL: usize = 4;
        pub const SOURCE: usize = 8;
        pub const DESTINATION: usize = 12;
        pub const SOURCE_PORT: usize = 16;
        pub const DESTINATION_PORT: usize = 20;
        pub const TCP_FLAGS: usize = 24;
        pub const TOS: usize = 28;
        pub const LEN: usize = 32;
    }

    pub mod sampled_ipv6 {
        pub const LENGTH: usize = 0;
        pub const PROTOCOL: usize = 4;
        pub const SOURCE: usize = 8;
        pub const DESTINATION: usize = 24;
        pub const SOURCE_PORT: usize = 40;
        pub const DESTINATION_PORT: usize = 44;
        pub const TCP_FLAGS: usize = 48;
        pub const PRIORITY: usize = 52;
        pub const LEN: usize = 56;
    }
}

pub const VERSION: u32 = 5;
const ADDRESS_IPV4: u32 = 1;
const ADDRESS_IPV6: u32 = 2;

/// Sample formats (enterprise 0).
pub mod sample_format {
    pub const FLOW: u32 = 1;
    pub const COUNTERS: u32 = 2;
    pub const EXPANDED_FLOW: u32 = 3;
    pub const EXPANDED_COUNTERS: u32 = 4;
}

/// Flow and counter record formats (enterprise 0).
pub mod record_format {
    pub const RAW_PACKET_HEADER: u32 = 1;
    pub const SAMPLED_IPV4: u32 = 3;
    pub const SAMPLED_IPV6: u32 = 4;
    pub const EXTENDED_SWITCH: u32 = 1001;
    pub const EXTENDED_ROUTER: u32 = 1002;
    pub const EXTENDED_GATEWAY: u32 = 1003;
    /// Counter record: generic interface counters.
    pub const GENERIC_INTERFACE: u32 = 1;
}

/// `header_protocol` values of a raw packet header record that we decode.
pub mod header_protocol {
    pub const ETHERNET: u32 = 1;
    pub const IPV4: u32 = 11;
    pub const IPV6: u32 = 12;
}

/// The largest opaque length that a UDP datagram could carry: anything longer is a lie, not a cut.
const MAX_DATAGRAM_LEN: u32 = 65_535;

/// XDR pads opaque data to a multiple of 4 bytes.
fn padded(len: usize) -> usize {
    len.saturating_add(3) & !3
}

view! {
    /// The enterprise/format tag and opaque length that wrap every sample and record.
    pub struct Envelope, min_len = field::envelope::LEN, error = DecodeError;
    fn data_format -> u32 = field::envelope::DATA_FORMAT;
    pub fn length -> u32 = field::envelope::LENGTH;
}

impl<T: AsRef<[u8]>> Envelope<T> {
    pub fn enterprise(&self) -> u32 {
        self.data_format() >> 12
    }
    pub fn format(&self) -> u32 {
        self.data_format() & 0x0fff
    }
    /// Enterprise 0 format, or `None` for vendor structures (all skipped).
    fn standard_format(&self) -> Option<u32> {
        (self.enterprise() == 0).then(|| self.format())
    }
}

impl<'a> Envelope<&'a [u8]> {
    /// The body, and what follows it (after padding); `None` when the body runs past the buffer.
    pub fn split(&self) -> Option<(&'a [u8], &'a [u8])> {
        let rest = self.buffer.get(field::envelope::LEN..)?;
        let len = usize::try_from(self.length()).ok()?;
        let body = rest.get(..len)?;
        // Tolerate a missing final pad: some exporters do not pad the last structure.
        let next = rest.get(padded(len)..).unwrap_or(&[]);
        Some((body, next))
    }
}

view! {
    /// A compact flow sample (format 1): interfaces and source id packed into 32-bit words.
    pub struct FlowSample, min_len = field::flow_sample::LEN, error = DecodeError;
    pub fn sequence -> u32 = field::flow_sample::SEQUENCE;
    /// Source id type (top 8 bits) and index (low 24 bits).
    pub fn source_id -> u32 = field::flow_sample::SOURCE_ID;
    pub fn sampling_rate -> u32 = field::flow_sample::SAMPLING_RATE;
    pub fn sample_pool -> u32 = field::flow_sample::SAMPLE_POOL;
    pub fn drops -> u32 = field::flow_sample::DROPS;
    /// Interface format in the top 2 bits, value in the low 30.
    pub fn input -> u32 = field::flow_sample::INPUT;
    pub fn output -> u32 = field::flow_sample::OUTPUT;
    pub fn num_records -> u32 = field::flow_sample::NUM_RECORDS;
}

impl<T: AsRef<[u8]>> FlowSample<T> {
    fn meta(&self) -> SampleMeta {
        SampleMeta {
            sampling_rate: self.sampling_rate(),
            in_if: if_index(self.input() >> 30, self.input() & 0x3fff_ffff),
            out_if: if_index(self.output() >> 30, self.output() & 0x3fff_ffff),
            num_records: self.num_records(),
        }
    }
}

view! {
    /// An expanded flow sample (format 3): full 32-bit source ids and interface indexes.
    pub struct ExpandedFlowSample, min_len = field::expanded_flow_sample::LEN, error = DecodeError;
    pub fn sequence -> u32 = field::expanded_flow_sample::SEQUENCE;
    pub fn source_id_type -> u32 = field::expanded_flow_sample::SOURCE_ID_TYPE;
    pub fn source_id_index -> u32 = field::expanded_flow_sample::SOURCE_ID_INDEX;
    pub fn sampling_rate -> u32 = field::expanded_flow_sample::SAMPLING_RATE;
    pub fn sample_pool -> u32 = field::expanded_flow_sample::SAMPLE_POOL;
    pub fn drops -> u32 = field::expanded_flow_sample::DROPS;
    pub fn input_format -> u32 = field::expanded_flow_sample::INPUT_FORMAT;
    pub fn input_value -> u32 = field::expanded_flow_sample::INPUT_VALUE;
    pub fn output_format -> u32 = field::expanded_flow_sample::OUTPUT_FORMAT;
    pub fn output_value -> u32 = field::expanded_flow_sample::OUTPUT_VALUE;
    pub fn num_records -> u32 = field::expanded_flow_sample::NUM_RECORDS;
}

impl<T: AsRef<[u8]>> ExpandedFlowSample<T> {
    fn meta(&self) -> SampleMeta {
        SampleMeta {
            sampling_rate: self.sampling_rate(),
            in_if: if_index(self.input_format(), self.input_value()),
            out_if: if_index(self.output_format(), self.output_value()),
            num_records: self.num_records(),
        }
    }
}

/// Interface format 0 is an ifIndex; 1 (discarded, value = reason) and 2 (multiple outputs, value
/// = count) are not interfaces, so the record says "unknown".
fn if_index(format: u32, value: u32) -> u32 {
    if format == 0 {
        value
    } else {
        0
    }
}

view! {
    /// A raw packet header record (format 1): the first bytes of the sampled packet.
    pub struct RawPacketHeader, min_len = field::raw_header::LEN, error = DecodeError;
    pub fn protocol -> u32 = field::raw_header::PROTOCOL;
    /// Length of the original packet, including what was not sampled (L2 header and FCS included
    /// for Ethernet).
    pub fn frame_length -> u32 = field::raw_header::FRAME_LENGTH;
    pub fn stripped -> u32 = field::raw_header::STRIPPED;
    pub fn header_length -> u32 = field::raw_header::HEADER_LENGTH;
}

impl<'a> RawPacketHeader<&'a [u8]> {
    /// The sampled header bytes; `BadLength` when the declared length overruns the record.
    pub fn header(&self) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(self.header_length()).map_err(|_| DecodeError::BadLength)?;
        self.buffer
            .get(field::raw_header::LEN..)
            .and_then(|rest| rest.get(..len))
            .ok_or(DecodeError::BadLength)
    }
}

view! {
    /// A sampled IPv4 record (format 3): addresses and ports already parsed by the exporter.
    pub struct SampledIpv4, min_len = field::sampled_ipv4::LEN, error = DecodeError;
    /// Length of the IP packet.
    pub fn length -> u32 = field::sampled_ipv4::LENGTH;
    pub fn protocol -> u32 = field::sampled_ipv4::PROTOCOL;
    pub fn source -> Ipv4Addr = field::sampled_ipv4::SOURCE;
    pub fn destination -> Ipv4Addr = field::sampled_ipv4::DESTINATION;
    pub fn src_port -> u32 = field::sampled_ipv4::SOURCE_PORT;
    pub fn dst_port -> u32 = field::sampled_ipv4::DESTINATION_PORT;
    pub fn tcp_flags -> u32 = field::sampled_ipv4::TCP_FLAGS;
    pub fn tos -> u32 = field::sampled_ipv4::TOS;
}

view! {
    /// A sampled IPv6 record (format 4).
    pub struct SampledIpv6, min_len = field::sampled_ipv6::LEN, error = DecodeError;
    /// Length of the IP packet (payload + 40).
    pub fn length -> u32 = field::sampled_ipv6::LENGTH;
    pub fn protocol -> u32 = field::sampled_ipv6::PROTOCOL;
    pub fn source -> Ipv6Addr = field::sampled_ipv6::SOURCE;
    pub fn destination -> Ipv6Addr = field::sampled_ipv6::DESTINATION;
    pub fn src_port -> u32 = field::sampled_ipv6::SOURCE_PORT;
    pub fn dst_port -> u32 = field::sampled_ipv6::DESTINATION_PORT;
    pub fn tcp_flags -> u32 = field::sampled_ipv6::TCP_FLAGS;
    pub fn priority -> u32 = field::sampled_ipv6::PRIORITY;
}

view! {
    /// The datagram header up to the agent address, whose length depends on its type.
    struct DatagramStart, min_len = field::datagram::ADDRESS, error = DecodeError;
    fn version -> u32 = field::datagram::VERSION;
    fn address_type -> u32 = field::datagram::ADDRESS_TYPE;
    fn agent_ipv4 -> Ipv4Addr = field::datagram::ADDRESS;
    fn agent_ipv6 -> Ipv6Addr = field::datagram::ADDRESS;
}

view! {
    /// The datagram header after the agent address.
    struct DatagramTail, min_len = field::datagram_tail::LEN, error = DecodeError;
    fn sub_agent_id -> u32 = field::datagram_tail::SUB_AGENT_ID;
    fn sequence -> u32 = field::datagram_tail::SEQUENCE;
    fn uptime_ms -> u32 = field::datagram_tail::UPTIME;
    fn num_samples -> u32 = field::datagram_tail::NUM_SAMPLES;
}

/// The datagram header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatagramHeader<'a> {
    pub agent: IpAddr,
    pub sub_agent_id: u32,
    pub sequence: u32,
    pub uptime_ms: u32,
    pub num_samples: u32,
    /// The bytes after the header, where the samples are.
    pub samples: &'a [u8],
}

impl<'a> DatagramHeader<'a> {
    pub fn parse(datagram: &'a [u8]) -> Result<Self, DecodeError> {
        let start = DatagramStart::new_checked(datagram)?;
        if start.version() != VERSION {
            return Err(DecodeError::UnknownVersion);
        }
        let (agent, address_len) = match start.address_type() {
            ADDRESS_IPV4 => (IpAddr::V4(start.agent_ipv4()), 4),
            ADDRESS_IPV6 => (IpAddr::V6(start.agent_ipv6()), 16),
            _ => return Err(DecodeError::BadAddress),
        };
        let tail = datagram
            .get(field::datagram::ADDRESS + address_len..)
            .unwrap_or_default();
        let tail = DatagramTail::new_checked(tail)?;
        Ok(DatagramHeader {
            agent,
            sub_agent_id: tail.sub_agent_id(),
            sequence: tail.sequence(),
            uptime_ms: tail.uptime_ms(),
            num_samples: tail.num_samples(),
            samples: tail
                .into_inner()
                .get(field::datagram_tail::LEN..)
                .unwrap_or(&[]),
        })
    }
}

/// What the two flow sample formats have in common, for the shared record loop.
#[derive(Debug, Clone, Copy)]
struct SampleMeta {
    sampling_rate: u32,
    in_if: u32,
    out_if: u32,
    num_records: u32,
}

/// The best packet description found among a flow sample's records.
#[derive(Debug, Clone, Copy)]
enum Found {
    Nothing,
    /// A raw header record whose packet had no IP addresses (ARP, MPLS...).
    NotIp,
    /// Decoded packet headers, and the byte count to scale (frame length, else IP length).
    Packet {
        headers: Headers,
        length: u32,
    },
}

impl Found {
    fn has_packet(&self) -> bool {
        matches!(self, Found::Packet { .. })
    }
}

/// Decodes one sFlow v5 datagram, appending one record per flow sample with IP addresses.
/// Stateless: no sample is judged against the exporter's earlier ones (see [`decode_checked`]).
pub fn decode(
    ctx: &Context,
    datagram: &[u8],
    out: &mut Vec<FlowRecord>,
    counters: &mut ExporterCounters,
) -> Result<Summary, DecodeError> {
    decode_checked(ctx, datagram, out, counters, &mut SamplePools::default())
}

/// [`decode`], with each flow sample's sample pool checked against the same source's earlier
/// samples in `pools` (the exporter's); impossible samples are counted and give no record.
pub fn decode_checked(
    ctx: &Context,
    datagram: &[u8],
    out: &mut Vec<FlowRecord>,
    counters: &mut ExporterCounters,
    pools: &mut SamplePools,
) -> Result<Summary, DecodeError> {
    let header = DatagramHeader::parse(datagram)?;
    let plausible = |pools: &mut SamplePools,
                     counters: &mut ExporterCounters,
                     [source_id, sequence, pool, rate]: [u32; 4]| {
        let key = pool_key(header.agent, header.sub_agent_id, source_id);
        pools.check(key, sequence, pool, rate.max(1), counters) == PoolVerdict::Plausible
    };
    let mut rest = header.samples;
    let mut first_error = None;
    for _ in 0..header.num_samples {
        if rest.is_empty() {
            return Err(first_error.unwrap_or(DecodeError::BadCount));
        }
        let sample = Envelope::new_checked(rest)?;
        let Some((body, next)) = sample.split() else {
            return Err(if sample.length() > MAX_DATAGRAM_LEN {
                DecodeError::BadLength
            } else {
                DecodeError::Truncated
            });
        };
        rest = next;
        let result = match sample.standard_format() {
            Some(sample_format::FLOW) => FlowSample::new_checked(body).and_then(|s| {
                let stream = [
                    s.source_id(),
                    s.sequence(),
                    s.sample_pool(),
                    s.sampling_rate(),
                ];
                if !plausible(pools, counters, stream) {
                    return Ok(());
                }
                let records = body.get(FlowSample::<&[u8]>::MIN_LEN..).unwrap_or(&[]);
                decode_flow_sample(ctx, header.agent, s.meta(), records, out, counters)
            }),
            Some(sample_format::EXPANDED_FLOW) => {
                ExpandedFlowSample::new_checked(body).and_then(|s| {
                    let source = s.source_id_type().rotate_left(24) ^ s.source_id_index();
                    let stream = [source, s.sequence(), s.sample_pool(), s.sampling_rate()];
                    if !plausible(pools, counters, stream) {
                        return Ok(());
                    }
                    let records = body
                        .get(ExpandedFlowSample::<&[u8]>::MIN_LEN..)
                        .unwrap_or(&[]);
                    decode_flow_sample(ctx, header.agent, s.meta(), records, out, counters)
                })
            }
            Some(sample_format::COUNTERS | sample_format::EXPANDED_COUNTERS) => {
                counters.counter_samples += 1;
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(error) = result {
            first_error.get_or_insert(error);
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(Summary {
            sequence: Some(Sequence {
                domain: header.sub_agent_id,
                number: header.sequence,
                advance: Some(1),
            }),
        }),
    }
}

/// The record loop shared by both flow sample formats: finds the packet description, then
/// appends one record. What was found before a bad record still counts.
fn decode_flow_sample(
    ctx: &Context,
    agent: IpAddr,
    meta: SampleMeta,
    records: &[u8],
    out: &mut Vec<FlowRecord>,
    counters: &mut ExporterCounters,
) -> Result<(), DecodeError> {
    let mut found = Found::Nothing;
    let mut rest = records;
    let mut error = None;
    for _ in 0..meta.num_records {
        if rest.is_empty() {
            error = Some(DecodeError::BadCount);
            break;
        }
        let record = match Envelope::new_checked(rest) {
            Ok(record) => record,
            Err(e) => {
                error = Some(e);
                break;
            }
        };
        let Some((body, next)) = record.split() else {
            error = Some(DecodeError::BadLength);
            break;
        };
        rest = next;
        if found.has_packet() {
            continue; // the first usable description wins; later ones are passed over by length
        }
        let described = match record.standard_format() {
            Some(record_format::RAW_PACKET_HEADER) => describe_raw_header(body),
            Some(record_format::SAMPLED_IPV4) => describe_sampled_ipv4(body),
            Some(record_format::SAMPLED_IPV6) => describe_sampled_ipv6(body),
            _ => Ok(None), // extended switch/router/gateway/user/url... carry nothing we need
        };
        match described {
            Ok(Some(description)) => found = description,
            Ok(None) => {}
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }

    let rate = if meta.sampling_rate == 0 {
        counters.invalid_sampling += 1;
        1
    } else {
        meta.sampling_rate
    };
    match found {
        Found::Packet { headers, length } => {
            let mut rec = FlowRecord::empty(agent);
            headers.apply(&mut rec);
            rec.time_ms = ctx.now_ms;
            rec.sampling_rate = rate;
            rec.packets = u64::from(rate);
            rec.bytes = u64::from(length).saturating_mul(u64::from(rate));
            rec.in_if = meta.in_if;
            rec.out_if = meta.out_if;
            out.push(rec);
        }
        Found::NotIp => counters.records_without_ip += 1,
        Found::Nothing if error.is_none() => counters.records_without_ip += 1,
        Found::Nothing => {}
    }
    error.map_or(Ok(()), Err)
}

/// A raw packet header record: `None` for header protocols we do not decode (FDDI, 802.11...).
fn describe_raw_header(body: &[u8]) -> Result<Option<Found>, DecodeError> {
    let raw = RawPacketHeader::new_checked(body)?;
    let header = raw.header()?;
    let parsed = match raw.protocol() {
        header_protocol::ETHERNET => packet::parse_ethernet(header),
        header_protocol::IPV4 | header_protocol::IPV6 => packet::parse_ip(header),
        _ => return Ok(None),
    };
    Ok(Some(match parsed {
        Ok(headers) => {
            // sFlow accounts the frame as sent (L2 header and FCS included); fall back to the IP
            // length when an exporter leaves it 0.
            let length = match raw.frame_length() {
                0 => u32::from(headers.ip_len),
                frame_length => frame_length,
            };
            Found::Packet { headers, length }
        }
        Err(_) => Found::NotIp,
    }))
}

/// Headers from an exporter-parsed record; ports and flags wider than their fields are garbage
/// and read as 0.
fn sampled_headers(src: IpAddr, dst: IpAddr, length: u32, ports_flags: [u32; 4]) -> Headers {
    let [protocol, src_port, dst_port, tcp_flags] = ports_flags;
    Headers {
        src,
        dst,
        protocol: u8::try_from(protocol).unwrap_or(0),
        src_port: u16::try_from(src_port).unwrap_or(0),
        dst_port: u16::try_from(dst_port).unwrap_or(0),
        tcp_flags: u8::try_from(tcp_flags).unwrap_or(0),
        seq_is_dst: false,
        fragment: false,
        ttl: 0,
        ip_len: u16::try_from(length).unwrap_or(u16::MAX),
        payload_offset: None,
    }
}

fn describe_sampled_ipv4(body: &[u8]) -> Result<Option<Found>, DecodeError> {
    let ip = SampledIpv4::new_checked(body)?;
    let headers = sampled_headers(
        ip.source().into(),
        ip.destination().into(),
        ip.length(),
        [ip.protocol(), ip.src_port(), ip.dst_port(), ip.tcp_flags()],
    );
    Ok(Some(Found::Packet {
        headers,
        length: ip.length(),
    }))
}

fn describe_sampled_ipv6(body: &[u8]) -> Result<Option<Found>, DecodeError> {
    let ip = SampledIpv6::new_checked(body)?;
    let headers = sampled_headers(
        ip.source().into(),
        ip.destination().into(),
        ip.length(),
        [ip.protocol(), ip.src_port(), ip.dst_port(), ip.tcp_flags()],
    );
    Ok(Some(Found::Packet {
        headers,
        length: ip.length(),
    }))
}

mod repr;
pub use repr::{CounterSampleRepr, DatagramRepr, FlowDataRepr, FlowSampleRepr, SampleRepr};

#[cfg(test)]
mod tests;
