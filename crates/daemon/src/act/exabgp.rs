//! Mitigation through an ExaBGP the operator already runs: Floodwall writes ExaBGP 4 API text
//! commands (`announce route …`, `announce flow route { match { … } then { … } }` and the
//! matching `withdraw`) and ExaBGP speaks BGP to the routers.
//!
//! Where the commands go:
//! - **The named pipe** (main mode), the one `exabgpcli` uses. ExaBGP 4.2 (with
//!   `exabgp.api.cli = true`, its default) looks for the FIFO pair `<pipename>.in` and
//!   `<pipename>.out` (`exabgp.api.pipename`, default `exabgp`) in `/run/exabgp/`,
//!   `/run/<uid>/`, `/run/`, `/var/run/exabgp/`, `/var/run/<uid>/`, `/var/run/`, then the same
//!   under its `--root`; the first directory holding both wins. The pipes are made by the
//!   operator (`mkfifo /run/exabgp/exabgp.{in,out}`), so the default here is
//!   `/run/exabgp/exabgp.in`. ExaBGP answers each command with `done` or `error` on `.out`
//!   (`exabgp.api.ack`, default true): Floodwall reads that answer when the sibling `.out` FIFO
//!   exists, so a command ExaBGP rejects is an error here, not a silent loss.
//! - **stdout** (`pipe = "-"`), when ExaBGP runs Floodwall as one of its `process`es. The
//!   answers then come on stdin, which Floodwall does not read: set `exabgp.api.ack = false`.
//!
//! A FIFO without a reader blocks a plain `open` forever, so the pipe is opened non-blocking:
//! no reader (ExaBGP down, cli disabled, wrong pipe) is an immediate error, counted in
//! `undelivered`. A command is one `write` of less than PIPE_BUF bytes, so it never interleaves
//! with another writer's (an operator's `exabgpcli`).
//!
//! ExaBGP keeps its own RIB: announcing a route twice replaces it, withdrawing an unknown one is
//! answered `done`. So withdraw always sends (a previous Floodwall run may have announced it),
//! and announce skips only what this run already announced identically.
//!
//! ```toml
//! [exabgp]
//! enabled = true
//! pipe = "/run/exabgp/exabgp.in"   # or "-" for stdout when ExaBGP runs Floodwall
//! ack_timeout_seconds = 2          # wait for ExaBGP's done/error on exabgp.out; 0: don't
//! ```

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use floodwall_mitigate::{Community, FlowAction, FlowFilter, Mitigation, Range, Rule};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{Mitigator, Outcome};

/// `[exabgp]`: announce through an operator's ExaBGP 4.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ExaBgpConfig {
    /// Send blackholes and FlowSpec rules to ExaBGP. Default: `false`.
    pub enabled: bool,
    /// ExaBGP's command FIFO (`<dir>/<exabgp.api.pipename>.in`), or `"-"` for stdout when
    /// ExaBGP runs Floodwall as a process. Default: `"/run/exabgp/exabgp.in"`.
    pub pipe: PathBuf,
    /// How long to wait for ExaBGP's `done`/`error` on the sibling `.out` FIFO; 0 does not
    /// wait. Without an answer in time the command counts as sent. Default: `2`.
    pub ack_timeout_seconds: f64,
}

impl Default for ExaBgpConfig {
    fn default() -> Self {
        ExaBgpConfig {
            enabled: false,
            pipe: PathBuf::from("/run/exabgp/exabgp.in"),
            ack_timeout_seconds: 2.0,
        }
    }
}

/// What the ExaBGP adapter has done since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExaBgpStats {
    /// Commands written (announce and withdraw).
    pub sent: u64,
    /// Commands ExaBGP answered `error`.
    pub rejected: u64,
    /// Commands that could not be written: no reader on the pipe, pipe missing or full.
    pub undelivered: u64,
    /// Commands written but not answered within the timeout.
    pub unacknowledged: u64,
}

/// Announces mitigations through ExaBGP's API.
pub struct ExaBgp {
    pipe: PathBuf,
    /// The answer FIFO, when there is one and answers are awaited.
    answers: Option<PathBuf>,
    ack_timeout: Duration,
    /// What this run announced, by mitigation id: the exact command, to skip repeats and to
    /// withdraw on shutdown.
    announced: BTreeMap<String, (String, Rule)>,
    stats: ExaBgpStats,
}

fn is_stdout(pipe: &Path) -> bool {
    pipe.as_os_str() == "-"
}

impl ExaBgp {
    /// Checks the pipe is there (a FIFO) without waiting for ExaBGP: it may start later.
    pub fn new(config: &ExaBgpConfig) -> Result<ExaBgp> {
        let pipe = config.pipe.clone();
        let mut answers = None;
        if !is_stdout(&pipe) {
            let meta = std::fs::metadata(&pipe).with_context(|| {
                format!(
                    "exabgp: pipe {} (make it with `mkfifo`, where ExaBGP looks for `<exabgp.api.pipename>.in`)",
                    pipe.display()
                )
            })?;
            if !meta.file_type().is_fifo() {
                bail!("exabgp: {} is not a FIFO", pipe.display());
            }
            if config.ack_timeout_seconds > 0.0 {
                let out = pipe.with_extension("out");
                if std::fs::metadata(&out).is_ok_and(|m| m.file_type().is_fifo()) {
                    answers = Some(out);
                }
            }
        }
        Ok(ExaBgp {
            pipe,
            answers,
            ack_timeout: Duration::from_secs_f64(config.ack_timeout_seconds.clamp(0.0, 60.0)),
            announced: BTreeMap::new(),
            stats: ExaBgpStats::default(),
        })
    }

    pub fn stats(&self) -> ExaBgpStats {
        self.stats
    }

    /// Sends one raw API command line (for the command line and tests); an `error` answer is
    /// an error.
    pub fn command(&mut self, line: &str) -> Result<()> {
        if line.contains('\n') {
            bail!("exabgp: one command per line");
        }
        self.send(line)
    }

    /// Sends one command line and waits for its answer (when answers are read).
    fn send(&mut self, command: &str) -> Result<()> {
        let line = format!("{command}\n");
        if is_stdout(&self.pipe) {
            let mut out = std::io::stdout().lock();
            out.write_all(line.as_bytes())
                .and_then(|_| out.flush())
                .inspect_err(|_| self.stats.undelivered += 1)
                .context("exabgp: writing to stdout")?;
            self.stats.sent += 1;
            return Ok(());
        }
        if line.len() > 4096 {
            bail!("exabgp: command longer than PIPE_BUF, it could interleave: {command}");
        }
        // Open the answer FIFO before writing so ExaBGP can deliver the answer at once, and
        // drop answers nobody read (an earlier timeout) so they are not taken for this one.
        let mut answers = match &self.answers {
            Some(path) => Some(open_nonblocking(path, false)?),
            None => None,
        };
        if let Some(answers) = answers.as_mut() {
            let mut stale = [0u8; 512];
            while matches!(answers.read(&mut stale), Ok(n) if n > 0) {}
        }
        let mut pipe = match open_nonblocking(&self.pipe, true) {
            Ok(pipe) => pipe,
            Err(e) => {
                self.stats.undelivered += 1;
                if e.raw_os_error() == Some(libc::ENXIO) {
                    bail!(
                        "exabgp: nobody reads {}: is ExaBGP running, with exabgp.api.cli enabled and this pipe name?",
                        self.pipe.display()
                    );
                }
                return Err(e).with_context(|| format!("exabgp: opening {}", self.pipe.display()));
            }
        };
        // A full pipe (ExaBGP stalled) is retried for a moment, never waited on forever.
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            match pipe.write(line.as_bytes()) {
                Ok(n) if n == line.len() => break,
                Ok(_) => {
                    self.stats.undelivered += 1;
                    bail!("exabgp: short write to {}", self.pipe.display());
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => {
                    self.stats.undelivered += 1;
                    return Err(e)
                        .with_context(|| format!("exabgp: writing {}", self.pipe.display()));
                }
            }
        }
        self.stats.sent += 1;
        let Some(answers) = answers.as_mut() else {
            return Ok(());
        };
        match read_answer(answers, self.ack_timeout) {
            Some(answer) if answer == "done" => Ok(()),
            Some(answer) => {
                self.stats.rejected += 1;
                bail!("exabgp: `{command}` answered `{answer}` (see ExaBGP's log)")
            }
            None => {
                self.stats.unacknowledged += 1;
                eprintln!(
                    "exabgp: no answer to `{command}` within {:?} (exabgp.api.ack off?)",
                    self.ack_timeout
                );
                Ok(())
            }
        }
    }
}

fn open_nonblocking(path: &Path, write: bool) -> std::io::Result<File> {
    OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// The first line read before the deadline.
fn read_answer(answers: &mut File, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    let mut text = Vec::new();
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        match answers.read(&mut buf) {
            Ok(n) if n > 0 => {
                text.extend_from_slice(&buf[..n]);
                if let Some(end) = text.iter().position(|&b| b == b'\n') {
                    return Some(String::from_utf8_lossy(&text[..end]).trim().to_string());
                }
            }
            // 0: no writer yet (ExaBGP opens the FIFO per answer); WouldBlock: nothing yet.
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    None
}

fn communities(list: &[Community]) -> String {
    let list: Vec<String> = list.iter().map(Community::to_string).collect();
    format!("community [ {} ]", list.join(" "))
}

fn numeric(ranges: &[Range]) -> String {
    let items: Vec<String> = ranges
        .iter()
        .map(|r| {
            if r.first == r.last {
                format!("={}", r.first)
            } else {
                format!(">={}&<={}", r.first, r.last)
            }
        })
        .collect();
    format!("[ {} ]", items.join(" "))
}

/// TCP flag bits as ExaBGP names them, joined by `+`.
fn flag_names(bits: u8) -> String {
    const NAMES: [&str; 8] = ["fin", "syn", "rst", "push", "ack", "urg", "ece", "cwr"];
    NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join("+")
}

fn protocol_name(protocol: u8) -> String {
    match protocol {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        47 => "gre".into(),
        other => other.to_string(),
    }
}

/// The `match { … }` part of a FlowSpec command.
fn flow_match(filter: &FlowFilter) -> String {
    let v6 = matches!(filter.destination, IpNet::V6(_));
    let mut m: Vec<String> = Vec::new();
    // A /0 destination (a filter on what a customer sends) is no condition: left out.
    if filter.destination.prefix_len() > 0 {
        m.push(format!("destination {};", filter.destination.trunc()));
    }
    if let Some(source) = filter.source {
        m.push(format!("source {};", source.trunc()));
    }
    if !filter.protocols.is_empty() {
        let list: Vec<String> = filter
            .protocols
            .iter()
            .map(|p| format!("={}", protocol_name(*p)))
            .collect();
        let name = if v6 { "next-header" } else { "protocol" };
        m.push(format!("{name} [ {} ];", list.join(" ")));
    }
    if !filter.source_ports.is_empty() {
        m.push(format!("source-port {};", numeric(&filter.source_ports)));
    }
    if !filter.destination_ports.is_empty() {
        m.push(format!(
            "destination-port {};",
            numeric(&filter.destination_ports)
        ));
    }
    if let Some(length) = filter.packet_length {
        m.push(format!("packet-length {};", numeric(&[length])));
    }
    if let Some(flags) = filter.tcp_flags {
        // flags & mask == value: the set bits all set (`=` match), the others all clear (`!`).
        let set = flags.value & flags.mask;
        let clear = flags.mask & !flags.value;
        let mut parts = Vec::new();
        if set != 0 {
            parts.push(format!("={}", flag_names(set)));
        }
        if clear != 0 {
            parts.push(format!("!{}", flag_names(clear)));
        }
        if !parts.is_empty() {
            m.push(format!("tcp-flags [ {} ];", parts.join("&")));
        }
    }
    if filter.fragments {
        m.push("fragment [ is-fragment ];".to_string());
    }
    m.join(" ")
}

/// The ExaBGP command announcing a rule, e.g. `announce route 203.0.113.10/32 next-hop
/// 192.0.2.1 community [ 65535:666 ]`.
pub fn announce_command(rule: &Rule) -> String {
    format!("announce {}", route_text(rule))
}

/// The ExaBGP command withdrawing a rule.
pub fn withdraw_command(rule: &Rule) -> String {
    format!("withdraw {}", route_text(rule))
}

fn route_text(rule: &Rule) -> String {
    match rule {
        Rule::Blackhole {
            prefix,
            next_hop,
            communities: list,
        } => {
            let mut text = format!("route {} next-hop {next_hop}", prefix.trunc());
            if !list.is_empty() {
                text.push(' ');
                text.push_str(&communities(list));
            }
            text
        }
        Rule::Filter {
            filter,
            action,
            communities: list,
        } => {
            let mut then = match action {
                FlowAction::Discard => "discard;".to_string(),
                FlowAction::RateLimit { bytes_per_second } => {
                    let rate = (*bytes_per_second as f64).round().clamp(0.0, 1e12) as u64;
                    format!("rate-limit {rate};")
                }
                FlowAction::Redirect { asn, value } => format!("redirect {asn}:{value};"),
            };
            if !list.is_empty() {
                then.push_str(&format!(" {};", communities(list)));
            }
            format!(
                "flow route {{ match {{ {} }} then {{ {then} }} }}",
                flow_match(filter)
            )
        }
    }
}

impl Mitigator for ExaBgp {
    fn name(&self) -> &str {
        "exabgp"
    }

    fn accepts(&self, _rule: &Rule) -> bool {
        true
    }

    fn outlives_process(&self) -> bool {
        true
    }

    fn announce(&mut self, mitigation: &Mitigation) -> Result<Outcome> {
        if let Rule::Filter { filter, .. } = &mitigation.rule {
            // ExaBGP takes mixed families without complaint and sends nonsense.
            if filter.source.is_some_and(|s| {
                matches!(s, IpNet::V6(_)) != matches!(filter.destination, IpNet::V6(_))
            }) {
                bail!("exabgp: filter {filter}: source and destination are of different families");
            }
        }
        let command = announce_command(&mitigation.rule);
        if let Some((previous, rule)) = self.announced.get(&mitigation.id) {
            if *previous == command {
                return Ok(Outcome::Sent("already announced to ExaBGP".into()));
            }
            // The same id with another rule: the old route must not linger beside the new one.
            let withdraw = withdraw_command(rule);
            if route_key(rule) != route_key(&mitigation.rule) {
                self.send(&withdraw)?;
            }
        }
        self.send(&command)?;
        self.announced
            .insert(mitigation.id.clone(), (command, mitigation.rule.clone()));
        Ok(Outcome::Sent(format!(
            "taken by ExaBGP on {}",
            self.pipe.display()
        )))
    }

    fn withdraw(&mut self, mitigation: &Mitigation) -> Result<()> {
        let rule = self
            .announced
            .get(&mitigation.id)
            .map(|(_, rule)| rule.clone())
            .unwrap_or_else(|| mitigation.rule.clone());
        self.send(&withdraw_command(&rule))?;
        self.announced.remove(&mitigation.id);
        Ok(())
    }

    fn shutdown(&mut self, keep: bool) -> Result<()> {
        if keep {
            return Ok(());
        }
        let mut first_error = None;
        for (id, (_, rule)) in std::mem::take(&mut self.announced) {
            if let Err(e) = self.send(&withdraw_command(&rule)) {
                eprintln!("exabgp: withdrawing {id} on shutdown: {e:#}");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// What identifies a route in BGP (its NLRI): re-announcing the same key replaces the route.
fn route_key(rule: &Rule) -> String {
    match rule {
        Rule::Blackhole { prefix, .. } => prefix.trunc().to_string(),
        Rule::Filter { filter, .. } => flow_match(filter),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floodwall_mitigate::TcpFlags;

    #[test]
    fn commands_read_as_exabgp_4_expects_them() {
        let config: ExaBgpConfig = toml::from_str("enabled = true").unwrap();
        assert_eq!(config.pipe, PathBuf::from("/run/exabgp/exabgp.in"));
        assert!(toml::from_str::<ExaBgpConfig>("pipename = \"x\"").is_err());
        let blackhole = Rule::Blackhole {
            prefix: "203.0.113.10/32".parse().unwrap(),
            next_hop: "192.0.2.1".parse().unwrap(),
            communities: vec![Community::BLACKHOLE, "65001:666".parse().unwrap()],
        };
        assert_eq!(
            announce_command(&blackhole),
            "announce route 203.0.113.10/32 next-hop 192.0.2.1 community [ 65535:666 65001:666 ]"
        );
        let mut filter = FlowFilter::to("203.0.113.20/32".parse().unwrap());
        filter.protocols = vec![17];
        filter.source_ports = vec![Range::single(123)];
        filter.packet_length = Some(Range {
            first: 400,
            last: 65535,
        });
        let flow = Rule::Filter {
            filter,
            action: FlowAction::Discard,
            communities: vec![],
        };
        assert_eq!(
            withdraw_command(&flow),
            "withdraw flow route { match { destination 203.0.113.20/32; protocol [ =udp ]; source-port [ =123 ]; packet-length [ >=400&<=65535 ]; } then { discard; } }"
        );
        let mut filter = FlowFilter::to("2001:db8::7/128".parse().unwrap());
        filter.protocols = vec![6];
        filter.tcp_flags = Some(TcpFlags {
            value: 0x02,
            mask: 0x17,
        });
        filter.fragments = true;
        let flow = Rule::Filter {
            filter,
            action: FlowAction::RateLimit {
                bytes_per_second: 125000.0,
            },
            communities: vec!["65001:666".parse().unwrap()],
        };
        assert_eq!(
            announce_command(&flow),
            "announce flow route { match { destination 2001:db8::7/128; next-header [ =tcp ]; tcp-flags [ =syn&!fin+rst+ack ]; fragment [ is-fragment ]; } then { rate-limit 125000; community [ 65001:666 ]; } }"
        );
        // An outgoing attack: any destination (left out), one customer source.
        let mut outgoing = FlowFilter::to("0.0.0.0/0".parse().unwrap());
        outgoing.source = Some("198.51.100.9/32".parse().unwrap());
        outgoing.protocols = vec![6];
        let flow = Rule::Filter {
            filter: outgoing,
            action: FlowAction::Discard,
            communities: vec![],
        };
        assert_eq!(
            announce_command(&flow),
            "announce flow route { match { source 198.51.100.9/32; protocol [ =tcp ]; } then { discard; } }"
        );
    }
}
