//! Real `sapix-agent` processes of one cluster on loopback, and what the benchmark reads off
//! them: their tip, their strand's fsync counter and their process usage.

use std::time::Duration;

use sapix_tests::{wait_until, Agent, Api, Auth, TEST_SEED};
use serde_json::{json, Value};

use crate::procstat::{self, Usage};

/// How long a cluster may take to see all its members reachable.
const FORM_WITHIN: Duration = Duration::from_secs(60);

/// An agent of the bench cluster (one master seed), logging warnings only.
pub fn node(id: &str, extra: &[(&str, &str)]) -> Agent {
    let mut b = Agent::builder()
        .env("SAPIX_AGENT_ID", id)
        .env("SAPIX_MASTER_SEED", TEST_SEED)
        .env("SAPIX_LOG", "warn");
    for (k, v) in extra {
        b = b.env(k, v);
    }
    b.start()
}

/// `nodes[0]` divides every other node in, then waits until every node reaches every other.
pub fn form(nodes: &[&Agent]) {
    let first = nodes[0].api();
    for n in &nodes[1..] {
        let id = n.env_var("SAPIX_AGENT_ID").expect("bench nodes have ids");
        divide(&first, id, &n.base_url());
    }
    for n in nodes.iter() {
        let api = n.api();
        wait_until(FORM_WITHIN, "every member reachable", || {
            let s = status(&api);
            s["partitioned"] == false && s["nodes"].as_array().map_or(0, Vec::len) == nodes.len()
        });
    }
}

/// `POST /v1/cluster/divide` from `api`'s node; panics unless it answers 200.
pub fn divide(api: &Api, new_id: &str, endpoint: &str) {
    let body = json!({"new_agent_id": new_id, "endpoint": endpoint});
    api.post_with("/v1/cluster/divide", Auth::Root, body.to_string())
        .assert_status(200);
}

/// Sets the node's consistency mode (`"Cp"` or `"Ap"`).
pub fn consistency(api: &Api, mode: &str) {
    api.post_with(
        "/v1/cluster/consistency",
        Auth::Root,
        json!({ "mode": mode }).to_string(),
    )
    .assert_status(200);
}

/// `GET /v1/cluster/status`.
pub fn status(api: &Api) -> Value {
    api.get("/v1/cluster/status").json()
}

/// Blocks in the node's strand (its own status entry).
pub fn blocks(api: &Api) -> u64 {
    status(api)["nodes"][0]["blocks"].as_u64().unwrap_or(0)
}

/// A counter or gauge without labels from `/metrics`.
pub fn metric(api: &Api, name: &str) -> f64 {
    let text = api.get("/metrics").text;
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == name).then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0.0)
}

/// The strand's fdatasyncs since start (the strand's own counter).
pub fn fsyncs(api: &Api) -> f64 {
    metric(api, "sapix_strand_fsyncs_total")
}

/// The agent's process usage now.
pub fn usage(agent: &Agent) -> Usage {
    agent.pid().map(procstat::usage).unwrap_or_default()
}
