//! Floodwall's lab: the botnet scenario simulator (telemetry *describing* attacks, to files or
//! loopback — never attack traffic), the benchmarks, and the demo's view. It drives the daemon
//! library; the daemon library never depends on it, so the production daemon links none of
//! its crates (`rand*`).

pub mod bench;
pub mod demo;
pub mod simulate;
