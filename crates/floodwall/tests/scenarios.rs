//! Every built-in scenario replayed through the real decoder and engine (default configuration,
//! the scenario's monitored networks), its attacks checked against the scenario's ground truth:
//! found with the right target, direction, carpet flag and vectors, on time, with the true peak
//! within the sampling tolerance, and nothing else (see `floodwall::simulate::truth` for the
//! rules). sFlow for every scenario; NetFlow v9 and IPFIX for a few. The record-scale scenarios
//! are in `record_scale.rs`, run in release by `scripts/test`.
//!
//! Also: same seed → byte-identical capture, `floodwall simulate` + `floodwall replay --json`
//! end to end, and `--send` refusing anything but loopback.

mod support;

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::Duration;

use floodwall::simulate::{self, Format, Options, Plan};
use floodwall_wire::Decoder;
use support::scenario::{assert_matches_truth, format, replay};

/// Nothing here is an attack: no static limit is crossed, and neither the host baselines (quiet
/// subscribers at one or two samples a second, whose 5,000 pps floor is five samples at 1:1000)
/// nor the /24 residue baselines (a download or two among quiet subscribers) may alarm on it.
#[test]
fn busy_day_raises_nothing() {
    assert_matches_truth("busy-day", Options::default());
    assert_matches_truth("busy-day", format(Format::Ipfix));
}

#[test]
fn aisuru_burst_is_one_udp_flood_at_its_target() {
    assert_matches_truth("aisuru-burst", Options::default());
    assert_matches_truth("aisuru-burst", format(Format::Ipfix));
}

#[test]
fn carpet_bombing_of_a_24_is_one_carpet_attack() {
    assert_matches_truth("carpet-24", Options::default());
    assert_matches_truth("carpet-24", format(Format::Netflow9));
}

/// Also: the /24s' ordinary traffic (web ACKs, DNS answers) left during the quiet period after
/// the attack adds no vectors to it.
#[test]
fn carpet_bombing_of_a_22_is_a_carpet_attack_per_24() {
    let (problems, detected) = replay("carpet-22", Options::default());
    assert!(problems.is_empty(), "{problems:#?}");
    for d in &detected {
        assert_eq!(d.vectors, ["udp_flood"], "{}", d.describe());
    }
}

#[test]
fn gre_flood_is_detected() {
    assert_matches_truth("gre-flood", Options::default());
}

#[test]
fn ack_flood_with_random_flags_is_an_ack_flood() {
    assert_matches_truth("ack-flood", Options::default());
    assert_matches_truth("ack-flood", format(Format::Netflow9));
}

#[test]
fn small_packet_syn_flood_is_caught_on_packets() {
    assert_matches_truth("syn-flood", Options::default());
    assert_matches_truth("syn-flood", format(Format::Ipfix));
}

/// `floodwall demo`'s own scenario: what it shows is what a replay finds.
#[test]
fn demo_scenario_is_a_burst_an_ntp_amplification_and_a_carpet() {
    assert_matches_truth("demo", Options::default());
}

#[test]
fn dns_amplification_is_named() {
    assert_matches_truth("dns-amplification", Options::default());
}

#[test]
fn outgoing_flood_names_the_infected_customers_over_the_limits() {
    assert_matches_truth("outgoing-flood", Options::default());
    assert_matches_truth("outgoing-flood", format(Format::Netflow9));
}

#[test]
fn mirai_scanning_customer_is_reported_only_above_the_outgoing_syn_limit() {
    assert_matches_truth("mirai-scan", Options::default());
}

/// Every built-in scenario parses, and the peaks its file writes down are the traffic's.
#[test]
fn written_truth_matches_the_traffic() {
    for (name, _) in simulate::BUILTIN {
        let scenario = simulate::load(name).unwrap();
        let plan = Plan::new(scenario.clone(), &Options::default()).unwrap();
        let truth = plan.truth().unwrap();
        for written in &scenario.truth.expect {
            for (field, value) in [
                ("peak_pps", written.peak_pps),
                ("peak_bps", written.peak_bps),
            ] {
                let Some(value) = value else { continue };
                let resolved: Vec<f64> = truth
                    .expect
                    .iter()
                    .filter(|e| e.traffic == written.traffic)
                    .map(|e| {
                        if field == "peak_pps" {
                            e.peak_pps
                        } else {
                            e.peak_bps
                        }
                    })
                    .collect();
                // A carpet wider than /24 is checked per /24: the file writes the whole.
                let total: f64 = resolved.iter().sum();
                assert!(
                    (total - value).abs() <= 0.01 * value,
                    "{name}: {} {field} written {value}, resolved {total}",
                    written.traffic
                );
            }
        }
        if name != "busy-day" {
            assert!(truth.required().count() > 0, "{name}: expects nothing");
        }
    }
}

fn floodwall() -> Command {
    Command::new(env!("CARGO_BIN_EXE_floodwall"))
}

/// The same seed gives the same bytes; another seed does not.
#[test]
fn same_seed_gives_a_byte_identical_capture() {
    let dir = std::env::temp_dir().join(format!("floodwall-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |file: &str, format: &str, seed: &str| {
        let path = dir.join(file);
        let status = floodwall()
            .args([
                "simulate",
                "--scenario",
                "gre-flood",
                "--format",
                format,
                "--seed",
                seed,
            ])
            .arg("--pcap")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::read(path).unwrap()
    };
    for format in ["sflow", "ipfix"] {
        let a = run("a.pcap", format, "7");
        let b = run("b.pcap", format, "7");
        let c = run("c.pcap", format, "8");
        assert!(a.len() > 100_000, "{format}: {} bytes", a.len());
        assert!(a == b, "{format}: same seed, different bytes");
        assert!(a != c, "{format}: another seed, same bytes");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `floodwall simulate --pcap` then `floodwall replay --json`: the commands a user runs.
#[test]
fn simulate_then_replay_from_the_command_line() {
    let dir = std::env::temp_dir().join(format!("floodwall-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("dns.pcap");
    let output = floodwall()
        .args([
            "simulate",
            "--scenario",
            "dns-amplification",
            "--format",
            "netflow9",
            "--truth",
        ])
        .arg("--pcap")
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let truth: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(truth["format"], "netflow9");
    assert_eq!(truth["expect"][0]["target"], "198.18.1.53/32");
    let output = floodwall()
        .args(["replay", "--json", "--network", "198.18.0.0/15"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(output.status.success());
    let events: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ended: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "attack_ended")
        .collect();
    assert_eq!(ended.len(), 1, "{events:?}");
    assert_eq!(ended[0]["target"], "198.18.1.53/32");
    assert_eq!(
        ended[0]["vectors"],
        serde_json::json!(["dns_amplification"])
    );
    std::fs::remove_dir_all(&dir).unwrap();

    let list = floodwall().args(["simulate", "--list"]).output().unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    assert_eq!(list.lines().count(), simulate::BUILTIN.len());
    assert!(list.lines().any(|l| l.starts_with("record-31t ")));
}

/// `--send` goes to loopback only, and delivers there.
#[test]
fn send_refuses_other_addresses_and_delivers_on_loopback() {
    for target in ["192.0.2.10:6343", "[2001:db8::1]:6343", "0.0.0.0:6343"] {
        let output = floodwall()
            .args(["simulate", "--scenario", "gre-flood", "--send", target])
            .output()
            .unwrap();
        assert!(!output.status.success(), "{target}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("loopback"), "{target}: {stderr}");
    }
    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    collector
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let target = collector.local_addr().unwrap().to_string();
    // 120 s of scenario at 400× speed: about 0.3 s of sending.
    let mut child = floodwall()
        .args([
            "simulate",
            "--scenario",
            "gre-flood",
            "--speed",
            "400",
            "--send",
            &target,
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 2048];
    let mut decoder = Decoder::default();
    let mut records = Vec::new();
    let mut datagrams = 0;
    while let Ok(n) = collector.recv(&mut buf) {
        let _ = decoder.decode("192.0.2.1".parse().unwrap(), 0, &buf[..n], &mut records);
        datagrams += 1;
        if records.len() >= 1000 {
            break;
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success());
    assert!(
        datagrams > 100 && records.len() >= 1000,
        "{datagrams} datagrams"
    );
    assert_eq!(decoder.totals().total_errors(), 0);
}
