//! Rotating the root key with no pause in replication (issue 14): every node first accepts the
//! new key beside the current one (`SAPIX_ROOT_KEY_NEXT=<new>`), then each presents the new
//! key and still accepts the old (`SAPIX_ROOT_KEY=<new>`, `SAPIX_ROOT_KEY_NEXT=<old>`), then
//! the old key is dropped. Writes replicate at every step; the old key ends refused.

use std::time::Duration;

use sapix_tests::{wait_until, Agent, Api, Auth};
use serde_json::json;

const SEED: &str = "7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e";
const OLD: &str = "old-root-key-0123456789";
const NEW: &str = "new-root-key-9876543210";
const WITHIN: Duration = Duration::from_secs(30);

fn node(id: &str, key: &str, next: Option<&str>) -> Agent {
    let mut b = Agent::builder()
        .env("SAPIX_AGENT_ID", id)
        .env("SAPIX_MASTER_SEED", SEED)
        .env("SAPIX_ROOT_KEY", key)
        .env("SAPIX_MESH_TIMEOUT_MS", "2000");
    if let Some(next) = next {
        b = b.env("SAPIX_ROOT_KEY_NEXT", next);
    }
    b.start()
}

/// `from` writes with `key`; the record reaches `to`.
fn replicates(from: &Agent, key: &str, to: &Agent, n: u32) {
    let api = Api::new(from.base_url(), key.to_string());
    // CP: right after a restart a write may be refused or indeterminate until the peers
    // answer again; the key is what this test is about, so it writes until one is acked.
    let mut hash = String::new();
    wait_until(WITHIN, "a CP write is acknowledged", || {
        match api.try_write("orders", &json!({ "n": n })) {
            Ok(r) if r.status == 201 => {
                hash = r.json()["hash"].as_str().unwrap_or_default().to_string();
                true
            }
            Ok(r) => {
                assert!(
                    matches!(r.status, 503),
                    "only CP's refusal: {} {}",
                    r.status,
                    r.text
                );
                false
            }
            Err(_) => false,
        }
    });
    let reader = to.api();
    wait_until(WITHIN, "the write replicates", || {
        reader.get(&format!("/v1/records/{hash}")).status == 200
    });
}

fn admin_status(agent: &Agent, key: &str) -> u16 {
    let api = Api::new(agent.base_url(), key.to_string());
    let body = json!({ "mode": "CP" }).to_string();
    api.post_with("/v1/cluster/consistency", Auth::Root, body)
        .status
}

#[test]
fn the_root_key_rotates_node_by_node_without_a_pause_in_replication() {
    let a = node("primary", OLD, None);
    let b = node("replica-eu", OLD, None);
    let divide = json!({ "new_agent_id": "replica-eu", "endpoint": b.base_url() });
    Api::new(a.base_url(), OLD.into())
        .post_with("/v1/cluster/divide", Auth::Root, divide.to_string())
        .assert_status(200);
    replicates(&a, OLD, &b, 0);

    // Step 1: both accept the next key; both still present the old one.
    let mut a = restart_with(a, OLD, Some(NEW));
    let mut b = restart_with(b, OLD, Some(NEW));
    assert_eq!(admin_status(&b, NEW), 200, "the next key is accepted");
    assert_eq!(admin_status(&b, OLD), 200, "and so is the current one");
    replicates(&a, OLD, &b, 1);

    // Step 2: each node in turn presents the new key and still accepts the old one.
    a = restart_with(a, NEW, Some(OLD));
    replicates(&a, NEW, &b, 2);
    replicates(&b, OLD, &a, 3);
    b = restart_with(b, NEW, Some(OLD));
    replicates(&b, NEW, &a, 4);

    // Step 3: the old key is dropped everywhere and refused.
    a = restart_with(a, NEW, None);
    b = restart_with(b, NEW, None);
    replicates(&a, NEW, &b, 5);
    replicates(&b, NEW, &a, 6);
    assert_eq!(admin_status(&a, OLD), 403);
    assert_eq!(admin_status(&b, OLD), 403);
    let log = b.stderr() + &a.stderr();
    assert!(
        !log.contains(OLD) && !log.contains(NEW),
        "no key in the logs"
    );
    drop((a, b));
}

/// Restarts `agent` on its data and port with `key` (and `next`).
fn restart_with(mut agent: Agent, key: &str, next: Option<&str>) -> Agent {
    agent.set_env("SAPIX_ROOT_KEY", Some(key));
    agent.set_env("SAPIX_ROOT_KEY_NEXT", next);
    agent.restart();
    agent
}
