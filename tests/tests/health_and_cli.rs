//! What an operator and an orchestrator ask of the binary and the node (issue 14): `/livez`,
//! `/readyz` (with `?verbose`), `sapix-agent health` as the image's health check, `--help` and
//! `--version` answering instead of starting a server, an unknown log format refused, and a
//! SIGTERM that says the shutdown completed.

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use sapix_tests::locate::agent_bin;
use sapix_tests::{Agent, Auth};
use serde_json::json;

const WITHIN: Duration = Duration::from_secs(20);

#[test]
fn livez_and_readyz_answer_and_verbose_lists_every_check() {
    let agent = Agent::start();
    let api = agent.api();
    let live = api.get_with("/livez", Auth::None);
    live.assert_status(200);
    assert_eq!(live.json(), json!({"status": "ok"}));
    let ready = api.get_with("/readyz", Auth::None);
    ready.assert_status(200);
    assert_eq!(ready.json(), json!({"status": "ready"}));
    let verbose = api.get_with("/readyz?verbose", Auth::None).json();
    assert_eq!(verbose["status"], "ready", "{verbose}");
    for check in ["node", "shutdown", "storage"] {
        assert_eq!(verbose["checks"][check], "ok", "{check}: {verbose}");
    }
    assert!(
        verbose["checks"]["strand"]
            .as_str()
            .is_some_and(|s| s.starts_with("ok (tip 0)")),
        "{verbose}"
    );
}

#[test]
fn the_health_subcommand_is_0_for_a_serving_node_and_1_for_none() {
    let agent = Agent::start();
    let ask = |addr: &str| {
        Command::new(agent_bin())
            .arg("health")
            .env("SAPIX_BIND_ADDR", addr)
            .output()
            .expect("run sapix-agent health")
    };
    let up = ask(&agent.addr().to_string());
    assert!(up.status.success(), "{up:?}");
    // A port nobody listens on: bound and released by us.
    let free = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let down = ask(&free.to_string());
    assert_eq!(down.status.code(), Some(1), "{down:?}");
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("/livez"),
        "{down:?}"
    );
}

#[test]
fn help_and_version_answer_without_starting_a_server() {
    let version = Command::new(agent_bin())
        .arg("--version")
        .output()
        .expect("--version");
    assert!(version.status.success(), "{version:?}");
    let text = String::from_utf8_lossy(&version.stdout);
    assert_eq!(
        text.trim(),
        format!("sapix-agent {}", env!("CARGO_PKG_VERSION"))
    );
    let help = Command::new(agent_bin())
        .arg("--help")
        .output()
        .expect("--help");
    assert!(help.status.success(), "{help:?}");
    let text = String::from_utf8_lossy(&help.stdout);
    for part in [
        "Usage:",
        "sapix-agent health",
        "SAPIX_BIND_ADDR",
        "SAPIX_LOG_FORMAT",
    ] {
        assert!(text.contains(part), "{part:?} missing from --help:\n{text}");
    }
    assert!(!text.contains("listening"), "--help started a server");
    let unknown = Command::new(agent_bin())
        .arg("--bogus")
        .output()
        .expect("--bogus");
    assert_eq!(unknown.status.code(), Some(2), "{unknown:?}");
}

#[test]
fn an_unknown_log_format_is_refused_not_guessed() {
    let exited = Agent::builder()
        .env("SAPIX_LOG_FORMAT", "yaml")
        .run_expecting_exit(WITHIN);
    assert_eq!(exited.status.code(), Some(2), "{exited:?}");
    assert!(exited.stderr.contains("SAPIX_LOG_FORMAT"), "{exited:?}");
    assert!(!exited.stdout.contains("listening"), "{exited:?}");
}

#[test]
fn sigterm_ends_with_a_logged_complete_shutdown_and_exit_0() {
    let mut agent = Agent::start();
    agent.api().write("c", &json!({"before": "sigterm"}));
    let status = agent.stop().expect("it was running");
    assert!(status.success(), "{status:?}\n{}", agent.stderr_tail());
    let log = agent.stderr();
    assert!(log.contains("shutting down"), "{log}");
    assert!(log.contains("shutdown complete"), "{log}");
}

#[test]
fn json_logs_carry_the_recovery_report_as_fields_not_a_debug_string() {
    let mut agent = Agent::builder().env("SAPIX_LOG_FORMAT", "json").start();
    agent.api().write("c", &json!({"before": "restart"}));
    agent.restart();
    let log = agent.stderr();
    assert!(!log.contains("RecoveryReport"), "{log}");
    let opened: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "strand open")
        .collect();
    assert_eq!(opened.len(), 2, "one line per start:\n{log}");
    let after_restart = &opened[1]["fields"];
    assert_eq!(after_restart["tip"], 1, "{after_restart}");
    assert!(
        after_restart["segments"].as_u64().is_some(),
        "{after_restart}"
    );
    assert!(after_restart["checkpoint"].is_string(), "{after_restart}");
}
