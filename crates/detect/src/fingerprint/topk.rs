//! Weighted Space-Saving (Metwally, Agrawal, El Abbadi 2005): heavy hitters in fixed memory.
//!
//! `N` counters; a key not present replaces the smallest counter, inheriting its count as
//! over-estimation error. Any key with more than `total / N` of the weight is guaranteed to be
//! present, and `count - error` is a guaranteed lower bound on its true weight. We report that
//! lower bound: under a flood of millions of one-packet sources the evicted-and-replaced slots
//! carry counts near `total / N` but almost none of it is theirs, and reporting the upper bound
//! would list random addresses as top talkers.
//!
//! Layout is for the per-record path, which under a spoofed flood is almost always a miss:
//! - keys are matched through a parallel `[u32; N]` of tags (the key itself for small keys, a
//!   hash for addresses), a branch-free compare the compiler vectorises even on baseline SSE2;
//!   a tag hit is confirmed against the full key, so tag collisions cost time, never accuracy;
//! - counters form a binary min-heap, so the slot to evict is always the heap's root and keeping
//!   order after an update is a sift-down of at most log2(N) steps instead of a scan for the
//!   minimum. The heap holds one-byte slot numbers: sifting moves those, not 16-byte keys (under a
//!   spoofed flood every record evicts the root and sifts).
//!
//! No hashing with a random seed and no hash map: results depend only on the input order.

#[derive(Clone)]
pub(crate) struct TopK<K, const N: usize> {
    tags: [u32; N],
    keys: [K; N],
    counts: [u64; N],
    errors: [u64; N],
    /// Min-heap of the first `len` slots by count: `heap[i]` is a slot, `pos[slot]` its place.
    heap: [u8; N],
    pos: [u8; N],
    len: usize,
}

impl<K: Copy + Eq + Ord + Default, const N: usize> TopK<K, N> {
    pub(crate) fn new() -> Self {
        const { assert!(N <= 256, "slot numbers are bytes") };
        TopK {
            tags: [0; N],
            keys: [K::default(); N],
            counts: [0; N],
            errors: [0; N],
            heap: [0; N],
            pos: [0; N],
            len: 0,
        }
    }

    /// Adds `weight` to `key`; `tag` must be a pure function of `key`.
    #[inline]
    pub(crate) fn add(&mut self, key: K, tag: u32, weight: u64) {
        if let Some(slot) = self.find(key, tag) {
            self.counts[slot] = self.counts[slot].saturating_add(weight);
            self.sift_down(usize::from(self.pos[slot]));
            return;
        }
        if self.len < N {
            let i = self.len;
            self.len += 1;
            self.set(i, key, tag, weight, 0);
            self.heap[i] = i as u8;
            self.pos[i] = i as u8;
            self.sift_up(i);
        } else {
            // Evict the minimum; its count becomes the newcomer's possible over-estimate.
            let slot = usize::from(self.heap[0]);
            let min = self.counts[slot];
            self.set(slot, key, tag, min.saturating_add(weight), min);
            self.sift_down(0);
        }
    }

    /// The slot holding `key`. The common cases — no tag matches, or exactly one — are an
    /// OR-reduction of `index + 1` over matching tags, which vectorises to a few SSE2 compares;
    /// several matches OR into garbage, which the key check catches and a plain scan resolves.
    #[inline]
    fn find(&self, key: K, tag: u32) -> Option<usize> {
        let len = self.len;
        let mut found = 0usize;
        for (i, &t) in self.tags.iter().enumerate() {
            found |= if t == tag && i < len { i + 1 } else { 0 };
        }
        if found == 0 {
            return None;
        }
        let i = found - 1;
        if i < len && self.keys[i] == key {
            return Some(i);
        }
        (0..len).find(|&i| self.tags[i] == tag && self.keys[i] == key)
    }

    #[inline]
    fn set(&mut self, i: usize, key: K, tag: u32, count: u64, error: u64) {
        self.keys[i] = key;
        self.tags[i] = tag;
        self.counts[i] = count;
        self.errors[i] = error;
    }

    /// Count of the slot at heap place `i`.
    #[inline]
    fn count_at(&self, i: usize) -> u64 {
        self.counts[usize::from(self.heap[i])]
    }

    /// Swaps heap places `a` and `b`.
    #[inline]
    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.pos[usize::from(self.heap[a])] = a as u8;
        self.pos[usize::from(self.heap[b])] = b as u8;
    }

    #[inline]
    fn sift_down(&mut self, mut i: usize) {
        let count = self.count_at(i);
        loop {
            let l = 2 * i + 1;
            if l >= self.len {
                return;
            }
            let r = l + 1;
            let c = if r < self.len && self.count_at(r) < self.count_at(l) {
                r
            } else {
                l
            };
            if self.count_at(c) >= count {
                return;
            }
            self.swap(i, c);
            i = c;
        }
    }

    #[inline]
    fn sift_up(&mut self, mut i: usize) {
        let count = self.count_at(i);
        while i > 0 {
            let p = (i - 1) / 2;
            if self.count_at(p) <= count {
                return;
            }
            self.swap(i, p);
            i = p;
        }
    }

    /// Hints the CPU to fetch what an `add` reads first: the tags it scans and the counts.
    #[inline]
    pub(crate) fn prefetch(&self) {
        for tags in self.tags.chunks(16) {
            crate::prefetch::prefetch(&tags[0]);
        }
        crate::prefetch::prefetch(&self.heap);
    }

    /// Copies every key's guaranteed weight into `out`, unsorted: taken at every bucket close
    /// of a watched target, so it must cost a copy, not a sort.
    pub(crate) fn weights_into(&self, out: &mut Weights<K, N>) {
        out.len = self.len;
        for i in 0..self.len {
            out.keys[i] = self.keys[i];
            out.weights[i] = self.counts[i] - self.errors[i];
        }
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

/// A sketch's keys and guaranteed weights at one moment (see [`TopK::weights_into`]).
#[derive(Clone, Copy)]
pub(crate) struct Weights<K, const N: usize> {
    keys: [K; N],
    weights: [u64; N],
    len: usize,
}

impl<K: Copy + Eq + Ord + Default, const N: usize> Default for Weights<K, N> {
    fn default() -> Self {
        Weights {
            keys: [K::default(); N],
            weights: [0; N],
            len: 0,
        }
    }
}

impl<K: Copy + Eq + Ord + Default, const N: usize> Weights<K, N> {
    /// The weight `key` had (0 when it was not kept).
    pub(crate) fn get(&self, key: K) -> u64 {
        (0..self.len)
            .find(|&i| self.keys[i] == key)
            .map_or(0, |i| self.weights[i])
    }

    /// Up to `n` keys with a non-zero weight, heaviest first, ties by key ascending.
    pub(crate) fn top(&self, n: usize) -> Vec<(K, u64)> {
        let mut v: Vec<(K, u64)> = (0..self.len)
            .map(|i| (self.keys[i], self.weights[i]))
            .filter(|&(_, w)| w > 0)
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
    fn weights_are_a_copy_that_reads_like_top() {
        let mut t = TopK::<u16, 8>::new();
        for (k, w) in [(0, 5), (7, 1), (0, 2), (3, 9), (7, 1), (9, 7), (4, 3)] {
            t.add(k, u32::from(k), w);
        }
        let mut copy = Weights::default();
        t.weights_into(&mut copy);
        t.add(3, 3, 100);
        assert_eq!(copy.top(3), vec![(3, 9), (0, 7), (9, 7)]);
        assert_eq!(copy.get(7), 2);
        assert_eq!(copy.get(42), 0);
    }

    #[test]
    fn exact_below_capacity() {
        let mut t = TopK::<u16, 4>::new();
        for (k, w) in [(0, 5), (7, 1), (0, 2), (3, 9), (7, 1)] {
            t.add(k, u32::from(k), w);
        }
        assert_eq!(t.top(10), vec![(3, 9), (0, 7), (7, 2)]);
        assert_eq!(t.top(1), vec![(3, 9)]);
    }

    #[test]
    fn default_key_is_not_confused_with_empty_slots() {
        let mut t = TopK::<u8, 8>::new();
        t.add(0, 0, 1);
        t.add(0, 0, 1);
        assert_eq!(t.top(10), vec![(0, 2)]);
    }

    #[test]
    fn heavy_key_survives_churn() {
        let mut t = TopK::<u32, 8>::new();
        for i in 0..100_000u32 {
            t.add(i + 1000, i + 1000, 1);
            if i % 4 == 0 {
                t.add(1, 1, 1);
            }
        }
        let top = t.top(1);
        assert_eq!(top[0].0, 1);
        assert!(top[0].1 >= 24_000 && top[0].1 <= 25_000, "{top:?}");
    }

    #[test]
    fn tag_collisions_do_not_merge_keys() {
        let mut t = TopK::<u32, 4>::new();
        for (k, w) in [(10, 1), (20, 2), (10, 4), (30, 8), (20, 16)] {
            t.add(k, 7, w);
        }
        assert_eq!(t.top(10), vec![(20, 18), (30, 8), (10, 5)]);
    }

    /// The heap keeps Space-Saving exact: against a brute-force model with the same
    /// eviction rule (a minimum goes), totals and the guaranteed bounds hold.
    #[test]
    fn bounds_hold_under_random_weights() {
        let mut t = TopK::<u16, 8>::new();
        let mut truth = std::collections::BTreeMap::<u16, u64>::new();
        let mut x = 1u64;
        for _ in 0..50_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = (x % 40) as u16 % ((x >> 20) % 40 + 1) as u16;
            let w = 1 + (x >> 32) % 100;
            t.add(k, u32::from(k), w);
            *truth.entry(k).or_default() += w;
            for i in 0..t.len {
                assert!(t.count_at((i.max(1) - 1) / 2) <= t.count_at(i));
                assert_eq!(usize::from(t.pos[usize::from(t.heap[i])]), i);
            }
        }
        let total: u64 = truth.values().sum();
        assert_eq!(t.counts.iter().sum::<u64>(), total);
        for i in 0..t.len {
            let real = truth[&t.keys[i]];
            assert!(t.counts[i] - t.errors[i] <= real && real <= t.counts[i]);
        }
        for (k, &real) in &truth {
            if real > total / 8 {
                assert!(t.keys[..t.len].contains(k), "{k} lost");
            }
        }
    }
}
