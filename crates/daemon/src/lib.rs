//! The Floodwall daemon as a library: what `floodwall run` and `floodwall replay` are built from.
//!
//! Configuration in, a running pipeline out: sources (UDP collectors, capture files) feed
//! decoders and the detection engine; attack events go onto a typed bus; subscribers (the
//! actions — mitigators, events file, notifiers — and whatever attaches next) each read it on
//! their own thread. Decoding lives in `floodwall-wire`, detection in `floodwall-detect`, the
//! mitigation plan in `floodwall-mitigate`, the BGP speaker in `floodwall-bgp`. Nothing here
//! depends on the lab (simulator, benchmarks, demo). See ARCHITECTURE.md.
//!
//! System calls go through rustix; the only `unsafe` left is `sources::recvmmsg`, which allows
//! it for itself (rustix has no `recvmmsg`).
#![deny(unsafe_code)]

pub mod act;
pub mod baselines;
pub mod bus;
pub mod clock;
pub mod config;
pub mod events;
pub mod history;
pub mod hunt;
pub mod logging;
pub mod output;
pub mod pipeline;
pub mod serve;
pub mod shards;
pub mod sinks;
pub mod sources;
pub mod state_file;
pub mod status;
pub mod units;
