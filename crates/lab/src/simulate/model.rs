//! A scenario made ready to generate: per-host and per-source weights, address permutations,
//! distributions, and the rate of every traffic component at any moment.
//!
//! Everything random about *who* (which hosts, which sources, how busy each is, which second a
//! source is active) is a pure function of the seed and an index, so it costs no memory per source
//! beyond one alias table, and the truth can be computed from the same functions the generator
//! uses. Only the per-slice sample counts and per-sample fields come from the seeded stream.

use std::net::Ipv4Addr;

use anyhow::{anyhow, Result};
use ipnet::Ipv4Net;
use rand::distr::Distribution;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_distr::weighted::WeightedAliasIndex;

use super::scenario::{
    default_mix, parse_flags, Background, Connection, Direction, Flags, Format, Kind, MixEntry,
    NamedPorts, Periodic, Pool, Ports, Protocol, Reply, Role, Scenario, Size, TcpSeq, Traffic,
    DEFAULT_DIURNAL,
};

/// Time slice of the generator: sample counts are drawn per slice, and no sFlow datagram or
/// flow spans two slices (a slice never straddles a second).
pub const SLICE_MS: u64 = 100;
pub const SLICES_PER_SECOND: u64 = 1000 / SLICE_MS;
/// Source ports of reflected amplification traffic, as the engine counts them.
pub const AMPLIFICATION_PORTS: [u16; 8] = [53, 123, 1900, 11211, 389, 19, 161, 3702];

/// What to generate, beyond the scenario file.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub format: Option<Format>,
    pub sampling: Option<u32>,
    pub seed: Option<u64>,
    pub scale: Option<String>,
    /// Unix ms of the scenario's second 0 (a whole second); default: the scenario's.
    pub start_ms: Option<u64>,
}

/// SplitMix64 finaliser: a good 64-bit mix for hashing indexes with a key.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn hash(key: u64, a: u64, b: u64) -> u64 {
    mix64(key ^ mix64(a ^ mix64(b)))
}

/// Uniform in [0, 1) from a hash.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// A standard normal from two hashes (Box–Muller).
fn normal(h1: u64, h2: u64) -> f64 {
    let u1 = unit(h1).max(1e-300);
    let u2 = unit(h2);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A keyed permutation of `bits`-bit numbers (a balanced Feistel network over the next even
/// width, cycle-walked back into range): spreads hosts and sources over their prefix without
/// storing them.
fn permute(x: u64, bits: u32, key: u64) -> u64 {
    if bits == 0 {
        return 0;
    }
    let half = bits.div_ceil(2);
    let mask = (1u64 << half) - 1;
    let mut v = x;
    loop {
        let (mut l, mut r) = (v >> half, v & mask);
        for round in 0..4u64 {
            let f = mix64(key ^ (round << 56) ^ r) & mask;
            (l, r) = (r, l ^ f);
        }
        v = (l << half) | r;
        if v < (1u64 << bits) {
            return v;
        }
    }
}

/// Address blocks no Internet source sits in (RFC 6890 special-purpose, multicast, reserved).
const UNROUTED: [(u32, u8); 14] = [
    (0x0000_0000, 8),  // 0/8
    (0x0a00_0000, 8),  // 10/8
    (0x6440_0000, 10), // 100.64/10
    (0x7f00_0000, 8),  // 127/8
    (0xa9fe_0000, 16), // 169.254/16
    (0xac10_0000, 12), // 172.16/12
    (0xc000_0000, 24), // 192.0.0/24
    (0xc000_0200, 24), // 192.0.2/24
    (0xc0a8_0000, 16), // 192.168/16
    (0xc612_0000, 15), // 198.18/15
    (0xc633_6400, 24), // 198.51.100/24
    (0xcb00_7100, 24), // 203.0.113/24
    (0xe000_0000, 3),  // 224/3
    (0xffff_ffff, 32), // broadcast
];

fn unrouted(a: u32) -> bool {
    UNROUTED
        .iter()
        .any(|&(net, len)| len == 0 || (a ^ net) >> (32 - u32::from(len)) == 0)
}

/// A public Internet address for index `i` of a population keyed by `key`, outside `exclude`.
fn public_address(i: u64, key: u64, exclude: &[Ipv4Net]) -> Ipv4Addr {
    let mut v = i;
    for _ in 0..64 {
        v = permute(v, 32, key);
        let addr = Ipv4Addr::from(v as u32);
        if !unrouted(v as u32) && !exclude.iter().any(|n| n.contains(&addr)) {
            return addr;
        }
    }
    Ipv4Addr::new(45, 0, 0, 1)
}

/// The `i`-th address of a permutation of `prefix`, skipping .0 and .255 (not hosts a customer
/// gets); `i` must be below half the prefix size.
fn prefix_address(prefix: Ipv4Net, i: u64, key: u64) -> Ipv4Addr {
    let bits = 32 - u32::from(prefix.prefix_len());
    if bits == 0 {
        return prefix.network();
    }
    let base = u32::from(prefix.network());
    let mut v = i;
    for _ in 0..64 {
        v = permute(v, bits, key);
        let addr = base | v as u32;
        let last = addr & 0xff;
        if bits <= 8 || (last != 0 && last != 255) {
            return Ipv4Addr::from(addr);
        }
    }
    Ipv4Addr::from(base | (i as u32))
}

/// The `i`-th (below 254) of the usable addresses .1–.254 of a /24, in a keyed order:
/// cycle-walking a permutation from a usable address stays among usable ones, so distinct `i`
/// give distinct addresses (a full hosting /24).
fn dense_prefix_address(prefix: Ipv4Net, i: u64, key: u64) -> Ipv4Addr {
    let base = u32::from(prefix.network());
    let mut v = i + 1;
    loop {
        v = permute(v, 8, key);
        if (1..=254).contains(&v) {
            return Ipv4Addr::from(base | v as u32);
        }
    }
}

/// A keyed permutation of 0..n (cycle-walking the next power of two): `x < n` in, a distinct
/// `< n` out for each distinct `x`.
pub fn permute_below(x: u64, n: u64, key: u64) -> u64 {
    if n <= 1 {
        return 0;
    }
    let bits = 64 - (n - 1).leading_zeros();
    let mut v = x;
    loop {
        v = permute(v, bits, key);
        if v < n {
            return v;
        }
    }
}

/// FNV-1a of a name: pools of one seed but different names are different pools.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A bot pool ready to hand out member addresses: a pure function of its own seed and name,
/// not the scenario's seed, so a pool is the same population whatever the scenario's seed.
#[derive(Debug, Clone)]
pub struct PoolModel {
    pub name: String,
    pub size: u64,
    prefixes: Vec<Ipv4Net>,
    key: u64,
    exclude: Vec<Ipv4Net>,
}

impl PoolModel {
    fn new(pool: &Pool, exclude: &[Ipv4Net]) -> Self {
        PoolModel {
            name: pool.name.clone(),
            size: u64::from(pool.size),
            prefixes: pool.prefixes.clone(),
            key: mix64(pool.seed ^ 0xb075_0000 ^ mix64(name_hash(&pool.name))),
            exclude: exclude.to_vec(),
        }
    }

    /// Member `j`'s address: distinct members, distinct addresses inside `prefixes`; spread
    /// over routed public space without them (where two of a large pool may, rarely, share
    /// one: the truth counts addresses, not members).
    pub fn address(&self, j: u64) -> Ipv4Addr {
        if self.prefixes.is_empty() {
            return public_address(j, self.key, &self.exclude);
        }
        let room: u64 = self
            .prefixes
            .iter()
            .map(|p| 1u64 << (32 - p.prefix_len()))
            .sum();
        let mut at = permute_below(j, room, self.key);
        for p in &self.prefixes {
            let n = 1u64 << (32 - p.prefix_len());
            if at < n {
                return Ipv4Addr::from(u32::from(p.network()) | at as u32);
            }
            at -= n;
        }
        Ipv4Addr::from(u32::from(self.prefixes[0].network()))
    }
}

/// A distribution over a few values.
#[derive(Debug, Clone)]
pub struct Choice<T> {
    values: Vec<T>,
    alias: Option<WeightedAliasIndex<f64>>,
    /// Cumulative normalised weights, for a pick from a hash ([`Choice::pick_unit`]).
    cumulative: Vec<f64>,
}

impl<T: Clone> Choice<T> {
    fn new(entries: Vec<(T, f64)>) -> Result<Self> {
        let (values, weights): (Vec<T>, Vec<f64>) = entries.into_iter().unzip();
        let total: f64 = weights.iter().sum();
        let cumulative = weights
            .iter()
            .scan(0.0, |acc, w| {
                *acc += w / total;
                Some(*acc)
            })
            .collect();
        let alias = if values.len() > 1 {
            Some(WeightedAliasIndex::new(weights).map_err(|e| anyhow!("weights: {e}"))?)
        } else {
            None
        };
        Ok(Choice {
            values,
            alias,
            cumulative,
        })
    }

    fn pick(&self, rng: &mut ChaCha8Rng) -> &T {
        let i = self.alias.as_ref().map_or(0, |a| a.sample(rng));
        &self.values[i]
    }

    /// The value whose cumulative weight first exceeds `u` in [0, 1): a stable pick.
    fn pick_unit(&self, u: f64) -> &T {
        let i = self
            .cumulative
            .iter()
            .position(|&c| u < c)
            .unwrap_or(self.values.len() - 1);
        &self.values[i]
    }
}

/// Packet sizes: entries of inclusive ranges with shares.
#[derive(Debug, Clone)]
pub struct Sizes {
    choice: Choice<(u16, u16)>,
    /// Mean and mean square of the size, for pps ⇄ bps and the truth's tolerances.
    pub mean: f64,
    pub mean_square: f64,
}

impl Sizes {
    fn new(sizes: &[Size]) -> Result<Self> {
        let total: f64 = sizes.iter().map(|s| s.share).sum();
        let (mut mean, mut mean_square) = (0.0, 0.0);
        for s in sizes {
            let (a, b) = s.range();
            let (a, b) = (f64::from(a), f64::from(b));
            let w = s.share / total;
            mean += w * (a + b) / 2.0;
            // Uniform on the integers a..=b.
            let n = b - a + 1.0;
            mean_square += w * ((a + b) * (a + b) / 4.0 + (n * n - 1.0) / 12.0);
        }
        Ok(Sizes {
            choice: Choice::new(sizes.iter().map(|s| (s.range(), s.share)).collect())?,
            mean,
            mean_square,
        })
    }

    fn draw(&self, rng: &mut ChaCha8Rng) -> u16 {
        let &(a, b) = self.choice.pick(rng);
        if a == b {
            a
        } else {
            rng.random_range(a..=b)
        }
    }
}

#[derive(Debug, Clone)]
pub enum PortModel {
    Fixed(u16),
    Random,
    Any,
    PerSource,
    Weighted(Choice<u16>),
}

impl PortModel {
    fn new(ports: &Ports) -> Result<Self> {
        Ok(match ports {
            Ports::Fixed(p) => PortModel::Fixed(*p),
            Ports::Named(NamedPorts::Random) => PortModel::Random,
            Ports::Named(NamedPorts::Any) => PortModel::Any,
            Ports::Named(NamedPorts::PerSource) => PortModel::PerSource,
            Ports::Weighted(list) => PortModel::Weighted(Choice::new(
                list.iter().map(|p| (p.port, p.share)).collect(),
            )?),
        })
    }

    /// A port for a packet of the source (or host) with hash `owner`.
    fn draw(&self, rng: &mut ChaCha8Rng, owner: u64) -> u16 {
        match self {
            PortModel::Fixed(p) => *p,
            PortModel::Random => rng.random_range(1024..=65535),
            PortModel::Any => rng.random_range(1..=65535),
            PortModel::PerSource => 1024 + (owner % 64_512) as u16,
            PortModel::Weighted(choice) => *choice.pick(rng),
        }
    }

    /// The port of one connection, stable for its hash `h` (`owner`: the host's or source's hash,
    /// for `per-source`).
    fn stable(&self, h: u64, owner: u64) -> u16 {
        match self {
            PortModel::Fixed(p) => *p,
            PortModel::Random => 1024 + (h % 64_512) as u16,
            PortModel::Any => 1 + (h % 65_535) as u16,
            PortModel::PerSource => 1024 + (owner % 64_512) as u16,
            PortModel::Weighted(choice) => *choice.pick_unit(unit(h)),
        }
    }

    /// The share of packets with port `port` (for the amplification class of the truth).
    fn share_of(&self, ports: &[u16]) -> f64 {
        match self {
            PortModel::Fixed(p) => f64::from(u8::from(ports.contains(p))),
            PortModel::Weighted(choice) => {
                let weights = choice.alias.as_ref().map(|a| a.weights());
                let total: f64 = weights.as_ref().map_or(1.0, |w| w.iter().sum());
                choice
                    .values
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| ports.contains(p))
                    .map(|(i, _)| weights.as_ref().map_or(1.0, |w| w[i]) / total)
                    .sum()
            }
            // Random ports hit a reflector port about 8 times in 64,512: negligible.
            _ => 0.0,
        }
    }
}

/// TCP flag combinations.
#[derive(Debug, Clone)]
pub struct FlagModel {
    choice: Choice<u8>,
    weights: Vec<(u8, f64)>,
}

impl FlagModel {
    fn new(flags: &Option<Flags>) -> Result<Option<Self>> {
        let weights: Vec<(u8, f64)> = match flags {
            None => return Ok(None),
            Some(Flags::One(f)) => vec![(parse_flags(f)?, 1.0)],
            Some(Flags::Weighted(list)) => list
                .iter()
                .map(|f| Ok((parse_flags(&f.flags)?, f.share)))
                .collect::<Result<_>>()?,
        };
        Ok(Some(FlagModel {
            choice: Choice::new(weights.clone())?,
            weights,
        }))
    }

    /// Share of packets whose flags satisfy `test`.
    fn share(&self, test: impl Fn(u8) -> bool) -> f64 {
        let total: f64 = self.weights.iter().map(|(_, w)| w).sum();
        self.weights
            .iter()
            .filter(|(f, _)| test(*f))
            .map(|(_, w)| w / total)
            .sum()
    }
}

/// What share of a component's packets fall in each class the engine counts, and their sizes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Composition {
    pub tcp: f64,
    pub udp: f64,
    pub icmp: f64,
    pub gre: f64,
    /// SYN without ACK; ACK without SYN/RST/FIN; RST.
    pub syn: f64,
    pub ack: f64,
    pub rst: f64,
    /// UDP from an amplification source port (incoming only).
    pub amp: f64,
    pub mean_size: f64,
    pub mean_square_size: f64,
}

impl Composition {
    /// `remote_ports`: the source ports of the packets, which make incoming UDP amplification.
    fn of(
        protocol: Protocol,
        flags: Option<&FlagModel>,
        sizes: &Sizes,
        direction: Direction,
        remote_ports: &PortModel,
    ) -> Self {
        let amp = if direction == Direction::Incoming {
            remote_ports.share_of(&AMPLIFICATION_PORTS)
        } else {
            0.0
        };
        let mut c = Composition {
            mean_size: sizes.mean,
            mean_square_size: sizes.mean_square,
            ..Default::default()
        };
        match protocol {
            Protocol::Tcp => {
                c.tcp = 1.0;
                if let Some(f) = flags {
                    c.syn = f.share(|f| f & 0x02 != 0 && f & 0x10 == 0);
                    c.ack = f.share(|f| f & 0x10 != 0 && f & 0x07 == 0);
                    c.rst = f.share(|f| f & 0x04 != 0);
                }
            }
            Protocol::Udp => {
                c.udp = 1.0;
                c.amp = amp;
            }
            Protocol::Icmp => c.icmp = 1.0,
            Protocol::Gre => c.gre = 1.0,
        }
        c
    }
}

/// One sampled packet, as the generator hands it to an encoder.
#[derive(Debug, Clone, Copy)]
pub struct Packet {
    pub time_us: u64,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    /// ICMP: type in `dst_port >> 8`, code in its low byte.
    pub src_port: u16,
    pub dst_port: u16,
    pub tcp_flags: u8,
    pub ttl: u8,
    /// IP length.
    pub size: u16,
    /// GRE: the inner packet is an Ethernet frame (else IP).
    pub gre_eth: bool,
    /// Seen on the customer-facing side (outgoing) rather than the uplink.
    pub outgoing: bool,
    /// TCP: the sequence number is the destination address (a Mirai probe); else 0.
    pub seq_dst: bool,
}

/// The always-on traffic of some monitored hosts (one `[[background]]`).
pub struct BackgroundModel {
    pub name: Option<String>,
    pub hosts: Vec<Ipv4Addr>,
    /// Packets/s of each host at the daily peak.
    pub host_pps: Vec<f64>,
    pub total_pps: f64,
    alias: WeightedAliasIndex<f64>,
    pub mix: Vec<MixModel>,
    mix_choice: Choice<usize>,
    diurnal: [f64; 24],
    hours: [f64; 2],
    duration_s: f64,
    clients: u64,
    peers: Option<u64>,
    key: u64,
    exclude: Vec<Ipv4Net>,
}

pub struct MixModel {
    pub share: f64,
    pub direction: Direction,
    pub protocol: Protocol,
    remote_port: PortModel,
    local_port: PortModel,
    flags: Option<FlagModel>,
    sizes: Sizes,
    pub composition: Composition,
}

impl BackgroundModel {
    /// The `index`-th background (the first one's key is the single background's of old, so
    /// existing scenarios generate the same bytes).
    fn new(scenario: &Scenario, bg: &Background, index: usize, seed: u64) -> Result<Self> {
        let key = match index {
            0 => mix64(seed ^ 0xb4c6_0000),
            i => mix64(seed ^ 0xb4c6_0000 ^ mix64(i as u64)),
        };
        let room = 1u64 << (32 - bg.hosts.prefix_len());
        let dense = u64::from(bg.host_count) > room / 2;
        let hosts: Vec<Ipv4Addr> = (0..u64::from(bg.host_count))
            .map(|i| {
                if dense {
                    dense_prefix_address(bg.hosts, i, key)
                } else {
                    prefix_address(bg.hosts, i, key)
                }
            })
            .collect();
        let host_pps: Vec<f64> = (0..u64::from(bg.host_count))
            .map(|i| {
                let z = normal(hash(key, i, 1), hash(key, i, 2));
                (bg.pps_median * (bg.pps_sigma * z).exp()).min(bg.pps_cap)
            })
            .collect();
        let total_pps = host_pps.iter().sum();
        let alias = WeightedAliasIndex::new(host_pps.clone())
            .map_err(|e| anyhow!("background host weights: {e}"))?;
        let entries: Vec<MixEntry> = match &bg.mix {
            Some(mix) => mix.clone(),
            None => default_mix()?,
        };
        let mut mix = Vec::new();
        for m in &entries {
            let sizes = Sizes::new(&m.sizes)?;
            let flags = FlagModel::new(&m.tcp_flags)?;
            let remote_port = PortModel::new(&m.remote_port)?;
            let composition = Composition::of(
                m.protocol,
                flags.as_ref(),
                &sizes,
                m.direction,
                &remote_port,
            );
            mix.push(MixModel {
                share: m.share,
                direction: m.direction,
                protocol: m.protocol,
                remote_port,
                local_port: PortModel::new(&m.local_port)?,
                flags,
                sizes,
                composition,
            });
        }
        let mix_choice = Choice::new(
            entries
                .iter()
                .enumerate()
                .map(|(i, m)| (i, m.share))
                .collect(),
        )?;
        let mut diurnal = DEFAULT_DIURNAL;
        if let Some(d) = &bg.diurnal {
            diurnal.copy_from_slice(d);
        }
        Ok(BackgroundModel {
            name: bg.name.clone(),
            hosts,
            host_pps,
            total_pps,
            alias,
            mix,
            mix_choice,
            diurnal,
            hours: bg.hours,
            duration_s: f64::from(scenario.duration_s),
            clients: u64::from(bg.clients),
            peers: bg.peers.map(u64::from),
            key,
            exclude: v4_networks(scenario),
        })
    }

    /// The daily-shape factor at scenario time `t` seconds.
    pub fn diurnal_at(&self, t: f64) -> f64 {
        let [a, b] = self.hours;
        let hour = a + (b - a) * (t / self.duration_s).clamp(0.0, 1.0);
        let h = hour.rem_euclid(24.0);
        let i = h.floor() as usize % 24;
        let frac = h - h.floor();
        self.diurnal[i] * (1.0 - frac) + self.diurnal[(i + 1) % 24] * frac
    }

    /// Packets/s of all background traffic at scenario time `t`.
    pub fn rate(&self, t: f64) -> f64 {
        self.total_pps * self.diurnal_at(t)
    }

    /// Share of background packets in direction `dir` (per mix).
    pub fn direction_share(&self, dir: Direction) -> f64 {
        let total: f64 = self.mix.iter().map(|m| m.share).sum();
        self.mix
            .iter()
            .filter(|m| m.direction == dir)
            .map(|m| m.share / total)
            .sum()
    }

    fn sample(&self, rng: &mut ChaCha8Rng, time_us: u64) -> Packet {
        let h = self.alias.sample(rng);
        let host = self.hosts[h];
        let m = &self.mix[*self.mix_choice.pick(rng)];
        let (client, remote_port, local_port) = match self.peers {
            None => {
                let client = rng.random_range(0..self.clients);
                let remote_port = m.remote_port.draw(rng, hash(self.key, client, 3));
                let local_port = m.local_port.draw(rng, hash(self.key, h as u64, 4));
                (client, remote_port, local_port)
            }
            Some(peers) => {
                // One of the host's peers; the connection's ports are the pair's, the same for
                // every mix entry with the same port model (a download's data and its ACKs).
                let peer = rng.random_range(0..peers);
                let pair = hash(self.key ^ 0x9ee5, h as u64, peer);
                let client = pair % self.clients;
                let remote_port = m
                    .remote_port
                    .stable(mix64(pair ^ 0x0e), hash(self.key, client, 3));
                let local_port = m
                    .local_port
                    .stable(mix64(pair ^ 0x10c), hash(self.key, h as u64, 4));
                (client, remote_port, local_port)
            }
        };
        let remote = public_address(client, self.key ^ 0xc1, &self.exclude);
        let flags = m.flags.as_ref().map_or(0, |f| *f.choice.pick(rng));
        let size = m.sizes.draw(rng).max(min_size(m.protocol));
        // Remote TTLs have crossed the Internet; local ones left a host a hop or two away.
        let (src, dst, src_port, dst_port, ttl) = match m.direction {
            Direction::Incoming => (
                remote,
                host,
                remote_port,
                local_port,
                source_ttl(hash(self.key, client, 5)),
            ),
            Direction::Outgoing => (host, remote, local_port, remote_port, 63),
        };
        Packet {
            time_us,
            src,
            dst,
            protocol: m.protocol.number(),
            src_port,
            dst_port,
            tcp_flags: flags,
            ttl,
            size,
            gre_eth: false,
            outgoing: m.direction == Direction::Outgoing,
            seq_dst: false,
        }
    }
}

/// The smallest IP packet of a protocol: its headers.
fn min_size(protocol: Protocol) -> u16 {
    match protocol {
        Protocol::Tcp => 40,
        Protocol::Udp | Protocol::Icmp => 28,
        Protocol::Gre => 24,
    }
}

/// A consistent TTL for a real source: an initial 64, 128 or 255 minus 6–25 hops.
fn source_ttl(h: u64) -> u8 {
    let initial: u8 = match h % 20 {
        0..=13 => 64,
        14..=18 => 128,
        _ => 255,
    };
    initial - 6 - ((h >> 8) % 20) as u8
}

/// One traffic component (attack or benign) ready to generate.
pub struct TrafficModel {
    pub name: String,
    pub kind: Kind,
    pub direction: Direction,
    pub target: Ipv4Net,
    pub start: f64,
    pub end: f64,
    ramp_up: f64,
    ramp_down: f64,
    jitter: f64,
    /// The plateau second whose rate is exactly the peak.
    peak_second: u64,
    /// Packets/s at the peak, at the chosen scale.
    pub peak_pps: f64,
    pub protocol: Protocol,
    pub sizes: Sizes,
    src_ports: PortModel,
    dst_ports: PortModel,
    flags: Option<FlagModel>,
    gre_eth_share: f64,
    pub sources: u64,
    pub source_prefix: Option<Ipv4Net>,
    active_fraction: f64,
    source_sigma: f64,
    source_cap: f64,
    spoofed: f64,
    alias: WeightedAliasIndex<f64>,
    key: u64,
    exclude: Vec<Ipv4Net>,
    pub composition: Composition,
    /// The pool the sources are a share of.
    pub pool: Option<PoolModel>,
    /// `destinations`: the remote servers' popularity.
    destinations: Option<WeightedAliasIndex<f64>>,
    seq_dst: bool,
}

/// Smooth 0 → 1 on [0, 1], flat at both ends: a logistic-like ramp.
fn smoothstep(u: f64) -> f64 {
    let u = u.clamp(0.0, 1.0);
    u * u * (3.0 - 2.0 * u)
}

impl TrafficModel {
    fn new(
        t: &Traffic,
        index: usize,
        scale: f64,
        seed: u64,
        networks: &[Ipv4Net],
        pool: Option<PoolModel>,
    ) -> Result<Self> {
        let key = mix64(seed ^ mix64(0x7aff_0000 + index as u64));
        let sizes = Sizes::new(&t.sizes)?;
        let peak_pps = match (t.peak_pps, t.peak_bps) {
            (Some(pps), _) => pps,
            (None, Some(bps)) => bps / (8.0 * sizes.mean),
            (None, None) => 0.0,
        } * scale;
        let flags = FlagModel::new(&t.tcp_flags)?;
        let src_ports = PortModel::new(&t.src_ports)?;
        let composition =
            Composition::of(t.protocol, flags.as_ref(), &sizes, t.direction, &src_ports);
        let sources = u64::from(t.sources);
        let weights: Vec<f64> = (0..sources)
            .map(|i| Self::weight_of(key, i, t.source_sigma, t.source_cap))
            .collect();
        let alias = WeightedAliasIndex::new(weights)
            .map_err(|e| anyhow!("{}: source weights: {e}", t.name))?;
        let destinations = match t.destinations {
            Some(n) => {
                let weights: Vec<f64> = (0..u64::from(n))
                    .map(|i| Self::weight_of(key ^ 0xde57, i, t.destination_sigma, 1e9))
                    .collect();
                Some(
                    WeightedAliasIndex::new(weights)
                        .map_err(|e| anyhow!("{}: destination weights: {e}", t.name))?,
                )
            }
            None => None,
        };
        let plateau_mid =
            (t.start_s + t.ramp_up_s + t.start_s + t.duration_s - t.ramp_down_s) / 2.0;
        Ok(TrafficModel {
            name: t.name.clone(),
            kind: t.kind,
            direction: t.direction,
            target: t.target,
            start: t.start_s,
            end: t.start_s + t.duration_s,
            ramp_up: t.ramp_up_s,
            ramp_down: t.ramp_down_s,
            jitter: t.jitter,
            peak_second: plateau_mid.floor() as u64,
            peak_pps,
            protocol: t.protocol,
            sizes,
            src_ports,
            dst_ports: PortModel::new(&t.dst_ports)?,
            flags,
            gre_eth_share: t.gre_eth_share,
            sources,
            source_prefix: t.source_prefix,
            active_fraction: t.active_fraction,
            source_sigma: t.source_sigma,
            source_cap: t.source_cap,
            spoofed: t.spoofed,
            alias,
            key,
            exclude: networks.to_vec(),
            composition,
            pool,
            destinations,
            seq_dst: t.tcp_seq == Some(TcpSeq::Dst),
        })
    }

    /// Lognormal relative rate of source `i`, median 1, capped.
    fn weight_of(key: u64, i: u64, sigma: f64, cap: f64) -> f64 {
        if sigma == 0.0 {
            return 1.0;
        }
        let z = normal(hash(key, i, 11), hash(key, i, 12));
        (sigma * z).exp().min(cap)
    }

    pub fn weight(&self, i: u64) -> f64 {
        Self::weight_of(self.key, i, self.source_sigma, self.source_cap)
    }

    /// Whether source `i` sends in second `s` (churn).
    pub fn active(&self, i: u64, s: u64) -> bool {
        self.active_fraction >= 1.0
            || unit(hash(self.key, i, 0x5ec0_0000 + s)) < self.active_fraction
    }

    pub fn source_address(&self, i: u64) -> Ipv4Addr {
        if let Some(pool) = &self.pool {
            return pool.address(self.pool_member(i));
        }
        match self.source_prefix {
            Some(prefix) => prefix_address(prefix, i, self.key ^ 0x50),
            None => public_address(i, self.key ^ 0x50, &self.exclude),
        }
    }

    /// Source `i`'s member number in its pool: a keyed permutation of the pool, so the first
    /// `sources` of it are a random subset chosen by this component's own key.
    pub fn pool_member(&self, i: u64) -> u64 {
        self.pool
            .as_ref()
            .map_or(i, |pool| permute_below(i, pool.size, self.key ^ 0x9001))
    }

    /// The addresses of every real source (the forged ones of `spoofed` excluded).
    pub fn source_set(&self) -> std::collections::HashSet<Ipv4Addr> {
        (0..self.sources).map(|i| self.source_address(i)).collect()
    }

    /// Whether some packets carry forged sources.
    pub fn spoofs(&self) -> bool {
        self.spoofed > 0.0
    }

    /// The rate factor of second `s` (churn dips; the peak second is exact).
    fn jitter_at(&self, s: u64) -> f64 {
        if self.jitter == 0.0 || s == self.peak_second {
            1.0
        } else {
            1.0 - self.jitter * unit(hash(self.key, s, 0x11))
        }
    }

    /// Packets/s at scenario time `t` seconds.
    pub fn rate(&self, t: f64) -> f64 {
        if t < self.start || t >= self.end {
            return 0.0;
        }
        let up = if self.ramp_up > 0.0 {
            smoothstep((t - self.start) / self.ramp_up)
        } else {
            1.0
        };
        let down = if self.ramp_down > 0.0 {
            smoothstep((self.end - t) / self.ramp_down)
        } else {
            1.0
        };
        self.peak_pps * up.min(down) * self.jitter_at(t.floor() as u64)
    }

    /// Share of the component's packets in second `s` sent by source `i` (active sources share
    /// in proportion to their weights).
    pub fn source_share(&self, i: u64, s: u64) -> f64 {
        if !self.active(i, s) {
            return 0.0;
        }
        let active: f64 = (0..self.sources)
            .filter(|&j| self.active(j, s))
            .map(|j| self.weight(j))
            .sum();
        self.weight(i) / active.max(f64::MIN_POSITIVE)
    }

    /// A source for a packet of second `second`.
    fn pick_source(&self, rng: &mut ChaCha8Rng, second: u64) -> u64 {
        // Rejection keeps the per-second source set to the active ones, in proportion to weight.
        let mut source = self.alias.sample(rng) as u64;
        for _ in 0..64 {
            if self.active(source, second) {
                break;
            }
            source = self.alias.sample(rng) as u64;
        }
        source
    }

    /// A destination address: the target host, or any address of the target prefix.
    fn pick_target(&self, rng: &mut ChaCha8Rng) -> Ipv4Addr {
        if let Some(destinations) = &self.destinations {
            let d = destinations.sample(rng) as u64;
            return public_address(d, self.key ^ 0xd5, &self.exclude);
        }
        if self.target.prefix_len() == 32 {
            self.target.network()
        } else {
            let bits = 32 - u32::from(self.target.prefix_len());
            let offset = rng.random_range(0..(1u64 << bits)) as u32;
            Ipv4Addr::from(u32::from(self.target.network()) | offset)
        }
    }

    /// A packet of the answering direction: from a target address back to a (real) source,
    /// ports swapped.
    fn sample_reply(
        &self,
        reply: &ReplyModel,
        rng: &mut ChaCha8Rng,
        time_us: u64,
        second: u64,
    ) -> Packet {
        let source = self.pick_source(rng, second);
        let owner = hash(self.key, source, 7);
        let client = self.source_address(source);
        let server = self.pick_target(rng);
        let (client_port, server_port) = match self.protocol {
            Protocol::Tcp | Protocol::Udp => (
                self.src_ports.draw(rng, owner),
                self.dst_ports.draw(rng, owner),
            ),
            // Echo reply.
            Protocol::Icmp => (0, 0),
            Protocol::Gre => (0, 0),
        };
        let tcp_flags = reply.flags.as_ref().map_or(0, |f| *f.choice.pick(rng));
        let size = reply.sizes.draw(rng).max(min_size(self.protocol));
        // The answer leaves a monitored host (one hop: TTL 63) or crosses the Internet to one.
        let outgoing = self.direction == Direction::Incoming;
        let ttl = if outgoing {
            63
        } else {
            source_ttl(hash(self.key, u64::from(u32::from(server)), 8))
        };
        Packet {
            time_us,
            src: server,
            dst: client,
            protocol: self.protocol.number(),
            src_port: server_port,
            dst_port: client_port,
            tcp_flags,
            ttl,
            size,
            gre_eth: false,
            outgoing,
            seq_dst: false,
        }
    }

    fn sample(&self, rng: &mut ChaCha8Rng, time_us: u64, second: u64) -> Packet {
        let source = self.pick_source(rng, second);
        let owner = hash(self.key, source, 7);
        let spoofed = self.spoofed > 0.0 && rng.random_bool(self.spoofed);
        let (src, ttl) = if spoofed {
            let any = public_address(
                rng.random::<u32>().into(),
                self.key ^ 0x5900f,
                &self.exclude,
            );
            (any, rng.random_range(1..=255))
        } else if self.direction == Direction::Outgoing {
            // A customer's device one hop behind the router that samples it.
            (self.source_address(source), 63)
        } else {
            (self.source_address(source), source_ttl(owner))
        };
        let dst = self.pick_target(rng);
        let (src_port, dst_port) = match self.protocol {
            Protocol::Tcp | Protocol::Udp => (
                self.src_ports.draw(rng, owner),
                self.dst_ports.draw(rng, owner),
            ),
            // Echo request.
            Protocol::Icmp => (0, 8 << 8),
            Protocol::Gre => (0, 0),
        };
        let tcp_flags = self.flags.as_ref().map_or(0, |f| *f.choice.pick(rng));
        let size = self.sizes.draw(rng).max(min_size(self.protocol));
        let gre_eth = self.protocol == Protocol::Gre
            && self.gre_eth_share > 0.0
            && rng.random_bool(self.gre_eth_share);
        Packet {
            time_us,
            src,
            dst,
            protocol: self.protocol.number(),
            src_port,
            dst_port,
            tcp_flags,
            ttl,
            size,
            gre_eth,
            outgoing: self.direction == Direction::Outgoing,
            seq_dst: self.seq_dst && self.protocol == Protocol::Tcp,
        }
    }
}

/// The answering direction of a benign component ([`Reply`]).
pub struct ReplyModel {
    /// Index of the component answered, in [`Plan::traffic`].
    pub traffic: usize,
    pub ratio: f64,
    /// Opposite to the answered component's.
    pub direction: Direction,
    sizes: Sizes,
    flags: Option<FlagModel>,
    pub composition: Composition,
}

impl ReplyModel {
    fn new(index: usize, reply: &Reply, t: &Traffic) -> Result<Self> {
        let sizes = Sizes::new(&reply.sizes)?;
        let flags = FlagModel::new(&reply.tcp_flags)?;
        let direction = match t.direction {
            Direction::Incoming => Direction::Outgoing,
            Direction::Outgoing => Direction::Incoming,
        };
        // The answer's source port is the forward packets' destination port: answers from port
        // 53 or 123 into the network are in the amplification class, as the engine counts them.
        let composition = Composition::of(
            t.protocol,
            flags.as_ref(),
            &sizes,
            direction,
            &PortModel::new(&t.dst_ports)?,
        );
        Ok(ReplyModel {
            traffic: index,
            ratio: reply.ratio,
            direction,
            sizes,
            flags,
            composition,
        })
    }
}

/// The scenario's monitored IPv4 networks (no Internet source is drawn from them).
fn v4_networks(scenario: &Scenario) -> Vec<Ipv4Net> {
    scenario
        .telemetry
        .networks
        .iter()
        .filter_map(|n| match n {
            ipnet::IpNet::V4(v4) => Some(*v4),
            ipnet::IpNet::V6(_) => None,
        })
        .collect()
}

/// A scenario with its options applied, ready to generate and to state its truth.
pub struct Plan {
    pub scenario: Scenario,
    pub format: Format,
    pub sampling: u32,
    pub seed: u64,
    pub scale_name: Option<String>,
    pub scale: f64,
    /// Unix ms of second 0.
    pub start_ms: u64,
    pub backgrounds: Vec<BackgroundModel>,
    pub traffic: Vec<TrafficModel>,
    /// Answers of benign components, generated after everything else.
    pub replies: Vec<ReplyModel>,
    /// Periodic connections (check-ins, beacons, NTP), packet by packet.
    pub periodic: Vec<PeriodicModel>,
}

impl Plan {
    pub fn new(scenario: Scenario, options: &Options) -> Result<Plan> {
        let scale = scenario.scale_factor(options.scale.as_deref())?;
        let scale_name = options.scale.clone().or_else(|| scenario.scale.clone());
        let seed = options.seed.unwrap_or(scenario.seed);
        let sampling = options.sampling.unwrap_or(scenario.telemetry.sampling);
        if sampling == 0 {
            return Err(anyhow!("--sampling must be at least 1"));
        }
        let start_ms = options.start_ms.unwrap_or(scenario.start_unix_s * 1000);
        if !start_ms.is_multiple_of(1000) {
            return Err(anyhow!("the start time must be a whole second"));
        }
        let networks = v4_networks(&scenario);
        let backgrounds = scenario
            .backgrounds
            .iter()
            .enumerate()
            .map(|(i, bg)| BackgroundModel::new(&scenario, bg, i, seed))
            .collect::<Result<Vec<_>>>()?;
        let traffic = scenario
            .traffic
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let pool = t
                    .pool
                    .as_deref()
                    .and_then(|name| scenario.pool(name))
                    .map(|p| PoolModel::new(p, &networks));
                TrafficModel::new(t, i, scale, seed, &networks, pool)
            })
            .collect::<Result<Vec<_>>>()?;
        let periodic = scenario
            .periodic
            .iter()
            .enumerate()
            .map(|(i, p)| PeriodicModel::new(p, i, seed, f64::from(scenario.duration_s)))
            .collect();
        let replies = scenario
            .traffic
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.reply.as_ref().map(|r| ReplyModel::new(i, r, t)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Plan {
            format: options.format.unwrap_or(scenario.telemetry.format),
            sampling,
            seed,
            scale_name,
            scale,
            start_ms,
            backgrounds,
            traffic,
            replies,
            periodic,
            scenario,
        })
    }

    pub fn duration_s(&self) -> u64 {
        u64::from(self.scenario.duration_s)
    }

    /// Unix microseconds of scenario time `t` seconds.
    pub fn us_at(&self, t: f64) -> u64 {
        self.start_ms * 1000 + (t * 1e6).max(0.0) as u64
    }

    /// Expected packets in slice `k` (0-based, of `SLICE_MS`) of each component, in this order:
    /// the backgrounds (at least one entry: 0 without any), the traffic components, their
    /// replies. The rate at the slice's middle times its length; generator and truth both use
    /// exactly this.
    pub fn slice_packets(&self, k: u64, out: &mut Vec<f64>) {
        let dt = SLICE_MS as f64 / 1000.0;
        let mid = (k as f64 + 0.5) * dt;
        out.clear();
        if self.backgrounds.is_empty() {
            out.push(0.0);
        }
        out.extend(self.backgrounds.iter().map(|b| b.rate(mid) * dt));
        out.extend(self.traffic.iter().map(|t| t.rate(mid) * dt));
        out.extend(
            self.replies
                .iter()
                .map(|r| self.traffic[r.traffic].rate(mid) * r.ratio * dt),
        );
    }

    /// Where the traffic components start in [`Plan::slice_packets`]' output.
    pub fn first_traffic(&self) -> usize {
        self.backgrounds.len().max(1)
    }

    /// Expected samples in the whole scenario (for size estimates).
    pub fn expected_samples(&self) -> f64 {
        let mut packets = Vec::new();
        let mut total = 0.0;
        for k in 0..self.duration_s() * SLICES_PER_SECOND {
            self.slice_packets(k, &mut packets);
            total += packets.iter().sum::<f64>();
        }
        total / f64::from(self.sampling)
    }
}

/// One `[[periodic]]` component: each host contacts one of the peers every period (± jitter),
/// from a random phase. Every packet of every check-in is a pure function of (key, host,
/// check-in number), and so is whether sampling keeps it.
pub struct PeriodicModel {
    pub name: String,
    pub role: Role,
    pub hosts: Vec<Ipv4Addr>,
    pub peers: Vec<std::net::SocketAddrV4>,
    all_peers: bool,
    pub period_s: f64,
    pub jitter: f64,
    connection: Connection,
    packets: u32,
    size: u16,
    local_port: Option<u16>,
    pub start: f64,
    pub end: f64,
    key: u64,
}

impl PeriodicModel {
    fn new(p: &Periodic, index: usize, seed: u64, duration_s: f64) -> Self {
        let key = mix64(seed ^ mix64(0x9e71_0000 + index as u64));
        let hosts = if p.hosts.is_empty() {
            let prefix = p.host_prefix.unwrap_or_default();
            (0..u64::from(p.host_count))
                .map(|i| prefix_address(prefix, i, key ^ 0x40))
                .collect()
        } else {
            p.hosts.clone()
        };
        PeriodicModel {
            name: p.name.clone(),
            role: p.role,
            hosts,
            peers: p.peers.clone(),
            all_peers: p.all_peers,
            period_s: p.period_s,
            jitter: p.jitter,
            connection: p.connection,
            packets: p.packets,
            size: p.size,
            local_port: p.local_port,
            start: p.start_s,
            end: p.duration_s.map_or(duration_s, |d| p.start_s + d),
            key,
        }
    }

    /// Scenario seconds of host `h`'s first check-in.
    fn first(&self, h: u64) -> f64 {
        self.start + self.period_s * unit(hash(self.key, h, 0xfa5e))
    }

    /// Seconds from check-in `n` to the next.
    pub fn interval(&self, h: u64, n: u64) -> f64 {
        let u = 2.0 * unit(hash(self.key ^ 0x1e7, h, n)) - 1.0;
        self.period_s * (1.0 + self.jitter * u)
    }

    /// The times (scenario seconds) of host `h`'s check-ins.
    pub fn check_ins(&self, h: u64) -> impl Iterator<Item = f64> + '_ {
        let mut t = self.first(h);
        let mut n = 0;
        std::iter::from_fn(move || {
            if t >= self.end {
                return None;
            }
            let now = t;
            t += self.interval(h, n);
            n += 1;
            Some(now)
        })
    }

    /// Every packet of check-in `n` of host `h` at `at_us` (Unix µs), each with whether
    /// 1-in-`sampling` sampling keeps it.
    fn check_in(&self, h: u64, n: u64, at_us: u64, sampling: u32, out: &mut Vec<Packet>) {
        if self.all_peers {
            for p in 0..self.peers.len() as u64 {
                // A few milliseconds apart, as a client polls its servers in turn.
                let at = at_us + p * (1_000 + hash(self.key ^ 0xa11, h, p) % 4_000);
                self.check_in_to(h, n, p, at, sampling, out);
            }
        } else {
            let p = hash(self.key, h, n) % self.peers.len() as u64;
            self.check_in_to(h, n, p, at_us, sampling, out);
        }
    }

    /// Check-in `n` of host `h` to peer number `p`.
    fn check_in_to(
        &self,
        h: u64,
        n: u64,
        p: u64,
        at_us: u64,
        sampling: u32,
        out: &mut Vec<Packet>,
    ) {
        let host = self.hosts[h as usize];
        let c = hash(self.key ^ mix64(p), h, n);
        let peer = self.peers[p as usize];
        // Round trip 15–95 ms, stable per host and peer.
        let rtt_us = 15_000 + hash(self.key ^ 0x277, h, u64::from(u32::from(*peer.ip()))) % 80_000;
        let ttl_in = source_ttl(hash(self.key, u64::from(u32::from(*peer.ip())), 5));
        let ephemeral = 32_768 + (mix64(c ^ 0x90) % 28_232) as u16;
        let keep = |i: u64| {
            sampling <= 1
                || unit(hash(self.key ^ 0x5a ^ mix64(p + 1), h, (n << 12) | i))
                    < 1.0 / f64::from(sampling)
        };
        let mut i = 0u64;
        let mut push = |out: &mut Vec<Packet>,
                        dt_us: u64,
                        outgoing: bool,
                        protocol: u8,
                        local: u16,
                        flags: u8,
                        size: u16| {
            let kept = keep(i);
            i += 1;
            if !kept {
                return;
            }
            let (src, dst, src_port, dst_port, ttl) = if outgoing {
                (host, *peer.ip(), local, peer.port(), 63)
            } else {
                (*peer.ip(), host, peer.port(), local, ttl_in)
            };
            out.push(Packet {
                time_us: at_us + dt_us,
                src,
                dst,
                protocol,
                src_port,
                dst_port,
                tcp_flags: flags,
                ttl,
                size,
                gre_eth: false,
                outgoing,
                seq_dst: false,
            });
        };
        const SYN: u8 = 0x02;
        const ACK: u8 = 0x10;
        const PSH_ACK: u8 = 0x18;
        const FIN_ACK: u8 = 0x11;
        match self.connection {
            Connection::Short => {
                push(out, 0, true, 6, ephemeral, SYN, 60);
                push(out, rtt_us, false, 6, ephemeral, SYN | ACK, 60);
                push(out, rtt_us + 200, true, 6, ephemeral, ACK, 52);
                let mut t = rtt_us + 400;
                for _ in 0..self.packets {
                    push(out, t, true, 6, ephemeral, PSH_ACK, self.size);
                    push(out, t + rtt_us, false, 6, ephemeral, PSH_ACK, self.size);
                    t += rtt_us + 1_000;
                }
                push(out, t, true, 6, ephemeral, FIN_ACK, 52);
                push(out, t + rtt_us, false, 6, ephemeral, FIN_ACK, 52);
                push(out, t + rtt_us + 200, true, 6, ephemeral, ACK, 52);
            }
            Connection::Persistent => {
                let port = 32_768 + (hash(self.key, h, 0x9e75) % 28_232) as u16;
                push(out, 0, true, 6, port, ACK, 52);
                push(out, rtt_us, false, 6, port, ACK, 52);
            }
            Connection::Udp => {
                let port = self.local_port.unwrap_or(ephemeral);
                push(out, 0, true, 17, port, 0, self.size);
                push(out, rtt_us, false, 17, port, 0, self.size);
            }
        }
    }
}

/// The periodic components' packets in time order, check-in by check-in: a heap of each
/// host's next check-in, and a heap of the packets generated but not yet due.
struct PeriodicQueue {
    /// (time µs, component, host, check-in number, next check-in's scenario seconds).
    next: std::collections::BinaryHeap<std::cmp::Reverse<(u64, usize, u64, u64)>>,
    /// Scenario seconds of each (component, host)'s next check-in.
    times: Vec<Vec<f64>>,
    due: std::collections::BinaryHeap<std::cmp::Reverse<(u64, u64)>>,
    packets: std::collections::HashMap<u64, Packet>,
    counter: u64,
    scratch: Vec<Packet>,
}

impl PeriodicQueue {
    fn new(plan: &Plan) -> Self {
        let mut next = std::collections::BinaryHeap::new();
        let mut times = Vec::new();
        for (c, p) in plan.periodic.iter().enumerate() {
            let mut per = Vec::new();
            for h in 0..p.hosts.len() as u64 {
                let t = p.first(h);
                per.push(t);
                if t < p.end {
                    next.push(std::cmp::Reverse((plan.us_at(t), c, h, 0)));
                }
            }
            times.push(per);
        }
        PeriodicQueue {
            next,
            times,
            due: std::collections::BinaryHeap::new(),
            packets: std::collections::HashMap::new(),
            counter: 0,
            scratch: Vec::new(),
        }
    }

    /// Generates the check-ins starting before `until_us`.
    fn advance(&mut self, plan: &Plan, until_us: u64) {
        while let Some(&std::cmp::Reverse((at_us, c, h, n))) = self.next.peek() {
            if at_us >= until_us {
                break;
            }
            self.next.pop();
            let p = &plan.periodic[c];
            self.scratch.clear();
            p.check_in(h, n, at_us, plan.sampling, &mut self.scratch);
            for packet in self.scratch.drain(..) {
                self.counter += 1;
                self.due
                    .push(std::cmp::Reverse((packet.time_us, self.counter)));
                self.packets.insert(self.counter, packet);
            }
            let t = self.times[c][h as usize] + p.interval(h, n);
            self.times[c][h as usize] = t;
            if t < p.end {
                self.next
                    .push(std::cmp::Reverse((plan.us_at(t), c, h, n + 1)));
            }
        }
    }

    /// The next packet due at or before `until_us`.
    fn pop_until(&mut self, until_us: u64) -> Option<Packet> {
        let &std::cmp::Reverse((t, id)) = self.due.peek()?;
        if t > until_us {
            return None;
        }
        self.due.pop();
        self.packets.remove(&id)
    }
}

/// What the generator hands on: a sampled packet, or the end of a slice (Unix microseconds).
pub enum Step<'a> {
    Packet(&'a Packet),
    SliceEnd(u64),
}

/// Draws the sampled packets of a plan, slice by slice, in time order: per slice and component,
/// a Poisson number of samples (random 1-in-N sampling of the component's packets), then each
/// sample's fields from the component's distributions, components interleaved at random.
pub fn generate(plan: &Plan, mut on: impl FnMut(Step<'_>) -> Result<()>) -> Result<u64> {
    use rand::SeedableRng;
    use rand_distr::Poisson;
    let mut rng = ChaCha8Rng::seed_from_u64(mix64(plan.seed ^ 0x5a3b_1e00));
    let rate = f64::from(plan.sampling);
    let mut expected = Vec::new();
    let mut counts: Vec<u64> = Vec::new();
    let mut total = 0u64;
    let mut periodic = PeriodicQueue::new(plan);
    for k in 0..plan.duration_s() * SLICES_PER_SECOND {
        let slice_end_us = plan.start_ms * 1000 + (k + 1) * SLICE_MS * 1000;
        periodic.advance(plan, slice_end_us);
        plan.slice_packets(k, &mut expected);
        counts.clear();
        for &packets in &expected {
            let lambda = packets / rate;
            let n = if lambda > 0.0 {
                Poisson::new(lambda)
                    .map(|d| d.sample(&mut rng) as u64)
                    .map_err(|e| anyhow!("sample count: {e}"))?
            } else {
                0
            };
            counts.push(n);
        }
        let slice_start_us = plan.start_ms * 1000 + k * SLICE_MS * 1000;
        let second = k / SLICES_PER_SECOND;
        let n_total: u64 = counts.iter().sum();
        let mut left = n_total;
        for i in 0..n_total {
            // Pick the component of this sample in proportion to the samples it has left: a
            // uniformly random interleaving.
            let mut r = rng.random_range(0..left);
            let mut c = 0;
            while r >= counts[c] {
                r -= counts[c];
                c += 1;
            }
            counts[c] -= 1;
            left -= 1;
            let time_us = slice_start_us + (2 * i + 1) * SLICE_MS * 1000 / (2 * n_total);
            while let Some(p) = periodic.pop_until(time_us) {
                on(Step::Packet(&p))?;
                total += 1;
            }
            let first = plan.first_traffic();
            let p = if c < first {
                match plan.backgrounds.get(c) {
                    Some(bg) => bg.sample(&mut rng, time_us),
                    None => continue,
                }
            } else if c < first + plan.traffic.len() {
                plan.traffic[c - first].sample(&mut rng, time_us, second)
            } else {
                let reply = &plan.replies[c - first - plan.traffic.len()];
                plan.traffic[reply.traffic].sample_reply(reply, &mut rng, time_us, second)
            };
            on(Step::Packet(&p))?;
        }
        while let Some(p) = periodic.pop_until(slice_end_us - 1) {
            on(Step::Packet(&p))?;
            total += 1;
        }
        total += n_total;
        on(Step::SliceEnd(slice_end_us))?;
    }
    Ok(total)
}
