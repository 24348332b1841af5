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
use sapix_core::ledger::wire::CosignatureJson;
use sapix_core::ledger::{Cosignature, SignedHead, Witnessed};
use sapix_core::node::{Failure, Reply};
use sapix_core::wire::mesh::{IngestRefusal, MembersAnswer, MembersBody, ProbeAnswer};
use sapix_core::wire::{self, ExportPage, ParsedPage};
use sapix_core::{AgentId, Block, KeySchedule, RootKey};
use serde::Deserialize;

use crate::http::{Answer, Call, Connector, HttpClient};
use crate::strand::Strand;

/// Default timeout of one mesh call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Verifies every block of a fetched page (CPU-heavy: call off the async threads). A block
/// identical to one `strand` holds skips its signature check: pull pages repeat what pushes
/// (and other peers' pages) already brought.
pub fn verify_page(
    page: ParsedPage,
    keys: &KeySchedule,
    strand: &Strand,
) -> Result<Vec<Verified>, Failure> {
    page.blocks
        .into_iter()
        .map(|(offset, b)| {
            b.into_verified_unless_held(keys, |h| strand.signature_of(h))
                .map_err(|e| Failure::Garbled {
                    what: "export page",
                    why: format!("block at offset {offset}: {e}"),
                })
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
    async fn send(&self, call: Call<'_>) -> Result<Answer, Failure> {
        Ok(self.http.send(call.bearer(self.root_key.expose())).await?)
    }

    /// Sends blocks, and this node's `head` for the peer to witness, to `endpoint`'s ingest:
    /// [`Reply::Ingested`] (with the peer's cosignature of the head if it gave one that
    /// verifies against it), or [`Reply::Gap`] when it lacks the author's chain before them.
    pub async fn ingest(
        &self,
        endpoint: &str,
        blocks: &[Block],
        head: Option<&SignedHead>,
    ) -> Result<Reply, Failure> {
        let url = format!("{endpoint}/v1/mesh/ingest");
        let body = wire::ingest_json(blocks, head);
        let answer = self
            .send(Call::post_json_bytes(url, body, MAX_ANSWER_BYTES))
            .await?;
        let status = answer.status;
        if status.is_success() {
            let witnessed = head.and_then(|h| cosignature_of(&answer.body, h));
            return Ok(Reply::Ingested { witnessed });
        }
        if status == StatusCode::CONFLICT {
            let refusal = serde_json::from_slice::<IngestRefusal>(&answer.body).ok();
            if let Some(expected) = refusal.and_then(|r| r.gap()) {
                return Ok(Reply::Gap { expected });
            }
        }
        Err(Failure::Status {
            call: "ingest",
            code: status.as_u16(),
            message: error_text(&answer.body),
        })
    }

    /// Sends an authenticated call and returns its body if the answer is a success; anything
    /// else is an error naming `what` and the start of the body.
    async fn success_body(&self, call: Call<'_>, what: &'static str) -> Result<Bytes, Failure> {
        let answer = self.send(call).await?;
        if !answer.status.is_success() {
            return Err(Failure::Status {
                call: what,
                code: answer.status.as_u16(),
                message: error_text(&answer.body),
            });
        }
        Ok(answer.body)
    }

    /// Asks `endpoint` who it is and how much of `author`'s chain it holds.
    pub async fn probe(&self, endpoint: &str, author: &AgentId) -> Result<ProbeAnswer, Failure> {
        // Agent ids are `[a-z0-9._-]`: nothing in them needs escaping in a query.
        let url = format!("{endpoint}/v1/mesh/probe?author={}", author.as_str());
        let bytes = self
            .success_body(Call::get(url, MAX_ANSWER_BYTES), "probe")
            .await?;
        serde_json::from_slice(&bytes).map_err(|e| garbled("probe answer", e))
    }

    /// Fetches the page of `endpoint`'s export after `after`, structurally checked.
    pub async fn fetch(
        &self,
        endpoint: &str,
        after: u64,
        limit: usize,
    ) -> Result<ParsedPage, Failure> {
        let url = format!("{endpoint}/v1/mesh/export?after={after}&limit={limit}");
        let bytes = self
            .success_body(Call::get(url, MAX_ANSWER_BYTES), "export")
            .await?;
        ExportPage::parse(&bytes).map_err(|e| garbled("export page", e))
    }

    /// Tells `endpoint` about the membership; its answer holds every entry it knows then.
    pub async fn announce(
        &self,
        endpoint: &str,
        body: &MembersBody,
    ) -> Result<MembersAnswer, Failure> {
        let url = format!("{endpoint}/v1/cluster/members");
        let bytes = self
            .success_body(Call::post_json(url, body, MAX_ANSWER_BYTES), "members")
            .await?;
        serde_json::from_slice(&bytes).map_err(|e| garbled("members answer", e))
    }
}

/// The ingest answer's fields a pusher reads.
#[derive(Deserialize)]
struct IngestAnswer {
    cosignature: Option<CosignatureJson>,
}

/// The peer's cosignature of `head` in an ingest answer, if it has one that verifies (an
/// answer without one, or with a bad one, is still an acknowledgement of the blocks).
fn cosignature_of(body: &[u8], head: &SignedHead) -> Option<Witnessed> {
    let answer = serde_json::from_slice::<IngestAnswer>(body).ok()?;
    let cosignature = Cosignature::try_from(&answer.cosignature?).ok()?;
    cosignature.verifies(&head.head).then(|| Witnessed {
        head: head.head.clone(),
        cosignature,
    })
}

/// Any agent's JSON error answer, as far as a log line needs it.
#[derive(Deserialize)]
struct ErrorBody {
    error: Option<String>,
    message: Option<String>,
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

fn garbled(what: &'static str, e: impl std::fmt::Display) -> Failure {
    Failure::Garbled {
        what,
        why: e.to_string(),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(300).collect()
}
