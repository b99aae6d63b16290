//! Collector trust (issue 12): what a datagram claims must be plausible before it becomes
//! records, and junk from any number of sources cannot blind the decoder.

use std::net::{IpAddr, Ipv4Addr};

use floodwall_wire::export::{ExportClock, Flow, MessageWriter, TemplateRepr};
use floodwall_wire::sflow::{DatagramRepr, FlowDataRepr, FlowSampleRepr, SampleRepr};
use floodwall_wire::template::Flavor;
use floodwall_wire::{proto, DecodeError, Decoder, FlowRecord, Limits};

const NOW_MS: u64 = 1_700_000_000_000;
const EXPORTER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const VICTIM: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);

/// A flow sample of source `source_id` (sample number `sequence`, pool `pool`) describing one
/// 1,000-byte UDP packet to the victim.
fn sample(source_id: u32, sequence: u32, rate: u32, pool: u32) -> SampleRepr {
    SampleRepr::Flow(FlowSampleRepr {
        expanded: false,
        sequence,
        source_id_type: 0,
        source_id_index: source_id,
        sampling_rate: rate,
        sample_pool: pool,
        drops: 0,
        input: 1,
        output: 2,
        records: vec![FlowDataRepr::SampledIpv4 {
            length: 1000,
            protocol: u32::from(proto::UDP),
            src: Ipv4Addr::new(198, 51, 100, 1),
            dst: VICTIM,
            src_port: 123,
            dst_port: 40_000,
            tcp_flags: 0,
            tos: 0,
        }],
    })
}

fn sflow(sequence: u32, samples: Vec<SampleRepr>) -> Vec<u8> {
    DatagramRepr {
        agent: EXPORTER,
        sub_agent_id: 0,
        sequence,
        uptime_ms: 1000,
        samples,
    }
    .to_vec()
}

/// The datagram: five samples claiming 1 in 2^32−1.
fn spoofed() -> Vec<u8> {
    sflow(1, (1..=5).map(|i| sample(3, i, u32::MAX, 0)).collect())
}

/// A steady sFlow exporter at 1:`rate`: `n` samples per datagram, pool consistent.
struct SflowExporter {
    datagram: u32,
    sample: u32,
    rate: u32,
}

impl SflowExporter {
    fn new(rate: u32) -> Self {
        SflowExporter {
            datagram: 0,
            sample: 0,
            rate,
        }
    }

    fn next(&mut self, n: u32) -> Vec<u8> {
        self.datagram += 1;
        let samples = (0..n)
            .map(|_| {
                self.sample += 1;
                sample(3, self.sample, self.rate, self.sample * self.rate)
            })
            .collect();
        sflow(self.datagram, samples)
    }
}

fn decode(decoder: &mut Decoder, source: IpAddr, datagram: &[u8]) -> Vec<FlowRecord> {
    let mut out = Vec::new();
    let _ = decoder.decode(source, NOW_MS, datagram, &mut out);
    out
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

#[test]
fn a_sampling_rate_above_the_ceiling_is_dropped_never_scaled_and_counted() {
    let mut decoder = Decoder::default();
    assert!(decode(&mut decoder, EXPORTER, &spoofed()).is_empty());
    let counters = decoder.totals();
    assert_eq!(counters.sampling_rate_out_of_range, 5);
    assert_eq!(counters.records, 0);

    // At the ceiling (1:65536) a record counts, scaled; one above it does not.
    let mut decoder = Decoder::default();
    let at = sflow(1, vec![sample(3, 1, 65_536, 0), sample(3, 2, 65_537, 0)]);
    let records = decode(&mut decoder, EXPORTER, &at);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].packets, 65_536);
    assert_eq!(decoder.totals().sampling_rate_out_of_range, 1);

    // The ceiling is a limit of the decoder.
    let mut decoder = Decoder::new(Limits {
        max_sampling_rate: 4096,
        ..Limits::default()
    });
    assert!(decode(
        &mut decoder,
        EXPORTER,
        &sflow(1, vec![sample(3, 1, 8192, 0)])
    )
    .is_empty());

    // Rate 0 is invalid: counted, and the record stands for itself alone.
    let mut decoder = Decoder::default();
    let records = decode(&mut decoder, EXPORTER, &sflow(1, vec![sample(3, 1, 0, 0)]));
    assert_eq!((records.len(), records[0].packets), (1, 1));
    assert_eq!(decoder.totals().invalid_sampling, 1);
}

fn template_flow() -> Flow {
    Flow {
        src: v4(198, 51, 100, 1),
        dst: IpAddr::V4(VICTIM),
        src_port: 123,
        dst_port: 40_000,
        protocol: proto::UDP,
        tcp_flags: 0,
        bytes: 1000,
        packets: 1,
        in_if: 1,
        out_if: 2,
        start_ms: NOW_MS - 1000,
        end_ms: NOW_MS - 500,
    }
}

/// A NetFlow v9 or IPFIX message with templates, sampling options at `rate` and five flows.
fn templated(flavor: Flavor, sequence: u32, rate: u32) -> Vec<u8> {
    let clock = ExportClock {
        unix_secs: (NOW_MS / 1000) as u32,
        sys_uptime_ms: 3_600_000,
    };
    let data = TemplateRepr::standard(flavor, 256, false);
    let options = TemplateRepr::sampling_options(flavor, 257);
    MessageWriter::new(flavor, clock, sequence, 1)
        .templates(&[&data, &options])
        .sampling(&options, rate)
        .flows(&data, &[template_flow(); 5])
        .finish()
}

#[test]
fn netflow_v9_and_ipfix_sampling_options_above_the_ceiling_are_dropped_and_counted() {
    for flavor in [Flavor::NetflowV9, Flavor::Ipfix] {
        let mut decoder = Decoder::default();
        assert!(
            decode(&mut decoder, EXPORTER, &templated(flavor, 1, u32::MAX)).is_empty(),
            "{flavor:?}"
        );
        assert_eq!(decoder.totals().sampling_rate_out_of_range, 5, "{flavor:?}");
        // A plausible rate from another exporter is scaled as before.
        let records = decode(&mut decoder, v4(192, 0, 2, 2), &templated(flavor, 1, 1000));
        assert_eq!(records.len(), 5, "{flavor:?}");
        assert_eq!(records[0].packets, 1000, "{flavor:?}");
    }
}

#[test]
fn a_new_sampling_rate_is_trusted_only_after_three_datagrams() {
    let mut decoder = Decoder::default();
    let mut real = SflowExporter::new(1000);
    for _ in 0..5 {
        assert_eq!(decode(&mut decoder, EXPORTER, &real.next(4)).len(), 4);
    }
    // The same exporter (or someone spoofing it) suddenly claims 1:50000.
    let mut changed = SflowExporter {
        rate: 50_000,
        ..real
    };
    assert!(decode(&mut decoder, EXPORTER, &changed.next(4)).is_empty());
    assert!(decode(&mut decoder, EXPORTER, &changed.next(4)).is_empty());
    // Seen consistently in three datagrams: a reconfiguration, trusted from now on.
    assert_eq!(decode(&mut decoder, EXPORTER, &changed.next(4)).len(), 4);
    let counters = decoder.exporter(EXPORTER).unwrap();
    assert_eq!(counters.sampling_rate_changes, 1);
    assert_eq!(counters.untrusted_rate_records, 8);
    // The established rate stays trusted (an exporter with per-interface rates uses both).
    let mut back = SflowExporter {
        rate: 1000,
        ..changed
    };
    assert_eq!(decode(&mut decoder, EXPORTER, &back.next(2)).len(), 2);
}

#[test]
fn a_sample_whose_pool_did_not_grow_is_dropped_and_a_steady_exporter_loses_nothing() {
    let mut decoder = Decoder::default();
    let mut real = SflowExporter::new(2048);
    for _ in 0..200 {
        assert_eq!(decode(&mut decoder, EXPORTER, &real.next(7)).len(), 7);
    }
    let counters = decoder.exporter(EXPORTER).unwrap();
    assert_eq!(
        (counters.impossible_samples, counters.inconsistent_samples),
        (0, 0)
    );
    // Forged samples grafted onto the real stream: the next sample numbers, a pool that does
    // not move (the forger does not know it).
    let pool = real.sample * real.rate;
    let forged = sflow(
        999,
        (1..=5)
            .map(|i| sample(3, real.sample + i, 2048, pool))
            .collect(),
    );
    assert!(decode(&mut decoder, EXPORTER, &forged).is_empty());
    assert_eq!(decoder.exporter(EXPORTER).unwrap().impossible_samples, 5);
    // The real exporter goes on undisturbed.
    assert_eq!(decode(&mut decoder, EXPORTER, &real.next(7)).len(), 7);
    assert_eq!(decoder.exporter(EXPORTER).unwrap().impossible_samples, 5);
}

/// Junk from `n` distinct sources of 10.0.0.0/8.
fn junk_from(decoder: &mut Decoder, n: u32, junk: &[u8]) {
    let mut out = Vec::new();
    for i in 0..n {
        let source = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
        let _ = decoder.decode(source, NOW_MS, junk, &mut out);
    }
    assert!(out.is_empty());
}

#[test]
fn junk_from_ten_thousand_sources_takes_no_slot_and_a_real_exporter_is_admitted() {
    let mut decoder = Decoder::default();
    junk_from(&mut decoder, 10_000, b"\x00\x07not telemetry");
    // A valid-looking header with nothing behind it is not well-formed either.
    junk_from(&mut decoder, 10_000, &[0, 0, 0, 5, 0, 0, 0, 1, 10, 0, 0, 1]);
    junk_from(&mut decoder, 10_000, &[0, 9, 0, 1]);
    assert_eq!(decoder.exporters().count(), 0);
    let overflow = decoder.overflow();
    assert_eq!(overflow.datagrams, 30_000);
    assert_eq!(overflow.error(DecodeError::UnknownVersion), 10_000);
    assert_eq!(overflow.error(DecodeError::Truncated), 20_000);

    let mut real = SflowExporter::new(1000);
    let records = decode(&mut decoder, EXPORTER, &real.next(5));
    assert_eq!(records.len(), 5);
    assert_eq!(decoder.exporter(EXPORTER).unwrap().records, 5);
}

#[test]
fn well_formed_empty_datagrams_from_ten_thousand_sources_never_evict_a_real_exporter() {
    let mut decoder = Decoder::default();
    let mut real = SflowExporter::new(1000);
    assert_eq!(decode(&mut decoder, EXPORTER, &real.next(5)).len(), 5);
    // Valid sFlow datagrams without samples: admitted, but never good, so evicted first.
    let empty = sflow(1, Vec::new());
    junk_from(&mut decoder, 10_000, &empty);
    assert!(decoder.exporters().count() <= Limits::default().max_exporters);
    assert!(decoder.overflow().evictions >= 10_000 - 4096);
    assert_eq!(decode(&mut decoder, EXPORTER, &real.next(5)).len(), 5);
    // Still the same entry: its counters go on.
    assert_eq!(decoder.exporter(EXPORTER).unwrap().datagrams, 2);
    // Another real exporter arriving now is admitted.
    let mut other = SflowExporter::new(1000);
    assert_eq!(
        decode(&mut decoder, v4(192, 0, 2, 2), &other.next(5)).len(),
        5
    );
    // Nothing is lost from the totals.
    assert_eq!(decoder.totals().datagrams, 10_003);
}

#[test]
fn a_full_table_evicts_the_source_idle_or_erroring_longest_and_forgets_its_templates() {
    let limits = Limits {
        max_exporters: 32,
        ..Limits::default()
    };
    let mut decoder = Decoder::new(limits);
    let ipfix = |sequence| templated(Flavor::Ipfix, sequence, 1000);
    // 32 exporters; the first speaks IPFIX (templates), the rest sFlow.
    let first = v4(192, 0, 2, 100);
    assert_eq!(decode(&mut decoder, first, &ipfix(0)).len(), 5);
    let (templates_with_first, _) = decoder.template_usage();
    assert!(templates_with_first > 0);
    let mut exporters: Vec<(IpAddr, SflowExporter)> = (1..32)
        .map(|i| (v4(192, 0, 2, i), SflowExporter::new(1000)))
        .collect();
    for (ip, exporter) in &mut exporters {
        assert_eq!(decode(&mut decoder, *ip, &exporter.next(1)).len(), 1);
    }
    // The first keeps sending, but only truncated datagrams; the others send good ones.
    let mut truncated = ipfix(1);
    truncated.truncate(10);
    assert!(decoder
        .decode(first, NOW_MS, &truncated, &mut Vec::new())
        .is_err());
    for (ip, exporter) in &mut exporters {
        assert_eq!(decode(&mut decoder, *ip, &exporter.next(1)).len(), 1);
    }
    assert_eq!(decoder.exporters().count(), 32);
    // A new exporter is admitted; the erroring one made room, with its templates.
    let newcomer = v4(192, 0, 2, 200);
    assert_eq!(
        decode(&mut decoder, newcomer, &SflowExporter::new(1000).next(1)).len(),
        1
    );
    assert!(decoder.exporter(first).is_none());
    assert!(decoder.exporter(newcomer).is_some());
    assert_eq!(decoder.exporters().count(), 32);
    assert_eq!(decoder.overflow().evictions, 1);
    assert_eq!(decoder.template_usage().0, 0);
    assert_eq!(decoder.totals().datagrams, 1 + 31 + 1 + 31 + 1);
    // Back, it is a new exporter: templates again, then data.
    assert_eq!(decode(&mut decoder, first, &ipfix(2)).len(), 5);
}

#[test]
fn every_record_carries_the_number_of_its_datagram() {
    let mut decoder = Decoder::default();
    let mut real = SflowExporter::new(1000);
    let mut numbers = Vec::new();
    for _ in 0..3 {
        numbers.extend(
            decode(&mut decoder, EXPORTER, &real.next(2))
                .iter()
                .map(|r| r.datagram),
        );
    }
    // Junk in between is numbered too (the count is of datagrams decoded).
    let _ = decode(&mut decoder, v4(10, 0, 0, 1), b"junk");
    numbers.extend(
        decode(&mut decoder, EXPORTER, &real.next(1))
            .iter()
            .map(|r| r.datagram),
    );
    assert_eq!(numbers, [1, 1, 2, 2, 3, 3, 5]);
}
