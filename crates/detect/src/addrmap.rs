//! Monitored address → host slab index.
//!
//! Ingest is bound by cache misses on a million hosts, so this is laid out for the cache rather
//! than taken from `HashMap`:
//!
//! - IPv4 addresses are grouped in blocks of 16 neighbours (a /28): a small keyed hash table maps
//!   the block to a 64-byte page of 16 host indices. Operators' address space is dense (customer
//!   pools, hosting ranges), so a million active IPv4 hosts need ~65,000 pages (4 MiB) and a
//!   ~1 MiB table, which stay in the CPU cache where a per-address table (48 MiB) could not. A
//!   lone host in its block costs one page (64 bytes), so memory stays bounded by the host count.
//! - IPv6 addresses (sparse by nature) go in an open-addressing table of 24-byte slots.
//!
//! Both tables use linear probing with backward-shift deletion and a keyed hash (the keys are
//! attacker-controlled addresses). Knowing where a key lives lets the engine prefetch it a few
//! records ahead: [`AddrMap::prefetch`] fetches the table slot, [`AddrMap::prefetch_entry`] then
//! the IPv4 page it points to.

use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;

use foldhash::fast::RandomState;

const EMPTY: u32 = u32::MAX;
/// Marks an IPv4 key in `Key::tag`, so an IPv4 address never equals an IPv6 one.
const V4: u32 = 1;
/// IPv4 addresses per page: 16 × 4 bytes, one cache line.
const PAGE_BITS: u32 = 4;
const PAGE: usize = 1 << PAGE_BITS;

/// A key as given by the engine: 128 bits of address plus the family tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    bits: u128,
    tag: u32,
}

impl Key {
    #[inline]
    pub fn of(addr: IpAddr) -> Key {
        match addr {
            IpAddr::V4(a) => Key {
                bits: u128::from(u32::from(a)),
                tag: V4,
            },
            IpAddr::V6(a) => Key {
                bits: u128::from(a),
                tag: 0,
            },
        }
    }

    /// The IPv4 address, or `None` for IPv6.
    #[inline]
    fn v4(self) -> Option<u32> {
        (self.tag == V4).then_some(self.bits as u32)
    }

    /// IPv6 keys as stored: two halves keep the slot at 24 bytes (a `u128` would align it to 32).
    #[inline]
    fn v6(self) -> (u64, u64) {
        ((self.bits >> 64) as u64, self.bits as u64)
    }
}

#[derive(Debug, Clone, Copy)]
struct Slot<K> {
    key: K,
    /// `EMPTY` for a free slot.
    value: u32,
}

/// An open-addressing table of `K → u32` (linear probing, load at most 3/4).
#[derive(Debug, Clone)]
struct Table<K> {
    slots: Vec<Slot<K>>,
    mask: usize,
    len: usize,
    hasher: RandomState,
}

impl<K: Copy + Eq + Hash + Default> Default for Table<K> {
    fn default() -> Self {
        Table {
            slots: vec![Self::free(); 16],
            mask: 15,
            len: 0,
            hasher: RandomState::default(),
        }
    }
}

impl<K: Copy + Eq + Hash + Default> Table<K> {
    /// A free slot (its key is never read).
    fn free() -> Slot<K> {
        Slot {
            key: K::default(),
            value: EMPTY,
        }
    }

    #[inline]
    fn home(&self, key: K) -> usize {
        self.hasher.hash_one(key) as usize & self.mask
    }

    #[inline]
    fn prefetch(&self, key: K) {
        crate::prefetch::prefetch(&self.slots[self.home(key)]);
    }

    #[inline]
    fn find(&self, key: K) -> Option<usize> {
        let mut i = self.home(key);
        loop {
            let slot = &self.slots[i];
            if slot.value == EMPTY {
                return None;
            }
            if slot.key == key {
                return Some(i);
            }
            i = (i + 1) & self.mask;
        }
    }

    #[inline]
    fn get(&self, key: K) -> Option<u32> {
        self.find(key).map(|i| self.slots[i].value)
    }

    /// Inserts a key that is not present.
    fn insert(&mut self, key: K, value: u32) {
        debug_assert!(value != EMPTY && self.find(key).is_none());
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        self.place(key, value);
        self.len += 1;
    }

    fn place(&mut self, key: K, value: u32) {
        let mut i = self.home(key);
        while self.slots[i].value != EMPTY {
            i = (i + 1) & self.mask;
        }
        self.slots[i] = Slot { key, value };
    }

    fn grow(&mut self) {
        let size = self.slots.len() * 2;
        let old = std::mem::replace(&mut self.slots, vec![Self::free(); size]);
        self.mask = size - 1;
        for s in old.into_iter().filter(|s| s.value != EMPTY) {
            self.place(s.key, s.value);
        }
    }

    fn remove(&mut self, key: K) -> Option<u32> {
        let i = self.find(key)?;
        let removed = self.slots[i].value;
        self.len -= 1;
        // Backward-shift deletion: move later members of the probe run into the hole.
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let s = self.slots[j];
            if s.value == EMPTY {
                break;
            }
            let home = self.home(s.key);
            // Movable when its home is not cyclically within (hole, j].
            let within = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !within {
                self.slots[hole] = s;
                hole = j;
            }
        }
        self.slots[hole] = Self::free();
        Some(removed)
    }
}

/// Host indices of 16 neighbouring IPv4 addresses.
#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
struct Page([u32; PAGE]);

#[derive(Debug, Clone, Default)]
pub(crate) struct AddrMap {
    /// IPv4 block (address >> `PAGE_BITS`) → index into `pages`.
    blocks: Table<u32>,
    pages: Vec<Page>,
    free_pages: Vec<u32>,
    v6: Table<(u64, u64)>,
    len: usize,
}

impl AddrMap {
    pub fn len(&self) -> usize {
        self.len
    }

    /// Hints the CPU to fetch the table slot where `key`'s probe starts.
    #[inline]
    pub fn prefetch(&self, key: Key) {
        match key.v4() {
            Some(a) => self.blocks.prefetch(a >> PAGE_BITS),
            None => self.v6.prefetch(key.v6()),
        }
    }

    /// Hints the CPU to fetch the IPv4 page of `key` (reading the slot prefetched earlier).
    #[inline]
    pub fn prefetch_entry(&self, key: Key) {
        if let Some(a) = key.v4() {
            if let Some(p) = self.blocks.get(a >> PAGE_BITS) {
                crate::prefetch::prefetch(&self.pages[p as usize]);
            }
        }
    }

    #[inline]
    pub fn get(&self, key: Key) -> Option<u32> {
        match key.v4() {
            Some(a) => {
                let p = self.blocks.get(a >> PAGE_BITS)?;
                let v = self.pages[p as usize].0[a as usize % PAGE];
                (v != EMPTY).then_some(v)
            }
            None => self.v6.get(key.v6()),
        }
    }

    /// Inserts a key that is not present.
    pub fn insert(&mut self, key: Key, value: u32) {
        debug_assert!(value != EMPTY && self.get(key).is_none());
        match key.v4() {
            Some(a) => {
                let block = a >> PAGE_BITS;
                let p = match self.blocks.get(block) {
                    Some(p) => p,
                    None => {
                        let p = match self.free_pages.pop() {
                            Some(p) => p,
                            None => {
                                self.pages.push(Page([EMPTY; PAGE]));
                                (self.pages.len() - 1) as u32
                            }
                        };
                        self.blocks.insert(block, p);
                        p
                    }
                };
                self.pages[p as usize].0[a as usize % PAGE] = value;
            }
            None => self.v6.insert(key.v6(), value),
        }
        self.len += 1;
    }

    pub fn remove(&mut self, key: Key) -> Option<u32> {
        let removed = match key.v4() {
            Some(a) => {
                let block = a >> PAGE_BITS;
                let p = self.blocks.get(block)?;
                let page = &mut self.pages[p as usize].0;
                let v = std::mem::replace(&mut page[a as usize % PAGE], EMPTY);
                if v == EMPTY {
                    return None;
                }
                if page.iter().all(|&e| e == EMPTY) {
                    self.blocks.remove(block);
                    self.free_pages.push(p);
                }
                v
            }
            None => self.v6.remove(key.v6())?,
        };
        self.len -= 1;
        Some(removed)
    }

    /// IPv4 pages in use (for tests of the memory bound).
    #[cfg(test)]
    fn pages_in_use(&self) -> usize {
        self.pages.len() - self.free_pages.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn behaves_like_a_map() {
        let mut map = AddrMap::default();
        let mut model = HashMap::new();
        let mut x = 0x1234_5678_u64;
        for step in 0..40_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // A small key space so inserts, hits, removals and shared IPv4 pages all happen often.
            let n = (x % 3000) as u32;
            let addr: IpAddr = match n % 3 {
                0 => std::net::Ipv4Addr::from(n).into(),
                1 => std::net::Ipv4Addr::from(n << 20).into(),
                _ => std::net::Ipv6Addr::from(u128::from(n)).into(),
            };
            let key = Key::of(addr);
            match (x >> 20) % 3 {
                0 | 1 => {
                    if let std::collections::hash_map::Entry::Vacant(e) = model.entry(addr) {
                        map.insert(key, step);
                        e.insert(step);
                    }
                }
                _ => assert_eq!(map.remove(key), model.remove(&addr)),
            }
            assert_eq!(map.get(key), model.get(&addr).copied());
            assert_eq!(map.len(), model.len());
        }
        for (addr, v) in &model {
            assert_eq!(map.get(Key::of(*addr)), Some(*v));
        }
        // IPv4 1.2.3.4 and IPv6 ::102:304 are different keys.
        let v4: IpAddr = "1.2.3.4".parse().unwrap();
        let v6: IpAddr = "::102:304".parse().unwrap();
        let mut m = AddrMap::default();
        m.insert(Key::of(v4), 1);
        assert_eq!(m.get(Key::of(v6)), None);
        assert_eq!(m.remove(Key::of(v6)), None);
    }

    #[test]
    fn ipv4_pages_are_shared_by_neighbours_and_freed_when_empty() {
        let mut map = AddrMap::default();
        let addr = |i: u32| Key::of(std::net::Ipv4Addr::from(0x0a00_0000 + i).into());
        for i in 0..64 {
            map.insert(addr(i), i);
        }
        // 64 neighbours: four pages. A lone host elsewhere: one more.
        assert_eq!(map.pages_in_use(), 4);
        map.insert(addr(1 << 16), 99);
        assert_eq!(map.pages_in_use(), 5);
        for i in 0..16 {
            assert_eq!(map.remove(addr(i)), Some(i));
        }
        assert_eq!(map.pages_in_use(), 4);
        assert_eq!(map.get(addr(3)), None);
        assert_eq!(map.get(addr(17)), Some(17));
        // The freed page is reused.
        map.insert(addr(1 << 20), 7);
        assert_eq!((map.pages_in_use(), map.pages.len()), (5, 5));
        assert_eq!(map.len(), 50);
    }
}
