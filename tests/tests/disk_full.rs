//! A disk that fills up under writes (issue 14), for real: the strand lives on a size-limited
//! tmpfs of the test's own, filled by a file while writers run. Writes answer 507
//! `storage_full` and nothing unacknowledged is kept; reads, status, readiness and metrics keep
//! working; once the file is removed the next write is taken, at the next seq, without a
//! restart; after a restart every acknowledged write is there and the chain verifies.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sapix_tests::strand::verify_strand;
use sapix_tests::{test_keys, wait_until, Agent, Written, TEST_SEED};
use serde_json::json;

const WITHIN: Duration = Duration::from_secs(30);

/// A tmpfs mounted on a temporary directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes `path` until the file system has no space left; returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).expect("create filler");
    let chunk = vec![0xa5u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    let _ = f.sync_all();
    written
}

#[test]
fn a_full_disk_answers_507_keeps_serving_and_takes_writes_again_when_space_returns() {
    let fs = Tmpfs::mount("8m");
    let mut agent = Agent::builder()
        .env("SAPIX_MASTER_SEED", TEST_SEED)
        .env("SAPIX_AGENT_ID", "solo")
        .env("SAPIX_STRAND_DIR", fs.path("strand").to_str().unwrap())
        .env("SAPIX_GRAPH_DIR", fs.path("graph").to_str().unwrap())
        .env("SAPIX_BLOB_DIR", fs.path("blobs").to_str().unwrap())
        .start();
    let acked: Arc<Mutex<Vec<Written>>> = Arc::default();
    for i in 0..20 {
        let w = agent.api().write("ledger", &json!({ "before": i }));
        acked.lock().unwrap().push(w);
    }

    // Writers run while the disk fills: every answer is a 201 or a 507 storage_full.
    let stop = Arc::new(AtomicBool::new(false));
    let full_answers = Arc::new(Mutex::new(0u64));
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let (api, stop) = (agent.api(), stop.clone());
            let (acked, full_answers) = (acked.clone(), full_answers.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    // Larger than a page: each needs space the filler has taken.
                    let body = json!({ "writer": t, "n": n, "pad": "x".repeat(8192) });
                    let reply = api.try_write("ledger", &body).expect("the node answers");
                    match reply.status {
                        201 => acked.lock().unwrap().push(Written::parse(&reply.json())),
                        507 => {
                            reply.assert_error(507, "storage_full");
                            *full_answers.lock().unwrap() += 1;
                        }
                        other => panic!("a write answered {other}: {}", reply.text),
                    }
                    n += 1;
                }
            })
        })
        .collect();
    let filler = fs.path("filler");
    let filled = fill(&filler);
    wait_until(WITHIN, "writes refused as the disk is full", || {
        *full_answers.lock().unwrap() >= 20
    });
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("a writer failed");
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    println!(
        "filled {filled} bytes; {} writes acknowledged, {} refused as full",
        acked.len(),
        full_answers.lock().unwrap()
    );

    // Full: a write is refused with its JSON error and Retry-After; the rest keeps working.
    let api = agent.api();
    let refused = reqwest::blocking::Client::new()
        .post(agent.url("/v1/records"))
        .bearer_auth(agent.root_key())
        .json(&json!({ "collection": "ledger", "data": { "pad": "x".repeat(8192) } }))
        .send()
        .expect("answers");
    assert_eq!(refused.status(), 507);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: serde_json::Value = refused.json().expect("a JSON error");
    assert_eq!(body["error"], "storage_full");
    assert_eq!(api.read(&acked[0].hash)["seq"], 1);
    api.get("/v1/cluster/status").assert_status(200);
    api.get("/readyz").assert_status(200);
    let metrics = api.get("/metrics");
    metrics.assert_status(200);
    assert!(
        metrics
            .text
            .lines()
            .any(|l| l.starts_with("sapix_writes_total{outcome=\"storage_full\"}")),
        "the refusals are counted"
    );

    // Space returns: the next write is taken, at the seq after the last acknowledged one.
    std::fs::remove_file(&filler).expect("remove the filler");
    let next = api.write("ledger", &json!({ "after": "space returned" }));
    assert_eq!(next.seq, acked.len() as u64 + 1, "no seq lost or skipped");

    // After a restart: every acknowledged write, nothing else, and the chain verifies.
    agent.restart();
    let api = agent.api();
    let chains = verify_strand(&api.export_all(), &test_keys());
    assert_eq!(chains["solo"], acked.len() as u64 + 1);
    for w in &acked {
        assert_eq!(api.read(&w.hash)["seq"], w.seq);
    }
}
