//! What goes into a [`Node`](super::Node): facts, named in the past tense, and the ids that
//! tie a completion to what asked for it. Every output the shell completes comes back as an
//! input naming the same thing: a call (mesh, Codios, state file) its [`CallId`], an append
//! its [`AppendToken`]. A [`RequestId`] is answered by exactly one
//! [`Output::Respond`](super::Output::Respond).

use crate::auth::Credential;
use crate::block::Verified;
use crate::id::{AgentId, Collection};
use crate::repl::peer::PeerInfo;
use crate::status::{Consistency, Role};
use crate::time::UnixMillis;

use super::{CallId, Failure, Reply};

/// Identifies one client or peer request; chosen by the shell, echoed in
/// [`Output::Respond`](super::Output::Respond).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// Identifies one [`Output::Append`](super::Output::Append); echoed in [`Input::Appended`]. Issued
/// in increasing order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
    /// A client asked to read records of `collection` (the shell has found them). The node
    /// answers [`Response::ReadAllowed`](super::Response::ReadAllowed), or refuses like a write
    /// ([`Response::Denied`](super::Response::Denied),
    /// [`Response::AuthUnavailable`](super::Response::AuthUnavailable)), or
    /// [`Response::Unauthenticated`](super::Response::Unauthenticated) without a token.
    ReadRequested {
        /// Echoed in the answer.
        request: RequestId,
        /// Who asks: the hash of the request's bearer token, if it sent one.
        credential: Option<Credential>,
        /// The collection of the records found; `None` when nothing was found (only whether
        /// a token is needed is decided then).
        collection: Option<Collection>,
    },
    /// A read named chain positions (read-your-writes): answer
    /// [`Response::PositionReached`](super::Response::PositionReached) once every named chain
    /// is durable here through its seq, or
    /// [`Response::PositionNotReached`](super::Response::PositionNotReached) when `wait` (at
    /// most [`MAX_POSITION_WAIT`](super::MAX_POSITION_WAIT)) ends first.
    PositionsWanted {
        /// Echoed in the answer.
        request: RequestId,
        /// The positions the read needs.
        positions: Vec<super::ChainPosition>,
        /// How long the client will wait.
        wait: std::time::Duration,
    },
    /// `POST /v1/cluster/rotate-head-key`: `next` (drawn and written to disk by the shell)
    /// becomes this node's head key, signed in by the current one; answered with
    /// [`Response::HeadKeyRotated`](super::Response::HeadKeyRotated) once the membership
    /// carrying it is persisted, or [`Response::RotateRefused`](super::Response::RotateRefused).
    RotateHeadKey {
        /// Echoed in the answer.
        request: RequestId,
        /// The new key.
        next: crate::ledger::HeadKey,
    },
    /// A client asks for heads or a proof; answered with
    /// [`Response::Ledger`](super::Response::Ledger) or
    /// [`Response::LedgerRefused`](super::Response::LedgerRefused).
    LedgerWanted {
        /// Echoed in the answer.
        request: RequestId,
        /// What it asks.
        query: super::LedgerQuery,
    },
    /// A peer pushed blocks (already verified: see [`Verified`]).
    IngestRequested {
        /// Echoed in the answer.
        request: RequestId,
        /// The blocks, in the order sent.
        blocks: Vec<Verified>,
        /// The pusher's head of its own chain to witness, its signature checked.
        head: Option<crate::ledger::VerifiedHead>,
    },
    /// An [`Output::Append`](super::Output::Append) is durable; `offsets` are the local offsets of
    /// its blocks.
    Appended {
        /// The append's token.
        token: AppendToken,
        /// One offset per block, in order.
        offsets: Vec<u64>,
    },
    /// An [`Output::Append`](super::Output::Append) failed.
    AppendFailed {
        /// The append's token.
        token: AppendToken,
        /// What the storage said, for the log.
        reason: String,
        /// The disk was full: nothing of this append, nor of any issued after it, was stored,
        /// and the strand takes appends again after
        /// [`Output::ResumeAppends`](super::Output::ResumeAppends). The node rolls those
        /// appends back and refuses their answers as full; later writes are tried again.
        /// Otherwise storage is unusable: the node refuses all writes until restarted.
        full: bool,
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
    /// An operator asked how a divide is going (`GET /v1/cluster/divide/progress`).
    DivideProgressRequested {
        /// Echoed in the answer.
        request: RequestId,
    },
    /// An operator asked to remove a member for good (`DELETE /v1/cluster/members/{id}`).
    RemoveRequested {
        /// Echoed in the answer.
        request: RequestId,
        /// The member.
        agent_id: AgentId,
    },
    /// A call the node asked for ended: a push, probe, probe-back, page fetch, copy batch,
    /// announcement, Codios question or state-file write. `call` is the [`CallId`] its output carried; `outcome`
    /// is what the far side answered as the shell read it, or why there is no answer.
    CallEnded {
        /// The output's id.
        call: CallId,
        /// The answer, or why there is none.
        outcome: Result<Reply, Failure>,
    },
}
