//! `floodwall demo`: the real daemon (`floodwall run`, as a child with a generated
//! configuration) on loopback, a built-in botnet scenario streamed into its collector, and the
//! attacks it detects and the mitigations it would announce (dry run) shown live. Everything
//! lives in a temporary directory removed at exit; it sends only to 127.0.0.1 and ends by itself.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Seek, SeekFrom, Write};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use floodwall_daemon::bus::AttackRecord;
use floodwall_daemon::clock::unix_ms;
use floodwall_lab::bench::sender::PacedSender;
use floodwall_lab::demo::{self, Line, Style, View, WIDTH};
use floodwall_lab::simulate::{self, Options, Plan, ResolvedTruth, Sink};
use floodwall_wire::{Decoder, FlowRecord};
use ipnet::IpNet;

use super::DemoArgs;

/// The collector sees at most this many datagrams a second from the demo (the simulator's
/// default cap); a faster scenario stretches in time instead.
const MAX_RATE: f64 = 20_000.0;
const POLL: Duration = Duration::from_millis(100);
const REDRAW: Duration = Duration::from_millis(250);
/// Plain output reports the telemetry rate this often.
const PLAIN_RATE_EVERY: Duration = Duration::from_secs(5);
/// After the last datagram, attacks are over once quiet for the demo's quiet period; allow for
/// the collector's lateness and the evidence window on top.
const END_GRACE: Duration = Duration::from_secs(demo::QUIET_PERIOD_S + 6);

/// What the sender thread has sent so far.
#[derive(Default)]
struct Sent {
    datagrams: AtomicU64,
    records: AtomicU64,
    done: AtomicBool,
}

/// Paces the scenario's datagrams to the collector and counts them (records by decoding each,
/// as the collector will); stops generating when `stop` is set.
struct DemoSink {
    sender: PacedSender,
    decoder: Decoder,
    records: Vec<FlowRecord>,
    exporter: IpAddr,
    sent: Arc<Sent>,
    stop: Arc<AtomicBool>,
}

impl Sink for DemoSink {
    fn datagram(&mut self, ts_us: u64, bytes: &[u8]) -> Result<()> {
        if self.stop.load(Ordering::Relaxed) {
            bail!("stopped");
        }
        self.sender.datagram(ts_us, bytes)?;
        let _ = self
            .decoder
            .decode(self.exporter, ts_us / 1000, bytes, &mut self.records);
        self.sent.datagrams.fetch_add(1, Ordering::Relaxed);
        self.sent
            .records
            .fetch_add(self.records.len() as u64, Ordering::Relaxed);
        self.records.clear();
        Ok(())
    }
}

/// The temporary directory, removed however the demo ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The daemon child, stopped (SIGTERM, then SIGKILL) however the demo ends.
struct Daemon {
    child: Child,
    log: PathBuf,
    /// The dashboard's address, as the daemon logged it.
    dashboard: Option<String>,
}

impl Daemon {
    /// SIGTERM, then waits (bounded); SIGKILL if it does not stop. Returns its log.
    fn stop(&mut self) -> String {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_child(&self.child),
                rustix::process::Signal::TERM,
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if matches!(self.child.try_wait(), Ok(None)) {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// New complete lines of the events file since the last call.
struct Follow {
    path: PathBuf,
    offset: u64,
    partial: String,
}

impl Follow {
    fn lines(&mut self) -> Vec<AttackRecord> {
        let Ok(mut file) = File::open(&self.path) else {
            return Vec::new();
        };
        let mut text = String::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err()
            || file.read_to_string(&mut text).is_err()
        {
            return Vec::new();
        }
        self.offset += text.len() as u64;
        self.partial.push_str(&text);
        let mut out = Vec::new();
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            if let Ok(record) = serde_json::from_str(line.trim()) {
                out.push(record);
            }
        }
        out
    }
}

pub fn run(args: DemoArgs) -> Result<()> {
    let setup = Setup::new(&args)?;
    let mut daemon = start_daemon(&setup.config, &setup.dir.0)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
    }
    let mut view = first_view(&setup, &daemon, args.speed);
    let mut out = io::stdout().lock();
    show_intro(&mut out, &setup, &view)?;

    let sent = Arc::new(Sent::default());
    let origin_ms = unix_ms();
    let sender = spawn_sender(&setup, args.speed, &sent, &stop)?;
    let mut live = follow_live(&mut out, &setup, &mut daemon, &mut view, &sent, &stop)?;

    stop.store(true, Ordering::Relaxed);
    let send_result = sender.join().map_err(|_| anyhow!("the sender panicked"))?;
    let log = daemon.stop();
    // Events written while the daemon stopped.
    show_events(&mut out, &mut view, &mut live.follow, setup.tty)?;
    if let Err(e) = send_result {
        if !live.interrupted {
            return Err(e.context("sending the scenario"));
        }
    }
    summarize(&mut view, &setup, &live, &sent, &log, origin_ms, args.speed);
    let screen = show_summary(&mut out, &view, setup.tty)?;
    if let Some(path) = &args.svg {
        let title = format!("floodwall demo --scenario {}", setup.plan.scenario.name);
        std::fs::write(path, demo::svg::render(&screen, WIDTH, &title))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("demo: wrote the final screen to {}", path.display());
    }
    Ok(())
}

/// What the demo runs: the scenario's plan and truth, and the daemon's temporary directory,
/// configuration and collector address.
struct Setup {
    tty: bool,
    plan: Arc<Plan>,
    truth: ResolvedTruth,
    networks: Vec<IpNet>,
    dir: TempDir,
    listen: SocketAddr,
    config: PathBuf,
}

impl Setup {
    /// Checks the arguments, plans the scenario, and writes the daemon's configuration into a
    /// new temporary directory.
    fn new(args: &DemoArgs) -> Result<Setup> {
        if !(args.speed.is_finite() && args.speed > 0.0 && args.speed <= 100.0) {
            bail!("--speed must be above 0 and at most 100");
        }
        let tty = io::stdout().is_terminal() && !args.plain;
        let scenario = simulate::load(&args.scenario)?;
        // Live, the telemetry's clock is now (as `simulate --send` does).
        let options = Options {
            start_ms: Some((unix_ms() / 1000 + 1) * 1000),
            ..Options::default()
        };
        let plan = Arc::new(Plan::new(scenario, &options)?);
        let truth = plan.truth()?;
        let networks = plan.scenario.telemetry.networks.clone();

        let dir = TempDir(std::env::temp_dir().join(format!(
            "floodwall-demo-{}-{}",
            std::process::id(),
            unix_ms()
        )));
        std::fs::create_dir_all(&dir.0)
            .with_context(|| format!("cannot create {}", dir.0.display()))?;
        // A free port on loopback: the kernel picks it, the daemon binds it right after.
        let listen: SocketAddr = UdpSocket::bind("127.0.0.1:0")?.local_addr()?;
        let config = dir.0.join("floodwall.toml");
        std::fs::write(&config, demo::daemon_config(&networks, listen, &dir.0))?;
        Ok(Setup {
            tty,
            plan,
            truth,
            networks,
            dir,
            listen,
            config,
        })
    }
}

/// The view before any telemetry: the title and what runs where.
fn first_view(setup: &Setup, daemon: &Daemon, speed: f64) -> View {
    let plan = &setup.plan;
    View {
        title: format!(
            "Floodwall demo · scenario {} at {}× speed",
            plan.scenario.name, speed
        ),
        about: vec![
            plan.scenario.description.clone(),
            format!(
                "daemon: floodwall run --dry-run (pid {}) · collector {} · watching {}",
                daemon.child.id(),
                setup.listen,
                setup
                    .networks
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "mitigation: blackhole + FlowSpec in dry run: shows what it would announce, announces nothing"
                .into(),
        ]
        .into_iter()
        .chain(daemon.dashboard.as_ref().map(|url| {
            format!("dashboard: {url}/ (open it in a browser while the demo runs)")
        }))
        .collect(),
        telemetry: "telemetry: starting".into(),
        total_s: plan.scenario.duration_s as f64 / speed,
        ..View::default()
    }
}

/// Clears the terminal, or prints the title and what is about to be sent.
fn show_intro(out: &mut impl Write, setup: &Setup, view: &View) -> io::Result<()> {
    if setup.tty {
        // Clear once; later frames redraw from the top left.
        return write!(out, "\x1b[2J\x1b[H\x1b[?25l");
    }
    writeln!(out, "{}", view.title)?;
    for line in &view.about {
        writeln!(out, "{line}")?;
    }
    writeln!(
        out,
        "sending the scenario's telemetry ({}, 1:{} sampling, from exporter {}) to {}; \
         the engine's default limits decide",
        setup.plan.format.name(),
        setup.plan.sampling,
        setup.plan.scenario.telemetry.exporter,
        setup.listen
    )?;
    out.flush()
}

/// The thread that streams the scenario to the collector, counting into `sent` and marking it
/// done at the end; it stops generating when `stop` is set.
fn spawn_sender(
    setup: &Setup,
    speed: f64,
    sent: &Arc<Sent>,
    stop: &Arc<AtomicBool>,
) -> Result<JoinHandle<Result<()>>> {
    let sent = sent.clone();
    let stop = stop.clone();
    let plan = setup.plan.clone();
    let listen = setup.listen;
    Ok(std::thread::Builder::new()
        .name("demo-sender".into())
        .spawn(move || -> Result<()> {
            let mut sink = DemoSink {
                sender: PacedSender::new(listen, speed, MAX_RATE).map_err(|e| anyhow!("{e}"))?,
                decoder: Decoder::default(),
                records: Vec::new(),
                exporter: IpAddr::V4(plan.scenario.telemetry.exporter),
                sent: sent.clone(),
                stop,
            };
            let result = simulate::run(&plan, &mut sink).and_then(|_| Ok(sink.sender.flush()?));
            sent.done.store(true, Ordering::Relaxed);
            result
        })?)
}

/// How the live part ended.
struct Live {
    started: Instant,
    follow: Follow,
    sender_done_at: Option<Instant>,
    interrupted: bool,
}

/// The live part: follows the events file into the view and redraws it (or prints what
/// changed) until the attacks are over after the last datagram, the end grace passes, a signal
/// arrives, or the hard deadline.
fn follow_live(
    out: &mut impl Write,
    setup: &Setup,
    daemon: &mut Daemon,
    view: &mut View,
    sent: &Sent,
    stop: &AtomicBool,
) -> Result<Live> {
    let tty = setup.tty;
    let started = Instant::now();
    // Bounded whatever happens: the scenario at this speed, the end grace, and a margin.
    let hard_deadline =
        started + Duration::from_secs_f64(view.total_s) + END_GRACE + Duration::from_secs(20);
    let mut follow = Follow {
        path: setup.dir.0.join("events.jsonl"),
        offset: 0,
        partial: String::new(),
    };
    let mut sender_done_at: Option<Instant> = None;
    let mut last_draw = Instant::now() - REDRAW;
    let mut last_plain_rate = Instant::now();
    let mut rate_window = (Instant::now(), 0u64, 0u64);
    let mut interrupted = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            interrupted = true;
            break;
        }
        if let Ok(Some(status)) = daemon.child.try_wait() {
            let log = std::fs::read_to_string(&daemon.log).unwrap_or_default();
            bail!("the daemon stopped unexpectedly ({status}):\n{log}");
        }
        view.elapsed_s = started.elapsed().as_secs_f64();
        show_events(out, view, &mut follow, tty)?;
        let (datagrams, records) = (
            sent.datagrams.load(Ordering::Relaxed),
            sent.records.load(Ordering::Relaxed),
        );
        if rate_window.0.elapsed() >= Duration::from_secs(1) {
            let seconds = rate_window.0.elapsed().as_secs_f64();
            view.telemetry = format!(
                "telemetry: {} records/s in {} datagrams/s ({}, 1:{}) · {} records sent",
                demo::thousands(((records - rate_window.2) as f64 / seconds) as u64),
                demo::thousands(((datagrams - rate_window.1) as f64 / seconds) as u64),
                setup.plan.format.name(),
                setup.plan.sampling,
                demo::thousands(records)
            );
            rate_window = (Instant::now(), datagrams, records);
        }
        if tty {
            if last_draw.elapsed() >= REDRAW {
                draw(out, &view.screen(), terminal_size())?;
                last_draw = Instant::now();
            }
        } else if last_plain_rate.elapsed() >= PLAIN_RATE_EVERY {
            writeln!(out, "[{:>6.1}s] {}", view.elapsed_s, view.telemetry)?;
            last_plain_rate = Instant::now();
        }
        out.flush()?;
        if sent.done.load(Ordering::Relaxed) {
            let at = *sender_done_at.get_or_insert_with(Instant::now);
            let all_ended = !view.attacks.is_empty() && view.active() == 0;
            if all_ended || at.elapsed() >= END_GRACE {
                break;
            }
        }
        if Instant::now() >= hard_deadline {
            break;
        }
        std::thread::sleep(POLL);
    }
    Ok(Live {
        started,
        follow,
        sender_done_at,
        interrupted,
    })
}

/// Applies the events file's new lines to the view; plain output prints what changed.
fn show_events(
    out: &mut impl Write,
    view: &mut View,
    follow: &mut Follow,
    tty: bool,
) -> io::Result<()> {
    for record in follow.lines() {
        for change in view.apply(&record) {
            if !tty {
                for line in demo::change_lines(view, &change) {
                    writeln!(out, "{line}")?;
                }
            }
        }
    }
    Ok(())
}

/// The final telemetry line and the summary: detections against the scenario's truth, and
/// what the daemon counted at exit (from its `log`).
fn summarize(
    view: &mut View,
    setup: &Setup,
    live: &Live,
    sent: &Sent,
    log: &str,
    origin_ms: u64,
    speed: f64,
) {
    view.elapsed_s = live.started.elapsed().as_secs_f64();
    let (datagrams, records) = (
        sent.datagrams.load(Ordering::Relaxed),
        sent.records.load(Ordering::Relaxed),
    );
    view.telemetry = format!(
        "telemetry: {} records in {} datagrams sent in {:.0} s ({}, 1:{} sampling)",
        demo::thousands(records),
        demo::thousands(datagrams),
        live.sender_done_at
            .unwrap_or_else(Instant::now)
            .duration_since(live.started)
            .as_secs_f64(),
        setup.plan.format.name(),
        setup.plan.sampling
    );
    view.summary = demo::summary(
        view,
        &setup.truth.expect,
        setup.plan.start_ms,
        origin_ms,
        speed,
    );
    if live.interrupted {
        view.summary.insert(
            0,
            Line::styled(Style::Yellow, "interrupted: the scenario was cut short"),
        );
    }
    // The daemon's own count at exit: what reached its engine, beside what was sent.
    if let Some(totals) = log
        .lines()
        .find_map(|l| l.split("stopped; ").nth(1))
        .and_then(|t| t.split(';').next())
    {
        view.summary.push(Line::styled(
            Style::Dim,
            format!("  the daemon got {totals}"),
        ));
    }
    view.summary.push(Line::styled(
        Style::Dim,
        "  more: floodwall simulate --list, then floodwall demo --scenario NAME",
    ));
}

/// Prints the final screen (whole, on a terminal) or the summary lines; returns the screen.
fn show_summary(out: &mut impl Write, view: &View, tty: bool) -> io::Result<Vec<Line>> {
    let screen: Vec<Line> = view.screen().iter().map(|l| l.truncated(WIDTH)).collect();
    if tty {
        // The final screen stays in the terminal, whole, scrolling if it must.
        write!(out, "\x1b[2J\x1b[H")?;
        for line in &screen {
            writeln!(out, "{}\x1b[K", line.ansi())?;
        }
        write!(out, "\x1b[?25h")?;
    } else {
        writeln!(out, "[{:>6.1}s] {}", view.elapsed_s, view.telemetry)?;
        for line in &view.summary {
            writeln!(out, "{}", line.text())?;
        }
    }
    out.flush()?;
    Ok(screen)
}

fn start_daemon(config: &Path, dir: &Path) -> Result<Daemon> {
    let log = dir.join("daemon.log");
    let exe = std::env::current_exe().context("finding the floodwall binary")?;
    let child = Command::new(exe)
        .args(["run", "--dry-run", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&log)?)
        // Its own process group: Ctrl-C reaches the demo, which stops the daemon in order.
        .process_group(0)
        .spawn()
        .context("starting floodwall run")?;
    let mut daemon = Daemon {
        child,
        log,
        dashboard: None,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&daemon.log).unwrap_or_default();
        // The dashboard's line follows the collector's at once.
        if let Some(url) = floodwall_daemon::serve::url_in_log(&text) {
            daemon.dashboard = Some(url.to_string());
            return Ok(daemon);
        }
        if let Ok(Some(status)) = daemon.child.try_wait() {
            bail!("the daemon did not start ({status}):\n{text}");
        }
        if Instant::now() >= deadline {
            daemon.stop();
            bail!("the daemon did not start listening within 30 s:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One frame from the top left, cut to the terminal's size: a wrapped or scrolled line would
/// break the next redraw (the final screen is printed whole).
fn draw(out: &mut impl Write, screen: &[Line], (rows, columns): (usize, usize)) -> io::Result<()> {
    write!(out, "\x1b[H")?;
    for line in screen.iter().take(rows.saturating_sub(1)) {
        writeln!(out, "{}\x1b[K", line.truncated(WIDTH.min(columns)).ansi())?;
    }
    write!(out, "\x1b[J")
}

/// Rows and columns of the terminal on stdout (24 × 80 when it does not say).
fn terminal_size() -> (usize, usize) {
    match rustix::termios::tcgetwinsize(io::stdout()) {
        Ok(size) if size.ws_row > 0 && size.ws_col > 0 => {
            (size.ws_row as usize, size.ws_col as usize)
        }
        _ => (24, 80),
    }
}
