//! The sender as a separate process (`floodwall bench send`), so that its CPU time is not the
//! collector's and it cannot outlive its time: a child that overruns is killed by its PID.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use crossbeam_channel::Receiver;

/// How long past its `--seconds` a sender child may take (start-up, building datagrams) before
/// it is killed.
pub const SENDER_GRACE: Duration = Duration::from_secs(10);

/// Runs `EXE bench send ARGS` to the end and returns its last line of output (its JSON report).
pub fn run_send(exe: &Path, args: &[String], seconds: f64) -> Result<String> {
    let mut child = command(exe, args)
        .spawn()
        .context("starting the sender process")?;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds) + SENDER_GRACE;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the sender did not finish within {seconds} s + {SENDER_GRACE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut output = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut output)?;
    }
    if !status.success() {
        bail!("the sender failed ({status})");
    }
    Ok(output.lines().last().unwrap_or_default().to_string())
}

/// Starts `EXE bench send ARGS` and hands each line it prints to the returned channel as it
/// comes. The caller waits for or kills the child.
pub fn spawn_send(exe: &Path, args: &[String]) -> Result<(Child, Receiver<String>)> {
    let mut child = command(exe, args)
        .spawn()
        .context("starting the sender process")?;
    let stdout = child.stdout.take().context("the sender's stdout")?;
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::Builder::new()
        .name("sender-output".into())
        .spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        })
        .context("spawning the sender's reader")?;
    Ok((child, rx))
}

fn command(exe: &Path, args: &[String]) -> Command {
    let mut command = Command::new(exe);
    command
        .args(["bench", "send"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    command
}
