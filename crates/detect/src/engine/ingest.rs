//! The record path: records in, telemetry time advanced, every monitored side of a record
//! accounted (its hostgroup, its host, its prefix's carpet residue, its prefix, and the detailed
//! counters and fingerprint of watched targets). Memory latency bound on many hosts, so entries
//! are prefetched a few records ahead; nothing here allocates or locks per record.

use std::net::IpAddr;

use floodwall_wire::FlowRecord;

use crate::addrmap::Key;
use crate::counters::{class_slot, pk, remote_hash, tally_slot, RecordClass, Tally, SLOTS};
use crate::partition::{RecordMeta, OWNS_DST, OWNS_SRC};
use crate::prefetch::prefetch;
use crate::AttackEvent;

use super::entries::{Owner, IN_RESIDUE};
use super::limits::running_over_watch;
use super::{Engine, IN, NONE, OUT};

/// How many records ahead ingest prefetches host entries (map slots twice as far).
pub(super) const PREFETCH_AHEAD: usize = 16;

/// Sampled packets of a watched target's bucket up to which an early start is judged at every
/// record; past them, each time the evidence has grown by a quarter.
const EARLY_EVERY: u32 = 32;

/// Records whose hostgroup lookups are in flight: more than `2 * PREFETCH_AHEAD`.
const LOOKAHEAD_RING: usize = 64;

/// Hostgroups of a record's destination and source, `None` when not monitored.
type Sides = (Option<u16>, Option<u16>);

impl Engine {
    /// Accounts records. Telemetry time advances with the records' `time_ms`; crossing a bucket
    /// boundary closes the bucket and runs detection, appending events. Records older than the
    /// open bucket (late flows) are counted in the open bucket.
    pub fn ingest(&mut self, records: &[FlowRecord], events: &mut Vec<AttackEvent>) {
        self.ingest_with::<false>(records, &[], events, &mut Vec::new());
    }

    /// A shard's records: `meta[i]` holds the whole stream's clock at record `i` (its running
    /// maximum, which the engine would have reached) and the sides of it this shard owns.
    /// Pushes `(i, events.len())` to `marks` after each record `i` that added events.
    pub(crate) fn ingest_shard(
        &mut self,
        records: &[FlowRecord],
        meta: &[RecordMeta],
        events: &mut Vec<AttackEvent>,
        marks: &mut Vec<(u32, u32)>,
    ) {
        self.ingest_with::<true>(records, meta, events, marks);
    }

    /// `SHARD` decides at compile time whether `meta` and `marks` are used: the unsharded
    /// record path stays as it was.
    #[inline(always)]
    fn ingest_with<const SHARD: bool>(
        &mut self,
        records: &[FlowRecord],
        meta: &[RecordMeta],
        events: &mut Vec<AttackEvent>,
        marks: &mut Vec<(u32, u32)>,
    ) {
        // Sides of other shards are not this engine's: as if unmonitored.
        let sides_of = |engine: &Engine, j: usize, r: &FlowRecord| {
            let (dst, src) = engine.sides(r);
            if SHARD {
                let owned = meta.get(j).map_or(0, |m| m.owned);
                (
                    dst.filter(|_| owned & OWNS_DST != 0),
                    src.filter(|_| owned & OWNS_SRC != 0),
                )
            } else {
                (dst, src)
            }
        };
        // Memory-latency bound on many hosts: fetch map slots 2 × PREFETCH_AHEAD records ahead,
        // the map entries they point to 1.5 × ahead, host entries PREFETCH_AHEAD ahead, their
        // prefixes and details ½ ahead, watched targets' sketches ¼ and ⅛ ahead. Each record's
        // hostgroups are looked up once, at the first stage, and kept in a small ring until the
        // record is accounted.
        if self.cache_resident {
            // Few targets, all in cache: prefetching would only look everything up twice.
            for (i, r) in records.iter().enumerate() {
                self.stats.records += 1;
                let before = events.len();
                self.advance(clock_of::<SHARD>(meta, i, r), events);
                let s = sides_of(self, i, r);
                self.account(r, s, (NONE, NONE));
                self.after_record::<SHARD>(i, before, events, marks);
            }
            return;
        }
        let mut sides = [(None, None); LOOKAHEAD_RING];
        // Host entries found when prefetching, `NONE` if not (yet) there; checked before use.
        let mut found = [(NONE, NONE); LOOKAHEAD_RING];
        for (j, r) in records.iter().take(2 * PREFETCH_AHEAD).enumerate() {
            sides[j % LOOKAHEAD_RING] = sides_of(self, j, r);
        }
        for (i, r) in records.iter().enumerate() {
            if let Some(ahead) = records.get(i + 2 * PREFETCH_AHEAD) {
                let s = sides_of(self, i + 2 * PREFETCH_AHEAD, ahead);
                sides[(i + 2 * PREFETCH_AHEAD) % LOOKAHEAD_RING] = s;
                self.prefetch_slots(ahead, s);
            }
            if let Some(ahead) = records.get(i + PREFETCH_AHEAD * 3 / 2) {
                self.prefetch_entries(ahead, sides[(i + PREFETCH_AHEAD * 3 / 2) % LOOKAHEAD_RING]);
            }
            if let Some(ahead) = records.get(i + PREFETCH_AHEAD) {
                let j = (i + PREFETCH_AHEAD) % LOOKAHEAD_RING;
                found[j] = self.prefetch_hosts(ahead, sides[j]);
            }
            if records.len() > i + PREFETCH_AHEAD / 2 {
                self.prefetch_prefixes(found[(i + PREFETCH_AHEAD / 2) % LOOKAHEAD_RING]);
            }
            if let Some(ahead) = records.get(i + PREFETCH_AHEAD / 4) {
                self.prefetch_watched(ahead, found[(i + PREFETCH_AHEAD / 4) % LOOKAHEAD_RING]);
            }
            if let Some(ahead) = records.get(i + PREFETCH_AHEAD / 8) {
                let j = (i + PREFETCH_AHEAD / 8) % LOOKAHEAD_RING;
                self.prefetch_prefix_fingerprints(ahead, found[j]);
            }
            self.stats.records += 1;
            let evicted = self.stats.hosts_evicted;
            let before = events.len();
            self.advance(clock_of::<SHARD>(meta, i, r), events);
            if self.stats.hosts_evicted != evicted {
                // Freed entries may be reused for other addresses: look up again.
                found = [(NONE, NONE); LOOKAHEAD_RING];
            }
            self.account(r, sides[i % LOOKAHEAD_RING], found[i % LOOKAHEAD_RING]);
            self.after_record::<SHARD>(i, before, events, marks);
        }
    }

    /// After record `i` is accounted: the attacks it started or confirmed early, reported at
    /// the engine's clock (a late record does not date the report back); on a shard, where
    /// the record's events end.
    #[inline(always)]
    fn after_record<const SHARD: bool>(
        &mut self,
        i: usize,
        before: usize,
        events: &mut Vec<AttackEvent>,
        marks: &mut Vec<(u32, u32)>,
    ) {
        if !self.early_starts.is_empty() {
            self.start_early(self.clock_ms, events);
        }
        if !self.early_confirms.is_empty() {
            self.confirm_early(self.clock_ms, events);
        }
        if SHARD && events.len() != before {
            marks.push((i as u32, events.len() as u32));
        }
    }

    /// The hostgroups of a record's destination and source, when monitored.
    #[inline]
    pub(super) fn sides(&self, r: &FlowRecord) -> Sides {
        (self.networks.lookup(r.dst), self.networks.lookup(r.src))
    }

    #[inline]
    fn prefetch_slots(&self, r: &FlowRecord, (dst, src): Sides) {
        for (group, addr) in [(dst, r.dst), (src, r.src)] {
            if group.is_some() {
                self.host_index.prefetch(Key::of(addr));
            }
        }
    }

    /// Prefetches the address-map entries of a record's monitored sides (their slots were
    /// prefetched earlier).
    #[inline]
    fn prefetch_entries(&self, r: &FlowRecord, (dst, src): Sides) {
        for (group, addr) in [(dst, r.dst), (src, r.src)] {
            if group.is_some() {
                self.host_index.prefetch_entry(Key::of(addr));
            }
        }
    }

    /// Prefetches the host entries of a record's monitored sides and returns their indices
    /// (`NONE` where there is none yet).
    #[inline]
    fn prefetch_hosts(&self, r: &FlowRecord, (dst, src): Sides) -> (u32, u32) {
        let mut found = [NONE; 2];
        for (d, group, addr) in [(IN, dst, r.dst), (OUT, src, r.src)] {
            if group.is_some() {
                if let Some(h) = self.host_index.get(Key::of(addr)) {
                    found[d] = h;
                    // The header and the whole direction: a first touch in a bucket may apply
                    // a pending learn (ring and baseline).
                    let host = &self.hosts[h as usize];
                    let dir = host.dir(d);
                    prefetch(&host.touched);
                    prefetch(&dir.ring[0]);
                    // Between ring[0] and watch_bytes lies up to a whole line (host entries
                    // are not line-aligned).
                    prefetch(&dir.baseline);
                    prefetch(&dir.watch_bytes);
                }
            }
        }
        (found[IN], found[OUT])
    }

    /// Prefetches the prefix entries of host entries found (and prefetched) earlier, and the
    /// open bucket's class counts of watched hosts.
    #[inline]
    fn prefetch_prefixes(&self, (dst_h, src_h): (u32, u32)) {
        for (d, h) in [(IN, dst_h), (OUT, src_h)] {
            if let Some(host) = self.hosts.get(h as usize) {
                self.prefetch_detail(host.dir(d).detail);
                if let Some(p) = self.prefixes.get(host.prefix as usize) {
                    let pd = &p.dirs[d];
                    prefetch(&p.touched);
                    prefetch(&pd.ring[self.open as usize % SLOTS]);
                    prefetch(&pd.detail);
                    if d == IN {
                        prefetch(&p.residue);
                    }
                }
            }
        }
    }

    /// The lines of detail `id` a record updates first (the open bucket's class counts, the
    /// fingerprint's address), without reading it.
    #[inline]
    fn prefetch_detail(&self, id: u32) {
        if let Some(Some(detail)) = self.details.get(id as usize) {
            let slot = &detail.ring[self.open as usize % SLOTS];
            prefetch(slot);
            prefetch(&slot.classes[pk::SYN]);
            prefetch(&slot.classes[pk::DATA]);
            prefetch(&slot.remotes);
            prefetch(&slot.tcp_local);
            prefetch(&slot.tcp_remote);
            prefetch(&slot.udp_local);
            prefetch(&slot.provenance);
            prefetch(&detail.fingerprint);
        }
    }

    /// A few records ahead, with host and prefix entries in cache: the sketch lines of watched
    /// hosts' fingerprints, and the details of watched prefixes (a busy network's prefixes over
    /// their watch level take every record of their hosts: without this each is a miss).
    #[inline]
    fn prefetch_watched(&self, r: &FlowRecord, (dst_h, src_h): (u32, u32)) {
        for (d, h, remote) in [(IN, dst_h, r.src), (OUT, src_h, r.dst)] {
            if let Some(host) = self.hosts.get(h as usize) {
                if let Some(Some(detail)) = self.details.get(host.dir(d).detail as usize) {
                    detail.fingerprint.prefetch(remote);
                }
                if let Some(p) = self.prefixes.get(host.prefix as usize) {
                    self.prefetch_detail(p.dirs[d].detail);
                }
            }
        }
    }

    /// Right before accounting: the sketch lines of watched prefixes' fingerprints.
    #[inline]
    fn prefetch_prefix_fingerprints(&self, r: &FlowRecord, (dst_h, src_h): (u32, u32)) {
        for (d, h, remote) in [(IN, dst_h, r.src), (OUT, src_h, r.dst)] {
            if let Some(host) = self.hosts.get(h as usize) {
                if let Some(p) = self.prefixes.get(host.prefix as usize) {
                    if let Some(Some(detail)) = self.details.get(p.dirs[d].detail as usize) {
                        detail.fingerprint.prefetch(remote);
                    }
                }
            }
        }
    }

    #[inline]
    pub(super) fn account(
        &mut self,
        r: &FlowRecord,
        (dst, src): Sides,
        (dst_h, src_h): (u32, u32),
    ) {
        if dst.is_none() && src.is_none() {
            self.stats.records_unmonitored += 1;
            return;
        }
        let class = RecordClass::of(r);
        if let Some(g) = dst {
            self.account_side(r.dst, dst_h, g, IN, r, r.src, &class);
        }
        if let Some(g) = src {
            self.account_side(r.src, src_h, g, OUT, r, r.dst, &class);
        }
    }

    /// Accounts one side of a record: `addr` is the monitored end, `remote` the other.
    /// `found` is the host entry of `addr` as looked up a few records earlier (or `NONE`): used
    /// when it still holds `addr`.
    ///
    /// In steps: the hostgroup's totals; the host's entry, then the host itself (touched, its
    /// totals, its prefix's carpet residue, its detailed counts or the start of its watch);
    /// then its prefix. Without a host entry (`max_hosts` reached) only the prefix counts it.
    ///
    /// The host's own steps stay in this body and the helpers are `#[inline(always)]`: split
    /// into functions the compiler inlines at will, the record path measured 2-7 % slower.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn account_side(
        &mut self,
        addr: IpAddr,
        found: u32,
        group: u16,
        d: usize,
        r: &FlowRecord,
        remote: IpAddr,
        class: &RecordClass,
    ) {
        let side = Side {
            r,
            class,
            d,
            remote,
        };
        let b = self.open;
        self.count_group(group, d, r);
        // Whether the record's host is part of its prefix's carpet residue: not over a host
        // limit on its own and not under attack on its own (its traffic is that attack's, so
        // the carpet's counts and fingerprint leave it out).
        let mut in_residue = false;
        let prefix = match self.host_entry(addr, found, group) {
            Some(h) => {
                // Touched: its first record of a bucket applies the learning its last bucket
                // left pending.
                let host = &mut self.hosts[h as usize];
                if host.touched != b {
                    if host.learn_pending() {
                        let g = &self.groups[host.group as usize];
                        host.learn_quiet(g, &self.baseline, &self.config);
                    }
                    host.touched = b;
                    host.dirs_touched = 0;
                    self.touched_hosts.push((h, host.prefix));
                }
                host.dirs_touched |= 1 << d;
                // Its totals: the close evaluates it once they leave its group's quiet floors.
                let g = &self.groups[host.group as usize];
                let (floor_packets, floor_bytes, floor_samples) =
                    (g.floor_packets[d], g.floor_bytes[d], g.watch_samples[d]);
                let prefix = host.prefix;
                let detail_id = host.dir(d).detail;
                let attacked = detail_id != NONE
                    && self.details[detail_id as usize]
                        .as_ref()
                        .is_some_and(|x| x.attack.is_some());
                let dir = host.dir_mut(d);
                let t = tally_slot(&mut dir.ring, b);
                let before = *t;
                t.add(r);
                let t = *t;
                let quiet = |t: &Tally| {
                    (t.packets as f64) < floor_packets
                        && (t.bytes as f64) < floor_bytes
                        && t.samples < floor_samples
                };
                if (before.samples == 0 || quiet(&before)) && !quiet(&t) {
                    self.eval_hosts.push(h);
                }
                // Its prefix's carpet residue (incoming, see `Residue`), kept incrementally.
                if d == IN {
                    let was_in = host.dirs_touched & IN_RESIDUE != 0;
                    in_residue = !attacked;
                    if in_residue {
                        host.dirs_touched |= IN_RESIDUE;
                    } else {
                        host.dirs_touched &= !IN_RESIDUE;
                    }
                    let res = &mut self.prefixes[prefix as usize].residue;
                    if res.count(b, (was_in, in_residue), before, t) {
                        self.stale_prefixes.push(prefix);
                    }
                }
                // Its detailed counts when watched, else whether its watch starts.
                let dir = self.hosts[h as usize].dir(d);
                if dir.detail != NONE {
                    self.count_watched_host(h, dir.detail, side, t, attacked);
                } else if t.samples >= self.watch_min_samples
                    && (t.samples >= self.groups[group as usize].watch_samples[d]
                        || running_over_watch(
                            &t,
                            r.sampling_rate,
                            (dir.watch_packets, dir.watch_bytes),
                            self.clock_ms,
                        ))
                    && self.details_live - self.attacks_live < self.config.max_watched
                {
                    self.start_host_watch(h, side);
                }
                self.hosts[h as usize].prefix
            }
            None => {
                self.stats.records_host_overflow += 1;
                match self.prefix_of(addr, group) {
                    Some(p) => p,
                    None => return,
                }
            }
        };
        self.count_prefix(prefix, side, in_residue);
    }

    /// The hostgroup's totals of the open bucket, for its rates.
    #[inline(always)]
    fn count_group(&mut self, group: u16, d: usize, r: &FlowRecord) {
        let b = self.open;
        let totals = &mut self.groups[group as usize].totals[d];
        if totals.current.bucket != b {
            totals.last = totals.current;
            totals.current = Tally {
                bucket: b,
                ..Tally::default()
            };
        }
        totals.current.add(r);
    }

    /// The host entry of `addr`: `found` unless cleared (it is whenever hosts were evicted
    /// since it was looked up), else looked up or created; `None` at `max_hosts`.
    #[inline(always)]
    fn host_entry(&mut self, addr: IpAddr, found: u32, group: u16) -> Option<u32> {
        if found != NONE {
            Some(found)
        } else {
            match self.host_index.get(Key::of(addr)) {
                Some(h) => Some(h),
                None => self.new_host(addr, group),
            }
        }
    }

    /// Class counts and fingerprint of a watched host direction (detail `id`); an attack on
    /// thin evidence is confirmed, or a crossing started, without waiting for the close.
    #[inline(always)]
    fn count_watched_host(&mut self, h: u32, id: u32, side: Side<'_>, t: Tally, attacked: bool) {
        let b = self.open;
        let Side {
            r,
            class,
            d,
            remote,
        } = side;
        let g = &self.groups[self.hosts[h as usize].group as usize];
        let detail = self.details[id as usize].as_mut().expect("live detail");
        let slot = class_slot(&mut detail.ring, b);
        slot.add(r, class, d == IN, remote_hash(remote));
        let evidence = slot.evidence.min(u64::from(u32::MAX)) as u32;
        if self.fingerprinting {
            detail.fingerprint.observe(r, remote);
        }
        // An attack that started on evidence from one datagram or instant is
        // confirmed as soon as more arrives, not at the bucket's close.
        if let Some(attack) = detail.attack.as_mut() {
            if attack.confirms_early(b, slot) {
                self.early_confirms.push((h, d));
            }
        }
        // The count can only grow within the bucket: once it crosses a static
        // limit with enough evidence, waiting for the close only adds latency.
        // Judged at every record up to `EARLY_EVERY` sampled packets (where one
        // more sample decides, and heavy sampling spaces them tens of ms apart),
        // then as evidence grows by a quarter (ordinary traffic over the totals
        // of the limits is judged a few dozen times a bucket, not per record).
        let step = if detail.early_evidence < EARLY_EVERY {
            1
        } else {
            detail.early_evidence / 4
        };
        if !attacked
            && t.samples >= self.config.min_samples
            && (t.packets as f64 >= g.lowest_packets[d] || t.bytes as f64 * 8.0 >= g.lowest_bits[d])
            && (detail.early_bucket != b || evidence >= detail.early_evidence + step)
        {
            detail.early_bucket = b;
            detail.early_evidence = evidence;
            self.early_starts.push((h, d));
        }
    }

    /// Starts watching host `h` (both directions: whether one is answered needs the other's
    /// classes too) with the record that reached its watch level. Once per watch: cold.
    #[cold]
    #[inline(never)]
    fn start_host_watch(&mut self, h: u32, side: Side<'_>) {
        let b = self.open;
        let Side {
            r,
            class,
            d,
            remote,
        } = side;
        let id = self.new_detail(Owner::Host(h), d);
        let detail = self.details[id as usize].as_mut().expect("new detail");
        class_slot(&mut detail.ring, b).add(r, class, d == IN, remote_hash(remote));
        if self.fingerprinting {
            detail.fingerprint.observe(r, remote);
        }
        if self.hosts[h as usize].dir(1 - d).detail == NONE {
            self.new_detail(Owner::Host(h), 1 - d);
        }
    }

    /// The prefix's totals of the open bucket, and its detailed counts (incoming: only the
    /// carpet residue's) or the start of its watch (incoming only).
    #[inline(always)]
    fn count_prefix(&mut self, prefix: u32, side: Side<'_>, in_residue: bool) {
        let b = self.open;
        let Side {
            r,
            class,
            d,
            remote,
        } = side;
        let incoming = d == IN;
        let p = &mut self.prefixes[prefix as usize];
        if p.touched != b {
            p.touched = b;
            self.touched_prefixes.push(prefix);
        }
        let pd = &mut p.dirs[d];
        let t = tally_slot(&mut pd.ring, b);
        t.add(r);
        if pd.detail != NONE {
            // The incoming detail describes the residue (a carpet); the outgoing one only says
            // what the prefix answers.
            if !incoming || in_residue {
                let detail = self.details[pd.detail as usize]
                    .as_mut()
                    .expect("live detail");
                class_slot(&mut detail.ring, b).add(r, class, incoming, remote_hash(remote));
                if incoming && self.fingerprinting {
                    detail.fingerprint.observe(r, remote);
                }
            }
        } else if incoming {
            // Infinite watch levels when carpet detection is off.
            let res = &p.residue;
            if t.samples >= self.watch_min_samples
                && running_over_watch(
                    t,
                    r.sampling_rate,
                    (res.watch_packets, res.watch_bytes),
                    self.clock_ms,
                )
                && self.details_live - self.attacks_live < self.config.max_watched
            {
                self.start_prefix_watch(prefix, side, in_residue);
            }
        }
    }

    /// Starts watching prefix `p`'s carpet residue (and its outgoing traffic, which tells
    /// whether the residue is answered). Once per watch: cold.
    #[cold]
    #[inline(never)]
    fn start_prefix_watch(&mut self, p: u32, side: Side<'_>, in_residue: bool) {
        let b = self.open;
        let Side {
            r, class, remote, ..
        } = side;
        let id = self.new_detail(Owner::Prefix(p), IN);
        if in_residue {
            let detail = self.details[id as usize].as_mut().expect("new detail");
            class_slot(&mut detail.ring, b).add(r, class, true, remote_hash(remote));
            if self.fingerprinting {
                detail.fingerprint.observe(r, remote);
            }
        }
        if self.prefixes[p as usize].dirs[OUT].detail == NONE {
            self.new_detail(Owner::Prefix(p), OUT);
        }
    }
}

/// The clock record `i` moves the engine to: its own time, or on a shard the clock the whole
/// stream had reached with it.
#[inline(always)]
fn clock_of<const SHARD: bool>(meta: &[RecordMeta], i: usize, r: &FlowRecord) -> u64 {
    if SHARD {
        meta.get(i).map_or(r.time_ms, |m| m.clock_ms)
    } else {
        r.time_ms
    }
}

/// One monitored side of a record: the record and its class, the direction of the monitored
/// end, and the other end.
#[derive(Clone, Copy)]
struct Side<'a> {
    r: &'a FlowRecord,
    class: &'a RecordClass,
    d: usize,
    remote: IpAddr,
}
