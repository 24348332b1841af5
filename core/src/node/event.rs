//! What the node reports for the log: the shell chooses level and format.

use crate::auth::AuthKey;
use crate::block::Hash;
use crate::id::AgentId;
use crate::ledger::HeadPublicKey;
use crate::repl::peer::PeerInfo;
use crate::repl::pull::Totals;

use super::{Failure, RequestId};

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
    /// A member's head key was enrolled (first seen) or rotated (signed in by its old key).
    HeadKeyEnrolled {
        /// The member (this node for its own).
        member: AgentId,
        /// The key now current.
        key: HeadPublicKey,
        /// The key it replaced, for a rotation.
        replaced: Option<HeadPublicKey>,
    },
    /// An entry offered another head key for a member than the one enrolled, not signed in
    /// by it: refused, the enrolled kept. Alert: a node's key was replaced outside a
    /// rotation, or someone holding the cluster's seed forges one.
    HeadKeyRefused {
        /// The member.
        member: AgentId,
        /// Its enrolled key.
        enrolled: Option<HeadPublicKey>,
        /// The key refused.
        offered: HeadPublicKey,
    },
    /// This node's key file holds another head key than the cluster enrolled for it (the
    /// file replaced, or a rotation lost): its heads will not verify against the enrolled
    /// key. Alert.
    HeadKeyNotEnrolled {
        /// The key in the file.
        local: HeadPublicKey,
        /// The key the cluster enrolled.
        enrolled: HeadPublicKey,
    },
    /// A peer pushed a head of its chain that this node will not cosign: signed with a key
    /// not enrolled for it (info: a rotation not yet heard of), or over another chain than
    /// the blocks it signed and this node holds (alert: the author forked its chain).
    HeadRefused {
        /// The author.
        author: AgentId,
        /// The head's seq.
        seq: u64,
        /// Why.
        why: super::HeadRefusal,
    },
    /// A peer sent a block of this node's own chain past what it vouches for: validly signed
    /// with the seed's key for this node, but never signed here. Refused. Alert: someone holds
    /// the master seed.
    ForgedOwnBlock {
        /// Its seq.
        seq: u64,
        /// Its hash.
        hash: crate::block::Hash,
    },
    /// A peer answered a probe holding a block of this node's chain at `seq` that is not this
    /// node's: it took a forged one. Nothing it holds of this chain is counted. Alert.
    PeerHoldsForgedBlock {
        /// The peer.
        peer: AgentId,
        /// The seq it claimed to hold through.
        seq: u64,
    },
    /// This node's own chain does not hold what its last signed head vouched for. Alert.
    OwnChainUnsafe(super::OwnChainUnsafe),
    /// The own chain holds its last head again: own writes resume.
    OwnChainRecovered {
        /// The head's seq.
        seq: u64,
    },
    /// Another author's chain as held here does not hold the head this node witnessed of it.
    /// Alert.
    WitnessedChainUnsafe(super::WitnessedChainUnsafe),
    /// That chain holds the witnessed head again (its tail came back from peers).
    WitnessedChainRecovered {
        /// Whose chain.
        author: AgentId,
        /// The head's seq.
        seq: u64,
    },
    /// Storage failed; the node has stopped accepting writes.
    StorageFailed {
        /// What the storage said.
        reason: String,
    },
    /// The disk is full: the appends from the failed one on were rolled back and their
    /// requests refused; each later write tries again. Logged once until space returns.
    StorageFull {
        /// What the storage said.
        reason: String,
        /// Blocks rolled back.
        rolled_back: u64,
    },
    /// An append succeeded after the disk was full: writes are taken again.
    StorageBack,
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
    /// [`Response::NotPersisted`](super::Response::NotPersisted), and the write is tried again in
    /// `retry_in_ms`. Alert.
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
