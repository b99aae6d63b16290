//! Cutting bots off from their C2, as the network sees it: `floodwall run` with `[hunt]
//! c2_feeds` (a plain list edited while the daemon runs) announcing C2 null routes to gobgpd
//! with the C2 community, refusing what the guard rails forbid, following edits; and the RPZ
//! zone it writes, loaded by Debian's Unbound (respip module) on loopback: listed domains and
//! their subdomains get NXDOMAIN, others resolve, and an edit reaches Unbound after a reload;
//! and a feed given as a URL, fetched from a loopback HTTP server and kept for when it is down.

mod support;

#[path = "../../bgp/tests/support/mod.rs"]
mod bgp_support;

use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bgp_support::{set, test_dir, wait_until, GobgpOptions, Gobgpd, DAEMON_AS};
use support::mitigation::{Daemon, Options, Peer};

/// The watcher polls every 5 s; room for a busy machine.
const FOLLOWS_EDIT: Duration = Duration::from_secs(20);

fn peer(address: std::net::SocketAddr) -> Peer {
    Peer {
        name: "gobgpd".into(),
        address,
        remote_as: DAEMON_AS,
    }
}

/// Replaces the feed's content the way editors do (a new file renamed over the old).
fn edit(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn route(prefix: &str) -> String {
    format!("{prefix} nh 192.0.2.1 comm 64512:666")
}

#[test]
fn c2_addresses_are_null_routed_with_their_community_within_the_guard_rails() {
    let dir = test_dir("hunt-c2-routes");
    let gobgpd = Gobgpd::start(&dir, GobgpOptions::default());
    let feed = dir.join("c2.txt");
    std::fs::write(
        &feed,
        "# test C2 list\n\
         198.51.100.7:443\n\
         198.51.100.7:8080\n\
         198.51.100.8\n\
         198.51.100.70      # inside never: refused\n\
         203.0.113.9        # our own customer: refused\n\
         10.0.0.0/8         # too broad: refused\n\
         cnc.evil.example\n",
    )
    .unwrap();
    let mut options = Options::new(peer(gobgpd.address()));
    options.mitigation = "never = [\"198.51.100.64/26\"]".into();
    options.hunt = format!(
        "c2_feeds = [\"{}\"]\nc2_null_route = true\nc2_community = \"64512:666\"",
        feed.display()
    );
    let mut daemon = Daemon::start(&dir, &options);
    let wait_rib = |expected: &std::collections::BTreeSet<String>| {
        wait_until(
            FOLLOWS_EDIT,
            &format!("gobgpd's RIB to be {expected:#?}"),
            || match gobgpd.rib("ipv4") {
                rib if &rib == expected => Ok(()),
                rib => Err(format!("{rib:#?}")),
            },
        )
    };
    // One route per address (two ports of .7 are one route), the C2 community only: these are
    // not attack blackholes (no 65535:666), and nothing the guard rails refuse.
    wait_rib(&set(&[
        &route("198.51.100.7/32"),
        &route("198.51.100.8/32"),
    ]));
    let log = daemon.log();
    for refused in [
        "C2 null route refused: 198.51.100.70/32 overlaps never-mitigate 198.51.100.64/26",
        "C2 null route refused: 203.0.113.9/32 overlaps the monitored network 203.0.113.0/24",
        "C2 null route refused: 10.0.0.0/8 is broader than /24",
    ] {
        assert!(log.contains(refused), "{refused} not in\n{log}");
    }
    assert!(
        log.contains("C2 feed c2.txt (plain list): 6 addresses, 1 domains, 0 lines rejected"),
        "{log}"
    );

    // An edit: .8 leaves the feed (withdrawn), .9 and a /24 come (announced).
    edit(&feed, "198.51.100.7:443\n198.51.100.9\n192.0.2.0/24\n");
    wait_rib(&set(&[
        &route("198.51.100.7/32"),
        &route("198.51.100.9/32"),
        &route("192.0.2.0/24"),
    ]));
    // A broken edit (a feed that turned into truncated JSON) keeps the routes.
    edit(&feed, "[\"198.51.100.7\", ");
    wait_until(FOLLOWS_EDIT, "the broken feed logged", || {
        if daemon.log().contains("C2 feed c2.txt is unusable") {
            Ok(())
        } else {
            Err(daemon.log())
        }
    });
    assert_eq!(gobgpd.rib("ipv4").len(), 3, "{}", daemon.log());

    // Shutdown without keep_on_shutdown withdraws them.
    daemon.sigterm();
    wait_rib(&set(&[]));
}

/// `unbound -d` on a loopback port of its own.
struct Unbound {
    child: Child,
    config: PathBuf,
    port: u16,
}

impl Unbound {
    /// `server` holds the lines of its `server:` clause beyond the common ones, `rest` other
    /// clauses.
    fn start(dir: &Path, name: &str, server: &str, rest: &str) -> Unbound {
        let ip = Ipv4Addr::LOCALHOST;
        let port = bgp_support::free_port(ip);
        let control = bgp_support::free_port(ip);
        let config = dir.join(format!("{name}.conf"));
        let text = format!(
            "server:\n  interface: 127.0.0.1\n  port: {port}\n  do-ip6: no\n  do-daemonize: no\n  \
             username: \"\"\n  chroot: \"\"\n  pidfile: \"\"\n  directory: \"{dir}\"\n  \
             use-syslog: no\n  logfile: \"\"\n  verbosity: 1\n  \
             access-control: 127.0.0.0/8 allow\n{server}\
             remote-control:\n  control-enable: yes\n  control-interface: 127.0.0.1\n  \
             control-port: {control}\n  control-use-cert: no\n{rest}",
            dir = dir.display(),
        );
        std::fs::write(&config, text).unwrap();
        let checkconf = bgp_support::require_tool("unbound-checkconf");
        bgp_support::run(checkconf.to_str().unwrap(), &[&config]);
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let child = Command::new(bgp_support::require_tool("unbound"))
            .arg("-d")
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting unbound");
        let unbound = Unbound {
            child,
            config,
            port,
        };
        wait_until(Duration::from_secs(10), "unbound to answer", || {
            unbound.query("good.example").map(|_| ())
        });
        unbound
    }

    /// `unbound-control reload`: reads its configuration and zone files again.
    fn reload(&self) {
        let control = bgp_support::require_tool("unbound-control");
        bgp_support::run(
            control.to_str().unwrap(),
            &["-c".as_ref(), self.config.as_os_str(), "reload".as_ref()],
        );
    }

    /// The answer's RCODE and number of answer records for an A query of `name`.
    fn query(&self, name: &str) -> Result<(u8, u16), String> {
        let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| e.to_string())?;
        // Header: id 0x1c2d, RD, one question; then QNAME, QTYPE A, QCLASS IN.
        let mut query = vec![0x1c, 0x2d, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            query.push(label.len() as u8);
            query.extend_from_slice(label.as_bytes());
        }
        query.extend_from_slice(&[0, 0, 1, 0, 1]);
        socket
            .send_to(&query, ("127.0.0.1", self.port))
            .map_err(|e| e.to_string())?;
        let mut answer = [0u8; 1500];
        let n = socket.recv(&mut answer).map_err(|e| e.to_string())?;
        if n < 12 || answer[..2] != query[..2] {
            return Err(format!("not an answer: {:?}", &answer[..n]));
        }
        Ok((answer[3] & 0x0f, u16::from_be_bytes([answer[6], answer[7]])))
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        // Our own child, by its PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const NOERROR: u8 = 0;
const NXDOMAIN: u8 = 3;

#[test]
fn unbound_answers_nxdomain_for_the_c2_domains_of_the_rpz_zone_and_follows_edits() {
    let dir = test_dir("hunt-c2-rpz");
    let feed = dir.join("threatfox.csv");
    let zone = dir.join("c2.rpz");
    // ThreatFox's CSV export: the domain row is a C2, the URL row a payload host (not listed).
    std::fs::write(
        &feed,
        "################################################################\n\
         # ThreatFox IOCs: CSV export                                   #\n\
         ################################################################\n\
         #\n\
         # \"first_seen_utc\",\"ioc_id\",\"ioc_value\",\"ioc_type\",\"threat_type\",\"fk_malware\",\"malware_alias\",\"malware_printable\",\"last_seen_utc\",\"confidence_level\",\"is_compromised\",\"reference\",\"tags\",\"anonymous\",\"reporter\"\n\
         \"2026-12-07 11:00:00\", \"1660003\", \"cnc.evil.example\", \"domain\", \"botnet_cc\", \"elf.mirai\", \"None\", \"Mirai\", \"\", \"100\", \"False\", \"None\", \"\", \"0\", \"abuse_ch\"\n\
         \"2026-12-07 11:00:01\", \"1660004\", \"http://other.example/x.exe\", \"url\", \"payload_delivery\", \"win.x\", \"None\", \"X\", \"\", \"100\", \"False\", \"None\", \"\", \"0\", \"abuse_ch\"\n",
    )
    .unwrap();
    let mut options = Options::new(peer("127.0.0.1:9".parse().unwrap()));
    options.without_bgp = true;
    options.hunt = format!(
        "c2_feeds = [\"{}\"]\nrpz_file = \"{}\"",
        feed.display(),
        zone.display()
    );
    let daemon = Daemon::start(&dir, &options);
    let text = std::fs::read_to_string(&zone).unwrap();
    assert!(
        text.contains("\ncnc.evil.example CNAME .\n*.cnc.evil.example CNAME .\n"),
        "{text}\n{}",
        daemon.log()
    );
    assert!(!text.contains("other.example"), "{text}");

    // The names resolve at an authority (a second Unbound with local data): the test reaches
    // no other server. The resolver forwards to it, with the zone as its RPZ, so an NXDOMAIN
    // can only come from the policy.
    let authority = Unbound::start(
        &dir,
        "authority",
        "  local-data: \"good.example. 300 IN A 192.0.2.10\"\n  \
         local-data: \"cnc.evil.example. 300 IN A 192.0.2.66\"\n  \
         local-data: \"www.cnc.evil.example. 300 IN A 192.0.2.67\"\n  \
         local-data: \"other.example. 300 IN A 192.0.2.11\"\n",
        "",
    );
    let unbound = Unbound::start(
        &dir,
        "resolver",
        "  module-config: \"respip validator iterator\"\n  do-not-query-localhost: no\n  \
         domain-insecure: \"example.\"\n",
        &format!(
            "forward-zone:\n  name: \"example.\"\n  forward-addr: 127.0.0.1@{}\n\
             rpz:\n  name: rpz.floodwall.\n  zonefile: \"{}\"\n  rpz-log: yes\n",
            authority.port,
            zone.display()
        ),
    );
    let expect = |name: &str, rcode: u8| {
        wait_until(
            Duration::from_secs(10),
            &format!("{name} → rcode {rcode}"),
            || match unbound.query(name) {
                Ok((r, answers)) if r == rcode && (rcode != NOERROR || answers > 0) => Ok(()),
                other => Err(format!("{other:?}")),
            },
        )
    };
    expect("cnc.evil.example", NXDOMAIN);
    expect("www.cnc.evil.example", NXDOMAIN);
    expect("good.example", NOERROR);
    expect("other.example", NOERROR);

    // The feed changes: cnc.evil.example leaves, other.example comes (as a plain list now).
    edit(&feed, "other.example\n");
    wait_until(FOLLOWS_EDIT, "the zone rewritten", || {
        let text = std::fs::read_to_string(&zone).unwrap_or_default();
        if text.contains("\nother.example CNAME .\n") && !text.contains("evil") {
            Ok(())
        } else {
            Err(format!("{text}\n{}", daemon.log()))
        }
    });
    unbound.reload();
    expect("other.example", NXDOMAIN);
    expect("cnc.evil.example", NOERROR);
    expect("www.cnc.evil.example", NOERROR);
    expect("good.example", NOERROR);
}

/// A feed given as a URL is fetched (here from Python's http.server on loopback, the only
/// server this test talks to), kept in the state directory, and the kept copy serves the next
/// start while the server is down.
#[test]
fn a_url_feed_is_fetched_cached_and_survives_its_server_going_away() {
    use floodwall_daemon::hunt::feeds::FeedWatcher;

    let dir = test_dir("hunt-c2-url");
    let served = dir.join("www");
    std::fs::create_dir_all(&served).unwrap();
    std::fs::write(
        served.join("ipblocklist.json"),
        r#"[{"ip_address": "198.51.100.7", "port": 443, "malware": "QakBot"}]"#,
    )
    .unwrap();
    let port = bgp_support::free_port(Ipv4Addr::LOCALHOST);
    let mut server = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1"])
        .arg(port.to_string())
        .current_dir(&served)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m http.server");
    let url = format!("http://127.0.0.1:{port}/ipblocklist.json");
    wait_until(Duration::from_secs(10), "http.server to answer", || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let state = dir.join("state");
    let hunt = floodwall_hunt::HuntConfig {
        c2_feeds: vec![url.clone()],
        ..floodwall_hunt::HuntConfig::default()
    };
    let watcher = FeedWatcher::start(&hunt, &state).unwrap();
    let (_, list) = watcher.current();
    let hit = list
        .lookup("198.51.100.7".parse().unwrap(), 443)
        .expect("the fetched entry");
    assert_eq!(hit.feed, url);
    assert_eq!(hit.malware.as_deref(), Some("QakBot"));
    watcher.stop();
    let cached: Vec<_> = std::fs::read_dir(state.join("c2-feeds"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        cached.len() == 1 && cached[0].ends_with("-ipblocklist.json"),
        "{cached:?}"
    );

    // Our own server, by its PID.
    server.kill().unwrap();
    server.wait().unwrap();
    let watcher = FeedWatcher::start(&hunt, &state).unwrap();
    assert!(watcher
        .current()
        .1
        .lookup("198.51.100.7".parse().unwrap(), 443)
        .is_some());
    watcher.stop();
}
