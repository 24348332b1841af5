//! Collection pages against real agents (issue 16): `GET /v1/records?collection=…` pages one
//! collection oldest first; its cursor names per-author positions, so a cursor from one node
//! continues on another whose commit order differs without skipping or repeating a record; the
//! index survives a restart and is rebuilt from the strand when its checkpoint is gone.

use std::collections::BTreeSet;
use std::time::Duration;

use sapix_tests::{wait_until, Agent, Api, Auth};
use serde_json::{json, Value};

const SEED: &str = "4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d";
const WITHIN: Duration = Duration::from_secs(30);

fn node(id: &str) -> Agent {
    Agent::builder()
        .env("SAPIX_AGENT_ID", id)
        .env("SAPIX_MASTER_SEED", SEED)
        .start()
}

fn page(api: &Api, collection: &str, after: &str, limit: u64) -> Value {
    api.get(&format!(
        "/v1/records?collection={collection}&after={after}&limit={limit}"
    ))
    .assert_status(200)
    .json()
}

/// Every record of `collection` on `api`, from `after`, pages of `limit`: hashes in order.
fn walk(api: &Api, collection: &str, mut after: String, limit: u64) -> Vec<String> {
    let mut hashes = Vec::new();
    loop {
        let p = page(api, collection, &after, limit);
        for r in p["records"].as_array().expect("records") {
            assert_eq!(r["collection"], collection);
            hashes.push(r["hash"].as_str().unwrap().to_string());
        }
        after = p["next"].as_str().unwrap().to_string();
        if p["more"] == false {
            return hashes;
        }
    }
}

#[test]
fn a_cursor_continues_on_another_node_without_skipping_or_repeating() {
    let a = node("coll-a");
    let b = node("coll-b");
    let (api_a, api_b) = (a.api(), b.api());
    let body = json!({ "new_agent_id": "coll-b", "endpoint": b.base_url(), "role": "Replica" });
    api_a
        .post_with("/v1/cluster/divide", Auth::Root, body.to_string())
        .assert_status(200);
    for api in [&api_a, &api_b] {
        api.post_with("/v1/cluster/consistency", Auth::Root, r#"{"mode":"Ap"}"#)
            .assert_status(200);
    }
    // Both write at once: each commits its own records first, so the orders differ.
    let mut orders = BTreeSet::new();
    std::thread::scope(|s| {
        let writers: Vec<_> = [&api_a, &api_b]
            .into_iter()
            .map(|api| {
                s.spawn(move || {
                    (0..20)
                        .map(|n| {
                            api.write("other", &json!({ "skip": n }));
                            api.write("orders", &json!({ "n": n })).hash
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for w in writers {
            orders.extend(w.join().expect("writer"));
        }
    });
    assert_eq!(orders.len(), 40);
    for api in [&api_a, &api_b] {
        wait_until(WITHIN, "both nodes hold the 40 orders", || {
            walk(api, "orders", String::new(), 1_000).len() == 40
        });
    }
    let order_a = walk(&api_a, "orders", String::new(), 7);
    let order_b = walk(&api_b, "orders", String::new(), 1_000);
    if order_a == order_b {
        eprintln!("note: both nodes happened to commit the orders in the same order");
    }
    assert_eq!(order_a.iter().cloned().collect::<BTreeSet<_>>(), orders);
    assert_eq!(order_b.iter().cloned().collect::<BTreeSet<_>>(), orders);

    // Two pages on a, the rest on b: every order exactly once.
    let first = page(&api_a, "orders", "", 9);
    let second = page(&api_a, "orders", first["next"].as_str().unwrap(), 9);
    let mut seen: Vec<String> = [&first, &second]
        .iter()
        .flat_map(|p| p["records"].as_array().unwrap().iter())
        .map(|r| r["hash"].as_str().unwrap().to_string())
        .collect();
    seen.extend(walk(
        &api_b,
        "orders",
        second["next"].as_str().unwrap().to_string(),
        5,
    ));
    assert_eq!(seen.len(), 40, "no repeats: {seen:?}");
    assert_eq!(
        seen.into_iter().collect::<BTreeSet<_>>(),
        orders,
        "no skips"
    );
}

#[test]
fn pages_survive_a_restart_and_a_lost_index_and_refuse_bad_input() {
    let mut agent = Agent::start();
    let api = agent.api();
    let written: Vec<String> = (0..12)
        .map(|n| {
            api.write("audit", &json!(n));
            api.write("orders", &json!({ "n": n })).hash
        })
        .collect();
    assert_eq!(walk(&api, "orders", String::new(), 5), written);
    let done = page(&api, "orders", "", 1_000);
    assert_eq!(done["more"], false);
    let cursor = done["next"].as_str().unwrap().to_string();
    // Nothing new yet: an empty page with the same cursor; a new record shows up after it.
    let idle = page(&api, "orders", &cursor, 10);
    assert_eq!(idle["records"], json!([]));
    assert_eq!(idle["next"], cursor);
    let later = api.write("orders", &json!("later")).hash;
    assert_eq!(
        walk(&api, "orders", cursor.clone(), 10),
        vec![later.clone()]
    );

    let mut all = written.clone();
    all.push(later);
    agent.restart();
    let api = agent.api();
    assert_eq!(
        walk(&api, "orders", String::new(), 4),
        all,
        "from the checkpoint"
    );
    agent.stop();
    let checkpoint = agent.data_dir().join("graph").join("strand-index.v2");
    std::fs::remove_file(&checkpoint).expect("the index checkpoint exists");
    agent.restart();
    let api = agent.api();
    assert_eq!(
        walk(&api, "orders", String::new(), 4),
        all,
        "rebuilt from the strand"
    );
    assert!(page(&api, "nothing", "", 10)["records"] == json!([]));

    for bad in [
        "/v1/records",
        "/v1/records?collection=",
        "/v1/records?collection=Bad!",
        "/v1/records?collection=orders&limit=0",
        "/v1/records?collection=orders&limit=1001",
        "/v1/records?collection=orders&after=%21%21",
        "/v1/records?collection=orders&after=YzJhOjE",
        "/v1/records?collection=orders&collection=audit",
        "/v1/records?collection=orders&offset=3",
    ] {
        api.get(bad).assert_error(400, "bad_request");
    }
    api.get_with("/v1/records?collection=orders", Auth::None)
        .assert_error(401, "unauthorized");
    api.get_with("/v1/records?collection=orders", Auth::Bearer("stranger"))
        .assert_error(404, "not_found");
}
