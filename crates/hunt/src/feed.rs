//! C2 threat-intelligence feeds: parsed from the formats they are published in, merged into
//! one list that answers "is this remote endpoint a known C2?" on the record path.
//!
//! Formats, told from the content (not the file name, which operators choose):
//! - **plain lists**: one IP, `IP:port`, `[IPv6]:port`, CIDR, domain or URL per line; `#` and
//!   `;` start comments (whole-line or trailing); hosts-file lines (`0.0.0.0 evil.example`).
//! - **abuse.ch CSV**: Feodo Tracker's `ipblocklist.csv` (`"first_seen_utc","dst_ip",
//!   "dst_port","c2_status","last_online","malware"`, header row unquoted-commented) and
//!   ThreatFox's CSV export (`# "first_seen_utc","ioc_id","ioc_value","ioc_type",...` as a
//!   comment, rows separated by `", "`). Columns are found by name in the header.
//! - **JSON**: Feodo's `ipblocklist.json` (array of `{ip_address, port, malware, ...}`),
//!   ThreatFox's JSON export (`{"<id>": [{ioc_value, ioc_type, threat_type,
//!   malware_printable, ...}]}`) or its API answer (`{"data": [...]}`), or an array of strings.
//!
//! ThreatFox mixes C2s with payload hosts and hashes: only `botnet_cc` IOCs are taken (the rest
//! is `skipped`, not `rejected`), since a payload URL is often on a compromised, legitimate site
//! that a null route or NXDOMAIN would take down for everyone.
//!
//! Untrusted input: every line is bounded ([`MAX_LINE`]), a feed holds at most [`MAX_ENTRIES`],
//! and a bad line is counted with a few examples, never fatal. Only a feed that cannot be read
//! as its format at all (broken JSON, too large) is an error, so the caller keeps the previous
//! list.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// At most this many entries (addresses and domains) per feed; the rest are counted as rejected.
pub const MAX_ENTRIES: usize = 1_000_000;
/// Longer lines are rejected (no indicator is this long; a binary file is).
pub const MAX_LINE: usize = 4096;
/// Feeds larger than this are refused whole (256 MiB).
pub const MAX_BYTES: usize = 256 << 20;
/// Rejected lines kept as examples for the log.
pub const MAX_EXAMPLES: usize = 5;

/// One C2 address or prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct C2Entry {
    /// As the feed wrote it (`51.178.161.32:4643`).
    pub value: String,
    /// The address (a /32 or /128) or prefix, host bits cleared.
    pub net: IpNet,
    /// Only traffic on this remote port matches; `None`: any port.
    pub port: Option<u16>,
    /// The feed it came from (its file name).
    pub feed: String,
    pub malware: Option<String>,
}

/// One C2 domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct C2Domain {
    /// Lowercase, no trailing dot.
    pub name: String,
    pub feed: String,
    pub malware: Option<String>,
}

/// Which format a feed was read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedFormat {
    Plain,
    FeodoCsv,
    ThreatFoxCsv,
    FeodoJson,
    ThreatFoxJson,
    JsonList,
}

impl FeedFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedFormat::Plain => "plain list",
            FeedFormat::FeodoCsv => "Feodo Tracker CSV",
            FeedFormat::ThreatFoxCsv => "ThreatFox CSV",
            FeedFormat::FeodoJson => "Feodo Tracker JSON",
            FeedFormat::ThreatFoxJson => "ThreatFox JSON",
            FeedFormat::JsonList => "JSON list",
        }
    }
}

impl std::fmt::Display for FeedFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One feed, parsed.
#[derive(Debug, Clone)]
pub struct ParsedFeed {
    pub entries: Vec<C2Entry>,
    pub domains: Vec<C2Domain>,
    /// Lines or items that are no indicator (or over the entry cap).
    pub rejected: u64,
    /// Valid indicators that are not C2 endpoints (ThreatFox hashes, payload URLs).
    pub skipped: u64,
    /// The first few rejected lines, for the log.
    pub examples: Vec<String>,
    pub format: FeedFormat,
}

/// A feed that cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("{bytes} bytes: feeds are limited to {max} bytes")]
    TooLarge { bytes: usize, max: usize },
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("JSON of an unknown shape: {0}")]
    UnknownJson(&'static str),
}

/// What one indicator is.
enum Indicator {
    Addr { net: IpNet, port: Option<u16> },
    Domain(String),
}

/// Collects one feed's indicators, with the bounds and the counts.
struct Builder<'a> {
    feed: &'a str,
    out: ParsedFeed,
}

impl<'a> Builder<'a> {
    fn new(feed: &'a str, format: FeedFormat) -> Self {
        Builder {
            feed,
            out: ParsedFeed {
                entries: Vec::new(),
                domains: Vec::new(),
                rejected: 0,
                skipped: 0,
                examples: Vec::new(),
                format,
            },
        }
    }

    fn reject(&mut self, what: &str) {
        self.out.rejected += 1;
        if self.out.examples.len() < MAX_EXAMPLES {
            // Examples go to the log: bounded, printable.
            let shown: String = what
                .chars()
                .take(80)
                .map(|c| if c.is_control() { '?' } else { c })
                .collect();
            self.out.examples.push(shown);
        }
    }

    /// Adds the indicator `value` (with an optional port from another column).
    fn add(&mut self, value: &str, port: Option<&str>, malware: Option<&str>) {
        if value.len() > MAX_LINE {
            self.reject(value);
            return;
        }
        let Some(indicator) = indicator(value) else {
            self.reject(value);
            return;
        };
        if self.out.entries.len() + self.out.domains.len() >= MAX_ENTRIES {
            self.reject("(over the cap of 1,000,000 entries)");
            return;
        }
        let malware = malware
            .map(str::trim)
            .filter(|m| !m.is_empty() && *m != "None" && m.len() <= 200)
            .map(str::to_string);
        match indicator {
            Indicator::Addr { net, port: own } => {
                let port = match (own, port.map(str::trim).filter(|p| !p.is_empty())) {
                    (Some(p), _) => Some(p),
                    (None, None) => None,
                    (None, Some(text)) => match text.parse::<u16>() {
                        Ok(p) if p != 0 => Some(p),
                        _ => {
                            self.reject(value);
                            return;
                        }
                    },
                };
                // A port on a prefix means nothing routable: keep it for hosts only.
                let port = port.filter(|_| is_host(&net));
                self.out.entries.push(C2Entry {
                    value: value.trim().to_string(),
                    net,
                    port,
                    feed: self.feed.to_string(),
                    malware,
                });
            }
            Indicator::Domain(name) => self.out.domains.push(C2Domain {
                name,
                feed: self.feed.to_string(),
                malware,
            }),
        }
    }
}

fn is_host(net: &IpNet) -> bool {
    net.prefix_len() == net.max_prefix_len()
}

/// An IPv4-mapped IPv6 address is the IPv4 address (feeds and telemetry write both).
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => addr,
        },
        v4 => v4,
    }
}

fn host_net(addr: IpAddr) -> IpNet {
    match canonical(addr) {
        IpAddr::V4(a) => IpNet::V4(Ipv4Net::from(a)),
        IpAddr::V6(a) => IpNet::V6(Ipv6Net::from(a)),
    }
}

fn port_of(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u16>().ok().filter(|p| *p != 0)
}

/// One indicator from its text: IP, IP:port, [IPv6]:port, CIDR, domain, domain:port, URL.
fn indicator(text: &str) -> Option<Indicator> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Some((scheme, rest)) = text.split_once("://") {
        if !scheme.bytes().all(|b| b.is_ascii_alphanumeric()) || scheme.is_empty() {
            return None;
        }
        // The authority ends at the path, query or fragment; credentials go.
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        let host_port = authority.rsplit('@').next().unwrap_or(authority);
        // A URL's port is where the C2 answers: kept, as for IP:port.
        return indicator(host_port);
    }
    if let Some(rest) = text.strip_prefix('[') {
        // `[v6]:port`, or `[v6]` as URLs write it without a port.
        let (addr, port) = match rest.split_once("]:") {
            Some((addr, port)) => (addr, Some(port_of(port)?)),
            None => (rest.strip_suffix(']')?, None),
        };
        let addr: Ipv6Addr = addr.parse().ok()?;
        return Some(Indicator::Addr {
            net: host_net(IpAddr::V6(addr)),
            port,
        });
    }
    if let Some((addr, len)) = text.split_once('/') {
        let addr: IpAddr = addr.parse().ok()?;
        if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let len: u8 = len.parse().ok()?;
        let net = match canonical(addr) {
            IpAddr::V4(a) => {
                // A mapped prefix (::ffff:1.2.3.0/120) is the IPv4 prefix.
                let len = if addr.is_ipv6() {
                    len.checked_sub(96)?
                } else {
                    len
                };
                IpNet::V4(Ipv4Net::new(a, len).ok()?)
            }
            IpAddr::V6(a) => IpNet::V6(Ipv6Net::new(a, len).ok()?),
        };
        return Some(Indicator::Addr {
            net: net.trunc(),
            port: None,
        });
    }
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Some(Indicator::Addr {
            net: host_net(addr),
            port: None,
        });
    }
    if let Some((host, port)) = text.rsplit_once(':') {
        let port = port_of(port)?;
        if let Ok(addr) = host.parse::<Ipv4Addr>() {
            return Some(Indicator::Addr {
                net: host_net(IpAddr::V4(addr)),
                port: Some(port),
            });
        }
        // A domain's port does not narrow a DNS answer: the domain is listed whole.
        return domain(host).map(Indicator::Domain);
    }
    domain(text).map(Indicator::Domain)
}

/// A C2 domain as the RPZ zone and matching want it: lowercase, no trailing dot, a valid
/// hostname of at least two labels whose last is no number (`1.2.3` is a typo, not a name;
/// `com` alone would blank a whole TLD).
pub fn domain(text: &str) -> Option<String> {
    let name = text.trim().strip_suffix('.').unwrap_or(text.trim());
    if !valid_hostname(name) {
        return None;
    }
    let mut labels = name.rsplit('.');
    let last = labels.next()?;
    labels.next()?;
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(name.to_ascii_lowercase())
}

/// Strips a line's comment (`#` or `;`, anywhere: trailing comments) and whitespace.
fn uncomment(line: &str) -> &str {
    let end = line.find(['#', ';']).unwrap_or(line.len());
    line[..end].trim()
}

/// Splits one CSV line: quoted or bare fields, `""` inside quotes, spaces after commas
/// (ThreatFox writes `", "`). `None` for an unterminated quote. At most 64 fields.
fn split_csv(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        if fields.len() >= 64 {
            return None;
        }
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return None,
                }
            }
            while chars.peek() == Some(&' ') {
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                field.push(c);
                chars.next();
            }
        }
        fields.push(field.trim().to_string());
        match chars.next() {
            Some(',') => continue,
            None => return Some(fields),
            // Text after a closing quote: not CSV.
            Some(_) => return None,
        }
    }
}

/// The CSV header of an abuse.ch file, commented (ThreatFox) or not (Feodo).
fn csv_header(line: &str) -> Option<Vec<String>> {
    let line = line.trim_start_matches('#').trim();
    if !line.starts_with("\"first_seen") {
        return None;
    }
    let fields = split_csv(line)?;
    (fields.iter().any(|f| f == "dst_ip") || fields.iter().any(|f| f == "ioc_value"))
        .then_some(fields)
}

/// The `ioc_type` values of ThreatFox that name an endpoint.
fn threatfox_takes(ioc_type: &str, threat_type: Option<&str>) -> Option<bool> {
    match ioc_type {
        "ip:port" | "domain" | "url" => Some(threat_type.is_none_or(|t| t == "botnet_cc")),
        // Hashes and whatever comes next: valid IOCs, not endpoints.
        _ => None,
    }
}

impl Builder<'_> {
    fn threatfox(
        &mut self,
        value: &str,
        ioc_type: &str,
        threat_type: Option<&str>,
        malware: Option<&str>,
    ) {
        match threatfox_takes(ioc_type, threat_type) {
            Some(true) => self.add(value, None, malware),
            Some(false) | None => self.out.skipped += 1,
        }
    }
}

fn parse_csv(b: &mut Builder<'_>, text: &str, header: Vec<String>) {
    let col = |name: &str| header.iter().position(|h| h == name);
    let feodo = col("dst_ip");
    let (ip, port) = (feodo, col("dst_port"));
    let (value, ioc_type, threat) = (col("ioc_value"), col("ioc_type"), col("threat_type"));
    let malware = col("malware").or(col("malware_printable"));
    // ThreatFox's `malware` is fk_malware (`win.cobalt_strike`); its printable name reads better.
    let malware = if feodo.is_some() {
        malware
    } else {
        col("malware_printable").or(malware)
    };
    let mut header_seen = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !header_seen && csv_header(line).is_some() {
            header_seen = true;
            continue;
        }
        if line.len() > MAX_LINE {
            b.reject(line);
            continue;
        }
        let Some(fields) = split_csv(line) else {
            b.reject(line);
            continue;
        };
        let get = |i: Option<usize>| i.and_then(|i| fields.get(i)).map(String::as_str);
        let mal = get(malware);
        if feodo.is_some() {
            match get(ip) {
                Some(addr) => b.add(addr, get(port), mal),
                None => b.reject(line),
            }
        } else {
            match (get(value), get(ioc_type)) {
                (Some(v), Some(t)) => b.threatfox(v, t, get(threat), mal),
                _ => b.reject(line),
            }
        }
    }
}

fn parse_plain(b: &mut Builder<'_>, text: &str) {
    for line in text.lines() {
        if line.len() > MAX_LINE {
            b.reject(line);
            continue;
        }
        let content = uncomment(line);
        if content.is_empty() {
            continue;
        }
        let mut tokens = content.split_whitespace();
        let first = tokens.next().unwrap_or_default();
        // Hosts-file lines: `0.0.0.0 evil.example` lists the name, not the sink address.
        let value = match (first, tokens.next()) {
            ("0.0.0.0" | "127.0.0.1" | "::" | "::1", Some(name)) => name,
            _ => first,
        };
        b.add(value, None, None);
    }
}

fn json_str<'v>(object: &'v serde_json::Value, key: &str) -> Option<&'v str> {
    object.get(key).and_then(|v| v.as_str())
}

fn parse_json(feed: &str, text: &str) -> Result<ParsedFeed, FeedError> {
    use serde_json::Value;
    let value: Value = serde_json::from_str(text).map_err(|e| FeedError::Json(e.to_string()))?;
    // The ThreatFox API answers {"query_status": "ok", "data": [...]}.
    let value = match value {
        Value::Object(mut o) if o.get("data").is_some_and(Value::is_array) => {
            o.remove("data").unwrap_or(Value::Null)
        }
        other => other,
    };
    match value {
        Value::Array(items) => {
            let format = match items.iter().find(|i| !i.is_null()) {
                Some(Value::Object(o)) if o.contains_key("ioc_value") => FeedFormat::ThreatFoxJson,
                Some(Value::Object(_)) => FeedFormat::FeodoJson,
                _ => FeedFormat::JsonList,
            };
            let mut b = Builder::new(feed, format);
            for item in &items {
                json_item(&mut b, item);
            }
            Ok(b.out)
        }
        Value::Object(groups) => {
            let mut b = Builder::new(feed, FeedFormat::ThreatFoxJson);
            for group in groups.values() {
                match group {
                    Value::Array(items) => items.iter().for_each(|i| json_item(&mut b, i)),
                    other => json_item(&mut b, other),
                }
            }
            Ok(b.out)
        }
        _ => Err(FeedError::UnknownJson(
            "expected an array or an object of arrays",
        )),
    }
}

fn json_item(b: &mut Builder<'_>, item: &serde_json::Value) {
    use serde_json::Value;
    match item {
        Value::String(s) => b.add(s, None, None),
        Value::Object(o) => {
            if let Some(value) = o.get("ioc_value").and_then(Value::as_str) {
                let ioc_type = json_str(item, "ioc_type").unwrap_or("");
                let malware = json_str(item, "malware_printable").or(json_str(item, "malware"));
                b.threatfox(value, ioc_type, json_str(item, "threat_type"), malware);
            } else if let Some(addr) = o.get("ip_address").and_then(Value::as_str) {
                let port = match o.get("port") {
                    Some(Value::Number(n)) => Some(n.to_string()),
                    Some(Value::String(s)) => Some(s.clone()),
                    _ => None,
                };
                b.add(addr, port.as_deref(), json_str(item, "malware"));
            } else {
                b.reject(&item.to_string());
            }
        }
        Value::Null => {}
        other => b.reject(&other.to_string()),
    }
}

/// Which host ids an exact address has: any port, and per port.
#[derive(Debug, Default)]
struct Host {
    any: Option<u32>,
    /// Sorted by port.
    ports: Vec<(u16, u32)>,
}

/// Prefixes of one length, sorted by network, for binary search.
#[derive(Debug)]
struct Ranges {
    len: u8,
    /// (network as a number, entry index), sorted, unique.
    nets: Vec<(u128, u32)>,
}

/// Every feed's C2 endpoints, merged, for lookups on the record path.
#[derive(Debug, Default)]
pub struct C2List {
    /// Unique by (net, port), sorted by (net, port): the order null routes go out in.
    entries: Vec<C2Entry>,
    /// Unique, sorted.
    domains: Vec<C2Domain>,
    hosts: HashMap<IpAddr, Host, foldhash::fast::FixedState>,
    /// Longest first, so the first hit is the most specific.
    ranges_v4: Vec<Ranges>,
    ranges_v6: Vec<Ranges>,
}

fn bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn mask(value: u128, len: u8, width: u8) -> u128 {
    if len == 0 {
        return 0;
    }
    let keep = u128::MAX << (width - len);
    let all = if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    value & keep & all
}

impl C2List {
    /// Parses one feed's text; `feed` names it (file name) in evidence.
    pub fn parse(feed: &str, text: &str) -> Result<ParsedFeed, FeedError> {
        if text.len() > MAX_BYTES {
            return Err(FeedError::TooLarge {
                bytes: text.len(),
                max: MAX_BYTES,
            });
        }
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if matches!(text.trim_start().as_bytes().first(), Some(b'[' | b'{')) {
            return parse_json(feed, text);
        }
        // The CSV header is within the first comment block; look at the first lines only.
        let header = text.lines().take(100).find_map(csv_header);
        match header {
            Some(header) => {
                let format = if header.iter().any(|h| h == "dst_ip") {
                    FeedFormat::FeodoCsv
                } else {
                    FeedFormat::ThreatFoxCsv
                };
                let mut b = Builder::new(feed, format);
                parse_csv(&mut b, text, header);
                Ok(b.out)
            }
            None => {
                let mut b = Builder::new(feed, FeedFormat::Plain);
                parse_plain(&mut b, text);
                Ok(b.out)
            }
        }
    }

    /// A list of these entries and domains (tests, and lists built by hand).
    pub fn from_entries(entries: Vec<C2Entry>, domains: Vec<C2Domain>) -> C2List {
        C2List::from_feeds(vec![ParsedFeed {
            entries,
            domains,
            rejected: 0,
            skipped: 0,
            examples: Vec::new(),
            format: FeedFormat::Plain,
        }])
    }

    /// Merges parsed feeds; a duplicate keeps the first feed's entry.
    pub fn from_feeds(feeds: Vec<ParsedFeed>) -> C2List {
        let mut entries: Vec<C2Entry> = Vec::new();
        let mut domains: Vec<C2Domain> = Vec::new();
        for feed in feeds {
            entries.extend(feed.entries);
            domains.extend(feed.domains);
        }
        // Stable sort + dedup keeps the first feed's entry of equal ones.
        entries.sort_by_key(|a| (a.net, a.port));
        entries.dedup_by(|b, a| a.net == b.net && a.port == b.port);
        domains.sort_by(|a, b| a.name.cmp(&b.name));
        domains.dedup_by(|b, a| a.name == b.name);

        let mut hosts: HashMap<IpAddr, Host, foldhash::fast::FixedState> = HashMap::default();
        let mut v4: Vec<Vec<(u128, u32)>> = vec![Vec::new(); 33];
        let mut v6: Vec<Vec<(u128, u32)>> = vec![Vec::new(); 129];
        for (i, e) in entries.iter().enumerate() {
            let i = i as u32;
            if is_host(&e.net) {
                let host = hosts.entry(e.net.addr()).or_default();
                match e.port {
                    None => host.any = Some(i),
                    // Sorted already: entries are sorted by (net, port).
                    Some(p) => host.ports.push((p, i)),
                }
            } else {
                let slot = match e.net {
                    IpNet::V4(_) => &mut v4[usize::from(e.net.prefix_len())],
                    IpNet::V6(_) => &mut v6[usize::from(e.net.prefix_len())],
                };
                slot.push((bits(e.net.network()), i));
            }
        }
        let ranges = |by_len: Vec<Vec<(u128, u32)>>| -> Vec<Ranges> {
            let mut out: Vec<Ranges> = by_len
                .into_iter()
                .enumerate()
                .filter(|(_, nets)| !nets.is_empty())
                .map(|(len, mut nets)| {
                    nets.sort_unstable();
                    nets.dedup_by_key(|n| n.0);
                    Ranges {
                        len: len as u8,
                        nets,
                    }
                })
                .collect();
            out.reverse();
            out
        };
        C2List {
            entries,
            domains,
            hosts,
            ranges_v4: ranges(v4),
            ranges_v6: ranges(v6),
        }
    }

    /// The entry matching traffic to/from `addr` on remote port `port`: an entry with a port
    /// matches only that port; an exact address beats a prefix, a longer prefix a shorter one.
    /// No allocation: one hash probe, then a binary search per prefix length present.
    pub fn lookup(&self, addr: IpAddr, port: u16) -> Option<&C2Entry> {
        if self.entries.is_empty() {
            return None;
        }
        let addr = canonical(addr);
        if let Some(host) = self.hosts.get(&addr) {
            let hit = host
                .ports
                .binary_search_by_key(&port, |(p, _)| *p)
                .ok()
                .map(|i| host.ports[i].1)
                .or(host.any);
            if let Some(i) = hit {
                return self.entries.get(i as usize);
            }
        }
        let (ranges, width) = match addr {
            IpAddr::V4(_) => (&self.ranges_v4, 32),
            IpAddr::V6(_) => (&self.ranges_v6, 128),
        };
        let value = bits(addr);
        for r in ranges {
            let net = mask(value, r.len, width);
            if let Ok(i) = r.nets.binary_search_by_key(&net, |(n, _)| *n) {
                return self.entries.get(r.nets[i].1 as usize);
            }
        }
        None
    }

    /// No address and no domain.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.domains.is_empty()
    }

    /// Addresses (with their ports) and domains.
    pub fn len(&self) -> usize {
        self.entries.len() + self.domains.len()
    }

    /// Every address and prefix, sorted by (prefix, port); one address may come with several
    /// ports.
    pub fn addresses(&self) -> impl Iterator<Item = &C2Entry> {
        self.entries.iter()
    }

    /// Every domain, sorted by name.
    pub fn domains(&self) -> impl Iterator<Item = &C2Domain> {
        self.domains.iter()
    }
}

/// A hostname (RFC 952/1123): labels of letters, digits and hyphens, 1–63 bytes, not starting
/// or ending with a hyphen, 253 bytes at most in all (no trailing dot here).
pub fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn list(feed: &str, text: &str) -> C2List {
        C2List::from_feeds(vec![C2List::parse(feed, text).unwrap()])
    }

    const FEODO_CSV: &str = r#"################################################################
# abuse.ch Feodo Tracker Botnet C2 IP Blocklist (CSV)          #
# Last updated: 2026-12-07 15:00:42 UTC                        #
#                                                              #
# Terms Of Use: https://feodotracker.abuse.ch/blocklist/       #
# For questions please contact feodotracker [at] abuse.ch      #
################################################################
#
"first_seen_utc","dst_ip","dst_port","c2_status","last_online","malware"
"2021-01-17 07:44:46","51.178.161.32","4643","online","2026-12-07","Dridex"
"2022-06-04 21:24:53","162.243.103.246","8080","offline","2026-03-07","Emotet"
"2025-12-30 13:56:31","50.16.16.211","443","online","2026-12-07","QakBot"
"2025-12-30 13:56:31","50.16.16.211","995","online","2026-12-07","QakBot"
"2025-12-30 13:56:32","not-an-ip","443","online","2026-12-07","QakBot"
"bad-short-row"
# "end"
"#;

    #[test]
    fn feodo_csv_gives_addresses_with_their_ports_and_malware() {
        let parsed = C2List::parse("ipblocklist.csv", FEODO_CSV).unwrap();
        assert_eq!(parsed.format, FeedFormat::FeodoCsv);
        assert_eq!(parsed.entries.len(), 4);
        assert_eq!(parsed.rejected, 2, "{:?}", parsed.examples);
        assert_eq!(parsed.examples, ["not-an-ip", "\"bad-short-row\""]);
        let e = &parsed.entries[0];
        assert_eq!(e.value, "51.178.161.32");
        assert_eq!(e.net, "51.178.161.32/32".parse::<IpNet>().unwrap());
        assert_eq!(e.port, Some(4643));
        assert_eq!(e.malware.as_deref(), Some("Dridex"));
        assert_eq!(e.feed, "ipblocklist.csv");

        let list = C2List::from_feeds(vec![parsed]);
        assert_eq!(
            list.lookup(ip("50.16.16.211"), 995).unwrap().port,
            Some(995)
        );
        assert_eq!(
            list.lookup(ip("50.16.16.211"), 443).unwrap().port,
            Some(443)
        );
        // An entry with a port matches only that port.
        assert!(list.lookup(ip("50.16.16.211"), 80).is_none());
        assert!(list.lookup(ip("51.178.161.33"), 4643).is_none());
    }

    const THREATFOX_CSV: &str = r#"################################################################
# ThreatFox IOCs: CSV export                                   #
# Last updated: 2026-12-07 14:00:03 UTC                        #
#                                                              #
# Terms Of Use: https://threatfox.abuse.ch/faq/#tos            #
# For questions please contact threatfox [at] abuse.ch         #
################################################################
#
# "first_seen_utc","ioc_id","ioc_value","ioc_type","threat_type","fk_malware","malware_alias","malware_printable","last_seen_utc","confidence_level","is_compromised","reference","tags","anonymous","reporter"
"2026-12-07 13:46:34", "1660001", "38.190.196.25:5638", "ip:port", "botnet_cc", "win.cobalt_strike", "None", "Cobalt Strike", "", "75", "False", "None", "c2", "0", "abuse_ch"
"2026-12-07 12:00:00", "1660002", "45.9.148.10:80", "ip:port", "payload_delivery", "elf.mirai", "None", "Mirai", "", "50", "False", "None", "", "0", "abuse_ch"
"2026-12-07 11:00:00", "1660003", "Cnc.Evil-Example.net", "domain", "botnet_cc", "elf.mirai", "None", "Mirai", "", "100", "False", "None", "", "0", "abuse_ch"
"2026-12-07 10:00:00", "1660004", "http://198.51.100.77:8080/gate.php", "url", "botnet_cc", "win.lokipws", "Loki", "Loki Password Stealer (PWS)", "", "100", "False", "None", "", "0", "abuse_ch"
"2026-12-07 10:00:00", "1660005", "d41d8cd98f00b204e9800998ecf8427e", "md5_hash", "payload", "win.agent_tesla", "None", "Agent Tesla", "", "100", "False", "None", "", "0", "abuse_ch"
"2026-12-07 10:00:01", "1660006", "http://compromised.example/wp/x.exe", "url", "payload_delivery", "win.agent_tesla", "None", "Agent Tesla", "", "100", "False", "None", "", "0", "abuse_ch"
"#;

    #[test]
    fn threatfox_csv_takes_only_c2_endpoints() {
        let parsed = C2List::parse("threatfox.csv", THREATFOX_CSV).unwrap();
        assert_eq!(parsed.format, FeedFormat::ThreatFoxCsv);
        assert_eq!(parsed.rejected, 0, "{:?}", parsed.examples);
        assert_eq!(parsed.skipped, 3);
        let values: Vec<(&str, Option<u16>)> = parsed
            .entries
            .iter()
            .map(|e| (e.value.as_str(), e.port))
            .collect();
        assert_eq!(
            values,
            [
                ("38.190.196.25:5638", Some(5638)),
                ("http://198.51.100.77:8080/gate.php", Some(8080))
            ]
        );
        assert_eq!(parsed.entries[0].malware.as_deref(), Some("Cobalt Strike"));
        assert_eq!(parsed.domains.len(), 1);
        assert_eq!(parsed.domains[0].name, "cnc.evil-example.net");
        assert_eq!(parsed.domains[0].malware.as_deref(), Some("Mirai"));
    }

    const FEODO_JSON: &str = r#"[
  {
    "ip_address": "51.178.161.32",
    "port": 4643,
    "status": "online",
    "hostname": null,
    "as_number": 16276,
    "as_name": "OVH",
    "country": "FR",
    "first_seen": "2021-01-17 07:44:46",
    "last_online": "2026-12-07",
    "malware": "Dridex"
  },
  {
    "ip_address": "2001:db8:77::5",
    "port": "8443",
    "malware": "QakBot"
  },
  { "ip_address": "300.1.1.1", "port": 1, "malware": "x" },
  { "something": "else" }
]"#;

    #[test]
    fn feodo_json_numbers_or_strings_for_ports() {
        let parsed = C2List::parse("ipblocklist.json", FEODO_JSON).unwrap();
        assert_eq!(parsed.format, FeedFormat::FeodoJson);
        assert_eq!(parsed.entries.len(), 2);
        assert_eq!(parsed.rejected, 2);
        assert_eq!(parsed.entries[1].port, Some(8443));
        let list = C2List::from_feeds(vec![parsed]);
        assert_eq!(
            list.lookup(ip("2001:db8:77::5"), 8443)
                .unwrap()
                .malware
                .as_deref(),
            Some("QakBot")
        );
    }

    const THREATFOX_JSON: &str = r#"{
  "1660001": [
    {
      "ioc_value": "38.190.196.25:5638",
      "ioc_type": "ip:port",
      "threat_type": "botnet_cc",
      "malware": "win.cobalt_strike",
      "malware_alias": null,
      "malware_printable": "Cobalt Strike",
      "first_seen_utc": "2026-12-07 13:46:34",
      "last_seen_utc": null,
      "confidence_level": 75,
      "reference": null,
      "tags": "c2",
      "anonymous": "0",
      "reporter": "abuse_ch"
    }
  ],
  "1660003": [
    {
      "ioc_value": "cnc.evil-example.net",
      "ioc_type": "domain",
      "threat_type": "botnet_cc",
      "malware": "elf.mirai",
      "malware_printable": "Mirai"
    }
  ],
  "1660005": [
    { "ioc_value": "d41d8cd98f00b204e9800998ecf8427e", "ioc_type": "md5_hash", "threat_type": "payload" }
  ]
}"#;

    #[test]
    fn threatfox_json_export_and_api_answer() {
        let parsed = C2List::parse("threatfox.json", THREATFOX_JSON).unwrap();
        assert_eq!(parsed.format, FeedFormat::ThreatFoxJson);
        assert_eq!(parsed.entries.len(), 1);
        assert_eq!(parsed.domains.len(), 1);
        assert_eq!(parsed.skipped, 1);
        let api = r#"{"query_status": "ok", "data": [{"ioc_value": "203.0.113.9:443",
            "ioc_type": "ip:port", "threat_type": "botnet_cc", "malware_printable": "Sliver"}]}"#;
        let parsed = C2List::parse("api.json", api).unwrap();
        assert_eq!(parsed.format, FeedFormat::ThreatFoxJson);
        assert_eq!(parsed.entries[0].port, Some(443));
    }

    #[test]
    fn json_list_of_strings_and_broken_json() {
        let parsed = C2List::parse(
            "l.json",
            r#"["198.51.100.1", "evil.example", "10.9.0.0/16", 5]"#,
        )
        .unwrap();
        assert_eq!(parsed.format, FeedFormat::JsonList);
        assert_eq!((parsed.entries.len(), parsed.domains.len()), (2, 1));
        assert_eq!(parsed.rejected, 1);
        assert!(matches!(
            C2List::parse("l.json", "[\"1.2.3.4\""),
            Err(FeedError::Json(_))
        ));
        assert!(matches!(
            C2List::parse("l.json", "{\"a\": 5}"),
            Ok(ParsedFeed { rejected: 1, .. })
        ));
    }

    const PLAIN: &str = "# my C2 list\n\
        ; also a comment\n\
        \n\
        198.51.100.7          # trailing comment\n\
        198.51.100.8:4444\n\
        [2001:db8::99]:8443\n\
        2001:db8:bad::/48\n\
        203.0.113.0/24\n\
        203.0.113.128/25 ; a more specific one\n\
        ::ffff:192.0.2.55\n\
        Evil.Example.\n\
        0.0.0.0 hosts-style.example\n\
        https://user@cnc.example.org:8443/panel\n\
        not a thing\n\
        com\n\
        1.2.3\n\
        1.2.3.4:0\n\
        1.2.3.4/33\n";

    #[test]
    fn plain_lists_with_comments_ports_prefixes_and_domains() {
        let parsed = C2List::parse("mine.txt", PLAIN).unwrap();
        assert_eq!(parsed.format, FeedFormat::Plain);
        assert_eq!(parsed.rejected, 5, "{:?}", parsed.examples);
        assert_eq!(parsed.examples.len(), MAX_EXAMPLES);
        let names: Vec<&str> = parsed.domains.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            ["evil.example", "hosts-style.example", "cnc.example.org"]
        );
        let list = C2List::from_feeds(vec![parsed]);
        assert_eq!(list.len(), 10);
        assert_eq!(
            list.lookup(ip("198.51.100.7"), 1).unwrap().value,
            "198.51.100.7"
        );
        assert!(list.lookup(ip("198.51.100.8"), 4445).is_none());
        assert!(list.lookup(ip("198.51.100.8"), 4444).is_some());
        assert!(list.lookup(ip("2001:db8::99"), 8443).is_some());
        assert_eq!(
            list.lookup(ip("2001:db8:bad:1::1"), 1).unwrap().value,
            "2001:db8:bad::/48"
        );
        // The most specific prefix wins.
        assert_eq!(
            list.lookup(ip("203.0.113.200"), 1).unwrap().value,
            "203.0.113.128/25"
        );
        assert_eq!(
            list.lookup(ip("203.0.113.5"), 1).unwrap().value,
            "203.0.113.0/24"
        );
        // Mapped addresses are IPv4, in the feed and in the traffic.
        assert!(list.lookup(ip("192.0.2.55"), 1).is_some());
        assert!(list.lookup(ip("::ffff:198.51.100.7"), 1).is_some());
        assert!(list.lookup(ip("192.0.2.56"), 1).is_none());
        assert!(list.lookup(ip("2001:db8:bae::1"), 1).is_none());
    }

    #[test]
    fn duplicates_across_feeds_keep_the_first_feeds_entry() {
        let a = C2List::parse("a.txt", "198.51.100.7\nevil.example\n").unwrap();
        let b = C2List::parse("b.txt", "198.51.100.7\nevil.example\n198.51.100.9\n").unwrap();
        let list = C2List::from_feeds(vec![a, b]);
        assert_eq!(list.addresses().count(), 2);
        assert_eq!(list.domains().count(), 1);
        assert_eq!(list.lookup(ip("198.51.100.7"), 80).unwrap().feed, "a.txt");
        assert_eq!(list.domains().next().unwrap().feed, "a.txt");
    }

    #[test]
    fn empty_lists_and_long_lines() {
        let empty = C2List::default();
        assert!(empty.is_empty());
        assert_eq!(empty.len(), 0);
        assert!(empty.lookup(ip("1.1.1.1"), 1).is_none());
        let long = format!("{}\n198.51.100.1\n", "a".repeat(MAX_LINE + 1));
        let parsed = C2List::parse("x", &long).unwrap();
        assert_eq!((parsed.rejected, parsed.entries.len()), (1, 1));
        assert!(list("x", "# only comments\n\n").is_empty());
    }

    #[test]
    fn the_entry_cap_counts_the_rest() {
        let mut text = String::new();
        for i in 0..(MAX_ENTRIES as u32 + 3) {
            let a = Ipv4Addr::from(0x0a00_0000 + i);
            text.push_str(&a.to_string());
            text.push('\n');
        }
        let parsed = C2List::parse("big", &text).unwrap();
        assert_eq!(parsed.entries.len(), MAX_ENTRIES);
        assert_eq!(parsed.rejected, 3);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_text_parses_or_errs_without_panicking(text in ".{0,400}") {
                if let Ok(parsed) = C2List::parse("p", &text) {
                    let list = C2List::from_feeds(vec![parsed]);
                    let _ = list.lookup(ip("1.2.3.4"), 80);
                }
            }

            #[test]
            fn feed_like_lines_never_panic(lines in proptest::collection::vec(
                "(#|;|\"|\\[|[0-9a-f:./]{0,40}|[a-z.-]{0,30}|, ){0,6}", 0..20)) {
                let text = lines.join("\n");
                for prefix in ["", "\"first_seen_utc\",\"dst_ip\",\"dst_port\"\n", "# \"first_seen_utc\",\"ioc_id\",\"ioc_value\",\"ioc_type\"\n"] {
                    if let Ok(parsed) = C2List::parse("p", &format!("{prefix}{text}")) {
                        let list = C2List::from_feeds(vec![parsed]);
                        for e in list.addresses() {
                            prop_assert!(list.lookup(e.net.addr(), e.port.unwrap_or(1)).is_some());
                        }
                    }
                }
            }

            #[test]
            fn every_listed_address_is_found(addrs in proptest::collection::vec(any::<u32>(), 1..50), len in 8u8..=32) {
                let text: String = addrs.iter().map(|a| format!("{}/{len}\n", Ipv4Addr::from(*a))).collect();
                let list = list("p", &text);
                for a in &addrs {
                    let hit = list.lookup(IpAddr::V4(Ipv4Addr::from(*a)), 1);
                    prop_assert!(hit.is_some());
                    prop_assert!(hit.unwrap().net.contains(&IpAddr::V4(Ipv4Addr::from(*a))));
                }
            }
        }
    }
}
