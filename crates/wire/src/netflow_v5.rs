//! NetFlow v5: a fixed 24-byte header followed by 1..=30 fixed 48-byte records.
//!
//! [`Packet`] and [`Record`] are zero-copy views; [`HeaderRepr`] and [`RecordRepr`] are their
//! plain-value forms for tests and the scenario simulator ([`emit`] builds a whole datagram).

use std::net::{IpAddr, Ipv4Addr};

use crate::view::view;
use crate::{Context, DecodeError, ExporterCounters, FlowRecord, Sequence, Summary};

pub const VERSION: u16 = 5;
pub const HEADER_LEN: usize = 24;
pub const RECORD_LEN: usize = 48;
/// Cisco's limit: a v5 datagram carries at most 30 records.
pub const MAX_RECORDS: u16 = 30;

/// Byte offsets of the header and record fields.
mod field {
    pub const VERSION: usize = 0;
    pub const COUNT: usize = 2;
    pub const SYS_UPTIME: usize = 4;
    pub const UNIX_SECS: usize = 8;
    pub const UNIX_NSECS: usize = 12;
    pub const FLOW_SEQUENCE: usize = 16;
    pub const ENGINE_TYPE: usize = 20;
    pub const ENGINE_ID: usize = 21;
    pub const SAMPLING: usize = 22;

    pub mod record {
        pub const SRC_ADDR: usize = 0;
        pub const DST_ADDR: usize = 4;
        pub const NEXT_HOP: usize = 8;
        pub const INPUT: usize = 12;
        pub const OUTPUT: usize = 14;
        pub const PACKETS: usize = 16;
        pub const OCTETS: usize = 20;
        pub const FIRST: usize = 24;
        pub const LAST: usize = 28;
        pub const SRC_PORT: usize = 32;
        pub const DST_PORT: usize = 34;
        pub const TCP_FLAGS: usize = 37;
        pub const PROTOCOL: usize = 38;
        pub const TOS: usize = 39;
        pub const SRC_AS: usize = 40;
        pub const DST_AS: usize = 42;
        pub const SRC_MASK: usize = 44;
        pub const DST_MASK: usize = 45;
    }
}

view! {
    /// A read-only view of a NetFlow v5 datagram: the header must be whole; records are checked
    /// against `count` by [`decode`].
    pub struct Packet, min_len = HEADER_LEN, error = DecodeError;
    pub fn version -> u16 = field::VERSION;
    pub fn count -> u16 = field::COUNT;
    pub fn sys_uptime -> u32 = field::SYS_UPTIME;
    pub fn unix_secs -> u32 = field::UNIX_SECS;
    pub fn unix_nsecs -> u32 = field::UNIX_NSECS;
    pub fn flow_sequence -> u32 = field::FLOW_SEQUENCE;
    pub fn engine_type -> u8 = field::ENGINE_TYPE;
    pub fn engine_id -> u8 = field::ENGINE_ID;
    /// Raw field: top 2 bits sampling mode, low 14 bits interval.
    pub fn sampling -> u16 = field::SAMPLING;
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// The 1-in-N rate; an interval of 0 means unsampled.
    pub fn sampling_rate(&self) -> u32 {
        u32::from(self.sampling() & 0x3fff).max(1)
    }

    /// The whole records present after the header (possibly fewer than `count`).
    pub fn records(&self) -> impl Iterator<Item = Record<&[u8]>> {
        self.bytes()
            .get(HEADER_LEN..)
            .unwrap_or_default()
            .chunks_exact(RECORD_LEN)
            .map(Record::new_unchecked)
    }
}

view! {
    /// A read-only view of one 48-byte flow record.
    pub struct Record, min_len = RECORD_LEN, error = DecodeError;
    pub fn src_addr -> Ipv4Addr = field::record::SRC_ADDR;
    pub fn dst_addr -> Ipv4Addr = field::record::DST_ADDR;
    pub fn next_hop -> Ipv4Addr = field::record::NEXT_HOP;
    pub fn input -> u16 = field::record::INPUT;
    pub fn output -> u16 = field::record::OUTPUT;
    pub fn packets -> u32 = field::record::PACKETS;
    pub fn octets -> u32 = field::record::OCTETS;
    /// sysUptime (ms) at the first packet of the flow.
    pub fn first -> u32 = field::record::FIRST;
    /// sysUptime (ms) at the last packet of the flow.
    pub fn last -> u32 = field::record::LAST;
    pub fn src_port -> u16 = field::record::SRC_PORT;
    /// For ICMP, `type << 8 | code`.
    pub fn dst_port -> u16 = field::record::DST_PORT;
    pub fn tcp_flags -> u8 = field::record::TCP_FLAGS;
    pub fn protocol -> u8 = field::record::PROTOCOL;
    pub fn tos -> u8 = field::record::TOS;
    pub fn src_as -> u16 = field::record::SRC_AS;
    pub fn dst_as -> u16 = field::record::DST_AS;
    pub fn src_mask -> u8 = field::record::SRC_MASK;
    pub fn dst_mask -> u8 = field::record::DST_MASK;
}

/// The header as plain values. `count` is not stored: [`emit`] writes the number of records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeaderRepr {
    pub sys_uptime: u32,
    pub unix_secs: u32,
    pub unix_nsecs: u32,
    pub flow_sequence: u32,
    pub engine_type: u8,
    pub engine_id: u8,
    /// Raw sampling field (mode in the top 2 bits, interval in the low 14).
    pub sampling: u16,
}

impl HeaderRepr {
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self, DecodeError> {
        packet.check_len()?;
        if packet.version() != VERSION {
            return Err(DecodeError::UnknownVersion);
        }
        Ok(HeaderRepr {
            sys_uptime: packet.sys_uptime(),
            unix_secs: packet.unix_secs(),
            unix_nsecs: packet.unix_nsecs(),
            flow_sequence: packet.flow_sequence(),
            engine_type: packet.engine_type(),
            engine_id: packet.engine_id(),
            sampling: packet.sampling(),
        })
    }

    /// Appends the 24-byte header announcing `count` records.
    pub fn emit(&self, count: u16, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&VERSION.to_be_bytes());
        buf.extend_from_slice(&count.to_be_bytes());
        buf.extend_from_slice(&self.sys_uptime.to_be_bytes());
        buf.extend_from_slice(&self.unix_secs.to_be_bytes());
        buf.extend_from_slice(&self.unix_nsecs.to_be_bytes());
        buf.extend_from_slice(&self.flow_sequence.to_be_bytes());
        buf.push(self.engine_type);
        buf.push(self.engine_id);
        buf.extend_from_slice(&self.sampling.to_be_bytes());
    }

    /// Unix time in ms at `sys_uptime`, the clock every record's first/last is relative to.
    fn export_ms(&self) -> u64 {
        u64::from(self.unix_secs) * 1000 + u64::from(self.unix_nsecs / 1_000_000)
    }
}

/// One record as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRepr {
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub next_hop: Ipv4Addr,
    pub input: u16,
    pub output: u16,
    pub packets: u32,
    pub octets: u32,
    pub first: u32,
    pub last: u32,
    pub src_port: u16,
    pub dst_port: u16,
    pub tcp_flags: u8,
    pub protocol: u8,
    pub tos: u8,
    pub src_as: u16,
    pub dst_as: u16,
    pub src_mask: u8,
    pub dst_mask: u8,
}

impl Default for RecordRepr {
    fn default() -> Self {
        RecordRepr {
            src_addr: Ipv4Addr::UNSPECIFIED,
            dst_addr: Ipv4Addr::UNSPECIFIED,
            next_hop: Ipv4Addr::UNSPECIFIED,
            input: 0,
            output: 0,
            packets: 0,
            octets: 0,
            first: 0,
            last: 0,
            src_port: 0,
            dst_port: 0,
            tcp_flags: 0,
            protocol: 0,
            tos: 0,
            src_as: 0,
            dst_as: 0,
            src_mask: 0,
            dst_mask: 0,
        }
    }
}

impl RecordRepr {
    pub fn parse<T: AsRef<[u8]>>(record: &Record<T>) -> Result<Self, DecodeError> {
        record.check_len()?;
        Ok(RecordRepr {
            src_addr: record.src_addr(),
            dst_addr: record.dst_addr(),
            next_hop: record.next_hop(),
            input: record.input(),
            output: record.output(),
            packets: record.packets(),
            octets: record.octets(),
            first: record.first(),
            last: record.last(),
            src_port: record.src_port(),
            dst_port: record.dst_port(),
            tcp_flags: record.tcp_flags(),
            protocol: record.protocol(),
            tos: record.tos(),
            src_as: record.src_as(),
            dst_as: record.dst_as(),
            src_mask: record.src_mask(),
            dst_mask: record.dst_mask(),
        })
    }

    /// Appends the 48-byte record.
    pub fn emit(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.src_addr.octets());
        buf.extend_from_slice(&self.dst_addr.octets());
        buf.extend_from_slice(&self.next_hop.octets());
        buf.extend_from_slice(&self.input.to_be_bytes());
        buf.extend_from_slice(&self.output.to_be_bytes());
        buf.extend_from_slice(&self.packets.to_be_bytes());
        buf.extend_from_slice(&self.octets.to_be_bytes());
        buf.extend_from_slice(&self.first.to_be_bytes());
        buf.extend_from_slice(&self.last.to_be_bytes());
        buf.extend_from_slice(&self.src_port.to_be_bytes());
        buf.extend_from_slice(&self.dst_port.to_be_bytes());
        buf.push(0);
        buf.push(self.tcp_flags);
        buf.push(self.protocol);
        buf.push(self.tos);
        buf.extend_from_slice(&self.src_as.to_be_bytes());
        buf.extend_from_slice(&self.dst_as.to_be_bytes());
        buf.push(self.src_mask);
        buf.push(self.dst_mask);
        buf.extend_from_slice(&[0, 0]);
    }
}

/// Builds a datagram from a header and records (the count field is `records.len()`, saturated).
pub fn emit(header: &HeaderRepr, records: &[RecordRepr]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(HEADER_LEN + RECORD_LEN * records.len());
    header.emit(u16::try_from(records.len()).unwrap_or(u16::MAX), &mut buf);
    for record in records {
        record.emit(&mut buf);
    }
    buf
}

/// Decodes a NetFlow v5 datagram, appending one [`FlowRecord`] per record to `out`.
///
/// A datagram shorter than its `count` promises still yields the whole records it holds before
/// `Truncated` is returned: a cut datagram loses only its tail.
pub fn decode(
    ctx: &Context,
    datagram: &[u8],
    out: &mut Vec<FlowRecord>,
    _counters: &mut ExporterCounters,
) -> Result<Summary, DecodeError> {
    let packet = Packet::new_checked(datagram)?;
    let header = HeaderRepr::parse(&packet)?;
    let count = packet.count();
    if count == 0 || count > MAX_RECORDS {
        return Err(DecodeError::BadCount);
    }
    let rate = packet.sampling_rate();
    let export_ms = header.export_ms();
    let template = FlowRecord {
        sampling_rate: rate,
        ..FlowRecord::empty(ctx.source)
    };
    out.reserve(usize::from(count));
    let mut decoded = 0usize;
    for record in packet.records().take(usize::from(count)) {
        // Records age backwards from the export time; u32 wrapping handles sysUptime rollover.
        let age_ms = header.sys_uptime.wrapping_sub(record.last());
        out.push(FlowRecord {
            time_ms: export_ms.saturating_sub(u64::from(age_ms)),
            src: IpAddr::V4(record.src_addr()),
            dst: IpAddr::V4(record.dst_addr()),
            protocol: record.protocol(),
            src_port: record.src_port(),
            dst_port: record.dst_port(),
            tcp_flags: record.tcp_flags(),
            bytes: u64::from(record.octets()) * u64::from(rate),
            packets: u64::from(record.packets()) * u64::from(rate),
            in_if: u32::from(record.input()),
            out_if: u32::from(record.output()),
            ..template
        });
        decoded += 1;
    }
    if decoded < usize::from(count) {
        return Err(DecodeError::Truncated);
    }
    Ok(Summary {
        sequence: Some(Sequence {
            domain: u32::from(header.engine_type) << 8 | u32::from(header.engine_id),
            number: header.flow_sequence,
            advance: Some(u32::from(count)),
        }),
    })
}
