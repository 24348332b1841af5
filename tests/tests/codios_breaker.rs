//! The opt-in circuit breaker against a real `codios-dev`: after
//! SAPIX_AUTH_CIRCUIT_OPEN_AFTER_SECS of continuous failure the circuit opens (status says so)
//! and cached permits are served at any age, each write logged `auth_degraded`; when Codios
//! comes back a half-open probe closes it.

use std::time::Duration;

use sapix_tests::{wait_until, Agent, Api, Auth, CodiosDev, Reply};
use serde_json::{json, Value};

fn write(api: &Api, token: &str) -> Reply {
    api.post_with(
        "/v1/records",
        Auth::Bearer(token),
        Api::record_body("orders", &json!({"by": token})),
    )
}

fn breaker(api: &Api) -> Value {
    api.get_with("/v1/cluster/status", Auth::None).json()["auth"]["breaker"].clone()
}

#[test]
fn circuit_opens_after_open_after_secs_serves_cached_permits_and_closes_when_codios_returns() {
    let mut codios = CodiosDev::start(&json!({"tokens": {"alice-token": {"write": ["*"]}}}));
    let agent = Agent::builder()
        .env("SAPIX_CODIOS_URL", &codios.url())
        .env("SAPIX_AUTH_CACHE_TTL_SECS", "1")
        .env("SAPIX_AUTH_MAX_STALE_SECS", "1")
        .env("SAPIX_AUTH_CIRCUIT_BREAKER", "true")
        .env("SAPIX_AUTH_CIRCUIT_OPEN_AFTER_SECS", "1")
        .start();
    let api = agent.api();
    write(&api, "alice-token").assert_status(201);
    assert_eq!(breaker(&api), "closed");
    codios.kill();

    // Misses keep failing against the dead Codios until a second of failure opens the circuit.
    wait_until(Duration::from_secs(15), "the circuit to open", || {
        let status = write(&api, "alice-token").status;
        assert!(status == 201 || status == 503, "{status}");
        breaker(&api) == "open"
    });
    assert!(agent.stderr().contains("auth_circuit_open"));
    // Open: the permit is older than SAPIX_AUTH_MAX_STALE_SECS, and still served.
    for _ in 0..3 {
        write(&api, "alice-token").assert_status(201);
    }
    assert!(agent.stderr().contains("circuit_open=true"));
    write(&api, "eve-token").assert_error(503, "auth_unavailable");

    codios.restart();
    wait_until(
        Duration::from_secs(20),
        "a probe to close the circuit",
        || breaker(&api) == "closed",
    );
    assert!(
        codios.authorize_calls() >= 1,
        "closed by a real Codios answer"
    );
    write(&api, "alice-token").assert_status(201);
    write(&api, "eve-token").assert_error(403, "forbidden");
}
