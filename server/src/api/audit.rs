//! The admin audit log: one line per admin call (divide, consistency, sync, member removal)
//! under the `audit` target — who (the kind of credential presented, never the credential,
//! and under mutual TLS the client certificate's subject and fingerprint),
//! what (method and path), and the outcome (status) — refused calls included, so an operator
//! sees attempts as well as changes.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::auth::bearer;
use super::AppState;

/// Logs the call after it is answered.
pub(crate) async fn audit(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let mut who = caller(req.headers(), &s).to_string();
    if let Some(cert) = req.extensions().get::<crate::serve::ClientCert>() {
        who = format!(
            "{who}, client certificate {} ({})",
            cert.subject, cert.fingerprint
        );
    }
    let action = format!("{} {}", req.method(), req.uri().path());
    let response = next.run(req).await;
    let status = response.status();
    tracing::info!(
        target: "audit",
        who = who.as_str(),
        %action,
        outcome = status.as_u16(),
        "admin call {}",
        status.canonical_reason().unwrap_or("")
    );
    response
}

/// Who called, as far as the credential says; never any part of the token.
fn caller(headers: &axum::http::HeaderMap, s: &AppState) -> &'static str {
    match bearer(headers) {
        Err(_) => "no bearer token",
        Ok(token) if s.root_key.matches(token) => "root key",
        Ok(token) if s.is_root(token) => "the next root key",
        Ok(_) => "a token that is not the root key",
    }
}
