//! The C2 domains as a DNS Response Policy Zone (draft-vixie-dnsop-dns-rpz): a zone file that
//! Unbound (`rpz:` with `zonefile:`), BIND (`response-policy`) or Knot Resolver load, where
//! `name CNAME .` answers NXDOMAIN for the name and `*.name CNAME .` for every name under it
//! (C2s rotate subdomains).
//!
//! Pure: names in, text out. Deterministic (sorted, duplicates once) so that an unchanged list
//! renders the same zone and the writer can skip rewriting it. Every name is checked again
//! here, whoever built it: a label that is no hostname label (`_`, spaces, `;`, a `$INCLUDE`
//! smuggled into a feed) would change what the zone file means.

use crate::feed::{valid_hostname, C2Domain};

/// A rendered zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rpz {
    pub text: String,
    /// Domains in the zone.
    pub listed: usize,
    /// Names refused: not hostnames, or too long once under the zone's name.
    pub rejected: usize,
}

/// What cannot be rendered at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpzError {
    #[error("rpz_zone `{0}` is not a valid zone name (hostname labels, e.g. rpz.floodwall.)")]
    ZoneName(String),
}

/// The zone's name, lowercase with its trailing dot.
pub fn zone_name(zone: &str) -> Result<String, RpzError> {
    let bare = zone.strip_suffix('.').unwrap_or(zone);
    if !valid_hostname(bare) {
        return Err(RpzError::ZoneName(zone.to_string()));
    }
    Ok(format!("{}.", bare.to_ascii_lowercase()))
}

/// Renders the zone `zone` listing `domains` (NXDOMAIN for each and its subdomains) with the
/// SOA serial `serial` (the caller's: time-based, so a changed zone always counts up).
pub fn render<'a>(
    zone: &str,
    domains: impl IntoIterator<Item = &'a C2Domain>,
    serial: u32,
) -> Result<Rpz, RpzError> {
    let origin = zone_name(zone)?;
    let mut names: Vec<String> = Vec::new();
    let mut rejected = 0;
    for d in domains {
        let name = d
            .name
            .strip_suffix('.')
            .unwrap_or(&d.name)
            .to_ascii_lowercase();
        // `*.` + name + `.` + origin must fit in 255 bytes (the wire limit of a name).
        if !valid_hostname(&name) || name.len() + origin.len() + 3 > 255 {
            rejected += 1;
            continue;
        }
        names.push(name);
    }
    names.sort_unstable();
    names.dedup();
    let mut text = String::with_capacity(200 + names.len() * 64);
    // Written by Floodwall: the header says so, and that it is rewritten.
    text.push_str(
        "; C2 domains from Floodwall's [hunt] c2_feeds: regenerated on change, do not edit\n",
    );
    text.push_str(&format!("$ORIGIN {origin}\n$TTL 300\n"));
    // Refresh/retry/expire only matter to secondaries; the minimum (300) is the negative TTL.
    text.push_str(&format!(
        "@ IN SOA localhost. hostmaster.localhost. {serial} 3600 600 86400 300\n@ IN NS localhost.\n"
    ));
    for name in &names {
        text.push_str(&format!("{name} CNAME .\n*.{name} CNAME .\n"));
    }
    Ok(Rpz {
        text,
        listed: names.len(),
        rejected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain(name: &str) -> C2Domain {
        C2Domain {
            name: name.into(),
            feed: "f".into(),
            malware: None,
        }
    }

    #[test]
    fn a_zone_lists_each_name_and_its_subdomains_once_in_order() {
        let domains = [
            domain("zz.example"),
            domain("cnc.evil.example"),
            domain("Cnc.Evil.Example."),
            domain("bad_label.example"),
            domain("x;y.example"),
            domain("$INCLUDE /etc/passwd"),
        ];
        let rpz = render("RPZ.floodwall", &domains, 7).unwrap();
        assert_eq!((rpz.listed, rpz.rejected), (2, 3));
        assert_eq!(
            rpz.text,
            "; C2 domains from Floodwall's [hunt] c2_feeds: regenerated on change, do not edit\n\
             $ORIGIN rpz.floodwall.\n$TTL 300\n\
             @ IN SOA localhost. hostmaster.localhost. 7 3600 600 86400 300\n\
             @ IN NS localhost.\n\
             cnc.evil.example CNAME .\n*.cnc.evil.example CNAME .\n\
             zz.example CNAME .\n*.zz.example CNAME .\n"
        );
        // Same names in another order: the same zone.
        let mut reversed = domains.to_vec();
        reversed.reverse();
        assert_eq!(render("rpz.floodwall.", &reversed, 7).unwrap(), rpz);
    }

    #[test]
    fn names_too_long_under_the_zone_and_bad_zone_names_are_refused() {
        let label = "a".repeat(63);
        let long = format!("{label}.{label}.{label}.{}", "b".repeat(50));
        assert!(valid_hostname(&long));
        let rpz = render("rpz.floodwall.", &[domain(&long)], 1).unwrap();
        assert_eq!((rpz.listed, rpz.rejected), (0, 1));
        assert!(render("bad zone.", &[], 1).is_err());
        assert!(render(".", &[], 1).is_err());
        assert!(!valid_hostname("-a.example"));
        assert!(!valid_hostname("a..example"));
        assert!(!valid_hostname(&format!("{}.example", "a".repeat(64))));
        assert!(valid_hostname("xn--bcher-kva.example"));
    }
}
