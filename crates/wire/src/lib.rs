//! Floodwall's wire codecs: flow telemetry datagrams ⇄ normalised [`FlowRecord`]s.
//!
//! Zero-copy views over the datagram bytes in the style of smoltcp's `wire` module: a checked
//! view per header, plain `Repr` structs with `parse`/`emit` for tests and the simulator. No I/O,
//! no async, no allocation per record (records are appended to a caller-owned `Vec`), and no
//! panic on any input: malformed data becomes a [`DecodeError`] and a counter.
//!
//! - [`packet`]: Ethernet / 802.1Q / QinQ / IPv4 / IPv6 (+ extension headers) / TCP / UDP / ICMP / GRE
//!   headers, decoded as far as they go (sFlow samples and raw captures are often truncated).
//! - [`sflow`]: sFlow v5 datagrams.
//! - [`netflow_v5`]: NetFlow v5.
//! - [`template`]: NetFlow v9 and IPFIX, sharing one bounded template cache ([`netflow_v9`] and
//!   [`ipfix`] hold their headers).
//! - [`export`]: the exporter side of NetFlow v9 / IPFIX, for golden tests and the simulator.
//! - [`decoder`]: the front door that tells the protocol from the bytes and keeps per-exporter state.
//! - [`trust`]: whether an exporter's sampling rates and sample pools agree with its past.

#![forbid(unsafe_code)]

mod be;
pub mod decoder;
pub mod error;
pub mod export;
pub mod ipfix;
pub mod netflow_v5;
pub mod netflow_v9;
pub mod packet;
pub mod record;
pub mod sflow;
pub mod stats;
pub mod template;
pub mod trust;
mod view;

pub use decoder::{Context, Decoder, Limits, Protocol, Sequence, Summary};
pub use error::DecodeError;
pub use record::{proto, tcp_flags, FlowRecord};
pub use stats::ExporterCounters;
