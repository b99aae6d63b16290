//! `act::bgp::BgpMitigator` from its TOML configuration against a real gobgpd.

#[path = "../../bgp/tests/support/mod.rs"]
mod support;

use std::time::Duration;

use floodwall_daemon::act::bgp::{BgpConfig, BgpMitigator};
use floodwall_daemon::act::Mitigator;
use floodwall_mitigate::{Mitigation, Rule};
use serde::Deserialize;
use support::*;

#[derive(Deserialize)]
struct File {
    bgp: BgpConfig,
}

fn mitigation(id: &str, rule: Rule) -> Mitigation {
    Mitigation {
        id: id.into(),
        attack_id: Some(id.into()),
        hostgroup: "customers".into(),
        rule,
        coverage: None,
        collateral: None,
        since: 0,
        dry_run: false,
    }
}

#[test]
fn mitigations_sharing_a_route_keep_it_until_the_last_is_withdrawn() {
    let dir = test_dir("bgp-mitigator");
    let gobgpd = Gobgpd::start(&dir, GobgpOptions::default());
    let text = format!(
        "[bgp]\nlocal_as = {SPEAKER_AS}\nrouter_id = \"192.0.2.9\"\nconnect_retry_max_seconds = 1\n\
         [[bgp.peers]]\nname = \"gobgpd\"\naddress = \"{}\"\nremote_as = {DAEMON_AS}\n\
         families = [\"ipv4-unicast\", \"ipv4-flowspec\"]\n",
        gobgpd.address()
    );
    let config = toml::from_str::<File>(&text).unwrap().bgp;
    let mut bgp = BgpMitigator::start(&config).unwrap();
    assert_eq!(bgp.name(), "bgp");
    assert!(bgp.accepts(&blackhole("198.51.100.60/32")));
    assert!(!bgp.accepts(&blackhole("2001:db8::60/128")));
    assert!(bgp.accepts(&ntp_discard("198.51.100.61/32")));
    assert!(!bgp.accepts(&udp6_discard("2001:db8::61/128")));

    let first = mitigation("a1-blackhole", blackhole("198.51.100.60/32"));
    let second = mitigation("a2-blackhole", blackhole("198.51.100.60/32"));
    let mut dry = mitigation("a3-flowspec", ntp_discard("198.51.100.61/32"));
    dry.dry_run = true;
    bgp.announce(&first).unwrap();
    bgp.announce(&first).unwrap();
    bgp.announce(&second).unwrap();
    assert!(bgp.announce(&dry).is_err(), "a dry run is refused");
    let route = set(&["198.51.100.60/32 nh 192.0.2.1 comm 65001:42,65535:666"]);
    gobgpd.wait_rib("ipv4", &route);
    assert!(
        gobgpd.rib("ipv4-flowspec").is_empty(),
        "a dry run was announced"
    );

    bgp.withdraw(&first).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        gobgpd.rib("ipv4"),
        route,
        "withdrawn while a2 still holds it"
    );
    bgp.withdraw(&second).unwrap();
    gobgpd.wait_rib("ipv4", &set(&[]));

    bgp.announce(&mitigation("a4-flowspec", ntp_discard("198.51.100.61/32")))
        .unwrap();
    wait_until(Duration::from_secs(10), "the filter in gobgpd", || {
        let rib = gobgpd.rib("ipv4-flowspec");
        if rib.len() == 1 {
            Ok(())
        } else {
            Err(format!("{rib:?}"))
        }
    });
    assert!(bgp.status()[0].routes_advertised == 1);
    bgp.shutdown(false).unwrap();
    gobgpd.wait_rib("ipv4-flowspec", &set(&[]));
    assert!(bgp.announce(&first).is_err(), "announce after shutdown");
}
