//! What a node is told when a call it asked for ends: the one mapping from a finished push,
//! probe, page fetch, copy, announcement or Codios request to the node's [`Input`], shared by
//! every shell (the runtime's actor, both simulators, the core's test harness), so a gap, a
//! refused copy or a failed announcement means the same to the node whichever shell made the
//! call.
//!
//! A shell names the call when it performs the output ([`Call`]) and, when the call ends, turns
//! its outcome into the input: [`Call::failed`] for anything that is not an answer (unreachable,
//! reset, timed out, refused, garbled), [`Call::finished`] for what the far side said
//! ([`Reply`]), or [`Call::answered`] where the shell holds the target node's own [`Response`]
//! (the simulators, which skip HTTP). A reply that does not fit its call is a failure, never
//! the success of another kind of call. Pure: no I/O, no clock.

use crate::auth::{AuthKey, Decision};
use crate::block::Verified;
use crate::chain::Position;
use crate::id::AgentId;

use super::{Failure, Input, Response};

/// A call the shell makes for one output, holding what the node must hear when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// An [`Output::Push`](super::Output::Push) of own blocks through `through`.
    Push {
        /// The peer.
        peer: AgentId,
        /// The last own seq sent.
        through: u64,
    },
    /// One batch of an [`Output::Copy`](super::Output::Copy).
    Copy {
        /// The new node.
        to: AgentId,
        /// The local offset of the last block sent.
        next: u64,
        /// Blocks sent.
        sent: u64,
    },
    /// An [`Output::Probe`](super::Output::Probe).
    Probe {
        /// The peer probed.
        peer: AgentId,
    },
    /// An [`Output::ProbeBack`](super::Output::ProbeBack).
    ProbeBack {
        /// The node that is dividing this one.
        divider: AgentId,
    },
    /// An [`Output::FetchPage`](super::Output::FetchPage).
    Fetch {
        /// The peer.
        peer: AgentId,
    },
    /// An [`Output::Announce`](super::Output::Announce).
    Announce {
        /// The member told.
        to: AgentId,
    },
    /// An [`Output::AskCodios`](super::Output::AskCodios).
    Codios {
        /// The key asked about.
        key: AuthKey,
    },
}

/// What the far side of a call answered, as the shell read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The target holds the pushed or copied blocks.
    Ingested,
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
        /// Its membership digest, if it sent one.
        digest: Option<u64>,
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
        members: Vec<crate::repl::peer::PeerInfo>,
    },
    /// Codios decided.
    Decided(Decision),
}

impl Reply {
    /// A short name for a failure's reason (a page's blocks are too long to print).
    fn what(&self) -> &'static str {
        match self {
            Reply::Ingested => "an ingest",
            Reply::Gap { .. } => "a gap",
            Reply::Probed { .. } => "a probe answer",
            Reply::Page { .. } => "a page",
            Reply::MembersUpdated { .. } => "a membership update",
            Reply::Decided(_) => "a Codios decision",
        }
    }
}

impl Call {
    /// The call ended without an answer it can use: `reason` says why.
    pub fn failed(self, reason: Failure) -> Input {
        match self {
            Call::Push { peer, .. } => Input::PushFailed { peer, reason },
            Call::Copy { to, .. } => Input::CopyFailed { to, reason },
            Call::Probe { peer } => Input::ProbeFailed { peer, reason },
            Call::Fetch { peer } => Input::FetchFailed { peer, reason },
            Call::ProbeBack { divider } => Input::ProbeBackFailed { divider, reason },
            Call::Announce { to } => Input::AnnounceFailed { to, reason },
            Call::Codios { key } => Input::CodiosFailed { key, reason },
        }
    }

    /// The far side answered `reply`.
    pub fn finished(self, reply: Reply) -> Input {
        match (self, reply) {
            (Call::Push { peer, through }, Reply::Ingested) => Input::PushAcked { peer, through },
            (Call::Push { peer, .. }, Reply::Gap { expected }) => Input::PushGap { peer, expected },
            (Call::Copy { to, next, sent }, Reply::Ingested) => Input::Copied { to, next, sent },
            // The new node starts empty, so a gap means the copy went wrong: start again.
            (Call::Copy { to, .. }, Reply::Gap { expected }) => Input::CopyFailed {
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
                    digest,
                },
            ) => Input::ProbeAnswered {
                peer,
                agent_id,
                holds,
                digest,
            },
            (Call::ProbeBack { divider }, Reply::Probed { agent_id, .. }) => Input::ProbedBack {
                divider,
                answered_as: agent_id,
            },
            (Call::Fetch { peer }, Reply::Page { blocks, next, tip }) => Input::PageFetched {
                peer,
                blocks,
                next,
                tip,
            },
            (Call::Announce { to }, Reply::MembersUpdated { members }) => {
                Input::Announced { to, members }
            }
            (Call::Codios { key }, Reply::Decided(decision)) => {
                Input::CodiosAnswered { key, decision }
            }
            (call, reply) => call.failed(Failure::Unfit(format!("answered with {}", reply.what()))),
        }
    }

    /// The call ended with `outcome`: a reply, or why there was none.
    pub fn ended(self, outcome: Result<Reply, Failure>) -> Input {
        match outcome {
            Ok(reply) => self.finished(reply),
            Err(reason) => self.failed(reason),
        }
    }

    /// The target node answered the request with `response` (as the mesh client reads the
    /// status its server maps that response to); any other answer is a failure.
    pub fn answered(self, response: Response) -> Input {
        let reply = match response {
            Response::Ingested { .. } => Reply::Ingested,
            Response::IngestRefused {
                position: Position::Gap { expected },
                ..
            } => Reply::Gap { expected },
            Response::ProbeAnswer {
                agent_id,
                holds,
                digest,
            } => Reply::Probed {
                agent_id,
                holds,
                digest: Some(digest),
            },
            Response::MembersUpdated { members, .. } => Reply::MembersUpdated { members },
            // The new node's own words reach the divider, as its HTTP answer does.
            Response::JoinRefused { reason } => return self.failed(Failure::Refused(reason)),
            other => return self.failed(Failure::Unfit(format!("answered {other:?}"))),
        };
        self.finished(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> AgentId {
        AgentId::new("peer").expect("valid id")
    }

    fn push() -> Call {
        Call::Push {
            peer: peer(),
            through: 9,
        }
    }

    #[test]
    fn the_ingest_answer_acknowledges_a_push_through_its_last_seq() {
        let input = push().answered(Response::Ingested {
            accepted: 2,
            duplicates: 0,
        });
        assert!(matches!(input, Input::PushAcked { through: 9, .. }));
    }

    #[test]
    fn a_gap_is_a_push_gap_but_a_failed_copy() {
        let gap = Reply::Gap { expected: 4 };
        assert!(matches!(
            push().finished(gap.clone()),
            Input::PushGap { expected: 4, .. }
        ));
        let copy = Call::Copy {
            to: peer(),
            next: 20,
            sent: 3,
        };
        let Input::CopyFailed { reason, .. } = copy.finished(gap) else {
            panic!("a copy refused with a gap must fail");
        };
        assert!(reason.to_string().contains("expected seq 4"), "{reason}");
    }

    #[test]
    fn an_answer_that_is_not_a_success_is_a_failure_that_names_it() {
        let Input::PushFailed { reason, .. } = push().answered(Response::StorageFailed) else {
            panic!("a push answered StorageFailed must fail");
        };
        assert_eq!(reason, Failure::Unfit("answered StorageFailed".into()));
    }

    #[test]
    fn a_reply_that_does_not_fit_its_call_is_a_failure() {
        let announce = Call::Announce { to: peer() };
        assert!(matches!(
            announce.finished(Reply::Ingested),
            Input::AnnounceFailed { .. }
        ));
        let probe = Call::Probe { peer: peer() };
        let Input::ProbeFailed { reason, .. } = probe.answered(Response::MembersUpdated {
            peers: 2,
            members: Vec::new(),
        }) else {
            panic!("a probe answered with a membership update must fail");
        };
        assert_eq!(
            reason,
            Failure::Unfit("answered with a membership update".into())
        );
    }
}
