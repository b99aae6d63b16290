//! `floodwall mitigations`: the operator's hand on the running daemon's rules.

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use floodwall_daemon::act::control::{request, Reply, Request, RuleKind};
use floodwall_daemon::config::Config;
use floodwall_daemon::units::human_rate;
use floodwall_detect::time::rfc3339_ms;
use floodwall_mitigate::{FlowFilter, Held, Range, Status};

use super::{MitigationsAction, MitigationsArgs, StatusArgs};

/// The state directory named by `--state-dir`, else by the configuration, else the default.
fn state_dir(dir: &Option<PathBuf>, config: &Option<PathBuf>) -> Result<PathBuf> {
    Ok(match (dir, config) {
        (Some(dir), _) => dir.clone(),
        (None, Some(path)) => Config::load(path)?.state.dir,
        (None, None) => Config::default().state.dir,
    })
}

/// The daemon's answer, or its refusal as the error.
fn ask(state_dir: &std::path::Path, req: &Request) -> Result<Reply> {
    let reply = request(state_dir, req)?;
    if !reply.ok {
        return Err(anyhow!(
            "{}",
            reply.error.as_deref().unwrap_or("the daemon refused")
        ));
    }
    Ok(reply)
}

pub fn run(args: MitigationsArgs) -> Result<()> {
    let state_dir = state_dir(&args.state_dir, &args.config)?;
    let req = match args.action.unwrap_or(MitigationsAction::List) {
        MitigationsAction::List => Request::List,
        MitigationsAction::Announce {
            target,
            kind,
            protocol,
            source_port,
            destination_port,
            seconds,
        } => {
            let kind = RuleKind::from(kind);
            let narrowed =
                protocol.is_some() || source_port.is_some() || destination_port.is_some();
            if narrowed && kind != RuleKind::Flowspec {
                return Err(anyhow!(
                    "--protocol and the ports narrow a flowspec rule: add --kind flowspec"
                ));
            }
            let filter = narrowed.then(|| {
                let mut filter = FlowFilter::to(target);
                filter.protocols = protocol.into_iter().collect();
                filter.source_ports = source_port.map(Range::single).into_iter().collect();
                filter.destination_ports =
                    destination_port.map(Range::single).into_iter().collect();
                filter
            });
            Request::Announce {
                target,
                kind,
                filter,
                seconds,
            }
        }
        MitigationsAction::Withdraw { id } => Request::Withdraw { id },
    };
    let reply = ask(&state_dir, &req)?;
    if args.json {
        println!("{}", serde_json::to_string(&reply)?);
        return Ok(());
    }
    let id = reply
        .mitigation
        .as_ref()
        .map(|m| m.id.as_str())
        .unwrap_or_default();
    match &req {
        Request::List | Request::Status => print_list(reply.mitigations.as_deref().unwrap_or(&[])),
        Request::Withdraw { .. } => println!("withdrawn: {id}"),
        Request::Announce { .. } => {
            // What the mitigators did, not what was asked: `announced` only when one put it in
            // the network.
            let status = reply.status.unwrap_or(Status::Held);
            let text = match status {
                Status::DryRun => "dry run, recorded but not announced",
                Status::Held => "already held",
                other => other.as_str(),
            };
            println!("{text}: {id}");
            for d in reply.mitigators.iter().flatten() {
                println!(
                    "  {}: {}{}",
                    d.mitigator,
                    d.status.as_str(),
                    d.detail
                        .as_deref()
                        .map(|t| format!(" ({t})"))
                        .unwrap_or_default()
                );
            }
            if status == Status::Failed {
                return Err(anyhow!(
                    "{id} is held but in no network: no mitigator took it"
                ));
            }
        }
    }
    Ok(())
}

fn print_list(held: &[Held]) {
    if held.is_empty() {
        println!("no mitigations");
        return;
    }
    println!(
        "{:<40} {:<24} {:<10} {:<25} until",
        "id", "attack", "state", "since"
    );
    for h in held {
        let m = &h.mitigation;
        let state = if m.dry_run {
            "dry-run"
        } else if h.manual {
            "manual"
        } else if h.attack_active {
            "active"
        } else {
            "hold-down"
        };
        let until = h
            .withdraw_at
            .map(rfc3339_ms)
            .unwrap_or_else(|| "attack ends".into());
        println!(
            "{:<40} {:<24} {:<10} {:<25} {}",
            m.id,
            m.attack_id.as_deref().unwrap_or("-"),
            state,
            rfc3339_ms(m.since),
            until
        );
    }
}

/// `floodwall status`: the daemon's latest snapshot.
pub fn status(args: StatusArgs) -> Result<()> {
    let state_dir = state_dir(&args.state_dir, &args.config)?;
    let reply = ask(&state_dir, &Request::Status)?;
    let Some(status) = reply.daemon else {
        return Err(anyhow!("the daemon sent no status"));
    };
    if args.json {
        println!("{}", serde_json::to_string(&status)?);
        return Ok(());
    }
    if status.at_ms == 0 {
        println!("starting: no status yet (the first comes a second after start)");
        return Ok(());
    }
    println!(
        "up {} s (status at {})",
        status.at_ms.saturating_sub(status.started_ms) / 1000,
        rfc3339_ms(status.at_ms)
    );
    let e = &status.engine;
    println!(
        "engine: {} records, {} hosts and {} prefixes tracked, {} attacks active",
        e.records, e.hosts_tracked, e.prefixes_tracked, e.attacks_active
    );
    if !status.shard_records.is_empty() {
        let shards: Vec<String> = status.shard_records.iter().map(u64::to_string).collect();
        println!(
            "engine shards: {} (records each: {})",
            shards.len(),
            shards.join(", ")
        );
    }
    for l in &status.collector.listeners {
        println!(
            "listener {}: {} datagrams, {} not allowed, {} kernel drops",
            l.local.map(|a| a.to_string()).unwrap_or_default(),
            l.datagrams,
            l.not_allowed,
            l.kernel_drops
        );
    }
    for x in &status.collector.exporters {
        println!(
            "exporter {}: {} datagrams, {} records, {} decode errors, {} lost, {} implausible",
            x.address, x.datagrams, x.records, x.decode_errors, x.sequence_lost, x.implausible
        );
    }
    for a in &status.attacks {
        println!(
            "attack {} on {}{}: {}, {} since {}",
            a.attack_id,
            a.target,
            if a.carpet_bombing { " (carpet)" } else { "" },
            human_rate(a.pps as f64, "pps"),
            human_rate(a.bps as f64, "bps"),
            rfc3339_ms(a.started_at)
        );
    }
    println!("mitigations held: {}", status.mitigation.held);
    for m in &status.mitigation.mitigators {
        println!("mitigator {}: {} queued", m.name, m.queued);
        for channel in &m.channels {
            println!("  {channel}");
        }
    }
    for s in &status.bus {
        println!(
            "bus {}: {} delivered, {} dropped, {} failed",
            s.name, s.delivered, s.dropped, s.failed
        );
    }
    Ok(())
}
