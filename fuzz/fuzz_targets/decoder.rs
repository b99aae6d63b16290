//! Any bytes, as a sequence of datagrams from a few exporters, through the stateful front door.
//! The exporter table holds two of the five sources, so admission and eviction (with their
//! templates) are exercised, and rate trust and sample pools carry state between datagrams.
#![no_main]
use floodwall_wire::{Decoder, Limits};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr};

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new(Limits {
        max_exporters: 2,
        ..Limits::default()
    });
    let mut out = Vec::new();
    // Split the input into datagrams at a marker so templates and data can arrive in separate ones.
    for (i, datagram) in data.split(|&b| b == 0xA5).enumerate() {
        let source = IpAddr::V4(Ipv4Addr::new(192, 0, 2, (i % 5) as u8));
        let _ = decoder.decode(source, i as u64 * 700, datagram, &mut out);
    }
    assert!(decoder.exporters().count() <= 2);
    assert!(out.iter().all(|r| r.datagram != 0
        && r.sampling_rate <= decoder.limits().max_sampling_rate));
    assert!(decoder.template_usage().1 <= decoder.limits().pending_max_bytes);
});
