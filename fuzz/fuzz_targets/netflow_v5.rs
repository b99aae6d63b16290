//! Any bytes as a NetFlow v5 datagram.
#![no_main]
use floodwall_wire::{netflow_v5, Context, ExporterCounters};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr};

fuzz_target!(|data: &[u8]| {
    let ctx = Context {
        source: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        now_ms: 1_600_000_000_000,
    };
    let mut out = Vec::new();
    let mut counters = ExporterCounters::default();
    let _ = netflow_v5::decode(&ctx, data, &mut out, &mut counters);
    assert!(out.len() <= usize::from(netflow_v5::MAX_RECORDS));
});
