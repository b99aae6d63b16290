//! Where flow records come from: UDP collectors (live) and capture files (replay), behind one
//! [`Source`] trait so that the pipeline is the same for both. A source decodes on its own
//! threads and hands records over in batches; emptied batches come back to be refilled, so
//! the hot path allocates nothing per record.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Result;
use crossbeam_channel::{Receiver, Sender};
use floodwall_detect::shard::{Route, Router};
use floodwall_wire::FlowRecord;

use self::udp::CollectorStats;

pub mod capture;
pub mod pcap;
pub mod recvmmsg;
pub mod udp;

/// Decoded records, and with a sharded engine the shards of each record's monitored ends
/// (`routes[i]` for `records[i]`): worked out on the source's own thread, so that collectors
/// hash records to shards and the engine thread only deals them out.
#[derive(Debug, Default)]
pub struct RecordBatch {
    pub records: Vec<FlowRecord>,
    pub routes: Vec<Route>,
}

impl RecordBatch {
    pub fn with_capacity(records: usize) -> RecordBatch {
        RecordBatch {
            records: Vec::with_capacity(records),
            routes: Vec::new(),
        }
    }
}

/// Where a source hands its batches over: the pipeline's queue, routing each batch first when
/// the engine is sharded.
#[derive(Clone)]
pub struct BatchOutput {
    sender: Sender<RecordBatch>,
    router: Option<Arc<Router>>,
}

impl BatchOutput {
    pub fn new(sender: Sender<RecordBatch>, router: Option<Arc<Router>>) -> BatchOutput {
        BatchOutput { sender, router }
    }

    /// Routes the batch (with a router) and sends it; gives it back when the pipeline is gone.
    pub fn send(&self, mut batch: RecordBatch) -> Result<(), RecordBatch> {
        match &self.router {
            Some(router) => router.route_all(&batch.records, &mut batch.routes),
            None => batch.routes.clear(),
        }
        self.sender.send(batch).map_err(|e| e.0)
    }
}

/// Batches not routed: for a single engine, or a consumer that is not one.
impl From<Sender<RecordBatch>> for BatchOutput {
    fn from(sender: Sender<RecordBatch>) -> BatchOutput {
        BatchOutput::new(sender, None)
    }
}

/// Something that produces flow records.
pub trait Source: Send {
    /// Starts reading. Batches go to `output`; the pipeline returns emptied ones on `recycle`.
    /// The source ends its input by dropping `output` (a capture read to its end).
    fn start(
        self: Box<Self>,
        output: BatchOutput,
        recycle: Receiver<RecordBatch>,
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
        output: BatchOutput,
        recycle: Receiver<RecordBatch>,
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
