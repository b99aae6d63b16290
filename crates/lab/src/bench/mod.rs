//! Benchmarks: how fast the decoders run on one core, how much UDP telemetry a collector takes on
//! loopback before it loses datagrams, and how often the engine cries wolf on busy networks
//! ([`false_alarms`]).
//!
//! The pieces live here rather than in the CLI so the benchmark suite and tests can reuse them:
//! [`synthetic`] builds the traffic, [`sender`] paces it onto a socket, [`measure`] times decoding
//! and runs the collector side of an end-to-end rung.

pub mod child;
pub mod compare;
pub mod daemon;
pub mod false_alarms;
mod hash;
pub mod hunt;
pub mod measure;
pub mod mitigation;
pub mod procfs;
pub mod replay;
pub mod report;
pub mod sender;
pub mod stream;
pub mod surfaces;
pub mod synthetic;

use std::fmt;
use std::str::FromStr;

/// A send rate in datagrams per second, or as fast as the sender can go.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    PerSecond(f64),
    Max,
}

impl Rate {
    /// Datagrams per second, `None` when unpaced.
    pub fn per_second(self) -> Option<f64> {
        match self {
            Rate::PerSecond(rate) => Some(rate),
            Rate::Max => None,
        }
    }
}

/// Accepts `max`, or a positive number with an optional `k` / `M` suffix (`20k`, `1.5M`, `5000`).
impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("max") {
            return Ok(Rate::Max);
        }
        let (number, scale) = match s.char_indices().last() {
            Some((i, 'k' | 'K')) => (&s[..i], 1e3),
            Some((i, 'm' | 'M')) => (&s[..i], 1e6),
            _ => (s, 1.0),
        };
        match number.parse::<f64>() {
            Ok(value) if value.is_finite() && value > 0.0 => Ok(Rate::PerSecond(value * scale)),
            _ => Err(format!(
                "invalid rate {s:?}: expected `max` or datagrams per second such as 5000, 20k, 1.5M"
            )),
        }
    }
}

/// Round-trips through [`FromStr`], so a rate can be handed to the sender process as text.
impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::PerSecond(rate) => write!(f, "{rate}"),
            Rate::Max => f.write_str("max"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Rate;

    #[test]
    fn rates_parse_and_round_trip() {
        assert_eq!("20k".parse(), Ok(Rate::PerSecond(20_000.0)));
        assert_eq!("1.5M".parse(), Ok(Rate::PerSecond(1_500_000.0)));
        assert_eq!("5000".parse(), Ok(Rate::PerSecond(5000.0)));
        assert_eq!("MAX".parse(), Ok(Rate::Max));
        for bad in ["", "0", "-5k", "k", "fast", "inf"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
        for rate in [Rate::PerSecond(12_345.5), Rate::Max] {
            assert_eq!(rate.to_string().parse(), Ok(rate));
        }
    }
}
