//! The nftables mitigator against the real kernel: each test makes its own network namespace
//! (a veth pair from the root namespace into it, addresses from 198.18.0.0/15), installs
//! Floodwall's table there and sends real UDP packets through it. Needs root (CAP_NET_ADMIN).

use std::collections::BTreeSet;
use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::process::Command;
use std::time::{Duration, Instant};

use floodwall_daemon::act::nftables::{Nftables, NftablesConfig};
use floodwall_daemon::act::Mitigator;
use floodwall_mitigate::{Community, FlowAction, FlowFilter, Mitigation, Range, Rule, TcpFlags};

fn sh(args: &[&str]) {
    let status = Command::new(args[0]).args(&args[1..]).status().unwrap();
    assert!(status.success(), "{args:?} failed");
}

/// A network namespace that is deleted (with its veth pair) when dropped.
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        assert!(
            rustix::process::geteuid().is_root(),
            "the nftables tests make network namespaces: run them as root"
        );
        let name = format!("fw{tag}{}", std::process::id());
        // A leftover of a crashed run of the same pid is harmless to remove.
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(std::process::Stdio::null())
            .status();
        sh(&["ip", "netns", "add", &name]);
        sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Netns { name }
    }

    fn nft_config(&self) -> NftablesConfig {
        NftablesConfig {
            enabled: true,
            command: ["ip", "netns", "exec", &self.name, "nft"]
                .map(String::from)
                .to_vec(),
            ..NftablesConfig::default()
        }
    }

    fn nft(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, "nft"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "nft {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// A UDP socket bound inside the namespace: the thread enters it, binds, and the socket
    /// stays there.
    fn udp_socket(&self, addr: &str) -> UdpSocket {
        let path = format!("/run/netns/{}", self.name);
        let addr: SocketAddr = addr.parse().unwrap();
        std::thread::spawn(move || {
            let ns = File::open(path).unwrap();
            let network = Some(rustix::thread::LinkNameSpaceType::Network);
            rustix::thread::move_into_link_name_space(ns.as_fd(), network).expect("setns");
            UdpSocket::bind(addr).unwrap()
        })
        .join()
        .unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Two addresses inside the namespace (`.2`, `.3`, and `::2`, `::3` of a ULA /64), `.1` and
/// `::1` on the root side.
struct Link {
    ns: Netns,
    prefix: String,
    prefix6: String,
    veth: String,
}

impl Link {
    /// `n`: which of the tests' links (names and subnets differ).
    fn new(n: u32) -> Link {
        let ns = Netns::new(&format!("nft{n}-"));
        let pid = std::process::id();
        let veth = format!("fwn{n}-{}", pid % 100_000);
        let _ = Command::new("ip")
            .args(["link", "del", &veth])
            .stderr(std::process::Stdio::null())
            .status();
        let prefix = format!("198.19.{}", (pid + n) % 250 + 1);
        let prefix6 = format!("fd66:{:x}:{n}:", pid & 0xffff);
        sh(&[
            "ip", "link", "add", &veth, "type", "veth", "peer", "name", "inside", "netns", &ns.name,
        ]);
        sh(&["ip", "addr", "add", &format!("{prefix}.1/29"), "dev", &veth]);
        // nodad: usable at once, no duplicate address detection delay.
        sh(&[
            "ip",
            "addr",
            "add",
            &format!("{prefix6}:1/64"),
            "dev",
            &veth,
            "nodad",
        ]);
        sh(&["ip", "link", "set", &veth, "up"]);
        for host in [2, 3] {
            sh(&[
                "ip",
                "-n",
                &ns.name,
                "addr",
                "add",
                &format!("{prefix}.{host}/29"),
                "dev",
                "inside",
            ]);
            sh(&[
                "ip",
                "-n",
                &ns.name,
                "addr",
                "add",
                &format!("{prefix6}:{host}/64"),
                "dev",
                "inside",
                "nodad",
            ]);
        }
        sh(&["ip", "-n", &ns.name, "link", "set", "inside", "up"]);
        Link {
            ns,
            prefix,
            prefix6,
            veth,
        }
    }

    fn addr(&self, host: u8, port: u16) -> String {
        format!("{}.{host}:{port}", self.prefix)
    }

    fn addr6(&self, host: u8, port: u16) -> String {
        format!("[{}:{host}]:{port}", self.prefix6)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Deleting the namespace deletes the pair too; this covers a failed namespace.
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Sends `count` datagrams and returns how many of them `receiver` got.
fn deliver(from: &UdpSocket, to: &str, receiver: &UdpSocket, count: usize) -> usize {
    for i in 0..count {
        from.send_to(format!("packet {i}").as_bytes(), to).unwrap();
    }
    receive_all(receiver)
}

/// Reads datagrams until 300 ms pass without one.
fn receive_all(receiver: &UdpSocket) -> usize {
    receiver
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match receiver.recv_from(&mut buf) {
            Ok(_) => got += 1,
            Err(_) => break,
        }
    }
    got
}

fn mitigation(id: &str, rule: Rule) -> Mitigation {
    Mitigation {
        id: id.to_string(),
        attack_id: Some("a1".into()),
        hostgroup: "default".into(),
        rule,
        coverage: None,
        collateral: None,
        since: 0,
        dry_run: false,
    }
}

fn blackhole(id: &str, prefix: &str) -> Mitigation {
    mitigation(
        id,
        Rule::Blackhole {
            prefix: prefix.parse().unwrap(),
            next_hop: "192.0.2.1".parse().unwrap(),
            communities: vec![Community::BLACKHOLE],
        },
    )
}

fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn nftables_drops_matching_traffic_in_a_namespace_and_lets_it_pass_after_withdraw() {
    const N: usize = 20;
    let link = Link::new(1);
    let target = link.ns.udp_socket(&link.addr(2, 5000));
    let other = link.ns.udp_socket(&link.addr(3, 5000));
    let ntp = UdpSocket::bind(link.addr(1, 123)).unwrap();
    let plain = UdpSocket::bind(link.addr(1, 124)).unwrap();
    // Before any rule: both addresses answer (this also resolves ARP).
    assert_eq!(deliver(&plain, &link.addr(2, 5000), &target, 2), 2);
    assert_eq!(deliver(&plain, &link.addr(3, 5000), &other, 2), 2);

    let mut nft = Nftables::new(&link.ns.nft_config()).unwrap();
    let mut filter = FlowFilter::to(format!("{}.2/32", link.prefix).parse().unwrap());
    filter.protocols = vec![17];
    filter.source_ports = vec![Range::single(123)];
    filter.packet_length = Some(Range {
        first: 20,
        last: 1500,
    });
    let ntp_filter = mitigation(
        "a1-flowspec",
        Rule::Filter {
            filter,
            action: FlowAction::Discard,
            communities: vec![],
        },
    );
    let hole = blackhole("a2-blackhole", &format!("{}.3/32", link.prefix));
    // IPv6 rules of every shape are accepted by the kernel too (no IPv6 traffic here).
    let mut v6 = FlowFilter::to("2001:db8::7/128".parse().unwrap());
    v6.tcp_flags = Some(TcpFlags {
        value: 0x02,
        mask: 0x12,
    });
    v6.destination_ports = vec![
        Range::single(80),
        Range {
            first: 8000,
            last: 8080,
        },
    ];
    v6.fragments = true;
    let v6_filter = mitigation(
        "a3-flowspec",
        Rule::Filter {
            filter: v6,
            action: FlowAction::RateLimit {
                bytes_per_second: 125_000.0,
            },
            communities: vec![],
        },
    );
    let v6_hole = blackhole("a4-blackhole", "2001:db8:1::/48");
    // An outgoing attack's filter: any destination, one customer source.
    let mut outgoing = FlowFilter::to("0.0.0.0/0".parse().unwrap());
    outgoing.source = Some("198.18.200.9/32".parse().unwrap());
    outgoing.protocols = vec![6];
    let outgoing = mitigation(
        "a5-flowspec",
        Rule::Filter {
            filter: outgoing,
            action: FlowAction::Discard,
            communities: vec![],
        },
    );
    for m in [&ntp_filter, &hole, &v6_filter, &v6_hole, &outgoing] {
        assert!(nft.accepts(&m.rule));
        nft.announce(m).unwrap();
    }
    let all = ids(&[
        "a1-flowspec",
        "a2-blackhole",
        "a3-flowspec",
        "a4-blackhole",
        "a5-flowspec",
    ]);
    assert_eq!(nft.installed_ids().unwrap(), all);
    // Idempotent: announcing again changes nothing.
    let before = link.ns.nft(&["list", "table", "inet", "floodwall"]);
    nft.announce(&ntp_filter).unwrap();
    nft.announce(&hole).unwrap();
    assert_eq!(link.ns.nft(&["list", "table", "inet", "floodwall"]), before);
    let redirect = Rule::Filter {
        filter: FlowFilter::to("198.18.0.9/32".parse().unwrap()),
        action: FlowAction::Redirect {
            asn: 65001,
            value: 1,
        },
        communities: vec![],
    };
    assert!(!nft.accepts(&redirect));

    // The filter drops NTP-sourced packets to .2 and counts them; other ports pass; .3 is
    // blackholed whatever the port.
    assert_eq!(deliver(&ntp, &link.addr(2, 5000), &target, N), 0);
    assert_eq!(deliver(&plain, &link.addr(2, 5000), &target, N), N);
    assert_eq!(deliver(&plain, &link.addr(3, 5000), &other, N), 0);
    let counter = nft.filter_counter("a1-flowspec").unwrap().unwrap();
    assert_eq!(counter.packets, N as u64);
    assert!(counter.bytes >= (N * 28) as u64);
    assert_eq!(nft.blackhole_counters().unwrap().0.packets, N as u64);
    let element = nft.blackhole_counter("a2-blackhole").unwrap().unwrap();
    assert_eq!(element.packets, N as u64);

    // A restart adopts the table: the same ids are found, announcing them again keeps them.
    drop(nft);
    let mut nft = Nftables::new(&link.ns.nft_config()).unwrap();
    assert_eq!(nft.installed_ids().unwrap(), all);
    nft.announce(&hole).unwrap();
    nft.withdraw(&v6_filter).unwrap();
    nft.withdraw(&v6_hole).unwrap();
    nft.withdraw(&outgoing).unwrap();
    assert_eq!(
        nft.installed_ids().unwrap(),
        ids(&["a1-flowspec", "a2-blackhole"])
    );

    // Withdrawn: traffic passes again; withdrawing twice is fine.
    nft.withdraw(&ntp_filter).unwrap();
    nft.withdraw(&hole).unwrap();
    nft.withdraw(&hole).unwrap();
    assert!(nft.installed_ids().unwrap().is_empty());
    assert_eq!(deliver(&ntp, &link.addr(2, 5000), &target, N), N);
    assert_eq!(deliver(&plain, &link.addr(3, 5000), &other, N), N);

    nft.shutdown(false).unwrap();
    assert!(!link.ns.nft(&["list", "tables"]).contains("floodwall"));
}

#[test]
fn ipv6_filters_and_blackholes_drop_real_traffic_too() {
    const N: usize = 20;
    let link = Link::new(2);
    let target = link.ns.udp_socket(&link.addr6(2, 5000));
    let other = link.ns.udp_socket(&link.addr6(3, 5000));
    let dns = UdpSocket::bind(link.addr6(1, 53)).unwrap();
    let plain = UdpSocket::bind(link.addr6(1, 54)).unwrap();
    // Before any rule both answer (this also resolves the neighbours).
    let deadline = Instant::now() + Duration::from_secs(10);
    while deliver(&plain, &link.addr6(2, 5000), &target, 1) == 0 {
        assert!(Instant::now() < deadline, "no IPv6 path into the namespace");
    }
    while deliver(&plain, &link.addr6(3, 5000), &other, 1) == 0 {
        assert!(Instant::now() < deadline, "no IPv6 path into the namespace");
    }

    let mut nft = Nftables::new(&link.ns.nft_config()).unwrap();
    // Lengths are IP total lengths: a 100-byte datagram is 40 + 8 + 100 = 148 bytes of IPv6.
    let mut filter = FlowFilter::to(format!("{}:2/128", link.prefix6).parse().unwrap());
    filter.protocols = vec![17];
    filter.source_ports = vec![Range::single(53)];
    filter.packet_length = Some(Range {
        first: 148,
        last: 148,
    });
    let big_answers = mitigation(
        "b1-flowspec",
        Rule::Filter {
            filter,
            action: FlowAction::Discard,
            communities: vec![],
        },
    );
    let hole = blackhole("b2-blackhole", &format!("{}:3/128", link.prefix6));
    nft.announce(&big_answers).unwrap();
    nft.announce(&hole).unwrap();

    let send = |from: &UdpSocket, to: &str, size: usize| {
        for _ in 0..N {
            from.send_to(&vec![7u8; size], to).unwrap();
        }
    };
    send(&dns, &link.addr6(2, 5000), 100);
    assert_eq!(receive_all(&target), 0);
    // Other lengths and other ports pass.
    send(&dns, &link.addr6(2, 5000), 99);
    assert_eq!(receive_all(&target), N);
    send(&plain, &link.addr6(2, 5000), 100);
    assert_eq!(receive_all(&target), N);
    send(&plain, &link.addr6(3, 5000), 10);
    assert_eq!(receive_all(&other), 0);
    assert_eq!(
        nft.filter_counter("b1-flowspec").unwrap().unwrap().packets,
        N as u64
    );
    assert_eq!(nft.blackhole_counters().unwrap().1.packets, N as u64);

    nft.withdraw(&big_answers).unwrap();
    nft.withdraw(&hole).unwrap();
    send(&dns, &link.addr6(2, 5000), 100);
    assert_eq!(receive_all(&target), N);
    send(&plain, &link.addr6(3, 5000), 10);
    assert_eq!(receive_all(&other), N);
    nft.shutdown(false).unwrap();
}

#[test]
fn nested_blackholes_keep_the_outer_prefix_in_the_set_and_restore_the_inner_one() {
    let ns = Netns::new("nfs");
    let mut nft = Nftables::new(&ns.nft_config()).unwrap();
    let elements = |ns: &Netns| ns.nft(&["list", "set", "inet", "floodwall", "blackhole4"]);
    let host = blackhole("h-blackhole", "198.18.7.5/32");
    let carpet = blackhole("c-blackhole", "198.18.7.0/24");
    let twin = blackhole("t-blackhole", "198.18.7.0/24");
    nft.announce(&host).unwrap();
    nft.announce(&carpet).unwrap();
    nft.announce(&twin).unwrap();
    let listed = elements(&ns);
    assert!(
        listed.contains(
            "198.18.7.0/24 counter packets 0 bytes 0 comment \"c-blackhole t-blackhole\""
        ),
        "{listed}"
    );
    assert!(!listed.contains("198.18.7.5"), "{listed}");
    assert_eq!(
        nft.installed_ids().unwrap(),
        ids(&["c-blackhole", "h-blackhole", "t-blackhole"])
    );
    nft.withdraw(&carpet).unwrap();
    assert!(
        elements(&ns).contains("198.18.7.0/24 counter packets 0 bytes 0 comment \"t-blackhole\"")
    );
    nft.withdraw(&twin).unwrap();
    let listed = elements(&ns);
    assert!(
        listed.contains("198.18.7.5 counter packets 0 bytes 0 comment \"h-blackhole\""),
        "{listed}"
    );
    assert!(!listed.contains("198.18.7.0/24"), "{listed}");

    // keep = true leaves the table for the next start, which adopts it.
    nft.shutdown(true).unwrap();
    let mut next = Nftables::new(&ns.nft_config()).unwrap();
    assert_eq!(next.installed_ids().unwrap(), ids(&["h-blackhole"]));
    next.shutdown(false).unwrap();
    assert!(!ns.nft(&["list", "tables"]).contains("floodwall"));
}

#[test]
fn a_foreign_table_of_the_same_name_is_rebuilt() {
    let ns = Netns::new("nff");
    ns.nft(&["add", "table", "inet", "floodwall"]);
    ns.nft(&["add", "chain", "inet", "floodwall", "other"]);
    let mut nft = Nftables::new(&ns.nft_config()).unwrap();
    let listed = ns.nft(&["list", "table", "inet", "floodwall"]);
    assert!(!listed.contains("chain other"), "{listed}");
    assert!(listed.contains("set blackhole6"), "{listed}");
    assert!(nft.installed_ids().unwrap().is_empty());
    nft.shutdown(false).unwrap();
}
