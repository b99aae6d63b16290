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
use crate::vocab::{Metric, Vector, METRICS};

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

/// Telemetry time granularity of [`Provenance::instants`]: datagrams received together (one
/// receive batch, one export burst) are one instant.
pub(crate) const INSTANT_MS: u64 = 10;

/// Which datagrams and instants one target's records of one bucket came from. A target's records
/// of one datagram arrive together (the collector hands whole datagrams on), so a change of
/// datagram number starts the next one.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Provenance {
    pub datagrams: u32,
    pub instants: u32,
    pub packets: u64,
    /// Packets of the largest datagram before the current one.
    largest_closed: u64,
    /// Packets of the current datagram so far.
    run: u64,
    last_datagram: u32,
    last_instant: u64,
}

impl Provenance {
    #[inline]
    pub fn add(&mut self, r: &FlowRecord) {
        // Datagram 0 is unknown: each such record counts as its own datagram.
        if self.datagrams == 0 || r.datagram == 0 || r.datagram != self.last_datagram {
            self.datagrams += 1;
            self.largest_closed = self.largest_closed.max(self.run);
            self.run = 0;
            self.last_datagram = r.datagram;
        }
        self.run = self.run.saturating_add(r.packets);
        self.packets = self.packets.saturating_add(r.packets);
        let instant = r.time_ms / INSTANT_MS;
        if self.instants == 0 || instant != self.last_instant {
            self.instants += 1;
            self.last_instant = instant;
        }
    }

    /// Packets of the largest single datagram.
    pub fn largest(&self) -> u64 {
        self.largest_closed.max(self.run)
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

/// Indices into [`ClassCounts::packets`] and [`ClassCounts::bytes`].
///
/// `TCP..=OTHER` partition all packets by protocol; `SYN..=DATA` partition TCP by what its flags
/// and sizes say; `AMP` is the part of UDP that looks reflected (a reflector source port and a
/// reflection-sized packet), split per port in `AMP_PORT..`; `FRAG` overlaps the protocols;
/// `AMP_QUERY..` counts UDP sent *to* a reflector port (requests), which explains answers coming
/// back the other way.
pub(crate) mod pk {
    pub const TCP: usize = 0;
    pub const UDP: usize = 1;
    pub const ICMP: usize = 2;
    pub const GRE: usize = 3;
    pub const OTHER: usize = 4;
    /// SYN without ACK (connection requests).
    pub const SYN: usize = 5;
    /// RST, with or without other flags.
    pub const RST: usize = 6;
    /// No ACK and not a SYN or RST: FIN-, PSH- or URG-only, no flags, Christmas tree, SYN|FIN.
    pub const ODD: usize = 7;
    /// ACK with URG: random-flag ACK floods (ordinary stacks never send it).
    pub const URG: usize = 8;
    /// ACK (with or without PSH) and no payload: header-sized packets.
    pub const BARE: usize = 9;
    /// The rest of TCP: data (ACK/PSH-ACK with payload), SYN-ACK, FIN-ACK, whole connections.
    pub const DATA: usize = 10;
    pub const AMP: usize = 11;
    pub const FRAG: usize = 12;
    /// First of the per-port reflected counters, in `Vector::AMPLIFICATION` order.
    pub const AMP_PORT: usize = 13;
    /// First of the per-port request counters, same order.
    pub const AMP_QUERY: usize = AMP_PORT + 8;
    pub const N: usize = AMP_QUERY + 8;
}

/// Largest IP length of a packet without payload: 20/40-byte IP header, a TCP header with
/// timestamps and SACK blocks.
pub(crate) const BARE_MAX_LEN: u64 = 100;

/// Smallest IP length of a reflected answer per reflector port (`Vector::AMPLIFICATION` order):
/// ordinary answers are smaller (a DNS answer is 100–300 B, an NTP time reply 76 B), the
/// answers reflectors are abused for are larger (DNS ANY/TXT and DNSSEC answers in 1500 B
/// fragments, NTP monlist 468 B, SNMP GetBulk > 1 kB). Memcached, CLDAP, chargen, SSDP and WSD
/// never answer a customer from the Internet in ordinary traffic.
const AMP_MIN_LEN: [u64; 8] = [400, 200, 0, 0, 0, 0, 400, 0];

/// What a record counts towards, computed once per record and applied to every target it touches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordClass {
    /// `pk::TCP..=pk::OTHER`.
    proto: u8,
    /// `pk::SYN..=pk::DATA` for TCP.
    tcp_kind: u8,
    frag: bool,
    /// Index into `Vector::AMPLIFICATION` of a reflection-sized UDP record from a reflector port.
    amp_port: Option<u8>,
    /// Index into `Vector::AMPLIFICATION` of a UDP record to a reflector port.
    query_port: Option<u8>,
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
        };
        let (mut amp_port, mut query_port) = (None, None);
        let mut tcp_kind = 0;
        if proto == pk::TCP {
            tcp_kind = tcp_kind_of(r) as u8;
        } else if proto == pk::UDP {
            for (i, (port, _)) in Vector::AMPLIFICATION.iter().enumerate() {
                if r.src_port == *port && r.bytes >= AMP_MIN_LEN[i] * r.packets {
                    amp_port = Some(i as u8);
                }
                if r.dst_port == *port {
                    query_port = Some(i as u8);
                }
            }
        }
        RecordClass {
            proto: proto as u8,
            tcp_kind,
            frag: r.fragment,
            amp_port,
            query_port,
        }
    }
}

/// The TCP kind of a record. NetFlow flags are the OR over a flow: a record of several packets
/// with ACK and SYN, FIN or PSH is a connection (or part of one), whatever else is set.
#[inline]
fn tcp_kind_of(r: &FlowRecord) -> usize {
    let f = r.tcp_flags;
    let ack = f & tcp_flags::ACK != 0;
    let single = r.packets <= u64::from(r.sampling_rate.max(1));
    let bare = r.bytes <= BARE_MAX_LEN * r.packets;
    if !single && ack && f & (tcp_flags::SYN | tcp_flags::FIN | tcp_flags::PSH) != 0 {
        return if bare && f & (tcp_flags::SYN | tcp_flags::FIN) == 0 {
            pk::BARE
        } else {
            pk::DATA
        };
    }
    if f & tcp_flags::RST != 0 {
        pk::RST
    } else if f & tcp_flags::SYN != 0 && !ack {
        if f & tcp_flags::FIN != 0 {
            pk::ODD
        } else {
            pk::SYN
        }
    } else if !ack {
        pk::ODD
    } else if f & tcp_flags::URG != 0 {
        pk::URG
    } else if f & (tcp_flags::SYN | tcp_flags::FIN) == 0 && bare {
        pk::BARE
    } else {
        pk::DATA
    }
}

/// A Misra–Gries summary of the heaviest keys (ports, remotes) of one bucket: every count is a
/// lower bound of its key's true weight, so the summed counts are weight guaranteed to sit on at
/// most four keys. Only weight beyond a key's first record counts (`mass`): a handful of
/// samples from distinct remotes would otherwise fill the four slots and look concentrated.
/// Traffic spread over random ports or many remotes leaves almost nothing; a service port or a
/// download from one server keeps its weight.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Heavy {
    keys: [u32; 4],
    counts: [u64; 4],
    firsts: [u64; 4],
}

impl Heavy {
    #[inline]
    pub fn add(&mut self, key: u32, w: u64) {
        for i in 0..4 {
            if self.counts[i] != 0 && self.keys[i] == key {
                self.counts[i] += w;
                return;
            }
        }
        for i in 0..4 {
            if self.counts[i] == 0 {
                (self.keys[i], self.counts[i], self.firsts[i]) = (key, w, w);
                return;
            }
        }
        let m = self.counts.iter().copied().min().unwrap_or(0).min(w);
        for c in &mut self.counts {
            *c -= m;
        }
        if w > m {
            if let Some(i) = self.counts.iter().position(|&c| c == 0) {
                (self.keys[i], self.counts[i], self.firsts[i]) = (key, w - m, w - m);
            }
        }
    }

    /// Weight guaranteed to belong to the (at most four) keys kept, beyond their first records.
    #[inline]
    pub fn mass(&self) -> u64 {
        (0..4)
            .map(|i| self.counts[i].saturating_sub(self.firsts[i]))
            .sum()
    }
}

/// Packets and bytes of one class.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PacketsBytes {
    pub packets: u64,
    pub bytes: u64,
}

/// Per-class packets and bytes of one target in one bucket, and where its TCP and UDP go.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClassCounts {
    /// Packets and bytes per class (`pk::*`), side by side: a record adds to two to four
    /// classes, each one 16-byte pair.
    pub classes: [PacketsBytes; pk::N],
    /// Packets and bytes counted here: less than the target's [`Tally`] when watching started
    /// mid-bucket, so class rates are extrapolated by the ratio.
    pub covered_packets: u64,
    pub covered_bytes: u64,
    /// Sampled packets behind the counts: a sample is one, a sampled flow record as many as it
    /// sampled, an unsampled record every packet (unsampled counts have no sampling noise).
    pub evidence: u64,
    /// The earliest telemetry time of the records counted (late flow records may predate the
    /// bucket).
    pub first_ms: u64,
    /// Remote addresses (hashed), and the monitored end's and the remote end's TCP ports and the
    /// monitored end's UDP ports: what tells a download, a service or a flood apart.
    pub remotes: Heavy,
    pub tcp_local: Heavy,
    pub tcp_remote: Heavy,
    pub udp_local: Heavy,
    pub provenance: Provenance,
    pub bucket: u32,
}

impl Default for ClassCounts {
    fn default() -> Self {
        ClassCounts {
            classes: [PacketsBytes::default(); pk::N],
            covered_packets: 0,
            covered_bytes: 0,
            evidence: 0,
            first_ms: u64::MAX,
            remotes: Heavy::default(),
            tcp_local: Heavy::default(),
            tcp_remote: Heavy::default(),
            udp_local: Heavy::default(),
            provenance: Provenance::default(),
            bucket: NO_BUCKET,
        }
    }
}

impl ClassCounts {
    /// Adds a record seen at a target in direction `incoming` (the monitored end is the
    /// destination); `remote_hash` identifies the other end. Amplification counts only
    /// incoming (reflected traffic arrives).
    #[inline]
    pub fn add(&mut self, r: &FlowRecord, c: &RecordClass, incoming: bool, remote_hash: u32) {
        let (p, b) = (r.packets, r.bytes);
        self.covered_packets += p;
        self.covered_bytes += b;
        // A sample (packets = the rate) is one sampled packet: no division on the common path.
        let rate = u64::from(r.sampling_rate.max(1));
        self.evidence += if p <= rate { 1 } else { p / rate };
        self.first_ms = self.first_ms.min(r.time_ms);
        self.provenance.add(r);
        let mut count = |i: usize| {
            let c = &mut self.classes[i];
            c.packets += p;
            c.bytes += b;
        };
        let proto = c.proto as usize;
        count(proto);
        if proto == pk::TCP {
            count(c.tcp_kind as usize);
        }
        if c.frag {
            count(pk::FRAG);
        }
        if let (Some(port), true) = (c.amp_port, incoming) {
            count(pk::AMP);
            count(pk::AMP_PORT + port as usize);
        }
        if let Some(port) = c.query_port {
            count(pk::AMP_QUERY + port as usize);
        }
        self.remotes.add(remote_hash, p);
        let (local, remote) = if incoming {
            (r.dst_port, r.src_port)
        } else {
            (r.src_port, r.dst_port)
        };
        if proto == pk::TCP {
            self.tcp_local.add(u32::from(local), p);
            self.tcp_remote.add(u32::from(remote), p);
        } else if proto == pk::UDP {
            self.udp_local.add(u32::from(local), p);
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

/// A remote address as the 32-bit key of [`ClassCounts::remotes`].
#[inline]
pub(crate) fn remote_hash(ip: std::net::IpAddr) -> u32 {
    let x = match ip {
        std::net::IpAddr::V4(a) => u64::from(u32::from(a)),
        std::net::IpAddr::V6(a) => {
            let v = u128::from(a);
            (v as u64) ^ ((v >> 64) as u64).rotate_left(17)
        }
    };
    (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as u32
}

/// Shares of one direction's traffic that the other direction answers: a receiver acknowledges
/// data (a TCP receiver at least every second segment, a QUIC one likewise), a server sends data
/// for the acknowledgements it receives, a tunnel carries traffic both ways. A flood is not
/// answered at this scale: its victim sends nothing, or a reset per packet at most.
const ANSWERED: f64 = 0.1;
/// Bare ACKs are explained by data going the other way: a server sends at least as many data
/// segments as it receives acknowledgements for them.
const ANSWERED_BARE: f64 = 0.5;
/// Connection requests (and resets) a target's established TCP explains: a connection carries
/// several more packets than its SYN, so benign SYNs stay below a quarter of the established
/// traffic; a SYN flood is almost nothing else.
const SYN_PER_ESTABLISHED: f64 = 0.25;
/// How much of a direction an answering peer plausibly sends back at least, as far as sampling
/// noise goes (a QUIC server sends three packets per client packet, a client with ACK thinning
/// one ACK per four to eight segments): traffic is unanswered when the other direction's
/// samples are fewer than this share of its own beyond noise — about 20 samples of a flood in
/// the evidence window with none coming back (7 kpps at 1:1000, 110 kpps at 1:16384).
const ANSWERED_EXPECTED: f64 = 0.15;
/// A reflector answers each request once or twice: more answers than that were not asked for.
const ANSWERS_PER_QUERY: f64 = 2.0;
/// Samples that must show TCP data or UDP before its remotes and ports can tell it is spread
/// (and so unexplained): below that, four keys would hold it all by chance.
const SHAPE_SAMPLES: f64 = 8.0;
/// How unlikely (in nats) seeing as few answering samples as `observed` must be, were the
/// traffic answered with `expected` samples, to call it unanswered: e^-3 ≈ 5 % (the limits
/// themselves then need their own evidence).
const UNANSWERED_NATS: f64 = 3.0;

/// Whether `observed` samples are fewer than a Poisson count with mean `expected` would give,
/// beyond noise (the Chernoff bound of its lower tail).
fn fewer_than(observed: f64, expected: f64) -> bool {
    if observed >= expected {
        return false;
    }
    let x = observed.max(0.0);
    let tail = if x > 0.0 {
        expected - x + x * (x / expected).ln()
    } else {
        expected
    };
    tail >= UNANSWERED_NATS
}

/// A share of a target's traffic guaranteed to sit on at most four keys (remotes, ports) that
/// makes it concentrated: a download from a few servers, a service on its port.
const CONCENTRATED: f64 = 0.5;

/// The other direction of a target (the same host's or prefix's traffic the other way), to tell
/// answered traffic from unanswered.
#[derive(Clone, Copy, Default)]
pub(crate) struct Reverse<'a> {
    pub ring: Option<&'a [Tally; SLOTS]>,
    pub classes: Option<&'a [ClassCounts; SLOTS]>,
}

/// The rates a target is judged by at a bucket close: the bucket itself when it has
/// `min_samples`, else the average over the evidence window.
///
/// Limits apply to the traffic the target's *ordinary* traffic does not explain (see
/// [`Unexplained`]): class metrics and `pps` / `mbps` are unexplained rates when class counts
/// exist, totals otherwise (a target without them is below every watch level).
#[derive(Debug, Clone)]
pub(crate) struct Rates {
    /// Indexed by `Metric as usize`.
    pub values: [f64; METRICS],
    /// Whether enough samples stand behind `values` for them to start an attack.
    pub confident: bool,
    /// Whether class metrics and `unexplained` are known.
    pub has_classes: bool,
    /// Unexplained packets/s and bits/s per class (`pk::*`), for classification.
    pub unexplained: [f64; pk::N],
    pub unexplained_bps: [f64; pk::N],
    /// Buckets the rates average over.
    pub span: u32,
    /// Samples (records) behind `values`: the statistical evidence of the rates.
    pub samples: u64,
    /// Sampled packets behind the rates (records without class counts).
    pub evidence: f64,
    /// Total rates over the same buckets (explained or not).
    pub total_pps: f64,
    pub total_bps: f64,
    /// Raw rates of the bucket itself, for the baseline.
    pub bucket_pps: f64,
    pub bucket_bps: f64,
}

impl Rates {
    pub fn pps(&self) -> f64 {
        self.values[Metric::Pps as usize]
    }

    /// Sampled packets behind `value` of `metric`: its share of the evidence.
    pub fn evidence_of(&self, metric: Metric) -> u64 {
        let v = self.values[metric as usize];
        let total = if metric == Metric::FlowsPerS {
            return self.samples;
        } else if metric.is_packets() {
            self.total_pps
        } else {
            self.total_bps / 1e6
        };
        if total <= 0.0 {
            return 0;
        }
        (self.evidence * (v / total).min(1.0)).round() as u64
    }

    /// Computes the rates at bucket `b`: of the bucket alone when it holds `min_samples`, else
    /// over the evidence `window` (already limited to the buckets the engine has seen).
    pub fn compute(
        ring: &[Tally; SLOTS],
        classes: Option<&[ClassCounts; SLOTS]>,
        reverse: Reverse<'_>,
        b: u32,
        window: u32,
        min_samples: u32,
    ) -> Rates {
        let bucket = tally_at(ring, b).copied().unwrap_or_default();
        let first = if bucket.samples >= min_samples || window <= 1 {
            b
        } else {
            b + 1 - window.min(b + 1)
        };
        Self::compute_over(ring, classes, reverse, first, b, min_samples)
    }

    /// Computes the rates over buckets `first..=b` (at most `SLOTS` of them).
    pub fn compute_over(
        ring: &[Tally; SLOTS],
        classes: Option<&[ClassCounts; SLOTS]>,
        reverse: Reverse<'_>,
        first: u32,
        b: u32,
        min_samples: u32,
    ) -> Rates {
        let bucket = tally_at(ring, b).copied().unwrap_or_default();
        let span = b - first + 1;
        let (mut packets, mut bytes, mut samples) = (0u64, 0u64, 0u64);
        let mut fwd = Mix::default();
        let mut rev = Mix::default();
        for bb in first..=b {
            if let Some(t) = tally_at(ring, bb) {
                packets += t.packets;
                bytes += t.bytes;
                samples += u64::from(t.samples);
                fwd.add(t, classes, bb);
            }
        }
        // Whether traffic is answered is judged over every bucket kept, as a rate: under heavy
        // sampling (or flow records exported in bursts) one direction's samples of a second
        // may land in the next.
        // Both directions over the same buckets (every bucket kept, whatever the span of the
        // rates): the decisions compare them as totals, with all the samples they have.
        let wide_first = b + 1 - (b + 1).min(SLOTS as u32);
        let mut wide = Mix::default();
        for bb in wide_first..=b {
            if let Some(t) = reverse.ring.and_then(|r| tally_at(r, bb)) {
                rev.add(t, reverse.classes, bb);
            }
            if let Some(t) = tally_at(ring, bb) {
                wide.add(t, classes, bb);
            }
        }

        let span = f64::from(span);
        let mut values = [0f64; METRICS];
        let total_pps = packets as f64 / span;
        let total_bps = bytes as f64 * 8.0 / span;
        values[Metric::FlowsPerS as usize] = samples as f64 / span;
        let has_classes = classes.is_some() && fwd.known;
        let mut unexplained = [0f64; pk::N];
        let mut unexplained_bps = [0f64; pk::N];
        if has_classes {
            let u = Unexplained::of(&fwd, &wide, &rev);
            let p = |i: usize| u.packets[i] / span;
            let mbps = |i: usize| u.bytes[i] * 8.0 / 1e6 / span;
            values[Metric::Pps as usize] = u.all_packets / span;
            values[Metric::Mbps as usize] = u.all_bytes * 8.0 / 1e6 / span;
            values[Metric::TcpPps as usize] = p(pk::TCP);
            values[Metric::TcpMbps as usize] = mbps(pk::TCP);
            values[Metric::UdpPps as usize] = p(pk::UDP);
            values[Metric::UdpMbps as usize] = mbps(pk::UDP);
            values[Metric::IcmpPps as usize] = p(pk::ICMP);
            values[Metric::IcmpMbps as usize] = mbps(pk::ICMP);
            values[Metric::GrePps as usize] = p(pk::GRE);
            values[Metric::GreMbps as usize] = mbps(pk::GRE);
            values[Metric::SynPps as usize] = p(pk::SYN);
            values[Metric::AckPps as usize] = p(pk::BARE) + p(pk::URG) + p(pk::DATA);
            values[Metric::RstPps as usize] = p(pk::RST);
            values[Metric::FragmentPps as usize] = p(pk::FRAG);
            values[Metric::FragmentMbps as usize] = mbps(pk::FRAG);
            values[Metric::AmplificationPps as usize] = p(pk::AMP);
            values[Metric::AmplificationMbps as usize] = mbps(pk::AMP);
            for (out, v) in unexplained.iter_mut().zip(u.packets) {
                *out = v / span;
            }
            for (out, v) in unexplained_bps.iter_mut().zip(u.bytes) {
                *out = v * 8.0 / span;
            }
        } else {
            values[Metric::Pps as usize] = total_pps;
            values[Metric::Mbps as usize] = total_bps / 1e6;
        }
        Rates {
            values,
            confident: samples >= u64::from(min_samples),
            has_classes,
            unexplained,
            unexplained_bps,
            span: span as u32,
            samples,
            evidence: if has_classes {
                fwd.evidence
            } else {
                samples as f64
            },
            total_pps,
            total_bps,
            bucket_pps: bucket.packets as f64,
            bucket_bps: bucket.bytes as f64 * 8.0,
        }
    }
}

impl Rates {
    /// These rates for a part of the target carrying `ps` of its packets and `bs` of its bytes
    /// (a prefix's carpet residue), whose own bucket carried `bucket` packets and bits.
    pub fn scaled(mut self, (ps, bs): (f64, f64), bucket: (f64, f64)) -> Rates {
        for m in Metric::ALL {
            if m != Metric::FlowsPerS {
                self.values[m as usize] *= if m.is_packets() { ps } else { bs };
            }
        }
        for v in &mut self.unexplained {
            *v *= ps;
        }
        for v in &mut self.unexplained_bps {
            *v *= bs;
        }
        self.total_pps *= ps;
        self.total_bps *= bs;
        self.evidence *= ps;
        (self.bucket_pps, self.bucket_bps) = bucket;
        self
    }
}

/// Class counts of one direction over some buckets, extrapolated to the direction's totals
/// (watching may have started mid-bucket), with the concentration of its remotes and ports.
#[derive(Debug, Clone, Default)]
pub(crate) struct Mix {
    pub packets: [f64; pk::N],
    pub bytes: [f64; pk::N],
    /// Packets guaranteed to come from (go to) at most four remotes; on at most four local TCP
    /// ports, remote TCP ports, local UDP ports.
    pub remotes: f64,
    pub tcp_local: f64,
    pub tcp_remote: f64,
    pub udp_local: f64,
    /// Sampled packets behind the counts (see [`ClassCounts::evidence`]).
    pub evidence: f64,
    /// Whether every bucket with traffic had class counts: otherwise the direction's traffic is
    /// known only as a total, and counts as answering every protocol (conservative: a target
    /// whose other direction is unknown is not accused of being unanswered).
    pub known: bool,
    /// Packets of buckets without class counts.
    pub unknown_packets: f64,
}

impl Mix {
    fn add(&mut self, t: &Tally, classes: Option<&[ClassCounts; SLOTS]>, bb: u32) {
        let slot = classes
            .map(|c| &c[bb as usize % SLOTS])
            .filter(|s| s.bucket == bb && s.covered_packets > 0);
        let Some(c) = slot else {
            if t.packets > 0 {
                self.unknown_packets += t.packets as f64;
            }
            return;
        };
        self.known = true;
        let pscale = t.packets as f64 / c.covered_packets as f64;
        let bscale = if c.covered_bytes > 0 {
            t.bytes as f64 / c.covered_bytes as f64
        } else {
            pscale
        };
        for ((p, b), v) in self.packets.iter_mut().zip(&mut self.bytes).zip(&c.classes) {
            *p += v.packets as f64 * pscale;
            *b += v.bytes as f64 * bscale;
        }
        self.remotes += c.remotes.mass() as f64 * pscale;
        self.tcp_local += c.tcp_local.mass() as f64 * pscale;
        self.tcp_remote += c.tcp_remote.mass() as f64 * pscale;
        self.udp_local += c.udp_local.mass() as f64 * pscale;
        self.evidence += c.evidence as f64 * pscale;
    }

    fn total(&self) -> f64 {
        self.packets[pk::TCP..=pk::OTHER].iter().sum()
    }

    /// Packets of protocol (or class) `i`, counting unknown traffic as all of every class.
    fn answering(&self, i: usize) -> f64 {
        self.packets[i] + self.unknown_packets
    }
}

/// The part of a target's traffic its ordinary traffic does not explain, per class (packets and
/// bytes over the window). Explained, and so never an attack on its own:
/// - TCP data answered by the other direction, from a few remotes (a download, a backup), or
///   on a few local or remote ports (a service, responses from one);
/// - bare ACKs answered by data going the other way (a server's acknowledgement stream);
/// - SYNs and RSTs up to a quarter of the established TCP;
/// - UDP answered by the other direction, or on a few local ports from a few remotes (a QUIC
///   download, a VPN);
/// - reflected answers up to twice the requests the target sent to that reflector port;
/// - GRE and other protocols answered by the other direction (tunnels).
///
/// Never explained: random-flag TCP (URG, no ACK), ICMP.
#[derive(Debug, Clone)]
pub(crate) struct Unexplained {
    pub packets: [f64; pk::N],
    pub bytes: [f64; pk::N],
    pub all_packets: f64,
    pub all_bytes: f64,
}

impl Unexplained {
    /// The unexplained part of `f`; whether its traffic is answered, spread or asked for is
    /// judged from `wide` (the same direction) against `r` (the other), both over every bucket
    /// kept, so that one bucket's burst of flow records in one direction is not taken for a
    /// lack of answers in the other, and the judgement has every sample kept behind it.
    pub fn of(f: &Mix, wide: &Mix, r: &Mix) -> Unexplained {
        let mut u = Unexplained {
            packets: [0.0; pk::N],
            bytes: [0.0; pk::N],
            all_packets: 0.0,
            all_bytes: 0.0,
        };
        let total = f.total();
        if total <= 0.0 {
            return u;
        }
        let p = &f.packets;
        // Keeps `k` packets of class `i` unexplained, and its bytes in proportion.
        let keep = |u: &mut Unexplained, i: usize, k: f64| {
            let all = f.packets[i];
            let k = k.clamp(0.0, all);
            u.packets[i] = k;
            u.bytes[i] = if all > 0.0 { f.bytes[i] * k / all } else { 0.0 };
        };
        // Sampled packets per packet: under heavy sampling a few samples cannot show that a
        // direction is unanswered, or that traffic is spread over remotes and ports. Traffic
        // is called unanswered only when an answering peer would, beyond sampling noise, have
        // put more samples in the other direction; spread only when enough samples show it.
        let w = &wide.packets;
        let wide_total = wide.total().max(total);
        let samples_per_packet = wide.evidence.max(f.evidence) / wide_total;
        let rev_total = r.total() + r.unknown_packets;
        let rev_samples_per_packet = if r.evidence > 0.0 && rev_total > 0.0 {
            r.evidence / rev_total
        } else {
            samples_per_packet
        };
        let answered = |fwd: f64, rev: f64, ratio: f64| {
            let expected = ratio.max(ANSWERED_EXPECTED) * fwd * rev_samples_per_packet;
            fwd <= 0.0 || rev >= ratio * fwd || !fewer_than(rev * rev_samples_per_packet, expected)
        };
        let shown = |packets: f64| packets * samples_per_packet >= SHAPE_SAMPLES;
        let few_remotes = wide.remotes >= CONCENTRATED * wide.total();

        let established = p[pk::BARE] + p[pk::DATA];
        keep(
            &mut u,
            pk::SYN,
            p[pk::SYN] - SYN_PER_ESTABLISHED * established,
        );
        keep(
            &mut u,
            pk::RST,
            p[pk::RST] - SYN_PER_ESTABLISHED * established,
        );
        keep(&mut u, pk::ODD, p[pk::ODD]);
        keep(&mut u, pk::URG, p[pk::URG]);
        let bare_answered = answered(w[pk::BARE], r.answering(pk::DATA), ANSWERED_BARE);
        keep(
            &mut u,
            pk::BARE,
            if bare_answered { 0.0 } else { p[pk::BARE] },
        );
        let tcp = w[pk::TCP];
        let data_explained = answered(w[pk::DATA], r.answering(pk::TCP), ANSWERED)
            || !shown(tcp)
            || few_remotes
            || wide.tcp_local >= CONCENTRATED * tcp
            || wide.tcp_remote >= CONCENTRATED * tcp;
        keep(
            &mut u,
            pk::DATA,
            if data_explained { 0.0 } else { p[pk::DATA] },
        );

        let mut amp = (0.0, 0.0);
        for i in 0..8 {
            let port = pk::AMP_PORT + i;
            // The share of the port's answers the target's requests explain.
            let asked = ANSWERS_PER_QUERY * r.answering(pk::AMP_QUERY + i);
            let explained = if w[port] > 0.0 {
                (asked / w[port]).min(1.0)
            } else {
                0.0
            };
            keep(&mut u, port, p[port] * (1.0 - explained));
            amp.0 += u.packets[port];
            amp.1 += u.bytes[port];
        }
        (u.packets[pk::AMP], u.bytes[pk::AMP]) = amp;
        let (udp_other, udp_other_bytes) = (
            (p[pk::UDP] - p[pk::AMP]).max(0.0),
            (f.bytes[pk::UDP] - f.bytes[pk::AMP]).max(0.0),
        );
        let wide_udp_other = (w[pk::UDP] - w[pk::AMP]).max(0.0);
        let udp_explained = answered(wide_udp_other, r.answering(pk::UDP), ANSWERED)
            || !shown(w[pk::UDP])
            || (few_remotes && wide.udp_local >= CONCENTRATED * w[pk::UDP]);
        if !udp_explained {
            u.packets[pk::UDP] = udp_other;
            u.bytes[pk::UDP] = udp_other_bytes;
        }
        u.packets[pk::UDP] += amp.0;
        u.bytes[pk::UDP] += amp.1;

        keep(&mut u, pk::ICMP, p[pk::ICMP]);
        for i in [pk::GRE, pk::OTHER] {
            let explained = answered(w[i], r.answering(i), ANSWERED);
            keep(&mut u, i, if explained { 0.0 } else { p[i] });
        }
        let tcp_kinds = pk::SYN..=pk::DATA;
        u.packets[pk::TCP] = u.packets[tcp_kinds.clone()].iter().sum();
        u.bytes[pk::TCP] = u.bytes[tcp_kinds].iter().sum();
        u.all_packets = u.packets[pk::TCP..=pk::OTHER].iter().sum();
        u.all_bytes = u.bytes[pk::TCP..=pk::OTHER].iter().sum();
        // Fragments belong to their protocol: as unexplained as the traffic around them.
        let share = u.all_packets / total;
        u.packets[pk::FRAG] = p[pk::FRAG] * share;
        u.bytes[pk::FRAG] = f.bytes[pk::FRAG] * share;
        u
    }
}
