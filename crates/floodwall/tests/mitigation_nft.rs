//! The daemon drives nftables: `floodwall run` with `[nftables]` pointed into a network
//! namespace this test makes (`ip netns exec NS nft`), fed a live NTP flood. Floodwall's table
//! there holds the attack's blackhole and filter while it lasts and nothing after; rules an
//! earlier run left without a snapshot are taken out at start. Needs root.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::mitigation::{wait_for, FLOOD};
use support::{test_dir, wait_or_kill};

struct Netns(String);

impl Netns {
    fn new() -> Netns {
        assert!(
            rustix::process::geteuid().is_root(),
            "this test makes a network namespace: run it as root"
        );
        let name = format!("fwd{}", std::process::id());
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        assert!(Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap()
            .success());
        Netns(name)
    }

    /// Floodwall's table in the namespace as `nft list` prints it ("" when there is none).
    fn table(&self) -> String {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.0,
                "nft",
                "list",
                "table",
                "inet",
                "floodwall",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A daemon this test started, killed (by its PID) if the test fails before stopping it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(config: &std::path::Path, log: &std::path::Path) -> Running {
    Running(
        Command::new(env!("CARGO_BIN_EXE_floodwall"))
            .args(["run", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// The NTP flood, sent live to the collector on `port`.
fn send_flood(port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_floodwall"))
        .args(["simulate", "--scenario", FLOOD, "--send"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn holds_the_attack(table: &str) -> bool {
    table.contains("203.0.113.7")
        && table.contains("comment \"flowspec:203.0.113.7/32\"")
        && table.contains("udp sport 123")
}

#[test]
fn the_daemon_filters_in_nftables_while_the_attack_lasts_and_clears_what_a_lost_snapshot_left() {
    let dir = test_dir("mit-nft");
    let ns = Netns::new();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("floodwall.toml");
    std::fs::write(
        &config,
        format!(
            "networks = [\"203.0.113.0/24\"]\n[http]\nlisten = \"127.0.0.1:0\"\n[collector]\nlisten = [\"127.0.0.1:{port}\"]\n[events]\nfile = \"{}\"\n\
             [state]\ndir = \"{}\"\n[detection]\nquiet_period_s = 2\n[detection.carpet]\nenabled = false\n\
             [mitigation]\nmin_seconds = 1\nhold_down_seconds = 1\n[mitigation.blackhole]\nenabled = true\n\
             [mitigation.flowspec]\nenabled = true\n[nftables]\nenabled = true\ncommand = [\"ip\", \"netns\", \"exec\", \"{}\", \"nft\"]\n",
            dir.join("events.jsonl").display(),
            dir.join("state").display(),
            ns.0
        ),
    )
    .unwrap();
    let mut daemon = start(&config, &dir.join("daemon-1.log"));
    wait_for(Duration::from_secs(10), "Floodwall's table", || {
        ns.table().contains("chain prerouting")
    });
    let mut flood = send_flood(port);
    wait_for(
        Duration::from_secs(15),
        "the attack's rules in nftables",
        || holds_the_attack(&ns.table()),
    );
    let _ = flood.kill();
    let _ = flood.wait();
    wait_for(
        Duration::from_secs(15),
        "the rules to go after the attack",
        || {
            let table = ns.table();
            table.contains("chain prerouting") && !table.contains("203.0.113.7")
        },
    );

    // Rules in place, then the daemon dies and its snapshot is lost: the next start finds the
    // table's rules held by no one and takes them out.
    let mut flood = send_flood(port);
    wait_for(
        Duration::from_secs(15),
        "the attack's rules in nftables",
        || holds_the_attack(&ns.table()),
    );
    daemon.0.kill().unwrap();
    daemon.0.wait().unwrap();
    let _ = flood.kill();
    let _ = flood.wait();
    assert!(
        holds_the_attack(&ns.table()),
        "a killed daemon cannot have withdrawn them"
    );
    std::fs::remove_file(dir.join("state/mitigations.json")).unwrap();
    let log = dir.join("daemon-2.log");
    let mut daemon = start(&config, &log);
    wait_for(Duration::from_secs(10), "the stale rules to go", || {
        !ns.table().contains("203.0.113.7")
    });
    // The log line follows the withdrawal.
    wait_for(Duration::from_secs(10), "the log to say so", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("nftables: withdrew 2 rules an earlier run left")
    });

    // SIGTERM takes Floodwall's table away (no keep_on_shutdown).
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(&daemon.0),
        rustix::process::Signal::TERM,
    );
    wait_or_kill(&mut daemon.0, Duration::from_secs(10), "floodwall run");
    assert_eq!(ns.table(), "", "the table outlived the daemon");
}
