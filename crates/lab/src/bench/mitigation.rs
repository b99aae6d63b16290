//! `floodwall bench mitigation`: how long from an attack's `attack_started` to its blackhole
//! route in a real router's RIB — GoBGP's `gobgpd`, peered with Floodwall's built-in speaker on
//! loopback.
//!
//! The daemon logs `attack_started` with a wall-clock millisecond stamp when the actions thread
//! takes the event; `gobgp monitor global rib -j` prints each RIB change as it happens and this
//! process stamps the line on arrival. Both clocks are this machine's, so the difference is the
//! planner, the store's fsync, the speaker, the TCP hop and gobgpd's own processing.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use crossbeam_channel::Receiver;
use serde::Serialize;

use super::child::spawn_send;
use super::compare::{median, percentile};
use super::daemon::{free_udp_port, THRESHOLD_MBPS, THRESHOLD_PPS};
use floodwall_daemon::clock::unix_ms;

/// The attack: ten times the packet limit, so detection is quick and the measurement is about
/// mitigation.
const MAGNITUDE: f64 = 10.0;
const BACKGROUND_SAMPLES_PER_S: f64 = 2_000.0;
const ROUTE_TIMEOUT: Duration = Duration::from_secs(15);
const LOCAL_AS: u32 = 65001;
/// gobgpd's AS.
pub const ROUTER_AS: u32 = 65000;

pub struct Options {
    pub floodwall: PathBuf,
    pub work_dir: PathBuf,
    pub trials: usize,
    /// Fsync-heavy writes beside the daemon's state for the whole run.
    pub disk_load: bool,
}

/// The disk load: 1 MiB appended and fsynced at a time, the file restarted every 256 MiB, until
/// the run ends (or an hour, whichever is first).
struct DiskLoad {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DiskLoad {
    fn start(dir: &Path) -> Result<DiskLoad> {
        use std::io::Write as _;
        use std::sync::atomic::Ordering;
        let path = dir.join("disk-load.bin");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("disk-load".into())
            .spawn(move || {
                let chunk = vec![0x5a_u8; 1 << 20];
                let until = Instant::now() + Duration::from_secs(3600);
                let mut file = None;
                let mut written = 0usize;
                while !flag.load(Ordering::Relaxed) && Instant::now() < until {
                    if file.is_none() || written >= 256 << 20 {
                        file = std::fs::File::create(&path).ok();
                        written = 0;
                    }
                    let Some(f) = file.as_mut() else { return };
                    if f.write_all(&chunk).and_then(|()| f.sync_data()).is_err() {
                        return;
                    }
                    written += chunk.len();
                }
                let _ = std::fs::remove_file(&path);
            })?;
        Ok(DiskLoad {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for DiskLoad {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MitigationTrial {
    pub victim: Ipv4Addr,
    /// Wall-clock ms: `attack_started` logged, and the /32 seen in gobgpd's RIB.
    pub started_ms: Option<u64>,
    pub route_ms: Option<u64>,
}

impl MitigationTrial {
    pub fn latency_ms(&self) -> Option<f64> {
        Some(self.route_ms? as f64 - self.started_ms? as f64)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MitigationLatency {
    pub disk_load: bool,
    pub trials: Vec<MitigationTrial>,
    pub median_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub gobgpd_version: String,
}

pub fn run(options: &Options) -> Result<MitigationLatency> {
    std::fs::create_dir_all(&options.work_dir)?;
    let dir = options.work_dir.join("mitigation");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let router = Gobgpd::start(&dir, LOCAL_AS)?;
    let monitor = router.monitor()?;
    let mut daemon = FloodwallDaemon::start(&options.floodwall, &dir, router.bgp_port)?;
    router.wait_established(Duration::from_secs(20))?;
    let _disk_load = options
        .disk_load
        .then(|| DiskLoad::start(&dir))
        .transpose()?;

    let mut trials = Vec::new();
    for n in 0..options.trials {
        let victim = Ipv4Addr::new(203, 0, 113, 10 + n as u8);
        let attack_at_ms = ((unix_ms() / 1000 + 2) * 1000) as f64 + 137.0 * n as f64 % 1000.0;
        let seconds = 6.0;
        let args: Vec<String> = [
            "--to",
            &format!("127.0.0.1:{}", daemon.port),
            "--protocol",
            "sflow",
            "--scenario",
            "latency",
            "--background",
            &BACKGROUND_SAMPLES_PER_S.to_string(),
            "--attack-pps",
            &(MAGNITUDE * THRESHOLD_PPS).to_string(),
            "--victim",
            &victim.to_string(),
            "--attack-at",
            &format!("{attack_at_ms:.3}"),
            "--seconds",
            &seconds.to_string(),
            "--seed",
            &n.to_string(),
        ]
        .map(String::from)
        .to_vec();
        let (mut sender, _lines) = spawn_send(&options.floodwall, &args)?;
        let prefix = format!("{victim}/32");
        let deadline = Instant::now() + ROUTE_TIMEOUT;
        let mut trial = MitigationTrial {
            victim,
            started_ms: None,
            route_ms: None,
        };
        while Instant::now() < deadline && (trial.route_ms.is_none() || trial.started_ms.is_none())
        {
            while let Ok((at, line)) = monitor.try_recv() {
                if trial.route_ms.is_none() && announces(&line, &prefix) {
                    trial.route_ms = Some(at);
                }
            }
            if trial.started_ms.is_none() {
                trial.started_ms = daemon.started_at(&prefix)?;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        // The sender is ours: stop it by its PID.
        let _ = sender.kill();
        let _ = sender.wait();
        eprintln!(
            "bench mitigation: trial {}/{}: {victim}: {}",
            n + 1,
            options.trials,
            trial
                .latency_ms()
                .map_or("no route".to_string(), |ms| format!(
                    "route {ms:.0} ms after attack_started"
                ))
        );
        trials.push(trial);
    }
    daemon.stop()?;
    let latencies: Vec<f64> = trials
        .iter()
        .filter_map(MitigationTrial::latency_ms)
        .collect();
    Ok(MitigationLatency {
        disk_load: options.disk_load,
        median_ms: median(&latencies),
        p95_ms: percentile(&latencies, 95.0),
        max_ms: latencies.iter().copied().reduce(f64::max),
        trials,
        gobgpd_version: router.version.clone(),
    })
}

/// Whether a `gobgp monitor global rib -j` line announces `prefix` (not withdraws it).
pub fn announces(line: &str, prefix: &str) -> bool {
    let Ok(paths) = serde_json::from_str::<Vec<serde_json::Value>>(line) else {
        return false;
    };
    paths.iter().any(|p| {
        p["nlri"]["prefix"].as_str() == Some(prefix) && p["withdrawal"].as_bool() != Some(true)
    })
}

/// The report's section: what was measured, how, every trial.
pub fn markdown(result: &MitigationLatency, command: &str) -> String {
    let ms = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.1} ms"));
    let mut out = String::new();
    out.push_str("## Mitigation latency: attack_started → route in a real router's RIB\n\n");
    out.push_str(&format!(
        "`{command}`: Floodwall's daemon peered over BGP with {} on loopback (blackhole and \
         FlowSpec enabled); {} attacks at {MAGNITUDE}× the packet limit, each at a fresh host. \
         Start: the daemon's log stamp of `attack_started`; end: the arrival of the /32 in \
         `gobgp monitor global rib -j`.{} Target: under 100 ms.\n\n",
        result.gobgpd_version,
        result.trials.len(),
        if result.disk_load {
            " Under disk load: a writer appends and fsyncs 1 MiB at a time beside the daemon's \
             state for the whole run."
        } else {
            ""
        }
    ));
    out.push_str(&format!(
        "| median | p95 | max |\n|---|---|---|\n| {} | {} | {} |\n\n",
        ms(result.median_ms),
        ms(result.p95_ms),
        ms(result.max_ms)
    ));
    out.push_str("| victim | latency |\n|---|---|\n");
    for t in &result.trials {
        out.push_str(&format!("| {} | {} |\n", t.victim, ms(t.latency_ms())));
    }
    out
}

/// gobgpd on free loopback ports, run as `nobody`, in `dir`: the router of the mitigation
/// benchmark and of the daemon's BGP tests.
pub struct Gobgpd {
    child: Child,
    program: PathBuf,
    config: PathBuf,
    dir: PathBuf,
    pub api: String,
    pub bgp_port: u16,
    pub version: String,
}

impl Gobgpd {
    /// Peers passively with 127.0.0.1 as AS `peer_as` (itself AS 65000) for IPv4/IPv6 unicast
    /// and FlowSpec.
    pub fn start(dir: &Path, peer_as: u32) -> Result<Gobgpd> {
        let program = which("gobgpd")?;
        which("gobgp")?;
        let bgp_port = free_tcp_port()?;
        let api_port = free_tcp_port()?;
        let config = dir.join("gobgpd.toml");
        let families = ["ipv4-unicast", "ipv6-unicast", "ipv4-flowspec", "ipv6-flowspec"]
            .map(|f| format!("  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{f}\"\n"))
            .concat();
        std::fs::write(
            &config,
            format!(
                "[global.config]\n  as = {ROUTER_AS}\n  router-id = \"192.0.2.254\"\n  port = {bgp_port}\n  \
                 local-address-list = [\"127.0.0.1\"]\n\n[[neighbors]]\n  [neighbors.config]\n    \
                 neighbor-address = \"127.0.0.1\"\n    peer-as = {peer_as}\n  [neighbors.transport.config]\n    \
                 passive-mode = true\n{families}"
            ),
        )?;
        make_readable(dir)?;
        let version = Command::new(&program)
            .arg("--version")
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .replace("gobgpd version ", "gobgpd ")
            })
            .unwrap_or_else(|_| "gobgpd".into());
        let child = Self::spawn(&program, &config, dir, api_port)?;
        let router = Gobgpd {
            child,
            program,
            config,
            dir: dir.to_path_buf(),
            api: api_port.to_string(),
            bgp_port,
            version,
        };
        router.wait_api()?;
        Ok(router)
    }

    fn spawn(program: &Path, config: &Path, dir: &Path, api_port: u16) -> Result<Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("gobgpd.log"))?;
        // setpriv execs gobgpd in place, so the PID we hold is gobgpd's.
        Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .arg(program)
            .arg("-f")
            .arg(config)
            .arg("--api-hosts")
            .arg(format!("127.0.0.1:{api_port}"))
            .arg("--pprof-disable")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting gobgpd")
    }

    fn wait_api(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.cli(&["global"]).is_err() {
            if Instant::now() > deadline {
                bail!(
                    "gobgpd did not answer on 127.0.0.1:{}; see {}",
                    self.api,
                    self.dir.join("gobgpd.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Kills gobgpd (its PID) and starts it again on the same ports: a router restart.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.start_again()
    }

    /// Kills gobgpd (its PID): the router is down until [`Gobgpd::start_again`].
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a stopped gobgpd again on the same ports.
    pub fn start_again(&mut self) -> Result<()> {
        let api_port: u16 = self.api.parse()?;
        self.child = Self::spawn(&self.program, &self.config, &self.dir, api_port)?;
        self.wait_api()
    }

    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("gobgp")
            .args(["-u", "127.0.0.1", "-p", &self.api])
            .args(args)
            .output()?;
        if !out.status.success() {
            bail!(
                "gobgp {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `gobgp global rib -a FAMILY -j` as JSON (an object keyed by prefix or rule).
    pub fn rib(&self, family: &str) -> Result<serde_json::Value> {
        let text = self.cli(&["global", "rib", "-a", family, "-j"])?;
        if text.trim().is_empty() {
            return Ok(serde_json::json!({}));
        }
        serde_json::from_str(&text).with_context(|| format!("gobgp rib output: {text}"))
    }

    pub fn established(&self) -> bool {
        self.cli(&["neighbor", "-j"])
            .unwrap_or_default()
            .contains("\"session_state\":6")
    }

    pub fn wait_established(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while !self.established() {
            if Instant::now() > deadline {
                bail!(
                    "the BGP session to gobgpd did not come up: {}",
                    self.cli(&["neighbor"]).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// `gobgp monitor global rib -j`, each line stamped (Unix ms) as it arrives.
    pub fn monitor(&self) -> Result<Receiver<(u64, String)>> {
        let mut child = Command::new("gobgp")
            .args([
                "-u",
                "127.0.0.1",
                "-p",
                &self.api,
                "monitor",
                "global",
                "rib",
                "-j",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting gobgp monitor")?;
        let stdout = child.stdout.take().context("monitor stdout")?;
        let (tx, rx) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send((unix_ms(), line)).is_err() {
                    break;
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        });
        Ok(rx)
    }
}

impl Drop for Gobgpd {
    fn drop(&mut self) {
        // Only the gobgpd this process started, by its PID; its monitor client ends with it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `floodwall run` peered with gobgpd, blackhole and FlowSpec on, in `dir`.
struct FloodwallDaemon {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl FloodwallDaemon {
    fn start(floodwall: &Path, dir: &Path, bgp_port: u16) -> Result<FloodwallDaemon> {
        let port = free_udp_port()?;
        let config = dir.join("floodwall.toml");
        std::fs::write(
            &config,
            format!(
                "networks = [\"203.0.113.0/24\"]\n\n[http]\nlisten = \"127.0.0.1:0\"\n[collector]\nlisten = [\"127.0.0.1:{port}\"]\n\n\
                 [events]\nfile = \"{events}\"\n\n[state]\ndir = \"{state}\"\n\n\
                 [detection.incoming]\npps = {THRESHOLD_PPS}\nmbps = {THRESHOLD_MBPS}\n\n[detection.carpet]\nenabled = false\n\n\
                 [mitigation]\nmin_seconds = 1\nhold_down_seconds = 1\n\n[mitigation.blackhole]\nenabled = true\n\n\
                 [mitigation.flowspec]\nenabled = true\n\n\
                 [bgp]\nlocal_as = {LOCAL_AS}\nrouter_id = \"192.0.2.253\"\n\n\
                 [[bgp.peers]]\nname = \"gobgpd\"\naddress = \"127.0.0.1:{bgp_port}\"\nremote_as = {ROUTER_AS}\n",
                events = dir.join("events.jsonl").display(),
                state = dir.join("state").display(),
            ),
        )?;
        let log = dir.join("floodwall.log");
        let child = Command::new(floodwall)
            .args(["run", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("starting floodwall run")?;
        let daemon = FloodwallDaemon { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(&daemon.log)
            .unwrap_or_default()
            .contains("listening on")
        {
            if Instant::now() > deadline {
                bail!(
                    "floodwall run did not start: {}",
                    std::fs::read_to_string(&daemon.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(daemon)
    }

    /// The log stamp of `attack_started` for `prefix`, if logged yet.
    fn started_at(&mut self, prefix: &str) -> Result<Option<u64>> {
        let log = std::fs::read_to_string(&self.log)?;
        Ok(log
            .lines()
            .find(|l| l.contains(" started ") && l.contains(prefix))
            .and_then(|l| l.split_whitespace().next())
            .and_then(floodwall_daemon::logging::parse_stamp))
    }

    fn stop(mut self) -> Result<()> {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::TERM,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return Err(anyhow!("floodwall run did not stop within 10 s of SIGTERM"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

fn which(program: &str) -> Result<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow!(
                "`{program}` is not installed: apt-get install -y gobgpd (scripts/bench does it)"
            )
        })
}

fn free_tcp_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// gobgpd runs as `nobody`: it must be able to read its directory and configuration.
fn make_readable(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    for entry in std::fs::read_dir(dir)? {
        std::fs::set_permissions(entry?.path(), std::fs::Permissions::from_mode(0o644))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_lines_announce_or_withdraw() {
        let add = r#"[{"nlri":{"prefix":"203.0.113.9/32"},"age":1,"best":false,"attrs":[]}]"#;
        let withdraw = r#"[{"nlri":{"prefix":"203.0.113.9/32"},"withdrawal":true}]"#;
        assert!(announces(add, "203.0.113.9/32"));
        assert!(!announces(add, "203.0.113.99/32"));
        assert!(!announces(withdraw, "203.0.113.9/32"));
        assert!(!announces("not json", "203.0.113.9/32"));
    }
}
