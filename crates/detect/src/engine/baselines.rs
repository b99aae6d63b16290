//! Baselines across restarts: every host's and prefix's learnt normal out, to save; saved
//! ones back in before ingest, so a restart does not start learning from nothing.

use crate::addrmap::Key;
use crate::baseline::{Baseline, Baselines};

use super::limits::watch_levels;
use super::{Engine, NONE};

impl Engine {
    /// Every baseline learnt so far (hosts and prefixes with any history), to save.
    pub fn baselines(&self) -> Baselines {
        let mut out = Baselines::default();
        for (i, host) in self.hosts.iter().enumerate() {
            let states = [host.dir_in.baseline.state(), host.dir_out.baseline.state()];
            if host.prefix != NONE && states.iter().any(|s| s.history > 0) {
                out.hosts.push((self.host_addrs[i], states));
            }
        }
        for prefix in &self.prefixes {
            let state = prefix.residue.baseline.state();
            if prefix.live && state.history > 0 {
                out.prefixes.push((prefix.net, state));
            }
        }
        out
    }

    /// Resumes baselines saved by [`Engine::baselines`] (before a restart), for addresses and
    /// prefixes still monitored (and of this engine's shard: a file saved by any number of
    /// shards resumes in any other), up to `max_hosts`; invalid entries (non-finite, negative) are
    /// skipped. Call before ingesting: the time the daemon was down is not counted as silence.
    /// Returns the host and prefix baselines resumed.
    pub fn restore_baselines(&mut self, saved: &Baselines) -> (usize, usize) {
        let b = self.open;
        let mut restored = (0, 0);
        for (addr, states) in &saved.hosts {
            let Some(group) = self.networks.lookup(*addr).filter(|_| self.owns(*addr)) else {
                continue;
            };
            let h = match self.host_index.get(Key::of(*addr)) {
                Some(h) => h,
                None => match self.new_host(*addr, group) {
                    Some(h) => h,
                    None => break,
                },
            };
            let params = &self.baseline;
            let g = &self.groups[group as usize];
            let host = &mut self.hosts[h as usize];
            // Aged from now: forgotten after `host_idle_timeout_s` if it never comes back.
            host.touched = b;
            let mut any = false;
            for (d, state) in states.iter().enumerate() {
                if let Some(baseline) = Baseline::restored(state, b) {
                    let dir = host.dir_mut(d);
                    dir.baseline = baseline;
                    let (wp, wb) = watch_levels(g, d, &dir.baseline, params, &self.config);
                    dir.watch_packets = wp as f32;
                    dir.watch_bytes = wb as f32;
                    any = true;
                }
            }
            restored.0 += usize::from(any);
        }
        for (net, state) in &saved.prefixes {
            let addr = net.network();
            let Some(group) = self.networks.lookup(addr).filter(|_| self.owns(addr)) else {
                continue;
            };
            let Some(p) = self.prefix_of(addr, group) else {
                break;
            };
            let prefix = &mut self.prefixes[p as usize];
            if prefix.net != *net {
                continue; // saved with another prefix length
            }
            if let Some(baseline) = Baseline::restored(state, b) {
                prefix.touched = b;
                prefix.residue.baseline = baseline;
                let c = &self.groups[group as usize].carpet;
                let (lp, lm) = c.lowest(c.levels(&baseline, &self.carpet_baseline));
                let r = self.config.watch_ratio;
                prefix.residue.watch_packets = (lp * r) as f32;
                prefix.residue.watch_bytes = (lm * r * 1e6 / 8.0) as f32;
                restored.1 += 1;
            }
        }
        restored
    }
}
