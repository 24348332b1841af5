//! What goes into a [`Node`](super::Node) and what comes out of it.
//!
//! Inputs are facts, named in the past tense; outputs are commands, in the imperative. Every
//! output the shell completes comes back as an input naming the same thing: an
//! [`AppendToken`], a peer's agent id, a cursor, a cluster-state version. A [`RequestId`] is
//! answered by exactly one [`Output::Respond`].

use crate::auth::{AuthKey, Credential, Decision};
use crate::block::{Block, Hash, Verified};
use crate::chain::Position;
use crate::id::{AgentId, Collection};
use crate::repl::peer::PeerInfo;
use crate::repl::pull::Totals;
use crate::status::{ClusterStatus, Consistency, Role};
use crate::time::UnixMillis;
use crate::wire::mesh::PageLimit;

use super::Failure;

/// Identifies one client or peer request; chosen by the shell, echoed in [`Output::Respond`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// Identifies one [`Output::Append`]; echoed in [`Input::Appended`]. Issued in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppendToken(pub u64);

/// A fact the node learns.
#[derive(Debug)]
pub enum Input {
    /// A client asked to write a record. The node authorizes it (DESIGN §5: the root key,
    /// local mode, or Codios through the cache) and writes it, or answers [`Response::Denied`]
    /// or [`Response::AuthUnavailable`]. `wall` is stamped into the block, for information.
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
    /// An [`Output::Append`] is durable; `offsets` are the local offsets of its blocks.
    Appended {
        /// The append's token.
        token: AppendToken,
        /// One offset per block, in order.
        offsets: Vec<u64>,
    },
    /// An [`Output::Append`] failed. Storage is now unusable: the node refuses all writes.
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
    /// An [`Output::PersistCursors`] is durable.
    CursorPersisted {
        /// The peer whose cursor moved.
        peer: AgentId,
        /// Its new cursor.
        cursor: u64,
    },
    /// Writing an [`Output::PersistCursors`] failed: the cursor is not durable. The pull
    /// run waiting on it fails and is retried from the cursor that is.
    CursorPersistFailed {
        /// The peer whose cursor was to move.
        peer: AgentId,
        /// The cursor that was to be written.
        cursor: u64,
        /// What the disk said.
        reason: String,
    },
    /// An [`Output::PersistCluster`] is durable.
    ClusterPersisted {
        /// The version persisted.
        version: u64,
    },
    /// Writing an [`Output::PersistCluster`] failed: that version is not durable.
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
    /// An [`Output::Announce`] was accepted.
    Announced {
        /// The member told.
        to: AgentId,
        /// Every membership entry it holds after taking the announcement.
        members: Vec<PeerInfo>,
    },
    /// An [`Output::Announce`] failed; it is retried.
    AnnounceFailed {
        /// The member.
        to: AgentId,
        /// Why (for a divide's announcement, the new node's own words).
        reason: Failure,
    },
    /// The node that divided this one answered this node's [`Output::ProbeBack`].
    ProbedBack {
        /// The divider.
        divider: AgentId,
        /// The id the far side answered as.
        answered_as: AgentId,
    },
    /// An [`Output::ProbeBack`] failed.
    ProbeBackFailed {
        /// The divider.
        divider: AgentId,
        /// Why.
        reason: Failure,
    },
    /// Codios answered an [`Output::AskCodios`] for `key`.
    CodiosAnswered {
        /// The key asked about.
        key: AuthKey,
        /// What Codios decided.
        decision: Decision,
    },
    /// An [`Output::AskCodios`] for `key` failed: network error, timeout, non-2xx answer or a
    /// garbled body. Never a permit.
    CodiosFailed {
        /// The key asked about.
        key: AuthKey,
        /// For the log.
        reason: Failure,
    },
}

/// A command for the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Append these blocks to the strand durably (fsync), then report [`Input::Appended`].
    /// Appends must complete in token order.
    Append {
        /// Echo in [`Input::Appended`].
        token: AppendToken,
        /// Verified blocks, in order.
        blocks: Vec<Block>,
    },
    /// Send this node's own blocks `from..=to` (read from the strand) to a peer's ingest;
    /// report [`Input::PushAcked`], [`Input::PushGap`] or [`Input::PushFailed`].
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
    /// [`Input::ProbeAnswered`] or [`Input::ProbeFailed`].
    Probe {
        /// The peer (or node being added).
        peer: AgentId,
        /// Its base URL.
        endpoint: String,
    },
    /// Check that the node dividing this one is reachable at the endpoint it advertises, as
    /// itself (a new node's side of a divide); report [`Input::ProbedBack`] or
    /// [`Input::ProbeBackFailed`].
    ProbeBack {
        /// The divider.
        divider: AgentId,
        /// Its advertised base URL.
        endpoint: String,
    },
    /// Fetch the page of a peer's export after `after`; report [`Input::PageFetched`] or
    /// [`Input::FetchFailed`].
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
    /// [`Input::CursorPersisted`] for `peer`.
    PersistCursors {
        /// Every peer's cursor.
        cursors: Vec<(AgentId, u64)>,
        /// The peer whose cursor moved.
        peer: AgentId,
        /// Its new cursor.
        cursor: u64,
    },
    /// Write the cluster state atomically, then report [`Input::ClusterPersisted`].
    PersistCluster {
        /// Echo in the completion.
        version: u64,
        /// What to write.
        state: ClusterState,
    },
    /// Send the local strand's blocks after offset `after` (a batch) to a new node's ingest;
    /// report [`Input::Copied`] or [`Input::CopyFailed`].
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
    /// Tell a member about the membership; report [`Input::Announced`] or
    /// [`Input::AnnounceFailed`].
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
    /// [`Input::CodiosAnswered`] or [`Input::CodiosFailed`], exactly once per output (the shell
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

/// A durable write's receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The block hash.
    pub hash: Hash,
    /// This node.
    pub author: AgentId,
    /// The block's seq in this node's chain.
    pub seq: u64,
    /// The block's local offset.
    pub offset: u64,
}

/// The node's answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// The record is durable (and, in CP, on every peer).
    Written(Receipt),
    /// CP: peers are unreachable, so nothing was written.
    Partitioned {
        /// The unreachable peers.
        unreachable: Vec<AgentId>,
    },
    /// CP: the record is durable here but a peer failed before holding it; it will
    /// replicate when the peer is back. The write's outcome elsewhere is not known.
    Indeterminate {
        /// The local receipt.
        receipt: Receipt,
        /// The peer that failed.
        peer: AgentId,
    },
    /// The blocks are durable here (or were already).
    Ingested {
        /// Blocks newly stored.
        accepted: u64,
        /// Blocks already held.
        duplicates: u64,
    },
    /// The batch was refused whole because of the block at `index`; nothing was stored.
    IngestRefused {
        /// Index of the offending block in the batch.
        index: usize,
        /// Its author.
        author: AgentId,
        /// Its seq.
        seq: u64,
        /// Where it stood.
        position: Position,
    },
    /// The current status.
    Status(ClusterStatus),
    /// The answer to a probe.
    ProbeAnswer {
        /// This node.
        agent_id: AgentId,
        /// The last seq of the asked author's chain held here.
        holds: u64,
        /// The digest of this node's membership.
        digest: u64,
    },
    /// The gating mode switched (and is persisted).
    ConsistencySet {
        /// The new mode.
        consistency: Consistency,
        /// The mode before.
        previous: Consistency,
    },
    /// A pull run reached the peer's tip.
    Synced {
        /// The peer.
        peer: AgentId,
        /// What the run did.
        totals: Totals,
        /// The durable cursor now.
        cursor: u64,
    },
    /// A pull run failed; the cursor is unchanged.
    SyncFailed {
        /// The peer.
        peer: AgentId,
        /// Why.
        reason: String,
    },
    /// No peer has that id.
    UnknownPeer(AgentId),
    /// The new node holds every block and is a member.
    Divided {
        /// Its id.
        replica_agent_id: AgentId,
        /// Blocks copied to it.
        blocks_pushed: u64,
        /// Its endpoint.
        endpoint: String,
        /// Members that recorded the new membership before the answer (the new node first).
        members_informed: Vec<AgentId>,
        /// Members that could not be told now (down or unreachable); they learn it from the
        /// announcement's retries or from any member's digest exchange.
        members_pending: Vec<AgentId>,
    },
    /// The divide was refused before anything happened (a conflict or a bad request).
    DivideRefused {
        /// Why.
        reason: String,
    },
    /// The divide failed part way (the new node did not answer, or answered as someone else).
    DivideFailed {
        /// Why.
        reason: String,
    },
    /// The membership announcement was applied and persisted.
    MembersUpdated {
        /// Peers known now.
        peers: usize,
        /// Every entry held now (tombstones and this node's own included), so the announcer
        /// learns in the same exchange what it lacked.
        members: Vec<PeerInfo>,
    },
    /// A divide's announcement was not recorded: this (new) node could not reach the divider
    /// back at its advertised endpoint as the divider. Nothing was recorded.
    JoinRefused {
        /// Why, naming the direction and the endpoint setting to fix.
        reason: String,
    },
    /// The member is removed (a tombstone, persisted and spreading); CP no longer waits for
    /// it. Also the answer when it already was.
    MemberRemoved {
        /// Who.
        agent_id: AgentId,
    },
    /// The removal was refused (this node itself).
    RemoveRefused {
        /// Why.
        reason: String,
    },
    /// Local storage failed; nothing more can be written.
    StorageFailed,
    /// An operator's change took effect on this node, but the cluster view holding it could
    /// not be written; it is retried.
    NotPersisted {
        /// Why, for the operator.
        reason: String,
    },
    /// The write is not allowed (a Codios deny, or local mode without the root key).
    Denied {
        /// Why, for the client.
        reason: String,
    },
    /// Codios could not be asked and no cached decision may be served: refuse for now.
    AuthUnavailable {
        /// Why, for the client.
        reason: String,
    },
}

/// A log-worthy event. The shell chooses the level and format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An author signed two different blocks at one position. Alert.
    Equivocation {
        /// The author.
        author: AgentId,
        /// The position.
        seq: u64,
        /// The block held.
        held: Hash,
        /// The other block, refused.
        refused: Hash,
    },
    /// Storage failed; the node has stopped accepting writes.
    StorageFailed {
        /// What the storage said.
        reason: String,
    },
    /// A peer stopped answering.
    PeerUnreachable {
        /// The peer.
        peer: AgentId,
        /// The last error.
        reason: Failure,
    },
    /// A peer answers again.
    PeerReachable {
        /// The peer.
        peer: AgentId,
    },
    /// A push to a peer failed; retry after `retry_in_ms`.
    PushRetry {
        /// The peer.
        peer: AgentId,
        /// Consecutive failures.
        failures: u32,
        /// The jittered wait.
        retry_in_ms: u64,
        /// Blocks owed to it.
        queued: u64,
        /// The error.
        reason: Failure,
    },
    /// The backoff reached its cap: an extended failure, logged once per episode. Alert.
    ExtendedFailure {
        /// The peer.
        peer: AgentId,
        /// Blocks owed to it.
        queued: u64,
    },
    /// A pull run finished.
    Pulled {
        /// The peer.
        peer: AgentId,
        /// What it did.
        totals: Totals,
        /// The cursor now.
        cursor: u64,
    },
    /// Writing the cluster view failed; `answered` changes waiting on it were answered
    /// [`Response::NotPersisted`], and the write is tried again in `retry_in_ms`. Alert.
    ClusterPersistFailed {
        /// The version that failed.
        version: u64,
        /// Answers that were waiting on it.
        answered: usize,
        /// When the next write is tried.
        retry_in_ms: u64,
        /// What the disk said.
        reason: String,
    },
    /// A pull run failed.
    PullFailed {
        /// The peer.
        peer: AgentId,
        /// Why.
        reason: Failure,
    },
    /// A bootstrap copy progressed.
    DivideProgress {
        /// The new node.
        to: AgentId,
        /// Blocks copied so far.
        copied: u64,
        /// The local tip being copied to.
        tip: u64,
    },
    /// This node, bound to a wildcard address with no configured endpoint, learned the URL
    /// it is reached at (and advertises it from now on).
    EndpointLearned {
        /// The URL.
        endpoint: String,
        /// Where it came from.
        from: &'static str,
    },
    /// A node joined the cluster.
    PeerAdded {
        /// Who.
        peer: PeerInfo,
    },
    /// A member was removed from the cluster.
    PeerRemoved {
        /// Who.
        peer: AgentId,
    },
    /// This node's own entry was removed by an operator elsewhere: peers no longer wait for
    /// it. Alert: it should be shut down.
    RemovedFromCluster,
    /// A client write was let through by a Codios decision (fresh, or as `AuthDegraded`
    /// says); it runs now. Not logged for the root key or in local mode.
    WriteAuthorized {
        /// The write's request.
        request: RequestId,
        /// The key (its `Debug` shows a short hash of the token, never the token).
        key: AuthKey,
        /// Served from a decision past its TTL, or with the circuit open (`auth_degraded`).
        degraded: bool,
    },
    /// A write was let through without a fresh Codios decision: a permit past its TTL served
    /// because Codios failed, or served while the circuit is open. Logged `auth_degraded`.
    AuthDegraded {
        /// The key (its `Debug` shows a short hash of the token, never the token).
        key: AuthKey,
        /// How long ago the served permit was fetched from Codios.
        age_ms: u64,
        /// Whether the circuit breaker is open.
        circuit_open: bool,
        /// Why Codios was not used.
        reason: String,
    },
    /// A Codios call failed; `waiting` writes were answered from the cache or refused.
    CodiosFailed {
        /// The key asked about.
        key: AuthKey,
        /// Writes that were waiting on the call.
        waiting: usize,
        /// What went wrong.
        reason: Failure,
    },
    /// The circuit breaker opened: cached decisions are served without Codios. Alert.
    AuthCircuitOpened {
        /// How long Codios had been failing.
        failing_for_ms: u64,
    },
    /// The circuit breaker closed: Codios answers again and normal enforcement resumes.
    AuthCircuitClosed {
        /// How long the circuit was open.
        open_for_ms: u64,
    },
}
