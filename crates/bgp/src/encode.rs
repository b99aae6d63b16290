//! Rules as BGP routes, and routes as UPDATE messages.
//!
//! A `Route` keeps its NLRI already encoded: those bytes are the Adj-RIB-Out key (two rules
//! with the same NLRI are the same route) and are copied into UPDATEs as they are. Attributes
//! depend on the session (iBGP or eBGP, 2- or 4-octet AS), so they are built per peer.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use floodwall_mitigate::{FlowAction, FlowFilter, Range, Rule};
use ipnet::IpNet;
use rustbgpd_wire::flowspec::try_encode_flowspec_nlri;
use rustbgpd_wire::{
    Afi, BitmaskMatch, ExtendedCommunity, FlowSpecAction, FlowSpecComponent, FlowSpecPrefix,
    FlowSpecRule, Ipv4Prefix, Ipv6Prefix, Ipv6PrefixOffset, NumericMatch,
};

use crate::Family;

/// RFC 4271 §4.1: without the Extended Message capability (which we do not offer).
pub(crate) const MAX_MESSAGE: usize = 4096;
const HEADER: usize = 19;
const AS_TRANS: u16 = 23456;

/// Why a rule cannot be announced over BGP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError(String);

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RuleError {}

pub(crate) type RouteKey = (Family, Vec<u8>);

/// One Adj-RIB-Out entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub family: Family,
    /// Wire NLRI: `len, prefix bytes` for unicast, the length-prefixed rule for FlowSpec.
    pub nlri: Vec<u8>,
    /// Unicast only.
    pub next_hop: Option<IpAddr>,
    /// Sorted and deduplicated, so equal sets compare equal.
    pub communities: Vec<u32>,
    pub extended_communities: Vec<u64>,
}

impl Route {
    pub fn key(&self) -> RouteKey {
        (self.family, self.nlri.clone())
    }
}

/// The route announcing `rule`.
pub(crate) fn route(rule: &Rule) -> Result<Route, RuleError> {
    let (family, nlri) = nlri(rule)?;
    let mut communities: Vec<u32> = match rule {
        Rule::Blackhole { communities, .. } | Rule::Filter { communities, .. } => {
            communities.iter().map(|c| c.0).collect()
        }
    };
    communities.sort_unstable();
    communities.dedup();
    let (next_hop, extended_communities) = match rule {
        Rule::Blackhole {
            prefix, next_hop, ..
        } => {
            if prefix.addr().is_ipv4() != next_hop.is_ipv4() {
                return Err(RuleError(format!(
                    "blackhole {prefix}: next hop {next_hop} is of the other address family"
                )));
            }
            (Some(*next_hop), Vec::new())
        }
        Rule::Filter { action, .. } => {
            let action = match *action {
                // RFC 8955 §7.1: a traffic-rate of 0 discards.
                FlowAction::Discard => FlowSpecAction::TrafficRateBytes { asn: 0, rate: 0.0 },
                FlowAction::RateLimit { bytes_per_second } => {
                    if !(bytes_per_second.is_finite() && bytes_per_second >= 0.0) {
                        return Err(RuleError(format!(
                            "rate limit {bytes_per_second} B/s is not a rate"
                        )));
                    }
                    FlowSpecAction::TrafficRateBytes {
                        asn: 0,
                        rate: bytes_per_second,
                    }
                }
                FlowAction::Redirect { asn, value } => {
                    FlowSpecAction::Redirect2Octet { asn, value }
                }
            };
            (
                None,
                vec![ExtendedCommunity::from_flowspec_action(&action).as_u64()],
            )
        }
    };
    Ok(Route {
        family,
        nlri,
        next_hop,
        communities,
        extended_communities,
    })
}

/// The Adj-RIB-Out key of `rule`: what `withdraw` needs (attributes do not matter).
pub(crate) fn nlri(rule: &Rule) -> Result<RouteKey, RuleError> {
    match rule {
        Rule::Blackhole { prefix, .. } => {
            let family = match prefix {
                IpNet::V4(_) => Family::Ipv4Unicast,
                IpNet::V6(_) => Family::Ipv6Unicast,
            };
            let mut bytes = Vec::with_capacity(17);
            push_prefix(&mut bytes, prefix);
            Ok((family, bytes))
        }
        Rule::Filter { filter, .. } => flowspec_nlri(filter),
    }
}

fn push_prefix(out: &mut Vec<u8>, prefix: &IpNet) {
    // Host bits are zero on the wire (and in the key): 10.0.0.1/24 is 10.0.0.0/24.
    let prefix = prefix.trunc();
    let len = prefix.prefix_len();
    out.push(len);
    let octets = match prefix.addr() {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    out.extend_from_slice(&octets[..usize::from(len).div_ceil(8)]);
}

fn flowspec_prefix(net: &IpNet) -> FlowSpecPrefix {
    match net.trunc() {
        IpNet::V4(n) => FlowSpecPrefix::V4(Ipv4Prefix::new(n.addr(), n.prefix_len())),
        // RFC 8956: offset 0, the prefix matches from the first address bit.
        IpNet::V6(n) => FlowSpecPrefix::V6(Ipv6PrefixOffset {
            prefix: Ipv6Prefix::new(n.addr(), n.prefix_len()),
            offset: 0,
        }),
    }
}

fn numeric(and_bit: bool, lt: bool, gt: bool, eq: bool, value: u64) -> NumericMatch {
    NumericMatch {
        // The encoder sets end-of-list on the last term by position.
        end_of_list: false,
        and_bit,
        lt,
        gt,
        eq,
        value,
    }
}

/// Values that match any of `values`: `== v` for single values and `>= a && <= b` for ranges,
/// the alternatives OR'd (RFC 8955 §4.2.1.1: AND binds tighter).
fn ranges(values: &[Range]) -> Vec<NumericMatch> {
    let mut terms = Vec::new();
    for range in values {
        let (first, last) = (
            u64::from(range.first.min(range.last)),
            u64::from(range.first.max(range.last)),
        );
        if first == last {
            terms.push(numeric(false, false, false, true, first));
        } else {
            terms.push(numeric(false, false, true, true, first));
            terms.push(numeric(true, true, false, true, last));
        }
    }
    terms
}

fn bitmask(and_bit: bool, not_bit: bool, match_bit: bool, value: u8) -> BitmaskMatch {
    BitmaskMatch {
        end_of_list: false,
        and_bit,
        not_bit,
        match_bit,
        value: u16::from(value),
    }
}

/// RFC 8955 §4.2.2.10: the fragment bitmask's Is-a-Fragment bit.
const IS_FRAGMENT: u8 = 0x02;

fn flowspec_nlri(filter: &FlowFilter) -> Result<RouteKey, RuleError> {
    let (family, afi) = match filter.destination {
        IpNet::V4(_) => (Family::Ipv4FlowSpec, Afi::Ipv4),
        IpNet::V6(_) => (Family::Ipv6FlowSpec, Afi::Ipv6),
    };
    if let Some(source) = filter.source {
        if source.addr().is_ipv4() != filter.destination.addr().is_ipv4() {
            return Err(RuleError(format!(
                "filter {filter}: source and destination are of different address families"
            )));
        }
    }
    // Components in ascending type order (RFC 8955 §4.2). A /0 destination (a filter on what
    // a customer sends, anywhere) matches everything: left out unless it is all there is.
    let mut components = Vec::new();
    let anywhere = filter.destination.prefix_len() == 0;
    let more = filter.source.is_some()
        || !filter.protocols.is_empty()
        || !filter.destination_ports.is_empty()
        || !filter.source_ports.is_empty()
        || filter.tcp_flags.is_some_and(|f| f.mask != 0)
        || filter.packet_length.is_some()
        || filter.fragments;
    if !anywhere || !more {
        components.push(FlowSpecComponent::DestinationPrefix(flowspec_prefix(
            &filter.destination,
        )));
    }
    if let Some(source) = &filter.source {
        components.push(FlowSpecComponent::SourcePrefix(flowspec_prefix(source)));
    }
    if !filter.protocols.is_empty() {
        let mut protocols = filter.protocols.clone();
        protocols.sort_unstable();
        protocols.dedup();
        let terms = protocols
            .iter()
            .map(|&p| numeric(false, false, false, true, u64::from(p)))
            .collect();
        components.push(FlowSpecComponent::IpProtocol(terms));
    }
    if !filter.destination_ports.is_empty() {
        components.push(FlowSpecComponent::DestinationPort(ranges(
            &filter.destination_ports,
        )));
    }
    if !filter.source_ports.is_empty() {
        components.push(FlowSpecComponent::SourcePort(ranges(&filter.source_ports)));
    }
    if let Some(flags) = filter.tcp_flags {
        // flags & mask == value: every bit of `value` set (match bit) AND none of the other
        // masked bits set (NOT of "any of them").
        let value = flags.value & flags.mask;
        let clear = flags.mask & !flags.value;
        let mut terms = Vec::new();
        if value != 0 {
            terms.push(bitmask(false, false, true, value));
        }
        if clear != 0 {
            terms.push(bitmask(!terms.is_empty(), true, false, clear));
        }
        if !terms.is_empty() {
            components.push(FlowSpecComponent::TcpFlags(terms));
        }
    }
    if let Some(length) = filter.packet_length {
        components.push(FlowSpecComponent::PacketLength(ranges(&[length])));
    }
    if filter.fragments {
        components.push(FlowSpecComponent::Fragment(vec![bitmask(
            false,
            false,
            false,
            IS_FRAGMENT,
        )]));
    }
    let mut bytes = Vec::new();
    try_encode_flowspec_nlri(&[FlowSpecRule { components }], &mut bytes, afi)
        .map_err(|e| RuleError(format!("filter {filter}: {e}")))?;
    Ok((family, bytes))
}

/// What differs between sessions in the attributes we send.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionEncoding {
    pub local_as: u32,
    pub ibgp: bool,
    pub four_octet_as: bool,
}

const ORIGIN: u8 = 1;
const AS_PATH: u8 = 2;
const NEXT_HOP: u8 = 3;
const LOCAL_PREF: u8 = 5;
const COMMUNITIES: u8 = 8;
const MP_REACH: u8 = 14;
const MP_UNREACH: u8 = 15;
const EXTENDED_COMMUNITIES: u8 = 16;
const AS4_PATH: u8 = 17;

const TRANSITIVE: u8 = 0x40;
const OPTIONAL: u8 = 0x80;
const EXTENDED_LENGTH: u8 = 0x10;

fn push_attribute(out: &mut Vec<u8>, flags: u8, code: u8, value: &[u8]) {
    if value.len() > 255 {
        out.extend_from_slice(&[flags | EXTENDED_LENGTH, code]);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        out.extend_from_slice(&[flags, code, value.len() as u8]);
    }
    out.extend_from_slice(value);
}

/// Attributes of `route` except MP_REACH_NLRI, in type order. MP_REACH (14) goes between
/// COMMUNITIES (8) and EXTENDED_COMMUNITIES (16, followed by AS4_PATH 17), so the result is
/// split there.
fn attributes(session: SessionEncoding, route: &Route) -> (Vec<u8>, Vec<u8>) {
    let mut head = Vec::new();
    push_attribute(&mut head, TRANSITIVE, ORIGIN, &[0]); // IGP
    let mut path = Vec::new();
    if !session.ibgp {
        // One AS_SEQUENCE with our AS. A 2-octet session gets AS_TRANS for a 4-octet AS,
        // and the real one in AS4_PATH (RFC 6793 §4.2.2).
        path.extend_from_slice(&[2, 1]);
        if session.four_octet_as {
            path.extend_from_slice(&session.local_as.to_be_bytes());
        } else {
            let asn = u16::try_from(session.local_as).unwrap_or(AS_TRANS);
            path.extend_from_slice(&asn.to_be_bytes());
        }
    }
    push_attribute(&mut head, TRANSITIVE, AS_PATH, &path);
    if let (Family::Ipv4Unicast, Some(IpAddr::V4(next_hop))) = (route.family, route.next_hop) {
        push_attribute(&mut head, TRANSITIVE, NEXT_HOP, &next_hop.octets());
    }
    if session.ibgp {
        push_attribute(&mut head, TRANSITIVE, LOCAL_PREF, &100u32.to_be_bytes());
    }
    if !route.communities.is_empty() {
        let value: Vec<u8> = route
            .communities
            .iter()
            .flat_map(|c| c.to_be_bytes())
            .collect();
        push_attribute(&mut head, OPTIONAL | TRANSITIVE, COMMUNITIES, &value);
    }
    let mut tail = Vec::new();
    if !route.extended_communities.is_empty() {
        let value: Vec<u8> = route
            .extended_communities
            .iter()
            .flat_map(|c| c.to_be_bytes())
            .collect();
        push_attribute(
            &mut tail,
            OPTIONAL | TRANSITIVE,
            EXTENDED_COMMUNITIES,
            &value,
        );
    }
    if !session.ibgp && !session.four_octet_as && session.local_as > u32::from(u16::MAX) {
        let mut path = vec![2, 1];
        path.extend_from_slice(&session.local_as.to_be_bytes());
        push_attribute(&mut tail, OPTIONAL | TRANSITIVE, AS4_PATH, &path);
    }
    (head, tail)
}

fn message(withdrawn: &[u8], attributes: &[u8], nlri: &[u8]) -> Vec<u8> {
    let len = HEADER + 2 + withdrawn.len() + 2 + attributes.len() + nlri.len();
    debug_assert!(len <= MAX_MESSAGE);
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&[0xff; 16]);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.push(2); // UPDATE
    out.extend_from_slice(&(withdrawn.len() as u16).to_be_bytes());
    out.extend_from_slice(withdrawn);
    out.extend_from_slice(&(attributes.len() as u16).to_be_bytes());
    out.extend_from_slice(attributes);
    out.extend_from_slice(nlri);
    out
}

/// Header of an MP_REACH/MP_UNREACH attribute, always with a 2-byte length so the packing
/// below can compute sizes before it knows how much NLRI fits.
fn mp_attribute(code: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![OPTIONAL | EXTENDED_LENGTH, code];
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Splits encoded NLRIs into groups whose total fits `room` bytes. One NLRI is at most
/// ~4 KB only for absurd FlowSpec rules; those are sent alone and may be refused by the peer.
fn chunks<'a>(nlris: &[&'a [u8]], room: usize) -> Vec<Vec<&'a [u8]>> {
    let mut groups: Vec<Vec<&[u8]>> = Vec::new();
    let mut size = 0;
    for nlri in nlris {
        if groups.is_empty() || size + nlri.len() > room {
            groups.push(Vec::new());
            size = 0;
        }
        size += nlri.len();
        groups.last_mut().expect("just pushed").push(nlri);
    }
    groups
}

/// UPDATEs withdrawing `nlris` of one family, as few as fit.
pub(crate) fn withdrawals(family: Family, nlris: &[&[u8]]) -> Vec<Vec<u8>> {
    if family == Family::Ipv4Unicast {
        let room = MAX_MESSAGE - HEADER - 4;
        return chunks(nlris, room)
            .into_iter()
            .map(|group| message(&group.concat(), &[], &[]))
            .collect();
    }
    // MP_UNREACH: 4 header + AFI(2) SAFI(1).
    let room = MAX_MESSAGE - HEADER - 4 - 4 - 3;
    chunks(nlris, room)
        .into_iter()
        .map(|group| {
            let mut body = family.afi().to_be_bytes().to_vec();
            body.push(family.safi());
            body.extend_from_slice(&group.concat());
            message(&[], &mp_attribute(MP_UNREACH, &body), &[])
        })
        .collect()
}

/// What routes that can share an UPDATE have in common: everything but the NLRI.
type SharedAttributes<'a> = (Family, Option<IpAddr>, &'a [u32], &'a [u64]);

/// UPDATEs announcing `routes`: routes with equal attributes share messages.
pub(crate) fn announcements(session: SessionEncoding, routes: &[&Route]) -> Vec<Vec<u8>> {
    // Group by everything but the NLRI.
    let mut groups: BTreeMap<SharedAttributes, Vec<&Route>> = BTreeMap::new();
    for route in routes {
        groups
            .entry((
                route.family,
                route.next_hop,
                &route.communities,
                &route.extended_communities,
            ))
            .or_default()
            .push(route);
    }
    let mut out = Vec::new();
    for ((family, next_hop, _, _), group) in groups {
        let (head, tail) = attributes(session, group[0]);
        let nlris: Vec<&[u8]> = group.iter().map(|r| r.nlri.as_slice()).collect();
        if family == Family::Ipv4Unicast {
            let attrs = [head, tail].concat();
            let room = MAX_MESSAGE - HEADER - 4 - attrs.len();
            for chunk in chunks(&nlris, room) {
                out.push(message(&[], &attrs, &chunk.concat()));
            }
            continue;
        }
        // MP_REACH body: AFI, SAFI, next hop length + next hop, reserved, NLRI. FlowSpec has
        // no next hop (RFC 8955 §4: length 0).
        let mut reach = family.afi().to_be_bytes().to_vec();
        reach.push(family.safi());
        match (family, next_hop) {
            (Family::Ipv6Unicast, Some(IpAddr::V6(next_hop))) => {
                reach.push(16);
                reach.extend_from_slice(&next_hop.octets());
            }
            _ => reach.push(0),
        }
        reach.push(0);
        let room = MAX_MESSAGE - HEADER - 4 - head.len() - tail.len() - 4 - reach.len();
        for chunk in chunks(&nlris, room) {
            let mut body = reach.clone();
            body.extend_from_slice(&chunk.concat());
            let attrs = [head.as_slice(), &mp_attribute(MP_REACH, &body), &tail].concat();
            out.push(message(&[], &attrs, &[]));
        }
    }
    out
}

/// End-of-RIB (RFC 4724 §2): an empty UPDATE for IPv4 unicast, an empty MP_UNREACH otherwise.
pub(crate) fn end_of_rib(family: Family) -> Vec<u8> {
    if family == Family::Ipv4Unicast {
        return message(&[], &[], &[]);
    }
    let mut body = family.afi().to_be_bytes().to_vec();
    body.push(family.safi());
    message(&[], &mp_attribute(MP_UNREACH, &body), &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use floodwall_mitigate::{Community, TcpFlags};
    use rustbgpd_wire::flowspec::decode_flowspec_nlri;
    use rustbgpd_wire::{decode_message, Message, PathAttribute};

    fn filter(destination: &str) -> FlowFilter {
        FlowFilter::to(destination.parse().unwrap())
    }

    fn decode_rule(route: &Route, afi: Afi) -> FlowSpecRule {
        let mut rules = decode_flowspec_nlri(&route.nlri, afi).unwrap();
        assert_eq!(rules.len(), 1);
        rules.remove(0)
    }

    #[test]
    fn port_ranges_are_and_pairs_ored_and_tcp_flags_split_into_set_and_not_set() {
        let mut f = filter("203.0.113.7/32");
        f.protocols = vec![6];
        f.destination_ports = vec![
            Range::single(80),
            Range {
                first: 1000,
                last: 2000,
            },
        ];
        f.tcp_flags = Some(TcpFlags {
            value: 0x02,
            mask: 0x12,
        });
        f.fragments = true;
        let rule = Rule::Filter {
            filter: f,
            action: FlowAction::Discard,
            communities: vec![],
        };
        let route = route(&rule).unwrap();
        let decoded = decode_rule(&route, Afi::Ipv4);
        let ports = decoded
            .components
            .iter()
            .find_map(|c| match c {
                FlowSpecComponent::DestinationPort(terms) => Some(terms.clone()),
                _ => None,
            })
            .unwrap();
        let shape: Vec<_> = ports
            .iter()
            .map(|t| (t.and_bit, t.lt, t.gt, t.eq, t.value))
            .collect();
        assert_eq!(
            shape,
            [
                (false, false, false, true, 80),
                (false, false, true, true, 1000),
                (true, true, false, true, 2000)
            ]
        );
        let flags = decoded
            .components
            .iter()
            .find_map(|c| match c {
                FlowSpecComponent::TcpFlags(terms) => Some(terms.clone()),
                _ => None,
            })
            .unwrap();
        let shape: Vec<_> = flags
            .iter()
            .map(|t| (t.and_bit, t.not_bit, t.match_bit, t.value))
            .collect();
        assert_eq!(
            shape,
            [(false, false, true, 0x02), (true, true, false, 0x10)]
        );
        assert!(decoded.components.iter().any(|c| matches!(
            c,
            FlowSpecComponent::Fragment(t) if t.len() == 1 && t[0].value == 0x02 && !t[0].not_bit
        )));
        assert_eq!(
            route.extended_communities,
            [
                ExtendedCommunity::from_flowspec_action(&FlowSpecAction::TrafficRateBytes {
                    asn: 0,
                    rate: 0.0
                })
                .as_u64()
            ]
        );
    }

    #[test]
    fn ipv6_filters_use_offset_zero_prefixes() {
        let rule = Rule::Filter {
            filter: filter("2001:db8::7/128"),
            action: FlowAction::Discard,
            communities: vec![],
        };
        let route = route(&rule).unwrap();
        assert_eq!(route.family, Family::Ipv6FlowSpec);
        let decoded = decode_rule(&route, Afi::Ipv6);
        assert!(matches!(
            &decoded.components[0],
            FlowSpecComponent::DestinationPrefix(FlowSpecPrefix::V6(p)) if p.offset == 0 && p.prefix.len == 128
        ));
    }

    #[test]
    fn the_same_nlri_with_other_attributes_is_the_same_key() {
        let a = Rule::Blackhole {
            prefix: "198.51.100.1/32".parse().unwrap(),
            next_hop: "192.0.2.1".parse().unwrap(),
            communities: vec![Community::BLACKHOLE],
        };
        let mut b = a.clone();
        if let Rule::Blackhole { communities, .. } = &mut b {
            communities.push(Community(65001 << 16 | 666));
        }
        assert_eq!(nlri(&a).unwrap(), nlri(&b).unwrap());
        assert_ne!(route(&a).unwrap(), route(&b).unwrap());
    }

    #[test]
    fn a_filter_on_what_a_customer_sends_anywhere_has_no_destination_component() {
        let mut f = filter("0.0.0.0/0");
        f.source = Some("198.51.100.50/32".parse().unwrap());
        let rule = Rule::Filter {
            filter: f,
            action: FlowAction::Discard,
            communities: vec![],
        };
        let decoded = decode_rule(&route(&rule).unwrap(), Afi::Ipv4);
        assert_eq!(decoded.components.len(), 1);
        assert!(matches!(
            decoded.components[0],
            FlowSpecComponent::SourcePrefix(_)
        ));
        // Nothing else to match on: the /0 stays, a rule needs a component.
        let everything = Rule::Filter {
            filter: filter("::/0"),
            action: FlowAction::Discard,
            communities: vec![],
        };
        let decoded = decode_rule(&route(&everything).unwrap(), Afi::Ipv6);
        assert!(matches!(
            decoded.components[..],
            [FlowSpecComponent::DestinationPrefix(_)]
        ));
    }

    #[test]
    fn ibgp_gets_an_empty_as_path_and_local_pref_ebgp_our_as() {
        let rule = Rule::Blackhole {
            prefix: "2001:db8::1/128".parse().unwrap(),
            next_hop: "100::1".parse().unwrap(),
            communities: vec![Community::BLACKHOLE],
        };
        let route = route(&rule).unwrap();
        let attributes = |ibgp: bool| {
            let session = SessionEncoding {
                local_as: 4_200_000_001,
                ibgp,
                four_octet_as: true,
            };
            let update = announcements(session, &[&route]).remove(0);
            let mut bytes = bytes::Bytes::from(update);
            let Message::Update(update) = decode_message(&mut bytes, 4096).unwrap() else {
                panic!("not an UPDATE")
            };
            update.parse(true, false, &[]).unwrap().attributes
        };
        let ibgp = attributes(true);
        assert!(ibgp.contains(&PathAttribute::LocalPref(100)));
        assert!(ibgp
            .iter()
            .any(|a| matches!(a, PathAttribute::AsPath(p) if p.segments.is_empty())));
        assert!(ibgp.iter().any(|a| matches!(
            a,
            PathAttribute::MpReachNlri(r) if r.next_hop.to_string() == "100::1" && r.announced.len() == 1
        )));
        // A 2-octet session: AS_TRANS in AS_PATH, the real AS in AS4_PATH, which a decoder
        // merges back (RFC 6793 §4.2.3).
        let session = SessionEncoding {
            local_as: 4_200_000_001,
            ibgp: false,
            four_octet_as: false,
        };
        let update = announcements(session, &[&route]).remove(0);
        let mut bytes = bytes::Bytes::from(update);
        let Message::Update(update) = decode_message(&mut bytes, 4096).unwrap() else {
            panic!("not an UPDATE")
        };
        let as_trans_path = [TRANSITIVE, AS_PATH, 4, 2, 1, 0x5b, 0xa0];
        assert!(update
            .path_attributes
            .windows(as_trans_path.len())
            .any(|w| w == as_trans_path));
        let merged = update.parse(false, false, &[]).unwrap().attributes;
        assert!(merged.iter().any(|a| matches!(
            a,
            PathAttribute::AsPath(p) if p.segments == [rustbgpd_wire::AsPathSegment::AsSequence(vec![4_200_000_001])]
        )));
        let ebgp = attributes(false);
        assert!(!ebgp
            .iter()
            .any(|a| matches!(a, PathAttribute::LocalPref(_))));
        assert!(ebgp.iter().any(|a| matches!(
            a,
            PathAttribute::AsPath(p) if p.segments == [rustbgpd_wire::AsPathSegment::AsSequence(vec![4_200_000_001])]
        )));
    }

    #[test]
    fn mismatched_families_are_refused() {
        let rule = Rule::Blackhole {
            prefix: "2001:db8::1/128".parse().unwrap(),
            next_hop: "192.0.2.1".parse().unwrap(),
            communities: vec![],
        };
        assert!(route(&rule).is_err());
    }

    #[test]
    fn many_routes_are_packed_into_few_valid_updates() {
        let session = SessionEncoding {
            local_as: 65001,
            ibgp: false,
            four_octet_as: true,
        };
        let routes: Vec<Route> = (0..2000u32)
            .map(|i| {
                let prefix = format!("10.{}.{}.0/24", i / 256, i % 256);
                route(&Rule::Blackhole {
                    prefix: prefix.parse().unwrap(),
                    next_hop: "192.0.2.1".parse().unwrap(),
                    communities: vec![Community::BLACKHOLE],
                })
                .unwrap()
            })
            .collect();
        let refs: Vec<&Route> = routes.iter().collect();
        let updates = announcements(session, &refs);
        assert!(updates.len() <= 3, "{} updates", updates.len());
        let mut announced = 0;
        for update in &updates {
            assert!(update.len() <= MAX_MESSAGE);
            let mut bytes = bytes::Bytes::from(update.clone());
            let Message::Update(update) = decode_message(&mut bytes, 4096).unwrap() else {
                panic!("not an UPDATE")
            };
            let parsed = update.parse(true, false, &[]).unwrap();
            assert!(parsed
                .attributes
                .iter()
                .any(|a| matches!(a, PathAttribute::NextHop(n) if n.to_string() == "192.0.2.1")));
            announced += parsed.announced.len();
        }
        assert_eq!(announced, 2000);

        let v6: Vec<Route> = (0..500u32)
            .map(|i| {
                route(&Rule::Filter {
                    filter: filter(&format!("2001:db8::{i:x}/128")),
                    action: FlowAction::Discard,
                    communities: vec![],
                })
                .unwrap()
            })
            .collect();
        let refs: Vec<&Route> = v6.iter().collect();
        let updates = announcements(session, &refs);
        let mut rules = 0;
        for update in &updates {
            assert!(update.len() <= MAX_MESSAGE);
            let mut bytes = bytes::Bytes::from(update.clone());
            let Message::Update(update) = decode_message(&mut bytes, 4096).unwrap() else {
                panic!("not an UPDATE")
            };
            let parsed = update.parse(true, false, &[]).unwrap();
            for attribute in &parsed.attributes {
                if let PathAttribute::MpReachNlri(reach) = attribute {
                    rules += reach.flowspec_announced.len();
                }
            }
        }
        assert_eq!(rules, 500);
        let withdrawn = withdrawals(
            Family::Ipv6FlowSpec,
            &v6.iter().map(|r| r.nlri.as_slice()).collect::<Vec<_>>(),
        );
        assert!(withdrawn.iter().all(|w| w.len() <= MAX_MESSAGE));
        assert!(withdrawn.len() < 20);
    }
}
