//! `floodwall bench ingest` and its hidden helper `bench send`: argument handling, the sender
//! child process, and printing. The measuring itself is in [`floodwall::bench`].

use std::io::Read as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::{Args, ValueEnum};
use floodwall::bench::measure::{
    decode_throughput, end_to_end, sustained_loss_free, DecodeResult, E2eResult, LOSS_FREE_PCT,
};
use floodwall::bench::sender::{self, SendPlan, SendReport};
use floodwall::bench::synthetic::Workload;
use floodwall::bench::Rate;
use floodwall::sources::udp::unix_ms;
use floodwall_wire::Protocol;
use serde::Serialize;

/// Distinct datagrams per protocol: enough variety for realistic branch and cache behaviour,
/// few enough to stay in cache like the collector's receive buffers do.
const DISTINCT_DATAGRAMS: usize = 256;
/// Longest run of any single measurement, so a typo cannot start an hour-long load.
const MAX_SECONDS: f64 = 600.0;
/// How long past its `--seconds` a sender child may take (start-up, building datagrams) before
/// it is killed.
const SENDER_GRACE: Duration = Duration::from_secs(10);

#[derive(Args, Debug)]
pub struct IngestArgs {
    /// Protocol to measure.
    #[arg(long, value_enum, default_value_t = BenchProtocol::All)]
    pub protocol: BenchProtocol,
    /// Seconds of decoding per protocol.
    #[arg(long, default_value_t = 3.0, value_parser = parse_seconds)]
    pub seconds: f64,
    /// Seconds of sending per end-to-end rung.
    #[arg(long, default_value_t = 3.0, value_parser = parse_seconds)]
    pub e2e_seconds: f64,
    /// End-to-end ladder: datagrams per second per rung (`20k`, `1.5M`), or `max` for unpaced.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "20k,50k,100k,200k,400k,max"
    )]
    pub rates: Vec<Rate>,
    /// Skip the end-to-end UDP ladder.
    #[arg(long)]
    pub skip_e2e: bool,
    /// Skip the decode throughput measurement.
    #[arg(long)]
    pub skip_decode: bool,
    /// Print one JSON object with every result instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct SendArgs {
    /// Collector to send to; loopback only, this is a load generator.
    #[arg(long, value_name = "ADDR:PORT")]
    pub to: SocketAddr,
    #[arg(long, value_enum)]
    pub protocol: BenchProtocol,
    /// Datagrams per second, or `max` for unpaced.
    #[arg(long)]
    pub rate: Rate,
    /// Seconds to send for.
    #[arg(long, value_parser = parse_seconds)]
    pub seconds: f64,
    /// Stop after this many datagrams (default: rate × seconds, or 5 M/s × seconds unpaced).
    #[arg(long, value_name = "N")]
    pub max_datagrams: Option<u64>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchProtocol {
    #[value(alias = "sflow5")]
    Sflow,
    Netflow5,
    Netflow9,
    Ipfix,
    All,
}

impl BenchProtocol {
    fn protocols(self) -> Vec<Protocol> {
        match self {
            BenchProtocol::Sflow => vec![Protocol::SflowV5],
            BenchProtocol::Netflow5 => vec![Protocol::NetflowV5],
            BenchProtocol::Netflow9 => vec![Protocol::NetflowV9],
            BenchProtocol::Ipfix => vec![Protocol::Ipfix],
            BenchProtocol::All => Protocol::ALL.to_vec(),
        }
    }

    fn of(protocol: Protocol) -> Self {
        match protocol {
            Protocol::SflowV5 => BenchProtocol::Sflow,
            Protocol::NetflowV5 => BenchProtocol::Netflow5,
            Protocol::NetflowV9 => BenchProtocol::Netflow9,
            Protocol::Ipfix => BenchProtocol::Ipfix,
        }
    }
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= MAX_SECONDS => Ok(v),
        _ => Err(format!("expected seconds in (0, {MAX_SECONDS}]")),
    }
}

/// Everything `bench ingest --json` prints.
#[derive(Serialize)]
struct Report {
    cpus: usize,
    decode: Vec<DecodeResult>,
    e2e: Vec<Ladder>,
    /// How to read the end-to-end numbers; present when they were measured.
    note: Option<String>,
}

#[derive(Serialize)]
struct Ladder {
    protocol: String,
    rungs: Vec<E2eResult>,
    /// The best rung losing under 0.1 %, absent when none did.
    sustained_loss_free: Option<Sustained>,
}

#[derive(Serialize)]
struct Sustained {
    datagrams_per_sec: f64,
    records_per_sec: f64,
    target_rate: Option<f64>,
    /// No rung lost records: the sender ran out of steam first, the collector's limit is higher.
    limited_by_sender: bool,
}

pub fn ingest(args: IngestArgs) -> Result<()> {
    let protocols = args.protocol.protocols();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut report = Report {
        cpus,
        decode: Vec::new(),
        e2e: Vec::new(),
        note: None,
    };
    if !args.skip_decode {
        let now_ms = unix_ms();
        for &protocol in &protocols {
            eprintln!("bench: decoding {} for {} s", protocol.name(), args.seconds);
            let workload = Workload::generate(protocol, DISTINCT_DATAGRAMS, now_ms);
            let result = decode_throughput(&workload, Duration::from_secs_f64(args.seconds));
            report.decode.push(result);
        }
    }
    if !args.skip_e2e {
        for &protocol in &protocols {
            let mut rungs = Vec::new();
            for &rate in &args.rates {
                eprintln!(
                    "bench: end-to-end {} at {rate} datagrams/s for {} s",
                    protocol.name(),
                    args.e2e_seconds
                );
                rungs.push(end_to_end(|target| {
                    run_sender(target, protocol, rate, args.e2e_seconds)
                })?);
            }
            let sustained = sustained_loss_free(&rungs).map(|r| Sustained {
                datagrams_per_sec: r.sent.achieved_rate,
                records_per_sec: r.records_per_sec(),
                target_rate: r.sent.target_rate,
                limited_by_sender: rungs.iter().all(|r| r.loss_pct < LOSS_FREE_PCT),
            });
            report.e2e.push(Ladder {
                protocol: protocol.name().to_string(),
                rungs,
                sustained_loss_free: sustained,
            });
        }
    }
    if !report.e2e.is_empty() {
        let rungs = report.e2e.iter().flat_map(|l| &l.rungs);
        let fastest = rungs.map(|r| r.sent.achieved_rate).fold(0.0, f64::max);
        report.note = Some(format!(
            "The sender is a separate process sharing this machine's {cpus} CPUs with the \
             collector; on a 2-core machine loopback sendmmsg tops out around 0.25-0.36 M \
             datagrams/s (fastest send here: {} datagrams/s), so rungs near that measure the \
             sender as much as the collector.",
            si(fastest)
        ));
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_tables(&report, &args);
    }
    Ok(())
}

pub fn send(args: SendArgs) -> Result<()> {
    if !args.to.ip().is_loopback() {
        bail!(
            "bench send only sends to loopback addresses, not {}",
            args.to
        );
    }
    let [protocol] = args.protocol.protocols()[..] else {
        bail!("bench send needs one protocol, not `all`");
    };
    let workload = Workload::generate(protocol, DISTINCT_DATAGRAMS, unix_ms());
    let mut plan = SendPlan::new(args.to, args.rate, Duration::from_secs_f64(args.seconds));
    if let Some(max) = args.max_datagrams {
        plan.max_datagrams = plan.max_datagrams.min(max);
    }
    let report =
        sender::send(&workload, &plan).with_context(|| format!("sending to {}", args.to))?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Runs `bench send` as a child process and returns its report once it has exited; kills it
/// (by its own PID) if it overruns its time by [`SENDER_GRACE`].
fn run_sender(
    target: SocketAddr,
    protocol: Protocol,
    rate: Rate,
    seconds: f64,
) -> Result<SendReport> {
    let exe = std::env::current_exe().context("finding the floodwall executable")?;
    let protocol_name = BenchProtocol::of(protocol)
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .context("protocol name")?;
    let mut child = Command::new(exe)
        .args([
            "bench",
            "send",
            "--to",
            &target.to_string(),
            "--protocol",
            &protocol_name,
        ])
        .args([
            "--rate",
            &rate.to_string(),
            "--seconds",
            &seconds.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the sender process")?;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds) + SENDER_GRACE;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the sender did not finish within {seconds} s + {SENDER_GRACE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut output = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut output)?;
    }
    if !status.success() {
        bail!("the sender failed ({status})");
    }
    let line = output.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("reading the sender's report {line:?}"))
}

fn print_tables(report: &Report, args: &IngestArgs) {
    if !report.decode.is_empty() {
        println!(
            "Decode throughput: one core, Decoder::decode, {} s per protocol",
            args.seconds
        );
        println!(
            "{:<9} {:>11} {:>10} {:>12} {:>9} {:>7}",
            "protocol", "records/s", "ns/record", "datagrams/s", "MB/s", "errors"
        );
        for d in &report.decode {
            println!(
                "{:<9} {:>11} {:>10.1} {:>12} {:>9.0} {:>7}",
                d.protocol,
                si(d.records_per_sec),
                d.ns_per_record,
                si(d.datagrams_per_sec),
                d.mbytes_per_sec,
                d.errors
            );
        }
        println!();
    }
    let Some(note) = &report.note else {
        return;
    };
    println!(
        "End-to-end UDP on 127.0.0.1: sender process (sendmmsg) -> UdpSource -> consumer, \
         {} s per rung",
        args.e2e_seconds
    );
    println!("Note: {note}");
    println!(
        "{:<9} {:>7} {:>10} {:>10} {:>10} {:>10} {:>7} {:>8} {:>8} {:>9} {:>8}",
        "protocol",
        "target",
        "sent dg/s",
        "records",
        "received",
        "records/s",
        "loss %",
        "k.drops",
        "coll.cpu",
        "cpu s/M",
        "send.cpu"
    );
    for ladder in &report.e2e {
        for r in &ladder.rungs {
            println!(
                "{:<9} {:>7} {:>10} {:>10} {:>10} {:>10} {:>7.2} {:>8} {:>8.2} {:>9.3} {:>8.2}",
                ladder.protocol,
                r.sent.target_rate.map_or("max".to_string(), si),
                si(r.sent.achieved_rate),
                r.sent.records,
                r.received_records,
                si(r.records_per_sec()),
                r.loss_pct,
                r.kernel_drops,
                r.collector_cpu_seconds,
                r.collector_cpu_seconds_per_million_records
                    .unwrap_or(f64::NAN),
                r.sender_cpu_seconds
            );
        }
        let name = &ladder.protocol;
        match &ladder.sustained_loss_free {
            Some(s) if s.limited_by_sender => println!(
                "{name}: sustained loss-free: >= {} datagrams/s = {} records/s (no rung lost \
                 records: the sender was the limit)",
                si(s.datagrams_per_sec),
                si(s.records_per_sec)
            ),
            Some(s) => println!(
                "{name}: sustained loss-free (< {LOSS_FREE_PCT} % lost): {} datagrams/s = {} \
                 records/s",
                si(s.datagrams_per_sec),
                si(s.records_per_sec)
            ),
            None => println!("{name}: no rung was loss-free (< {LOSS_FREE_PCT} % lost)"),
        }
    }
}

/// `12.3 M`, `456.7 k`: rates at a glance.
fn si(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2} M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.1} k", value / 1e3)
    } else {
        format!("{value:.0}")
    }
}

#[derive(Args, Debug)]
pub struct ReplayBenchArgs {
    /// Protocol of the synthetic capture.
    #[arg(long, value_enum, default_value_t = BenchProtocol::All)]
    pub protocol: BenchProtocol,
    /// Ordinary traffic from a million active hosts (sFlow), or every record an attack (all
    /// protocols).
    #[arg(long, value_enum, default_value_t = floodwall::bench::replay::Mix::Normal)]
    pub mix: floodwall::bench::replay::Mix,
    /// Datagrams in each capture (sFlow: 10 samples each; NetFlow v5: 30 records; v9/IPFIX ~24).
    /// Default: five rounds over every host (normal, 524,290), 200,000 (heavy).
    #[arg(long)]
    pub datagrams: Option<u64>,
    /// Datagrams per second of capture time (sets how many 1-second buckets the engine closes).
    /// Default: a round every 10 s (normal, 104,858), 2,000 (heavy).
    #[arg(long)]
    pub per_second: Option<u64>,
    /// Directory for the temporary captures (removed afterwards).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
    /// One JSON object with all results.
    #[arg(long)]
    pub json: bool,
    /// Keep the captures (to replay them with `floodwall replay` or look at them with tshark).
    #[arg(long)]
    pub keep: bool,
}

/// `floodwall bench replay`: the whole replay pipeline (pcap → decode → engine) on one core.
pub fn replay(args: ReplayBenchArgs) -> Result<()> {
    use floodwall::bench::replay::{networks_for, replay_capture, write_capture, Mix};
    let dir = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let datagrams = args.datagrams.unwrap_or(args.mix.default_datagrams());
    let per_second = args.per_second.unwrap_or(args.mix.default_per_second());
    let mut reports = Vec::new();
    let protocols = match args.mix {
        // The ordinary mix is sFlow: samples are what spreads over many hosts.
        Mix::Normal => vec![Protocol::SflowV5],
        Mix::Heavy => args.protocol.protocols(),
    };
    for protocol in protocols {
        let path = dir.join(format!(
            "floodwall-bench-replay-{}-{}.pcap",
            protocol.name(),
            std::process::id()
        ));
        eprintln!(
            "bench: writing {} {} datagrams to {}",
            datagrams,
            protocol.name(),
            path.display()
        );
        write_capture(
            &path,
            protocol,
            args.mix,
            datagrams,
            per_second,
            1_760_000_000_000,
        )?;
        eprintln!("bench: replaying");
        let report = replay_capture(&path, protocol, networks_for(args.mix));
        if !args.keep {
            let _ = std::fs::remove_file(&path);
        }
        reports.push(report?);
    }
    if args.json {
        println!("{}", serde_json::to_string(&reports)?);
        return Ok(());
    }
    println!("Replay throughput: pcap reader + decoder + detection engine, one core");
    println!("({})", args.mix.describe());
    println!(
        "{:<10} {:>12} {:>12} {:>10} {:>14} {:>12}",
        "protocol", "records", "capture MB", "seconds", "records/s", "peak RSS MB"
    );
    for r in &reports {
        println!(
            "{:<10} {:>12} {:>12.1} {:>10.2} {:>12.2} M {:>12.1}",
            r.protocol,
            r.records,
            r.capture_bytes as f64 / 1e6,
            r.seconds,
            r.records_per_second / 1e6,
            r.peak_rss_bytes as f64 / (1 << 20) as f64
        );
    }
    Ok(())
}
