//! The front door: one datagram in, records out. Tells the protocol from the bytes (never the
//! port), keeps per-exporter counters and sequence state, and owns the template cache.
//!
//! Pure and deterministic: time is passed in, nothing here does I/O.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::IpAddr;

use crate::template::TemplateDecoder;
use crate::{netflow_v5, sflow, DecodeError, ExporterCounters, FlowRecord};

/// Telemetry protocols, told apart by the first bytes of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    SflowV5,
    NetflowV5,
    NetflowV9,
    Ipfix,
}

impl Protocol {
    pub const ALL: [Protocol; 4] = [
        Protocol::SflowV5,
        Protocol::NetflowV5,
        Protocol::NetflowV9,
        Protocol::Ipfix,
    ];

    /// Identifies the protocol of a datagram from its version field.
    ///
    /// sFlow's version is a 32-bit 5 (`00 00 00 05`); NetFlow/IPFIX carry a 16-bit version, and a
    /// NetFlow v5 header with a zero record count is not a valid datagram, so the two never collide.
    pub fn detect(datagram: &[u8]) -> Option<Protocol> {
        match datagram {
            [0, 0, 0, 5, ..] => Some(Protocol::SflowV5),
            [0, 5, ..] => Some(Protocol::NetflowV5),
            [0, 9, ..] => Some(Protocol::NetflowV9),
            [0, 10, ..] => Some(Protocol::Ipfix),
            _ => None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Protocol::SflowV5 => "sflow5",
            Protocol::NetflowV5 => "netflow5",
            Protocol::NetflowV9 => "netflow9",
            Protocol::Ipfix => "ipfix",
        }
    }
}

/// Where and when a datagram was received: the inputs every protocol decoder needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// Source address of the datagram (the exporter, unless the protocol names its own agent).
    pub source: IpAddr,
    /// Receive time, milliseconds since the Unix epoch; used where the protocol carries no time of
    /// its own (sFlow) and to expire templates and pending data.
    pub now_ms: u64,
}

/// The sequence number a datagram carried, for loss accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sequence {
    /// The stream the number belongs to: sFlow sub-agent id, NetFlow v9 source id, IPFIX
    /// observation domain, NetFlow v5 engine type/id.
    pub domain: u32,
    /// The number in this datagram.
    pub number: u32,
    /// How far this datagram advances the sequence (1 for datagram-counted protocols, the record
    /// count for record-counted ones); `None` when it cannot be known (records held for a template).
    pub advance: Option<u32>,
}

/// What a protocol decoder reports about one datagram, besides the records it appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub sequence: Option<Sequence>,
}

/// Memory bounds of the decoder state. Every cache is capped; what does not fit is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Exporters tracked with their own counters and templates.
    pub max_exporters: usize,
    /// Templates (data + options) kept per (exporter, source id / observation domain).
    pub max_templates_per_domain: usize,
    /// Templates kept in total.
    pub max_templates: usize,
    /// Fields allowed in one template.
    pub max_template_fields: usize,
    /// Bytes of data sets held while waiting for their template, in total.
    pub pending_max_bytes: usize,
    /// How long a data set waits for its template before it is dropped.
    pub pending_max_age_ms: u64,
    /// Templates not refreshed for this long are forgotten (0 = never).
    pub template_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_exporters: 4096,
            max_templates_per_domain: 256,
            max_templates: 65536,
            max_template_fields: 128,
            pending_max_bytes: 4 << 20,
            pending_max_age_ms: 5_000,
            template_timeout_ms: 3_600_000,
        }
    }
}

/// How far ahead of the receive time a record's own timestamp may be (clock skew, rounding).
pub const MAX_CLOCK_AHEAD_MS: u64 = 2_000;
/// Sequence streams tracked per exporter; a hostile exporter cycling domains cannot grow this.
const MAX_SEQUENCE_STREAMS: usize = 32;
/// A forward jump larger than this is a restart, not loss.
const MAX_PLAUSIBLE_LOSS: u32 = 1 << 20;

#[derive(Debug, Default)]
struct ExporterState {
    counters: ExporterCounters,
    /// (protocol, domain) → next expected sequence number, if known.
    sequences: Vec<(Protocol, u32, Option<u32>)>,
}

impl ExporterState {
    fn track_sequence(&mut self, protocol: Protocol, seq: Sequence) {
        let slot = self
            .sequences
            .iter()
            .position(|&(p, d, _)| p == protocol && d == seq.domain);
        let next = seq.advance.map(|n| seq.number.wrapping_add(n));
        match slot {
            Some(i) => {
                if let Some(expected) = self.sequences[i].2 {
                    let ahead = seq.number.wrapping_sub(expected);
                    if ahead != 0 {
                        if ahead < MAX_PLAUSIBLE_LOSS {
                            self.counters.sequence_lost += u64::from(ahead);
                        } else {
                            self.counters.sequence_resets += 1;
                        }
                    }
                }
                self.sequences[i].2 = next;
            }
            None => {
                if self.sequences.len() >= MAX_SEQUENCE_STREAMS {
                    self.sequences.remove(0);
                }
                self.sequences.push((protocol, seq.domain, next));
            }
        }
    }
}

/// Decodes datagrams of any supported protocol from any number of exporters.
pub struct Decoder {
    limits: Limits,
    exporters: HashMap<IpAddr, ExporterState, foldhash::fast::RandomState>,
    /// Counters of datagrams from exporters beyond `max_exporters`.
    overflow: ExporterCounters,
    templates: TemplateDecoder,
    last_expiry_ms: u64,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl Decoder {
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            exporters: HashMap::default(),
            overflow: ExporterCounters::default(),
            templates: TemplateDecoder::new(limits),
            last_expiry_ms: 0,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Decodes one datagram received from `source` at `now_ms`, appending its records to `out`.
    ///
    /// Records decoded before an error stay in `out`; the error is counted for the exporter and
    /// returned. Never panics and never grows state beyond `Limits`.
    pub fn decode(
        &mut self,
        source: IpAddr,
        now_ms: u64,
        datagram: &[u8],
        out: &mut Vec<FlowRecord>,
    ) -> Result<Protocol, DecodeError> {
        self.expire(now_ms);
        let ctx = Context { source, now_ms };
        // One hash lookup per datagram; the table's cap is checked only for new exporters.
        let tracked = self.exporters.len();
        let state = match self.exporters.entry(source) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(_) if tracked >= self.limits.max_exporters => {
                self.overflow.datagrams += 1;
                self.overflow.count_error(DecodeError::TooManyExporters);
                return Err(DecodeError::TooManyExporters);
            }
            Entry::Vacant(entry) => entry.insert(ExporterState::default()),
        };
        state.counters.datagrams += 1;
        let before = out.len();
        let protocol = Protocol::detect(datagram);
        let result = match protocol {
            Some(Protocol::SflowV5) => sflow::decode(&ctx, datagram, out, &mut state.counters),
            Some(Protocol::NetflowV5) => {
                netflow_v5::decode(&ctx, datagram, out, &mut state.counters)
            }
            Some(Protocol::NetflowV9) => {
                self.templates
                    .decode_v9(&ctx, datagram, out, &mut state.counters)
            }
            Some(Protocol::Ipfix) => {
                self.templates
                    .decode_ipfix(&ctx, datagram, out, &mut state.counters)
            }
            None => Err(DecodeError::UnknownVersion),
        };
        state.counters.records += (out.len() - before) as u64;
        // An exporter clock running ahead must not drag telemetry time into the future: records
        // stamped later than their arrival count as arriving now.
        let latest = now_ms.saturating_add(MAX_CLOCK_AHEAD_MS);
        for record in &mut out[before..] {
            if record.time_ms > latest {
                record.time_ms = now_ms;
                state.counters.future_timestamps += 1;
            }
        }
        match (protocol, result) {
            (Some(protocol), Ok(summary)) => {
                if let Some(seq) = summary.sequence {
                    state.track_sequence(protocol, seq);
                }
                Ok(protocol)
            }
            (_, Err(error)) => {
                state.counters.count_error(error);
                Err(error)
            }
            (None, Ok(_)) => Err(DecodeError::UnknownVersion),
        }
    }

    /// Drops pending data sets that waited too long, at most once per second of `now_ms`.
    fn expire(&mut self, now_ms: u64) {
        if now_ms < self.last_expiry_ms + 1000 {
            return;
        }
        self.last_expiry_ms = now_ms;
        let exporters = &mut self.exporters;
        self.templates.expire(now_ms, &mut |exporter, dropped| {
            if let Some(state) = exporters.get_mut(&exporter) {
                state.counters.pending_dropped += dropped;
            }
        });
    }

    /// Counters of one exporter.
    pub fn exporter(&self, source: IpAddr) -> Option<&ExporterCounters> {
        self.exporters.get(&source).map(|s| &s.counters)
    }

    /// Counters of every tracked exporter (in no particular order).
    pub fn exporters(&self) -> impl Iterator<Item = (IpAddr, &ExporterCounters)> {
        self.exporters.iter().map(|(ip, s)| (*ip, &s.counters))
    }

    /// Counters of datagrams from exporters that did not fit in the table.
    pub fn overflow(&self) -> &ExporterCounters {
        &self.overflow
    }

    /// Totals over every exporter, including the overflow.
    pub fn totals(&self) -> ExporterCounters {
        let mut total = self.overflow.clone();
        for state in self.exporters.values() {
            total.accumulate(&state.counters);
        }
        total
    }

    /// Templates currently cached, and bytes of data held waiting for templates.
    pub fn template_usage(&self) -> (usize, usize) {
        (
            self.templates.template_count(),
            self.templates.pending_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn v5_datagram(sequence: u32, count: u16) -> Vec<u8> {
        let header = crate::netflow_v5::HeaderRepr {
            sys_uptime: 10_000,
            unix_secs: 1_700_000_000,
            unix_nsecs: 0,
            flow_sequence: sequence,
            engine_type: 1,
            engine_id: 2,
            sampling: 0,
        };
        let record = crate::netflow_v5::RecordRepr {
            src_addr: Ipv4Addr::new(198, 51, 100, 1),
            dst_addr: Ipv4Addr::new(203, 0, 113, 1),
            next_hop: Ipv4Addr::UNSPECIFIED,
            input: 1,
            output: 2,
            packets: 1,
            octets: 100,
            first: 9_000,
            last: 9_500,
            src_port: 1,
            dst_port: 2,
            tcp_flags: 0,
            protocol: 17,
            tos: 0,
            src_as: 0,
            dst_as: 0,
            src_mask: 0,
            dst_mask: 0,
        };
        crate::netflow_v5::emit(&header, &vec![record; count as usize])
    }

    #[test]
    fn protocol_is_told_from_the_bytes() {
        assert_eq!(
            Protocol::detect(&[0, 0, 0, 5, 0, 0, 0, 1]),
            Some(Protocol::SflowV5)
        );
        assert_eq!(Protocol::detect(&[0, 5, 0, 1]), Some(Protocol::NetflowV5));
        assert_eq!(Protocol::detect(&[0, 9]), Some(Protocol::NetflowV9));
        assert_eq!(Protocol::detect(&[0, 10]), Some(Protocol::Ipfix));
        assert_eq!(Protocol::detect(&[0, 7]), None);
        assert_eq!(Protocol::detect(&[]), None);
    }

    #[test]
    fn sequence_loss_and_resets_are_counted_per_exporter() {
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        let source = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        // v5 sequences count flows: 0 (+3) → 3 (+3) → 10 means 4 flows lost.
        for sequence in [0, 3, 10] {
            decoder
                .decode(source, 0, &v5_datagram(sequence, 3), &mut out)
                .unwrap();
        }
        assert_eq!(decoder.exporter(source).unwrap().sequence_lost, 4);
        // A jump backwards is a restart, not loss.
        decoder
            .decode(source, 0, &v5_datagram(1, 3), &mut out)
            .unwrap();
        let counters = decoder.exporter(source).unwrap();
        assert_eq!((counters.sequence_lost, counters.sequence_resets), (4, 1));
        assert_eq!((counters.datagrams, counters.records), (4, 12));
        assert_eq!(out.len(), 12);
    }

    #[test]
    fn exporter_table_is_bounded_and_overflow_is_counted() {
        let limits = Limits {
            max_exporters: 2,
            ..Limits::default()
        };
        let mut decoder = Decoder::new(limits);
        let mut out = Vec::new();
        for last in 1..=5u8 {
            let source = IpAddr::V4(Ipv4Addr::new(192, 0, 2, last));
            let result = decoder.decode(source, 0, &v5_datagram(0, 1), &mut out);
            assert_eq!(result.is_ok(), last <= 2);
        }
        assert_eq!(decoder.exporters().count(), 2);
        assert_eq!(decoder.overflow().error(DecodeError::TooManyExporters), 3);
        // Known exporters keep working when the table is full.
        let known = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        assert!(decoder
            .decode(known, 0, &v5_datagram(1, 1), &mut out)
            .is_ok());
        assert_eq!(decoder.totals().datagrams, 6);
    }

    #[test]
    fn records_from_a_clock_running_ahead_are_stamped_with_arrival() {
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        let source = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        // The datagram's flows end at 1_700_000_000 s minus 0.5 s; it arrives an hour earlier.
        let arrival_ms = 1_700_000_000_000 - 3_600_000;
        decoder
            .decode(source, arrival_ms, &v5_datagram(0, 2), &mut out)
            .unwrap();
        assert!(out.iter().all(|r| r.time_ms == arrival_ms));
        assert_eq!(decoder.exporter(source).unwrap().future_timestamps, 2);
        // On time: kept as the exporter stamped it.
        out.clear();
        decoder
            .decode(source, 1_700_000_000_000, &v5_datagram(2, 1), &mut out)
            .unwrap();
        assert_eq!(out[0].time_ms, 1_699_999_999_500);
    }

    #[test]
    fn unknown_versions_are_counted_as_errors() {
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        let source = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9));
        assert_eq!(
            decoder.decode(source, 0, b"\x00\x07junk", &mut out),
            Err(DecodeError::UnknownVersion)
        );
        assert_eq!(
            decoder
                .exporter(source)
                .unwrap()
                .error(DecodeError::UnknownVersion),
            1
        );
        assert!(out.is_empty());
    }
}
