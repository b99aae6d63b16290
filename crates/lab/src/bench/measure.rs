//! The measurements: decode throughput on one core, and the collector side of one end-to-end
//! rung (a real [`UdpSource`] on loopback fed by a sender the caller runs, usually a separate
//! process so the collector's CPU time is its own).

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use floodwall_wire::Decoder;
use serde::Serialize;

use super::procfs::{thread_cpu_times, threads_cpu_since};
use super::sender::SendReport;
use super::synthetic::{Workload, EXPORTER};
use floodwall_daemon::sources::udp::{UdpSource, UdpSourceConfig};
use floodwall_daemon::sources::{BatchOutput, RecordBatch};
use floodwall_detect::shard::Router;
use floodwall_detect::DetectConfig;

/// A rung losing less than this share of its records (in percent) counts as loss-free.
pub const LOSS_FREE_PCT: f64 = 0.1;
/// How long the collector keeps draining after the sender exits: datagrams still queued in the
/// socket are received late, not lost.
pub const TAIL: Duration = Duration::from_millis(300);

/// How the daemon names its collector threads (`collector-ADDR`, cut to 15 bytes by the kernel).
pub const COLLECTOR_THREAD: &str = "collector";
/// How the daemon names its engine thread.
pub const ENGINE_THREAD: &str = "engine";

/// Decode throughput of one protocol.
#[derive(Debug, Clone, Serialize)]
pub struct DecodeResult {
    pub protocol: String,
    pub seconds: f64,
    pub datagrams: u64,
    pub records: u64,
    pub bytes: u64,
    /// Datagrams the decoder rejected (0 unless the generator or a decoder is broken).
    pub errors: u64,
    pub records_per_sec: f64,
    pub ns_per_record: f64,
    pub datagrams_per_sec: f64,
    pub mbytes_per_sec: f64,
}

/// Decodes `workload` over and over on the calling thread for about `duration`, into one reused
/// output vector, as a collector thread does.
///
/// One untimed pass first learns the templates and warms caches. The clock is read once per
/// pass over the workload, so it costs nothing per datagram.
pub fn decode_throughput(workload: &Workload, duration: Duration) -> DecodeResult {
    let mut decoder = Decoder::default();
    let mut out = Vec::with_capacity(workload.max_records_per_datagram());
    let now_ms = workload.exported_ms;
    for datagram in &workload.datagrams {
        out.clear();
        let _ = decoder.decode(EXPORTER, now_ms, &datagram.bytes, &mut out);
    }
    let (mut datagrams, mut records, mut errors, mut passes) = (0u64, 0u64, 0u64, 0u64);
    let started = Instant::now();
    loop {
        for datagram in &workload.datagrams {
            out.clear();
            errors += u64::from(
                decoder
                    .decode(EXPORTER, now_ms, black_box(&datagram.bytes), &mut out)
                    .is_err(),
            );
            records += black_box(&out).len() as u64;
        }
        datagrams += workload.datagrams.len() as u64;
        passes += 1;
        if started.elapsed() >= duration {
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let bytes = passes * workload.bytes();
    DecodeResult {
        protocol: workload.protocol.name().to_string(),
        seconds,
        datagrams,
        records,
        bytes,
        errors,
        records_per_sec: records as f64 / seconds,
        ns_per_record: seconds * 1e9 / records.max(1) as f64,
        datagrams_per_sec: datagrams as f64 / seconds,
        mbytes_per_sec: bytes as f64 / seconds / 1e6,
    }
}

/// One end-to-end rung: what was sent, what the collector made of it, and what it cost.
#[derive(Debug, Clone, Serialize)]
pub struct E2eResult {
    pub sent: SendReport,
    pub received_datagrams: u64,
    /// Records that reached the consumer of the collector's batches.
    pub received_records: u64,
    pub loss_pct: f64,
    /// Datagrams dropped by the kernel because the socket buffer was full (`SO_MEMINFO`).
    pub kernel_drops: u64,
    pub decode_errors: u64,
    /// Socket receive buffer the kernel granted.
    pub recv_buffer_bytes: usize,
    /// User + system CPU of this whole process (which hosts only the collector) during the rung.
    pub collector_cpu_seconds: f64,
    pub collector_cpu_seconds_per_million_records: Option<f64>,
    /// User + system CPU of the collector threads alone (`collector-*`: receive, decode, hand
    /// over), from `/proc/self/task`: the collector's cost without the consumer or the bench.
    pub collector_thread_cpu_seconds: f64,
    /// ... of which in the kernel (the receive path).
    pub collector_thread_system_seconds: f64,
    pub collector_thread_cpu_seconds_per_million_records: Option<f64>,
    /// User + system CPU of the sender, when it ran as a child process that has been waited for.
    pub sender_cpu_seconds: f64,
}

impl E2eResult {
    /// Records per second offered by the sender.
    pub fn records_per_sec(&self) -> f64 {
        self.sent.records as f64 / self.sent.seconds.max(1e-9)
    }
}

/// The router the daemon's collectors would use by default (one shard per core) for the
/// synthetic workload's networks; `None` on one core (a single engine needs no routes).
fn default_router() -> Result<Option<Router>> {
    let shards = floodwall_daemon::shards::default_shards();
    if shards <= 1 {
        return Ok(None);
    }
    let config = DetectConfig {
        networks: super::replay::monitored_networks(),
        ..DetectConfig::default()
    };
    Ok(Some(Router::new(&config, shards)?))
}

/// Runs a collector on 127.0.0.1 with a consumer thread that counts and recycles record
/// batches (routed to the engine's shards, as in the daemon), calls `run_sender` with its address (it must return once sending is done), drains
/// the tail for [`TAIL`], stops the collector and reports.
pub fn end_to_end(run_sender: impl FnOnce(SocketAddr) -> Result<SendReport>) -> Result<E2eResult> {
    let config = UdpSourceConfig {
        listen: vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 0))],
        ..Default::default()
    };
    let (output, batches) = crossbeam_channel::bounded(64);
    let (recycle, recycled) = crossbeam_channel::bounded(64);
    let cpu_before = cpu_seconds(libc::RUSAGE_SELF);
    let children_before = cpu_seconds(libc::RUSAGE_CHILDREN);
    let threads_before = thread_cpu_times(std::process::id()).unwrap_or_default();
    // Routed to one shard per core, as the daemon's collectors do by default.
    let output = BatchOutput::new(output, default_router()?.map(std::sync::Arc::new));
    let source = UdpSource::start(&config, output, recycled)?;
    // Ends when the collector stops and drops its senders.
    let consumer = std::thread::Builder::new()
        .name("bench-consumer".into())
        .spawn(move || {
            let mut records = 0u64;
            for batch in batches {
                let batch: RecordBatch = batch;
                records += batch.records.len() as u64;
                let _ = recycle.try_send(batch);
            }
            records
        })
        .context("spawning the consumer thread")?;
    let target = *source
        .local_addrs()
        .first()
        .context("the collector bound no socket")?;
    let sent = run_sender(target)?;
    std::thread::sleep(TAIL);
    // Read before stopping: a thread's /proc entry goes with it.
    let threads_after = thread_cpu_times(std::process::id()).unwrap_or_default();
    let stats = source.stop();
    let collector = threads_cpu_since(&threads_before, &threads_after, COLLECTOR_THREAD);
    let received_records = consumer
        .join()
        .map_err(|_| anyhow::anyhow!("the consumer thread panicked"))?;
    let collector_cpu_seconds = cpu_seconds(libc::RUSAGE_SELF) - cpu_before;
    let lost = sent.records.saturating_sub(received_records);
    Ok(E2eResult {
        received_datagrams: stats.listeners.iter().map(|l| l.datagrams).sum(),
        received_records,
        loss_pct: 100.0 * lost as f64 / sent.records.max(1) as f64,
        kernel_drops: stats.kernel_drops(),
        decode_errors: stats.totals().total_errors(),
        recv_buffer_bytes: stats.listeners.iter().map(|l| l.recv_buffer_bytes).sum(),
        collector_cpu_seconds,
        collector_cpu_seconds_per_million_records: (received_records > 0)
            .then(|| collector_cpu_seconds * 1e6 / received_records as f64),
        collector_thread_cpu_seconds: collector.total(),
        collector_thread_system_seconds: collector.system,
        collector_thread_cpu_seconds_per_million_records: (received_records > 0)
            .then(|| collector.total() * 1e6 / received_records as f64),
        sender_cpu_seconds: cpu_seconds(libc::RUSAGE_CHILDREN) - children_before,
        sent,
    })
}

/// The rung with the highest achieved send rate that lost less than [`LOSS_FREE_PCT`].
pub fn sustained_loss_free(rungs: &[E2eResult]) -> Option<&E2eResult> {
    rungs
        .iter()
        .filter(|r| r.received_records > 0 && r.loss_pct < LOSS_FREE_PCT)
        .max_by(|a, b| a.sent.achieved_rate.total_cmp(&b.sent.achieved_rate))
}

/// User + system CPU seconds of `who` (`RUSAGE_SELF`, `RUSAGE_CHILDREN`).
// rustix (1.1) has no getrusage, and /proc has no microsecond CPU times of reaped children.
#[allow(unsafe_code)]
pub(crate) fn cpu_seconds(who: libc::c_int) -> f64 {
    // SAFETY: rusage is a plain C struct for which all-zero is valid; getrusage only writes it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return 0.0;
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::sender::{send, SendPlan};
    use crate::bench::Rate;
    use floodwall_wire::Protocol;

    #[test]
    fn decode_throughput_counts_every_record() {
        let workload = Workload::generate(Protocol::Ipfix, 10, 1_700_000_000_000);
        let result = decode_throughput(&workload, Duration::from_millis(20));
        assert_eq!(result.errors, 0);
        assert_eq!(
            result.records * workload.datagrams.len() as u64,
            result.datagrams * workload.records()
        );
        assert!(result.records_per_sec > 0.0 && result.ns_per_record > 0.0);
    }

    /// In-process sender: checks the plumbing, not the numbers.
    #[test]
    fn end_to_end_receives_what_was_sent() {
        let workload = Workload::generate(Protocol::NetflowV9, 10, 1_700_000_000_000);
        let result = end_to_end(|target| {
            let plan = SendPlan::new(target, Rate::PerSecond(1000.0), Duration::from_millis(100));
            Ok(send(&mut workload.clone(), &plan)?)
        })
        .unwrap();
        // Bounded by rate x time; how close it gets depends on how busy the machine is.
        assert!((1..=100).contains(&result.sent.datagrams), "{result:?}");
        assert!(result.received_records > 0);
        assert!(result.loss_pct < 50.0, "{result:?}");
        assert_eq!(result.decode_errors, 0);
        // The collector thread's share is found by name and is part of the process's total.
        assert!(result.collector_thread_cpu_seconds > 0.0, "{result:?}");
        assert!(
            result.collector_thread_cpu_seconds <= result.collector_cpu_seconds + 0.02,
            "{result:?}"
        );
    }
}
