//! `codios-dev`: a small Codios-compatible authorization server for local use, compose files
//! and tests. It speaks the protocol of `docs/codios.md` and decides from a JSON policy file.
//!
//! The policy names plain tokens; it hashes each with BLAKE3 at load, so it matches the
//! `subject` the agent sends without the token ever crossing the wire. Each token maps actions
//! (`"write"`, `"read"` or `"*"`) to the collections they are allowed on (names or `"*"`).
//! Anything not granted is denied, unknown subjects included. If the policy has an `api_key`,
//! every call must carry it as a bearer token (401 otherwise). Not for production: the policy
//! is read once at start.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use sapix_runtime::codios::{AuthorizeAnswer, AuthorizeRequest, CodiosApiKey, AUTHORIZE_PATH};
use serde::Deserialize;
use serde_json::json;

/// The policy file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    /// The API key callers must present, if any.
    #[serde(default)]
    api_key: Option<String>,
    /// Token → action (or `"*"`) → collections (names or `"*"`).
    tokens: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

/// A loaded policy: grants by subject (hex BLAKE3 of the token).
#[derive(Debug)]
pub struct Policy {
    api_key: Option<CodiosApiKey>,
    grants: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

/// Why a policy file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a valid policy.
    #[error("{path} is not a valid policy: {why}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
}

impl Policy {
    /// Parses a policy from JSON text.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let file: PolicyFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut grants = BTreeMap::new();
        for (token, actions) in file.tokens {
            if token.is_empty() {
                return Err("a token may not be empty".into());
            }
            for action in actions.keys() {
                if !matches!(action.as_str(), "write" | "read" | "*") {
                    return Err(format!(
                        "unknown action {action:?}: use \"write\", \"read\" or \"*\""
                    ));
                }
            }
            grants.insert(
                hex::encode(blake3::hash(token.as_bytes()).as_bytes()),
                actions,
            );
        }
        Ok(Policy {
            api_key: file
                .api_key
                .filter(|k| !k.is_empty())
                .map(CodiosApiKey::new),
            grants,
        })
    }

    /// Reads and parses the policy file at `path`.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: shown.clone(),
            source,
        })?;
        Policy::parse(&text).map_err(|why| PolicyError::Invalid { path: shown, why })
    }

    /// How many tokens the policy knows.
    pub fn tokens(&self) -> usize {
        self.grants.len()
    }

    /// Whether callers must present an API key.
    pub fn has_api_key(&self) -> bool {
        self.api_key.is_some()
    }

    /// The decision for one request, with a reason.
    pub fn decide(&self, req: &AuthorizeRequest) -> AuthorizeAnswer {
        let Some(actions) = self.grants.get(&req.subject.to_ascii_lowercase()) else {
            return deny("unknown subject");
        };
        let allowed = [req.action.as_str(), "*"]
            .iter()
            .filter_map(|a| actions.get(*a))
            .flatten()
            .any(|c| c == "*" || *c == req.resource);
        if allowed {
            AuthorizeAnswer {
                decision: "permit".into(),
                reason: None,
            }
        } else {
            deny("not granted by the policy")
        }
    }
}

fn deny(reason: &str) -> AuthorizeAnswer {
    AuthorizeAnswer {
        decision: "deny".into(),
        reason: Some(reason.into()),
    }
}

#[derive(Debug)]
struct Dev {
    policy: Policy,
    calls: AtomicU64,
}

/// The router: `POST /v1/authorize`, `GET /healthz`, and `GET /v1/stats` (calls answered).
pub fn router(policy: Policy) -> Router {
    let dev = Arc::new(Dev {
        policy,
        calls: AtomicU64::new(0),
    });
    Router::new()
        .route(AUTHORIZE_PATH, post(authorize))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/v1/stats", get(stats))
        .with_state(dev)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": code, "message": message}))).into_response()
}

async fn authorize(State(dev): State<Arc<Dev>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(key) = &dev.policy.api_key {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !key.matches(presented) {
            return error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong API key",
            );
        }
    }
    let req: AuthorizeRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_request", &e.to_string()),
    };
    if !matches!(req.action.as_str(), "write" | "read") {
        return error(StatusCode::BAD_REQUEST, "bad_request", "unknown action");
    }
    dev.calls.fetch_add(1, Ordering::Relaxed);
    Json(dev.policy.decide(&req)).into_response()
}

async fn stats(State(dev): State<Arc<Dev>>) -> Json<serde_json::Value> {
    Json(json!({ "authorize_calls": dev.calls.load(Ordering::Relaxed) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(token: &str, action: &str, resource: &str) -> AuthorizeRequest {
        AuthorizeRequest {
            subject: hex::encode(blake3::hash(token.as_bytes()).as_bytes()),
            action: action.into(),
            resource: resource.into(),
        }
    }

    #[test]
    fn grants_match_hashed_subjects_actions_and_wildcards() {
        let p = Policy::parse(
            r#"{"tokens": {
                "alice": {"write": ["orders"]},
                "bob":   {"*": ["*"]},
                "carol": {"read": ["*"]}
            }}"#,
        )
        .unwrap();
        let d = |t, a, r| p.decide(&req(t, a, r)).decision;
        assert_eq!(d("alice", "write", "orders"), "permit");
        assert_eq!(d("alice", "write", "invoices"), "deny");
        assert_eq!(d("alice", "read", "orders"), "deny");
        assert_eq!(d("bob", "write", "anything"), "permit");
        assert_eq!(d("carol", "write", "orders"), "deny");
        assert_eq!(d("carol", "read", "orders"), "permit");
        assert_eq!(d("mallory", "write", "orders"), "deny");
    }

    #[test]
    fn bad_policies_are_refused() {
        assert!(Policy::parse(r#"{"tokens": {"a": {"delete": ["*"]}}}"#).is_err());
        assert!(Policy::parse(r#"{"tokens": {}, "extra": 1}"#).is_err());
        assert!(Policy::parse(r#"{"tokens": {"": {"write": ["*"]}}}"#).is_err());
        assert!(Policy::parse("nope").is_err());
        let p = Policy::parse(r#"{"api_key": "k", "tokens": {}}"#).unwrap();
        assert!(p.has_api_key());
        assert!(!format!("{p:?}").contains("\"k\""));
    }
}
