//! `floodwall check-config`: every problem of a configuration file that can be found, each with
//! its line, what is wrong and what to do.
//!
//! Three passes. TOML syntax (the parser recovers, so several syntax errors are reported at
//! once; a file with any is not checked further). Then deserialization: serde stops at the
//! first unknown key or wrong type, so the offending top-level section is dropped and the rest
//! deserialized again, one problem per section. Then the semantic checks of each part
//! (detection, mitigation, BGP, notifiers), whose messages name the field by its key path: the
//! path is looked up in the parsed document to find its line.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::{line_column, Config};

/// One problem, located.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// What to do, when there is more to say than the message.
    pub hint: Option<String>,
}

impl Problem {
    /// `origin:line:column: what is wrong — what to do`.
    pub fn display(&self, origin: &str) -> String {
        let mut s = format!("{origin}:{}:{}: {}", self.line, self.column, self.message);
        if let Some(hint) = &self.hint {
            s.push_str(" — ");
            s.push_str(hint);
        }
        s
    }
}

/// The outcome: the configuration when there is no problem.
pub struct Checked {
    pub config: Option<Config>,
    pub problems: Vec<Problem>,
}

pub fn check(text: &str) -> Checked {
    let at = |offset: usize, message: String, hint: Option<String>| {
        let (line, column) = line_column(text, offset);
        Problem {
            line,
            column,
            message,
            hint,
        }
    };
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        let problems = syntax
            .iter()
            .map(|e| {
                let message = e.message().trim().to_string();
                let hint = if message.contains("duplicate") {
                    "a key or table may be written once; merge or remove the repetition"
                } else {
                    "fix the TOML syntax (`key = value`, quoted strings, `[section]` headers)"
                };
                at(e.span().map_or(0, |s| s.start), message, Some(hint.into()))
            })
            .collect::<Vec<_>>();
        // The parser may report one error twice on its way out of a construct.
        let mut problems = problems;
        problems.sort_by_key(|p| (p.line, p.column));
        problems.dedup();
        return Checked {
            config: None,
            problems,
        };
    }

    let mut problems = Vec::new();
    let mut table = doc.clone();
    let mut config = None;
    // Sections dropped for an error: their defaults stand in, so their semantic checks would
    // judge values the file does not have.
    let mut skipped: Vec<String> = Vec::new();
    // Each round drops the section of the error it found; bounded by the number of sections.
    for _ in 0..=doc.get_ref().len() {
        match Config::deserialize(toml::de::Deserializer::from(table.clone())) {
            Ok(c) => {
                config = Some(c);
                break;
            }
            Err(e) => {
                let offset = e.span().map_or(0, |s| s.start);
                let message = e.message().trim().to_string();
                let hint = de_hint(&message);
                problems.push(at(offset, message, hint));
                let before = table.get_ref().len();
                let (span, inner) = (table.span(), table.into_inner());
                let (dropped, kept): (DeTable, DeTable) = inner
                    .into_iter()
                    .partition(|(k, v)| contains(&k.span(), offset) || covers(v, offset));
                skipped.extend(dropped.iter().map(|(k, _)| k.get_ref().to_string()));
                if kept.len() == before {
                    break; // not attributable to a section: nothing more to learn
                }
                table = Spanned::new(span, kept);
            }
        }
    }
    let Some(config) = config else {
        return Checked {
            config: None,
            problems,
        };
    };

    let paths = key_paths(doc.get_ref());
    let mut semantic = |base: &str, message: String, hint: Option<&str>| {
        let section = base.split(['.', '[']).next().unwrap_or(base);
        // Detection's checks read the top-level networks too.
        let inputs: &[&str] = match section {
            "detection" | "networks" => &["detection", "networks"],
            "mitigation" => &["mitigation", "detection"],
            _ => &[section],
        };
        if inputs.iter().any(|s| skipped.iter().any(|k| k == s)) {
            return;
        }
        let offset = locate(&paths, base, &message);
        problems.push(at(offset, message, hint.map(str::to_string)));
    };
    if let Err(message) = config.detection_config().validate() {
        semantic("detection", message, None);
    }
    if let Err(message) = config.mitigation.validate() {
        let hint = message
            .contains("less than min_seconds")
            .then_some("make max_seconds at least min_seconds, or 0 for no limit");
        semantic("mitigation", message, hint);
    }
    let group_names: Vec<&str> = config
        .detection
        .hostgroups
        .iter()
        .map(|g| g.name.as_str())
        .collect();
    for (i, group) in config.mitigation.hostgroups.iter().enumerate() {
        if !group.name.is_empty()
            && group.name != "default"
            && !group_names.contains(&group.name.as_str())
        {
            semantic(
                &format!("mitigation.hostgroups[{i}]"),
                format!(
                    "mitigation.hostgroups[{i}].name = {:?} names no [[detection.hostgroups]]",
                    group.name
                ),
                Some("use the name of a detection hostgroup (or `default`)"),
            );
        }
    }
    if let Some(bgp) = &config.bgp {
        if let Err(e) = bgp.validate() {
            let message = e.to_string();
            let hint = if message.contains("needs at least one") {
                Some("add a [[bgp.peers]] with `address` and `remote_as`, or remove [bgp]")
            } else if message.contains("must be set") {
                Some("add the key to the section")
            } else {
                None
            };
            semantic("bgp", message, hint);
        }
    }
    if config.nftables.enabled {
        if let Err(e) = config.nftables.validate() {
            semantic("nftables", e.to_string(), None);
        }
    }
    for (i, webhook) in config.webhooks.iter().enumerate() {
        if let Err(e) = webhook.validate() {
            semantic(&format!("webhooks[{i}]"), e.to_string(), None);
        }
    }
    for (i, script) in config.scripts.iter().enumerate() {
        if let Err(e) = script.validate() {
            semantic(&format!("scripts[{i}]"), e.to_string(), None);
        }
    }
    if let Err(message) = config.collector.validate() {
        semantic("collector", message, None);
    }
    if let Some(message) = config.open_to_spoofing() {
        semantic("collector", message, Some(super::EXPORTERS_HINT));
    }
    if config.detection_config().networks.is_empty() {
        semantic(
            "networks",
            "networks is empty: Floodwall does not know which addresses are yours, and `floodwall run` refuses to start".into(),
            Some("list your prefixes, e.g. `networks = [\"203.0.113.0/24\", \"2001:db8::/32\"]`"),
        );
    }
    problems.sort_by_key(|p| (p.line, p.column));
    Checked {
        config: problems.is_empty().then_some(config),
        problems,
    }
}

/// The one-line summary of a valid configuration.
pub fn summary(config: &Config) -> String {
    let d = config.detection_config();
    let m = &config.mitigation;
    let mut mitigations = Vec::new();
    if m.blackhole.enabled || m.hostgroups.iter().any(|g| g.blackhole == Some(true)) {
        mitigations.push("blackhole");
    }
    if m.flowspec.enabled || m.hostgroups.iter().any(|g| g.flowspec == Some(true)) {
        mitigations.push("flowspec");
    }
    let mitigations = if mitigations.is_empty() {
        "none".to_string()
    } else if m.dry_run {
        format!("{} (dry run)", mitigations.join(" + "))
    } else {
        mitigations.join(" + ")
    };
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let mut via = Vec::new();
    via.push(plural(
        config.bgp.as_ref().map_or(0, |b| b.peers.len()),
        "BGP peer",
    ));
    if config.exabgp.enabled {
        via.push("ExaBGP".into());
    }
    if config.nftables.enabled {
        via.push("nftables".into());
    }
    format!(
        "{}, {}, mitigations: {mitigations} via {}, {}, {}",
        plural(d.networks.len(), "network"),
        plural(d.hostgroups.len(), "hostgroup"),
        via.join(", "),
        plural(config.webhooks.len(), "webhook"),
        plural(config.scripts.len(), "script"),
    )
}

/// `line:column` of the key a semantic error of the part `base` names, for `Config::parse`.
pub(super) fn position(text: &str, base: &str, message: &str) -> String {
    let paths = DeTable::parse(text)
        .map(|doc| key_paths(doc.get_ref()))
        .unwrap_or_default();
    let (line, column) = line_column(text, locate(&paths, base, message));
    format!("{line}:{column}")
}

fn contains(span: &Range<usize>, offset: usize) -> bool {
    span.contains(&offset) || (span.is_empty() && span.start == offset)
}

/// Whether `offset` lies in this value or anything under it (tables from headers span only
/// their header, so their keys are looked at one by one).
fn covers(value: &Spanned<DeValue>, offset: usize) -> bool {
    if contains(&value.span(), offset) {
        return true;
    }
    match value.get_ref() {
        DeValue::Table(t) => t
            .iter()
            .any(|(k, v)| contains(&k.span(), offset) || covers(v, offset)),
        DeValue::Array(a) => a.iter().any(|v| covers(v, offset)),
        _ => false,
    }
}

/// Every key path of the document (`mitigation.max_seconds`, `bgp.peers[0].remote_as`) and
/// where its key is written.
fn key_paths(table: &DeTable) -> BTreeMap<String, usize> {
    fn walk(prefix: &str, table: &DeTable, out: &mut BTreeMap<String, usize>) {
        for (key, value) in table.iter() {
            let path = if prefix.is_empty() {
                key.get_ref().to_string()
            } else {
                format!("{prefix}.{}", key.get_ref())
            };
            out.entry(path.clone()).or_insert(key.span().start);
            match value.get_ref() {
                DeValue::Table(t) => walk(&path, t, out),
                DeValue::Array(a) => {
                    for (i, item) in a.iter().enumerate() {
                        let item_path = format!("{path}[{i}]");
                        if let DeValue::Table(t) = item.get_ref() {
                            // An array-of-tables entry is found by its first key (or the array).
                            let start = t
                                .iter()
                                .map(|(k, _)| k.span().start)
                                .min()
                                .unwrap_or(key.span().start);
                            out.entry(item_path.clone()).or_insert(start);
                            walk(&item_path, t, out);
                        } else {
                            out.entry(item_path).or_insert(item.span().start);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", table, &mut out);
    out
}

/// Where a semantic error belongs: the longest key path named in the message (alone, under
/// `base`, or under a path named before it) that the file has; else `base` or its parents;
/// else the start of the file.
fn locate(paths: &BTreeMap<String, usize>, base: &str, message: &str) -> usize {
    let tokens: Vec<&str> = message
        .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']')))
        .map(|t| t.trim_matches('.'))
        .map(|t| {
            if t.starts_with('[') {
                t.trim_matches(|c| c == '[' || c == ']')
            } else {
                t
            }
        })
        .filter(|t| t.chars().any(|c| c.is_ascii_alphabetic()))
        .collect();
    let mut best: Option<&String> = None;
    let mut found: Vec<String> = Vec::new();
    for token in tokens {
        let mut candidates = vec![token.to_string(), format!("{base}.{token}")];
        candidates.extend(found.iter().map(|p| format!("{p}.{token}")));
        for candidate in candidates {
            if let Some((path, _)) = paths.get_key_value(&candidate) {
                if best.is_none_or(|b| path.len() > b.len()) {
                    best = Some(path);
                }
                found.push(candidate);
            }
        }
    }
    if let Some(path) = best {
        return paths[path];
    }
    let mut base = base;
    loop {
        if let Some(&offset) = paths.get(base) {
            return offset;
        }
        match base.rfind(['.', '[']) {
            Some(i) => base = &base[..i],
            None => return 0,
        }
    }
}

/// What to do about a deserialization error, from its message.
fn de_hint(message: &str) -> Option<String> {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let unknown = rest.split('`').next().unwrap_or("");
        let expected: Vec<&str> = rest
            .split_once("expected")
            .map(|(_, list)| list.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        let closest = expected
            .iter()
            .map(|e| (edit_distance(unknown, e), *e))
            .min()
            .filter(|(d, _)| *d <= 3)
            // `hold_down` for `hold_down_seconds`: a unit suffix left off.
            .or_else(|| {
                expected
                    .iter()
                    .find(|e| e.starts_with(unknown))
                    .map(|e| (0, *e))
            });
        return Some(match closest {
            Some((_, e)) => format!("did you mean `{e}`?"),
            None => "remove it; docs/configuration.md lists the keys of each section".into(),
        });
    }
    if message.starts_with("unknown variant") {
        return Some("use one of the values listed".into());
    }
    if message.starts_with("invalid type") {
        let expected = message.rsplit("expected ").next().unwrap_or("");
        let what = match expected.trim() {
            e if e.starts_with('u') || e.starts_with('i') && e[1..].parse::<u8>().is_ok() => {
                "a whole number, without quotes"
            }
            "f64" | "f32" => "a number, without quotes",
            "a boolean" => "`true` or `false`",
            "a sequence" => "a list in brackets, e.g. [\"…\"]",
            "a string" => "a quoted string",
            _ => return Some("see docs/configuration.md for the key's type".into()),
        };
        return Some(format!("write {what}"));
    }
    if message.contains("address syntax") || message.contains("IP address") {
        return Some("write an address such as 203.0.113.1, 2001:db8::1 or 203.0.113.0/24".into());
    }
    None
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        check(text)
            .problems
            .iter()
            .map(|p| p.display("f.toml"))
            .collect()
    }

    const NETS: &str = "networks = [\"203.0.113.0/24\"]\n";

    #[test]
    fn a_valid_file_has_no_problems_and_a_summary() {
        let checked = check(&format!(
            "{NETS}[collector]\nallow_exporters = [\"192.0.2.0/24\"]\n[mitigation.blackhole]\nenabled = true\n"
        ));
        assert!(checked.problems.is_empty(), "{:?}", checked.problems);
        let summary = summary(checked.config.as_ref().unwrap());
        assert!(
            summary.starts_with("1 network, 0 hostgroups, mitigations: blackhole"),
            "{summary}"
        );
    }

    #[test]
    fn syntax_errors_have_their_lines() {
        let p = problems(&format!("{NETS}\n[collector\nrecv_buffer_mib = 4\n"));
        assert!(p[0].starts_with("f.toml:3:"), "{p:?}");
    }

    #[test]
    fn each_section_gets_its_own_problem() {
        let text = format!(
            "{NETS}[collector]\nlisen = []\n\n[mitigation]\nmin_seconds = \"60\"\n\n[state]\ndir = 3\n"
        );
        let p = problems(&text);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(
            p[0].starts_with("f.toml:3:1: unknown field `lisen`")
                && p[0].contains("did you mean `listen`?"),
            "{p:?}"
        );
        assert!(
            p[1].starts_with("f.toml:6:15: invalid type") && p[1].contains("whole number"),
            "{p:?}"
        );
        assert!(p[2].starts_with("f.toml:9:7:"), "{p:?}");
    }

    #[test]
    fn semantic_errors_point_at_their_key() {
        let text = format!(
            "{NETS}\n[detection]\nprefix_length_v4 = 8\n\n[mitigation]\nmin_seconds = 60\nmax_seconds = 10\n\n[bgp]\nlocal_as = 65000\nrouter_id = \"192.0.2.1\"\n"
        );
        let p = problems(&text);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with("f.toml:4:1: prefix_length_v4"), "{p:?}");
        assert!(
            p[1].starts_with("f.toml:8:1: mitigation.max_seconds = 10"),
            "{p:?}"
        );
        assert!(
            p[2].starts_with("f.toml:10:2: [bgp] needs at least one"),
            "{p:?}"
        );
    }

    #[test]
    fn a_hostgroup_problem_points_into_its_entry() {
        let text = format!(
            "{NETS}\n[[detection.hostgroups]]\nname = \"a\"\nnetworks = [\"203.0.113.0/28\"]\n\n[[detection.hostgroups]]\nname = \"b\"\nnetworks = [\"198.51.100.0/28\"]\n"
        );
        let p = problems(&text);
        assert!(
            p[0].starts_with("f.toml:9:1: hostgroups[1].networks: 198.51.100.0/28"),
            "{p:?}"
        );
    }

    /// A section dropped for a type error is not judged again on its stand-in defaults.
    #[test]
    fn a_dropped_section_gets_no_semantic_complaints() {
        let p = problems(
            "networks = [\"203.0.113.0/33\"]\n[[detection.hostgroups]]\nname = \"a\"\nnetworks = [\"203.0.113.0/28\"]\n",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("f.toml:1:13: invalid"), "{p:?}");
    }

    #[test]
    fn repeated_syntax_errors_are_reported_once() {
        let p = problems("a = 1\na = 2\nb = [1,\n[x\n");
        assert!(p[0].starts_with("f.toml:2:1: duplicate key — "), "{p:?}");
        let mut unique = p.clone();
        unique.dedup();
        assert_eq!(unique, p);
    }

    #[test]
    fn no_networks_is_a_problem() {
        let p = problems("networks = []\n");
        assert!(p[0].starts_with("f.toml:1:1: networks is empty"), "{p:?}");
    }
}
