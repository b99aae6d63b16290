//! How records and counters are shown: JSON lines for scripts, aligned text for people.

use std::io::{self, Write};

use floodwall_wire::{DecodeError, ExporterCounters, FlowRecord};
use serde::ser::{Serialize, SerializeStruct, Serializer};

/// A flow record as one JSON object (`floodwall flows --json`).
pub struct RecordJson<'a>(pub &'a FlowRecord);

impl Serialize for RecordJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut s = serializer.serialize_struct("FlowRecord", 16)?;
        s.serialize_field("exporter", &r.exporter)?;
        s.serialize_field("time_ms", &r.time_ms)?;
        s.serialize_field("src", &r.src)?;
        s.serialize_field("dst", &r.dst)?;
        s.serialize_field("protocol", &r.protocol)?;
        s.serialize_field("src_port", &r.src_port)?;
        s.serialize_field("dst_port", &r.dst_port)?;
        s.serialize_field("tcp_flags", &r.tcp_flags)?;
        s.serialize_field("bytes", &r.bytes)?;
        s.serialize_field("packets", &r.packets)?;
        s.serialize_field("sampling_rate", &r.sampling_rate)?;
        s.serialize_field("fragment", &r.fragment)?;
        s.serialize_field("ttl", &r.ttl)?;
        s.serialize_field("packet_len", &r.packet_len)?;
        s.serialize_field("in_if", &r.in_if)?;
        s.serialize_field("out_if", &r.out_if)?;
        s.end()
    }
}

/// Exporter counters as one JSON object, errors by kind name.
pub struct CountersJson<'a>(pub &'a ExporterCounters);

impl Serialize for CountersJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let errors: serde_json::Map<String, serde_json::Value> = DecodeError::ALL
            .iter()
            .map(|kind| (kind.name().to_string(), c.error(*kind).into()))
            .collect();
        let mut s = serializer.serialize_struct("ExporterCounters", 16)?;
        s.serialize_field("datagrams", &c.datagrams)?;
        s.serialize_field("records", &c.records)?;
        s.serialize_field("errors", &errors)?;
        s.serialize_field("sequence_lost", &c.sequence_lost)?;
        s.serialize_field("sequence_resets", &c.sequence_resets)?;
        s.serialize_field("counter_samples", &c.counter_samples)?;
        s.serialize_field("records_without_ip", &c.records_without_ip)?;
        s.serialize_field("invalid_sampling", &c.invalid_sampling)?;
        s.serialize_field("templates_learned", &c.templates_learned)?;
        s.serialize_field("templates_rejected", &c.templates_rejected)?;
        s.serialize_field("templates_withdrawn", &c.templates_withdrawn)?;
        s.serialize_field("unknown_template_sets", &c.unknown_template_sets)?;
        s.serialize_field("pending_decoded", &c.pending_decoded)?;
        s.serialize_field("pending_dropped", &c.pending_dropped)?;
        s.serialize_field("future_timestamps", &c.future_timestamps)?;
        s.serialize_field("sampling_rate_out_of_range", &c.sampling_rate_out_of_range)?;
        s.serialize_field("sampling_rate_changes", &c.sampling_rate_changes)?;
        s.serialize_field("untrusted_rate_records", &c.untrusted_rate_records)?;
        s.serialize_field("impossible_samples", &c.impossible_samples)?;
        s.serialize_field("inconsistent_samples", &c.inconsistent_samples)?;
        s.serialize_field("evictions", &c.evictions)?;
        s.end()
    }
}

/// An exporter's counters in words, labelled: the decode errors by kind and every other
/// counter that is not zero, after the datagrams, records and sequence accounting.
pub fn counters_text(counters: &ExporterCounters) -> String {
    let json = serde_json::to_value(CountersJson(counters)).unwrap_or_default();
    let words = |key: &str| key.replace('_', " ");
    let mut parts = Vec::new();
    let errors: Vec<String> = json["errors"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, n)| n.as_u64() != Some(0))
        .map(|(kind, n)| format!("{n} {}", words(kind)))
        .collect();
    for (key, value) in json.as_object().into_iter().flatten() {
        let always = matches!(
            key.as_str(),
            "datagrams" | "records" | "sequence_lost" | "sequence_resets"
        );
        if key == "errors" {
            parts.push(if errors.is_empty() {
                "0 decode errors".to_string()
            } else {
                format!(
                    "{} decode errors ({})",
                    counters.total_errors(),
                    errors.join(", ")
                )
            });
        } else if always || value.as_u64() != Some(0) {
            parts.push(format!("{value} {}", words(key)));
        }
    }
    parts.join(", ")
}

/// Writes records as JSON lines.
pub fn write_json_lines(out: &mut impl Write, records: &[FlowRecord]) -> io::Result<()> {
    for record in records {
        serde_json::to_writer(&mut *out, &RecordJson(record))?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

pub const TABLE_HEADER: &str =
    "time_ms        exporter         src                                      dst                                      proto sport dport flags    packets        bytes  rate";

/// Writes records as aligned text, one a line.
pub fn write_table(out: &mut impl Write, records: &[FlowRecord]) -> io::Result<()> {
    for r in records {
        writeln!(
            out,
            "{:<14} {:<16} {:<40} {:<40} {:>5} {:>5} {:>5} {:>5} {:>10} {:>12} {:>5}",
            r.time_ms,
            r.exporter.to_string(),
            r.src.to_string(),
            r.dst.to_string(),
            r.protocol,
            r.src_port,
            r.dst_port,
            format!("{:#04x}", r.tcp_flags),
            r.packets,
            r.bytes,
            r.sampling_rate
        )?;
    }
    Ok(())
}
