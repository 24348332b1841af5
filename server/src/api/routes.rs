//! The one route table. The router is built from it, and `docs/openapi.yaml` is checked
//! against it (the paths, methods, guards and documented statuses must agree; see the tests),
//! so a route cannot be added, moved or given a new answer without the description following.

use axum::routing::{delete, get, post, MethodRouter};

use super::{chains, cluster, health, ledger, mesh, metrics, records, AppState};

/// Who may call a route, and what wraps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Anyone.
    Open,
    /// A bearer token the node authorizes (the root key, or Codios' answer).
    Writer,
    /// A read: a bearer token the node authorizes for the records' collection, or none when
    /// reads are open (`SAPIX_READS_OPEN`). Denied reads answer 404, never 403.
    Reader,
    /// Node to node: the root key; with mutual TLS, a client certificate too.
    Mesh,
    /// An operator's action: as `Mesh`, and every call goes to the audit log.
    Admin,
}

/// One endpoint.
pub struct Route {
    /// `GET`, `POST` or `DELETE`.
    pub method: &'static str,
    /// The path, with `{name}` parameters (axum's syntax and OpenAPI's).
    pub path: &'static str,
    /// Who may call it.
    pub guard: Guard,
    /// Every status it answers with (besides 405 for another method).
    pub statuses: &'static [u16],
    /// Its handler.
    pub handler: fn() -> MethodRouter<AppState>,
}

/// An open route that asks the node: 503 while it shuts down (or, for `/readyz`, is not ready).
const OPEN: &[u16] = &[200, 503];

/// Every endpoint the agent serves.
pub const ROUTES: &[Route] = &[
    Route {
        method: "GET",
        path: "/healthz",
        guard: Guard::Open,
        statuses: &[200],
        handler: || get(cluster::healthz),
    },
    Route {
        method: "GET",
        path: "/livez",
        guard: Guard::Open,
        statuses: &[200],
        handler: || get(health::livez),
    },
    Route {
        method: "GET",
        path: "/readyz",
        guard: Guard::Open,
        statuses: OPEN,
        handler: || get(health::readyz),
    },
    Route {
        method: "GET",
        path: "/metrics",
        guard: Guard::Open,
        statuses: OPEN,
        handler: || get(metrics::metrics),
    },
    Route {
        method: "POST",
        path: "/v1/records",
        guard: Guard::Writer,
        statuses: &[201, 400, 401, 403, 408, 413, 503, 507],
        handler: || post(records::write),
    },
    Route {
        method: "GET",
        path: "/v1/records",
        guard: Guard::Reader,
        statuses: &[200, 400, 401, 404, 409, 503],
        handler: || get(records::list),
    },
    Route {
        method: "GET",
        path: "/v1/records/{hash}",
        guard: Guard::Reader,
        statuses: &[200, 400, 401, 404, 409, 503],
        handler: || get(records::read),
    },
    Route {
        method: "GET",
        path: "/v1/chains",
        guard: Guard::Reader,
        statuses: &[200, 400, 401, 409, 503],
        handler: || get(chains::tips),
    },
    Route {
        method: "GET",
        path: "/v1/chains/{author}",
        guard: Guard::Reader,
        statuses: &[200, 400, 401, 409, 503],
        handler: || get(chains::page),
    },
    Route {
        method: "GET",
        path: "/v1/chains/{author}/{seq}",
        guard: Guard::Reader,
        statuses: &[200, 400, 401, 404, 409, 503],
        handler: || get(chains::block),
    },
    Route {
        method: "GET",
        path: "/v1/ledger/heads",
        guard: Guard::Reader,
        statuses: &[200, 400, 401, 409, 503],
        handler: || get(ledger::heads),
    },
    Route {
        method: "GET",
        path: "/v1/ledger/proof/inclusion",
        guard: Guard::Reader,
        statuses: &[200, 400, 401, 404, 409, 503],
        handler: || get(ledger::inclusion),
    },
    Route {
        method: "GET",
        path: "/v1/ledger/proof/consistency",
        guard: Guard::Reader,
        statuses: &[200, 400, 401, 404, 409, 503],
        handler: || get(ledger::consistency),
    },
    Route {
        method: "GET",
        path: "/v1/cluster/status",
        guard: Guard::Open,
        statuses: OPEN,
        handler: || get(cluster::status),
    },
    Route {
        method: "GET",
        path: "/v1/cluster/divide/progress",
        guard: Guard::Open,
        statuses: OPEN,
        handler: || get(cluster::divide_progress),
    },
    Route {
        method: "GET",
        path: "/v1/mesh/export",
        guard: Guard::Mesh,
        statuses: &[200, 400, 401, 403, 503],
        handler: || get(mesh::export),
    },
    Route {
        method: "POST",
        path: "/v1/mesh/ingest",
        guard: Guard::Mesh,
        statuses: &[200, 400, 401, 403, 408, 409, 413, 422, 503, 507],
        handler: || post(mesh::ingest),
    },
    Route {
        method: "GET",
        path: "/v1/mesh/probe",
        guard: Guard::Mesh,
        statuses: &[200, 400, 401, 403, 503, 507],
        handler: || get(mesh::probe),
    },
    Route {
        method: "POST",
        path: "/v1/cluster/members",
        guard: Guard::Mesh,
        statuses: &[200, 400, 401, 403, 408, 413, 502, 503],
        handler: || post(cluster::members),
    },
    Route {
        method: "POST",
        path: "/v1/mesh/sync/{peer_agent_id}",
        guard: Guard::Admin,
        statuses: &[200, 400, 401, 403, 404, 502, 503],
        handler: || post(mesh::sync),
    },
    Route {
        method: "POST",
        path: "/v1/cluster/consistency",
        guard: Guard::Admin,
        statuses: &[200, 400, 401, 403, 408, 413, 503],
        handler: || post(cluster::consistency),
    },
    Route {
        method: "POST",
        path: "/v1/cluster/divide",
        guard: Guard::Admin,
        statuses: &[200, 400, 401, 403, 408, 409, 413, 502, 503],
        handler: || post(cluster::divide),
    },
    Route {
        method: "DELETE",
        path: "/v1/cluster/members/{agent_id}",
        guard: Guard::Admin,
        statuses: &[200, 400, 401, 403, 404, 409, 503],
        handler: || delete(cluster::remove_member),
    },
    Route {
        method: "POST",
        path: "/v1/cluster/rotate-head-key",
        guard: Guard::Admin,
        statuses: &[200, 401, 403, 409, 503],
        handler: || post(cluster::rotate_head_key),
    },
];

#[cfg(test)]
mod tests;
