//! Any bytes from a BGP peer: framing, decoding and the session state machine never panic,
//! and a session that closes is Idle.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    floodwall_bgp::read_peer_input(data);
});
