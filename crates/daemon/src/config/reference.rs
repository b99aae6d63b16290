//! The configuration explained from its own definitions: the JSON schema that `schemars` derives
//! from the config structs (doc comments become descriptions, `Default` impls the defaults) is
//! walked once into a tree of sections and fields, which renders both the commented
//! floodwall.toml that `floodwall init` writes and docs/configuration.md. Neither can drift
//! from the code: a field added to a struct appears in both, with its doc comment.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

use floodwall_detect::config::Thresholds;

use super::Config;

/// How a section appears in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The top level (no header).
    Root,
    /// `[a.b]`, always present (its fields have defaults).
    Table,
    /// `[a]` that is absent by default (`Option<…>`): shown commented out.
    Optional,
    /// `[[a]]`, an array of tables, empty by default: shown as a commented-out example.
    Array,
}

#[derive(Debug, Clone)]
pub struct Field {
    pub key: String,
    /// Human-readable TOML type.
    pub ty: String,
    pub doc: String,
    /// The default as JSON; `Null` for an unset optional.
    pub default: Value,
    /// A value for commented-out examples (`#[schemars(example = …)]`), where the default would
    /// not make a working example.
    pub example: Option<Value>,
    /// What an unset key means when that is a value: the built-in detection limits.
    pub builtin: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct Section {
    /// Dotted path, e.g. `detection.carpet`; empty for the root.
    pub path: String,
    pub kind: Kind,
    /// The doc comment of the field that holds the section.
    pub doc: String,
    /// The doc comment of the section's type (printed once per type).
    pub type_doc: String,
    /// The schema definition's name (the Rust type), to print a repeated type only once.
    pub type_name: String,
    pub fields: Vec<Field>,
    pub sections: Vec<Section>,
}

/// The configuration's tree, from the schema of [`Config`].
pub fn model() -> Section {
    let schema = schemars::schema_for!(Config);
    let root = schema.as_value();
    let defs = root
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut section = build(&defs, root, String::new(), Kind::Root, "Config");
    let names = type_paths(&section);
    fix_links(&mut section, &names);
    for (path, limits) in [
        ("detection.incoming", Thresholds::builtin_incoming()),
        ("detection.outgoing", Thresholds::builtin_outgoing()),
    ] {
        let limits = serde_json::to_value(limits).expect("plain numbers");
        if let Some(s) = find(&mut section, path) {
            for f in &mut s.fields {
                f.builtin = limits.get(&f.key).filter(|v| !v.is_null()).cloned();
            }
        }
    }
    section
}

fn find<'a>(section: &'a mut Section, path: &str) -> Option<&'a mut Section> {
    if section.path == path {
        return Some(section);
    }
    section.sections.iter_mut().find_map(|s| find(s, path))
}

impl Section {
    /// Printed in full even when its type was printed before (its built-in values differ).
    fn has_builtins(&self) -> bool {
        self.fields.iter().any(|f| f.builtin.is_some())
    }
}

fn resolve<'a>(
    defs: &'a serde_json::Map<String, Value>,
    schema: &'a Value,
) -> (&'a Value, &'a str) {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.trim_start_matches("#/$defs/");
            (defs.get(name).unwrap_or(schema), name)
        }
        None => (schema, ""),
    }
}

fn is_table(schema: &Value) -> bool {
    schema.get("properties").is_some()
}

fn build(
    defs: &serde_json::Map<String, Value>,
    schema: &Value,
    path: String,
    kind: Kind,
    type_name: &str,
) -> Section {
    let mut section = Section {
        path: path.clone(),
        kind,
        doc: String::new(),
        type_doc: text(schema),
        type_name: type_name.to_string(),
        fields: Vec::new(),
        sections: Vec::new(),
    };
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return section;
    };
    for (key, prop) in props {
        let sub_path = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let sub = |def: &Value, kind: Kind, name: &str| {
            let mut s = build(defs, def, sub_path.clone(), kind, name);
            s.doc = text(prop);
            s
        };
        // A table, an optional table (anyOf [T, null]) or an array of tables?
        let (def, name) = resolve(defs, prop);
        if is_table(def) {
            section.sections.push(sub(def, Kind::Table, name));
            continue;
        }
        if let Some(any) = prop.get("anyOf").and_then(Value::as_array) {
            if let Some((def, name)) = any
                .iter()
                .map(|s| resolve(defs, s))
                .find(|(d, _)| is_table(d))
            {
                section.sections.push(sub(def, Kind::Optional, name));
                continue;
            }
        }
        if let Some(items) = prop.get("items") {
            let (def, name) = resolve(defs, items);
            if is_table(def) {
                section.sections.push(sub(def, Kind::Array, name));
                continue;
            }
        }
        section.fields.push(Field {
            key: key.clone(),
            ty: type_of(defs, prop),
            doc: text(prop),
            default: prop.get("default").cloned().unwrap_or(Value::Null),
            example: prop
                .get("examples")
                .and_then(Value::as_array)
                .and_then(|e| e.first())
                .cloned(),
            builtin: None,
        });
    }
    section
}

fn text(schema: &Value) -> String {
    schema
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn type_of(defs: &serde_json::Map<String, Value>, prop: &Value) -> String {
    let (schema, name) = resolve(defs, prop);
    match name {
        "IpNet" => return "CIDR prefix".into(),
        "Ipv4Net" => return "IPv4 CIDR prefix".into(),
        "Ipv6Net" => return "IPv6 CIDR prefix".into(),
        _ => {}
    }
    let consts: Vec<String> = schema
        .get("enum")
        .and_then(Value::as_array)
        .map(|v| v.iter().map(|c| c.to_string()).collect())
        .or_else(|| {
            schema.get("oneOf").and_then(Value::as_array).map(|v| {
                v.iter()
                    .filter_map(|c| c.get("const"))
                    .map(|c| c.to_string())
                    .collect()
            })
        })
        .unwrap_or_default();
    if !consts.is_empty() {
        return consts.join(" \\| ");
    }
    let (base, optional) = match schema.get("type") {
        Some(Value::String(t)) => (t.as_str(), false),
        Some(Value::Array(ts)) => (
            ts.iter()
                .filter_map(Value::as_str)
                .find(|t| *t != "null")
                .unwrap_or("any"),
            true,
        ),
        _ => ("any", false),
    };
    let base = match (base, schema.get("format").and_then(Value::as_str)) {
        ("string", Some("ip")) => "IP address".to_string(),
        ("string", Some("ipv4")) => "IPv4 address".to_string(),
        ("array", _) => format!(
            "array of {}",
            schema
                .get("items")
                .map_or("any".to_string(), |i| type_of(defs, i))
        ),
        (t, _) => t.to_string(),
    };
    if optional {
        format!("{base} (optional)")
    } else {
        base
    }
}

/// First path at which each type appears.
fn type_paths(root: &Section) -> BTreeMap<String, String> {
    fn walk(s: &Section, out: &mut BTreeMap<String, String>) {
        out.entry(s.type_name.clone())
            .or_insert_with(|| s.path.clone());
        for sub in &s.sections {
            walk(sub, out);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, &mut out);
    out
}

/// Rustdoc links (``[`CarpetConfig::pps`]``) name Rust types a reader of the file does not see:
/// they become the section and key.
fn fix_links(section: &mut Section, names: &BTreeMap<String, String>) {
    let fix = |text: &str| -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("[`") {
            let Some(len) = rest[start..].find("`]") else {
                break;
            };
            out.push_str(&rest[..start]);
            let inner = &rest[start + 2..start + len];
            let (ty, field) = inner.split_once("::").unwrap_or((inner, ""));
            match names.get(ty) {
                Some(path) if field.is_empty() => write!(out, "`[{path}]`").unwrap(),
                Some(path) => write!(out, "`{path}.{field}`").unwrap(),
                None => write!(out, "`{inner}`").unwrap(),
            }
            rest = &rest[start + len + 2..];
        }
        out.push_str(rest);
        out
    };
    section.doc = fix(&section.doc);
    section.type_doc = fix(&section.type_doc);
    for f in &mut section.fields {
        f.doc = fix(&f.doc);
    }
    for s in &mut section.sections {
        fix_links(s, names);
    }
}

/// A JSON default as a TOML value (inline); `None` for an unset optional.
pub fn toml_value(value: &Value) -> Option<String> {
    if value.is_null() {
        return None;
    }
    // Unset optionals inside a table would not serialize; the tables here are all flat values.
    toml::Value::try_from(value).ok().map(|v| v.to_string())
}

fn header(section: &Section) -> String {
    match section.kind {
        Kind::Root => String::new(),
        Kind::Array => format!("[[{}]]", section.path),
        Kind::Table | Kind::Optional => format!("[{}]", section.path),
    }
}

fn comment_lines(out: &mut String, text: &str, prefix: &str) {
    for line in text.lines() {
        if line.trim().is_empty() {
            out.push_str(prefix.trim_end());
            out.push('\n');
        } else {
            writeln!(out, "{prefix}{line}").unwrap();
        }
    }
}

/// The commented floodwall.toml of `floodwall init`. Every key is present with its default:
/// uncommented where the default is a value, commented out where it is unset, and optional
/// sections and arrays of tables as commented-out examples. `networks` is written as given
/// (empty: `floodwall run` refuses until it is filled in).
pub fn template(networks: &[ipnet::IpNet]) -> String {
    let root = model();
    let mut out = String::new();
    out.push_str(concat!(
        "# floodwall.toml, written by `floodwall init` (Floodwall ",
        env!("CARGO_PKG_VERSION"),
        ").\n",
        "#\n",
        "# Every option is listed with its default value and what it does. Keys that are commented\n",
        "# out are unset by default (a value shown is the built-in one an unset key takes, or an\n",
        "# example); sections and [[tables]] that are commented out are optional.\n",
        "# Check the file after editing with `floodwall check-config floodwall.toml`.\n",
        "# Reference: docs/configuration.md (`floodwall init --reference`).\n\n",
    ));
    let mut seen = BTreeMap::new();
    write_template(&mut out, &root, false, &mut seen, networks);
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn write_template(
    out: &mut String,
    section: &Section,
    commented: bool,
    seen: &mut BTreeMap<String, String>,
    networks: &[ipnet::IpNet],
) {
    let commented = commented || matches!(section.kind, Kind::Optional | Kind::Array);
    let c = if commented { "# " } else { "" };
    if section.kind != Kind::Root {
        out.push_str(
            "# ────────────────────────────────────────────────────────────────────────\n",
        );
        comment_lines(out, &section.doc, "# ");
        if !seen.contains_key(&section.type_name) && section.type_doc != section.doc {
            if !section.doc.is_empty() {
                out.push_str("#\n");
            }
            comment_lines(out, &section.type_doc, "# ");
        }
        writeln!(out, "{c}{}", header(section)).unwrap();
        if let Some(first) = seen
            .get(&section.type_name)
            .filter(|_| !section.has_builtins())
        {
            writeln!(out, "# (the same keys as [{first}])\n").unwrap();
            return;
        }
        seen.insert(section.type_name.clone(), section.path.clone());
        out.push('\n');
    }
    for field in &section.fields {
        comment_lines(out, &field.doc, "# ");
        let mut value = toml_value(&field.default);
        if section.kind == Kind::Root && field.key == "networks" {
            value = Some(toml::Value::try_from(networks).unwrap().to_string());
        }
        // An example shows a working value where the default does not make one: in
        // commented-out sections, and for keys unset by default.
        let example = (commented || value.is_none())
            .then(|| field.example.as_ref().and_then(toml_value))
            .flatten();
        match (value, example) {
            (_, Some(v)) => writeln!(out, "# {} = {v}", field.key).unwrap(),
            (Some(v), None) if !commented => writeln!(out, "{} = {v}", field.key).unwrap(),
            (Some(v), None) => writeln!(out, "# {} = {v}", field.key).unwrap(),
            (None, None) => match field.builtin.as_ref().and_then(toml_value) {
                Some(v) => writeln!(out, "# {} = {v}", field.key).unwrap(),
                None => writeln!(out, "# {} =", field.key).unwrap(),
            },
        }
        out.push('\n');
    }
    for sub in &section.sections {
        write_template(out, sub, commented, seen, networks);
    }
}

/// docs/configuration.md.
pub fn markdown() -> String {
    let root = model();
    let mut out = String::new();
    out.push_str(
        "<!-- Generated from the configuration structs' doc comments and defaults by\n     \
         `floodwall init --reference --output docs/configuration.md --force`. Do not edit:\n     \
         change the doc comments in the code and regenerate. -->\n\n\
         # Configuration reference\n\n\
         Floodwall reads one TOML file (`floodwall run --config floodwall.toml`). Every section\n\
         and key is optional and has the default shown here, except `networks`: Floodwall must\n\
         know which addresses are yours. `floodwall init` writes a commented file with every key\n\
         below; `floodwall check-config FILE` checks one and names the line of each problem.\n\n\
         Types are TOML types; \"(optional)\" keys are unset by default and may be left out\n\
         (\"unset: `X`\" is the built-in value an unset key takes).\n\
         Sections marked *optional* are absent by default; `[[…]]` sections are arrays of tables\n\
         (repeat the header for each entry).\n",
    );
    let mut seen = BTreeMap::new();
    write_markdown(&mut out, &root, &mut seen);
    out
}

fn write_markdown(out: &mut String, section: &Section, seen: &mut BTreeMap<String, String>) {
    let title = match section.kind {
        Kind::Root => "Top level".to_string(),
        Kind::Optional => format!("`{}` (optional)", header(section)),
        Kind::Array => format!("`{}` (array of tables, none by default)", header(section)),
        Kind::Table => format!("`{}`", header(section)),
    };
    writeln!(out, "\n## {title}\n").unwrap();
    if !section.doc.is_empty() {
        writeln!(out, "{}\n", section.doc).unwrap();
    }
    if !seen.contains_key(&section.type_name)
        && !section.type_doc.is_empty()
        && section.type_doc != section.doc
    {
        writeln!(out, "{}\n", section.type_doc).unwrap();
    }
    if let Some(first) = seen
        .get(&section.type_name)
        .filter(|_| !section.has_builtins())
    {
        writeln!(out, "The same keys as `[{first}]`.").unwrap();
        return;
    }
    seen.insert(section.type_name.clone(), section.path.clone());
    if !section.fields.is_empty() {
        out.push_str("| Key | Type | Default | Description |\n|---|---|---|---|\n");
        for f in &section.fields {
            let default = match (
                toml_value(&f.default),
                f.builtin.as_ref().and_then(toml_value),
            ) {
                (Some(v), _) => cell_code(&v),
                (None, Some(b)) => format!("unset: {}", cell_code(&b)),
                (None, None) => "unset".to_string(),
            };
            writeln!(
                out,
                "| `{}` | {} | {} | {} |",
                f.key,
                f.ty,
                default,
                cell(&f.doc)
            )
            .unwrap();
        }
    }
    for sub in &section.sections {
        write_markdown(out, sub, seen);
    }
}

/// Text for one table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn cell_code(value: &str) -> String {
    format!("`{}`", value.replace('|', "\\|"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(section: &Section, out: &mut Vec<(String, Field)>) {
        for f in &section.fields {
            out.push((section.path.clone(), f.clone()));
        }
        for s in &section.sections {
            fields(s, out);
        }
    }

    #[test]
    fn every_field_has_a_description() {
        let mut all = Vec::new();
        fields(&model(), &mut all);
        assert!(all.len() > 100, "{}", all.len());
        let missing: Vec<String> = all
            .iter()
            .filter(|(_, f)| f.doc.trim().is_empty())
            .map(|(p, f)| format!("{p}.{}", f.key))
            .collect();
        assert!(
            missing.is_empty(),
            "fields without a doc comment: {missing:?}"
        );
    }

    /// A doc comment that states a plain default (`Default 60`, ``Default: `"json"` ``) must
    /// state the real one. Defaults written in words ("none", "incoming 100000, …") are read by
    /// people only.
    #[test]
    fn stated_defaults_are_the_real_ones() {
        let mut all = Vec::new();
        fields(&model(), &mut all);
        let mut checked = 0;
        for (path, f) in &all {
            let Some(at) = f.doc.find("Default") else {
                continue;
            };
            let rest = f.doc[at + "Default".len()..].trim_start_matches([':', ' ', '\n']);
            let word: String = match rest.strip_prefix('`') {
                Some(quoted) => quoted.split('`').next().unwrap_or("").to_string(),
                None => rest
                    .chars()
                    .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | ';' | ')'))
                    .collect(),
            };
            let word = word.trim_end_matches('.').trim_matches('"');
            let stated: Option<Value> = match word {
                "true" | "false" => Some(Value::Bool(word == "true")),
                w if w.parse::<f64>().is_ok() => Some(serde_json::from_str(w).unwrap()),
                _ => None,
            };
            let real = &f.default;
            if let Some(stated) = stated {
                let same = match (stated.as_f64(), real.as_f64()) {
                    (Some(a), Some(b)) => a == b,
                    _ => &stated == real,
                };
                assert!(
                    same,
                    "{path}.{}: doc says {stated}, default is {real}",
                    f.key
                );
                checked += 1;
            } else if let Some(s) = real.as_str() {
                if rest.starts_with('`') || rest.starts_with('"') {
                    assert_eq!(word, s, "{path}.{}", f.key);
                    checked += 1;
                }
            }
        }
        assert!(checked > 40, "only {checked} stated defaults checked");
    }

    /// The threshold docs state the built-in limits per direction ("Default: incoming 100000,
    /// outgoing 50000", "Default: disabled"): they must be `Thresholds::builtin_*`'s.
    #[test]
    fn stated_builtin_limits_are_the_real_ones() {
        let mut root = model();
        for dir in ["incoming", "outgoing"] {
            let section = find(&mut root, &format!("detection.{dir}")).unwrap();
            for f in &section.fields {
                let doc = f.doc.split_whitespace().collect::<Vec<_>>().join(" ");
                let (_, stated) = doc.split_once("Default:").expect("states its default");
                let stated: Option<f64> = stated
                    .split_once(&format!("{dir} "))
                    .and_then(|(_, rest)| rest.split([',', '.', ' ']).next())
                    .and_then(|word| word.parse().ok());
                let real = f.builtin.as_ref().and_then(Value::as_f64);
                assert_eq!(stated, real, "detection.{dir}.{}: {doc}", f.key);
            }
        }
    }

    #[test]
    fn the_template_parses_to_the_defaults() {
        let text = template(&[]);
        let config = Config::parse(&text, "init").unwrap();
        assert_eq!(
            serde_json::to_value(&config).unwrap(),
            serde_json::to_value(Config::default()).unwrap()
        );
    }

    /// Uncommenting the examples must give a file that parses, so the examples are usable.
    #[test]
    fn uncommented_examples_parse() {
        let text = template(&["203.0.113.0/24".parse().unwrap()]);
        let uncommented: String = text
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest)
                    if rest.starts_with('[')
                        || rest.split_once(" = ").is_some_and(|(k, _)| {
                            k.chars()
                                .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
                        }) =>
                {
                    rest
                }
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let value: toml::Table = toml::from_str(&uncommented).unwrap();
        let config: Config =
            toml::from_str(&uncommented).unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
        assert!(value.contains_key("bgp"));
        assert_eq!(config.bgp.unwrap().peers.len(), 1);
        assert_eq!(config.webhooks.len(), 1);
        assert_eq!(config.detection.hostgroups.len(), 1);
    }
}

#[cfg(test)]
mod docs {
    /// docs/configuration.md is generated from the code; a change to a config struct, its doc
    /// comments or its defaults must be followed by regenerating it.
    #[test]
    fn configuration_reference_is_up_to_date() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
        let written = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            written == super::markdown(),
            "docs/configuration.md differs from what the code generates; regenerate it with\n    \
             cargo run -p floodwall -- init --reference --output docs/configuration.md --force"
        );
    }
}
