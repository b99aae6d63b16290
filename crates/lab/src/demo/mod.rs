//! `floodwall demo`'s pieces that need no process or terminal: the daemon configuration it
//! runs with, the view built from the daemon's event records, and its renderings (ANSI screen,
//! plain lines, SVG screenshot). The orchestration is in `cli/demo.rs`.

pub mod svg;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;

use floodwall_daemon::bus::AttackRecord;
use floodwall_detect::event::{Direction, EventKind, Trigger};
use floodwall_detect::fingerprint::Share;
use floodwall_detect::{Metric, Vector};
use floodwall_mitigate::Status;
use ipnet::IpNet;

use crate::simulate::truth::Expectation;
use floodwall_daemon::units::{human_bps, human_pps};

/// The built-in scenario the demo plays unless `--scenario` says otherwise.
pub const DEFAULT_SCENARIO: &str = "demo";
/// Columns the screen is laid out for.
pub const WIDTH: usize = 100;
/// Quiet seconds after which the demo's daemon declares an attack over (the default is 10):
/// short, so the demo shows the ends without a long wait.
pub const QUIET_PERIOD_S: u64 = 4;

/// The daemon's configuration: default limits, the scenario's networks, one collector on
/// loopback, events and state in the demo's temporary directory, blackhole and FlowSpec on in
/// dry run (`floodwall run --dry-run` is passed too), no BGP peer, nothing else.
pub fn daemon_config(networks: &[IpNet], listen: SocketAddr, dir: &Path) -> String {
    let networks: Vec<String> = networks.iter().map(|n| format!("\"{n}\"")).collect();
    format!(
        "# Written by `floodwall demo`; removed when it exits.\n\
         networks = [{networks}]\n\n\
         [http]\nlisten = \"127.0.0.1:0\"\n\n\
         [collector]\nlisten = [\"{listen}\"]\n\n\
         [events]\nfile = \"{events}\"\n\n\
         [state]\ndir = \"{state}\"\n\n\
         [detection]\nquiet_period_s = {QUIET_PERIOD_S}\n\n\
         [mitigation]\ndry_run = true\n\n\
         [mitigation.blackhole]\nenabled = true\n\n\
         [mitigation.flowspec]\nenabled = true\n",
        networks = networks.join(", "),
        events = toml_path(&dir.join("events.jsonl")),
        state = toml_path(&dir.join("state")),
    )
}

/// A path as a TOML basic string (temporary directories may hold backslashes or quotes).
fn toml_path(path: &Path) -> String {
    path.display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}

/// One rule the plan decided for an attack, as the event record's `mitigations` says.
#[derive(Debug, Clone, PartialEq)]
pub struct Mitigation {
    pub id: String,
    pub text: String,
    pub status: Status,
    pub coverage: Option<f64>,
    pub reason: Option<String>,
}

/// An attack as the demo shows it: the latest of its events.
#[derive(Debug, Clone)]
pub struct Attack {
    pub id: String,
    pub target: String,
    pub direction: String,
    pub carpet: bool,
    pub vectors: Vec<String>,
    pub pps: u64,
    pub bps: u64,
    pub peak_pps: u64,
    pub peak_bps: u64,
    pub sources: u64,
    /// Unix ms of the `attack_started` event (telemetry time, which is arrival time here).
    pub detected_ms: u64,
    pub ended_ms: Option<u64>,
    pub trigger: String,
    pub top_sources: String,
    pub top_source_ports: String,
    pub top_destination_ports: String,
    pub mitigations: Vec<Mitigation>,
}

/// Everything on the screen.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub title: String,
    /// Dim lines under the title: the scenario, the daemon, the mitigation mode.
    pub about: Vec<String>,
    pub telemetry: String,
    /// Seconds since the telemetry began, and the scenario's length at this speed.
    pub elapsed_s: f64,
    pub total_s: f64,
    pub attacks: Vec<Attack>,
    /// Set at the end: the comparison with the scenario's truth and the daemon's totals.
    pub summary: Vec<Line>,
}

/// What changed with one event, for the line-by-line output.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Started(usize),
    /// New or changed rules of an attack.
    Mitigations(usize, Vec<Mitigation>),
    Ended(usize),
}

impl View {
    /// Applies one record of the events file; returns what a reader should be told.
    pub fn apply(&mut self, record: &AttackRecord) -> Vec<Change> {
        let event = &record.event;
        let mut changes = Vec::new();
        let index = match self.attacks.iter().position(|a| a.id == event.attack_id) {
            Some(i) => i,
            None => {
                self.attacks.push(Attack {
                    id: event.attack_id.clone(),
                    target: event.target.to_string(),
                    direction: match event.direction {
                        Direction::Incoming => "incoming",
                        Direction::Outgoing => "outgoing",
                    }
                    .to_string(),
                    carpet: event.carpet_bombing,
                    vectors: Vec::new(),
                    pps: 0,
                    bps: 0,
                    peak_pps: 0,
                    peak_bps: 0,
                    sources: 0,
                    detected_ms: event.ts,
                    ended_ms: None,
                    trigger: trigger(&event.trigger),
                    top_sources: String::new(),
                    top_source_ports: String::new(),
                    top_destination_ports: String::new(),
                    mitigations: Vec::new(),
                });
                changes.push(Change::Started(self.attacks.len() - 1));
                self.attacks.len() - 1
            }
        };
        let attack = &mut self.attacks[index];
        attack.vectors = event.vectors.iter().map(|v| vector_name(*v)).collect();
        attack.pps = event.pps;
        attack.bps = event.bps;
        attack.peak_pps = event.peak_pps.max(attack.peak_pps);
        attack.peak_bps = event.peak_bps.max(attack.peak_bps);
        attack.sources = event.sources.max(attack.sources);
        let fingerprint = &event.fingerprint;
        attack.top_sources = shares(&fingerprint.top_sources, 3);
        attack.top_source_ports = shares(&fingerprint.top_source_ports, 3);
        attack.top_destination_ports = shares(&fingerprint.top_destination_ports, 3);
        let mut new_rules = Vec::new();
        for d in &record.decisions {
            let rule = Mitigation {
                id: d.id.clone(),
                text: d.text.clone(),
                status: d.status,
                coverage: d.coverage,
                reason: d.reason.clone(),
            };
            match attack.mitigations.iter_mut().find(|r| r.id == rule.id) {
                // A later event says the rule is `held`: what it first said it would do stays.
                Some(known) if known.status == Status::DryRun && rule.status == Status::Held => {}
                // In dry run nothing is held, so each update derives the rule afresh: a reader
                // is told when it says something new, not when its coverage moves a little.
                Some(known) => {
                    let news = known.text != rule.text || known.status != rule.status;
                    *known = rule.clone();
                    if news {
                        new_rules.push(rule);
                    }
                }
                None => {
                    attack.mitigations.push(rule.clone());
                    new_rules.push(rule);
                }
            }
        }
        if !new_rules.is_empty() {
            changes.push(Change::Mitigations(index, new_rules));
        }
        if event.event == EventKind::AttackEnded {
            attack.ended_ms = Some(event.ended_at.unwrap_or(event.ts));
            changes.push(Change::Ended(index));
        }
        changes
    }

    pub fn active(&self) -> usize {
        self.attacks.iter().filter(|a| a.ended_ms.is_none()).count()
    }

    /// The whole screen, top to bottom.
    pub fn screen(&self) -> Vec<Line> {
        let mut lines = vec![Line::styled(Style::Title, &self.title)];
        lines.extend(self.about.iter().map(|l| Line::styled(Style::Dim, l)));
        lines.extend([
            Line::plain(&self.telemetry),
            progress(self.elapsed_s, self.total_s, self.active()),
            Line::plain(""),
        ]);
        if self.attacks.is_empty() {
            lines.push(Line::styled(
                Style::Dim,
                "no attack detected yet: ordinary traffic of the monitored networks",
            ));
        }
        for attack in &self.attacks {
            lines.extend(attack_lines(attack));
            lines.push(Line::plain(""));
        }
        lines.extend(self.summary.iter().cloned());
        lines
    }
}

/// A vector as the events file names it (`udp_flood`).
fn vector_name(vector: Vector) -> String {
    serde_json::to_value(vector)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `value share%, ...` of a fingerprint's top list.
fn shares<T: std::fmt::Display>(list: &[Share<T>], n: usize) -> String {
    list.iter()
        .take(n)
        .map(|s| {
            let share = s.share * 100.0;
            // A spread flood's top entries hold fractions of a percent: that is the point.
            if share < 1.0 {
                format!("{} {share:.2}%", s.value)
            } else {
                format!("{} {share:.0}%", s.value)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn trigger(t: &Trigger) -> String {
    let (value, limit) = match t.metric {
        Metric::Mbps => (
            human_bps((t.value * 1e6) as u64),
            human_bps((t.limit * 1e6) as u64),
        ),
        m if m.name().contains("bps") => (human_bps(t.value as u64), human_bps(t.limit as u64)),
        _ => (human_pps(t.value as u64), human_pps(t.limit as u64)),
    };
    format!(
        "{} {value} crossed the limit of {limit} ({})",
        t.metric.name(),
        t.kind
    )
}

/// Seconds as `m:ss`.
pub fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

fn progress(elapsed: f64, total: f64, active: usize) -> Line {
    const BAR: usize = 40;
    let done = if total > 0.0 {
        ((elapsed / total).clamp(0.0, 1.0) * BAR as f64) as usize
    } else {
        0
    };
    Line(vec![
        Span(
            Style::Plain,
            format!("{} / {}  ", clock(elapsed.min(total)), clock(total)),
        ),
        Span(Style::Green, "█".repeat(done)),
        Span(Style::Dim, "░".repeat(BAR - done)),
        Span(
            if active > 0 { Style::Red } else { Style::Plain },
            format!("  {active} active"),
        ),
    ])
}

/// An attack's block: headline, rates, evidence, and what would be announced.
fn attack_lines(a: &Attack) -> Vec<Line> {
    let (state, style) = match a.ended_ms {
        None => ("UNDER ATTACK".to_string(), Style::Red),
        Some(end) => (
            format!(
                "ended after {:.0} s",
                end.saturating_sub(a.detected_ms) as f64 / 1000.0
            ),
            Style::Green,
        ),
    };
    let kind = if a.carpet { "carpet bombing" } else { "host" };
    let mut lines = vec![Line(vec![
        Span(style, format!("■ {state:<17} ")),
        Span(Style::Bold, format!("{:<18}", a.target)),
        Span(Style::Plain, format!(" {} {kind}  ", a.direction)),
        Span(Style::Yellow, a.vectors.join(" + ")),
    ])];
    let now = if a.ended_ms.is_none() {
        format!("latest {} {} · ", human_pps(a.pps), human_bps(a.bps))
    } else {
        String::new()
    };
    lines.push(Line::plain(format!(
        "    {now}peak {} {} · {} sources",
        human_pps(a.peak_pps),
        human_bps(a.peak_bps),
        thousands(a.sources)
    )));
    lines.push(Line::styled(Style::Dim, format!("    why: {}", a.trigger)));
    let mut evidence = Vec::new();
    if !a.top_sources.is_empty() {
        evidence.push(format!("top sources {}", a.top_sources));
    }
    if !evidence.is_empty() {
        lines.push(Line::styled(
            Style::Dim,
            format!("    {}", evidence.join("")),
        ));
    }
    let mut ports = Vec::new();
    if !a.top_source_ports.is_empty() {
        ports.push(format!("src ports {}", a.top_source_ports));
    }
    if !a.top_destination_ports.is_empty() {
        ports.push(format!("dst ports {}", a.top_destination_ports));
    }
    if !ports.is_empty() {
        lines.push(Line::styled(
            Style::Dim,
            format!("    {}", ports.join(" · ")),
        ));
    }
    for m in &a.mitigations {
        lines.extend(mitigation_lines(m));
    }
    lines
}

/// The rule's line, and its coverage on a line of its own when both do not fit the width.
fn mitigation_lines(m: &Mitigation) -> Vec<Line> {
    let line = mitigation_line(m);
    if line.text().chars().count() <= WIDTH {
        return vec![line];
    }
    let mut bare = m.clone();
    bare.coverage = None;
    let mut lines = vec![mitigation_line(&bare)];
    if let Some(c) = m.coverage {
        lines.push(Line::styled(
            Style::Dim,
            format!("      [covers ~{:.0}% of the flood]", c * 100.0),
        ));
    }
    lines
}

fn mitigation_line(m: &Mitigation) -> Line {
    let (label, style) = match m.status {
        Status::DryRun => ("would announce", Style::Cyan),
        Status::Announced => ("announced", Style::Cyan),
        Status::Held => ("held", Style::Cyan),
        Status::Refused => ("refused", Style::Yellow),
        Status::Queued => ("queued", Style::Yellow),
        Status::Failed => ("not announced", Style::Yellow),
        Status::AwaitingEvidence => ("awaiting evidence", Style::Dim),
    };
    let mut text = m.text.clone();
    if let Some(c) = m.coverage {
        let _ = write!(text, " [covers ~{:.0}%]", c * 100.0);
    }
    if let Some(r) = &m.reason {
        let _ = write!(text, "  ({r})");
    }
    Line(vec![
        Span(style, format!("    ⇒ {label}: ")),
        Span(Style::Plain, text),
    ])
}

/// 1234567 → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The plain (line-by-line) report of one change: what `--plain` and logs print.
pub fn change_lines(view: &View, change: &Change) -> Vec<String> {
    let stamp = format!("[{:>6.1}s]", view.elapsed_s);
    match change {
        Change::Started(i) => {
            let a = &view.attacks[*i];
            let mut lines = vec![format!(
                "{stamp} ATTACK DETECTED {} {}{}: {} · {} {} · {} sources",
                a.target,
                a.direction,
                if a.carpet { " carpet bombing" } else { "" },
                a.vectors.join(" + "),
                human_pps(a.pps),
                human_bps(a.bps),
                thousands(a.sources)
            )];
            lines.push(format!("          why: {}", a.trigger));
            if !a.top_sources.is_empty() {
                lines.push(format!("          top sources {}", a.top_sources));
            }
            if !a.top_source_ports.is_empty() || !a.top_destination_ports.is_empty() {
                lines.push(format!(
                    "          src ports {} · dst ports {}",
                    a.top_source_ports, a.top_destination_ports
                ));
            }
            lines
        }
        Change::Mitigations(_, rules) => rules
            .iter()
            .map(|m| format!("        {}", mitigation_line(m).text().trim_start()))
            .collect(),
        Change::Ended(i) => {
            let a = &view.attacks[*i];
            vec![format!(
                "{stamp} attack ended {} {}: lasted {:.0} s, peak {} {}, {} sources",
                a.target,
                a.vectors.join(" + "),
                a.ended_ms
                    .unwrap_or(a.detected_ms)
                    .saturating_sub(a.detected_ms) as f64
                    / 1000.0,
                human_pps(a.peak_pps),
                human_bps(a.peak_bps),
                thousands(a.sources)
            )]
        }
    }
}

/// The end: each attack of the scenario's truth, found or not, and anything else reported.
/// `origin_ms` is the Unix ms at which the scenario's time `start_ms` was sent; `speed`
/// compresses scenario time.
pub fn summary(
    view: &View,
    expected: &[Expectation],
    start_ms: u64,
    origin_ms: u64,
    speed: f64,
) -> Vec<Line> {
    let mut lines = vec![Line::styled(
        Style::Bold,
        "Summary — the scenario's attacks (its truth, rates × speed) and what Floodwall reported",
    )];
    let mut matched = vec![false; view.attacks.len()];
    for e in expected {
        let target = e.target.to_string();
        let found = view
            .attacks
            .iter()
            .enumerate()
            .find(|(i, a)| !matched[*i] && a.target == target);
        let wall_start = origin_ms as f64 + e.start_ms.saturating_sub(start_ms) as f64 / speed;
        match found {
            Some((i, a)) => {
                matched[i] = true;
                let vectors_ok = e.vectors.iter().all(|v| a.vectors.contains(v));
                lines.push(Line(vec![
                    Span(Style::Green, "  ✓ ".to_string()),
                    Span(
                        Style::Plain,
                        format!(
                            "{:<16} {:<18} detected after {:.1} s · peak {} (truth {})",
                            target,
                            a.vectors.join(" + "),
                            (a.detected_ms as f64 - wall_start).max(0.0) / 1000.0,
                            human_pps(a.peak_pps),
                            human_pps((e.peak_pps * speed) as u64),
                        ),
                    ),
                ]));
                if !vectors_ok {
                    lines.push(Line::styled(
                        Style::Yellow,
                        format!("      expected vectors {}", e.vectors.join(" + ")),
                    ));
                }
            }
            None if e.required => lines.push(Line(vec![
                Span(Style::Red, "  ✗ ".to_string()),
                Span(
                    Style::Plain,
                    format!("{target:<16} {:<18} not reported", e.vectors.join(" + ")),
                ),
            ])),
            None => {}
        }
    }
    for (a, _) in view.attacks.iter().zip(&matched).filter(|(_, m)| !**m) {
        lines.push(Line::styled(
            Style::Yellow,
            format!(
                "  ? {:<16} {:<18} reported, not in the scenario's truth",
                a.target,
                a.vectors.join(" + ")
            ),
        ));
    }
    let rules: usize = view.attacks.iter().map(|a| a.mitigations.len()).sum();
    lines.push(Line::plain(format!(
        "  {rules} mitigation rules would have been announced (dry run: nothing went to any router)"
    )));
    lines
}

/// How a span is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Dim,
    Bold,
    Title,
    Red,
    Green,
    Yellow,
    Cyan,
}

impl Style {
    fn ansi(self) -> &'static str {
        match self {
            Style::Plain => "",
            Style::Dim => "\x1b[2m",
            Style::Bold => "\x1b[1m",
            Style::Title => "\x1b[1;36m",
            Style::Red => "\x1b[1;31m",
            Style::Green => "\x1b[32m",
            Style::Yellow => "\x1b[33m",
            Style::Cyan => "\x1b[36m",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Span(pub Style, pub String);

/// One line of the screen.
#[derive(Debug, Clone, PartialEq)]
pub struct Line(pub Vec<Span>);

impl Line {
    pub fn plain(text: impl Into<String>) -> Line {
        Line(vec![Span(Style::Plain, text.into())])
    }

    pub fn styled(style: Style, text: impl Into<String>) -> Line {
        Line(vec![Span(style, text.into())])
    }

    /// The text without styles.
    pub fn text(&self) -> String {
        self.0.iter().map(|s| s.1.as_str()).collect()
    }

    /// The line cut to `width` columns (characters: the screen holds no wide ones).
    pub fn truncated(&self, width: usize) -> Line {
        let mut left = width;
        let mut spans = Vec::new();
        for Span(style, text) in &self.0 {
            if left == 0 {
                break;
            }
            let n = text.chars().count();
            if n <= left {
                spans.push(Span(*style, text.clone()));
                left -= n;
            } else {
                let cut: String = text.chars().take(left.saturating_sub(1)).collect();
                spans.push(Span(*style, format!("{cut}…")));
                left = 0;
            }
        }
        Line(spans)
    }

    /// With ANSI colours.
    pub fn ansi(&self) -> String {
        let mut out = String::new();
        for Span(style, text) in &self.0 {
            if *style == Style::Plain {
                out.push_str(text);
            } else {
                let _ = write!(out, "{}{text}\x1b[0m", style.ansi());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// A record as the daemon writes it (dry run), parsed as the demo parses the events file.
    fn started() -> Value {
        json!({"event":"attack_started","attack_id":"1-in-198.18.2.77/32","ts":"2026-11-30T10:00:01.000Z",
            "direction":"incoming","target":"198.18.2.77/32","carpet_bombing":false,"hostgroup":"default",
            "vectors":["udp_flood"],"bps":4464000000u64,"pps":1000000,"peak_bps":4464000000u64,
            "peak_pps":1000000,"sources":13912,"started_at":"2026-11-30T10:00:01.000Z",
            "trigger":{"kind":"threshold","metric":"pps","value":1000000.0,"limit":100000.0},
            "evidence":{"samples":1000,"datagrams":100,"instants":50,"largest_datagram_share":0.01},
            "fingerprint":{"sources_estimate":13912,
                "protocols":{"tcp":0.0,"udp":1.0,"icmp":0.0,"gre":0.0,"other":0.0},"fragments":0.0,
                "packet_sizes":{"upper_bounds":[64,128,256,512,1024,1500,65535],"shares":[0.0,0.0,0.0,0.0,1.0,0.0,0.0]},
                "ttls":{"upper_bounds":[32,64,128,255],"shares":[0.0,1.0,0.0,0.0]},
                "top_sources":[{"value":"100.64.0.1","share":0.01,"packets":1}],
                "top_source_ports":[],"top_destination_ports":[{"value":443,"share":0.5,"packets":1}],"top_tcp_flags":[],
                "exporters":[],"peak_bps":4464000000u64,"peak_pps":1000000,"packets":1000000,"bytes":558000000},
            "mitigations":[{"id":"blackhole:198.18.2.77/32",
                    "rule":{"kind":"blackhole","prefix":"198.18.2.77/32","next_hop":"192.0.2.1","communities":["65535:666"]},
                    "text":"blackhole 198.18.2.77/32 next-hop 192.0.2.1 communities 65535:666","status":"dry_run"},
                {"id":"flowspec:198.18.2.77/32",
                    "rule":{"kind":"flowspec","filter":{"destination":"198.18.2.77/32","protocols":[17]},"action":{"type":"discard"}},
                    "text":"flowspec dst 198.18.2.77/32 proto 17 then discard","coverage":0.97,"status":"dry_run"}]})
    }

    fn record(value: &Value) -> AttackRecord {
        serde_json::from_value(value.clone()).expect("a record as the daemon writes it")
    }

    #[test]
    fn events_become_an_attack_with_its_rules_once() {
        let mut view = View::default();
        let changes = view.apply(&record(&started()));
        assert_eq!(changes[0], Change::Started(0));
        assert!(matches!(&changes[1], Change::Mitigations(0, r) if r.len() == 2));
        let mut update = started();
        update["event"] = json!("attack_updated");
        update["peak_pps"] = json!(3_000_000);
        update["mitigations"][0]["status"] = json!("held");
        assert!(view.apply(&record(&update)).is_empty());
        assert_eq!(view.attacks[0].peak_pps, 3_000_000);
        update["event"] = json!("attack_ended");
        update["ended_at"] = json!("2026-11-30T10:00:31.000Z");
        assert_eq!(view.apply(&record(&update)), [Change::Ended(0)]);
        let text: Vec<String> = view.screen().iter().map(|l| l.text()).collect();
        let text = text.join("\n");
        assert!(text.contains("ended after 30 s"), "{text}");
        assert!(
            text.contains("why: pps 1.00 Mpps crossed the limit of 100.00 kpps (threshold)"),
            "{text}"
        );
        assert!(
            text.contains("would announce: blackhole 198.18.2.77/32"),
            "{text}"
        );
        assert!(text.contains("then discard [covers ~97%]"), "{text}");
        assert!(text.contains("top sources 100.64.0.1 1%"), "{text}");
        let lines = change_lines(&view, &Change::Started(0));
        assert!(lines[0].contains("ATTACK DETECTED 198.18.2.77/32 incoming: udp_flood"));
    }

    #[test]
    fn the_daemon_configuration_is_valid_and_mitigates_in_dry_run_only() {
        let dir = Path::new("/tmp/a \"quoted\" dir");
        let text = daemon_config(
            &["198.18.0.0/15".parse().unwrap()],
            "127.0.0.1:40000".parse().unwrap(),
            dir,
        );
        let config = floodwall_daemon::config::Config::parse(&text, "demo").unwrap();
        assert_eq!(config.networks, ["198.18.0.0/15".parse::<IpNet>().unwrap()]);
        assert_eq!(
            config.collector.listen,
            ["127.0.0.1:40000".parse().unwrap()]
        );
        assert_eq!(config.events.file, dir.join("events.jsonl"));
        assert!(config.mitigation.dry_run);
        assert!(config.mitigation.blackhole.enabled && config.mitigation.flowspec.enabled);
        assert!(config.bgp.is_none() && !config.exabgp.enabled && !config.nftables.enabled);
        assert!(config.webhooks.is_empty() && config.scripts.is_empty());
    }

    #[test]
    fn lines_fit_the_width_and_numbers_read_well() {
        let line = Line(vec![
            Span(Style::Red, "abc".into()),
            Span(Style::Plain, "defgh".into()),
        ]);
        assert_eq!(line.truncated(5).text(), "abcd…");
        assert_eq!(line.truncated(8).text(), "abcdefgh");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(12), "12");
        assert_eq!(clock(75.2), "1:15");
    }
}
