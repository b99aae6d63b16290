//! Any bytes as an Ethernet frame and as a bare IP packet: no panic, offsets stay in bounds.
#![no_main]
use floodwall_wire::packet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for headers in [packet::parse_ethernet(data), packet::parse_ip(data)]
        .into_iter()
        .flatten()
    {
        assert!(headers.payload_offset.is_none_or(|offset| offset <= data.len()));
    }
});
