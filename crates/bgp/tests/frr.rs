//! The speaker against a real FRR bgpd (started as root, drops to `frr`; no zebra).

mod support;

use support::*;

#[test]
fn frr_receives_blackholes_and_flowspec_and_drops_them_on_withdraw() {
    let dir = test_dir("frr");
    let frr = Frr::start(&dir);
    let speaker = connected_speaker("frr", frr.address());
    let rules = standard_rules();
    for rule in &rules {
        speaker.announce(rule).unwrap();
    }
    // FRR adds no-export to BLACKHOLE routes by itself (RFC 7999 §3.2).
    frr.wait_unicast(
        "ipv4",
        &set(&["198.51.100.7/32 nh 192.0.2.1 comm 65001:42 blackhole no-export"]),
    );
    frr.wait_unicast(
        "ipv6",
        &set(&["2001:db8::7/128 nh 100::1 comm 65001:42 blackhole no-export"]),
    );
    let ntp = "Destination Address 198.51.100.8/32 | IP Protocol = 17 | Source Port = 123 \
               | Packet Length >= 400 , <= 65535 | FS:rate 0.000000";
    let dns = "Destination Address 198.51.100.9/32 | IP Protocol = 17 | Source Port = 53 \
               | FS:rate 125000.000000";
    let syn = "Destination Address 198.51.100.10/32 | IP Protocol = 6 \
               | Destination Port = 80 , >= 1000 , <= 2000 | TCP Flags = 2,&∋ ! 16 \
               | Packet Fragment ∋ 2 | FS:rate 0.000000";
    frr.wait_flowspec("ipv4", &set(&[ntp, dns, syn]));
    let udp6 = "Destination Address 2001:db8::8/128/off 0 | IP Protocol = 17 | FS:rate 0.000000";
    frr.wait_flowspec("ipv6", &set(&[udp6]));

    speaker.withdraw(&rules[0]).unwrap();
    speaker.withdraw(&rules[3]).unwrap();
    speaker.withdraw(&rules[5]).unwrap();
    frr.wait_unicast("ipv4", &set(&[]));
    frr.wait_flowspec("ipv4", &set(&[ntp, syn]));
    frr.wait_flowspec("ipv6", &set(&[]));

    speaker.shutdown(false);
    frr.wait_unicast("ipv6", &set(&[]));
    frr.wait_flowspec("ipv4", &set(&[]));
    let neighbor = frr.json("show bgp neighbors 127.0.0.1 json");
    let neighbor = &neighbor["127.0.0.1"];
    assert_ne!(neighbor["bgpState"], "Established", "{neighbor:#}");
    assert_eq!(
        neighbor["lastNotificationReason"], "Cease/Administrative Shutdown",
        "{neighbor:#}"
    );
}
