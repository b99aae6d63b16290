//! The detection engine end to end: synthetic sFlow telemetry describing attacks (written as a
//! capture) through `floodwall replay --json`, and live through `floodwall run` on loopback.
//! Thresholds are the documented defaults; attacks are several times above them and benign
//! traffic well below, so the tests check behaviour, not tuning.

mod support;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use floodwall_wire::packet::TransportRepr;
use serde_json::Value;
use support::telemetry::{merge, Packet, Rng, SflowAgent};
use support::*;

const T0_S: u64 = 1_760_000_000;
const T0_US: u64 = T0_S * 1_000_000;
const NETWORKS: [&str; 3] = ["203.0.113.0/24", "198.51.100.0/24", "2001:db8:1::/48"];

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// A source outside the monitored networks, drawn from a pool of `pool` addresses.
fn remote(rng: &mut Rng, pool: u64) -> IpAddr {
    let n = rng.below(pool) as u32;
    IpAddr::V4(Ipv4Addr::from(0x2d00_0000u32 + n)) // 45.0.0.0/8 and up
}

/// Normal traffic: 40 hosts of 203.0.113.0/24 receiving a few thousand packets/s of web and DNS.
fn background(agent: &mut SflowAgent, rng: &mut Rng, seconds: f64) {
    for host in 100..140u8 {
        agent.traffic(rng, T0_US, seconds, 3_000.0, |rng| Packet {
            src: remote(rng, 5_000),
            dst: v4(203, 0, 113, host),
            transport: if rng.below(4) == 0 {
                TransportRepr::Udp {
                    src_port: 53,
                    dst_port: 40_000 + rng.below(20_000) as u16,
                }
            } else {
                TransportRepr::Tcp {
                    src_port: 443,
                    dst_port: 40_000 + rng.below(20_000) as u16,
                    flags: 0x10,
                }
            },
            ttl: 50,
            ip_len: 200 + rng.below(1300) as u16,
        });
    }
}

fn replay(dir: &Path, frames: &[Frame]) -> Vec<Value> {
    let pcap = dir.join("scenario.pcap");
    write_pcap(&pcap, frames);
    let mut command = Command::new(env!("CARGO_BIN_EXE_floodwall"));
    command.arg("replay").arg("--json");
    for net in NETWORKS {
        command.args(["--network", net]);
    }
    let output = command
        .arg(&pcap)
        .output()
        .expect("running floodwall replay");
    assert!(
        output.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect()
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

fn vectors(event: &Value) -> Vec<String> {
    event["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Seconds after T0 of an RFC 3339 timestamp.
fn secs(ts: &Value) -> f64 {
    let text = ts.as_str().unwrap();
    // 2025-10-09T08:53:20.000Z: T0 is 08:53:20 on that day; tests stay within the hour.
    let (minutes, rest) = (&text[14..16], &text[17..23]);
    let m: f64 = minutes.parse().unwrap();
    let s: f64 = rest.parse().unwrap();
    (m - 53.0) * 60.0 + s - 20.0
}

/// Every attack that started also ended, exactly once, and nothing was reported twice at once.
fn assert_lifecycle(events: &[Value]) {
    let started: Vec<&str> = of_kind(events, "attack_started")
        .iter()
        .map(|e| e["attack_id"].as_str().unwrap())
        .collect();
    let ended: Vec<&str> = of_kind(events, "attack_ended")
        .iter()
        .map(|e| e["attack_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        started.iter().collect::<BTreeSet<_>>().len(),
        started.len(),
        "duplicate starts"
    );
    assert_eq!(
        started.iter().collect::<BTreeSet<_>>(),
        ended.iter().collect::<BTreeSet<_>>(),
        "every attack ends"
    );
    for e in of_kind(events, "attack_ended") {
        assert!(e["ended_at"].is_string());
    }
}

/// One line per event, for failure messages.
fn summary(events: &[&Value]) -> String {
    events
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {} {} {}",
                e["ts"], e["event"], e["direction"], e["target"], e["vectors"], e["trigger"]
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn single_attack<'a>(events: &'a [Value], target: &str) -> &'a Value {
    let started: Vec<&Value> = of_kind(events, "attack_started");
    assert_eq!(
        started.len(),
        1,
        "exactly one attack expected, got\n{}",
        summary(&started)
    );
    assert_eq!(started[0]["target"], target);
    started[0]
}

fn ended_of<'a>(events: &'a [Value], id: &Value) -> &'a Value {
    of_kind(events, "attack_ended")
        .into_iter()
        .find(|e| &e["attack_id"] == id)
        .expect("the attack ends")
}

#[test]
fn udp_flood_from_a_botnet_is_detected_within_a_bucket_with_true_peak_and_sources() {
    let dir = test_dir("det-udp-flood");
    let mut rng = Rng::new(1);
    let mut agent = SflowAgent::new(Ipv4Addr::new(192, 0, 2, 1), 1000);
    background(&mut agent, &mut rng, 40.0);
    // 1 Mpps of 540-byte UDP from 100,000 bots to one host for 15 s, from t = 20 s.
    let mut sampled_sources = BTreeSet::new();
    agent.traffic(&mut rng, T0_US + 20_000_000, 15.0, 1_000_000.0, |rng| {
        let src = remote(rng, 100_000);
        sampled_sources.insert(src);
        Packet {
            src,
            dst: v4(203, 0, 113, 10),
            transport: TransportRepr::Udp {
                src_port: 1024 + rng.below(60_000) as u16,
                dst_port: rng.below(65_535) as u16,
            },
            ttl: 54,
            ip_len: 540,
        }
    });
    let events = replay(&dir, &merge(vec![agent]));
    assert_lifecycle(&events);
    let start = single_attack(&events, "203.0.113.10/32");
    assert_eq!(start["direction"], "incoming");
    assert_eq!(start["carpet_bombing"], false);
    assert_eq!(vectors(start), ["udp_flood"]);
    // Crossed in the bucket [20 s, 21 s): reported by the end of the next one.
    assert!(secs(&start["ts"]) <= 22.0, "reported at {}", start["ts"]);
    let end = ended_of(&events, &start["attack_id"]);
    // Peak within 10% of the truth: 1 Mpps of 558-byte frames.
    let peak_pps = end["peak_pps"].as_f64().unwrap();
    let peak_bps = end["peak_bps"].as_f64().unwrap();
    assert!((peak_pps / 1e6 - 1.0).abs() < 0.1, "peak pps {peak_pps}");
    assert!(
        (peak_bps / (1e6 * 558.0 * 8.0) - 1.0).abs() < 0.1,
        "peak bps {peak_bps}"
    );
    // Distinct sources: as many as the samples can show, within 10%.
    let sources = end["sources"].as_f64().unwrap();
    assert!(
        (sources / sampled_sources.len() as f64 - 1.0).abs() < 0.1,
        "sources {sources} vs {}",
        sampled_sources.len()
    );
    assert!(secs(&end["ended_at"]) >= 35.0);
    let fingerprint = &end["fingerprint"];
    assert!(fingerprint["protocols"]["udp"].as_f64().unwrap() > 0.9);
}

#[test]
fn each_vector_is_classified() {
    let dir = test_dir("det-vectors");
    let mut rng = Rng::new(2);
    let mut agent = SflowAgent::new(Ipv4Addr::new(192, 0, 2, 1), 1000);
    background(&mut agent, &mut rng, 30.0);
    let start = T0_US + 10_000_000;
    let attack = |agent: &mut SflowAgent,
                  rng: &mut Rng,
                  host: u8,
                  pps: f64,
                  make: &dyn Fn(&mut Rng) -> (TransportRepr, u16)| {
        agent.traffic(rng, start, 10.0, pps, |rng| {
            let (transport, ip_len) = make(rng);
            Packet {
                src: remote(rng, 20_000),
                dst: v4(203, 0, 113, host),
                transport,
                ttl: 60,
                ip_len,
            }
        });
    };
    let port = |rng: &mut Rng| 1024 + rng.below(60_000) as u16;
    attack(&mut agent, &mut rng, 11, 2_000_000.0, &|rng| {
        (
            TransportRepr::Tcp {
                src_port: port(rng),
                dst_port: 80,
                flags: 0x02,
            },
            40,
        )
    });
    attack(&mut agent, &mut rng, 12, 1_000_000.0, &|rng| {
        (
            TransportRepr::Tcp {
                src_port: port(rng),
                dst_port: 443,
                flags: 0x10,
            },
            52,
        )
    });
    // TCP with flags of every kind, none dominating: a third each with RST, SYN without ACK,
    // and ACK (with PSH, URG at random). Random flags alone put RST on exactly half the
    // packets, where a flood is an RST flood by a sample or two.
    attack(&mut agent, &mut rng, 13, 1_000_000.0, &|rng| {
        let random = rng.below(64) as u8;
        let flags = match rng.below(3) {
            0 => random | 0x04,
            1 => (random | 0x02) & !(0x10 | 0x04),
            _ => (random | 0x18) & !(0x02 | 0x04),
        };
        (
            TransportRepr::Tcp {
                src_port: port(rng),
                dst_port: 443,
                flags,
            },
            60,
        )
    });
    attack(&mut agent, &mut rng, 14, 1_000_000.0, &|rng| {
        (
            TransportRepr::Tcp {
                src_port: port(rng),
                dst_port: 22,
                flags: 0x04,
            },
            40,
        )
    });
    attack(&mut agent, &mut rng, 15, 600_000.0, &|_| {
        (
            TransportRepr::Icmp {
                msg_type: 8,
                code: 0,
            },
            84,
        )
    });
    attack(&mut agent, &mut rng, 16, 600_000.0, &|_| {
        (TransportRepr::Other { protocol: 47 }, 576)
    });
    attack(&mut agent, &mut rng, 17, 500_000.0, &|rng| {
        (
            TransportRepr::Udp {
                src_port: 53,
                dst_port: port(rng),
            },
            1400,
        )
    });
    attack(&mut agent, &mut rng, 18, 500_000.0, &|rng| {
        (
            TransportRepr::Udp {
                src_port: 123,
                dst_port: port(rng),
            },
            468,
        )
    });
    attack(&mut agent, &mut rng, 19, 500_000.0, &|rng| {
        (
            TransportRepr::Udp {
                src_port: 11211,
                dst_port: port(rng),
            },
            1400,
        )
    });
    attack(&mut agent, &mut rng, 20, 500_000.0, &|rng| {
        (
            TransportRepr::Udp {
                src_port: 1900,
                dst_port: port(rng),
            },
            300,
        )
    });
    let events = replay(&dir, &merge(vec![agent]));
    assert_lifecycle(&events);
    let expect = [
        (11, "syn_flood"),
        (12, "ack_flood"),
        (13, "tcp_flood"),
        (14, "rst_flood"),
        (15, "icmp_flood"),
        (16, "gre_flood"),
        (17, "dns_amplification"),
        (18, "ntp_amplification"),
        (19, "memcached_amplification"),
        (20, "ssdp_amplification"),
    ];
    let started = of_kind(&events, "attack_started");
    assert_eq!(started.len(), expect.len(), "\n{}", summary(&started));
    for (host, vector) in expect {
        let target = format!("203.0.113.{host}/32");
        let event = started
            .iter()
            .find(|e| e["target"] == target.as_str())
            .unwrap_or_else(|| panic!("no attack on {target}"));
        let found = vectors(event);
        assert!(
            found.contains(&vector.to_string()),
            "{target}: {found:?}, expected {vector}"
        );
        if vector.ends_with("_amplification") {
            assert!(
                !found.contains(&"udp_flood".to_string()),
                "{target}: amplification labelled udp_flood too: {found:?}"
            );
        }
    }
}

#[test]
fn carpet_bombing_of_a_prefix_is_one_prefix_attack() {
    let dir = test_dir("det-carpet");
    let mut rng = Rng::new(3);
    let mut agent = SflowAgent::new(Ipv4Addr::new(192, 0, 2, 1), 1000);
    background(&mut agent, &mut rng, 30.0);
    // Every address of 198.51.100.0/24 gets 4,000 pps — far below a host threshold; 1 Mpps in all.
    agent.traffic(&mut rng, T0_US + 10_000_000, 12.0, 1_024_000.0, |rng| {
        Packet {
            src: remote(rng, 50_000),
            dst: v4(198, 51, 100, rng.below(256) as u8),
            transport: TransportRepr::Udp {
                src_port: 1024 + rng.below(60_000) as u16,
                dst_port: rng.below(65_535) as u16,
            },
            ttl: 57,
            ip_len: 540,
        }
    });
    let events = replay(&dir, &merge(vec![agent]));
    assert_lifecycle(&events);
    let start = single_attack(&events, "198.51.100.0/24");
    assert_eq!(start["carpet_bombing"], true);
    assert_eq!(start["direction"], "incoming");
    assert!(secs(&start["ts"]) <= 12.0, "reported at {}", start["ts"]);
}

#[test]
fn outgoing_flood_from_an_infected_customer_is_detected_as_outgoing() {
    let dir = test_dir("det-outgoing");
    let mut rng = Rng::new(4);
    let mut agent = SflowAgent::new(Ipv4Addr::new(192, 0, 2, 1), 1000);
    background(&mut agent, &mut rng, 30.0);
    agent.traffic(&mut rng, T0_US + 10_000_000, 10.0, 500_000.0, |rng| {
        Packet {
            src: v4(203, 0, 113, 40),
            dst: v4(45, 1, 2, 3),
            transport: TransportRepr::Udp {
                src_port: 1024 + rng.below(60_000) as u16,
                dst_port: 80,
            },
            ttl: 64,
            ip_len: 512,
        }
    });
    let events = replay(&dir, &merge(vec![agent]));
    assert_lifecycle(&events);
    let start = single_attack(&events, "203.0.113.40/32");
    assert_eq!(start["direction"], "outgoing");
    assert!(vectors(start).contains(&"udp_flood".to_string()));
}

#[test]
fn busy_benign_traffic_raises_nothing() {
    let dir = test_dir("det-benign");
    let mut rng = Rng::new(5);
    let mut agent = SflowAgent::new(Ipv4Addr::new(192, 0, 2, 1), 1000);
    background(&mut agent, &mut rng, 60.0);
    // A busy server: 30,000 pps of full-size downloads to many clients (360 Mbps out), requests in.
    agent.traffic(&mut rng, T0_US, 60.0, 30_000.0, |rng| Packet {
        src: v4(203, 0, 113, 50),
        dst: remote(rng, 200_000),
        transport: TransportRepr::Tcp {
            src_port: 443,
            dst_port: 1024 + rng.below(60_000) as u16,
            flags: 0x18,
        },
        ttl: 64,
        ip_len: 1500,
    });
    agent.traffic(&mut rng, T0_US, 60.0, 15_000.0, |rng| Packet {
        src: remote(rng, 200_000),
        dst: v4(203, 0, 113, 50),
        transport: TransportRepr::Tcp {
            src_port: 1024 + rng.below(60_000) as u16,
            dst_port: 443,
            flags: 0x10,
        },
        ttl: 50,
        ip_len: 52,
    });
    // A customer's big download: 60,000 pps of 1500-byte packets (720 Mbps) from a CDN.
    agent.traffic(&mut rng, T0_US + 5_000_000, 40.0, 60_000.0, |rng| Packet {
        src: v4(23, 1, 1, 1 + rng.below(8) as u8),
        dst: v4(198, 51, 100, 77),
        transport: TransportRepr::Tcp {
            src_port: 443,
            dst_port: 51_000,
            flags: 0x18,
        },
        ttl: 55,
        ip_len: 1500,
    });
    let events = replay(&dir, &merge(vec![agent]));
    assert!(
        events.is_empty(),
        "benign traffic raised\n{}",
        summary(&events.iter().collect::<Vec<_>>())
    );
}

#[test]
fn sampling_is_scaled_and_sparse_samples_do_not_alarm() {
    let dir = test_dir("det-sampling");
    let mut rng = Rng::new(6);
    // A terabit-class flood seen through 1:16384 sampling: 1 Tbps of 1400-byte UDP = 89 Mpps.
    let mut edge = SflowAgent::new(Ipv4Addr::new(192, 0, 2, 2), 16_384);
    let pps = 1e12 / (1418.0 * 8.0);
    edge.traffic(&mut rng, T0_US + 5_000_000, 10.0, pps, |rng| Packet {
        src: remote(rng, 500_000),
        dst: v4(203, 0, 113, 60),
        transport: TransportRepr::Udp {
            src_port: 1024 + rng.below(60_000) as u16,
            dst_port: 443,
        },
        ttl: 52,
        ip_len: 1400,
    });
    // A quiet host: 3 samples in one second at 1:16384 "look like" 49 kpps of 64-byte packets —
    // too little evidence to call an attack; and single samples now and then.
    for i in 0..3u64 {
        edge.sample(
            T0_US + 20_000_000 + i * 100_000,
            &Packet {
                src: remote(&mut rng, 10),
                dst: v4(203, 0, 113, 61),
                transport: TransportRepr::Tcp {
                    src_port: 40_000,
                    dst_port: 22,
                    flags: 0x02,
                },
                ttl: 60,
                ip_len: 40,
            },
        );
    }
    let events = replay(&dir, &merge(vec![edge]));
    assert_lifecycle(&events);
    let start = single_attack(&events, "203.0.113.60/32");
    let end = ended_of(&events, &start["attack_id"]);
    let peak_bps = end["peak_bps"].as_f64().unwrap();
    assert!(
        (peak_bps / 1e12 - 1.0).abs() < 0.1,
        "peak {peak_bps} bps, expected ~1 Tbps"
    );
}

#[test]
fn daemon_detects_live_telemetry_and_stops_cleanly_on_sigterm() {
    let dir = test_dir("det-daemon");
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let events_file = dir.join("events.jsonl");
    let config = dir.join("floodwall.toml");
    std::fs::write(
        &config,
        format!(
            "networks = [\"203.0.113.0/24\"]\n\n[http]\nlisten = \"127.0.0.1:0\"\n[collector]\nlisten = [\"127.0.0.1:{port}\"]\n\n[events]\nfile = \"{}\"\n\n[state]\ndir = \"{}\"\n\n[detection]\nquiet_period_s = 2\n",
            events_file.display(),
            dir.join("state").display()
        ),
    )
    .unwrap();
    // Baselines a previous run saved: a quiet host (2 kpps) and its /24.
    let state = |mean_pps: f32| floodwall_detect::BaselineState {
        mean_pps,
        dev_pps: mean_pps / 10.0,
        mean_bps: mean_pps * 8000.0,
        dev_bps: mean_pps * 800.0,
        history: 900,
    };
    let previous = floodwall_detect::Baselines {
        hosts: vec![(v4(203, 0, 113, 5), [state(2000.0), state(100.0)])],
        prefixes: vec![("203.0.113.0/24".parse().unwrap(), state(3000.0))],
    };
    std::fs::create_dir_all(dir.join("state")).unwrap();
    floodwall_daemon::baselines::save(&dir.join("state"), &previous, 1_700_000_000).unwrap();
    let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_floodwall"))
        .args(["run", "--config", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starting the daemon");
    std::thread::sleep(Duration::from_millis(500));

    // 4 s of a 1 Mpps UDP flood (1:1000 sampled) sent in real time, then nothing.
    let mut rng = Rng::new(7);
    let mut agent = SflowAgent::new(Ipv4Addr::new(127, 0, 0, 1), 1000);
    agent.traffic(&mut rng, 0, 4.0, 1_000_000.0, |rng| Packet {
        src: remote(rng, 100_000),
        dst: v4(203, 0, 113, 10),
        transport: TransportRepr::Udp {
            src_port: 1024 + rng.below(60_000) as u16,
            dst_port: 443,
        },
        ttl: 54,
        ip_len: 540,
    });
    let frames = merge(vec![agent]);
    let samples: usize = frames
        .iter()
        .map(|f| {
            let mut records = Vec::new();
            floodwall_wire::Decoder::default()
                .decode(v4(127, 0, 0, 1), 0, &f.bytes[42..], &mut records)
                .unwrap();
            records.len()
        })
        .sum();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let started = Instant::now();
    for frame in &frames {
        let due = Duration::from_micros(frame.ts_us);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        // The sFlow datagram is the UDP payload of the frame (14 + 20 + 8 bytes of headers).
        sender
            .send_to(&frame.bytes[42..], ("127.0.0.1", port))
            .unwrap();
    }
    let read_events = || -> Vec<Value> {
        std::fs::read_to_string(&events_file)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline && of_kind(&read_events(), "attack_ended").is_empty() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(&daemon),
        rustix::process::Signal::TERM,
    );
    wait_or_kill(&mut daemon, Duration::from_secs(5), "floodwall run");
    let status = daemon.wait().unwrap();
    let log = std::fs::read_to_string(dir.join("daemon.log")).unwrap();
    assert!(status.success(), "daemon exit {status:?}: {log}");
    // At SIGTERM it logs its totals since start: every sample sent reached the engine.
    assert!(
        log.contains(&format!(
            "stopped; {samples} records, {} datagrams, 0 decode errors, 0 kernel drops, 0 not allowed, 0 implausible records",
            frames.len()
        )),
        "{log}"
    );
    let events = read_events();
    assert_lifecycle(&events);
    let start = single_attack(&events, "203.0.113.10/32");
    assert_eq!(vectors(start), ["udp_flood"]);
    assert!(
        log.contains("203.0.113.10/32"),
        "events are logged too: {log}"
    );

    // What was learnt survives restarts: resumed at start, saved at SIGTERM.
    assert!(
        log.contains("resumed the baselines of 1 hosts and 1 prefixes saved "),
        "{log}"
    );
    assert!(
        log.contains("saved the baselines of 1 hosts and 1 prefixes"),
        "{log}"
    );
    let saved = dir.join("state/baselines.bin");
    let restart = |name: &str| {
        let log_path = dir.join(name);
        let mut daemon = Command::new(env!("CARGO_BIN_EXE_floodwall"))
            .args(["run", "--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .expect("starting the daemon");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline
            && !std::fs::read_to_string(&log_path)
                .unwrap_or_default()
                .contains("listening on")
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&daemon),
            rustix::process::Signal::TERM,
        );
        wait_or_kill(&mut daemon, Duration::from_secs(5), "floodwall run");
        assert!(daemon.wait().unwrap().success());
        std::fs::read_to_string(&log_path).unwrap()
    };
    let log = restart("resumed.log");
    assert!(
        log.contains("resumed the baselines of 1 hosts and 1 prefixes"),
        "{log}"
    );
    // A damaged file is reported and ignored: the daemon runs and learns again.
    let mut bytes = std::fs::read(&saved).unwrap();
    let last = bytes.len() - 10;
    bytes[last] ^= 0xff;
    std::fs::write(&saved, &bytes).unwrap();
    let log = restart("damaged.log");
    assert!(
        log.contains("baselines.bin is damaged: checksum mismatch (truncated or edited); learning baselines again"),
        "{log}"
    );
    assert!(log.contains("stopped;"), "{log}");
}

/// A UDP flood of `pps` at 203.0.113.10 for `seconds`, sampled 1:1000, written to `path`.
fn udp_flood_capture(path: &Path, seed: u64, seconds: f64, pps: f64) -> std::path::PathBuf {
    let mut rng = Rng::new(seed);
    let mut agent = SflowAgent::new(Ipv4Addr::new(192, 0, 2, 1), 1000);
    agent.traffic(&mut rng, T0_US, seconds, pps, |rng| Packet {
        src: remote(rng, 100_000),
        dst: v4(203, 0, 113, 10),
        transport: TransportRepr::Udp {
            src_port: 1024 + rng.below(60_000) as u16,
            dst_port: 443,
        },
        ttl: 54,
        ip_len: 540,
    });
    write_pcap(path, &merge(vec![agent]));
    path.to_path_buf()
}

#[test]
fn replay_without_json_prints_a_readable_table() {
    let dir = test_dir("det-table");
    let pcap = udp_flood_capture(&dir.join("scenario.pcap"), 8, 5.0, 1_000_000.0);
    let output = Command::new(env!("CARGO_BIN_EXE_floodwall"))
        .args(["replay", "--network", "203.0.113.0/24"])
        .arg(&pcap)
        .output()
        .expect("running floodwall replay");
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("time") && lines[0].contains("target") && lines[0].contains("vectors"),
        "{stdout}"
    );
    let started = lines
        .iter()
        .find(|l| l.contains("started"))
        .unwrap_or_else(|| panic!("{stdout}"));
    // Started at the record that crossed the limit: its rate is what the second had shown so far.
    assert!(
        started.contains("203.0.113.10/32")
            && started.contains("udp_flood")
            && started.contains("kpps"),
        "{started}"
    );
    let ended = lines
        .iter()
        .find(|l| l.contains("ended"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        ended.contains("Mpps"),
        "the peak of the 1 Mpps flood: {ended}"
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("records") && stderr.contains("1 attacks"),
        "{stderr}"
    );
}

#[test]
fn replay_on_a_terminal_shows_a_progress_bar_and_keeps_stdout_clean() {
    let script = require_tool("script");
    let dir = test_dir("det-progress");
    // ~130,000 samples: a capture above the size from which the bar is drawn (16 MiB).
    let pcap = udp_flood_capture(&dir.join("big.pcap"), 9, 3.0, 44_000_000.0);
    assert!(std::fs::metadata(&pcap).unwrap().len() > 16 << 20);
    let table = dir.join("table.txt");
    // `script` runs the command on a pseudo-terminal: stderr is a terminal, stdout a file.
    let command = format!(
        "{} replay --network 203.0.113.0/24 {} > {}",
        env!("CARGO_BIN_EXE_floodwall"),
        pcap.display(),
        table.display()
    );
    let output = Command::new(script)
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("running script");
    let terminal = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{terminal}");
    assert!(
        terminal.contains("eta") && terminal.contains("MiB"),
        "the terminal shows a progress bar: {terminal:?}"
    );
    assert!(terminal.contains("1 attacks"), "{terminal:?}");
    let table = std::fs::read_to_string(&table).unwrap();
    assert!(
        !table.contains("eta") && !table.contains('\u{1b}'),
        "stdout holds only the table: {table}"
    );
    assert!(table
        .lines()
        .any(|l| l.contains("started") && l.contains("203.0.113.10/32")));

    // Not a terminal: no bar at all.
    let output = Command::new(env!("CARGO_BIN_EXE_floodwall"))
        .args(["replay", "--network", "203.0.113.0/24"])
        .arg(&pcap)
        .output()
        .expect("running floodwall replay");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("eta"), "{stderr}");
}
