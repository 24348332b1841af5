//! The Codios client: performs the core's `AskCodios` and reports what happened.
//!
//! The wire protocol is documented in `docs/codios.md`; the request and answer types here are
//! the single definition of it, shared with the `codios-dev` server. Every call is bounded by a
//! timeout. Anything but a `2xx` whose body says exactly `"permit"` or `"deny"` is a failure —
//! never a permit; what a failure means for the write is the core's decision. The API key is
//! held in a redacting type and only ever leaves in the `Authorization` header.

use std::fmt;
use std::time::Duration;

use sapix_core::auth::{Action, AuthKey, Decision};
use sapix_core::node::Failure;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::http::{Call, Connector, HttpClient};

/// Default timeout of one Codios call (`SAPIX_CODIOS_TIMEOUT_MS`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(2000);

/// The path of the authorize call, under `SAPIX_CODIOS_URL`.
pub const AUTHORIZE_PATH: &str = "/v1/authorize";

/// The largest answer body read; a real answer is a few dozen bytes.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// `SAPIX_CODIOS_API_KEY`: sent as `Authorization: Bearer <key>`; its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct CodiosApiKey(String);

impl CodiosApiKey {
    /// Wraps the key.
    pub fn new(key: impl Into<String>) -> Self {
        CodiosApiKey(key.into())
    }

    /// The key, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this key, in time independent of where they differ.
    pub fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for CodiosApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodiosApiKey(<redacted>)")
    }
}

/// `POST /v1/authorize` request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    /// Lower-case hex BLAKE3 of the client's bearer token (the token itself never leaves).
    pub subject: String,
    /// `"write"` or `"read"`.
    pub action: String,
    /// The collection.
    pub resource: String,
}

impl AuthorizeRequest {
    /// The request for `key`.
    pub fn for_key(key: &AuthKey) -> Self {
        AuthorizeRequest {
            subject: hex::encode(key.subject.as_bytes()),
            action: action_name(key.action).to_string(),
            resource: key.resource.to_string(),
        }
    }
}

/// `POST /v1/authorize` answer body (status `200`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeAnswer {
    /// `"permit"` or `"deny"`; anything else is a garbled answer.
    pub decision: String,
    /// Optional explanation, for logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The wire name of an action.
pub fn action_name(action: Action) -> &'static str {
    match action {
        Action::Read => "read",
        Action::Write => "write",
    }
}

/// An HTTP client for one Codios endpoint.
#[derive(Clone)]
pub struct CodiosClient {
    http: HttpClient,
    /// The authorize URL, without user info (never sent, never logged).
    authorize: Url,
    api_key: Option<CodiosApiKey>,
}

impl fmt::Debug for CodiosClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodiosClient")
            .field("endpoint", &self.endpoint())
            .field("api_key", &self.api_key)
            .finish()
    }
}

/// Why a Codios client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CodiosClientError {
    /// The base URL does not parse or is not http(s).
    #[error("not an http:// or https:// URL")]
    BadUrl,
}

impl CodiosClient {
    /// A client over real TCP (TLS for `https://`) for the Codios at `base_url`
    /// (`SAPIX_CODIOS_URL`) that gives up on any call after `timeout`.
    pub fn new(
        base_url: &str,
        api_key: Option<CodiosApiKey>,
        timeout: Duration,
    ) -> Result<Self, CodiosClientError> {
        Self::with_connector(base_url, api_key, timeout, Connector::tcp())
    }

    /// The same client over `connector` (a simulation's sockets).
    pub fn with_connector(
        base_url: &str,
        api_key: Option<CodiosApiKey>,
        timeout: Duration,
        connector: Connector,
    ) -> Result<Self, CodiosClientError> {
        let base = Url::parse(base_url.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or(CodiosClientError::BadUrl)?;
        let mut authorize = Url::parse(&format!(
            "{}{AUTHORIZE_PATH}",
            base.as_str().trim_end_matches('/')
        ))
        .map_err(|_| CodiosClientError::BadUrl)?;
        // User info in the URL is not a credential here (the API key is): drop it so it can
        // neither leak into a log nor reach the wire.
        let _ = authorize.set_username("");
        let _ = authorize.set_password(None);
        Ok(CodiosClient {
            http: HttpClient::new(connector, timeout, timeout),
            authorize,
            api_key,
        })
    }

    /// The authorize URL without any user info, for logs.
    pub fn endpoint(&self) -> String {
        self.authorize.to_string()
    }

    /// Asks Codios about `key`. `Err` is a failure the core must not treat as a permit.
    pub async fn authorize(&self, key: &AuthKey) -> Result<Decision, Failure> {
        let mut call = Call::post_json(
            self.authorize.as_str(),
            &AuthorizeRequest::for_key(key),
            MAX_ANSWER_BYTES,
        );
        if let Some(k) = &self.api_key {
            call = call.bearer(k.expose());
        }
        let answer = self.http.send(call).await?;
        if !answer.status.is_success() {
            return Err(Failure::Status {
                call: "Codios",
                code: answer.status.as_u16(),
                message: String::new(),
            });
        }
        parse_answer(&answer.body)
    }
}

/// Reads a `2xx` body: exactly `permit` or `deny`, or a failure.
pub fn parse_answer(bytes: &[u8]) -> Result<Decision, Failure> {
    if bytes.len() > MAX_ANSWER_BYTES {
        return Err(Failure::TooLarge {
            limit: MAX_ANSWER_BYTES,
        });
    }
    let garbled = |why: String| Failure::Garbled {
        what: "Codios answer",
        why,
    };
    // serde reads a struct from a JSON array too (its fields in order), so `["permit"]` would
    // pass as a permit: only an object is an answer.
    let first = bytes.iter().find(|b| !b" \t\n\r".contains(b));
    if first != Some(&b'{') {
        return Err(garbled("not a JSON object".into()));
    }
    let answer: AuthorizeAnswer =
        serde_json::from_slice(bytes).map_err(|e| garbled(e.to_string()))?;
    match answer.decision.as_str() {
        "permit" => Ok(Decision::Permit),
        "deny" => Ok(Decision::Deny),
        other => Err(garbled(format!(
            "unknown decision {:?}",
            other.chars().take(40).collect::<String>()
        ))),
    }
}

#[cfg(test)]
mod tests;
