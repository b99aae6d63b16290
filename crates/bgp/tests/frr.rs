//! The speaker against a real FRR bgpd (started as root, drops to `frr`; no zebra).

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use floodwall_bgp::Speaker;
use support::*;

/// `show bgp <afi> flowspec detail` as one line per entry, without its age and flags.
fn flowspec(frr: &Frr, afi: &str) -> BTreeSet<String> {
    let text = frr.vtysh(&format!("show bgp {afi} flowspec detail"));
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

fn wait_flowspec(frr: &Frr, afi: &str, expected: &BTreeSet<String>) {
    wait_until(
        Duration::from_secs(10),
        &format!("FRR's {afi} flowspec table to be {expected:#?}"),
        || {
            let entries = flowspec(frr, afi);
            if &entries == expected {
                Ok(())
            } else {
                Err(format!("{entries:#?}"))
            }
        },
    );
}

/// Prefix → communities of the unicast table.
fn unicast(frr: &Frr, afi: &str) -> BTreeSet<String> {
    let json = frr.json(&format!("show bgp {afi} unicast json"));
    let mut routes = BTreeSet::new();
    for prefix in json["routes"].as_object().expect("routes").keys() {
        let detail = frr.json(&format!("show bgp {afi} unicast {prefix} json"));
        let path = &detail["paths"][0];
        routes.insert(format!(
            "{prefix} nh {} comm {}",
            path["nexthops"][0]["ip"].as_str().unwrap_or("?"),
            path["community"]["string"].as_str().unwrap_or("")
        ));
    }
    routes
}

fn wait_unicast(frr: &Frr, afi: &str, expected: &BTreeSet<String>) {
    wait_until(
        Duration::from_secs(10),
        &format!("FRR's {afi} unicast table to be {expected:#?}"),
        || {
            let routes = unicast(frr, afi);
            if &routes == expected {
                Ok(())
            } else {
                Err(format!("{routes:#?}"))
            }
        },
    );
}

#[test]
fn frr_receives_blackholes_and_flowspec_and_drops_them_on_withdraw() {
    let dir = test_dir("frr");
    let frr = Frr::start(&dir);
    let speaker = Speaker::start(speaker_config(), vec![peer("frr", frr.address())]);
    assert!(
        speaker.wait_established(Duration::from_secs(10)),
        "{:?}",
        speaker.status()
    );
    let rules = [
        blackhole("198.51.100.7/32"),
        blackhole("2001:db8::7/128"),
        ntp_discard("198.51.100.8/32"),
        dns_rate_limit("198.51.100.9/32"),
        syn_fragments("198.51.100.10/32"),
        udp6_discard("2001:db8::8/128"),
    ];
    for rule in &rules {
        speaker.announce(rule).unwrap();
    }
    // FRR adds no-export to BLACKHOLE routes by itself (RFC 7999 §3.2).
    wait_unicast(
        &frr,
        "ipv4",
        &set(&["198.51.100.7/32 nh 192.0.2.1 comm 65001:42 blackhole no-export"]),
    );
    wait_unicast(
        &frr,
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
    wait_flowspec(&frr, "ipv4", &set(&[ntp, dns, syn]));
    let udp6 = "Destination Address 2001:db8::8/128/off 0 | IP Protocol = 17 | FS:rate 0.000000";
    wait_flowspec(&frr, "ipv6", &set(&[udp6]));

    speaker.withdraw(&rules[0]).unwrap();
    speaker.withdraw(&rules[3]).unwrap();
    speaker.withdraw(&rules[5]).unwrap();
    wait_unicast(&frr, "ipv4", &set(&[]));
    wait_flowspec(&frr, "ipv4", &set(&[ntp, syn]));
    wait_flowspec(&frr, "ipv6", &set(&[]));

    speaker.shutdown(false);
    wait_unicast(&frr, "ipv6", &set(&[]));
    wait_flowspec(&frr, "ipv4", &set(&[]));
    let neighbor = frr.json("show bgp neighbors 127.0.0.1 json");
    let neighbor = &neighbor["127.0.0.1"];
    assert_ne!(neighbor["bgpState"], "Established", "{neighbor:#}");
    assert_eq!(
        neighbor["lastNotificationReason"], "Cease/Administrative Shutdown",
        "{neighbor:#}"
    );
}
