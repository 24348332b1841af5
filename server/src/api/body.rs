//! Reading request bodies with a hard size bound and a JSON 413 past it.

use axum::body::{Body, Bytes};

use crate::error::ApiError;

/// Largest `POST /v1/records` body: the payload bound plus room for the envelope.
pub(crate) const RECORD_BODY_LIMIT: usize = sapix_core::block::MAX_PAYLOAD_LEN + 64 * 1024;
/// Largest `POST /v1/mesh/ingest` body.
pub(crate) const INGEST_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// The whole body, or 413 once it passes `limit` bytes (the rest is never buffered).
pub(crate) async fn read(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::too_large(limit))
}
