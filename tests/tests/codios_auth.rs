//! An agent in Codios mode against a real `codios-dev`: who may write is Codios's answer,
//! the root key always may, and the agent says which mode it runs in.

use std::time::Duration;

use sapix_tests::{wait_until, Agent, Api, Auth, CodiosDev, Reply};
use serde_json::{json, Value};

const API_KEY: &str = "codios-dev-test-key-0123456789";

fn policy() -> Value {
    json!({
        "api_key": API_KEY,
        "tokens": {
            "alice-token": {"write": ["orders"]},
            "bob-token": {"write": ["audit"], "read": ["*"]},
        }
    })
}

fn write(api: &Api, token: &str, collection: &str) -> Reply {
    api.post_with(
        "/v1/records",
        Auth::Bearer(token),
        Api::record_body(collection, &json!({"by": token})),
    )
}

fn codios_agent(codios: &CodiosDev, api_key: &str) -> Agent {
    Agent::builder()
        .env("SAPIX_CODIOS_URL", &codios.url())
        .env("SAPIX_CODIOS_API_KEY", api_key)
        .start()
}

#[test]
fn permitted_token_writes_denied_and_unknown_tokens_are_403() {
    let codios = CodiosDev::start(&policy());
    let agent = codios_agent(&codios, API_KEY);
    let api = agent.api();

    write(&api, "alice-token", "orders").assert_status(201);
    write(&api, "alice-token", "orders").assert_status(201);
    write(&api, "alice-token", "invoices").assert_error(403, "forbidden");
    write(&api, "bob-token", "orders").assert_error(403, "forbidden");
    write(&api, "bob-token", "audit").assert_status(201);
    write(&api, "eve-token", "orders").assert_error(403, "forbidden");
    api.post_with(
        "/v1/records",
        Auth::None,
        Api::record_body("orders", &json!(1)),
    )
    .assert_error(401, "unauthorized");
    // The root key is the admin: always permitted, Codios is not asked.
    let calls = codios.authorize_calls();
    api.write("orders", &json!({"by": "root"}));
    assert_eq!(codios.authorize_calls(), calls);
    // Within the TTL, the cached permit answers: no new Codios call.
    write(&api, "alice-token", "orders").assert_status(201);
    assert_eq!(codios.authorize_calls(), calls, "cache hit: no Codios call");

    let status = api.get_with("/v1/cluster/status", Auth::None).json();
    assert_eq!(status["auth"]["mode"], "codios", "{status}");
    assert_eq!(status["auth"]["breaker"], "disabled", "{status}");
    let log = agent.stderr();
    assert!(
        log.contains("Codios mode"),
        "the agent says its mode at start"
    );
    assert!(!log.contains(API_KEY), "the API key is never logged");
}

#[test]
fn a_wrong_codios_api_key_is_a_codios_failure_never_a_permit() {
    let codios = CodiosDev::start(&policy());
    let agent = codios_agent(&codios, "not-the-codios-key");
    let reply = write(&agent.api(), "alice-token", "orders");
    reply.assert_error(503, "auth_unavailable");
    wait_until(Duration::from_secs(5), "the failure is logged", || {
        agent.stderr().contains("Codios call failed")
    });
    assert!(
        agent.stderr().contains("401"),
        "the log says what Codios answered"
    );
}

#[test]
fn local_mode_lets_only_the_root_key_write_and_says_so() {
    let agent = Agent::start();
    let api = agent.api();
    api.write("orders", &json!(1));
    let reply = write(&api, "alice-token", "orders");
    reply.assert_error(403, "forbidden");
    assert!(reply.text.contains("local mode"), "{}", reply.text);
    assert!(agent.stderr().contains("local mode"));
    let status = api.get_with("/v1/cluster/status", Auth::None).json();
    assert_eq!(status["auth"]["mode"], "local", "{status}");
}

#[test]
fn breaker_with_require_codios_refuses_to_start_naming_both() {
    let exited = Agent::builder()
        .env("SAPIX_CODIOS_URL", "http://127.0.0.1:9")
        .env("SAPIX_REQUIRE_CODIOS", "true")
        .env("SAPIX_AUTH_CIRCUIT_BREAKER", "true")
        .run_expecting_exit(Duration::from_secs(20));
    assert!(!exited.status.success());
    assert!(
        exited.stderr.contains("SAPIX_AUTH_CIRCUIT_BREAKER")
            && exited.stderr.contains("SAPIX_REQUIRE_CODIOS"),
        "{}",
        exited.stderr
    );
}
