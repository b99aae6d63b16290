//! Reports for abuse teams, modelled on Shadowserver's infected-device reports: one row per
//! host and reason, with the fields an abuse desk files a ticket from (no ASN or geography:
//! the hosts are the operator's own customers).

use serde::Serialize;

use crate::event::{InfectedHost, Reason, ReasonKind};
use floodwall_detect::time::rfc3339_ms;

/// The CSV columns, in order.
pub const COLUMNS: [&str; 14] = [
    "timestamp",
    "ip",
    "port",
    "hostgroup",
    "prefix",
    "tag",
    "infection",
    "confidence",
    "first_seen",
    "dst_ip",
    "dst_port",
    "count",
    "attack_id",
    "evidence",
];

/// One row: a host and one of its reasons.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ReportRow {
    /// When the reason was last seen (RFC 3339).
    pub timestamp: String,
    pub ip: String,
    /// The host's port where the evidence has one (the scanned or contacted service's port
    /// is `dst_port`).
    pub port: Option<u16>,
    pub hostgroup: String,
    pub prefix: Option<String>,
    /// The reason: `outgoing_attack`, `scanning`, `c2_contact`, `beaconing`.
    pub tag: ReasonKind,
    /// The malware family, when a C2 feed names it (else the Mirai family for probes that
    /// carry its signature).
    pub infection: Option<String>,
    /// The host's confidence (all reasons together).
    pub confidence: f64,
    pub first_seen: String,
    pub dst_ip: Option<String>,
    pub dst_port: Option<u16>,
    /// Records behind the reason.
    pub count: u64,
    pub attack_id: Option<String>,
    /// The evidence in a few words.
    pub evidence: String,
}

/// The rows of these hosts, one per reason, in the hosts' order.
pub fn rows(hosts: &[InfectedHost]) -> Vec<ReportRow> {
    let mut out = Vec::new();
    for h in hosts {
        for r in &h.reasons {
            out.push(ReportRow {
                timestamp: rfc3339_ms(r.last_seen),
                ip: h.host.to_string(),
                port: None,
                hostgroup: h.hostgroup.clone(),
                prefix: h.prefix.map(|p| p.to_string()),
                tag: r.kind,
                infection: infection(r),
                confidence: h.confidence,
                first_seen: rfc3339_ms(r.first_seen),
                dst_ip: r.peers.first().map(|p| p.to_string()),
                dst_port: r.ports.first().copied(),
                count: r.samples,
                attack_id: r.attack_id.clone(),
                evidence: evidence(r),
            });
        }
    }
    out
}

fn infection(r: &Reason) -> Option<String> {
    r.indicators
        .iter()
        .find_map(|i| i.malware.clone())
        .or_else(|| r.mirai_signature.map(|_| "mirai".to_string()))
}

fn evidence(r: &Reason) -> String {
    match r.kind {
        ReasonKind::OutgoingAttack => format!(
            "outgoing {} at up to {} pps",
            r.vectors
                .iter()
                .map(|v| v.name())
                .collect::<Vec<_>>()
                .join("+"),
            r.packets
        ),
        ReasonKind::Scanning => {
            let mut text = format!(
                "SYN probes to {} distinct destinations sampled (~{} in all) on ports {}",
                r.destinations_sampled.unwrap_or(0),
                r.destinations_estimated.unwrap_or(0),
                join(&r.ports)
            );
            if let Some(n) = r.mirai_signature {
                text.push_str(&format!("; {n} with Mirai's sequence number"));
            }
            text
        }
        ReasonKind::C2Contact => format!(
            "{} records to {} ({})",
            r.samples,
            r.indicators
                .iter()
                .map(|i| i.value.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            r.indicators
                .iter()
                .map(|i| i.feed.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ),
        ReasonKind::Beaconing => format!(
            "{} connections every {:.0} s (jitter {:.0} %)",
            r.samples,
            r.period_s.unwrap_or(0.0),
            100.0 * r.jitter.unwrap_or(0.0)
        ),
    }
}

fn join(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join("/")
}

/// Writes the rows as CSV (RFC 4180: fields with a comma, quote or line break are quoted).
pub fn write_csv(out: &mut impl std::io::Write, rows: &[ReportRow]) -> std::io::Result<()> {
    writeln!(out, "{}", COLUMNS.join(","))?;
    for r in rows {
        let fields = [
            r.timestamp.clone(),
            r.ip.clone(),
            opt(r.port),
            csv(&r.hostgroup),
            r.prefix.clone().unwrap_or_default(),
            r.tag.as_str().to_string(),
            csv(r.infection.as_deref().unwrap_or_default()),
            format!("{:.3}", r.confidence),
            r.first_seen.clone(),
            r.dst_ip.clone().unwrap_or_default(),
            opt(r.dst_port),
            r.count.to_string(),
            csv(r.attack_id.as_deref().unwrap_or_default()),
            csv(&r.evidence),
        ];
        writeln!(out, "{}", fields.join(","))?;
    }
    Ok(())
}

fn opt(v: Option<u16>) -> String {
    v.map(|p| p.to_string()).unwrap_or_default()
}

fn csv(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}
