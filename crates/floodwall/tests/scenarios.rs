//! Every built-in scenario replayed through the real decoder and engine (default configuration,
//! the scenario's monitored networks), its attacks checked against the scenario's ground truth:
//! found with the right target, direction, carpet flag and vectors, on time, with the true peak
//! within the sampling tolerance, and nothing else (see `floodwall_lab::simulate::truth` for the
//! rules). sFlow for every scenario; NetFlow v9 and IPFIX for a few. The record-scale scenarios
//! are in `record_scale.rs`, run in release by `scripts/test`.
//!
//! Also: same seed → byte-identical capture, `floodwall simulate` + `floodwall replay --json`
//! end to end, and `--send` refusing anything but loopback.

mod support;

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::Duration;

use floodwall_lab::simulate::{self, Format, Options, Plan};
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
        // The benign days expect nothing; every other scenario expects something.
        if !scenario.truth.expect.is_empty() {
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

/// A small scenario around one background and one benign component, for the parser and
/// generator tests below.
fn small_scenario(backgrounds: &str, traffic: &str) -> String {
    format!(
        r#"
name = "small"
description = "test"
facts = "test"
duration_s = 5
seed = 3

[telemetry]
format = "sflow"
sampling = 1
exporter = "192.0.2.1"
networks = ["198.18.0.0/15"]

{backgrounds}
{traffic}
[truth]
"#
    )
}

fn packets_of(text: &str) -> Vec<simulate::model::Packet> {
    let scenario = simulate::Scenario::parse(text, "small.toml").unwrap();
    let plan = Plan::new(scenario, &Options::default()).unwrap();
    let mut out = Vec::new();
    simulate::model::generate(&plan, |step| {
        if let simulate::model::Step::Packet(p) = step {
            out.push(*p);
        }
        Ok(())
    })
    .unwrap();
    out
}

/// `[background]` and `[[background]]` both parse; each background keeps to its own prefix
/// and host count, and the truth adds them up.
#[test]
fn several_backgrounds_each_keep_to_their_hosts() {
    let one = small_scenario(
        r#"[background]
hosts = "198.18.0.0/24"
host_count = 10
pps_median = 100
pps_sigma = 0
pps_cap = 1000
clients = 50
hours = [12, 12]"#,
        "",
    );
    let scenario = simulate::Scenario::parse(&one, "one.toml").unwrap();
    assert_eq!(scenario.backgrounds.len(), 1);
    let two = small_scenario(
        r#"[[background]]
name = "hosting"
hosts = "198.18.1.0/24"
host_count = 254
pps_median = 100
pps_sigma = 0
pps_cap = 1000
clients = 50
hours = [12, 12]

[[background]]
name = "subscribers"
hosts = "198.19.0.0/16"
host_count = 100
pps_median = 10
pps_sigma = 0
pps_cap = 1000
clients = 50
hours = [12, 12]"#,
        "",
    );
    let scenario = simulate::Scenario::parse(&two, "two.toml").unwrap();
    assert_eq!(scenario.backgrounds.len(), 2);
    let plan = Plan::new(scenario, &Options::default()).unwrap();
    // A full /24: 254 distinct hosts, none of them .0 or .255.
    let hosting: std::collections::BTreeSet<_> = plan.backgrounds[0].hosts.iter().collect();
    assert_eq!(hosting.len(), 254);
    assert!(hosting.iter().all(|h| !matches!(h.octets()[3], 0 | 255)));
    let packets = packets_of(&two);
    let local = |p: &simulate::model::Packet| if p.outgoing { p.src } else { p.dst };
    let in_hosting = packets
        .iter()
        .filter(|p| local(p).octets()[..3] == [198, 18, 1])
        .count() as f64;
    let in_subscribers = packets
        .iter()
        .filter(|p| local(p).octets()[..2] == [198, 19])
        .count() as f64;
    assert_eq!(in_hosting + in_subscribers, packets.len() as f64);
    // 25,400 pps against 1,000 pps.
    let ratio = in_hosting / in_subscribers;
    assert!((20.0..32.0).contains(&ratio), "{ratio}");

    // Errors name the background and the key.
    let bad = two.replace("host_count = 100", "host_count = 100\nbogus = 1");
    let err = simulate::Scenario::parse(&bad, "bad.toml").unwrap_err();
    assert!(format!("{err:#}").contains("bogus"), "{err:#}");
    let bad = two.replace("host_count = 254", "host_count = 255");
    let err = simulate::Scenario::parse(&bad, "bad.toml").unwrap_err();
    assert!(
        format!("{err:#}").contains("background[0] (hosting).host_count"),
        "{err:#}"
    );
    let bad = two.replace("clients = 50\nhours", "clients = 50\npeers = 51\nhours");
    let err = simulate::Scenario::parse(&bad, "bad.toml").unwrap_err();
    assert!(format!("{err:#}").contains("peers"), "{err:#}");
}

/// With `peers`, a host's packets come from its few peers on a stable port pair each: a
/// download is a few connections, not a packet per random client and port.
#[test]
fn peers_make_connections() {
    let text = small_scenario(
        r#"[background]
hosts = "198.18.0.0/24"
host_count = 4
pps_median = 2000
pps_sigma = 0
pps_cap = 10000
clients = 100000
peers = 3
hours = [12, 12]"#,
        "",
    );
    let packets = packets_of(&text);
    assert!(packets.len() > 20_000, "{}", packets.len());
    let mut conversations = std::collections::BTreeMap::new();
    for p in &packets {
        let (host, remote, local_port, remote_port) = if p.outgoing {
            (p.src, p.dst, p.src_port, p.dst_port)
        } else {
            (p.dst, p.src, p.dst_port, p.src_port)
        };
        conversations
            .entry((host, remote, p.protocol))
            .or_insert_with(std::collections::BTreeSet::new)
            .insert((local_port, remote_port));
    }
    // 4 hosts × 3 peers, over TCP and UDP.
    let remotes: std::collections::BTreeSet<_> =
        conversations.keys().map(|(h, r, _)| (*h, *r)).collect();
    assert_eq!(remotes.len(), 12, "{remotes:?}");
    // Each (host, peer, protocol) uses one local port; remote ports are the mix's (443, 80,
    // 53 and two game ports): a handful, not thousands.
    for ((host, remote, protocol), ports) in &conversations {
        let locals: std::collections::BTreeSet<_> = ports.iter().map(|(l, _)| l).collect();
        assert_eq!(locals.len(), 1, "{host} {remote} {protocol}: {ports:?}");
        assert!(ports.len() <= 5, "{host} {remote} {protocol}: {ports:?}");
    }
}

/// A benign component's `reply` is the answering direction: from its targets back to its
/// sources, ports swapped, at `ratio` packets per forward packet, with its own sizes and flags.
#[test]
fn replies_answer_benign_traffic() {
    let text = small_scenario(
        "",
        r#"[[traffic]]
name = "crowd"
kind = "benign"
direction = "incoming"
target = "198.18.0.10/32"
start_s = 0
duration_s = 5
peak_pps = 4000
protocol = "tcp"
sizes = [{ min = 52, max = 64, share = 1.0 }]
tcp_flags = "ACK"
src_ports = "per-source"
dst_ports = 443
sources = 50
reply = { ratio = 2.0, sizes = [{ size = 1500, share = 1.0 }], tcp_flags = "PSH|ACK" }
"#,
    );
    let packets = packets_of(&text);
    let forward: Vec<_> = packets.iter().filter(|p| !p.outgoing).collect();
    let replies: Vec<_> = packets.iter().filter(|p| p.outgoing).collect();
    let ratio = replies.len() as f64 / forward.len() as f64;
    assert!((1.9..2.1).contains(&ratio), "{ratio}");
    let clients: std::collections::BTreeSet<_> =
        forward.iter().map(|p| (p.src, p.src_port)).collect();
    for r in &replies {
        assert_eq!(r.src.to_string(), "198.18.0.10");
        assert_eq!(
            (r.src_port, r.tcp_flags, r.size, r.ttl),
            (443, 0x18, 1500, 63)
        );
        assert!(clients.contains(&(r.dst, r.dst_port)), "{r:?}");
    }
    // Strict: attacks are not answered; TCP answers need flags; unknown keys are refused.
    let attack = text.replace("kind = \"benign\"", "kind = \"attack\"");
    let err = simulate::Scenario::parse(&attack, "a.toml").unwrap_err();
    assert!(format!("{err:#}").contains("reply"), "{err:#}");
    let no_flags = text.replace(", tcp_flags = \"PSH|ACK\" }", " }");
    let err = simulate::Scenario::parse(&no_flags, "a.toml").unwrap_err();
    assert!(format!("{err:#}").contains("reply.tcp_flags"), "{err:#}");
    let unknown = text.replace("ratio = 2.0,", "ratio = 2.0, rate = 1,");
    assert!(simulate::Scenario::parse(&unknown, "a.toml").is_err());
}
