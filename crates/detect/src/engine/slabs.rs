//! Entries come and go: hosts, prefixes and watched details are created on first use in slabs
//! (free slots reused) up to the configured bounds, and idle ones are forgotten by the sweep.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::addrmap::Key;
use crate::baseline::Baseline;
use crate::counters::NO_BUCKET;
use crate::fingerprint::FingerprintBuilder;

use super::entries::{Detail, Host, HostDir, Owner, Prefix};
use super::residue::Residue;
use super::{Engine, IN, NONE, OUT};

impl Engine {
    pub(super) fn new_host(&mut self, addr: IpAddr, group: u16) -> Option<u32> {
        if self.host_index.len() >= self.config.max_hosts {
            return None;
        }
        let prefix = self.prefix_of(addr, group)?;
        self.prefixes[prefix as usize].hosts += 1;
        let g = &self.groups[group as usize];
        let dir = |d: usize| HostDir {
            ring: Default::default(),
            baseline: Baseline::default(),
            detail: NONE,
            watch_packets: g.watch_packets[d] as f32,
            watch_bytes: g.watch_bytes[d] as f32,
        };
        let host = Host {
            dir_in: dir(IN),
            touched: NO_BUCKET,
            evaluated: NO_BUCKET,
            prefix,
            group,
            dirs_touched: 0,
            dir_out: dir(OUT),
        };
        let idx = match self.free_hosts.pop() {
            Some(i) => {
                self.hosts[i as usize] = host;
                self.host_addrs[i as usize] = addr;
                i
            }
            None => {
                // Fault in the slab's next 2 MiB at once, before it is written entry by entry.
                const POPULATE_HOSTS: usize = (2 << 20) / std::mem::size_of::<Host>();
                if self.hosts.len().is_multiple_of(POPULATE_HOSTS) {
                    self.hosts.reserve(POPULATE_HOSTS);
                    let spare = self.hosts.spare_capacity_mut();
                    let n = spare.len().min(POPULATE_HOSTS);
                    crate::prefetch::populate(&mut spare[..n]);
                }
                self.hosts.push(host);
                self.host_addrs.push(addr);
                (self.hosts.len() - 1) as u32
            }
        };
        self.host_index.insert(Key::of(addr), idx);
        Some(idx)
    }

    /// The prefix entry of a monitored address, created on first use (at most `max_hosts`).
    pub(super) fn prefix_of(&mut self, addr: IpAddr, group: u16) -> Option<u32> {
        let net = match addr {
            IpAddr::V4(a) => IpNet::V4(
                Ipv4Net::new(a, self.config.prefix_length_v4)
                    .expect("validated prefix length")
                    .trunc(),
            ),
            IpAddr::V6(a) => IpNet::V6(
                Ipv6Net::new(a, self.config.prefix_length_v6)
                    .expect("validated prefix length")
                    .trunc(),
            ),
        };
        if let Some(&p) = self.prefix_index.get(&net) {
            return Some(p);
        }
        if self.prefix_index.len() >= self.config.max_hosts {
            return None;
        }
        let c = &self.groups[group as usize].carpet;
        let mut residue = Residue::default();
        if c.enabled {
            residue.watch_packets = c.watch_packets as f32;
            residue.watch_bytes = c.watch_bytes as f32;
        }
        let prefix = Prefix {
            net,
            group,
            hosts: 0,
            touched: NO_BUCKET,
            evaluated: NO_BUCKET,
            live: true,
            dirs: Default::default(),
            residue,
        };
        let idx = match self.free_prefixes.pop() {
            Some(i) => {
                self.prefixes[i as usize] = prefix;
                i
            }
            None => {
                self.prefixes.push(prefix);
                (self.prefixes.len() - 1) as u32
            }
        };
        self.prefix_index.insert(net, idx);
        Some(idx)
    }

    pub(super) fn new_detail(&mut self, owner: Owner, dir: usize) -> u32 {
        let detail = Detail {
            owner,
            dir,
            ring: Default::default(),
            fingerprint: FingerprintBuilder::watching(),
            attack: None,
            idle: 0,
            early_evidence: 0,
            early_bucket: NO_BUCKET,
        };
        self.details_live += 1;
        let id = match self.free_details.pop() {
            Some(i) => {
                self.details[i as usize] = Some(detail);
                i
            }
            None => {
                self.details.push(Some(detail));
                (self.details.len() - 1) as u32
            }
        };
        match owner {
            Owner::Host(h) => self.hosts[h as usize].dir_mut(dir).detail = id,
            Owner::Prefix(p) => self.prefixes[p as usize].dirs[dir].detail = id,
        }
        id
    }

    pub(super) fn free_detail(&mut self, id: u32) {
        if let Some(detail) = self.details[id as usize].take() {
            match detail.owner {
                Owner::Host(h) => self.hosts[h as usize].dir_mut(detail.dir).detail = NONE,
                Owner::Prefix(p) => self.prefixes[p as usize].dirs[detail.dir].detail = NONE,
            }
            self.details_live -= 1;
            self.free_details.push(id);
        }
    }

    /// Forgets idle hosts (after 2 × quiet period once their baseline is at the floors, or after
    /// `host_idle_timeout_s`) and prefixes without hosts.
    pub(super) fn sweep(&mut self, b: u32) {
        let short = 2 * self.config.quiet_period_s;
        let long = self.config.host_idle_timeout_s;
        for i in 0..self.hosts.len() {
            let host = &mut self.hosts[i];
            if host.prefix == NONE {
                continue;
            }
            let idle = b.saturating_sub(host.touched);
            if idle < short || host.dirs().iter().any(|d| d.detail != NONE) {
                continue;
            }
            if host.learn_pending() {
                let g = &self.groups[host.group as usize];
                host.learn_quiet(g, &self.baseline, &self.config);
            }
            let params = &self.baseline;
            let forget = idle >= long
                || host.dirs_mut().into_iter().all(|d| {
                    d.baseline.catch_up(b, params);
                    d.baseline.negligible(params)
                });
            if forget {
                self.host_index.remove(Key::of(self.host_addrs[i]));
                self.prefixes[host.prefix as usize].hosts -= 1;
                host.prefix = NONE;
                self.free_hosts.push(i as u32);
                self.stats.hosts_evicted += 1;
            }
        }
        for i in 0..self.prefixes.len() {
            let prefix = &mut self.prefixes[i];
            let idle = b.saturating_sub(prefix.touched);
            if !prefix.live
                || prefix.hosts != 0
                || idle < short
                || prefix.dirs.iter().any(|d| d.detail != NONE)
            {
                continue;
            }
            // The residue baseline outlives the hosts (each may be negligible alone while their
            // sum is not), like a host's baseline, up to `host_idle_timeout_s`.
            let c = &self.groups[prefix.group as usize].carpet;
            let forget = idle >= long || {
                let params = &self.carpet_baseline;
                let baseline = &mut prefix.residue.baseline;
                baseline.catch_up(b, params);
                baseline.negligible_below(params, c.floor_pps, c.floor_bps)
            };
            if forget {
                self.prefix_index.remove(&prefix.net);
                prefix.live = false;
                self.free_prefixes.push(i as u32);
            }
        }
    }
}
