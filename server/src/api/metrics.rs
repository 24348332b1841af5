//! `GET /metrics`: Prometheus' text format (OpenMetrics). The node's live counters and
//! histograms, plus what the status and the strand say now (see `docs/metrics.md`).

use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use sapix_core::Response;
use sapix_runtime::actor::Request;
use sapix_runtime::metrics::{self, Strand};

use super::{node_gone, unexpected, AppState};
use crate::error::ApiError;

/// How long a scrape waits for the node actor's status.
const NODE_ANSWERS_WITHIN: Duration = Duration::from_secs(2);

/// `GET /metrics`.
pub(crate) async fn metrics(State(s): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let answer = tokio::time::timeout(NODE_ANSWERS_WITHIN, s.node.ask(Request::Status))
        .await
        .map_err(|_| ApiError::unavailable("node_busy", "the node did not answer within 2 s"))?
        .map_err(|_| node_gone())?;
    let Response::Status(status) = answer else {
        return Err(unexpected(answer));
    };
    let strand = Strand {
        tip: s.strand.tip(),
        stats: s.strand.stats(),
        footprint: s.strand.footprint(),
    };
    let text = s.metrics.render(&status, &strand);
    Ok(([(CONTENT_TYPE, metrics::CONTENT_TYPE)], text))
}
