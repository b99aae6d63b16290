//! The daemon's log: one line per fact on stderr, stamped with wall-clock time in milliseconds
//! (benchmarks read these stamps to measure detection and mitigation latency).

use floodwall_detect::time::rfc3339_ms;

use crate::clock::unix_ms;

pub fn log(message: impl AsRef<str>) {
    eprintln!("{} floodwall: {}", rfc3339_ms(unix_ms()), message.as_ref());
}

/// The stamp at the start of a log line, as Unix ms.
pub fn parse_stamp(stamp: &str) -> Option<u64> {
    floodwall_detect::time::parse_rfc3339_ms(stamp)
}
