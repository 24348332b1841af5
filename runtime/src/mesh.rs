//! The mesh client: how this node talks to peers over HTTP.
//!
//! Every call has a timeout and carries the root key. Answers are parsed and blocks verified
//! here, with the core's pure functions, so the core only ever sees typed facts. Whether to
//! retry, and when, is never decided here.

use std::time::Duration;

use reqwest::StatusCode;
use sapix_core::block::Verified;
use sapix_core::repl::peer::PeerInfo;
use sapix_core::wire::{ExportPage, ParsedPage, WireBlock, MAX_BATCH};
use sapix_core::{AgentId, Block, KeySchedule, Role, RootKey};
use serde::{Deserialize, Serialize};

/// Default timeout of one mesh call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A push's outcome when the peer answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The peer holds the blocks durably.
    Acked,
    /// The peer lacks the author's blocks from `expected` on.
    Gap {
        /// The first seq it lacks.
        expected: u64,
    },
}

/// The probe endpoint's answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProbeBody {
    /// Who answered.
    pub agent_id: AgentId,
    /// The last seq of the asked author's chain held there.
    pub holds: u64,
}

/// The membership announcement body (`POST /v1/cluster/members`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersBody {
    /// Members to know.
    pub members: Vec<PeerInfo>,
    /// The receiver's role, if assigned.
    #[serde(default)]
    pub your_role: Option<Role>,
    /// Cursor hints, per peer.
    #[serde(default)]
    pub cursors: Vec<(AgentId, u64)>,
}

/// Verifies every block of a fetched page (CPU-heavy: call off the async threads).
pub fn verify_page(page: ParsedPage, keys: &KeySchedule) -> Result<Vec<Verified>, String> {
    page.blocks
        .into_iter()
        .map(|(offset, b)| {
            b.into_verified(keys)
                .map_err(|e| format!("export block at offset {offset}: {e}"))
        })
        .collect()
}

/// An HTTP client for peers.
#[derive(Clone, Debug)]
pub struct MeshClient {
    http: reqwest::Client,
    root_key: RootKey,
}

impl MeshClient {
    /// A client that authenticates with `root_key` and gives up on any call after `timeout`.
    pub fn new(root_key: RootKey, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(2)))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(MeshClient { http, root_key })
    }

    fn auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        rb.bearer_auth(self.root_key.expose())
    }

    /// Sends blocks to `endpoint`'s ingest.
    pub async fn ingest(&self, endpoint: &str, blocks: &[Block]) -> Result<PushOutcome, String> {
        let body = IngestOut {
            blocks: blocks
                .iter()
                .map(|b| WireBlock::from_block(b, None))
                .collect(),
        };
        let resp = self
            .auth(self.http.post(format!("{endpoint}/v1/mesh/ingest")))
            .json(&body)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(PushOutcome::Acked);
        }
        let text = resp.text().await.unwrap_or_default();
        if status == StatusCode::CONFLICT {
            if let Ok(err) = serde_json::from_str::<ErrorBody>(&text) {
                if let (Some("out_of_order"), Some(expected)) =
                    (err.error.as_deref(), err.expected_seq)
                {
                    return Ok(PushOutcome::Gap { expected });
                }
            }
        }
        Err(format!("ingest answered {status}: {}", truncate(&text)))
    }

    /// Sends an authenticated request and returns its body if the answer is a success;
    /// anything else is an error naming `what` and the start of the body.
    async fn success_body(
        &self,
        rb: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<Vec<u8>, String> {
        let resp = self.auth(rb).send().await.map_err(|e| describe(&e))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| describe(&e))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Err(format!("{what} answered {status}: {}", truncate(&text)));
        }
        Ok(body.to_vec())
    }

    /// Asks `endpoint` who it is and how much of `author`'s chain it holds.
    pub async fn probe(&self, endpoint: &str, author: &AgentId) -> Result<ProbeBody, String> {
        let rb = self.http.get(format!("{endpoint}/v1/mesh/probe"));
        let bytes = self
            .success_body(rb.query(&[("author", author.as_str())]), "probe")
            .await?;
        serde_json::from_slice(&bytes).map_err(|e| format!("garbled probe answer: {e}"))
    }

    /// Fetches the page of `endpoint`'s export after `after`, structurally checked.
    pub async fn fetch(&self, endpoint: &str, after: u64) -> Result<ParsedPage, String> {
        let rb = self.http.get(format!("{endpoint}/v1/mesh/export"));
        let query = [("after", after), ("limit", MAX_BATCH as u64)];
        let bytes = self.success_body(rb.query(&query), "export").await?;
        ExportPage::parse(&bytes).map_err(|e| format!("garbled export page: {e}"))
    }

    /// Tells `endpoint` about the membership.
    pub async fn announce(&self, endpoint: &str, body: &MembersBody) -> Result<(), String> {
        let resp = self
            .auth(self.http.post(format!("{endpoint}/v1/cluster/members")))
            .json(body)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            let status = resp.status();
            Err(format!(
                "members answered {status}: {}",
                truncate(&resp.text().await.unwrap_or_default())
            ))
        }
    }
}

#[derive(Serialize)]
struct IngestOut {
    blocks: Vec<WireBlock>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Option<String>,
    expected_seq: Option<u64>,
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        // reqwest's Display includes the URL, never a header: no secret leaks here.
        e.to_string()
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(300).collect()
}
