//! The two daemons under comparison — Floodwall's `floodwall run` and FastNetMon Community —
//! configured alike, started on free loopback ports, watched through `/proc`, their counters
//! and their attack notifications, and stopped by their own PIDs.

use std::fmt;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use ipnet::Ipv4Net;
use serde::Serialize;

use super::procfs;
use floodwall_daemon::clock::unix_ms;

/// Which daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tool {
    Floodwall,
    Fastnetmon,
}

impl Tool {
    pub const BOTH: [Tool; 2] = [Tool::Floodwall, Tool::Fastnetmon];
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tool::Floodwall => "Floodwall",
            Tool::Fastnetmon => "FastNetMon",
        })
    }
}

/// What both daemons are told: the same monitored networks and the same per-host limits.
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    /// Names the run directory: `ingest`, `latency`, `hosts`, `spoofed`.
    pub name: String,
    pub networks: Vec<Ipv4Net>,
    /// Incoming packets/s and megabits/s of one host that make an attack.
    pub threshold_pps: f64,
    pub threshold_mbps: f64,
}

/// Floodwall's default incoming host limits (`crates/detect/src/config.rs`): FastNetMon is
/// given the same.
pub const THRESHOLD_PPS: f64 = 100_000.0;
pub const THRESHOLD_MBPS: f64 = 1_000.0;

impl Setup {
    pub fn new(name: &str, networks: &[&str]) -> Setup {
        Setup {
            name: name.to_string(),
            networks: networks
                .iter()
                .map(|n| n.parse().expect("valid network"))
                .collect(),
            threshold_pps: THRESHOLD_PPS,
            threshold_mbps: THRESHOLD_MBPS,
        }
    }
}

/// Where the programs are.
#[derive(Debug, Clone)]
pub struct Programs {
    pub floodwall: PathBuf,
    pub fastnetmon: PathBuf,
    /// The packaged configuration FastNetMon's is made from.
    pub fastnetmon_template: PathBuf,
}

impl Programs {
    pub fn installed() -> Result<Programs> {
        Ok(Programs {
            floodwall: std::env::current_exe().context("finding the floodwall executable")?,
            fastnetmon: PathBuf::from("/usr/sbin/fastnetmon"),
            fastnetmon_template: PathBuf::from("/etc/fastnetmon.conf"),
        })
    }

    /// Fails with an install hint when FastNetMon is missing.
    pub fn require_fastnetmon(&self) -> Result<()> {
        if !self.fastnetmon.exists() || !self.fastnetmon_template.exists() {
            bail!(
                "FastNetMon is not installed ({} or {} is missing): `apt-get install -y fastnetmon` \
                 (scripts/bench and scripts/test install it)",
                self.fastnetmon.display(),
                self.fastnetmon_template.display()
            );
        }
        Ok(())
    }
}

/// How a daemon was started: for the report's "exact commands".
#[derive(Debug, Clone, Serialize)]
pub struct Invocation {
    pub tool: Tool,
    pub setup: String,
    pub command: String,
    pub config_file: PathBuf,
    /// The configuration, or for FastNetMon the lines changed from the packaged one.
    pub config: String,
}

/// A running daemon.
pub struct Daemon {
    pub tool: Tool,
    child: Child,
    /// UDP port its sFlow collector listens on, on 127.0.0.1.
    pub port: u16,
    pub dir: PathBuf,
    log: PathBuf,
    /// Floodwall's events file or FastNetMon's notify-script log.
    detections: PathBuf,
    detections_read: usize,
    prometheus_port: Option<u16>,
    pub invocation: Invocation,
    pub started: Instant,
}

/// An attack a daemon reported for a host.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub target: Ipv4Addr,
    /// Unix time in ms: when the event line was seen in Floodwall's events file, or the
    /// timestamp FastNetMon's notify script wrote.
    pub at_ms: f64,
}

/// Floodwall's counters, logged when it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct StopTotals {
    pub records: u64,
    pub datagrams: u64,
    pub decode_errors: u64,
    pub kernel_drops: u64,
    pub hosts_tracked: u64,
}

impl Daemon {
    /// Starts `tool` for `setup` in a fresh directory under `work`, and waits until its sFlow
    /// socket is bound.
    pub fn start(tool: Tool, setup: &Setup, programs: &Programs, work: &Path) -> Result<Daemon> {
        let dir = work.join(format!("{}-{}", setup.name, tool_dir(tool)));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let port = free_udp_port()?;
        let log = dir.join("daemon.log");
        let (command, config_file, config, detections, prometheus_port) = match tool {
            Tool::Floodwall => {
                let events = dir.join("events.jsonl");
                let config = floodwall_config(setup, port, &events);
                let config_file = dir.join("floodwall.toml");
                std::fs::write(&config_file, &config)?;
                let mut command = Command::new(&programs.floodwall);
                command.args(["run", "--config"]).arg(&config_file);
                (command, config_file, config, events, None)
            }
            Tool::Fastnetmon => {
                programs.require_fastnetmon()?;
                let prometheus = free_tcp_port()?;
                let notify_log = dir.join("notify.log");
                let template = std::fs::read_to_string(&programs.fastnetmon_template)
                    .with_context(|| {
                        format!("reading {}", programs.fastnetmon_template.display())
                    })?;
                let overrides = fastnetmon_overrides(setup, &dir, port, prometheus);
                let config = render_fastnetmon_conf(&template, &overrides);
                let config_file = dir.join("fastnetmon.conf");
                std::fs::write(&config_file, config)?;
                std::fs::write(
                    dir.join("networks"),
                    setup
                        .networks
                        .iter()
                        .map(|n| format!("{n}\n"))
                        .collect::<String>(),
                )?;
                std::fs::write(dir.join("whitelist"), "")?;
                write_notify_script(&dir.join("notify.sh"), &notify_log)?;
                // The package does not create the folder for attack reports.
                let _ = std::fs::create_dir_all("/var/log/fastnetmon_attacks");
                let mut command = Command::new(&programs.fastnetmon);
                command
                    .arg("--configuration_file")
                    .arg(&config_file)
                    .arg("--log_file")
                    .arg(&log)
                    .arg("--disable_pid_logic");
                let changed = overrides
                    .iter()
                    .map(|(k, v)| format!("{k} = {v}\n"))
                    .collect::<String>();
                (command, config_file, changed, notify_log, Some(prometheus))
            }
        };
        let command_line = format!(
            "{} {}",
            command.get_program().to_string_lossy(),
            command
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let output = std::fs::File::create(dir.join("stdout.log"))?;
        let stderr = match tool {
            Tool::Floodwall => std::fs::File::create(&log)?,
            Tool::Fastnetmon => output.try_clone()?,
        };
        let mut command = command;
        let child = command
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {command_line}"))?;
        let mut daemon = Daemon {
            tool,
            child,
            port,
            dir,
            log,
            detections,
            detections_read: 0,
            prometheus_port,
            invocation: Invocation {
                tool,
                setup: setup.name.clone(),
                command: command_line,
                config_file,
                config,
            },
            started: Instant::now(),
        };
        daemon.wait_ready(Duration::from_secs(60))?;
        Ok(daemon)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited during start-up ({status}): {}",
                    self.tool,
                    self.log_tail()
                );
            }
            if procfs::loopback_udp_socket(self.port)?.is_some() {
                break;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!(
                    "{} did not bind 127.0.0.1:{} within {timeout:?}: {}",
                    self.tool,
                    self.port,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(port) = self.prometheus_port {
            // FastNetMon starts its metrics endpoint before the collector; check it answers.
            self.fastnetmon_processed()
                .with_context(|| format!("FastNetMon's Prometheus endpoint on port {port}"))?;
        }
        Ok(())
    }

    /// CPU the daemon has used so far.
    pub fn cpu_times(&self) -> Result<procfs::CpuTimes> {
        Ok(procfs::cpu_times(self.pid())?)
    }

    /// CPU each of the daemon's live threads has used so far.
    pub fn thread_cpu_times(&self) -> Result<Vec<procfs::ThreadCpu>> {
        Ok(procfs::thread_cpu_times(self.pid())?)
    }

    pub fn peak_rss_bytes(&self) -> Result<u64> {
        Ok(procfs::peak_rss_bytes(self.pid())?)
    }

    /// Datagrams the kernel dropped for the daemon's socket, and bytes still queued in it.
    pub fn socket(&self) -> Result<procfs::UdpSocketRow> {
        procfs::loopback_udp_socket(self.port)?
            .ok_or_else(|| anyhow!("{}'s socket on port {} is gone", self.tool, self.port))
    }

    /// FastNetMon's count of flow samples it processed (`fastnetmon_total_simple_packets_processed`).
    pub fn fastnetmon_processed(&self) -> Result<u64> {
        let port = self
            .prometheus_port
            .ok_or_else(|| anyhow!("{} has no Prometheus endpoint", self.tool))?;
        let text = http_get(port, "/metrics")?;
        prometheus_value(&text, "fastnetmon_total_simple_packets_processed")
            .map(|v| v as u64)
            .ok_or_else(|| anyhow!("no fastnetmon_total_simple_packets_processed in its metrics"))
    }

    /// Attacks reported since the last call.
    pub fn new_detections(&mut self) -> Result<Vec<Detection>> {
        let now = unix_ms() as f64;
        let text = match std::fs::read(&self.detections) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        // Whole lines only: a line being written is read next time.
        let Some(end) = text[self.detections_read.min(text.len())..]
            .iter()
            .rposition(|&b| b == b'\n')
            .map(|i| self.detections_read + i + 1)
        else {
            return Ok(Vec::new());
        };
        let fresh = String::from_utf8_lossy(&text[self.detections_read..end]).into_owned();
        self.detections_read = end;
        Ok(fresh
            .lines()
            .filter_map(|line| match self.tool {
                Tool::Floodwall => {
                    parse_floodwall_event(line).map(|target| Detection { target, at_ms: now })
                }
                Tool::Fastnetmon => parse_notify_line(line),
            })
            .collect())
    }

    /// Stops the daemon (SIGTERM, then SIGKILL after 15 s) and returns Floodwall's logged
    /// totals (`None` for FastNetMon).
    pub fn stop(mut self) -> Result<Option<StopTotals>> {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::TERM,
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break Some(status);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        match self.tool {
            Tool::Fastnetmon => Ok(None),
            Tool::Floodwall => {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                match (status, parse_stop_totals(&log)) {
                    (Some(s), Some(totals)) if s.success() => Ok(Some(totals)),
                    _ => bail!(
                        "floodwall run did not stop cleanly ({status:?}): {}",
                        self.log_tail()
                    ),
                }
            }
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(8)..].join("\n")
    }

    /// FastNetMon's log line about the memory it preallocates for the monitored networks.
    pub fn preallocation_note(&self) -> Option<String> {
        let log = std::fs::read_to_string(&self.log).ok()?;
        log.lines()
            .find(|l| l.contains("We need") && l.contains("MB of memory"))
            .and_then(|l| l.find("We need").map(|i| l[i..].trim().to_string()))
    }
}

impl Drop for Daemon {
    /// A daemon left running by an error is killed (by its PID).
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn tool_dir(tool: Tool) -> &'static str {
    match tool {
        Tool::Floodwall => "floodwall",
        Tool::Fastnetmon => "fastnetmon",
    }
}

/// Floodwall's configuration: its defaults, the networks, the collector on 127.0.0.1 and
/// carpet-bombing detection off (FastNetMon Community has no prefix-level detection, and the
/// background traffic of the latency and ingest streams would be carpet bombing).
pub fn floodwall_config(setup: &Setup, port: u16, events: &Path) -> String {
    let networks = setup
        .networks
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    // The state (mitigation snapshot, baselines) beside the events, never the working directory.
    let state = events.parent().unwrap_or(Path::new(".")).join("state");
    format!(
        "networks = [{networks}]\n\n[http]\nlisten = \"127.0.0.1:0\"\n[collector]\nlisten = [\"127.0.0.1:{port}\"]\n\n\
         [events]\nfile = \"{}\"\n\n[state]\ndir = \"{}\"\n\n[detection.incoming]\npps = {}\n\
         mbps = {}\n\n[detection.carpet]\nenabled = false\n",
        events.display(),
        state.display(),
        setup.threshold_pps,
        setup.threshold_mbps
    )
}

/// The settings changed from FastNetMon's packaged configuration: sFlow on 127.0.0.1, no usage
/// report, no gRPC API, Prometheus on a free port, files in the run directory, and Floodwall's
/// host limits. Everything else — the 5 s moving average, connection tracking — stays default.
pub fn fastnetmon_overrides(
    setup: &Setup,
    dir: &Path,
    sflow_port: u16,
    prometheus_port: u16,
) -> Vec<(&'static str, String)> {
    let path = |name: &str| dir.join(name).display().to_string();
    vec![
        ("disable_usage_report", "on".into()),
        ("logging_local_syslog_logging", "off".into()),
        ("sflow", "on".into()),
        ("sflow_host", "127.0.0.1".into()),
        ("sflow_port", sflow_port.to_string()),
        ("netflow", "off".into()),
        ("networks_list_path", path("networks")),
        ("white_list_path", path("whitelist")),
        ("notify_script_path", path("notify.sh")),
        ("monitor_local_ip_addresses", "off".into()),
        ("pid_path", path("fastnetmon.pid")),
        ("cli_stats_file_path", path("fastnetmon.dat")),
        ("cli_stats_ipv6_file_path", path("fastnetmon_ipv6.dat")),
        ("enable_api", "off".into()),
        ("prometheus", "on".into()),
        ("prometheus_host", "127.0.0.1".into()),
        ("prometheus_port", prometheus_port.to_string()),
        ("threshold_pps", format!("{}", setup.threshold_pps)),
        ("threshold_mbps", format!("{}", setup.threshold_mbps)),
        ("ban_for_pps", "on".into()),
        ("ban_for_bandwidth", "on".into()),
        ("ban_for_flows", "off".into()),
    ]
}

/// The template with each `key = value` line of `overrides` replaced; keys the template lacks
/// are appended.
pub fn render_fastnetmon_conf(template: &str, overrides: &[(&str, String)]) -> String {
    let mut used = vec![false; overrides.len()];
    let mut out = String::with_capacity(template.len() + 256);
    for line in template.lines() {
        let key = line.split('=').next().unwrap_or("").trim();
        let replaced = (!line.trim_start().starts_with('#'))
            .then(|| overrides.iter().position(|(k, _)| *k == key))
            .flatten();
        match replaced {
            Some(i) => {
                used[i] = true;
                out.push_str(&format!("{} = {}\n", overrides[i].0, overrides[i].1));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for (i, (key, value)) in overrides.iter().enumerate() {
        if !used[i] {
            out.push_str(&format!("{key} = {value}\n"));
        }
    }
    out
}

/// The notify script: FastNetMon runs it as `SCRIPT <ip> <incoming|outgoing> <pps> <action>`
/// with a report on stdin. It writes a millisecond timestamp first, then drains stdin.
fn write_notify_script(path: &Path, log: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let script = format!(
        "#!/bin/sh\n# Written by floodwall bench compare: timestamps FastNetMon's call, then reads the report.\n\
         ts=$(date +%s%3N)\necho \"$ts $1 $2 $3 $4\" >> '{}'\ncat > /dev/null\n",
        log.display()
    );
    std::fs::write(path, script)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// The host of an `attack_started` line of Floodwall's events file.
pub fn parse_floodwall_event(line: &str) -> Option<Ipv4Addr> {
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    if event["event"] != "attack_started" || event["direction"] != "incoming" {
        return None;
    }
    event["target"].as_str()?.strip_suffix("/32")?.parse().ok()
}

/// A `ban` line of the notify log: `<ms> <ip> <direction> <pps> ban`.
pub fn parse_notify_line(line: &str) -> Option<Detection> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    match fields[..] {
        [ms, ip, "incoming", _, "ban"] => Some(Detection {
            target: ip.parse().ok()?,
            at_ms: ms.parse().ok()?,
        }),
        _ => None,
    }
}

/// The totals of Floodwall's `stopped;` log line.
pub fn parse_stop_totals(log: &str) -> Option<StopTotals> {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("floodwall: stopped;"))?;
    let number_before = |label: &str| -> Option<u64> {
        let end = line.find(label)?;
        line[..end].split_whitespace().last()?.parse().ok()
    };
    Some(StopTotals {
        records: number_before(" records")?,
        datagrams: number_before(" datagrams")?,
        decode_errors: number_before(" decode errors")?,
        kernel_drops: number_before(" kernel drops")?,
        hosts_tracked: number_before(" hosts tracked")?,
    })
}

/// The value of an unlabelled sample in Prometheus text format.
pub fn prometheus_value(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        if !rest.starts_with(' ') {
            return None;
        }
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// A plain HTTP/1.0 GET on 127.0.0.1; the body.
fn http_get(port: u16, path: &str) -> Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .ok_or_else(|| anyhow!("no HTTP response body"))?;
    Ok(body.to_string())
}

/// A UDP port free on 127.0.0.1 right now.
pub fn free_udp_port() -> Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn free_tcp_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fastnetmon_config_replaces_keys_and_appends_missing_ones() {
        let template = "# comment\nsflow = off\n#sflow_port = 1\nsflow_port = 6343\nthreshold_pps = 20000\nother = 1\n";
        let text = render_fastnetmon_conf(
            template,
            &[
                ("sflow", "on".into()),
                ("sflow_port", "16343".into()),
                ("threshold_pps", "100000".into()),
                ("enable_api", "off".into()),
            ],
        );
        assert_eq!(
            text,
            "# comment\nsflow = on\n#sflow_port = 1\nsflow_port = 16343\nthreshold_pps = 100000\nother = 1\nenable_api = off\n"
        );
    }

    /// Every key we set exists in the packaged configuration (where it is installed), so a
    /// typo cannot silently leave a default in force.
    #[test]
    fn overrides_name_keys_of_the_packaged_configuration() {
        let template = std::fs::read_to_string("/etc/fastnetmon.conf").expect(
            "/etc/fastnetmon.conf is missing: install FastNetMon (`apt-get install -y fastnetmon`; \
             scripts/test does it)",
        );
        let setup = Setup::new("t", &["10.0.0.0/16"]);
        for (key, _) in fastnetmon_overrides(&setup, Path::new("/tmp/x"), 1, 2) {
            assert!(
                template
                    .lines()
                    .any(|l| l.split('=').next().map(str::trim) == Some(key)),
                "{key} is not a key of /etc/fastnetmon.conf"
            );
        }
    }

    #[test]
    fn floodwall_config_parses_with_equal_limits() {
        let setup = Setup::new("t", &["198.51.100.0/24", "203.0.113.0/24"]);
        let text = floodwall_config(&setup, 16343, Path::new("/tmp/e.jsonl"));
        let config = floodwall_daemon::config::Config::parse(&text, "bench").unwrap();
        assert_eq!(config.networks.len(), 2);
        assert_eq!(
            config.collector.listen,
            vec!["127.0.0.1:16343".parse().unwrap()]
        );
        assert_eq!(config.detection.incoming.pps, Some(THRESHOLD_PPS));
        assert_eq!(config.detection.incoming.mbps, Some(THRESHOLD_MBPS));
        assert!(!config.detection.carpet.enabled);
        assert_eq!(config.state.dir, Path::new("/tmp/state"));
    }

    #[test]
    fn detections_are_parsed_from_both_tools() {
        let started = r#"{"event":"attack_started","attack_id":"1-in-203.0.113.10/32","direction":"incoming","target":"203.0.113.10/32"}"#;
        assert_eq!(
            parse_floodwall_event(started),
            Some(Ipv4Addr::new(203, 0, 113, 10))
        );
        let ended = started.replace("attack_started", "attack_ended");
        assert_eq!(parse_floodwall_event(&ended), None);
        let carpet = started.replace("203.0.113.10/32\"}", "203.0.113.0/24\"}");
        assert_eq!(parse_floodwall_event(&carpet), None);
        assert_eq!(parse_floodwall_event("not json"), None);

        assert_eq!(
            parse_notify_line("1795623086277 198.51.100.7 incoming 195770 ban"),
            Some(Detection {
                target: Ipv4Addr::new(198, 51, 100, 7),
                at_ms: 1_795_623_086_277.0
            })
        );
        assert_eq!(
            parse_notify_line("1795623086999 198.51.100.7 incoming 195770 attack_details"),
            None
        );
        assert_eq!(
            parse_notify_line("1795623086277 198.51.100.7 incoming"),
            None
        );
    }

    #[test]
    fn stop_totals_from_the_log() {
        let log = "2026-11-25T16:00:00.000Z floodwall: listening on 127.0.0.1:1\n\
                   2026-11-25T16:00:05.000Z floodwall: stopping\n\
                   2026-11-25T16:00:05.100Z floodwall: stopped; 123456 records, 12346 datagrams, 2 decode errors, 7 kernel drops, 0 not allowed; 5000 hosts tracked, 1 attacks were active\n";
        assert_eq!(
            parse_stop_totals(log),
            Some(StopTotals {
                records: 123_456,
                datagrams: 12_346,
                decode_errors: 2,
                kernel_drops: 7,
                hosts_tracked: 5000
            })
        );
        assert_eq!(parse_stop_totals("floodwall: stopping\n"), None);
    }

    #[test]
    fn prometheus_samples() {
        let text = "# HELP Total number of simple packets processed\n\
                    # TYPE fastnetmon_total_simple_packets_processed counter\n\
                    fastnetmon_total_simple_packets_processed 184620\n\
                    fastnetmon_total_simple_packets_processed_speed 3\n\
                    fastnetmon_total_traffic_packets{traffic_direction=\"incoming\"} 20681880\n";
        assert_eq!(
            prometheus_value(text, "fastnetmon_total_simple_packets_processed"),
            Some(184_620.0)
        );
        assert_eq!(
            prometheus_value(text, "fastnetmon_total_traffic_packets"),
            None
        );
        assert_eq!(prometheus_value(text, "missing"), None);
    }
}
