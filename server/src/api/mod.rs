//! The HTTP API: thin axum handlers that parse and validate, ask the node actor, and map the
//! core's answer to a status and JSON. No decision about replication or storage is made here.

mod audit;
mod auth;
mod body;
mod chains;
mod cluster;
mod health;
mod ledger;
mod mesh;
mod metrics;
mod read_query;
mod records;
pub mod routes;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use sapix_core::{AgentId, KeySchedule, RootKey};
use sapix_runtime::actor::NodeHandle;
use sapix_runtime::blocking::Blocking;
use sapix_runtime::clock::Clock;
use sapix_runtime::metrics::Metrics;
use sapix_runtime::strand::Strand;

use crate::error::ApiError;
use routes::Guard;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The node actor.
    pub node: NodeHandle,
    /// The durable strand, for reads.
    pub strand: Arc<Strand>,
    /// The cluster's keys, for verifying ingested blocks.
    pub keys: Arc<KeySchedule>,
    /// The bearer token for admin, mesh and (in local mode) write endpoints.
    pub root_key: RootKey,
    /// `SAPIX_ROOT_KEY_NEXT`: also accepted on admin and mesh endpoints during a rotation.
    pub root_key_next: Option<RootKey>,
    /// This node's id.
    pub agent_id: AgentId,
    /// The clocks.
    pub clock: Arc<dyn Clock>,
    /// Where strand reads and block verification run.
    pub blocking: Blocking,
    /// How long a handler waits for a whole request body (`SAPIX_HTTP_BODY_TIMEOUT_MS`).
    pub body_timeout: std::time::Duration,
    /// Set once a shutdown signal arrived (readiness turns false).
    pub shutting_down: Arc<std::sync::atomic::AtomicBool>,
    /// `https` when the listener serves TLS, else `http`.
    pub scheme: &'static str,
    /// `SAPIX_TLS_REQUIRE_CLIENT_CERT`: mesh and admin routes need a client certificate.
    pub require_client_cert: bool,
    /// The node's metrics, for `GET /metrics`.
    pub metrics: Arc<Metrics>,
    /// The head key files, for `POST /v1/cluster/rotate-head-key`.
    pub head_key: Arc<crate::head_key::Rotation>,
}

impl AppState {
    /// Whether `token` is the root key, or the next one during a rotation.
    fn is_root(&self, token: &str) -> bool {
        // Both are compared, whichever matches, so the time says nothing about which.
        let current = self.root_key.matches(token);
        let next = self
            .root_key_next
            .as_ref()
            .is_some_and(|k| k.matches(token));
        current | next
    }

    fn clock_wall_ms(&self) -> u64 {
        self.clock.wall().0
    }
}

/// The whole router, built from [`routes::ROUTES`].
pub fn router(state: AppState) -> Router {
    let (mut open, mut mesh, mut admin) = (Router::new(), Router::new(), Router::new());
    for r in routes::ROUTES {
        let handler = (r.handler)();
        match r.guard {
            Guard::Open | Guard::Writer | Guard::Reader => open = open.route(r.path, handler),
            Guard::Mesh => mesh = mesh.route(r.path, handler),
            Guard::Admin => admin = admin.route(r.path, handler),
        }
    }
    let certified =
        || axum::middleware::from_fn_with_state(state.clone(), auth::require_client_cert);
    // Node-to-node routes: with mutual TLS, only for clients with a certificate.
    let mesh = mesh.route_layer(certified());
    // Operator actions: the same, and each call (refused ones too) goes to the audit log.
    let admin = admin
        .route_layer(certified())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::audit,
        ));
    open.merge(mesh)
        .merge(admin)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Handlers read bodies themselves, with their own limits and JSON errors.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("this endpoint does not take {method}"),
    )
}

/// The core answered something this endpoint never asked for: a bug, reported as 500.
fn unexpected(what: impl std::fmt::Debug) -> ApiError {
    tracing::error!(answer = ?what, "unexpected answer from the node");
    ApiError::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "unexpected internal answer",
    )
}

/// An operator's change took effect but the cluster view holding it is not durable yet.
fn not_persisted(reason: String) -> ApiError {
    ApiError::unavailable("not_persisted", reason)
}

fn node_gone() -> ApiError {
    ApiError::unavailable("shutting_down", "the node is shutting down")
}

fn storage_failed() -> ApiError {
    ApiError::unavailable(
        "storage_failed",
        "local storage failed; this node refuses writes until it is restarted",
    )
}
