//! `floodwall check-config FILE`: every problem found, one line each, `file:line:column: what
//! is wrong — what to do`; exit 1 if there is any, else a one-line summary and exit 0.

use anyhow::{anyhow, Result};
use floodwall::config::check;

use super::CheckConfigArgs;

pub fn run(args: CheckConfigArgs) -> Result<()> {
    let origin = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| anyhow!("cannot read configuration {origin}: {e}"))?;
    let checked = check::check(&text);
    match checked.config {
        Some(config) if checked.problems.is_empty() => {
            println!("{origin}: OK: {}", check::summary(&config));
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
