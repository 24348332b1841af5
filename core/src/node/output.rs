//! What comes out of a [`Node`](super::Node) for the shell to do: commands, in the
//! imperative, and the cluster view it persists.

use crate::auth::AuthKey;
use crate::block::Block;
use crate::id::AgentId;
use crate::repl::peer::PeerInfo;
use crate::status::{Consistency, Role};
use crate::wire::mesh::PageLimit;

use super::{AppendToken, Event, RequestId, Response};

/// A command for the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Append these blocks to the strand durably (fsync), then report
    /// [`Input::Appended`](super::Input::Appended). Appends must complete in token order.
    Append {
        /// Echo in [`Input::Appended`](super::Input::Appended).
        token: AppendToken,
        /// Verified blocks, in order.
        blocks: Vec<Block>,
    },
    /// Send this node's own blocks `from..=to` (read from the strand) to a peer's ingest; report
    /// [`Input::PushAcked`](super::Input::PushAcked), [`Input::PushGap`](super::Input::PushGap) or
    /// [`Input::PushFailed`](super::Input::PushFailed).
    Push {
        /// The peer.
        peer: AgentId,
        /// Its base URL.
        endpoint: String,
        /// First own seq.
        from: u64,
        /// Last own seq.
        to: u64,
    },
    /// Ask `endpoint` who it is and how much of this node's chain it holds; report
    /// [`Input::ProbeAnswered`](super::Input::ProbeAnswered) or
    /// [`Input::ProbeFailed`](super::Input::ProbeFailed).
    Probe {
        /// The peer (or node being added).
        peer: AgentId,
        /// Its base URL.
        endpoint: String,
    },
    /// Check that the node dividing this one is reachable at the endpoint it advertises, as itself
    /// (a new node's side of a divide); report [`Input::ProbedBack`](super::Input::ProbedBack) or
    /// [`Input::ProbeBackFailed`](super::Input::ProbeBackFailed).
    ProbeBack {
        /// The divider.
        divider: AgentId,
        /// Its advertised base URL.
        endpoint: String,
    },
    /// Fetch the page of a peer's export after `after`; report
    /// [`Input::PageFetched`](super::Input::PageFetched) or
    /// [`Input::FetchFailed`](super::Input::FetchFailed).
    FetchPage {
        /// The peer.
        peer: AgentId,
        /// Its base URL.
        endpoint: String,
        /// The cursor.
        after: u64,
        /// Blocks to ask for ([`crate::wire::mesh::PULL_PAGE`]).
        limit: usize,
    },
    /// Write `sync_cursors.json` atomically with these cursors, then report
    /// [`Input::CursorPersisted`](super::Input::CursorPersisted) for `peer`.
    PersistCursors {
        /// Every peer's cursor.
        cursors: Vec<(AgentId, u64)>,
        /// The peer whose cursor moved.
        peer: AgentId,
        /// Its new cursor.
        cursor: u64,
    },
    /// Write the cluster state atomically, then report
    /// [`Input::ClusterPersisted`](super::Input::ClusterPersisted).
    PersistCluster {
        /// Echo in the completion.
        version: u64,
        /// What to write.
        state: ClusterState,
    },
    /// Send the local strand's blocks after offset `after` (a batch) to a new node's ingest; report
    /// [`Input::Copied`](super::Input::Copied) or [`Input::CopyFailed`](super::Input::CopyFailed).
    Copy {
        /// The new node.
        to: AgentId,
        /// Its base URL.
        endpoint: String,
        /// The local offset to send after.
        after: u64,
        /// How much one batch carries ([`PageLimit::COPY`]).
        limit: PageLimit,
    },
    /// Tell a member about the membership; report [`Input::Announced`](super::Input::Announced) or
    /// [`Input::AnnounceFailed`](super::Input::AnnounceFailed).
    Announce {
        /// The member.
        to: AgentId,
        /// Its base URL.
        endpoint: String,
        /// Members it should know.
        members: Vec<PeerInfo>,
        /// Its role, when this node assigns it.
        your_role: Option<Role>,
        /// Cursor hints for it.
        cursors: Vec<(AgentId, u64)>,
    },
    /// Ask Codios whether `key`'s subject may do its action on its resource; report
    /// [`Input::CodiosAnswered`](super::Input::CodiosAnswered) or
    /// [`Input::CodiosFailed`](super::Input::CodiosFailed), exactly once per output (the shell
    /// bounds the call with a timeout). At most one is outstanding per key.
    AskCodios {
        /// The question.
        key: AuthKey,
    },
    /// Answer a request.
    Respond {
        /// The request.
        request: RequestId,
        /// The answer.
        response: Response,
    },
    /// Something an operator should see in the log.
    Log(Event),
}

/// The node's persisted cluster view (everything but cursors and blocks).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClusterState {
    /// This node's role.
    pub role: Role,
    /// The write gating mode.
    pub consistency: Consistency,
    /// Every other member's entry, tombstones of removed members included.
    pub peers: Vec<PeerInfo>,
    /// This node's own entry as the cluster knows it (absent in files from before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub me: Option<PeerInfo>,
}
