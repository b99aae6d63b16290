//! What the commands print and how they end, as a user running them in a shell sees it: capture
//! errors and cut-off captures, `… | head`, `flows --stats`, and the simulator's telemetry as our
//! own decoder accounts it.

mod support;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{require_tool, test_dir, wait_or_kill};

/// Thirty seconds of a small network and a 2 Gbps UDP flood: ~14,000 samples, quick in debug.
const TINY: &str = r#"name = "tiny"
description = "a small flood, for the command-line tests"
facts = "none"
duration_s = 30
seed = 7

[telemetry]
format = "ipfix"
sampling = 1000
exporter = "192.0.2.1"
networks = ["198.18.0.0/24"]

[background]
hosts = "198.18.0.0/24"
host_count = 50
pps_median = 2000
pps_sigma = 1.0
pps_cap = 20000
clients = 1000
hours = [19, 23]

[[traffic]]
name = "udp"
kind = "attack"
direction = "incoming"
target = "198.18.0.20/32"
start_s = 5
duration_s = 20
ramp_up_s = 1
ramp_down_s = 1
peak_bps = 2e9
protocol = "udp"
sizes = [{ min = 500, max = 600, share = 1.0 }]
sources = 5000

[truth]
"#;

fn floodwall(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_floodwall"))
        .args(args)
        .output()
        .expect("run floodwall")
}

/// `floodwall simulate` of [`TINY`] in `format`, as a pcap in `dir`.
fn simulated(dir: &Path, format: &str) -> PathBuf {
    let scenario = dir.join("tiny.toml");
    std::fs::write(&scenario, TINY).unwrap();
    let pcap = dir.join(format!("tiny-{format}.pcap"));
    let out = floodwall(&[
        "simulate",
        "--scenario",
        scenario.to_str().unwrap(),
        "--format",
        format,
        "--pcap",
        pcap.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    pcap
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// RFC 7011 numbers IPFIX messages by the data records sent before them (options records
/// included), RFC 3954 NetFlow v9 packets by export packets, sFlow datagrams by datagram and
/// flow samples by sample per source id: the simulator's telemetry must decode with no loss
/// and no reset (the IPFIX template message's sampling record was not counted: a reset after
/// every template refresh).
#[test]
fn simulated_telemetry_decodes_with_no_sequence_loss_or_resets() {
    let dir = test_dir("cli-sequences");
    for format in ["ipfix", "netflow9", "sflow"] {
        let pcap = simulated(&dir, format);
        let out = floodwall(&[
            "flows",
            "--quiet",
            "--stats",
            "--json",
            pcap.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{out:?}");
        let exporters: Vec<Value> = text(&out.stderr)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| v.get("exporter").is_some())
            .collect();
        assert_eq!(exporters.len(), 1, "{format}: {}", text(&out.stderr));
        let counters = &exporters[0]["counters"];
        assert!(
            counters["records"].as_u64().unwrap() > 10_000,
            "{format}: {counters}"
        );
        assert_eq!(counters["sequence_resets"], 0, "{format}: {counters}");
        assert_eq!(counters["sequence_lost"], 0, "{format}: {counters}");
    }
    // sFlow flow samples, per source id, as tshark reads them: 1, 2, 3, … with no gap.
    let tshark = require_tool("tshark");
    let out = Command::new(tshark)
        .args(["-r", dir.join("tiny-sflow.pcap").to_str().unwrap()])
        .args(["-T", "fields", "-E", "occurrence=a"])
        .args([
            "-e",
            "sflow.flow_sample.index",
            "-e",
            "sflow.flow_sample.sequence_number",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut next = std::collections::BTreeMap::<u32, u32>::new();
    let mut samples = 0;
    for line in text(&out.stdout).lines() {
        let (sources, sequences) = line.split_once('\t').unwrap();
        for (source, sequence) in sources.split(',').zip(sequences.split(',')) {
            let expected = next.entry(source.parse().unwrap()).or_insert(1);
            assert_eq!(
                sequence.parse::<u32>().unwrap(),
                *expected,
                "source {source}"
            );
            *expected += 1;
            samples += 1;
        }
    }
    assert!(
        samples > 10_000 && next.len() == 2,
        "{samples} samples, {next:?}"
    );
}

/// A capture cut off mid-packet is read to the cut, everything before it is output, and the
/// command warns (how many packets, that the file ends mid-packet) and exits 1, as tcpdump and
/// tshark do.
#[test]
fn a_cut_off_capture_is_read_to_the_cut_with_a_warning_and_exit_1() {
    let dir = test_dir("cli-cut");
    let pcap = simulated(&dir, "ipfix");
    let bytes = std::fs::read(&pcap).unwrap();
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let cut = cut.to_str().unwrap();

    let replay = floodwall(&["replay", "--json", "--network", "198.18.0.0/24", cut]);
    let stderr = text(&replay.stderr);
    assert_eq!(replay.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("warning: ")
            && stderr.contains("cut.pcap ends in the middle of a packet record (at byte")
            && stderr.contains("579 packets were read, the rest of the file is missing"),
        "{stderr}"
    );
    assert!(
        text(&replay.stdout).contains("\"attack_started\""),
        "the attack before the cut is reported: {}",
        text(&replay.stdout)
    );

    let flows = floodwall(&["flows", "--json", cut]);
    assert_eq!(flows.status.code(), Some(1));
    assert!(
        text(&flows.stderr).contains("579 packets were read"),
        "{}",
        text(&flows.stderr)
    );
    assert!(text(&flows.stdout).lines().count() > 10_000);

    // The whole file: no warning, exit 0.
    let whole = floodwall(&[
        "replay",
        "--network",
        "198.18.0.0/24",
        pcap.to_str().unwrap(),
    ]);
    assert!(
        whole.status.success() && !text(&whole.stderr).contains("warning"),
        "{whole:?}"
    );
}

/// A file that is no capture, or one damaged in the middle, gives one short line saying what
/// is wrong and where: no raw bytes (`NomError([1, 1, …])`), no parser names.
#[test]
fn capture_errors_are_one_short_line_in_plain_words() {
    let dir = test_dir("cli-errors");
    let junk = dir.join("junk.pcap");
    std::fs::write(&junk, vec![1u8; 3 << 20]).unwrap();
    let pcap = simulated(&dir, "ipfix");
    let mut damaged = std::fs::read(&pcap).unwrap();
    // The third packet record claims caplen and origlen of 16 MiB.
    let first_len = u32::from_le_bytes(damaged[32..36].try_into().unwrap()) as usize;
    let second = 24 + 16 + first_len;
    let second_len =
        u32::from_le_bytes(damaged[second + 8..second + 12].try_into().unwrap()) as usize;
    let third = second + 16 + second_len;
    damaged[third + 8..third + 16].copy_from_slice(&[1; 8]);
    let bad = dir.join("damaged.pcap");
    std::fs::write(&bad, &damaged).unwrap();
    for (file, want) in [
        (&junk, "junk.pcap is not a pcap or pcapng capture".to_string()),
        (
            &bad,
            format!("damaged.pcap: damaged at byte {third}, after packet 2: a record there claims to be larger than 1 MiB"),
        ),
    ] {
        for args in [
            vec!["flows"],
            vec!["replay", "--network", "198.18.0.0/24"],
        ] {
            let mut args = args.clone();
            args.push(file.to_str().unwrap());
            let out = floodwall(&args);
            let stderr = text(&out.stderr).replace(dir.to_str().unwrap(), "").replace('/', "");
            assert_eq!(out.status.code(), Some(1), "{stderr}");
            let last = stderr.lines().last().unwrap_or_default();
            assert!(last.contains(&want), "{args:?}: {stderr}");
            assert!(last.len() < 250, "{args:?}: {} bytes: {last}", last.len());
            for internal in ["NomError", "Incomplete", "BufferTooSmall", "[1, 1"] {
                assert!(!stderr.contains(internal), "{args:?}: {stderr}");
            }
        }
    }
}

/// `flows --stats` labels every number, in words or (with --json) as JSON lines; no Rust
/// debug structures, no unlabelled arrays.
#[test]
fn flows_stats_are_labelled_text_or_json() {
    let dir = test_dir("cli-stats");
    let pcap = simulated(&dir, "netflow9");
    let pcap = pcap.to_str().unwrap();
    let out = floodwall(&["flows", "--quiet", "--stats", pcap]);
    assert!(out.status.success(), "{out:?}");
    let stderr = text(&out.stderr).replace(pcap, "F");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        [
            "capture F: 369 packets (369 telemetry datagrams, 0 raw packets, 0 skipped), 14059 records",
            "exporter 192.0.2.1: 369 datagrams, 14059 records, 0 decode errors, 0 sequence lost, 0 sequence resets, 6 templates learned",
        ],
        "{stderr}"
    );
    let out = floodwall(&["flows", "--quiet", "--stats", "--json", pcap]);
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<Value> = text(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["stats"]["packets"], 369);
    assert_eq!(lines[0]["stats"]["truncated_at"], Value::Null);
    assert_eq!(lines[1]["exporter"], "192.0.2.1");
    assert_eq!(lines[1]["counters"]["records"], 14059);
    assert!(lines[1]["counters"]["errors"].is_object());
}

/// Runs `floodwall args` with its stdout a pipe nobody reads (closed before it writes), as
/// `floodwall … | head` ends; returns the exit status and stderr.
fn with_closed_stdout(args: &[&str]) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_floodwall"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (child.wait().unwrap(), stderr)
}

/// `floodwall … | head`: a reader that stops reading ends every command that writes to stdout
/// quietly and successfully, as it does standard Unix tools (was "Broken pipe (os error 32)"
/// and exit 1).
#[test]
fn a_closed_stdout_ends_every_command_quietly_with_success() {
    let dir = test_dir("cli-pipe");
    let pcap = simulated(&dir, "ipfix");
    let pcap = pcap.to_str().unwrap();
    let scenario = dir.join("tiny.toml");
    let scenario = scenario.to_str().unwrap();
    let config = dir.join("ok.toml");
    std::fs::write(&config, "networks = [\"198.18.0.0/24\"]\n").unwrap();
    let config = config.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["flows", pcap],
        vec!["flows", "--json", pcap],
        vec!["replay", "--network", "198.18.0.0/24", pcap],
        vec!["replay", "--json", "--network", "198.18.0.0/24", pcap],
        vec!["init", "--output", "-"],
        vec!["init", "--reference", "--output", "-"],
        vec!["simulate", "--list"],
        vec!["simulate", "--scenario", scenario, "--truth"],
        vec!["check-config", config],
        vec!["completions", "bash"],
    ];
    for args in &commands {
        let (status, stderr) = with_closed_stdout(args);
        assert!(
            status.success() && !stderr.contains("Broken pipe") && !stderr.contains("panicked"),
            "{args:?}: {status}: {stderr}"
        );
    }

    // `floodwall mitigations` against a running daemon.
    let state = dir.join("state");
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let daemon_config = dir.join("daemon.toml");
    std::fs::write(
        &daemon_config,
        format!(
            "networks = [\"198.18.0.0/24\"]\n[http]\nlisten = \"127.0.0.1:0\"\n[collector]\nlisten = [\"127.0.0.1:{port}\"]\n[events]\nfile = \"{}\"\n[state]\ndir = \"{}\"\n",
            dir.join("events.jsonl").display(),
            state.display()
        ),
    )
    .unwrap();
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_floodwall"))
        .args(["run", "--config", daemon_config.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !state.join("control.sock").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let state_dir = state.to_str().unwrap();
    let results: Vec<_> = [
        vec!["mitigations", "--state-dir", state_dir],
        vec!["mitigations", "--state-dir", state_dir, "--json"],
    ]
    .iter()
    .map(|args| (args.clone(), with_closed_stdout(args)))
    .collect();
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(&daemon),
        rustix::process::Signal::TERM,
    );
    wait_or_kill(&mut daemon, Duration::from_secs(10), "floodwall run");
    for (args, (status, stderr)) in results {
        assert!(
            status.success() && !stderr.contains("Broken pipe"),
            "{args:?}: {status}: {stderr}"
        );
    }
}
