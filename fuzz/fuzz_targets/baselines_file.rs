//! Any bytes as a saved baselines file (an edited or damaged state file): decoded or refused
//! with a reason, never a panic; what decodes encodes back to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("baselines.bin");
    if let Ok((baselines, saved_at)) = floodwall_daemon::baselines::decode(path, data) {
        assert_eq!(floodwall_daemon::baselines::encode(&baselines, saved_at), data);
    }
});
