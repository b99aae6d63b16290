//! The dashboard end to end: Debian's Chromium (driven by playwright-core from ui-tests/)
//! logs in with a token, sees a live flood appear with its target and vector within 2 s of its
//! event, opens the attack's page (without the mouse) and withdraws its blackhole there; the
//! API and a real router's RIB (gobgpd) confirm the rule is gone.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use floodwall_detect::time::parse_rfc3339_ms;
use floodwall_lab::bench::mitigation::{Gobgpd, ROUTER_AS};
use serde_json::Value;
use support::mitigation::{floodwall, wait_for, Daemon, Flood, Options, Peer, LOCAL_AS, VICTIM};
use support::{require_tool, test_dir};

const UI_TESTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../ui-tests");

#[test]
fn an_operator_sees_the_attack_live_and_withdraws_its_rule_from_the_dashboard() {
    require_tool("chromium");
    assert!(
        Path::new(UI_TESTS)
            .join("node_modules/playwright-core")
            .exists(),
        "playwright-core is not installed: `npm ci --prefix ui-tests` (scripts/test does it)"
    );
    let dir = test_dir("dashboard");
    let tokens = dir.join("tokens");
    let out = floodwall()
        .args([
            "token",
            "--name",
            "noc",
            "--scope",
            "write",
            "--tokens-file",
        ])
        .arg(&tokens)
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let router = Gobgpd::start(&dir, LOCAL_AS).expect("gobgpd (Debian package gobgpd)");
    let mut options = Options::new(Peer {
        name: "gobgpd".into(),
        address: format!("127.0.0.1:{}", router.bgp_port).parse().unwrap(),
        remote_as: ROUTER_AS,
    });
    options.http = format!("tokens_file = \"{}\"", tokens.display());
    let daemon = Daemon::start(&dir, &options);
    let url = daemon.http_url();
    router.wait_established(Duration::from_secs(15)).unwrap();

    let rule = "blackhole:203.0.113.7/32";
    let screenshots = std::env::var("FLOODWALL_SCREENSHOTS").ok();
    let mut browser = Command::new("node")
        .arg(Path::new(UI_TESTS).join("dashboard.mjs"))
        .env("FLOODWALL_URL", &url)
        .env("FLOODWALL_TOKEN", &token)
        .env("VICTIM", VICTIM)
        .env("VECTOR", "ntp_amplification")
        .env("RULE", rule)
        .envs(screenshots.iter().map(|d| ("SCREENSHOTS", d.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node (Debian's nodejs) to run ui-tests/dashboard.mjs");
    let mut lines = BufReader::new(browser.stdout.take().unwrap()).lines();
    let mut next = || -> Value {
        let line = lines
            .next()
            .expect("the browser script ended early")
            .unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    };
    let ready = next();
    assert_eq!(ready["step"], "ready", "{ready}");

    let flood = Flood::start(&daemon);
    let seen = next();
    assert_eq!(seen["step"], "attack_seen", "{seen}");
    let started = daemon
        .events()
        .into_iter()
        .find(|e| e["event"] == "attack_started" && e["target"] == VICTIM)
        .expect("the attack in the events file");
    let event_ms = parse_rfc3339_ms(started["ts"].as_str().unwrap()).unwrap();
    let seen_ms = seen["at_ms"].as_u64().unwrap();
    assert!(
        seen_ms <= event_ms + 2_000,
        "the dashboard showed the attack {} ms after its event",
        seen_ms as i64 - event_ms as i64
    );
    wait_for(Duration::from_secs(10), "the blackhole in the RIB", || {
        router
            .rib("ipv4")
            .is_ok_and(|rib| rib.to_string().contains("203.0.113.7/32"))
    });

    let withdrawn = next();
    assert_eq!(withdrawn["step"], "withdrawn", "{withdrawn}");
    // The API no longer holds it, and the router no longer has the route (the attack goes on:
    // an operator's withdrawal is not undone by its next update).
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let held: Value = serde_json::from_str(
        &agent
            .get(format!("{url}/api/v1/mitigations"))
            .header("Authorization", format!("Bearer {token}"))
            .call()
            .unwrap()
            .into_body()
            .read_to_string()
            .unwrap(),
    )
    .unwrap();
    assert!(
        !held.to_string().contains(rule),
        "{rule} still held: {held}"
    );
    wait_for(
        Duration::from_secs(10),
        "the blackhole gone from the RIB",
        || {
            // The unicast RIB: the FlowSpec rule lives in its own family.
            router
                .rib("ipv4")
                .is_ok_and(|rib| !rib.to_string().contains("203.0.113.7/32"))
        },
    );
    let done = next();
    assert_eq!(done["step"], "done", "{done}");
    assert_eq!(done["errors"], Value::Array(Vec::new()), "{done}");
    assert!(browser.wait().unwrap().success());
    drop(flood);
}
