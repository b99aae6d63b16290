//! The engine's shared words: attack vectors and the metrics limits apply to. Configuration,
//! counters, fingerprints and events all speak them, so they live here, below all of those, and
//! every import points one way (into this module).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Attack vectors, a fixed vocabulary. An attack may carry several.
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
pub enum Vector {
    UdpFlood,
    SynFlood,
    AckFlood,
    RstFlood,
    /// TCP with other flag mixes (e.g. ACK/PSH with random flags).
    TcpFlood,
    IcmpFlood,
    GreFlood,
    FragmentFlood,
    DnsAmplification,
    NtpAmplification,
    SsdpAmplification,
    MemcachedAmplification,
    CldapAmplification,
    ChargenAmplification,
    SnmpAmplification,
    WsdAmplification,
}

impl Vector {
    /// Amplification vectors and the UDP source port their reflected traffic comes from.
    pub const AMPLIFICATION: [(u16, Vector); 8] = [
        (53, Vector::DnsAmplification),
        (123, Vector::NtpAmplification),
        (1900, Vector::SsdpAmplification),
        (11211, Vector::MemcachedAmplification),
        (389, Vector::CldapAmplification),
        (19, Vector::ChargenAmplification),
        (161, Vector::SnmpAmplification),
        (3702, Vector::WsdAmplification),
    ];

    /// The amplification vector of reflected UDP traffic from `port`, if it is a known reflector port.
    pub fn amplification_from_port(port: u16) -> Option<Vector> {
        Self::AMPLIFICATION
            .iter()
            .find(|(p, _)| *p == port)
            .map(|(_, v)| *v)
    }

    pub fn is_amplification(self) -> bool {
        Self::AMPLIFICATION.iter().any(|(_, v)| *v == self)
    }

    /// Every vector, in declaration order (metrics list each one, zero or not).
    pub const ALL: [Vector; 16] = [
        Vector::UdpFlood,
        Vector::SynFlood,
        Vector::AckFlood,
        Vector::RstFlood,
        Vector::TcpFlood,
        Vector::IcmpFlood,
        Vector::GreFlood,
        Vector::FragmentFlood,
        Vector::DnsAmplification,
        Vector::NtpAmplification,
        Vector::SsdpAmplification,
        Vector::MemcachedAmplification,
        Vector::CldapAmplification,
        Vector::ChargenAmplification,
        Vector::SnmpAmplification,
        Vector::WsdAmplification,
    ];

    /// The name of the event JSON and the configuration (`syn_flood`).
    pub fn name(self) -> &'static str {
        match self {
            Vector::UdpFlood => "udp_flood",
            Vector::SynFlood => "syn_flood",
            Vector::AckFlood => "ack_flood",
            Vector::RstFlood => "rst_flood",
            Vector::TcpFlood => "tcp_flood",
            Vector::IcmpFlood => "icmp_flood",
            Vector::GreFlood => "gre_flood",
            Vector::FragmentFlood => "fragment_flood",
            Vector::DnsAmplification => "dns_amplification",
            Vector::NtpAmplification => "ntp_amplification",
            Vector::SsdpAmplification => "ssdp_amplification",
            Vector::MemcachedAmplification => "memcached_amplification",
            Vector::CldapAmplification => "cldap_amplification",
            Vector::ChargenAmplification => "chargen_amplification",
            Vector::SnmpAmplification => "snmp_amplification",
            Vector::WsdAmplification => "wsd_amplification",
        }
    }

    /// Index into [`Vector::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A counter a limit can apply to. Names are the config field names and the `metric` of
/// triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Pps,
    Mbps,
    FlowsPerS,
    TcpPps,
    TcpMbps,
    UdpPps,
    UdpMbps,
    IcmpPps,
    IcmpMbps,
    GrePps,
    GreMbps,
    SynPps,
    AckPps,
    RstPps,
    FragmentPps,
    FragmentMbps,
    AmplificationPps,
    AmplificationMbps,
}

/// How many metrics there are: the length of per-metric arrays.
pub(crate) const METRICS: usize = 18;

impl Metric {
    pub const ALL: [Metric; METRICS] = [
        Metric::Pps,
        Metric::Mbps,
        Metric::FlowsPerS,
        Metric::TcpPps,
        Metric::TcpMbps,
        Metric::UdpPps,
        Metric::UdpMbps,
        Metric::IcmpPps,
        Metric::IcmpMbps,
        Metric::GrePps,
        Metric::GreMbps,
        Metric::SynPps,
        Metric::AckPps,
        Metric::RstPps,
        Metric::FragmentPps,
        Metric::FragmentMbps,
        Metric::AmplificationPps,
        Metric::AmplificationMbps,
    ];

    /// The config field name, as events write it.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Pps => "pps",
            Metric::Mbps => "mbps",
            Metric::FlowsPerS => "flows_per_s",
            Metric::TcpPps => "tcp_pps",
            Metric::TcpMbps => "tcp_mbps",
            Metric::UdpPps => "udp_pps",
            Metric::UdpMbps => "udp_mbps",
            Metric::IcmpPps => "icmp_pps",
            Metric::IcmpMbps => "icmp_mbps",
            Metric::GrePps => "gre_pps",
            Metric::GreMbps => "gre_mbps",
            Metric::SynPps => "syn_pps",
            Metric::AckPps => "ack_pps",
            Metric::RstPps => "rst_pps",
            Metric::FragmentPps => "fragment_pps",
            Metric::FragmentMbps => "fragment_mbps",
            Metric::AmplificationPps => "amplification_pps",
            Metric::AmplificationMbps => "amplification_mbps",
        }
    }

    /// Counted in packets (else in megabits), for the watch level.
    pub fn is_packets(self) -> bool {
        !matches!(
            self,
            Metric::Mbps
                | Metric::TcpMbps
                | Metric::UdpMbps
                | Metric::IcmpMbps
                | Metric::GreMbps
                | Metric::FragmentMbps
                | Metric::AmplificationMbps
                | Metric::FlowsPerS
        )
    }

    /// Needs per-class counts (else the totals suffice).
    pub fn needs_classes(self) -> bool {
        !matches!(self, Metric::Pps | Metric::Mbps | Metric::FlowsPerS)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_names_and_indices_are_the_serialized_ones() {
        for (i, v) in Vector::ALL.iter().enumerate() {
            assert_eq!(v.index(), i);
            assert_eq!(serde_json::to_value(v).unwrap(), v.name());
        }
    }
}
