//! The node's answers to requests, one per [`RequestId`](super::RequestId).

use crate::block::Hash;
use crate::chain::Position;
use crate::id::AgentId;
use crate::ledger::HeadPublicKey;
use crate::repl::peer::PeerInfo;
use crate::repl::pull::Totals;
use crate::status::{ClusterStatus, Consistency};

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
    /// Nothing was written: this node's own chain does not hold what it signed a head over.
    OwnChainUnsafe(super::OwnChainUnsafe),
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
        /// This node's cosignature of the head the push carried, if it witnessed it.
        witnessed: Option<crate::ledger::Witnessed>,
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
        /// The hash held at that seq (none at 0): the prober checks it is its own block.
        tip: Option<Hash>,
        /// The digest of this node's membership.
        digest: u64,
        /// This node's head key (a divider enrols it).
        head_key: HeadPublicKey,
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
    /// Where the divide running here stands, if one is.
    DivideProgress(crate::status::DivideProgress),
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
    /// The disk is full: nothing of this request was stored. Writes are tried again as they
    /// come, so they succeed once space is freed.
    StorageFull,
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
    /// The read may go ahead: the shell serves it.
    ReadAllowed,
    /// Every position a read named is durable here.
    PositionReached,
    /// This node's head key was rotated; the membership carrying it is persisted and is
    /// spreading to the members.
    HeadKeyRotated {
        /// The key signed heads from now on.
        key: HeadPublicKey,
        /// The key that signed it in.
        replaced: HeadPublicKey,
        /// Keys enrolled for this node so far (the first and every rotation).
        enrolled: usize,
    },
    /// The rotation was refused; nothing changed.
    RotateRefused {
        /// Why, for the operator.
        reason: String,
    },
    /// Heads or a proof.
    Ledger(Box<super::LedgerAnswer>),
    /// Why a ledger query has no answer.
    LedgerRefused(super::LedgerRefusal),
    /// The read's wait ended before this node held its positions: how far it holds each
    /// named chain (0: nothing of it).
    PositionNotReached {
        /// Per named author, the seq held here.
        holds: Vec<super::ChainPosition>,
    },
    /// A read without a token, where reads need one.
    Unauthenticated {
        /// Why, for the client.
        reason: String,
    },
}
