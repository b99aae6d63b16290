//! `floodwall init` and `floodwall check-config` as a user runs them.

use std::path::Path;
use std::process::{Command, Output};

use floodwall_daemon::config::Config;

fn floodwall(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_floodwall"))
        .args(args)
        .output()
        .expect("run floodwall")
}

fn dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "floodwall-config-cli-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn as_json(config: &Config) -> serde_json::Value {
    serde_json::to_value(config).unwrap()
}

fn check(dir: &Path, text: &str) -> (bool, String, String) {
    let file = dir.join("floodwall.toml");
    std::fs::write(&file, text).unwrap();
    let out = floodwall(&["check-config", file.to_str().unwrap()]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).replace(file.to_str().unwrap(), "F"),
        String::from_utf8_lossy(&out.stderr).replace(file.to_str().unwrap(), "F"),
    )
}

#[test]
fn init_writes_every_default_and_refuses_to_overwrite() {
    let dir = dir("init");
    let file = dir.join("floodwall.toml");
    let path = file.to_str().unwrap();
    let out = floodwall(&["init", "--output", path]);
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        as_json(&Config::load(&file).unwrap()),
        as_json(&Config::default())
    );
    for header in [
        "[collector]",
        "[events]",
        "[state]",
        "[detection]",
        "[detection.incoming]",
        "[detection.outgoing]",
        "[detection.baseline]",
        "[detection.carpet]",
        "# [[detection.hostgroups]]",
        "[mitigation]",
        "[mitigation.blackhole]",
        "[mitigation.flowspec]",
        "# [[mitigation.hostgroups]]",
        "# [bgp]",
        "# [[bgp.peers]]",
        "[exabgp]",
        "[nftables]",
        "# [[webhooks]]",
        "# [[scripts]]",
    ] {
        assert!(text.lines().any(|l| l == header), "no {header}");
    }
    // The written file is not ready to run: it names no networks, and check-config says where.
    let out = floodwall(&["check-config", path]);
    assert!(!out.status.success());
    let line = text.lines().position(|l| l == "networks = []").unwrap() + 1;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("{path}:{line}:1: networks is empty")),
        "{stderr}"
    );

    // Refuses to overwrite, unless forced.
    std::fs::write(&file, "# mine\n").unwrap();
    let out = floodwall(&["init", "--output", path, "--network", "203.0.113.0/24"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--force"),
        "{out:?}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "# mine\n");
    let out = floodwall(&[
        "init",
        "--output",
        path,
        "--network",
        "203.0.113.0/24",
        "--force",
    ]);
    assert!(out.status.success(), "{out:?}");
    let expected = Config {
        networks: vec!["203.0.113.0/24".parse().unwrap()],
        ..Config::default()
    };
    assert_eq!(as_json(&Config::load(&file).unwrap()), as_json(&expected));
    let out = floodwall(&["check-config", path]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim(),
        format!("{path}: OK: 1 network, 0 hostgroups, mitigations: none via 0 BGP peers, 0 webhooks, 0 scripts")
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn check_config_names_the_line_of_each_problem() {
    let dir = dir("check");
    const NETS: &str = "networks = [\"203.0.113.0/24\"]\n";

    // Syntax.
    let (ok, _, err) = check(
        &dir,
        &format!("{NETS}\n[collector]\nrecv_buffer_mib = 32\nlisten = [\"0.0.0.0:6343\"\n"),
    );
    assert!(!ok);
    assert!(err.starts_with("F:5:"), "{err}");

    // An unknown key and a wrong type, in different sections: both reported.
    let (ok, _, err) = check(
        &dir,
        &format!(
            "{NETS}\n[collector]\nrecv_buffer_mib = \"big\"\n\n[mitigation]\nhold_down = 60\n"
        ),
    );
    assert!(!ok);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].starts_with(
            "F:4:19: invalid type: string \"big\", expected usize — write a whole number"
        ),
        "{err}"
    );
    assert!(
        lines[1].starts_with("F:7:1: unknown field `hold_down`")
            && lines[1].contains("did you mean `hold_down_seconds`?"),
        "{err}"
    );
    assert_eq!(
        lines.last().unwrap(),
        &"floodwall: F: 2 problems found",
        "{err}"
    );

    // Semantic: max_seconds below min_seconds, [bgp] without peers.
    let (ok, _, err) = check(
        &dir,
        &format!(
            "{NETS}\n[mitigation]\nmin_seconds = 300\nmax_seconds = 60\n\n[bgp]\nlocal_as = 64512\nrouter_id = \"192.0.2.254\"\n"
        ),
    );
    assert!(!ok);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0]
            .starts_with("F:5:1: mitigation.max_seconds = 60 is less than min_seconds = 300 — "),
        "{err}"
    );
    assert!(
        lines[1].starts_with("F:7:2: [bgp] needs at least one [[bgp.peers]] — add a [[bgp.peers]]"),
        "{err}"
    );

    // A peer's problem points into its entry.
    let (ok, _, err) = check(
        &dir,
        &format!(
            "{NETS}\n[bgp]\nlocal_as = 64512\nrouter_id = \"192.0.2.254\"\n\n[[bgp.peers]]\naddress = \"192.0.2.1:179\"\nremote_as = 64511\n\n[[bgp.peers]]\naddress = \"192.0.2.2:179\"\n"
        ),
    );
    assert!(!ok);
    assert!(
        err.starts_with("F:12:1: bgp.peers[1] (192.0.2.2:179): remote_as must be set"),
        "{err}"
    );

    // Valid: exit 0 and a summary.
    let (ok, out, err) = check(
        &dir,
        &format!(
            "{NETS}\n[collector]\nallow_exporters = [\"192.0.2.0/24\"]\n\n[[detection.hostgroups]]\nname = \"web\"\nnetworks = [\"203.0.113.0/28\"]\n\n[mitigation.blackhole]\nenabled = true\n\n[bgp]\nlocal_as = 64512\nrouter_id = \"192.0.2.254\"\n\n[[bgp.peers]]\naddress = \"192.0.2.1:179\"\nremote_as = 64511\n"
        ),
    );
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        "F: OK: 1 network, 1 hostgroup, mitigations: blackhole via 1 BGP peer, 0 webhooks, 0 scripts"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `run` refuses every configuration `check-config` rejects, with the same problems: one
/// validation serves both (a mitigation hostgroup naming no detection hostgroup used to start).
#[test]
fn run_refuses_what_check_config_rejects_with_the_same_problems() {
    let dir = dir("agree");
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let common = format!(
        "[events]\nfile = \"{}\"\n[state]\ndir = \"{}\"\n",
        dir.join("events.jsonl").display(),
        dir.join("state").display()
    );
    let listen =
        format!("[http]\nlisten = \"127.0.0.1:0\"\n[collector]\nlisten = [\"127.0.0.1:{port}\"]\n");
    for (what, text) in [
        (
            "a mitigation hostgroup naming no detection hostgroup",
            format!("networks = [\"203.0.113.0/24\"]\n{common}{listen}[[mitigation.hostgroups]]\nname = \"web\"\nblackhole = false\n"),
        ),
        (
            "no listener",
            format!("networks = [\"203.0.113.0/24\"]\n{common}[collector]\nlisten = []\n"),
        ),
        (
            "a network with host bits set",
            format!("networks = [\"203.0.113.5/24\"]\n{common}{listen}"),
        ),
    ] {
        let (ok, _, checked) = check(&dir, &text);
        assert!(!ok, "{what}: check-config accepted it");
        let file = dir.join("floodwall.toml");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_floodwall"))
            .args(["run", "--config", file.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                child.kill().unwrap();
                child.wait().unwrap();
                panic!("{what}: `floodwall run` started with a configuration check-config rejects");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let mut run_err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut run_err).unwrap();
        let run_err = run_err.replace(file.to_str().unwrap(), "F");
        assert!(!status.success(), "{what}: run exited 0: {run_err}");
        // Every problem line of check-config is in run's error.
        for line in checked.lines().filter(|l| l.starts_with("F:")) {
            assert!(run_err.contains(line), "{what}: run did not say {line:?}: {run_err}");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Applies a problem's hint to the file: a `key = value` hint replaces the problem's line, a
/// quoted form replaces the first quoted value on it.
fn apply_hint(text: &str, problem: &str) -> String {
    let mut parts = problem.splitn(4, ':');
    let (_, line) = (parts.next(), parts.next().unwrap());
    let line: usize = line.parse().unwrap();
    let hint = problem.split(" — ").nth(1).expect("a hint");
    let lines: Vec<&str> = text.lines().collect();
    let target = lines[line - 1];
    let key = target.split('=').next().unwrap().trim();
    let assignment = hint
        .split('`')
        .skip(1)
        .step_by(2)
        .find(|s| s.split('=').next().unwrap().trim() == key);
    let fixed = match assignment {
        Some(assignment) => assignment.to_string(),
        None => {
            let form = hint.split('"').nth(1).expect("a quoted form in the hint");
            let start = target.find('"').unwrap();
            let end = start + 1 + target[start + 1..].find('"').unwrap();
            format!("{}\"{form}\"{}", &target[..start], &target[end + 1..])
        }
    };
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    out[line - 1] = fixed;
    out.join("\n") + "\n"
}

/// Every hint is a form the check accepts: each is fed back into the file, which then passes.
#[test]
fn every_hint_is_a_form_check_config_accepts() {
    let dir = dir("hints");
    const NETS: &str = "networks = [\"203.0.113.0/24\"]\n";
    let peer = "[bgp]\nlocal_as = 64512\nrouter_id = \"192.0.2.254\"\n\n[[bgp.peers]]\n";
    for text in [
        format!("{NETS}{peer}address = \"192.0.2.1\"\nremote_as = 64511\n"),
        format!("{NETS}{peer}address = \"2001:db8::1\"\nremote_as = 64511\n"),
        "networks = [\"203.0.113.0/33\"]\n".to_string(),
        "networks = [\"2001:db8::/129\"]\n".to_string(),
        "networks = [\"203.0.113.5/24\"]\n".to_string(),
        "networks = [\"203.0.113.5\"]\n".to_string(),
        "networks = [\"not an address\"]\n".to_string(),
        format!("{NETS}[collector]\nlisten = [\"0.0.0.0\"]\n"),
        format!("{NETS}[collector]\nlisten = []\n"),
        format!("{NETS}[mitigation]\nnever = [\"203.0.113.1/16\"]\n"),
        "networks = []\n".to_string(),
    ] {
        let (ok, _, err) = check(&dir, &text);
        assert!(!ok, "accepted: {text}");
        let problem = err.lines().next().unwrap();
        assert!(problem.contains(" — "), "no hint: {err}");
        let fixed = apply_hint(&text, problem);
        let (ok, out, err2) = check(&dir, &fixed);
        assert!(ok, "the hint of {problem:?} is refused:\n{fixed}\n{err2}");
        assert!(out.contains("OK"), "{out}");
        // The hint is not the form just rejected.
        assert_ne!(fixed, text, "{problem}");
        let _ = err;
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Independent problems are all reported, and counted: two bad networks in one list, a bad
/// peer address beside them, and semantic problems of other sections.
#[test]
fn check_config_reports_every_independent_problem_and_how_many() {
    let dir = dir("all");
    let (ok, _, err) = check(
        &dir,
        "networks = [\"203.0.113.0/33\", \"198.51.100.0/40\"]\n\n[[mitigation.hostgroups]]\nname = \"web\"\n\n[bgp]\nlocal_as = 64512\nrouter_id = \"192.0.2.254\"\n\n[[bgp.peers]]\naddress = \"192.0.2.1\"\nremote_as = 64511\n",
    );
    assert!(!ok);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].starts_with("F:1:13: invalid IP address syntax"),
        "{err}"
    );
    assert!(
        lines[1].starts_with("F:1:31: invalid IP address syntax"),
        "{err}"
    );
    assert!(
        lines[2].starts_with("F:4:1: mitigation.hostgroups[0].name = \"web\" names no"),
        "{err}"
    );
    assert!(
        lines[3].starts_with("F:11:11: invalid socket address syntax"),
        "{err}"
    );
    assert_eq!(
        lines.last().unwrap(),
        &"floodwall: F: 4 problems found",
        "{err}"
    );

    let (ok, _, err) = check(
        &dir,
        "networks = [\"203.0.113.5/24\", \"198.51.100.7/24\"]\n[collector]\nlisten = []\n[[mitigation.hostgroups]]\nname = \"web\"\n",
    );
    assert!(!ok);
    assert_eq!(err.lines().count(), 5, "{err}");
    assert!(
        err.contains("F:1:13: networks[0] = 203.0.113.5/24 has host bits set"),
        "{err}"
    );
    assert!(
        err.contains("F:1:31: networks[1] = 198.51.100.7/24 has host bits set"),
        "{err}"
    );
    assert!(err.contains("F:3:1: collector.listen is empty"), "{err}");
    assert!(
        err.contains("F:5:1: mitigation.hostgroups[0].name = \"web\" names no"),
        "{err}"
    );
    assert!(err.ends_with("floodwall: F: 4 problems found\n"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}
