//! The speaker against a real BIRD 2 (runs as `nobody`, passive, `strict bind` on loopback).

mod support;

use support::*;

#[test]
fn bird_receives_blackholes_and_flowspec_with_their_communities_and_drops_them_on_withdraw() {
    let dir = test_dir("bird");
    let bird = Bird::start(&dir);
    let speaker = connected_speaker("bird", bird.address());
    let rules = standard_rules();
    for rule in &rules {
        speaker.announce(rule).unwrap();
    }
    // Blackhole next hops cannot be resolved here, so BIRD shows the routes as unreachable;
    // the attributes are what matter. Traffic-rate 0 (discard) and 125000.0 as an IEEE float
    // (0x47f42400) are shown as generic extended communities.
    let communities = "BGP.community: (65001,42) (65535,666)";
    bird.wait_routes(
        "master4",
        &set(&[&format!(
            "198.51.100.7/32 unreachable | BGP.next_hop: 192.0.2.1 | {communities}"
        )]),
    );
    bird.wait_routes(
        "master6",
        &set(&[&format!(
            "2001:db8::7/128 unreachable | BGP.next_hop: 100::1 | {communities}"
        )]),
    );
    let discard = "BGP.ext_community: (generic, 0x80060000, 0x0)";
    let ntp = format!(
        "flow4 {{ dst 198.51.100.8/32; proto 17; sport 123; length 400..65535; }} | {discard}"
    );
    let dns = "flow4 { dst 198.51.100.9/32; proto 17; sport 53; } | BGP.community: (65001,7) \
               | BGP.ext_community: (generic, 0x80060000, 0x47f42400)";
    let syn = format!(
        "flow4 {{ dst 198.51.100.10/32; proto 6; dport 80,1000..2000; \
         tcp flags 0x2/0x2 && 0x0/0x10; fragment !!is_fragment; }} | {discard}"
    );
    bird.wait_routes("flowtab4", &set(&[&ntp, dns, &syn]));
    let udp6 = format!("flow6 {{ dst 2001:db8::8/128; next header 17; }} | {discard}");
    bird.wait_routes("flowtab6", &set(&[&udp6]));

    speaker.withdraw(&rules[0]).unwrap();
    speaker.withdraw(&rules[3]).unwrap();
    speaker.withdraw(&rules[5]).unwrap();
    bird.wait_routes("master4", &set(&[]));
    bird.wait_routes("flowtab4", &set(&[&ntp, &syn]));
    bird.wait_routes("flowtab6", &set(&[]));

    speaker.shutdown(false);
    bird.wait_routes("master6", &set(&[]));
    bird.wait_routes("flowtab4", &set(&[]));
    let protocols = bird.birdc("show protocols floodwall");
    assert!(protocols.contains("Administrative shutdown"), "{protocols}");
}
