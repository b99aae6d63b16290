//! Watched prefixes' per-record work, batched. On a busy network every prefix is watched (its
//! carpet residue sits above the watch level), so each record also updates a prefix detail: class
//! counts and a fingerprint, several cache lines of one of hundreds of ~12 KiB details. Done per
//! record, that is a chain of misses (host → prefix → detail → sketches) the record path cannot
//! hide. Nothing reads a prefix detail between a bucket's records except early judgements, so the
//! record path only notes which records go to which detail, and a flush applies them detail by
//! detail, in each detail's record order (results are identical): a detail's lines are fetched
//! once per batch instead of once per record.

use floodwall_wire::FlowRecord;

use crate::counters::{class_slot, remote_hash, RecordClass};

use super::{Engine, IN, NONE};

/// Records of the current batch waiting for their prefix details, chained per detail.
#[derive(Debug, Default)]
pub(super) struct Deferred {
    /// Per detail id: its chain's first and last entry, `NONE` without one.
    heads: Vec<u32>,
    tails: Vec<u32>,
    /// Per entry: the record's index in the batch and the detail's next entry.
    entries: Vec<(u32, u32)>,
    /// Details with a chain, in the order of their first record.
    touched: Vec<u32>,
}

impl Deferred {
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Notes that record `record` of the batch goes to detail `id`.
    #[inline]
    pub(super) fn push(&mut self, id: u32, record: u32) {
        let i = id as usize;
        if i >= self.heads.len() {
            self.heads.resize(i + 1, NONE);
            self.tails.resize(i + 1, NONE);
        }
        let e = self.entries.len() as u32;
        self.entries.push((record, NONE));
        if self.heads[i] == NONE {
            self.heads[i] = e;
            self.touched.push(id);
        } else {
            self.entries[self.tails[i] as usize].1 = e;
        }
        self.tails[i] = e;
    }
}

impl Engine {
    /// Applies the deferred records of `records` (the batch they were noted from) to their
    /// prefix details. Must run before anything reads a prefix detail: a bucket close, an early
    /// judgement, the end of the batch.
    pub(super) fn flush_deferred(&mut self, records: &[FlowRecord]) {
        if self.deferred.is_empty() {
            return;
        }
        let mut deferred = std::mem::take(&mut self.deferred);
        let b = self.open;
        let touched = std::mem::take(&mut deferred.touched);
        for (n, &id) in touched.iter().enumerate() {
            // The detail's own lines well ahead, then (they are in cache by then) the sketch
            // lines its pointers lead to.
            if let Some(&ahead) = touched.get(n + 4) {
                self.prefetch_detail(ahead);
            }
            if let Some(&next) = touched.get(n + 2) {
                self.prefetch_deferred(next, &deferred, records);
            }
            let mut e = std::mem::replace(&mut deferred.heads[id as usize], NONE);
            let Some(Some(detail)) = self.details.get_mut(id as usize) else {
                continue;
            };
            let incoming = detail.dir == IN;
            let fingerprinting = self.fingerprinting && incoming;
            let slot = class_slot(&mut detail.ring, b);
            while e != NONE {
                let (i, next) = deferred.entries[e as usize];
                e = next;
                let Some(r) = records.get(i as usize) else {
                    continue;
                };
                let remote = if incoming { r.src } else { r.dst };
                slot.add(r, &RecordClass::of(r), incoming, remote_hash(remote));
                if fingerprinting {
                    detail.fingerprint.observe(r, remote);
                }
            }
        }
        deferred.touched = touched;
        deferred.touched.clear();
        deferred.entries.clear();
        self.deferred = deferred;
    }

    /// The fingerprint lines the flush of detail `id` touches first: its exact counts and the
    /// sketch line of its first record's remote.
    #[inline]
    fn prefetch_deferred(&self, id: u32, deferred: &Deferred, records: &[FlowRecord]) {
        let Some(Some(detail)) = self.details.get(id as usize) else {
            return;
        };
        let first = deferred.heads[id as usize];
        if let Some(r) = deferred
            .entries
            .get(first as usize)
            .and_then(|&(i, _)| records.get(i as usize))
        {
            let remote = if detail.dir == IN { r.src } else { r.dst };
            detail.fingerprint.prefetch(remote);
        }
    }
}
