//! `floodwall bench compare`: Floodwall's daemon (`floodwall run`) beside FastNetMon Community on
//! identical sFlow streams, on this machine, in one run — ingest, detection latency and peak
//! memory — plus Floodwall's decode speed per protocol.
//!
//! Every stream comes from the same sender program (`floodwall bench send`, a separate process),
//! and the two daemons take turns rung by rung (ingest, memory) or receive each datagram
//! together (latency), so machine noise hits both alike. [`super::report`] turns the result
//! into the table and BENCHMARKS.md.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::child::{run_send, spawn_send};
use super::daemon::{Daemon, Invocation, Programs, Setup, StopTotals, Tool, THRESHOLD_PPS};
use super::hash::splitmix;
use super::measure::{
    decode_throughput, DecodeResult, COLLECTOR_THREAD, ENGINE_THREAD, LOSS_FREE_PCT,
};
use super::procfs::{self, threads_cpu_since, ThreadCpu};
use super::sender::{unix_us, SendReport};
use super::stream::{MILLION_DATAGRAMS, SAMPLES_PER_DATAGRAM};
use super::synthetic::Workload;
use super::Rate;
use floodwall_daemon::clock::unix_ms;
use floodwall_daemon::units::compact_si;
use floodwall_wire::Protocol;

/// Monitored network of the ingest ladder: 131,072 hosts, so that even the fastest rung keeps
/// every host below the limits (~30 samples/s, 30 kpps each at 4 M samples/s).
pub const INGEST_NETWORK: &str = "10.0.0.0/15";
/// A million monitored hosts.
pub const HOSTS_NETWORK: &str = "10.0.0.0/12";
/// The latency and spoofed-flood networks: 512 hosts.
pub const DOC_NETWORKS: [&str; 2] = ["198.51.100.0/24", "203.0.113.0/24"];
pub const SPOOFED_VICTIM: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 77);
/// A second, looser loss criterion for the ingest ladder, in percent.
pub const SMALL_LOSS_PCT: f64 = 1.0;
/// How long a latency trial waits for a detection after the attack starts.
pub const DETECTION_TIMEOUT: Duration = Duration::from_secs(12);
/// Whole seconds of background before the second in which a latency trial's attack starts.
const BACKGROUND_SECONDS: u64 = 2;
/// How often the latency trial polls the events file and the notify log.
const POLL: Duration = Duration::from_millis(2);

/// Which measurements to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Parts {
    pub decode: bool,
    pub ingest: bool,
    pub latency: bool,
    pub rss: bool,
}

/// What to run and how long.
#[derive(Debug, Clone)]
pub struct Options {
    pub programs: Programs,
    pub work_dir: PathBuf,
    pub parts: Parts,
    pub decode_seconds: f64,
    /// Ingest ladder, in sFlow samples per second (`max`: unpaced).
    pub rates: Vec<Rate>,
    pub rung_seconds: f64,
    /// Times the whole ladder is run.
    pub repeats: usize,
    /// Latency trials per attack size.
    pub trials: usize,
    /// Attack sizes, as multiples of the pps threshold.
    pub magnitudes: Vec<f64>,
    /// Background of the latency trials, samples per second.
    pub background: f64,
    /// Samples per second of the memory streams.
    pub rss_rate: f64,
    /// Rounds over the million hosts in the memory measurement.
    pub hosts_rounds: u64,
    pub seed: u64,
}

impl Options {
    /// The full run: about 10 minutes on a 2-core machine.
    pub fn full(programs: Programs, work_dir: PathBuf) -> Options {
        Options {
            programs,
            work_dir,
            parts: Parts {
                decode: true,
                ingest: true,
                latency: true,
                rss: true,
            },
            decode_seconds: 2.0,
            rates: [
                "10k", "20k", "50k", "100k", "200k", "500k", "1M", "2M", "max",
            ]
            .iter()
            .map(|r| r.parse().expect("valid rate"))
            .collect(),
            rung_seconds: 3.0,
            repeats: 3,
            trials: 10,
            magnitudes: vec![2.0, 10.0],
            background: 2000.0,
            rss_rate: 200_000.0,
            hosts_rounds: 2,
            seed: unix_ms(),
        }
    }

    /// A short run for development: one ladder of four 1-second rungs, three trials per size.
    pub fn quick(programs: Programs, work_dir: PathBuf) -> Options {
        Options {
            decode_seconds: 0.5,
            rates: ["50k", "200k", "1M", "max"]
                .iter()
                .map(|r| r.parse().expect("valid rate"))
                .collect(),
            rung_seconds: 1.0,
            repeats: 1,
            trials: 3,
            hosts_rounds: 1,
            ..Options::full(programs, work_dir)
        }
    }
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub parts: Parts,
    pub decode: Vec<DecodeResult>,
    pub ingest: Option<Ingest>,
    pub latency: Option<Latency>,
    pub rss: Option<Memory>,
    /// Every daemon started, with its command line and configuration.
    pub invocations: Vec<Invocation>,
    /// The sender commands, one per kind of stream.
    pub sender_commands: Vec<String>,
    pub seconds: f64,
    /// The machine's 1-minute load average when the run started and when it ended: what else
    /// was running.
    pub load_start: Option<f64>,
    pub load_end: Option<f64>,
}

/// One rung of the ingest ladder for one tool.
#[derive(Debug, Clone, Serialize)]
pub struct Rung {
    pub tool: Tool,
    pub repeat: usize,
    /// Samples per second asked for; `None`: unpaced.
    pub target: Option<f64>,
    pub sent: SendReport,
    /// Samples the daemon counted: Floodwall's engine records (logged at SIGTERM), FastNetMon's
    /// `fastnetmon_total_simple_packets_processed`.
    pub counted: u64,
    pub loss_pct: f64,
    /// Kernel drops of the daemon's socket during the rung (`/proc/net/udp`).
    pub kernel_drops: u64,
    /// CPU seconds of the daemon process over the rung and its drain.
    pub cpu_seconds: f64,
    /// ... of which in the kernel (receiving datagrams, mostly).
    pub system_seconds: f64,
    pub cpu_per_million: Option<f64>,
    /// Floodwall only: the part of `cpu_seconds` its collector and engine threads used.
    pub threads: Option<ThreadSplit>,
    /// Floodwall's own counters at SIGTERM.
    pub floodwall_totals: Option<StopTotals>,
}

/// Floodwall's CPU over a rung by thread (`/proc/PID/task`), kernel time included.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ThreadSplit {
    /// The collector threads: receive, decode, hand batches over.
    pub collector_seconds: f64,
    /// ... of which in the kernel (the receive path).
    pub collector_system_seconds: f64,
    pub collector_per_million: Option<f64>,
    /// The engine thread: accounting, detection.
    pub engine_seconds: f64,
    pub engine_per_million: Option<f64>,
}

impl ThreadSplit {
    fn between(before: &[ThreadCpu], after: &[ThreadCpu], counted: u64) -> ThreadSplit {
        let collector = threads_cpu_since(before, after, COLLECTOR_THREAD);
        let engine = threads_cpu_since(before, after, ENGINE_THREAD).total();
        let per_million = |seconds: f64| (counted > 0).then(|| seconds * 1e6 / counted as f64);
        ThreadSplit {
            collector_seconds: collector.total(),
            collector_system_seconds: collector.system,
            collector_per_million: per_million(collector.total()),
            engine_seconds: engine,
            engine_per_million: per_million(engine),
        }
    }
}

impl Rung {
    /// Samples per second the sender achieved.
    pub fn sent_rate(&self) -> f64 {
        self.sent.records as f64 / self.sent.seconds.max(1e-9)
    }

    pub fn loss_free(&self) -> bool {
        self.counted > 0 && self.loss_pct < LOSS_FREE_PCT
    }
}

/// The ingest ladder of both tools.
#[derive(Debug, Clone, Serialize)]
pub struct Ingest {
    pub rungs: Vec<Rung>,
    pub tools: Vec<IngestSummary>,
    /// The highest target rate at which both tools lost under [`SMALL_LOSS_PCT`] in most
    /// repeats (else the lowest rate): where their CPU cost per sample is compared.
    pub common_rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IngestSummary {
    pub tool: Tool,
    /// Per repeat: the highest achieved rate (samples/s) of a rung losing under 0.1 %.
    pub loss_free: Vec<f64>,
    pub median_loss_free: f64,
    /// Per repeat: the highest achieved rate of a rung losing under [`SMALL_LOSS_PCT`].
    pub small_loss: Vec<f64>,
    pub median_small_loss: f64,
    /// In a majority of repeats the fastest (unpaced) rung was loss-free: the sender, not the
    /// daemon, was the limit.
    pub sender_bound: bool,
    /// Samples counted per CPU-second of the daemon at its most efficient rung (lossy rungs
    /// included: a saturated daemon shows its capacity), median over repeats: what one core
    /// of it takes.
    pub records_per_cpu_second: f64,
    /// Share of the daemon's CPU spent in the kernel at that rung.
    pub system_share: f64,
    /// CPU seconds per million samples at [`Ingest::common_rate`], median over repeats.
    pub cpu_per_million_common: Option<f64>,
}

/// One latency trial: one attack, both daemons fed the same datagrams.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    pub magnitude: f64,
    pub attack_pps: f64,
    pub victim: Ipv4Addr,
    /// Unix ms when the first datagram with an attack sample was sent.
    pub attack_sent_ms: f64,
    /// Where in its wall-clock second the attack started (ms): Floodwall's buckets are
    /// wall-clock seconds.
    pub phase_ms: f64,
    pub floodwall_ms: Option<f64>,
    pub fastnetmon_ms: Option<f64>,
}

impl Trial {
    pub fn latency(&self, tool: Tool) -> Option<f64> {
        match tool {
            Tool::Floodwall => self.floodwall_ms,
            Tool::Fastnetmon => self.fastnetmon_ms,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub trials: Vec<Trial>,
    pub summaries: Vec<LatencySummary>,
    pub background_samples_per_s: f64,
}

/// Latency of one tool for one attack size.
#[derive(Debug, Clone, Serialize)]
pub struct LatencySummary {
    pub tool: Tool,
    pub magnitude: f64,
    pub trials: usize,
    pub detected: usize,
    pub median_ms: Option<f64>,
    pub p95_ms: Option<f64>,
}

/// Peak memory of one daemon on one stream.
#[derive(Debug, Clone, Serialize)]
pub struct RssRun {
    pub tool: Tool,
    /// `hosts` (1 M active hosts) or `spoofed` (1 M-source flood at one host).
    pub scenario: String,
    /// Seconds from start to a bound socket.
    pub startup_seconds: f64,
    /// VmHWM once started, before any traffic (FastNetMon preallocates per monitored address).
    pub idle_bytes: u64,
    pub peak_bytes: u64,
    pub sent: SendReport,
    pub counted: u64,
    /// Whether it reported the flood's victim (spoofed) — `None` for the hosts stream.
    pub detected: Option<bool>,
    pub floodwall_totals: Option<StopTotals>,
    /// FastNetMon's own estimate of its counters' memory.
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub runs: Vec<RssRun>,
    pub rate: f64,
}

impl Comparison {
    pub fn rss(&self, tool: Tool, scenario: &str) -> Option<&RssRun> {
        self.rss
            .as_ref()?
            .runs
            .iter()
            .find(|r| r.tool == tool && r.scenario == scenario)
    }
}

/// Progress goes to stderr.
fn progress(message: impl AsRef<str>) {
    eprintln!("bench compare: {}", message.as_ref());
}

/// Runs the selected measurements.
pub fn run(options: &Options) -> Result<Comparison> {
    let started = Instant::now();
    if options.parts.ingest || options.parts.latency || options.parts.rss {
        options.programs.require_fastnetmon()?;
    }
    std::fs::create_dir_all(&options.work_dir)
        .with_context(|| format!("creating {}", options.work_dir.display()))?;
    let mut comparison = Comparison {
        parts: options.parts,
        decode: Vec::new(),
        ingest: None,
        latency: None,
        rss: None,
        invocations: Vec::new(),
        sender_commands: Vec::new(),
        seconds: 0.0,
        load_start: procfs::load_average(),
        load_end: None,
    };
    if options.parts.decode {
        let now_ms = unix_ms();
        for protocol in Protocol::ALL {
            progress(format!(
                "decoding {} for {} s",
                protocol.name(),
                options.decode_seconds
            ));
            let workload = Workload::generate(protocol, 256, now_ms);
            comparison.decode.push(decode_throughput(
                &workload,
                Duration::from_secs_f64(options.decode_seconds),
            ));
        }
    }
    if options.parts.ingest {
        comparison.ingest = Some(ingest(options, &mut comparison)?);
    }
    if options.parts.latency {
        comparison.latency = Some(latency(options, &mut comparison)?);
    }
    if options.parts.rss {
        comparison.rss = Some(memory(options, &mut comparison)?);
    }
    comparison.seconds = started.elapsed().as_secs_f64();
    comparison.load_end = procfs::load_average();
    Ok(comparison)
}

/// Records how a daemon was started, once per tool and setup.
fn remember(comparison: &mut Comparison, daemon: &Daemon) {
    let known = comparison
        .invocations
        .iter()
        .any(|i| i.tool == daemon.tool && i.setup == daemon.invocation.setup);
    if !known {
        comparison.invocations.push(daemon.invocation.clone());
    }
}

fn remember_sender(comparison: &mut Comparison, exe: &std::path::Path, args: &[String]) {
    let line = format!("{} bench send {}", exe.display(), args.join(" "));
    let kind = args
        .iter()
        .position(|a| a == "--scenario")
        .and_then(|i| args.get(i + 1));
    let known = comparison
        .sender_commands
        .iter()
        .any(|c| kind.is_some_and(|k| c.contains(&format!("--scenario {k} "))));
    if !known {
        comparison.sender_commands.push(line);
    }
}

/// The two tools in the order they take their turn `i`: alternating, so neither always runs
/// right after the other's noise.
fn order(i: usize) -> [Tool; 2] {
    if i.is_multiple_of(2) {
        [Tool::Floodwall, Tool::Fastnetmon]
    } else {
        [Tool::Fastnetmon, Tool::Floodwall]
    }
}

fn ingest(options: &Options, comparison: &mut Comparison) -> Result<Ingest> {
    let setup = Setup::new("ingest", &[INGEST_NETWORK]);
    let mut rungs = Vec::new();
    for repeat in 0..options.repeats {
        for (i, &rate) in options.rates.iter().enumerate() {
            for tool in order(repeat + i) {
                progress(format!(
                    "ingest {}/{}: {tool} at {} samples/s for {} s",
                    repeat + 1,
                    options.repeats,
                    rate_label(rate),
                    options.rung_seconds
                ));
                let rung = ingest_rung(options, comparison, tool, &setup, rate, repeat)?;
                progress(format!(
                    "  sent {} samples ({:.0}/s), counted {}, loss {:.2} %, {} kernel drops, {:.2} CPU-s",
                    rung.sent.records,
                    rung.sent_rate(),
                    rung.counted,
                    rung.loss_pct,
                    rung.kernel_drops,
                    rung.cpu_seconds
                ));
                rungs.push(rung);
            }
        }
    }
    Ok(summarize_ingest(rungs, options.repeats))
}

fn ingest_rung(
    options: &Options,
    comparison: &mut Comparison,
    tool: Tool,
    setup: &Setup,
    rate: Rate,
    repeat: usize,
) -> Result<Rung> {
    let daemon = Daemon::start(tool, setup, &options.programs, &options.work_dir)?;
    remember(comparison, &daemon);
    std::thread::sleep(Duration::from_millis(300));
    let cpu_before = daemon.cpu_times()?;
    let threads_before = daemon.thread_cpu_times()?;
    let drops_before = daemon.socket()?.drops;
    let processed_before = match tool {
        Tool::Fastnetmon => daemon.fastnetmon_processed()?,
        Tool::Floodwall => 0,
    };
    let datagram_rate = match rate {
        Rate::PerSecond(samples) => Rate::PerSecond(samples / SAMPLES_PER_DATAGRAM as f64),
        Rate::Max => Rate::Max,
    };
    let args = send_args(
        daemon.port,
        &["--scenario", "ingest", "--network", INGEST_NETWORK],
        datagram_rate,
        options.rung_seconds,
        None,
    );
    remember_sender(comparison, &options.programs.floodwall, &args);
    let sent: SendReport = parse_report(&run_send(
        &options.programs.floodwall,
        &args,
        options.rung_seconds,
    )?)?;
    drain(&daemon)?;
    let cpu = daemon.cpu_times()?.since(&cpu_before);
    let threads_after = daemon.thread_cpu_times()?;
    let cpu_seconds = cpu.total();
    let kernel_drops = daemon.socket()?.drops - drops_before;
    let processed = match tool {
        Tool::Fastnetmon => Some(daemon.fastnetmon_processed()? - processed_before),
        Tool::Floodwall => None,
    };
    let totals = daemon.stop()?;
    let counted = processed.or(totals.map(|t| t.records)).unwrap_or(0);
    Ok(Rung {
        tool,
        repeat,
        target: rate.per_second(),
        loss_pct: loss_pct(sent.records, counted),
        kernel_drops,
        cpu_per_million: (counted > 0).then(|| cpu_seconds * 1e6 / counted as f64),
        cpu_seconds,
        system_seconds: cpu.system,
        threads: (tool == Tool::Floodwall)
            .then(|| ThreadSplit::between(&threads_before, &threads_after, counted)),
        counted,
        sent,
        floodwall_totals: totals,
    })
}

/// Waits until the daemon's socket queue is empty (at most 3 s), then a little longer for
/// what it has read to be counted.
fn drain(daemon: &Daemon) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(3);
    while daemon.socket()?.rx_queue > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    Ok(())
}

pub fn loss_pct(sent: u64, counted: u64) -> f64 {
    100.0 * sent.saturating_sub(counted) as f64 / sent.max(1) as f64
}

fn send_args(
    port: u16,
    scenario: &[&str],
    rate: Rate,
    seconds: f64,
    max_datagrams: Option<u64>,
) -> Vec<String> {
    let mut args: Vec<String> = ["--to", &format!("127.0.0.1:{port}"), "--protocol", "sflow"]
        .iter()
        .chain(scenario)
        .map(|s| s.to_string())
        .collect();
    args.extend([
        "--rate".to_string(),
        rate.to_string(),
        "--seconds".to_string(),
        seconds.to_string(),
    ]);
    if let Some(max) = max_datagrams {
        args.extend(["--max-datagrams".to_string(), max.to_string()]);
    }
    args
}

fn parse_report<T: serde::de::DeserializeOwned>(line: &str) -> Result<T> {
    serde_json::from_str(line).with_context(|| format!("reading the sender's report {line:?}"))
}

fn rate_label(rate: Rate) -> String {
    match rate {
        Rate::PerSecond(r) => compact_si(r),
        Rate::Max => "max".to_string(),
    }
}

/// Loss-free rates, sender limits and CPU costs per tool.
pub fn summarize_ingest(rungs: Vec<Rung>, repeats: usize) -> Ingest {
    let targets: Vec<Option<f64>> = {
        let mut t: Vec<Option<f64>> = Vec::new();
        for r in &rungs {
            if !t.contains(&r.target) {
                t.push(r.target);
            }
        }
        t
    };
    let of = |tool: Tool, target: Option<f64>| -> Vec<&Rung> {
        rungs
            .iter()
            .filter(|r| r.tool == tool && r.target == target)
            .collect()
    };
    let mostly_under = |tool: Tool, target: Option<f64>, pct: f64| {
        let r = of(tool, target);
        !r.is_empty()
            && 2 * r
                .iter()
                .filter(|r| r.counted > 0 && r.loss_pct < pct)
                .count()
                > r.len()
    };
    // Targets in rising order, unpaced last.
    let mut rising = targets.clone();
    rising.sort_by(|a, b| match (a, b) {
        (Some(a), Some(b)) => a.total_cmp(b),
        (None, None) => std::cmp::Ordering::Equal,
        (None, _) => std::cmp::Ordering::Greater,
        (_, None) => std::cmp::Ordering::Less,
    });
    let paced: Vec<f64> = rising.iter().filter_map(|&t| t).collect();
    let common = paced
        .iter()
        .rev()
        .find(|&&t| {
            Tool::BOTH
                .iter()
                .all(|&tool| mostly_under(tool, Some(t), SMALL_LOSS_PCT))
        })
        .or(paced.first())
        .copied();
    let tools = Tool::BOTH
        .iter()
        .map(|&tool| {
            let mut loss_free = Vec::new();
            let mut small_loss = Vec::new();
            let mut efficiency = Vec::new();
            let mut system = Vec::new();
            for repeat in 0..repeats {
                let mine = rungs
                    .iter()
                    .filter(|r| r.tool == tool && r.repeat == repeat);
                let fastest_under = |pct: f64| {
                    mine.clone()
                        .filter(|r| r.counted > 0 && r.loss_pct < pct)
                        .map(Rung::sent_rate)
                        .fold(0.0, f64::max)
                };
                loss_free.push(fastest_under(LOSS_FREE_PCT));
                small_loss.push(fastest_under(SMALL_LOSS_PCT));
                let best = mine
                    .filter(|r| r.counted > 0 && r.cpu_seconds > 0.0)
                    .max_by(|a, b| {
                        (a.counted as f64 / a.cpu_seconds)
                            .total_cmp(&(b.counted as f64 / b.cpu_seconds))
                    });
                if let Some(r) = best {
                    efficiency.push(r.counted as f64 / r.cpu_seconds);
                    system.push(r.system_seconds / r.cpu_seconds);
                }
            }
            let cpu_common: Vec<f64> = of(tool, common)
                .iter()
                .filter_map(|r| r.cpu_per_million)
                .collect();
            IngestSummary {
                tool,
                median_loss_free: median(&loss_free).unwrap_or(0.0),
                loss_free,
                median_small_loss: median(&small_loss).unwrap_or(0.0),
                small_loss,
                sender_bound: rising.last() == Some(&None)
                    && mostly_under(tool, None, LOSS_FREE_PCT),
                records_per_cpu_second: median(&efficiency).unwrap_or(0.0),
                system_share: median(&system).unwrap_or(0.0),
                cpu_per_million_common: median(&cpu_common),
            }
        })
        .collect();
    Ingest {
        rungs,
        tools,
        common_rate: common,
    }
}

fn latency(options: &Options, comparison: &mut Comparison) -> Result<Latency> {
    let setup = Setup::new("latency", &DOC_NETWORKS);
    let mut floodwall = Daemon::start(
        Tool::Floodwall,
        &setup,
        &options.programs,
        &options.work_dir,
    )?;
    let mut fastnetmon = Daemon::start(
        Tool::Fastnetmon,
        &setup,
        &options.programs,
        &options.work_dir,
    )?;
    remember(comparison, &floodwall);
    remember(comparison, &fastnetmon);
    std::thread::sleep(Duration::from_secs(1));
    let mut trials = Vec::new();
    let mut n = 0u64;
    // Where in its wall-clock second each attack starts: one instant drawn at random in each
    // 1/trials of a second (stratified), in shuffled order, so medians and p95 reflect the
    // whole second rather than the luck of ten draws.
    let orders: Vec<Vec<usize>> = (0..options.magnitudes.len())
        .map(|i| shuffled(options.trials, options.seed ^ (i as u64) << 32))
        .collect();
    // strata[t][m]: the stratum of trial t of attack size m.
    let strata: Vec<Vec<usize>> = (0..options.trials)
        .map(|t| orders.iter().map(|order| order[t]).collect())
        .collect();
    for (t, stratum) in strata.iter().enumerate() {
        for i in 0..options.magnitudes.len() {
            // Alternate the order of sizes too.
            let m = (i + t) % options.magnitudes.len();
            let magnitude = options.magnitudes[m];
            // A fresh victim every trial: FastNetMon keeps a host banned for 1900 s.
            let victim = victim(n);
            let r = splitmix(options.seed ^ n);
            n += 1;
            let phase = (stratum[m] as f64 + unit(r)) / options.trials as f64;
            let attack_at_ms =
                ((unix_ms() / 1000 + 1 + BACKGROUND_SECONDS) * 1000) as f64 + 1000.0 * phase;
            progress(format!(
                "latency trial {}/{}: {magnitude}x threshold at {victim}, {:.0} ms into a second",
                t + 1,
                options.trials,
                1000.0 * phase
            ));
            let trial = latency_trial(
                options,
                comparison,
                [&mut floodwall, &mut fastnetmon],
                magnitude,
                victim,
                attack_at_ms,
                r,
            )?;
            progress(format!(
                "  Floodwall {}, FastNetMon {}",
                ms_label(trial.floodwall_ms),
                ms_label(trial.fastnetmon_ms)
            ));
            trials.push(trial);
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    floodwall.stop()?;
    fastnetmon.stop()?;
    let summaries = options
        .magnitudes
        .iter()
        .flat_map(|&m| Tool::BOTH.map(|tool| summarize_latency(&trials, tool, m)))
        .collect();
    Ok(Latency {
        trials,
        summaries,
        background_samples_per_s: options.background,
    })
}

/// A uniform number in [0, 1) from a hash.
fn unit(r: u64) -> f64 {
    (r >> 11) as f64 / (1u64 << 53) as f64
}

/// 0..n in an order shuffled by `seed` (Fisher–Yates).
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (splitmix(seed ^ i as u64) % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

/// Victims in turn: 203.0.113.10, 198.51.100.10, 203.0.113.11, ...
fn victim(n: u64) -> Ipv4Addr {
    let host = 10 + (n / 2) as u8;
    if n.is_multiple_of(2) {
        Ipv4Addr::new(203, 0, 113, host)
    } else {
        Ipv4Addr::new(198, 51, 100, host)
    }
}

fn ms_label(ms: Option<f64>) -> String {
    ms.map_or("not detected".to_string(), |ms| format!("{ms:.0} ms"))
}

/// One attack against `victim` while both daemons receive the same datagrams; ends when both
/// reported it or [`DETECTION_TIMEOUT`] after the attack started.
fn latency_trial(
    options: &Options,
    comparison: &mut Comparison,
    daemons: [&mut Daemon; 2],
    magnitude: f64,
    victim: Ipv4Addr,
    attack_at_ms: f64,
    seed: u64,
) -> Result<Trial> {
    let attack_pps = magnitude * THRESHOLD_PPS;
    let seconds =
        (attack_at_ms - unix_ms() as f64).max(0.0) / 1000.0 + DETECTION_TIMEOUT.as_secs_f64();
    let mut args = Vec::new();
    for d in daemons.iter() {
        args.extend(["--to".to_string(), format!("127.0.0.1:{}", d.port)]);
    }
    args.extend(
        [
            "--protocol",
            "sflow",
            "--scenario",
            "latency",
            "--background",
            &options.background.to_string(),
            "--attack-pps",
            &attack_pps.to_string(),
            "--victim",
            &victim.to_string(),
            "--attack-at",
            &format!("{attack_at_ms:.3}"),
            "--seconds",
            &format!("{seconds:.6}"),
            "--seed",
            &seed.to_string(),
        ]
        .map(String::from),
    );
    remember_sender(comparison, &options.programs.floodwall, &args);
    let [floodwall, fastnetmon] = daemons;
    // Forget what earlier trials reported.
    floodwall.new_detections()?;
    fastnetmon.new_detections()?;
    let (mut child, lines) = spawn_send(&options.programs.floodwall, &args)?;
    let started = Instant::now();
    let mut attack_sent_us = None::<u64>;
    let (mut floodwall_at, mut fastnetmon_at) = (None::<f64>, None::<f64>);
    let hard_deadline = Duration::from_secs_f64(seconds) + Duration::from_secs(5);
    loop {
        while let Ok(line) = lines.try_recv() {
            if let Ok(mark) = serde_json::from_str::<AttackMark>(&line) {
                attack_sent_us = Some(mark.attack_sent_unix_us);
            }
        }
        first_detection(floodwall, victim, &mut floodwall_at)?;
        first_detection(fastnetmon, victim, &mut fastnetmon_at)?;
        let both = floodwall_at.is_some() && fastnetmon_at.is_some() && attack_sent_us.is_some();
        let exited = child.try_wait()?.is_some();
        let timed_out = attack_sent_us
            .is_some_and(|us| unix_us().saturating_sub(us) > DETECTION_TIMEOUT.as_micros() as u64);
        if both || timed_out || started.elapsed() > hard_deadline {
            break;
        }
        if exited && lines.is_empty() {
            // One last look at what the daemons wrote.
            std::thread::sleep(Duration::from_millis(200));
            first_detection(floodwall, victim, &mut floodwall_at)?;
            first_detection(fastnetmon, victim, &mut fastnetmon_at)?;
            break;
        }
        std::thread::sleep(POLL);
    }
    // The sender is ours: stop it by its PID.
    let _ = child.kill();
    let _ = child.wait();
    let attack_sent_ms =
        attack_sent_us.context("the sender never started the attack")? as f64 / 1000.0;
    Ok(Trial {
        magnitude,
        attack_pps,
        victim,
        attack_sent_ms,
        phase_ms: attack_sent_ms % 1000.0,
        floodwall_ms: floodwall_at.map(|at| at - attack_sent_ms),
        fastnetmon_ms: fastnetmon_at.map(|at| at - attack_sent_ms),
    })
}

/// Sets `at` to the time of the daemon's first new report of `victim`, unless already set.
fn first_detection(daemon: &mut Daemon, victim: Ipv4Addr, at: &mut Option<f64>) -> Result<()> {
    for d in daemon.new_detections()? {
        if d.target == victim && at.is_none() {
            *at = Some(d.at_ms);
        }
    }
    Ok(())
}

/// The line the latency sender prints when the attack starts.
#[derive(Debug, Clone, Copy, serde::Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AttackMark {
    pub attack_sent_unix_us: u64,
}

pub fn summarize_latency(trials: &[Trial], tool: Tool, magnitude: f64) -> LatencySummary {
    let mine: Vec<&Trial> = trials.iter().filter(|t| t.magnitude == magnitude).collect();
    let values: Vec<f64> = mine.iter().filter_map(|t| t.latency(tool)).collect();
    LatencySummary {
        tool,
        magnitude,
        trials: mine.len(),
        detected: values.len(),
        median_ms: median(&values),
        p95_ms: percentile(&values, 95.0),
    }
}

fn memory(options: &Options, comparison: &mut Comparison) -> Result<Memory> {
    let victim = SPOOFED_VICTIM.to_string();
    let scenarios: [(&str, Setup, Vec<&str>, u64); 2] = [
        (
            "hosts",
            Setup::new("hosts", &[HOSTS_NETWORK]),
            vec!["--scenario", "hosts", "--network", HOSTS_NETWORK],
            options.hosts_rounds * MILLION_DATAGRAMS,
        ),
        (
            "spoofed",
            Setup::new("spoofed", &DOC_NETWORKS),
            vec!["--scenario", "spoofed", "--victim", &victim],
            MILLION_DATAGRAMS,
        ),
    ];
    let mut runs = Vec::new();
    for (i, (name, setup, scenario, datagrams)) in scenarios.iter().enumerate() {
        for tool in order(i) {
            progress(format!("peak memory: {tool}, {name} stream"));
            let started = Instant::now();
            let daemon = Daemon::start(tool, setup, &options.programs, &options.work_dir)?;
            let startup_seconds = started.elapsed().as_secs_f64();
            remember(comparison, &daemon);
            let mut daemon = daemon;
            std::thread::sleep(Duration::from_secs(1));
            let idle_bytes = daemon.peak_rss_bytes()?;
            let datagram_rate = options.rss_rate / SAMPLES_PER_DATAGRAM as f64;
            let seconds = *datagrams as f64 / datagram_rate + 1.0;
            let args = send_args(
                daemon.port,
                scenario,
                Rate::PerSecond(datagram_rate),
                seconds,
                Some(*datagrams),
            );
            remember_sender(comparison, &options.programs.floodwall, &args);
            let sent: SendReport =
                parse_report(&run_send(&options.programs.floodwall, &args, seconds)?)?;
            drain(&daemon)?;
            // Let both close their second and (spoofed) report the attack.
            std::thread::sleep(Duration::from_secs(2));
            let peak_bytes = daemon.peak_rss_bytes()?;
            let detected = (*name == "spoofed").then(|| {
                daemon
                    .new_detections()
                    .map(|d| d.iter().any(|d| d.target == SPOOFED_VICTIM))
                    .unwrap_or(false)
            });
            let processed = match tool {
                Tool::Fastnetmon => Some(daemon.fastnetmon_processed()?),
                Tool::Floodwall => None,
            };
            let note = daemon.preallocation_note();
            let totals = daemon.stop()?;
            let run = RssRun {
                tool,
                scenario: name.to_string(),
                startup_seconds,
                idle_bytes,
                peak_bytes,
                counted: processed.or(totals.map(|t| t.records)).unwrap_or(0),
                sent,
                detected,
                floodwall_totals: totals,
                note,
            };
            progress(format!(
                "  idle {:.1} MiB, peak {:.1} MiB, {} of {} samples counted",
                mib(run.idle_bytes),
                mib(run.peak_bytes),
                run.counted,
                run.sent.records
            ));
            runs.push(run);
        }
    }
    Ok(Memory {
        runs,
        rate: options.rss_rate,
    })
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Nearest-rank percentile: the smallest value with at least `p` % of the values at or below
/// it (for ten values, p95 is the largest).
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    Some(v[rank.min(v.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_nearest_rank_percentiles() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&ten, 95.0), Some(10.0));
        assert_eq!(percentile(&ten, 50.0), Some(5.0));
        let hundred: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&hundred, 95.0), Some(95.0));
        assert_eq!(percentile(&[7.0], 95.0), Some(7.0));
    }

    fn rung(tool: Tool, repeat: usize, target: Option<f64>, sent: u64, counted: u64) -> Rung {
        let seconds = 1.0;
        Rung {
            tool,
            repeat,
            target,
            sent: SendReport {
                protocol: "sflow5".into(),
                target_rate: target.map(|t| t / 10.0),
                datagrams: sent / 10,
                records: sent,
                bytes: sent * 200,
                seconds,
                achieved_rate: sent as f64 / 10.0,
                send_errors: 0,
            },
            counted,
            loss_pct: loss_pct(sent, counted),
            kernel_drops: sent - counted,
            cpu_seconds: counted as f64 / 1e6 * if tool == Tool::Floodwall { 0.2 } else { 1.5 },
            system_seconds: counted as f64 / 1e6 * 0.1,
            cpu_per_million: Some(if tool == Tool::Floodwall { 0.2 } else { 1.5 }),
            threads: None,
            floodwall_totals: None,
        }
    }

    #[test]
    fn ingest_summary_finds_loss_free_rates_and_the_common_rate() {
        let mut rungs = Vec::new();
        for repeat in 0..3 {
            rungs.push(rung(Tool::Floodwall, repeat, Some(100e3), 100_000, 100_000));
            rungs.push(rung(
                Tool::Floodwall,
                repeat,
                Some(1e6),
                1_000_000,
                1_000_000,
            ));
            rungs.push(rung(Tool::Floodwall, repeat, None, 2_400_000, 2_400_000));
            // FastNetMon: loss-free at 100 k in two repeats of three, never above.
            let fnm_100k = if repeat == 1 { 99_000 } else { 100_000 };
            rungs.push(rung(
                Tool::Fastnetmon,
                repeat,
                Some(100e3),
                100_000,
                fnm_100k,
            ));
            rungs.push(rung(
                Tool::Fastnetmon,
                repeat,
                Some(1e6),
                1_000_000,
                600_000,
            ));
            rungs.push(rung(Tool::Fastnetmon, repeat, None, 2_400_000, 610_000));
        }
        let ingest = summarize_ingest(rungs, 3);
        assert_eq!(ingest.common_rate, Some(100e3));
        let fw = &ingest.tools[0];
        assert_eq!(fw.tool, Tool::Floodwall);
        assert_eq!(fw.loss_free, vec![2_400_000.0; 3]);
        assert!(fw.sender_bound);
        assert!((fw.records_per_cpu_second - 5e6).abs() < 1.0);
        assert_eq!(fw.cpu_per_million_common, Some(0.2));
        let fnm = &ingest.tools[1];
        assert_eq!(fnm.loss_free, vec![100_000.0, 0.0, 100_000.0]);
        assert_eq!(fnm.median_loss_free, 100_000.0);
        assert_eq!(fnm.small_loss, vec![100_000.0, 0.0, 100_000.0]);
        assert!(!fnm.sender_bound);
        assert_eq!(fnm.cpu_per_million_common, Some(1.5));
    }

    #[test]
    fn latency_summary_per_tool_and_size() {
        let trial = |magnitude, fw: Option<f64>, fnm: Option<f64>| Trial {
            magnitude,
            attack_pps: magnitude * THRESHOLD_PPS,
            victim: Ipv4Addr::new(203, 0, 113, 10),
            attack_sent_ms: 1e12,
            phase_ms: 0.0,
            floodwall_ms: fw,
            fastnetmon_ms: fnm,
        };
        let trials = vec![
            trial(2.0, Some(600.0), Some(3400.0)),
            trial(2.0, Some(900.0), None),
            trial(2.0, Some(1200.0), Some(3600.0)),
            trial(10.0, Some(300.0), Some(1300.0)),
        ];
        let fw = summarize_latency(&trials, Tool::Floodwall, 2.0);
        assert_eq!((fw.trials, fw.detected), (3, 3));
        assert_eq!((fw.median_ms, fw.p95_ms), (Some(900.0), Some(1200.0)));
        let fnm = summarize_latency(&trials, Tool::Fastnetmon, 2.0);
        assert_eq!((fnm.trials, fnm.detected), (3, 2));
        assert_eq!(fnm.median_ms, Some(3500.0));
        let ten = summarize_latency(&trials, Tool::Fastnetmon, 10.0);
        assert_eq!(ten.median_ms, Some(1300.0));
    }

    #[test]
    fn strata_are_a_permutation_and_units_are_in_range() {
        for n in [1, 3, 10] {
            let mut v = shuffled(n, 42);
            v.sort_unstable();
            assert_eq!(v, (0..n).collect::<Vec<_>>());
        }
        assert_ne!(shuffled(10, 1), (0..10).collect::<Vec<_>>());
        assert!((0..1000)
            .map(splitmix)
            .map(unit)
            .all(|u| (0.0..1.0).contains(&u)));
    }

    #[test]
    fn victims_are_distinct_documentation_hosts() {
        let victims: std::collections::HashSet<_> = (0..200).map(victim).collect();
        assert_eq!(victims.len(), 200);
        assert!(victims.iter().all(|v| {
            let o = v.octets();
            (o[..3] == [203, 0, 113] || o[..3] == [198, 51, 100]) && o[3] >= 10
        }));
    }
}
