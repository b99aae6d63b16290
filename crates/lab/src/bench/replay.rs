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

use anyhow::Result;
use floodwall_daemon::shards::Engines;
use floodwall_detect::DetectConfig;
use floodwall_wire::{Decoder, Protocol};
use ipnet::IpNet;
use serde::Serialize;

use super::hash::{scatter, splitmix, SCATTER_BITS};
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
    /// CPU time of the whole process (user + system, every thread) while replaying.
    pub cpu_seconds: f64,
    pub records_per_cpu_second: f64,
    pub attack_events: u64,
    /// Peak resident memory of this process so far (VmHWM), bytes.
    pub peak_rss_bytes: u64,
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
    /// Everything to 64 hosts far above their limits: every record feeds an attack fingerprint.
    Heavy,
}

impl Mix {
    /// Default size of a capture: five rounds over every host for the ordinary mix.
    pub fn default_datagrams(self) -> u64 {
        match self {
            Mix::Normal => 5 * NORMAL_ROUND_DATAGRAMS,
            Mix::Heavy => 200_000,
        }
    }

    /// Default datagrams per second of capture time: one round of the ordinary mix per 10 s.
    pub fn default_per_second(self) -> u64 {
        match self {
            Mix::Normal => NORMAL_ROUND_DATAGRAMS / 10,
            Mix::Heavy => 2_000,
        }
    }

    /// What the mix is, for the report.
    pub fn describe(self) -> &'static str {
        match self {
            Mix::Normal => {
                "ordinary traffic: sFlow 1:1000 from 1,048,576 active hosts of 10.0.0.0/12, \
                 each sampled once per round"
            }
            Mix::Heavy => {
                "heavy case: every record is attack traffic to one of 64 hosts and feeds a \
                 fingerprint"
            }
        }
    }
}

/// Networks to monitor for a mix.
pub fn networks_for(mix: Mix) -> Vec<IpNet> {
    match mix {
        Mix::Normal => vec!["10.0.0.0/8".parse().expect("valid")],
        Mix::Heavy => monitored_networks(),
    }
}

/// Hosts of the ordinary mix: every address of 10.0.0.0/12, the domain of [`scatter`].
const NORMAL_HOST_BITS: u32 = SCATTER_BITS;
const NORMAL_SAMPLES_PER_DATAGRAM: u64 = 10;
/// Datagrams of one round of the ordinary mix, in which every host is sampled once.
pub const NORMAL_ROUND_DATAGRAMS: u64 = (1 << NORMAL_HOST_BITS) / NORMAL_SAMPLES_PER_DATAGRAM + 1;

/// Datagram `seq` of the ordinary mix: 10 sFlow samples (1:1000) for the next 10 hosts of the
/// round, with ports, protocol and size drawn from a hash of the sample index.
fn normal_datagram(seq: u64) -> super::synthetic::Datagram {
    use floodwall_wire::packet::{EthernetRepr, PacketRepr, TransportRepr};
    use floodwall_wire::sflow::{DatagramRepr, FlowDataRepr, FlowSampleRepr, SampleRepr};
    use std::net::{IpAddr, Ipv4Addr};
    let samples = (0..NORMAL_SAMPLES_PER_DATAGRAM)
        .map(|i| {
            let k = seq * NORMAL_SAMPLES_PER_DATAGRAM + i;
            let host = scatter((k % (1 << NORMAL_HOST_BITS)) as u32);
            let r = splitmix(k);
            let dst = Ipv4Addr::from(0x0a00_0000 | host);
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
                sampling_rate: 1000,
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
        records: NORMAL_SAMPLES_PER_DATAGRAM as u32,
    }
}

/// Writes `datagrams` telemetry datagrams as a classic pcap, `per_second` of them per second of
/// capture time, cycling through a synthetic workload. Returns the records they carry.
pub fn write_capture(
    path: &Path,
    protocol: Protocol,
    mix: Mix,
    datagrams: u64,
    per_second: u64,
    start_ms: u64,
) -> Result<u64> {
    let heavy = match mix {
        Mix::Heavy => Some(Workload::generate(protocol, 1024, start_ms)),
        Mix::Normal => None,
    };
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
                generated = normal_datagram(i);
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

/// Replays a capture through decoder and engine, timing the whole read.
pub fn replay_capture(
    path: &Path,
    protocol: Protocol,
    networks: Vec<IpNet>,
    shards: u32,
) -> Result<ReplayReport> {
    let (mut engine, _) = Engines::new(
        DetectConfig {
            networks,
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
    let started = Instant::now();
    let cpu_before = super::measure::cpu_seconds(libc::RUSAGE_SELF);
    let stats = read_capture(
        path,
        CaptureMode::Telemetry,
        &mut decoder,
        &mut records,
        8192,
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
    })
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
            let written =
                write_capture(&path, protocol, Mix::Heavy, 300, 1000, 1_760_000_000_000).unwrap();
            let report = replay_capture(&path, protocol, monitored_networks(), 1).unwrap();
            assert_eq!(report.records, written, "{protocol:?}");
            assert_eq!(report.datagrams, 300);
            assert!(report.peak_rss_bytes > 0);
        }
        let path = dir.join("normal.pcap");
        assert_eq!(
            (0..1u32 << NORMAL_HOST_BITS)
                .map(scatter)
                .collect::<std::collections::HashSet<_>>()
                .len(),
            1 << NORMAL_HOST_BITS,
            "every host of the round is sampled once"
        );
        let written = write_capture(
            &path,
            Protocol::SflowV5,
            Mix::Normal,
            300,
            1000,
            1_760_000_000_000,
        )
        .unwrap();
        let report =
            replay_capture(&path, Protocol::SflowV5, networks_for(Mix::Normal), 1).unwrap();
        assert_eq!(
            (written, report.records, report.attack_events),
            (3000, 3000, 0)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
