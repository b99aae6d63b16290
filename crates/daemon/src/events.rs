//! Where attack events go: JSON lines (stdout or a file, one object per event) and a readable
//! table for people.

use std::io::{self, Write};

use floodwall_detect::time::rfc3339_ms;
use floodwall_detect::{AttackEvent, EventKind};

use crate::units::{human_bps, human_pps};

pub const TABLE_HEADER: &str = "time                      event     dir  target                  rate                     peak                 sources  vectors";

/// Writes one event as a table row.
pub fn write_row(out: &mut impl Write, event: &AttackEvent) -> io::Result<()> {
    let kind = match event.event {
        EventKind::AttackStarted => "started",
        EventKind::AttackUpdated => "updated",
        EventKind::AttackEnded => "ended",
    };
    let direction = match event.direction {
        floodwall_detect::Direction::Incoming => "in",
        floodwall_detect::Direction::Outgoing => "out",
    };
    let target = if event.carpet_bombing {
        format!("{} (carpet)", event.target)
    } else {
        event.target.to_string()
    };
    let vectors: Vec<String> = event
        .vectors
        .iter()
        .map(|v| {
            serde_json::to_value(v)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        })
        .collect();
    writeln!(
        out,
        "{:<25} {:<9} {:<4} {:<23} {:>10} {:>12}  {:>10} {:>10} {:>8}  {}",
        rfc3339_ms(event.ts),
        kind,
        direction,
        target,
        human_bps(event.bps),
        human_pps(event.pps),
        human_bps(event.peak_bps),
        human_pps(event.peak_pps),
        event.sources,
        vectors.join(",")
    )
}

/// One line for a log: what happened, to whom, how big.
pub fn log_line(event: &AttackEvent) -> String {
    let mut row = Vec::new();
    let _ = write_row(&mut row, event);
    String::from_utf8_lossy(&row).trim_end().to_string()
}

/// One readable line for an `infected_host` or `campaign` event (the replay table, logs).
pub fn hunt_line(event: &floodwall_hunt::HuntEvent) -> String {
    use floodwall_hunt::HuntEvent;
    match event {
        HuntEvent::InfectedHost { ts, host } => {
            let reasons: Vec<&str> = host.reasons.iter().map(|r| r.kind.as_str()).collect();
            format!(
                "{:<25} infected  out  {:<23} confidence {:.2}: {} (hostgroup {})",
                rfc3339_ms(*ts),
                host.host.to_string(),
                host.confidence,
                reasons.join(", "),
                host.hostgroup
            )
        }
        HuntEvent::Campaign { ts, campaign: c } => format!(
            "{:<25} campaign  in   {:<23} {}: attack {} (overlap {:.0} %), {} attacks, ~{} sources",
            rfc3339_ms(*ts),
            c.campaign,
            match c.change {
                floodwall_hunt::CampaignChange::Formed => "formed",
                floodwall_hunt::CampaignChange::Grown => "grown",
            },
            c.attack_id,
            100.0 * c.overlap,
            c.attack_count,
            c.sources
        ),
    }
}
