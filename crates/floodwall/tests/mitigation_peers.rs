//! The daemon's mitigations as other routers see them: `floodwall run` peered with BIRD 2, FRR
//! bgpd and gobgpd (the bgp crate's harnesses, each on a loopback address of its own), fed the
//! live NTP flood. Each router's tables must hold exactly the attack's blackhole route and
//! FlowSpec filter while it lasts and nothing once it is over; with `keep_on_shutdown` and
//! Graceful Restart the routes outlive a daemon restart as stale and are refreshed, or
//! withdrawn when the attack was not seen again.

mod support;

#[path = "../../bgp/tests/support/mod.rs"]
mod bgp_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bgp_support::{set, test_dir, wait_until, Bird, Frr, GobgpOptions, Gobgpd, DAEMON_AS};
use support::mitigation::{Daemon, Flood, Options, Peer};

/// From the flood's start to the routes at the router: detection plus announcement, with room
/// for a busy machine.
const ROUTES_UP: Duration = Duration::from_secs(20);
/// From the flood's end to the routes leaving: quiet period, hold-down, withdrawal.
const ROUTES_DOWN: Duration = Duration::from_secs(25);
/// gobgpd refuses a peer for a while after its session dropped.
const RECONNECT: Duration = Duration::from_secs(25);

fn peer(name: &str, address: std::net::SocketAddr) -> Peer {
    Peer {
        name: name.into(),
        address,
        remote_as: DAEMON_AS,
    }
}

/// Waits until `read` returns exactly `expected`, showing the last table on timeout.
fn wait_table(
    timeout: Duration,
    what: &str,
    expected: &BTreeSet<String>,
    mut read: impl FnMut() -> BTreeSet<String>,
) {
    wait_until(timeout, &format!("{what} to be {expected:#?}"), || {
        let table = read();
        if &table == expected {
            Ok(())
        } else {
            Err(format!("{table:#?}"))
        }
    });
}

#[test]
fn bird_holds_exactly_the_blackhole_and_the_filter_while_the_attack_lasts() {
    let dir = test_dir("mit-bird");
    let bird = Bird::start(&dir);
    let daemon = Daemon::start(&dir, &Options::new(peer("bird", bird.address())));
    wait_until(Duration::from_secs(20), "BIRD's session", || {
        let protocols = bird.birdc("show protocols floodwall");
        if protocols.contains("Established") {
            Ok(())
        } else {
            Err(protocols)
        }
    });
    assert!(bird.routes("master4").is_empty());
    assert!(bird.routes("flowtab4").is_empty());

    let flood = Flood::start(&daemon);
    // The next hop (RFC 7999's discard address) does not resolve here, so BIRD shows the route
    // unreachable; the attributes are the point: BLACKHOLE and the configured community.
    let blackhole = set(&["203.0.113.7/32 unreachable | BGP.next_hop: 192.0.2.1 \
                           | BGP.community: (65001,666) (65535,666)"]);
    // traffic-rate 0: discard.
    let filter = set(&[
        "flow4 { dst 203.0.113.7/32; proto 17; sport 123; length 257..512; } \
                        | BGP.ext_community: (generic, 0x80060000, 0x0)",
    ]);
    wait_table(ROUTES_UP, "BIRD's master4", &blackhole, || {
        bird.routes("master4")
    });
    wait_table(ROUTES_UP, "BIRD's flowtab4", &filter, || {
        bird.routes("flowtab4")
    });
    assert!(bird.routes("master6").is_empty());
    assert!(bird.routes("flowtab6").is_empty());

    drop(flood);
    wait_table(ROUTES_DOWN, "BIRD's master4", &set(&[]), || {
        bird.routes("master4")
    });
    wait_table(ROUTES_DOWN, "BIRD's flowtab4", &set(&[]), || {
        bird.routes("flowtab4")
    });
    let log = daemon.log();
    assert!(
        log.contains("mitigation withdrawn: blackhole:203.0.113.7/32"),
        "{log}"
    );
}

#[test]
fn frr_holds_exactly_the_blackhole_and_the_filter_while_the_attack_lasts() {
    let dir = test_dir("mit-frr");
    let frr = Frr::start(&dir);
    let daemon = Daemon::start(&dir, &Options::new(peer("frr", frr.address())));
    wait_until(Duration::from_secs(20), "FRR's session", || {
        let neighbor = frr.json("show bgp neighbors 127.0.0.1 json");
        let state = &neighbor["127.0.0.1"]["bgpState"];
        if state == "Established" {
            Ok(())
        } else {
            Err(state.to_string())
        }
    });
    assert!(frr.unicast("ipv4").is_empty());
    assert!(frr.flowspec("ipv4").is_empty());

    let flood = Flood::start(&daemon);
    // FRR adds no-export to BLACKHOLE routes by itself (RFC 7999 §3.2).
    let blackhole = set(&["203.0.113.7/32 nh 192.0.2.1 comm 65001:666 blackhole no-export"]);
    let filter = set(&["Destination Address 203.0.113.7/32 | IP Protocol = 17 \
                        | Source Port = 123 | Packet Length >= 257 , <= 512 | FS:rate 0.000000"]);
    wait_table(ROUTES_UP, "FRR's ipv4 unicast table", &blackhole, || {
        frr.unicast("ipv4")
    });
    wait_table(ROUTES_UP, "FRR's ipv4 flowspec table", &filter, || {
        frr.flowspec("ipv4")
    });
    assert!(frr.unicast("ipv6").is_empty());
    assert!(frr.flowspec("ipv6").is_empty());

    drop(flood);
    wait_table(ROUTES_DOWN, "FRR's ipv4 unicast table", &set(&[]), || {
        frr.unicast("ipv4")
    });
    wait_table(ROUTES_DOWN, "FRR's ipv4 flowspec table", &set(&[]), || {
        frr.flowspec("ipv4")
    });
    let log = daemon.log();
    assert!(
        log.contains("mitigation withdrawn: flowspec:203.0.113.7/32"),
        "{log}"
    );
}

/// gobgpd's IPv4 unicast and FlowSpec RIBs together.
fn rib(gobgpd: &Gobgpd) -> BTreeSet<String> {
    let mut all = gobgpd.rib("ipv4");
    all.extend(gobgpd.rib("ipv4-flowspec"));
    all
}

#[test]
fn kept_routes_survive_a_restart_as_stale_and_are_refreshed_or_withdrawn() {
    const CONFIRM: u64 = 20;
    let dir = test_dir("mit-keep");
    let gobgpd = Gobgpd::start(
        &dir,
        GobgpOptions {
            graceful_restart: true,
            ..GobgpOptions::default()
        },
    );
    let mut options = Options::new(peer("gobgpd", gobgpd.address()));
    options.restart_confirm_seconds = CONFIRM;
    options.mitigation = "keep_on_shutdown = true".into();
    options.bgp = "graceful_restart_seconds = 60\nconnect_retry_max_seconds = 2".into();
    let mut daemon = Daemon::start(&dir, &options);
    let established = |timeout: Duration| {
        wait_until(timeout, "gobgpd's session", || {
            match gobgpd.neighbor_state("127.0.0.1") {
                state if state == "established" => Ok(()),
                state => Err(state),
            }
        })
    };
    established(Duration::from_secs(20));

    let blackhole = "203.0.113.7/32 nh 192.0.2.1 comm 65001:666,65535:666";
    let filter = "[destination: 203.0.113.7/32][protocol: ==udp][source-port: ==123]\
                  [packet-length: >=257&<=512] ext as=0,rate=0,subtype=6,type=128";
    let live = set(&[blackhole, filter]);
    let stale = set(&[&format!("{blackhole} stale"), &format!("{filter} stale")]);

    // SIGTERM while the attack goes on: the routes stay at the router, stale, and in the
    // snapshot; the next daemon announces them again and they are fresh after End-of-RIB.
    let flood = Flood::start(&daemon);
    wait_table(ROUTES_UP, "gobgpd's RIB", &live, || rib(&gobgpd));
    daemon.sigterm();
    assert!(
        !daemon.log().contains("mitigation withdrawn"),
        "{}",
        daemon.log()
    );
    wait_table(Duration::from_secs(10), "gobgpd's RIB", &stale, || {
        rib(&gobgpd)
    });
    assert_eq!(daemon.state()["held"].as_array().map(Vec::len), Some(2));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(rib(&gobgpd), stale, "the helper dropped the kept routes");

    let restarted = Instant::now();
    daemon.restart();
    assert!(
        daemon.log().contains("resuming 2 mitigations"),
        "{}",
        daemon.log()
    );
    wait_table(RECONNECT, "gobgpd's RIB after the restart", &live, || {
        rib(&gobgpd)
    });
    eprintln!("routes fresh {:?} after the restart", restarted.elapsed());
    // Past the confirmation window: the attack was detected again, so the routes stay.
    let past_confirm = Duration::from_secs(CONFIRM + 3);
    std::thread::sleep(past_confirm.saturating_sub(restarted.elapsed()));
    assert_eq!(rib(&gobgpd), live, "{}", daemon.log());
    assert!(
        !daemon.log().contains("mitigation withdrawn"),
        "{}",
        daemon.log()
    );
    drop(flood);
    wait_table(
        ROUTES_DOWN,
        "gobgpd's RIB after the attack",
        &set(&[]),
        || rib(&gobgpd),
    );

    // SIGTERM during an attack that ends while the daemon is down: the routes come back with
    // the daemon and go once the confirmation window passed without the attack.
    let flood = Flood::start(&daemon);
    wait_table(ROUTES_UP, "gobgpd's RIB", &live, || rib(&gobgpd));
    daemon.sigterm();
    wait_table(Duration::from_secs(10), "gobgpd's RIB", &stale, || {
        rib(&gobgpd)
    });
    drop(flood);
    let restarted = Instant::now();
    daemon.restart();
    assert!(
        daemon.log().contains("resuming 2 mitigations"),
        "{}",
        daemon.log()
    );
    wait_table(RECONNECT, "gobgpd's RIB after the restart", &live, || {
        rib(&gobgpd)
    });
    eprintln!("routes fresh {:?} after the restart", restarted.elapsed());
    wait_table(
        Duration::from_secs(CONFIRM + 15),
        "gobgpd's RIB once the attack was not seen again",
        &set(&[]),
        || rib(&gobgpd),
    );
    let gone_after = restarted.elapsed();
    assert!(
        gone_after >= Duration::from_secs(CONFIRM),
        "withdrawn {gone_after:?} after the restart, before the {CONFIRM} s window"
    );
    let log = daemon.log();
    assert!(
        log.contains("(attack not seen again after restart)"),
        "{log}"
    );
    assert_eq!(daemon.state()["held"], serde_json::json!([]));
}
