//! Command-line definitions. The CLI is a public interface: scripts depend on it, keep it stable.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::builder::{EnumValueParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use floodwall_daemon::sources::pcap::CaptureMode;
use ipnet::IpNet;

mod bench;
mod check_config;
mod demo;
mod flows;
mod hunt;
mod init;
mod mitigations;
mod replay;
mod run;
mod simulate;
mod token;

#[derive(Parser, Debug)]
#[command(
    name = "floodwall",
    version,
    about = "DDoS detection and mitigation from sFlow, NetFlow and IPFIX telemetry"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print a shell completion script (bash, zsh, fish, ...) on stdout.
    #[command(hide = true)]
    Completions(crate::docs::CompletionsArgs),
    /// Write the man pages, generated from these definitions.
    #[command(hide = true)]
    Man(crate::docs::ManArgs),
    /// Run captures (pcap/pcapng of sFlow/NetFlow/IPFIX datagrams, or raw packets) through the
    /// detection engine as fast as the CPU allows and print the attack events.
    Replay(ReplayArgs),
    /// The daemon: collect telemetry over UDP, detect attacks, mitigate them as configured (BGP
    /// blackhole and FlowSpec, ExaBGP, nftables, webhooks, scripts), write events to the log and
    /// to a JSON-lines file. SIGTERM stops it cleanly.
    Run(RunArgs),
    /// Decode telemetry (live from UDP, or from pcap/pcapng captures) and print the flow records.
    Flows(FlowsArgs),
    /// Measure ingest, replay and detection speed, alone or beside FastNetMon.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Write the telemetry of a botnet scenario (sFlow, NetFlow v9 or IPFIX) to a capture or a
    /// collector on loopback, and print its ground truth. Telemetry only: it sends no attack.
    Simulate(SimulateArgs),
    /// See it work in a minute: the daemon on loopback, a built-in botnet scenario streamed into
    /// it, the attacks it detects and the mitigations it would announce (dry run), live.
    Demo(DemoArgs),
    /// List, announce and withdraw the running daemon's mitigations (BGP blackhole and
    /// FlowSpec routes, nftables rules) through its control socket.
    Mitigations(MitigationsArgs),
    /// What the running daemon is doing now: collectors and exporters, engine, active attacks,
    /// mitigators and their sessions, through its control socket.
    Status(StatusArgs),
    /// Write a commented floodwall.toml with every option and its default.
    Init(InitArgs),
    /// Check a configuration file: syntax, unknown keys, types and values, each problem with
    /// its line. Exit 0 with a one-line summary when it is valid.
    CheckConfig(CheckConfigArgs),
    /// Make an API token: prints the token once, and the line for `[http] tokens_file` (which
    /// keeps only its SHA-256); with --tokens-file the line is appended there.
    Token(TokenArgs),
    /// Reports for abuse teams: `report infected` lists the hosts of the monitored networks
    /// found behaving as bots, one row per host and reason (Shadowserver-like fields).
    Report(ReportArgs),
    /// The campaigns: attacks whose sources overlap (one bot pool), with their estimated
    /// combined size, targets and vectors, from the daemon's state directory.
    Campaigns(CampaignsArgs),
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub report: ReportKind,
}

#[derive(Subcommand, Debug)]
pub enum ReportKind {
    /// Infected hosts from the daemon's history: outgoing attacks, scanning, C2 contacts,
    /// beaconing, with their evidence.
    Infected(InfectedReportArgs),
}

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Csv,
    Json,
}

#[derive(Args, Debug)]
pub struct InfectedReportArgs {
    /// The daemon's configuration, for its `[state] dir` and `[history] path`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The daemon's state directory (overrides the configuration's).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Hosts seen since: RFC 3339, Unix milliseconds, or a duration back from now (`24h`,
    /// `7d`, `30m`).
    #[arg(long, value_name = "TIME", default_value = "24h")]
    pub since: String,
    /// Only this hostgroup.
    #[arg(long, value_name = "NAME")]
    pub hostgroup: Option<String>,
    /// `csv` (the default) or `json`.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: ReportFormat,
}

#[derive(Args, Debug)]
pub struct CampaignsArgs {
    /// The daemon's configuration, for its `[state] dir`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The daemon's state directory (overrides the configuration's).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// JSON (an array) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct TokenArgs {
    /// Who or what uses it (`grafana`, `noc`): named in the file, one line per name.
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// `read` (status, metrics, lists) or `write` (also announce and withdraw).
    #[arg(long, value_name = "SCOPE", value_parser = ["read", "write"])]
    pub scope: String,
    /// Append the line to this tokens file (created owner-only if missing).
    #[arg(long, value_name = "FILE")]
    pub tokens_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Where to write; `-` for stdout. Default: floodwall.toml (docs/configuration.md with
    /// --reference).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Overwrite the file if it exists.
    #[arg(long)]
    pub force: bool,
    /// A monitored network to write into `networks`; repeat for several. Without any, the
    /// file has `networks = []` and `floodwall run` refuses it until it is filled in.
    #[arg(long = "network", value_name = "CIDR")]
    pub network: Vec<IpNet>,
    /// Write the Markdown configuration reference instead (docs/configuration.md).
    #[arg(long, hide = true)]
    pub reference: bool,
}

#[derive(Args, Debug)]
pub struct CheckConfigArgs {
    /// The configuration file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// List the built-in scenarios with a line each, and exit.
    #[arg(long)]
    pub list: bool,
    /// A built-in scenario's name, or a scenario file (TOML).
    #[arg(long, value_name = "NAME_OR_FILE")]
    pub scenario: Option<String>,
    /// Telemetry format; default: the scenario's.
    #[arg(long, value_enum)]
    pub format: Option<floodwall_lab::simulate::Format>,
    /// 1-in-N packet sampling; default: the scenario's.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub sampling: Option<u32>,
    /// Random seed; default: the scenario's. The same seed gives byte-identical output.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Scale of the attacks, for scenarios that have several (`lab`, `record`).
    #[arg(long, value_name = "NAME")]
    pub scale: Option<String>,
    /// With --send: time compression (2 plays the scenario in half its duration). A collector
    /// stamps sFlow by arrival, so the rates it sees are multiplied by this.
    #[arg(long, default_value_t = 1.0, value_name = "X")]
    pub speed: f64,
    /// Write the telemetry as a pcap of UDP datagrams.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Write the packets themselves as a pcap of Ethernet frames (each one's first 128 bytes),
    /// as a mirror port shows them: for `floodwall replay --capture-mode packets`, which
    /// counts each frame as one packet, so it needs `--sampling 1`.
    #[arg(long, value_name = "FILE")]
    pub packets: Option<PathBuf>,
    /// Send the telemetry to a collector on loopback (127.0.0.0/8 or [::1] only).
    #[arg(long, value_name = "ADDR:PORT")]
    pub send: Option<SocketAddr>,
    /// With --send: at most this many datagrams per second (time stretches if the scenario
    /// needs more).
    #[arg(long, default_value_t = 20_000.0, value_name = "DATAGRAMS_PER_S")]
    pub max_rate: f64,
    /// Print the ground truth as JSON on stdout.
    #[arg(long)]
    pub truth: bool,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// A built-in scenario (`floodwall simulate --list`) or a scenario file.
    #[arg(long, default_value = floodwall_lab::demo::DEFAULT_SCENARIO, value_name = "NAME_OR_FILE")]
    pub scenario: String,
    /// Time compression: 2 plays the scenario in half its duration. The collector stamps
    /// telemetry on arrival, so the rates it sees are multiplied by this too.
    #[arg(long, default_value_t = 1.0, value_name = "X")]
    pub speed: f64,
    /// Print events line by line, without colours or screen redraws (the default when stdout is
    /// not a terminal).
    #[arg(long, visible_alias = "no-tui")]
    pub plain: bool,
    /// Also write the final screen as an SVG image (the README's screenshot).
    #[arg(long, value_name = "FILE", hide = true)]
    pub svg: Option<PathBuf>,
}

/// Where live telemetry is received.
#[derive(Args, Debug, Clone)]
pub struct ListenArgs {
    /// UDP address to listen on; repeat for several. Default: 0.0.0.0 and [::] on 6343 (sFlow),
    /// 2055 (NetFlow) and 4739 (IPFIX). Any port accepts any protocol.
    #[arg(long = "listen", value_name = "ADDR:PORT")]
    pub listen: Vec<SocketAddr>,
    /// Accept telemetry only from these exporter prefixes; repeat for several. Others are counted and dropped.
    #[arg(long = "allow-exporter", value_name = "CIDR")]
    pub allow_exporter: Vec<IpNet>,
    /// Socket receive buffer to ask the kernel for, in MiB.
    #[arg(long, default_value_t = 32, value_name = "MIB")]
    pub recv_buffer_mib: usize,
}

/// `--capture-mode`: what the packets of a capture are. The daemon's [`CaptureMode`] stays free
/// of clap; this enum carries the names and the help, and converts into it.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureModeArg {
    /// Per packet: a UDP payload that is a well-formed telemetry datagram is decoded as
    /// telemetry, anything else counts as a raw packet.
    Auto,
    /// Only telemetry datagrams; other packets are counted and skipped.
    Telemetry,
    /// Only raw packets, each one a 1:1 record (even UDP packets that look like telemetry).
    Packets,
}

impl From<CaptureModeArg> for CaptureMode {
    fn from(mode: CaptureModeArg) -> Self {
        match mode {
            CaptureModeArg::Auto => CaptureMode::Auto,
            CaptureModeArg::Telemetry => CaptureMode::Telemetry,
            CaptureModeArg::Packets => CaptureMode::Packets,
        }
    }
}

/// Parses `--capture-mode` with [`CaptureModeArg`]'s names and help into the daemon's type, so
/// the commands hand `args.capture_mode` to the capture reader as it is.
fn capture_mode_parser() -> impl TypedValueParser<Value = CaptureMode> {
    EnumValueParser::<CaptureModeArg>::new().map(CaptureMode::from)
}

#[derive(Args, Debug)]
pub struct FlowsArgs {
    /// Capture files to read instead of listening. A file that ends mid-packet is read up to
    /// the cut, with a warning, and the exit status is 1.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub listen: ListenArgs,
    /// How to read captures: telemetry datagrams, raw packets, or decide per packet.
    #[arg(long, value_parser = capture_mode_parser(), default_value = "auto")]
    pub capture_mode: CaptureMode,
    /// Print one JSON object per record.
    #[arg(long)]
    pub json: bool,
    /// Print no records, only the counters at the end.
    #[arg(long)]
    pub quiet: bool,
    /// Stop listening after this many records.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Stop listening after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Stop listening after this many seconds without a datagram (once one has arrived).
    #[arg(long, value_name = "SECONDS")]
    pub idle_timeout: Option<f64>,
    /// Print per-capture, per-listener and per-exporter counters to stderr at the end (JSON
    /// lines with --json).
    #[arg(long)]
    pub stats: bool,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Configuration file (floodwall.toml); without it, the embedded defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A monitored network, added to the configuration's; repeat for several.
    #[arg(long = "network", value_name = "CIDR")]
    pub network: Vec<IpNet>,
    /// One JSON object per event on stdout.
    #[arg(long)]
    pub json: bool,
    /// How to read captures: telemetry datagrams, raw packets, or decide per packet.
    #[arg(long, value_parser = capture_mode_parser(), default_value = "auto")]
    pub capture_mode: CaptureMode,
    /// Engine shards (threads); overrides `[detection] shards`. The events are the same for
    /// any number.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub shards: Option<u32>,
    /// Capture files, read in order as one stream. A file that ends mid-packet (copied while
    /// being written) is read up to the cut, with a warning, and the exit status is 1.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Configuration file (floodwall.toml); without it, the embedded defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A monitored network, added to the configuration's; repeat for several.
    #[arg(long = "network", value_name = "CIDR")]
    pub network: Vec<IpNet>,
    /// Record the mitigations attacks would get (log, events file, webhooks) and announce
    /// nothing; overrides `[mitigation] dry_run`.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct MitigationsArgs {
    /// The daemon's configuration, for its `[state] dir`.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// The daemon's state directory (overrides the configuration's).
    #[arg(long, value_name = "DIR", global = true)]
    pub state_dir: Option<PathBuf>,
    /// Print the daemon's JSON answer instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: Option<MitigationsAction>,
}

/// The kinds of rule `mitigations announce` places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KindArg {
    Blackhole,
    Flowspec,
}

impl From<KindArg> for floodwall_daemon::act::control::RuleKind {
    fn from(kind: KindArg) -> Self {
        match kind {
            KindArg::Blackhole => Self::Blackhole,
            KindArg::Flowspec => Self::Flowspec,
        }
    }
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The daemon's configuration, for its `[state] dir`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The daemon's state directory (overrides the configuration's).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Print the daemon's status snapshot as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum MitigationsAction {
    /// List the rules the network holds (the default).
    List,
    /// Announce a rule by hand, with the configured next hop, communities and FlowSpec action.
    Announce {
        /// Host or prefix to protect.
        target: IpNet,
        /// `blackhole` (RTBH) or `flowspec`.
        #[arg(long, value_enum, default_value = "blackhole")]
        kind: KindArg,
        /// For flowspec: IP protocol number (17 UDP, 6 TCP).
        #[arg(long)]
        protocol: Option<u8>,
        /// For flowspec: source port.
        #[arg(long)]
        source_port: Option<u16>,
        /// For flowspec: destination port.
        #[arg(long)]
        destination_port: Option<u16>,
        /// Withdraw after this many seconds; default: held until withdrawn.
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Withdraw a rule by id (as `list` shows it, e.g. blackhole:203.0.113.7/32).
    Withdraw { id: String },
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Decode speed per protocol, and end-to-end UDP ingest on loopback from a separate sender process.
    Ingest(bench::IngestArgs),
    /// Replay speed: a synthetic capture through the pcap reader, decoder and detection engine.
    Replay(bench::ReplayBenchArgs),
    /// The daemon beside FastNetMon Community on the same sFlow streams: ingest, detection
    /// latency and peak memory, with Floodwall's decode speed; prints a table, writes Markdown.
    Compare(bench::CompareArgs),
    /// Mitigation latency: attack_started to the blackhole route in a real gobgpd's RIB, with
    /// Floodwall's built-in BGP speaker peered on loopback.
    Mitigation(bench::MitigationArgs),
    /// What the operator's surfaces cost: the daemon's CPU per million records with the HTTP
    /// listener (a live dashboard, a metrics scrape) and the history on against off, and the
    /// API's latency with 10,000 attacks in the history.
    Surfaces(bench::SurfacesArgs),
    /// Hunting at its bounds: scanners probing 10 M distinct destinations through the
    /// infected-host hunter, and 100,000 stored campaigns' signatures compared against new
    /// attacks; time and peak RSS of each (a child process per part).
    Hunt(bench::HuntArgs),
    /// False alarms on busy networks: hours of simulated hosting, eyeball and CDN traffic with a
    /// few attacks, replayed through the decoder and engine (default configuration) from
    /// start-up; prints false alarms per hour and which attacks were found.
    FalseAlarms(bench::FalseAlarmsArgs),
    /// (used by `bench ingest` and `bench compare`) send synthetic telemetry to a collector at a
    /// fixed rate, for a bounded time.
    #[command(hide = true)]
    Send(bench::SendArgs),
}

/// The end of a command that read captures: like tcpdump and tshark, a capture cut off
/// mid-packet fails the command (exit 1) once everything before the cut has been output.
fn cut_off_captures(count: usize) -> Result<()> {
    match count {
        0 => Ok(()),
        1 => Err(anyhow::anyhow!(
            "a capture ends in the middle of a packet (warning above): the output covers the packets before the cut"
        )),
        n => Err(anyhow::anyhow!(
            "{n} captures end in the middle of a packet (warnings above): the output covers the packets before each cut"
        )),
    }
}

pub fn run() -> Result<()> {
    use clap::CommandFactory as _;
    let cli = Cli::parse();
    match cli.command {
        Command::Completions(args) => crate::docs::completions(Cli::command(), &args),
        Command::Man(args) => crate::docs::man(Cli::command(), &args),
        Command::Replay(args) => replay::run(args),
        Command::Run(args) => run::run(args),
        Command::Flows(args) => flows::run(args),
        Command::Bench(BenchCommand::Ingest(args)) => bench::ingest(args),
        Command::Bench(BenchCommand::Replay(args)) => bench::replay(args),
        Command::Bench(BenchCommand::Send(args)) => bench::send(args),
        Command::Bench(BenchCommand::Compare(args)) => bench::compare(args),
        Command::Bench(BenchCommand::Mitigation(args)) => bench::mitigation(args),
        Command::Bench(BenchCommand::Surfaces(args)) => bench::surfaces(args),
        Command::Bench(BenchCommand::Hunt(args)) => bench::hunt(args),
        Command::Bench(BenchCommand::FalseAlarms(args)) => bench::false_alarms(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Mitigations(args) => mitigations::run(args),
        Command::Status(args) => mitigations::status(args),
        Command::Demo(args) => demo::run(args),
        Command::Init(args) => init::run(args),
        Command::CheckConfig(args) => check_config::run(args),
        Command::Token(args) => token::run(args),
        Command::Report(args) => match args.report {
            ReportKind::Infected(args) => hunt::report_infected(args),
        },
        Command::Campaigns(args) => hunt::campaigns(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    /// `--capture-mode` reaches the commands as the daemon's type, `auto` when not given.
    #[test]
    fn capture_mode_parses_into_the_daemon_type() {
        let mode = |args: &[&str]| match Cli::try_parse_from(args).unwrap().command {
            Command::Flows(flows) => flows.capture_mode,
            Command::Replay(replay) => replay.capture_mode,
            _ => unreachable!(),
        };
        assert_eq!(mode(&["floodwall", "flows", "a.pcap"]), CaptureMode::Auto);
        assert_eq!(
            mode(&["floodwall", "replay", "--capture-mode", "packets", "a.pcap"]),
            CaptureMode::Packets
        );
        assert_eq!(
            mode(&["floodwall", "flows", "--capture-mode=telemetry", "a.pcap"]),
            CaptureMode::Telemetry
        );
        assert!(Cli::try_parse_from(["floodwall", "flows", "--capture-mode", "raw"]).is_err());
    }
}
