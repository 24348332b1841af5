//! Reads take a bearer token like writes (issue 16): in local mode the root key reads, nobody
//! reads without a token, and any other token gets the same 404 as an absent hash; with
//! `SAPIX_READS_OPEN=true` anyone reads; in Codios mode a token reads what Codios permits it
//! to `read`, through the same cache as writes.

use sapix_tests::{Agent, Api, Auth, CodiosDev, Reply};
use serde_json::json;

fn get(api: &Api, hash: &str, auth: Auth<'_>) -> Reply {
    api.get_with(&format!("/v1/records/{hash}"), auth)
}

#[test]
fn local_mode_reads_need_the_root_key_and_a_stranger_cannot_tell_denied_from_absent() {
    let agent = Agent::start();
    let api = agent.api();
    let w = api.write("orders", &json!({"id": 1}));

    get(&api, &w.hash, Auth::Root).assert_status(200);
    get(&api, &w.hash, Auth::None).assert_error(401, "unauthorized");
    let denied = get(&api, &w.hash, Auth::Bearer("a-stranger-token"));
    denied.assert_error(404, "not_found");
    let absent = get(&api, &"0".repeat(64), Auth::Bearer("a-stranger-token"));
    absent.assert_error(404, "not_found");
    assert_eq!(
        denied.json(),
        absent.json(),
        "the same answer, word for word"
    );
    assert!(
        !denied.text.contains("orders") && !denied.text.contains("\"id\""),
        "nothing of the record leaks: {}",
        denied.text
    );
    get(&api, &"0".repeat(64), Auth::None).assert_error(401, "unauthorized");
    // Malformed hashes are still refused before anything else.
    get(&api, "xyz", Auth::None).assert_error(400, "bad_request");
}

#[test]
fn open_reads_need_no_token_and_writes_still_do() {
    let agent = Agent::builder().env("SAPIX_READS_OPEN", "true").start();
    let api = agent.api();
    let w = api.write("orders", &json!({"id": 2}));
    let record = get(&api, &w.hash, Auth::None);
    record.assert_status(200);
    assert_eq!(record.json()["data"], json!({"id": 2}));
    get(&api, &w.hash, Auth::Bearer("anyone")).assert_status(200);
    api.post_with(
        "/v1/records",
        Auth::None,
        Api::record_body("orders", &json!(3)),
    )
    .assert_error(401, "unauthorized");
}

#[test]
fn codios_mode_reads_what_codios_permits_to_read_and_caches_it() {
    let codios = CodiosDev::start(&json!({
        "tokens": {
            "reader": {"read": ["orders"]},
            "writer": {"write": ["orders"]},
        }
    }));
    let agent = Agent::builder()
        .env("SAPIX_CODIOS_URL", &codios.url())
        .start();
    let api = agent.api();
    let order = api.write("orders", &json!({"id": 4}));
    let invoice = api.write("invoices", &json!({"id": 5}));
    let calls = codios.authorize_calls();
    assert_eq!(calls, 0, "the root key never asks Codios");

    get(&api, &order.hash, Auth::Bearer("reader")).assert_status(200);
    assert_eq!(codios.authorize_calls(), 1, "one call for reader on orders");
    get(&api, &order.hash, Auth::Bearer("reader")).assert_status(200);
    assert_eq!(
        codios.authorize_calls(),
        1,
        "the second read is a cache hit"
    );

    get(&api, &invoice.hash, Auth::Bearer("reader")).assert_error(404, "not_found");
    // A permit to write orders is no permit to read them.
    get(&api, &order.hash, Auth::Bearer("writer")).assert_error(404, "not_found");
    assert_eq!(codios.authorize_calls(), 3);
    // An absent hash asks Codios nothing: there is no collection to ask about.
    get(&api, &"0".repeat(64), Auth::Bearer("reader")).assert_error(404, "not_found");
    get(&api, &order.hash, Auth::None).assert_error(401, "unauthorized");
    assert_eq!(codios.authorize_calls(), 3);
    get(&api, &order.hash, Auth::Root).assert_status(200);
}
