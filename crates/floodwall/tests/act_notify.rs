//! Webhooks against a real HTTP receiver on 127.0.0.1 and scripts as real shell scripts.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use floodwall_daemon::act::script::{Script, ScriptConfig};
use floodwall_daemon::act::webhook::{Webhook, WebhookConfig, WebhookFormat};
use floodwall_daemon::act::Notifier;
use serde_json::{json, Value};

fn attack_notice() -> Value {
    json!({
        "event": "attack_started", "attack_id": "1760000021000-in-203.0.113.10/32",
        "ts": "2025-10-09T08:53:41.000Z", "direction": "incoming", "target": "203.0.113.10/32",
        "carpet_bombing": false, "hostgroup": "default",
        "vectors": ["udp_flood", "ntp_amplification"], "bps": 4464000000u64, "pps": 1000000,
        "peak_bps": 4464000000u64, "peak_pps": 1000000, "sources": 13912,
        "mitigations": [{"id": "1760000021000-in-203.0.113.10/32-flowspec",
            "attack_id": "1760000021000-in-203.0.113.10/32", "hostgroup": "default",
            "since": 1760000021000u64, "coverage": 0.93,
            "rule": {"kind": "flowspec", "filter": {"destination": "203.0.113.10/32",
                "protocols": [17], "source_ports": [{"first": 123, "last": 123}]},
                "action": {"type": "discard"}}}]
    })
}

fn mitigation_notice() -> Value {
    json!({"event": "mitigation_announced", "mitigation": {
        "id": "a7-blackhole", "attack_id": "a7", "hostgroup": "default", "since": 1,
        "rule": {"kind": "blackhole", "prefix": "198.51.100.7/32", "next_hop": "192.0.2.1",
            "communities": ["65535:666"]}}})
}

#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Value,
}

/// A minimal HTTP/1.1 receiver: one request per connection, answered with the next status of
/// `statuses` (200 when they run out).
struct Receiver {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Receiver {
    fn start(statuses: Vec<u16>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        // Ends with the test process; it only ever accepts from 127.0.0.1.
        std::thread::spawn(move || {
            let mut statuses = statuses.into_iter();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or_default().to_string();
                let path = parts.next().unwrap_or_default().to_string();
                let mut headers = BTreeMap::new();
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).unwrap();
                    let header = header.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    let (name, value) = header.split_once(':').unwrap();
                    headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
                }
                let length: usize = headers
                    .get("content-length")
                    .map_or(0, |l| l.parse().unwrap());
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                seen.lock().unwrap().push(Request {
                    method,
                    path,
                    headers,
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                });
                let status = statuses.next().unwrap_or(200);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} Status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Receiver { url, requests }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn webhook(url: &str, format: WebhookFormat) -> Webhook {
    Webhook::new(&WebhookConfig {
        url: url.to_string(),
        format,
        timeout_seconds: 5.0,
    })
    .unwrap()
}

#[test]
fn webhook_posts_each_notice_as_json() {
    let receiver = Receiver::start(vec![]);
    let mut hook = webhook(&receiver.url, WebhookFormat::Json);
    hook.notify(&attack_notice());
    hook.notify(&mitigation_notice());
    assert!(hook.flush(Duration::from_secs(20)));
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    for (request, notice) in requests.iter().zip([attack_notice(), mitigation_notice()]) {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/hook");
        assert_eq!(request.headers["content-type"], "application/json");
        assert_eq!(request.body, notice);
    }
    let stats = hook.stats();
    assert_eq!((stats.sent, stats.failed, stats.dropped), (2, 0, 0));
}

#[test]
fn slack_webhooks_get_one_readable_line() {
    let receiver = Receiver::start(vec![]);
    let mut hook = webhook(&receiver.url, WebhookFormat::Slack);
    hook.notify(&attack_notice());
    hook.notify(&mitigation_notice());
    assert!(hook.flush(Duration::from_secs(20)));
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    let attack = requests[0].body["text"].as_str().unwrap();
    assert_eq!(requests[0].body.as_object().unwrap().len(), 1);
    for part in [
        "attack_started",
        "203.0.113.10/32",
        "udp_flood, ntp_amplification",
        "1.00 Mpps",
        "4.46 Gbps",
        "flowspec dst 203.0.113.10/32 proto 17 sport 123 then discard",
    ] {
        assert!(attack.contains(part), "{part} not in {attack}");
    }
    assert!(!attack.contains('\n'));
    let mitigation = requests[1].body["text"].as_str().unwrap();
    assert!(
        mitigation.starts_with("mitigation_announced: blackhole 198.51.100.7/32"),
        "{mitigation}"
    );
}

#[test]
fn a_server_error_is_retried_and_a_client_error_is_not() {
    let receiver = Receiver::start(vec![500, 200, 404]);
    let mut hook = webhook(&receiver.url, WebhookFormat::Json);
    hook.notify(&attack_notice());
    assert!(hook.flush(Duration::from_secs(20)));
    hook.notify(&mitigation_notice());
    assert!(hook.flush(Duration::from_secs(20)));
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0].body, requests[1].body);
    assert_eq!(requests[2].body, mitigation_notice());
    let stats = hook.stats();
    assert_eq!((stats.sent, stats.failed), (1, 1));
}

#[test]
fn a_dead_url_never_blocks_notify_and_is_counted() {
    // A port that was just free: connections are refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut hook = webhook(&format!("http://127.0.0.1:{port}/"), WebhookFormat::Json);
    let notice = attack_notice();
    let started = Instant::now();
    for _ in 0..1100 {
        hook.notify(&notice);
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // The queue holds 1024 and one is in delivery: the rest were dropped.
    assert!(hook.stats().dropped >= 1100 - 1025, "{:?}", hook.stats());
    let deadline = Instant::now() + Duration::from_secs(20);
    while hook.stats().failed == 0 {
        assert!(Instant::now() < deadline, "{:?}", hook.stats());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(hook.stats().sent, 0);
}

#[test]
fn a_silent_server_times_out_and_is_retried() {
    // Accepts and reads, never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let held = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            held.lock().unwrap().push(stream);
        }
    });
    let mut hook = Webhook::new(&WebhookConfig {
        url,
        format: WebhookFormat::Json,
        timeout_seconds: 0.3,
    })
    .unwrap();
    let started = Instant::now();
    hook.notify(&attack_notice());
    // Four attempts of 0.3 s with pauses of 0.5, 1 and 2 s between them.
    assert!(hook.flush(Duration::from_secs(15)));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!((hook.stats().sent, hook.stats().failed), (0, 1));
    assert_eq!(accepted.lock().unwrap().len(), 4);
}

fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("floodwall-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn script(command: Vec<String>, timeout_seconds: f64) -> Script {
    Script::new(&ScriptConfig {
        command,
        timeout_seconds,
    })
    .unwrap()
}

#[test]
fn a_script_gets_the_notice_on_stdin_and_the_essentials_in_its_environment() {
    let dir = temp_dir("script");
    let out = dir.join("out.txt");
    let path = write_script(
        &dir,
        "record.sh",
        "{ echo \"$FLOODWALL_EVENT|$FLOODWALL_TARGET|$FLOODWALL_ATTACK_ID|$FLOODWALL_MITIGATION_ID\"; cat; } >> \"$1\"",
    );
    let mut run = script(
        vec![path.display().to_string(), out.display().to_string()],
        10.0,
    );
    run.notify(&attack_notice());
    run.notify(&mitigation_notice());
    assert!(run.flush(Duration::from_secs(20)));
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(
        lines[0],
        "attack_started|203.0.113.10/32|1760000021000-in-203.0.113.10/32|"
    );
    assert_eq!(
        serde_json::from_str::<Value>(lines[1]).unwrap(),
        attack_notice()
    );
    assert_eq!(
        lines[2],
        "mitigation_announced|198.51.100.7/32|a7|a7-blackhole"
    );
    assert_eq!(
        serde_json::from_str::<Value>(lines[3]).unwrap(),
        mitigation_notice()
    );
    assert_eq!(run.stats().sent, 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn failing_and_hung_scripts_are_counted_and_a_hung_one_is_killed_with_its_children() {
    let dir = temp_dir("script-fail");
    let failing = write_script(&dir, "fail.sh", "exit 3");
    let mut run = script(vec![failing.display().to_string()], 10.0);
    run.notify(&attack_notice());
    assert!(run.flush(Duration::from_secs(20)));
    assert_eq!((run.stats().sent, run.stats().failed), (0, 1));

    let pids = dir.join("sleep.pid");
    let hung = write_script(
        &dir,
        "hang.sh",
        &format!("sleep 30 &\necho $! > {}\nwait", pids.display()),
    );
    let mut run = script(vec![hung.display().to_string()], 0.5);
    let started = Instant::now();
    run.notify(&attack_notice());
    assert!(run.flush(Duration::from_secs(10)));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!((run.stats().sent, run.stats().failed), (0, 1));
    // The script's own child went with it (its process group was killed). It was reparented
    // when the script died; give its new parent a moment to reap it.
    let sleeper: i32 = std::fs::read_to_string(&pids)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let state = std::fs::read_to_string(format!("/proc/{sleeper}/stat")).unwrap_or_default();
        let gone = state.is_empty() || state.split_whitespace().nth(2) == Some("Z");
        if gone {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sleep {sleeper} still runs: {state}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
