//! The daemon's control socket: `floodwall mitigations` lists, announces and withdraws rules
//! through it. A Unix socket in the state directory, owner-only (it changes routes), one JSON
//! request and one JSON response per connection.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use crossbeam_channel::{bounded, Sender};
use floodwall_mitigate::FlowFilter;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::runner::Input;

/// What an operator asks of the daemon.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// Every rule held, with its attack and schedule.
    List,
    /// Place a rule by hand: `kind` is `blackhole` or `flowspec` (the configured next hop,
    /// communities and FlowSpec action apply); `filter` narrows a flowspec rule.
    Announce {
        target: IpNet,
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<FlowFilter>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seconds: Option<u64>,
    },
    Withdraw {
        id: String,
    },
}

/// Replies are `{"ok": true, ...}` or `{"ok": false, "error": "..."}`.
pub type Response = serde_json::Value;

const SOCKET: &str = "control.sock";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET)
}

/// Serves the socket on its own thread until the daemon exits.
pub fn serve(state_dir: &Path, actions: Sender<Input>) -> Result<PathBuf> {
    let path = socket_path(state_dir);
    if UnixStream::connect(&path).is_ok() {
        return Err(anyhow!(
            "another floodwall daemon is running with the state directory {} (its control socket answers); stop it or use another `[state] dir`",
            state_dir.display()
        ));
    }
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)
        .with_context(|| format!("cannot create the control socket {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = handle(stream, &actions);
            }
        })?;
    Ok(path)
}

fn handle(stream: UnixStream, actions: &Sender<Input>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(request) => {
            let (tx, rx) = bounded(1);
            if actions.send(Input::Control(request, tx)).is_err() {
                error("the daemon is stopping")
            } else {
                rx.recv_timeout(REQUEST_TIMEOUT)
                    .unwrap_or_else(|_| error("the daemon did not answer in time"))
            }
        }
        Err(e) => error(&format!("not a request: {e}")),
    };
    let mut stream = stream;
    serde_json::to_writer(&mut stream, &response)?;
    stream.write_all(b"\n")
}

pub fn error(message: &str) -> Response {
    serde_json::json!({ "ok": false, "error": message })
}

/// Why the CLI cannot reach the daemon, told apart because each has its own remedy.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("no floodwall daemon here: {0} does not exist. Is `floodwall run` running with this state directory? (--state-dir or --config names the daemon's)")]
    NoSocket(PathBuf),
    #[error("permission denied on {0}: the control socket is for the daemon's user only. Run this as that user (`sudo -u floodwall floodwall mitigations ...` for the Debian package) or as root")]
    PermissionDenied(PathBuf),
    #[error("{0} exists but no daemon listens on it: the daemon that made it is gone (stopped uncleanly?). Start `floodwall run`; it replaces the stale socket")]
    Stale(PathBuf),
    #[error("cannot connect to the daemon's control socket {0}: {1}")]
    Other(PathBuf, std::io::Error),
}

impl ConnectError {
    fn new(path: PathBuf, error: std::io::Error) -> ConnectError {
        match error.kind() {
            std::io::ErrorKind::NotFound => ConnectError::NoSocket(path),
            // The socket's mode, or a state directory the user cannot enter.
            std::io::ErrorKind::PermissionDenied => ConnectError::PermissionDenied(path),
            std::io::ErrorKind::ConnectionRefused => ConnectError::Stale(path),
            _ => ConnectError::Other(path, error),
        }
    }
}

/// The client side, for the CLI.
pub fn request(state_dir: &Path, request: &Request) -> Result<Response> {
    let path = socket_path(state_dir);
    let mut stream = UnixStream::connect(&path).map_err(|e| ConnectError::new(path.clone(), e))?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT * 2))?;
    serde_json::to_writer(&mut stream, request)?;
    stream.write_all(b"\n")?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    serde_json::from_str(&line)
        .with_context(|| format!("the daemon answered something else: {line}"))
}
