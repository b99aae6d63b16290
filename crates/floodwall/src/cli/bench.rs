//! `floodwall bench ingest` and its hidden helper `bench send`: argument handling, the sender
//! child process, and printing. The measuring itself is in [`floodwall_lab::bench`].

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use clap::{Args, ValueEnum};
use floodwall_daemon::clock::unix_ms;
use floodwall_daemon::units::compact_si;
use floodwall_lab::bench::child::run_send;
use floodwall_lab::bench::measure::{
    decode_throughput, end_to_end, sustained_loss_free, DecodeResult, E2eResult, LOSS_FREE_PCT,
};
use floodwall_lab::bench::sender::{self, SendPlan, SendReport};
use floodwall_lab::bench::stream::{documentation_hosts, LatencySchedule, PatchedStream, Scenario};
use floodwall_lab::bench::synthetic::Workload;
use floodwall_lab::bench::Rate;
use floodwall_wire::Protocol;
use ipnet::Ipv4Net;
use serde::Serialize;

/// Distinct datagrams per protocol: enough variety for realistic branch and cache behaviour,
/// few enough to stay in cache like the collector's receive buffers do.
const DISTINCT_DATAGRAMS: usize = 256;
/// Longest run of any single measurement, so a typo cannot start an hour-long load.
const MAX_SECONDS: f64 = 600.0;

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
    /// Collector to send to; loopback only, this is a load generator. Repeat to send every
    /// datagram to several (the latency stream).
    #[arg(long, value_name = "ADDR:PORT", required = true)]
    pub to: Vec<SocketAddr>,
    #[arg(long, value_enum)]
    pub protocol: BenchProtocol,
    /// What to send: the synthetic mix of `bench ingest`, or an sFlow stream of `bench compare`.
    #[arg(long, value_enum, default_value_t = SendScenario::Mix)]
    pub scenario: SendScenario,
    /// Datagrams per second, or `max` for unpaced (not for `latency`, which keeps its own time).
    #[arg(long)]
    pub rate: Option<Rate>,
    /// Seconds to send for.
    #[arg(long, value_parser = parse_seconds)]
    pub seconds: f64,
    /// Stop after this many datagrams (default: rate × seconds, or 5 M/s × seconds unpaced).
    #[arg(long, value_name = "N")]
    pub max_datagrams: Option<u64>,
    /// Monitored network the `ingest` (at least a /16) or `hosts` (a /12) stream covers.
    #[arg(long, value_name = "CIDR")]
    pub network: Option<Ipv4Net>,
    /// Target of the `spoofed` and `latency` floods.
    #[arg(long, value_name = "IP")]
    pub victim: Option<Ipv4Addr>,
    /// `latency`: packets per second of the flood (before 1:1000 sampling).
    #[arg(long, default_value_t = 200_000.0)]
    pub attack_pps: f64,
    /// `latency`: seconds of background before the flood starts.
    #[arg(long, default_value_t = 2.0)]
    pub attack_after: f64,
    /// `latency`: Unix time in ms at which the flood starts (instead of `--attack-after`).
    #[arg(long, value_name = "UNIX_MS")]
    pub attack_at: Option<f64>,
    /// `latency`: background samples per second over the 512 hosts of 198.51.100.0/24 and
    /// 203.0.113.0/24.
    #[arg(long, default_value_t = 2000.0)]
    pub background: f64,
    /// `latency`: seed of the background and flood addresses.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Streams `bench send` can produce.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendScenario {
    /// The varied per-protocol mix of `bench ingest`.
    Mix,
    /// sFlow to random hosts of `--network` (below every limit).
    Ingest,
    /// sFlow sampling each host of a /12 once per round.
    Hosts,
    /// sFlow of a UDP flood at `--victim` from a million spoofed sources.
    Spoofed,
    /// Background, then a UDP flood at `--victim` after `--attack-after` seconds; prints
    /// `{"attack_sent_unix_us":..}` the moment the flood's first datagram goes out.
    Latency,
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
            compact_si(fastest)
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
    if let Some(to) = args.to.iter().find(|to| !to.ip().is_loopback()) {
        bail!("bench send only sends to loopback addresses, not {to}");
    }
    let [protocol] = args.protocol.protocols()[..] else {
        bail!("bench send needs one protocol, not `all`");
    };
    if args.scenario != SendScenario::Mix && protocol != Protocol::SflowV5 {
        bail!("the {:?} stream is sFlow only", args.scenario);
    }
    let victim = || {
        args.victim
            .with_context(|| format!("the {:?} stream needs --victim", args.scenario))
    };
    let duration = Duration::from_secs_f64(args.seconds);
    if args.scenario == SendScenario::Latency {
        let mut schedule = LatencySchedule::new(
            args.background,
            documentation_hosts(),
            victim()?,
            args.attack_pps,
            Duration::from_secs_f64(match args.attack_at {
                Some(at_ms) => (at_ms - sender::unix_us() as f64 / 1000.0).max(0.0) / 1000.0,
                None => args.attack_after.max(0.0),
            }),
            args.seed,
        );
        let report = sender::send_schedule(&mut schedule, &args.to, duration, |us| {
            println!("{{\"attack_sent_unix_us\":{us}}}");
            let _ = std::io::stdout().flush();
        })
        .context("sending the latency stream")?;
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let [to] = args.to[..] else {
        bail!("only the latency stream goes to several collectors");
    };
    let rate = args.rate.context("--rate is required")?;
    let mut plan = SendPlan::new(to, rate, duration);
    if let Some(max) = args.max_datagrams {
        plan.max_datagrams = plan.max_datagrams.min(max);
    }
    let network = |bits: std::ops::RangeInclusive<u8>| -> Result<Ipv4Addr> {
        let net = args
            .network
            .with_context(|| format!("the {:?} stream needs --network", args.scenario))?;
        if !bits.contains(&net.prefix_len()) {
            bail!(
                "--network {net}: the {:?} stream needs a prefix length in {bits:?}",
                args.scenario
            );
        }
        Ok(net.network())
    };
    let result = match args.scenario {
        SendScenario::Mix => {
            let mut workload = Workload::generate(protocol, DISTINCT_DATAGRAMS, unix_ms());
            sender::send(&mut workload, &plan)
        }
        SendScenario::Ingest => {
            let net = network(8..=16)?;
            let host_bits = 32 - u32::from(args.network.map_or(16, |n| n.prefix_len()));
            sender::send(
                &mut PatchedStream::new(Scenario::Ingest {
                    network: net,
                    host_bits,
                }),
                &plan,
            )
        }
        SendScenario::Hosts => {
            let net = network(12..=12)?;
            sender::send(
                &mut PatchedStream::new(Scenario::Hosts { network: net }),
                &plan,
            )
        }
        SendScenario::Spoofed => sender::send(
            &mut PatchedStream::new(Scenario::Spoofed { victim: victim()? }),
            &plan,
        ),
        SendScenario::Latency => unreachable!("handled above"),
    };
    let report = result.with_context(|| format!("sending to {to}"))?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Runs `bench send` as a child process and returns its report once it has exited.
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
    let args = [
        "--to".to_string(),
        target.to_string(),
        "--protocol".to_string(),
        protocol_name,
        "--rate".to_string(),
        rate.to_string(),
        "--seconds".to_string(),
        seconds.to_string(),
    ];
    let line = run_send(&exe, &args, seconds)?;
    serde_json::from_str(&line).with_context(|| format!("reading the sender's report {line:?}"))
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
                compact_si(d.records_per_sec),
                d.ns_per_record,
                compact_si(d.datagrams_per_sec),
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
        "proc.cpu / cpu s/M: the whole bench process; thr s/M: the collector threads alone \
         (receive + decode + hand-over, kernel time included), CPU-seconds per million records; \
         sys %: their kernel share"
    );
    println!(
        "{:<9} {:>7} {:>10} {:>10} {:>10} {:>10} {:>7} {:>8} {:>8} {:>9} {:>9} {:>6} {:>8}",
        "protocol",
        "target",
        "sent dg/s",
        "records",
        "received",
        "records/s",
        "loss %",
        "k.drops",
        "proc.cpu",
        "cpu s/M",
        "thr s/M",
        "sys %",
        "send.cpu"
    );
    for ladder in &report.e2e {
        for r in &ladder.rungs {
            println!(
                "{:<9} {:>7} {:>10} {:>10} {:>10} {:>10} {:>7.2} {:>8} {:>8.2} {:>9.3} {:>9.3} {:>6.0} {:>8.2}",
                ladder.protocol,
                r.sent.target_rate.map_or("max".to_string(), compact_si),
                compact_si(r.sent.achieved_rate),
                r.sent.records,
                r.received_records,
                compact_si(r.records_per_sec()),
                r.loss_pct,
                r.kernel_drops,
                r.collector_cpu_seconds,
                r.collector_cpu_seconds_per_million_records
                    .unwrap_or(f64::NAN),
                r.collector_thread_cpu_seconds_per_million_records
                    .unwrap_or(f64::NAN),
                100.0 * r.collector_thread_system_seconds
                    / r.collector_thread_cpu_seconds.max(1e-9),
                r.sender_cpu_seconds
            );
        }
        let name = &ladder.protocol;
        match &ladder.sustained_loss_free {
            Some(s) if s.limited_by_sender => println!(
                "{name}: sustained loss-free: >= {} datagrams/s = {} records/s (no rung lost \
                 records: the sender was the limit)",
                compact_si(s.datagrams_per_sec),
                compact_si(s.records_per_sec)
            ),
            Some(s) => println!(
                "{name}: sustained loss-free (< {LOSS_FREE_PCT} % lost): {} datagrams/s = {} \
                 records/s",
                compact_si(s.datagrams_per_sec),
                compact_si(s.records_per_sec)
            ),
            None => println!("{name}: no rung was loss-free (< {LOSS_FREE_PCT} % lost)"),
        }
    }
}

#[derive(Args, Debug)]
pub struct ReplayBenchArgs {
    /// Protocol of the synthetic capture.
    #[arg(long, value_enum, default_value_t = BenchProtocol::All)]
    pub protocol: BenchProtocol,
    /// Ordinary traffic from a million active hosts or a busy network's capture (sFlow), or
    /// every record an attack (all protocols).
    #[arg(long, value_enum, default_value_t = floodwall_lab::bench::replay::Mix::Normal)]
    pub mix: floodwall_lab::bench::replay::Mix,
    /// Active hosts of the normal (at most 1,048,576, the default) or busy mix (at most 131,072,
    /// the default).
    #[arg(long)]
    pub hosts: Option<u64>,
    /// Datagrams in each capture (sFlow: 10 samples each, 8 in the busy mix; NetFlow v5: 30
    /// records; v9/IPFIX ~24). Default: five rounds over every host (normal, 524,290), 4 M
    /// samples (busy), 200,000 (heavy).
    #[arg(long)]
    pub datagrams: Option<u64>,
    /// Datagrams per second of capture time (sets how many 1-second buckets the engine closes).
    /// Default: a round every 10 s (normal, 104,858), 60 s of capture (busy), 2,000 (heavy).
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
    /// Engine shards (threads) to replay through; 1 is the single engine of earlier figures.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub shards: u32,
}

/// `floodwall bench replay`: the whole replay pipeline (pcap → decode → engine) on one core.
pub fn replay(args: ReplayBenchArgs) -> Result<()> {
    use floodwall_lab::bench::replay::{networks_for, replay_capture, write_capture, Mix};
    let dir = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let datagrams = args
        .datagrams
        .unwrap_or(args.mix.default_datagrams(args.hosts));
    let per_second = args
        .per_second
        .unwrap_or(args.mix.default_per_second(args.hosts));
    let mut reports = Vec::new();
    let protocols = match args.mix {
        // The spread mixes are sFlow: samples are what spreads over many hosts.
        Mix::Normal | Mix::Busy => vec![Protocol::SflowV5],
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
            args.hosts,
            datagrams,
            per_second,
            1_760_000_000_000,
        )?;
        eprintln!("bench: replaying");
        let report = replay_capture(&path, protocol, networks_for(args.mix), args.shards);
        if !args.keep {
            let _ = std::fs::remove_file(&path);
        }
        reports.push(report?);
    }
    if args.json {
        println!("{}", serde_json::to_string(&reports)?);
        return Ok(());
    }
    println!(
        "Replay throughput: pcap reader + decoder + detection engine, {} engine shard(s)",
        args.shards
    );
    println!("({})", args.mix.describe(args.hosts));
    println!(
        "{:<10} {:>10} {:>11} {:>8} {:>8} {:>11} {:>12} {:>8}",
        "protocol", "records", "capture MB", "seconds", "CPU-s", "records/s", "per CPU-s", "RSS MB"
    );
    for r in &reports {
        println!(
            "{:<10} {:>10} {:>11.1} {:>8.2} {:>8.2} {:>9.2} M {:>10.2} M {:>8.1}",
            r.protocol,
            r.records,
            r.capture_bytes as f64 / 1e6,
            r.seconds,
            r.cpu_seconds,
            r.records_per_second / 1e6,
            r.records_per_cpu_second / 1e6,
            r.peak_rss_bytes as f64 / (1 << 20) as f64
        );
    }
    println!();
    println!("Per stage, CPU nanoseconds per record (each stage on its own pass):");
    println!(
        "{:<10} {:>12} {:>12} {:>12} {:>14} {:>8} {:>12}",
        "protocol", "read+decode", "accounting", "detection", "fingerprints", "total", "per CPU-s"
    );
    for r in &reports {
        let s = &r.stages;
        println!(
            "{:<10} {:>12.1} {:>12.1} {:>12.1} {:>14.1} {:>8.1} {:>10.2} M",
            r.protocol,
            s.read_decode_ns,
            s.accounting_ns,
            s.detection_ns,
            s.fingerprinting_ns,
            s.total_ns(),
            1e3 / s.total_ns().max(1e-9)
        );
    }
    Ok(())
}

/// Parts of `bench compare`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComparePart {
    /// Floodwall's decode throughput per protocol (FastNetMon has no equivalent).
    Decode,
    /// End-to-end sFlow ingest ladder of both daemons.
    Ingest,
    /// Detection latency of both daemons for the same attacks.
    Latency,
    /// Peak RSS of both daemons with 1 M active hosts and a 1 M-source spoofed flood.
    Rss,
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// A short run for development (a few minutes): one ladder of 1-second rungs, three
    /// latency trials per attack size, one round over the million hosts.
    #[arg(long)]
    pub quick: bool,
    /// Run only these parts (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<ComparePart>,
    /// Ingest ladder in sFlow samples per second (`100k`, `2M`; `max`: as fast as the sender
    /// goes). Default 50k,100k,200k,500k,1M,2M,max.
    #[arg(long, value_delimiter = ',')]
    pub rates: Option<Vec<Rate>>,
    /// Seconds of sending per ingest rung (default 3).
    #[arg(long, value_parser = parse_seconds)]
    pub rung_seconds: Option<f64>,
    /// Times the ingest ladder runs (default 3).
    #[arg(long)]
    pub repeats: Option<usize>,
    /// Latency trials per attack size (default 10).
    #[arg(long)]
    pub trials: Option<usize>,
    /// Attack sizes for the latency trials, as multiples of the pps threshold (default 2,10).
    #[arg(long, value_delimiter = ',')]
    pub magnitudes: Option<Vec<f64>>,
    /// Write the report as Markdown to this file (scripts/bench: BENCHMARKS.md).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print one JSON object (machine, summary rows, every measurement) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Directory for the daemons' configurations, logs and events; kept after the run.
    /// Default: $TMPDIR/floodwall-bench-compare.
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// The FastNetMon binary.
    #[arg(long, value_name = "FILE", default_value = "/usr/sbin/fastnetmon")]
    pub fastnetmon: PathBuf,
    /// How the run was invoked, for the report (scripts/bench passes its own command line).
    #[arg(long, hide = true)]
    pub command: Option<String>,
}

/// `floodwall bench compare`.
pub fn compare(args: CompareArgs) -> Result<()> {
    use floodwall_lab::bench::compare::{self, Options, Parts};
    use floodwall_lab::bench::daemon::Programs;
    use floodwall_lab::bench::report::{markdown, summary_rows, text_table, Machine};

    let mut programs = Programs::installed()?;
    programs.fastnetmon = args.fastnetmon.clone();
    let work_dir = args
        .work_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("floodwall-bench-compare"));
    let mut options = if args.quick {
        Options::quick(programs, work_dir)
    } else {
        Options::full(programs, work_dir)
    };
    if !args.only.is_empty() {
        options.parts = Parts {
            decode: args.only.contains(&ComparePart::Decode),
            ingest: args.only.contains(&ComparePart::Ingest),
            latency: args.only.contains(&ComparePart::Latency),
            rss: args.only.contains(&ComparePart::Rss),
        };
    }
    if let Some(rates) = args.rates.clone() {
        options.rates = rates;
    }
    options.rung_seconds = args.rung_seconds.unwrap_or(options.rung_seconds);
    options.repeats = args.repeats.unwrap_or(options.repeats).max(1);
    options.trials = args.trials.unwrap_or(options.trials).max(1);
    if let Some(magnitudes) = args.magnitudes.clone() {
        if magnitudes.iter().any(|m| !(m.is_finite() && *m > 0.0)) {
            bail!("--magnitudes must be positive numbers");
        }
        options.magnitudes = magnitudes;
    }
    let command = args.command.clone().unwrap_or_else(|| {
        let argv: Vec<String> = std::env::args().skip(1).collect();
        format!("floodwall {}", argv.join(" "))
    });
    let date = floodwall_detect::time::rfc3339_ms(unix_ms());
    let machine = Machine::detect();
    let comparison = compare::run(&options)?;
    let rows = summary_rows(&comparison);
    if let Some(out) = &args.out {
        std::fs::write(out, markdown(&comparison, &machine, &command, &date))
            .with_context(|| format!("writing {}", out.display()))?;
        eprintln!("bench compare: wrote {}", out.display());
    }
    if args.json {
        let report = serde_json::json!({
            "machine": machine,
            "date": date,
            "command": command,
            "rows": rows,
            "comparison": comparison,
        });
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "Floodwall beside FastNetMon Community — {} on {} ({} cores), {date}",
            machine.floodwall, machine.cpu, machine.cores
        );
        print!("{}", text_table(&rows));
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct MitigationArgs {
    /// Attacks, each at a fresh host (default 10).
    #[arg(long, default_value_t = 10)]
    pub trials: usize,
    /// Write the result as a Markdown section to this file (scripts/bench appends it to
    /// BENCHMARKS.md).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Directory for gobgpd's and the daemon's files; kept after the run.
    /// Default: $TMPDIR/floodwall-bench-mitigation.
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Keep the disk busy while the attacks come: a writer in this process appends and fsyncs
    /// 1 MiB at a time in the work directory (the daemon's state lives there), so a daemon that
    /// waits for its own fsync before announcing shows it.
    #[arg(long)]
    pub disk_load: bool,
    /// The floodwall binary to run as the daemon (to compare builds). Default: this one.
    #[arg(long, value_name = "PATH")]
    pub daemon: Option<PathBuf>,
    /// How the run was invoked, for the report.
    #[arg(long, hide = true)]
    pub command: Option<String>,
}

pub fn mitigation(args: MitigationArgs) -> Result<()> {
    use floodwall_lab::bench::mitigation::{markdown, run, Options};
    let options = Options {
        floodwall: match args.daemon {
            Some(path) => path,
            None => std::env::current_exe()?,
        },
        disk_load: args.disk_load,
        work_dir: args
            .work_dir
            .unwrap_or_else(|| std::env::temp_dir().join("floodwall-bench-mitigation")),
        trials: args.trials.max(1),
    };
    let result = run(&options)?;
    let command = args.command.unwrap_or_else(|| {
        format!(
            "floodwall bench mitigation --trials {}{}",
            options.trials,
            if options.disk_load {
                " --disk-load"
            } else {
                ""
            }
        )
    });
    let section = markdown(&result, &command);
    print!("{section}");
    if let Some(out) = args.out {
        std::fs::write(&out, &section).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct FalseAlarmsArgs {
    /// Hours of busy traffic (each a new seed, the subscribers' evening moving on from 17:00).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=i64::from(floodwall_lab::bench::false_alarms::MAX_HOURS)))]
    pub hours: u32,
    /// Telemetry format.
    #[arg(long, value_enum, default_value_t = floodwall_lab::simulate::Format::Sflow)]
    pub format: floodwall_lab::simulate::Format,
    /// 1-in-N packet sampling (coarse, so hours run in about a minute each; at least 256).
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(256..))]
    pub sampling: u32,
    /// Seed of the first hour (hour h uses seed + h).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// One JSON object with the whole report.
    #[arg(long)]
    pub json: bool,
}

/// `floodwall bench false-alarms`: hours of busy networks from start-up, false alarms per hour
/// and the attacks found.
pub fn false_alarms(args: FalseAlarmsArgs) -> Result<()> {
    use floodwall_lab::bench::false_alarms::{run, text, Config};
    let report = run(
        &Config {
            hours: args.hours,
            format: args.format,
            sampling: args.sampling,
            seed: args.seed,
        },
        |line| eprintln!("bench: {line}"),
    )?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", text(&report));
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct SurfacesArgs {
    /// Rounds of (surfaces off, surfaces on), interleaved.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Seconds each daemon is fed.
    #[arg(long, default_value_t = 20.0)]
    pub seconds: f64,
    /// Ordinary sFlow samples per second in the stream (a flood joins it after 2 s).
    #[arg(long, default_value_t = 50_000)]
    pub background: u64,
    /// Attacks stored in the history before the API's latency is measured.
    #[arg(long, default_value_t = 10_000)]
    pub attacks: usize,
    /// Requests per endpoint.
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
    /// Write the result as a Markdown section to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Directory for the daemons' files; kept after the run.
    /// Default: $TMPDIR/floodwall-bench-surfaces.
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// The floodwall binary to run as the daemon. Default: this one.
    #[arg(long, value_name = "PATH")]
    pub daemon: Option<PathBuf>,
}

pub fn surfaces(args: SurfacesArgs) -> Result<()> {
    use floodwall_lab::bench::surfaces::{markdown, run, Options};
    let options = Options {
        floodwall: match args.daemon {
            Some(path) => path,
            None => std::env::current_exe()?,
        },
        work_dir: args
            .work_dir
            .unwrap_or_else(|| std::env::temp_dir().join("floodwall-bench-surfaces")),
        rounds: args.rounds.max(1),
        seconds: args.seconds,
        background: args.background,
        attacks: args.attacks,
        requests: args.requests.max(1),
    };
    let result = run(&options)?;
    let command = format!(
        "floodwall bench surfaces --rounds {} --seconds {} --background {} --attacks {} --requests {}",
        options.rounds, options.seconds, options.background, options.attacks, options.requests
    );
    let section = markdown(&result, &command);
    print!("{section}");
    if let Some(out) = args.out {
        std::fs::write(&out, &section).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct HuntArgs {
    /// Distinct destinations probed in all (one probe each).
    #[arg(long, default_value_t = 10_000_000)]
    pub destinations: u64,
    /// Scanning hosts the probes come from (beyond `[hunt] max_hosts` = 100,000, eviction runs).
    #[arg(long, default_value_t = 50_000)]
    pub scanners: u64,
    /// Campaigns' signatures stored.
    #[arg(long, default_value_t = 100_000)]
    pub campaigns: u64,
    /// Distinct sources of each stored attack.
    #[arg(long, default_value_t = 500)]
    pub sources: u64,
    /// Write the result as a Markdown section to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Run one part in this process and print its JSON (the parent runs each in a child).
    #[arg(long, hide = true, value_parser = ["scan", "campaigns"])]
    pub part: Option<String>,
}

pub fn hunt(args: HuntArgs) -> Result<()> {
    use floodwall_lab::bench::hunt;
    let dir = std::env::temp_dir().join("floodwall-bench-hunt");
    match args.part.as_deref() {
        Some("scan") => {
            let r = hunt::scan(args.destinations, args.scanners.max(1));
            println!("{}", serde_json::to_string(&r)?);
            return Ok(());
        }
        Some(_) => {
            let r = hunt::campaigns(args.campaigns.max(1), args.sources.max(1), &dir)?;
            println!("{}", serde_json::to_string(&r)?);
            return Ok(());
        }
        None => {}
    }
    let me = std::env::current_exe()?;
    let common = |part: &str| {
        vec![
            "--part".to_string(),
            part.to_string(),
            "--destinations".into(),
            args.destinations.to_string(),
            "--scanners".into(),
            args.scanners.to_string(),
            "--campaigns".into(),
            args.campaigns.to_string(),
            "--sources".into(),
            args.sources.to_string(),
        ]
    };
    let scan: hunt::ScanResult = hunt::child(&me, &common("scan"))?;
    let campaigns: hunt::CampaignResult = hunt::child(&me, &common("campaigns"))?;
    let command = format!(
        "floodwall bench hunt --destinations {} --scanners {} --campaigns {} --sources {}",
        args.destinations, args.scanners, args.campaigns, args.sources
    );
    let section = hunt::markdown(&scan, &campaigns, &command);
    print!("{section}");
    if let Some(out) = args.out {
        std::fs::write(&out, &section).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}
