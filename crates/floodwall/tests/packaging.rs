//! The Debian package and what goes into it: the systemd unit passes `systemd-analyze verify`
//! with its sandbox intact, man pages and completions are generated for every command the
//! binary has, the default configuration loads, and `scripts/package` builds a .deb (from the
//! test build, `--profile dev --no-build`: a release build would take minutes) whose contents,
//! conffiles, dependencies and binary are right.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{require_tool, test_dir};

const BIN: &str = env!("CARGO_BIN_EXE_floodwall");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(cmd: &mut Command) -> Output {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(run(cmd).stdout).expect("UTF-8 output")
}

/// The visible subcommands, as `floodwall --help` lists them: whatever other commands are added
/// later, the generated documentation must cover them.
fn subcommands() -> Vec<String> {
    let help = stdout(Command::new(BIN).arg("--help"));
    let names: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect();
    for expected in ["run", "replay", "mitigations"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from --help: {names:?}"
        );
    }
    names
}

/// Man pages into `dir/man1`, as MANPATH expects them.
fn generate_man(dir: &Path) -> PathBuf {
    let man1 = dir.join("man1");
    run(Command::new(BIN).args(["man", "--out-dir"]).arg(&man1));
    man1
}

/// The unit and, in `floodwall.service.d/`, the given drop-ins, with ExecStart pointing at the
/// test binary (verify checks that the program exists).
fn unit_dir(dir: &Path, drop_ins: &[&str]) -> PathBuf {
    let units = dir.join("units");
    std::fs::create_dir_all(units.join("floodwall.service.d")).unwrap();
    let unit = std::fs::read_to_string(repo().join("packaging/floodwall.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/bin/floodwall run --config /etc/floodwall/floodwall.toml\n")
    );
    let unit = unit.replace("/usr/bin/floodwall", BIN);
    std::fs::write(units.join("floodwall.service"), unit).unwrap();
    for name in drop_ins {
        std::fs::copy(
            repo().join("packaging").join(name),
            units.join("floodwall.service.d").join(name),
        )
        .unwrap();
    }
    units
}

#[test]
fn the_unit_and_its_nftables_drop_in_pass_systemd_analyze_verify() {
    let analyze = require_tool("systemd-analyze");
    require_tool("man");
    let dir = test_dir("pkg-verify");
    // The unit's Documentation= pages are looked up with man: give it the generated ones.
    let man = generate_man(&dir);
    for drop_ins in [&[][..], &["nftables.conf"][..]] {
        let units = unit_dir(&dir.join(drop_ins.len().to_string()), drop_ins);
        let output = run(Command::new(&analyze)
            .args(["verify", "floodwall.service"])
            .env("SYSTEMD_UNIT_PATH", format!("{}:", units.display()))
            .env("MANPATH", man.parent().unwrap()));
        // verify exits 0 on unknown keys and misspelt values, but warns: none are allowed.
        let warnings = String::from_utf8_lossy(&output.stderr);
        assert!(
            warnings.trim().is_empty(),
            "warnings with {drop_ins:?}:\n{warnings}"
        );
    }
}

/// Exposure (0 = locked down, 10 = unprotected) as `systemd-analyze security` scores it.
fn exposure(units: &Path) -> f64 {
    let text = stdout(
        Command::new(require_tool("systemd-analyze"))
            .args(["security", "--offline=yes"])
            .arg(units.join("floodwall.service")),
    );
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no overall exposure in:\n{text}"));
    line.split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the exposure of {line:?}"))
}

#[test]
fn the_unit_holds_no_capabilities_and_stays_sandboxed() {
    let dir = test_dir("pkg-security");
    let unit = std::fs::read_to_string(repo().join("packaging/floodwall.service")).unwrap();
    for line in [
        "User=floodwall",
        "StateDirectory=floodwall",
        "CapabilityBoundingSet=\n",
        "AmbientCapabilities=\n",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "MemoryDenyWriteExecute=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
        "SystemCallFilter=@system-service",
        "Restart=on-failure",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=120s",
    ] {
        assert!(unit.contains(line), "the unit lacks {line:?}");
    }
    let settings = unit.lines().filter(|l| !l.starts_with('#'));
    assert!(
        settings.clone().all(|l| !l.contains("CAP_")),
        "the base unit grants no capability"
    );
    assert_eq!(settings.filter(|l| l.starts_with("User=")).count(), 1);
    // 1.1 when written; "OK" ends at 4.9 on systemd's scale.
    let base = exposure(&unit_dir(&dir.join("base"), &[]));
    assert!(base <= 1.5, "exposure {base}");
    let nft = exposure(&unit_dir(&dir.join("nft"), &["nftables.conf"]));
    assert!(
        nft > base && nft <= 2.0,
        "exposure with CAP_NET_ADMIN {nft}"
    );
}

#[test]
fn completions_are_generated_for_every_command() {
    let commands = subcommands();
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout(Command::new(BIN).args(["completions", shell]));
        for command in &commands {
            assert!(
                script.contains(command.as_str()),
                "{shell} completion lacks {command}"
            );
        }
        // Options of a subcommand, not just its name.
        assert!(
            script.contains("dry-run"),
            "{shell} completion lacks run --dry-run"
        );
    }
    let bash = stdout(Command::new(BIN).args(["completions", "bash"]));
    assert!(bash.contains("complete -F _floodwall"));
    let dir = test_dir("pkg-completions");
    let file = dir.join("floodwall.bash");
    std::fs::write(&file, bash).unwrap();
    run(Command::new("bash").arg("-n").arg(&file));
    let unknown = Command::new(BIN)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
}

#[test]
fn man_pages_render_and_cover_every_command() {
    let groff = require_tool("groff");
    let dir = test_dir("pkg-man");
    let man1 = generate_man(&dir);
    let main = std::fs::read_to_string(man1.join("floodwall.1")).unwrap();
    assert!(
        main.starts_with(".ie") || main.contains("\n.TH floodwall 1 "),
        "{main}"
    );
    assert!(main.contains(&format!("\"floodwall {}\"", env!("CARGO_PKG_VERSION"))));
    for command in subcommands() {
        let page = man1.join(format!("floodwall-{command}.1"));
        let text =
            std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        assert!(text.contains(&format!(".TH floodwall-{command} 1 ")));
        assert!(
            text.contains(&format!(
                "\\fBfloodwall {}\\fR",
                command.replace('-', "\\-")
            )),
            "synopsis of {command}"
        );
        assert!(
            main.contains(&format!("floodwall\\-{}(1)", command.replace('-', "\\-"))),
            "floodwall.1 lacks {command}"
        );
    }
    // Nested commands get pages of their own; hidden ones none.
    assert!(man1.join("floodwall-bench-ingest.1").exists());
    assert!(man1.join("floodwall-mitigations-announce.1").exists());
    for hidden in ["man", "completions", "bench-send"] {
        assert!(
            !man1.join(format!("floodwall-{hidden}.1")).exists(),
            "{hidden} has a page"
        );
    }

    // groff with every warning on: the roff must be clean, and the text what the CLI says.
    let output = run(Command::new(&groff)
        .args(["-man", "-Tutf8", "-ww", "-rLL=100n"])
        .arg(man1.join("floodwall-run.1"))
        .env("GROFF_NO_SGR", "1"));
    let warnings = String::from_utf8_lossy(&output.stderr);
    assert!(warnings.trim().is_empty(), "groff warnings:\n{warnings}");
    let text = String::from_utf8_lossy(&output.stdout);
    // Overstrike bold is `c\bc`: strip it to compare words.
    let plain: String = strip_overstrike(&text);
    for words in [
        "NAME",
        "SYNOPSIS",
        "floodwall-run",
        "--dry-run",
        "--config",
        "SIGTERM",
    ] {
        assert!(
            plain.contains(words),
            "{words} not in the rendered page:\n{plain}"
        );
    }
    let main_text = strip_overstrike(&stdout(
        Command::new(&groff)
            .args(["-man", "-Tutf8"])
            .arg(man1.join("floodwall.1")),
    ));
    assert!(main_text.contains("SUBCOMMANDS") && main_text.contains("floodwall-mitigations(1)"));

    // Without --out-dir: the main page on stdout.
    assert_eq!(stdout(Command::new(BIN).arg("man")), main);
}

fn strip_overstrike(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c == '\u{8}' {
            out.pop();
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn the_default_configuration_loads_and_keeps_state_in_the_state_directory() {
    let path = repo().join("packaging/floodwall.toml");
    let config = floodwall_daemon::config::Config::load(&path).unwrap();
    assert_eq!(config.state.dir, Path::new("/var/lib/floodwall"));
    assert!(config.events.file.starts_with("/var/lib/floodwall/"));
    assert!(
        config.networks.is_empty(),
        "the operator names the networks"
    );
    // What the operator sees on the first start: the daemon asks for networks, and fails (the
    // unit's start limit stops the retries).
    let output = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("network"), "{stderr}");
}

#[test]
fn scripts_package_builds_a_deb_with_the_unit_config_docs_and_a_working_binary() {
    let dpkg_deb = require_tool("dpkg-deb");
    let has_cargo_deb = Command::new("cargo")
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        has_cargo_deb,
        "cargo-deb is not installed: run scripts/test, which installs it"
    );
    let dir = test_dir("pkg-deb");
    let deb = dir.join("floodwall.deb");
    // The test binary's target directory: <target>/debug/floodwall.
    let target = Path::new(BIN).parent().and_then(Path::parent).unwrap();
    run(Command::new("bash")
        .arg(repo().join("scripts/package"))
        .args(["--profile", "dev", "--no-build", "--fast", "-o"])
        .arg(&deb)
        .env("CARGO_TARGET_DIR", target));

    let info = stdout(Command::new(&dpkg_deb).arg("-I").arg(&deb));
    for field in [
        "Package: floodwall",
        &format!("Version: {}", env!("CARGO_PKG_VERSION")),
        "Section: net",
        "Depends: libc6",
        "systemd | systemd-standalone-sysusers | systemd-sysusers",
        "Recommends: nftables",
        "conffiles",
        "postinst",
        "prerm",
        "postrm",
    ] {
        assert!(
            info.contains(field),
            "{field:?} not in dpkg-deb -I:\n{info}"
        );
    }
    let conffiles = stdout(Command::new(&dpkg_deb).arg("-I").arg(&deb).arg("conffiles"));
    assert_eq!(conffiles.trim(), "/etc/floodwall/floodwall.toml");
    let postinst = stdout(Command::new(&dpkg_deb).arg("-I").arg(&deb).arg("postinst"));
    // The user before the statoverride that names its group; the unit registered, not enabled.
    let sysusers = postinst
        .find("systemd-sysusers")
        .expect("postinst creates the user");
    let statoverride = postinst
        .find("dpkg-statoverride --update")
        .expect("statoverride");
    assert!(sysusers < statoverride);
    assert!(postinst.contains("deb-systemd-helper update-state floodwall.service"));
    // Installed disabled: no `enable` unless the admin had enabled it before (an upgrade).
    assert!(
        !postinst.contains("deb-systemd-helper enable floodwall.service")
            || postinst.contains("was-enabled floodwall.service")
    );
    let control = dir.join("control");
    run(Command::new(&dpkg_deb).arg("-e").arg(&deb).arg(&control));
    for script in ["postinst", "prerm", "postrm"] {
        run(Command::new("sh").arg("-n").arg(control.join(script)));
    }

    let listing = stdout(Command::new(&dpkg_deb).arg("-c").arg(&deb));
    let mut expected = vec![
        "./usr/bin/floodwall".to_string(),
        "./usr/lib/systemd/system/floodwall.service".to_string(),
        "./usr/lib/sysusers.d/floodwall.conf".to_string(),
        "./usr/lib/sysctl.d/60-floodwall.conf".to_string(),
        "./etc/floodwall/floodwall.toml".to_string(),
        "./usr/share/floodwall/nftables.conf".to_string(),
        "./usr/share/bash-completion/completions/floodwall".to_string(),
        "./usr/share/zsh/vendor-completions/_floodwall".to_string(),
        "./usr/share/fish/vendor_completions.d/floodwall.fish".to_string(),
        "./usr/share/doc/floodwall/copyright".to_string(),
        "./usr/share/man/man1/floodwall.1.gz".to_string(),
    ];
    expected.extend(
        subcommands()
            .iter()
            .map(|c| format!("./usr/share/man/man1/floodwall-{c}.1.gz")),
    );
    for path in &expected {
        assert!(
            listing.lines().any(|l| l.ends_with(&format!(" {path}"))),
            "{path} not in the package:\n{listing}"
        );
    }
    assert!(listing
        .lines()
        .any(|l| l.starts_with("-rwxr-xr-x 0/0") && l.ends_with(" ./usr/bin/floodwall")));

    // Symbols beside the package (dbgsym), the packaged binary stripped.
    let ddeb = deb.with_extension("ddeb");
    let symbols = stdout(Command::new(&dpkg_deb).arg("-c").arg(&ddeb));
    assert!(symbols.contains("./usr/lib/debug/.build-id/"), "{symbols}");

    let root = dir.join("root");
    run(Command::new(&dpkg_deb).arg("-x").arg(&deb).arg(&root));
    let binary = root.join("usr/bin/floodwall");
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    assert!(size(&binary) < size(Path::new(BIN)) / 2, "not stripped");
    let version = stdout(Command::new(&binary).arg("--version"));
    assert_eq!(
        version.trim(),
        format!("floodwall {}", env!("CARGO_PKG_VERSION"))
    );
    for file in ["floodwall.service", "floodwall.toml", "nftables.conf"] {
        let packaged = match file {
            "floodwall.service" => root.join("usr/lib/systemd/system/floodwall.service"),
            "floodwall.toml" => root.join("etc/floodwall/floodwall.toml"),
            _ => root.join("usr/share/floodwall/nftables.conf"),
        };
        assert_eq!(
            std::fs::read(&packaged).unwrap(),
            std::fs::read(repo().join("packaging").join(file)).unwrap(),
            "{file}"
        );
    }
    let sysusers = std::fs::read_to_string(root.join("usr/lib/sysusers.d/floodwall.conf")).unwrap();
    assert!(sysusers.contains("u floodwall - "));
}
