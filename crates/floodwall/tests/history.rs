//! The history against the things that go wrong: a daemon killed while it writes (the
//! database stays intact and answers after the restart) and a disk that fills up (the history
//! loses rows, counted; detection and its events go on).

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::mitigation::{wait_for, Daemon, Flood, Options, Peer, VICTIM};
use support::test_dir;

fn get(base: &str, path: &str) -> Value {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let body = agent
        .get(format!("{base}{path}"))
        .call()
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .into_body()
        .read_to_string()
        .unwrap();
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// Python's sqlite3 (a separate SQLite build) checks the file as any other reader would.
fn integrity(db: &Path) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute('PRAGMA integrity_check').fetchone()[0]); print(c.execute('SELECT COUNT(*) FROM attacks').fetchone()[0])",
        ])
        .arg(db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn no_router() -> Options {
    let mut options = Options::new(Peer {
        name: "nobody".into(),
        address: "127.0.0.1:9".parse().unwrap(),
        remote_as: 65000,
    });
    options.without_bgp = true;
    options
}

#[test]
fn a_daemon_killed_while_writing_keeps_its_history_intact_and_queryable() {
    let dir = test_dir("history-kill");
    let mut daemon = Daemon::start(&dir, &no_router());
    let api = daemon.http_url();
    let flood = Flood::start(&daemon);
    wait_for(Duration::from_secs(30), "the attack in the history", || {
        get(&api, "/api/v1/attacks?active=true")
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["target"] == VICTIM))
    });
    // A few more seconds of updates and per-second traffic being written, then SIGKILL.
    std::thread::sleep(Duration::from_millis(2_500));
    let before = get(&api, "/api/v1/attacks");
    let id = before[0]["attack_id"].as_str().unwrap().to_string();
    daemon.kill9();
    let db = dir.join("state/history.sqlite");
    let check = integrity(&db);
    assert!(check.starts_with("ok\n"), "{check}");

    daemon.restart();
    let api = daemon.http_url();
    // The attack of the killed run: closed at its last event, marked unfinished, its
    // timeline whole as far as it was committed.
    let old = get(&api, &format!("/api/v1/attacks/{id}"));
    assert_eq!(old["summary"]["active"], false, "{old}");
    assert_eq!(old["summary"]["unfinished"], true, "{old}");
    assert_eq!(old["timeline"][0]["event"], "attack_started", "{old}");
    // The flood goes on: the new run detects it as a new attack, beside the old one.
    wait_for(Duration::from_secs(30), "the flood detected again", || {
        get(&api, "/api/v1/attacks?active=true")
            .as_array()
            .is_some_and(|a| {
                a.iter()
                    .any(|a| a["target"] == VICTIM && a["attack_id"] != id.as_str())
            })
    });
    let traffic = get(&api, "/api/v1/traffic");
    assert!(
        traffic["points"].as_array().is_some_and(|p| !p.is_empty()),
        "{traffic}"
    );
    drop(flood);
}

/// `floodwall run` in a mount namespace of its own, where `mount` is a tmpfs of `size`.
struct Namespaced {
    child: Child,
}

impl Namespaced {
    fn start(config: &Path, mount: &Path, size: &str, log: &Path) -> Namespaced {
        let script = format!(
            "mount -t tmpfs -o size={size} floodwall-test \"$1\" && exec \"$2\" run --config \"$3\""
        );
        let child = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
                "sh",
            ])
            .arg(mount)
            .arg(env!("CARGO_BIN_EXE_floodwall"))
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("unshare (util-linux)");
        Namespaced { child }
    }

    /// Runs a command in its mount namespace.
    fn exec(&self, args: &[&str]) -> std::process::Output {
        Command::new("nsenter")
            .args(["-t", &self.child.id().to_string(), "-m", "--"])
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Namespaced {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_full_disk_costs_history_rows_not_detection() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test mounts a small tmpfs in a mount namespace: run it as root"
    );
    let dir = test_dir("history-full");
    let history = dir.join("history");
    std::fs::create_dir_all(&history).unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("floodwall.toml");
    std::fs::write(
        &config,
        format!(
            "networks = [\"203.0.113.0/24\"]\n[http]\nlisten = \"127.0.0.1:0\"\n\
             [history]\npath = \"{}\"\n[collector]\nlisten = [\"127.0.0.1:{port}\"]\n\
             [events]\nfile = \"{}\"\n[state]\ndir = \"{}\"\n[detection]\nquiet_period_s = 2\n",
            history.join("history.sqlite").display(),
            dir.join("events.jsonl").display(),
            dir.join("state").display()
        ),
    )
    .unwrap();
    let log = dir.join("daemon.log");
    let daemon = Namespaced::start(&config, &history, "2m", &log);
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for(Duration::from_secs(10), "the daemon's API", || {
        floodwall_daemon::serve::url_in_log(&read_log()).is_some()
    });
    let api = floodwall_daemon::serve::url_in_log(&read_log())
        .unwrap()
        .to_string();
    // Fill the rest of its disk.
    let fill = daemon.exec(&[
        "dd",
        "if=/dev/zero",
        &format!("of={}", history.join("filler").display()),
        "bs=64k",
    ]);
    assert!(
        String::from_utf8_lossy(&fill.stderr).contains("No space left"),
        "{fill:?}"
    );
    let flood = Command::new(env!("CARGO_BIN_EXE_floodwall"))
        .args([
            "simulate",
            "--scenario",
            support::mitigation::FLOOD,
            "--send",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let flood = Guard(flood);
    // Detection goes on: the attack is in the status and the events file.
    wait_for(Duration::from_secs(30), "the attack detected", || {
        get(&api, "/api/v1/status")["attacks"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["target"] == VICTIM))
    });
    let events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    assert!(events.contains("\"attack_started\""), "{events}");
    // The history's losses are counted, and said in the log (not once per row).
    let metric = |name: &str| -> f64 {
        let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
        let text = agent
            .get(format!("{api}/metrics"))
            .call()
            .unwrap()
            .into_body()
            .read_to_string()
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{name} missing"))
            .parse()
            .unwrap()
    };
    wait_for(Duration::from_secs(10), "dropped history rows", || {
        metric("floodwall_store_dropped_writes_total") > 0.0
    });
    assert!(metric("floodwall_bus_failed_messages_total{subscriber=\"history\"}") > 0.0);
    let failures = read_log().matches("disk full?").count();
    assert!((1..=3).contains(&failures), "{}", read_log());
    // Still detecting: the attack's updates keep coming.
    let updates = |t: &str| t.matches("\"attack_updated\"").count();
    let seen = updates(&events);
    wait_for(Duration::from_secs(10), "more updates", || {
        updates(&std::fs::read_to_string(dir.join("events.jsonl")).unwrap()) > seen
    });
    drop(flood);
    drop(daemon);
}

/// Kills the flood on the way out, panics included.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
