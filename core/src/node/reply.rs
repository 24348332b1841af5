//! What the far side of a call answered, as a shell reports it in
//! [`Input::CallEnded`](super::Input::CallEnded).

use crate::auth::Decision;
use crate::block::{Hash, Verified};
use crate::chain::Position;
use crate::id::AgentId;
use crate::ledger::{HeadPublicKey, Witnessed};
use crate::repl::peer::PeerInfo;

use super::{Failure, Response};

/// What the far side of a call answered, as the shell read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The target holds the pushed blocks; with its cosignature of the head the push carried,
    /// if it witnessed it (the shell checked the signature against that head).
    Ingested {
        /// The head and its cosignature.
        witnessed: Option<Witnessed>,
    },
    /// The target holds a copied batch: the shell read it from the strand, so it says what the
    /// batch was (see [`Reply::of_copy`]).
    Copied {
        /// The local offset of the last block sent (the `after` asked for when none were).
        next: u64,
        /// Blocks sent; 0 when nothing was left to copy (no request was made).
        sent: u64,
    },
    /// The target refused the blocks: it lacks the author's chain from `expected` on.
    Gap {
        /// The first seq it lacks.
        expected: u64,
    },
    /// A probe's answer.
    Probed {
        /// Who answered.
        agent_id: AgentId,
        /// The last seq of the prober's chain it holds.
        holds: u64,
        /// The hash it holds at that seq, if it sent one (agents before it did not).
        tip: Option<Hash>,
        /// Its membership digest, if it sent one.
        digest: Option<u64>,
        /// Its head key, if it sent one (agents before enrolment did not).
        head_key: Option<HeadPublicKey>,
    },
    /// A page of the target's export, its blocks verified by the shell.
    Page {
        /// The blocks, in the target's order.
        blocks: Vec<Verified>,
        /// The cursor after this page.
        next: u64,
        /// The target's tip.
        tip: u64,
    },
    /// The target took the membership announcement; every entry it holds now.
    MembersUpdated {
        /// Its entries.
        members: Vec<PeerInfo>,
    },
    /// Codios decided.
    Decided(Decision),
    /// A state file is durable.
    Stored,
}

impl Reply {
    /// The reply to a copy batch of `sent` blocks ending at local offset `next`: the target's
    /// [`Reply::Ingested`] becomes [`Reply::Copied`]; any other answer stays as it is.
    pub fn of_copy(self, next: u64, sent: u64) -> Reply {
        match self {
            Reply::Ingested { .. } => Reply::Copied { next, sent },
            other => other,
        }
    }

    /// What the target node's own [`Response`] to the request says, as the mesh client reads
    /// the status its server maps that response to (the simulators skip HTTP).
    pub fn from_response(response: Response) -> Result<Reply, Failure> {
        match response {
            Response::Ingested { witnessed, .. } => Ok(Reply::Ingested { witnessed }),
            Response::IngestRefused {
                position: Position::Gap { expected },
                ..
            } => Ok(Reply::Gap { expected }),
            Response::ProbeAnswer {
                agent_id,
                holds,
                tip,
                digest,
                head_key,
            } => Ok(Reply::Probed {
                agent_id,
                holds,
                tip,
                digest: Some(digest),
                head_key: Some(head_key),
            }),
            Response::MembersUpdated { members, .. } => Ok(Reply::MembersUpdated { members }),
            // The new node's own words reach the divider, as its HTTP answer does.
            Response::JoinRefused { reason } => Err(Failure::Refused(reason)),
            other => Err(Failure::Unfit(format!("answered {other:?}"))),
        }
    }

    /// A short name for a failure's reason (a page's blocks are too long to print).
    pub(super) fn what(&self) -> &'static str {
        match self {
            Reply::Ingested { .. } => "an ingest",
            Reply::Copied { .. } => "a copied batch",
            Reply::Gap { .. } => "a gap",
            Reply::Probed { .. } => "a probe answer",
            Reply::Page { .. } => "a page",
            Reply::MembersUpdated { .. } => "a membership update",
            Reply::Decided(_) => "a Codios decision",
            Reply::Stored => "a state-file write",
        }
    }
}
