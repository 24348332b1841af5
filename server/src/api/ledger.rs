//! The tamper-evident ledger (issue 17): `GET /v1/ledger/heads` (the latest signed head of
//! every author held here), `GET /v1/ledger/proof/inclusion?hash=<h>[&head_seq=<n>]` (the
//! block's audit path to its author's tree at n, by default the latest head) and
//! `GET /v1/ledger/proof/consistency?author=<a>&from=<m>[&to=<n>]`. Authorized like every
//! read; an inclusion proof is a read of the block's collection (404 when it may not, as an
//! absent hash). The node builds every proof; this module only parses and shapes.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use sapix_core::ledger::wire::{ConsistencyJson, HeadJson, HeadsJson, InclusionJson};
use sapix_core::node::{LedgerAnswer, LedgerQuery, LedgerRefusal};
use sapix_core::{AgentId, Hash, Response};
use sapix_runtime::actor::Request;

use super::chains::positions;
use super::read_query::ReadQuery;
use super::records::{find, may_read, no_record};
use super::{node_gone, unexpected, AppState};
use crate::error::ApiError;

/// The route's own parameters, each at most once.
fn params(q: &ReadQuery) -> Result<BTreeMap<&str, &str>, ApiError> {
    let mut params = BTreeMap::new();
    for (k, v) in &q.rest {
        if params.insert(k.as_str(), v.as_str()).is_some() {
            return Err(ApiError::bad_request(format!("{k} given twice")));
        }
    }
    Ok(params)
}

fn number(params: &BTreeMap<&str, &str>, name: &str) -> Result<Option<u64>, ApiError> {
    params
        .get(name)
        .map(|v| {
            sapix_core::wire::decimal(v)
                .ok_or_else(|| ApiError::bad_request(format!("{name} must be a whole number")))
        })
        .transpose()
}

async fn ask(s: &AppState, query: LedgerQuery) -> Result<LedgerAnswer, ApiError> {
    let answer = s
        .node
        .ask(Request::Ledger(query))
        .await
        .map_err(|_| node_gone())?;
    match answer {
        Response::Ledger(a) => Ok(*a),
        Response::LedgerRefused(r) => Err(refused(r)),
        other => Err(unexpected(other)),
    }
}

fn refused(r: LedgerRefusal) -> ApiError {
    let message = r.to_string();
    match r {
        LedgerRefusal::NoHead(author) => {
            ApiError::new(axum::http::StatusCode::NOT_FOUND, "no_head", message)
                .with("author", author.to_string())
        }
        LedgerRefusal::Equivocated { author, seq } => {
            ApiError::new(axum::http::StatusCode::CONFLICT, "equivocation", message)
                .with("author", author.to_string())
                .with("seq", seq)
        }
        LedgerRefusal::Diverged { author, seq } => {
            ApiError::new(axum::http::StatusCode::CONFLICT, "chain_diverged", message)
                .with("author", author.to_string())
                .with("seq", seq)
        }
        LedgerRefusal::OutOfRange { author, vouched } => {
            ApiError::new(axum::http::StatusCode::NOT_FOUND, "beyond_head", message)
                .with("author", author.to_string())
                .with("vouched", vouched)
        }
    }
}

pub(crate) async fn heads(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<HeadsJson>, ApiError> {
    positions(&s, &headers, query.as_deref(), &[]).await?;
    match ask(&s, LedgerQuery::Heads).await? {
        LedgerAnswer::Heads(heads) => Ok(Json(HeadsJson {
            heads: heads.iter().map(HeadJson::from).collect(),
        })),
        other => Err(unexpected(other)),
    }
}

pub(crate) async fn inclusion(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<InclusionJson>, ApiError> {
    let (credential, q) = positions(&s, &headers, query.as_deref(), &["hash", "head_seq"]).await?;
    let params = params(&q)?;
    let hash = params
        .get("hash")
        .filter(|h| h.len() == 64)
        .and_then(|h| Hash::from_hex(h))
        .ok_or_else(|| ApiError::bad_request("hash must be 64 hex characters"))?;
    let size = number(&params, "head_seq")?;
    let found = find(&s, hash).await?;
    let collection = found.as_ref().map(|(_, b)| b.body.collection.clone());
    may_read(&s, credential, collection).await?;
    let (_, block) = found.ok_or_else(no_record)?;
    let query = LedgerQuery::Inclusion {
        author: block.author().clone(),
        seq: block.seq(),
        size,
    };
    match ask(&s, query).await? {
        LedgerAnswer::Inclusion(p) => Ok(Json(p.to_json())),
        other => Err(unexpected(other)),
    }
}

pub(crate) async fn consistency(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<ConsistencyJson>, ApiError> {
    let own = ["author", "from", "to"];
    let (_, q) = positions(&s, &headers, query.as_deref(), &own).await?;
    let params = params(&q)?;
    let author = params
        .get("author")
        .ok_or_else(|| ApiError::bad_request("author is required"))?;
    let author =
        AgentId::new(*author).map_err(|e| ApiError::bad_request(format!("author: {e}")))?;
    let from = number(&params, "from")?.ok_or_else(|| ApiError::bad_request("from is required"))?;
    let to = number(&params, "to")?;
    if to.is_some_and(|to| from > to) {
        return Err(ApiError::bad_request("from must not be past to"));
    }
    match ask(&s, LedgerQuery::Consistency { author, from, to }).await? {
        LedgerAnswer::Consistency(p) => Ok(Json(p.to_json())),
        other => Err(unexpected(other)),
    }
}
