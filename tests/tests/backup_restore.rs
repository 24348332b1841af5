//! `sapixctl backup --out DIR` against a running node under writes (issue 14), and the two
//! restores docs/runbook.md describes: a node on the copy under a new agent id, divided in;
//! and a single node's cold standby under its own id. Each copy recovers and verifies: offsets
//! gap-free, every hash and signature checked with the cluster's keys, every chain linked.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sapix_tests::locate::cargo_bin;
use sapix_tests::strand::verify_strand;
use sapix_tests::{cluster_agent, test_keys, wait_until, Agent, TEST_SEED};
use serde_json::{json, Value};

const WITHIN: Duration = Duration::from_secs(30);

fn sapixctl(agent: &Agent, args: &[&str]) -> Output {
    Command::new(cargo_bin("sapix-ctl", "sapixctl"))
        .arg("--url")
        .arg(agent.base_url())
        .arg("--root-key-file")
        .arg(agent.data_dir().join("root_key"))
        .args(args)
        .env_remove("SAPIX_ROOT_KEY")
        .env_remove("SAPIX_URL")
        .output()
        .expect("run sapixctl")
}

/// `sapixctl -o json backup --out dir`: its manifest.
fn backup(agent: &Agent, dir: &Path) -> Value {
    let out = sapixctl(
        agent,
        &["-o", "json", "backup", "--out", dir.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "backup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the manifest is JSON")
}

/// An agent of the test cluster on the copy in `dir`.
fn restored(dir: &Path, agent_id: &str) -> Agent {
    Agent::builder()
        .env("SAPIX_MASTER_SEED", TEST_SEED)
        .env("SAPIX_AGENT_ID", agent_id)
        .env("SAPIX_STRAND_DIR", dir.join("strand").to_str().unwrap())
        .env("SAPIX_GRAPH_DIR", dir.join("graph").to_str().unwrap())
        .env("SAPIX_BLOB_DIR", dir.join("blobs").to_str().unwrap())
        .start()
}

#[test]
fn a_backup_taken_under_writes_restores_as_a_new_node_that_is_divided_in() {
    let a = cluster_agent("primary");
    let api = a.api();
    for i in 0..150 {
        api.write("orders", &json!({ "n": i }));
    }
    // Writes go on while the backup runs: it copies up to the tip it saw first.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (api, stop) = (a.api(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                api.write("during", &json!({ "n": n }));
                n += 1;
            }
            n
        })
    };
    wait_until(WITHIN, "writes during the backup", || a.api().tip() > 160);
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("copy");
    let manifest = backup(&a, &copy);
    stop.store(true, Ordering::Relaxed);
    let during = writer.join().expect("writer");
    let tip = manifest["tip"].as_u64().expect("tip");
    assert!(
        tip >= 160,
        "the copy holds what was written before it: {tip}"
    );
    assert_eq!(manifest["source"]["agent_id"], "primary");
    assert_eq!(manifest["chains"]["primary"], tip, "one author, gap-free");

    // A second backup into the same directory is refused: nothing is overwritten.
    let again = sapixctl(&a, &["backup", "--out", copy.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));

    // A node on the copy under a new id: exactly the source's first `tip` blocks, verified.
    let b = restored(&copy, "restored");
    let source = a.api().export_all();
    let copied = b.api().export_all();
    assert_eq!(copied.len() as u64, tip);
    for (c, s) in copied.iter().zip(&source) {
        assert_eq!(
            (c.offset, c.hash()),
            (s.offset, s.hash()),
            "same block, same offset"
        );
    }
    let chains = verify_strand(&copied, &test_keys());
    assert_eq!(chains["primary"], tip);
    assert!(during > 0, "writes ran during the backup");

    // Divided in, it receives what the copy lacks, and its own writes reach the source.
    let divided = a.api().post(
        "/v1/cluster/divide",
        json!({ "new_agent_id": "restored", "endpoint": b.base_url() })
            .to_string()
            .into_bytes(),
    );
    divided.assert_status(200);
    let source_tip = a.api().tip();
    wait_until(WITHIN, "the restored node catches up", || {
        b.api().tip() >= source_tip
    });
    // CP: the new member writes once it has seen the source answer (its first probe).
    wait_until(WITHIN, "the restored node sees the source", || {
        let status = b.api().get("/v1/cluster/status").json();
        status["nodes"].as_array().is_some_and(|nodes| {
            nodes
                .iter()
                .any(|n| n["agent_id"] == "primary" && n["reachable"] == true)
        })
    });
    let own = b.api().write("after", &json!({ "from": "restored" }));
    wait_until(
        WITHIN,
        "the restored node's write reaches the source",
        || a.api().get(&format!("/v1/records/{}", own.hash)).status == 200,
    );
    verify_strand(&b.api().export_all(), &test_keys());
}

#[test]
fn a_single_node_restored_as_its_own_cold_standby_continues_its_chain() {
    let mut a = Agent::builder()
        .env("SAPIX_MASTER_SEED", TEST_SEED)
        .env("SAPIX_AGENT_ID", "solo")
        .start();
    let written: Vec<_> = (0..40)
        .map(|i| a.api().write("ledger", &json!({ "entry": i })))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = backup(&a, dir.path());
    assert_eq!(manifest["tip"], 40);
    a.stop();

    // The same id on the copy: every record reads back, and the chain goes on from seq 41.
    let standby = restored(dir.path(), "solo");
    let api = standby.api();
    for w in &written {
        assert_eq!(api.read(&w.hash)["seq"], w.seq);
    }
    let next = api.write("ledger", &json!({ "entry": 40 }));
    assert_eq!(next.seq, 41);
    let chains = verify_strand(&api.export_all(), &test_keys());
    assert_eq!(chains["solo"], 41);
}
