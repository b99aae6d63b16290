//! Per-attack fingerprints.
//!
//! A `FingerprintBuilder` exists only for watched targets (those above the cheap watch level),
//! and its memory is bounded whatever the traffic (~7.7 KiB, one allocation at `new`): distinct
//! remotes by a HyperLogLog, top talkers, ports, TCP flag combinations and exporters by
//! Space-Saving heavy-hitter sketches of fixed capacity, everything else by fixed counters.
//! `observe` never allocates and uses no hashing with a random seed, so a replay of the same
//! records gives the same fingerprint.
//!
//! Cost per record is bounded: packets, bytes, protocols, fragments, amplification ports (the
//! counts vectors are named from) and the distinct-remote sketch see every record; the top
//! lists, size and TTL histograms see every record until the fingerprint has settled (1,024
//! records since it started or since an attack started on the target), then a fixed
//! pseudo-random one in 2, 4, 8 and finally 16, weighted by the stride so that shares stay
//! unbiased. See `Exact::stride` for the error. The engine's builders start as
//! [`FingerprintBuilder::watching`]: a target watched without an attack only needs the profile
//! of its ordinary traffic, so after 256 records they keep one in 16 at once, until an attack
//! starts.
//!
//! Addresses are kept in their 128-bit form with IPv4 as IPv4-mapped IPv6, so an IPv4-mapped
//! IPv6 remote (which must not appear on the wire, RFC 4291 §2.5.5.2) is reported as IPv4.

mod hll;
mod sources;
mod topk;

pub use sources::{SourceSketch, ENCODED_LEN as SOURCE_SKETCH_LEN};

use std::net::{IpAddr, Ipv6Addr};

use floodwall_wire::record::proto;
use floodwall_wire::FlowRecord;
use serde::{Deserialize, Serialize};

use crate::vocab::Vector;
use hll::{Hll, SmallHll};
use topk::{TopK, Weights};

/// One of the heaviest values of a field, with its share of the target's packets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Share<T> {
    pub value: T,
    /// Fraction of the observed packets (0..=1).
    pub share: f64,
    /// Packets (scaled by sampling).
    pub packets: u64,
}

/// Shares of packets by IP protocol.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProtocolMix {
    pub tcp: f64,
    pub udp: f64,
    pub icmp: f64,
    pub gre: f64,
    pub other: f64,
}

/// A histogram as bucket upper bounds (inclusive) and the share of packets in each.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub upper_bounds: Vec<u16>,
    pub shares: Vec<f64>,
}

/// Which exporter and interfaces carried the traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExporterShare {
    pub exporter: IpAddr,
    pub in_if: u32,
    pub out_if: u32,
    pub share: f64,
    /// Packets (scaled by sampling) carried by this exporter and interface pair.
    pub packets: u64,
}

/// What an attack looks like.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Estimated distinct remote addresses (sources of an incoming attack).
    pub sources_estimate: u64,
    pub top_sources: Vec<Share<IpAddr>>,
    pub top_source_ports: Vec<Share<u16>>,
    pub top_destination_ports: Vec<Share<u16>>,
    /// Most common TCP flag combinations; `share` is of TCP packets (not of all packets).
    pub top_tcp_flags: Vec<Share<u8>>,
    pub protocols: ProtocolMix,
    /// Share of packets that were IP fragments.
    pub fragments: f64,
    /// Packet sizes (IP length), when the telemetry carries them (sFlow, raw captures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packet_sizes: Option<Histogram>,
    /// TTL / hop limit, when the telemetry carries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttls: Option<Histogram>,
    pub exporters: Vec<ExporterShare>,
    pub peak_bps: u64,
    pub peak_pps: u64,
    /// Packets and bytes observed since the fingerprint started (scaled).
    pub packets: u64,
    pub bytes: u64,
}

/// How many heaviest values the snapshot reports per field.
const TOP_N: usize = 10;
/// Space-Saving capacity per field: 3x the reported top, so the reported ten are stable.
const TOP_CAPACITY: usize = 32;
/// Exporter/interface combinations kept; more are merged Space-Saving style.
const EXPORTERS: usize = 8;

/// Packet-size histogram bucket upper bounds (IP length, inclusive).
const SIZE_BOUNDS: [u16; 7] = [64, 128, 256, 512, 1024, 1500, 65535];
/// TTL / hop-limit histogram bucket upper bounds (inclusive): the common initial TTLs.
const TTL_BOUNDS: [u16; 4] = [32, 64, 128, 255];

/// Index into the protocol counters.
const P_TCP: usize = 0;
const P_UDP: usize = 1;
const P_ICMP: usize = 2;
const P_GRE: usize = 3;
const P_OTHER: usize = 4;

/// Exporter, input and output interface: which path carried the traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
struct PathKey {
    exporter: u128,
    in_if: u32,
    out_if: u32,
}

impl PathKey {
    /// A cheap tag for the top-K match; collisions are resolved by comparing the key.
    #[inline]
    fn tag(&self) -> u32 {
        let a = self.exporter as u64 ^ (self.exporter >> 64) as u64;
        let x = (a ^ u64::from(self.in_if) << 32 ^ u64::from(self.out_if))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (x >> 32) as u32
    }
}

/// Bounded sketches of one target's traffic.
///
/// The sketches live behind one box so the builder itself is a pointer: the engine can keep an
/// `Option<FingerprintBuilder>` per target cheaply and move builders without copying kilobytes.
#[derive(Clone, Default)]
pub struct FingerprintBuilder {
    s: Box<Sketches>,
    /// Whether the builder is thinned: a settled watch without an attack counts one remote in
    /// [`MAX_STRIDE`] among its distinct remotes (see [`FingerprintBuilder::watching`]).
    thinned: bool,
    /// While thinned, every remote of the bucket so far (cleared by each
    /// [`FingerprintBuilder::mark_before`]); frozen when an attack starts, whose first bucket it
    /// then counts in full: [`FingerprintBuilder::distinct_remotes`] is at least its estimate.
    recent: SmallHll,
    /// The sources of the target's incoming attack, from its start ([`Self::begin_sources`]):
    /// every record's remote, unthinned, for attributing the attack to a bot pool.
    attack_sources: Option<Box<SourceSketch>>,
}

#[derive(Clone)]
struct Sketches {
    /// Exact counts, touched by every record: one or two cache lines.
    exact: Exact,
    /// Kept records not yet added to the sampled sketches: `exact.pending` of them.
    pending: [Kept; PENDING],
    remotes: Hll,
    /// Estimated from a sample of the records once the fingerprint has settled (see
    /// [`Exact::stride`]), each kept record weighted by the stride it was kept at.
    sources: TopK<u128, TOP_CAPACITY>,
    src_ports: TopK<u16, TOP_CAPACITY>,
    dst_ports: TopK<u16, TOP_CAPACITY>,
    tcp_flags: TopK<u8, TOP_CAPACITY>,
    exporters: TopK<PathKey, EXPORTERS>,
    sizes: [u64; SIZE_BOUNDS.len()],
    ttls: [u64; TTL_BOUNDS.len()],
    /// UDP packets per source port of `Vector::AMPLIFICATION`, same order. Exact.
    amplification: [u64; 8],
    peak_bps: u64,
    peak_pps: u64,
    /// Weight added to the sampled sketches: shares are taken of these, so a sampled sketch
    /// never reports more than all of its traffic.
    source_weight: u64,
    port_weight: u64,
    flag_weight: u64,
    /// The counts at the last bucket close before an attack, for what a rule would also drop.
    before: Before,
}

/// What every record updates, together so that a record that is not sampled costs one or two
/// cache lines however many targets are watched.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Exact {
    /// Records observed (with packets).
    records: u64,
    packets: u64,
    bytes: u64,
    protocols: [u64; 5],
    fragments: u64,
    /// `records` when the fingerprint last (re)started settling: at creation, and when an
    /// attack starts on the target, so an attack's own first records are all kept.
    settle_from: u64,
    /// Entries of `Sketches::pending` in use.
    pending: u8,
    /// The first `marked` of them are already in the sketches a mark copies (see
    /// [`FingerprintBuilder::mark_before`]).
    marked: u8,
    /// Every record feeds every sketch (the reference the sampling is tested against).
    unsampled: bool,
    /// Built for a watch and no attack started since (see [`FingerprintBuilder::watching`]).
    watching: bool,
}

/// What the sampled sketches need of a kept record: one cache line. Kept records are added
/// [`PENDING`] at a time, so that with thousands of targets watched (a busy network's prefixes
/// above their watch level) the kilobytes of sketches are fetched once per batch, not once per
/// record. Added in order, so the sketches end up exactly as if fed one by one.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Kept {
    remote: u128,
    exporter: u128,
    weight: u64,
    in_if: u32,
    out_if: u32,
    hash: u32,
    src_port: u16,
    dst_port: u16,
    packet_len: u16,
    protocol: u8,
    tcp_flags: u8,
    ttl: u8,
}

/// Kept records batched before they are added to the sampled sketches.
const PENDING: usize = 16;
/// Kept records before a full batch at which the sketches it is added to are prefetched.
const FLUSH_AHEAD: usize = 4;

impl Exact {
    /// One record in `stride` feeds the sampled sketches: every record for the first
    /// [`SETTLE_RECORDS`] since settling began, then one in 2, 4, 8 and from 8 × SETTLE_RECORDS
    /// on one in [`MAX_STRIDE`]. The shares have settled by then: their standard error is at
    /// most 0.5 / √(SETTLE_RECORDS × 2.5) ≈ 1 percentage point, and each further doubling of
    /// the records halves the variance of what is added.
    ///
    /// A watch without an attack keeps every record for the first [`WATCH_SETTLE_RECORDS`],
    /// then one in [`MAX_STRIDE`]: its sketches only describe ordinary traffic, for what a rule
    /// would also drop, and a busy network's watched prefixes see hundreds of records a second.
    #[inline]
    fn stride(&self) -> u64 {
        let since = self.records - self.settle_from;
        if self.unsampled {
            return 1;
        }
        if self.watching {
            return if since < WATCH_SETTLE_RECORDS {
                1
            } else {
                MAX_STRIDE
            };
        }
        let n = since / SETTLE_RECORDS;
        if n == 0 {
            1
        } else {
            (2u64 << n.ilog2()).min(MAX_STRIDE)
        }
    }
}
/// What the target's traffic looked like while watched without an attack: copied (not sorted)
/// at each such bucket close, so an attack's rule can be weighed against it.
#[derive(Clone, Copy, Default)]
struct Before {
    records: u64,
    packets: u64,
    bytes: u64,
    protocols: [u64; 5],
    fragments: u64,
    sizes: [u64; SIZE_BOUNDS.len()],
    port_weight: u64,
    flag_weight: u64,
    src_ports: Weights<u16, TOP_CAPACITY>,
    dst_ports: Weights<u16, TOP_CAPACITY>,
    tcp_flags: Weights<u8, TOP_CAPACITY>,
    /// Whether the sketch part (sizes, weights, ports, flags) is still what the sketches hold:
    /// no kept record has been added to them since the mark, so it was not copied yet. A
    /// thinly fed watch is marked every second; its sketches change only every few seconds.
    live: bool,
}

/// Records behind a profile of the traffic before an attack for it to say anything.
const BEFORE_MIN_RECORDS: u64 = 8;

/// Records fed to every sketch after a fingerprint starts settling (see [`Exact::stride`]).
const SETTLE_RECORDS: u64 = 1_024;
/// Records a watch's fingerprint keeps in full before it samples at [`MAX_STRIDE`]: the ports,
/// flags and sizes of ordinary traffic within a few points, from the first seconds on.
const WATCH_SETTLE_RECORDS: u64 = 256;
/// The sampling stride once settled: a long flood costs a sixteenth of the sketch work per
/// record, and its shares stay unbiased (each kept record counts sixteen times).
const MAX_STRIDE: u64 = 16;

impl Default for Sketches {
    fn default() -> Self {
        Sketches {
            exact: Exact::default(),
            pending: [Kept::default(); PENDING],
            remotes: Hll::new(),
            sources: TopK::new(),
            src_ports: TopK::new(),
            dst_ports: TopK::new(),
            tcp_flags: TopK::new(),
            exporters: TopK::new(),
            sizes: [0; SIZE_BOUNDS.len()],
            ttls: [0; TTL_BOUNDS.len()],
            amplification: [0; 8],
            peak_bps: 0,
            peak_pps: 0,
            source_weight: 0,
            port_weight: 0,
            flag_weight: 0,
            before: Before::default(),
        }
    }
}

impl Sketches {
    /// Copies the sketches' part of a mark into `b`.
    fn copy_marked_sketches(&self, b: &mut Before) {
        b.sizes = self.sizes;
        b.port_weight = self.port_weight;
        b.flag_weight = self.flag_weight;
        self.src_ports.weights_into(&mut b.src_ports);
        self.dst_ports.weights_into(&mut b.dst_ports);
        self.tcp_flags.weights_into(&mut b.tcp_flags);
    }

    /// Keeps the live mark before the sketches move on.
    fn materialise_before(&mut self) {
        let mut b = self.before;
        self.copy_marked_sketches(&mut b);
        b.live = false;
        self.before = b;
    }
}

/// Whether the remote of `hash` goes into the distinct remotes: always, or when `thinned` for
/// one remote in [`MAX_STRIDE`], chosen by bits of its hash the registers do not use for their
/// index (a fixed subset of all addresses, so each remote is counted for all its records or
/// for none).
#[inline]
fn thin_counts(thinned: bool, hash: u64) -> bool {
    !thinned || hash.is_multiple_of(MAX_STRIDE)
}

/// SplitMix64's finaliser: a fixed bijective scramble of a counter.
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The 128-bit form of an address, IPv4 as IPv4-mapped IPv6 (one key space, one hash).
#[inline]
fn addr_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The engine's well-mixed 64-bit hash of an address (as its sketches use it): for other
/// sketches of addresses, so that one hash serves all.
#[inline]
pub fn hash_ip(ip: IpAddr) -> u64 {
    hll::hash_addr(addr_bits(ip))
}

#[inline]
fn bits_addr(bits: u128) -> IpAddr {
    Ipv6Addr::from(bits).to_canonical()
}

/// Index of the first bucket whose upper bound is at least `v`.
#[inline]
fn bucket(bounds: &[u16], v: u16) -> usize {
    bounds.iter().filter(|&&b| b < v).count()
}

/// Each protocol's share of `total` packets.
fn protocol_mix(protocols: &[u64; 5], total: u64) -> ProtocolMix {
    ProtocolMix {
        tcp: ratio(protocols[P_TCP], total),
        udp: ratio(protocols[P_UDP], total),
        icmp: ratio(protocols[P_ICMP], total),
        gre: ratio(protocols[P_GRE], total),
        other: ratio(protocols[P_OTHER], total),
    }
}

/// `part / whole`, 0 when nothing was observed (never NaN in the JSON).
fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn histogram(bounds: &[u16], counts: &[u64]) -> Option<Histogram> {
    let total = counts.iter().fold(0u64, |a, &c| a.saturating_add(c));
    (total > 0).then(|| Histogram {
        upper_bounds: bounds.to_vec(),
        shares: counts.iter().map(|&c| ratio(c, total)).collect(),
    })
}

/// Shares of `top` among `whole` (the weight its sketch was given), scaled by `part / of`:
/// the share of all packets the sketch's traffic is. Never above that.
fn shares<K: Copy, T>(
    top: impl IntoIterator<Item = (K, u64)>,
    whole: u64,
    (part, of): (u64, u64),
    f: impl Fn(K) -> T,
) -> Vec<Share<T>> {
    let scale = ratio(part, of);
    top.into_iter()
        .filter(|&(_, packets)| packets > 0)
        .map(|(k, packets)| Share {
            value: f(k),
            // One division of exact products: undecimated shares come out as plain ratios.
            share: if whole == 0 || of == 0 {
                0.0
            } else {
                (packets as f64 * part as f64 / (whole as f64 * of as f64)).min(scale)
            },
            packets,
        })
        .collect()
}

impl FingerprintBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder for a watched target without an attack: after [`WATCH_SETTLE_RECORDS`] kept in
    /// full, one record in [`MAX_STRIDE`] feeds the sampled sketches at once (not the gradual
    /// settling of [`Self::new`]), and the distinct remotes count one remote in [`MAX_STRIDE`]
    /// (*thinned*), until [`Self::settle_again`] marks the start of an attack; from there on
    /// it settles like a new builder and counts every remote. The exact counts see every
    /// record, and so do the distinct remotes of the bucket so far (a one-line sketch, ~13 %
    /// error), so an attack's first bucket counts all its sources. A busy network's watched
    /// prefixes take every record of their hosts, and each remote counted was a miss in a
    /// 3 KiB sketch: the largest cost of such a network.
    pub fn watching() -> Self {
        let mut builder = Self::default();
        builder.s.exact.watching = true;
        builder
    }

    /// A builder that feeds every record to every sketch, never sampling: the exact reference
    /// the sampled fingerprints (and the rules derived from them) are tested against. Costs
    /// several times more per record on a long flood; the engine never uses it.
    pub fn unsampled() -> Self {
        let mut builder = Self::default();
        builder.s.exact.unsampled = true;
        builder
    }

    /// Hints the CPU to fetch the state `observe` will touch first for `remote`.
    #[inline]
    pub fn prefetch(&self, remote: IpAddr) {
        crate::prefetch::prefetch(&self.s.exact);
        let hash = hll::hash_addr(addr_bits(remote));
        if thin_counts(self.thinned, hash) {
            self.s.remotes.prefetch(hash);
        }
    }

    /// Hints the CPU to fetch what the next [`Self::mark_before`] touches first: the kept
    /// records not yet marked and the heads of the sketches a mark copies (a close marks
    /// thousands of cold fingerprints).
    #[inline]
    pub fn prefetch_mark(&self) {
        let s = &*self.s;
        let (marked, pending) = (usize::from(s.exact.marked), usize::from(s.exact.pending));
        if marked == pending {
            return;
        }
        for k in &s.pending[marked..pending] {
            crate::prefetch::prefetch(k);
        }
        s.src_ports.prefetch();
        s.dst_ports.prefetch();
        s.tcp_flags.prefetch();
        crate::prefetch::prefetch(&s.sizes);
        crate::prefetch::prefetch(&s.before);
    }

    /// Adds a record; `remote` is the far end (source for incoming, destination for outgoing).
    ///
    /// Everything but the distinct-remote count is weighted by the record's scaled packets, so a
    /// 1:1000 sample counts a thousand times an unsampled packet.
    ///
    /// Exact for every record: packets, bytes, protocols, fragments, amplification ports, and
    /// the distinct remotes (a HyperLogLog must see every remote). Sampled once settled (see
    /// [`Exact::stride`]): top sources, ports, TCP flags, exporters, packet sizes and TTLs.
    #[inline]
    pub fn observe(&mut self, record: &FlowRecord, remote: IpAddr) {
        let s = &mut *self.s;
        let remote = addr_bits(remote);
        let hash = hll::hash_addr(remote);
        if thin_counts(self.thinned, hash) {
            s.remotes.insert(hash);
        }
        if self.thinned {
            self.recent.insert(hash);
        }
        if let Some(sources) = &mut self.attack_sources {
            sources.insert_source(hash, remote);
        }
        let e = &mut s.exact;
        e.bytes = e.bytes.saturating_add(record.bytes);
        let w = record.packets;
        if w == 0 {
            return;
        }
        if e.watching && e.records - e.settle_from >= WATCH_SETTLE_RECORDS {
            self.thinned = true;
        }
        e.packets = e.packets.saturating_add(w);
        e.records += 1;
        let p = match record.protocol {
            proto::TCP => P_TCP,
            proto::UDP => P_UDP,
            proto::ICMP | proto::ICMPV6 => P_ICMP,
            proto::GRE => P_GRE,
            _ => P_OTHER,
        };
        e.protocols[p] = e.protocols[p].saturating_add(w);
        if record.fragment {
            e.fragments = e.fragments.saturating_add(w);
        }
        if p == P_UDP {
            for (i, (port, _)) in Vector::AMPLIFICATION.iter().enumerate() {
                if record.src_port == *port {
                    s.amplification[i] = s.amplification[i].saturating_add(w);
                }
            }
        }
        // Which records are kept is a fixed pseudo-random function of their position, so periodic
        // traffic cannot alias with the stride, and replays keep the same ones. Records much
        // heavier than average (fat NetFlow flows) are always kept at their weight; the rest one
        // in `stride` at `stride` times theirs. Either way each record's expected contribution
        // is its weight.
        let stride = e.stride();
        let w = if stride == 1 || w.saturating_mul(e.records) >= e.packets.saturating_mul(stride) {
            w
        } else if mix64(e.records).is_multiple_of(stride) {
            w.saturating_mul(stride)
        } else {
            return;
        };
        s.pending[usize::from(e.pending)] = Kept {
            remote,
            exporter: addr_bits(record.exporter),
            weight: w,
            in_if: record.in_if,
            out_if: record.out_if,
            hash: hash as u32,
            src_port: record.src_port,
            dst_port: record.dst_port,
            packet_len: record.packet_len,
            protocol: p as u8,
            tcp_flags: record.tcp_flags,
            ttl: record.ttl,
        };
        e.pending += 1;
        if usize::from(e.pending) == PENDING - FLUSH_AHEAD {
            // A thinly fed target's sketches are cold when its batch fills: fetch them while
            // the last few records arrive.
            s.sources.prefetch();
            s.exporters.prefetch();
            s.src_ports.prefetch();
            s.dst_ports.prefetch();
            crate::prefetch::prefetch(&s.ttls);
        }
        if usize::from(e.pending) == PENDING {
            self.flush();
        }
    }

    /// Adds the kept records still pending to the sampled sketches. The engine calls it before
    /// reading a fingerprint; readers that find records pending work on a flushed copy.
    pub fn flush(&mut self) {
        self.flush_marked();
        let s = &mut *self.s;
        let n = usize::from(std::mem::take(&mut s.exact.pending));
        s.exact.marked = 0;
        for k in &s.pending[..n] {
            let w = k.weight;
            s.sources.add(k.remote, k.hash, w);
            s.source_weight = s.source_weight.saturating_add(w);
            let path = PathKey {
                exporter: k.exporter,
                in_if: k.in_if,
                out_if: k.out_if,
            };
            s.exporters.add(path, path.tag(), w);
            if k.ttl > 0 {
                let b = bucket(&TTL_BOUNDS, u16::from(k.ttl));
                s.ttls[b] = s.ttls[b].saturating_add(w);
            }
        }
    }

    /// Adds the kept records not yet there to the sketches a mark copies (ports, flags, sizes).
    /// Each sketch takes the records in the same order whether flushed whole or in these two
    /// parts, so the result is the same; a close of a watched target without an attack only
    /// needs this part, and the others wait for a full batch.
    fn flush_marked(&mut self) {
        let s = &mut *self.s;
        if s.exact.marked < s.exact.pending && s.before.live {
            s.materialise_before();
        }
        self.add_marked();
    }

    /// [`Self::flush_marked`] without keeping the mark: for the next mark.
    fn add_marked(&mut self) {
        let s = &mut *self.s;
        let (marked, pending) = (usize::from(s.exact.marked), usize::from(s.exact.pending));
        for k in &s.pending[marked..pending] {
            let (p, w) = (usize::from(k.protocol), k.weight);
            // Ports only mean something for TCP and UDP (ICMP carries type/code in `dst_port`).
            if p == P_TCP || p == P_UDP {
                s.port_weight = s.port_weight.saturating_add(w);
                s.src_ports.add(k.src_port, u32::from(k.src_port), w);
                s.dst_ports.add(k.dst_port, u32::from(k.dst_port), w);
            }
            if p == P_TCP {
                s.flag_weight = s.flag_weight.saturating_add(w);
                s.tcp_flags.add(k.tcp_flags, u32::from(k.tcp_flags), w);
            }
            if k.packet_len > 0 {
                let b = bucket(&SIZE_BOUNDS, k.packet_len);
                s.sizes[b] = s.sizes[b].saturating_add(w);
            }
        }
        s.exact.marked = s.exact.pending;
    }

    /// This builder with nothing pending: itself, or a flushed copy.
    fn flushed(&self) -> std::borrow::Cow<'_, FingerprintBuilder> {
        if self.s.exact.pending == 0 {
            std::borrow::Cow::Borrowed(self)
        } else {
            let mut copy = self.clone();
            copy.flush();
            std::borrow::Cow::Owned(copy)
        }
    }

    /// An attack started on the target: its first records are kept in full again, so the
    /// attack's own fingerprint (and the rule derived from it) settles on them, however long
    /// the target was watched before.
    pub fn settle_again(&mut self) {
        self.s.exact.settle_from = self.s.exact.records;
        self.s.exact.watching = false;
        self.thinned = false;
    }

    /// Records the rates of a completed bucket, for the peaks.
    pub fn bucket_rates(&mut self, bps: u64, pps: u64) {
        self.s.peak_bps = self.s.peak_bps.max(bps);
        self.s.peak_pps = self.s.peak_pps.max(pps);
    }

    /// Starts summarising the remotes of every record from now on (the sources of an attack
    /// that starts: see [`SourceSketch`]).
    pub fn begin_sources(&mut self) {
        self.attack_sources = Some(Box::default());
    }

    /// The sources summarised since [`Self::begin_sources`].
    pub fn sources_sketch(&self) -> Option<&SourceSketch> {
        self.attack_sources.as_deref()
    }

    /// Estimated distinct remotes (HyperLogLog, ~1.6 % standard error; O(64) to compute): of a
    /// thinned watch a sixteenth of them, but never fewer than its bucket's so far (or, after
    /// an attack started, the attack's first bucket's; see [`Self::watching`]).
    pub fn distinct_remotes(&self) -> u64 {
        self.s.remotes.estimate().max(self.recent.estimate())
    }

    /// Exact scaled UDP packets from each source port of `Vector::AMPLIFICATION`, same order,
    /// so the engine can name amplification vectors without a sketch's error.
    pub fn amplification_packets(&self) -> [u64; 8] {
        self.s.amplification
    }

    /// Scaled packets observed since the builder started (the denominator of every share).
    pub fn remote_packets_total(&self) -> u64 {
        self.s.exact.packets
    }

    /// Heap bytes owned by the builder; constant for its whole life.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Sketches>()
    }

    /// Notes the traffic so far as the target's ordinary traffic: called at bucket closes while
    /// the target is watched and not attacked.
    ///
    /// The exact counts are copied; the sketches' part only when a kept record is about to be
    /// added to them before the next mark (see [`Before::live`]).
    pub fn mark_before(&mut self) {
        // A new bucket of ordinary traffic begins.
        self.recent.clear();
        // Nothing new since the last mark (an idle watch): the mark stands, and every kept
        // record is in it.
        if self.s.before.records == self.s.exact.records {
            return;
        }
        // The last mark is superseded: its sketch part need not be kept.
        self.add_marked();
        let s = &mut *self.s;
        let b = &mut s.before;
        b.records = s.exact.records;
        b.packets = s.exact.packets;
        b.bytes = s.exact.bytes;
        b.protocols = s.exact.protocols;
        b.fragments = s.exact.fragments;
        b.live = true;
    }

    /// The mark with its sketch part, copied from the sketches if still live there.
    fn before_view(&self) -> std::borrow::Cow<'_, Before> {
        let s = &*self.s;
        if s.before.live {
            let mut b = s.before;
            s.copy_marked_sketches(&mut b);
            std::borrow::Cow::Owned(b)
        } else {
            std::borrow::Cow::Borrowed(&s.before)
        }
    }

    /// The target's traffic as last marked before an attack, if enough of it was seen to say
    /// anything. Ports and flags are its heaviest few; sources and TTLs are not kept.
    pub fn before(&self) -> Option<Fingerprint> {
        // The mark added every kept record to what it copied: nothing pending belongs to it.
        let b = &*self.before_view();
        if b.records < BEFORE_MIN_RECORDS {
            return None;
        }
        let total = b.packets;
        let tcp = b.protocols[P_TCP];
        let ported = (tcp.saturating_add(b.protocols[P_UDP]), total);
        Some(Fingerprint {
            sources_estimate: 0,
            top_sources: Vec::new(),
            top_source_ports: shares(b.src_ports.top(TOP_N), b.port_weight, ported, |p| p),
            top_destination_ports: shares(b.dst_ports.top(TOP_N), b.port_weight, ported, |p| p),
            top_tcp_flags: shares(b.tcp_flags.top(TOP_N), b.flag_weight, (1, 1), |f| f),
            protocols: protocol_mix(&b.protocols, total),
            fragments: ratio(b.fragments, total),
            packet_sizes: histogram(&SIZE_BOUNDS, &b.sizes),
            ttls: None,
            exporters: Vec::new(),
            peak_bps: 0,
            peak_pps: 0,
            packets: total,
            bytes: 0,
        })
    }

    /// The fingerprint of the traffic since the last [`mark_before`](Self::mark_before) (all of
    /// it when never marked): once an attack starts on a watched target, what it carried before
    /// is left out, so the attack's rule is derived from the attack. Distinct remotes, top
    /// sources and exporters still count from the start.
    pub fn snapshot(&self) -> Fingerprint {
        let this = self.flushed();
        let s = &*this.s;
        let b = &*this.before_view();
        let protocols: [u64; 5] =
            std::array::from_fn(|i| s.exact.protocols[i].saturating_sub(b.protocols[i]));
        let sizes: [u64; SIZE_BOUNDS.len()] =
            std::array::from_fn(|i| s.sizes[i].saturating_sub(b.sizes[i]));
        let total = s.exact.packets.saturating_sub(b.packets);
        let tcp = protocols[P_TCP];
        // Port shares are of all packets: the sketch's share of TCP and UDP, times theirs.
        let ported = (tcp.saturating_add(protocols[P_UDP]), total);
        let port_weight = s.port_weight.saturating_sub(b.port_weight);
        Fingerprint {
            sources_estimate: this.distinct_remotes(),
            top_sources: shares(s.sources.top(TOP_N), s.source_weight, (1, 1), bits_addr),
            top_source_ports: shares(
                since(s.src_ports.top(TOP_CAPACITY), &b.src_ports),
                port_weight,
                ported,
                |p| p,
            ),
            top_destination_ports: shares(
                since(s.dst_ports.top(TOP_CAPACITY), &b.dst_ports),
                port_weight,
                ported,
                |p| p,
            ),
            top_tcp_flags: shares(
                since(s.tcp_flags.top(TOP_CAPACITY), &b.tcp_flags),
                s.flag_weight.saturating_sub(b.flag_weight),
                (1, 1),
                |f| f,
            ),
            protocols: protocol_mix(&protocols, total),
            fragments: ratio(s.exact.fragments.saturating_sub(b.fragments), total),
            packet_sizes: histogram(&SIZE_BOUNDS, &sizes),
            ttls: histogram(&TTL_BOUNDS, &s.ttls),
            exporters: s
                .exporters
                .top(EXPORTERS)
                .into_iter()
                .map(|(k, packets)| ExporterShare {
                    exporter: bits_addr(k.exporter),
                    in_if: k.in_if,
                    out_if: k.out_if,
                    share: ratio(packets, s.source_weight).min(1.0),
                    packets,
                })
                .collect(),
            peak_bps: s.peak_bps,
            peak_pps: s.peak_pps,
            packets: total,
            bytes: s.exact.bytes.saturating_sub(b.bytes),
        }
    }
}

/// The heaviest of `now` less what each key carried at the mark, heaviest first (ties by key),
/// at most [`TOP_N`].
fn since<K: Copy + Ord + Default>(
    mut now: Vec<(K, u64)>,
    before: &Weights<K, TOP_CAPACITY>,
) -> Vec<(K, u64)> {
    for (key, count) in &mut now {
        *count = count.saturating_sub(before.get(*key));
    }
    now.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    now.truncate(TOP_N);
    now
}

impl std::fmt::Debug for FingerprintBuilder {
    /// A summary: the registers and counters themselves are kilobytes of noise.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FingerprintBuilder")
            .field("distinct_remotes", &self.distinct_remotes())
            .field("packets", &self.s.exact.packets)
            .field("bytes", &self.s.exact.bytes)
            .field("peak_bps", &self.s.peak_bps)
            .field("peak_pps", &self.s.peak_pps)
            .finish_non_exhaustive()
    }
}
