//! What is counted per target and direction in each 1-second bucket.
//!
//! Two tiers keep a million active hosts cheap: every host keeps only `Tally` totals (packets,
//! bytes, samples) for the last few buckets; targets above the watch level additionally get
//! `ClassCounts` (protocols, TCP flags, fragments, amplification ports) for classification and
//! the per-class limits. A target below the watch level cannot cross any per-class limit, since
//! every class is a part of the total.

use floodwall_wire::record::{proto, tcp_flags};
use floodwall_wire::FlowRecord;

use crate::config::MAX_EVIDENCE_WINDOW_S;
use crate::event::Vector;

/// Buckets of history per target: the evidence window.
pub(crate) const SLOTS: usize = MAX_EVIDENCE_WINDOW_S as usize;
/// Bucket marker of a slot that holds nothing.
pub(crate) const NO_BUCKET: u32 = u32::MAX;

/// Totals of one target in one bucket. `bucket` is the engine-relative bucket it belongs to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tally {
    pub packets: u64,
    pub bytes: u64,
    /// Records (samples or flows), unscaled: the statistical evidence behind the rate.
    pub samples: u32,
    pub bucket: u32,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            packets: 0,
            bytes: 0,
            samples: 0,
            bucket: NO_BUCKET,
        }
    }
}

impl Tally {
    #[inline]
    pub fn add(&mut self, r: &FlowRecord) {
        self.packets = self.packets.saturating_add(r.packets);
        self.bytes = self.bytes.saturating_add(r.bytes);
        self.samples = self.samples.saturating_add(1);
    }
}

/// The slot of `ring` for bucket `b`, cleared if it still holds an older bucket.
#[inline]
pub(crate) fn tally_slot(ring: &mut [Tally; SLOTS], b: u32) -> &mut Tally {
    let slot = &mut ring[b as usize % SLOTS];
    if slot.bucket != b {
        *slot = Tally {
            bucket: b,
            ..Tally::default()
        };
    }
    slot
}

/// The tally of bucket `b`, if the ring still has it.
#[inline]
pub(crate) fn tally_at(ring: &[Tally; SLOTS], b: u32) -> Option<&Tally> {
    let slot = &ring[b as usize % SLOTS];
    (slot.bucket == b).then_some(slot)
}

/// Indices into [`ClassCounts::packets`].
pub(crate) mod pk {
    pub const TCP: usize = 0;
    pub const UDP: usize = 1;
    pub const ICMP: usize = 2;
    pub const GRE: usize = 3;
    pub const OTHER: usize = 4;
    pub const SYN: usize = 5;
    pub const ACK: usize = 6;
    pub const RST: usize = 7;
    pub const FRAG: usize = 8;
    pub const AMP: usize = 9;
    /// First of the per-port amplification counters, in `Vector::AMPLIFICATION` order.
    pub const AMP_PORT: usize = 10;
    pub const N: usize = AMP_PORT + 8;
}

/// Indices into [`ClassCounts::bytes`].
pub(crate) mod by {
    pub const TCP: usize = 0;
    pub const UDP: usize = 1;
    pub const ICMP: usize = 2;
    pub const GRE: usize = 3;
    pub const FRAG: usize = 4;
    pub const AMP: usize = 5;
    pub const N: usize = 6;
}

/// What a record counts towards, computed once per record and applied to every target it touches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordClass {
    /// `pk::TCP..=pk::OTHER`.
    proto: u8,
    syn: bool,
    ack: bool,
    rst: bool,
    frag: bool,
    /// Index into `Vector::AMPLIFICATION` of a UDP record from a reflector port.
    amp_port: Option<u8>,
}

impl RecordClass {
    #[inline]
    pub fn of(r: &FlowRecord) -> Self {
        let proto = match r.protocol {
            proto::TCP => pk::TCP,
            proto::UDP => pk::UDP,
            proto::ICMP | proto::ICMPV6 => pk::ICMP,
            proto::GRE => pk::GRE,
            _ => pk::OTHER,
        } as u8;
        let f = r.tcp_flags;
        let is_tcp = proto as usize == pk::TCP;
        let amp_port = if proto as usize == pk::UDP {
            Vector::AMPLIFICATION
                .iter()
                .position(|(p, _)| *p == r.src_port)
                .map(|i| i as u8)
        } else {
            None
        };
        RecordClass {
            proto,
            syn: is_tcp && f & tcp_flags::SYN != 0 && f & tcp_flags::ACK == 0,
            ack: is_tcp
                && f & tcp_flags::ACK != 0
                && f & (tcp_flags::SYN | tcp_flags::RST | tcp_flags::FIN) == 0,
            rst: is_tcp && f & tcp_flags::RST != 0,
            frag: r.fragment,
            amp_port,
        }
    }
}

/// Per-class packets and bytes of one target in one bucket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClassCounts {
    pub packets: [u64; pk::N],
    pub bytes: [u64; by::N],
    /// Packets and bytes counted here: less than the target's [`Tally`] when watching started
    /// mid-bucket, so class rates are extrapolated by the ratio.
    pub covered_packets: u64,
    pub covered_bytes: u64,
    pub bucket: u32,
}

impl Default for ClassCounts {
    fn default() -> Self {
        ClassCounts {
            packets: [0; pk::N],
            bytes: [0; by::N],
            covered_packets: 0,
            covered_bytes: 0,
            bucket: NO_BUCKET,
        }
    }
}

impl ClassCounts {
    /// Adds a record. Amplification counts only when `incoming` (reflected traffic arrives).
    #[inline]
    pub fn add(&mut self, r: &FlowRecord, c: &RecordClass, incoming: bool) {
        let (p, b) = (r.packets, r.bytes);
        self.covered_packets += p;
        self.covered_bytes += b;
        let proto = c.proto as usize;
        self.packets[proto] += p;
        if proto < pk::OTHER {
            self.bytes[proto] += b; // by::TCP..=GRE share indices with pk::TCP..=GRE
        }
        if c.syn {
            self.packets[pk::SYN] += p;
        }
        if c.ack {
            self.packets[pk::ACK] += p;
        }
        if c.rst {
            self.packets[pk::RST] += p;
        }
        if c.frag {
            self.packets[pk::FRAG] += p;
            self.bytes[by::FRAG] += b;
        }
        if let (Some(port), true) = (c.amp_port, incoming) {
            self.packets[pk::AMP] += p;
            self.packets[pk::AMP_PORT + port as usize] += p;
            self.bytes[by::AMP] += b;
        }
    }
}

/// The slot of `ring` for bucket `b`, cleared if it still holds an older bucket.
#[inline]
pub(crate) fn class_slot(ring: &mut [ClassCounts; SLOTS], b: u32) -> &mut ClassCounts {
    let slot = &mut ring[b as usize % SLOTS];
    if slot.bucket != b {
        *slot = ClassCounts {
            bucket: b,
            ..ClassCounts::default()
        };
    }
    slot
}

/// A counter a limit can apply to. Names are the config field names and the `metric` of
/// triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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

/// The rates a target is judged by at a bucket close: the bucket itself when it has
/// `min_samples`, else the average over the evidence window.
#[derive(Debug, Clone)]
pub(crate) struct Rates {
    /// Indexed by `Metric as usize`; class metrics are 0 without class counts.
    pub values: [f64; METRICS],
    /// Whether enough samples stand behind `values` for them to start an attack.
    pub confident: bool,
    /// Whether class metrics and `class_packets` are known.
    pub has_classes: bool,
    /// Per-class packets (extrapolated) behind `values`, for classification.
    pub class_packets: [f64; pk::N],
    /// Samples (records) behind `values`: the statistical evidence of the rates.
    pub samples: u64,
    /// Raw rates of the bucket itself, for the baseline.
    pub bucket_pps: f64,
    pub bucket_bps: f64,
}

impl Rates {
    pub fn pps(&self) -> f64 {
        self.values[Metric::Pps as usize]
    }

    pub fn bps(&self) -> f64 {
        self.values[Metric::Mbps as usize] * 1e6
    }

    /// Computes the rates at bucket `b`. `window` is the evidence window, already limited to the
    /// buckets the engine has seen.
    pub fn compute(
        ring: &[Tally; SLOTS],
        classes: Option<&[ClassCounts; SLOTS]>,
        b: u32,
        window: u32,
        min_samples: u32,
    ) -> Rates {
        let bucket = tally_at(ring, b).copied().unwrap_or_default();
        let (first, span) = if bucket.samples >= min_samples {
            (b, 1)
        } else {
            let w = window.max(1);
            (b + 1 - w.min(b + 1), w.min(b + 1))
        };
        let (mut packets, mut bytes, mut samples) = (0u64, 0u64, 0u64);
        let mut class_packets = [0f64; pk::N];
        let mut class_bytes = [0f64; by::N];
        for bb in first..=b {
            let Some(t) = tally_at(ring, bb) else {
                continue;
            };
            packets += t.packets;
            bytes += t.bytes;
            samples += u64::from(t.samples);
            if let Some(c) = classes.and_then(|c| {
                let s = &c[bb as usize % SLOTS];
                (s.bucket == bb && s.covered_packets > 0).then_some(s)
            }) {
                let pscale = t.packets as f64 / c.covered_packets as f64;
                let bscale = if c.covered_bytes > 0 {
                    t.bytes as f64 / c.covered_bytes as f64
                } else {
                    pscale
                };
                for (acc, v) in class_packets.iter_mut().zip(c.packets) {
                    *acc += v as f64 * pscale;
                }
                for (acc, v) in class_bytes.iter_mut().zip(c.bytes) {
                    *acc += v as f64 * bscale;
                }
            }
        }
        let span = f64::from(span);
        let mbps = |bytes: f64| bytes * 8.0 / 1e6 / span;
        let has_classes = classes.is_some();
        let mut values = [0f64; METRICS];
        values[Metric::Pps as usize] = packets as f64 / span;
        values[Metric::Mbps as usize] = mbps(bytes as f64);
        values[Metric::FlowsPerS as usize] = samples as f64 / span;
        if has_classes {
            let p = |i: usize| class_packets[i] / span;
            values[Metric::TcpPps as usize] = p(pk::TCP);
            values[Metric::TcpMbps as usize] = mbps(class_bytes[by::TCP]);
            values[Metric::UdpPps as usize] = p(pk::UDP);
            values[Metric::UdpMbps as usize] = mbps(class_bytes[by::UDP]);
            values[Metric::IcmpPps as usize] = p(pk::ICMP);
            values[Metric::IcmpMbps as usize] = mbps(class_bytes[by::ICMP]);
            values[Metric::GrePps as usize] = p(pk::GRE);
            values[Metric::GreMbps as usize] = mbps(class_bytes[by::GRE]);
            values[Metric::SynPps as usize] = p(pk::SYN);
            values[Metric::AckPps as usize] = p(pk::ACK);
            values[Metric::RstPps as usize] = p(pk::RST);
            values[Metric::FragmentPps as usize] = p(pk::FRAG);
            values[Metric::FragmentMbps as usize] = mbps(class_bytes[by::FRAG]);
            values[Metric::AmplificationPps as usize] = p(pk::AMP);
            values[Metric::AmplificationMbps as usize] = mbps(class_bytes[by::AMP]);
        }
        Rates {
            values,
            confident: samples >= u64::from(min_samples),
            has_classes,
            class_packets,
            samples,
            bucket_pps: bucket.packets as f64,
            bucket_bps: bucket.bytes as f64 * 8.0,
        }
    }
}
