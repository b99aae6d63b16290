//! Replay throughput: a synthetic capture of telemetry datagrams written to disk, then read back
//! through the whole `floodwall replay` pipeline (pcap reader → decoder → engine) on one core.
//!
//! The synthetic workload sends everything to 64 hosts of 198.51.100.0/26 at rates far above any
//! limit, so this is the heavy case: every record belongs to an attack and feeds a fingerprint.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, Result};
use floodwall_detect::{DetectConfig, Engine};
use floodwall_wire::{Decoder, Protocol};
use ipnet::IpNet;
use serde::Serialize;

use super::synthetic::Workload;
use crate::sources::pcap::{read_capture, CaptureMode};

/// What one replay measured.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    pub protocol: &'static str,
    pub datagrams: u64,
    pub records: u64,
    pub capture_bytes: u64,
    pub seconds: f64,
    pub records_per_second: f64,
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
    /// Ordinary traffic: sFlow samples spread over ~660,000 hosts of 10.0.0.0/12, none near a limit.
    Normal,
    /// Everything to 64 hosts far above their limits: every record feeds an attack fingerprint.
    Heavy,
}

/// Networks to monitor for a mix.
pub fn networks_for(mix: Mix) -> Vec<IpNet> {
    match mix {
        Mix::Normal => vec!["10.0.0.0/8".parse().expect("valid")],
        Mix::Heavy => monitored_networks(),
    }
}

/// Distinct datagrams of the ordinary mix: a million samples, whose destinations are drawn from
/// the 1,048,576 addresses of 10.0.0.0/12 (about 660,000 distinct hosts).
const NORMAL_DISTINCT_DATAGRAMS: usize = 100_000;

/// sFlow datagrams of ordinary traffic: 10 samples each (1:1000), spread over 10.0.0.0/12.
fn normal_workload(count: usize) -> Vec<super::synthetic::Datagram> {
    use floodwall_wire::packet::{EthernetRepr, PacketRepr, TransportRepr};
    use floodwall_wire::sflow::{DatagramRepr, FlowDataRepr, FlowSampleRepr, SampleRepr};
    use std::net::{IpAddr, Ipv4Addr};
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|seq| {
            let samples = (0..10)
                .map(|i| {
                    let r = next();
                    let dst = Ipv4Addr::from(0x0a00_0000 | (r as u32 & 0x000f_ffff));
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
                        sequence: (seq * 10 + i) as u32,
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
            super::synthetic::Datagram { bytes, records: 10 }
        })
        .collect()
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
    let workload = match mix {
        Mix::Heavy => Workload::generate(protocol, 1024, start_ms),
        Mix::Normal => Workload {
            protocol: Protocol::SflowV5,
            exported_ms: start_ms,
            datagrams: normal_workload(NORMAL_DISTINCT_DATAGRAMS),
        },
    };
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    out.write_all(&[
        0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
    ])?;
    let mut records = 0u64;
    // Template-based workloads begin with their templates; later datagrams cycle through the data.
    let data_start = usize::from(matches!(protocol, Protocol::NetflowV9 | Protocol::Ipfix));
    for i in 0..datagrams {
        let index = if (i as usize) < data_start {
            i as usize
        } else {
            data_start + (i as usize - data_start) % (workload.datagrams.len() - data_start)
        };
        let datagram = &workload.datagrams[index];
        records += u64::from(datagram.records);
        let ts_us = start_ms * 1000 + i * 1_000_000 / per_second.max(1);
        let frame_len = 42 + datagram.bytes.len();
        out.write_all(&((ts_us / 1_000_000) as u32).to_le_bytes())?;
        out.write_all(&((ts_us % 1_000_000) as u32).to_le_bytes())?;
        out.write_all(&(frame_len as u32).to_le_bytes())?;
        out.write_all(&(frame_len as u32).to_le_bytes())?;
        // Ethernet, IPv4 192.0.2.1 -> 192.0.2.200, UDP 50000 -> 6343 (checksums are not read).
        out.write_all(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00])?;
        let ip_len = (20 + 8 + datagram.bytes.len()) as u16;
        out.write_all(&[0x45, 0])?;
        out.write_all(&ip_len.to_be_bytes())?;
        out.write_all(&[0, 0, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 200])?;
        out.write_all(&50000u16.to_be_bytes())?;
        out.write_all(&6343u16.to_be_bytes())?;
        out.write_all(&((8 + datagram.bytes.len()) as u16).to_be_bytes())?;
        out.write_all(&[0, 0])?;
        out.write_all(&datagram.bytes)?;
    }
    out.flush()?;
    Ok(records)
}

/// Replays a capture through decoder and engine, timing the whole read.
pub fn replay_capture(
    path: &Path,
    protocol: Protocol,
    networks: Vec<IpNet>,
) -> Result<ReplayReport> {
    let mut engine = Engine::new(DetectConfig {
        networks,
        ..Default::default()
    })
    .map_err(|e| anyhow!(e))?;
    let mut decoder = Decoder::default();
    let mut records = Vec::with_capacity(16384);
    let mut events = Vec::new();
    let mut count = 0u64;
    let mut attack_events = 0u64;
    let started = Instant::now();
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
    Ok(ReplayReport {
        protocol: protocol.name(),
        datagrams: stats.telemetry_datagrams,
        records: count,
        capture_bytes: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        seconds,
        records_per_second: count as f64 / seconds.max(1e-9),
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
            let report = replay_capture(&path, protocol, monitored_networks()).unwrap();
            assert_eq!(report.records, written, "{protocol:?}");
            assert_eq!(report.datagrams, 300);
            assert!(report.peak_rss_bytes > 0);
        }
        let path = dir.join("normal.pcap");
        let written = write_capture(
            &path,
            Protocol::SflowV5,
            Mix::Normal,
            300,
            1000,
            1_760_000_000_000,
        )
        .unwrap();
        let report = replay_capture(&path, Protocol::SflowV5, networks_for(Mix::Normal)).unwrap();
        assert_eq!(
            (written, report.records, report.attack_events),
            (3000, 3000, 0)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
