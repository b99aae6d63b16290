//! Big-endian reads that cannot panic: a read past the end yields 0. Views check their length up
//! front, so the fallback is never hit on the hot path; it only keeps a bug from becoming a panic.

use std::net::{Ipv4Addr, Ipv6Addr};

#[inline(always)]
pub(crate) fn u8_at(bytes: &[u8], at: usize) -> u8 {
    bytes.get(at).copied().unwrap_or(0)
}

#[inline(always)]
pub(crate) fn u16_at(bytes: &[u8], at: usize) -> u16 {
    array_at(bytes, at).map_or(0, u16::from_be_bytes)
}

#[inline(always)]
pub(crate) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    array_at(bytes, at).map_or(0, u32::from_be_bytes)
}

#[inline(always)]
pub(crate) fn ipv4_at(bytes: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32_at(bytes, at))
}

#[inline(always)]
pub(crate) fn array_at<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// A value stored big-endian at a fixed offset: lets the one view macro ([`crate::view`]) pick
/// the read by the accessor's return type. Like the functions above, a read past the end yields
/// zero (or the unspecified address).
pub(crate) trait FromBe: Sized {
    fn read_at(bytes: &[u8], at: usize) -> Self;
}

impl FromBe for u8 {
    #[inline(always)]
    fn read_at(bytes: &[u8], at: usize) -> Self {
        u8_at(bytes, at)
    }
}

impl FromBe for u16 {
    #[inline(always)]
    fn read_at(bytes: &[u8], at: usize) -> Self {
        u16_at(bytes, at)
    }
}

impl FromBe for u32 {
    #[inline(always)]
    fn read_at(bytes: &[u8], at: usize) -> Self {
        u32_at(bytes, at)
    }
}

impl FromBe for Ipv4Addr {
    #[inline(always)]
    fn read_at(bytes: &[u8], at: usize) -> Self {
        ipv4_at(bytes, at)
    }
}

impl FromBe for Ipv6Addr {
    #[inline(always)]
    fn read_at(bytes: &[u8], at: usize) -> Self {
        array_at(bytes, at).map_or(Ipv6Addr::UNSPECIFIED, Ipv6Addr::from)
    }
}

impl<const N: usize> FromBe for [u8; N] {
    #[inline(always)]
    fn read_at(bytes: &[u8], at: usize) -> Self {
        array_at(bytes, at).unwrap_or([0; N])
    }
}

/// An unsigned big-endian integer of 1..=8 bytes (IPFIX reduced-size encoding); longer inputs
/// keep their low 8 bytes, an empty one reads as 0.
#[inline(always)]
pub(crate) fn uint(bytes: &[u8]) -> u64 {
    match *bytes {
        [a] => u64::from(a),
        [a, b] => u64::from(u16::from_be_bytes([a, b])),
        [a, b, c, d] => u64::from(u32::from_be_bytes([a, b, c, d])),
        [a, b, c, d, e, f, g, h] => u64::from_be_bytes([a, b, c, d, e, f, g, h]),
        _ => bytes.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_reduced_size_and_short_buffers() {
        assert_eq!(uint(&[]), 0);
        assert_eq!(uint(&[1, 2, 3]), 0x010203);
        assert_eq!(uint(&[0, 0, 0, 0, 0, 1, 0]), 256);
        assert_eq!(uint(&[9, 1, 2, 3, 4, 5, 6, 7, 8]), 0x0102030405060708);
        assert_eq!(u32_at(&[1, 2, 3], 0), 0);
        assert_eq!(u16_at(&[1, 2, 3], 1), 0x0203);
        assert_eq!(u16_at(&[1, 2, 3], usize::MAX), 0);
        assert_eq!(<[u8; 2]>::read_at(&[1, 2, 3], 2), [0, 0]);
        assert_eq!(Ipv6Addr::read_at(&[1; 15], 0), Ipv6Addr::UNSPECIFIED);
    }
}
