//! Capture files as a [`Source`]: read in order as one stream on their own thread, decoded by
//! the same decoder as live telemetry, in batches. The pipeline waits for the engine rather
//! than drop anything: a file has no clock to fall behind.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::thread::JoinHandle;

use anyhow::Result;
use crossbeam_channel::Receiver;
use floodwall_wire::{Decoder, Limits};

use super::pcap::{read_capture_from, CaptureMode};
use super::udp::CollectorStats;
use super::{BatchOutput, RecordBatch, RunningSource, Source, SourceReport};

/// Records per batch handed to the engine.
const BATCH: usize = 8192;

/// One capture to read: a name for messages and its bytes.
pub struct CaptureInput {
    pub name: String,
    pub reader: Box<dyn Read + Send>,
}

/// Captures read one after the other as one stream.
pub struct Captures {
    pub inputs: Vec<CaptureInput>,
    pub mode: CaptureMode,
    pub limits: Limits,
}

struct Reading {
    thread: JoinHandle<SourceReport>,
}

impl Source for Captures {
    fn start(
        self: Box<Self>,
        output: BatchOutput,
        recycle: Receiver<RecordBatch>,
    ) -> Result<Box<dyn RunningSource>> {
        let Captures {
            inputs,
            mode,
            limits,
        } = *self;
        let thread = std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || {
                let mut decoder = Decoder::new(limits);
                let mut report = SourceReport::default();
                let mut records = Vec::with_capacity(BATCH * 2);
                for input in inputs {
                    let result = read_capture_from(
                        input.reader,
                        &input.name,
                        mode,
                        &mut decoder,
                        &mut records,
                        BATCH,
                        |records| {
                            let mut batch = recycle
                                .try_recv()
                                .unwrap_or_else(|_| RecordBatch::with_capacity(BATCH * 2));
                            batch.records.clear();
                            std::mem::swap(&mut batch.records, records);
                            output
                                .send(batch)
                                .map_err(|_| anyhow::anyhow!("the pipeline stopped"))
                        },
                    );
                    match result {
                        Ok(stats) => report
                            .warnings
                            .extend(stats.truncation_warning(&input.name)),
                        Err(e) => {
                            report.error = Some(e);
                            break;
                        }
                    }
                }
                // Counted under one pseudo-exporter: a capture mixes them.
                report
                    .stats
                    .exporters
                    .insert(IpAddr::V4(Ipv4Addr::UNSPECIFIED), decoder.totals());
                report
            })?;
        Ok(Box::new(Reading { thread }))
    }
}

impl RunningSource for Reading {
    fn stats(&self) -> CollectorStats {
        CollectorStats::default()
    }

    fn stop(self: Box<Self>) -> SourceReport {
        self.thread.join().unwrap_or_else(|_| SourceReport {
            error: Some(anyhow::anyhow!("the capture reader panicked")),
            ..SourceReport::default()
        })
    }
}
