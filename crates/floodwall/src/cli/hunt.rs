//! `floodwall report infected` and `floodwall campaigns`: what the hunt found, for abuse teams
//! and for attribution. Both read files the daemon keeps (the history database, the campaigns
//! file in the state directory), so they work whether the daemon runs or not.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{anyhow, Context as _, Result};
use floodwall_daemon::config::Config;
use floodwall_daemon::history::query::{History, InfectedQuery};
use floodwall_detect::time::rfc3339_ms;

use super::{CampaignsArgs, InfectedReportArgs, ReportFormat};

fn config_of(path: &Option<PathBuf>, state_dir: &Option<PathBuf>) -> Result<Config> {
    let mut config = match path {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(dir) = state_dir {
        config.state.dir = dir.clone();
    }
    Ok(config)
}

/// `24h`, `7d`, `30m`, `90s` back from `now_ms`; else the text as a time (RFC 3339 or ms).
fn since_ms(text: &str, now_ms: u64) -> Result<String> {
    let unit = text.chars().last().unwrap_or(' ');
    let scale = match unit {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => return Ok(text.to_string()),
    };
    match text[..text.len() - 1].parse::<u64>() {
        Ok(n) => Ok(now_ms.saturating_sub(n.saturating_mul(scale)).to_string()),
        Err(_) => Ok(text.to_string()),
    }
}

pub fn report_infected(args: InfectedReportArgs) -> Result<()> {
    let config = config_of(&args.config, &args.state_dir)?;
    let path = config.history.path_in(&config.state.dir);
    if !path.exists() {
        return Err(anyhow!(
            "no history at {} (the daemon keeps one with [history] enabled = true, the default; \
             give --config or --state-dir of the daemon)",
            path.display()
        ));
    }
    let now = floodwall_daemon::clock::unix_ms();
    let history = History::new(&path, config.history.per_second_s);
    let hosts = history
        .infected(
            &InfectedQuery {
                since: Some(since_ms(&args.since, now)?),
                hostgroup: args.hostgroup.clone(),
                limit: Some(100_000),
            },
            now,
        )
        .map_err(|e| anyhow!("{e}"))?;
    let rows = floodwall_hunt::report::rows(&hosts);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match args.format {
        ReportFormat::Csv => floodwall_hunt::report::write_csv(&mut out, &rows)?,
        ReportFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &rows)?;
            writeln!(out)?;
        }
    }
    out.flush().context("writing the report")
}

pub fn campaigns(args: CampaignsArgs) -> Result<()> {
    let config = config_of(&args.config, &args.state_dir)?;
    let list = floodwall_daemon::hunt::saved_campaigns(&config.state.dir)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        serde_json::to_writer_pretty(&mut out, &list)?;
        writeln!(out)?;
        return out.flush().context("writing the campaigns");
    }
    if list.is_empty() {
        writeln!(
            out,
            "no campaigns in {} (attacks whose sources overlap form one)",
            config.state.dir.display()
        )?;
        return out.flush().context("writing the campaigns");
    }
    writeln!(
        out,
        "{:<16} {:>7} {:>9}  {:<24} {:<24} vectors / targets",
        "campaign", "attacks", "sources", "first seen", "last seen"
    )?;
    for c in &list {
        let vectors: Vec<&str> = c.vectors.iter().map(|v| v.name()).collect();
        let targets: Vec<String> = c.targets.iter().map(|t| t.to_string()).collect();
        writeln!(
            out,
            "{:<16} {:>7} {:>9}  {:<24} {:<24} {} / {}",
            c.campaign,
            c.attack_count,
            c.sources,
            rfc3339_ms(c.first_seen),
            rfc3339_ms(c.last_seen),
            vectors.join(","),
            targets.join(" ")
        )?;
    }
    out.flush().context("writing the campaigns")
}

#[cfg(test)]
mod tests {
    use super::since_ms;

    #[test]
    fn durations_count_back_from_now() {
        assert_eq!(since_ms("24h", 100_000_000).unwrap(), "13600000");
        assert_eq!(since_ms("7d", 700_000_000).unwrap(), "95200000");
        assert_eq!(
            since_ms("2026-12-07T00:00:00Z", 0).unwrap(),
            "2026-12-07T00:00:00Z"
        );
        assert_eq!(since_ms("1765000000000", 0).unwrap(), "1765000000000");
    }
}
