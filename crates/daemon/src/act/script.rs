//! Scripts: an operator's program run once per notice, for anything Floodwall does not do
//! itself (paging, tickets, a router API). The notice's JSON comes on stdin; the environment
//! names the essentials so a shell one-liner needs no JSON parser:
//!
//! | variable | value |
//! |---|---|
//! | `FLOODWALL_EVENT` | `attack_started`, `attack_updated`, `attack_ended`, `mitigation_announced`, `mitigation_queued`, `mitigation_failed`, `mitigation_withdrawn` |
//! | `FLOODWALL_TARGET` | the attacked address or prefix (`203.0.113.10/32`) |
//! | `FLOODWALL_ATTACK_ID` | the attack's id (empty for a manual mitigation) |
//! | `FLOODWALL_MITIGATION_ID` | the mitigation's id for mitigation notices, else empty |
//!
//! Runs are serial, on an own thread behind a bounded queue, so a slow script delays only later
//! runs of itself and a full queue drops (and counts) notices. The command is run directly (no
//! shell; write `["/bin/sh", "-c", "…"]` for one). Each run has a timeout: the child gets its
//! own process group, and the whole group is killed when over time, so a script's own children
//! do not outlive it. stdout is discarded, stderr goes to Floodwall's log; a non-zero exit is
//! logged and counted as failed.
//!
//! ```toml
//! [[scripts]]
//! command = ["/usr/local/bin/floodwall-notify", "--noc"]
//! timeout_seconds = 10
//! ```

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::notice::{self, Queue, Stats};
use super::Notifier;

/// One `[[scripts]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ScriptConfig {
    /// The program and its arguments, e.g. `["/usr/local/bin/page-noc", "--urgent"]`.
    /// Required; default: empty (an error).
    #[schemars(example = example_command())]
    pub command: Vec<String>,
    /// Longest a run may take before its process group is killed, in seconds. Default: `10`.
    pub timeout_seconds: f64,
}

fn example_command() -> Vec<&'static str> {
    vec!["/usr/local/bin/floodwall-notify", "--noc"]
}

impl Default for ScriptConfig {
    fn default() -> Self {
        ScriptConfig {
            command: Vec::new(),
            timeout_seconds: 10.0,
        }
    }
}

impl ScriptConfig {
    /// Refuses what cannot work, naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.command.is_empty() || self.command[0].is_empty() {
            bail!("script: `command` is empty");
        }
        if !(self.timeout_seconds > 0.0 && self.timeout_seconds <= 3600.0) {
            bail!(
                "script {:?}: timeout_seconds must be in (0, 3600]",
                self.command
            );
        }
        Ok(())
    }
}

/// Runs a command per notice from its own thread.
pub struct Script {
    name: String,
    queue: Queue,
}

impl Script {
    pub fn new(config: &ScriptConfig) -> Result<Script> {
        config.validate()?;
        let command = config.command.clone();
        let timeout = Duration::from_secs_f64(config.timeout_seconds);
        let queue = Queue::start("script", move |notice, _| {
            match run(&command, timeout, notice) {
                Ok(()) => true,
                Err(e) => {
                    eprintln!("script {}: {e:#}", command.join(" "));
                    false
                }
            }
        })?;
        Ok(Script {
            name: format!("script {}", config.command.join(" ")),
            queue,
        })
    }

    pub fn stats(&self) -> Stats {
        self.queue.stats()
    }

    /// Waits up to `timeout` for the queue to drain; whether it did.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.queue.flush(timeout)
    }
}

/// Kills the child's whole process group (the child leads it) and reaps the child.
fn kill_group(child: &mut Child) {
    let group = rustix::process::Pid::from_child(child);
    let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    let _ = child.kill();
    let _ = child.wait();
}

fn run(command: &[String], timeout: Duration, notice: &Value) -> Result<()> {
    let mitigation_id = notice["mitigation"]["id"].as_str().unwrap_or_default();
    let mut child = Command::new(&command[0])
        .args(&command[1..])
        .env("FLOODWALL_EVENT", notice::event(notice))
        .env("FLOODWALL_TARGET", notice::target(notice))
        .env("FLOODWALL_ATTACK_ID", notice::attack_id(notice))
        .env("FLOODWALL_MITIGATION_ID", mitigation_id)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()?;
    // Written from a helper thread: a script that does not read stdin must not stall this one
    // on a full pipe. It ends when the write does (or fails when the child exits).
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut input = notice.to_string().into_bytes();
    input.push(b'\n');
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            kill_group(&mut child);
            bail!("killed after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // Not joined: a grandchild could hold stdin open without reading it.
    drop(writer);
    if !status.success() {
        bail!("{status}");
    }
    Ok(())
}

impl Notifier for Script {
    fn name(&self) -> &str {
        &self.name
    }

    fn notify(&mut self, notice: &Value) {
        self.queue.push(notice);
    }

    fn close(&mut self, timeout: Duration) -> bool {
        self.flush(timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_needs_a_command() {
        let config: ScriptConfig = toml::from_str("command = [\"/bin/true\"]").unwrap();
        assert_eq!(config.timeout_seconds, 10.0);
        assert!(Script::new(&ScriptConfig::default()).is_err());
        assert!(toml::from_str::<ScriptConfig>("cmd = []").is_err());
    }
}
