//! Real BGP daemons for the integration tests: gobgpd, BIRD 2 and FRR bgpd from Debian's
//! packages (installed by `scripts/test`), each on free loopback ports in its own directory,
//! passive, waiting for our speaker. Only the processes started here are ever killed, by PID.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use floodwall_bgp::{Family, PeerConfig, Speaker, SpeakerConfig};
use floodwall_mitigate::{Community, FlowAction, FlowFilter, Range, Rule, TcpFlags};

/// `nobody`/`nogroup` on Debian.
const NOBODY: u32 = 65534;
pub const DAEMON_AS: u32 = 65000;
pub const SPEAKER_AS: u32 = 65001;

/// A fresh directory for one test's files (world-readable: the daemons run unprivileged),
/// removed when the test passes and kept, with the daemon's log, when it fails.
pub struct TestDir(PathBuf);

impl std::ops::Deref for TestDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn test_dir(name: &str) -> TestDir {
    let dir = std::env::temp_dir().join(format!("floodwall-bgp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the test directory");
    chmod(&dir, 0o777);
    TestDir(dir)
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn write_file(path: &Path, text: &str) {
    std::fs::write(path, text).expect("writing a daemon's configuration");
    chmod(path, 0o644);
}

/// Panics with an install hint: a missing daemon is a broken environment, never a pass.
pub fn require_tool(tool: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/lib/frr", "/sbin", "/bin"] {
        let path = Path::new(dir).join(tool);
        if path.exists() {
            return path;
        }
    }
    panic!("{tool} is not installed: run scripts/test, which installs gobgpd, bird2 and frr");
}

/// A loopback address of its own for each daemon (127.b.c.n, b and c from the process id,
/// n counting up), which our sessions still reach from 127.0.0.1. A port alone is not enough:
/// a test that kills its daemon frees the port while its speaker keeps reconnecting, and a
/// daemon of another test that drew the same port would get that speaker's routes.
pub fn loopback() -> Ipv4Addr {
    static NEXT: AtomicU8 = AtomicU8::new(1);
    let pid = std::process::id();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    assert!(n < 255, "too many daemons in one test process");
    Ipv4Addr::new(127, 1 + (pid % 250) as u8, 1 + (pid / 250 % 250) as u8, n)
}

/// A port nobody listens on at `ip` right now (the daemon binds it a moment later).
pub fn free_port(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .expect("finding a free port")
        .port()
}

/// Polls `check` every 100 ms until it returns `Some`, panicking with `what` and the last
/// observation after `timeout`.
pub fn wait_until<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Runs a query tool with a time limit; returns stdout, panics on failure.
pub fn run<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(program: &str, args: &[S]) -> String {
    let output = run_output(program, args);
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn run_output<S: AsRef<std::ffi::OsStr>>(program: &str, args: &[S]) -> Output {
    // `timeout` bounds a query against a daemon that hangs.
    Command::new("timeout")
        .arg("10")
        .arg(require_tool(program))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"))
}

/// A daemon process we started; killed by its PID when dropped.
pub struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn spawn(name: &'static str, mut command: Command, log: PathBuf) -> Daemon {
        let out = std::fs::File::create(&log).expect("creating the daemon log");
        let err = out.try_clone().expect("cloning the log handle");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Daemon { name, child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process (SIGKILL: a crash, as far as BGP is concerned) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "{} (pid {}) did not exit after SIGKILL",
            self.name,
            self.pid()
        );
    }

    /// Panics with its log if the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            panic!("{} exited ({status}):\n{log}", self.name);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn speaker_config() -> SpeakerConfig {
    let mut config = SpeakerConfig::new(SPEAKER_AS, "192.0.2.9".parse().unwrap());
    // Quick reconnects keep the restart tests short.
    config.connect_retry_min = Duration::from_millis(200);
    config.connect_retry_max = Duration::from_secs(1);
    config
}

/// A speaker with one session, to `address`, once it is Established.
pub fn connected_speaker(name: &str, address: SocketAddr) -> Speaker {
    let speaker = Speaker::start(speaker_config(), vec![peer(name, address)]);
    assert!(
        speaker.wait_established(Duration::from_secs(10)),
        "{:?}",
        speaker.status()
    );
    speaker
}

/// What each daemon test announces: blackholes (IPv4, IPv6), FlowSpec discard, rate-limit,
/// TCP flags with fragments, and IPv6 FlowSpec.
pub fn standard_rules() -> Vec<Rule> {
    vec![
        blackhole("198.51.100.7/32"),
        blackhole("2001:db8::7/128"),
        ntp_discard("198.51.100.8/32"),
        dns_rate_limit("198.51.100.9/32"),
        syn_fragments("198.51.100.10/32"),
        udp6_discard("2001:db8::8/128"),
    ]
}

pub fn peer(name: &str, address: SocketAddr) -> PeerConfig {
    PeerConfig {
        name: name.into(),
        address,
        remote_as: DAEMON_AS,
        local_address: None,
        families: Family::ALL.to_vec(),
    }
}

// ---------------------------------------------------------------------------------------
// The rules every daemon test announces.

pub fn community(text: &str) -> Community {
    text.parse().unwrap()
}

/// RTBH with BLACKHOLE and a configured community. Next hops are not 127/8: gobgpd treats
/// those as withdrawals.
pub fn blackhole(prefix: &str) -> Rule {
    let next_hop = if prefix.contains(':') {
        "100::1"
    } else {
        "192.0.2.1"
    };
    Rule::Blackhole {
        prefix: prefix.parse().unwrap(),
        next_hop: next_hop.parse().unwrap(),
        communities: vec![Community::BLACKHOLE, community("65001:42")],
    }
}

/// dst /32 udp sport 123 len 400-65535 → discard (NTP reflection).
pub fn ntp_discard(destination: &str) -> Rule {
    let mut filter = FlowFilter::to(destination.parse().unwrap());
    filter.protocols = vec![17];
    filter.source_ports = vec![Range::single(123)];
    filter.packet_length = Some(Range {
        first: 400,
        last: 65535,
    });
    Rule::Filter {
        filter,
        action: FlowAction::Discard,
        communities: vec![],
    }
}

/// dst udp sport 53 → rate-limit 125000 B/s, with a community.
pub fn dns_rate_limit(destination: &str) -> Rule {
    let mut filter = FlowFilter::to(destination.parse().unwrap());
    filter.protocols = vec![17];
    filter.source_ports = vec![Range::single(53)];
    Rule::Filter {
        filter,
        action: FlowAction::RateLimit {
            bytes_per_second: 125000.0,
        },
        communities: vec![community("65001:7")],
    }
}

/// dst tcp dport 80,1000-2000, SYN set and ACK clear, fragments only → discard.
pub fn syn_fragments(destination: &str) -> Rule {
    let mut filter = FlowFilter::to(destination.parse().unwrap());
    filter.protocols = vec![6];
    filter.destination_ports = vec![
        Range::single(80),
        Range {
            first: 1000,
            last: 2000,
        },
    ];
    filter.tcp_flags = Some(TcpFlags {
        value: 0x02,
        mask: 0x12,
    });
    filter.fragments = true;
    Rule::Filter {
        filter,
        action: FlowAction::Discard,
        communities: vec![],
    }
}

/// What a customer's `source` sends anywhere, udp dport 53 → discard (outgoing attack).
pub fn outgoing_dns_discard(source: &str) -> Rule {
    let mut filter = FlowFilter::to("0.0.0.0/0".parse().unwrap());
    filter.source = Some(source.parse().unwrap());
    filter.protocols = vec![17];
    filter.destination_ports = vec![Range::single(53)];
    Rule::Filter {
        filter,
        action: FlowAction::Discard,
        communities: vec![],
    }
}

/// IPv6: dst /128 next-header udp → discard.
pub fn udp6_discard(destination: &str) -> Rule {
    let mut filter = FlowFilter::to(destination.parse().unwrap());
    filter.protocols = vec![17];
    Rule::Filter {
        filter,
        action: FlowAction::Discard,
        communities: vec![],
    }
}

pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------
// gobgpd

pub struct Gobgpd {
    pub dir: PathBuf,
    pub ip: Ipv4Addr,
    pub port: u16,
    api_port: u16,
    config: String,
    pub daemon: Daemon,
}

pub struct GobgpOptions {
    /// Each neighbour address (127.0.0.x) with the families it accepts.
    pub neighbors: Vec<(&'static str, Vec<Family>)>,
    /// Act as Graceful Restart helper, keeping a restarting speaker's routes.
    pub graceful_restart: bool,
}

impl Default for GobgpOptions {
    fn default() -> Self {
        GobgpOptions {
            neighbors: vec![("127.0.0.1", Family::ALL.to_vec())],
            graceful_restart: false,
        }
    }
}

impl Gobgpd {
    pub fn start(dir: &Path, options: GobgpOptions) -> Gobgpd {
        let ip = loopback();
        let port = free_port(ip);
        let api_port = free_port(ip);
        let mut config = format!(
            "[global.config]\n  as = {DAEMON_AS}\n  router-id = \"192.0.2.254\"\n  port = {port}\n  \
             local-address-list = [\"{ip}\"]\n"
        );
        for (address, families) in &options.neighbors {
            config += &format!(
                "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{address}\"\n    \
                 peer-as = {SPEAKER_AS}\n  [neighbors.transport.config]\n    passive-mode = true\n"
            );
            if options.graceful_restart {
                config += "  [neighbors.graceful-restart.config]\n    enabled = true\n    \
                           restart-time = 120\n";
            }
            for family in families {
                config += &format!(
                    "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      \
                     afi-safi-name = \"{family}\"\n"
                );
                if options.graceful_restart {
                    config += "    [neighbors.afi-safis.mp-graceful-restart.config]\n      \
                               enabled = true\n";
                }
            }
        }
        let daemon = Self::spawn(dir, &config, ip, api_port);
        let gobgpd = Gobgpd {
            dir: dir.to_path_buf(),
            ip,
            port,
            api_port,
            config,
            daemon,
        };
        gobgpd.wait_ready();
        gobgpd
    }

    fn spawn(dir: &Path, config: &str, ip: Ipv4Addr, api_port: u16) -> Daemon {
        let path = dir.join("gobgpd.toml");
        write_file(&path, config);
        let mut command = Command::new(require_tool("gobgpd"));
        command
            .arg("-f")
            .arg(&path)
            .args([
                "--api-hosts",
                &format!("{ip}:{api_port}"),
                "--pprof-disable",
            ])
            .current_dir(dir)
            .uid(NOBODY)
            .gid(NOBODY);
        Daemon::spawn("gobgpd", command, dir.join("gobgpd.log"))
    }

    fn wait_ready(&self) {
        wait_until(Duration::from_secs(10), "gobgpd's API", || {
            let output = run_output("gobgp", &self.cli(&["neighbor"]));
            if output.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&output.stderr).into_owned())
            }
        });
    }

    /// Kills gobgpd by PID and starts it again with the same configuration and ports.
    pub fn restart(&mut self) {
        self.daemon.kill();
        self.daemon = Self::spawn(&self.dir, &self.config, self.ip, self.api_port);
        self.wait_ready();
    }

    pub fn address(&self) -> SocketAddr {
        SocketAddr::from((self.ip, self.port))
    }

    fn cli(&self, args: &[&str]) -> Vec<String> {
        let mut all = vec![
            "-u".to_string(),
            self.ip.to_string(),
            "-p".to_string(),
            self.api_port.to_string(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        all
    }

    pub fn gobgp(&self, args: &[&str]) -> String {
        run("gobgp", &self.cli(args))
    }

    /// The session state of `neighbor` as gobgp reports it (`established`, `idle`, …).
    pub fn neighbor_state(&self, neighbor: &str) -> String {
        let json: serde_json::Value =
            serde_json::from_str(&self.gobgp(&["neighbor", neighbor, "-j"])).expect("gobgp JSON");
        // gobgp's API enum: 1 idle … 6 established.
        let names = [
            "unknown",
            "idle",
            "connect",
            "active",
            "opensent",
            "openconfirm",
            "established",
        ];
        let state = &json["state"]["session_state"];
        match state.as_u64().and_then(|n| names.get(n as usize)) {
            Some(name) => name.to_string(),
            None => state.to_string(),
        }
    }

    /// The global RIB of `family` as one line per route:
    /// `<nlri> nh <next hop> comm <a:b,...> ext <key=value,...;...> [stale]`.
    pub fn rib(&self, family: &str) -> BTreeSet<String> {
        let text = self.gobgp(&["global", "rib", "-a", family, "-j"]);
        if text.trim().is_empty() || text.trim() == "null" {
            return BTreeSet::new();
        }
        let json: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("gobgp rib JSON: {e}: {text}"));
        let mut routes = BTreeSet::new();
        for (nlri, paths) in json.as_object().expect("a map of NLRI to paths") {
            for path in paths.as_array().expect("paths") {
                let (mut next_hop, mut communities, mut extended) = (None, None, None);
                for attribute in path["attrs"].as_array().expect("attrs") {
                    match attribute["type"].as_u64() {
                        Some(3) => next_hop = attribute["nexthop"].as_str().map(str::to_string),
                        Some(14) if !family.contains("flowspec") => {
                            next_hop = attribute["nexthop"].as_str().map(str::to_string)
                        }
                        Some(8) => {
                            let list: Vec<String> = attribute["communities"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .map(|c| Community(c.as_u64().unwrap() as u32).to_string())
                                .collect();
                            communities = Some(list.join(","));
                        }
                        Some(16) => extended = Some(extended_communities(&attribute["value"])),
                        _ => {}
                    }
                }
                let mut line = nlri.clone();
                for (label, value) in [("nh", next_hop), ("comm", communities), ("ext", extended)] {
                    if let Some(value) = value {
                        line += &format!(" {label} {value}");
                    }
                }
                if path["stale"].as_bool() == Some(true) {
                    line += " stale";
                }
                routes.insert(line);
            }
        }
        routes
    }

    /// Waits until the RIB of `family` is exactly `expected`.
    pub fn wait_rib(&self, family: &str, expected: &BTreeSet<String>) {
        wait_until(
            Duration::from_secs(10),
            &format!("gobgpd's {family} RIB to be {expected:#?}"),
            || {
                let rib = self.rib(family);
                if &rib == expected {
                    Ok(())
                } else {
                    Err(format!("{rib:#?}"))
                }
            },
        );
    }
}

/// gobgp's extended communities as `key=value,…` with sorted keys, `;` between communities
/// (serde_json's key order depends on features other crates turn on).
fn extended_communities(value: &serde_json::Value) -> String {
    let mut all = Vec::new();
    for community in value.as_array().expect("a list of extended communities") {
        let mut pairs: Vec<String> = community
            .as_object()
            .expect("an extended community object")
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        pairs.sort();
        all.push(pairs.join(","));
    }
    all.join(";")
}

// ---------------------------------------------------------------------------------------
// BIRD 2

pub struct Bird {
    pub ip: Ipv4Addr,
    pub port: u16,
    socket: PathBuf,
    pub daemon: Daemon,
}

impl Bird {
    pub fn start(dir: &Path) -> Bird {
        let ip = loopback();
        let port = free_port(ip);
        let config = format!(
            "router id 192.0.2.253;\n\
             flow4 table flowtab4;\n\
             flow6 table flowtab6;\n\
             protocol bgp floodwall {{\n  \
               local {ip} port {port} as {DAEMON_AS};\n  \
               neighbor 127.0.0.1 as {SPEAKER_AS};\n  \
               passive on;\n  strict bind on;\n  multihop;\n  \
               ipv4 {{ import all; export none; }};\n  \
               ipv6 {{ import all; export none; }};\n  \
               flow4 {{ table flowtab4; import all; export none; }};\n  \
               flow6 {{ table flowtab6; import all; export none; }};\n\
             }}\n"
        );
        let path = dir.join("bird.conf");
        write_file(&path, &config);
        let socket = dir.join("bird.ctl");
        let mut command = Command::new(require_tool("bird"));
        command
            .arg("-f")
            .arg("-c")
            .arg(&path)
            .arg("-s")
            .arg(&socket)
            .current_dir(dir)
            .uid(NOBODY)
            .gid(NOBODY);
        let daemon = Daemon::spawn("bird", command, dir.join("bird.log"));
        let bird = Bird {
            ip,
            port,
            socket,
            daemon,
        };
        wait_until(Duration::from_secs(10), "BIRD's control socket", || {
            let output = run_output("birdc", &["-s", bird.socket_str(), "show", "status"]);
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            if output.status.success() && text.contains("Daemon is up") {
                Ok(())
            } else {
                Err(text)
            }
        });
        bird
    }

    fn socket_str(&self) -> &str {
        self.socket.to_str().expect("a UTF-8 path")
    }

    pub fn address(&self) -> SocketAddr {
        SocketAddr::from((self.ip, self.port))
    }

    pub fn birdc(&self, command: &str) -> String {
        let mut args = vec!["-s", self.socket_str()];
        args.extend(command.split_whitespace());
        run("birdc", &args)
    }

    /// Routes of `table`, one line each: the route's first line up to the `[protocol`
    /// bracket, then its communities and extended communities.
    pub fn routes(&self, table: &str) -> BTreeSet<String> {
        let text = self.birdc(&format!("show route all table {table}"));
        let mut routes = BTreeSet::new();
        let mut current: Option<String> = None;
        for line in text.lines() {
            if line.starts_with("BIRD ") || line.starts_with("Table ") || line.trim().is_empty() {
                continue;
            }
            if !line.starts_with(char::is_whitespace) {
                routes.extend(current.take());
                let head = line.split(" [").next().unwrap_or(line);
                current = Some(head.split_whitespace().collect::<Vec<_>>().join(" "));
            } else if let Some(route) = current.as_mut() {
                let line = line.trim();
                for attribute in ["BGP.next_hop:", "BGP.community:", "BGP.ext_community:"] {
                    if let Some(value) = line.strip_prefix(attribute) {
                        route.push_str(&format!(" | {attribute} {}", value.trim()));
                    }
                }
            }
        }
        routes.extend(current);
        routes
    }

    pub fn wait_routes(&self, table: &str, expected: &BTreeSet<String>) {
        wait_until(
            Duration::from_secs(10),
            &format!("BIRD's table {table} to be {expected:#?}"),
            || {
                let routes = self.routes(table);
                if &routes == expected {
                    Ok(())
                } else {
                    Err(format!("{routes:#?}"))
                }
            },
        );
    }
}

// ---------------------------------------------------------------------------------------
// FRR bgpd

pub struct Frr {
    pub ip: Ipv4Addr,
    pub port: u16,
    dir: PathBuf,
    pub daemon: Daemon,
}

impl Frr {
    pub fn start(dir: &Path) -> Frr {
        let ip = loopback();
        let port = free_port(ip);
        let n = "127.0.0.1";
        let mut config = format!(
            "router bgp {DAEMON_AS}\n bgp router-id 192.0.2.252\n no bgp ebgp-requires-policy\n \
             no bgp default ipv4-unicast\n neighbor {n} remote-as {SPEAKER_AS}\n \
             neighbor {n} passive\n neighbor {n} ebgp-multihop 2\n"
        );
        for family in [
            "ipv4 unicast",
            "ipv6 unicast",
            "ipv4 flowspec",
            "ipv6 flowspec",
        ] {
            config += &format!(
                " address-family {family}\n  neighbor {n} activate\n exit-address-family\n"
            );
        }
        let path = dir.join("bgpd.conf");
        write_file(&path, &config);
        // bgpd starts as root and drops to `frr`, which must be able to write its sockets.
        let status = Command::new("chown")
            .args(["frr:frr"])
            .arg(dir)
            .status()
            .expect("chown");
        assert!(status.success(), "chown frr:frr {}", dir.display());
        let mut command = Command::new(require_tool("bgpd"));
        command
            .arg("-f")
            .arg(&path)
            .arg("-i")
            .arg(dir.join("bgpd.pid"))
            .arg("--vty_socket")
            .arg(dir)
            .args([
                "-p",
                &port.to_string(),
                "-l",
                &ip.to_string(),
                "-Z",
                "-n",
                "-P",
                "0",
            ])
            .args(["-u", "frr", "-g", "frr"])
            .current_dir(dir);
        let daemon = Daemon::spawn("bgpd", command, dir.join("bgpd.log"));
        let frr = Frr {
            ip,
            port,
            dir: dir.to_path_buf(),
            daemon,
        };
        wait_until(Duration::from_secs(10), "FRR bgpd's vty", || {
            let output = run_output("vtysh", &frr.vtysh_args("show bgp summary"));
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            if output.status.success() && text.contains("127.0.0.1") {
                Ok(())
            } else {
                Err(format!("{text}{}", String::from_utf8_lossy(&output.stderr)))
            }
        });
        frr
    }

    pub fn address(&self) -> SocketAddr {
        SocketAddr::from((self.ip, self.port))
    }

    fn vtysh_args(&self, command: &str) -> Vec<String> {
        vec![
            "--vty_socket".into(),
            self.dir.to_str().expect("a UTF-8 path").into(),
            "-d".into(),
            "bgpd".into(),
            "-c".into(),
            command.into(),
        ]
    }

    pub fn vtysh(&self, command: &str) -> String {
        run("vtysh", &self.vtysh_args(command))
    }

    pub fn json(&self, command: &str) -> serde_json::Value {
        let text = self.vtysh(command);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("`{command}` JSON: {e}: {text}"))
    }

    /// `show bgp <afi> flowspec detail` as one line per entry, without its age and flags.
    pub fn flowspec(&self, afi: &str) -> BTreeSet<String> {
        let text = self.vtysh(&format!("show bgp {afi} flowspec detail"));
        let mut entries = BTreeSet::new();
        for entry in text.split("BGP flowspec entry:").skip(1) {
            let lines: Vec<&str> = entry
                .lines()
                .skip(1)
                .map(str::trim)
                .filter(|l| {
                    !l.is_empty()
                        && !l.starts_with("received for")
                        && !l.starts_with("Displayed")
                        && !l.starts_with("not installed")
                })
                .collect();
            entries.insert(lines.join(" | "));
        }
        entries
    }

    pub fn wait_flowspec(&self, afi: &str, expected: &BTreeSet<String>) {
        wait_until(
            Duration::from_secs(10),
            &format!("FRR's {afi} flowspec table to be {expected:#?}"),
            || {
                let entries = self.flowspec(afi);
                if &entries == expected {
                    Ok(())
                } else {
                    Err(format!("{entries:#?}"))
                }
            },
        );
    }

    /// Prefix → communities of the unicast table.
    pub fn unicast(&self, afi: &str) -> BTreeSet<String> {
        let json = self.json(&format!("show bgp {afi} unicast json"));
        let mut routes = BTreeSet::new();
        for prefix in json["routes"].as_object().expect("routes").keys() {
            let detail = self.json(&format!("show bgp {afi} unicast {prefix} json"));
            let path = &detail["paths"][0];
            routes.insert(format!(
                "{prefix} nh {} comm {}",
                path["nexthops"][0]["ip"].as_str().unwrap_or("?"),
                path["community"]["string"].as_str().unwrap_or("")
            ));
        }
        routes
    }

    pub fn wait_unicast(&self, afi: &str, expected: &BTreeSet<String>) {
        wait_until(
            Duration::from_secs(10),
            &format!("FRR's {afi} unicast table to be {expected:#?}"),
            || {
                let routes = self.unicast(afi);
                if &routes == expected {
                    Ok(())
                } else {
                    Err(format!("{routes:#?}"))
                }
            },
        );
    }
}
