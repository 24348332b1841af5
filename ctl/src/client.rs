//! The agent's HTTP API as sapixctl calls it: every call bounded by a timeout, and every
//! failure turned into a sentence that says what happened and what to do.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// An error for the operator: what happened, and what to do about it.
#[derive(Debug)]
pub struct Failed(pub String);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client for one agent.
pub struct Client {
    http: reqwest::Client,
    base: String,
    root_key: Option<String>,
}

impl Client {
    /// A client for the agent at `base`, sending `root_key` where a route needs it; each call
    /// gives up after `timeout`.
    pub fn new(base: &str, root_key: Option<String>, timeout: Duration) -> Result<Self, Failed> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| Failed(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            root_key,
        })
    }

    /// A read (`GET path`) with `token`, or the root key if none is given, or no credential
    /// at all; a non-2xx answer is an error naming the agent's words.
    pub async fn read(&self, path: &str, token: Option<&str>) -> Result<Value, Failed> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.get(&url);
        if let Some(token) = token.or(self.root_key.as_deref()) {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.unreachable(&e))?;
        let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(json);
        }
        Err(self.refused(status, &json))
    }

    /// `GET path`, no credential; the status and the JSON body, whatever the status.
    pub async fn get(&self, path: &str) -> Result<(StatusCode, Value), Failed> {
        self.call(Method::GET, path, None, false).await
    }

    /// A call that needs the root key; a non-2xx answer is an error naming the agent's words.
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Failed> {
        let (status, json) = self.call(method, path, body, true).await?;
        if status.is_success() {
            return Ok(json);
        }
        Err(self.refused(status, &json))
    }

    /// A root-key `GET` whose body is kept as sent (an export page: its payloads are signed
    /// bytes, which a JSON round trip could change); a non-2xx answer is an error.
    pub async fn admin_bytes(&self, path: &str) -> Result<Vec<u8>, Failed> {
        let key = self.key()?;
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .get(&url)
            .bearer_auth(key)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.unreachable(&e))?;
        if !status.is_success() {
            let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            return Err(self.refused(status, &json));
        }
        Ok(bytes.to_vec())
    }

    fn key(&self) -> Result<&str, Failed> {
        self.root_key.as_deref().ok_or_else(|| {
            Failed(
                "this command needs the root key: pass --root-key-file <data dir>/root_key, \
                 --root-key, or set SAPIX_ROOT_KEY"
                    .into(),
            )
        })
    }

    fn refused(&self, status: StatusCode, json: &Value) -> Failed {
        let code = json["error"].as_str().unwrap_or("error");
        let message = json["message"].as_str().unwrap_or("");
        let hint = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                "; pass the root key with --root-key-file <data dir>/root_key or SAPIX_ROOT_KEY (a read also takes --token or SAPIX_TOKEN)"
            }
            _ => "",
        };
        Failed(format!(
            "{} answered {} {code}: {message}{hint}",
            self.base,
            status.as_u16()
        ))
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        needs_key: bool,
    ) -> Result<(StatusCode, Value), Failed> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url);
        if needs_key {
            req = req.bearer_auth(self.key()?);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.unreachable(&e))?;
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, json))
    }

    fn unreachable(&self, e: &reqwest::Error) -> Failed {
        let what = if e.is_timeout() {
            "no answer in time".to_string()
        } else if e.is_connect() {
            "connection failed".to_string()
        } else {
            e.to_string()
        };
        Failed(format!(
            "cannot reach the agent at {} ({what}): is it running? Point sapixctl at it with \
             --url or SAPIX_URL",
            self.base
        ))
    }
}
