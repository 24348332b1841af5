//! `GET /v1/mesh/export` and `POST /v1/mesh/ingest`: how nodes move blocks between them.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use sapix_core::block::Verified;
use sapix_core::chain::Position;
use sapix_core::ledger::wire::CosignatureJson;
use sapix_core::ledger::VerifiedHead;
use sapix_core::wire::mesh::{IngestRefusal, ProbeAnswer, DEFAULT_EXPORT_LIMIT, EXPORT_PAGE_BYTES};
use sapix_core::wire::{self, ExportPage, WireBlock, WireError};
use sapix_core::Response;
use sapix_runtime::actor::Request;
use serde::Deserialize;
use serde_json::json;

use super::{auth, body, node_gone, storage_failed, unexpected, AppState};
use crate::error::ApiError;

#[derive(Deserialize)]
pub(crate) struct ExportQuery {
    #[serde(default)]
    after: u64,
    limit: Option<usize>,
}

pub(crate) async fn export(
    State(s): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ExportPage>, ApiError> {
    auth::require_root(&headers, &s)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(DEFAULT_EXPORT_LIMIT);
    if limit == 0 || limit > wire::MAX_BATCH {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {}",
            wire::MAX_BATCH
        )));
    }
    let strand = s.strand.clone();
    let (blocks, tip) = s
        .blocking
        .run(move || {
            let tip = strand.tip();
            strand
                .export(q.after, limit, EXPORT_PAGE_BYTES)
                .map(|b| (b, tip))
        })
        .await
        .map_err(unexpected)?
        .map_err(|e| {
            tracing::error!(error = %e, "strand export failed");
            ApiError::unavailable("storage_failed", "could not read the strand")
        })?;
    let next = blocks.last().map_or(q.after, |(o, _)| *o);
    Ok(Json(ExportPage {
        blocks: blocks
            .iter()
            .map(|(o, b)| WireBlock::from_block(b, Some(*o)))
            .collect(),
        next,
        tip: tip.max(blocks.last().map_or(0, |(o, _)| *o)),
    }))
}

/// Batches larger than this are verified off the async threads.
const VERIFY_INLINE_MAX: usize = 8;

pub(crate) async fn ingest(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    auth::require_root(&headers, &s)?;
    let bytes = body::read(body, body::INGEST_BODY_LIMIT, s.body_timeout).await?;
    let wire::IngestBody { blocks, head } =
        wire::parse_ingest_body(&bytes).map_err(|e| match e {
            WireError::BatchTooLarge { .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                e.to_string(),
            ),
            e => ApiError::bad_request(e.to_string()),
        })?;
    let n = blocks.len();
    // Hash and signature before the node sees anything: the core only takes Verified blocks.
    let (keys, strand) = (s.keys.clone(), s.strand.clone());
    let verify = move || -> Result<Vec<Verified>, ApiError> {
        blocks
            .into_iter()
            .enumerate()
            .map(|(i, b)| {
                // A block identical to one held was checked when stored (pushes repeat
                // what pull pages brought, and the other way round).
                b.into_verified_unless_held(&keys, |h| strand.signature_of(h))
                    .map_err(|e| {
                        ApiError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "invalid_block",
                            format!("block {i}: {e}"),
                        )
                    })
            })
            .collect()
    };
    // The pusher's head: its signature checked here too (one a push at most, a few a second).
    let head = head
        .map(|h| {
            VerifiedHead::check(h).map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_head",
                    e.to_string(),
                )
            })
        })
        .transpose()?;
    let verified = if n <= VERIFY_INLINE_MAX {
        verify()?
    } else {
        s.blocking.run(verify).await.map_err(unexpected)??
    };
    let answer = s
        .node
        .ask(Request::Ingest {
            blocks: verified,
            head,
        })
        .await
        .map_err(|_| node_gone())?;
    match answer {
        Response::Ingested {
            accepted,
            duplicates,
            witnessed,
        } => {
            let mut answer = json!({ "accepted": accepted, "duplicates": duplicates });
            if let Some(w) = witnessed {
                answer["cosignature"] = json!(CosignatureJson::from(&w.cosignature));
            }
            Ok(Json(answer))
        }
        Response::IngestRefused {
            index,
            author,
            seq,
            position,
        } => Err(refusal(index, &author, seq, position)),
        Response::StorageFailed => Err(storage_failed()),
        Response::StorageFull => Err(ApiError::storage_full()),
        other => Err(unexpected(other)),
    }
}

fn refusal(index: usize, author: &sapix_core::AgentId, seq: u64, position: Position) -> ApiError {
    let r = IngestRefusal::new(index, author.clone(), seq, position);
    let err = ApiError::new(StatusCode::CONFLICT, r.error.as_str(), r.message)
        .with("index", r.index)
        .with("author", r.author.as_str())
        .with("seq", r.seq);
    match r.expected_seq {
        Some(e) => err.with("expected_seq", e),
        None => err,
    }
}

#[derive(Deserialize)]
pub(crate) struct ProbeQuery {
    author: String,
}

/// `GET /v1/mesh/probe?author=<id>`: who this node is and how much of `author`'s chain it
/// holds. Peers call it to detect partitions and to learn where their push queue stands.
pub(crate) async fn probe(
    State(s): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ProbeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ProbeAnswer>, ApiError> {
    auth::require_root(&headers, &s)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let author = sapix_core::AgentId::new(q.author)
        .map_err(|e| ApiError::bad_request(format!("author: {e}")))?;
    match s
        .node
        .ask(Request::Probe { author })
        .await
        .map_err(|_| node_gone())?
    {
        Response::ProbeAnswer {
            agent_id,
            holds,
            tip,
            digest,
            head_key,
        } => Ok(Json(ProbeAnswer::new(
            agent_id,
            (holds, tip),
            digest,
            head_key,
        ))),
        Response::StorageFull => Err(ApiError::storage_full()),
        Response::StorageFailed => Err(storage_failed()),
        other => Err(unexpected(other)),
    }
}

/// `POST /v1/mesh/sync/{peer_agent_id}`: pull from a peer's export from the persisted cursor
/// until caught up.
pub(crate) async fn sync(
    State(s): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(peer): axum::extract::Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    auth::require_root(&headers, &s)?;
    let peer = sapix_core::AgentId::new(peer)
        .map_err(|e| ApiError::bad_request(format!("peer_agent_id: {e}")))?;
    match s
        .node
        .ask(Request::Sync { peer })
        .await
        .map_err(|_| node_gone())?
    {
        Response::Synced {
            peer,
            totals,
            cursor,
        } => Ok(Json(json!({
            "peer_agent_id": peer,
            "pages": totals.pages,
            "blocks_fetched": totals.fetched,
            "blocks_ingested": totals.ingested,
            "cursor": cursor,
        }))),
        Response::SyncFailed { peer, reason } => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "sync_failed",
            format!("pull from {peer} failed: {reason}; the cursor is unchanged"),
        )),
        Response::UnknownPeer(peer) => Err(ApiError::not_found(format!("no peer `{peer}`"))),
        other => Err(unexpected(other)),
    }
}
