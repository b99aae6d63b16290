//! Per-exporter counters. Plain integers, bumped by the decoders, read by the collector's metrics.

use crate::DecodeError;

/// What one exporter has sent us and what became of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExporterCounters {
    /// Datagrams received (decoded or not).
    pub datagrams: u64,
    /// Flow records produced.
    pub records: u64,
    /// Datagrams (or rests of datagrams) rejected, by `DecodeError::index()`.
    pub errors: [u64; DecodeError::COUNT],
    /// Units lost according to the protocol's sequence numbers: datagrams for sFlow and NetFlow v9,
    /// flow records for NetFlow v5 and IPFIX (whose sequence numbers count records).
    pub sequence_lost: u64,
    /// Times the sequence went backwards or jumped too far to be loss (exporter restart, reordering).
    pub sequence_resets: u64,
    /// sFlow counter samples seen (parsed past; Floodwall uses flow samples only).
    pub counter_samples: u64,
    /// Samples or flows that carried no IPv4/IPv6 addresses (ARP, MPLS-only, L2 templates...).
    pub records_without_ip: u64,
    /// Records that declared a sampling rate of 0 (treated as unsampled).
    pub invalid_sampling: u64,
    /// NetFlow v9 / IPFIX templates and options templates learned (including refreshes).
    pub templates_learned: u64,
    /// Templates refused because a cache limit was reached.
    pub templates_rejected: u64,
    /// IPFIX template withdrawals honoured.
    pub templates_withdrawn: u64,
    /// Data sets that referenced a template we do not (yet) have.
    pub unknown_template_sets: u64,
    /// Data sets held until their template arrived, then decoded.
    pub pending_decoded: u64,
    /// Data sets dropped because their template never arrived in time or the pending buffer was full.
    pub pending_dropped: u64,
    /// Records stamped in the future by the exporter's clock, re-stamped with the receive time.
    pub future_timestamps: u64,
    /// Records dropped, never scaled, because they claimed a sampling rate above
    /// `Limits::max_sampling_rate`.
    pub sampling_rate_out_of_range: u64,
    /// Sampling rates the exporter had not used before (each then waits out its probation).
    pub sampling_rate_changes: u64,
    /// Records dropped because their sampling rate was still on probation.
    pub untrusted_rate_records: u64,
    /// sFlow flow samples dropped because their source's sample pool grew by less than the
    /// samples taken from it.
    pub impossible_samples: u64,
    /// sFlow flow samples in windows whose sample pool disagreed with rate × samples by more
    /// than 4× (counted, not dropped).
    pub inconsistent_samples: u64,
    /// Times an exporter's state was evicted from a full table (counted in the decoder's
    /// totals of untracked sources, where evicted exporters' counters are folded).
    pub evictions: u64,
}

impl ExporterCounters {
    pub fn count_error(&mut self, error: DecodeError) {
        self.errors[error.index()] += 1;
    }

    pub fn error(&self, error: DecodeError) -> u64 {
        self.errors[error.index()]
    }

    pub fn total_errors(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// Records and samples dropped as implausible: out-of-range or untrusted sampling rates,
    /// impossible sample pools.
    pub fn implausible(&self) -> u64 {
        self.sampling_rate_out_of_range + self.untrusted_rate_records + self.impossible_samples
    }

    /// Adds `other` into `self` (for totals across exporters).
    pub fn accumulate(&mut self, other: &ExporterCounters) {
        self.datagrams += other.datagrams;
        self.records += other.records;
        for (a, b) in self.errors.iter_mut().zip(other.errors.iter()) {
            *a += b;
        }
        self.sequence_lost += other.sequence_lost;
        self.sequence_resets += other.sequence_resets;
        self.counter_samples += other.counter_samples;
        self.records_without_ip += other.records_without_ip;
        self.invalid_sampling += other.invalid_sampling;
        self.templates_learned += other.templates_learned;
        self.templates_rejected += other.templates_rejected;
        self.templates_withdrawn += other.templates_withdrawn;
        self.unknown_template_sets += other.unknown_template_sets;
        self.pending_decoded += other.pending_decoded;
        self.pending_dropped += other.pending_dropped;
        self.future_timestamps += other.future_timestamps;
        self.sampling_rate_out_of_range += other.sampling_rate_out_of_range;
        self.sampling_rate_changes += other.sampling_rate_changes;
        self.untrusted_rate_records += other.untrusted_rate_records;
        self.impossible_samples += other.impossible_samples;
        self.inconsistent_samples += other.inconsistent_samples;
        self.evictions += other.evictions;
    }
}
