//! Floodwall: DDoS detection and mitigation from the flow telemetry routers already export.
//!
//! This crate holds the I/O edges of the pipeline — sources (UDP collectors, capture files) — the
//! ingest benchmarks and the command-line front end. Decoding lives in `floodwall-wire`, which
//! does no I/O.

pub mod act;
pub mod baselines;
pub mod bench;
pub mod config;
pub mod demo;
pub mod docs;
pub mod events;
pub mod logging;
pub mod output;
pub mod simulate;
pub mod sources;
pub mod state_file;
