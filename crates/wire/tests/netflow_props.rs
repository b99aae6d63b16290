//! Property tests: arbitrary and mutated NetFlow / IPFIX datagrams never panic and never grow
//! the template cache or pending buffer beyond `Limits`.

use std::net::{IpAddr, Ipv4Addr};

use floodwall_wire::export::{ExportClock, Flow, MessageWriter, TemplateRepr};
use floodwall_wire::template::{Flavor, TemplateDecoder};
use floodwall_wire::{netflow_v5, Context, ExporterCounters, Limits};
use proptest::prelude::*;

fn limits() -> Limits {
    Limits {
        max_templates_per_domain: 4,
        max_templates: 16,
        max_template_fields: 32,
        pending_max_bytes: 4096,
        ..Limits::default()
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let clock = ExportClock {
        unix_secs: 1_600_000_000,
        sys_uptime_ms: 1_000_000,
    };
    let flows: Vec<Flow> = (0..3u8)
        .map(|i| Flow {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 1, i)),
            src_port: 1,
            dst_port: 2,
            protocol: 17,
            tcp_flags: 0,
            bytes: 100,
            packets: 1,
            in_if: 1,
            out_if: 2,
            start_ms: 1_599_999_999_000,
            end_ms: 1_600_000_000_000,
        })
        .collect();
    let mut seeds = Vec::new();
    for flavor in [Flavor::NetflowV9, Flavor::Ipfix] {
        let template = if flavor == Flavor::Ipfix {
            TemplateRepr::exotic(256)
        } else {
            TemplateRepr::standard(flavor, 256, true)
        };
        let options = TemplateRepr::sampling_options(flavor, 257);
        seeds.push(
            MessageWriter::new(flavor, clock, 0, 1)
                .templates(&[&template])
                .templates(&[&options])
                .sampling(&options, 10)
                .flows(&template, &flows)
                .finish(),
        );
    }
    seeds.push(netflow_v5::emit(
        &netflow_v5::HeaderRepr::default(),
        &[netflow_v5::RecordRepr::default(); 2],
    ));
    seeds
}

fn run(datagrams: &[Vec<u8>]) {
    let limits = limits();
    let mut decoder = TemplateDecoder::new(limits);
    let mut counters = ExporterCounters::default();
    let mut out = Vec::new();
    for (i, datagram) in datagrams.iter().enumerate() {
        let ctx = Context {
            source: IpAddr::V4(Ipv4Addr::new(192, 0, 2, (i % 2) as u8)),
            now_ms: i as u64 * 1_000,
        };
        let _ = netflow_v5::decode(&ctx, datagram, &mut out, &mut counters);
        let _ = decoder.decode_v9(&ctx, datagram, &mut out, &mut counters);
        let _ = decoder.decode_ipfix(&ctx, datagram, &mut out, &mut counters);
        decoder.expire(ctx.now_ms, &mut |_, _| {});
        assert!(decoder.template_count() <= limits.max_templates);
        assert!(decoder.pending_bytes() <= limits.pending_max_bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(datagrams in prop::collection::vec(
        (prop::sample::select(vec![5u8, 9, 10]), prop::collection::vec(any::<u8>(), 0..600)), 1..6)
    ) {
        let datagrams: Vec<Vec<u8>> = datagrams
            .into_iter()
            .map(|(version, mut bytes)| {
                if bytes.len() >= 2 {
                    bytes[0] = 0;
                    bytes[1] = version;
                }
                bytes
            })
            .collect();
        run(&datagrams);
    }

    #[test]
    fn mutated_datagrams_never_panic(
        seed in 0usize..3,
        mutations in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
        cut in any::<prop::sample::Index>(),
    ) {
        let seeds = seeds();
        let original = seeds[seed].clone();
        let mut mutated = original.clone();
        for (at, byte) in mutations {
            let at = at.index(mutated.len());
            mutated[at] = byte;
        }
        let truncated = mutated[..cut.index(mutated.len() + 1)].to_vec();
        run(&[original.clone(), mutated.clone(), truncated, mutated, original]);
    }
}
