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

/// `floodwall completions SHELL`: the completion script on stdout.
pub fn completions(mut cmd: clap::Command, args: &CompletionsArgs) -> Result<()> {
    let name = cmd.get_name().to_string();
    // clap_complete panics on a write error (a closed pipe): render first, then write.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, name, &mut script);
    std::io::stdout().write_all(&script)?;
    Ok(())
}

/// `floodwall man`: floodwall.1 on stdout, or every page into `--out-dir` (their paths on
/// stderr).
pub fn man(cmd: clap::Command, args: &ManArgs) -> Result<()> {
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
            let mut roff = Vec::new();
            page(cmd).render(&mut roff)?;
            std::io::stdout().write_all(&roff)?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let mut pending = vec![cmd];
            while let Some(cmd) = pending.pop() {
                // Hidden commands (these generators, internal helpers) stay undocumented.
                pending.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
                let path = page(cmd)
                    .generate_to(dir)
                    .with_context(|| format!("cannot write a man page into {}", dir.display()))?;
                eprintln!("{}", path.display());
            }
        }
    }
    Ok(())
}
