//! Floodwall's lab: the botnet scenario simulator (telemetry *describing* attacks, to files or
//! loopback — never attack traffic), the benchmarks, and the demo's view. It drives the daemon
//! library; the daemon library never depends on it, so the production daemon links none of
//! its crates (`rand*`).
//!
//! System calls go through rustix; the one `unsafe` left is `getrusage` (rustix has none), allowed
//! on its function in `bench::measure`.
#![deny(unsafe_code)]

pub mod bench;
pub mod demo;
pub mod simulate;
