//! Mitigation no one can turn against us, against `floodwall run` and a real router (gobgpd,
//! Debian's package, on loopback): the same guard rails for manual and restored rules as for an
//! attack's, and a record that never says `announced` when nothing reached a router.

mod support;

use std::path::Path;
use std::time::Duration;

use floodwall_lab::bench::mitigation::{Gobgpd, ROUTER_AS};
use serde_json::{json, Value};
use support::mitigation::{floodwall, wait_for, Daemon, Flood, Options, Peer, LOCAL_AS};
use support::test_dir;

fn router(dir: &Path) -> Gobgpd {
    Gobgpd::start(dir, LOCAL_AS).expect("gobgpd (Debian package gobgpd; scripts/test installs it)")
}

fn options(router_port: u16, mitigation: &str) -> Options {
    let mut options = Options::new(Peer {
        name: "gobgpd".into(),
        address: format!("127.0.0.1:{router_port}").parse().unwrap(),
        remote_as: ROUTER_AS,
    });
    options.mitigation = mitigation.into();
    options
}

/// Prefixes in gobgpd's IPv4 unicast RIB.
fn unicast(router: &Gobgpd) -> Vec<String> {
    let rib = router.rib("ipv4").unwrap();
    rib.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The rules of the first event that placed them (before it, they may wait for evidence).
fn first_rules(daemon: &Daemon) -> Option<Vec<Value>> {
    daemon.events().into_iter().find_map(|e| {
        e["mitigations"]
            .as_array()
            .filter(|m| !m.is_empty() && m.iter().all(|r| r["status"] != "awaiting_evidence"))
            .cloned()
    })
}

#[test]
fn manual_rules_pass_the_guard_rails_and_a_dry_run_reaches_no_router() {
    let dir = test_dir("trust-manual");
    let router = router(&dir);
    let daemon = Daemon::start(&dir, &options(router.bgp_port, ""));
    router.wait_established(Duration::from_secs(15)).unwrap();
    for (target, refusal) in [
        ("0.0.0.0/0", "broader than /24"),
        ("::/0", "broader than /48"),
        ("203.0.0.0/16", "broader than /24"),
        ("198.51.100.1/32", "not inside the monitored networks"),
    ] {
        let out = daemon.mitigations(&["announce", target]);
        assert!(!out.status.success(), "{target} was accepted");
        assert!(stderr(&out).contains(refusal), "{target}: {}", stderr(&out));
    }
    let out = daemon.mitigations(&[
        "announce",
        "203.0.113.9/32",
        "--seconds",
        "18446744073709551615",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("out of range"), "{}", stderr(&out));
    // A rule the rails admit goes out, and says where.
    let out = daemon.mitigations(&["announce", "203.0.113.9/32"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("announced: blackhole:203.0.113.9/32"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("bgp: announced (to gobgpd"),
        "{}",
        stdout(&out)
    );
    wait_for(Duration::from_secs(10), "the manual route", || {
        unicast(&router) == ["203.0.113.9/32"]
    });
    drop(daemon);

    // In dry run an operator's rule is recorded, never announced.
    let dir = test_dir("trust-manual-dry");
    let daemon = Daemon::start(&dir, &options(router.bgp_port, "dry_run = true"));
    wait_for(
        Duration::from_secs(15),
        "the old session's route to go",
        || unicast(&router).is_empty(),
    );
    router.wait_established(Duration::from_secs(15)).unwrap();
    let out = daemon.mitigations(&["announce", "203.0.113.10/32"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("dry run"), "{}", stdout(&out));
    std::thread::sleep(Duration::from_secs(2));
    assert!(unicast(&router).is_empty(), "a dry run reached the router");
}

#[test]
fn a_restored_snapshot_is_capped_and_railed() {
    let dir = test_dir("trust-restore");
    let router = router(&dir);
    // 500 rules and a /0 in a snapshot an earlier run (or an editor) left behind.
    let mut held: Vec<Value> = (0..500u64)
        .map(|i| {
            let prefix = format!("203.0.113.{}/32", i % 250);
            json!({
                "mitigation": {
                    "id": format!("blackhole:{prefix}"),
                    "attack_id": format!("a{i}"),
                    "hostgroup": "default",
                    "rule": {"kind": "blackhole", "prefix": prefix, "next_hop": "192.0.2.1",
                             "communities": ["65535:666"]},
                    "since": 1_000 + i,
                },
                "attack_active": false,
                "withdraw_at": 4_000_000_000_000u64 + i,
                "manual": false,
            })
        })
        .collect();
    held.push(json!({
        "mitigation": {
            "id": "blackhole:0.0.0.0/0", "hostgroup": "manual",
            "rule": {"kind": "blackhole", "prefix": "0.0.0.0/0", "next_hop": "192.0.2.1",
                     "communities": ["65535:666"]},
            "since": 1,
        },
        "attack_active": false, "withdraw_at": null, "manual": true,
    }));
    std::fs::create_dir_all(dir.join("state")).unwrap();
    std::fs::write(
        dir.join("state/mitigations.json"),
        json!({"held": held, "announcements": []}).to_string(),
    )
    .unwrap();
    let daemon = Daemon::start(&dir, &options(router.bgp_port, "max_active = 100"));
    router.wait_established(Duration::from_secs(15)).unwrap();
    wait_for(Duration::from_secs(15), "the restored routes", || {
        unicast(&router).len() >= 100
    });
    std::thread::sleep(Duration::from_secs(1));
    let routes = unicast(&router);
    assert_eq!(routes.len(), 100, "{routes:?}");
    assert!(!routes.iter().any(|r| r == "0.0.0.0/0"));
    let log = daemon.log();
    assert!(
        log.contains("blackhole:0.0.0.0/0") && log.contains("broader than /24"),
        "{log}"
    );
    assert!(log.contains("max_active = 100 rules already held"), "{log}");
}

#[test]
fn without_a_mitigator_no_rule_is_called_announced() {
    let dir = test_dir("trust-none");
    let mut options = options(1, "");
    options.without_bgp = true;
    let daemon = Daemon::start(&dir, &options);
    let check = floodwall()
        .args(["check-config"])
        .arg(&daemon.config)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", stderr(&check));
    assert!(
        stderr(&check).contains("warning: blackhole mitigation is enabled but no mitigator"),
        "{}",
        stderr(&check)
    );
    assert!(
        stdout(&check).contains("OK with 2 warnings"),
        "{}",
        stdout(&check)
    );
    assert!(
        daemon
            .log()
            .contains("warning: blackhole mitigation is enabled but no mitigator"),
        "{}",
        daemon.log()
    );

    let _flood = Flood::start(&daemon);
    wait_for(Duration::from_secs(15), "the attack's rules", || {
        first_rules(&daemon).is_some()
    });
    let rules = first_rules(&daemon).unwrap();
    for rule in &rules {
        assert_eq!(rule["status"], "failed", "{rule}");
        assert!(
            rule["reason"]
                .as_str()
                .is_some_and(|r| r.contains("no mitigator carries")),
            "{rule}"
        );
    }
    assert!(
        !daemon.log().contains("mitigation announced"),
        "{}",
        daemon.log()
    );
}

#[test]
fn with_the_bgp_session_down_rules_are_queued_not_announced() {
    let dir = test_dir("trust-queued");
    // Nothing listens on this port: the session never comes up.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let daemon = Daemon::start(&dir, &options(port, ""));
    let _flood = Flood::start(&daemon);
    wait_for(Duration::from_secs(15), "the attack's rules", || {
        first_rules(&daemon).is_some()
    });
    let rules = first_rules(&daemon).unwrap();
    for rule in &rules {
        assert_eq!(rule["status"], "queued", "{rule}");
        assert_eq!(rule["mitigators"][0]["mitigator"], "bgp", "{rule}");
    }
    let log = daemon.log();
    assert!(
        log.contains("mitigation queued, not announced yet"),
        "{log}"
    );
    assert!(!log.contains("mitigation announced"), "{log}");
}

/// The router is down when the attack comes: its rules are queued, not called announced; when
/// the session comes up they go out, and the log says so then.
#[test]
fn queued_rules_are_announced_when_the_session_comes_up() {
    let dir = test_dir("trust-late-session");
    let mut router = router(&dir);
    let daemon = Daemon::start(&dir, &options(router.bgp_port, ""));
    router.wait_established(Duration::from_secs(15)).unwrap();
    router.stop();
    wait_for(
        Duration::from_secs(15),
        "the daemon to see the session down",
        || daemon.log().contains("gobgpd (127.0.0.1") && daemon.log().contains(": down"),
    );
    let _flood = Flood::start(&daemon);
    wait_for(Duration::from_secs(15), "the attack's rules", || {
        first_rules(&daemon).is_some()
    });
    let rules = first_rules(&daemon).unwrap();
    assert!(rules.iter().all(|r| r["status"] == "queued"), "{rules:?}");
    router.start_again().unwrap();
    router.wait_established(Duration::from_secs(30)).unwrap();
    wait_for(
        Duration::from_secs(15),
        "the queued route in gobgpd",
        || unicast(&router) == ["203.0.113.7/32"],
    );
    wait_for(Duration::from_secs(5), "the log to say it went out", || {
        daemon.log().contains("(queued, now sent by bgp to gobgpd")
    });
}
