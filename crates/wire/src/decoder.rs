//! The front door: one datagram in, records out. Tells the protocol from the bytes (never the
//! port), keeps per-exporter counters and sequence state, and owns the template cache.
//!
//! Pure and deterministic: time is passed in, nothing here does I/O.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::template::TemplateDecoder;
use crate::trust::{RateTrust, SamplePools};
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

/// Memory bounds of the decoder state, and the ceiling on what a record may claim. Every cache
/// is capped; what does not fit is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Exporters tracked with their own counters and templates. A full table evicts the sources
    /// that never sent a good datagram, then those that sent one least recently.
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
    /// The largest 1-in-N sampling rate a record may claim; records claiming more are dropped
    /// (never scaled) and counted in `sampling_rate_out_of_range`.
    pub max_sampling_rate: u32,
}

/// Default ceiling on sampling rates: real deployments sample 1:1 to 1:32768 (the coarsest
/// router and switch settings; sFlow's recommended rates stop at 1:8192 for 100 Gb/s links), so
/// 1:65536 leaves a factor of two. Each record is scaled by its rate: a datagram of five samples
/// claiming 2^32−1 would be 21 G packets.
pub const DEFAULT_MAX_SAMPLING_RATE: u32 = 65_536;

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
            max_sampling_rate: DEFAULT_MAX_SAMPLING_RATE,
        }
    }
}

/// How far ahead of the receive time a record's own timestamp may be (clock skew, rounding).
pub const MAX_CLOCK_AHEAD_MS: u64 = 2_000;
/// Sequence streams tracked per exporter; a hostile exporter cycling domains cannot grow this.
const MAX_SEQUENCE_STREAMS: usize = 32;
/// A forward jump larger than this is a restart, not loss.
const MAX_PLAUSIBLE_LOSS: u32 = 1 << 20;
/// A full exporter table evicts this share of itself at once, so the ranking scan is paid once
/// per this many admissions rather than per datagram from a new source.
const EVICT_SHARE: usize = 32;

#[derive(Debug, Default)]
struct ExporterState {
    counters: ExporterCounters,
    /// (protocol, domain) → next expected sequence number, if known.
    sequences: Vec<(Protocol, u32, Option<u32>)>,
    rates: RateTrust,
    pools: SamplePools,
    /// The decoder's datagram count when this exporter last sent a good datagram (records,
    /// templates or counter samples), 0 = never; and when it last sent anything.
    last_good: u64,
    last_seen: u64,
    /// Has state in the template cache to forget when evicted.
    uses_templates: bool,
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

    /// Decodes one datagram of a detected protocol into `out`, with this exporter's state.
    fn decode(
        &mut self,
        templates: &mut TemplateDecoder,
        ctx: &Context,
        protocol: Protocol,
        datagram: &[u8],
        out: &mut Vec<FlowRecord>,
    ) -> Result<Summary, DecodeError> {
        let counters = &mut self.counters;
        match protocol {
            Protocol::SflowV5 => {
                sflow::decode_checked(ctx, datagram, out, counters, &mut self.pools)
            }
            Protocol::NetflowV5 => netflow_v5::decode(ctx, datagram, out, counters),
            Protocol::NetflowV9 => {
                self.uses_templates = true;
                templates.decode_v9(ctx, datagram, out, counters)
            }
            Protocol::Ipfix => {
                self.uses_templates = true;
                templates.decode_ipfix(ctx, datagram, out, counters)
            }
        }
    }

    /// What makes a datagram good (besides records): templates learnt, counter samples.
    fn good_count(&self) -> u64 {
        self.counters.templates_learned + self.counters.counter_samples
    }

    /// Counts a decoded datagram and judges its records (see [`ExporterState::finish`]).
    fn conclude(
        &mut self,
        limits: &Limits,
        arrival: Arrival,
        result: Result<Summary, DecodeError>,
        good_before: u64,
        out: &mut Vec<FlowRecord>,
        before: usize,
    ) -> Result<Protocol, DecodeError> {
        self.counters.datagrams += 1;
        self.last_seen = arrival.decoded;
        // Rates are learnt per stream: the datagram's sequence domain (sFlow sub-agent, v9
        // source id, IPFIX observation domain, v5 engine) within its protocol.
        let domain = result
            .as_ref()
            .ok()
            .and_then(|s| s.sequence)
            .map_or(u32::MAX, |s| s.domain);
        let stream = (arrival.protocol as u64) << 32 | u64::from(domain);
        let records = self.finish(limits, arrival.now_ms, arrival.number, stream, out, before);
        match result {
            Ok(summary) => {
                if records > 0 || self.good_count() > good_before {
                    self.last_good = arrival.decoded;
                }
                if let Some(seq) = summary.sequence {
                    self.track_sequence(arrival.protocol, seq);
                }
                Ok(arrival.protocol)
            }
            Err(error) => {
                self.counters.count_error(error);
                Err(error)
            }
        }
    }

    /// Judges and stamps the records this exporter's datagram number `number` appended after
    /// `before`: drops out-of-range and untrusted sampling rates, re-stamps future timestamps.
    /// Returns how many records were kept.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        limits: &Limits,
        now_ms: u64,
        number: u32,
        stream: u64,
        out: &mut Vec<FlowRecord>,
        before: usize,
    ) -> usize {
        // An exporter clock running ahead must not drag telemetry time into the future: records
        // stamped later than their arrival count as arriving now.
        let latest = now_ms.saturating_add(MAX_CLOCK_AHEAD_MS);
        let datagram = self.counters.datagrams;
        let counters = &mut self.counters;
        let mut kept = before;
        for i in before..out.len() {
            let record = &mut out[i];
            let rate = record.sampling_rate;
            if rate > limits.max_sampling_rate {
                counters.sampling_rate_out_of_range += 1;
                continue;
            }
            // Unsampled records claim nothing beyond themselves.
            if rate > 1 && !self.rates.admit(stream, rate, datagram, counters) {
                counters.untrusted_rate_records += 1;
                continue;
            }
            if record.time_ms > latest {
                record.time_ms = now_ms;
                counters.future_timestamps += 1;
            }
            record.datagram = number;
            // Records move down only once one was dropped: the common case writes in place.
            if kept != i {
                out[kept] = out[i];
            }
            kept += 1;
        }
        out.truncate(kept);
        let records = kept - before;
        counters.records += records as u64;
        records
    }
}

/// A datagram as the decoder numbered it.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    now_ms: u64,
    /// Its `FlowRecord::datagram` number.
    number: u32,
    /// The decoder's count of datagrams (the exporter table's recency clock).
    decoded: u64,
    protocol: Protocol,
}

/// Decodes datagrams of any supported protocol from any number of exporters.
pub struct Decoder {
    limits: Limits,
    exporters: HashMap<IpAddr, ExporterState, foldhash::fast::RandomState>,
    /// Counters of sources outside the table: datagrams from new sources that were not
    /// well-formed (never admitted) and the folded counters of evicted exporters.
    overflow: ExporterCounters,
    templates: TemplateDecoder,
    last_expiry_ms: u64,
    /// Datagrams decoded so far (the recency clock of the exporter table).
    decoded: u64,
    /// The number given to the last datagram's records (1, 2, … wrapping past 0 to 1).
    number: u32,
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
            decoded: 0,
            number: 0,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Decodes one datagram received from `source` at `now_ms`, appending its records to `out`.
    ///
    /// Each record is numbered with the datagram that carried it (`FlowRecord::datagram`: this
    /// decoder's count of datagrams, from 1, wrapping past 0 to 1). Records claiming a sampling
    /// rate above `Limits::max_sampling_rate`, or one still on probation for this exporter
    /// ([`crate::trust`]), are dropped and counted.
    ///
    /// A source not yet in the exporter table is admitted only if its datagram is well-formed,
    /// so junk never takes a slot (it is counted in [`Decoder::overflow`] and its records, if
    /// any, are dropped); a full table evicts to make room. Records decoded before an error
    /// stay in `out`; the error is counted for the exporter and returned. Never panics and never
    /// grows state beyond `Limits`.
    pub fn decode(
        &mut self,
        source: IpAddr,
        now_ms: u64,
        datagram: &[u8],
        out: &mut Vec<FlowRecord>,
    ) -> Result<Protocol, DecodeError> {
        self.expire(now_ms);
        self.decoded += 1;
        self.number = self.number.wrapping_add(1).max(1);
        let ctx = Context { source, now_ms };
        let before = out.len();
        let Some(protocol) = Protocol::detect(datagram) else {
            let counters = match self.exporters.get_mut(&source) {
                Some(state) => {
                    state.last_seen = self.decoded;
                    &mut state.counters
                }
                None => &mut self.overflow,
            };
            counters.datagrams += 1;
            counters.count_error(DecodeError::UnknownVersion);
            return Err(DecodeError::UnknownVersion);
        };
        let arrival = Arrival {
            now_ms,
            number: self.number,
            decoded: self.decoded,
            protocol,
        };
        // One hash lookup per datagram from a known exporter.
        if let Some(state) = self.exporters.get_mut(&source) {
            let good_before = state.good_count();
            let result = state.decode(&mut self.templates, &ctx, protocol, datagram, out);
            return state.conclude(&self.limits, arrival, result, good_before, out, before);
        }
        let mut state = ExporterState::default();
        let result = state.decode(&mut self.templates, &ctx, protocol, datagram, out);
        if let Err(error) = result {
            // Not well-formed from an unknown source: nothing of it is kept, no slot is taken.
            out.truncate(before);
            if state.uses_templates {
                self.templates.forget_exporters(&|ip| ip == source);
            }
            state.counters.datagrams += 1;
            state.counters.count_error(error);
            state.counters.records = 0;
            self.overflow.accumulate(&state.counters);
            return Err(error);
        }
        if self.exporters.len() >= self.limits.max_exporters {
            self.evict();
        }
        let state = self.exporters.entry(source).or_insert(state);
        state.conclude(&self.limits, arrival, result, 0, out, before)
    }

    /// Makes room in a full exporter table: evicts the sources that never sent a good datagram,
    /// then those whose last good datagram is oldest (idle, or sending only errors since), a
    /// share of the table at once. Their counters are folded into [`Decoder::overflow`] and
    /// their templates forgotten.
    fn evict(&mut self) {
        let count = (self.limits.max_exporters / EVICT_SHARE)
            .max(1)
            .min(self.exporters.len());
        if count == 0 {
            return;
        }
        let mut ranked: Vec<(u64, u64, IpAddr)> = self
            .exporters
            .iter()
            .map(|(ip, s)| (s.last_good, s.last_seen, *ip))
            .collect();
        if count < ranked.len() {
            ranked.select_nth_unstable(count - 1);
            ranked.truncate(count);
        }
        let mut templates = false;
        for &(_, _, ip) in &ranked {
            if let Some(state) = self.exporters.remove(&ip) {
                templates |= state.uses_templates;
                self.overflow.accumulate(&state.counters);
                self.overflow.evictions += 1;
            }
        }
        if templates {
            let gone: std::collections::HashSet<IpAddr, foldhash::fast::RandomState> =
                ranked.iter().map(|&(_, _, ip)| ip).collect();
            self.templates.forget_exporters(&|ip| gone.contains(&ip));
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

    /// Counters of sources outside the table: datagrams from new sources that were not
    /// well-formed, and the counters of evicted exporters (`evictions` counts them).
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
        // Junk from a new source takes no slot: it is counted with the untracked sources.
        assert!(decoder.exporter(source).is_none());
        assert_eq!(decoder.overflow().error(DecodeError::UnknownVersion), 1);
        // From a known exporter it is the exporter's error.
        decoder
            .decode(source, 0, &v5_datagram(0, 1), &mut out)
            .unwrap();
        let _ = decoder.decode(source, 0, b"\x00\x07junk", &mut out);
        let counters = decoder.exporter(source).unwrap();
        assert_eq!(counters.error(DecodeError::UnknownVersion), 1);
        assert_eq!(counters.datagrams, 2);
        assert_eq!(out.len(), 1);
    }
}
