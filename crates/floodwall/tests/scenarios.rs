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

/// The hunting scenarios' attacks (their hunting is judged by `hunting.rs`): the scanners,
/// CGNAT addresses, busy servers and periodic traffic raise nothing; the campaign scenario's
/// five floods are each found.
#[test]
fn hunting_scenarios_raise_exactly_their_attacks() {
    assert_matches_truth("hunt-scan", Options::default());
    assert_matches_truth("hunt-c2", Options::default());
    assert_matches_truth("campaigns", Options::default());
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

/// A small scenario with pools, for the pool tests.
fn pool_scenario(extra: &str) -> String {
    small_scenario(
        "",
        &format!(
            r#"[[pools]]
name = "a"
size = 10000
seed = 1

[[pools]]
name = "b"
size = 5000
seed = 2

[[pools]]
name = "c"
size = 1000
prefixes = ["45.10.0.0/22", "91.20.30.0/24"]
seed = 3

{extra}
[[traffic]]
name = "a-1"
kind = "attack"
direction = "incoming"
target = "198.18.0.10/32"
start_s = 0
duration_s = 5
peak_pps = 1000
protocol = "udp"
sizes = [{{ size = 540, share = 1.0 }}]
pool = "a"
pool_share = 0.3

[[traffic]]
name = "a-2"
kind = "attack"
direction = "incoming"
target = "198.18.0.11/32"
start_s = 0
duration_s = 5
peak_pps = 1000
protocol = "udp"
sizes = [{{ size = 540, share = 1.0 }}]
pool = "a"
pool_share = 0.3

[[traffic]]
name = "b-1"
kind = "attack"
direction = "incoming"
target = "198.18.0.12/32"
start_s = 0
duration_s = 5
peak_pps = 1000
protocol = "udp"
sizes = [{{ size = 540, share = 1.0 }}]
pool = "b"
pool_share = 0.5

[[traffic]]
name = "c-1"
kind = "attack"
direction = "incoming"
target = "198.18.0.13/32"
start_s = 0
duration_s = 5
peak_pps = 1000
protocol = "udp"
sizes = [{{ size = 540, share = 1.0 }}]
pool = "c"
pool_share = 1.0
"#
        ),
    )
}

/// A pool share is exactly that share of the pool's members, a different random subset for
/// each component (two 30 % draws share ~9 % of the pool), all inside the pool; disjoint pools
/// share nothing; a pool over prefixes keeps to them with distinct addresses; and the packets
/// come from exactly those sources.
#[test]
fn pool_shares_are_random_subsets_of_the_pool() {
    use std::collections::HashSet;
    let text = pool_scenario("");
    let scenario = simulate::Scenario::parse(&text, "pools.toml").unwrap();
    let plan = Plan::new(scenario, &Options::default()).unwrap();
    let by_name = |n: &str| plan.traffic.iter().find(|t| t.name == n).unwrap();
    let (a1, a2, b1, c1) = (
        by_name("a-1"),
        by_name("a-2"),
        by_name("b-1"),
        by_name("c-1"),
    );
    assert_eq!(
        (a1.sources, a2.sources, b1.sources, c1.sources),
        (3000, 3000, 2500, 1000)
    );
    let pool_a = a1.pool.as_ref().unwrap();
    let members: HashSet<_> = (0..pool_a.size).map(|j| pool_a.address(j)).collect();
    let (s1, s2, sb, sc) = (
        a1.source_set(),
        a2.source_set(),
        b1.source_set(),
        c1.source_set(),
    );
    // Public space may, rarely, give two members one address.
    assert!(members.len() >= 9995, "{}", members.len());
    assert!(s1.len() >= 2995 && s2.len() >= 2995);
    assert!(s1.is_subset(&members) && s2.is_subset(&members));
    // Hypergeometric: 900 ± 3 × 26.
    let shared = s1.intersection(&s2).count();
    assert!((820..=980).contains(&shared), "{shared}");
    assert_eq!(sb.intersection(&members).count(), 0);
    let nets: [ipnet::Ipv4Net; 2] = [
        "45.10.0.0/22".parse().unwrap(),
        "91.20.30.0/24".parse().unwrap(),
    ];
    assert_eq!(sc.len(), 1000);
    assert!(sc.iter().all(|a| nets.iter().any(|n| n.contains(a))));
    assert!(s1.iter().chain(&sb).all(|a| {
        let o = a.octets();
        !(o[0] == 10 || o[0] == 127 || o[0] >= 224 || (o[0] == 198 && (o[1] & 0xfe) == 18))
    }));
    // The same pool from another scenario seed is the same population; a component's subset
    // follows the component's own key.
    let reseeded = Plan::new(
        simulate::Scenario::parse(
            &text.replace("seed = 3\n\n[telemetry]", "seed = 4\n\n[telemetry]"),
            "p.toml",
        )
        .unwrap(),
        &Options::default(),
    )
    .unwrap();
    let r1 = reseeded.traffic.iter().find(|t| t.name == "a-1").unwrap();
    assert!(r1.source_set().is_subset(&members));
    assert_ne!(r1.source_set(), s1);
    // Packets come from the sources (sampling 1: every packet).
    let packets = packets_of(&text);
    let from_a1: HashSet<_> = packets
        .iter()
        .filter(|p| p.dst.to_string() == "198.18.0.10")
        .map(|p| p.src)
        .collect();
    assert!(from_a1.is_subset(&s1));
    // 5,000 packets over 3,000 equal sources: ~2,430 of them seen.
    assert!(from_a1.len() > 2300, "{}", from_a1.len());
    // Strict: unknown pool, share out of range, pool with sources.
    let bad = text.replacen("pool = \"a\"", "pool = \"z\"", 1);
    assert!(format!(
        "{:#}",
        simulate::Scenario::parse(&bad, "p.toml").unwrap_err()
    )
    .contains("no pool"));
    let bad = text.replacen("pool_share = 0.3", "pool_share = 1.3", 1);
    assert!(simulate::Scenario::parse(&bad, "p.toml").is_err());
    let bad = text.replacen("pool_share = 0.3", "pool_share = 0.3\nsources = 5", 1);
    assert!(simulate::Scenario::parse(&bad, "p.toml").is_err());
}

/// `tcp_seq = "dst"`: in the encoded sFlow raw header every probe's sequence number is its
/// destination address (the decoder's `seq_is_dst`); other TCP packets carry 0.
#[test]
fn mirai_probes_carry_seq_equal_to_destination_in_sflow_headers() {
    let text = small_scenario(
        r#"[background]
hosts = "198.18.1.0/24"
host_count = 20
pps_median = 200
pps_sigma = 0
pps_cap = 1000
clients = 500
hours = [12, 12]"#,
        r#"[[traffic]]
name = "scanner"
kind = "attack"
direction = "outgoing"
target = "0.0.0.0/0"
start_s = 0
duration_s = 5
peak_pps = 300
protocol = "tcp"
sizes = [{ size = 40, share = 1.0 }]
tcp_flags = "SYN"
src_ports = "per-source"
dst_ports = [{ port = 23, share = 0.9 }, { port = 2323, share = 0.1 }]
sources = 1
source_prefix = "198.18.2.9/32"
tcp_seq = "dst"
"#,
    );
    let scenario = simulate::Scenario::parse(&text, "seq.toml").unwrap();
    let plan = Plan::new(scenario, &Options::default()).unwrap();
    struct Collect(Decoder, Vec<floodwall_wire::FlowRecord>);
    impl simulate::Sink for Collect {
        fn datagram(&mut self, ts_us: u64, bytes: &[u8]) -> anyhow::Result<()> {
            let _ = self.0.decode(
                "192.0.2.1".parse().unwrap(),
                ts_us / 1000,
                bytes,
                &mut self.1,
            );
            Ok(())
        }
    }
    let mut sink = Collect(Decoder::default(), Vec::new());
    simulate::run(&plan, &mut sink).unwrap();
    assert_eq!(sink.0.totals().total_errors(), 0);
    let scanner: std::net::IpAddr = "198.18.2.9".parse().unwrap();
    let (probes, others): (Vec<&floodwall_wire::FlowRecord>, Vec<_>) =
        sink.1.iter().partition(|r| r.src == scanner);
    assert!(probes.len() > 1000, "{}", probes.len());
    assert!(probes
        .iter()
        .all(|r| r.seq_is_dst && r.protocol == 6 && r.tcp_flags == 0x02));
    let tcp_others = others.iter().filter(|r| r.protocol == 6).count();
    assert!(tcp_others > 1000, "{tcp_others}");
    assert!(others.iter().all(|r| !r.seq_is_dst));
    // Only for TCP.
    let bad = text
        .replace(
            "protocol = \"tcp\"\nsizes = [{ size = 40",
            "protocol = \"udp\"\nsizes = [{ size = 40",
        )
        .replace("tcp_flags = \"SYN\"\n", "");
    let err = simulate::Scenario::parse(&bad, "seq.toml").unwrap_err();
    assert!(format!("{err:#}").contains("tcp_seq"), "{err:#}");
}

fn periodic_scenario(sampling: u32, duration: u32) -> String {
    format!(
        r#"
name = "periodic"
description = "test"
facts = "test"
duration_s = {duration}
seed = 5

[telemetry]
format = "sflow"
sampling = {sampling}
exporter = "192.0.2.1"
networks = ["198.18.0.0/15"]

[[periodic]]
name = "c2"
role = "c2"
hosts = ["198.18.2.21"]
peers = ["45.148.10.77:443"]
period_s = 60
jitter = 0.1
connection = "short"
packets = 3
size = 300

[[periodic]]
name = "keepalive"
role = "c2"
hosts = ["198.18.2.22"]
peers = ["45.148.10.78:23"]
period_s = 30
connection = "persistent"

[[periodic]]
name = "ntp"
role = "benign"
host_prefix = "198.18.1.0/24"
host_count = 50
peers = ["162.159.200.1:123", "162.159.200.123:123"]
period_s = 64
connection = "udp"
size = 76
local_port = 123

[truth]
[[truth.infected]]
traffic = "c2"
reasons = ["c2_contact"]
also = ["beaconing"]
"#
    )
}

/// Periodic check-ins: each host's connections start `period_s` ± `jitter` apart from a
/// random phase, a short connection is SYN, SYN-ACK, ACK, data each way, FIN each way, ACK on a
/// new source port each time; a keepalive is one ACK each way on one port; NTP one request and
/// one answer from port 123. Sampling 1:N keeps about 1/N of the packets.
#[test]
fn periodic_check_ins_keep_their_period_and_shape() {
    use std::collections::{BTreeMap, BTreeSet};
    let packets = packets_of(&periodic_scenario(1, 600));
    let from = |host: &str| -> Vec<&simulate::model::Packet> {
        packets
            .iter()
            .filter(|p| p.src.to_string() == host || p.dst.to_string() == host)
            .collect()
    };
    let c2 = from("198.18.2.21");
    let syns: Vec<u64> = c2
        .iter()
        .filter(|p| p.outgoing && p.tcp_flags == 0x02)
        .map(|p| p.time_us)
        .collect();
    assert!((9..=11).contains(&syns.len()), "{}", syns.len());
    for w in syns.windows(2) {
        let gap = (w[1] - w[0]) as f64 / 1e6;
        assert!((54.0..=66.0).contains(&gap), "{gap}");
    }
    // 3 + 2 × 3 + 3 packets a connection, one source port each, all to the peer's 443.
    assert_eq!(c2.len(), syns.len() * 12);
    let mut ports: BTreeMap<u16, Vec<u8>> = BTreeMap::new();
    for p in &c2 {
        let (local, remote) = if p.outgoing {
            (p.src_port, p.dst_port)
        } else {
            (p.dst_port, p.src_port)
        };
        assert_eq!(remote, 443);
        assert_eq!(
            if p.outgoing { p.dst } else { p.src }.to_string(),
            "45.148.10.77"
        );
        ports.entry(local).or_default().push(p.tcp_flags);
    }
    assert_eq!(ports.len(), syns.len());
    for flags in ports.values() {
        assert_eq!(
            flags,
            &[0x02, 0x12, 0x10, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x11, 0x11, 0x10]
        );
    }
    // Keepalives: one port, every 30 s exactly.
    let keep = from("198.18.2.22");
    let out: Vec<_> = keep.iter().filter(|p| p.outgoing).collect();
    assert!((19..=20).contains(&out.len()), "{}", out.len());
    assert_eq!(
        out.iter()
            .map(|p| p.src_port)
            .collect::<BTreeSet<_>>()
            .len(),
        1
    );
    for w in out.windows(2) {
        assert_eq!(w[1].time_us - w[0].time_us, 30_000_000);
    }
    assert!(keep.iter().all(|p| p.tcp_flags == 0x10 && p.size == 52));
    // NTP: 50 hosts, ~9.4 polls each, request and answer on 123.
    let ntp: Vec<_> = packets.iter().filter(|p| p.protocol == 17).collect();
    let hosts: BTreeSet<_> = ntp.iter().filter(|p| p.outgoing).map(|p| p.src).collect();
    assert_eq!(hosts.len(), 50);
    assert!(hosts.iter().all(|h| h.octets()[..3] == [198, 18, 1]));
    assert!(ntp
        .iter()
        .all(|p| p.src_port == 123 && p.dst_port == 123 && p.size == 76));
    let requests = ntp.iter().filter(|p| p.outgoing).count();
    assert!((450..=500).contains(&requests), "{requests}");
    assert_eq!(ntp.len(), 2 * requests);
    // Time order, as the encoders need.
    assert!(packets.windows(2).all(|w| w[0].time_us <= w[1].time_us));
    // `all_peers`: each poll goes to every server, each pair exactly a period apart.
    let all = packets_of(
        &periodic_scenario(1, 600)
            .replace("local_port = 123", "local_port = 123\nall_peers = true"),
    );
    let mut polls: BTreeMap<(std::net::Ipv4Addr, std::net::Ipv4Addr), Vec<u64>> = BTreeMap::new();
    for p in all.iter().filter(|p| p.protocol == 17 && p.outgoing) {
        polls.entry((p.src, p.dst)).or_default().push(p.time_us);
    }
    assert_eq!(polls.len(), 100);
    for times in polls.values() {
        assert!((9..=10).contains(&times.len()), "{times:?}");
        assert!(
            times.windows(2).all(|w| w[1] - w[0] == 64_000_000),
            "{times:?}"
        );
    }
    // Pure functions of the seed: the same packets again.
    let again = packets_of(&periodic_scenario(1, 600));
    assert_eq!(format!("{again:?}"), format!("{packets:?}"));
    // 1:10 sampling keeps about a tenth, the same packets' subset.
    let sampled = packets_of(&periodic_scenario(10, 600));
    let ratio = sampled.len() as f64 / packets.len() as f64;
    assert!((0.08..0.12).contains(&ratio), "{ratio}");
    // The feed and the configuration written beside a capture.
    let scenario = simulate::Scenario::parse(&periodic_scenario(1, 600), "p.toml").unwrap();
    assert_eq!(
        simulate::c2_feed(&scenario),
        ["45.148.10.77:443", "45.148.10.78:23"]
    );
    let dir = std::env::temp_dir().join(format!("floodwall-periodic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = simulate::write_hunt_files(&scenario, &dir.join("p.pcap"))
        .unwrap()
        .unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains("c2_feeds") && text.contains("p.pcap.c2.txt"),
        "{text}"
    );
    let feed = std::fs::read_to_string(dir.join("p.pcap.c2.txt")).unwrap();
    assert!(feed.contains("45.148.10.78:23"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `destinations`: a NAT gateway's packets go to a popular few of its many servers, not to a
/// new address each.
#[test]
fn destinations_concentrate_on_popular_servers() {
    let text = small_scenario(
        "",
        r#"[[traffic]]
name = "cgnat"
kind = "benign"
direction = "outgoing"
target = "0.0.0.0/0"
start_s = 0
duration_s = 5
peak_pps = 4000
protocol = "tcp"
sizes = [{ size = 52, share = 1.0 }]
tcp_flags = [{ flags = "SYN", share = 0.05 }, { flags = "ACK", share = 0.95 }]
dst_ports = [{ port = 443, share = 0.8 }, { port = 80, share = 0.2 }]
sources = 1
source_prefix = "198.18.20.1/32"
destinations = 30000
destination_sigma = 1.8
"#,
    );
    let packets = packets_of(&text);
    assert!(packets.iter().all(|p| p.src.to_string() == "198.18.20.1"));
    let mut count = std::collections::HashMap::new();
    for p in &packets {
        *count.entry(p.dst).or_insert(0u32) += 1;
    }
    let mut counts: Vec<u32> = count.values().copied().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let top: u32 = counts.iter().take(counts.len() / 10).sum();
    // 20,000 packets over fewer distinct servers, the busiest tenth with most of them.
    assert!(counts.len() < 12_000, "{}", counts.len());
    assert!(f64::from(top) > 0.4 * packets.len() as f64, "{top}");
}

/// The hunting checker: the listed hosts must be exactly the infected ones, with their
/// reasons; campaigns must group the right attacks and estimate their union.
#[test]
fn hunting_truth_checker_judges_listings_and_campaigns() {
    let scenario = simulate::Scenario::parse(&periodic_scenario(1, 600), "p.toml").unwrap();
    let plan = Plan::new(scenario, &Options::default()).unwrap();
    let truth = plan.truth().unwrap();
    let host = |host: &str, reasons: &[&str]| {
        let reasons: Vec<String> = reasons
            .iter()
            .map(|k| format!(r#"{{"kind":"{k}","first_seen":"2025-10-24T00:01:00.000Z","last_seen":"2025-10-24T00:02:00.000Z","confidence":0.9,"samples":3}}"#))
            .collect();
        format!(
            r#"{{"event":"infected_host","ts":"2025-10-24T00:02:00.000Z","host":"{host}","prefix":"198.18.0.0/15","hostgroup":"default","reasons":[{}],"first_seen":"2025-10-24T00:01:00.000Z","last_seen":"2025-10-24T00:02:00.000Z","confidence":0.9}}"#,
            reasons.join(",")
        )
    };
    let check =
        |lines: &[String]| truth.check_hunt(&simulate::Replayed::parse(&lines.join("\n")).unwrap());
    assert!(check(&[host("198.18.2.21", &["c2_contact"])]).is_empty());
    assert!(check(&[host("198.18.2.21", &["c2_contact", "beaconing"])]).is_empty());
    let p = check(&[]);
    assert!(p.len() == 1 && p[0].contains("not listed"), "{p:?}");
    // One line when listed, one per change of reasons: a repeat is a departure.
    let p = check(&[
        host("198.18.2.21", &["c2_contact"]),
        host("198.18.2.21", &["c2_contact"]),
    ]);
    assert!(p.len() == 1 && p[0].contains("repeats"), "{p:?}");
    let p = check(&[host("192.0.2.7", &["scanning"])]);
    assert!(p.iter().any(|p| p.contains("outside")), "{p:?}");
    let p = check(&[host("198.18.2.21", &["scanning", "c2_contact"])]);
    assert!(p.len() == 1 && p[0].contains("scanning"), "{p:?}");
    // The keepalive host is infected in fact, but this truth does not name it: innocent here.
    let ntp_host = plan.periodic[2].hosts[0];
    let p = check(&[
        host("198.18.2.21", &["c2_contact"]),
        host(&ntp_host.to_string(), &["beaconing"]),
    ]);
    assert!(
        p.len() == 1 && p[0].contains("innocent") && p[0].contains("(ntp)"),
        "{p:?}"
    );
    // Benign components are innocent by definition; an infected host the allow-list hides
    // could never be found.
    let hunt_scan = simulate::BUILTIN
        .iter()
        .find(|(n, _)| *n == "hunt-scan")
        .unwrap()
        .1;
    let benign = hunt_scan.replace("traffic = \"fork-scanner\"", "traffic = \"cgnat-1\"");
    let err = simulate::Scenario::parse(&benign, "h.toml").unwrap_err();
    assert!(format!("{err:#}").contains("outgoing attack"), "{err:#}");
    let hidden = hunt_scan.replace(
        "ignore = [\"198.18.40.5/32\"]",
        "ignore = [\"198.18.40.5/32\", \"198.18.10.0/24\"]",
    );
    let scenario = simulate::Scenario::parse(&hidden, "h.toml").unwrap();
    let err = Plan::new(scenario, &Options::default())
        .unwrap()
        .truth()
        .unwrap_err();
    assert!(format!("{err:#}").contains("ignore"), "{err:#}");
    // A typo in [hunt] is an error with the key.
    let typo = hunt_scan.replace("ignore = [", "ignored = [");
    let err = simulate::Scenario::parse(&typo, "h.toml").unwrap_err();
    assert!(format!("{err:#}").contains("ignored"), "{err:#}");
    // Campaigns, on the pool scenario's truth with a campaign entry.
    let text = pool_scenario("").replace(
        "[truth]",
        r#"[truth]
[[truth.expect]]
traffic = "a-1"
target = "198.18.0.10/32"
direction = "incoming"
carpet_bombing = false
vectors = ["udp_flood"]
start_s = 0
end_s = 5
[[truth.expect]]
traffic = "a-2"
target = "198.18.0.11/32"
direction = "incoming"
carpet_bombing = false
vectors = ["udp_flood"]
start_s = 0
end_s = 5
[[truth.expect]]
traffic = "b-1"
target = "198.18.0.12/32"
direction = "incoming"
carpet_bombing = false
vectors = ["udp_flood"]
start_s = 0
end_s = 5
[[truth.campaign]]
traffics = ["a-1", "a-2"]
separate = ["b-1"]"#,
    );
    let scenario = simulate::Scenario::parse(&text, "pools.toml").unwrap();
    let truth = Plan::new(scenario, &Options::default())
        .unwrap()
        .truth()
        .unwrap();
    let union = truth.hunt.as_ref().unwrap().campaigns[0].union_sources;
    assert!((5050..=5150).contains(&union), "{union}");
    let attack = |host: &str, campaign: Option<&str>| {
        let campaign = campaign
            .map(|c| format!(r#","campaign":"{c}""#))
            .unwrap_or_default();
        format!(
            r#"{{"event":"attack_ended","attack_id":"id-{host}","ts":"2025-10-24T00:00:05.000Z","direction":"incoming","target":"{host}/32","started_at":"2025-10-24T00:00:01.000Z","ended_at":"2025-10-24T00:00:05.000Z"{campaign}}}"#
        )
    };
    let campaign = |sources: u64| {
        format!(
            r#"{{"event":"campaign","ts":"2025-10-24T00:00:05.000Z","campaign":"c1","change":"formed","attack_id":"id-198.18.0.11","overlap":0.3,"attack_count":2,"attacks":["id-198.18.0.10","id-198.18.0.11"],"sources":{sources},"first_seen":"2025-10-24T00:00:01.000Z","last_seen":"2025-10-24T00:00:05.000Z","targets":["198.18.0.10/32"],"vectors":["udp_flood"],"direction":"incoming"}}"#
        )
    };
    let good = [
        attack("198.18.0.10", Some("c1")),
        attack("198.18.0.11", Some("c1")),
        attack("198.18.0.12", None),
        campaign(union),
    ];
    assert!(
        check_with(&truth, &good).is_empty(),
        "{:?}",
        check_with(&truth, &good)
    );
    let off = [
        good[0].clone(),
        good[1].clone(),
        good[2].clone(),
        campaign(union * 12 / 10),
    ];
    let p = check_with(&truth, &off);
    assert!(p.len() == 1 && p[0].contains("off the true union"), "{p:?}");
    let joined = [
        good[0].clone(),
        good[1].clone(),
        attack("198.18.0.12", Some("c1")),
        campaign(union),
    ];
    let p = check_with(&truth, &joined);
    assert!(p.len() == 2 && p.iter().all(|p| p.contains("b-1")), "{p:?}");
    // A campaign the truth does not expect is a false one.
    let other = [
        good[0].clone(),
        good[1].clone(),
        attack("198.18.0.12", Some("c2")),
        attack("198.18.0.99", Some("c2")),
        campaign(union),
    ];
    let p = check_with(&truth, &other);
    assert!(
        p.len() == 1 && p[0].contains("false campaign c2") && p[0].contains("unexpected attack"),
        "{p:?}"
    );
    // Attack lines or the campaign's own list of attacks may name the campaign: without
    // either, the second attack is in none.
    let apart = [
        good[0].clone(),
        attack("198.18.0.11", None),
        good[2].clone(),
    ];
    let p = check_with(&truth, &apart);
    assert!(p.iter().any(|p| p.contains("in no campaign")), "{p:?}");
}

fn check_with(truth: &simulate::ResolvedTruth, lines: &[String]) -> Vec<String> {
    truth.check_hunt(&simulate::Replayed::parse(&lines.join("\n")).unwrap())
}

/// `floodwall simulate --packets`: the packets themselves as Ethernet frames, read back by the
/// raw-packet capture reader with the Mirai probes' seq = dst intact; it needs `--sampling 1`.
#[test]
fn raw_packet_captures_carry_the_mirai_signature() {
    use floodwall_daemon::sources::pcap::{read_capture, CaptureMode};
    let dir = std::env::temp_dir().join(format!("floodwall-raw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("scan.toml");
    let text = small_scenario(
        "",
        r#"[[traffic]]
name = "scanner"
kind = "attack"
direction = "outgoing"
target = "0.0.0.0/0"
start_s = 0
duration_s = 5
peak_pps = 200
protocol = "tcp"
sizes = [{ size = 40, share = 1.0 }]
tcp_flags = "SYN"
src_ports = "per-source"
dst_ports = 23
sources = 1
source_prefix = "198.18.2.9/32"
tcp_seq = "dst"

[[traffic]]
name = "web"
kind = "benign"
direction = "outgoing"
target = "0.0.0.0/0"
start_s = 0
duration_s = 5
peak_pps = 200
protocol = "tcp"
sizes = [{ size = 40, share = 1.0 }]
tcp_flags = "SYN"
dst_ports = 443
sources = 1
source_prefix = "198.18.2.10/32"
"#,
    );
    std::fs::write(&scenario, text).unwrap();
    let pcap = dir.join("scan.pcap");
    let out = floodwall()
        .args(["simulate", "--scenario"])
        .arg(&scenario)
        .arg("--packets")
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut records = Vec::new();
    let mut all = Vec::new();
    let stats = read_capture(
        &pcap,
        CaptureMode::Packets,
        &mut Decoder::default(),
        &mut records,
        1024,
        |batch| {
            all.append(batch);
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(stats.raw_packets, all.len() as u64);
    assert!((1800..2200).contains(&all.len()), "{}", all.len());
    for r in &all {
        let scanner = r.src.to_string() == "198.18.2.9";
        assert_eq!(r.seq_is_dst, scanner, "{r:?}");
        assert_eq!(r.dst_port, if scanner { 23 } else { 443 });
    }
    let sampled = floodwall()
        .args(["simulate", "--scenario"])
        .arg(&scenario)
        .args(["--sampling", "10", "--packets"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(!sampled.status.success());
    assert!(String::from_utf8_lossy(&sampled.stderr).contains("--sampling 1"));
    std::fs::remove_dir_all(&dir).unwrap();
}
