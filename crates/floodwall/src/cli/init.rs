//! `floodwall init`: a commented floodwall.toml with every option and its default, or (with
//! `--reference`) the Markdown configuration reference, both from the config structs.

use std::io::Write;

use anyhow::{bail, Context, Result};
use floodwall_daemon::config::reference;

use super::InitArgs;

pub fn run(args: InitArgs) -> Result<()> {
    let text = if args.reference {
        reference::markdown()
    } else {
        reference::template(&args.network)
    };
    let output = args.output.unwrap_or_else(|| {
        if args.reference {
            "docs/configuration.md".into()
        } else {
            "floodwall.toml".into()
        }
    });
    if output.as_os_str() == "-" {
        std::io::stdout().write_all(text.as_bytes())?;
        return Ok(());
    }
    if output.exists() && !args.force {
        bail!(
            "{} exists; not overwriting it (pass --force to replace it, or --output FILE)",
            output.display()
        );
    }
    std::fs::write(&output, text).with_context(|| format!("cannot write {}", output.display()))?;
    if args.reference {
        eprintln!("wrote {}", output.display());
    } else if args.network.is_empty() {
        eprintln!(
            "wrote {}: add your prefixes to `networks` (floodwall run refuses without them), then \
             `floodwall check-config {}`",
            output.display(),
            output.display()
        );
    } else {
        eprintln!(
            "wrote {}; check it after editing with `floodwall check-config {}`",
            output.display(),
            output.display()
        );
    }
    Ok(())
}
