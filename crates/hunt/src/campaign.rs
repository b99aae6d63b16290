//! Campaigns: attacks from one bot pool.
//!
//! Botnet sources are real devices, so the same bots come back attack after attack. Every
//! incoming attack's sources are summarised by the engine ([`SourceSketch`]: a MinHash and a
//! HyperLogLog). Each attack with enough sources becomes a *pool* of its own; an attack whose
//! sources overlap an earlier pool's beyond `campaign_overlap` joins it instead, and a pool of
//! two or more attacks is a campaign, with an id, the union of their sources, targets and
//! vectors. Spoofed floods draw fresh random sources and overlap nothing; those that betray
//! themselves with unroutable sources are not pooled at all.
//!
//! Memory is bounded: at most `max_campaigns` pools (1.7 KB each), the least recently seen
//! dropped first.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use floodwall_detect::fingerprint::SourceSketch;
use floodwall_detect::{AttackEvent, Direction, EventKind, Vector};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::event::{CampaignChange, CampaignEvent};

/// An attack is compared once this many distinct sources stand behind its sketch: fewer say
/// little about a pool.
pub const MIN_SOURCES: u64 = 50;
/// Attack ids and targets listed per campaign (the counts go on).
const LISTED: usize = 100;

/// One pool: a single attack so far, or a campaign.
#[derive(Debug, Clone)]
struct Pool {
    /// Empty until a second attack joins.
    id: String,
    direction: Direction,
    first_seen: u64,
    last_seen: u64,
    attack_count: u64,
    attacks: VecDeque<String>,
    targets: Vec<IpNet>,
    vectors: Vec<Vector>,
    sketch: SourceSketch,
    /// Distinct sources in the last campaign line.
    reported: u64,
}

/// The pools and which attack is in which.
#[derive(Debug)]
pub struct Campaigns {
    overlap: f64,
    max: usize,
    pools: Vec<Pool>,
    /// Active attacks to their pool index.
    attacks: HashMap<String, usize>,
    /// The overlap with which each active attack joined its campaign.
    joined: HashMap<String, f64>,
    /// Distinct sources of each active single attack when it was last compared: it is compared
    /// again once they grew by a quarter (comparing is a pass over every pool).
    compared_at: HashMap<String, u64>,
    /// Campaigns formed so far: the next id's number.
    formed: u64,
    /// Attacks left out as spoofed.
    spoofed: u64,
}

/// The metadata of a pool as stored.
#[derive(Serialize, Deserialize)]
struct StoredPool {
    id: String,
    direction: Direction,
    first_seen: u64,
    last_seen: u64,
    attack_count: u64,
    attacks: Vec<String>,
    targets: Vec<IpNet>,
    vectors: Vec<Vector>,
}

/// Why a stored campaigns file was refused.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a Floodwall campaigns file")]
    Magic,
    #[error("cut off or corrupt (checksum does not match)")]
    Checksum,
    #[error("malformed pool {0}: {1}")]
    Pool(usize, String),
}

const MAGIC: &[u8; 8] = b"FWCAMP1\n";

/// A campaign as listed (`floodwall campaigns`, the API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CampaignSummary {
    pub campaign: String,
    pub attack_count: u64,
    pub attacks: Vec<String>,
    pub sources: u64,
    #[schemars(with = "String")]
    #[serde(with = "rfc3339")]
    pub first_seen: u64,
    #[schemars(with = "String")]
    #[serde(with = "rfc3339")]
    pub last_seen: u64,
    #[schemars(with = "Vec<String>")]
    pub targets: Vec<IpNet>,
    pub vectors: Vec<Vector>,
    pub direction: Direction,
}

mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ms: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&floodwall_detect::time::rfc3339_ms(*ms))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = String::deserialize(d)?;
        floodwall_detect::time::parse_rfc3339_ms(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {text}")))
    }
}

impl Campaigns {
    pub fn new(overlap: f64, max: usize) -> Campaigns {
        Campaigns {
            overlap,
            max: max.max(1),
            pools: Vec::new(),
            attacks: HashMap::new(),
            compared_at: HashMap::new(),
            joined: HashMap::new(),
            formed: 0,
            spoofed: 0,
        }
    }

    /// Pools kept (single attacks and campaigns).
    pub fn pools(&self) -> usize {
        self.pools.len()
    }

    /// Attacks left out because their sources look spoofed.
    pub fn spoofed(&self) -> u64 {
        self.spoofed
    }

    /// Follows one attack event: fills in its `campaign` when its attack is in one, and says
    /// when a campaign formed or grew. Outgoing attacks (our own customers) are the hunt's
    /// infected hosts, not a bot pool of the Internet.
    pub fn observe(&mut self, event: &mut AttackEvent) -> Option<CampaignEvent> {
        if event.direction != Direction::Incoming {
            return None;
        }
        let ended = event.event == EventKind::AttackEnded;
        let outcome = self.follow(event);
        if let Some(&p) = self.attacks.get(&event.attack_id) {
            let pool = &self.pools[p];
            if !pool.id.is_empty() {
                event.campaign = Some(pool.id.clone());
            }
        }
        if ended {
            self.attacks.remove(&event.attack_id);
            self.compared_at.remove(&event.attack_id);
            self.joined.remove(&event.attack_id);
        }
        outcome
    }

    /// The campaign of an active attack, once it is in one.
    pub fn campaign_of(&self, attack_id: &str) -> Option<&str> {
        let pool = &self.pools[*self.attacks.get(attack_id)?];
        (!pool.id.is_empty()).then_some(pool.id.as_str())
    }

    fn follow(&mut self, event: &AttackEvent) -> Option<CampaignEvent> {
        let sketch = event.source_sketch.as_deref()?;
        if sketch.distinct() < MIN_SOURCES {
            return None;
        }
        if sketch.looks_spoofed() {
            if self.attacks.remove(&event.attack_id).is_some() {
                // It looked real at first: its own pool goes, unless others joined it.
                self.drop_single(&event.attack_id);
            }
            self.spoofed += u64::from(event.event == EventKind::AttackEnded);
            return None;
        }
        let ts = event.ts;
        if let Some(&p) = self.attacks.get(&event.attack_id) {
            let single = self.pools[p].attack_count == 1;
            let pool = &mut self.pools[p];
            pool.last_seen = pool.last_seen.max(ts);
            add_vectors(&mut pool.vectors, &event.vectors);
            if !single {
                pool.sketch.merge(sketch);
                // The sources go on arriving after the attack joined: say so when the
                // campaign's size grew by a tenth, and at the end of each member attack.
                let sources = pool.sketch.distinct();
                let grew = sources > pool.reported + pool.reported / 10
                    || (event.event == EventKind::AttackEnded && sources > pool.reported);
                if !grew {
                    return None;
                }
                let overlap = self.joined.get(&event.attack_id).copied().unwrap_or(1.0);
                return Some(self.line(p, &event.attack_id, CampaignChange::Grown, overlap));
            }
            pool.sketch = sketch.clone();
            // Still alone: does it belong with an earlier pool now that more sources are in?
            let distinct = sketch.distinct();
            let last = self.compared_at.get(&event.attack_id).copied().unwrap_or(0);
            if distinct < last + last / 4 && event.event != EventKind::AttackEnded {
                return None;
            }
            self.compared_at.insert(event.attack_id.clone(), distinct);
            let best = self.best_match(sketch, Some(p))?;
            let (q, overlap) = best;
            self.pools.swap_remove(p);
            self.reindex_after_swap(p);
            let q = if q == self.pools.len() { p } else { q };
            return Some(self.join(q, event, overlap));
        }
        self.compared_at
            .insert(event.attack_id.clone(), sketch.distinct());
        match self.best_match(sketch, None) {
            Some((q, overlap)) => Some(self.join(q, event, overlap)),
            None => {
                self.make_room();
                self.pools.push(Pool {
                    id: String::new(),
                    direction: event.direction,
                    first_seen: event.started_at,
                    last_seen: ts,
                    attack_count: 1,
                    attacks: VecDeque::from([event.attack_id.clone()]),
                    targets: vec![event.target],
                    vectors: event.vectors.clone(),
                    sketch: sketch.clone(),
                    reported: 0,
                });
                self.attacks
                    .insert(event.attack_id.clone(), self.pools.len() - 1);
                None
            }
        }
    }

    /// The pool whose sources overlap `sketch` most, if beyond the threshold (`skip`: the
    /// attack's own pool).
    fn best_match(&self, sketch: &SourceSketch, skip: Option<usize>) -> Option<(usize, f64)> {
        let mut best: Option<(usize, f64)> = None;
        for (i, pool) in self.pools.iter().enumerate() {
            if Some(i) == skip {
                continue;
            }
            // A quick Jaccard bound first: most pools share nothing.
            if sketch.jaccard(&pool.sketch) == 0.0 {
                continue;
            }
            let overlap = sketch.overlap(&pool.sketch);
            if overlap >= self.overlap && best.is_none_or(|(_, b)| overlap > b) {
                best = Some((i, overlap));
            }
        }
        best
    }

    fn join(&mut self, q: usize, event: &AttackEvent, overlap: f64) -> CampaignEvent {
        let sketch = event.source_sketch.as_deref().expect("compared");
        let pool = &mut self.pools[q];
        let change = if pool.id.is_empty() {
            self.formed += 1;
            pool.id = format!("campaign-{}", self.formed);
            CampaignChange::Formed
        } else {
            CampaignChange::Grown
        };
        pool.sketch.merge(sketch);
        pool.attack_count += 1;
        pool.attacks.push_back(event.attack_id.clone());
        if pool.attacks.len() > LISTED {
            pool.attacks.pop_front();
        }
        if !pool.targets.contains(&event.target) && pool.targets.len() < LISTED {
            pool.targets.push(event.target);
        }
        add_vectors(&mut pool.vectors, &event.vectors);
        pool.first_seen = pool.first_seen.min(event.started_at);
        pool.last_seen = pool.last_seen.max(event.ts);
        self.attacks.insert(event.attack_id.clone(), q);
        self.joined.insert(event.attack_id.clone(), overlap);
        self.line(q, &event.attack_id, change, overlap)
    }

    /// The campaign line of pool `q` about `attack_id`.
    fn line(
        &mut self,
        q: usize,
        attack_id: &str,
        change: CampaignChange,
        overlap: f64,
    ) -> CampaignEvent {
        let pool = &mut self.pools[q];
        pool.reported = pool.sketch.distinct();
        CampaignEvent {
            campaign: pool.id.clone(),
            change,
            attack_id: attack_id.to_string(),
            overlap: (overlap * 1000.0).round() / 1000.0,
            attack_count: pool.attack_count,
            attacks: pool.attacks.iter().cloned().collect(),
            sources: pool.reported,
            first_seen: pool.first_seen,
            last_seen: pool.last_seen,
            targets: pool.targets.clone(),
            vectors: pool.vectors.clone(),
            direction: pool.direction,
        }
    }

    fn drop_single(&mut self, attack_id: &str) {
        if let Some(p) = self.pools.iter().position(|pool| {
            pool.attack_count == 1 && pool.attacks.front().is_some_and(|a| a == attack_id)
        }) {
            self.pools.swap_remove(p);
            self.reindex_after_swap(p);
        }
    }

    /// The pool that was last now sits at `p`: point its attacks there.
    fn reindex_after_swap(&mut self, p: usize) {
        let moved = self.pools.len();
        for slot in self.attacks.values_mut() {
            if *slot == moved {
                *slot = p;
            }
        }
    }

    /// At the bound, the least recently seen pool goes (single attacks before campaigns).
    fn make_room(&mut self) {
        if self.pools.len() < self.max {
            return;
        }
        let Some(p) = (0..self.pools.len()).min_by_key(|&i| {
            let pool = &self.pools[i];
            (!pool.id.is_empty(), pool.last_seen)
        }) else {
            return;
        };
        self.attacks.retain(|_, slot| *slot != p);
        self.pools.swap_remove(p);
        self.reindex_after_swap(p);
    }

    /// The campaigns (pools of two or more attacks), most recently seen first.
    pub fn list(&self) -> Vec<CampaignSummary> {
        let mut list: Vec<CampaignSummary> = self
            .pools
            .iter()
            .filter(|p| !p.id.is_empty())
            .map(|p| CampaignSummary {
                campaign: p.id.clone(),
                attack_count: p.attack_count,
                attacks: p.attacks.iter().cloned().collect(),
                sources: p.sketch.distinct(),
                first_seen: p.first_seen,
                last_seen: p.last_seen,
                targets: p.targets.clone(),
                vectors: p.vectors.clone(),
                direction: p.direction,
            })
            .collect();
        list.sort_by(|a, b| {
            b.last_seen
                .cmp(&a.last_seen)
                .then(a.campaign.cmp(&b.campaign))
        });
        list
    }

    /// The state to keep across restarts: every pool with its sketch, and the id counter.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.pools.len() * 1_800);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.formed.to_le_bytes());
        out.extend_from_slice(&(self.pools.len() as u64).to_le_bytes());
        for p in &self.pools {
            let meta = serde_json::to_vec(&StoredPool {
                id: p.id.clone(),
                direction: p.direction,
                first_seen: p.first_seen,
                last_seen: p.last_seen,
                attack_count: p.attack_count,
                attacks: p.attacks.iter().cloned().collect(),
                targets: p.targets.clone(),
                vectors: p.vectors.clone(),
            })
            .expect("pool metadata serialises");
            out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
            out.extend_from_slice(&meta);
            p.sketch.encode(&mut out);
        }
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Reads what [`Self::encode`] wrote, with these settings.
    pub fn decode(bytes: &[u8], overlap: f64, max: usize) -> Result<Campaigns, DecodeError> {
        let mut c = Campaigns::new(overlap, max);
        if bytes.len() < MAGIC.len() + 24 || &bytes[..MAGIC.len()] != MAGIC {
            return Err(DecodeError::Magic);
        }
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        if checksum(body) != u64::from_le_bytes(sum.try_into().expect("8 bytes")) {
            return Err(DecodeError::Checksum);
        }
        let mut r = &body[MAGIC.len()..];
        c.formed = take_u64(&mut r).ok_or(DecodeError::Checksum)?;
        let n = take_u64(&mut r).ok_or(DecodeError::Checksum)?;
        for i in 0..n as usize {
            let bad = |why: &str| DecodeError::Pool(i, why.to_string());
            let len = take_u32(&mut r).ok_or_else(|| bad("cut off"))? as usize;
            let meta = take(&mut r, len).ok_or_else(|| bad("cut off"))?;
            let meta: StoredPool = serde_json::from_slice(meta).map_err(|e| bad(&e.to_string()))?;
            let sketch = take(&mut r, floodwall_detect::fingerprint::SOURCE_SKETCH_LEN)
                .and_then(SourceSketch::decode)
                .ok_or_else(|| bad("not a source sketch"))?;
            if meta.attack_count == 0 || meta.attacks.len() > LISTED {
                return Err(bad("attack counts out of range"));
            }
            if c.pools.len() < c.max {
                c.pools.push(Pool {
                    id: meta.id,
                    direction: meta.direction,
                    first_seen: meta.first_seen,
                    last_seen: meta.last_seen,
                    attack_count: meta.attack_count,
                    attacks: meta.attacks.into(),
                    targets: meta.targets,
                    vectors: meta.vectors,
                    reported: sketch.distinct(),
                    sketch,
                });
            }
        }
        if !r.is_empty() {
            return Err(DecodeError::Pool(n as usize, "trailing bytes".into()));
        }
        Ok(c)
    }

    /// The sketch shared by a campaign's attacks, for tests and benchmarks.
    pub fn sketch_of(&self, campaign: &str) -> Option<Arc<SourceSketch>> {
        self.pools
            .iter()
            .find(|p| p.id == campaign)
            .map(|p| Arc::new(p.sketch.clone()))
    }
}

fn add_vectors(into: &mut Vec<Vector>, from: &[Vector]) {
    for v in from {
        if !into.contains(v) {
            into.push(*v);
        }
    }
    into.sort();
}

/// The body with its checksum appended, as [`Campaigns::encode`] ends it: lets a fuzzer reach
/// the parser behind the checksum.
pub fn seal(body: &[u8]) -> Vec<u8> {
    let mut out = body.to_vec();
    out.extend_from_slice(&checksum(body).to_le_bytes());
    out
}

/// FNV-1a over the bytes: catches a cut-off or edited file (not an adversary: the state dir is
/// the operator's).
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn take<'a>(r: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if r.len() < n {
        return None;
    }
    let (head, tail) = r.split_at(n);
    *r = tail;
    Some(head)
}

fn take_u64(r: &mut &[u8]) -> Option<u64> {
    take(r, 8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

fn take_u32(r: &mut &[u8]) -> Option<u32> {
    take(r, 4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use floodwall_detect::event::{Evidence, Trigger, TriggerKind};
    use floodwall_detect::Metric;

    use super::*;

    /// A pool of bots spread over public space, as addresses.
    fn bot(pool: u32, i: u32) -> IpAddr {
        let x = (pool.wrapping_mul(0x9e37_79b9) ^ i.wrapping_mul(0x85eb_ca6b)).rotate_left(7);
        // Keep to 11.0.0.0–99.255.255.255: routable.
        IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + x % 0x5900_0000))
    }

    fn attack(
        id: &str,
        kind: EventKind,
        sources: impl Iterator<Item = IpAddr>,
        ts: u64,
    ) -> AttackEvent {
        let mut sketch = SourceSketch::new();
        for s in sources {
            sketch.insert_addr(s);
        }
        AttackEvent {
            event: kind,
            attack_id: id.into(),
            ts,
            direction: Direction::Incoming,
            target: "198.51.100.10/32".parse().unwrap(),
            carpet_bombing: false,
            hostgroup: "default".into(),
            vectors: vec![Vector::UdpFlood],
            bps: 0,
            pps: 0,
            peak_bps: 0,
            peak_pps: 0,
            sources: 0,
            started_at: ts,
            ended_at: None,
            trigger: Trigger {
                kind: TriggerKind::Threshold,
                metric: Metric::Pps,
                value: 0.0,
                limit: 0.0,
            },
            evidence: Evidence::default(),
            fingerprint: Default::default(),
            before: None,
            campaign: None,
            source_sketch: Some(Arc::new(sketch)),
        }
    }

    /// 30 % of a 20,000-bot pool: every `step`-th third of it, offset so two draws share ~30 %.
    fn draw(pool: u32, seed: u32) -> impl Iterator<Item = IpAddr> {
        (0..20_000u32)
            .filter(move |i| {
                (i.wrapping_mul(0x2545_f491) ^ seed.wrapping_mul(0x9e37_79b9)).rotate_left(5) % 10
                    < 3
            })
            .map(move |i| bot(pool, i))
    }

    #[test]
    fn two_draws_of_one_pool_form_a_campaign_and_a_disjoint_pool_does_not_join() {
        let mut c = Campaigns::new(0.15, 1_000);
        let mut a = attack("a", EventKind::AttackEnded, draw(1, 1), 1_000);
        assert!(c.observe(&mut a).is_none());
        let mut b = attack("b", EventKind::AttackUpdated, draw(1, 2), 2_000);
        let formed = c.observe(&mut b).expect("formed");
        assert_eq!(formed.change, CampaignChange::Formed);
        assert_eq!(b.campaign.as_deref(), Some(formed.campaign.as_str()));
        assert_eq!(formed.attacks, ["a", "b"]);
        // The union of two 30 % draws is 51 % of the pool.
        let union = formed.sources as f64;
        assert!((union - 10_200.0).abs() < 1_020.0, "{union}");
        let mut other = attack("c", EventKind::AttackEnded, draw(2, 3), 3_000);
        assert!(c.observe(&mut other).is_none());
        assert!(other.campaign.is_none());
        // Later events of a member carry the id.
        let mut b_end = attack("b", EventKind::AttackEnded, draw(1, 2), 2_500);
        assert!(c.observe(&mut b_end).is_none());
        assert_eq!(b_end.campaign, b.campaign);
        assert_eq!(c.list().len(), 1);
    }

    #[test]
    fn spoofed_floods_form_no_campaign() {
        let mut c = Campaigns::new(0.15, 1_000);
        for n in 0..3u32 {
            let random = (0..5_000u32).map(move |i| {
                IpAddr::V4(Ipv4Addr::from(
                    (i ^ n << 20).wrapping_mul(0x9e37_79b9).rotate_left(11),
                ))
            });
            let mut e = attack(
                &format!("s{n}"),
                EventKind::AttackEnded,
                random,
                1_000 * u64::from(n),
            );
            assert!(c.observe(&mut e).is_none());
            assert!(e.campaign.is_none());
        }
        assert!(c.list().is_empty());
        assert!(c.spoofed() >= 1);
    }

    #[test]
    fn the_state_survives_encoding_and_refuses_damage() {
        let mut c = Campaigns::new(0.15, 1_000);
        c.observe(&mut attack("a", EventKind::AttackEnded, draw(1, 1), 1_000));
        c.observe(&mut attack("b", EventKind::AttackEnded, draw(1, 2), 2_000));
        let bytes = c.encode();
        let back = Campaigns::decode(&bytes, 0.15, 1_000).expect("decodes");
        assert_eq!(back.list(), c.list());
        let mut cut = bytes.clone();
        cut.truncate(bytes.len() - 100);
        assert!(Campaigns::decode(&cut, 0.15, 1_000).is_err());
        let mut edited = bytes.clone();
        edited[40] ^= 1;
        assert!(Campaigns::decode(&edited, 0.15, 1_000).is_err());
        assert!(Campaigns::decode(b"hello", 0.15, 1_000).is_err());
        // A third attack after the restart joins the same campaign.
        let mut back = back;
        let grown = back
            .observe(&mut attack("d", EventKind::AttackEnded, draw(1, 4), 5_000))
            .expect("joins");
        assert_eq!(grown.change, CampaignChange::Grown);
        assert_eq!(grown.campaign, "campaign-1");
    }

    #[test]
    fn pools_stay_within_their_bound() {
        let mut c = Campaigns::new(0.15, 10);
        for n in 0..50u32 {
            c.observe(&mut attack(
                &format!("x{n}"),
                EventKind::AttackEnded,
                (0..200).map(|i| bot(100 + n, i)),
                u64::from(n),
            ));
        }
        assert!(c.pools() <= 10);
    }
}
