//! The template cache and its bounds: templates per domain, per exporter and in total, data sets
//! held until their template arrives (bounded in bytes and age), and forgetting what times out or
//! belongs to an evicted exporter.

use std::net::IpAddr;

use super::plan::Plan;
use super::record::Uptime;
use super::{DomainKey, FastMap, Flavor, MessageClock, TemplateDecoder};
use crate::{ExporterCounters, FlowRecord};

/// Bookkeeping charged per held data set on top of its bytes, so a flood of tiny sets is bounded
/// by `pending_max_bytes` too.
const HELD_OVERHEAD: usize = 64;
/// No single exporter may hold more than this share of `max_templates`, so an exporter cycling
/// source ids cannot lock every other exporter out of the cache.
const EXPORTER_SHARE_DIVISOR: usize = 8;

#[derive(Debug)]
pub(super) struct Template {
    /// The template record as received, to tell a refresh from a replacement without recompiling.
    pub(super) layout: Box<[u8]>,
    pub(super) plan: Plan,
    pub(super) options: bool,
    pub(super) refreshed_ms: u64,
}

#[derive(Debug, Default)]
pub(super) struct Domain {
    pub(super) templates: FastMap<u16, Template>,
    /// Sampling rate from options data (always >= 1).
    pub(super) sampling_rate: Option<u64>,
    /// IPFIX systemInitTimeMilliseconds from options data.
    pub(super) system_init_ms: Option<u64>,
}

/// A data set that arrived before its template.
#[derive(Debug)]
pub(super) struct HeldSet {
    received_ms: u64,
    export_ms: u64,
    uptime: Uptime,
    body: Box<[u8]>,
}

impl HeldSet {
    fn charge(&self) -> usize {
        self.body.len() + HELD_OVERHEAD
    }
}

impl TemplateDecoder {
    /// Keeps a copy of a data set whose template has not arrived, if it fits.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn hold(
        &mut self,
        key: DomainKey,
        template_id: u16,
        export_ms: u64,
        uptime: Uptime,
        body: &[u8],
        now_ms: u64,
        counters: &mut ExporterCounters,
    ) {
        counters.unknown_template_sets += 1;
        if body.is_empty() {
            return;
        }
        let held = HeldSet {
            received_ms: now_ms,
            export_ms,
            uptime,
            body: Box::from(body),
        };
        // Full: the newcomer is dropped, not older data, so one exporter cannot flush others'.
        if self.pending_bytes + held.charge() > self.limits.pending_max_bytes {
            counters.pending_dropped += 1;
            return;
        }
        self.pending_bytes += held.charge();
        self.pending
            .entry((key, template_id))
            .or_default()
            .push(held);
    }

    /// Stores a template: refresh, replacement, or a new id if every cap allows it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn install(
        &mut self,
        key: DomainKey,
        template_id: u16,
        layout: &[u8],
        specs: &[u8],
        scope_count: usize,
        options: bool,
        now_ms: u64,
        counters: &mut ExporterCounters,
    ) {
        if let Some(known) = self
            .domains
            .get_mut(&key)
            .and_then(|domain| domain.templates.get_mut(&template_id))
        {
            if *known.layout == *layout && known.options == options {
                known.refreshed_ms = now_ms;
                counters.templates_learned += 1;
                return;
            }
        }
        let plan = match Plan::compile(
            key.flavor,
            specs,
            scope_count,
            self.limits.max_template_fields,
        ) {
            Ok(plan) => plan,
            Err(error) => {
                counters.count_error(error);
                return;
            }
        };
        let template = Template {
            layout: Box::from(layout),
            plan,
            options,
            refreshed_ms: now_ms,
        };
        if let Some(known) = self
            .domains
            .get_mut(&key)
            .and_then(|domain| domain.templates.get_mut(&template_id))
        {
            *known = template;
            counters.templates_learned += 1;
            return;
        }
        let per_exporter = self
            .templates_per_exporter
            .get(&key.exporter)
            .copied()
            .unwrap_or(0);
        let exporter_cap = self
            .limits
            .max_templates_per_domain
            .max(self.limits.max_templates / EXPORTER_SHARE_DIVISOR);
        let in_domain = self.domains.get(&key).map_or(0, |d| d.templates.len());
        if in_domain >= self.limits.max_templates_per_domain
            || per_exporter >= exporter_cap
            || self.template_count >= self.limits.max_templates
        {
            counters.templates_rejected += 1;
            return;
        }
        self.domains
            .entry(key)
            .or_default()
            .templates
            .insert(template_id, template);
        *self.templates_per_exporter.entry(key.exporter).or_default() += 1;
        self.template_count += 1;
        counters.templates_learned += 1;
    }

    /// Decodes the data sets held for a template that just arrived.
    pub(super) fn release_pending(
        &mut self,
        key: DomainKey,
        template_id: u16,
        out: &mut Vec<FlowRecord>,
        counters: &mut ExporterCounters,
    ) {
        let Some(held) = self.pending.remove(&(key, template_id)) else {
            return;
        };
        for set in held {
            self.pending_bytes = self.pending_bytes.saturating_sub(set.charge());
            let uptime = match set.uptime {
                // The systemInitTime may have arrived with the template.
                Uptime::InitMs(None) => self.uptime_of(
                    key,
                    MessageClock {
                        export_ms: set.export_ms,
                        sys_uptime: None,
                    },
                ),
                known => known,
            };
            if self
                .decode_data_set(
                    key,
                    template_id,
                    set.export_ms,
                    uptime,
                    &set.body,
                    out,
                    counters,
                )
                .is_some()
            {
                counters.pending_decoded += 1;
            }
        }
    }

    /// IPFIX withdrawal: a template id, or every (options) template for ids 2 and 3.
    pub(super) fn withdraw(
        &mut self,
        key: DomainKey,
        template_id: u16,
        options_set: bool,
        counters: &mut ExporterCounters,
    ) {
        let Some(domain) = self.domains.get_mut(&key) else {
            return;
        };
        let before = domain.templates.len();
        let withdraw_all = template_id == Flavor::Ipfix.template_set_id() && !options_set
            || template_id == Flavor::Ipfix.options_template_set_id() && options_set;
        if withdraw_all {
            domain.templates.retain(|_, t| t.options != options_set);
        } else {
            domain.templates.remove(&template_id);
        }
        let removed = before - domain.templates.len();
        counters.templates_withdrawn += removed as u64;
        self.forget(key, removed);
    }

    /// Book-keeping after `removed` templates of `key` are gone; drops the domain if empty.
    fn forget(&mut self, key: DomainKey, removed: usize) {
        if removed == 0 {
            return;
        }
        self.template_count = self.template_count.saturating_sub(removed);
        if let Some(count) = self.templates_per_exporter.get_mut(&key.exporter) {
            *count = count.saturating_sub(removed);
            if *count == 0 {
                self.templates_per_exporter.remove(&key.exporter);
            }
        }
        if self
            .domains
            .get(&key)
            .is_some_and(|d| d.templates.is_empty())
        {
            self.domains.remove(&key);
        }
    }

    /// Drops data sets held longer than `pending_max_age_ms`, reporting (exporter, data sets
    /// dropped), and forgets templates not refreshed within `template_timeout_ms`.
    pub fn expire(&mut self, now_ms: u64, on_drop: &mut dyn FnMut(IpAddr, u64)) {
        let max_age = self.limits.pending_max_age_ms;
        let mut freed = 0usize;
        self.pending.retain(|(key, _), held| {
            let before = held.len();
            held.retain(|set| {
                let keep = now_ms.saturating_sub(set.received_ms) <= max_age;
                if !keep {
                    freed += set.charge();
                }
                keep
            });
            if held.len() < before {
                on_drop(key.exporter, (before - held.len()) as u64);
            }
            !held.is_empty()
        });
        self.pending_bytes = self.pending_bytes.saturating_sub(freed);

        let timeout = self.limits.template_timeout_ms;
        if timeout == 0 {
            return;
        }
        let mut expired = Vec::new();
        for (key, domain) in self.domains.iter_mut() {
            let before = domain.templates.len();
            domain
                .templates
                .retain(|_, t| now_ms.saturating_sub(t.refreshed_ms) <= timeout);
            if domain.templates.len() < before {
                expired.push((*key, before - domain.templates.len()));
            }
        }
        for (key, removed) in expired {
            self.forget(key, removed);
        }
    }

    /// Forgets everything of the exporters `gone` says yes to (evicted from the decoder's table):
    /// their templates, options state and held data sets.
    pub fn forget_exporters(&mut self, gone: &dyn Fn(IpAddr) -> bool) {
        let mut removed = 0usize;
        self.domains.retain(|key, domain| {
            let keep = !gone(key.exporter);
            if !keep {
                removed += domain.templates.len();
            }
            keep
        });
        self.template_count = self.template_count.saturating_sub(removed);
        self.templates_per_exporter
            .retain(|exporter, _| !gone(*exporter));
        let mut freed = 0usize;
        self.pending.retain(|(key, _), held| {
            let keep = !gone(key.exporter);
            if !keep {
                freed += held.iter().map(HeldSet::charge).sum::<usize>();
            }
            keep
        });
        self.pending_bytes = self.pending_bytes.saturating_sub(freed);
    }

    /// Templates and options templates cached, over all exporters.
    pub fn template_count(&self) -> usize {
        self.template_count
    }

    /// Bytes (plus a fixed overhead per set) of data sets held waiting for their template.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }
}
