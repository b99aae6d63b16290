//! Monitored address → host slab index: an open-addressing table (linear probing, backward-shift
//! deletion) with a keyed hash.
//!
//! Hand-rolled rather than `HashMap` for one reason: ingest is bound by cache misses on 100k+
//! hosts, and knowing where a key's slot lives lets the engine prefetch it a few records ahead.

use std::hash::BuildHasher;
use std::net::IpAddr;

use foldhash::fast::RandomState;

const EMPTY: u32 = u32::MAX;
/// Marks an IPv4 key in `Slot::tag`, so an IPv4 address never equals an IPv6 one.
const V4: u32 = 1;

/// 24 bytes.
#[derive(Debug, Clone, Copy)]
struct Slot {
    hi: u64,
    lo: u64,
    value: u32,
    tag: u32,
}

const FREE: Slot = Slot {
    hi: 0,
    lo: 0,
    value: EMPTY,
    tag: 0,
};

/// A key as stored: 128 bits of address plus the family tag.
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
}

#[derive(Debug, Clone)]
pub(crate) struct AddrMap {
    slots: Vec<Slot>,
    mask: usize,
    len: usize,
    hasher: RandomState,
}

impl Default for AddrMap {
    fn default() -> Self {
        AddrMap {
            slots: vec![FREE; 16],
            mask: 15,
            len: 0,
            hasher: RandomState::default(),
        }
    }
}

impl AddrMap {
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn home(&self, key: Key) -> usize {
        let h = self
            .hasher
            .hash_one(key.bits ^ (u128::from(key.tag) << 127));
        h as usize & self.mask
    }

    #[inline]
    fn matches(slot: &Slot, key: Key) -> bool {
        slot.value != EMPTY
            && slot.tag == key.tag
            && slot.hi == (key.bits >> 64) as u64
            && slot.lo == key.bits as u64
    }

    /// Hints the CPU to fetch the slot where `key`'s probe starts.
    #[inline]
    pub fn prefetch(&self, key: Key) {
        crate::prefetch::prefetch(&self.slots[self.home(key)]);
    }

    #[inline]
    pub fn get(&self, key: Key) -> Option<u32> {
        let mut i = self.home(key);
        loop {
            let slot = &self.slots[i];
            if slot.value == EMPTY {
                return None;
            }
            if Self::matches(slot, key) {
                return Some(slot.value);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Inserts a key that is not present.
    pub fn insert(&mut self, key: Key, value: u32) {
        debug_assert!(value != EMPTY && self.get(key).is_none());
        // Load factor at most 3/4.
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        self.place(key, value);
        self.len += 1;
    }

    fn place(&mut self, key: Key, value: u32) {
        let mut i = self.home(key);
        while self.slots[i].value != EMPTY {
            i = (i + 1) & self.mask;
        }
        self.slots[i] = Slot {
            hi: (key.bits >> 64) as u64,
            lo: key.bits as u64,
            value,
            tag: key.tag,
        };
    }

    fn grow(&mut self) {
        let size = self.slots.len() * 2;
        let old = std::mem::replace(&mut self.slots, vec![FREE; size]);
        self.mask = self.slots.len() - 1;
        for s in old.into_iter().filter(|s| s.value != EMPTY) {
            let key = Key {
                bits: (u128::from(s.hi) << 64) | u128::from(s.lo),
                tag: s.tag,
            };
            self.place(key, s.value);
        }
    }

    pub fn remove(&mut self, key: Key) -> Option<u32> {
        let mut i = self.home(key);
        loop {
            let slot = &self.slots[i];
            if slot.value == EMPTY {
                return None;
            }
            if Self::matches(slot, key) {
                break;
            }
            i = (i + 1) & self.mask;
        }
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
            let home = self.home(Key {
                bits: (u128::from(s.hi) << 64) | u128::from(s.lo),
                tag: s.tag,
            });
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
        self.slots[hole] = FREE;
        Some(removed)
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
        for step in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // A small key space so inserts, hits and removals all happen often.
            let n = (x % 3000) as u32;
            let addr: IpAddr = if n % 2 == 0 {
                std::net::Ipv4Addr::from(n).into()
            } else {
                std::net::Ipv6Addr::from(u128::from(n)).into()
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
    }
}
