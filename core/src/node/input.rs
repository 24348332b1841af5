//! What goes into a [`Node`](super::Node): facts, named in the past tense, and the ids that
//! tie a completion to what asked for it. Every output the shell completes comes back as an
//! input naming the same thing: an [`AppendToken`], a peer's agent id, a cursor, a
//! cluster-state version. A [`RequestId`] is answered by exactly one
//! [`Output::Respond`](super::Output::Respond).

use crate::auth::{AuthKey, Credential, Decision};
use crate::block::Verified;
use crate::id::{AgentId, Collection};
use crate::repl::peer::PeerInfo;
use crate::status::{Consistency, Role};
use crate::time::UnixMillis;

use super::Failure;

/// Identifies one client or peer request; chosen by the shell, echoed in
/// [`Output::Respond`](super::Output::Respond).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// Identifies one [`Output::Append`](super::Output::Append); echoed in [`Input::Appended`]. Issued
/// in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppendToken(pub u64);

/// A fact the node learns.
#[derive(Debug)]
pub enum Input {
    /// A client asked to write a record. The node authorizes it (DESIGN §5: the root key, local
    /// mode, or Codios through the cache) and writes it, or answers
    /// [`Response::Denied`](super::Response::Denied) or
    /// [`Response::AuthUnavailable`](super::Response::AuthUnavailable). `wall` is stamped into the
    /// block, for information.
    WriteRequested {
        /// Echoed in the answer.
        request: RequestId,
        /// Who asks: the hash of the request's bearer token.
        credential: Credential,
        /// The record's collection.
        collection: Collection,
        /// The record's JSON bytes, already checked by [`crate::block::check_payload`].
        payload: Vec<u8>,
        /// The shell's wall clock now.
        wall: UnixMillis,
    },
    /// A peer pushed blocks (already verified: see [`Verified`]).
    IngestRequested {
        /// Echoed in the answer.
        request: RequestId,
        /// The blocks, in the order sent.
        blocks: Vec<Verified>,
    },
    /// An [`Output::Append`](super::Output::Append) is durable; `offsets` are the local offsets of
    /// its blocks.
    Appended {
        /// The append's token.
        token: AppendToken,
        /// One offset per block, in order.
        offsets: Vec<u64>,
    },
    /// An [`Output::Append`](super::Output::Append) failed. Storage is now unusable: the node
    /// refuses all writes.
    AppendFailed {
        /// The append's token.
        token: AppendToken,
        /// What the storage said, for the log.
        reason: String,
    },
    /// Someone asked for the cluster status; `wall` converts monotonic times for display.
    StatusRequested {
        /// Echoed in the answer.
        request: RequestId,
        /// The shell's wall clock now.
        wall: UnixMillis,
    },
    /// A peer asks who this node is and how much of `author`'s chain it holds.
    ProbeRequested {
        /// Echoed in the answer.
        request: RequestId,
        /// The author asked about (the asking peer itself).
        author: AgentId,
    },
    /// An operator asked to switch the gating mode.
    ConsistencyRequested {
        /// Echoed in the answer.
        request: RequestId,
        /// The new mode.
        mode: Consistency,
    },
    /// An operator asked to catch up from a peer now.
    SyncRequested {
        /// Echoed in the answer.
        request: RequestId,
        /// The peer to pull from.
        peer: AgentId,
    },
    /// An operator asked to add a node (`POST /v1/cluster/divide`).
    DivideRequested {
        /// Echoed in the answer.
        request: RequestId,
        /// The new node's id, endpoint and role.
        new: PeerInfo,
        /// The URL the call was addressed to (scheme and `Host`), if the shell knows it: a
        /// node bound to a wildcard address with no configured endpoint learns its own from it.
        via: Option<String>,
    },
    /// Another member told this node about the membership.
    MembersAnnounced {
        /// Echoed in the answer.
        request: RequestId,
        /// The announcer, if it said (agents before this field did not).
        from: Option<AgentId>,
        /// Members to know (this node itself is skipped).
        members: Vec<PeerInfo>,
        /// This node's role, if the announcer assigns one.
        your_role: Option<Role>,
        /// Pull cursors this node may start from, per peer (a divide's copy already
        /// delivered those blocks).
        cursors: Vec<(AgentId, u64)>,
    },
    /// An operator asked to remove a member for good (`DELETE /v1/cluster/members/{id}`).
    RemoveRequested {
        /// Echoed in the answer.
        request: RequestId,
        /// The member.
        agent_id: AgentId,
    },
    /// A peer durably holds this node's blocks through `through`.
    PushAcked {
        /// The peer.
        peer: AgentId,
        /// The last seq it now holds.
        through: u64,
    },
    /// A peer refused a push because it lacks this node's blocks from `expected` on.
    PushGap {
        /// The peer.
        peer: AgentId,
        /// The first seq it lacks.
        expected: u64,
    },
    /// A push failed: network error, timeout, or an answer that is not a success.
    PushFailed {
        /// The peer.
        peer: AgentId,
        /// For the log.
        reason: Failure,
    },
    /// A probe was answered by `agent_id`, which holds this node's chain through `holds`.
    ProbeAnswered {
        /// The peer probed.
        peer: AgentId,
        /// Who answered.
        agent_id: AgentId,
        /// The last seq of this node's chain it holds.
        holds: u64,
        /// Its membership digest, if it sent one.
        digest: Option<u64>,
    },
    /// A probe failed.
    ProbeFailed {
        /// The peer probed.
        peer: AgentId,
        /// For the log.
        reason: Failure,
    },
    /// A page of a peer's export arrived (blocks verified by the shell).
    PageFetched {
        /// The peer.
        peer: AgentId,
        /// The blocks, in the peer's order.
        blocks: Vec<Verified>,
        /// The cursor after this page.
        next: u64,
        /// The peer's tip.
        tip: u64,
    },
    /// Fetching a page failed (network, or a malformed or unverifiable page).
    FetchFailed {
        /// The peer.
        peer: AgentId,
        /// For the log.
        reason: Failure,
    },
    /// An [`Output::PersistCursors`](super::Output::PersistCursors) is durable.
    CursorPersisted {
        /// The peer whose cursor moved.
        peer: AgentId,
        /// Its new cursor.
        cursor: u64,
    },
    /// Writing an [`Output::PersistCursors`](super::Output::PersistCursors) failed: the cursor is
    /// not durable. The pull run waiting on it fails and is retried from the cursor that is.
    CursorPersistFailed {
        /// The peer whose cursor was to move.
        peer: AgentId,
        /// The cursor that was to be written.
        cursor: u64,
        /// What the disk said.
        reason: String,
    },
    /// An [`Output::PersistCluster`](super::Output::PersistCluster) is durable.
    ClusterPersisted {
        /// The version persisted.
        version: u64,
    },
    /// Writing an [`Output::PersistCluster`](super::Output::PersistCluster) failed: that version is
    /// not durable.
    ClusterPersistFailed {
        /// The version that was to be written.
        version: u64,
        /// What the disk said.
        reason: String,
    },
    /// A bootstrap copy batch was ingested by the new node.
    Copied {
        /// The new node.
        to: AgentId,
        /// The last local offset sent.
        next: u64,
        /// Blocks sent in the batch.
        sent: u64,
    },
    /// A bootstrap copy batch failed.
    CopyFailed {
        /// The new node.
        to: AgentId,
        /// For the log and the answer.
        reason: Failure,
    },
    /// An [`Output::Announce`](super::Output::Announce) was accepted.
    Announced {
        /// The member told.
        to: AgentId,
        /// Every membership entry it holds after taking the announcement.
        members: Vec<PeerInfo>,
    },
    /// An [`Output::Announce`](super::Output::Announce) failed; it is retried.
    AnnounceFailed {
        /// The member.
        to: AgentId,
        /// Why (for a divide's announcement, the new node's own words).
        reason: Failure,
    },
    /// The node that divided this one answered this node's
    /// [`Output::ProbeBack`](super::Output::ProbeBack).
    ProbedBack {
        /// The divider.
        divider: AgentId,
        /// The id the far side answered as.
        answered_as: AgentId,
    },
    /// An [`Output::ProbeBack`](super::Output::ProbeBack) failed.
    ProbeBackFailed {
        /// The divider.
        divider: AgentId,
        /// Why.
        reason: Failure,
    },
    /// Codios answered an [`Output::AskCodios`](super::Output::AskCodios) for `key`.
    CodiosAnswered {
        /// The key asked about.
        key: AuthKey,
        /// What Codios decided.
        decision: Decision,
    },
    /// An [`Output::AskCodios`](super::Output::AskCodios) for `key` failed: network error, timeout,
    /// non-2xx answer or a garbled body. Never a permit.
    CodiosFailed {
        /// The key asked about.
        key: AuthKey,
        /// For the log.
        reason: Failure,
    },
}
