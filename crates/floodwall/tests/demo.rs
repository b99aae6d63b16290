//! `floodwall demo` as a new user runs it: on a terminal (a pseudo-terminal from `script`) and
//! into a file, at 4× speed to stay short. The attacks of the demo scenario's truth must be shown
//! detected with their vectors, with the dry-run rules they would get, and the demo must end by
//! itself with status 0, leaving no temporary directory behind. Ctrl-C ends it cleanly too.
//! Everything it sends goes to 127.0.0.1.

mod support;

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use floodwall_lab::simulate::{self, Options, Plan};
use support::{require_tool, test_dir, wait_or_kill};

const SPEED: &str = "4";
/// The scenario is 66 s, 16.5 s at 4×; the daemon starts, attacks end, the demo stops it.
const BOUND: Duration = Duration::from_secs(100);

/// The demo scenario's truth: (target, vectors, carpet).
fn expected() -> Vec<(String, Vec<String>, bool)> {
    let plan = Plan::new(simulate::load("demo").unwrap(), &Options::default()).unwrap();
    let truth = plan.truth().unwrap();
    assert!(
        truth.expect.len() >= 3,
        "a burst, an amplification, a carpet"
    );
    truth
        .expect
        .iter()
        .map(|e| (e.target.to_string(), e.vectors.clone(), e.carpet_bombing))
        .collect()
}

/// Text without ANSI escape sequences (CSI ... letter) and carriage returns.
fn strip_ansi(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else if c != '\r' {
            out.push(c);
        }
    }
    out
}

/// No `floodwall-demo-*` directory is left in `tmp`.
fn assert_cleaned_up(tmp: &Path) {
    let left: Vec<_> = std::fs::read_dir(tmp)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("floodwall-demo-")
        })
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn demo(tmp: &Path, stdout: File, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_floodwall"));
    command
        .arg("demo")
        .args(args)
        .env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::inherit());
    command
}

/// Asserts what every run must show: each attack of the truth detected with its vectors, its
/// dry-run rules, its end, and a summary that found them all.
fn assert_shows_the_scenario(text: &str) {
    for (target, vectors, carpet) in expected() {
        let headline = text
            .lines()
            .find(|l| l.contains(&target) && vectors.iter().all(|v| l.contains(v.as_str())))
            .unwrap_or_else(|| panic!("no line shows {target} {vectors:?}:\n{text}"));
        assert!(headline.contains("incoming"), "{headline}");
        // The filter's matches depend on the sampled mix in its first seconds (a carpet's /24
        // carries ordinary traffic too); the NTP reflection's is always its source port.
        assert!(
            text.contains(&format!("would announce: flowspec dst {target}")),
            "a FlowSpec filter for {target}:\n{text}"
        );
        if vectors.iter().any(|v| v == "ntp_amplification") {
            assert!(
                text.contains(&format!(
                    "would announce: flowspec dst {target} proto 17 sport 123"
                )),
                "the NTP filter matches its source port:\n{text}"
            );
        }
        // Carpets get FlowSpec only: a blackhole of a whole prefix is opt-in.
        assert_eq!(
            text.contains(&format!(
                "would announce: blackhole {target} next-hop 192.0.2.1"
            )),
            !carpet,
            "blackhole for {target}:\n{text}"
        );
        assert!(
            text.lines().any(|l| l.contains('✓') && l.contains(&target)),
            "the summary found {target}:\n{text}"
        );
    }
    assert!(!text.contains('✗'), "{text}");
    assert!(text.contains("dry run"), "{text}");
    assert!(text.contains("0 kernel drops"), "{text}");
}

#[test]
fn demo_on_a_terminal_shows_attacks_detected_and_what_it_would_announce() {
    let script = require_tool("script");
    let dir = test_dir("demo-tty");
    let screen = dir.join("screen.txt");
    let svg = dir.join("demo.svg");
    // `script` gives the demo a pseudo-terminal as stdout; what the terminal got goes to a file.
    let command = format!(
        "{} demo --speed {SPEED} --svg {}",
        env!("CARGO_BIN_EXE_floodwall"),
        svg.display()
    );
    let started = Instant::now();
    let mut child: Child = Command::new(script)
        .args(["-qec", &command, "/dev/null"])
        .env("TMPDIR", &*dir)
        .stdin(Stdio::null())
        .stdout(File::create(&screen).unwrap())
        .spawn()
        .expect("running script");
    wait_or_kill(&mut child, BOUND, "floodwall demo on a terminal");
    let status = child.wait().unwrap();
    let raw = std::fs::read_to_string(&screen).unwrap();
    let text = strip_ansi(&raw);
    assert!(status.success(), "{status:?}\n{text}");
    assert!(raw.contains("\u{1b}["), "a terminal gets colours");
    assert_shows_the_scenario(&text);
    assert!(
        text.contains("UNDER ATTACK"),
        "live, while it lasts:\n{text}"
    );
    // The final screen (after the last clear) shows every attack ended and fits 100 columns.
    let last = strip_ansi(raw.rsplit("\u{1b}[2J").next().unwrap());
    assert_eq!(
        last.matches("ended after").count(),
        expected().len(),
        "{last}"
    );
    for line in last.lines() {
        assert!(line.chars().count() <= 100, "too wide: {line}");
    }
    assert!(started.elapsed() < BOUND);
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("198.18.2.77/32"));
    assert_cleaned_up(&dir);
}

#[test]
fn demo_into_a_file_prints_plain_lines_and_ends_by_itself() {
    let dir = test_dir("demo-plain");
    let out = dir.join("out.txt");
    let mut child = demo(&dir, File::create(&out).unwrap(), &["--speed", SPEED])
        .spawn()
        .expect("running floodwall demo");
    // The dashboard it names answers while the scenario runs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let url = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if let Some(at) = text.find("dashboard: ") {
            break text[at + "dashboard: ".len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no dashboard line:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let page = ureq::get(&url)
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert!(page.contains("<title>Floodwall</title>"), "{page}");
    wait_or_kill(&mut child, BOUND, "floodwall demo");
    let status = child.wait().unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(status.success(), "{status:?}\n{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no escape codes in a file:\n{text}"
    );
    assert_shows_the_scenario(&text);
    for (target, _, _) in expected() {
        assert!(
            text.lines()
                .any(|l| l.contains("ATTACK DETECTED") && l.contains(&target)),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.contains("attack ended") && l.contains(&target)),
            "{text}"
        );
    }
    assert!(text.contains("records/s"), "the telemetry rate:\n{text}");
    assert_cleaned_up(&dir);
}

#[test]
fn ctrl_c_ends_the_demo_cleanly() {
    let dir = test_dir("demo-interrupt");
    let out = dir.join("out.txt");
    let mut child = demo(&dir, File::create(&out).unwrap(), &["--plain"])
        .spawn()
        .expect("running floodwall demo");
    // Once the first attack is shown, as a user would press Ctrl-C.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&out)
        .unwrap()
        .contains("ATTACK DETECTED")
    {
        assert!(Instant::now() < deadline, "no attack shown within 60 s");
        assert!(child.try_wait().unwrap().is_none(), "the demo ended early");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::INT,
    );
    wait_or_kill(
        &mut child,
        Duration::from_secs(20),
        "floodwall demo after SIGINT",
    );
    let status = child.wait().unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(status.success(), "{status:?}\n{text}");
    assert!(text.contains("interrupted"), "{text}");
    // The daemon it started is gone: the demo stopped and reaped it.
    let pid: u32 = text
        .split("(pid ")
        .nth(1)
        .and_then(|t| t.split(')').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the daemon's pid:\n{text}"));
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "daemon {pid} still runs"
    );
    assert_cleaned_up(&dir);
}
