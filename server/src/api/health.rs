//! Liveness and readiness, Kubernetes' split (also etcd's): `/livez` answers while the process
//! serves; `/readyz` answers 200 only when the node can do its work — its actor answers, its
//! storage has not failed, it is not shutting down — and 503 `not_ready` (with `Retry-After`)
//! naming the failing checks otherwise. `?verbose` lists every check. `/healthz` is kept.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::Json;
use sapix_core::Response;
use sapix_runtime::actor::Request;
use serde_json::{json, Value};

use super::AppState;
use crate::error::ApiError;

/// How long readiness waits for the node actor's answer.
const NODE_ANSWERS_WITHIN: Duration = Duration::from_secs(2);

/// `GET /livez`.
pub(crate) async fn livez() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz[?verbose]`.
pub(crate) async fn readyz(
    State(s): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let mut checks: BTreeMap<&str, String> = BTreeMap::new();
    let shutting_down = s.shutting_down.load(Ordering::Relaxed);
    checks.insert("shutdown", verdict(!shutting_down, "shutting down"));
    // The strand was opened and recovered before the first request could arrive.
    checks.insert("strand", format!("ok (tip {})", s.strand.tip()));
    let answer = tokio::time::timeout(NODE_ANSWERS_WITHIN, s.node.ask(Request::Status)).await;
    let (node, storage) = match answer {
        Ok(Ok(Response::Status(status))) => {
            let own = status.nodes.first().is_some_and(|n| n.reachable);
            ("ok".to_string(), verdict(own, "local storage failed"))
        }
        Ok(_) => ("the node actor is gone".into(), "unknown".into()),
        Err(_) => (
            format!("no answer within {} s", NODE_ANSWERS_WITHIN.as_secs()),
            "unknown".into(),
        ),
    };
    checks.insert("node", node);
    checks.insert("storage", storage);
    let failing: Vec<String> = checks
        .iter()
        .filter(|(_, v)| !v.starts_with("ok"))
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    let verbose = query.is_some_and(|q| q.split('&').any(|p| p == "verbose"));
    if failing.is_empty() {
        let mut body = json!({ "status": "ready" });
        if verbose {
            body["checks"] = json!(checks);
        }
        return Ok(Json(body));
    }
    let mut e = ApiError::unavailable("not_ready", format!("not ready: {}", failing.join("; ")));
    if verbose {
        e = e.with("checks", json!(checks));
    }
    Err(e)
}

fn verdict(ok: bool, otherwise: &str) -> String {
    if ok {
        "ok".into()
    } else {
        otherwise.into()
    }
}
