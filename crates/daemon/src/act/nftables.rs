//! Local filtering with nftables: the host Floodwall runs on (or a Linux router it runs on)
//! drops attack traffic itself.
//!
//! Floodwall keeps to its own table (default `inet floodwall`, one table for IPv4 and IPv6) and
//! never touches anyone else's rules:
//!
//! ```text
//! table inet floodwall {
//!     set blackhole4 { type ipv4_addr; flags interval; counter; }  # comment: mitigation ids
//!     set blackhole6 { type ipv6_addr; flags interval; counter; }
//!     chain prerouting {
//!         type filter hook prerouting priority -450; policy accept;
//!         ip daddr @blackhole4 counter drop comment "floodwall: blackhole4"
//!         ip6 daddr @blackhole6 counter drop comment "floodwall: blackhole6"
//!         ip daddr 198.18.0.2 meta l4proto 17 th sport 123 counter drop comment "<mitigation id>"
//!     }
//! }
//! ```
//!
//! Why these choices:
//! - **prerouting at -450**: before conntrack's defragmentation (-400) and before routing, so the
//!   chain sees forwarded and local traffic alike, packets exactly as they came off the wire
//!   (fragments unassembled, as a router's FlowSpec sees them), and dropped packets never cost
//!   a conntrack entry.
//! - **blackholes in interval sets**: thousands of targets cost one lookup, not a rule each. The
//!   kernel refuses overlapping intervals, so the sets hold the *outermost* prefixes of all held
//!   blackholes; a /32 inside a blackholed /24 lives only in memory until the /24 goes. Each
//!   element's comment lists the ids holding it (as many as fit in nft's 128-byte comment), which
//!   is how a restart adopts them. Elements carry their own counters.
//! - **one rule per filter**, its comment the mitigation id: it can be found, counted and deleted
//!   by handle later, and `installed_ids` reads the ids back after a restart. The table is the
//!   truth for filters: nothing about them is cached that a listing cannot recover.
//! - **text in, JSON out**: rules are written in nft's own language through `nft -f -` (one
//!   transaction per change, so a replacement is atomic) and read back with `nft -j`, whose
//!   output is stable to parse.
//! - FlowSpec `redirect` (to a VRF) has no local meaning, so `accepts` declines such filters.
//! - A rate limit counts every matching packet (the counter sits before the limit), so the
//!   counter says how much the filter saw, not how much it dropped.
//!
//! ```toml
//! [nftables]
//! enabled = true
//! table = "inet floodwall"   # created and owned by Floodwall
//! command = ["nft"]          # e.g. ["ip", "netns", "exec", "edge", "nft"]
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use floodwall_mitigate::{FlowAction, FlowFilter, Mitigation, Range, Rule};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{Mitigator, Outcome};

/// `[nftables]`: filtering on this host with nftables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct NftablesConfig {
    /// Install blackholes and filters in nftables. Default: `false`.
    pub enabled: bool,
    /// Floodwall's own table as `FAMILY NAME`; only the `inet` family (IPv4 and IPv6 in one
    /// table). Floodwall creates it, owns everything in it, and deletes it on shutdown unless
    /// told to keep it. Default: `"inet floodwall"`.
    pub table: String,
    /// The program (and leading arguments) that runs nft, e.g. `["ip", "netns", "exec", "edge",
    /// "nft"]` for another network namespace. Default: `["nft"]`.
    pub command: Vec<String>,
}

impl Default for NftablesConfig {
    fn default() -> Self {
        NftablesConfig {
            enabled: false,
            table: "inet floodwall".to_string(),
            command: vec!["nft".to_string()],
        }
    }
}

impl NftablesConfig {
    /// Refuses what cannot work, naming the field; the table's name when it is fine.
    pub fn validate(&self) -> Result<String> {
        let config = self;
        let mut words = config.table.split_whitespace();
        let (family, name) = match (words.next(), words.next(), words.next()) {
            (Some(family), Some(name), None) => (family, name),
            (Some(name), None, None) => ("inet", name),
            _ => bail!("nftables: table `{}` should be `inet NAME`", config.table),
        };
        if family != "inet" {
            bail!(
                "nftables: table `{}`: only the inet family is supported (one table for IPv4 and IPv6)",
                config.table
            );
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            bail!("nftables: table name `{name}` must be letters, digits, `_` or `-`");
        }
        if config.command.is_empty() {
            bail!("nftables: `command` is empty");
        }
        Ok(name.to_string())
    }
}

/// The base chain's name.
const CHAIN: &str = "prerouting";
/// Comments of the two fixed blackhole rules; mitigation ids never start with `floodwall:`.
const BLACKHOLE4_COMMENT: &str = "floodwall: blackhole4";
const BLACKHOLE6_COMMENT: &str = "floodwall: blackhole6";
/// Longest an nft run may take.
const NFT_TIMEOUT: Duration = Duration::from_secs(10);
/// nft refuses longer comments (NFTNL_UDATA_COMMENT_MAXLEN is 128 including the NUL).
const COMMENT_MAX: usize = 127;

/// Packet and byte counts of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}

/// A filter rule found in the table.
#[derive(Debug, Clone)]
struct InstalledRule {
    handle: u64,
    comment: String,
    counter: Counter,
}

/// One element of a blackhole set, as listed.
#[derive(Debug, Clone)]
struct Element {
    /// `None` for something Floodwall did not write (a range): removed on the next change.
    prefix: Option<IpNet>,
    /// How to name it in `delete element`.
    text: String,
    comment: String,
    counter: Counter,
}

/// The table as listed.
#[derive(Debug, Default)]
struct Listing {
    sets: BTreeSet<String>,
    chain_ok: bool,
    rules: Vec<InstalledRule>,
    elements: Vec<Element>,
}

/// Blackholes and filters in Floodwall's nftables table.
pub struct Nftables {
    /// The table's name (family is `inet`).
    name: String,
    command: Vec<String>,
    /// Every blackhole held, by mitigation id — also those covered by a wider one and thus not
    /// in a set.
    blackholes: BTreeMap<String, IpNet>,
    /// The rule text each filter id was installed with in this run (adopted rules are absent:
    /// their text is unknown, so announcing them again replaces them once).
    filters: BTreeMap<String, String>,
}

impl Nftables {
    /// Opens Floodwall's table: creates it, or adopts the one a previous run left (its filters
    /// and blackholes stay until withdrawn by id). A table of another shape is rebuilt.
    pub fn new(config: &NftablesConfig) -> Result<Nftables> {
        let name = config.validate()?;
        let mut nft = Nftables {
            name,
            command: config.command.clone(),
            blackholes: BTreeMap::new(),
            filters: BTreeMap::new(),
        };
        nft.open()?;
        Ok(nft)
    }

    fn open(&mut self) -> Result<()> {
        let listing = self.list()?;
        let shaped = listing.as_ref().is_some_and(|l| {
            l.chain_ok
                && l.sets.contains("blackhole4")
                && l.sets.contains("blackhole6")
                && [BLACKHOLE4_COMMENT, BLACKHOLE6_COMMENT]
                    .iter()
                    .all(|c| l.rules.iter().any(|r| r.comment == *c))
        });
        match listing {
            Some(listing) if shaped => {
                for element in &listing.elements {
                    if let Some(prefix) = element.prefix {
                        for id in element.comment.split_whitespace() {
                            self.blackholes.insert(id.to_string(), prefix);
                        }
                    }
                }
                Ok(())
            }
            existing => {
                let mut script = String::new();
                if existing.is_some() {
                    eprintln!(
                        "nftables: table inet {} is not shaped as Floodwall makes it; rebuilding it",
                        self.name
                    );
                    script.push_str(&format!("delete table inet {}\n", self.name));
                }
                script.push_str(&format!(
                    "table inet {t} {{\n\
                     \tset blackhole4 {{ type ipv4_addr; flags interval; counter; }}\n\
                     \tset blackhole6 {{ type ipv6_addr; flags interval; counter; }}\n\
                     \tchain {CHAIN} {{\n\
                     \t\ttype filter hook prerouting priority -450; policy accept;\n\
                     \t\tip daddr @blackhole4 counter drop comment \"{BLACKHOLE4_COMMENT}\"\n\
                     \t\tip6 daddr @blackhole6 counter drop comment \"{BLACKHOLE6_COMMENT}\"\n\
                     \t}}\n\
                     }}\n",
                    t = self.name
                ));
                self.apply(&script)
            }
        }
    }

    /// The mitigation ids whose rules the table holds now (filters by rule comment, blackholes
    /// by the ids held). After a restart: what the previous run left, for the daemon to withdraw
    /// what is no longer wanted.
    pub fn installed_ids(&self) -> Result<BTreeSet<String>> {
        let listing = self.list()?.ok_or_else(|| self.missing())?;
        let mut ids: BTreeSet<String> = listing
            .rules
            .into_iter()
            .filter(|r| !r.comment.is_empty() && !r.comment.starts_with("floodwall:"))
            .map(|r| r.comment)
            .collect();
        ids.extend(self.blackholes.keys().cloned());
        Ok(ids)
    }

    /// The counter of a filter's rule (`None`: not installed).
    pub fn filter_counter(&self, id: &str) -> Result<Option<Counter>> {
        let listing = self.list()?.ok_or_else(|| self.missing())?;
        Ok(listing
            .rules
            .iter()
            .find(|r| r.comment == id)
            .map(|r| r.counter))
    }

    /// The counter of the set element dropping a blackhole's traffic (its own prefix, or the
    /// wider blackhole covering it); `None`: not held.
    pub fn blackhole_counter(&self, id: &str) -> Result<Option<Counter>> {
        let Some(prefix) = self.blackholes.get(id) else {
            return Ok(None);
        };
        let listing = self.list()?.ok_or_else(|| self.missing())?;
        Ok(listing
            .elements
            .iter()
            .find(|e| e.prefix.is_some_and(|p| p.contains(prefix)))
            .map(|e| e.counter))
    }

    /// The counters of the IPv4 and IPv6 blackhole rules (all blackholes of a family together).
    pub fn blackhole_counters(&self) -> Result<(Counter, Counter)> {
        let listing = self.list()?.ok_or_else(|| self.missing())?;
        let find = |comment: &str| {
            listing
                .rules
                .iter()
                .find(|r| r.comment == comment)
                .map(|r| r.counter)
                .unwrap_or_default()
        };
        Ok((find(BLACKHOLE4_COMMENT), find(BLACKHOLE6_COMMENT)))
    }

    fn missing(&self) -> anyhow::Error {
        anyhow!("nftables: table inet {} has gone", self.name)
    }

    /// Runs nft with `args`, feeding `input` on stdin; its stdout, or its stderr as the error.
    fn run(&self, args: &[&str], input: Option<&str>) -> Result<String> {
        let mut child = Command::new(&self.command[0])
            .args(&self.command[1..])
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("nftables: cannot run `{}`", self.command.join(" ")))?;
        // Read on threads: a big listing must not fill the pipe while we wait for the exit.
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut text = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut text);
                }
                text
            })
        };
        let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
        let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
        if let Some(input) = input {
            // Dropping stdin after the write closes it: nft reads to the end.
            let mut stdin = child.stdin.take().expect("piped stdin");
            stdin.write_all(input.as_bytes())?;
        }
        // nft answers in milliseconds; one that hangs (a wedged netlink socket) must not stall
        // the actions thread for good.
        let deadline = Instant::now() + NFT_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "nftables: `{} {}` did not finish within {NFT_TIMEOUT:?}; killed",
                    self.command.join(" "),
                    args.join(" ")
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let stdout = stdout.join().unwrap_or_default();
        let stderr = stderr.join().unwrap_or_default();
        if !status.success() {
            bail!(
                "nftables: `{} {}` failed ({}): {}",
                self.command.join(" "),
                args.join(" "),
                status,
                String::from_utf8_lossy(&stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&stdout).into_owned())
    }

    /// Applies a script as one transaction.
    fn apply(&self, script: &str) -> Result<()> {
        self.run(&["-f", "-"], Some(script))
            .with_context(|| format!("applying:\n{script}"))
            .map(|_| ())
    }

    /// Lists the table; `None` when it does not exist.
    fn list(&self) -> Result<Option<Listing>> {
        let tables = self.run(&["-j", "list", "tables"], None)?;
        let tables: serde_json::Value = serde_json::from_str(&tables)?;
        let exists = items(&tables).any(|item| {
            item.get("table").is_some_and(|t| {
                t["family"] == "inet" && t["name"].as_str() == Some(self.name.as_str())
            })
        });
        if !exists {
            return Ok(None);
        }
        let text = self.run(&["-j", "list", "table", "inet", &self.name], None)?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("nftables: cannot parse the table listing: {text}"))?;
        let mut listing = Listing::default();
        for item in items(&json) {
            if let Some(set) = item.get("set") {
                let name = set["name"].as_str().unwrap_or_default();
                listing.sets.insert(name.to_string());
                if name == "blackhole4" || name == "blackhole6" {
                    let elements = set["elem"].as_array().map(Vec::as_slice).unwrap_or(&[]);
                    listing.elements.extend(elements.iter().map(parse_element));
                }
            } else if let Some(chain) = item.get("chain") {
                if chain["name"] == CHAIN && chain["hook"] == "prerouting" {
                    listing.chain_ok = true;
                }
            } else if let Some(rule) = item.get("rule") {
                if rule["chain"] != CHAIN {
                    continue;
                }
                let mut counter = Counter::default();
                for expr in rule["expr"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                    if let Some(c) = expr.get("counter") {
                        counter.packets = c["packets"].as_u64().unwrap_or(0);
                        counter.bytes = c["bytes"].as_u64().unwrap_or(0);
                    }
                }
                listing.rules.push(InstalledRule {
                    handle: rule["handle"].as_u64().unwrap_or(0),
                    comment: rule["comment"].as_str().unwrap_or_default().to_string(),
                    counter,
                });
            }
        }
        Ok(Some(listing))
    }

    /// Makes the blackhole sets hold the outermost prefixes of `self.blackholes`, each commented
    /// with the ids holding it, in one transaction.
    fn sync_blackholes(&self) -> Result<()> {
        let listing = self.list()?.ok_or_else(|| self.missing())?;
        let mut wanted: BTreeMap<IpNet, Vec<&str>> = BTreeMap::new();
        for (id, prefix) in &self.blackholes {
            let covered = self
                .blackholes
                .values()
                .any(|other| other != prefix && other.contains(prefix));
            if !covered {
                wanted.entry(*prefix).or_default().push(id);
            }
        }
        let wanted: BTreeMap<IpNet, String> = wanted
            .into_iter()
            .map(|(prefix, ids)| (prefix, element_comment(&ids)))
            .collect();
        let mut script = String::new();
        let mut present = BTreeSet::new();
        for element in &listing.elements {
            let keep = element
                .prefix
                .is_some_and(|p| wanted.get(&p) == Some(&element.comment));
            if keep {
                present.insert(element.prefix.expect("kept elements have a prefix"));
            } else {
                script.push_str(&format!(
                    "delete element inet {} {} {{ {} }}\n",
                    self.name,
                    set_of(element.prefix.map_or(element.text.contains(':'), |p| {
                        matches!(p, IpNet::V6(_))
                    })),
                    element.text
                ));
            }
        }
        for (prefix, comment) in &wanted {
            if !present.contains(prefix) {
                script.push_str(&format!(
                    "add element inet {} {} {{ {} comment \"{}\" }}\n",
                    self.name,
                    set_of(matches!(prefix, IpNet::V6(_))),
                    prefix,
                    comment
                ));
            }
        }
        if script.is_empty() {
            return Ok(());
        }
        self.apply(&script)
    }
}

fn items(json: &serde_json::Value) -> impl Iterator<Item = &serde_json::Value> {
    json["nftables"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
}

fn set_of(ipv6: bool) -> &'static str {
    if ipv6 {
        "blackhole6"
    } else {
        "blackhole4"
    }
}

/// The ids holding an element, as many as fit in a comment.
fn element_comment(ids: &[&str]) -> String {
    let mut comment = String::new();
    for id in ids {
        let extra = usize::from(!comment.is_empty()) + id.len();
        if comment.len() + extra > COMMENT_MAX {
            break;
        }
        if !comment.is_empty() {
            comment.push(' ');
        }
        comment.push_str(id);
    }
    comment
}

fn parse_element(value: &serde_json::Value) -> Element {
    let mut counter = Counter::default();
    let (val, comment) = match value.get("elem") {
        Some(elem) => {
            if let Some(c) = elem.get("counter") {
                counter.packets = c["packets"].as_u64().unwrap_or(0);
                counter.bytes = c["bytes"].as_u64().unwrap_or(0);
            }
            (
                &elem["val"],
                elem["comment"].as_str().unwrap_or_default().to_string(),
            )
        }
        None => (value, String::new()),
    };
    let prefix = if let Some(text) = val.as_str() {
        text.parse::<IpAddr>().ok().map(IpNet::from)
    } else if let Some(p) = val.get("prefix") {
        let addr = p["addr"].as_str().and_then(|a| a.parse::<IpAddr>().ok());
        let len = p["len"].as_u64().and_then(|l| u8::try_from(l).ok());
        addr.zip(len)
            .and_then(|(addr, len)| IpNet::new(addr, len).ok())
    } else {
        None
    };
    let text = match (&prefix, val.get("range")) {
        (Some(p), _) => p.to_string(),
        (None, Some(range)) => format!(
            "{}-{}",
            range[0].as_str().unwrap_or_default(),
            range[1].as_str().unwrap_or_default()
        ),
        (None, None) => val.to_string(),
    };
    Element {
        prefix,
        text,
        comment,
        counter,
    }
}

/// Checks a mitigation id can be a comment (and thus be found again).
fn check_id(id: &str) -> Result<()> {
    if id.is_empty()
        || id.len() > COMMENT_MAX
        || id.starts_with("floodwall:")
        || id
            .chars()
            .any(|c| c == '"' || c == '\\' || c.is_whitespace() || c.is_control())
    {
        bail!("nftables: mitigation id `{id}` cannot be an nft comment (1-127 bytes, no quotes, backslashes or spaces)");
    }
    Ok(())
}

fn ranges(ranges: &[Range]) -> String {
    let items: Vec<String> = ranges.iter().map(Range::to_string).collect();
    if items.len() == 1 {
        items[0].clone()
    } else {
        format!("{{ {} }}", items.join(", "))
    }
}

/// The nft statement of a filter (everything after `add rule inet TABLE CHAIN`).
pub fn filter_statement(filter: &FlowFilter, action: &FlowAction, id: &str) -> Result<String> {
    let v6 = matches!(filter.destination, IpNet::V6(_));
    let ip = if v6 { "ip6" } else { "ip" };
    // The family is the destination's even when it is /0 (a filter on what a customer sends):
    // `ip`/`ip6` matches then limit the rule to that family.
    let mut s = if filter.destination.prefix_len() == 0 {
        format!("meta nfproto {}", if v6 { "ipv6" } else { "ipv4" })
    } else {
        format!("{ip} daddr {}", filter.destination.trunc())
    };
    if let Some(source) = filter.source {
        if matches!(source, IpNet::V6(_)) != v6 {
            bail!("nftables: filter {filter}: source and destination are of different families");
        }
        s.push_str(&format!(" {ip} saddr {}", source.trunc()));
    }
    let has_ports = !filter.source_ports.is_empty() || !filter.destination_ports.is_empty();
    if let Some(flags) = filter.tcp_flags {
        // `tcp flags` implies TCP; nft refuses it next to a protocol set, and FlowSpec's TCP
        // flags match TCP packets only anyway.
        if !filter.protocols.is_empty() && !filter.protocols.contains(&6) {
            bail!("nftables: filter {filter}: TCP flags with protocols that exclude TCP match nothing");
        }
        s.push_str(&format!(
            " tcp flags & 0x{:02x} == 0x{:02x}",
            flags.mask,
            flags.value & flags.mask
        ));
    } else {
        let mut protocols: Vec<u8> = filter.protocols.clone();
        if has_ports {
            // Ports exist in TCP, UDP and SCTP headers only; FlowSpec ports match TCP/UDP.
            if protocols.is_empty() {
                protocols = vec![6, 17];
            }
            protocols.retain(|p| matches!(p, 6 | 17 | 132));
            if protocols.is_empty() {
                bail!("nftables: filter {filter}: ports with no protocol that has ports");
            }
        }
        protocols.sort_unstable();
        protocols.dedup();
        match protocols.as_slice() {
            [] => {}
            [one] => s.push_str(&format!(" meta l4proto {one}")),
            many => {
                let list: Vec<String> = many.iter().map(u8::to_string).collect();
                s.push_str(&format!(" meta l4proto {{ {} }}", list.join(", ")));
            }
        }
    }
    if !filter.source_ports.is_empty() {
        s.push_str(&format!(" th sport {}", ranges(&filter.source_ports)));
    }
    if !filter.destination_ports.is_empty() {
        s.push_str(&format!(" th dport {}", ranges(&filter.destination_ports)));
    }
    if let Some(length) = filter.packet_length {
        if v6 {
            // The rule's lengths are IP total lengths; IPv6 carries the payload length.
            let range = Range {
                first: length.first.saturating_sub(40),
                last: length.last.saturating_sub(40),
            };
            s.push_str(&format!(" ip6 length {range}"));
        } else {
            s.push_str(&format!(" ip length {length}"));
        }
    }
    if filter.fragments {
        if v6 {
            s.push_str(" exthdr frag exists");
        } else {
            // More-fragments bit or a fragment offset: any fragment, first or not.
            s.push_str(" ip frag-off & 0x3fff != 0");
        }
    }
    s.push_str(" counter");
    match action {
        FlowAction::Discard => s.push_str(" drop"),
        FlowAction::RateLimit { bytes_per_second } => {
            // The kernel refuses rates it cannot turn into tokens; 10 GB/s is no limit at all
            // for a host anyway.
            let rate = (*bytes_per_second as f64).round().clamp(1.0, 1e10) as u64;
            s.push_str(&format!(" limit rate over {rate} bytes/second drop"));
        }
        FlowAction::Redirect { .. } => {
            bail!("nftables: a redirect into a VRF has no local meaning")
        }
    }
    s.push_str(&format!(" comment \"{id}\""));
    Ok(s)
}

impl Mitigator for Nftables {
    fn name(&self) -> &str {
        "nftables"
    }

    fn accepts(&self, rule: &Rule) -> bool {
        match rule {
            Rule::Blackhole { .. } => true,
            Rule::Filter { action, .. } => !matches!(action, FlowAction::Redirect { .. }),
        }
    }

    fn announce(&mut self, mitigation: &Mitigation) -> Result<Outcome> {
        self.put(mitigation)?;
        Ok(Outcome::Sent(format!(
            "applied to nftables table inet {}",
            self.name
        )))
    }

    fn withdraw(&mut self, mitigation: &Mitigation) -> Result<()> {
        self.withdraw_id(&mitigation.id)
    }

    fn withdraw_stale(&mut self, held: &BTreeSet<String>) -> Result<Vec<String>> {
        let stale: Vec<String> = self
            .installed_ids()?
            .into_iter()
            .filter(|id| !held.contains(id))
            .collect();
        for id in &stale {
            self.withdraw_id(id)?;
        }
        Ok(stale)
    }

    fn shutdown(&mut self, keep: bool) -> Result<()> {
        self.shutdown_table(keep)
    }
}

impl Nftables {
    /// Takes out whatever this table holds for `id`: adopted ids are known only by the
    /// comments of their set elements and rules.
    fn withdraw_id(&mut self, id: &str) -> Result<()> {
        if self.blackholes.contains_key(id) {
            let prefix = self.blackholes.remove(id).expect("checked");
            if let Err(e) = self.sync_blackholes() {
                self.blackholes.insert(id.to_string(), prefix);
                return Err(e);
            }
        }
        // Filters are looked up by comment whatever the rule says: an adopted id's rule is
        // known only by its comment.
        let Some(listing) = self.list()? else {
            return Ok(());
        };
        let script: String = listing
            .rules
            .iter()
            .filter(|r| r.comment == id)
            .map(|r| {
                format!(
                    "delete rule inet {} {CHAIN} handle {}\n",
                    self.name, r.handle
                )
            })
            .collect();
        if !script.is_empty() {
            self.apply(&script)?;
        }
        self.filters.remove(id);
        Ok(())
    }

    fn shutdown_table(&mut self, keep: bool) -> Result<()> {
        if keep {
            return Ok(());
        }
        if self.list()?.is_some() {
            self.apply(&format!("delete table inet {}\n", self.name))?;
        }
        self.blackholes.clear();
        self.filters.clear();
        Ok(())
    }
}

impl Nftables {
    /// Applies a mitigation's rule (idempotent).
    fn put(&mut self, mitigation: &Mitigation) -> Result<()> {
        let id = mitigation.id.as_str();
        check_id(id)?;
        match &mitigation.rule {
            Rule::Blackhole { prefix, .. } => {
                let prefix = prefix.trunc();
                if self.blackholes.get(id) == Some(&prefix) {
                    return Ok(());
                }
                let previous = self.blackholes.insert(id.to_string(), prefix);
                if let Err(e) = self.sync_blackholes() {
                    match previous {
                        Some(p) => self.blackholes.insert(id.to_string(), p),
                        None => self.blackholes.remove(id),
                    };
                    return Err(e);
                }
                Ok(())
            }
            Rule::Filter { filter, action, .. } => {
                let statement = filter_statement(filter, action, id)?;
                let listing = self.list()?.ok_or_else(|| self.missing())?;
                let old: Vec<u64> = listing
                    .rules
                    .iter()
                    .filter(|r| r.comment == id)
                    .map(|r| r.handle)
                    .collect();
                if !old.is_empty() && self.filters.get(id) == Some(&statement) {
                    return Ok(());
                }
                // New rule and removal of the old one in one transaction: no gap, no double.
                let mut script = format!("add rule inet {} {CHAIN} {statement}\n", self.name);
                for handle in old {
                    script.push_str(&format!(
                        "delete rule inet {} {CHAIN} handle {handle}\n",
                        self.name
                    ));
                }
                self.apply(&script)?;
                self.filters.insert(id.to_string(), statement);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floodwall_mitigate::TcpFlags;

    #[test]
    fn filters_read_as_nft_rules() {
        let mut filter = FlowFilter::to("198.18.0.2/32".parse().unwrap());
        filter.protocols = vec![17];
        filter.source_ports = vec![Range::single(123)];
        filter.packet_length = Some(Range {
            first: 400,
            last: 65535,
        });
        assert_eq!(
            filter_statement(&filter, &FlowAction::Discard, "a-flowspec").unwrap(),
            "ip daddr 198.18.0.2/32 meta l4proto 17 th sport 123 ip length 400-65535 counter drop comment \"a-flowspec\""
        );
        let mut filter = FlowFilter::to("2001:db8::1/128".parse().unwrap());
        filter.tcp_flags = Some(TcpFlags {
            value: 0x02,
            mask: 0x12,
        });
        filter.destination_ports = vec![
            Range::single(80),
            Range {
                first: 8000,
                last: 8080,
            },
        ];
        filter.packet_length = Some(Range {
            first: 40,
            last: 100,
        });
        filter.fragments = true;
        assert_eq!(
            filter_statement(
                &filter,
                &FlowAction::RateLimit {
                    bytes_per_second: 125000.0
                },
                "b"
            )
            .unwrap(),
            "ip6 daddr 2001:db8::1/128 tcp flags & 0x12 == 0x02 th dport { 80, 8000-8080 } ip6 length 0-60 exthdr frag exists counter limit rate over 125000 bytes/second drop comment \"b\""
        );
        let mut ports_only = FlowFilter::to("198.18.0.0/24".parse().unwrap());
        ports_only.destination_ports = vec![Range::single(53)];
        assert!(filter_statement(&ports_only, &FlowAction::Discard, "c")
            .unwrap()
            .contains("meta l4proto { 6, 17 } th dport 53"));
        // An outgoing attack: any destination, one customer source.
        let mut outgoing = FlowFilter::to("::/0".parse().unwrap());
        outgoing.source = Some("2001:db8:5::9/128".parse().unwrap());
        assert_eq!(
            filter_statement(&outgoing, &FlowAction::Discard, "d").unwrap(),
            "meta nfproto ipv6 ip6 saddr 2001:db8:5::9/128 counter drop comment \"d\""
        );
    }

    #[test]
    fn ids_that_cannot_be_comments_are_refused() {
        let config: NftablesConfig = toml::from_str("enabled = true").unwrap();
        assert_eq!(config.table, "inet floodwall");
        assert_eq!(config.command, ["nft"]);
        assert!(toml::from_str::<NftablesConfig>("tabel = \"x\"").is_err());
        assert!(check_id("1760000021000-in-203.0.113.10/32-flowspec").is_ok());
        assert!(check_id("a\"b").is_err());
        assert!(check_id("floodwall: blackhole4").is_err());
        assert!(check_id(&"x".repeat(128)).is_err());
    }

    #[test]
    fn element_comments_keep_the_ids_that_fit() {
        let long = "y".repeat(100);
        assert_eq!(element_comment(&["a", &long, "b"]), format!("a {long} b"));
        let longer = "z".repeat(30);
        assert_eq!(element_comment(&["a", &long, &longer]), format!("a {long}"));
    }
}
