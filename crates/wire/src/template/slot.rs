//! Field mapping: which information element feeds which part of a flow record, and whether its
//! length can be read. Kept apart so that adding an element touches one table, not the compiler or
//! the record loop.

use super::ie;

/// Where a decoded field value goes. `Skip` is never written, so it always reads as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Slot {
    Bytes,
    Packets,
    OutBytes,
    OutPackets,
    TotalBytes,
    TotalPackets,
    Protocol,
    TcpFlags,
    SrcPort,
    DstPort,
    IcmpTypeCode,
    InIf,
    OutIf,
    EndUptime,
    EndSecs,
    EndMillis,
    SystemInit,
    SamplingInterval,
    SamplerRandomInterval,
    PacketInterval,
    PacketSpace,
    SamplingSize,
    SamplingPopulation,
    MinTtl,
    MaxTtl,
    FragOffset,
    FragFlags,
    Src4,
    Dst4,
    Src6,
    Dst6,
    Skip,
}

pub(super) const SLOT_COUNT: usize = Slot::Skip as usize + 1;

impl Slot {
    /// The slot of a (non-enterprise) field, or `Skip` if Floodwall does not use it or its length
    /// cannot be read (addresses must be whole; integers 1..=8 bytes, reduced-size allowed).
    pub(super) fn of(id: u16, length: u16) -> Slot {
        let slot = match id {
            ie::OCTET_DELTA_COUNT => Slot::Bytes,
            ie::PACKET_DELTA_COUNT => Slot::Packets,
            ie::PROTOCOL => Slot::Protocol,
            ie::TCP_FLAGS => Slot::TcpFlags,
            ie::L4_SRC_PORT => Slot::SrcPort,
            ie::IPV4_SRC_ADDR => Slot::Src4,
            ie::INPUT_SNMP => Slot::InIf,
            ie::L4_DST_PORT => Slot::DstPort,
            ie::IPV4_DST_ADDR => Slot::Dst4,
            ie::OUTPUT_SNMP => Slot::OutIf,
            ie::LAST_SWITCHED => Slot::EndUptime,
            ie::OUT_BYTES => Slot::OutBytes,
            ie::OUT_PKTS => Slot::OutPackets,
            ie::IPV6_SRC_ADDR => Slot::Src6,
            ie::IPV6_DST_ADDR => Slot::Dst6,
            ie::ICMP_TYPE_CODE_IPV4 | ie::ICMP_TYPE_CODE_IPV6 => Slot::IcmpTypeCode,
            ie::SAMPLING_INTERVAL => Slot::SamplingInterval,
            ie::FLOW_SAMPLER_RANDOM_INTERVAL => Slot::SamplerRandomInterval,
            ie::MINIMUM_TTL => Slot::MinTtl,
            ie::MAXIMUM_TTL => Slot::MaxTtl,
            ie::OCTET_TOTAL_COUNT => Slot::TotalBytes,
            ie::PACKET_TOTAL_COUNT => Slot::TotalPackets,
            ie::FRAGMENT_OFFSET => Slot::FragOffset,
            ie::FLOW_END_SECONDS => Slot::EndSecs,
            ie::FLOW_END_MILLISECONDS => Slot::EndMillis,
            ie::SYSTEM_INIT_TIME_MILLISECONDS => Slot::SystemInit,
            ie::FRAGMENT_FLAGS => Slot::FragFlags,
            ie::SAMPLING_PACKET_INTERVAL => Slot::PacketInterval,
            ie::SAMPLING_PACKET_SPACE => Slot::PacketSpace,
            ie::SAMPLING_SIZE => Slot::SamplingSize,
            ie::SAMPLING_POPULATION => Slot::SamplingPopulation,
            _ => return Slot::Skip,
        };
        let readable = match slot {
            Slot::Src4 | Slot::Dst4 => length == 4,
            Slot::Src6 | Slot::Dst6 => length == 16,
            _ => (1..=8).contains(&length),
        };
        if readable {
            slot
        } else {
            Slot::Skip
        }
    }

    pub(super) const fn bit(self) -> u64 {
        1 << self as u8
    }
}
