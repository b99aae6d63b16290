//! The source set of an attack, summarised for attribution: a one-permutation MinHash (how
//! much two attacks' sources overlap) and a HyperLogLog (how many there are, and how many two
//! or more attacks have together). Both are fixed-size and mergeable, fed by the hash the
//! fingerprint already computes for every record, so keeping one per attack costs a compare
//! and a byte store per record.
//!
//! One-permutation MinHash (Li, Owen, Zhang, "One Permutation Hashing", NIPS 2012): the hash
//! picks one of [`BINS`] bins and the rest of it is the bin's candidate minimum; two sets'
//! Jaccard similarity is the share of equal bins among those not both empty. One hash per
//! element instead of [`BINS`].

use super::hll::{sigma, tau};

/// MinHash bins: the Jaccard estimate's standard error is at most 1/(2·√BINS) ≈ 3 %.
pub const BINS: usize = 128;
/// HyperLogLog precision: 1,024 registers, ~3.3 % standard error.
const P: u32 = 10;
const M: usize = 1 << P;
/// Rank bits: register values are 0..=Q+1.
const Q: u32 = 64 - P;
/// An empty bin.
const EMPTY: u32 = u32::MAX;

/// Encoded size: bins, registers, the sample and unroutable counts.
pub const ENCODED_LEN: usize = BINS * 4 + M + 16;

/// See the module documentation.
#[derive(Clone, PartialEq, Eq)]
pub struct SourceSketch {
    mins: [u32; BINS],
    regs: [u8; M],
    /// Records added (with repeats): how much evidence stands behind the sketch.
    samples: u64,
    /// Records from addresses no host on the Internet can have (private, loopback, multicast,
    /// reserved, IPv6 outside 2000::/3): only a spoofer sends from them.
    unroutable: u64,
}

impl Default for SourceSketch {
    fn default() -> Self {
        SourceSketch {
            mins: [EMPTY; BINS],
            regs: [0; M],
            samples: 0,
            unroutable: 0,
        }
    }
}

impl std::fmt::Debug for SourceSketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceSketch")
            .field("samples", &self.samples)
            .field("distinct", &self.distinct())
            .finish()
    }
}

impl SourceSketch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a well-mixed 64-bit hash of a source address (the fingerprint's `hash_addr`):
    /// the top 10 bits pick the register and the bits below give the rank; bits 10–16 pick the
    /// MinHash bin and bits 17–48 are its value.
    #[inline]
    pub fn insert(&mut self, hash: u64) {
        self.samples += 1;
        let bin = ((hash >> 10) as usize) & (BINS - 1);
        let value = (hash >> 17) as u32;
        if value < self.mins[bin] {
            self.mins[bin] = value;
        }
        let i = (hash >> Q) as usize;
        let rank = ((hash << P).leading_zeros() + 1).min(Q + 1) as u8;
        if rank > self.regs[i] {
            self.regs[i] = rank;
        }
    }

    /// Adds a source given as the engine's 128-bit (IPv4-mapped) address bits and their hash.
    #[inline]
    pub fn insert_source(&mut self, hash: u64, bits: u128) {
        self.insert(hash);
        self.unroutable += u64::from(unroutable(bits));
    }

    /// Adds an address (as the engine hashes it).
    pub fn insert_addr(&mut self, addr: std::net::IpAddr) {
        let bits = super::addr_bits(addr);
        self.insert_source(super::hll::hash_addr(bits), bits);
    }

    /// Whether the sources give a spoofed flood away: at least 1 % of at least 100 records
    /// from unroutable addresses (uniformly random IPv4 sources put ~14 % there; real devices
    /// none). A spoofer who avoids them is caught by overlapping nothing instead.
    pub fn looks_spoofed(&self) -> bool {
        self.samples >= 100 && self.unroutable.saturating_mul(100) >= self.samples
    }

    /// Records added, repeats included.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Makes this the sketch of both sets.
    pub fn merge(&mut self, other: &SourceSketch) {
        for (a, b) in self.mins.iter_mut().zip(&other.mins) {
            *a = (*a).min(*b);
        }
        for (a, b) in self.regs.iter_mut().zip(&other.regs) {
            *a = (*a).max(*b);
        }
        self.samples = self.samples.saturating_add(other.samples);
        self.unroutable = self.unroutable.saturating_add(other.unroutable);
    }

    /// Estimated distinct sources (Ertl's improved HyperLogLog estimator: unbiased from one
    /// element up, without bias tables).
    pub fn distinct(&self) -> u64 {
        distinct_of(self.regs.iter().copied())
    }

    /// Estimated distinct sources of the two sets together.
    pub fn union_distinct(&self, other: &SourceSketch) -> u64 {
        distinct_of(self.regs.iter().zip(&other.regs).map(|(a, b)| *a.max(b)))
    }

    /// Estimated Jaccard similarity |A ∩ B| / |A ∪ B|: equal bins among those not both empty.
    pub fn jaccard(&self, other: &SourceSketch) -> f64 {
        let (mut equal, mut used) = (0u32, 0u32);
        for (a, b) in self.mins.iter().zip(&other.mins) {
            let any = (*a != EMPTY) | (*b != EMPTY);
            used += u32::from(any);
            equal += u32::from(any & (a == b));
        }
        if used == 0 {
            0.0
        } else {
            f64::from(equal) / f64::from(used)
        }
    }

    /// Estimated |A ∩ B| / min(|A|, |B|): how much of the smaller set is in the other. An
    /// attack using 30 % of a pool's bots shares ~30 % of its sources with another such attack,
    /// while their Jaccard similarity is only ~18 %.
    pub fn overlap(&self, other: &SourceSketch) -> f64 {
        let smaller = self.distinct().min(other.distinct());
        if smaller == 0 {
            return 0.0;
        }
        let shared = self.jaccard(other) * self.union_distinct(other) as f64;
        (shared / smaller as f64).min(1.0)
    }

    /// Little-endian bins, registers, then the sample count: [`ENCODED_LEN`] bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(ENCODED_LEN);
        for m in &self.mins {
            out.extend_from_slice(&m.to_le_bytes());
        }
        out.extend_from_slice(&self.regs);
        out.extend_from_slice(&self.samples.to_le_bytes());
        out.extend_from_slice(&self.unroutable.to_le_bytes());
    }

    /// Reads what [`Self::encode`] wrote; `None` when the bytes are not a sketch (wrong length,
    /// a register past the largest rank).
    pub fn decode(bytes: &[u8]) -> Option<SourceSketch> {
        if bytes.len() != ENCODED_LEN {
            return None;
        }
        let mut s = SourceSketch::default();
        let (mins, rest) = bytes.split_at(BINS * 4);
        for (m, b) in s.mins.iter_mut().zip(mins.chunks_exact(4)) {
            *m = u32::from_le_bytes(b.try_into().ok()?);
        }
        let (regs, counts) = rest.split_at(M);
        if regs.iter().any(|&r| u32::from(r) > Q + 1) {
            return None;
        }
        s.regs.copy_from_slice(regs);
        let (samples, unroutable) = counts.split_at(8);
        s.samples = u64::from_le_bytes(samples.try_into().ok()?);
        s.unroutable = u64::from_le_bytes(unroutable.try_into().ok()?);
        (s.unroutable <= s.samples).then_some(s)
    }
}

/// Addresses no Internet host can have, from the engine's 128-bit form.
#[inline]
fn unroutable(bits: u128) -> bool {
    if bits >> 32 == 0xffff {
        let v4 = bits as u32;
        let (a, b) = ((v4 >> 24) as u8, (v4 >> 16) as u8);
        matches!(a, 0 | 10 | 127 | 224..=255)
            || (a == 100 && (64..128).contains(&b))
            || (a == 169 && b == 254)
            || (a == 172 && (16..32).contains(&b))
            || (a == 192 && b == 168)
    } else {
        // Global unicast is 2000::/3.
        (bits >> 125) != 1
    }
}

fn distinct_of(regs: impl Iterator<Item = u8>) -> u64 {
    let mut c = [0u32; Q as usize + 2];
    for r in regs {
        c[usize::from(r).min(Q as usize + 1)] += 1;
    }
    let m = M as f64;
    let mut z = m * tau(1.0 - f64::from(c[Q as usize + 1]) / m);
    for k in (1..=Q as usize).rev() {
        z = 0.5 * (z + f64::from(c[k]));
    }
    z += m * sigma(f64::from(c[0]) / m);
    let alpha_inf = 1.0 / (2.0 * std::f64::consts::LN_2);
    (alpha_inf * m * m / z).round() as u64
}

#[cfg(test)]
mod tests {
    use super::super::hll::mix64;
    use super::*;

    fn sketch(range: std::ops::Range<u64>) -> SourceSketch {
        let mut s = SourceSketch::new();
        for i in range {
            s.insert(mix64(i));
            s.insert(mix64(i));
        }
        s
    }

    #[test]
    fn counts_within_its_error() {
        for n in [1u64, 10, 100, 1_000, 20_000, 1_000_000] {
            let e = sketch(0..n).distinct() as f64;
            assert!((e - n as f64).abs() <= 0.1 * n as f64 + 1.0, "{n}: {e}");
        }
        assert_eq!(SourceSketch::new().distinct(), 0);
    }

    #[test]
    fn two_thirty_percent_subsets_of_one_pool_overlap_by_thirty_percent() {
        // Pool 0..100,000; attack A uses 0..30,000, attack B 21,000..51,000: 9,000 shared.
        let (a, b) = (sketch(0..30_000), sketch(21_000..51_000));
        let overlap = a.overlap(&b);
        assert!((overlap - 0.3).abs() < 0.1, "{overlap}");
        let union = a.union_distinct(&b) as f64;
        assert!((union - 51_000.0).abs() < 0.1 * 51_000.0, "{union}");
        let disjoint = sketch(200_000..230_000);
        assert!(a.overlap(&disjoint) < 0.05, "{}", a.overlap(&disjoint));
    }

    #[test]
    fn merging_is_the_sketch_of_the_union() {
        let mut a = sketch(0..5_000);
        a.merge(&sketch(5_000..10_000));
        assert!(
            a == {
                let mut s = sketch(0..10_000);
                s.samples = a.samples;
                s
            }
        );
    }

    #[test]
    fn random_sources_look_spoofed_and_real_ones_do_not() {
        let mut spoofed = SourceSketch::new();
        let mut real = SourceSketch::new();
        for i in 0..10_000u64 {
            let any = mix64(i) as u32;
            spoofed.insert_addr(std::net::Ipv4Addr::from(any).into());
            // Devices of three public /16s.
            let device =
                [0x5db8_0000u32, 0xb9a2_0000, 0x2e21_0000][(i % 3) as usize] | (any & 0xffff);
            real.insert_addr(std::net::Ipv4Addr::from(device).into());
        }
        assert!(spoofed.looks_spoofed());
        assert!(!real.looks_spoofed());
    }

    #[test]
    fn encodes_and_refuses_what_is_not_a_sketch() {
        let a = sketch(0..1_000);
        let mut bytes = Vec::new();
        a.encode(&mut bytes);
        assert_eq!(bytes.len(), ENCODED_LEN);
        assert!(SourceSketch::decode(&bytes) == Some(a));
        assert!(SourceSketch::decode(&bytes[1..]).is_none());
        bytes[BINS * 4] = 200;
        assert!(SourceSketch::decode(&bytes).is_none());
    }
}
