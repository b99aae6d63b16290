//! `floodwall flows`: decode telemetry and print records — the collector's view, for checking an
//! exporter's configuration or a capture.

use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use floodwall_daemon::output::{
    counters_text, write_json_lines, write_table, CountersJson, TABLE_HEADER,
};
use floodwall_daemon::sources::pcap::read_capture;
use floodwall_daemon::sources::udp::{default_listen_addrs, UdpSource, UdpSourceConfig};
use floodwall_daemon::sources::RecordBatch;
use floodwall_wire::{Decoder, ExporterCounters, FlowRecord};

use super::{FlowsArgs, ListenArgs};

pub fn run(args: FlowsArgs) -> Result<()> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if !args.json && !args.quiet {
        writeln!(out, "{TABLE_HEADER}")?;
    }
    let mut print = |records: &mut Vec<FlowRecord>| -> Result<()> {
        if !args.quiet {
            if args.json {
                write_json_lines(&mut out, records)?;
            } else {
                write_table(&mut out, records)?;
            }
        }
        records.clear();
        Ok(())
    };
    if !args.files.is_empty() {
        let mut decoder = Decoder::default();
        let mut records = Vec::with_capacity(8192);
        let mut cut_off = 0;
        for path in &args.files {
            let stats = read_capture(
                path,
                args.capture_mode,
                &mut decoder,
                &mut records,
                4096,
                &mut print,
            )?;
            let name = path.display().to_string();
            if let Some(warning) = stats.truncation_warning(&name) {
                eprintln!("floodwall: warning: {warning}");
                cut_off += 1;
            }
            if args.stats {
                if args.json {
                    let line = serde_json::json!({"capture": name, "stats": stats});
                    eprintln!("{line}");
                } else {
                    eprintln!("capture {name}: {}", stats.summary());
                }
            }
        }
        out.flush()?;
        if args.stats {
            print_counters(
                args.json,
                decoder
                    .exporters()
                    .map(|(ip, c)| (ip.to_string(), c.clone())),
            );
        }
        return super::cut_off_captures(cut_off);
    }

    let config = udp_config(&args.listen);
    let (tx, rx) = crossbeam_channel::bounded(64);
    let (recycle_tx, recycle_rx) = crossbeam_channel::bounded(64);
    let source = UdpSource::start(&config, tx, recycle_rx)?;
    eprintln!(
        "floodwall: listening on {}",
        source
            .local_addrs()
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
    }
    let started = Instant::now();
    let deadline = args.duration.map(|s| started + Duration::from_secs_f64(s));
    let idle = args.idle_timeout.map(Duration::from_secs_f64);
    let mut last_data: Option<Instant> = None;
    let mut seen = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if let (Some(idle), Some(last)) = (idle, last_data) {
            if last.elapsed() >= idle {
                break;
            }
        }
        let Ok(mut batch) = rx.recv_timeout(Duration::from_millis(50)) else {
            continue;
        };
        let batch: &mut RecordBatch = &mut batch;
        last_data = Some(Instant::now());
        if let Some(limit) = args.count {
            batch
                .records
                .truncate(usize::try_from(limit - seen).unwrap_or(usize::MAX));
        }
        seen += batch.records.len() as u64;
        print(&mut batch.records)?;
        let _ = recycle_tx.try_send(std::mem::take(batch));
        if args.count.is_some_and(|limit| seen >= limit) {
            break;
        }
    }
    let stats = source.stop();
    // Records the receivers flushed while stopping.
    while let Ok(mut batch) = rx.try_recv() {
        let batch: &mut RecordBatch = &mut batch;
        if let Some(limit) = args.count {
            batch
                .records
                .truncate(usize::try_from(limit.saturating_sub(seen)).unwrap_or(usize::MAX));
        }
        seen += batch.records.len() as u64;
        print(&mut batch.records)?;
    }
    out.flush()?;
    if args.stats {
        for l in &stats.listeners {
            let local = l.local.map_or("?".into(), |a| a.to_string());
            if args.json {
                let line = serde_json::json!({"listener": local, "stats": {
                    "datagrams": l.datagrams,
                    "not_allowed": l.not_allowed,
                    "truncated": l.truncated,
                    "kernel_drops": l.kernel_drops,
                    "recv_buffer_bytes": l.recv_buffer_bytes,
                }});
                eprintln!("{line}");
            } else {
                eprintln!(
                    "listener {local}: {} datagrams, {} not allowed, {} truncated, {} kernel drops, receive buffer {} bytes",
                    l.datagrams, l.not_allowed, l.truncated, l.kernel_drops, l.recv_buffer_bytes
                );
            }
        }
        print_counters(
            args.json,
            stats
                .exporters
                .iter()
                .map(|(ip, c)| (ip.to_string(), c.clone())),
        );
    }
    Ok(())
}

pub fn udp_config(args: &ListenArgs) -> UdpSourceConfig {
    UdpSourceConfig {
        listen: if args.listen.is_empty() {
            default_listen_addrs()
        } else {
            args.listen.clone()
        },
        recv_buffer_bytes: args.recv_buffer_mib << 20,
        allowed_exporters: args.allow_exporter.clone(),
        ..Default::default()
    }
}

fn print_counters(json: bool, exporters: impl Iterator<Item = (String, ExporterCounters)>) {
    for (exporter, counters) in exporters {
        if json {
            let line =
                serde_json::json!({"exporter": exporter, "counters": CountersJson(&counters)});
            eprintln!("{line}");
        } else {
            eprintln!("exporter {exporter}: {}", counters_text(&counters));
        }
    }
}
