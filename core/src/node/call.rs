//! The calls a node asks its shell to make, and how each one's end reaches the node.
//!
//! Every mesh and Codios output carries a [`CallId`]; the node keeps what it asked under that
//! id ([`Call`]) and the shell reports the end with [`Input::CallEnded`]: the far side's
//! answer as the shell read it ([`Reply`]), or why there is none ([`Failure`]). The shell
//! never names the peer or rebuilds the call, so an answer reaches exactly the call that asked
//! for it (a divide's probe and a peer's probe of the same node stay apart). A reply that does
//! not fit its call is a failure, never the success of another kind of call. Pure: no I/O, no
//! clock.

use std::collections::BTreeMap;

use crate::auth::{AuthKey, Decision};
use crate::block::{Hash, Verified};
use crate::id::AgentId;
use crate::ledger::{HeadPublicKey, Witnessed};
use crate::repl::peer::PeerInfo;

use super::{Failure, Reply};

/// Names one call a node asked for; echoed in [`Input::CallEnded`](super::Input::CallEnded).
/// Unique for the life of a [`Node`](super::Node).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallId(pub u64);

impl core::fmt::Display for CallId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "call {}", self.0)
    }
}

/// What the node asked for in one call, kept until the call ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Call {
    /// An [`Output::Push`](super::Output::Push) of own blocks through `through`, carrying
    /// the own head (seq, key) `head` if it did.
    Push {
        peer: AgentId,
        through: u64,
        head: Option<(u64, HeadPublicKey)>,
    },
    /// One batch of an [`Output::Copy`](super::Output::Copy).
    Copy { to: AgentId },
    /// An [`Output::Probe`](super::Output::Probe) of a peer.
    Probe { peer: AgentId },
    /// A divide's [`Output::Probe`](super::Output::Probe) of the node it adds: does it answer
    /// as itself?
    Verify { new: AgentId },
    /// A divide's [`Output::Announce`](super::Output::Announce) to the node it adds.
    Tell { new: AgentId },
    /// An [`Output::ProbeBack`](super::Output::ProbeBack).
    ProbeBack { divider: AgentId },
    /// An [`Output::FetchPage`](super::Output::FetchPage).
    Fetch { peer: AgentId },
    /// An [`Output::Announce`](super::Output::Announce).
    Announce { to: AgentId },
    /// An [`Output::AskCodios`](super::Output::AskCodios).
    Codios { key: AuthKey },
    /// An [`Output::PersistCursors`](super::Output::PersistCursors) that moves `peer`'s cursor.
    Cursors { peer: AgentId, cursor: u64 },
    /// An [`Output::PersistCluster`](super::Output::PersistCluster) of this version.
    Cluster { version: u64 },
}

/// The calls in flight, by id.
#[derive(Debug, Default)]
pub(super) struct Calls {
    last: u64,
    open: BTreeMap<CallId, Call>,
}

impl Calls {
    /// Records `call` and names it.
    pub(super) fn open(&mut self, call: Call) -> CallId {
        self.last += 1;
        let id = CallId(self.last);
        self.open.insert(id, call);
        id
    }

    /// The call `id` ended: what it asked, unless it already ended (a shell reporting twice).
    pub(super) fn close(&mut self, id: CallId) -> Option<Call> {
        self.open.remove(&id)
    }

    /// How many calls are in flight.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.open.len()
    }
}

/// What the disk said about a state-file write that failed.
fn disk_words(reason: Failure) -> String {
    match reason {
        Failure::LocalStorage(words) => words,
        other => other.to_string(),
    }
}

/// How a call ended, as the node acts on it.
#[derive(Debug)]
pub(super) enum Done {
    /// `sync_cursors.json` is durable with `peer`'s `cursor`.
    CursorPersisted { peer: AgentId, cursor: u64 },
    /// Writing `sync_cursors.json` failed: the cursor is not durable.
    CursorPersistFailed {
        peer: AgentId,
        cursor: u64,
        reason: String,
    },
    /// The cluster view `version` is durable.
    ClusterPersisted { version: u64 },
    /// Writing the cluster view `version` failed.
    ClusterPersistFailed { version: u64, reason: String },
    /// The node a divide adds answered its probe as `answered_as`.
    Verified {
        new: AgentId,
        answered_as: AgentId,
        head_key: Option<HeadPublicKey>,
    },
    /// The divide's probe of the node it adds failed.
    VerifyFailed { new: AgentId, reason: Failure },
    /// The node a divide adds recorded the membership; every entry it holds now.
    Told {
        new: AgentId,
        members: Vec<PeerInfo>,
    },
    /// The divide's announcement to the node it adds failed (its own words, if it refused).
    TellFailed { new: AgentId, reason: Failure },
    /// A peer durably holds this node's blocks through `through`.
    PushAcked {
        /// The peer.
        peer: AgentId,
        /// The last seq it now holds.
        through: u64,
        /// The own head (seq, key) the push carried, if any.
        head: Option<(u64, HeadPublicKey)>,
        /// Its cosignature of that head, if it witnessed it.
        witnessed: Option<Witnessed>,
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
        /// The hash it holds at that seq, if it said.
        tip: Option<Hash>,
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
    /// An announcement was accepted.
    Announced {
        /// The member told.
        to: AgentId,
        /// Every membership entry it holds after taking the announcement.
        members: Vec<PeerInfo>,
    },
    /// An announcement failed; it is retried.
    AnnounceFailed {
        /// The member.
        to: AgentId,
        /// Why (for a divide's announcement, the new node's own words).
        reason: Failure,
    },
    /// The node that divided this one answered this node's
    /// probe-back.
    ProbedBack {
        /// The divider.
        divider: AgentId,
        /// The id the far side answered as.
        answered_as: AgentId,
        /// How much of this node's chain it holds.
        holds: u64,
        /// Its membership digest, if it sent one.
        digest: Option<u64>,
    },
    /// An probe-back failed.
    ProbeBackFailed {
        /// The divider.
        divider: AgentId,
        /// Why.
        reason: Failure,
    },
    /// Codios answered an Codios question for `key`.
    CodiosAnswered {
        /// The key asked about.
        key: AuthKey,
        /// What Codios decided.
        decision: Decision,
    },
    /// An Codios question for `key` failed: network error, timeout,
    /// non-2xx answer or a garbled body. Never a permit.
    CodiosFailed {
        /// The key asked about.
        key: AuthKey,
        /// For the log.
        reason: Failure,
    },
}

impl Call {
    /// The call ended with `outcome`: a reply, or why there was none.
    pub(super) fn ended(self, outcome: Result<Reply, Failure>) -> Done {
        match outcome {
            Ok(reply) => self.finished(reply),
            Err(reason) => self.failed(reason),
        }
    }

    /// The call ended without an answer it can use: `reason` says why.
    fn failed(self, reason: Failure) -> Done {
        match self {
            Call::Push { peer, .. } => Done::PushFailed { peer, reason },
            Call::Copy { to } => Done::CopyFailed { to, reason },
            Call::Probe { peer } => Done::ProbeFailed { peer, reason },
            Call::Fetch { peer } => Done::FetchFailed { peer, reason },
            Call::ProbeBack { divider } => Done::ProbeBackFailed { divider, reason },
            Call::Announce { to } => Done::AnnounceFailed { to, reason },
            Call::Verify { new } => Done::VerifyFailed { new, reason },
            Call::Tell { new } => Done::TellFailed { new, reason },
            Call::Codios { key } => Done::CodiosFailed { key, reason },
            Call::Cursors { peer, cursor } => Done::CursorPersistFailed {
                peer,
                cursor,
                reason: disk_words(reason),
            },
            Call::Cluster { version } => Done::ClusterPersistFailed {
                version,
                reason: disk_words(reason),
            },
        }
    }

    /// The far side answered `reply`.
    fn finished(self, reply: Reply) -> Done {
        match (self, reply) {
            (
                Call::Push {
                    peer,
                    through,
                    head,
                },
                Reply::Ingested { witnessed },
            ) => Done::PushAcked {
                peer,
                through,
                head,
                witnessed,
            },
            (Call::Push { peer, .. }, Reply::Gap { expected }) => Done::PushGap { peer, expected },
            (Call::Copy { to }, Reply::Copied { next, sent }) => Done::Copied { to, next, sent },
            // The new node starts empty, so a gap means the copy went wrong: start again.
            (Call::Copy { to }, Reply::Gap { expected }) => Done::CopyFailed {
                to,
                reason: Failure::Unfit(format!(
                    "the new node refused the copy: expected seq {expected}"
                )),
            },
            (
                Call::Probe { peer },
                Reply::Probed {
                    agent_id,
                    holds,
                    tip,
                    digest,
                    ..
                },
            ) => Done::ProbeAnswered {
                peer,
                agent_id,
                holds,
                tip,
                digest,
            },
            (
                Call::ProbeBack { divider },
                Reply::Probed {
                    agent_id,
                    holds,
                    digest,
                    ..
                },
            ) => Done::ProbedBack {
                divider,
                answered_as: agent_id,
                holds,
                digest,
            },
            (Call::Fetch { peer }, Reply::Page { blocks, next, tip }) => Done::PageFetched {
                peer,
                blocks,
                next,
                tip,
            },
            (Call::Announce { to }, Reply::MembersUpdated { members }) => {
                Done::Announced { to, members }
            }
            (
                Call::Verify { new },
                Reply::Probed {
                    agent_id, head_key, ..
                },
            ) => Done::Verified {
                new,
                answered_as: agent_id,
                head_key,
            },
            (Call::Tell { new }, Reply::MembersUpdated { members }) => Done::Told { new, members },
            (Call::Codios { key }, Reply::Decided(decision)) => {
                Done::CodiosAnswered { key, decision }
            }
            (Call::Cursors { peer, cursor }, Reply::Stored) => {
                Done::CursorPersisted { peer, cursor }
            }
            (Call::Cluster { version }, Reply::Stored) => Done::ClusterPersisted { version },
            (call, reply) => call.failed(Failure::Unfit(format!("answered with {}", reply.what()))),
        }
    }
}

#[cfg(test)]
mod tests;
