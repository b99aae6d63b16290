//! Compiling a template, once when it is learned, into a [`Plan`]: the offset, length and
//! destination slot of each field Floodwall uses, the fixed record length, and which fields the
//! derived values (addresses, counts, end time, sampling rate) come from. The record loop then
//! does no lookup per record.

use super::parse::FieldSpecs;
use super::slot::Slot;
use super::{Flavor, SET_HEADER_LEN, VARIABLE_LENGTH};
use crate::DecodeError;

/// One field of a compiled template.
#[derive(Debug, Clone, Copy)]
pub(super) struct Step {
    /// Offset in the record (fixed-length plans only).
    pub(super) offset: u16,
    /// Field length, or [`VARIABLE_LENGTH`].
    pub(super) length: u16,
    pub(super) slot: Slot,
}

/// Which field a derived value comes from, decided once per template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EndTime {
    Millis,
    Secs,
    Uptime,
    Export,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RateSource {
    /// samplingInterval / samplerRandomInterval: the value is the rate.
    Interval(Slot),
    /// samplingPacketInterval + samplingPacketSpace.
    PacketSpace,
    /// samplingPopulation / samplingSize.
    Population,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Addresses {
    None,
    V4,
    V6,
    /// Both families in one template: whichever is non-zero, IPv4 first.
    Both,
}

/// A template compiled for decoding.
#[derive(Debug)]
pub(super) struct Plan {
    /// Fixed-length plans: only the used fields, with offsets. Variable: every field, in order.
    pub(super) steps: Box<[Step]>,
    /// Record length; for variable plans the minimum (1 byte per variable field).
    pub(super) record_len: usize,
    pub(super) variable: bool,
    pub(super) present: u64,
    pub(super) addresses: Addresses,
    pub(super) bytes: Slot,
    pub(super) packets: Slot,
    pub(super) ttl: Slot,
    pub(super) end_time: EndTime,
    pub(super) rate: Option<RateSource>,
    pub(super) has_ports: bool,
}

impl Plan {
    /// Compiles the field specifiers of a template; the first `scope_count` are options scope
    /// fields, walked past but never used (v9 scope types collide with field type numbers).
    pub(super) fn compile(
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

    pub(super) fn has(&self, slot: Slot) -> bool {
        self.present & slot.bit() != 0
    }
}
