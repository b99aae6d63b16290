//! `floodwall init` and `floodwall check-config` as a user runs them.

use std::path::Path;
use std::process::{Command, Output};

use floodwall::config::Config;

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
