//! `floodwall status`: the running daemon's snapshot, read through its control socket while it
//! detects a live flood and mitigates through a real router (gobgpd, Debian's package, on
//! loopback). What it says must be what the collector, the engine, the router and the events
//! file show.

mod support;

use std::time::Duration;

use floodwall_lab::bench::mitigation::{Gobgpd, ROUTER_AS};
use serde_json::Value;
use support::mitigation::{floodwall, wait_for, Daemon, Flood, Options, Peer, LOCAL_AS, VICTIM};
use support::test_dir;

fn status(daemon: &Daemon, json: bool) -> (bool, String) {
    let mut command = floodwall();
    command.arg("status").arg("--config").arg(&daemon.config);
    if json {
        command.arg("--json");
    }
    let out = command.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn snapshot(daemon: &Daemon) -> Value {
    let (ok, text) = status(daemon, true);
    assert!(ok, "{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn status_shows_the_exporter_the_attack_the_peer_and_the_bus_as_they_are() {
    let dir = test_dir("status");
    let router = Gobgpd::start(&dir, LOCAL_AS).expect("gobgpd (Debian package gobgpd)");
    let daemon = Daemon::start(
        &dir,
        &Options::new(Peer {
            name: "gobgpd".into(),
            address: format!("127.0.0.1:{}", router.bgp_port).parse().unwrap(),
            remote_as: ROUTER_AS,
        }),
    );
    router.wait_established(Duration::from_secs(15)).unwrap();
    wait_for(Duration::from_secs(10), "the session in the status", || {
        snapshot(&daemon)["mitigation"]["mitigators"]
            .as_array()
            .is_some_and(|m| {
                m.iter().any(|m| {
                    m["name"] == "bgp"
                        && m["channels"]
                            .as_array()
                            .is_some_and(|c| c.iter().any(|c| c["state"]["state"] == "established"))
                })
            })
    });

    let flood = Flood::start(&daemon);
    wait_for(Duration::from_secs(20), "the attack in the status", || {
        let s = snapshot(&daemon);
        s["attacks"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["target"] == VICTIM))
            && s["mitigation"]["held"].as_u64() >= Some(1)
    });
    let s = snapshot(&daemon);
    let exporters = s["collector"]["exporters"].as_array().unwrap();
    assert!(
        exporters
            .iter()
            .any(|x| x["address"] == "127.0.0.1" && x["records"].as_u64() > Some(0)),
        "{s}"
    );
    assert!(s["engine"]["records"].as_u64() > Some(0), "{s}");
    assert!(s["engine"]["attacks_active"].as_u64() >= Some(1), "{s}");
    let bus = s["bus"].as_array().unwrap();
    for name in ["actions", "events-file", "notify"] {
        let sub = bus
            .iter()
            .find(|b| b["name"] == name)
            .unwrap_or_else(|| panic!("{s}"));
        assert_eq!(sub["dropped"], 0, "{s}");
        assert_eq!(sub["failed"], 0, "{s}");
    }
    // The attack the status names is the one the events file records.
    let id = s["attacks"][0]["attack_id"].as_str().unwrap().to_string();
    assert!(daemon
        .events()
        .iter()
        .any(|e| e["attack_id"] == id.as_str()));

    // The text form says the same for people.
    let (ok, text) = status(&daemon, false);
    assert!(ok, "{text}");
    assert!(text.contains(&format!("attack {id} on {VICTIM}")), "{text}");
    assert!(text.contains("bgp peer gobgpd"), "{text}");
    assert!(text.contains(": established"), "{text}");
    drop(flood);
}

#[test]
fn status_without_a_daemon_says_so() {
    let dir = test_dir("status-none");
    let out = floodwall()
        .args(["status", "--state-dir"])
        .arg(dir.join("nowhere"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no floodwall daemon here"), "{stderr}");
}
