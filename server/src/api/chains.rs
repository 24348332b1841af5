//! Chain reads (issue 16): `GET /v1/chains` (every author's tip held here),
//! `GET /v1/chains/{author}?after_seq=&limit=` (a page of that author's blocks in seq order)
//! and `GET /v1/chains/{author}/{seq}`. Authorized like every read: a token the node lets read
//! (tips need only a token; a record needs a read of its collection). A page leaves out the
//! records of collections the token may not read and says how many it withheld. Every read
//! takes `min_position` and `wait_ms` (read-your-writes).

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use sapix_core::block::Block;
use sapix_core::{AgentId, Collection};
use serde::Serialize;

use super::read_query::{self, ReadQuery};
use super::records::{may_read, no_record, reader, RecordOut};
use super::{unexpected, AppState};
use crate::error::ApiError;

/// Blocks in a page when `limit` is not given; the most is [`MAX_PAGE`].
const DEFAULT_PAGE: u64 = 100;
/// The most blocks one page holds.
const MAX_PAGE: u64 = 1_000;

#[derive(Serialize)]
pub(crate) struct Tip {
    author: String,
    seq: u64,
    hash: String,
}

#[derive(Serialize)]
pub(crate) struct Tips {
    chains: Vec<Tip>,
}

#[derive(Serialize)]
pub(crate) struct ChainPage {
    author: String,
    /// The records, in seq order (those the token may read).
    records: Vec<RecordOut>,
    /// Records of this page left out: the token may not read their collections.
    withheld: u64,
    /// The `after_seq` of the next page; absent at the end of what is held.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after_seq: Option<u64>,
    /// The author's last seq held here (0: none).
    tip: u64,
}

fn author_of(text: &str) -> Result<AgentId, ApiError> {
    AgentId::new(text).map_err(|e| ApiError::bad_request(format!("author: {e}")))
}

fn storage(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "strand read failed");
    ApiError::unavailable("storage_failed", "could not read the strand")
}

/// The read's positions first (a reader the node would answer only), as every read.
pub(crate) async fn positions(
    s: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    own: &[&str],
) -> Result<(Option<sapix_core::auth::Credential>, ReadQuery), ApiError> {
    let credential = reader(headers)?;
    let q = ReadQuery::parse(query, own)?;
    may_read(s, credential, None).await?;
    read_query::reached(s, &q).await?;
    Ok((credential, q))
}

pub(crate) async fn tips(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Tips>, ApiError> {
    positions(&s, &headers, query.as_deref(), &[]).await?;
    let strand = s.strand.clone();
    let tips = s
        .blocking
        .run(move || strand.chain_tips())
        .await
        .map_err(unexpected)?;
    Ok(Json(Tips {
        chains: tips
            .into_iter()
            .map(|(a, seq, h)| Tip {
                author: a.to_string(),
                seq,
                hash: h.to_hex(),
            })
            .collect(),
    }))
}

fn number(name: &str, value: &str, max: u64) -> Result<u64, ApiError> {
    let n = sapix_core::wire::decimal(value)
        .filter(|n| *n <= max)
        .ok_or_else(|| ApiError::bad_request(format!("{name} must be a number from 0 to {max}")))?;
    Ok(n)
}

pub(crate) async fn page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(author): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<ChainPage>, ApiError> {
    let author = author_of(&author)?;
    let (credential, q) =
        positions(&s, &headers, query.as_deref(), &["after_seq", "limit"]).await?;
    let (mut after, mut limit) = (None, None);
    for (k, v) in &q.rest {
        let slot = if k == "after_seq" {
            &mut after
        } else {
            &mut limit
        };
        if slot.replace(v.clone()).is_some() {
            return Err(ApiError::bad_request(format!("{k} given twice")));
        }
    }
    let after = after.map_or(Ok(0), |v| number("after_seq", &v, u64::MAX))?;
    let limit = limit.map_or(Ok(DEFAULT_PAGE), |v| number("limit", &v, MAX_PAGE))?;
    if limit == 0 {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {MAX_PAGE}"
        )));
    }
    let strand = s.strand.clone();
    let who = author.clone();
    let (blocks, tip) = s
        .blocking
        .run(move || -> Result<(Vec<(u64, Block)>, u64), _> {
            let tip = (strand.chain_tips().into_iter())
                .find(|(a, _, _)| *a == who)
                .map_or(0, |(_, seq, _)| seq);
            let mut out = Vec::new();
            let mut seq = after;
            while (out.len() as u64) < limit && seq < tip {
                seq += 1;
                match strand.get_by_author_seq(&who, seq)? {
                    Some(found) => out.push(found),
                    None => break,
                }
            }
            Ok::<_, sapix_runtime::strand::StrandError>((out, tip))
        })
        .await
        .map_err(unexpected)?
        .map_err(storage)?;
    // One decision per collection in the page, made by the node.
    let mut allowed: BTreeMap<Collection, bool> = BTreeMap::new();
    for (_, b) in &blocks {
        let c = &b.body.collection;
        if !allowed.contains_key(c) {
            let ok = match may_read(&s, credential, Some(c.clone())).await {
                Ok(()) => true,
                Err(e) if e.status().as_u16() == 404 => false,
                Err(e) => return Err(e),
            };
            allowed.insert(c.clone(), ok);
        }
    }
    let last = blocks.last().map(|(_, b)| b.body.seq);
    let (readable, withheld): (Vec<_>, Vec<_>) = blocks
        .into_iter()
        .partition(|(_, b)| allowed[&b.body.collection]);
    Ok(Json(ChainPage {
        author: author.to_string(),
        records: readable.iter().map(|(o, b)| RecordOut::of(*o, b)).collect(),
        withheld: withheld.len() as u64,
        next_after_seq: last.filter(|l| *l < tip),
        tip,
    }))
}

pub(crate) async fn block(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((author, seq)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Json<RecordOut>, ApiError> {
    let author = author_of(&author)?;
    let seq = number("seq", &seq, u64::MAX)?;
    let (credential, _) = positions(&s, &headers, query.as_deref(), &[]).await?;
    let strand = s.strand.clone();
    let found = s
        .blocking
        .run(move || strand.get_by_author_seq(&author, seq))
        .await
        .map_err(unexpected)?
        .map_err(storage)?;
    let collection = found.as_ref().map(|(_, b)| b.body.collection.clone());
    may_read(&s, credential, collection).await?;
    let (offset, block) = found.ok_or_else(no_record)?;
    Ok(Json(RecordOut::of(offset, &block)))
}
