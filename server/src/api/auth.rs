//! Bearer-token checks. A missing or malformed header is 401; a wrong token is 403. Admin and
//! mesh endpoints need the root key; record writes ask the node (see `records`).

use axum::http::{header, HeaderMap, StatusCode};
use sapix_core::RootKey;

use crate::error::ApiError;

/// The bearer token in `headers`, or 401.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing Authorization: Bearer <token> header",
            )
        })?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Authorization header must be `Bearer <token>`",
            )
        })?;
    Ok(token)
}

/// Ok if `headers` carry the root key.
pub(crate) fn require_root(headers: &HeaderMap, root: &RootKey) -> Result<(), ApiError> {
    if root.matches(bearer(headers)?) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this token may not use this endpoint",
        ))
    }
}
