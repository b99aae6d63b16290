//! `floodwall bench mitigation` runs end to end against a real gobgpd: the benchmark suite's
//! mitigation latency is measured, not assumed. (How fast is for BENCHMARKS.md; this checks it
//! measures.)

mod support;

use std::process::Command;

use support::test_dir;

#[test]
fn the_mitigation_benchmark_sees_each_route_arrive_in_gobgpd() {
    let dir = test_dir("bench-mit");
    let out_file = dir.join("section.md");
    let out = Command::new(env!("CARGO_BIN_EXE_floodwall"))
        .args(["bench", "mitigation", "--trials", "2", "--work-dir"])
        .arg(dir.join("work"))
        .arg("--out")
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let section = std::fs::read_to_string(&out_file).unwrap();
    assert!(section.starts_with("## Mitigation latency"), "{section}");
    for victim in ["203.0.113.10", "203.0.113.11"] {
        let row = section
            .lines()
            .find(|l| l.starts_with(&format!("| {victim} |")))
            .unwrap_or_else(|| panic!("no row for {victim}: {section}"));
        assert!(row.ends_with(" ms |"), "the route never arrived: {row}");
    }
}
