//! `POST /v1/records` and `GET /v1/records/{hash}`.
//!
//! A write is one request to the node, carrying the credential (the bearer token's hash): the
//! node authorizes it (root key, local mode, or the Codios cache; DESIGN §5) and writes it.
//! A read is found first, then authorized by the node for the record's collection.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use sapix_core::auth::Credential;
use sapix_core::block::{check_payload, DecodeError, MAX_PAYLOAD_LEN};
use sapix_core::{Collection, Hash, Response};
use sapix_runtime::actor::Request;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::read_query::{self, ReadQuery};
use super::{auth, body, node_gone, storage_failed, unexpected, AppState};
use crate::error::ApiError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordIn {
    collection: String,
    /// Kept as the exact text sent, so numbers and key order survive untouched.
    data: Box<RawValue>,
}

#[derive(Serialize)]
pub(crate) struct Receipt {
    hash: String,
    author: String,
    seq: u64,
    offset: u64,
}

pub(crate) async fn write(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Receipt>), ApiError> {
    let credential = Credential::of_token(auth::bearer(&headers)?);
    let bytes = body::read(body, body::RECORD_BODY_LIMIT, s.body_timeout).await?;
    let rec: RecordIn = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!("body must be {{\"collection\", \"data\"}}: {e}"))
    })?;
    let collection = Collection::new(rec.collection)
        .map_err(|e| ApiError::bad_request(format!("collection: {e}")))?;
    let payload = rec.data.get().as_bytes().to_vec();
    match check_payload(&payload) {
        Ok(()) => {}
        Err(DecodeError::PayloadTooLarge { .. }) => {
            return Err(ApiError::too_large(MAX_PAYLOAD_LEN))
        }
        Err(e) => return Err(ApiError::bad_request(format!("data: {e}"))),
    }
    let answer = s
        .node
        .ask(Request::Write {
            credential,
            collection,
            payload,
        })
        .await
        .map_err(|_| node_gone())?;
    match answer {
        Response::Written(r) => Ok((StatusCode::CREATED, Json(receipt(&r)))),
        Response::Partitioned { unreachable } => {
            let names: Vec<&str> = unreachable.iter().map(|p| p.as_str()).collect();
            Err(ApiError::unavailable(
                "partitioned",
                format!(
                    "consistency is CP and peers are unreachable ({}); nothing was written",
                    names.join(", ")
                ),
            )
            .with("unreachable", names))
        }
        Response::Indeterminate { receipt: r, peer } => Err(ApiError::unavailable(
            "replication_pending",
            format!(
                "the record is committed locally but peer {peer} failed before holding it; \
                 it will replicate when {peer} is back"
            ),
        )
        .with("committed_locally", true)
        .with("hash", r.hash.to_hex())
        .with("seq", r.seq)
        .with("offset", r.offset)),
        Response::Denied { reason } => {
            Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", reason))
        }
        Response::AuthUnavailable { reason } => {
            Err(ApiError::unavailable("auth_unavailable", reason))
        }
        Response::StorageFailed => Err(storage_failed()),
        Response::OwnChainUnsafe(why) => {
            Err(ApiError::unavailable("own_chain_unsafe", why.to_string()))
        }
        Response::StorageFull => Err(ApiError::storage_full()),
        other => Err(unexpected(other)),
    }
}

fn receipt(r: &sapix_core::node::Receipt) -> Receipt {
    Receipt {
        hash: r.hash.to_hex(),
        author: r.author.to_string(),
        seq: r.seq,
        offset: r.offset,
    }
}

#[derive(Serialize)]
pub(crate) struct RecordOut {
    hash: String,
    author: String,
    seq: u64,
    ts_ms: u64,
    collection: String,
    data: Box<RawValue>,
    sig: String,
    offset: u64,
}

/// A read sends its token like a write (a malformed header is refused); a read sent with none
/// is decided too, as open reads need no token.
pub(crate) fn reader(headers: &HeaderMap) -> Result<Option<Credential>, ApiError> {
    if headers.contains_key(axum::http::header::AUTHORIZATION) {
        Ok(Some(Credential::of_token(auth::bearer(headers)?)))
    } else {
        Ok(None)
    }
}

/// Asks the node whether `credential` may read records of `collection` (`None`: nothing was
/// found). A denied read answers 404 like an absent hash, so hashes cannot be probed.
pub(crate) async fn may_read(
    s: &AppState,
    credential: Option<Credential>,
    collection: Option<Collection>,
) -> Result<(), ApiError> {
    let answer = s
        .node
        .ask(Request::Read {
            credential,
            collection,
        })
        .await
        .map_err(|_| node_gone())?;
    match answer {
        Response::ReadAllowed => Ok(()),
        Response::Unauthenticated { reason } => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            reason,
        )),
        Response::Denied { .. } => Err(no_record()),
        Response::AuthUnavailable { reason } => {
            Err(ApiError::unavailable("auth_unavailable", reason))
        }
        other => Err(unexpected(other)),
    }
}

pub(crate) fn no_record() -> ApiError {
    ApiError::not_found("no such record")
}

pub(crate) async fn read(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(hash): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<RecordOut>, ApiError> {
    let credential = reader(&headers)?;
    let hash = Hash::from_hex(&hash)
        .filter(|_| hash.len() == 64)
        .ok_or_else(|| ApiError::bad_request("hash must be 64 hex characters"))?;
    let q = ReadQuery::parse(query.as_deref(), &[])?;
    if !q.positions.is_empty() {
        // Only a reader the node would answer may make it wait.
        may_read(&s, credential, None).await?;
        read_query::reached(&s, &q).await?;
    }
    let found = find(&s, hash).await?;
    let collection = found.as_ref().map(|(_, b)| b.body.collection.clone());
    may_read(&s, credential, collection).await?;
    let (offset, block) = found.ok_or_else(no_record)?;
    Ok(Json(RecordOut::of(offset, &block)))
}

/// The stored block with this hash and its offset, if held (read off the actor's thread).
pub(crate) async fn find(
    s: &AppState,
    hash: Hash,
) -> Result<Option<(u64, sapix_core::block::Block)>, ApiError> {
    let strand = s.strand.clone();
    s.blocking
        .run(move || strand.get_by_hash(&hash))
        .await
        .map_err(unexpected)?
        .map_err(|e| {
            tracing::error!(error = %e, "strand read failed");
            ApiError::unavailable("storage_failed", "could not read the record")
        })
}

impl RecordOut {
    /// The record of `block`, stored here at `offset`.
    pub(crate) fn of(offset: u64, block: &sapix_core::block::Block) -> RecordOut {
        let w = sapix_core::wire::WireBlock::from_block(block, None);
        RecordOut {
            hash: w.hash,
            author: w.author.to_string(),
            seq: w.seq,
            ts_ms: w.ts_ms,
            collection: w.collection.to_string(),
            data: w.data,
            sig: w.sig,
            offset,
        }
    }
}

/// Records in a collection page when `limit` is not given; the most is [`MAX_LIST`].
const DEFAULT_LIST: usize = 100;
/// The most records one collection page holds.
const MAX_LIST: usize = 1_000;

#[derive(Serialize)]
pub(crate) struct CollectionPageOut {
    collection: String,
    /// The records, oldest first (commit order here).
    records: Vec<RecordOut>,
    /// The cursor to pass as `after` for the next page (also once `more` is false, to see
    /// what arrives later).
    next: String,
    /// Whether more records of the collection are held here now.
    more: bool,
}

/// `GET /v1/records?collection=<name>&after=<cursor>&limit=<n>`: one collection, a page at a
/// time, oldest first. The cursor names per-author positions, so it can be used on any node.
pub(crate) async fn list(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<CollectionPageOut>, ApiError> {
    let credential = reader(&headers)?;
    let q = ReadQuery::parse(query.as_deref(), &["collection", "after", "limit"])?;
    let mut params: std::collections::BTreeMap<&str, &str> = Default::default();
    for (k, v) in &q.rest {
        if params.insert(k.as_str(), v.as_str()).is_some() {
            return Err(ApiError::bad_request(format!("{k} given twice")));
        }
    }
    let collection = params
        .get("collection")
        .ok_or_else(|| ApiError::bad_request("collection is required"))?;
    let collection = Collection::new(*collection)
        .map_err(|e| ApiError::bad_request(format!("collection: {e}")))?;
    let after = sapix_core::wire::cursor::decode(params.get("after").copied().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let limit = match params.get("limit") {
        None => DEFAULT_LIST,
        Some(v) => sapix_core::wire::decimal(v)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=MAX_LIST).contains(n))
            .ok_or_else(|| ApiError::bad_request(format!("limit must be 1 to {MAX_LIST}")))?,
    };
    if !q.positions.is_empty() {
        may_read(&s, credential, None).await?;
        read_query::reached(&s, &q).await?;
    }
    may_read(&s, credential, Some(collection.clone())).await?;
    let strand = s.strand.clone();
    let wanted = collection.clone();
    let (blocks, page) = s
        .blocking
        .run(move || strand.collection_page(&wanted, &after, limit))
        .await
        .map_err(unexpected)?
        .map_err(|e| {
            tracing::error!(error = %e, "strand read failed");
            ApiError::unavailable("storage_failed", "could not read the strand")
        })?;
    Ok(Json(CollectionPageOut {
        collection: collection.to_string(),
        records: blocks.iter().map(|(o, b)| RecordOut::of(*o, b)).collect(),
        next: sapix_core::wire::cursor::encode(&page.next),
        more: page.more,
    }))
}
