//! Reading request bodies: a size bound checked against the declared length before anything
//! is read, the same bound while reading (chunked bodies), and a time bound on the whole read.

use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};

use crate::error::ApiError;

/// Largest `POST /v1/records` body: the payload bound plus room for the envelope.
pub(crate) const RECORD_BODY_LIMIT: usize = sapix_core::block::MAX_PAYLOAD_LEN + 64 * 1024;
/// Largest `POST /v1/mesh/ingest` body.
pub(crate) const INGEST_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// The whole body; 413 if it declares or reaches more than `limit` bytes (the rest is never
/// buffered), 408 if it has not all arrived within `within`, 400 if the client broke it off.
pub(crate) async fn read(body: Body, limit: usize, within: Duration) -> Result<Bytes, ApiError> {
    // A declared Content-Length is the body's exact size: refuse before waiting for any of it.
    if body.size_hint().lower() > limit as u64 {
        return Err(ApiError::too_large(limit));
    }
    match tokio::time::timeout(within, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) if is_over_limit(&e) => Err(ApiError::too_large(limit)),
        Ok(Err(_)) => Err(ApiError::bad_request(
            "the request body ended before it was complete",
        )),
        Err(_) => Err(ApiError::request_timeout(format!(
            "the request body did not arrive within {} ms (SAPIX_HTTP_BODY_TIMEOUT_MS)",
            within.as_millis()
        ))),
    }
}

fn is_over_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}
