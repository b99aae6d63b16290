//! Which monitored network and hostgroup an address belongs to, answered by a binary search over
//! sorted, non-overlapping address ranges computed once from the config.

use std::net::IpAddr;

use ipnet::IpNet;

/// Hostgroup index of the built-in `default` group; configured hostgroups follow in config order.
pub(crate) const DEFAULT_GROUP: u16 = 0;

/// Disjoint inclusive ranges `[starts[i], ends[i]]`, each mapped to a hostgroup index.
#[derive(Debug, Clone, Default)]
struct Ranges<T> {
    starts: Vec<T>,
    ends: Vec<T>,
    groups: Vec<u16>,
}

impl<T: Copy + Ord> Ranges<T> {
    #[inline]
    fn lookup(&self, x: T) -> Option<u16> {
        let i = self.starts.partition_point(|s| *s <= x);
        (i > 0 && x <= self.ends[i - 1]).then(|| self.groups[i - 1])
    }
}

/// Monitored networks and hostgroups, IPv4 and IPv6.
#[derive(Debug, Clone, Default)]
pub struct NetworkMap {
    v4: Ranges<u32>,
    v6: Ranges<u128>,
}

/// A network as an inclusive range in a 128-bit space (IPv4 uses the low 32 bits).
fn range(net: &IpNet) -> (u128, u128) {
    match net {
        IpNet::V4(n) => (
            u128::from(u32::from(n.network())),
            u128::from(u32::from(n.broadcast())),
        ),
        IpNet::V6(n) => (u128::from(n.network()), u128::from(n.broadcast())),
    }
}

/// Builds the ranges of one family: elementary intervals between all boundaries, each labelled
/// with the longest-prefix hostgroup, adjacent equal labels merged. Quadratic in the number of
/// configured networks, which is fine for the thousands an ISP configures, once.
fn build(monitored: &[IpNet], groups: &[(u16, IpNet)], max: u128) -> Ranges<u128> {
    let mut bounds: Vec<u128> = Vec::new();
    for net in monitored.iter().chain(groups.iter().map(|(_, n)| n)) {
        let (s, e) = range(net);
        bounds.push(s);
        if e < max {
            bounds.push(e + 1);
        }
    }
    bounds.sort_unstable();
    bounds.dedup();
    let mut out = Ranges::default();
    for (i, &start) in bounds.iter().enumerate() {
        let end = bounds.get(i + 1).map_or(max, |next| next - 1);
        let inside = |net: &IpNet| {
            let (s, e) = range(net);
            s <= start && start <= e
        };
        if !monitored.iter().any(inside) {
            continue;
        }
        let group = groups
            .iter()
            .filter(|(_, n)| inside(n))
            .max_by_key(|(g, n)| (n.prefix_len(), std::cmp::Reverse(*g)))
            .map_or(DEFAULT_GROUP, |(g, _)| *g);
        let contiguous = out.ends.last().is_some_and(|e: &u128| *e + 1 == start);
        if contiguous && out.groups.last() == Some(&group) {
            *out.ends.last_mut().expect("non-empty") = end;
        } else {
            out.starts.push(start);
            out.ends.push(end);
            out.groups.push(group);
        }
    }
    out
}

impl NetworkMap {
    /// `hostgroups[i]` gets group index `i + 1`.
    pub fn new(monitored: &[IpNet], hostgroups: &[Vec<IpNet>]) -> Self {
        let split = |v4: bool| {
            let nets: Vec<IpNet> = monitored
                .iter()
                .filter(|n| matches!(n, IpNet::V4(_)) == v4)
                .map(IpNet::trunc)
                .collect();
            let groups: Vec<(u16, IpNet)> = hostgroups
                .iter()
                .enumerate()
                .flat_map(|(i, nets)| nets.iter().map(move |n| (i as u16 + 1, n.trunc())))
                .filter(|(_, n)| matches!(n, IpNet::V4(_)) == v4)
                .collect();
            (nets, groups)
        };
        let (n4, g4) = split(true);
        let (n6, g6) = split(false);
        let r4 = build(&n4, &g4, u128::from(u32::MAX));
        let r6 = build(&n6, &g6, u128::MAX);
        NetworkMap {
            v4: Ranges {
                starts: r4.starts.iter().map(|s| *s as u32).collect(),
                ends: r4.ends.iter().map(|e| *e as u32).collect(),
                groups: r4.groups,
            },
            v6: r6,
        }
    }

    /// The hostgroup of `addr` if it is monitored.
    #[inline]
    pub fn lookup(&self, addr: IpAddr) -> Option<u16> {
        match addr {
            IpAddr::V4(a) => {
                if self.v4.starts.is_empty() {
                    None
                } else {
                    self.v4.lookup(u32::from(a))
                }
            }
            IpAddr::V6(a) => {
                if self.v6.starts.is_empty() {
                    None
                } else {
                    self.v6.lookup(u128::from(a))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_hostgroup_wins() {
        let map = NetworkMap::new(
            &[net("10.0.0.0/8"), net("192.0.2.0/24"), net("2001:db8::/32")],
            &[
                vec![net("10.1.0.0/16")],
                vec![net("10.1.2.0/24"), net("2001:db8:1::/48")],
            ],
        );
        assert_eq!(map.lookup(ip("10.0.0.1")), Some(0));
        assert_eq!(map.lookup(ip("10.1.0.1")), Some(1));
        assert_eq!(map.lookup(ip("10.1.2.255")), Some(2));
        assert_eq!(map.lookup(ip("10.1.3.0")), Some(1));
        assert_eq!(map.lookup(ip("10.255.255.255")), Some(0));
        assert_eq!(map.lookup(ip("11.0.0.0")), None);
        assert_eq!(map.lookup(ip("9.255.255.255")), None);
        assert_eq!(map.lookup(ip("192.0.2.7")), Some(0));
        assert_eq!(map.lookup(ip("2001:db8:1::5")), Some(2));
        assert_eq!(map.lookup(ip("2001:db8:2::5")), Some(0));
        assert_eq!(map.lookup(ip("2001:db9::")), None);
    }

    #[test]
    fn whole_address_spaces() {
        let map = NetworkMap::new(&[net("0.0.0.0/0"), net("::/0")], &[]);
        assert_eq!(map.lookup(ip("255.255.255.255")), Some(0));
        assert_eq!(map.lookup(ip("ffff::1")), Some(0));
        let empty = NetworkMap::new(&[], &[]);
        assert_eq!(empty.lookup(ip("1.2.3.4")), None);
    }
}
