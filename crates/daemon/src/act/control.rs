//! The daemon's control socket: `floodwall mitigations` lists, announces and withdraws rules
//! through it. A Unix socket in the state directory, owner-only (it changes routes), one JSON
//! request and one JSON response per connection.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use anyhow::{anyhow, Context as _, Result};
use crossbeam_channel::{bounded, Sender};
pub use floodwall_mitigate::RuleKind;
use floodwall_mitigate::{Delivery, FlowFilter, Held, Mitigation, Status};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::status::StatusBoard;

/// A request and where its reply goes, as the actions thread receives it.
pub type Call = (Request, Sender<Reply>);

/// What an operator asks of the daemon.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// Every rule held, with its attack and schedule.
    List,
    /// The daemon's status snapshot: collectors, engine, attacks, mitigators, bus.
    Status,
    /// Place a rule by hand (the configured next hop, communities and FlowSpec action apply);
    /// `filter` narrows a flowspec rule.
    Announce {
        target: IpNet,
        kind: RuleKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<FlowFilter>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seconds: Option<u64>,
    },
    Withdraw {
        id: String,
    },
}

/// A reply: `{"ok": true, ...}` with the fields of the request's answer, or
/// `{"ok": false, "error": "..."}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Reply {
    /// `list`: every rule held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitigations: Option<Vec<Held>>,
    /// `announce` and `withdraw`: the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitigation: Option<Mitigation>,
    /// `announce`: what became of it (`announced`, `queued`, `failed`, `dry_run`, `held`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// `announce`: what each mitigator did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitigators: Option<Vec<Delivery>>,
    /// `status`: the daemon's snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon: Option<Arc<crate::status::Status>>,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Reply {
    pub fn error(message: &str) -> Reply {
        Reply {
            error: Some(message.to_string()),
            ..Reply::default()
        }
    }

    pub fn list(held: Vec<Held>) -> Reply {
        Reply {
            mitigations: Some(held),
            ok: true,
            ..Reply::default()
        }
    }

    pub fn announced(mitigation: Mitigation, status: Status, mitigators: Vec<Delivery>) -> Reply {
        Reply {
            mitigation: Some(mitigation),
            status: Some(status),
            mitigators: Some(mitigators),
            ok: true,
            ..Reply::default()
        }
    }

    pub fn withdrawn(mitigation: Mitigation) -> Reply {
        Reply {
            mitigation: Some(mitigation),
            ok: true,
            ..Reply::default()
        }
    }

    pub fn status(status: Arc<crate::status::Status>) -> Reply {
        Reply {
            daemon: Some(status),
            ok: true,
            ..Reply::default()
        }
    }
}

const SOCKET: &str = "control.sock";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET)
}

/// Serves the socket on its own thread until the daemon exits: rule requests go to the actions
/// thread, status is read from the board without asking anyone.
pub fn serve(state_dir: &Path, actions: Sender<Call>, status: Arc<StatusBoard>) -> Result<PathBuf> {
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
                let _ = handle(stream, &actions, &status);
            }
        })?;
    Ok(path)
}

fn handle(stream: UnixStream, actions: &Sender<Call>, status: &StatusBoard) -> std::io::Result<()> {
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(Request::Status) => Reply::status(status.latest()),
        Ok(request) => {
            let (tx, rx) = bounded(1);
            if actions.send((request, tx)).is_err() {
                Reply::error("the daemon is stopping")
            } else {
                rx.recv_timeout(REQUEST_TIMEOUT)
                    .unwrap_or_else(|_| Reply::error("the daemon did not answer in time"))
            }
        }
        Err(e) => Reply::error(&format!("not a request: {e}")),
    };
    let mut stream = stream;
    serde_json::to_writer(&mut stream, &response)?;
    stream.write_all(b"\n")
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
pub fn request(state_dir: &Path, request: &Request) -> Result<Reply> {
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
