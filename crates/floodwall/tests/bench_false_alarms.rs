//! `floodwall bench false-alarms` runs end to end: an hour of busy networks at coarse sampling
//! through the decoder and engine, reported as JSON. (How many false alarms is the engine's
//! business and BENCHMARKS.md's; this checks the benchmark measures and stays bounded.)

use std::process::Command;

#[test]
fn the_false_alarm_benchmark_reports_an_hour_of_busy_traffic() {
    let out = Command::new(env!("CARGO_BIN_EXE_floodwall"))
        .args([
            "bench",
            "false-alarms",
            "--hours",
            "1",
            "--sampling",
            "65536",
            "--format",
            "ipfix",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["hours"], 1);
    assert_eq!(report["format"], "ipfix");
    assert_eq!(report["decode_errors"], 0);
    // ~11 Mpps for an hour at 1:65536.
    let samples = report["samples"].as_u64().unwrap();
    assert!((400_000..1_000_000).contains(&samples), "{samples}");
    // Five attacks an hour; at 1:65536 the infected subscriber is near the outgoing limits'
    // noise margin, so it may be optional.
    let expected = report["attacks_expected"].as_u64().unwrap();
    assert!((4..=5).contains(&expected), "{report}");
    let attacks = report["attacks"].as_array().unwrap();
    assert_eq!(attacks.len() as u64, expected);
    assert!(attacks.iter().any(|a| a["traffic"] == "dns-amplification"));
    let false_alarms = report["false_alarms"].as_u64().unwrap();
    assert_eq!(
        report["false_alarms_per_hour"].as_f64(),
        Some(false_alarms as f64)
    );
    // Bad options are refused before any work.
    for bad in [["--hours", "0"], ["--hours", "7"], ["--sampling", "100"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_floodwall"))
            .args(["bench", "false-alarms"])
            .args(bad)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad:?}");
    }
}
