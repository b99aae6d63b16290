//! The speaker against a real gobgpd (runs as `nobody`, passive, on free loopback ports).

mod support;

use std::time::{Duration, Instant};

use floodwall_bgp::{Family, SessionState, Speaker};
use support::*;

const ESTABLISHED: Duration = Duration::from_secs(10);

#[test]
fn gobgpd_holds_exactly_the_announced_routes_with_their_attributes_until_withdrawn() {
    let dir = test_dir("gobgp-routes");
    let gobgpd = Gobgpd::start(&dir, GobgpOptions::default());
    let speaker = connected_speaker("gobgpd", gobgpd.address());

    let mut rules = standard_rules();
    rules.push(outgoing_dns_discard("198.51.100.50/32"));
    for rule in &rules {
        speaker.announce(rule).unwrap();
    }
    let discard = "as=0,rate=0,subtype=6,type=128";
    gobgpd.wait_rib(
        "ipv4",
        &set(&["198.51.100.7/32 nh 192.0.2.1 comm 65001:42,65535:666"]),
    );
    gobgpd.wait_rib(
        "ipv6",
        &set(&["2001:db8::7/128 nh 100::1 comm 65001:42,65535:666"]),
    );
    let ntp = format!(
        "[destination: 198.51.100.8/32][protocol: ==udp][source-port: ==123]\
         [packet-length: >=400&<=65535] ext {discard}"
    );
    let dns = "[destination: 198.51.100.9/32][protocol: ==udp][source-port: ==53] \
               comm 65001:7 ext as=0,rate=125000,subtype=6,type=128";
    let syn = format!(
        "[destination: 198.51.100.10/32][protocol: ==tcp][destination-port: ==80 >=1000&<=2000]\
         [tcp-flags: =S&!A][fragment: is-fragment] ext {discard}"
    );
    let outgoing = format!(
        "[source: 198.51.100.50/32][protocol: ==udp][destination-port: ==53] ext {discard}"
    );
    gobgpd.wait_rib("ipv4-flowspec", &set(&[&ntp, dns, &syn, &outgoing]));
    let udp6 = format!("[destination: 2001:db8::8/128/0][protocol: ==udp] ext {discard}");
    gobgpd.wait_rib("ipv6-flowspec", &set(&[&udp6]));

    // The same rules again: nothing to send. A changed rule under the same NLRI replaces.
    let updates = speaker.status()[0].updates_sent;
    for rule in &rules {
        speaker.announce(rule).unwrap();
    }
    let mut changed = blackhole("198.51.100.7/32");
    if let floodwall_mitigate::Rule::Blackhole { communities, .. } = &mut changed {
        communities.retain(|c| *c == floodwall_mitigate::Community::BLACKHOLE);
    }
    speaker.announce(&changed).unwrap();
    gobgpd.wait_rib(
        "ipv4",
        &set(&["198.51.100.7/32 nh 192.0.2.1 comm 65535:666"]),
    );
    assert_eq!(speaker.status()[0].updates_sent, updates + 1);
    assert_eq!(speaker.routes(), 7);

    speaker.withdraw(&changed).unwrap();
    speaker.withdraw(&rules[3]).unwrap();
    speaker.withdraw(&rules[5]).unwrap();
    gobgpd.wait_rib("ipv4", &set(&[]));
    gobgpd.wait_rib("ipv4-flowspec", &set(&[&ntp, &syn, &outgoing]));
    gobgpd.wait_rib("ipv6-flowspec", &set(&[]));
    gobgpd.wait_rib(
        "ipv6",
        &set(&["2001:db8::7/128 nh 100::1 comm 65001:42,65535:666"]),
    );
    // Withdrawing what is not announced is a no-op.
    speaker.withdraw(&rules[5]).unwrap();

    speaker.shutdown(false);
    for family in ["ipv4", "ipv6", "ipv4-flowspec", "ipv6-flowspec"] {
        gobgpd.wait_rib(family, &set(&[]));
    }
    wait_until(
        Duration::from_secs(5),
        "gobgpd to see the session down",
        || {
            let state = gobgpd.neighbor_state("127.0.0.1");
            if state == "established" {
                Err(state)
            } else {
                Ok(())
            }
        },
    );
}

#[test]
fn a_peer_that_comes_up_late_or_restarts_gets_the_whole_table() {
    let dir = test_dir("gobgp-restart");
    // Reserve the address first, then start the speaker while nothing listens there.
    let mut gobgpd = Gobgpd::start(&dir, GobgpOptions::default());
    gobgpd.daemon.kill();
    let speaker = Speaker::start(speaker_config(), vec![peer("gobgpd", gobgpd.address())]);
    speaker.announce(&blackhole("198.51.100.20/32")).unwrap();
    speaker.announce(&ntp_discard("198.51.100.21/32")).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let status = &speaker.status()[0];
    assert_ne!(status.state, SessionState::Established);
    assert!(status.last_error.is_some(), "{status:?}");

    gobgpd.restart();
    assert!(
        speaker.wait_established(ESTABLISHED),
        "{:?}",
        speaker.status()
    );
    let unicast = set(&["198.51.100.20/32 nh 192.0.2.1 comm 65001:42,65535:666"]);
    gobgpd.wait_rib("ipv4", &unicast);
    assert_eq!(gobgpd.rib("ipv4-flowspec").len(), 1);

    // A crash of the peer: the speaker reconnects and sends everything again, including
    // what changed while the peer was away.
    gobgpd.daemon.kill();
    assert!(speaker.wait_for(Duration::from_secs(5), |s| s[0].state
        != SessionState::Established));
    speaker.announce(&blackhole("2001:db8::20/128")).unwrap();
    gobgpd.restart();
    gobgpd.wait_rib("ipv4", &unicast);
    gobgpd.wait_rib(
        "ipv6",
        &set(&["2001:db8::20/128 nh 100::1 comm 65001:42,65535:666"]),
    );
    assert_eq!(gobgpd.rib("ipv4-flowspec").len(), 1);
    let status = &speaker.status()[0];
    assert_eq!(status.sessions_established, 2, "{status:?}");
    assert_eq!(status.routes_advertised, 3);
    speaker.shutdown(false);
}

#[test]
fn keepalives_hold_a_session_with_a_3_second_hold_time() {
    let dir = test_dir("gobgp-hold");
    let gobgpd = Gobgpd::start(&dir, GobgpOptions::default());
    let mut config = speaker_config();
    config.hold_time = Duration::from_secs(3);
    let speaker = Speaker::start(config, vec![peer("gobgpd", gobgpd.address())]);
    assert!(speaker.wait_established(ESTABLISHED));
    let since = speaker.status()[0].established_since;
    let json: serde_json::Value =
        serde_json::from_str(&gobgpd.gobgp(&["neighbor", "127.0.0.1", "-j"])).unwrap();
    assert_eq!(
        json["timers"]["state"]["negotiated_hold_time"], 3,
        "{json:#}"
    );
    // Three hold times and more: the session only survives if keepalives flow both ways.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let status = &speaker.status()[0];
        assert_eq!(status.state, SessionState::Established, "{status:?}");
        assert_eq!(status.established_since, since);
        std::thread::sleep(Duration::from_millis(250));
    }
    let status = &speaker.status()[0];
    assert_eq!(status.sessions_established, 1);
    assert_eq!(gobgpd.neighbor_state("127.0.0.1"), "established");
    speaker.shutdown(false);
}

#[test]
fn graceful_restart_keeps_routes_while_floodwall_restarts_and_end_of_rib_prunes_them() {
    let dir = test_dir("gobgp-gr");
    let gobgpd = Gobgpd::start(
        &dir,
        GobgpOptions {
            graceful_restart: true,
            ..GobgpOptions::default()
        },
    );
    let mut config = speaker_config();
    config.graceful_restart = Some(120);
    let first = Speaker::start(config.clone(), vec![peer("gobgpd", gobgpd.address())]);
    assert!(first.wait_established(ESTABLISHED));
    first.announce(&blackhole("198.51.100.30/32")).unwrap();
    first.announce(&blackhole("198.51.100.31/32")).unwrap();
    first.announce(&ntp_discard("198.51.100.32/32")).unwrap();
    let live = |prefix: &str| format!("{prefix} nh 192.0.2.1 comm 65001:42,65535:666");
    gobgpd.wait_rib(
        "ipv4",
        &set(&[&live("198.51.100.30/32"), &live("198.51.100.31/32")]),
    );
    assert_eq!(gobgpd.rib("ipv4-flowspec").len(), 1);

    first.shutdown(true);
    // The helper keeps every route, marked stale, after our TCP connection closed.
    let stale = |prefix: &str| format!("{} stale", live(prefix));
    gobgpd.wait_rib(
        "ipv4",
        &set(&[&stale("198.51.100.30/32"), &stale("198.51.100.31/32")]),
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(gobgpd.rib("ipv4").len(), 2);
    assert!(gobgpd
        .rib("ipv4-flowspec")
        .iter()
        .all(|r| r.ends_with(" stale")));

    // The next Floodwall holds only one of them: after its table and End-of-RIB, exactly that
    // one is left, fresh.
    let second = Speaker::start(config, vec![peer("gobgpd", gobgpd.address())]);
    second.announce(&blackhole("198.51.100.31/32")).unwrap();
    assert!(
        second.wait_established(Duration::from_secs(20)),
        "{:?}",
        second.status()
    );
    gobgpd.wait_rib("ipv4", &set(&[&live("198.51.100.31/32")]));
    gobgpd.wait_rib("ipv4-flowspec", &set(&[]));
    second.shutdown(false);
    gobgpd.wait_rib("ipv4", &set(&[]));
}

#[test]
fn several_peers_each_get_the_families_they_negotiated_from_their_own_source_address() {
    let dir_a = test_dir("gobgp-multi-a");
    let dir_b = test_dir("gobgp-multi-b");
    let all = Gobgpd::start(&dir_a, GobgpOptions::default());
    // The second only takes IPv4 unicast, and expects us from 127.0.0.2.
    let unicast_only = Gobgpd::start(
        &dir_b,
        GobgpOptions {
            neighbors: vec![("127.0.0.2", vec![Family::Ipv4Unicast])],
            graceful_restart: false,
        },
    );
    let mut second = peer("unicast-only", unicast_only.address());
    second.local_address = Some("127.0.0.2".parse().unwrap());
    let speaker = Speaker::start(speaker_config(), vec![peer("all", all.address()), second]);
    assert!(
        speaker.wait_established(ESTABLISHED),
        "{:?}",
        speaker.status()
    );
    let status = speaker.status();
    assert_eq!(status[0].families, Family::ALL);
    assert_eq!(status[1].families, [Family::Ipv4Unicast]);

    speaker.announce(&blackhole("198.51.100.40/32")).unwrap();
    speaker.announce(&ntp_discard("198.51.100.41/32")).unwrap();
    let unicast = set(&["198.51.100.40/32 nh 192.0.2.1 comm 65001:42,65535:666"]);
    all.wait_rib("ipv4", &unicast);
    unicast_only.wait_rib("ipv4", &unicast);
    assert_eq!(all.rib("ipv4-flowspec").len(), 1);
    assert!(
        speaker.wait_for(Duration::from_secs(5), |s| s[0].routes_advertised == 2
            && s[1].routes_advertised == 1)
    );
    speaker.shutdown(false);
    all.wait_rib("ipv4", &set(&[]));
    unicast_only.wait_rib("ipv4", &set(&[]));
}

#[test]
fn bursts_of_changes_are_packed_into_few_updates() {
    let dir = test_dir("gobgp-burst");
    let mut gobgpd = Gobgpd::start(&dir, GobgpOptions::default());
    gobgpd.daemon.kill();
    let speaker = Speaker::start(speaker_config(), vec![peer("gobgpd", gobgpd.address())]);
    let blackholes: Vec<_> = (0..500)
        .map(|i| blackhole(&format!("10.{}.{}.1/32", i / 250, i % 250)))
        .collect();
    let filters: Vec<_> = (0..200)
        .map(|i| ntp_discard(&format!("10.9.{}.{}/32", i / 100, i % 100)))
        .collect();
    for rule in blackholes.iter().chain(&filters) {
        speaker.announce(rule).unwrap();
    }
    gobgpd.restart();
    assert!(speaker.wait_established(ESTABLISHED));
    wait_until(Duration::from_secs(10), "700 routes in gobgpd", || {
        let counts = (gobgpd.rib("ipv4").len(), gobgpd.rib("ipv4-flowspec").len());
        if counts == (500, 200) {
            Ok(())
        } else {
            Err(format!("{counts:?}"))
        }
    });
    // 500 /32s (5 bytes each) fit one UPDATE; 200 rules of ~15 bytes need one or two.
    let initial = speaker.status()[0].updates_sent;
    assert!(initial <= 4, "{initial} UPDATEs for the initial table");

    for rule in blackholes.iter().chain(&filters) {
        speaker.withdraw(rule).unwrap();
    }
    gobgpd.wait_rib("ipv4", &set(&[]));
    gobgpd.wait_rib("ipv4-flowspec", &set(&[]));
    // One per change would be 700; a scheduler hiccup in the loop above may split a batch.
    let withdrawals = speaker.status()[0].updates_sent - initial;
    assert!(
        withdrawals < 50,
        "{withdrawals} UPDATEs for 700 withdrawals"
    );
    speaker.shutdown(false);
}
