//! Per-attack fingerprints (STUB: interface only; to be implemented).
//!
//! A `FingerprintBuilder` exists only for watched targets (those above the cheap watch level),
//! and its memory is bounded whatever the traffic: distinct sources by a HyperLogLog-class
//! sketch, top talkers and ports by heavy-hitter sketches of fixed capacity.

use std::net::IpAddr;

use floodwall_wire::FlowRecord;
use serde::Serialize;

/// One of the heaviest values of a field, with its share of the target's packets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Share<T> {
    pub value: T,
    /// Fraction of the observed packets (0..=1).
    pub share: f64,
    /// Packets (scaled by sampling).
    pub packets: u64,
}

/// Shares of packets by IP protocol.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProtocolMix {
    pub tcp: f64,
    pub udp: f64,
    pub icmp: f64,
    pub gre: f64,
    pub other: f64,
}

/// A histogram as bucket upper bounds (inclusive) and the share of packets in each.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Histogram {
    pub upper_bounds: Vec<u16>,
    pub shares: Vec<f64>,
}

/// Which exporter and interfaces carried the traffic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExporterShare {
    pub exporter: IpAddr,
    pub in_if: u32,
    pub out_if: u32,
    pub share: f64,
}

/// What an attack looks like.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Fingerprint {
    /// Estimated distinct remote addresses (sources of an incoming attack).
    pub sources_estimate: u64,
    pub top_sources: Vec<Share<IpAddr>>,
    pub top_source_ports: Vec<Share<u16>>,
    pub top_destination_ports: Vec<Share<u16>>,
    /// Most common TCP flag combinations (of TCP packets).
    pub top_tcp_flags: Vec<Share<u8>>,
    pub protocols: ProtocolMix,
    /// Share of packets that were IP fragments.
    pub fragments: f64,
    /// Packet sizes (IP length), when the telemetry carries them (sFlow, raw captures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packet_sizes: Option<Histogram>,
    /// TTL / hop limit, when the telemetry carries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttls: Option<Histogram>,
    pub exporters: Vec<ExporterShare>,
    pub peak_bps: u64,
    pub peak_pps: u64,
    /// Packets and bytes observed since the fingerprint started (scaled).
    pub packets: u64,
    pub bytes: u64,
}

/// Bounded sketches of one target's traffic.
#[derive(Debug, Clone, Default)]
pub struct FingerprintBuilder {}

impl FingerprintBuilder {
    pub fn new() -> Self {
        FingerprintBuilder {}
    }

    /// Adds a record; `remote` is the far end (source for incoming, destination for outgoing).
    pub fn observe(&mut self, _record: &FlowRecord, _remote: IpAddr) {}

    /// Records the rates of a completed bucket, for the peaks.
    pub fn bucket_rates(&mut self, _bps: u64, _pps: u64) {}

    pub fn distinct_remotes(&self) -> u64 {
        0
    }

    pub fn snapshot(&self) -> Fingerprint {
        Fingerprint::default()
    }
}
