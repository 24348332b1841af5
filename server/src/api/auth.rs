//! Bearer-token checks. A missing or malformed header is 401; a wrong token is 403. Admin and
//! mesh endpoints need the root key; record writes ask the node (see `records`).

use axum::http::{header, HeaderMap, StatusCode};

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

/// Ok if `headers` carry the root key (or, during a rotation, the next one).
pub(crate) fn require_root(headers: &HeaderMap, s: &super::AppState) -> Result<(), ApiError> {
    if s.is_root(bearer(headers)?) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this token may not use this endpoint",
        ))
    }
}

/// With `SAPIX_TLS_REQUIRE_CLIENT_CERT`, a mesh or admin request whose connection presented no
/// client certificate signed by the CA is refused before anything else is looked at.
pub(crate) async fn require_client_cert(
    axum::extract::State(s): axum::extract::State<super::AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if s.require_client_cert && req.extensions().get::<crate::serve::ClientCert>().is_none() {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "client_certificate_required",
            "this route needs a client certificate signed by SAPIX_TLS_CA (mutual TLS)",
        )
        .into_response();
    }
    next.run(req).await
}
