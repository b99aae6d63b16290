//! Hunting in the running daemon: telemetry sent live on loopback, the `infected_host` and
//! `campaign` lines in the events file, attack lines carrying their campaign, the abuse report
//! and the campaigns read back by the CLI, and the campaigns kept across a restart.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::mitigation::{floodwall, wait_for};
use support::{test_dir, wait_or_kill};

struct Daemon {
    child: Option<Child>,
    config: std::path::PathBuf,
    dir: std::path::PathBuf,
    port: u16,
    starts: usize,
}

impl Daemon {
    fn start(dir: &Path) -> Daemon {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("floodwall.toml");
        std::fs::write(
            &config,
            format!(
                "networks = [\"198.18.0.0/15\"]\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n\
                 [collector]\nlisten = [\"127.0.0.1:{port}\"]\n\n\
                 [events]\nfile = \"{events}\"\n\n[state]\ndir = \"{state}\"\n",
                events = dir.join("events.jsonl").display(),
                state = dir.join("state").display(),
            ),
        )
        .unwrap();
        let mut d = Daemon {
            child: None,
            config,
            dir: dir.to_path_buf(),
            port,
            starts: 0,
        };
        d.restart();
        d
    }

    fn log_path(&self) -> std::path::PathBuf {
        self.dir.join(format!("daemon-{}.log", self.starts))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn restart(&mut self) {
        self.starts += 1;
        let child = floodwall()
            .args(["run", "--config"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.log_path()).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_for(Duration::from_secs(10), "the daemon to listen", || {
            self.log().contains("listening on")
        });
    }

    fn sigterm(&mut self) {
        let mut child = self.child.take().unwrap();
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&child),
            rustix::process::Signal::TERM,
        );
        wait_or_kill(&mut child, Duration::from_secs(15), "floodwall run");
        assert!(child.wait().unwrap().success(), "{}", self.log());
    }

    /// Plays a built-in scenario to the collector, `speed` times faster, to its end.
    fn play(&self, scenario: &str, speed: u32) {
        let mut sender = floodwall()
            .args(["simulate", "--scenario", scenario, "--speed"])
            .arg(speed.to_string())
            .arg("--send")
            .arg(format!("127.0.0.1:{}", self.port))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_or_kill(&mut sender, Duration::from_secs(120), "floodwall simulate");
    }

    fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = floodwall()
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn infected(events: &[Value]) -> Vec<(String, Vec<String>)> {
    events
        .iter()
        .filter(|e| e["event"] == "infected_host")
        .map(|e| {
            let reasons = e["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["kind"].as_str().unwrap().to_string())
                .collect();
            (e["host"].as_str().unwrap().to_string(), reasons)
        })
        .collect()
}

#[test]
fn the_daemon_lists_scanners_forms_campaigns_reports_them_and_keeps_them() {
    let dir = test_dir("hunt-daemon");
    let mut daemon = Daemon::start(&dir);

    // Two infected customers scanning (the 160 probes/s one only from sparse samples), the
    // fast one also flooding outwards.
    daemon.play("mirai-scan", 4);
    wait_for(Duration::from_secs(20), "both scanners listed", || {
        let listed = infected(&daemon.events());
        listed
            .iter()
            .any(|(h, r)| h.starts_with("198.18.1.") && r.contains(&"scanning".to_string()))
            && listed.iter().any(|(h, r)| {
                h.starts_with("198.18.3.") && r.contains(&"outgoing_attack".to_string())
            })
    });
    let listed = infected(&daemon.events());
    // No one else: the 400 busy background hosts are innocent.
    assert!(
        listed
            .iter()
            .all(|(h, _)| h.starts_with("198.18.1.") || h.starts_with("198.18.3.")),
        "{listed:?}"
    );

    // One botnet carpet-bombing four /24s: its attacks share their sources.
    daemon.play("carpet-22", 4);
    wait_for(Duration::from_secs(30), "a campaign line", || {
        daemon.events().iter().any(|e| e["event"] == "campaign")
    });
    let events = daemon.events();
    let campaign = events
        .iter()
        .find(|e| e["event"] == "campaign")
        .unwrap()
        .clone();
    let id = campaign["campaign"].as_str().unwrap().to_string();
    assert_eq!(campaign["change"], "formed", "{campaign}");
    // Attack lines of its attacks carry it.
    let member = campaign["attack_id"].as_str().unwrap();
    wait_for(
        Duration::from_secs(30),
        "a later attack line with the campaign",
        || {
            daemon
                .events()
                .iter()
                .any(|e| e["attack_id"] == member && e["campaign"] == id.as_str())
        },
    );
    daemon.sigterm();

    // The abuse report, read from the history with the daemon stopped.
    let csv = daemon.cli(&["report", "infected", "--since", "7d", "--format", "csv"]);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "timestamp,ip,port,hostgroup,prefix,tag,infection,confidence,first_seen,dst_ip,dst_port,count,attack_id,evidence"
    );
    let rows: Vec<&str> = lines.collect();
    assert!(
        rows.iter()
            .any(|r| r.contains(",scanning,") && r.contains("198.18.1.")),
        "{csv}"
    );
    assert!(
        rows.iter().any(|r| r.contains(",outgoing_attack,")),
        "{csv}"
    );
    let json: Value = serde_json::from_str(
        &daemon.cli(&["report", "infected", "--since", "7d", "--format", "json"]),
    )
    .unwrap();
    assert_eq!(json.as_array().unwrap().len(), rows.len(), "{json}");
    let none = daemon.cli(&[
        "report",
        "infected",
        "--since",
        "7d",
        "--hostgroup",
        "nobody",
    ]);
    assert_eq!(none.lines().count(), 1, "{none}");

    // The campaigns, from the state directory.
    let saved: Value = serde_json::from_str(&daemon.cli(&["campaigns", "--json"])).unwrap();
    let saved = saved.as_array().unwrap();
    assert!(
        saved.iter().any(|c| c["campaign"] == id.as_str()
            && c["attack_count"].as_u64().unwrap() >= 2
            && c["sources"].as_u64().unwrap() > 0),
        "{saved:?}"
    );
    let table = daemon.cli(&["campaigns"]);
    assert!(table.contains(&id), "{table}");

    // A restart resumes them.
    daemon.restart();
    wait_for(Duration::from_secs(10), "the campaigns resumed", || {
        daemon.log().contains("resumed 1 campaigns")
    });
    daemon.sigterm();
}

#[test]
fn a_damaged_campaigns_file_is_moved_aside_and_the_daemon_starts() {
    let dir = test_dir("hunt-damaged");
    std::fs::create_dir_all(dir.join("state")).unwrap();
    std::fs::write(dir.join("state/campaigns.bin"), b"FWCAMP1\nnot really").unwrap();
    let mut daemon = Daemon::start(&dir);
    assert!(
        daemon.log().contains("starting without saved campaigns"),
        "{}",
        daemon.log()
    );
    assert!(dir.join("state/campaigns.bin.unreadable").exists());
    daemon.sigterm();
    // The CLI says what is wrong with a file it cannot read, without a panic.
    std::fs::write(dir.join("state/campaigns.bin"), b"garbage").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_floodwall"))
        .args(["campaigns", "--state-dir"])
        .arg(dir.join("state"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("campaigns.bin"), "{err}");
}
