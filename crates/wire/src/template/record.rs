//! Decoding data records through a compiled [`Plan`]: the record loop (fixed-length records by
//! offset, variable-length IPFIX records by walking them), the per-record value table, and the
//! flow record built from it. Options data records update the domain's sampling rate and
//! system init time instead.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::plan::{Addresses, EndTime, Plan, RateSource};
use super::slot::{Slot, SLOT_COUNT};
use super::{DomainKey, TemplateDecoder, VARIABLE_LENGTH};
use crate::be::{array_at, uint};
use crate::{proto, ExporterCounters, FlowRecord};

/// IPFIX `fragmentFlags` "more fragments" bit.
const MORE_FRAGMENTS: u64 = 0x20;

impl Plan {
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
            seq_is_dst: false,
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
pub(super) enum Uptime {
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

impl TemplateDecoder {
    /// Decodes a data set with a known template; `None` when the template is unknown.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn decode_data_set(
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
}
