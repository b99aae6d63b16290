//! Any bytes as an `[http] tokens_file` (edited by hand, or damaged): parsed or refused with its
//! line, never a panic; every token parsed has a one-word name.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(tokens) =
        floodwall_daemon::serve::auth::parse(&text, std::path::Path::new("tokens"))
    {
        for token in tokens {
            assert!(!token.name.is_empty() && !token.name.contains(char::is_whitespace));
        }
    }
});
