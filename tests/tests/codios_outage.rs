//! Codios goes down under an agent: stale permits keep writes flowing (logged
//! `auth_degraded`) up to SAPIX_AUTH_MAX_STALE_SECS, then 503; SAPIX_REQUIRE_CODIOS=true fails
//! closed as soon as the cached permit expires. Conditions are polled against deadlines.

use std::time::{Duration, Instant};

use sapix_tests::{wait_until, Agent, Api, Auth, CodiosDev, Reply};
use serde_json::{json, Value};

fn policy() -> Value {
    json!({"tokens": {
        "alice-token": {"write": ["orders"]},
        "bob-token": {"write": ["audit"]},
    }})
}

fn write(api: &Api, token: &str) -> Reply {
    api.post_with(
        "/v1/records",
        Auth::Bearer(token),
        Api::record_body("orders", &json!({"by": token})),
    )
}

#[test]
fn codios_down_serves_the_stale_permit_logged_auth_degraded_then_503_after_max_stale() {
    let mut codios = CodiosDev::start(&policy());
    let agent = Agent::builder()
        .env("SAPIX_CODIOS_URL", &codios.url())
        .env("SAPIX_AUTH_CACHE_TTL_SECS", "1")
        .env("SAPIX_AUTH_MAX_STALE_SECS", "2")
        .start();
    let api = agent.api();
    write(&api, "alice-token").assert_status(201);
    write(&api, "bob-token").assert_error(403, "forbidden");
    codios.kill();

    wait_until(Duration::from_secs(10), "a stale permit served", || {
        write(&api, "alice-token").assert_status(201);
        agent.stderr().contains("auth_degraded")
    });
    let log = agent.stderr();
    let line = log.lines().find(|l| l.contains("auth_degraded")).unwrap();
    assert!(line.contains("auth_degraded=true"), "{line}");
    assert!(!log.contains("alice-token"), "the token is never logged");
    // A cached deny stays a deny; a token with nothing cached cannot be authorized.
    write(&api, "bob-token").assert_error(403, "forbidden");
    write(&api, "eve-token").assert_error(503, "auth_unavailable");

    wait_until(
        Duration::from_secs(10),
        "503 once the permit is too old",
        || {
            let reply = write(&api, "alice-token");
            if reply.status == 201 {
                return false;
            }
            reply.assert_error(503, "auth_unavailable");
            true
        },
    );
    write(&api, "alice-token").assert_error(503, "auth_unavailable");
    let status = api.get_with("/v1/cluster/status", Auth::None).json();
    assert!(
        status["auth"]["degraded_total"].as_u64().unwrap() >= 1,
        "{status}"
    );

    // Codios back: enforcement resumes with fresh answers.
    codios.restart();
    write(&api, "alice-token").assert_status(201);
}

#[test]
fn require_codios_answers_503_as_soon_as_the_cached_permit_expires() {
    let mut codios = CodiosDev::start(&policy());
    let agent = Agent::builder()
        .env("SAPIX_CODIOS_URL", &codios.url())
        .env("SAPIX_AUTH_CACHE_TTL_SECS", "1")
        .env("SAPIX_REQUIRE_CODIOS", "true")
        .start();
    let api = agent.api();
    write(&api, "alice-token").assert_status(201);
    codios.kill();
    let killed = Instant::now();
    wait_until(Duration::from_secs(5), "503 without Codios", || {
        let reply = write(&api, "alice-token");
        if reply.status == 201 {
            return false;
        }
        reply.assert_error(503, "auth_unavailable");
        true
    });
    assert!(
        killed.elapsed() < Duration::from_secs(3),
        "fails closed within the 1 s TTL (plus slack), took {:?}",
        killed.elapsed()
    );
    for _ in 0..5 {
        write(&api, "alice-token").assert_error(503, "auth_unavailable");
    }
    assert!(
        !agent.stderr().contains("auth_degraded"),
        "fail-closed never serves a stale permit"
    );
}
