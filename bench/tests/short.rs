//! The benchmark's short mode, as the README names it, runs every scenario end to end on real
//! agents and reports each one. No figure is asserted: only that every scenario ran, every
//! request was acknowledged, and the report is whole.

use std::process::Command;

use serde_json::Value;

const SCENARIOS: [&str; 16] = [
    "crypto: seal (1 thread)",
    "crypto: verify (1 thread)",
    "ceiling: writes (in process)",
    "ceiling: verify (in process)",
    "1 node",
    "1 node, Codios cache hits",
    "3 nodes CP",
    "3 nodes AP",
    "ingest (push pages)",
    "pull catch-up",
    "divide",
    "memory of a lagging peer",
    "reads by hash",
    "reads: collection pages",
    "reads by hash, Codios cache hits",
    "reads by hash, open reads",
];

fn etcd_installed() -> bool {
    Command::new("etcd")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_short_run_reports_every_scenario() {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_sapix-bench"))
        .args(["--short", "--clients", "16", "--json"])
        .arg(&json)
        .output()
        .expect("run sapix-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "sapix-bench --short failed\n{stdout}\n{stderr}"
    );
    println!("{stdout}");

    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("sapix-bench: ") && last.contains("targets met"),
        "the last line is the summary: {last:?}"
    );
    let doc: Value = serde_json::from_slice(&std::fs::read(&json).expect("JSON written"))
        .expect("the JSON file parses");
    let rows = doc["scenarios"].as_array().expect("scenarios");
    let mut expected: Vec<&str> = SCENARIOS.to_vec();
    if etcd_installed() {
        expected.extend(["etcd 1 node", "etcd 3 nodes"]);
    }
    for name in &expected {
        let row = rows
            .iter()
            .find(|r| r["scenario"] == *name)
            .unwrap_or_else(|| panic!("scenario {name:?} missing from {doc:#}"));
        assert!(row["rate"].as_f64().unwrap_or(0.0) > 0.0, "{name}: {row}");
        assert_eq!(row["errors"], "none", "{name}: every request acknowledged");
    }
    for name in ["1 node", "3 nodes CP", "3 nodes AP", "ingest (push pages)"] {
        let row = rows.iter().find(|r| r["scenario"] == name).expect("row");
        let fsyncs = row["fsyncs_per_item"].as_f64().expect("fsyncs counted");
        assert!(
            fsyncs > 0.0,
            "{name}: the strand's fsync counter moved: {row}"
        );
        assert!(row["p99_ms"].as_f64().is_some(), "{name}: latency measured");
        let cpu = row["cpu_secs_per_1000"].as_array().expect("cpu");
        assert!(!cpu.is_empty(), "{name}: CPU read per node");
    }
    let three = rows
        .iter()
        .find(|r| r["scenario"] == "3 nodes CP")
        .expect("row");
    assert_eq!(
        three["peak_rss_mib"].as_array().map(Vec::len),
        Some(3),
        "one figure per node"
    );
    let targets = doc["targets"].as_array().expect("targets");
    assert!(
        targets.iter().any(|t| t["what"]
            .as_str()
            .is_some_and(|w| w.contains("verify ceiling"))),
        "the bulk scenarios are compared to the verify ceiling: {targets:?}"
    );
}
