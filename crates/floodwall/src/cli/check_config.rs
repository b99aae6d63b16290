//! `floodwall check-config FILE`: every problem found, one line each, `file:line:column: what
//! is wrong — what to do`; exit 1 if there is any, else a one-line summary and exit 0.

use anyhow::{anyhow, Result};
use floodwall_daemon::config::check;

use super::CheckConfigArgs;

pub fn run(args: CheckConfigArgs) -> Result<()> {
    let origin = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| anyhow!("cannot read configuration {origin}: {e}"))?;
    let checked = check::check(&text);
    match checked.config {
        Some(config) if checked.problems.is_empty() => {
            // Valid, but a rule of these kinds would reach no router: loud, not fatal (dry runs
            // and staged roll-outs start like this).
            let unmitigated = config.unmitigated_kinds();
            for kind in &unmitigated {
                eprintln!(
                    "{origin}: warning: {kind} mitigation is enabled but no mitigator carries {kind} rules — configure [bgp] peers with its families, [exabgp] or [nftables], or set dry_run = true; until then its rules are recorded as failed, not announced"
                );
            }
            let status = match unmitigated.len() {
                0 => "OK".to_string(),
                n => format!("OK with {n} warning{}", if n == 1 { "" } else { "s" }),
            };
            println!("{origin}: {status}: {}", check::summary(&config));
            Ok(())
        }
        _ => {
            for problem in &checked.problems {
                eprintln!("{}", problem.display(&origin));
            }
            let n = checked.problems.len();
            Err(anyhow!(
                "{origin}: {n} problem{} found",
                if n == 1 { "" } else { "s" }
            ))
        }
    }
}
