//! Any bytes through the sFlow v5 decoder: no panic, and never more records than flow samples fit.
#![no_main]
use floodwall_wire::{sflow, Context, ExporterCounters};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr};

fuzz_target!(|data: &[u8]| {
    let ctx = Context {
        source: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        now_ms: 0,
    };
    let mut out = Vec::new();
    let mut counters = ExporterCounters::default();
    let _ = sflow::decode(&ctx, data, &mut out, &mut counters);
    // A flow sample takes at least its 8-byte envelope and 32 bytes of fixed fields.
    assert!(out.len() <= data.len() / 40);
});
