//! `floodwall replay`: captures through the daemon's pipeline (engine and plan, dry run, on the
//! captures' time) as fast as the CPU allows; the records out on stdout.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context as _, Result};
use floodwall_daemon::bus::{Message, Subscriber, Topic};
use floodwall_daemon::config::Config;
use floodwall_daemon::events::{write_row, TABLE_HEADER};
use floodwall_daemon::pipeline::Pipeline;
use floodwall_daemon::sources::capture::{CaptureInput, Captures};
use floodwall_mitigate::Status;
use indicatif::{ProgressBar, ProgressStyle};

use super::ReplayArgs;

/// Inputs smaller than this finish before a progress bar would be worth drawing.
const PROGRESS_MIN_BYTES: u64 = 16 << 20;

/// The records on stdout: JSON lines, or the table with each decision under its event. Its
/// first write error (a reader that went away) ends its writing and becomes the command's
/// error, not a log line.
struct Print {
    json: bool,
    out: BufWriter<io::Stdout>,
    failed: Arc<Mutex<Option<anyhow::Error>>>,
}

impl Print {
    fn write(&mut self, record: &floodwall_daemon::bus::AttackRecord) -> Result<()> {
        if self.json {
            serde_json::to_writer(&mut self.out, record)?;
            self.out.write_all(b"\n")?;
            return Ok(());
        }
        write_row(&mut self.out, &record.event)?;
        for d in &record.decisions {
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
                self.out,
                "    mitigation {}: {}{coverage}{reason}",
                match d.status {
                    Status::DryRun => "would announce",
                    other => other.as_str(),
                },
                d.text
            )?;
        }
        Ok(())
    }

    fn write_hunt(&mut self, event: &floodwall_hunt::HuntEvent) -> Result<()> {
        if self.json {
            serde_json::to_writer(&mut self.out, event)?;
            self.out.write_all(b"\n")?;
            return Ok(());
        }
        writeln!(self.out, "{}", floodwall_daemon::events::hunt_line(event))?;
        Ok(())
    }

    fn keep(&self, result: Result<()>) {
        if let Err(e) = result {
            let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
            failed.get_or_insert(e);
        }
    }

    fn broken(&self) -> bool {
        self.failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }
}

impl Subscriber for Print {
    fn name(&self) -> &str {
        "stdout"
    }

    fn topics(&self) -> &[Topic] {
        &[Topic::Attack, Topic::Hunt]
    }

    fn handle(&mut self, message: &Message) -> Result<()> {
        if self.broken() {
            return Ok(());
        }
        let result = match message {
            Message::Attack(record) => self.write(record),
            Message::Hunt(event) => self.write_hunt(event),
            _ => Ok(()),
        };
        self.keep(result);
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        if !self.broken() {
            let result = self.out.flush().map_err(anyhow::Error::from);
            self.keep(result);
        }
        Ok(())
    }
}

pub fn run(args: ReplayArgs) -> Result<()> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    config.add_networks(&args.network);
    config.require_networks()?;
    if let Some(n) = args.shards {
        config.detection.shards = Some(n);
    }

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
    let mut inputs = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let file =
            File::open(path).with_context(|| format!("cannot open capture {}", path.display()))?;
        inputs.push(CaptureInput {
            name: path.display().to_string(),
            reader: match &progress {
                Some(bar) => Box::new(bar.wrap_read(file)),
                None => Box::new(file),
            },
        });
    }
    let source = Captures {
        inputs,
        mode: args.capture_mode,
        limits: config.collector.limits(),
    };

    let mut out = BufWriter::new(io::stdout());
    if !args.json {
        writeln!(out, "{TABLE_HEADER}")?;
    }
    let failed = Arc::new(Mutex::new(None));
    let printer = Print {
        json: args.json,
        out,
        failed: failed.clone(),
    };
    let started = Instant::now();
    let report = Pipeline::replay(config, Box::new(source), Box::new(printer))?.wait()?;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    if let Some(error) = failed.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Err(error);
    }
    if let Some(error) = report.source_error {
        return Err(error);
    }
    for warning in &report.warnings {
        eprintln!("floodwall: warning: {warning}");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let totals = report.collector.totals();
    eprintln!(
        "floodwall: {} records in {:.2} s ({:.2} M records/s), {} attacks; {} datagrams, {} decode errors, {} implausible records",
        report.records,
        elapsed,
        report.records as f64 / elapsed.max(1e-9) / 1e6,
        report.attacks_started,
        totals.datagrams,
        totals.total_errors(),
        totals.implausible()
    );
    super::cut_off_captures(report.warnings.len())
}
