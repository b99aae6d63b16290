//! `floodwall simulate`: a scenario's telemetry into a capture or onto a loopback collector, and
//! its ground truth.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::Ipv4Addr;
use std::time::Instant;

use anyhow::{anyhow, bail, Context as _, Result};
use floodwall_daemon::sources::pcap::PcapWriter;
use floodwall_lab::bench::sender::{require_loopback, PacedSender};
use floodwall_lab::simulate::{self, collector_port, Options, Plan, Sink};

use super::SimulateArgs;

/// Source port of the exporter's datagrams.
const EXPORTER_PORT: u16 = 50000;

struct PcapSink<W: Write> {
    writer: PcapWriter<W>,
    exporter: Ipv4Addr,
    port: u16,
}

impl<W: Write> Sink for PcapSink<W> {
    fn datagram(&mut self, ts_us: u64, bytes: &[u8]) -> Result<()> {
        Ok(self
            .writer
            .udp(ts_us, self.exporter, EXPORTER_PORT, self.port, bytes)?)
    }
}

pub fn run(args: SimulateArgs) -> Result<()> {
    if args.list {
        let mut out = io::stdout().lock();
        for (name, _) in simulate::BUILTIN {
            let scenario = simulate::load(name)?;
            writeln!(out, "{name:<18} {}", scenario.description)?;
        }
        return Ok(());
    }
    let Some(name) = &args.scenario else {
        bail!("give --scenario NAME_OR_FILE (see --list)");
    };
    if args.pcap.is_none() && args.packets.is_none() && args.send.is_none() && !args.truth {
        bail!("nothing to do: give --pcap FILE, --packets FILE, --send 127.0.0.1:PORT or --truth");
    }
    if let Some(target) = args.send {
        require_loopback(target)?;
    }
    let scenario = simulate::load(name)?;
    let mut options = Options {
        format: args.format,
        sampling: args.sampling,
        seed: args.seed,
        scale: args.scale.clone(),
        start_ms: None,
    };
    if args.send.is_some() {
        // Live, the telemetry's clock is now: NetFlow/IPFIX flow times must not lie in the past.
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        options.start_ms = Some((now_ms / 1000 + 1) * 1000);
    }
    let plan = Plan::new(scenario, &options)?;
    if args.truth {
        let truth = plan.truth()?;
        let mut out = io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &truth)?;
        writeln!(out)?;
    }
    let exporter = plan.scenario.telemetry.exporter;
    let port = collector_port(plan.format);
    let describe = |what: &str| {
        eprintln!(
            "simulate: {} ({}, 1:{}, seed {}{}) → {what}; ~{:.0} samples expected",
            plan.scenario.name,
            plan.format.name(),
            plan.sampling,
            plan.seed,
            plan.scale_name
                .as_deref()
                .map(|s| format!(", {s} scale"))
                .unwrap_or_default(),
            plan.expected_samples()
        );
    };
    let started = Instant::now();
    if let Some(path) = &args.pcap {
        describe(&path.display().to_string());
        // Before the capture: a replay reading it as it is written (a FIFO) needs it first.
        let config = simulate::write_hunt_files(&plan.scenario, path)?;
        let file = File::create(path)
            .with_context(|| format!("cannot create capture {}", path.display()))?;
        let mut sink = PcapSink {
            writer: PcapWriter::new(BufWriter::with_capacity(1 << 20, file))?,
            exporter,
            port,
        };
        let summary = simulate::run(&plan, &mut sink)?;
        sink.writer.finish()?;
        eprintln!(
            "simulate: {} samples in {} datagrams ({:.1} MB of telemetry) in {:.1} s; replay with: floodwall replay{}{} {}",
            summary.samples,
            summary.datagrams,
            summary.bytes as f64 / 1e6,
            started.elapsed().as_secs_f64(),
            config
                .map(|c| format!(" --config {}", c.display()))
                .unwrap_or_default(),
            plan.scenario
                .telemetry
                .networks
                .iter()
                .map(|n| format!(" --network {n}"))
                .collect::<String>(),
            path.display()
        );
    }
    if let Some(path) = &args.packets {
        if plan.sampling != 1 {
            bail!(
                "--packets writes every packet generated, and a replay counts each frame as one \
                 packet: give --sampling 1 (the scenario samples 1:{})",
                plan.sampling
            );
        }
        describe(&path.display().to_string());
        let config = simulate::write_hunt_files(&plan.scenario, path)?;
        let file = File::create(path)
            .with_context(|| format!("cannot create capture {}", path.display()))?;
        let mut writer = PcapWriter::new(BufWriter::with_capacity(1 << 20, file))?;
        let (mut scratch, mut frame) = (Vec::new(), Vec::new());
        let packets = simulate::model::generate(&plan, |step| {
            if let simulate::model::Step::Packet(p) = step {
                simulate::write_frame(p, &mut scratch, &mut frame);
                writer.frame(p.time_us, &frame)?;
            }
            Ok(())
        })?;
        writer.finish()?;
        eprintln!(
            "simulate: {packets} packets in {:.1} s; replay with: floodwall replay --capture-mode packets{}{} {}",
            started.elapsed().as_secs_f64(),
            config
                .map(|c| format!(" --config {}", c.display()))
                .unwrap_or_default(),
            plan.scenario
                .telemetry
                .networks
                .iter()
                .map(|n| format!(" --network {n}"))
                .collect::<String>(),
            path.display()
        );
    }
    if let Some(target) = args.send {
        describe(&target.to_string());
        let mut sender =
            PacedSender::new(target, args.speed, args.max_rate).map_err(|e| anyhow!("{e}"))?;
        let summary = simulate::run(&plan, &mut sender)?;
        sender.flush()?;
        eprintln!(
            "simulate: sent {} datagrams ({} samples) to {target} in {:.1} s; most behind schedule {:.2} s{}",
            sender.datagrams,
            summary.samples,
            started.elapsed().as_secs_f64(),
            sender.max_lag.as_secs_f64(),
            if sender.send_errors > 0 {
                format!("; {} send errors", sender.send_errors)
            } else {
                String::new()
            }
        );
    }
    Ok(())
}
