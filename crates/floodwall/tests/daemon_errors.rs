//! What an operator sees when the daemon's surroundings are wrong: a BGP peer refusing the
//! session, a state directory it cannot write, a second daemon on the same state.

mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{test_dir, wait_or_kill};

fn config(dir: &std::path::Path, state: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = dir.join(format!("floodwall-{port}.toml"));
    std::fs::write(
        &path,
        format!(
            "networks = [\"203.0.113.0/24\"]\n[http]\nlisten = \"127.0.0.1:0\"\n[collector]\nlisten = [\"127.0.0.1:{port}\"]\n[events]\nfile = \"{}\"\n[state]\ndir = \"{}\"\n{extra}",
            dir.join("events.jsonl").display(),
            state.display()
        ),
    )
    .unwrap();
    path
}

fn daemon(config: &std::path::Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_floodwall"))
        .args(["run", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads a child's stderr until `want` shows up or `timeout` passes; stops the child (ours, by
/// PID) either way and returns what it wrote.
fn stderr_until(mut child: std::process::Child, want: &str, timeout: Duration) -> String {
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + timeout;
    let mut text = String::new();
    while Instant::now() < deadline && !text.contains(want) {
        if let Ok(bytes) = rx.recv_timeout(Duration::from_millis(50)) {
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    );
    wait_or_kill(&mut child, Duration::from_secs(10), "floodwall run");
    text
}

#[test]
fn a_bgp_peer_refusing_the_session_is_logged_with_the_reason() {
    let dir = test_dir("err-bgp");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = config(
        &dir,
        &dir.join("state"),
        &format!("[bgp]\nlocal_as = 65001\nrouter_id = \"192.0.2.9\"\n[[bgp.peers]]\nname = \"edge1\"\naddress = \"127.0.0.1:{closed}\"\nremote_as = 65000\n"),
    );
    let log = stderr_until(
        daemon(&config),
        "Connection refused",
        Duration::from_secs(10),
    );
    assert!(
        log.contains(&format!("bgp peer edge1 (127.0.0.1:{closed}): down ("))
            && log.contains("Connection refused"),
        "{log}"
    );
}

#[test]
fn an_unwritable_state_directory_and_a_second_daemon_are_refused_with_what_to_do() {
    let dir = test_dir("err-state");
    let file = dir.join("not-a-directory");
    std::fs::write(&file, b"").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_floodwall"))
        .args(["run", "--config"])
        .arg(config(&dir, &file, ""))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(
        message.contains("cannot create the state directory") && message.contains("[state] dir"),
        "{message}"
    );

    let state = dir.join("state");
    let first = daemon(&config(&dir, &state, ""));
    let socket = state.join("control.sock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = Command::new(env!("CARGO_BIN_EXE_floodwall"))
        .args(["run", "--config"])
        .arg(config(&dir, &state, ""))
        .output()
        .unwrap();
    assert!(!second.status.success());
    let message = String::from_utf8_lossy(&second.stderr);
    assert!(
        message.contains("another floodwall daemon is running"),
        "{message}"
    );
    stderr_until(first, "never", Duration::from_millis(100));
}

#[test]
fn a_collector_port_in_use_names_the_setting_to_change() {
    let dir = test_dir("err-port");
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = dir.join("floodwall.toml");
    std::fs::write(
        &config,
        format!(
            "networks = [\"203.0.113.0/24\"]\n[http]\nlisten = \"127.0.0.1:0\"\n[collector]\nlisten = [\"127.0.0.1:{port}\"]\n[state]\ndir = \"{}\"\n[events]\nfile = \"{}\"\n",
            dir.join("state").display(),
            dir.join("events.jsonl").display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_floodwall"))
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(
        message.contains(&format!("127.0.0.1:{port}"))
            && message.contains("in use")
            && message.contains("[collector] listen"),
        "{message}"
    );
}

/// A FIFO where the mitigation snapshot and the baselines belong used to hang start-up before
/// the daemon listened, without a word: now both are refused at once, said, and the daemon runs.
#[test]
fn fifos_in_the_state_directory_are_reported_and_do_not_hang_start_up() {
    let dir = test_dir("err-fifo");
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    for name in ["mitigations.json", "baselines.bin"] {
        let mode = rustix::fs::Mode::from_raw_mode(0o600);
        rustix::fs::mkfifoat(rustix::fs::CWD, state.join(name), mode).unwrap();
    }
    let log = stderr_until(
        daemon(&config(&dir, &state, "")),
        "listening on",
        Duration::from_secs(20),
    );
    assert!(log.contains("listening on"), "start-up hung:\n{log}");
    assert!(
        log.contains("mitigations.json is a FIFO, not a regular file; moved to")
            && log.contains("mitigations.json.corrupt; starting with no mitigations"),
        "{log}"
    );
    assert!(
        log.contains("baselines.bin is a FIFO, not a regular file; learning baselines again"),
        "{log}"
    );
}

/// `floodwall mitigations` says why it cannot reach a daemon, each case with its remedy: no
/// socket, a stale socket nobody listens on, and a socket the user may not use (a non-root
/// operator against a root daemon's 0600 socket: was "no floodwall daemon answers").
#[test]
fn the_mitigations_command_tells_no_daemon_stale_socket_and_permission_denied_apart() {
    let dir = test_dir("err-control");
    let mitigations = |state: &std::path::Path, as_nobody: bool| {
        let binary = env!("CARGO_BIN_EXE_floodwall");
        let mut command = if as_nobody {
            let mut c = Command::new(support::require_tool("setpriv"));
            c.args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                binary,
            ]);
            c
        } else {
            Command::new(binary)
        };
        let out = command
            .args(["mitigations", "--state-dir"])
            .arg(state)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let said = mitigations(&empty, false);
    assert!(
        said.contains(&format!(
            "no floodwall daemon here: {}/control.sock does not exist",
            empty.display()
        )),
        "{said}"
    );

    let stale = dir.join("stale");
    std::fs::create_dir_all(&stale).unwrap();
    drop(std::os::unix::net::UnixListener::bind(stale.join("control.sock")).unwrap());
    let said = mitigations(&stale, false);
    assert!(
        said.contains(&format!(
            "{}/control.sock exists but no daemon listens on it",
            stale.display()
        )),
        "{said}"
    );

    // A real daemon's socket (0600, its owner's); the caller is another user: `nobody` when
    // the tests run as root, else the owner with the socket's permissions taken away.
    let state = dir.join("state");
    let daemon = daemon(&config(&dir, &state, ""));
    let socket = state.join("control.sock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let root = rustix::process::getuid().is_root();
    if root {
        // `nobody` must reach the socket's directory to be refused by the socket itself.
        use std::os::unix::fs::PermissionsExt as _;
        for d in [&*dir, state.as_path()] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    } else {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    let said = mitigations(&state, root);
    stderr_until(daemon, "never", Duration::from_millis(100));
    assert!(
        said.contains(&format!("permission denied on {}", socket.display()))
            && said.contains("as that user")
            && said.contains("or as root"),
        "{said}"
    );
}
