//! Cluster endpoints: status, the consistency switch, bootstrap ("divide"), membership, and
//! `GET /healthz`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use sapix_core::repl::peer::PeerInfo;
use sapix_core::wire::mesh::MembersBody;
use sapix_core::{AgentId, ClusterStatus, Consistency, Response, Role};
use sapix_runtime::actor::Request;
use serde::Deserialize;
use serde_json::json;

use super::{auth, body, node_gone, not_persisted, unexpected, AppState};
use crate::error::ApiError;

/// Admin bodies are small.
const ADMIN_BODY_LIMIT: usize = 64 * 1024;

pub(crate) async fn status(State(s): State<AppState>) -> Result<Json<ClusterStatus>, ApiError> {
    match s.node.ask(Request::Status).await.map_err(|_| node_gone())? {
        Response::Status(status) => Ok(Json(status)),
        other => Err(unexpected(other)),
    }
}

pub(crate) async fn healthz(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "agent_id": s.agent_id, "tip": s.strand.tip() }))
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], shape: &str) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("body must be {shape}: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyIn {
    mode: Consistency,
}

/// `POST /v1/cluster/consistency {"mode":"Ap"|"Cp"}` → `{"consistency":"ap","previous":"cp"}`.
pub(crate) async fn consistency(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    auth::require_root(&headers, &s)?;
    let bytes = body::read(body, ADMIN_BODY_LIMIT, s.body_timeout).await?;
    let input: ConsistencyIn = parse(&bytes, r#"{"mode": "Cp" | "Ap"}"#)?;
    match s
        .node
        .ask(Request::Consistency { mode: input.mode })
        .await
        .map_err(|_| node_gone())?
    {
        Response::ConsistencySet {
            consistency,
            previous,
        } => Ok(Json(
            json!({ "consistency": consistency, "previous": previous }),
        )),
        Response::NotPersisted { reason } => Err(not_persisted(reason)),
        other => Err(unexpected(other)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DivideIn {
    new_agent_id: String,
    endpoint: String,
    #[serde(default = "replica")]
    role: Role,
}

fn replica() -> Role {
    Role::Replica
}

/// `POST /v1/cluster/divide`: copy every block to a new node, then make it a member.
/// `GET /v1/cluster/divide/progress`: where the divide running on this node stands (open, like
/// status: it names ids and counts, nothing secret).
pub(crate) async fn divide_progress(
    State(s): State<AppState>,
) -> Result<Json<sapix_core::status::DivideProgress>, ApiError> {
    match s
        .node
        .ask(Request::DivideProgress)
        .await
        .map_err(|_| node_gone())?
    {
        Response::DivideProgress(p) => Ok(Json(p)),
        other => Err(unexpected(other)),
    }
}

pub(crate) async fn divide(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    auth::require_root(&headers, &s)?;
    let bytes = body::read(body, ADMIN_BODY_LIMIT, s.body_timeout).await?;
    let input: DivideIn = parse(
        &bytes,
        r#"{"new_agent_id": "<id>", "endpoint": "http://host:port", "role": "Replica"}"#,
    )?;
    let agent_id = AgentId::new(input.new_agent_id)
        .map_err(|e| ApiError::bad_request(format!("new_agent_id: {e}")))?;
    let endpoint = sapix_core::endpoint::endpoint(&input.endpoint)
        .map_err(|e| ApiError::bad_request(format!("endpoint {e}")))?;
    let new = PeerInfo::new(agent_id, endpoint, input.role, s.clock_wall_ms());
    let via = called_at(s.scheme, &headers);
    match s
        .node
        .ask(Request::Divide { new, via })
        .await
        .map_err(|_| node_gone())?
    {
        Response::Divided {
            replica_agent_id,
            blocks_pushed,
            endpoint,
            members_informed,
            members_pending,
        } => Ok(Json(json!({
            "replica_agent_id": replica_agent_id,
            "blocks_pushed": blocks_pushed,
            "endpoint": endpoint,
            "members_informed": members_informed,
            "members_pending": members_pending,
        }))),
        Response::DivideRefused { reason } => Err(ApiError::new(
            StatusCode::CONFLICT,
            "divide_refused",
            reason,
        )),
        Response::DivideFailed { reason } => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "divide_failed",
            reason,
        )),
        Response::NotPersisted { reason } => Err(not_persisted(reason)),
        other => Err(unexpected(other)),
    }
}

/// The URL a call was addressed to, from this listener's scheme and the call's `Host`, if that
/// is a plain `host[:port]`; a node with no endpoint of its own may learn it from it.
fn called_at(scheme: &str, headers: &HeaderMap) -> Option<String> {
    let host = headers.get(axum::http::header::HOST)?.to_str().ok()?;
    let plain = |c: char| c.is_ascii_alphanumeric() || ".-:[]_".contains(c);
    (!host.is_empty() && host.len() <= 255 && host.chars().all(plain))
        .then(|| format!("{scheme}://{host}"))
}

/// `POST /v1/cluster/members`: another member announces the membership (mesh-internal).
pub(crate) async fn members(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    auth::require_root(&headers, &s)?;
    let bytes = body::read(body, ADMIN_BODY_LIMIT, s.body_timeout).await?;
    let input: MembersBody = parse(&bytes, r#"{"members": [...]}"#)?;
    if input.members.len() > 1000 {
        return Err(ApiError::bad_request("at most 1000 members"));
    }
    // A member no client could call would only fail later, as a peer that never answers.
    for m in input.members.iter().filter(|m| !m.removed) {
        sapix_core::endpoint::endpoint(&m.endpoint)
            .map_err(|e| ApiError::bad_request(format!("member {}: endpoint {e}", m.agent_id)))?;
    }
    match s
        .node
        .ask(Request::Members {
            from: input.from,
            members: input.members,
            your_role: input.your_role,
            cursors: input.cursors,
        })
        .await
        .map_err(|_| node_gone())?
    {
        Response::MembersUpdated { peers, members } => {
            Ok(Json(json!({ "peers": peers, "members": members })))
        }
        Response::JoinRefused { reason } => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "join_refused",
            reason,
        )),
        Response::NotPersisted { reason } => Err(not_persisted(reason)),
        other => Err(unexpected(other)),
    }
}

/// `DELETE /v1/cluster/members/{agent_id}`: remove a lost member for good (its blocks stay;
/// CP stops waiting for it; the id can never join again).
pub(crate) async fn remove_member(
    State(s): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(agent_id): axum::extract::Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    auth::require_root(&headers, &s)?;
    let agent_id =
        AgentId::new(agent_id).map_err(|e| ApiError::bad_request(format!("agent_id: {e}")))?;
    match s
        .node
        .ask(Request::Remove { agent_id })
        .await
        .map_err(|_| node_gone())?
    {
        Response::MemberRemoved { agent_id } => Ok(Json(json!({
            "removed": agent_id,
            "note": "its blocks stay; a node replacing it must use a new SAPIX_AGENT_ID",
        }))),
        Response::UnknownPeer(id) => Err(ApiError::not_found(format!("no member `{id}`"))),
        Response::RemoveRefused { reason } => Err(ApiError::new(
            StatusCode::CONFLICT,
            "remove_refused",
            reason,
        )),
        Response::NotPersisted { reason } => Err(not_persisted(reason)),
        other => Err(unexpected(other)),
    }
}

/// `POST /v1/cluster/rotate-head-key`: a new head key from the OS's randomness, written to
/// `head_key.next`, signed in by the current key and enrolled in this node's membership entry
/// (persisted, then spread to every member); then it replaces `head_key`. See
/// [`crate::head_key`] for what a crash at any step leaves.
pub(crate) async fn rotate_head_key(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    auth::require_root(&headers, &s)?;
    let mut unsettled = s.head_key.unsettled.lock().await;
    if *unsettled {
        return Err(ApiError::unavailable(
            "rotation_unsettled",
            "the last rotation's membership write failed; restart the node to settle it \
             before rotating again",
        ));
    }
    let next = s.head_key.files.draw();
    let files = s.head_key.files.clone();
    let staged = next.clone();
    s.blocking
        .run(move || files.stage(&staged))
        .await
        .map_err(|e| key_file_failed(&e.to_string()))?
        .map_err(|e| key_file_failed(&e.to_string()))?;
    let answer = s
        .node
        .ask(Request::RotateHeadKey { next })
        .await
        .map_err(|_| node_gone())?;
    match answer {
        Response::HeadKeyRotated {
            key,
            replaced,
            enrolled,
        } => {
            let files = s.head_key.files.clone();
            let committed = s.blocking.run(move || files.commit()).await;
            if let Err(e) = committed
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
            {
                // Enrolled and persisted: a restart takes head_key.next (crate::head_key).
                tracing::warn!(error = %e, "head key: renaming head_key.next failed; a restart completes it");
                *unsettled = true;
            }
            Ok(Json(json!({
                "agent_id": s.agent_id,
                "head_key": key.to_hex(),
                "replaced": replaced.to_hex(),
                "enrolled": enrolled,
            })))
        }
        Response::RotateRefused { reason } => Err(ApiError::new(
            StatusCode::CONFLICT,
            "rotate_refused",
            reason,
        )),
        Response::NotPersisted { reason } => {
            *unsettled = true;
            Err(not_persisted(reason))
        }
        other => Err(unexpected(other)),
    }
}

fn key_file_failed(why: &str) -> ApiError {
    tracing::error!(error = %why, "head key: writing head_key.next failed; nothing rotated");
    ApiError::unavailable(
        "storage_failed",
        format!("writing the new head key failed ({why}); nothing was rotated"),
    )
}
