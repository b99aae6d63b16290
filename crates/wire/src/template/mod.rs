//! NetFlow v9 (RFC 3954) and IPFIX (RFC 7011): one bounded template cache, one template compiler
//! and one record loop for both.
//!
//! A template is compiled once, when learned, into a `Plan`: the byte offset, length and
//! destination of each field Floodwall uses, plus the fixed record length. Decoding a data record
//! is then a loop over the plan reading big-endian integers, with no lookup per record. Templates
//! with variable-length fields (IPFIX only) keep every field in the plan and walk the record.
//!
//! Everything is bounded by [`Limits`]: templates per domain, per exporter and in total, fields per
//! template, and bytes of data sets held while their template has not arrived yet.
//!
//! The stages live in their own files: `parse` reads template sets, `plan` compiles a template,
//! `slot` maps information elements to record fields, `record` decodes data records, and `cache`
//! stores templates and held data sets within their bounds. This file walks the sets of a message.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::be::u16_at;
use crate::{
    ipfix, netflow_v9, Context, DecodeError, ExporterCounters, FlowRecord, Limits, Sequence,
    Summary,
};

mod cache;
pub mod ie;
mod parse;
mod plan;
mod record;
mod slot;

pub use parse::FieldSpec;

use cache::{Domain, HeldSet};
use record::Uptime;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Data sets use ids from 256 up; lower ids are template, options template or reserved sets.
pub const MIN_DATA_SET_ID: u16 = 256;
pub const SET_HEADER_LEN: usize = 4;
/// IPFIX field length announcing a variable-length field.
pub const VARIABLE_LENGTH: u16 = 65535;
/// IPFIX information element ids with this bit set are enterprise-specific.
pub const ENTERPRISE_BIT: u16 = 0x8000;

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

/// The stream templates belong to: exporter, protocol, and v9 source id / IPFIX domain id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct DomainKey {
    exporter: IpAddr,
    flavor: Flavor,
    domain: u32,
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
}
