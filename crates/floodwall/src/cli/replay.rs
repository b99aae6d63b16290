//! `floodwall replay`: captures through the engine as fast as the CPU allows, events out.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::time::Instant;

use anyhow::{anyhow, Context as _, Result};
use floodwall_daemon::config::Config;
use floodwall_daemon::events::{event_record, write_row, TABLE_HEADER};
use floodwall_daemon::sources::pcap::read_capture_from;
use floodwall_detect::{AttackEvent, Engine, EventKind};
use floodwall_mitigate::{Planner, Status};
use floodwall_wire::Decoder;
use indicatif::{ProgressBar, ProgressStyle};

use super::ReplayArgs;

/// Inputs smaller than this finish before a progress bar would be worth drawing.
const PROGRESS_MIN_BYTES: u64 = 16 << 20;
const BATCH: usize = 8192;

pub fn run(args: ReplayArgs) -> Result<()> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    config.add_networks(&args.network);
    config.require_networks()?;
    let mut engine = Engine::new(config.detection_config()).map_err(|e| anyhow!("{e}"))?;
    // What the configured mitigation would do, on telemetry time: a replay never announces.
    let mut mitigation = config.mitigation.clone();
    mitigation.dry_run = true;
    mitigation
        .hostgroups
        .iter_mut()
        .for_each(|g| g.dry_run = Some(true));
    let mut planner =
        Planner::new(mitigation, config.mitigation_scope()).map_err(|e| anyhow!("{e}"))?;
    let mut changes = Vec::new();
    let mut decoder = Decoder::new(config.collector.limits());

    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if !args.json {
        writeln!(out, "{TABLE_HEADER}")?;
    }
    let mut emit =
        |events: &mut Vec<AttackEvent>, out: &mut BufWriter<io::StdoutLock>| -> Result<()> {
            for event in events.drain(..) {
                planner.tick(event.ts, &mut changes);
                let decisions = planner.on_event(&event, event.ts, &mut changes);
                changes.clear();
                if args.json {
                    serde_json::to_writer(&mut *out, &event_record(&event, &decisions)?)?;
                    out.write_all(b"\n")?;
                } else {
                    write_row(out, &event)?;
                    for d in &decisions {
                        let coverage = d
                            .coverage
                            .map(|c| format!(", covers ~{:.0} %", 100.0 * c))
                            .unwrap_or_default();
                        let reason = d
                            .reason
                            .as_ref()
                            .map(|r| format!(": {r}"))
                            .unwrap_or_default();
                        writeln!(
                            out,
                            "    mitigation {}: {}{coverage}{reason}",
                            match d.status {
                                Status::DryRun => "would announce",
                                other => other.as_str(),
                            },
                            d.text
                        )?;
                    }
                }
            }
            Ok(())
        };

    let total_bytes: u64 = args
        .files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    let progress = (io::stderr().is_terminal() && total_bytes >= PROGRESS_MIN_BYTES).then(|| {
        let bar = ProgressBar::new(total_bytes);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });

    let started = Instant::now();
    let mut records = Vec::with_capacity(BATCH * 2);
    let mut events = Vec::new();
    let mut record_count = 0u64;
    let mut attacks = 0u64;
    let mut cut_off = 0;
    for path in &args.files {
        let file =
            File::open(path).with_context(|| format!("cannot open capture {}", path.display()))?;
        let name = path.display().to_string();
        let input: Box<dyn io::Read + Send> = match &progress {
            Some(bar) => Box::new(bar.wrap_read(file)),
            None => Box::new(file),
        };
        let stats = read_capture_from(
            input,
            &name,
            args.capture_mode,
            &mut decoder,
            &mut records,
            BATCH,
            |batch| {
                record_count += batch.len() as u64;
                engine.ingest(batch, &mut events);
                batch.clear();
                attacks += events
                    .iter()
                    .filter(|e| e.event == EventKind::AttackStarted)
                    .count() as u64;
                emit(&mut events, &mut out)
            },
        )?;
        if let Some(warning) = stats.truncation_warning(&name) {
            if let Some(bar) = &progress {
                bar.suspend(|| eprintln!("floodwall: warning: {warning}"));
            } else {
                eprintln!("floodwall: warning: {warning}");
            }
            cut_off += 1;
        }
    }
    engine.finish(&mut events);
    attacks += events
        .iter()
        .filter(|e| e.event == EventKind::AttackStarted)
        .count() as u64;
    emit(&mut events, &mut out)?;
    out.flush()?;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let totals = decoder.totals();
    eprintln!(
        "floodwall: {} records in {:.2} s ({:.2} M records/s), {} attacks; {} datagrams, {} decode errors, {} implausible records",
        record_count,
        elapsed,
        record_count as f64 / elapsed.max(1e-9) / 1e6,
        attacks,
        totals.datagrams,
        totals.total_errors(),
        totals.implausible()
    );
    super::cut_off_captures(cut_off)
}
