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
use crate::{Context, DecodeError, ExporterCounters, FlowRecord, Sequence, Summary};

/// Byte ranges of the fixed-layout structures, one module per structure.
mod field {
    pub type Field = core::ops::Range<usize>;

    /// Datagram header up to the agent address.
    pub mod datagram {
        use super::Field;
        pub const VERSION: Field = 0..4;
        pub const ADDRESS_TYPE: Field = 4..8;
        pub const ADDRESS: usize = 8;
    }

    /// Datagram header after the (variable-length) agent address.
    pub mod datagram_tail {
        use super::Field;
        pub const SUB_AGENT_ID: Field = 0..4;
        pub const SEQUENCE: Field = 4..8;
        pub const UPTIME: Field = 8..12;
        pub const NUM_SAMPLES: Field = 12..16;
        pub const LEN: usize = 16;
    }

    /// `data_format` (enterprise << 12 | format) + opaque length: the envelope of samples and records.
    pub mod envelope {
        use super::Field;
        pub const DATA_FORMAT: Field = 0..4;
        pub const LENGTH: Field = 4..8;
        pub const LEN: usize = 8;
    }

    pub mod flow_sample {
        use super::Field;
        pub const SEQUENCE: Field = 0..4;
        pub const SOURCE_ID: Field = 4..8;
        pub const SAMPLING_RATE: Field = 8..12;
        pub const SAMPLE_POOL: Field = 12..16;
        pub const DROPS: Field = 16..20;
        pub const INPUT: Field = 20..24;
        pub const OUTPUT: Field = 24..28;
        pub const NUM_RECORDS: Field = 28..32;
        pub const LEN: usize = 32;
    }

    pub mod expanded_flow_sample {
        use super::Field;
        pub const SEQUENCE: Field = 0..4;
        pub const SOURCE_ID_TYPE: Field = 4..8;
        pub const SOURCE_ID_INDEX: Field = 8..12;
        pub const SAMPLING_RATE: Field = 12..16;
        pub const SAMPLE_POOL: Field = 16..20;
        pub const DROPS: Field = 20..24;
        pub const INPUT_FORMAT: Field = 24..28;
        pub const INPUT_VALUE: Field = 28..32;
        pub const OUTPUT_FORMAT: Field = 32..36;
        pub const OUTPUT_VALUE: Field = 36..40;
        pub const NUM_RECORDS: Field = 40..44;
        pub const LEN: usize = 44;
    }

    pub mod raw_header {
        use super::Field;
        pub const PROTOCOL: Field = 0..4;
        pub const FRAME_LENGTH: Field = 4..8;
        pub const STRIPPED: Field = 8..12;
        pub const HEADER_LENGTH: Field = 12..16;
        pub const LEN: usize = 16;
    }

    pub mod sampled_ipv4 {
        use super::Field;
        pub const LENGTH: Field = 0..4;
        pub const PROTOCOL: Field = 4..8;
        pub const SOURCE: Field = 8..12;
        pub const DESTINATION: Field = 12..16;
        pub const SOURCE_PORT: Field = 16..20;
        pub const DESTINATION_PORT: Field = 20..24;
        pub const TCP_FLAGS: Field = 24..28;
        pub const TOS: Field = 28..32;
        pub const LEN: usize = 32;
    }

    pub mod sampled_ipv6 {
        use super::Field;
        pub const LENGTH: Field = 0..4;
        pub const PROTOCOL: Field = 4..8;
        pub const SOURCE: Field = 8..24;
        pub const DESTINATION: Field = 24..40;
        pub const SOURCE_PORT: Field = 40..44;
        pub const DESTINATION_PORT: Field = 44..48;
        pub const TCP_FLAGS: Field = 48..52;
        pub const PRIORITY: Field = 52..56;
        pub const LEN: usize = 56;
    }
}

use field::Field;

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

fn read_u32(bytes: &[u8], field: Field) -> u32 {
    bytes
        .get(field)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_be_bytes)
}

fn read_array<const N: usize>(bytes: &[u8], field: Field) -> [u8; N] {
    bytes
        .get(field)
        .and_then(|s| s.try_into().ok())
        .unwrap_or([0; N])
}

/// XDR pads opaque data to a multiple of 4 bytes.
fn padded(len: usize) -> usize {
    len.saturating_add(3) & !3
}

/// Defines a checked, zero-copy view over an XDR structure of at least `$min_len` bytes.
macro_rules! xdr_view {
    ($(#[$doc:meta])* $name:ident, $min_len:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            /// Bytes of the fixed part.
            pub const MIN_LEN: usize = $min_len;

            /// Wraps `buffer` after [`Self::check_len`].
            pub fn new_checked(buffer: T) -> Result<Self, DecodeError> {
                let view = Self { buffer };
                view.check_len()?;
                Ok(view)
            }

            /// `Err(Truncated)` when the buffer is shorter than the fixed part.
            pub fn check_len(&self) -> Result<(), DecodeError> {
                if self.buffer.as_ref().len() < Self::MIN_LEN {
                    Err(DecodeError::Truncated)
                } else {
                    Ok(())
                }
            }

            pub fn into_inner(self) -> T {
                self.buffer
            }

            fn u32_at(&self, field: Field) -> u32 {
                read_u32(self.buffer.as_ref(), field)
            }
        }
    };
}

xdr_view!(
    /// The enterprise/format tag and opaque length that wrap every sample and record.
    Envelope,
    field::envelope::LEN
);

impl<T: AsRef<[u8]>> Envelope<T> {
    pub fn enterprise(&self) -> u32 {
        self.u32_at(field::envelope::DATA_FORMAT) >> 12
    }
    pub fn format(&self) -> u32 {
        self.u32_at(field::envelope::DATA_FORMAT) & 0x0fff
    }
    pub fn length(&self) -> u32 {
        self.u32_at(field::envelope::LENGTH)
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

xdr_view!(
    /// A compact flow sample (format 1): interfaces and source id packed into 32-bit words.
    FlowSample,
    field::flow_sample::LEN
);

impl<T: AsRef<[u8]>> FlowSample<T> {
    pub fn sequence(&self) -> u32 {
        self.u32_at(field::flow_sample::SEQUENCE)
    }
    /// Source id type (top 8 bits) and index (low 24 bits).
    pub fn source_id(&self) -> u32 {
        self.u32_at(field::flow_sample::SOURCE_ID)
    }
    pub fn sampling_rate(&self) -> u32 {
        self.u32_at(field::flow_sample::SAMPLING_RATE)
    }
    pub fn sample_pool(&self) -> u32 {
        self.u32_at(field::flow_sample::SAMPLE_POOL)
    }
    pub fn drops(&self) -> u32 {
        self.u32_at(field::flow_sample::DROPS)
    }
    /// Interface format in the top 2 bits, value in the low 30.
    pub fn input(&self) -> u32 {
        self.u32_at(field::flow_sample::INPUT)
    }
    pub fn output(&self) -> u32 {
        self.u32_at(field::flow_sample::OUTPUT)
    }
    pub fn num_records(&self) -> u32 {
        self.u32_at(field::flow_sample::NUM_RECORDS)
    }
    fn meta(&self) -> SampleMeta {
        SampleMeta {
            sampling_rate: self.sampling_rate(),
            in_if: if_index(self.input() >> 30, self.input() & 0x3fff_ffff),
            out_if: if_index(self.output() >> 30, self.output() & 0x3fff_ffff),
            num_records: self.num_records(),
        }
    }
}

xdr_view!(
    /// An expanded flow sample (format 3): full 32-bit source ids and interface indexes.
    ExpandedFlowSample,
    field::expanded_flow_sample::LEN
);

impl<T: AsRef<[u8]>> ExpandedFlowSample<T> {
    pub fn sequence(&self) -> u32 {
        self.u32_at(field::expanded_flow_sample::SEQUENCE)
    }
    pub fn source_id_type(&self) -> u32 {
        self.u32_at(field::expanded_flow_sample::SOURCE_ID_TYPE)
    }
    pub fn source_id_index(&self) -> u32 {
        self.u32_at(field::expanded_flow_sample::SOURCE_ID_INDEX)
    }
    pub fn sampling_rate(&self) -> u32 {
        self.u32_at(field::expanded_flow_sample::SAMPLING_RATE)
    }
    pub fn sample_pool(&self) -> u32 {
        self.u32_at(field::expanded_flow_sample::SAMPLE_POOL)
    }
    pub fn drops(&self) -> u32 {
        self.u32_at(field::expanded_flow_sample::DROPS)
    }
    pub fn input_format(&self) -> u32 {
        self.u32_at(field::expanded_flow_sample::INPUT_FORMAT)
    }
    pub fn input_value(&self) -> u32 {
        self.u32_at(field::expanded_flow_sample::INPUT_VALUE)
    }
    pub fn output_format(&self) -> u32 {
        self.u32_at(field::expanded_flow_sample::OUTPUT_FORMAT)
    }
    pub fn output_value(&self) -> u32 {
        self.u32_at(field::expanded_flow_sample::OUTPUT_VALUE)
    }
    pub fn num_records(&self) -> u32 {
        self.u32_at(field::expanded_flow_sample::NUM_RECORDS)
    }
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

xdr_view!(
    /// A raw packet header record (format 1): the first bytes of the sampled packet.
    RawPacketHeader,
    field::raw_header::LEN
);

impl<T: AsRef<[u8]>> RawPacketHeader<T> {
    pub fn protocol(&self) -> u32 {
        self.u32_at(field::raw_header::PROTOCOL)
    }
    /// Length of the original packet, including what was not sampled (L2 header and FCS included
    /// for Ethernet).
    pub fn frame_length(&self) -> u32 {
        self.u32_at(field::raw_header::FRAME_LENGTH)
    }
    pub fn stripped(&self) -> u32 {
        self.u32_at(field::raw_header::STRIPPED)
    }
    pub fn header_length(&self) -> u32 {
        self.u32_at(field::raw_header::HEADER_LENGTH)
    }
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

xdr_view!(
    /// A sampled IPv4 record (format 3): addresses and ports already parsed by the exporter.
    SampledIpv4,
    field::sampled_ipv4::LEN
);

impl<T: AsRef<[u8]>> SampledIpv4<T> {
    /// Length of the IP packet.
    pub fn length(&self) -> u32 {
        self.u32_at(field::sampled_ipv4::LENGTH)
    }
    pub fn protocol(&self) -> u32 {
        self.u32_at(field::sampled_ipv4::PROTOCOL)
    }
    pub fn source(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_array::<4>(
            self.buffer.as_ref(),
            field::sampled_ipv4::SOURCE,
        ))
    }
    pub fn destination(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_array::<4>(
            self.buffer.as_ref(),
            field::sampled_ipv4::DESTINATION,
        ))
    }
    pub fn src_port(&self) -> u32 {
        self.u32_at(field::sampled_ipv4::SOURCE_PORT)
    }
    pub fn dst_port(&self) -> u32 {
        self.u32_at(field::sampled_ipv4::DESTINATION_PORT)
    }
    pub fn tcp_flags(&self) -> u32 {
        self.u32_at(field::sampled_ipv4::TCP_FLAGS)
    }
    pub fn tos(&self) -> u32 {
        self.u32_at(field::sampled_ipv4::TOS)
    }
}

xdr_view!(
    /// A sampled IPv6 record (format 4).
    SampledIpv6,
    field::sampled_ipv6::LEN
);

impl<T: AsRef<[u8]>> SampledIpv6<T> {
    /// Length of the IP packet (payload + 40).
    pub fn length(&self) -> u32 {
        self.u32_at(field::sampled_ipv6::LENGTH)
    }
    pub fn protocol(&self) -> u32 {
        self.u32_at(field::sampled_ipv6::PROTOCOL)
    }
    pub fn source(&self) -> Ipv6Addr {
        Ipv6Addr::from(read_array::<16>(
            self.buffer.as_ref(),
            field::sampled_ipv6::SOURCE,
        ))
    }
    pub fn destination(&self) -> Ipv6Addr {
        Ipv6Addr::from(read_array::<16>(
            self.buffer.as_ref(),
            field::sampled_ipv6::DESTINATION,
        ))
    }
    pub fn src_port(&self) -> u32 {
        self.u32_at(field::sampled_ipv6::SOURCE_PORT)
    }
    pub fn dst_port(&self) -> u32 {
        self.u32_at(field::sampled_ipv6::DESTINATION_PORT)
    }
    pub fn tcp_flags(&self) -> u32 {
        self.u32_at(field::sampled_ipv6::TCP_FLAGS)
    }
    pub fn priority(&self) -> u32 {
        self.u32_at(field::sampled_ipv6::PRIORITY)
    }
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
        if datagram.len() < field::datagram::ADDRESS {
            return Err(DecodeError::Truncated);
        }
        if read_u32(datagram, field::datagram::VERSION) != VERSION {
            return Err(DecodeError::UnknownVersion);
        }
        let at = field::datagram::ADDRESS;
        let (agent, address_len) = match read_u32(datagram, field::datagram::ADDRESS_TYPE) {
            ADDRESS_IPV4 => (IpAddr::from(read_array::<4>(datagram, at..at + 4)), 4),
            ADDRESS_IPV6 => (IpAddr::from(read_array::<16>(datagram, at..at + 16)), 16),
            _ => return Err(DecodeError::BadAddress),
        };
        let tail = datagram
            .get(at + address_len..)
            .filter(|tail| tail.len() >= field::datagram_tail::LEN)
            .ok_or(DecodeError::Truncated)?;
        Ok(DatagramHeader {
            agent,
            sub_agent_id: read_u32(tail, field::datagram_tail::SUB_AGENT_ID),
            sequence: read_u32(tail, field::datagram_tail::SEQUENCE),
            uptime_ms: read_u32(tail, field::datagram_tail::UPTIME),
            num_samples: read_u32(tail, field::datagram_tail::NUM_SAMPLES),
            samples: tail.get(field::datagram_tail::LEN..).unwrap_or(&[]),
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
