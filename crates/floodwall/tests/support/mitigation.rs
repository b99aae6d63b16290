//! The daemon with a real BGP router: `floodwall run` with a configuration written for the test
//! (blackhole and FlowSpec on, short timers, one `[[bgp.peers]]`), and the live NTP flood that
//! `floodwall simulate --send` feeds its collector. Shared by the mitigation tests, whichever
//! router they peer with.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::wait_or_kill;

/// The host the flood hits.
pub const VICTIM: &str = "203.0.113.7/32";
/// The daemon's AS (the bgp crate's harnesses expect their speaker as AS 65001 too).
pub const LOCAL_AS: u32 = 65001;
pub const FLOOD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/scenarios/ntp-flood-60s.toml"
);

pub fn floodwall() -> Command {
    Command::new(env!("CARGO_BIN_EXE_floodwall"))
}

/// The router the daemon peers with: `[[bgp.peers]]`.
#[derive(Debug, Clone)]
pub struct Peer {
    pub name: String,
    pub address: SocketAddr,
    pub remote_as: u32,
}

/// What varies between the tests' daemon configurations.
#[derive(Debug, Clone)]
pub struct Options {
    pub peer: Peer,
    pub restart_confirm_seconds: u64,
    /// Extra lines of `[mitigation]`.
    pub mitigation: String,
    /// Extra lines of `[bgp]`.
    pub bgp: String,
    /// No `[bgp]` at all: blackhole and FlowSpec enabled with no mitigator.
    pub without_bgp: bool,
    /// Extra lines of `[http]` (which listens on a free port of 127.0.0.1).
    pub http: String,
    /// Lines of `[hunt]`, if any.
    pub hunt: String,
    /// `networks`; default the flood's 203.0.113.0/24.
    pub networks: Vec<String>,
    /// Carpet detection (`[detection.carpet]`); default off.
    pub carpet: bool,
}

impl Options {
    pub fn new(peer: Peer) -> Options {
        Options {
            peer,
            restart_confirm_seconds: 15,
            mitigation: String::new(),
            bgp: String::new(),
            without_bgp: false,
            http: String::new(),
            hunt: String::new(),
            networks: vec!["203.0.113.0/24".into()],
            carpet: false,
        }
    }

    fn config(&self, dir: &Path, port: u16) -> String {
        let text = format!(
            "networks = {networks:?}\n\n[http]\nlisten = \"127.0.0.1:0\"\n{http}\n[collector]\nlisten = [\"127.0.0.1:{port}\"]\n\n\
             [events]\nfile = \"{events}\"\n\n[state]\ndir = \"{state}\"\n\n\
             [detection]\nquiet_period_s = 2\n\n[detection.carpet]\nenabled = {carpet}\n\n\
             [mitigation]\nmin_seconds = 1\nhold_down_seconds = 2\nrestart_confirm_seconds = {confirm}\n{mitigation}\n\n\
             [mitigation.blackhole]\nenabled = true\ncommunities = [\"65535:666\", \"65001:666\"]\n\n\
             [mitigation.flowspec]\nenabled = true\n\n\
             [hunt]\n{hunt}\n\n\
             [bgp]\nlocal_as = {LOCAL_AS}\nrouter_id = \"192.0.2.253\"\n{bgp}\n\n\
             [[bgp.peers]]\nname = \"{name}\"\naddress = \"{address}\"\nremote_as = {remote_as}\n",
            events = dir.join("events.jsonl").display(),
            state = dir.join("state").display(),
            confirm = self.restart_confirm_seconds,
            mitigation = self.mitigation,
            bgp = self.bgp,
            name = self.peer.name,
            address = self.peer.address,
            remote_as = self.peer.remote_as,
            http = self.http,
            hunt = self.hunt,
            networks = self.networks,
            carpet = self.carpet,
        );
        match (self.without_bgp, text.find("\n[bgp]")) {
            (true, Some(at)) => text[..at].to_string(),
            _ => text,
        }
    }
}

/// `floodwall run` with a configuration written for the test.
pub struct Daemon {
    child: Option<Child>,
    dir: PathBuf,
    pub config: PathBuf,
    pub port: u16,
    starts: usize,
}

impl Daemon {
    pub fn start(dir: &Path, options: &Options) -> Daemon {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("floodwall.toml");
        std::fs::write(&config, options.config(dir, port)).unwrap();
        let mut daemon = Daemon {
            child: None,
            dir: dir.to_path_buf(),
            config,
            port,
            starts: 0,
        };
        daemon.restart();
        daemon
    }

    fn log_path(&self, n: usize) -> PathBuf {
        self.dir.join(format!("daemon-{n}.log"))
    }

    /// Starts it (again) with the same configuration and state.
    pub fn restart(&mut self) {
        self.starts += 1;
        let log = std::fs::File::create(self.log_path(self.starts)).unwrap();
        let child = floodwall()
            .args(["run", "--config"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting floodwall run");
        self.child = Some(child);
        wait_for(Duration::from_secs(10), "the daemon to listen", || {
            self.log().contains("listening on")
        });
    }

    /// Where the current run's HTTP API answers, as its log says.
    pub fn http_url(&self) -> String {
        wait_for(
            Duration::from_secs(10),
            "the API's address in the log",
            || floodwall_daemon::serve::url_in_log(&self.log()).is_some(),
        );
        floodwall_daemon::serve::url_in_log(&self.log())
            .unwrap()
            .to_string()
    }

    /// The log of the current run.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path(self.starts)).unwrap_or_default()
    }

    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    pub fn sigterm(&mut self) {
        let mut child = self.child.take().expect("running");
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&child),
            rustix::process::Signal::TERM,
        );
        wait_or_kill(
            &mut child,
            Duration::from_secs(10),
            "floodwall run after SIGTERM",
        );
        assert!(child.wait().unwrap().success(), "{}", self.log());
    }

    pub fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// `state/mitigations.json`, the planner's snapshot.
    pub fn state(&self) -> Value {
        let text = std::fs::read_to_string(self.dir.join("state/mitigations.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    pub fn mitigations(&self, args: &[&str]) -> std::process::Output {
        floodwall()
            .arg("mitigations")
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .unwrap()
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

/// The NTP flood, sent live to the daemon's collector; killing it ends the attack.
pub struct Flood(Child);

impl Flood {
    pub fn start(daemon: &Daemon) -> Flood {
        Flood(
            floodwall()
                .args(["simulate", "--scenario", FLOOD, "--send"])
                .arg(format!("127.0.0.1:{}", daemon.port))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting floodwall simulate"),
        )
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        // Our own sender, by its PID.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A built-in scenario (`floodwall simulate --list`) sent live to the daemon's collector,
/// `speed` times faster; dropping it stops the sender.
pub struct Simulation(Child);

impl Simulation {
    pub fn start(daemon: &Daemon, scenario: &str, speed: f64) -> Simulation {
        Simulation(
            floodwall()
                .args(["simulate", "--scenario", scenario, "--speed"])
                .arg(speed.to_string())
                .arg("--send")
                .arg(format!("127.0.0.1:{}", daemon.port))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting floodwall simulate"),
        )
    }

    /// Waits for the whole scenario to be sent.
    pub fn finish(mut self, timeout: Duration) {
        wait_or_kill(&mut self.0, timeout, "floodwall simulate --send");
        assert!(self.0.wait().unwrap().success());
    }
}

impl Drop for Simulation {
    fn drop(&mut self) {
        // Our own sender, by its PID.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn wait_for(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
