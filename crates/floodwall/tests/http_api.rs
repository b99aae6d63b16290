//! The HTTP API against a running daemon: a live NTP flood detected and blackholed through a
//! real router (gobgpd, Debian's package, on loopback), then every endpoint asked with and
//! without tokens, rules announced and withdrawn through the API and checked in the router's
//! RIB, the metrics checked by Prometheus's own `promtool` and against what happened, and the
//! OpenAPI document validated and matched against the answers (scripts/check-openapi.py).
//! Hunting likewise: Mirai-style scanners of the monitored networks listed as infected, the
//! abuse report (JSON and CSV), the hunt's counters and metrics, and a botnet's carpet attacks
//! grouped into one campaign.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use floodwall_lab::bench::mitigation::{Gobgpd, ROUTER_AS};
use serde_json::Value;
use support::mitigation::{
    floodwall, wait_for, Daemon, Flood, Options, Peer, Simulation, LOCAL_AS, VICTIM,
};
use support::{require_tool, test_dir};

/// An answer: status, `WWW-Authenticate`, body.
struct Answer {
    status: u16,
    authenticate: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

struct Client {
    agent: ureq::Agent,
    base: String,
}

impl Client {
    fn new(base: String) -> Client {
        Client::with_agent(base, ureq::Agent::config_builder())
    }

    fn with_agent(
        base: String,
        config: ureq::config::ConfigBuilder<ureq::typestate::AgentScope>,
    ) -> Client {
        let agent: ureq::Agent = config
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        Client { agent, base }
    }

    fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Answer {
        let url = format!("{}{path}", self.base);
        let auth = token.map(|t| format!("Bearer {t}"));
        let response = match (method, body) {
            ("GET", _) => {
                let mut r = self.agent.get(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            ("DELETE", _) => {
                let mut r = self.agent.delete(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            ("POST", Some(body)) => {
                let mut r = self.agent.post(&url).content_type("application/json");
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.send(body)
            }
            ("POST", None) => {
                let mut r = self.agent.post(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.send("{}")
            }
            ("PUT", _) => {
                let mut r = self.agent.put(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.send_empty()
            }
            _ => unreachable!("{method}"),
        }
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        let authenticate = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response.into_body().read_to_string().unwrap();
        Answer {
            status,
            authenticate,
            body,
        }
    }

    fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.call("GET", path, token, None)
    }
}

/// `floodwall token`: the token on stdout, the line appended to `file`.
fn new_token(file: &Path, name: &str, scope: &str) -> String {
    let out = floodwall()
        .args(["token", "--name", name, "--scope", scope, "--tokens-file"])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The value of one sample of the exposition (`name{labels}` exactly as written).
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .unwrap_or_else(|| panic!("{series} not in the metrics:\n{metrics}"))
        .parse()
        .unwrap()
}

fn promtool_check(dir: &Path, metrics: &str) {
    let promtool = require_tool("promtool");
    let file = dir.join("metrics.txt");
    std::fs::write(&file, metrics).unwrap();
    let out = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs scripts/check-openapi.py on the document and the answers recorded (method, path as
/// documented, status, file).
fn check_openapi(
    dir: &Path,
    document: &str,
    recorded: &[(String, String, String, std::path::PathBuf)],
) {
    let doc_file = dir.join("openapi.json");
    std::fs::write(&doc_file, document).unwrap();
    let mut check = Command::new("python3");
    check
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/check-openapi.py"
        ))
        .arg(&doc_file);
    for (method, path, status, file) in recorded {
        check.args([method, path, status]).arg(file);
    }
    let out = check.output().unwrap();
    assert!(
        out.status.success(),
        "scripts/check-openapi.py (pip package openapi-spec-validator): {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn router_has(router: &Gobgpd, prefix: &str) -> bool {
    router
        .rib("ipv4")
        .map(|rib| rib.to_string().contains(prefix))
        .unwrap_or(false)
}

#[test]
fn the_api_with_tokens_mitigates_through_a_real_router_and_matches_its_document() {
    let dir = test_dir("http-api");
    let tokens = dir.join("tokens");
    let read = new_token(&tokens, "grafana", "read");
    let write = new_token(&tokens, "noc", "write");
    let router = Gobgpd::start(&dir, LOCAL_AS).expect("gobgpd (Debian package gobgpd)");
    let mut options = Options::new(Peer {
        name: "gobgpd".into(),
        address: format!("127.0.0.1:{}", router.bgp_port).parse().unwrap(),
        remote_as: ROUTER_AS,
    });
    options.http = format!("tokens_file = \"{}\"", tokens.display());
    let daemon = Daemon::start(&dir, &options);
    let api = Client::new(daemon.http_url());
    router.wait_established(Duration::from_secs(15)).unwrap();

    // Health is open; everything else needs a token.
    assert_eq!(api.get("/healthz", None).status, 200);
    wait_for(Duration::from_secs(10), "readiness", || {
        api.get("/readyz", None).status == 200
    });
    for path in ["/api/v1/status", "/metrics", "/api/v1/openapi.json"] {
        let none = api.get(path, None);
        assert_eq!(none.status, 401, "{path}: {}", none.body);
        assert!(none
            .authenticate
            .as_deref()
            .is_some_and(|h| h.starts_with("Bearer")));
        assert!(none.json()["error"].as_str().is_some());
        assert_eq!(api.get(path, Some("fw_not-a-token")).status, 401, "{path}");
        assert_eq!(api.get(path, Some(&read)).status, 200, "{path}");
    }

    let flood = Flood::start(&daemon);
    wait_for(
        Duration::from_secs(30),
        "the attack and its blackhole",
        || {
            let attacks = api.get("/api/v1/attacks", Some(&read)).json();
            attacks
                .as_array()
                .is_some_and(|a| a.iter().any(|a| a["target"] == VICTIM))
                && router_has(&router, "203.0.113.7/32")
        },
    );
    // The busiest targets of the last second: the victim and its /24.
    wait_for(
        Duration::from_secs(5),
        "the victim among the busiest",
        || {
            let hosts = api.get("/api/v1/top", Some(&read)).json();
            hosts[0]["target"] == VICTIM
        },
    );
    let prefixes = api.get("/api/v1/top?kind=prefix&direction=incoming", Some(&read));
    assert_eq!(
        prefixes.json()[0]["target"],
        "203.0.113.0/24",
        "{}",
        prefixes.body
    );
    let attacks = api
        .get("/api/v1/attacks?direction=incoming", Some(&read))
        .json();
    let attack = attacks
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["target"] == VICTIM)
        .unwrap()
        .clone();
    let vector = attack["vectors"][0].as_str().unwrap().to_string();
    // The status is a snapshot of each second: the next one counts the flood.
    wait_for(Duration::from_secs(5), "the flood in the status", || {
        let s = api.get("/api/v1/status", Some(&read)).json();
        s["engine"]["records"].as_u64() > Some(0)
            && s["attacks"].as_array().is_some_and(|a| !a.is_empty())
    });
    assert!(daemon
        .events()
        .iter()
        .any(|e| e["attack_id"] == attack["attack_id"] && e["event"] == "attack_started"));
    // Filters: another direction, a prefix that holds the target, one that does not.
    assert_eq!(
        api.get("/api/v1/attacks?direction=outgoing", Some(&read))
            .json(),
        Value::Array(Vec::new())
    );
    assert_eq!(
        api.get("/api/v1/attacks?target=203.0.113.0/24", Some(&read))
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        api.get("/api/v1/attacks?target=198.51.100.0/24", Some(&read))
            .json(),
        Value::Array(Vec::new())
    );
    let bad = api.get("/api/v1/attacks?direction=sideways", Some(&read));
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.json()["error"].as_str().unwrap().contains("sideways"));

    // Every GET, recorded for the document check.
    let mut recorded = Vec::new();
    for path in [
        "/healthz",
        "/readyz",
        "/api/v1/status",
        "/api/v1/exporters",
        "/api/v1/attacks",
        "/api/v1/mitigations",
        "/api/v1/hostgroups",
        "/api/v1/config",
    ] {
        let answer = api.get(path, Some(&read));
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        let file = dir.join(format!("get{}.json", path.replace('/', "_")));
        std::fs::write(&file, &answer.body).unwrap();
        recorded.push(("GET".to_string(), path.to_string(), "200".to_string(), file));
    }
    let status = api.get("/api/v1/status", Some(&read)).json();
    assert!(status["engine"]["records"].as_u64() > Some(0), "{status}");
    let exporters = api.get("/api/v1/exporters", Some(&read)).json();
    assert!(exporters["exporters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["address"] == "127.0.0.1" && x["records"].as_u64() > Some(0)));
    let held = api.get("/api/v1/mitigations", Some(&read)).json();
    assert!(
        held.as_array()
            .unwrap()
            .iter()
            .any(|h| h["mitigation"]["attack_id"] == attack["attack_id"]),
        "{held}"
    );
    let groups = api.get("/api/v1/hostgroups", Some(&read)).json();
    assert_eq!(groups[0]["hostgroup"], "default");
    assert_eq!(groups[0]["incoming"]["pps"], 20000.0);

    // Changes: a read token may not; bad requests change nothing; a good one reaches the router.
    let manual = r#"{"target": "203.0.113.99/32", "kind": "blackhole", "seconds": 600}"#;
    let forbidden = api.call("POST", "/api/v1/mitigations", Some(&read), Some(manual));
    assert_eq!(forbidden.status, 403, "{}", forbidden.body);
    assert_eq!(
        api.call("POST", "/api/v1/mitigations", None, Some(manual))
            .status,
        401
    );
    let malformed = api.call(
        "POST",
        "/api/v1/mitigations",
        Some(&write),
        Some("{\"target\": "),
    );
    assert_eq!(malformed.status, 400, "{}", malformed.body);
    let unknown_field = api.call(
        "POST",
        "/api/v1/mitigations",
        Some(&write),
        Some(r#"{"target": "203.0.113.99/32", "kind": "blackhole", "color": "red"}"#),
    );
    assert_eq!(unknown_field.status, 422, "{}", unknown_field.body);
    let outside = api.call(
        "POST",
        "/api/v1/mitigations",
        Some(&write),
        Some(r#"{"target": "198.51.100.1/32", "kind": "blackhole"}"#),
    );
    assert_eq!(outside.status, 422, "{}", outside.body);
    assert!(outside.json()["error"]
        .as_str()
        .unwrap()
        .contains("not inside the monitored networks"));
    std::thread::sleep(Duration::from_millis(500));
    assert!(!router_has(&router, "203.0.113.99/32"));
    assert!(!router_has(&router, "198.51.100.1/32"));

    let announced = api.call("POST", "/api/v1/mitigations", Some(&write), Some(manual));
    assert_eq!(announced.status, 200, "{}", announced.body);
    let body = announced.json();
    assert_eq!(body["status"], "announced", "{body}");
    let id = body["mitigation"]["id"].as_str().unwrap().to_string();
    std::fs::write(dir.join("post.json"), &announced.body).unwrap();
    recorded.push((
        "POST".into(),
        "/api/v1/mitigations".into(),
        "200".into(),
        dir.join("post.json"),
    ));
    std::fs::write(dir.join("refused.json"), &outside.body).unwrap();
    recorded.push((
        "POST".into(),
        "/api/v1/mitigations".into(),
        "422".into(),
        dir.join("refused.json"),
    ));
    wait_for(
        Duration::from_secs(10),
        "the manual blackhole in the RIB",
        || router_has(&router, "203.0.113.99/32"),
    );
    let path = format!("/api/v1/mitigations/{id}");
    assert_eq!(api.call("DELETE", &path, Some(&read), None).status, 403);
    assert!(router_has(&router, "203.0.113.99/32"));
    let withdrawn = api.call("DELETE", &path, Some(&write), None);
    assert_eq!(withdrawn.status, 200, "{}", withdrawn.body);
    wait_for(Duration::from_secs(10), "the manual blackhole gone", || {
        !router_has(&router, "203.0.113.99/32")
    });
    let again = api.call("DELETE", &path, Some(&write), None);
    assert_eq!(again.status, 404, "{}", again.body);
    assert_eq!(
        api.call("PUT", "/api/v1/status", Some(&read), None).status,
        405
    );
    assert_eq!(api.get("/api/v1/nothing", Some(&read)).status, 404);

    // The flood stops: the attack ends, and the history keeps it with its timeline and rules.
    drop(flood);
    let ended = format!("/api/v1/attacks?active=false&target={VICTIM}");
    wait_for(
        Duration::from_secs(30),
        "the attack ended in the history",
        || {
            api.get(&ended, Some(&read))
                .json()
                .as_array()
                .is_some_and(|a| a.iter().any(|a| a["attack_id"] == attack["attack_id"]))
        },
    );
    let id = attack["attack_id"].as_str().unwrap();
    let listed = api.get(&ended, Some(&read));
    let summary = listed.json()[0].clone();
    assert_eq!(summary["active"], false);
    assert!(summary["ended_at"].as_str().is_some(), "{summary}");
    assert!(summary["peak_pps"].as_u64() > Some(0));
    // Its rules are withdrawn after the hold-down.
    let detail_path = format!("/api/v1/attacks/{id}");
    wait_for(
        Duration::from_secs(20),
        "the blackhole withdrawn, in the history",
        || {
            api.get(&detail_path, Some(&read))
                .body
                .contains("mitigation_withdrawn")
        },
    );
    let detail = api.get(&detail_path, Some(&read));
    assert_eq!(detail.status, 200, "{}", detail.body);
    let d = detail.json();
    let timeline = d["timeline"].as_array().unwrap();
    assert_eq!(timeline.first().unwrap()["event"], "attack_started", "{d}");
    assert_eq!(timeline.last().unwrap()["event"], "attack_ended", "{d}");
    assert!(timeline.iter().any(|p| p["pps"].as_u64() > Some(0)));
    let changes: Vec<&str> = d["mitigations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "blackhole")
        .map(|m| m["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        changes,
        ["mitigation_announced", "mitigation_withdrawn"],
        "{d}"
    );
    assert!(d["latest"]["fingerprint"].is_object(), "{d}");
    // The events file and the history say the same of the attack.
    let events: Vec<Value> = daemon
        .events()
        .into_iter()
        .filter(|e| e["attack_id"] == id)
        .collect();
    assert_eq!(events.len(), timeline.len());
    assert_eq!(
        events.last().unwrap()["ended_at"],
        summary["ended_at"],
        "{summary}"
    );
    assert_eq!(
        api.get("/api/v1/attacks/nothing-here", Some(&read)).status,
        404
    );
    let bad_time = api.get("/api/v1/attacks?since=yesterday", Some(&read));
    assert_eq!(bad_time.status, 400, "{}", bad_time.body);
    let traffic = api.get("/api/v1/traffic?direction=incoming", Some(&read));
    assert_eq!(traffic.status, 200, "{}", traffic.body);
    let series = traffic.json();
    assert_eq!(series["step_s"], 1);
    assert!(
        series["points"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["pps"].as_u64() > Some(10_000)),
        "{series}"
    );
    let since = summary["started_at"].as_str().unwrap();
    let top = api.get(&format!("/api/v1/top?since={since}"), Some(&read));
    assert_eq!(top.status, 200, "{}", top.body);
    assert_eq!(top.json()[0]["target"], VICTIM, "{}", top.body);
    assert!(
        top.json()[0]["peak_pps"].as_u64() > Some(100_000),
        "{}",
        top.body
    );
    let series = api.get("/api/v1/targets/203.0.113.7/32/series", Some(&read));
    assert_eq!(series.status, 200, "{}", series.body);
    assert!(
        series.json()["points"].as_array().unwrap().len() >= 2,
        "{}",
        series.body
    );
    assert_eq!(
        api.get("/api/v1/targets/nonsense/series", Some(&read))
            .status,
        400
    );
    // The exporter's counters, kept every 10 s: the first row comes with the first status.
    let exporter = api.get("/api/v1/exporters/127.0.0.1/series", Some(&read));
    assert_eq!(exporter.status, 200, "{}", exporter.body);
    let points = exporter.json()["points"].as_array().unwrap().clone();
    assert!(
        points.iter().any(|p| p["records"].as_u64() > Some(0)),
        "{}",
        exporter.body
    );
    for (path, answer) in [
        ("/api/v1/top".to_string(), &top),
        ("/api/v1/exporters/{address}/series".to_string(), &exporter),
        ("/api/v1/targets/{target}/series".to_string(), &series),
        ("/api/v1/attacks/{id}".to_string(), &detail),
        ("/api/v1/traffic".to_string(), &traffic),
        ("/api/v1/attacks".to_string(), &listed),
    ] {
        let file = dir.join(format!("history{}.json", recorded.len()));
        std::fs::write(&file, &answer.body).unwrap();
        recorded.push(("GET".into(), path, "200".into(), file));
    }

    // The metrics: Prometheus's own checker, and the figures against what happened (the
    // engine's part of them as of its last second).
    let active = format!("floodwall_attacks_active{{direction=\"incoming\",vector=\"{vector}\"}}");
    wait_for(
        Duration::from_secs(5),
        "no attack active in the metrics",
        || sample(&api.get("/metrics", Some(&read)).body, &active) == 0.0,
    );
    let metrics = api.get("/metrics", Some(&read)).body;
    promtool_check(&dir, &metrics);
    // The scenario's truth: one NTP reflection flood at the victim, nothing else.
    assert_eq!(vector, "ntp_amplification");
    let started =
        "floodwall_attacks_started_total{direction=\"incoming\",vector=\"ntp_amplification\"}";
    assert_eq!(sample(&metrics, started), 1.0, "{started}");
    let all_started: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("floodwall_attacks_started_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(all_started, 1.0, "{metrics}");
    // Every record decoded reached the engine.
    assert_eq!(
        sample(&metrics, "floodwall_engine_records_total"),
        sample(
            &metrics,
            "floodwall_exporter_records_total{exporter=\"127.0.0.1\"}"
        )
    );

    assert!(sample(&metrics, "floodwall_engine_records_total") > 0.0);
    assert!(
        sample(
            &metrics,
            "floodwall_exporter_records_total{exporter=\"127.0.0.1\"}"
        ) > 0.0
    );
    assert!(
        sample(
            &metrics,
            "floodwall_mitigations_announced_total{kind=\"blackhole\"}"
        ) >= 2.0
    );
    assert!(
        sample(
            &metrics,
            "floodwall_mitigations_withdrawn_total{kind=\"blackhole\"}"
        ) >= 1.0
    );
    assert_eq!(
        sample(
            &metrics,
            "floodwall_mitigations_active{kind=\"blackhole\",dry_run=\"false\"}"
        ),
        0.0
    );
    assert!(sample(&metrics, "floodwall_store_writes_total") > 0.0);
    assert_eq!(
        sample(&metrics, "floodwall_store_dropped_writes_total"),
        0.0
    );
    assert!(sample(&metrics, "floodwall_store_size_bytes") > 0.0);
    assert!(metrics.contains(
        "floodwall_hostgroup_packets_per_second{hostgroup=\"default\",direction=\"incoming\"}"
    ));
    assert!(
        metrics.lines().any(
            |l| l.starts_with("floodwall_mitigator_channel_up{mitigator=\"bgp\"")
                && l.ends_with(" 1")
        ),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "floodwall_bus_dropped_messages_total{subscriber=\"metrics\"}"
        ),
        0.0
    );

    // The document: valid OpenAPI, and every answer recorded matches its schema.
    let document = api.get("/api/v1/openapi.json", Some(&read));
    check_openapi(&dir, &document.body, &recorded);
    // Tokens never reach the log.
    let log = daemon.log();
    assert!(!log.contains(&read) && !log.contains(&write));
}

#[test]
fn without_a_tokens_file_reads_are_open_and_nothing_can_be_changed() {
    let dir = test_dir("http-open");
    let mut options = Options::new(Peer {
        name: "nobody".into(),
        address: "127.0.0.1:9".parse().unwrap(),
        remote_as: ROUTER_AS,
    });
    options.without_bgp = true;
    let daemon = Daemon::start(&dir, &options);
    let api = Client::new(daemon.http_url());
    assert_eq!(api.get("/api/v1/status", None).status, 200);
    assert_eq!(api.get("/metrics", None).status, 200);
    let refused = api.call(
        "POST",
        "/api/v1/mitigations",
        None,
        Some(r#"{"target": "203.0.113.99/32", "kind": "blackhole"}"#),
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.json()["error"]
        .as_str()
        .unwrap()
        .contains("tokens_file"));
    assert_eq!(
        api.get("/api/v1/mitigations", None).json(),
        Value::Array(Vec::new())
    );
    // Open reads answer addresses only: a page rebinding its own name to 127.0.0.1 is refused.
    let rebound = api
        .agent
        .get(format!("{}/api/v1/status", api.base))
        .header("Host", "attacker.example")
        .call()
        .unwrap();
    assert_eq!(rebound.status().as_u16(), 403);
}

#[test]
fn https_serves_with_the_configured_certificate_and_only_https() {
    let dir = test_dir("http-tls");
    let key =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), key.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.signing_key.serialize_pem()).unwrap();
    let mut options = Options::new(Peer {
        name: "nobody".into(),
        address: "127.0.0.1:9".parse().unwrap(),
        remote_as: ROUTER_AS,
    });
    options.without_bgp = true;
    options.http = format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"",
        dir.join("cert.pem").display(),
        dir.join("key.pem").display()
    );
    let daemon = Daemon::start(&dir, &options);
    let url = daemon.http_url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let root = ureq::tls::Certificate::from_der(key.cert.der()).to_owned();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![root])))
        .build();
    let api = Client::with_agent(url.clone(), ureq::Agent::config_builder().tls_config(tls));
    assert_eq!(api.get("/healthz", None).status, 200);
    assert_eq!(
        api.get("/api/v1/status", None).json()["engine"]["records"],
        0
    );
    // Plain HTTP to the same port gets no answer.
    let plain = url.replacen("https://", "http://", 1);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    assert!(agent.get(format!("{plain}/healthz")).call().is_err());
}

#[test]
fn a_taken_http_port_stops_the_start_with_the_setting_to_change() {
    let dir = test_dir("http-taken");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = dir.join("floodwall.toml");
    std::fs::write(
        &config,
        format!(
            "networks = [\"203.0.113.0/24\"]\n[http]\nlisten = \"127.0.0.1:{port}\"\n\
             [collector]\nlisten = [\"127.0.0.1:0\"]\n[events]\nfile = \"{}\"\n[state]\ndir = \"{}\"\n",
            dir.join("events.jsonl").display(),
            dir.join("state").display()
        ),
    )
    .unwrap();
    let out = floodwall()
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("[http] listen = 127.0.0.1:{port}")),
        "{stderr}"
    );
    // Half a TLS pair is refused before anything starts.
    std::fs::write(
        &config,
        "networks = [\"203.0.113.0/24\"]\n[http]\ntls_cert = \"/etc/ssl/none.pem\"\n",
    )
    .unwrap();
    let out = floodwall()
        .args(["check-config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tls_key"));
    drop(taken);
}

/// The abuse report's CSV columns, in order (Shadowserver-like).
const REPORT_HEADER: &str = "timestamp,ip,port,hostgroup,prefix,tag,infection,confidence,first_seen,dst_ip,dst_port,count,attack_id,evidence";

/// The reasons an infected host of `/api/v1/infected` is listed for.
fn reasons(host: &Value) -> Vec<String> {
    let mut kinds: Vec<String> = host["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_string())
        .collect();
    kinds.sort();
    kinds
}

/// The host of the list whose address starts with `prefix` (`198.18.1.`).
fn host_in<'a>(list: &'a Value, prefix: &str) -> Option<&'a Value> {
    list.as_array()?
        .iter()
        .find(|h| h["host"].as_str().is_some_and(|a| a.starts_with(prefix)))
}

#[test]
fn the_hunt_lists_scanners_reports_them_and_groups_a_botnets_attacks() {
    let dir = test_dir("http-hunt");
    let mut options = Options::new(Peer {
        name: "nobody".into(),
        address: "127.0.0.1:9".parse().unwrap(),
        remote_as: ROUTER_AS,
    });
    options.without_bgp = true;
    options.networks = vec!["198.18.0.0/15".into()];
    options.carpet = true;
    let daemon = Daemon::start(&dir, &options);
    let api = Client::new(daemon.http_url());
    wait_for(Duration::from_secs(10), "readiness", || {
        api.get("/readyz", None).status == 200
    });
    // Nothing yet: empty lists, and a report of its header alone.
    assert_eq!(
        api.get("/api/v1/infected", None).json(),
        Value::Array(vec![])
    );
    assert_eq!(
        api.get("/api/v1/campaigns", None).json(),
        Value::Array(vec![])
    );
    let empty = api.get("/api/v1/infected/report?format=csv", None);
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert_eq!(empty.body.trim_end(), REPORT_HEADER);

    // Mirai telnet scanning from two customers (brief §6.1): the original scanner at ~160
    // probes/s (1 sample in 6 s at 1:1000) and a fork at 40,000/s, which also crosses the
    // outgoing SYN limit. Twice as fast as life.
    let scan = Simulation::start(&daemon, "mirai-scan", 2.0);
    wait_for(
        Duration::from_secs(90),
        "both scanners listed as infected",
        || {
            let list = api.get("/api/v1/infected", None).json();
            host_in(&list, "198.18.1.").is_some_and(|h| reasons(h).contains(&"scanning".into()))
                && host_in(&list, "198.18.3.")
                    .is_some_and(|h| reasons(h) == ["outgoing_attack", "scanning"])
        },
    );
    drop(scan);
    let infected = api.get("/api/v1/infected", None);
    let list = infected.json();
    let slow = host_in(&list, "198.18.1.").unwrap().clone();
    let fast = host_in(&list, "198.18.3.").unwrap().clone();
    // The slow scanner is no flood: it is listed for scanning only.
    assert_eq!(reasons(&slow), ["scanning"], "{slow}");
    for host in [&slow, &fast] {
        assert_eq!(host["hostgroup"], "default", "{host}");
        assert_eq!(host["prefix"], "198.18.0.0/15", "{host}");
        assert!(host["confidence"].as_f64() >= Some(0.5), "{host}");
        let scanning = host["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["kind"] == "scanning")
            .unwrap();
        // Telnet first. (The simulator's probes do not carry Mirai's signature, sequence
        // number = destination: the finding rests on the spread of destinations alone.)
        assert_eq!(scanning["ports"][0], 23, "{scanning}");
        assert!(
            scanning["destinations_sampled"].as_u64() >= Some(2),
            "{scanning}"
        );
        assert!(
            scanning["destinations_estimated"].as_u64()
                >= scanning["destinations_sampled"].as_u64(),
            "{scanning}"
        );
        assert!(
            !scanning["peers"].as_array().unwrap().is_empty(),
            "{scanning}"
        );
    }
    let attack_reason = fast["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "outgoing_attack")
        .unwrap()
        .clone();
    let attack_id = attack_reason["attack_id"].as_str().unwrap().to_string();
    assert!(
        attack_reason["vectors"]
            .as_array()
            .unwrap()
            .contains(&"syn_flood".into()),
        "{attack_reason}"
    );
    // That attack is the engine's: the attacks list has it, outgoing, from the fast scanner.
    let outgoing = api.get("/api/v1/attacks?direction=outgoing", None).json();
    assert!(
        outgoing
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["attack_id"] == attack_id.as_str()
                && a["target"]
                    .as_str()
                    .unwrap()
                    .starts_with(fast["host"].as_str().unwrap())),
        "{outgoing}"
    );
    // No customer but the two scanners is listed.
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    // Filters.
    assert_eq!(
        api.get("/api/v1/infected?hostgroup=nobody", None).json(),
        Value::Array(vec![])
    );
    assert_eq!(
        api.get("/api/v1/infected?limit=1", None)
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let future = unix_ms() + 3_600_000;
    assert_eq!(
        api.get(&format!("/api/v1/infected?since={future}"), None)
            .json(),
        Value::Array(vec![])
    );
    let bad = api.get("/api/v1/infected?since=yesterday", None);
    assert_eq!(bad.status, 400, "{}", bad.body);

    // The abuse report: one row per host and reason, as JSON and as CSV.
    let report = api.get("/api/v1/infected/report", None);
    assert_eq!(report.status, 200, "{}", report.body);
    let rows = report.json();
    let rows = rows.as_array().unwrap();
    let mut tags: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["ip"].as_str().unwrap().to_string(),
                r["tag"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    tags.sort();
    let (slow_ip, fast_ip) = (
        slow["host"].as_str().unwrap(),
        fast["host"].as_str().unwrap(),
    );
    let mut expected = vec![
        (slow_ip.to_string(), "scanning".to_string()),
        (fast_ip.to_string(), "outgoing_attack".to_string()),
        (fast_ip.to_string(), "scanning".to_string()),
    ];
    expected.sort();
    assert_eq!(tags, expected, "{}", report.body);
    let csv = api.get("/api/v1/infected/report?format=csv", None);
    assert_eq!(csv.status, 200, "{}", csv.body);
    let mut lines = csv.body.lines();
    assert_eq!(lines.next(), Some(REPORT_HEADER));
    let csv_rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(csv_rows.len(), 3, "{}", csv.body);
    for row in &csv_rows {
        assert!(row.len() >= 14, "{row:?}");
        assert_eq!(row[3], "default", "{row:?}");
        assert_eq!(row[4], "198.18.0.0/15", "{row:?}");
    }
    let attack_row = csv_rows
        .iter()
        .find(|r| r[5] == "outgoing_attack")
        .expect("the outgoing attack's row");
    assert_eq!(attack_row[1], fast_ip);
    assert_eq!(attack_row[12], attack_id);
    let scan_row = csv_rows
        .iter()
        .find(|r| r[1] == slow_ip)
        .expect("the slow scanner's row");
    assert_eq!(scan_row[5], "scanning");
    assert!(scan_row[11].parse::<u64>().unwrap() >= 2, "{scan_row:?}");
    let xml = api.get("/api/v1/infected/report?format=xml", None);
    assert_eq!(xml.status, 400, "{}", xml.body);
    assert!(
        xml.json()["error"].as_str().unwrap().contains("xml"),
        "{}",
        xml.body
    );
    let filtered = api.get("/api/v1/infected/report?format=csv&hostgroup=nobody", None);
    assert_eq!(filtered.body.trim_end(), REPORT_HEADER);

    // The hunt's counters: every probe it read (its view is refreshed each second).
    wait_for(Duration::from_secs(5), "the hunt's counters", || {
        api.get("/api/v1/hunt", None).json()["stats"]["listed"] == 2
    });
    let hunt = api.get("/api/v1/hunt", None);
    assert_eq!(hunt.status, 200, "{}", hunt.body);
    let counters = hunt.json();
    let stats = &counters["stats"];
    assert!(stats["records"].as_u64() > Some(0), "{counters}");
    // Listing a scanner takes three probes; the scenario's probes carry Mirai's signature.
    assert!(stats["probes"].as_u64() >= Some(3), "{counters}");
    assert!(stats["mirai_probes"].as_u64() > Some(0), "{counters}");
    assert!(
        stats["mirai_probes"].as_u64() <= stats["probes"].as_u64(),
        "{counters}"
    );
    assert_eq!(stats["listed"], 2, "{counters}");
    assert_eq!(stats["c2_contacts"], 0, "{counters}");
    assert_eq!(counters["c2_entries"], 0, "{counters}");

    // A botnet's carpet over a /22: four /24 carpets from one bot pool make one campaign.
    Simulation::start(&daemon, "carpet-22", 4.0).finish(Duration::from_secs(120));
    wait_for(Duration::from_secs(60), "a campaign", || {
        api.get("/api/v1/campaigns", None)
            .json()
            .as_array()
            .is_some_and(|c| !c.is_empty())
    });
    let campaigns = api.get("/api/v1/campaigns", None);
    let campaign = campaigns.json()[0].clone();
    let id = campaign["campaign"].as_str().unwrap().to_string();
    assert_eq!(
        campaigns.json().as_array().unwrap().len(),
        1,
        "{}",
        campaigns.body
    );
    assert!(campaign["attack_count"].as_u64() >= Some(2), "{campaign}");
    assert_eq!(campaign["direction"], "incoming", "{campaign}");
    assert!(campaign["sources"].as_u64() >= Some(50), "{campaign}");
    assert!(
        campaign["vectors"]
            .as_array()
            .unwrap()
            .contains(&"udp_flood".into()),
        "{campaign}"
    );
    for target in campaign["targets"].as_array().unwrap() {
        assert!(
            target.as_str().unwrap().starts_with("198.18."),
            "{campaign}"
        );
    }
    // Its attacks carry its id once they joined: their last event (the end) does.
    let members: Vec<String> = campaign["attacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    wait_for(
        Duration::from_secs(60),
        "the campaign's attacks ended, with its id",
        || {
            members.iter().all(|a| {
                let d = api.get(&format!("/api/v1/attacks/{a}"), None);
                d.status == 200 && d.json()["summary"]["active"] == false
            })
        },
    );
    let mut detail = None;
    for a in &members {
        let d = api.get(&format!("/api/v1/attacks/{a}"), None);
        assert_eq!(
            d.json()["latest"]["campaign"],
            id.as_str(),
            "{a}: {}",
            d.body
        );
        detail = Some(d);
    }
    assert!(
        daemon
            .events()
            .iter()
            .any(|e| e["event"] == "attack_ended" && e["campaign"] == id.as_str()),
        "no attack event names {id}"
    );
    let hunt_after = api.get("/api/v1/hunt", None);
    assert_eq!(hunt_after.json()["campaigns"], 1, "{}", hunt_after.body);

    // The metrics: Prometheus's checker, and the hunt's families as the API says.
    let metrics = api.get("/metrics", None).body;
    promtool_check(&dir, &metrics);
    assert_eq!(sample(&metrics, "floodwall_infected_hosts"), 2.0);
    assert_eq!(sample(&metrics, "floodwall_campaigns"), 1.0);
    assert!(sample(&metrics, "floodwall_hunt_records_total") > 0.0);
    assert!(
        sample(&metrics, "floodwall_hunt_scan_probes_total")
            >= counters["stats"]["probes"].as_f64().unwrap()
    );
    assert_eq!(
        sample(&metrics, "floodwall_hunt_mirai_probes_total"),
        counters["stats"]["mirai_probes"].as_f64().unwrap()
    );
    assert!(sample(&metrics, "floodwall_hunt_hosts") >= 2.0);
    assert_eq!(sample(&metrics, "floodwall_hunt_c2_contacts_total"), 0.0);
    assert_eq!(sample(&metrics, "floodwall_c2_feed_entries"), 0.0);
    assert_eq!(sample(&metrics, "floodwall_c2_feed_domains"), 0.0);
    assert_eq!(
        sample(&metrics, "floodwall_hunt_skipped_batches_total"),
        0.0
    );
    for family in [
        "floodwall_hunt_records_total",
        "floodwall_infected_hosts",
        "floodwall_campaigns",
        "floodwall_c2_feed_entries",
    ] {
        assert!(
            metrics.contains(&format!("# TYPE {family} ")),
            "{family} undeclared"
        );
    }

    // The document still validates, and the hunt's answers (the 400 included) match it.
    let mut recorded = Vec::new();
    for (path, answer) in [
        ("/api/v1/infected", &infected),
        ("/api/v1/infected/report", &report),
        ("/api/v1/infected/report", &xml),
        ("/api/v1/campaigns", &campaigns),
        ("/api/v1/hunt", &hunt_after),
        ("/api/v1/attacks/{id}", detail.as_ref().unwrap()),
    ] {
        let file = dir.join(format!("hunt{}.json", recorded.len()));
        std::fs::write(&file, &answer.body).unwrap();
        recorded.push((
            "GET".to_string(),
            path.to_string(),
            answer.status.to_string(),
            file,
        ));
    }
    let document = api.get("/api/v1/openapi.json", None);
    assert_eq!(document.status, 200);
    let doc: Value = document.json();
    assert!(
        doc["paths"]["/api/v1/infected/report"]["get"]["responses"]["200"]["content"]["text/csv"]
            .is_object(),
        "the CSV answer is documented"
    );
    check_openapi(&dir, &document.body, &recorded);
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}
