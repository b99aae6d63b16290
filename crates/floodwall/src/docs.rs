//! Man pages and shell completions, generated from the CLI definition itself so that packages
//! always document the commands the binary really has (`floodwall man`, `floodwall
//! completions`; both hidden, used by `scripts/package`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Args;
use clap_complete::Shell;

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// Shell to write the completion script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write floodwall.1 and a page per subcommand (floodwall-run.1, floodwall-bench-ingest.1,
    /// ...) into this directory; without it, print floodwall.1 on stdout.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Writes the completion script for `shell` to `out`.
pub fn completions(
    mut cmd: clap::Command,
    args: &CompletionsArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let name = cmd.get_name().to_string();
    // clap_complete panics on a write error (a closed pipe): render first, then write.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, name, &mut script);
    out.write_all(&script)?;
    Ok(())
}

/// Writes the man pages as `args` says; returns the files written (none for stdout).
pub fn man(cmd: clap::Command, args: &ManArgs, out: &mut dyn Write) -> Result<Vec<PathBuf>> {
    // `help` is a clap artefact, not a command worth a page. Building gives every subcommand
    // its page name (floodwall-run) and its synopsis name (floodwall run).
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    // Subcommands carry no version of their own: name the release on every page's footer.
    let source = format!(
        "{} {}",
        cmd.get_name(),
        cmd.get_version().unwrap_or_default()
    );
    let page = |cmd: clap::Command| {
        clap_mangen::Man::new(cmd)
            .source(source.clone())
            .manual("Floodwall Manual")
    };
    match &args.out_dir {
        None => {
            page(cmd).render(out)?;
            Ok(Vec::new())
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let mut written = Vec::new();
            let mut pending = vec![cmd];
            while let Some(cmd) = pending.pop() {
                // Hidden commands (these generators, internal helpers) stay undocumented.
                pending.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
                let path = page(cmd)
                    .generate_to(dir)
                    .with_context(|| format!("cannot write a man page into {}", dir.display()))?;
                written.push(path);
            }
            written.sort();
            Ok(written)
        }
    }
}
