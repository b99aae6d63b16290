//! Replay throughput: a synthetic capture of telemetry datagrams written to disk, then read back
//! through the whole `floodwall replay` pipeline (pcap reader → decoder → engine) on one core.
//!
//! Two mixes: ordinary traffic from a million active hosts (the address map, host and prefix
//! entries are cache misses on every record), and the heavy case where everything goes to 64 hosts
//! far above any limit, so every record belongs to an attack and feeds a fingerprint.

use std::fs::File;
use std::io::BufWriter;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, Result};
use floodwall_daemon::shards::Engines;
use floodwall_detect::{DetectConfig, Engine};
use floodwall_wire::{Decoder, FlowRecord, Protocol};
use ipnet::IpNet;
use serde::Serialize;

use super::hash::{scatter_in, splitmix, SCATTER_BITS};
use super::synthetic::Workload;
use floodwall_daemon::sources::pcap::{read_capture, CaptureMode, PcapWriter};

/// What one replay measured.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    pub protocol: &'static str,
    pub datagrams: u64,
    pub records: u64,
    pub capture_bytes: u64,
    pub seconds: f64,
    pub records_per_second: f64,
    /// Engine shards (threads) the records went through.
    pub shards: u32,
    /// CPU time of the whole process (user + system, every thread) while replaying, and records
    /// per CPU-second.
    pub cpu_seconds: f64,
    pub records_per_cpu_second: f64,
    pub attack_events: u64,
    /// Peak resident memory of this process so far (VmHWM), bytes.
    pub peak_rss_bytes: u64,
    pub stages: Stages,
}

/// The networks the synthetic workload's destinations live in.
pub fn monitored_networks() -> Vec<IpNet> {
    vec![
        "198.51.100.0/24".parse().expect("valid"),
        "2001:db8:ffff::/48".parse().expect("valid"),
    ]
}

/// Which traffic the capture describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mix {
    /// Ordinary traffic: sFlow 1:1000 samples from 1,048,576 active hosts of 10.0.0.0/12, each
    /// sampled once per round of ~10 s of capture time, in a scattered order; none near a limit.
    Normal,
    /// A busy network's capture: sFlow 1:1024, 8 samples a datagram, 131,072 active hosts of
    /// 10.0.0.0/15 sampled in turn (`--hosts` for fewer), 4 M samples over 60 s; none near a
    /// limit.
    Busy,
    /// Everything to 64 hosts far above their limits: every record feeds an attack fingerprint.
    Heavy,
}

/// Ordinary traffic spread over many hosts, each sampled once per round in a scattered order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spread {
    /// The hosts are addresses of `base`/(32 − `host_bits`).
    pub base: Ipv4Addr,
    pub host_bits: u32,
    /// Active hosts (at most 2^`host_bits`).
    pub hosts: u64,
    pub samples_per_datagram: u64,
    pub sampling_rate: u32,
}

impl Spread {
    /// Datagrams of one round, in which every host is sampled once.
    pub fn round_datagrams(&self) -> u64 {
        self.hosts.div_ceil(self.samples_per_datagram)
    }

    /// The network the hosts live in.
    pub fn network(&self) -> IpNet {
        IpNet::new(self.base.into(), (32 - self.host_bits) as u8).expect("valid prefix length")
    }
}

impl Mix {
    /// The shape of a mix spread over many hosts, with `hosts` of them if given (clamped to
    /// the network's size).
    pub fn spread(self, hosts: Option<u64>) -> Option<Spread> {
        let (host_bits, samples_per_datagram, sampling_rate) = match self {
            Mix::Normal => (SCATTER_BITS, 10, 1000),
            Mix::Busy => (17, 8, 1024),
            Mix::Heavy => return None,
        };
        Some(Spread {
            base: Ipv4Addr::new(10, 0, 0, 0),
            host_bits,
            hosts: hosts.unwrap_or(1 << host_bits).clamp(1, 1 << host_bits),
            samples_per_datagram,
            sampling_rate,
        })
    }

    /// Default size of a capture: five rounds over every host for the ordinary mix, 4 M samples
    /// for the busy one.
    pub fn default_datagrams(self, hosts: Option<u64>) -> u64 {
        match (self, self.spread(hosts)) {
            (Mix::Normal, Some(spread)) => 5 * spread.round_datagrams(),
            (Mix::Busy, Some(spread)) => 4_000_000 / spread.samples_per_datagram,
            _ => 200_000,
        }
    }

    /// Default datagrams per second of capture time: one round of the ordinary mix per 10 s,
    /// the busy capture over 60 s.
    pub fn default_per_second(self, hosts: Option<u64>) -> u64 {
        match (self, self.spread(hosts)) {
            (Mix::Normal, Some(spread)) => (spread.round_datagrams() / 10).max(1),
            (Mix::Busy, Some(_)) => self.default_datagrams(hosts).div_ceil(60),
            _ => 2_000,
        }
    }

    /// What the mix is, for the report.
    pub fn describe(self, hosts: Option<u64>) -> String {
        match self.spread(hosts) {
            Some(s) => format!(
                "{}: sFlow 1:{} from {} active hosts of {}, {} samples a datagram, each host \
                 sampled once per round",
                if self == Mix::Busy {
                    "busy network"
                } else {
                    "ordinary traffic"
                },
                s.sampling_rate,
                s.hosts,
                s.network(),
                s.samples_per_datagram
            ),
            None => "heavy case: every record is attack traffic to one of 64 hosts and feeds a \
                     fingerprint"
                .into(),
        }
    }
}

/// Networks to monitor for a mix.
pub fn networks_for(mix: Mix) -> Vec<IpNet> {
    match mix {
        Mix::Normal => vec!["10.0.0.0/8".parse().expect("valid")],
        Mix::Busy => vec!["10.0.0.0/15".parse().expect("valid")],
        Mix::Heavy => monitored_networks(),
    }
}

/// Datagram `seq` of a spread mix: the next samples of the round, with ports, protocol and
/// size drawn from a hash of the sample index.
fn spread_datagram(spread: &Spread, seq: u64) -> super::synthetic::Datagram {
    use floodwall_wire::packet::{EthernetRepr, PacketRepr, TransportRepr};
    use floodwall_wire::sflow::{DatagramRepr, FlowDataRepr, FlowSampleRepr, SampleRepr};
    use std::net::IpAddr;
    let samples = (0..spread.samples_per_datagram)
        .map(|i| {
            let k = seq * spread.samples_per_datagram + i;
            let host = scatter_in((k % spread.hosts) as u32, spread.host_bits);
            let r = splitmix(k);
            let dst = Ipv4Addr::from(u32::from(spread.base) | host);
            let src = Ipv4Addr::from(0x2d00_0000 | ((r >> 20) as u32 & 0x00ff_ffff));
            let port = 1024 + ((r >> 44) % 60_000) as u16;
            let transport = if r >> 60 < 11 {
                TransportRepr::Tcp {
                    src_port: 443,
                    dst_port: port,
                    flags: 0x10,
                }
            } else {
                TransportRepr::Udp {
                    src_port: 53,
                    dst_port: port,
                }
            };
            let mut header = Vec::with_capacity(128);
            PacketRepr {
                ethernet: Some(EthernetRepr {
                    source: [2, 0, 0, 0, 0, 1],
                    destination: [2, 0, 0, 0, 0, 2],
                    vlans: vec![],
                }),
                src: IpAddr::V4(src),
                dst: IpAddr::V4(dst),
                ttl: 56,
                transport,
                payload_len: 60,
            }
            .emit(&mut header);
            SampleRepr::Flow(FlowSampleRepr {
                expanded: false,
                sequence: k as u32,
                source_id_type: 0,
                source_id_index: 1,
                sampling_rate: spread.sampling_rate,
                sample_pool: 0,
                drops: 0,
                input: 1,
                output: 2,
                records: vec![FlowDataRepr::RawHeader {
                    protocol: 1,
                    frame_length: 64 + ((r >> 32) % 1400) as u32,
                    stripped: 4,
                    header,
                }],
            })
        })
        .collect();
    let mut bytes = Vec::with_capacity(1500);
    DatagramRepr {
        agent: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        sub_agent_id: 0,
        sequence: seq as u32,
        uptime_ms: 0,
        samples,
    }
    .emit(&mut bytes);
    super::synthetic::Datagram {
        bytes,
        records: spread.samples_per_datagram as u32,
    }
}

/// Writes `datagrams` telemetry datagrams as a classic pcap, `per_second` of them per second of
/// capture time, cycling through a synthetic workload. Returns the records they carry.
pub fn write_capture(
    path: &Path,
    protocol: Protocol,
    mix: Mix,
    hosts: Option<u64>,
    datagrams: u64,
    per_second: u64,
    start_ms: u64,
) -> Result<u64> {
    let spread = mix.spread(hosts);
    let heavy = spread
        .is_none()
        .then(|| Workload::generate(protocol, 1024, start_ms));
    let mut out = PcapWriter::new(BufWriter::with_capacity(1 << 20, File::create(path)?))?;
    let mut records = 0u64;
    // Template-based workloads begin with their templates; later datagrams cycle through the data.
    let data_start = usize::from(matches!(protocol, Protocol::NetflowV9 | Protocol::Ipfix));
    let mut generated;
    for i in 0..datagrams {
        let datagram = match &heavy {
            Some(workload) => {
                let index = if (i as usize) < data_start {
                    i as usize
                } else {
                    data_start + (i as usize - data_start) % (workload.datagrams.len() - data_start)
                };
                &workload.datagrams[index]
            }
            None => {
                generated = spread_datagram(spread.as_ref().expect("a spread mix"), i);
                &generated
            }
        };
        records += u64::from(datagram.records);
        let ts_us = start_ms * 1000 + i * 1_000_000 / per_second.max(1);
        out.udp(
            ts_us,
            Ipv4Addr::new(192, 0, 2, 1),
            50000,
            6343,
            &datagram.bytes,
        )?;
    }
    out.finish()?;
    Ok(records)
}

/// Replays a capture through decoder and engine, timing the whole read; then, stage by stage,
/// what the same records cost (see [`Stages`]).
pub fn replay_capture(
    path: &Path,
    protocol: Protocol,
    networks: Vec<IpNet>,
    shards: u32,
) -> Result<ReplayReport> {
    let new_engine = || {
        Engine::new(DetectConfig {
            networks: networks.clone(),
            ..Default::default()
        })
        .map_err(|e| anyhow!(e))
    };
    let (mut engine, _) = Engines::new(
        DetectConfig {
            networks: networks.clone(),
            shards: Some(shards),
            ..Default::default()
        },
        None,
    )?;
    let mut decoder = Decoder::default();
    let mut records = Vec::with_capacity(16384);
    let mut events = Vec::new();
    let mut count = 0u64;
    let mut attack_events = 0u64;
    let cpu_before = super::measure::cpu_seconds(libc::RUSAGE_SELF);
    let started = Instant::now();
    let stats = read_capture(
        path,
        CaptureMode::Telemetry,
        &mut decoder,
        &mut records,
        BATCH,
        |batch| {
            count += batch.len() as u64;
            engine.ingest(batch, &mut events);
            batch.clear();
            attack_events += events.len() as u64;
            events.clear();
            Ok(())
        },
    )?;
    engine.finish(&mut events);
    attack_events += events.len() as u64;
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = super::measure::cpu_seconds(libc::RUSAGE_SELF) - cpu_before;
    drop(engine);
    let stages = stages(path, &new_engine)?;
    Ok(ReplayReport {
        protocol: protocol.name(),
        datagrams: stats.telemetry_datagrams,
        records: count,
        capture_bytes: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        seconds,
        records_per_second: count as f64 / seconds.max(1e-9),
        shards,
        cpu_seconds,
        records_per_cpu_second: count as f64 / cpu_seconds.max(1e-9),
        attack_events,
        peak_rss_bytes: peak_rss_bytes(),
        stages,
    })
}

/// Records per batch, as the pipeline hands them to the engine.
const BATCH: usize = 8192;

/// Where a replay's time goes, in nanoseconds per record, each stage measured on its own pass
/// over the same capture:
/// - `read_decode`: the pcap reader and the decoder, records dropped;
/// - `detection`: the engine closing buckets (limits, baselines, carpets, lifecycle) without
///   fingerprints, timed inside the engine;
/// - `fingerprinting`: the engine's time less that of an engine whose fingerprints are not fed,
///   at closes (marks, flushes) as well as per record;
/// - `accounting`: the rest of the engine without fingerprints (lookups, totals, class counts,
///   watches).
///
/// The engine passes replay records decoded beforehand and kept in memory; each runs twice and
/// the faster run counts (the first also faults in the engine's memory, which the single-pass
/// figure above includes).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Stages {
    pub read_decode_ns: f64,
    pub accounting_ns: f64,
    pub detection_ns: f64,
    pub fingerprinting_ns: f64,
}

impl Stages {
    pub fn total_ns(&self) -> f64 {
        self.read_decode_ns + self.accounting_ns + self.detection_ns + self.fingerprinting_ns
    }
}

/// Reads and decodes a whole capture, handing `on_batch` batches of [`BATCH`] records.
fn read_batches(
    path: &Path,
    on_batch: impl FnMut(&mut Vec<FlowRecord>) -> Result<()>,
) -> Result<()> {
    let mut decoder = Decoder::default();
    let mut records = Vec::with_capacity(2 * BATCH);
    read_capture(
        path,
        CaptureMode::Telemetry,
        &mut decoder,
        &mut records,
        BATCH,
        on_batch,
    )?;
    Ok(())
}

fn stages(path: &Path, new_engine: &dyn Fn() -> Result<Engine>) -> Result<Stages> {
    let mut count = 0u64;
    let cpu = thread_cpu_seconds();
    read_batches(path, |batch| {
        count += batch.len() as u64;
        std::hint::black_box(&batch);
        batch.clear();
        Ok(())
    })?;
    let read_decode = thread_cpu_seconds() - cpu;
    let mut batches = Vec::new();
    read_batches(path, |batch| {
        batches.push(std::mem::replace(batch, Vec::with_capacity(2 * BATCH)));
        Ok(())
    })?;
    let engine_pass = |fingerprints: bool| -> Result<(f64, f64)> {
        let mut engine = new_engine()?;
        if !fingerprints {
            engine.disable_fingerprints_for_benchmark();
        }
        let mut events = Vec::new();
        let cpu = thread_cpu_seconds();
        for batch in &batches {
            engine.ingest(batch, &mut events);
            events.clear();
        }
        engine.finish(&mut events);
        Ok((
            thread_cpu_seconds() - cpu,
            engine.close_time().as_secs_f64(),
        ))
    };
    // The first pass also pays for faulting in the engine's memory: each kind runs twice, in
    // turn, and the faster run of each counts.
    // Both kinds split into closes and the rest within the same pass, so that what closes
    // spend on fingerprints counts as fingerprinting, not as detection.
    let faster = |a: (f64, f64), b: (f64, f64)| if b.0 < a.0 { b } else { a };
    let with = engine_pass(true)?;
    let without = engine_pass(false)?;
    let (with, without) = (
        faster(with, engine_pass(true)?),
        faster(without, engine_pass(false)?),
    );
    let per_record = |s: f64| s * 1e9 / count.max(1) as f64;
    let (detection, accounting) = (without.1, (without.0 - without.1).max(0.0));
    Ok(Stages {
        read_decode_ns: per_record(read_decode),
        accounting_ns: per_record(accounting),
        detection_ns: per_record(detection),
        fingerprinting_ns: per_record((with.0 - without.0).max(0.0)),
    })
}

/// CPU seconds of the calling thread, to the nanosecond (getrusage counts in scheduler ticks).
fn thread_cpu_seconds() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// VmHWM of this process, in bytes (0 where /proc is unavailable).
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_capture_replays_every_record() {
        let dir =
            std::env::temp_dir().join(format!("floodwall-bench-replay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for protocol in [Protocol::SflowV5, Protocol::Ipfix] {
            let path = dir.join(format!("{}.pcap", protocol.name()));
            let written = write_capture(
                &path,
                protocol,
                Mix::Heavy,
                None,
                300,
                1000,
                1_760_000_000_000,
            )
            .unwrap();
            let report = replay_capture(&path, protocol, monitored_networks(), 1).unwrap();
            assert_eq!(report.records, written, "{protocol:?}");
            assert_eq!(report.datagrams, 300);
            assert!(report.peak_rss_bytes > 0);
        }
        for (mix, hosts) in [(Mix::Normal, None), (Mix::Busy, Some(20_000))] {
            let spread = mix.spread(hosts).unwrap();
            let sampled = (0..spread.hosts)
                .map(|j| scatter_in(j as u32, spread.host_bits))
                .collect::<std::collections::HashSet<_>>();
            assert_eq!(
                sampled.len() as u64,
                spread.hosts,
                "every host sampled once a round"
            );
            assert!(
                sampled.iter().all(|&h| h < 1 << spread.host_bits),
                "inside the network"
            );
            let path = dir.join("spread.pcap");
            let written = write_capture(
                &path,
                Protocol::SflowV5,
                mix,
                hosts,
                300,
                1000,
                1_760_000_000_000,
            )
            .unwrap();
            let report = replay_capture(&path, Protocol::SflowV5, networks_for(mix), 2).unwrap();
            assert_eq!(
                (written, report.records, report.attack_events),
                (300 * spread.samples_per_datagram, written, 0),
                "{mix:?}"
            );
            // A few thousand records: too few to weigh the stages, enough to see them run.
            let s = report.stages;
            assert!(
                s.read_decode_ns > 0.0 && s.total_ns() > s.read_decode_ns,
                "{s:?}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
