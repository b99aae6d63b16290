//! `floodwall mitigations`: the operator's hand on the running daemon's rules.

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use floodwall_daemon::act::control::{request, Request};
use floodwall_daemon::config::Config;
use floodwall_detect::time::rfc3339_ms;
use floodwall_mitigate::{FlowFilter, Range};
use serde_json::Value;

use super::{MitigationsAction, MitigationsArgs};

pub fn run(args: MitigationsArgs) -> Result<()> {
    let state_dir: PathBuf = match (&args.state_dir, &args.config) {
        (Some(dir), _) => dir.clone(),
        (None, Some(path)) => Config::load(path)?.state.dir,
        (None, None) => Config::default().state.dir,
    };
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
            let narrowed =
                protocol.is_some() || source_port.is_some() || destination_port.is_some();
            if narrowed && kind != "flowspec" {
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
    let response = request(&state_dir, &req)?;
    if response["ok"] != Value::Bool(true) {
        return Err(anyhow!(
            "{}",
            response["error"].as_str().unwrap_or("the daemon refused")
        ));
    }
    if args.json {
        println!("{response}");
        return Ok(());
    }
    match &req {
        Request::List => print_list(&response),
        Request::Withdraw { .. } => {
            println!(
                "withdrawn: {}",
                response["mitigation"]["id"].as_str().unwrap_or_default()
            );
        }
        Request::Announce { .. } => {
            // What the mitigators did, not what was asked: `announced` only when one put it in
            // the network.
            let id = response["mitigation"]["id"].as_str().unwrap_or_default();
            let status = match response["status"].as_str().unwrap_or("held") {
                "dry_run" => "dry run, recorded but not announced",
                "held" => "already held",
                other => other,
            };
            println!("{status}: {id}");
            let failed = response["status"] == "failed";
            for d in response["mitigators"].as_array().into_iter().flatten() {
                println!(
                    "  {}: {}{}",
                    d["mitigator"].as_str().unwrap_or_default(),
                    d["status"].as_str().unwrap_or_default(),
                    d["detail"]
                        .as_str()
                        .map(|t| format!(" ({t})"))
                        .unwrap_or_default()
                );
            }
            if failed {
                return Err(anyhow!(
                    "{id} is held but in no network: no mitigator took it"
                ));
            }
        }
    }
    Ok(())
}

fn print_list(response: &Value) {
    let empty = Vec::new();
    let held = response["mitigations"].as_array().unwrap_or(&empty);
    if held.is_empty() {
        println!("no mitigations");
        return;
    }
    println!(
        "{:<40} {:<24} {:<10} {:<25} until",
        "id", "attack", "state", "since"
    );
    for h in held {
        let m = &h["mitigation"];
        let state = if m["dry_run"] == Value::Bool(true) {
            "dry-run"
        } else if h["manual"] == Value::Bool(true) {
            "manual"
        } else if h["attack_active"] == Value::Bool(true) {
            "active"
        } else {
            "hold-down"
        };
        let until = h["withdraw_at"]
            .as_u64()
            .map(rfc3339_ms)
            .unwrap_or_else(|| "attack ends".into());
        println!(
            "{:<40} {:<24} {:<10} {:<25} {}",
            m["id"].as_str().unwrap_or_default(),
            m["attack_id"].as_str().unwrap_or("-"),
            state,
            m["since"].as_u64().map(rfc3339_ms).unwrap_or_default(),
            until
        );
    }
}
