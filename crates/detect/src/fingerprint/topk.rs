//! Weighted Space-Saving (Metwally, Agrawal, El Abbadi 2005): heavy hitters in fixed memory.
//!
//! `N` counters; a key not present replaces the smallest counter, inheriting its count as
//! over-estimation error. Any key with more than `total / N` of the weight is guaranteed to be
//! present, and `count - error` is a guaranteed lower bound on its true weight. We report that
//! lower bound: under a flood of millions of one-packet sources the evicted-and-replaced slots
//! carry counts near `total / N` but almost none of it is theirs, and reporting the upper bound
//! would list random addresses as top talkers.
//!
//! Struct-of-arrays and branch-free scans so the per-record lookup vectorises; no hashing, so
//! results depend only on the order of the input, never on a hasher seed.

#[derive(Clone)]
pub(crate) struct TopK<K, const N: usize> {
    keys: [K; N],
    counts: [u64; N],
    errors: [u64; N],
    len: usize,
}

impl<K: Copy + Eq + Ord + Default, const N: usize> TopK<K, N> {
    const FITS_MASK: () = assert!(N <= 64 && N > 0);

    pub(crate) fn new() -> Self {
        let () = Self::FITS_MASK;
        TopK {
            keys: [K::default(); N],
            counts: [0; N],
            errors: [0; N],
            len: 0,
        }
    }

    #[inline]
    pub(crate) fn add(&mut self, key: K, weight: u64) {
        let mut hits = 0u64;
        for (i, k) in self.keys.iter().enumerate() {
            hits |= u64::from(*k == key) << i;
        }
        // Unused slots hold `K::default()`, which may equal `key`.
        hits &= u64::MAX
            .checked_shl(self.len as u32)
            .map_or(u64::MAX, |m| !m);
        if hits != 0 {
            let i = hits.trailing_zeros() as usize;
            self.counts[i] = self.counts[i].saturating_add(weight);
            return;
        }
        let i = if self.len < N {
            self.len += 1;
            self.len - 1
        } else {
            self.min_slot()
        };
        self.keys[i] = key;
        self.errors[i] = self.counts[i];
        self.counts[i] = self.counts[i].saturating_add(weight);
    }

    /// The first slot with the smallest count (first, so eviction is deterministic).
    #[inline]
    fn min_slot(&self) -> usize {
        let min = self.counts.iter().copied().min().unwrap_or(0);
        self.counts.iter().position(|&c| c == min).unwrap_or(0)
    }

    /// Up to `n` keys with a non-zero guaranteed weight, heaviest first, ties by key ascending.
    pub(crate) fn top(&self, n: usize) -> Vec<(K, u64)> {
        let mut v: Vec<(K, u64)> = (0..self.len)
            .map(|i| (self.keys[i], self.counts[i] - self.errors[i]))
            .filter(|&(_, c)| c > 0)
            .collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_below_capacity() {
        let mut t = TopK::<u16, 4>::new();
        for (k, w) in [(0, 5), (7, 1), (0, 2), (3, 9), (7, 1)] {
            t.add(k, w);
        }
        assert_eq!(t.top(10), vec![(3, 9), (0, 7), (7, 2)]);
        assert_eq!(t.top(1), vec![(3, 9)]);
    }

    #[test]
    fn default_key_is_not_confused_with_empty_slots() {
        let mut t = TopK::<u8, 8>::new();
        t.add(0, 1);
        t.add(0, 1);
        assert_eq!(t.top(10), vec![(0, 2)]);
    }

    #[test]
    fn heavy_key_survives_churn() {
        let mut t = TopK::<u32, 8>::new();
        for i in 0..100_000u32 {
            t.add(i + 1000, 1);
            if i % 4 == 0 {
                t.add(1, 1);
            }
        }
        let top = t.top(1);
        assert_eq!(top[0].0, 1);
        assert!(top[0].1 >= 24_000 && top[0].1 <= 25_000, "{top:?}");
    }
}
