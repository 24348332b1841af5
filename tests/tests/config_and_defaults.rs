//! Starting the agent: secrets generated with no configuration and kept across restarts, bad
//! environment values refused by name, and the health and cluster status answers' shapes.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sapix_core::KeySchedule;
use sapix_tests::agent::READY_PREFIX;
use sapix_tests::http::is_hex;
use sapix_tests::strand::verify_strand;
use sapix_tests::{Agent, Api, Auth};
use serde_json::{json, Value};

/// A refused configuration must make the agent exit well within this.
const REFUSE_WITHIN: Duration = Duration::from_secs(10);

#[track_caller]
fn assert_secret_file(path: &Path) -> String {
    let meta =
        std::fs::metadata(path).unwrap_or_else(|e| panic!("{} must exist: {e}", path.display()));
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "{} must be readable by its owner only",
        path.display()
    );
    std::fs::read_to_string(path).expect("read secret file")
}

#[test]
fn first_start_generates_master_seed_and_root_key_readable_by_owner_only() {
    let agent = Agent::start();
    let seed = assert_secret_file(&agent.data_dir().join("master_seed"));
    assert!(
        is_hex(seed.trim(), 64),
        "master_seed is 64 hex characters: {seed:?}"
    );
    let root_key = assert_secret_file(&agent.data_dir().join("root_key"));
    assert!(!root_key.trim().is_empty(), "root_key is not empty");

    // The generated key is the one the cluster derives from the seed (DESIGN §2), so every
    // node given this seed agrees on it.
    let keys = KeySchedule::new(agent.master_seed());
    assert_eq!(root_key.trim(), keys.default_root_key().expose());

    let api = agent.api();
    let w = api.write("first", &json!({"hello": "world"}));
    assert_eq!(w.seq, 1);
    api.post_with(
        "/v1/records",
        Auth::Bearer("not-the-key"),
        Api::record_body("first", &json!(1)),
    )
    .assert_error(403, "forbidden");
    verify_strand(&api.export_all(), &keys);
}

#[test]
fn generated_master_seed_and_root_key_survive_restarts() {
    let mut agent = Agent::start();
    let seed_path = agent.data_dir().join("master_seed");
    let seed_before = std::fs::read(&seed_path).expect("read master_seed");
    let key_before = agent.root_key();
    let api = agent.api();
    let written: Vec<_> = (0..3)
        .map(|i| (api.write("kept", &json!({"i": i})), json!({"i": i})))
        .collect();

    for how in ["graceful", "kill -9"] {
        if how == "kill -9" {
            agent.kill9();
        }
        agent.restart();
        assert_eq!(
            std::fs::read(&seed_path).unwrap(),
            seed_before,
            "{how}: seed kept"
        );
        assert_secret_file(&seed_path);
        assert_eq!(agent.root_key(), key_before, "{how}: root key kept");

        let api = agent.api();
        for (w, data) in &written {
            assert_eq!(&api.read(&w.hash)["data"], data, "{how}: record readable");
        }
        let strand = api.export_all();
        let tips = verify_strand(&strand, &KeySchedule::new(agent.master_seed()));
        // The chain continues where it was: same author, same key, next seq.
        let next = api.write("kept", &json!({"after": how}));
        assert_eq!(
            tips.get(&next.author),
            Some(&(next.seq - 1)),
            "{how}: chain continues"
        );
        assert_eq!(next.offset, strand.len() as u64 + 1);
    }
}

#[track_caller]
fn assert_refused(var: &str, value: &str) {
    let exited = Agent::builder()
        .env(var, value)
        .run_expecting_exit(REFUSE_WITHIN);
    assert!(
        exited.status.code().is_some_and(|code| code != 0),
        "{var}={value:?} must make the agent exit non-zero, got {}\nstderr:\n{}",
        exited.status,
        exited.stderr
    );
    assert!(
        exited.stderr.contains(var),
        "stderr must name {var} for {var}={value:?}:\n{}",
        exited.stderr
    );
    assert!(
        !exited.stdout.contains(READY_PREFIX),
        "the agent must not have served with {var}={value:?}"
    );
}

#[test]
fn agent_id_with_characters_outside_the_alphabet_is_refused() {
    assert_refused("SAPIX_AGENT_ID", "Bad!");
}

#[test]
fn agent_id_longer_than_64_characters_is_refused() {
    assert_refused("SAPIX_AGENT_ID", &"a".repeat(65));
}

#[test]
fn master_seed_that_is_not_64_hex_characters_is_refused() {
    assert_refused("SAPIX_MASTER_SEED", "xyz");
    assert_refused("SAPIX_MASTER_SEED", &"ab".repeat(31));
    assert_refused("SAPIX_MASTER_SEED", &"g".repeat(64));
}

#[test]
fn bind_addr_that_is_not_a_socket_address_is_refused() {
    assert_refused("SAPIX_BIND_ADDR", "nope");
}

#[test]
fn healthz_is_ok_without_auth() {
    let agent = Agent::start();
    let reply = agent.api().get_with("/healthz", Auth::None);
    reply.assert_status(200);
    assert_eq!(reply.json()["status"], "ok");
}

#[test]
fn logs_go_to_stderr_and_stdout_has_only_the_ready_line() {
    let agent = Agent::start();
    let api = agent.api();
    api.write("c", &json!(1));
    api.get_with("/v1/records/xyz", Auth::None)
        .assert_status(400);
    api.get_with("/healthz", Auth::None).assert_status(200);
    let lines = agent.stdout_lines();
    assert_eq!(
        lines,
        [format!("{READY_PREFIX}{}", agent.base_url())],
        "stdout is exactly the ready line"
    );
    let logged = agent
        .stderr()
        .lines()
        .filter(|l| !l.starts_with("--- harness:"))
        .count();
    assert!(logged > 0, "the agent logs its start on stderr");
}

/// Asserts every key the spec names is present; additions are compatible and allowed.
#[track_caller]
fn assert_has_keys(v: &Value, expected: &[&str]) {
    let object = v
        .as_object()
        .unwrap_or_else(|| panic!("expected an object: {v}"));
    let missing: Vec<_> = expected
        .iter()
        .filter(|k| !object.contains_key(**k))
        .collect();
    assert!(missing.is_empty(), "missing keys {missing:?} in {v}");
}

#[test]
fn cluster_status_reports_one_reachable_primary_in_cp_mode() {
    let agent = Agent::builder()
        .env("SAPIX_AGENT_ID", "status-node")
        .start();
    let before_ms = u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let reply = agent.api().get_with("/v1/cluster/status", Auth::None);
    reply.assert_status(200);
    let status = reply.json();
    assert_has_keys(&status, &["nodes", "partitioned", "consistency"]);
    assert_eq!(status["partitioned"], false);
    assert_eq!(status["consistency"], "cp", "CP is the default");

    let nodes = status["nodes"].as_array().expect("nodes is an array");
    assert_eq!(nodes.len(), 1, "a lone node lists itself: {status}");
    let node = &nodes[0];
    assert_has_keys(
        node,
        &[
            "agent_id",
            "endpoint",
            "role",
            "added_at_ms",
            "last_sync_ms",
            "reachable",
        ],
    );
    assert_eq!(node["agent_id"], "status-node");
    assert_eq!(node["role"], "Primary");
    assert_eq!(node["reachable"], true);
    let endpoint = node["endpoint"].as_str().expect("endpoint is a string");
    assert!(
        endpoint.starts_with("http"),
        "endpoint is a URL: {endpoint}"
    );
    let added = node["added_at_ms"]
        .as_u64()
        .expect("added_at_ms is an integer");
    assert!(
        added > 1_600_000_000_000 && added <= before_ms + 60_000,
        "added_at_ms is a recent wall-clock time in ms: {added}"
    );
    assert!(
        node["last_sync_ms"].is_u64(),
        "last_sync_ms is an integer: {node}"
    );
}
