//! Cheap, deterministic hashes that vary the benchmarks' synthetic traffic: shared by the
//! capture writer ([`super::replay`]), the sFlow streams ([`super::stream`]) and the comparison's
//! schedules ([`super::compare`]).

/// Bits of the numbers [`scatter`] permutes: 2^20, a million hosts or sources.
pub(crate) const SCATTER_BITS: u32 = 20;

/// A bijection of `SCATTER_BITS`-bit numbers that scatters neighbours far apart, so that
/// consecutive samples of a round hit unrelated hosts (as real traffic does).
pub(crate) fn scatter(x: u32) -> u32 {
    scatter_in(x, SCATTER_BITS)
}

/// [`scatter`] over `bits`-bit numbers (1..=32): odd multipliers and right xor-shifts modulo
/// 2^bits are bijections, so every host of a smaller network is still sampled once a round.
pub(crate) fn scatter_in(mut x: u32, bits: u32) -> u32 {
    let mask = u32::MAX >> (32 - bits.clamp(1, 32));
    for _ in 0..2 {
        x ^= x >> 11;
        x = x.wrapping_mul(0x9e37_79b1) & mask;
        x ^= x >> 7;
        x = x.wrapping_mul(0x85eb_ca6b) & mask;
    }
    x
}

/// SplitMix64 of `k`: a cheap, well-mixed hash of a counter.
pub(crate) fn splitmix(k: u64) -> u64 {
    let mut z = k.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
