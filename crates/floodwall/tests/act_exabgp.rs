//! The ExaBGP adapter against a real ExaBGP 4.2 peering with a real gobgpd on loopback: the
//! adapter writes into ExaBGP's named pipe, gobgpd's RIB shows what ExaBGP announced.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use floodwall_daemon::act::exabgp::{ExaBgp, ExaBgpConfig};
use floodwall_daemon::act::Mitigator;
use floodwall_mitigate::{Community, FlowAction, FlowFilter, Mitigation, Range, Rule};

const NOBODY: u32 = 65534;
const NOGROUP: u32 = 65534;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn mkfifo(path: &Path) {
    let mode = rustix::fs::Mode::from_raw_mode(0o666);
    rustix::fs::mkfifoat(rustix::fs::CWD, path, mode)
        .unwrap_or_else(|e| panic!("mkfifo {path:?}: {e}"));
    // The umask may have narrowed it; ExaBGP runs as nobody.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).unwrap();
}

/// gobgpd and ExaBGP, killed (only these two PIDs) and their directory removed on drop.
struct Peers {
    dir: PathBuf,
    api: String,
    pipe: PathBuf,
    children: Vec<Child>,
}

impl Peers {
    fn start() -> Peers {
        Peers::start_named("")
    }

    /// `name` keeps the directory and pipe apart from other tests' in the same process.
    fn start_named(name: &str) -> Peers {
        assert!(
            rustix::process::geteuid().is_root(),
            "the ExaBGP test runs exabgp and gobgpd as nobody: run it as root"
        );
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("floodwall-exabgp{name}-{pid}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("run")).unwrap();
        for d in [&dir, &dir.join("run")] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        // A pipe name of our own, under ExaBGP's `--root`: the system's /run/exabgp is left
        // alone (ExaBGP takes the first directory holding both FIFOs).
        let pipename = format!("fwtest{name}{pid}");
        let pipe = dir.join("run").join(format!("{pipename}.in"));
        mkfifo(&pipe);
        mkfifo(&dir.join("run").join(format!("{pipename}.out")));

        let bgp_port = free_port();
        let api_port = free_port();
        let families = ["ipv4-unicast", "ipv6-unicast", "ipv4-flowspec", "ipv6-flowspec"]
            .map(|f| format!("  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{f}\"\n"))
            .concat();
        std::fs::write(
            dir.join("gobgpd.toml"),
            format!(
                "[global.config]\n  as = 65000\n  router-id = \"127.0.0.1\"\n  port = {bgp_port}\n  \
                 local-address-list = [\"127.0.0.1\"]\n[[neighbors]]\n  [neighbors.config]\n    \
                 neighbor-address = \"127.0.0.1\"\n    peer-as = 65001\n  [neighbors.transport.config]\n    \
                 passive-mode = true\n{families}"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("exabgp.conf"),
            format!(
                "neighbor 127.0.0.1 {{\n  router-id 192.0.2.254;\n  local-address 127.0.0.1;\n  \
                 local-as 65001;\n  peer-as 65000;\n  connect {bgp_port};\n  family {{\n    \
                 ipv4 unicast;\n    ipv6 unicast;\n    ipv4 flow;\n    ipv6 flow;\n  }}\n}}\n"
            ),
        )
        .unwrap();
        let log = |name: &str| std::fs::File::create(dir.join(name)).unwrap();
        let mut children = Vec::new();
        children.push(
            Command::new("gobgpd")
                .args(["-f", "gobgpd.toml", "--api-hosts"])
                .arg(format!("127.0.0.1:{api_port}"))
                .arg("--pprof-disable")
                .current_dir(&dir)
                .uid(NOBODY)
                .gid(NOGROUP)
                .stdout(log("gobgpd.log"))
                .stderr(log("gobgpd.err"))
                .spawn()
                .expect("gobgpd (apt-get install gobgpd)"),
        );
        children.push(
            Command::new("exabgp")
                .arg("--root")
                .arg(&dir)
                .arg(dir.join("exabgp.conf"))
                .env("exabgp.daemon.user", "nobody")
                .env("exabgp.api.pipename", &pipename)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(log("exabgp.log"))
                .stderr(log("exabgp.err"))
                .spawn()
                .expect("exabgp (apt-get install exabgp)"),
        );
        Peers {
            dir,
            api: api_port.to_string(),
            pipe,
            children,
        }
    }

    /// `gobgp global rib [-a family] -j`, as JSON.
    fn rib(&self, family: &str) -> serde_json::Map<String, serde_json::Value> {
        let out = Command::new("gobgp")
            .args([
                "-u",
                "127.0.0.1",
                "-p",
                &self.api,
                "global",
                "rib",
                "-a",
                family,
                "-j",
            ])
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default()
    }

    /// Waits until every family's RIB has the wanted number of routes.
    fn wait_for(
        &self,
        wanted: &[(&str, usize)],
    ) -> Vec<serde_json::Map<String, serde_json::Value>> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ribs: Vec<_> = wanted.iter().map(|(f, _)| self.rib(f)).collect();
            if ribs.iter().zip(wanted).all(|(rib, (_, n))| rib.len() == *n) {
                return ribs;
            }
            assert!(
                Instant::now() < deadline,
                "gobgpd RIBs {ribs:?}, wanted {wanted:?}; ExaBGP log:\n{}",
                std::fs::read_to_string(self.dir.join("exabgp.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_child(child),
                rustix::process::Signal::TERM,
            );
        }
        for child in &mut self.children {
            let deadline = Instant::now() + Duration::from_secs(5);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn mitigation(id: &str, rule: Rule) -> Mitigation {
    Mitigation {
        id: id.to_string(),
        attack_id: None,
        hostgroup: "default".into(),
        rule,
        coverage: None,
        collateral: None,
        since: 0,
        dry_run: false,
    }
}

fn community(text: &str) -> Community {
    text.parse().unwrap()
}

#[test]
fn exabgp_announces_blackholes_and_flowspec_to_a_real_peer_and_withdraws_them() {
    let peers = Peers::start();
    let mut exa = ExaBgp::new(&ExaBgpConfig {
        enabled: true,
        pipe: peers.pipe.clone(),
        ..ExaBgpConfig::default()
    })
    .unwrap();

    let rtbh = mitigation(
        "a1-blackhole",
        Rule::Blackhole {
            prefix: "203.0.113.10/32".parse().unwrap(),
            next_hop: "192.0.2.1".parse().unwrap(),
            communities: vec![Community::BLACKHOLE, community("65001:666")],
        },
    );
    let mut ntp = FlowFilter::to("203.0.113.20/32".parse().unwrap());
    ntp.protocols = vec![17];
    ntp.source_ports = vec![Range::single(123)];
    ntp.packet_length = Some(Range {
        first: 400,
        last: 65535,
    });
    let ntp = mitigation(
        "a2-flowspec",
        Rule::Filter {
            filter: ntp,
            action: FlowAction::Discard,
            communities: vec![],
        },
    );
    let mut dns = FlowFilter::to("203.0.113.21/32".parse().unwrap());
    dns.protocols = vec![17];
    dns.source_ports = vec![Range::single(53)];
    let dns = mitigation(
        "a3-flowspec",
        Rule::Filter {
            filter: dns,
            action: FlowAction::RateLimit {
                bytes_per_second: 125_000.0,
            },
            communities: vec![community("65001:666")],
        },
    );
    let mut v6 = FlowFilter::to("2001:db8::7/128".parse().unwrap());
    v6.protocols = vec![17];
    v6.destination_ports = vec![Range {
        first: 1000,
        last: 2000,
    }];
    let v6 = mitigation(
        "a4-flowspec",
        Rule::Filter {
            filter: v6,
            action: FlowAction::Redirect {
                asn: 65001,
                value: 100,
            },
            communities: vec![],
        },
    );

    let rtbh6 = mitigation(
        "a7-blackhole",
        Rule::Blackhole {
            prefix: "2001:db8:1::/48".parse().unwrap(),
            next_hop: "2001:db8::1".parse().unwrap(),
            communities: vec![Community::BLACKHOLE],
        },
    );
    // An outgoing attack's filter: any destination, one customer source.
    let mut outgoing = FlowFilter::to("0.0.0.0/0".parse().unwrap());
    outgoing.source = Some("198.51.100.9/32".parse().unwrap());
    outgoing.protocols = vec![6];
    let outgoing = mitigation(
        "a5-flowspec",
        Rule::Filter {
            filter: outgoing,
            action: FlowAction::Discard,
            communities: vec![],
        },
    );

    // ExaBGP's cli process opens the pipe a moment after start: until then nobody reads it and
    // the announce fails at once (it never blocks).
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(e) = exa.announce(&rtbh) {
        assert!(
            Instant::now() < deadline,
            "ExaBGP never read its pipe: {e:#}"
        );
        assert!(e.to_string().contains("nobody reads"), "{e:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
    for m in [&ntp, &dns, &v6, &outgoing, &rtbh6] {
        exa.announce(m).unwrap();
    }
    let ribs = peers.wait_for(&[
        ("ipv4", 1),
        ("ipv4-flowspec", 3),
        ("ipv6-flowspec", 1),
        ("ipv6", 1),
    ]);
    let route6 = ribs[3]["2001:db8:1::/48"].to_string();
    assert!(route6.contains("\"nexthop\":\"2001:db8::1\""), "{route6}");
    let route = &ribs[0]["203.0.113.10/32"][0];
    let attrs = route["attrs"].as_array().unwrap();
    let communities: Vec<u64> = attrs
        .iter()
        .find(|a| a["type"] == 8)
        .unwrap()
        .get("communities")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    assert_eq!(
        communities,
        vec![
            u64::from(Community::BLACKHOLE.0),
            u64::from(community("65001:666").0)
        ]
    );
    assert!(attrs.iter().any(|a| a["nexthop"] == "192.0.2.1"), "{route}");
    let flows = ribs[1].keys().cloned().collect::<Vec<_>>().join(" | ");
    assert!(
        flows.contains("[destination: 203.0.113.20/32][protocol: ==udp][source-port: ==123][packet-length: >=400&<=65535]"),
        "{flows}"
    );
    assert!(flows.contains("[destination: 203.0.113.21/32]"), "{flows}");
    assert!(
        flows.contains("[source: 198.51.100.9/32][protocol: ==tcp]"),
        "{flows}"
    );
    let dns_route = ribs[1]
        .iter()
        .find(|(k, _)| k.contains("203.0.113.21"))
        .unwrap()
        .1
        .to_string();
    assert!(dns_route.contains("\"rate\":125000"), "{dns_route}");
    let v6_route = ribs[2].iter().next().unwrap();
    assert!(v6_route.0.contains("2001:db8::7/128"), "{}", v6_route.0);
    assert!(v6_route.1.to_string().contains("65001"), "{}", v6_route.1);

    // An IPv4 filter with an IPv6 source is refused before ExaBGP sees it.
    let mut mixed = FlowFilter::to("203.0.113.30/32".parse().unwrap());
    mixed.source = Some("2001:db8::/32".parse().unwrap());
    let mixed = mitigation(
        "a6-flowspec",
        Rule::Filter {
            filter: mixed,
            action: FlowAction::Discard,
            communities: vec![],
        },
    );
    let error = exa.announce(&mixed).unwrap_err();
    assert!(
        error.to_string().contains("different families"),
        "{error:#}"
    );
    // What ExaBGP itself refuses is an error, and counted.
    let error = exa
        .command("announce route 203.0.113.40/33 next-hop 192.0.2.1")
        .unwrap_err();
    assert!(error.to_string().contains("answered `error`"), "{error:#}");
    assert_eq!(exa.stats().rejected, 1);

    // Announcing again is a no-op: nothing is written.
    let sent = exa.stats().sent;
    exa.announce(&ntp).unwrap();
    assert_eq!(exa.stats().sent, sent);

    exa.withdraw(&rtbh).unwrap();
    exa.withdraw(&ntp).unwrap();
    peers.wait_for(&[
        ("ipv4", 0),
        ("ipv4-flowspec", 2),
        ("ipv6-flowspec", 1),
        ("ipv6", 1),
    ]);
    // Withdrawing twice is harmless; shutdown withdraws what is left.
    exa.withdraw(&ntp).unwrap();
    exa.shutdown(false).unwrap();
    peers.wait_for(&[
        ("ipv4", 0),
        ("ipv4-flowspec", 0),
        ("ipv6-flowspec", 0),
        ("ipv6", 0),
    ]);
    let stats = exa.stats();
    assert_eq!((stats.rejected, stats.unacknowledged), (1, 0), "{stats:?}");
}

#[test]
fn a_pipe_nobody_reads_fails_at_once_and_is_counted() {
    let dir =
        std::env::temp_dir().join(format!("floodwall-exabgp-noreader-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let pipe = dir.join("exabgp.in");
    mkfifo(&pipe);
    let config = ExaBgpConfig {
        enabled: true,
        pipe: pipe.clone(),
        ..ExaBgpConfig::default()
    };
    let mut exa = ExaBgp::new(&config).unwrap();
    let rule = mitigation(
        "x-blackhole",
        Rule::Blackhole {
            prefix: "203.0.113.10/32".parse().unwrap(),
            next_hop: "192.0.2.1".parse().unwrap(),
            communities: vec![Community::BLACKHOLE],
        },
    );
    let started = Instant::now();
    let error = exa.announce(&rule).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(error.to_string().contains("nobody reads"), "{error:#}");
    assert_eq!(exa.stats().undelivered, 1);
    let missing = ExaBgpConfig {
        pipe: dir.join("missing.in"),
        ..config
    };
    assert!(ExaBgp::new(&missing).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The C2 null routes ride on the ExaBGP adapter: announced with the C2 community (no
/// BLACKHOLE), IPv4 and IPv6, following the feed file, withdrawn at shutdown. ExaBGP reads its
/// pipe only once it is up: the first announcements fail and must be tried again.
#[test]
fn exabgp_carries_the_c2_null_routes_of_a_feed_and_follows_it() {
    use floodwall_daemon::act::c2_routes::{C2Carrier, C2Guard, C2Source};
    use floodwall_daemon::hunt::feeds::FeedWatcher;

    let peers = Peers::start_named("c2");
    let feed = peers.dir.join("c2.txt");
    std::fs::write(&feed, "198.51.100.7:443\n2001:db8:c2::1\n203.0.113.9\n").unwrap();
    let hunt = floodwall_hunt::HuntConfig {
        c2_feeds: vec![feed.display().to_string()],
        c2_null_route: true,
        ..floodwall_hunt::HuntConfig::default()
    };
    let watcher = FeedWatcher::start(&hunt, &peers.dir).unwrap();
    let guard = C2Guard {
        never: vec![],
        networks: vec!["203.0.113.0/24".parse().unwrap()],
        max_routes: 100,
        community: community("64512:666"),
        next_hop_v4: "192.0.2.1".parse().unwrap(),
        next_hop_v6: "100::1".parse().unwrap(),
        dry_run: false,
    };
    let exa = ExaBgp::new(&ExaBgpConfig {
        enabled: true,
        pipe: peers.pipe.clone(),
        ..ExaBgpConfig::default()
    })
    .unwrap();
    let mut carrier = C2Carrier::new(Box::new(exa), C2Source::new(watcher.handle(), guard));
    // What the worker does every 100 ms: look at its mitigator.
    let settle = |carrier: &mut C2Carrier, wanted: &[(&str, usize)]| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            carrier.delivered();
            let ribs: Vec<_> = wanted.iter().map(|(f, _)| peers.rib(f)).collect();
            if ribs.iter().zip(wanted).all(|(rib, (_, n))| rib.len() == *n) {
                return ribs;
            }
            assert!(Instant::now() < deadline, "{ribs:?}, wanted {wanted:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let ribs = settle(&mut carrier, &[("ipv4", 1), ("ipv6", 1)]);
    let v4 = ribs[0]["198.51.100.7/32"].to_string();
    // 64512:666 is 0xFC00029A; RFC 7999's 65535:666 (0xFFFF029A) must not be there.
    assert!(v4.contains(&0xFC00_029Au32.to_string()), "{v4}");
    assert!(!v4.contains(&0xFFFF_029Au32.to_string()), "{v4}");
    assert!(v4.contains("192.0.2.1"), "{v4}");
    assert!(ribs[1].contains_key("2001:db8:c2::1/128"), "{:?}", ribs[1]);

    // The feed changes: the IPv6 address leaves, another IPv4 one comes.
    std::fs::write(&feed, "198.51.100.7:443\n198.51.100.8\n").unwrap();
    let ribs = settle(&mut carrier, &[("ipv4", 2), ("ipv6", 0)]);
    assert!(ribs[0].contains_key("198.51.100.8/32"), "{:?}", ribs[0]);

    carrier.shutdown(false).unwrap();
    peers.wait_for(&[("ipv4", 0), ("ipv6", 0)]);
    watcher.stop();
}
