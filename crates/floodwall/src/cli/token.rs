//! `floodwall token`: a new API token and its line for `[http] tokens_file`.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;

use anyhow::{anyhow, Context as _, Result};
use floodwall_daemon::serve::auth;

use super::TokenArgs;

pub fn run(args: TokenArgs) -> Result<()> {
    let valid_name = !args.name.is_empty()
        && args
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
    if !valid_name {
        return Err(anyhow!(
            "--name {:?}: use letters, digits and - _ . @ (one word: the file is split on spaces)",
            args.name
        ));
    }
    let token = auth::new_token().map_err(|e| anyhow!("no randomness for a token: {e}"))?;
    let line = format!("{} {} {}", args.name, args.scope, auth::hash_line(&token));
    match &args.tokens_file {
        Some(path) => {
            let existing = std::fs::read_to_string(path).unwrap_or_default();
            let sep = if existing.is_empty() || existing.ends_with('\n') {
                ""
            } else {
                "\n"
            };
            // The file as it would be must still parse: a duplicate name is refused here, not
            // at the daemon's next re-read.
            auth::parse(&format!("{existing}{sep}{line}\n"), path)?;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            writeln!(file, "{sep}{line}")?;
            eprintln!(
                "floodwall: added {} ({}) to {}; the daemon takes it within a second",
                args.name,
                args.scope,
                path.display()
            );
        }
        None => eprintln!("floodwall: add this line to the [http] tokens_file:\n{line}"),
    }
    // The token itself on stdout alone, for `TOKEN=$(floodwall token ...)`.
    println!("{token}");
    Ok(())
}
