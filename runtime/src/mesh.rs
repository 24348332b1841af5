//! The mesh client: how this node talks to peers over HTTP.
//!
//! Every call goes through the runtime's one [`HttpClient`], has a timeout and carries the
//! root key. Answers are parsed and blocks verified
//! here, with the core's pure functions, so the core only ever sees typed facts. Whether to
//! retry, and when, is never decided here.

use std::time::Duration;

use bytes::Bytes;
use hyper::StatusCode;
use sapix_core::block::Verified;
use sapix_core::node::Reply;
use sapix_core::repl::peer::PeerInfo;
use sapix_core::wire::{ExportPage, ParsedPage, WireBlock, MAX_BATCH};
use sapix_core::{AgentId, Block, KeySchedule, Role, RootKey};
use serde::{Deserialize, Serialize};

use crate::http::{Answer, Call, Connector, HttpClient};

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

impl From<PushOutcome> for Reply {
    fn from(o: PushOutcome) -> Reply {
        match o {
            PushOutcome::Acked => Reply::Ingested,
            PushOutcome::Gap { expected } => Reply::Gap { expected },
        }
    }
}

/// The probe endpoint's answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProbeBody {
    /// Who answered.
    pub agent_id: AgentId,
    /// The last seq of the asked author's chain held there.
    pub holds: u64,
    /// The digest of its membership, 16 hex digits (absent from agents before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members_digest: Option<String>,
}

impl ProbeBody {
    /// The membership digest, if sent and well-formed.
    pub fn digest(&self) -> Option<u64> {
        self.members_digest
            .as_deref()
            .and_then(|d| u64::from_str_radix(d, 16).ok())
    }
}

/// The answer to a membership announcement: every entry the receiver holds after it.
#[derive(Debug, Serialize, Deserialize)]
pub struct MembersAnswer {
    /// Peers the receiver knows.
    pub peers: usize,
    /// Its entries (absent from agents before push-pull existed).
    #[serde(default)]
    pub members: Vec<PeerInfo>,
}

/// The membership announcement body (`POST /v1/cluster/members`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersBody {
    /// The announcer (absent from agents before the new node probed its divider back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<AgentId>,
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

/// The largest answer read from a peer: an export page is at most 4 MiB of blocks plus one
/// block over that, JSON-encoded; the same bound as the ingest body a peer accepts.
const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;

/// An HTTP client for peers.
#[derive(Clone, Debug)]
pub struct MeshClient {
    http: HttpClient,
    root_key: RootKey,
}

impl MeshClient {
    /// A client over real TCP that authenticates with `root_key` and gives up on any call
    /// after `timeout`.
    pub fn new(root_key: RootKey, timeout: Duration) -> Self {
        Self::with_connector(root_key, timeout, Connector::tcp())
    }

    /// The same client over `connector` (a simulation's sockets).
    pub fn with_connector(root_key: RootKey, timeout: Duration, connector: Connector) -> Self {
        let http = HttpClient::new(connector, timeout, timeout.min(Duration::from_secs(2)));
        MeshClient { http, root_key }
    }

    /// Sends an authenticated call and returns the answer, whatever its status.
    async fn send(&self, call: Call<'_>) -> Result<Answer, String> {
        self.http
            .send(call.bearer(self.root_key.expose()))
            .await
            .map_err(|e| e.to_string())
    }

    /// Sends blocks to `endpoint`'s ingest.
    pub async fn ingest(&self, endpoint: &str, blocks: &[Block]) -> Result<PushOutcome, String> {
        let body = IngestOut {
            blocks: blocks
                .iter()
                .map(|b| WireBlock::from_block(b, None))
                .collect(),
        };
        let url = format!("{endpoint}/v1/mesh/ingest");
        let answer = self
            .send(Call::post_json(url, &body, MAX_ANSWER_BYTES))
            .await?;
        let status = answer.status;
        if status.is_success() {
            return Ok(PushOutcome::Acked);
        }
        let text = String::from_utf8_lossy(&answer.body);
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

    /// Sends an authenticated call and returns its body if the answer is a success; anything
    /// else is an error naming `what` and the start of the body.
    async fn success_body(&self, call: Call<'_>, what: &str) -> Result<Bytes, String> {
        let answer = self.send(call).await?;
        if !answer.status.is_success() {
            return Err(format!(
                "{what} answered {}: {}",
                answer.status,
                error_text(&answer.body)
            ));
        }
        Ok(answer.body)
    }

    /// Asks `endpoint` who it is and how much of `author`'s chain it holds.
    pub async fn probe(&self, endpoint: &str, author: &AgentId) -> Result<ProbeBody, String> {
        // Agent ids are `[a-z0-9._-]`: nothing in them needs escaping in a query.
        let url = format!("{endpoint}/v1/mesh/probe?author={}", author.as_str());
        let bytes = self
            .success_body(Call::get(url, MAX_ANSWER_BYTES), "probe")
            .await?;
        serde_json::from_slice(&bytes).map_err(|e| format!("garbled probe answer: {e}"))
    }

    /// Fetches the page of `endpoint`'s export after `after`, structurally checked.
    pub async fn fetch(&self, endpoint: &str, after: u64) -> Result<ParsedPage, String> {
        let url = format!("{endpoint}/v1/mesh/export?after={after}&limit={MAX_BATCH}");
        let bytes = self
            .success_body(Call::get(url, MAX_ANSWER_BYTES), "export")
            .await?;
        ExportPage::parse(&bytes).map_err(|e| format!("garbled export page: {e}"))
    }

    /// Tells `endpoint` about the membership; its answer holds every entry it knows then.
    pub async fn announce(
        &self,
        endpoint: &str,
        body: &MembersBody,
    ) -> Result<MembersAnswer, String> {
        let url = format!("{endpoint}/v1/cluster/members");
        let bytes = self
            .success_body(Call::post_json(url, body, MAX_ANSWER_BYTES), "members")
            .await?;
        serde_json::from_slice(&bytes).map_err(|e| format!("garbled members answer: {e}"))
    }
}

#[derive(Serialize)]
struct IngestOut {
    blocks: Vec<WireBlock>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Option<String>,
    message: Option<String>,
    expected_seq: Option<u64>,
}

/// What an error answer says: an agent's JSON error as `code: message` (so a peer's own words
/// reach an operator unescaped; at most 1000 characters), anything else as its first 300.
fn error_text(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody {
            error: Some(code),
            message: Some(message),
            ..
        }) => format!("{code}: {}", message.chars().take(1000).collect::<String>()),
        _ => truncate(&String::from_utf8_lossy(body)),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(300).collect()
}
