//! The admin audit log (issue 12): every admin call — divide, consistency, sync, member
//! removal — writes one `audit` line saying who (the kind of credential, never the credential),
//! what, and the outcome; refused calls too. No other call writes one.

use sapix_tests::{cluster_agent, Auth};
use serde_json::json;

#[test]
fn every_admin_call_logs_who_what_and_the_outcome_and_never_the_key() {
    let agent = cluster_agent("audited");
    let api = agent.api();
    let root = agent.root_key();
    let wrong = "wrong-token-0123456789abcdef";
    let divide = json!({"new_agent_id": "x", "endpoint": "http://127.0.0.1:9"}).to_string();
    let calls: [(reqwest::Method, &str, String); 4] = [
        (
            reqwest::Method::POST,
            "/v1/cluster/consistency",
            json!({"mode": "AP"}).to_string(),
        ),
        (reqwest::Method::POST, "/v1/cluster/divide", divide),
        (reqwest::Method::POST, "/v1/mesh/sync/nobody", String::new()),
        (
            reqwest::Method::DELETE,
            "/v1/cluster/members/nobody",
            String::new(),
        ),
    ];
    let mut expected = Vec::new();
    for (method, path, body) in &calls {
        for (auth, who) in [
            (Auth::None, "no bearer token"),
            (Auth::Bearer(wrong), "a token that is not the root key"),
            (Auth::Root, "root key"),
        ] {
            let reply = api.send(method.clone(), path, auth, Some(body.clone().into_bytes()));
            expected.push((who, format!("{method} {path}"), reply.status));
        }
    }
    // Not admin calls: no audit line.
    api.get("/v1/cluster/status").assert_status(200);
    api.write("c", &json!({"not": "audited"}));

    let log = agent.stderr();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(" audit:")).collect();
    assert_eq!(
        lines.len(),
        expected.len(),
        "one line per admin call:\n{log}"
    );
    for (line, (who, action, status)) in lines.iter().zip(&expected) {
        for part in [
            format!("who=\"{who}\""),
            format!("action={action} "),
            format!("outcome={status}"),
        ] {
            assert!(line.contains(&part), "{part:?} missing from {line}");
        }
    }
    assert!(!log.contains(&root), "the root key never reaches the log");
    assert!(!log.contains(wrong), "nor does a presented token");
    let outcomes: Vec<u16> = expected.iter().map(|e| e.2).collect();
    assert_eq!(
        outcomes,
        [401, 403, 200, 401, 403, 502, 401, 403, 404, 401, 403, 404],
        "the calls did what the log says"
    );
}
