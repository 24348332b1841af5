//! The query every read takes (issue 16): `min_position=<author>:<seq>` (repeatable) and
//! `wait_ms=<n>` (at most 10,000; 0 by default), for read-your-writes across regions. Parsed
//! here, strictly: an unknown parameter, a repeated `wait_ms` or a malformed position is a
//! 400 before anything is read. Whether the positions are held is the node's decision.

use std::time::Duration;

use sapix_core::node::{ChainPosition, MAX_POSITION_WAIT};
use sapix_core::Response;
use sapix_runtime::actor::Request;

use super::{node_gone, storage_failed, unexpected, AppState};
use crate::error::ApiError;

/// At most this many positions in one read.
pub(crate) const MAX_POSITIONS: usize = 64;

/// A read's wanted positions and its wait.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ReadQuery {
    pub(crate) positions: Vec<ChainPosition>,
    pub(crate) wait: Duration,
    /// The other parameters the route itself takes, in order.
    pub(crate) rest: Vec<(String, String)>,
}

impl ReadQuery {
    /// Parses `query`, keeping the parameters named in `own` for the route.
    pub(crate) fn parse(query: Option<&str>, own: &[&str]) -> Result<ReadQuery, ApiError> {
        let mut q = ReadQuery::default();
        let mut wait = None;
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match key.as_ref() {
                "min_position" => {
                    if q.positions.len() == MAX_POSITIONS {
                        return Err(ApiError::bad_request(format!(
                            "at most {MAX_POSITIONS} min_position parameters"
                        )));
                    }
                    let p = ChainPosition::parse(&value)
                        .map_err(|e| ApiError::bad_request(format!("min_position: {e}")))?;
                    q.positions.push(p);
                }
                "wait_ms" if wait.is_none() => wait = Some(wait_ms(&value)?),
                "wait_ms" => return Err(ApiError::bad_request("wait_ms given twice")),
                k if own.contains(&k) => q.rest.push((key.into_owned(), value.into_owned())),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unknown query parameter {:?}",
                        truncated(other)
                    )))
                }
            }
        }
        q.wait = wait.unwrap_or_default();
        Ok(q)
    }
}

fn wait_ms(value: &str) -> Result<Duration, ApiError> {
    let max = MAX_POSITION_WAIT.as_millis() as u64;
    let ms = (value.len() <= 6)
        .then(|| sapix_core::wire::decimal(value))
        .flatten()
        .filter(|ms| *ms <= max)
        .ok_or_else(|| ApiError::bad_request(format!("wait_ms must be 0 to {max}")))?;
    Ok(Duration::from_millis(ms))
}

fn truncated(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Waits, as the node decides, until it holds every position `q` names: `409
/// position_not_reached` with what it holds when the wait ends first.
pub(crate) async fn reached(s: &AppState, q: &ReadQuery) -> Result<(), ApiError> {
    if q.positions.is_empty() {
        return Ok(());
    }
    let answer = s
        .node
        .ask(Request::Positions {
            positions: q.positions.clone(),
            wait: q.wait,
        })
        .await
        .map_err(|_| node_gone())?;
    match answer {
        Response::PositionReached => Ok(()),
        Response::PositionNotReached { holds } => {
            let held: serde_json::Map<String, serde_json::Value> = holds
                .iter()
                .map(|p| (p.author.to_string(), p.seq.into()))
                .collect();
            let wanted: Vec<String> = q.positions.iter().map(|p| p.to_string()).collect();
            Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "position_not_reached",
                format!(
                    "this node does not hold {} yet (waited {} ms); retry, or read where the \
                     write was made",
                    wanted.join(", "),
                    q.wait.as_millis()
                ),
            )
            .with("holds", serde_json::Value::Object(held)))
        }
        Response::StorageFailed | Response::StorageFull => Err(storage_failed()),
        other => Err(unexpected(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_repeat_wait_is_bounded_and_anything_else_is_refused() {
        let q = ReadQuery::parse(
            Some("min_position=eu-west-1:3&min_position=us-east-1%3A7&wait_ms=2500"),
            &[],
        )
        .unwrap();
        let names: Vec<String> = q.positions.iter().map(|p| p.to_string()).collect();
        assert_eq!(names, ["eu-west-1:3", "us-east-1:7"]);
        assert_eq!(q.wait, Duration::from_millis(2_500));
        assert_eq!(ReadQuery::parse(None, &[]).unwrap(), ReadQuery::default());
        let limit = ReadQuery::parse(Some("limit=5"), &["limit"]).unwrap();
        assert_eq!(limit.rest, [("limit".to_string(), "5".to_string())]);
        for bad in [
            "wait_ms=10001",
            "wait_ms=-1",
            "wait_ms=",
            "wait_ms=1&wait_ms=2",
            "min_position=a",
            "min_position=a:x",
            "min_position=",
            "limit=5",
            "whatever",
        ] {
            let e = ReadQuery::parse(Some(bad), &[]).unwrap_err();
            assert_eq!(e.status().as_u16(), 400, "{bad}");
        }
        let many = vec!["min_position=a:1"; MAX_POSITIONS + 1].join("&");
        assert!(ReadQuery::parse(Some(&many), &[]).is_err());
    }
}
