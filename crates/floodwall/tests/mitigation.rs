//! The daemon mitigates through a real router: `floodwall run` peered over BGP with gobgpd
//! (Debian's package, run as `nobody` on loopback ports), fed a live NTP flood by
//! `floodwall simulate --send`. The router's RIB is the truth: routes appear while the attack
//! lasts, go when it is over, come back after a crash of either side, and never stay stuck.

mod support;

use std::path::Path;
use std::time::Duration;

use floodwall_lab::bench::mitigation::{Gobgpd, ROUTER_AS};
use serde_json::Value;
use support::mitigation::{
    floodwall, wait_for, Daemon, Flood, Options, Peer, FLOOD, LOCAL_AS, VICTIM,
};
use support::test_dir;

/// The daemon peered with the benchmark's gobgpd, `extra` added to `[mitigation]`.
fn start_daemon(dir: &Path, router: &Gobgpd, extra: &str) -> Daemon {
    let mut options = Options::new(Peer {
        name: "gobgpd".into(),
        address: format!("127.0.0.1:{}", router.bgp_port).parse().unwrap(),
        remote_as: ROUTER_AS,
    });
    options.mitigation = extra.into();
    Daemon::start(dir, &options)
}

/// Prefixes in gobgpd's IPv4 unicast RIB.
fn unicast(router: &Gobgpd) -> Vec<String> {
    let rib = router.rib("ipv4").unwrap();
    rib.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// gobgpd's IPv4 FlowSpec RIB as its text table (rules read `[destination: ...][protocol: ...]`).
fn flowspec(router: &Gobgpd) -> String {
    router
        .cli(&["global", "rib", "-a", "ipv4-flowspec"])
        .unwrap()
}

fn routes_present(router: &Gobgpd) -> bool {
    unicast(router) == [VICTIM] && flowspec(router).contains("[destination: 203.0.113.7/32]")
}

fn routes_gone(router: &Gobgpd) -> bool {
    unicast(router).is_empty() && !flowspec(router).contains("203.0.113.7")
}

fn router(dir: &Path) -> Gobgpd {
    Gobgpd::start(dir, LOCAL_AS).expect("gobgpd (Debian package gobgpd; scripts/test installs it)")
}

#[test]
fn an_attack_is_blackholed_and_filtered_at_the_router_until_it_ends() {
    let dir = test_dir("mit-life");
    let router = router(&dir);
    let daemon = start_daemon(&dir, &router, "");
    router.wait_established(Duration::from_secs(15)).unwrap();
    assert!(routes_gone(&router));

    let flood = Flood::start(&daemon);
    wait_for(
        Duration::from_secs(15),
        "the routes in gobgpd's RIB",
        || routes_present(&router),
    );
    // The blackhole route carries RFC 7999's community, the configured one and the discard
    // next hop; the filter is the attack's signature.
    let rib = router.rib("ipv4").unwrap();
    let attrs = rib[VICTIM][0]["attrs"].to_string();
    assert!(
        attrs.contains(&format!("{}", 0xFFFF_029Au32)),
        "BLACKHOLE community: {attrs}"
    );
    assert!(
        attrs.contains(&format!("{}", (65001u32 << 16) | 666)),
        "65001:666: {attrs}"
    );
    assert!(attrs.contains("\"nexthop\":\"192.0.2.1\""), "{attrs}");
    let rules = flowspec(&router);
    assert!(
        rules.contains("[protocol: ==udp]")
            && rules.contains("[source-port: ==123]")
            && rules.contains("discard"),
        "{rules}"
    );

    // The attack's record shows the rules, their coverage and that they were announced: the
    // first record that placed them (a start on too little evidence waits for the next).
    let events = daemon.events();
    let started = events
        .iter()
        .find(|e| {
            e["mitigations"].as_array().is_some_and(|m| {
                !m.is_empty() && m.iter().all(|r| r["status"] != "awaiting_evidence")
            })
        })
        .expect("the record that placed the rules");
    let mitigations = started["mitigations"]
        .as_array()
        .expect("mitigations in the record");
    assert_eq!(mitigations.len(), 2, "{started}");
    assert_eq!(mitigations[0]["id"], "blackhole:203.0.113.7/32");
    assert_eq!(
        mitigations[1]["text"],
        "flowspec dst 203.0.113.7/32 proto 17 sport 123 len 257-512 then discard"
    );
    assert!(
        mitigations[1]["coverage"].as_f64().unwrap() > 0.9,
        "{started}"
    );
    assert!(mitigations.iter().all(|m| m["status"] == "announced"));

    drop(flood);
    wait_for(
        Duration::from_secs(20),
        "the routes to leave after the attack",
        || routes_gone(&router),
    );
    let log = daemon.log();
    assert!(
        log.contains("mitigation withdrawn: blackhole:203.0.113.7/32"),
        "{log}"
    );
}

#[test]
fn after_a_crash_rules_come_back_while_the_attack_lasts_and_go_when_it_is_over() {
    let dir = test_dir("mit-crash");
    let router = router(&dir);
    let mut daemon = start_daemon(&dir, &router, "");
    router.wait_established(Duration::from_secs(15)).unwrap();

    // Crash during an attack that goes on.
    let flood = Flood::start(&daemon);
    wait_for(Duration::from_secs(15), "the routes", || {
        routes_present(&router)
    });
    daemon.kill9();
    wait_for(
        Duration::from_secs(5),
        "the routes to go with the session",
        || routes_gone(&router),
    );
    daemon.restart();
    assert!(
        daemon.log().contains("resuming 2 mitigations"),
        "{}",
        daemon.log()
    );
    wait_for(
        Duration::from_secs(10),
        "the routes to be re-announced",
        || routes_present(&router),
    );
    // Past the confirmation window: the attack was detected again, so the routes stay.
    std::thread::sleep(Duration::from_secs(8));
    assert!(routes_present(&router), "{}", daemon.log());
    drop(flood);
    wait_for(
        Duration::from_secs(20),
        "the routes to leave after the attack",
        || routes_gone(&router),
    );

    // Crash during an attack that ends while the daemon is down.
    let flood = Flood::start(&daemon);
    wait_for(Duration::from_secs(15), "the routes", || {
        routes_present(&router)
    });
    daemon.kill9();
    drop(flood);
    daemon.restart();
    wait_for(
        Duration::from_secs(10),
        "the routes to be re-announced",
        || routes_present(&router),
    );
    wait_for(
        Duration::from_secs(15),
        "the routes to go once the attack is not seen again",
        || routes_gone(&router),
    );
    assert!(
        daemon
            .log()
            .contains("(attack not seen again after restart)"),
        "{}",
        daemon.log()
    );
}

#[test]
fn a_router_restart_gets_the_routes_again_and_sigterm_withdraws_them() {
    let dir = test_dir("mit-peer");
    let mut router = router(&dir);
    let mut daemon = start_daemon(&dir, &router, "");
    router.wait_established(Duration::from_secs(15)).unwrap();
    let _flood = Flood::start(&daemon);
    wait_for(Duration::from_secs(15), "the routes", || {
        routes_present(&router)
    });

    router.restart().unwrap();
    wait_for(
        Duration::from_secs(20),
        "the speaker to reconnect and re-announce",
        || routes_present(&router),
    );

    daemon.sigterm();
    wait_for(
        Duration::from_secs(3),
        "SIGTERM to withdraw the routes",
        || routes_gone(&router),
    );
    let state = daemon.state();
    assert_eq!(
        state["held"],
        serde_json::json!([]),
        "nothing left to resume"
    );
}

#[test]
fn never_mitigate_holds_and_operators_announce_and_withdraw_by_hand() {
    let dir = test_dir("mit-guard");
    let router = router(&dir);
    let daemon = start_daemon(&dir, &router, "never = [\"203.0.113.0/29\"]");
    router.wait_established(Duration::from_secs(15)).unwrap();
    let flood = Flood::start(&daemon);
    wait_for(Duration::from_secs(15), "the attack", || {
        daemon
            .events()
            .iter()
            .any(|e| e["event"] == "attack_started")
    });
    let events = daemon.events();
    let started = events
        .iter()
        .find(|e| e["event"] == "attack_started")
        .unwrap();
    for m in started["mitigations"].as_array().unwrap() {
        assert_eq!(m["status"], "refused", "{m}");
        assert!(
            m["reason"]
                .as_str()
                .unwrap()
                .contains("never-mitigate 203.0.113.0/29"),
            "{m}"
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(routes_gone(&router), "a protected host was announced");
    drop(flood);

    let out = daemon.mitigations(&["announce", "203.0.113.50/32", "--seconds", "600"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(Duration::from_secs(5), "the manual route", || {
        unicast(&router) == ["203.0.113.50/32"]
    });
    let list = String::from_utf8(daemon.mitigations(&["list"]).stdout).unwrap();
    assert!(
        list.contains("blackhole:203.0.113.50/32") && list.contains("manual"),
        "{list}"
    );
    let refused = daemon.mitigations(&["announce", "203.0.113.3/32"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("never-mitigate"));
    let out = daemon.mitigations(&["withdraw", "blackhole:203.0.113.50/32"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(Duration::from_secs(5), "the manual route to go", || {
        unicast(&router).is_empty()
    });
}

/// A scenario simulated to a capture in `dir`, and a replay of it under `config` (TOML):
/// `replay(json)` runs it and returns its stdout.
fn simulated(dir: &Path, scenario: &str, config: &str) -> impl Fn(bool) -> String {
    let pcap = dir.join("capture.pcap");
    let out = floodwall()
        .args(["simulate", "--scenario", scenario, "--pcap"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.join("floodwall.toml");
    std::fs::write(&path, config).unwrap();
    move |json: bool| {
        let mut command = floodwall();
        command.args(["replay", "--config"]).arg(&path).arg(&pcap);
        if json {
            command.arg("--json");
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

#[test]
fn replay_shows_the_rules_an_attack_would_get_with_their_coverage() {
    let dir = test_dir("mit-replay");
    let replay = simulated(
        &dir,
        FLOOD,
        "networks = [\"203.0.113.0/24\"]\n[mitigation.blackhole]\nenabled = true\n[mitigation.flowspec]\nenabled = true\naction = \"rate-limit\"\n",
    );
    let records: Vec<Value> = replay(true)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let started = records
        .iter()
        .find(|r| r["event"] == "attack_started")
        .expect("the attack");
    let mitigations = started["mitigations"].as_array().expect("mitigations");
    assert_eq!(
        mitigations[0]["text"],
        "blackhole 203.0.113.7/32 next-hop 192.0.2.1 communities 65535:666"
    );
    assert_eq!(
        mitigations[1]["text"],
        "flowspec dst 203.0.113.7/32 proto 17 sport 123 len 257-512 then rate-limit 125000 B/s"
    );
    assert!(
        mitigations.iter().all(|m| m["status"] == "dry_run"),
        "a replay never announces"
    );
    assert!(mitigations[1]["coverage"].as_f64().unwrap() > 0.9);
    let table = replay(false);
    assert!(
        table.contains("mitigation would announce: flowspec dst 203.0.113.7/32 proto 17 sport 123"),
        "{table}"
    );
    assert!(table.contains("covers ~"), "{table}");
    // Deterministic: the same capture gives the same records.
    assert_eq!(
        records,
        replay(true)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect::<Vec<_>>()
    );
}

/// DNS amplification ramping up at a busy web server: the first partial second mixes the
/// server's HTTPS with the flood and gives a broad rule (TCP included, no port); as the
/// fingerprint settles the rule is derived again and narrowed to the flood, and its collateral
/// — the share of the server's traffic before the attack it would drop — falls to nothing.
#[test]
fn a_broad_early_filter_is_narrowed_as_the_fingerprint_settles() {
    let dir = test_dir("mit-narrow");
    let replay = simulated(
        &dir,
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/scenarios/dns-amp-at-a-web-server.toml"
        ),
        "networks = [\"203.0.113.0/24\"]\n[mitigation.flowspec]\nenabled = true\n",
    );
    let rules: Vec<Value> = replay(true)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["target"] == "203.0.113.7/32")
        .filter_map(|r| r["mitigations"].as_array().and_then(|m| m.first()).cloned())
        .collect();
    let first = &rules[0];
    assert!(
        first["text"].as_str().unwrap().contains("proto 6,17"),
        "the first partial second is mixed: {first}"
    );
    assert!(first["collateral"].as_f64().unwrap() > 0.5, "{first}");
    let narrowed = rules
        .iter()
        .position(|r| r["reason"] == "the fingerprint settled: rule derived again")
        .expect("the rule is derived again");
    for rule in &rules[narrowed..] {
        assert_eq!(
            rule["text"],
            "flowspec dst 203.0.113.7/32 proto 17 sport 53 len 513-1500 then discard"
        );
        assert_eq!(rule["collateral"], 0.0, "{rule}");
        assert!(rule["coverage"].as_f64().unwrap() > 0.9, "{rule}");
    }
    // Narrowed within the attack's first seconds, not at its end.
    assert!(narrowed <= 3, "{rules:?}");
}
