//! A traffic filter from an attack's fingerprint: as narrow as the attack allows, as wide as it
//! needs. Each match (protocol, ports, TCP flags, length, fragments) is added only when the
//! values it keeps carry at least [`KEEP`] of the attack's packets in that dimension, so the
//! rule drops the flood and spares the target's other traffic where the flood is distinct.
//!
//! Coverage — the share of the attack's packets the rule matches — is the product of the shares
//! each match keeps: the fingerprint holds marginal distributions, not joint ones, so this
//! assumes the dimensions are independent. It is an estimate and is reported as one.

use floodwall_detect::fingerprint::{Fingerprint, Histogram, Share};
use floodwall_detect::AttackEvent;

use crate::rule::{FlowFilter, Range, TcpFlags};

/// A match is added only if it keeps at least this share of the attack's packets.
pub const KEEP: f64 = 0.95;
/// FlowSpec rules with long port lists are slow on many routers and hard to read.
const MAX_PORTS: usize = 4;
/// Three of the four named protocols is no narrowing worth a match.
const MAX_PROTOCOLS: usize = 2;
/// Packets longer than an Ethernet MTU are rare in any traffic: a length range up to here
/// from zero narrows nothing.
const MTU: u16 = 1500;

/// IP protocol numbers.
const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;
const GRE: u8 = 47;

/// The filter for an attack and its estimated coverage (0..=1).
pub fn filter_for(event: &AttackEvent) -> (FlowFilter, f64) {
    let fp = &event.fingerprint;
    let mut filter = FlowFilter::to(event.target);
    let mut coverage = 1.0;
    if fp.packets == 0 {
        return (filter, coverage);
    }

    let (protocols, kept) = protocols(fp, event.target.addr().is_ipv6());
    if let Some(protocols) = protocols {
        coverage *= kept;
        filter.protocols = protocols;
    }
    let single = match filter.protocols.as_slice() {
        [p] => Some(*p),
        _ => None,
    };
    let protocol_share = match single {
        Some(TCP) => fp.protocols.tcp,
        Some(UDP) => fp.protocols.udp,
        _ => 0.0,
    };

    if fp.fragments >= KEEP {
        filter.fragments = true;
        coverage *= fp.fragments;
    }
    // Ports only exist in first fragments: a port match lets the others through.
    let ports_usable = matches!(single, Some(TCP | UDP)) && fp.fragments <= 1.0 - KEEP;
    if ports_usable {
        if let Some((ports, kept)) = ports(&fp.top_source_ports, protocol_share) {
            filter.source_ports = ports;
            coverage *= kept;
        }
        if let Some((ports, kept)) = ports(&fp.top_destination_ports, protocol_share) {
            filter.destination_ports = ports;
            coverage *= kept;
        }
    }
    if single == Some(TCP) {
        if let Some(top) = fp.top_tcp_flags.first().filter(|f| f.share >= KEEP) {
            filter.tcp_flags = Some(TcpFlags {
                value: top.value,
                mask: 0xff,
            });
            coverage *= top.share;
        }
    }
    if let Some((range, kept)) = fp.packet_sizes.as_ref().and_then(length_range) {
        filter.packet_length = Some(range);
        coverage *= kept;
    }
    (filter, coverage.clamp(0.0, 1.0))
}

/// The share of an attack's packets (by its fingerprint) that `filter` matches: how well a rule
/// in place still covers an attack whose traffic may have changed. Same independence estimate as
/// [`filter_for`]; ports beyond the fingerprint's top list count as not matched.
pub fn coverage_of(filter: &FlowFilter, fp: &Fingerprint) -> f64 {
    if fp.packets == 0 {
        return 1.0;
    }
    let mix = &fp.protocols;
    let protocol_share = if filter.protocols.is_empty() {
        1.0
    } else {
        filter
            .protocols
            .iter()
            .map(|p| match *p {
                TCP => mix.tcp,
                UDP => mix.udp,
                ICMP | ICMPV6 => mix.icmp,
                GRE => mix.gre,
                _ => 0.0,
            })
            .sum()
    };
    let mut coverage = protocol_share;
    for (ranges, top) in [
        (&filter.source_ports, &fp.top_source_ports),
        (&filter.destination_ports, &fp.top_destination_ports),
    ] {
        if !ranges.is_empty() && protocol_share > 0.0 {
            let kept: f64 = top
                .iter()
                .filter(|p| ranges.iter().any(|r| r.contains(p.value)))
                .map(|p| p.share)
                .sum();
            coverage *= (kept / protocol_share).min(1.0);
        }
    }
    if let Some(flags) = filter.tcp_flags {
        let kept: f64 = fp
            .top_tcp_flags
            .iter()
            .filter(|f| f.value & flags.mask == flags.value)
            .map(|f| f.share)
            .sum();
        coverage *= kept.min(1.0);
    }
    if let (Some(range), Some(sizes)) = (filter.packet_length, &fp.packet_sizes) {
        let total: f64 = sizes.shares.iter().sum();
        if total > 0.0 {
            let mut low = 0u16;
            let mut kept = 0.0;
            for (&high, &share) in sizes.upper_bounds.iter().zip(&sizes.shares) {
                if range.first <= low && high <= range.last {
                    kept += share;
                }
                low = high.saturating_add(1);
            }
            coverage *= kept / total;
        }
    }
    if filter.fragments {
        coverage *= fp.fragments;
    }
    coverage.clamp(0.0, 1.0)
}

/// The protocols carrying [`KEEP`] of the packets, heaviest first, when they leave some out.
/// `None` when a match would not narrow anything, or when an unnamed protocol is needed.
fn protocols(fp: &Fingerprint, ipv6: bool) -> (Option<Vec<u8>>, f64) {
    let mix = &fp.protocols;
    let icmp = if ipv6 { ICMPV6 } else { ICMP };
    let mut shares = [
        (TCP, mix.tcp),
        (UDP, mix.udp),
        (icmp, mix.icmp),
        (GRE, mix.gre),
    ];
    shares.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut chosen = Vec::new();
    let mut kept = 0.0;
    for (protocol, share) in shares {
        if kept >= KEEP || share <= 0.0 {
            break;
        }
        chosen.push(protocol);
        kept += share;
    }
    if kept < KEEP || chosen.len() > MAX_PROTOCOLS {
        return (None, 1.0);
    }
    chosen.sort_unstable();
    (Some(chosen), kept)
}

/// At most [`MAX_PORTS`] ports that carry [`KEEP`] of the protocol's packets. Shares in the
/// fingerprint are of all packets; `protocol_share` turns them into shares of the protocol.
fn ports(top: &[Share<u16>], protocol_share: f64) -> Option<(Vec<Range>, f64)> {
    if protocol_share <= 0.0 {
        return None;
    }
    let mut chosen = Vec::new();
    let mut kept = 0.0;
    for port in top.iter().take(MAX_PORTS) {
        chosen.push(port.value);
        kept += port.share / protocol_share;
        if kept >= KEEP {
            chosen.sort_unstable();
            return Some((merge_ports(&chosen), kept.min(1.0)));
        }
    }
    None
}

/// Sorted ports as ranges, adjacent ones merged.
fn merge_ports(sorted: &[u16]) -> Vec<Range> {
    let mut ranges: Vec<Range> = Vec::new();
    for &port in sorted {
        match ranges.last_mut() {
            Some(last) if u32::from(last.last) + 1 >= u32::from(port) => last.last = port,
            _ => ranges.push(Range::single(port)),
        }
    }
    ranges
}

/// The narrowest run of histogram buckets holding [`KEEP`] of the packets, if it is narrower
/// than all of them.
fn length_range(histogram: &Histogram) -> Option<(Range, f64)> {
    let bounds = &histogram.upper_bounds;
    let shares = &histogram.shares;
    let n = bounds.len().min(shares.len());
    let total: f64 = shares[..n].iter().sum();
    if n == 0 || total <= 0.0 {
        return None;
    }
    let mut best: Option<(usize, usize, f64)> = None;
    for first in 0..n {
        let mut kept = 0.0;
        for (last, share) in shares.iter().enumerate().take(n).skip(first) {
            kept += share / total;
            if kept >= KEEP {
                let narrower = best.is_none_or(|(f, l, _)| last - first < l - f);
                if narrower {
                    best = Some((first, last, kept));
                }
                break;
            }
        }
    }
    let (first, last, kept) = best?;
    if first == 0 && bounds[last] >= MTU {
        return None;
    }
    let low = if first == 0 {
        0
    } else {
        bounds[first - 1].saturating_add(1)
    };
    Some((
        Range {
            first: low,
            last: bounds[last],
        },
        kept.min(1.0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use floodwall_detect::fingerprint::ProtocolMix;
    use floodwall_detect::EventKind;

    fn event(fp: Fingerprint) -> AttackEvent {
        crate::testing::event(EventKind::AttackStarted, "a", "203.0.113.7/32", fp)
    }

    fn share(value: u16, share: f64) -> Share<u16> {
        Share {
            value,
            share,
            packets: (share * 1000.0) as u64,
        }
    }

    fn sizes(shares: [f64; 7]) -> Option<Histogram> {
        Some(Histogram {
            upper_bounds: vec![64, 128, 256, 512, 1024, 1500, 65535],
            shares: shares.to_vec(),
        })
    }

    #[test]
    fn ntp_amplification_is_matched_on_protocol_source_port_and_size() {
        let fp = Fingerprint {
            packets: 1000,
            protocols: ProtocolMix {
                udp: 0.98,
                tcp: 0.02,
                ..Default::default()
            },
            top_source_ports: vec![share(123, 0.97), share(443, 0.01)],
            top_destination_ports: vec![share(80, 0.02), share(4444, 0.01), share(5555, 0.01)],
            packet_sizes: sizes([0.02, 0.0, 0.0, 0.97, 0.01, 0.0, 0.0]),
            ..Default::default()
        };
        let (filter, coverage) = filter_for(&event(fp));
        assert_eq!(
            filter.to_string(),
            "dst 203.0.113.7/32 proto 17 sport 123 len 257-512"
        );
        // 0.98 (UDP) x 0.97/0.98 (port 123 of UDP) x 0.97 (sizes 257-512)
        assert!((coverage - 0.97 * 0.97).abs() < 1e-9, "{coverage}");
    }

    #[test]
    fn a_syn_flood_to_one_port_gets_exact_flags_and_no_random_source_ports() {
        let fp = Fingerprint {
            packets: 1000,
            protocols: ProtocolMix {
                tcp: 1.0,
                ..Default::default()
            },
            top_source_ports: (1000..1010).map(|p| share(p, 0.001)).collect(),
            top_destination_ports: vec![share(443, 0.99), share(80, 0.01)],
            top_tcp_flags: vec![Share {
                value: 0x02,
                share: 0.99,
                packets: 990,
            }],
            packet_sizes: sizes([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
            ..Default::default()
        };
        let (filter, _) = filter_for(&event(fp));
        assert_eq!(
            filter.to_string(),
            "dst 203.0.113.7/32 proto 6 dport 443 len 0-64 tcp-flags 0x02/0xff"
        );
    }

    #[test]
    fn a_mixed_flood_is_matched_on_what_it_has_in_common_only() {
        let fp = Fingerprint {
            packets: 1000,
            protocols: ProtocolMix {
                udp: 0.6,
                tcp: 0.3,
                icmp: 0.1,
                ..Default::default()
            },
            fragments: 0.02,
            packet_sizes: sizes([0.2, 0.2, 0.1, 0.1, 0.1, 0.3, 0.0]),
            ..Default::default()
        };
        let (filter, coverage) = filter_for(&event(fp));
        assert_eq!(filter, FlowFilter::to("203.0.113.7/32".parse().unwrap()));
        assert_eq!(coverage, 1.0);
    }

    #[test]
    fn fragment_floods_match_fragments_and_never_ports() {
        let fp = Fingerprint {
            packets: 1000,
            protocols: ProtocolMix {
                udp: 1.0,
                ..Default::default()
            },
            fragments: 0.97,
            top_source_ports: vec![share(0, 0.97), share(53, 0.03)],
            ..Default::default()
        };
        let (filter, _) = filter_for(&event(fp));
        assert_eq!(filter.to_string(), "dst 203.0.113.7/32 proto 17 fragments");
    }

    #[test]
    fn adjacent_ports_merge_into_ranges() {
        assert_eq!(
            merge_ports(&[53, 54, 55, 123]),
            vec![
                Range {
                    first: 53,
                    last: 55
                },
                Range::single(123)
            ]
        );
    }

    #[test]
    fn a_derived_filter_covers_what_it_says_and_not_a_different_attack() {
        let ntp = Fingerprint {
            packets: 1000,
            protocols: ProtocolMix {
                udp: 0.98,
                tcp: 0.02,
                ..Default::default()
            },
            top_source_ports: vec![share(123, 0.97), share(443, 0.01)],
            packet_sizes: sizes([0.02, 0.0, 0.0, 0.97, 0.01, 0.0, 0.0]),
            ..Default::default()
        };
        let (filter, coverage) = filter_for(&event(ntp.clone()));
        assert!((coverage_of(&filter, &ntp) - coverage).abs() < 1e-9);
        let dns = Fingerprint {
            top_source_ports: vec![share(53, 0.98)],
            packet_sizes: sizes([0.0, 0.0, 0.0, 0.0, 0.2, 0.8, 0.0]),
            ..ntp
        };
        assert!(coverage_of(&filter, &dns) < 0.05);
    }
}
