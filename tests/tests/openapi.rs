//! `docs/openapi.yaml` against a real node: Schemathesis (PyPI) generates requests for every
//! documented route — valid ones from the schemas, and invalid ones around them — and checks
//! each answer's status, content type, headers and body against the document; a 5xx fails,
//! except the 502s that report another node (see `tests/schemathesis.toml`). Then the node
//! must still serve and its log must hold no panic.
//!
//! A fresh seed each run, printed first; `SCHEMATHESIS_SEED=<n>` replays one.

use std::path::Path;
use std::process::Command;

use sapix_tests::locate::WORKSPACE_ROOT;
use sapix_tests::Agent;

/// Examples per route and phase: about 1,400 requests, some 15 s here.
const MAX_EXAMPLES: &str = "50";

fn schemathesis() -> String {
    let out = Command::new(Path::new(WORKSPACE_ROOT).join("scripts/schemathesis.sh"))
        .output()
        .expect("run scripts/schemathesis.sh");
    assert!(
        out.status.success(),
        "installing Schemathesis failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("a path")
        .trim()
        .to_string()
}

#[test]
fn every_documented_route_answers_as_documented_and_never_with_a_server_error() {
    let seed: u64 = match std::env::var("SCHEMATHESIS_SEED") {
        Ok(s) => s.parse().expect("SCHEMATHESIS_SEED is a number"),
        Err(_) => rand::random(),
    };
    println!("schemathesis seed {seed} (replay: SCHEMATHESIS_SEED={seed})");
    let st = schemathesis();
    let agent = Agent::start();
    let root = Path::new(WORKSPACE_ROOT);
    let out = Command::new(&st)
        .current_dir(std::env::temp_dir())
        .arg("--config-file")
        .arg(root.join("tests/schemathesis.toml"))
        .arg("run")
        .arg(root.join("docs/openapi.yaml"))
        .args(["--url", &agent.base_url()])
        .args(["-H", &format!("Authorization: Bearer {}", agent.root_key())])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,response_headers_conformance",
        ])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--seed", &seed.to_string()])
        .args(["--request-timeout", "20"])
        .env("NO_COLOR", "1")
        .output()
        .expect("run schemathesis");
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    assert!(
        out.status.success(),
        "schemathesis found failures (seed {seed}); its report is above\n{}\nagent stderr:\n{}",
        String::from_utf8_lossy(&out.stderr),
        agent.stderr_tail()
    );
    // It really exercised every route, and some writes got through.
    let routes = sapix_server::api::routes::ROUTES.len();
    assert!(
        report.contains(&format!("Tested: {routes}")),
        "every one of the {routes} routes was tested"
    );
    let api = agent.api();
    api.get("/healthz").assert_status(200);
    let blocks = api.get("/v1/cluster/status").json()["nodes"][0]["blocks"]
        .as_u64()
        .unwrap_or(0);
    assert!(blocks > 0, "generated writes were stored");
    assert!(
        !agent.stderr().contains("panicked"),
        "{}",
        agent.stderr_tail()
    );
}
