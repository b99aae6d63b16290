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
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

use ipnet::IpNet;

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

/// Whether the file itself must name the monitored networks: `run` and `replay` also take them
/// from `--network` (and refuse to start without any), so only `check-config` insists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Networks {
    InFile,
    MayComeLater,
}

/// Every problem `check-config` reports.
pub fn check(text: &str) -> Checked {
    check_with(text, Networks::InFile)
}

/// The one validation of a configuration text: `check-config` reports what it finds and
/// `Config::parse` (hence `run`, `replay`, `mitigations`) refuses on it, so they always agree.
pub fn check_with(text: &str, networks: Networks) -> Checked {
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
    // Sections with an error: what is left of them is incomplete, so their semantic checks
    // would judge values the file does not have.
    let mut skipped: Vec<String> = Vec::new();
    // serde stops at the first error: each round drops the key or list item at fault and
    // deserializes again, so independent errors (two bad networks in one list) are all found.
    for _ in 0..MAX_DESERIALIZE_ROUNDS {
        match Config::deserialize(toml::de::Deserializer::from(table.clone())) {
            Ok(c) => {
                config = Some(c);
                break;
            }
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                let message = e.message().trim().to_string();
                let path = path_at(doc.get_ref(), span.start);
                let hint = if message.contains("address syntax") {
                    address_hint(text, &span, &message, &path)
                } else {
                    de_hint(&message)
                };
                problems.push(at(span.start, message, hint));
                skipped.extend(
                    doc.get_ref()
                        .iter()
                        .filter(|(k, v)| contains(&k.span(), span.start) || covers(v, span.start))
                        .map(|(k, _)| k.get_ref().to_string()),
                );
                if !drop_at(table.get_mut(), span.start) {
                    break; // not attributable to a key: nothing more to learn
                }
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
    for found in semantic(&config, networks) {
        let base = found.base.as_str();
        let section = base.split(['.', '[']).next().unwrap_or(base);
        // Detection's checks read the top-level networks too.
        let inputs: &[&str] = match section {
            "detection" | "networks" => &["detection", "networks"],
            "mitigation" => &["mitigation", "detection"],
            _ => &[section],
        };
        if inputs.iter().any(|s| skipped.iter().any(|k| k == s)) {
            continue;
        }
        let offset = match found.path.as_deref().and_then(|p| paths.get(p)) {
            Some(&offset) => offset,
            // Untyped errors, and keys the file leaves to their defaults: by the message.
            None => locate(&paths, base, &found.message),
        };
        problems.push(at(offset, found.message, found.hint));
    }
    problems.sort_by_key(|p| (p.line, p.column));
    Checked {
        config: problems.is_empty().then_some(config),
        problems,
    }
}

/// Enough rounds for every key of a long file to be wrong; each round is one parse.
const MAX_DESERIALIZE_ROUNDS: usize = 256;

/// A problem of a deserialized configuration, before it is located: `base` is the key path it
/// belongs to (the message may name a longer one); `path` the key at fault, when the error
/// says which.
struct Semantic {
    base: String,
    path: Option<String>,
    message: String,
    hint: Option<String>,
}

/// The checks of the values themselves, for both `check-config` and `run`.
fn semantic(config: &Config, networks: Networks) -> Vec<Semantic> {
    let mut out = Vec::new();
    if let Err(e) = config.detection_config().validate() {
        out.push(Semantic {
            base: "detection".into(),
            path: Some(e.path().into()),
            message: e.to_string(),
            hint: None,
        });
    }
    if let Err(e) = config.mitigation.validate() {
        let hint = matches!(e, floodwall_mitigate::ConfigError::MaxBelowMin { .. })
            .then_some("make max_seconds at least min_seconds, or 0 for no limit");
        out.push(Semantic {
            base: "mitigation".into(),
            path: Some(e.path()),
            message: e.to_string(),
            hint: hint.map(str::to_string),
        });
    }
    let mut found = |base: &str, message: String, hint: Option<&str>| {
        out.push(Semantic {
            base: base.to_string(),
            path: None,
            message,
            hint: hint.map(str::to_string),
        })
    };
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
            found(
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
            found("bgp", message, hint);
        }
    }
    if config.nftables.enabled {
        if let Err(e) = config.nftables.validate() {
            found("nftables", e.to_string(), None);
        }
    }
    for (i, webhook) in config.webhooks.iter().enumerate() {
        if let Err(e) = webhook.validate() {
            found(&format!("webhooks[{i}]"), e.to_string(), None);
        }
    }
    for (i, script) in config.scripts.iter().enumerate() {
        if let Err(e) = script.validate() {
            found(&format!("scripts[{i}]"), e.to_string(), None);
        }
    }
    if config.collector.listen.is_empty() {
        found(
            "collector.listen",
            "collector.listen is empty: the daemon would receive no telemetry".into(),
            Some("list an address, e.g. `listen = [\"0.0.0.0:6343\"]`, or remove the key for the defaults (0.0.0.0 and [::] on 6343, 2055 and 4739)"),
        );
    }
    // A network written with host bits set is almost always a typo for another network or for
    // one address; which one is the operator's call, so it is refused rather than truncated.
    let lists: Vec<(String, &[IpNet])> = [
        ("networks".to_string(), config.networks.as_slice()),
        ("detection.networks".into(), &config.detection.networks),
        ("mitigation.never".into(), &config.mitigation.never),
        (
            "collector.allow_exporters".into(),
            &config.collector.allow_exporters,
        ),
    ]
    .into_iter()
    .chain(
        config
            .detection
            .hostgroups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                (
                    format!("detection.hostgroups[{i}].networks"),
                    g.networks.as_slice(),
                )
            }),
    )
    .collect();
    for (list, nets) in lists {
        for (i, net) in nets.iter().enumerate() {
            if net.addr() != net.network() {
                let host = IpNet::from(net.addr());
                found(
                    &format!("{list}[{i}]"),
                    format!(
                        "{list}[{i}] = {net} has host bits set (its network is {})",
                        net.trunc()
                    ),
                    Some(&format!(
                        "write the network, \"{}\" (or \"{host}\" for the one address)",
                        net.trunc()
                    )),
                );
            }
        }
    }
    if let Err(message) = config.collector.validate() {
        found("collector", message, None);
    }
    if let Err(message) = config.hunt.validate() {
        found("hunt", message, None);
    }
    if let Err(message) = config.history.validate() {
        found("history", message, None);
    }
    if let Err(message) = config.http.validate() {
        found(
            "http",
            message,
            Some("set both (PEM files) for HTTPS, or neither for plain HTTP"),
        );
    }
    // Only the daemon listens: `check-config` judges the file as `run` would take it (which
    // refuses the same with `require_trusted_exporters`); replay and the control client do not.
    if networks == Networks::InFile {
        if let Some(message) = config.open_to_spoofing() {
            found("collector", message, Some(super::EXPORTERS_HINT));
        }
    }
    if networks == Networks::InFile && config.detection_config().networks.is_empty() {
        found(
            "networks",
            "networks is empty: Floodwall does not know which addresses are yours, and `floodwall run` refuses to start".into(),
            Some("list your prefixes, e.g. `networks = [\"203.0.113.0/24\", \"2001:db8::/32\"]`"),
        );
    }
    out
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

/// Removes the innermost key or list item at `offset`; false when there is none.
fn drop_at(table: &mut DeTable, offset: usize) -> bool {
    let mut at = None;
    for (key, value) in table.iter_mut() {
        if contains(&key.span(), offset) {
            at = Some(key.clone());
            break;
        }
        if covers(value, offset) {
            if drop_in(value.get_mut(), offset) {
                return true;
            }
            at = Some(key.clone());
            break;
        }
    }
    at.is_some_and(|key| table.remove(&key).is_some())
}

fn drop_in(value: &mut DeValue, offset: usize) -> bool {
    match value {
        DeValue::Table(t) => drop_at(t, offset),
        DeValue::Array(a) => {
            let Some(i) = a.iter().position(|v| covers(v, offset)) else {
                return false;
            };
            if drop_in((**a)[i].get_mut(), offset) {
                return true;
            }
            let items = std::mem::replace(a, toml::de::DeArray::new());
            *a = items
                .into_iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, v)| v)
                .collect();
            true
        }
        _ => false,
    }
}

/// The key path of the value at `offset` (`bgp.peers[0].address`), empty when none.
fn path_at(table: &DeTable, offset: usize) -> String {
    fn walk(prefix: String, value: &DeValue, offset: usize) -> String {
        match value {
            DeValue::Table(t) => t
                .iter()
                .find(|(k, v)| contains(&k.span(), offset) || covers(v, offset))
                .map(|(k, v)| {
                    let path = if prefix.is_empty() {
                        k.get_ref().to_string()
                    } else {
                        format!("{prefix}.{}", k.get_ref())
                    };
                    walk(path, v.get_ref(), offset)
                })
                .unwrap_or(prefix),
            DeValue::Array(a) => match a.iter().position(|v| covers(v, offset)) {
                Some(i) => walk(format!("{prefix}[{i}]"), a[i].get_ref(), offset),
                None => prefix,
            },
            _ => prefix,
        }
    }
    walk(String::new(), &DeValue::Table(table.clone()), offset)
}

/// What to write instead of an address the field refused: a form derived from what was
/// written, offered only if the field accepts it (it is put in the file's place and parsed).
fn address_hint(text: &str, span: &Range<usize>, message: &str, path: &str) -> Option<String> {
    let written = text.get(span.clone())?.trim().trim_matches('"');
    let example_net = |addr: IpAddr| {
        let len = if addr.is_ipv4() { 24 } else { 48 };
        IpNet::new(addr, len).map(|n| n.trunc().to_string()).ok()
    };
    let mut candidates: Vec<(String, String)> = Vec::new();
    if message.contains("socket address") {
        // Listeners take telemetry, peers speak BGP: the usual port of each.
        let port = if path.contains("listen") { 6343 } else { 179 };
        if let Ok(addr) = written.parse::<IpAddr>() {
            let with_port = SocketAddr::new(addr, port).to_string();
            candidates.push((format!("add the port: \"{with_port}\""), with_port));
        }
        let example = SocketAddr::new(IpAddr::from([192, 0, 2, 1]), port).to_string();
        candidates.push((
            format!("write an address and a port, e.g. \"{example}\""),
            example,
        ));
    } else {
        match written.split_once('/') {
            Some((addr, _)) => {
                if let Some(example) = addr.parse().ok().and_then(example_net) {
                    candidates.push((
                        format!(
                            "a prefix length is 0 to 32 for IPv4, 0 to 128 for IPv6, e.g. \"{example}\""
                        ),
                        example,
                    ));
                }
            }
            None => {
                if let Ok(addr) = written.parse::<IpAddr>() {
                    let host = IpNet::from(addr).to_string();
                    candidates.push((
                        format!("a network needs a prefix length: \"{host}\" for this one address"),
                        host,
                    ));
                }
            }
        }
        for example in ["203.0.113.0/24", "192.0.2.1"] {
            candidates.push((format!("write e.g. \"{example}\""), example.to_string()));
        }
    }
    candidates
        .into_iter()
        .find(|(_, form)| accepted_in_place(text, span, form))
        .map(|(hint, _)| hint)
}

/// Whether the file with `form` (a string) in place of the value at `span` gets past that value.
fn accepted_in_place(text: &str, span: &Range<usize>, form: &str) -> bool {
    let fixed = format!("{}\"{form}\"{}", &text[..span.start], &text[span.end..]);
    match toml::from_str::<Config>(&fixed) {
        Ok(_) => true,
        Err(e) => e.span().is_none_or(|s| s.start != span.start),
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
