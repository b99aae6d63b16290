//! `floodwall bench surfaces`: what the operator's surfaces cost and how fast they answer.
//!
//! - The daemon's CPU per million records with the HTTP listener and the history on (a
//!   dashboard's live stream open and a Prometheus-like scrape every 5 s) against both off,
//!   fed the same stream by `floodwall bench send` (a separate process: ordinary sFlow samples
//!   over 512 hosts and, after 2 s, a UDP flood at one of them, so attacks, events, history
//!   rows and rules all happen), rounds interleaved so the machine's drift hits both alike.
//! - The API's latency with `attacks` attacks (three events each) in the history: p50 and p99
//!   of sequential requests per endpoint, over one kept-alive connection.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use floodwall_daemon::bus::{AttackRecord, Message, Subscriber as _};
use floodwall_daemon::history::{HistoryConfig, Recorder};
use floodwall_daemon::serve::metrics::StoreCounts;
use floodwall_detect::{AttackEvent, EventKind, Vector};
use serde::Serialize;

use super::compare::{median, percentile};
use super::daemon::free_udp_port;
use super::procfs;

pub struct Options {
    pub floodwall: PathBuf,
    pub work_dir: PathBuf,
    /// Rounds of (off, on).
    pub rounds: usize,
    /// Seconds each daemon is fed, and the ordinary samples per second.
    pub seconds: f64,
    pub background: u64,
    /// Attacks stored before the latency run.
    pub attacks: usize,
    /// Requests per endpoint.
    pub requests: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub surfaces: bool,
    pub records: u64,
    pub cpu_s: f64,
    pub cpu_s_per_million: f64,
    /// CPU-s of the surfaces' own threads (`http`, `bus-history`, `bus-metrics`) in the run:
    /// measured inside one process, free of the run-to-run noise of the totals.
    pub surface_threads_cpu_s: f64,
}

/// The threads that exist only for the surfaces.
const SURFACE_THREADS: [&str; 3] = ["http", "bus-history", "bus-metrics"];

fn surface_cpu(pid: u32) -> f64 {
    procfs::thread_cpu_times(pid)
        .unwrap_or_default()
        .iter()
        .filter(|t| SURFACE_THREADS.contains(&t.name.trim()))
        .map(|t| t.runtime.unwrap_or_else(|| t.ticks.total()))
        .sum()
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub endpoint: String,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub bytes: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SurfacesResult {
    pub runs: Vec<Run>,
    /// Median over rounds of on / off, CPU per million records.
    pub median_ratio: f64,
    pub attacks_stored: usize,
    pub history_mib: f64,
    pub latencies: Vec<Latency>,
}

struct Daemon {
    child: Child,
    log: PathBuf,
    port: u16,
    url: Option<String>,
}

impl Daemon {
    fn start(floodwall: &Path, dir: &Path, surfaces: bool) -> Result<Daemon> {
        std::fs::create_dir_all(dir)?;
        let port = free_udp_port()?;
        let networks =
            "[\"198.18.0.0/15\", \"198.51.100.0/24\", \"203.0.113.0/24\", \"192.0.2.0/24\"]";
        let switch = if surfaces {
            "[http]\nlisten = \"127.0.0.1:0\"\n[history]\nenabled = true\n"
        } else {
            "[http]\nenabled = false\n[history]\nenabled = false\n"
        };
        let config = dir.join("floodwall.toml");
        std::fs::write(
            &config,
            format!(
                "networks = {networks}\n{switch}[collector]\nlisten = [\"127.0.0.1:{port}\"]\n\
                 [events]\nfile = \"{}\"\n[state]\ndir = \"{}\"\n",
                dir.join("events.jsonl").display(),
                dir.join("state").display()
            ),
        )?;
        let log = dir.join("daemon.log");
        let child = Command::new(floodwall)
            .args(["run", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("starting floodwall run")?;
        let mut daemon = Daemon {
            child,
            log,
            port,
            url: None,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&daemon.log).unwrap_or_default();
            if let Some(url) = floodwall_daemon::serve::url_in_log(&text) {
                daemon.url = Some(url.to_string());
                break;
            }
            if !surfaces && text.contains("listening on") {
                break;
            }
            if let Some(status) = daemon.child.try_wait()? {
                bail!("the daemon stopped ({status}):\n{text}");
            }
            if Instant::now() > deadline {
                bail!("the daemon did not start within 30 s:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(daemon)
    }

    /// SIGTERM, then the records its stop line counts.
    fn stop(mut self) -> Result<u64> {
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("the daemon did not stop within 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let records = text
            .lines()
            .find_map(|l| l.split("stopped; ").nth(1))
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| anyhow!("no stop line in the daemon's log:\n{text}"))?;
        Ok(records)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A dashboard left open and Prometheus scraping: the load the "on" runs carry.
fn clients(url: &str, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<()>> {
    let stream_url = format!("{url}/api/v1/stream");
    let stream_stop = stop.clone();
    let dashboard = std::thread::spawn(move || {
        let Ok(response) = ureq::get(&stream_url).call() else {
            return;
        };
        let mut body = response.into_body().into_reader();
        let mut buf = [0u8; 16 << 10];
        while !stream_stop.load(Ordering::Relaxed) {
            if body.read(&mut buf).unwrap_or(0) == 0 {
                break;
            }
        }
    });
    let metrics_url = format!("{url}/metrics");
    let scraper = std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let _ = ureq::get(&metrics_url)
                .call()
                .and_then(|r| r.into_body().read_to_string());
            for _ in 0..50 {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    });
    vec![dashboard, scraper]
}

fn one_run(options: &Options, dir: &Path, surfaces: bool) -> Result<Run> {
    let daemon = Daemon::start(&options.floodwall, dir, surfaces)?;
    let stop = Arc::new(AtomicBool::new(false));
    let threads = match &daemon.url {
        Some(url) => clients(url, stop.clone()),
        None => Vec::new(),
    };
    let started = procfs::cpu_times(daemon.child.id())?;
    let surfaces_started = surface_cpu(daemon.child.id());
    let status = Command::new(&options.floodwall)
        .args([
            "bench",
            "send",
            "--protocol",
            "sflow",
            "--scenario",
            "latency",
            "--to",
        ])
        .arg(format!("127.0.0.1:{}", daemon.port))
        .args(["--seconds", &options.seconds.to_string()])
        .args(["--background", &options.background.to_string()])
        .args(["--victim", "203.0.113.7", "--attack-after", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running floodwall bench send")?;
    if !status.success() {
        bail!("floodwall bench send failed ({status})");
    }
    // The last second closes, the last events reach the history.
    std::thread::sleep(Duration::from_millis(2_500));
    let cpu = procfs::cpu_times(daemon.child.id())?
        .since(&started)
        .total();
    let surface_threads_cpu_s = surface_cpu(daemon.child.id()) - surfaces_started;
    stop.store(true, Ordering::Relaxed);
    let records = daemon.stop()?;
    for t in threads {
        let _ = t.join();
    }
    if records == 0 {
        bail!("the daemon counted no records");
    }
    Ok(Run {
        surfaces,
        records,
        cpu_s: cpu,
        cpu_s_per_million: cpu / records as f64 * 1e6,
        surface_threads_cpu_s,
    })
}

/// Fills a history with `n` ended attacks (start, update, end) spread over the last 30 days.
fn fill_history(path: &Path, n: usize) -> Result<()> {
    let template: AttackEvent = serde_json::from_str(include_str!(
        "../../../../testdata/events/attack_started.json"
    ))?;
    let counts = Arc::new(StoreCounts::default());
    let mut recorder = Recorder::open(path, HistoryConfig::default(), counts)?;
    let now = floodwall_daemon::clock::unix_ms();
    let span = 30 * 86_400_000u64;
    let vectors = [
        Vector::UdpFlood,
        Vector::SynFlood,
        Vector::DnsAmplification,
        Vector::NtpAmplification,
        Vector::AckFlood,
    ];
    for i in 0..n {
        let start = now - span + (i as u64 * span / n.max(1) as u64);
        let host = format!("203.0.113.{}/32", i % 254 + 1);
        for (k, kind) in [
            EventKind::AttackStarted,
            EventKind::AttackUpdated,
            EventKind::AttackEnded,
        ]
        .into_iter()
        .enumerate()
        {
            let mut e = template.clone();
            e.event = kind;
            e.attack_id = format!("{start}-in-{host}");
            e.target = host.parse()?;
            e.vectors = vec![vectors[i % vectors.len()]];
            e.started_at = start;
            e.ts = start + k as u64 * 30_000;
            e.ended_at = (kind == EventKind::AttackEnded).then_some(e.ts);
            recorder.handle(&Message::Attack(Arc::new(AttackRecord {
                event: e,
                decisions: Vec::new(),
            })))?;
        }
    }
    recorder.close()?;
    Ok(())
}

fn latencies(options: &Options, dir: &Path) -> Result<(Vec<Latency>, f64)> {
    std::fs::create_dir_all(dir.join("state"))?;
    let db = dir.join("state/history.sqlite");
    fill_history(&db, options.attacks)?;
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0) as f64 / (1 << 20) as f64;
    let daemon = Daemon::start(&options.floodwall, dir, true)?;
    let url = daemon.url.clone().context("the daemon's API")?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let first: serde_json::Value = serde_json::from_str(
        &agent
            .get(format!("{url}/api/v1/attacks?limit=1"))
            .call()?
            .into_body()
            .read_to_string()?,
    )?;
    let id = first[0]["attack_id"]
        .as_str()
        .context("no attack in the history")?
        .replace('/', "%2F");
    let month_ago = floodwall_daemon::clock::unix_ms() - 30 * 86_400_000;
    let endpoints = [
        "/api/v1/attacks".to_string(),
        "/api/v1/attacks?active=false&limit=1000".into(),
        "/api/v1/attacks?vector=syn_flood&limit=1000".into(),
        "/api/v1/attacks?target=203.0.113.128/25".into(),
        format!("/api/v1/attacks?since={month_ago}&limit=10000"),
        format!("/api/v1/attacks/{id}"),
        "/api/v1/status".into(),
        "/metrics".into(),
        "/api/v1/traffic".into(),
        "/".into(),
    ];
    let mut out = Vec::new();
    for endpoint in endpoints {
        let mut times = Vec::with_capacity(options.requests);
        let mut bytes = 0;
        for _ in 0..options.requests {
            let t = Instant::now();
            let body = agent
                .get(format!("{url}{endpoint}"))
                .call()
                .with_context(|| endpoint.clone())?
                .into_body()
                .read_to_string()?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
            bytes = body.len();
        }
        out.push(Latency {
            endpoint,
            p50_ms: percentile(&times, 50.0).unwrap_or(0.0),
            p99_ms: percentile(&times, 99.0).unwrap_or(0.0),
            bytes,
        });
    }
    daemon.stop()?;
    Ok((out, size))
}

pub fn run(options: &Options) -> Result<SurfacesResult> {
    let _ = std::fs::remove_dir_all(&options.work_dir);
    std::fs::create_dir_all(&options.work_dir)?;
    let mut runs = Vec::new();
    let mut ratios = Vec::new();
    for round in 0..options.rounds {
        let off = one_run(
            options,
            &options.work_dir.join(format!("off-{round}")),
            false,
        )?;
        let on = one_run(options, &options.work_dir.join(format!("on-{round}")), true)?;
        ratios.push(on.cpu_s_per_million / off.cpu_s_per_million);
        eprintln!(
            "bench: round {}: off {:.3} CPU-s/M records, on {:.3} ({:.3}×)",
            round + 1,
            off.cpu_s_per_million,
            on.cpu_s_per_million,
            on.cpu_s_per_million / off.cpu_s_per_million
        );
        runs.push(off);
        runs.push(on);
    }
    let (latencies, history_mib) = latencies(options, &options.work_dir.join("api"))?;
    Ok(SurfacesResult {
        runs,
        median_ratio: median(&ratios).unwrap_or(f64::NAN),
        attacks_stored: options.attacks,
        history_mib,
        latencies,
    })
}

pub fn markdown(r: &SurfacesResult, command: &str) -> String {
    let mut s = format!(
        "### Operator surfaces (`{command}`)\n\n\
         The daemon fed by `floodwall bench send --scenario latency` (a separate process: \
         ordinary sFlow over 512 hosts, a UDP flood at one of them after 2 s): CPU per million \
         records with the HTTP listener (a dashboard's live stream open, `/metrics` scraped \
         every 5 s) and the history on, against both off.\n\n\
         | run | records | CPU-s | CPU-s per million records | surfaces' threads, CPU-s (share) |\n\
         |---|---|---|---|---|\n"
    );
    for run in &r.runs {
        let threads = if run.surfaces {
            format!(
                "{:.3} ({:.2} %)",
                run.surface_threads_cpu_s,
                100.0 * run.surface_threads_cpu_s / run.cpu_s.max(1e-9)
            )
        } else {
            "–".into()
        };
        s.push_str(&format!(
            "| {} | {} | {:.2} | {:.3} | {threads} |\n",
            if run.surfaces { "on" } else { "off" },
            run.records,
            run.cpu_s,
            run.cpu_s_per_million
        ));
    }
    s.push_str(&format!(
        "\nMedian of the rounds' on/off ratios: **{:.3}×**.\n\n\
         API latency with {} attacks in the history ({:.1} MiB), sequential requests on one \
         connection:\n\n| endpoint | p50 ms | p99 ms | bytes |\n|---|---|---|---|\n",
        r.median_ratio, r.attacks_stored, r.history_mib
    ));
    for l in &r.latencies {
        s.push_str(&format!(
            "| `{}` | {:.2} | {:.2} | {} |\n",
            l.endpoint, l.p50_ms, l.p99_ms, l.bytes
        ));
    }
    s
}
