//! What comes out of a [`Node`](super::Node) for the shell to do: commands, in the
//! imperative, and the cluster view it persists.

use crate::auth::AuthKey;
use crate::block::Block;
use crate::id::AgentId;
use crate::repl::peer::PeerInfo;
use crate::status::{Consistency, Role};
use crate::wire::mesh::PageLimit;

use super::{AppendToken, CallId, Event, RequestId, Response};

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
    /// The node rolled back every append from a failed one on (the disk was full): the strand
    /// may take appends issued after this again. Until then it refuses every append, so none
    /// issued before the rollback can land after it and break a chain.
    ResumeAppends,
    /// Send this node's own blocks `from..=to` (read from the strand) to a peer's ingest;
    /// report how it ended ([`Reply::Ingested`](super::Reply::Ingested),
    /// [`Reply::Gap`](super::Reply::Gap) or a failure).
    Push {
        /// Echo in [`Input::CallEnded`](super::Input::CallEnded).
        call: CallId,
        /// The peer.
        peer: AgentId,
        /// Its base URL.
        endpoint: String,
        /// First own seq.
        from: u64,
        /// Last own seq (`from - 1`: no blocks, the head alone).
        to: u64,
        /// The own latest head for the peer to witness, sent with the blocks.
        head: Option<crate::ledger::SignedHead>,
    },
    /// Ask `endpoint` who it is and how much of this node's chain it holds; report how it ended
    /// ([`Reply::Probed`](super::Reply::Probed) or a failure).
    Probe {
        /// Echo in [`Input::CallEnded`](super::Input::CallEnded).
        call: CallId,
        /// The peer (or node being added).
        peer: AgentId,
        /// Its base URL.
        endpoint: String,
    },
    /// Check that the node dividing this one is reachable at the endpoint it advertises, as itself
    /// (a new node's side of a divide); report how it ended
    /// ([`Reply::Probed`](super::Reply::Probed) or a failure).
    ProbeBack {
        /// Echo in [`Input::CallEnded`](super::Input::CallEnded).
        call: CallId,
        /// The divider.
        divider: AgentId,
        /// Its advertised base URL.
        endpoint: String,
    },
    /// Fetch the page of a peer's export after `after`; report how it ended
    /// ([`Reply::Page`](super::Reply::Page), its blocks verified, or a failure).
    FetchPage {
        /// Echo in [`Input::CallEnded`](super::Input::CallEnded).
        call: CallId,
        /// The peer.
        peer: AgentId,
        /// Its base URL.
        endpoint: String,
        /// The cursor.
        after: u64,
        /// Blocks to ask for ([`crate::wire::mesh::PULL_PAGE`]).
        limit: usize,
    },
    /// Write `sync_cursors.json` atomically with these cursors, then report how it ended:
    /// [`Reply::Stored`](super::Reply::Stored) or
    /// [`Failure::LocalStorage`](super::Failure::LocalStorage).
    PersistCursors {
        /// Echo in [`Input::CallEnded`](super::Input::CallEnded).
        call: CallId,
        /// Every peer's cursor.
        cursors: Vec<(AgentId, u64)>,
        /// The peer whose cursor moved.
        peer: AgentId,
        /// Its new cursor.
        cursor: u64,
    },
    /// Write the cluster state atomically, then report how it ended:
    /// [`Reply::Stored`](super::Reply::Stored) or
    /// [`Failure::LocalStorage`](super::Failure::LocalStorage).
    PersistCluster {
        /// Echo in [`Input::CallEnded`](super::Input::CallEnded).
        call: CallId,
        /// The cluster view's version (for traces).
        version: u64,
        /// What to write.
        state: ClusterState,
    },
    /// Keep `head`, the newest head this node signed of its own chain, in place of the last
    /// one (atomically; a newer one may supersede a write in flight). Nothing is reported back:
    /// the head is served from memory, the file only tells the next start what was vouched.
    PersistHead {
        /// The head.
        head: crate::ledger::SignedHead,
    },
    /// Keep `heads`, the latest head of every other author this node witnessed, in place of
    /// the last ones (atomically). Nothing is reported back: they are served from memory, the
    /// file gives them back to the next start ([`super::Restored::witnessed`]).
    PersistWitnessed {
        /// The heads, author order.
        heads: Vec<crate::ledger::SignedHead>,
    },
    /// Keep this equivocation evidence on disk (atomically, synced) under
    /// [`Evidence::file_name`](crate::ledger::Evidence::file_name), with the held block read
    /// from the strand for [`Evidence::Blocks`](crate::ledger::Evidence::Blocks). Nothing is
    /// reported back; the next start lists what is kept ([`super::Restored::evidence`]).
    KeepEvidence {
        /// The evidence.
        evidence: crate::ledger::Evidence,
    },
    /// Send the local strand's blocks after offset `after` (a batch) to a new node's ingest;
    /// report how it ended: [`Reply::Copied`](super::Reply::Copied) naming the batch read (see
    /// [`Reply::of_copy`](super::Reply::of_copy)), or a failure.
    Copy {
        /// Echo in [`Input::CallEnded`](super::Input::CallEnded).
        call: CallId,
        /// The new node.
        to: AgentId,
        /// Its base URL.
        endpoint: String,
        /// The local offset to send after.
        after: u64,
        /// How much one batch carries ([`PageLimit::COPY`]).
        limit: PageLimit,
    },
    /// Tell a member about the membership; report how it ended
    /// ([`Reply::MembersUpdated`](super::Reply::MembersUpdated) or a failure).
    Announce {
        /// Echo in [`Input::CallEnded`](super::Input::CallEnded).
        call: CallId,
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
    /// Ask Codios whether `key`'s subject may do its action on its resource; report how it ended
    /// ([`Reply::Decided`](super::Reply::Decided) or a failure), exactly once per output (the shell
    /// bounds the call with a timeout). At most one is outstanding per key.
    AskCodios {
        /// Echo in [`Input::CallEnded`](super::Input::CallEnded).
        call: CallId,
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
