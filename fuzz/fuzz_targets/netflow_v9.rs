//! Any bytes, split into several datagrams from two exporters, through one `TemplateDecoder`
//! so templates, options data, withdrawals and held data sets interact.
#![no_main]
use floodwall_wire::template::TemplateDecoder;
use floodwall_wire::{Context, ExporterCounters, Limits};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_templates_per_domain: 8,
        max_templates: 32,
        pending_max_bytes: 8192,
        pending_max_age_ms: 2_000,
        ..Limits::default()
    };
    let mut decoder = TemplateDecoder::new(limits);
    let mut counters = ExporterCounters::default();
    let mut out = Vec::new();
    // Datagrams are separated by a marker; each gets the version prefix so most reach the sets.
    let mut datagram = Vec::new();
    for (i, chunk) in data.split(|&b| b == 0xA5).enumerate() {
        datagram.clear();
        datagram.extend_from_slice(&[0, 9]);
        datagram.extend_from_slice(chunk);
        let ctx = Context {
            source: IpAddr::V4(Ipv4Addr::new(192, 0, 2, (i % 2) as u8)),
            now_ms: i as u64 * 700,
        };
        let _ = decoder.decode_v9(&ctx, &datagram, &mut out, &mut counters);
        decoder.expire(ctx.now_ms, &mut |_, _| {});
        assert!(decoder.template_count() <= limits.max_templates);
        assert!(decoder.pending_bytes() <= limits.pending_max_bytes);
    }
});
