//! `floodwall bench ingest` end to end: the real binary, its sender child process and JSON output.

use std::process::Command;

#[test]
fn bench_ingest_json_reports_decode_and_end_to_end() {
    let output = Command::new(env!("CARGO_BIN_EXE_floodwall"))
        .args(["bench", "ingest", "--protocol", "sflow", "--seconds", "0.2"])
        .args(["--e2e-seconds", "0.5", "--rates", "5000", "--json"])
        .output()
        .expect("running floodwall");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "floodwall failed: {stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON object on stdout");

    let decode = &report["decode"][0];
    assert_eq!(decode["protocol"], "sflow5");
    assert!(
        decode["records_per_sec"].as_f64().unwrap() > 0.0,
        "{decode}"
    );
    assert_eq!(decode["errors"], 0);

    let ladder = &report["e2e"][0];
    assert_eq!(ladder["protocol"], "sflow5");
    let rung = &ladder["rungs"][0];
    assert_eq!(rung["sent"]["target_rate"], 5000.0);
    let sent = rung["sent"]["datagrams"].as_u64().unwrap();
    // Bounded by rate x time; how close it gets depends on how busy the machine is.
    assert!((1..=2500).contains(&sent), "{rung}");
    assert!(rung["received_records"].as_u64().unwrap() > 0, "{rung}");
    assert!(rung["loss_pct"].as_f64().unwrap() < 50.0, "{rung}");
    assert!(rung["collector_cpu_seconds"].as_f64().unwrap() >= 0.0);
    // The collector threads' own share, kernel time included, is reported beside it.
    let own = rung["collector_thread_cpu_seconds"].as_f64().unwrap();
    assert!(own > 0.0, "{rung}");
    assert!(rung["collector_thread_system_seconds"].as_f64().unwrap() <= own + 1e-9);
    assert!(
        rung["collector_thread_cpu_seconds_per_million_records"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}
