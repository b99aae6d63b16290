//! Any bytes as a C2 feed (a threat-intel download, a hand-edited list): parsed or refused,
//! never a panic; every address listed is found by a lookup, and the RPZ zone rendered from its
//! domains holds one record per line, of the two shapes the zone allows (no injected `$`
//! directives or extra records).
#![no_main]
use floodwall_hunt::feed::C2List;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(parsed) = C2List::parse("fuzz", &text) else {
        return;
    };
    let list = C2List::from_feeds(vec![parsed]);
    for entry in list.addresses() {
        let hit = list.lookup(entry.net.addr(), entry.port.unwrap_or(1));
        assert!(hit.is_some_and(|e| e.net.contains(&entry.net.addr())));
    }
    let rpz = floodwall_hunt::rpz::render("rpz.floodwall.", list.domains(), 1).unwrap();
    for line in rpz.text.lines().skip(5) {
        let (name, rest) = line.split_once(' ').unwrap();
        assert_eq!(rest, "CNAME .");
        let bare = name.strip_prefix("*.").unwrap_or(name);
        assert!(floodwall_hunt::feed::valid_hostname(bare), "{line}");
    }
});
