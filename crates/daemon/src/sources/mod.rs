//! Where flow records come from: UDP collectors (live) and capture files (replay), behind one
//! [`Source`] trait so that the pipeline is the same for both. A source decodes on its own
//! threads and hands records over in batches; emptied batches come back to be refilled, so
//! the hot path allocates nothing per record.

use std::net::SocketAddr;

use anyhow::Result;
use crossbeam_channel::{Receiver, Sender};
use floodwall_wire::FlowRecord;

use self::udp::CollectorStats;

pub mod capture;
pub mod pcap;
pub mod recvmmsg;
pub mod udp;

/// Something that produces flow records.
pub trait Source: Send {
    /// Starts reading. Batches go to `output`; the pipeline returns emptied ones on `recycle`.
    /// The source ends its input by dropping `output` (a capture read to its end).
    fn start(
        self: Box<Self>,
        output: Sender<Vec<FlowRecord>>,
        recycle: Receiver<Vec<FlowRecord>>,
    ) -> Result<Box<dyn RunningSource>>;
}

/// A started source.
pub trait RunningSource: Send {
    /// The addresses it listens on (none for a file).
    fn local_addrs(&self) -> Vec<SocketAddr> {
        Vec::new()
    }
    /// Its counters so far: per listener, per exporter.
    fn stats(&self) -> CollectorStats;
    /// Stops (or, for a file, waits for the end of its input) and reports.
    fn stop(self: Box<Self>) -> SourceReport;
}

/// What a source did, once stopped.
#[derive(Debug, Default)]
pub struct SourceReport {
    pub stats: CollectorStats,
    /// Captures cut off mid-packet: one warning each. Their records up to the cut were read.
    pub warnings: Vec<String>,
    /// Why the input could not be read to its end (not a capture, say).
    pub error: Option<anyhow::Error>,
}

/// The UDP collectors of `[collector]`.
pub struct Udp(pub udp::UdpSourceConfig);

impl Source for Udp {
    fn start(
        self: Box<Self>,
        output: Sender<Vec<FlowRecord>>,
        recycle: Receiver<Vec<FlowRecord>>,
    ) -> Result<Box<dyn RunningSource>> {
        Ok(Box::new(udp::UdpSource::start(&self.0, output, recycle)?))
    }
}

impl RunningSource for udp::UdpSource {
    fn local_addrs(&self) -> Vec<SocketAddr> {
        udp::UdpSource::local_addrs(self).to_vec()
    }

    fn stats(&self) -> CollectorStats {
        udp::UdpSource::stats(self)
    }

    fn stop(self: Box<Self>) -> SourceReport {
        SourceReport {
            stats: udp::UdpSource::stop(*self),
            ..SourceReport::default()
        }
    }
}
