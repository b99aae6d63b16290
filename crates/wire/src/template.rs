//! NetFlow v9 (RFC 3954) and IPFIX (RFC 7011): one bounded template cache, one template compiler
//! and one record loop for both.
//!
//! A template is compiled once, when learned, into a [`Plan`]: the byte offset, length and
//! destination of each field Floodwall uses, plus the fixed record length. Decoding a data record
//! is then a loop over the plan reading big-endian integers, with no lookup per record. Templates
//! with variable-length fields (IPFIX only) keep every field in the plan and walk the record.
//!
//! Everything is bounded by [`Limits`]: templates per domain, per exporter and in total, fields per
//! template, and bytes of data sets held while their template has not arrived yet.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::be::{array_at, u16_at, u32_at, uint};
use crate::{
    ipfix, netflow_v9, proto, Context, DecodeError, ExporterCounters, FlowRecord, Limits, Sequence,
    Summary,
};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Data sets use ids from 256 up; lower ids are template, options template or reserved sets.
pub const MIN_DATA_SET_ID: u16 = 256;
pub const SET_HEADER_LEN: usize = 4;
/// IPFIX field length announcing a variable-length field.
pub const VARIABLE_LENGTH: u16 = 65535;
/// IPFIX information element ids with this bit set are enterprise-specific.
pub const ENTERPRISE_BIT: u16 = 0x8000;
/// IPFIX `fragmentFlags` "more fragments" bit.
const MORE_FRAGMENTS: u64 = 0x20;
/// Bookkeeping charged per held data set on top of its bytes, so a flood of tiny sets is bounded
/// by `pending_max_bytes` too.
const HELD_OVERHEAD: usize = 64;
/// No single exporter may hold more than this share of `max_templates`, so an exporter cycling
/// source ids cannot lock every other exporter out of the cache.
const EXPORTER_SHARE_DIVISOR: usize = 8;

/// Information element / NetFlow v9 field type ids (the numbers are the same in both).
pub mod ie {
    pub const OCTET_DELTA_COUNT: u16 = 1;
    pub const PACKET_DELTA_COUNT: u16 = 2;
    pub const PROTOCOL: u16 = 4;
    pub const TCP_FLAGS: u16 = 6;
    pub const L4_SRC_PORT: u16 = 7;
    pub const IPV4_SRC_ADDR: u16 = 8;
    pub const INPUT_SNMP: u16 = 10;
    pub const L4_DST_PORT: u16 = 11;
    pub const IPV4_DST_ADDR: u16 = 12;
    pub const OUTPUT_SNMP: u16 = 14;
    pub const LAST_SWITCHED: u16 = 21;
    pub const FIRST_SWITCHED: u16 = 22;
    pub const OUT_BYTES: u16 = 23;
    pub const OUT_PKTS: u16 = 24;
    pub const IPV6_SRC_ADDR: u16 = 27;
    pub const IPV6_DST_ADDR: u16 = 28;
    pub const ICMP_TYPE_CODE_IPV4: u16 = 32;
    pub const SAMPLING_INTERVAL: u16 = 34;
    pub const FLOW_SAMPLER_RANDOM_INTERVAL: u16 = 50;
    pub const MINIMUM_TTL: u16 = 52;
    pub const MAXIMUM_TTL: u16 = 53;
    pub const INTERFACE_NAME: u16 = 82;
    pub const OCTET_TOTAL_COUNT: u16 = 85;
    pub const PACKET_TOTAL_COUNT: u16 = 86;
    pub const FRAGMENT_OFFSET: u16 = 88;
    pub const ICMP_TYPE_CODE_IPV6: u16 = 139;
    pub const OBSERVATION_DOMAIN_ID: u16 = 149;
    pub const FLOW_START_SECONDS: u16 = 150;
    pub const FLOW_END_SECONDS: u16 = 151;
    pub const FLOW_START_MILLISECONDS: u16 = 152;
    pub const FLOW_END_MILLISECONDS: u16 = 153;
    pub const SYSTEM_INIT_TIME_MILLISECONDS: u16 = 160;
    pub const FRAGMENT_FLAGS: u16 = 197;
    pub const SAMPLING_PACKET_INTERVAL: u16 = 305;
    pub const SAMPLING_PACKET_SPACE: u16 = 306;
    pub const SAMPLING_SIZE: u16 = 309;
    pub const SAMPLING_POPULATION: u16 = 310;
    /// NetFlow v9 options scope type "System" (scope types are their own number space).
    pub const V9_SCOPE_SYSTEM: u16 = 1;
}

/// Which of the two template protocols a message is; they differ only in set ids, the header and
/// the template record format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    NetflowV9,
    Ipfix,
}

impl Flavor {
    pub const fn template_set_id(self) -> u16 {
        match self {
            Flavor::NetflowV9 => 0,
            Flavor::Ipfix => 2,
        }
    }

    pub const fn options_template_set_id(self) -> u16 {
        match self {
            Flavor::NetflowV9 => 1,
            Flavor::Ipfix => 3,
        }
    }
}

/// One field specifier of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    /// Information element id / v9 field type, without the enterprise bit.
    pub id: u16,
    /// Bytes in each record, or [`VARIABLE_LENGTH`] (IPFIX).
    pub length: u16,
    /// Private enterprise number of an enterprise-specific IPFIX element.
    pub enterprise: Option<u32>,
}

impl FieldSpec {
    pub const fn new(id: u16, length: u16) -> Self {
        FieldSpec {
            id,
            length,
            enterprise: None,
        }
    }

    /// Bytes this specifier takes in a template record.
    fn encoded_len(&self) -> usize {
        if self.enterprise.is_some() {
            8
        } else {
            4
        }
    }

    pub fn emit(&self, buf: &mut Vec<u8>) {
        match self.enterprise {
            Some(number) => {
                buf.extend_from_slice(&(self.id | ENTERPRISE_BIT).to_be_bytes());
                buf.extend_from_slice(&self.length.to_be_bytes());
                buf.extend_from_slice(&number.to_be_bytes());
            }
            None => {
                buf.extend_from_slice(&self.id.to_be_bytes());
                buf.extend_from_slice(&self.length.to_be_bytes());
            }
        }
    }
}

/// Iterates the field specifiers of a template record (`bytes` holds exactly the specifiers).
#[derive(Debug, Clone)]
struct FieldSpecs<'a> {
    flavor: Flavor,
    bytes: &'a [u8],
}

impl Iterator for FieldSpecs<'_> {
    type Item = FieldSpec;

    fn next(&mut self) -> Option<FieldSpec> {
        let raw_id = u16_at(self.bytes, 0);
        let length = u16_at(self.bytes.get(..4)?, 2);
        let enterprise = self.flavor == Flavor::Ipfix && raw_id & ENTERPRISE_BIT != 0;
        let spec = FieldSpec {
            id: if enterprise {
                raw_id & !ENTERPRISE_BIT
            } else {
                raw_id
            },
            length,
            enterprise: if enterprise {
                Some(u32_at(self.bytes.get(..8)?, 4))
            } else {
                None
            },
        };
        self.bytes = self.bytes.get(spec.encoded_len()..).unwrap_or_default();
        Some(spec)
    }
}

/// Splits `count` field specifiers off the front of `bytes`: (specifiers, rest).
fn split_specs(flavor: Flavor, bytes: &[u8], count: usize) -> Option<(&[u8], &[u8])> {
    let mut at = 0usize;
    for _ in 0..count {
        let raw_id = u16_at(bytes.get(at..at.checked_add(4)?)?, 0);
        let len = if flavor == Flavor::Ipfix && raw_id & ENTERPRISE_BIT != 0 {
            8
        } else {
            4
        };
        at = at.checked_add(len)?;
        if at > bytes.len() {
            return None;
        }
    }
    Some((bytes.get(..at)?, bytes.get(at..)?))
}

/// Where a decoded field value goes. `Skip` is never written, so it always reads as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Slot {
    Bytes,
    Packets,
    OutBytes,
    OutPackets,
    TotalBytes,
    TotalPackets,
    Protocol,
    TcpFlags,
    SrcPort,
    DstPort,
    IcmpTypeCode,
    InIf,
    OutIf,
    EndUptime,
    EndSecs,
    EndMillis,
    SystemInit,
    SamplingInterval,
    SamplerRandomInterval,
    PacketInterval,
    PacketSpace,
    SamplingSize,
    SamplingPopulation,
    MinTtl,
    MaxTtl,
    FragOffset,
    FragFlags,
    Src4,
    Dst4,
    Src6,
    Dst6,
    Skip,
}

const SLOT_COUNT: usize = Slot::Skip as usize + 1;

impl Slot {
    /// The slot of a (non-enterprise) field, or `Skip` if Floodwall does not use it or its length
    /// cannot be read (addresses must be whole; integers 1..=8 bytes, reduced-size allowed).
    fn of(id: u16, length: u16) -> Slot {
        let slot = match id {
            ie::OCTET_DELTA_COUNT => Slot::Bytes,
            ie::PACKET_DELTA_COUNT => Slot::Packets,
            ie::PROTOCOL => Slot::Protocol,
            ie::TCP_FLAGS => Slot::TcpFlags,
            ie::L4_SRC_PORT => Slot::SrcPort,
            ie::IPV4_SRC_ADDR => Slot::Src4,
            ie::INPUT_SNMP => Slot::InIf,
            ie::L4_DST_PORT => Slot::DstPort,
            ie::IPV4_DST_ADDR => Slot::Dst4,
            ie::OUTPUT_SNMP => Slot::OutIf,
            ie::LAST_SWITCHED => Slot::EndUptime,
            ie::OUT_BYTES => Slot::OutBytes,
            ie::OUT_PKTS => Slot::OutPackets,
            ie::IPV6_SRC_ADDR => Slot::Src6,
            ie::IPV6_DST_ADDR => Slot::Dst6,
            ie::ICMP_TYPE_CODE_IPV4 | ie::ICMP_TYPE_CODE_IPV6 => Slot::IcmpTypeCode,
            ie::SAMPLING_INTERVAL => Slot::SamplingInterval,
            ie::FLOW_SAMPLER_RANDOM_INTERVAL => Slot::SamplerRandomInterval,
            ie::MINIMUM_TTL => Slot::MinTtl,
            ie::MAXIMUM_TTL => Slot::MaxTtl,
            ie::OCTET_TOTAL_COUNT => Slot::TotalBytes,
            ie::PACKET_TOTAL_COUNT => Slot::TotalPackets,
            ie::FRAGMENT_OFFSET => Slot::FragOffset,
            ie::FLOW_END_SECONDS => Slot::EndSecs,
            ie::FLOW_END_MILLISECONDS => Slot::EndMillis,
            ie::SYSTEM_INIT_TIME_MILLISECONDS => Slot::SystemInit,
            ie::FRAGMENT_FLAGS => Slot::FragFlags,
            ie::SAMPLING_PACKET_INTERVAL => Slot::PacketInterval,
            ie::SAMPLING_PACKET_SPACE => Slot::PacketSpace,
            ie::SAMPLING_SIZE => Slot::SamplingSize,
            ie::SAMPLING_POPULATION => Slot::SamplingPopulation,
            _ => return Slot::Skip,
        };
        let readable = match slot {
            Slot::Src4 | Slot::Dst4 => length == 4,
            Slot::Src6 | Slot::Dst6 => length == 16,
            _ => (1..=8).contains(&length),
        };
        if readable {
            slot
        } else {
            Slot::Skip
        }
    }

    const fn bit(self) -> u64 {
        1 << self as u8
    }
}

/// One field of a compiled template.
#[derive(Debug, Clone, Copy)]
struct Step {
    /// Offset in the record (fixed-length plans only).
    offset: u16,
    /// Field length, or [`VARIABLE_LENGTH`].
    length: u16,
    slot: Slot,
}

/// Which field a derived value comes from, decided once per template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndTime {
    Millis,
    Secs,
    Uptime,
    Export,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RateSource {
    /// samplingInterval / samplerRandomInterval: the value is the rate.
    Interval(Slot),
    /// samplingPacketInterval + samplingPacketSpace.
    PacketSpace,
    /// samplingPopulation / samplingSize.
    Population,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Addresses {
    None,
    V4,
    V6,
    /// Both families in one template: whichever is non-zero, IPv4 first.
    Both,
}

/// A template compiled for decoding.
#[derive(Debug)]
struct Plan {
    /// Fixed-length plans: only the used fields, with offsets. Variable: every field, in order.
    steps: Box<[Step]>,
    /// Record length; for variable plans the minimum (1 byte per variable field).
    record_len: usize,
    variable: bool,
    present: u64,
    addresses: Addresses,
    bytes: Slot,
    packets: Slot,
    ttl: Slot,
    end_time: EndTime,
    rate: Option<RateSource>,
    has_ports: bool,
}

impl Plan {
    /// Compiles the field specifiers of a template; the first `scope_count` are options scope
    /// fields, walked past but never used (v9 scope types collide with field type numbers).
    fn compile(
        flavor: Flavor,
        specs: &[u8],
        scope_count: usize,
        max_fields: usize,
    ) -> Result<Plan, DecodeError> {
        let field_count = FieldSpecs {
            flavor,
            bytes: specs,
        }
        .count();
        if field_count == 0 || field_count > max_fields || scope_count > field_count {
            return Err(DecodeError::BadTemplate);
        }
        let mut steps = Vec::with_capacity(field_count);
        let mut record_len = 0usize;
        let mut variable = false;
        let mut present = 0u64;
        for (index, spec) in (FieldSpecs {
            flavor,
            bytes: specs,
        })
        .enumerate()
        {
            let is_variable = flavor == Flavor::Ipfix && spec.length == VARIABLE_LENGTH;
            if flavor == Flavor::NetflowV9 && spec.length == 0 {
                return Err(DecodeError::BadTemplate);
            }
            let slot = if index < scope_count || spec.enterprise.is_some() || is_variable {
                Slot::Skip
            } else {
                Slot::of(spec.id, spec.length)
            };
            let offset = u16::try_from(record_len).map_err(|_| DecodeError::BadTemplate)?;
            steps.push(Step {
                offset,
                length: spec.length,
                slot,
            });
            present |= slot.bit();
            variable |= is_variable;
            record_len += if is_variable {
                1
            } else {
                usize::from(spec.length)
            };
        }
        // A record must advance the loop and fit in a set.
        if record_len == 0 || record_len > usize::from(u16::MAX) - SET_HEADER_LEN {
            return Err(DecodeError::BadTemplate);
        }
        if !variable {
            steps.retain(|step| step.slot != Slot::Skip);
        }
        let has = |slot: Slot| present & slot.bit() != 0;
        let first_of = |slots: &[Slot]| slots.iter().copied().find(|&s| has(s));
        let v4 = has(Slot::Src4) || has(Slot::Dst4);
        let v6 = has(Slot::Src6) || has(Slot::Dst6);
        Ok(Plan {
            steps: steps.into_boxed_slice(),
            record_len,
            variable,
            present,
            addresses: match (v4, v6) {
                (false, false) => Addresses::None,
                (true, false) => Addresses::V4,
                (false, true) => Addresses::V6,
                (true, true) => Addresses::Both,
            },
            bytes: first_of(&[Slot::Bytes, Slot::OutBytes, Slot::TotalBytes]).unwrap_or(Slot::Skip),
            packets: first_of(&[Slot::Packets, Slot::OutPackets, Slot::TotalPackets])
                .unwrap_or(Slot::Skip),
            ttl: first_of(&[Slot::MinTtl, Slot::MaxTtl]).unwrap_or(Slot::Skip),
            end_time: if has(Slot::EndMillis) {
                EndTime::Millis
            } else if has(Slot::EndSecs) {
                EndTime::Secs
            } else if has(Slot::EndUptime) {
                EndTime::Uptime
            } else {
                EndTime::Export
            },
            rate: if let Some(slot) =
                first_of(&[Slot::SamplingInterval, Slot::SamplerRandomInterval])
            {
                Some(RateSource::Interval(slot))
            } else if has(Slot::PacketInterval) && has(Slot::PacketSpace) {
                Some(RateSource::PacketSpace)
            } else if has(Slot::SamplingSize) && has(Slot::SamplingPopulation) {
                Some(RateSource::Population)
            } else {
                None
            },
            has_ports: has(Slot::SrcPort) || has(Slot::DstPort),
        })
    }

    /// Calls `each` with the values of every whole record in `body`; returns the record count.
    /// Trailing bytes shorter than a record are set padding.
    #[inline(always)]
    fn for_each_record(
        &self,
        body: &[u8],
        values: &mut Values,
        mut each: impl FnMut(&Values),
    ) -> u32 {
        let mut count = 0u32;
        if !self.variable {
            for record in body.chunks_exact(self.record_len.max(1)) {
                for step in self.steps.iter() {
                    let start = usize::from(step.offset);
                    if let Some(field) = record.get(start..start + usize::from(step.length)) {
                        values.store(step.slot, field);
                    }
                }
                each(values);
                count += 1;
            }
        } else {
            let mut rest = body;
            // Every record consumes at least `record_len` >= 1 bytes, so this ends.
            while rest.len() >= self.record_len {
                let Some(used) = self.load_variable(rest, values) else {
                    break;
                };
                each(values);
                count += 1;
                rest = rest.get(used.max(1)..).unwrap_or_default();
            }
        }
        count
    }

    /// Walks one record with variable-length fields; `None` if it runs past the set.
    fn load_variable(&self, record: &[u8], values: &mut Values) -> Option<usize> {
        let mut at = 0usize;
        for step in self.steps.iter() {
            let length = if step.length == VARIABLE_LENGTH {
                let short = *record.get(at)?;
                at += 1;
                if short < 255 {
                    usize::from(short)
                } else {
                    let long = u16::from_be_bytes(array_at(record, at)?);
                    at += 2;
                    usize::from(long)
                }
            } else {
                usize::from(step.length)
            };
            let end = at.checked_add(length)?;
            values.store(step.slot, record.get(at..end)?);
            at = end;
        }
        Some(at)
    }

    fn has(&self, slot: Slot) -> bool {
        self.present & slot.bit() != 0
    }

    /// The sampling rate a record declares, if its template carries one (0 = invalid).
    #[inline]
    fn record_rate(&self, values: &Values) -> Option<u64> {
        Some(match self.rate? {
            RateSource::Interval(slot) => values.get(slot),
            RateSource::PacketSpace => {
                let interval = values.get(Slot::PacketInterval);
                let space = values.get(Slot::PacketSpace);
                interval
                    .saturating_add(space)
                    .checked_div(interval)
                    .unwrap_or(0)
            }
            RateSource::Population => {
                let population = values.get(Slot::SamplingPopulation);
                population
                    .checked_div(values.get(Slot::SamplingSize))
                    .unwrap_or(0)
            }
        })
    }

    /// Builds the flow record of one data record; `None` (counted) when it has no address.
    #[inline]
    fn flow_record(
        &self,
        values: &Values,
        scope: &RecordScope,
        counters: &mut ExporterCounters,
    ) -> Option<FlowRecord> {
        let (src, dst) = match self.addresses {
            Addresses::V4 => (values.ipv4(Slot::Src4), values.ipv4(Slot::Dst4)),
            Addresses::V6 => (values.ipv6(true), values.ipv6(false)),
            Addresses::Both if values.get(Slot::Src4) | values.get(Slot::Dst4) != 0 => {
                (values.ipv4(Slot::Src4), values.ipv4(Slot::Dst4))
            }
            Addresses::Both => (values.ipv6(true), values.ipv6(false)),
            Addresses::None => {
                counters.records_without_ip += 1;
                return None;
            }
        };
        let declared = self.record_rate(values).or(scope.domain_rate);
        let sampling_rate = match declared {
            None => 1,
            Some(0) => {
                counters.invalid_sampling += 1;
                1
            }
            Some(rate) => u32::try_from(rate).unwrap_or(u32::MAX),
        };
        let protocol = values.get(Slot::Protocol) as u8;
        let mut src_port = values.get(Slot::SrcPort) as u16;
        let mut dst_port = values.get(Slot::DstPort) as u16;
        if self.has(Slot::IcmpTypeCode)
            && (!self.has_ports
                || (dst_port == 0 && matches!(protocol, proto::ICMP | proto::ICMPV6)))
        {
            src_port = 0;
            dst_port = values.get(Slot::IcmpTypeCode) as u16;
        }
        let time_ms = match self.end_time {
            EndTime::Millis => values.get(Slot::EndMillis),
            EndTime::Secs => values.get(Slot::EndSecs).saturating_mul(1000),
            EndTime::Uptime => scope.uptime_to_unix_ms(values),
            EndTime::Export => scope.export_ms,
        };
        let rate = u64::from(sampling_rate);
        Some(FlowRecord {
            exporter: scope.exporter,
            time_ms,
            src,
            dst,
            protocol,
            src_port,
            dst_port,
            tcp_flags: values.get(Slot::TcpFlags) as u8,
            bytes: values.get(self.bytes).saturating_mul(rate),
            packets: values.get(self.packets).saturating_mul(rate),
            sampling_rate,
            fragment: values.get(Slot::FragFlags) & MORE_FRAGMENTS != 0
                || values.get(Slot::FragOffset) & 0x1fff != 0,
            ttl: values.get(self.ttl) as u8,
            packet_len: 0,
            in_if: u32::try_from(values.get(Slot::InIf)).unwrap_or(u32::MAX),
            out_if: u32::try_from(values.get(Slot::OutIf)).unwrap_or(u32::MAX),
            datagram: 0,
        })
    }
}

/// The field values of the record being decoded, indexed by [`Slot`].
#[derive(Debug, Clone)]
struct Values {
    ints: [u64; SLOT_COUNT],
    src6: [u8; 16],
    dst6: [u8; 16],
}

impl Default for Values {
    fn default() -> Self {
        Values {
            ints: [0; SLOT_COUNT],
            src6: [0; 16],
            dst6: [0; 16],
        }
    }
}

impl Values {
    #[inline(always)]
    fn store(&mut self, slot: Slot, field: &[u8]) {
        match slot {
            Slot::Skip => {}
            Slot::Src6 => self.src6 = array_at(field, 0).unwrap_or_default(),
            Slot::Dst6 => self.dst6 = array_at(field, 0).unwrap_or_default(),
            _ => {
                if let Some(value) = self.ints.get_mut(slot as usize) {
                    *value = uint(field);
                }
            }
        }
    }

    #[inline(always)]
    fn get(&self, slot: Slot) -> u64 {
        self.ints.get(slot as usize).copied().unwrap_or(0)
    }

    fn ipv4(&self, slot: Slot) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(self.get(slot) as u32))
    }

    fn ipv6(&self, source: bool) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(if source { self.src6 } else { self.dst6 }))
    }
}

/// What a data record needs from outside itself: who sent it and when.
#[derive(Debug, Clone, Copy)]
struct RecordScope {
    exporter: IpAddr,
    export_ms: u64,
    uptime: Uptime,
    domain_rate: Option<u64>,
}

/// How to turn a sysUpTime-relative timestamp into Unix time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Uptime {
    /// NetFlow v9: the header's sysUpTime at export time.
    AtExport(u32),
    /// IPFIX: systemInitTimeMilliseconds from options data, if the exporter sent it.
    InitMs(Option<u64>),
}

impl RecordScope {
    fn uptime_to_unix_ms(&self, values: &Values) -> u64 {
        let last = values.get(Slot::EndUptime);
        match self.uptime {
            // Wrapping: sysUpTime rolls over every 49.7 days, between flow end and export.
            Uptime::AtExport(now) => self
                .export_ms
                .saturating_sub(u64::from(now.wrapping_sub(last as u32))),
            Uptime::InitMs(from_options) => {
                let init = values.get(Slot::SystemInit);
                match (init, from_options) {
                    (0, None) => self.export_ms,
                    (0, Some(init)) | (init, _) => init.saturating_add(last),
                }
            }
        }
    }
}

/// The stream templates belong to: exporter, protocol, and v9 source id / IPFIX domain id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct DomainKey {
    exporter: IpAddr,
    flavor: Flavor,
    domain: u32,
}

#[derive(Debug)]
struct Template {
    /// The template record as received, to tell a refresh from a replacement without recompiling.
    layout: Box<[u8]>,
    plan: Plan,
    options: bool,
    refreshed_ms: u64,
}

#[derive(Debug, Default)]
struct Domain {
    templates: FastMap<u16, Template>,
    /// Sampling rate from options data (always >= 1).
    sampling_rate: Option<u64>,
    /// IPFIX systemInitTimeMilliseconds from options data.
    system_init_ms: Option<u64>,
}

/// A data set that arrived before its template.
#[derive(Debug)]
struct HeldSet {
    received_ms: u64,
    export_ms: u64,
    uptime: Uptime,
    body: Box<[u8]>,
}

impl HeldSet {
    fn charge(&self) -> usize {
        self.body.len() + HELD_OVERHEAD
    }
}

/// What walking the sets of one message found, for the sequence number.
#[derive(Debug, Default, Clone, Copy)]
struct SetsOutcome {
    data_records: u32,
    held_or_unknown: bool,
}

/// Time information of one message.
#[derive(Debug, Clone, Copy)]
struct MessageClock {
    export_ms: u64,
    /// v9 sysUpTime; `None` for IPFIX.
    sys_uptime: Option<u32>,
}

/// Decodes NetFlow v9 and IPFIX with a template cache shared by every exporter.
///
/// Recoverable problems (a bad template, an unknown template id) are counted in the exporter's
/// counters and decoding continues with the next set; an `Err` means the rest of the datagram was
/// abandoned, and is for the caller to count.
pub struct TemplateDecoder {
    limits: Limits,
    domains: FastMap<DomainKey, Domain>,
    templates_per_exporter: FastMap<IpAddr, usize>,
    template_count: usize,
    pending: FastMap<(DomainKey, u16), Vec<HeldSet>>,
    pending_bytes: usize,
}

impl TemplateDecoder {
    pub fn new(limits: Limits) -> Self {
        TemplateDecoder {
            limits,
            domains: FastMap::default(),
            templates_per_exporter: FastMap::default(),
            template_count: 0,
            pending: FastMap::default(),
            pending_bytes: 0,
        }
    }

    /// Decodes a NetFlow v9 export packet. Held data sets whose template arrives in it are
    /// appended to `out` too.
    pub fn decode_v9(
        &mut self,
        ctx: &Context,
        datagram: &[u8],
        out: &mut Vec<FlowRecord>,
        counters: &mut ExporterCounters,
    ) -> Result<Summary, DecodeError> {
        let packet = netflow_v9::Packet::new_checked(datagram)?;
        let header = netflow_v9::HeaderRepr::parse(&packet)?;
        let key = DomainKey {
            exporter: ctx.source,
            flavor: Flavor::NetflowV9,
            domain: header.source_id,
        };
        let clock = MessageClock {
            export_ms: u64::from(header.unix_secs) * 1000,
            sys_uptime: Some(header.sys_uptime),
        };
        self.decode_sets(key, clock, packet.payload(), ctx.now_ms, out, counters)?;
        Ok(Summary {
            sequence: Some(Sequence {
                domain: header.source_id,
                number: header.sequence,
                advance: Some(1),
            }),
        })
    }

    /// Decodes an IPFIX message. A message length beyond the datagram is counted as `Truncated`
    /// and the sets present are decoded; bytes after the message length are ignored.
    pub fn decode_ipfix(
        &mut self,
        ctx: &Context,
        datagram: &[u8],
        out: &mut Vec<FlowRecord>,
        counters: &mut ExporterCounters,
    ) -> Result<Summary, DecodeError> {
        let packet = ipfix::Packet::new_checked(datagram)?;
        let header = ipfix::HeaderRepr::parse(&packet)?;
        if usize::from(header.length) < ipfix::HEADER_LEN {
            return Err(DecodeError::BadLength);
        }
        if usize::from(header.length) > datagram.len() {
            counters.count_error(DecodeError::Truncated);
        }
        let key = DomainKey {
            exporter: ctx.source,
            flavor: Flavor::Ipfix,
            domain: header.domain_id,
        };
        let clock = MessageClock {
            export_ms: u64::from(header.export_time) * 1000,
            sys_uptime: None,
        };
        let outcome = self.decode_sets(key, clock, packet.payload(), ctx.now_ms, out, counters)?;
        Ok(Summary {
            sequence: Some(Sequence {
                domain: header.domain_id,
                number: header.sequence,
                advance: (!outcome.held_or_unknown).then_some(outcome.data_records),
            }),
        })
    }

    /// Walks the sets of a message. Each set is at least 4 bytes, so the loop ends.
    fn decode_sets(
        &mut self,
        key: DomainKey,
        clock: MessageClock,
        mut sets: &[u8],
        now_ms: u64,
        out: &mut Vec<FlowRecord>,
        counters: &mut ExporterCounters,
    ) -> Result<SetsOutcome, DecodeError> {
        let mut outcome = SetsOutcome::default();
        // Fewer than 4 bytes left is padding after the last set.
        while sets.len() >= SET_HEADER_LEN {
            let set_id = u16_at(sets, 0);
            let set_len = usize::from(u16_at(sets, 2));
            if set_len < SET_HEADER_LEN {
                return Err(DecodeError::BadLength);
            }
            let Some(body) = sets.get(SET_HEADER_LEN..set_len) else {
                return Err(DecodeError::Truncated);
            };
            sets = sets.get(set_len..).unwrap_or_default();
            if set_id == key.flavor.template_set_id() {
                self.learn_templates(key, body, false, now_ms, out, counters);
            } else if set_id == key.flavor.options_template_set_id() {
                self.learn_templates(key, body, true, now_ms, out, counters);
            } else if set_id >= MIN_DATA_SET_ID {
                let uptime = self.uptime_of(key, clock);
                match self.decode_data_set(
                    key,
                    set_id,
                    clock.export_ms,
                    uptime,
                    body,
                    out,
                    counters,
                ) {
                    Some(records) => {
                        outcome.data_records = outcome.data_records.wrapping_add(records)
                    }
                    None => {
                        outcome.held_or_unknown = true;
                        self.hold(key, set_id, clock.export_ms, uptime, body, now_ms, counters);
                    }
                }
            }
            // Other ids are reserved: skipped by length.
        }
        Ok(outcome)
    }

    fn uptime_of(&self, key: DomainKey, clock: MessageClock) -> Uptime {
        match clock.sys_uptime {
            Some(now) => Uptime::AtExport(now),
            None => Uptime::InitMs(self.domains.get(&key).and_then(|d| d.system_init_ms)),
        }
    }

    /// Decodes a data set with a known template; `None` when the template is unknown.
    #[allow(clippy::too_many_arguments)]
    fn decode_data_set(
        &mut self,
        key: DomainKey,
        template_id: u16,
        export_ms: u64,
        uptime: Uptime,
        body: &[u8],
        out: &mut Vec<FlowRecord>,
        counters: &mut ExporterCounters,
    ) -> Option<u32> {
        let domain = self.domains.get_mut(&key)?;
        let template = domain.templates.get(&template_id)?;
        let plan = &template.plan;
        let mut values = Values::default();
        if template.options {
            let mut rate = None;
            let mut init = None;
            let records = plan.for_each_record(body, &mut values, |values| {
                if let Some(declared) = plan.record_rate(values) {
                    rate = Some(declared);
                }
                if plan.has(Slot::SystemInit) {
                    init = Some(values.get(Slot::SystemInit));
                }
            });
            if let Some(declared) = rate {
                if declared == 0 {
                    counters.invalid_sampling += 1;
                }
                domain.sampling_rate = Some(declared.max(1));
            }
            if init.is_some() {
                domain.system_init_ms = init;
            }
            return Some(records);
        }
        let scope = RecordScope {
            exporter: key.exporter,
            export_ms,
            uptime,
            domain_rate: domain.sampling_rate,
        };
        out.reserve(body.len() / plan.record_len.max(1));
        Some(plan.for_each_record(body, &mut values, |values| {
            if let Some(record) = plan.flow_record(values, &scope, counters) {
                out.push(record);
            }
        }))
    }

    /// Keeps a copy of a data set whose template has not arrived, if it fits.
    #[allow(clippy::too_many_arguments)]
    fn hold(
        &mut self,
        key: DomainKey,
        template_id: u16,
        export_ms: u64,
        uptime: Uptime,
        body: &[u8],
        now_ms: u64,
        counters: &mut ExporterCounters,
    ) {
        counters.unknown_template_sets += 1;
        if body.is_empty() {
            return;
        }
        let held = HeldSet {
            received_ms: now_ms,
            export_ms,
            uptime,
            body: Box::from(body),
        };
        // Full: the newcomer is dropped, not older data, so one exporter cannot flush others'.
        if self.pending_bytes + held.charge() > self.limits.pending_max_bytes {
            counters.pending_dropped += 1;
            return;
        }
        self.pending_bytes += held.charge();
        self.pending
            .entry((key, template_id))
            .or_default()
            .push(held);
    }

    /// Parses a template or options template set, learning or withdrawing each template in it.
    fn learn_templates(
        &mut self,
        key: DomainKey,
        mut set: &[u8],
        options: bool,
        now_ms: u64,
        out: &mut Vec<FlowRecord>,
        counters: &mut ExporterCounters,
    ) {
        let flavor = key.flavor;
        // Each iteration consumes at least 4 bytes; a shorter tail is padding.
        while set.len() >= SET_HEADER_LEN {
            let template_id = u16_at(set, 0);
            let second = u16_at(set, 2);
            if template_id == 0 && second == 0 {
                break; // zero padding
            }
            // (header length, field count or byte length, scope field count)
            let (header_len, scope_count, specs_and_rest) = match (flavor, options) {
                (Flavor::Ipfix, _) if second == 0 => {
                    self.withdraw(key, template_id, options, counters);
                    set = set.get(4..).unwrap_or_default();
                    continue;
                }
                (Flavor::NetflowV9, false) | (Flavor::Ipfix, false) => (
                    4,
                    0,
                    split_specs(
                        flavor,
                        set.get(4..).unwrap_or_default(),
                        usize::from(second),
                    ),
                ),
                (Flavor::Ipfix, true) => {
                    let scope = usize::from(u16_at(set, 4));
                    let specs = set
                        .get(6..)
                        .and_then(|rest| split_specs(flavor, rest, usize::from(second)));
                    if scope == 0 {
                        counters.count_error(DecodeError::BadTemplate);
                        let Some((_, rest)) = specs else { return };
                        set = rest;
                        continue;
                    }
                    (6, scope, specs)
                }
                (Flavor::NetflowV9, true) => {
                    let scope_len = usize::from(second);
                    let option_len = usize::from(u16_at(set, 4));
                    if set.len() < 6 || scope_len % 4 != 0 || option_len % 4 != 0 {
                        counters.count_error(DecodeError::BadTemplate);
                        return;
                    }
                    let specs = set
                        .get(6..)
                        .and_then(|rest| split_specs(flavor, rest, (scope_len + option_len) / 4));
                    (6, scope_len / 4, specs)
                }
            };
            let Some((specs, rest)) = specs_and_rest else {
                // The fields run past the set: nothing after them can be trusted.
                counters.count_error(DecodeError::BadTemplate);
                return;
            };
            let layout = set.get(..header_len + specs.len()).unwrap_or_default();
            set = rest;
            if template_id < MIN_DATA_SET_ID {
                counters.count_error(DecodeError::BadTemplate);
                continue;
            }
            self.install(
                key,
                template_id,
                layout,
                specs,
                scope_count,
                options,
                now_ms,
                counters,
            );
            if !self.pending.is_empty() {
                self.release_pending(key, template_id, out, counters);
            }
        }
    }

    /// Stores a template: refresh, replacement, or a new id if every cap allows it.
    #[allow(clippy::too_many_arguments)]
    fn install(
        &mut self,
        key: DomainKey,
        template_id: u16,
        layout: &[u8],
        specs: &[u8],
        scope_count: usize,
        options: bool,
        now_ms: u64,
        counters: &mut ExporterCounters,
    ) {
        if let Some(known) = self
            .domains
            .get_mut(&key)
            .and_then(|domain| domain.templates.get_mut(&template_id))
        {
            if *known.layout == *layout && known.options == options {
                known.refreshed_ms = now_ms;
                counters.templates_learned += 1;
                return;
            }
        }
        let plan = match Plan::compile(
            key.flavor,
            specs,
            scope_count,
            self.limits.max_template_fields,
        ) {
            Ok(plan) => plan,
            Err(error) => {
                counters.count_error(error);
                return;
            }
        };
        let template = Template {
            layout: Box::from(layout),
            plan,
            options,
            refreshed_ms: now_ms,
        };
        if let Some(known) = self
            .domains
            .get_mut(&key)
            .and_then(|domain| domain.templates.get_mut(&template_id))
        {
            *known = template;
            counters.templates_learned += 1;
            return;
        }
        let per_exporter = self
            .templates_per_exporter
            .get(&key.exporter)
            .copied()
            .unwrap_or(0);
        let exporter_cap = self
            .limits
            .max_templates_per_domain
            .max(self.limits.max_templates / EXPORTER_SHARE_DIVISOR);
        let in_domain = self.domains.get(&key).map_or(0, |d| d.templates.len());
        if in_domain >= self.limits.max_templates_per_domain
            || per_exporter >= exporter_cap
            || self.template_count >= self.limits.max_templates
        {
            counters.templates_rejected += 1;
            return;
        }
        self.domains
            .entry(key)
            .or_default()
            .templates
            .insert(template_id, template);
        *self.templates_per_exporter.entry(key.exporter).or_default() += 1;
        self.template_count += 1;
        counters.templates_learned += 1;
    }

    /// Decodes the data sets held for a template that just arrived.
    fn release_pending(
        &mut self,
        key: DomainKey,
        template_id: u16,
        out: &mut Vec<FlowRecord>,
        counters: &mut ExporterCounters,
    ) {
        let Some(held) = self.pending.remove(&(key, template_id)) else {
            return;
        };
        for set in held {
            self.pending_bytes = self.pending_bytes.saturating_sub(set.charge());
            let uptime = match set.uptime {
                // The systemInitTime may have arrived with the template.
                Uptime::InitMs(None) => self.uptime_of(
                    key,
                    MessageClock {
                        export_ms: set.export_ms,
                        sys_uptime: None,
                    },
                ),
                known => known,
            };
            if self
                .decode_data_set(
                    key,
                    template_id,
                    set.export_ms,
                    uptime,
                    &set.body,
                    out,
                    counters,
                )
                .is_some()
            {
                counters.pending_decoded += 1;
            }
        }
    }

    /// IPFIX withdrawal: a template id, or every (options) template for ids 2 and 3.
    fn withdraw(
        &mut self,
        key: DomainKey,
        template_id: u16,
        options_set: bool,
        counters: &mut ExporterCounters,
    ) {
        let Some(domain) = self.domains.get_mut(&key) else {
            return;
        };
        let before = domain.templates.len();
        let withdraw_all = template_id == Flavor::Ipfix.template_set_id() && !options_set
            || template_id == Flavor::Ipfix.options_template_set_id() && options_set;
        if withdraw_all {
            domain.templates.retain(|_, t| t.options != options_set);
        } else {
            domain.templates.remove(&template_id);
        }
        let removed = before - domain.templates.len();
        counters.templates_withdrawn += removed as u64;
        self.forget(key, removed);
    }

    /// Book-keeping after `removed` templates of `key` are gone; drops the domain if empty.
    fn forget(&mut self, key: DomainKey, removed: usize) {
        if removed == 0 {
            return;
        }
        self.template_count = self.template_count.saturating_sub(removed);
        if let Some(count) = self.templates_per_exporter.get_mut(&key.exporter) {
            *count = count.saturating_sub(removed);
            if *count == 0 {
                self.templates_per_exporter.remove(&key.exporter);
            }
        }
        if self
            .domains
            .get(&key)
            .is_some_and(|d| d.templates.is_empty())
        {
            self.domains.remove(&key);
        }
    }

    /// Drops data sets held longer than `pending_max_age_ms`, reporting (exporter, data sets
    /// dropped), and forgets templates not refreshed within `template_timeout_ms`.
    pub fn expire(&mut self, now_ms: u64, on_drop: &mut dyn FnMut(IpAddr, u64)) {
        let max_age = self.limits.pending_max_age_ms;
        let mut freed = 0usize;
        self.pending.retain(|(key, _), held| {
            let before = held.len();
            held.retain(|set| {
                let keep = now_ms.saturating_sub(set.received_ms) <= max_age;
                if !keep {
                    freed += set.charge();
                }
                keep
            });
            if held.len() < before {
                on_drop(key.exporter, (before - held.len()) as u64);
            }
            !held.is_empty()
        });
        self.pending_bytes = self.pending_bytes.saturating_sub(freed);

        let timeout = self.limits.template_timeout_ms;
        if timeout == 0 {
            return;
        }
        let mut expired = Vec::new();
        for (key, domain) in self.domains.iter_mut() {
            let before = domain.templates.len();
            domain
                .templates
                .retain(|_, t| now_ms.saturating_sub(t.refreshed_ms) <= timeout);
            if domain.templates.len() < before {
                expired.push((*key, before - domain.templates.len()));
            }
        }
        for (key, removed) in expired {
            self.forget(key, removed);
        }
    }

    /// Forgets everything of the exporters `gone` says yes to (evicted from the decoder's table):
    /// their templates, options state and held data sets.
    pub fn forget_exporters(&mut self, gone: &dyn Fn(IpAddr) -> bool) {
        let mut removed = 0usize;
        self.domains.retain(|key, domain| {
            let keep = !gone(key.exporter);
            if !keep {
                removed += domain.templates.len();
            }
            keep
        });
        self.template_count = self.template_count.saturating_sub(removed);
        self.templates_per_exporter
            .retain(|exporter, _| !gone(*exporter));
        let mut freed = 0usize;
        self.pending.retain(|(key, _), held| {
            let keep = !gone(key.exporter);
            if !keep {
                freed += held.iter().map(HeldSet::charge).sum::<usize>();
            }
            keep
        });
        self.pending_bytes = self.pending_bytes.saturating_sub(freed);
    }

    /// Templates and options templates cached, over all exporters.
    pub fn template_count(&self) -> usize {
        self.template_count
    }

    /// Bytes (plus a fixed overhead per set) of data sets held waiting for their template.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }
}
