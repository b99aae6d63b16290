//! What a mitigation asks the network to do: a blackhole route (RFC 7999) or a traffic filter
//! (FlowSpec, RFC 8955/8956; the same filter drives nftables). Plain data, serialisable, so the
//! store, the event record, the CLI and every action share one description.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A standard BGP community `ASN:VALUE` (RFC 1997).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

/// Written `ASN:VALUE`, as in the configuration and the event record.
impl schemars::JsonSchema for Community {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Community".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9]+:[0-9]+$",
            "description": "A standard BGP community, `ASN:VALUE` (RFC 1997)"
        })
    }
}

impl Community {
    /// RFC 7999 BLACKHOLE, 65535:666.
    pub const BLACKHOLE: Community = Community(0xFFFF_029A);

    pub fn asn(self) -> u16 {
        (self.0 >> 16) as u16
    }

    pub fn value(self) -> u16 {
        self.0 as u16
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.asn(), self.value())
    }
}

/// Text that is no `ASN:VALUE` community.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a BGP community: write ASN:VALUE with both parts 0..=65535, e.g. 65535:666")]
pub struct NotACommunity(pub String);

impl FromStr for Community {
    type Err = NotACommunity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || NotACommunity(s.to_string());
        let (asn, value) = s.split_once(':').ok_or_else(bad)?;
        let asn: u16 = asn.trim().parse().map_err(|_| bad())?;
        let value: u16 = value.trim().parse().map_err(|_| bad())?;
        Ok(Community((u32::from(asn) << 16) | u32::from(value)))
    }
}

impl Serialize for Community {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Community {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An inclusive range of port numbers or packet lengths.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
pub struct Range {
    pub first: u16,
    pub last: u16,
}

impl Range {
    pub fn single(value: u16) -> Range {
        Range {
            first: value,
            last: value,
        }
    }

    pub fn contains(&self, value: u16) -> bool {
        (self.first..=self.last).contains(&value)
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// TCP flags match: `flags & mask == value` (bits as in the TCP header: FIN 0x01, SYN 0x02,
/// RST 0x04, PSH 0x08, ACK 0x10, URG 0x20, ECE 0x40, CWR 0x80).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TcpFlags {
    pub value: u8,
    pub mask: u8,
}

/// Which packets a filter matches. Empty lists and `None` match anything; all present
/// conditions must hold (the semantics of a FlowSpec NLRI).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FlowFilter {
    /// The attacked host or prefix; for an outgoing attack 0.0.0.0/0 or ::/0, with `source`
    /// the customer's device.
    pub destination: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<IpNet>,
    /// IP protocol numbers (IPv6: next header), any of.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protocols: Vec<u8>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_ports: Vec<Range>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destination_ports: Vec<Range>,
    /// IP total length (IPv6: payload length + 40), inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packet_length: Option<Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_flags: Option<TcpFlags>,
    /// Only IP fragments.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fragments: bool,
}

impl FlowFilter {
    /// A filter matching everything to `destination`.
    pub fn to(destination: IpNet) -> FlowFilter {
        FlowFilter {
            destination,
            source: None,
            protocols: Vec::new(),
            source_ports: Vec::new(),
            destination_ports: Vec::new(),
            packet_length: None,
            tcp_flags: None,
            fragments: false,
        }
    }
}

impl FlowFilter {
    /// Whether everything this filter matches, `wider` matches too: this one is as narrow or
    /// narrower in every dimension.
    pub fn within(&self, wider: &FlowFilter) -> bool {
        let ranges_within = |narrow: &[Range], wide: &[Range]| {
            wide.is_empty()
                || (!narrow.is_empty()
                    && narrow
                        .iter()
                        .all(|n| wide.iter().any(|w| w.first <= n.first && n.last <= w.last)))
        };
        wider.destination.contains(&self.destination)
            && match (self.source, wider.source) {
                (_, None) => true,
                (Some(narrow), Some(wide)) => wide.contains(&narrow),
                (None, Some(_)) => false,
            }
            && (wider.protocols.is_empty()
                || (!self.protocols.is_empty()
                    && self.protocols.iter().all(|p| wider.protocols.contains(p))))
            && ranges_within(&self.source_ports, &wider.source_ports)
            && ranges_within(&self.destination_ports, &wider.destination_ports)
            && match (self.packet_length, wider.packet_length) {
                (_, None) => true,
                (Some(n), Some(w)) => w.first <= n.first && n.last <= w.last,
                (None, Some(_)) => false,
            }
            && match (self.tcp_flags, wider.tcp_flags) {
                (_, None) => true,
                (Some(n), Some(w)) => n.mask & w.mask == w.mask && n.value & w.mask == w.value,
                (None, Some(_)) => false,
            }
            && (self.fragments || !wider.fragments)
    }
}

impl fmt::Display for FlowFilter {
    /// The form operators read and write: `dst 203.0.113.7/32 proto 17 sport 123 len 400-1500`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dst {}", self.destination)?;
        if let Some(source) = self.source {
            write!(f, " src {source}")?;
        }
        let list = |values: &[Range]| {
            values
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        if !self.protocols.is_empty() {
            let protocols: Vec<String> = self.protocols.iter().map(|p| p.to_string()).collect();
            write!(f, " proto {}", protocols.join(","))?;
        }
        if !self.source_ports.is_empty() {
            write!(f, " sport {}", list(&self.source_ports))?;
        }
        if !self.destination_ports.is_empty() {
            write!(f, " dport {}", list(&self.destination_ports))?;
        }
        if let Some(length) = self.packet_length {
            write!(f, " len {length}")?;
        }
        if let Some(flags) = self.tcp_flags {
            write!(f, " tcp-flags 0x{:02x}/0x{:02x}", flags.value, flags.mask)?;
        }
        if self.fragments {
            write!(f, " fragments")?;
        }
        Ok(())
    }
}

/// What a router does with packets a filter matches.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum FlowAction {
    Discard,
    /// Police to this many bytes per second (FlowSpec traffic-rate-bytes).
    RateLimit {
        bytes_per_second: f32,
    },
    /// Redirect into a VRF by route target `asn:value` (FlowSpec redirect, 2-octet AS).
    Redirect {
        asn: u16,
        value: u32,
    },
}

/// One route or filter that a mitigation holds in the network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Rule {
    /// Remote-triggered blackhole: a route for `prefix` to a discard next hop with the BLACKHOLE
    /// community (and any others configured).
    Blackhole {
        prefix: IpNet,
        next_hop: IpAddr,
        communities: Vec<Community>,
    },
    /// A traffic filter, announced as FlowSpec and/or installed in nftables.
    #[serde(rename = "flowspec")]
    Filter {
        filter: FlowFilter,
        action: FlowAction,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        communities: Vec<Community>,
    },
}

impl Rule {
    /// The address or prefix the rule is about: the destination it protects, or for a filter
    /// on what a customer sends (any destination, one source) that source.
    pub fn target(&self) -> IpNet {
        match self {
            Rule::Blackhole { prefix, .. } => *prefix,
            Rule::Filter { filter, .. } => match filter.source {
                Some(source) if filter.destination.prefix_len() == 0 => source,
                _ => filter.destination,
            },
        }
    }

    pub fn is_ipv6(&self) -> bool {
        matches!(self.target(), IpNet::V6(_))
    }

    /// `blackhole` or `flowspec`: the names of the configuration and the event record.
    pub fn kind(&self) -> RuleKind {
        match self {
            Rule::Blackhole { .. } => RuleKind::Blackhole,
            Rule::Filter { .. } => RuleKind::Flowspec,
        }
    }
}

/// The kinds of [`Rule`], by the names of the configuration, the event record and rule ids.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    Blackhole,
    Flowspec,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Blackhole => "blackhole",
            RuleKind::Flowspec => "flowspec",
        }
    }
}

impl fmt::Display for RuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Blackhole {
                prefix,
                next_hop,
                communities,
            } => {
                let communities: Vec<String> = communities.iter().map(|c| c.to_string()).collect();
                write!(
                    f,
                    "blackhole {prefix} next-hop {next_hop} communities {}",
                    communities.join(" ")
                )
            }
            Rule::Filter { filter, action, .. } => {
                write!(f, "flowspec {filter} then ")?;
                match action {
                    FlowAction::Discard => write!(f, "discard"),
                    FlowAction::RateLimit { bytes_per_second } => {
                        write!(f, "rate-limit {bytes_per_second} B/s")
                    }
                    FlowAction::Redirect { asn, value } => write!(f, "redirect {asn}:{value}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn communities_parse_and_print_as_operators_write_them() {
        assert_eq!("65535:666".parse::<Community>(), Ok(Community::BLACKHOLE));
        assert_eq!(Community::BLACKHOLE.to_string(), "65535:666");
        assert!("65536:1".parse::<Community>().is_err());
        assert_eq!(
            "666".parse::<Community>().unwrap_err().to_string(),
            "`666` is not a BGP community: write ASN:VALUE with both parts 0..=65535, e.g. 65535:666"
        );
    }

    #[test]
    fn rules_read_like_router_configuration() {
        let mut filter = FlowFilter::to("203.0.113.7/32".parse().unwrap());
        filter.protocols = vec![17];
        filter.source_ports = vec![Range::single(123)];
        filter.packet_length = Some(Range {
            first: 400,
            last: 65535,
        });
        let rule = Rule::Filter {
            filter,
            action: FlowAction::Discard,
            communities: vec![],
        };
        assert_eq!(
            rule.to_string(),
            "flowspec dst 203.0.113.7/32 proto 17 sport 123 len 400-65535 then discard"
        );
        let json = serde_json::to_string(&rule).unwrap();
        assert_eq!(serde_json::from_str::<Rule>(&json).unwrap(), rule);
        // The rule's `kind` tag is its kind's name.
        let kind = serde_json::to_value(&rule).unwrap()["kind"].clone();
        assert_eq!(kind, serde_json::to_value(rule.kind()).unwrap());
        assert_eq!(kind, rule.kind().as_str());
    }
}
