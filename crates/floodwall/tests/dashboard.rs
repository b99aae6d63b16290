//! The dashboard end to end: Debian's Chromium (driven by playwright-core from ui-tests/)
//! logs in with a token, sees a live flood appear with its target and vector within 2 s of its
//! event, opens the attack's page (without the mouse) and withdraws its blackhole there; the
//! API and a real router's RIB (gobgpd) confirm the rule is gone. And the hunt's pages: the
//! infected hosts a Mirai-style scan lists (filter, the abuse report downloaded with the token,
//! a host's evidence) and the campaign a botnet's carpet attacks form, linked from its attacks.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use floodwall_detect::time::parse_rfc3339_ms;
use floodwall_lab::bench::mitigation::{Gobgpd, ROUTER_AS};
use serde_json::Value;
use support::mitigation::{
    floodwall, wait_for, Daemon, Flood, Options, Peer, Simulation, LOCAL_AS, VICTIM,
};
use support::{require_tool, test_dir};

const UI_TESTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../ui-tests");

/// One browser at a time: the live test measures how fast an attack shows.
static BROWSER: Mutex<()> = Mutex::new(());

fn require_browser() {
    require_tool("chromium");
    assert!(
        Path::new(UI_TESTS)
            .join("node_modules/playwright-core")
            .exists(),
        "playwright-core is not installed: `npm ci --prefix ui-tests` (scripts/test does it)"
    );
}

/// `floodwall token`: the token, its line appended to `file`.
fn new_token(file: &Path, scope: &str) -> String {
    let out = floodwall()
        .args(["token", "--name", "noc", "--scope", scope, "--tokens-file"])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// ui-tests/dashboard.mjs in one of its walks, its steps read line by line.
struct Browser {
    child: std::process::Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Browser {
    fn start(url: &str, token: &str, env: &[(&str, &str)]) -> Browser {
        let screenshots = std::env::var("FLOODWALL_SCREENSHOTS").ok();
        let mut child = Command::new("node")
            .arg(Path::new(UI_TESTS).join("dashboard.mjs"))
            .env("FLOODWALL_URL", url)
            .env("FLOODWALL_TOKEN", token)
            .envs(env.iter().copied())
            .envs(screenshots.iter().map(|d| ("SCREENSHOTS", d.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node (Debian's nodejs) to run ui-tests/dashboard.mjs");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Browser { child, lines }
    }

    /// The next step, which must be `step` (else the browser's errors are in the message).
    fn next(&mut self, step: &str) -> Value {
        let line = self
            .lines
            .next()
            .expect("the browser script ended early")
            .unwrap();
        let value: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(value["step"], step, "{value}");
        value
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Our own node process, by its PID (it closes its Chromium on the way out).
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

#[test]
fn an_operator_sees_the_attack_live_and_withdraws_its_rule_from_the_dashboard() {
    require_browser();
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = test_dir("dashboard");
    let tokens = dir.join("tokens");
    let token = new_token(&tokens, "write");
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
    let mut browser = Browser::start(
        &url,
        &token,
        &[
            ("MODE", "attack"),
            ("VICTIM", VICTIM),
            ("VECTOR", "ntp_amplification"),
            ("RULE", rule),
        ],
    );
    browser.next("ready");

    let flood = Flood::start(&daemon);
    let seen = browser.next("attack_seen");
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

    browser.next("withdrawn");
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
    let done = browser.next("done");
    assert_eq!(done["errors"], Value::Array(Vec::new()), "{done}");
    assert!(browser.child.wait().unwrap().success());
    drop(flood);
}

/// GET with the token, as JSON.
fn get(url: &str, token: &str, path: &str) -> Value {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let body = agent
        .get(format!("{url}{path}"))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn an_operator_finds_the_infected_hosts_and_the_campaign_on_the_dashboard() {
    require_browser();
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = test_dir("dashboard-hunt");
    let tokens = dir.join("tokens");
    let token = new_token(&tokens, "read");
    let mut options = Options::new(Peer {
        name: "nobody".into(),
        address: "127.0.0.1:9".parse().unwrap(),
        remote_as: ROUTER_AS,
    });
    options.without_bgp = true;
    options.networks = vec!["198.18.0.0/15".into()];
    options.carpet = true;
    options.http = format!("tokens_file = \"{}\"", tokens.display());
    let daemon = Daemon::start(&dir, &options);
    let url = daemon.http_url();

    // What the pages will show, found first: two scanning customers (mirai-scan), then the
    // four carpets of one botnet (carpet-22) that make a campaign.
    let scan = Simulation::start(&daemon, "mirai-scan", 2.0);
    wait_for(Duration::from_secs(90), "two infected hosts", || {
        get(&url, &token, "/api/v1/infected")
            .as_array()
            .is_some_and(|l| {
                l.len() == 2
                    && l.iter()
                        .all(|h| h["reasons"].as_array().is_some_and(|r| !r.is_empty()))
                    && l.iter()
                        .any(|h| h["reasons"].as_array().unwrap().len() == 2)
            })
    });
    drop(scan);
    Simulation::start(&daemon, "carpet-22", 4.0).finish(Duration::from_secs(120));
    wait_for(Duration::from_secs(60), "a campaign", || {
        get(&url, &token, "/api/v1/campaigns")
            .as_array()
            .is_some_and(|c| !c.is_empty())
    });
    let campaign = get(&url, &token, "/api/v1/campaigns")[0].clone();
    let id = campaign["campaign"].as_str().unwrap().to_string();
    // Its attacks' last events name it.
    wait_for(Duration::from_secs(60), "the carpets ended", || {
        campaign["attacks"].as_array().unwrap().iter().all(|a| {
            let d = get(
                &url,
                &token,
                &format!("/api/v1/attacks/{}", a.as_str().unwrap()),
            );
            d["summary"]["active"] == false && d["latest"]["campaign"] == id.as_str()
        })
    });
    let infected = get(&url, &token, "/api/v1/infected");
    let fast = infected
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["reasons"].as_array().unwrap().len() == 2)
        .unwrap()
        .clone();
    let fast_ip = fast["host"].as_str().unwrap().to_string();
    let attack_id = fast["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "outgoing_attack")
        .unwrap()["attack_id"]
        .as_str()
        .unwrap()
        .to_string();

    let mut browser = Browser::start(&url, &token, &[("MODE", "hunt"), ("HOST", &fast_ip)]);
    browser.next("ready");

    // The table: a row per host, its reasons as chips.
    let page = browser.next("infected");
    assert_eq!(page["title"], "Infected hosts · Floodwall", "{page}");
    assert_eq!(
        page["headers"],
        serde_json::json!([
            "Host",
            "Hostgroup",
            "Prefix",
            "Reasons",
            "Confidence",
            "First seen",
            "Last seen"
        ])
    );
    let rows = page["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{page}");
    for host in infected.as_array().unwrap() {
        let row = rows
            .iter()
            .find(|r| r[0] == host["host"])
            .unwrap_or_else(|| panic!("{} not on the page: {page}", host["host"]));
        assert_eq!(row[1], "default", "{row}");
        assert_eq!(row[2], host["prefix"], "{row}");
        let kinds: Vec<&Value> = host["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["kind"])
            .collect();
        assert_eq!(
            row[3].as_array().unwrap().iter().collect::<Vec<_>>(),
            kinds,
            "{row}"
        );
        let confidence = format!("{:.1} %", 100.0 * host["confidence"].as_f64().unwrap());
        assert_eq!(row[4], confidence.as_str(), "{row}");
        for seen in [&row[5], &row[6]] {
            assert!(
                seen.as_str().is_some_and(|t| !t.is_empty() && t != "–"),
                "{row}"
            );
        }
    }

    let filtered = browser.next("filtered");
    let hash = filtered["hash"].as_str().unwrap();
    assert!(
        hash.contains("hostgroup=default") && hash.contains("since=1h"),
        "{filtered}"
    );
    assert_eq!(filtered["rows"], 2, "{filtered}");
    assert!(
        filtered["none"]
            .as_str()
            .unwrap()
            .contains("No infected host"),
        "{filtered}"
    );

    // The report saved from the page is the API's CSV.
    let report = browser.next("report");
    assert!(
        report["name"]
            .as_str()
            .unwrap()
            .starts_with("floodwall-infected-")
            && report["name"].as_str().unwrap().ends_with(".csv"),
        "{report}"
    );
    let text = report["text"].as_str().unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("timestamp,ip,port,hostgroup,prefix,tag,infection,confidence,first_seen,dst_ip,dst_port,count,attack_id,evidence")
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(
        rows.iter().any(|r| r.contains(&fast_ip)
            && r.contains("outgoing_attack")
            && r.contains(&attack_id)),
        "{text}"
    );

    // The host's page: each reason with its evidence; the attack linked.
    let host = browser.next("host");
    assert_eq!(
        host["title"],
        format!("Infected host {fast_ip} · Floodwall"),
        "{host}"
    );
    let scanning = &host["reasons"]["scanning"];
    for field in [
        "Destinations sampled",
        "Destinations estimated",
        "Destinations (a few)",
        "Ports",
        "Records",
        "Confidence",
        "First seen",
        "Last seen",
    ] {
        assert!(scanning[field].is_string(), "{field}: {host}");
    }
    assert!(
        scanning["Ports"].as_str().unwrap().starts_with("23"),
        "{host}"
    );
    assert!(
        scanning["Destinations estimated"]
            .as_str()
            .unwrap()
            .starts_with('≥'),
        "{host}"
    );
    let attack = &host["reasons"]["outgoing_attack"];
    assert_eq!(attack["Attack"], attack_id.as_str(), "{host}");
    assert!(
        attack["Vectors"].as_str().unwrap().contains("syn_flood"),
        "{host}"
    );
    assert!(
        attack["links"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().starts_with("#/attacks/")),
        "{host}"
    );

    // C2 contacts (the feed entries matched), beaconing (period, jitter) and Mirai's signature,
    // from a crafted answer whose feed name is markup: shown as text, never run.
    let crafted = browser.next("crafted_host");
    let c2 = &crafted["reasons"]["c2_contact"];
    assert_eq!(
        c2["indicators"],
        serde_json::json!([[
            "203.0.113.66:23",
            "<img src=x onerror=\"window.pwned=1\">",
            "mirai"
        ]]),
        "{crafted}"
    );
    assert_eq!(c2["C2 endpoints"], "203.0.113.66", "{crafted}");
    let beacon = &crafted["reasons"]["beaconing"];
    assert_eq!(beacon["Beacon period"], "60.2 s", "{crafted}");
    assert_eq!(
        beacon["Jitter"], "3.1 % (standard deviation / mean)",
        "{crafted}"
    );
    assert_eq!(beacon["Peer"], "192.0.2.80", "{crafted}");
    assert_eq!(
        crafted["reasons"]["scanning"]["Mirai signature"],
        "7 probes with TCP sequence = destination",
        "{crafted}"
    );
    assert_eq!(crafted["images"], 0, "{crafted}");
    assert_eq!(crafted["pwned"], false, "{crafted}");

    // The campaigns: its attacks, sources, targets, vectors.
    let page = browser.next("campaigns");
    assert_eq!(
        page["headers"],
        serde_json::json!([
            "Campaign",
            "Attacks",
            "Sources (estimated)",
            "Targets",
            "Vectors",
            "Direction",
            "First seen",
            "Last seen"
        ])
    );
    let rows = page["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{page}");
    let row = &rows[0];
    assert_eq!(row["campaign"], id.as_str(), "{page}");
    assert_eq!(row["attacks"], campaign["attacks"], "{page}");
    assert!(row["sources"].as_str().unwrap().starts_with('≈'), "{page}");
    let targets: Vec<&str> = campaign["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(row["targets"], serde_json::json!(targets), "{page}");
    assert!(
        row["vectors"]
            .as_array()
            .unwrap()
            .contains(&"udp_flood".into()),
        "{page}"
    );
    assert_eq!(row["direction"], "incoming", "{page}");

    // An attack of it names it, and the link leads back to its row.
    let link = browser.next("campaign_link");
    assert_eq!(link["campaign"], id.as_str(), "{link}");
    assert_eq!(link["selected"], id.as_str(), "{link}");

    let done = browser.next("done");
    assert_eq!(done["errors"], Value::Array(Vec::new()), "{done}");
    assert!(browser.child.wait().unwrap().success());
}
