//! The shell: how each core `Output` becomes an effect and comes back as an `Input`, exactly as
//! the runtime (`runtime/src/actor.rs`, `runtime/src/mesh.rs`) and the server's handlers
//! (`server/src/api/{mesh,cluster}.rs`) map them. A call ends as `CallEnded` under the id its
//! output carried, with the target's answer read as the mesh client reads it
//! ([`Reply::from_response`]), the mapping the runtime uses.
//!
//! - `Push { from..=to, head }` reads own blocks from the durable strand and delivers them (and
//!   the head, its MAC trusted) as the
//!   peer's `IngestRequested`; `Ingested` returns as `Reply::Ingested`,
//!   `IngestRefused { Gap { expected } }` as `Reply::Gap`, anything else as a failure.
//! - `Probe` → the peer's `ProbeRequested { author: me }` → `Reply::Probed`.
//! - `FetchPage { after }` is served from the peer's durable strand by its server (the core is
//!   not asked): blocks at offsets after `after`, at most `wire::MAX_BATCH`, `next` the last
//!   offset (or `after`), `tip` the strand tip → `Reply::Page`.
//! - `Copy { after }` sends at most 500 durable local blocks after `after` to the new node's
//!   ingest → `Reply::Copied { next, sent }`; an empty batch completes at once without a
//!   request.
//! - `Announce` → the member's `MembersAnnounced` → `Reply::MembersUpdated`.
//! - `PersistCursors` / `PersistCluster` → that node's state files, in order →
//!   `Reply::Stored`, or a `Failure::LocalStorage` on a broken disk.
//! - `Append` → the strand, completing in token order → `Appended` / `AppendFailed`.
//!
//! Every call carries the mesh client's timeout: whichever of the answer and the timeout
//! reaches the caller first is its outcome. A request can still reach its target after the
//! caller gave up, and a duplicated request is handled twice.
//!
//! This module is the mapping alone, the same for both drivers; performing an effect on the
//! world, and Layer 0's network, are the world's (`world/mesh.rs`, `world/heap.rs`).

use sapix_core::auth::AuthKey;
use sapix_core::block::Verified;
use sapix_core::ledger::VerifiedHead;
use sapix_core::node::{CallId, Event, Failure, Input, Output, Reply, RequestId, Response};
use sapix_core::repl::peer::PeerInfo;
use sapix_core::wire::MAX_BATCH;
use sapix_core::{AgentId, Role};

use crate::checkers::durable_sends;
use crate::storage::{StateWrite, Store};

/// A mesh call in flight, as its caller sees it.
#[derive(Debug)]
pub(crate) struct InFlight {
    pub(crate) from: usize,
    /// The caller's boot count when it called.
    pub(crate) inc: u32,
    pub(crate) kind: Asked,
}

/// One call a node asked for, as its shell holds it until it ends.
#[derive(Debug, Clone)]
pub(crate) struct Asked {
    /// The id its output carried.
    pub(crate) id: CallId,
    /// A copy batch's last offset and size, which the target's ingest answer stands for.
    pub(crate) copy: Option<(u64, u64)>,
    /// A Codios question's key (Codios decides on it).
    pub(crate) codios: Option<AuthKey>,
}

impl Asked {
    /// A mesh call.
    pub(crate) fn call(id: CallId) -> Self {
        Asked {
            id,
            copy: None,
            codios: None,
        }
    }

    /// The input the node gets when the call ends with `outcome`.
    pub(crate) fn ended(self, outcome: Result<Reply, Failure>) -> Input {
        let outcome = match self.copy {
            Some((next, sent)) => outcome.map(|r| r.of_copy(next, sent)),
            None => outcome,
        };
        Input::CallEnded {
            call: self.id,
            outcome,
        }
    }

    /// The call failed without an answer.
    pub(crate) fn failed(self, reason: Failure) -> Input {
        self.ended(Err(reason))
    }

    /// The far side answered `reply`.
    pub(crate) fn finished(self, reply: Reply) -> Input {
        self.ended(Ok(reply))
    }

    /// The target node answered `response`, read as the mesh client reads its HTTP answer.
    pub(crate) fn answered(self, response: Response) -> Input {
        self.ended(Reply::from_response(response))
    }
}

/// What travels to the target.
#[derive(Debug, Clone)]
pub(crate) enum Req {
    Ingest(Vec<Verified>, Option<VerifiedHead>),
    Probe(AgentId),
    Export(u64, usize),
    Members {
        from: AgentId,
        members: Vec<PeerInfo>,
        your_role: Option<Role>,
        cursors: Vec<(AgentId, u64)>,
    },
}

/// The server's answer to an export request, read from the durable strand (the core is not
/// asked): a page of the blocks after `after`, at most `MAX_BATCH`.
pub(crate) fn export(store: &Store, after: u64, limit: usize) -> Reply {
    let (blocks, next) = store.page(after, limit.min(MAX_BATCH));
    let tip = store.tip().max(next);
    Reply::Page { blocks, next, tip }
}

impl Req {
    /// The input a request other than an export becomes at the target's server.
    pub(crate) fn into_input(self, request: RequestId) -> Input {
        match self {
            Req::Ingest(blocks, head) => Input::IngestRequested {
                request,
                blocks,
                head,
            },
            Req::Probe(author) => Input::ProbeRequested { request, author },
            Req::Members {
                from,
                members,
                your_role,
                cursors,
            } => Input::MembersAnnounced {
                request,
                from: Some(from),
                members,
                your_role,
                cursors,
            },
            Req::Export(..) => unreachable!("exports are served from the strand"),
        }
    }
}

/// What one output asks of the shell, decided from the node's own disk; each driver carries
/// it out over its own network, disk timing and clients.
#[derive(Debug)]
pub(crate) enum Effect {
    /// Hand an append to the strand.
    Append {
        token: sapix_core::node::AppendToken,
        blocks: Vec<sapix_core::Block>,
    },
    /// The strand takes appends again after a full disk.
    ResumeAppends,
    /// Hand a state-file write to the persister.
    Persist(StateWrite),
    /// A mesh call.
    Call {
        endpoint: String,
        kind: Asked,
        req: Req,
    },
    /// A completion without the network (as the runtime's tasks produce).
    Local(Input),
    /// A broken invariant seen in the output itself; the node still hears `input`.
    Broken {
        checker: &'static str,
        message: String,
        input: Input,
    },
    /// An answer to a peer's or a client's request.
    Respond {
        request: RequestId,
        response: Response,
    },
    /// A log line, for the checkers.
    Log(Event),
    /// A Codios call (a driver without a Codios model answers it with a failure).
    AskCodios(CallId, AuthKey),
    /// Nothing to do.
    Nothing,
}

/// What node `me`'s output `out` asks for, with `store` its disk.
pub(crate) fn effect(out: Output, store: &Store, me: &AgentId) -> Effect {
    match out {
        Output::Append { token, blocks } => Effect::Append { token, blocks },
        Output::ResumeAppends => Effect::ResumeAppends,
        Output::Push {
            call,
            endpoint,
            from,
            to,
            head,
            ..
        } => {
            let kind = Asked::call(call);
            match store.own_range(me, from, to) {
                // Heads are MACs here: the shell's check is the identity (see `trusted`).
                Ok(blocks) => Effect::Call {
                    endpoint,
                    kind,
                    req: Req::Ingest(blocks, head.map(VerifiedHead::trusted)),
                },
                Err(missing) => {
                    let message = durable_sends::push_of_non_durable(me, from, to, missing);
                    let input = kind.failed(Failure::NotSent(message.clone()));
                    Effect::Broken {
                        checker: "durable_sends",
                        message,
                        input,
                    }
                }
            }
        }
        Output::Probe { call, endpoint, .. } | Output::ProbeBack { call, endpoint, .. } => {
            Effect::Call {
                endpoint,
                kind: Asked::call(call),
                req: Req::Probe(me.clone()),
            }
        }
        Output::FetchPage {
            call,
            endpoint,
            after,
            limit,
            ..
        } => Effect::Call {
            endpoint,
            kind: Asked::call(call),
            req: Req::Export(after, limit),
        },
        Output::PersistCursors { call, cursors, .. } => Effect::Persist(StateWrite::Cursors {
            cursors: cursors.into_iter().collect(),
            call,
        }),
        Output::PersistCluster { call, state, .. } => {
            Effect::Persist(StateWrite::Cluster { state, call })
        }
        Output::PersistHead { head } => Effect::Persist(StateWrite::Head(head)),
        Output::PersistWitnessed { heads } => Effect::Persist(StateWrite::Witnessed(heads)),
        // Not modelled (see `Store::restored`); the equivocation is in the log.
        Output::KeepEvidence { .. } => Effect::Nothing,
        Output::Copy {
            call,
            endpoint,
            after,
            limit,
            ..
        } => {
            // Blocks are small here: the count bounds a batch before the bytes would.
            let (blocks, next) = store.page(after, limit.blocks);
            let sent = blocks.len() as u64;
            let kind = Asked {
                copy: Some((next, sent)),
                ..Asked::call(call)
            };
            if blocks.is_empty() {
                // Nothing left to copy: the batch is done without a request.
                Effect::Local(kind.finished(Reply::Ingested { witnessed: None }))
            } else {
                Effect::Call {
                    endpoint,
                    kind,
                    req: Req::Ingest(blocks, None),
                }
            }
        }
        Output::Announce {
            call,
            endpoint,
            members,
            your_role,
            cursors,
            ..
        } => Effect::Call {
            endpoint,
            kind: Asked::call(call),
            req: Req::Members {
                from: me.clone(),
                members,
                your_role,
                cursors,
            },
        },
        Output::AskCodios { call, key } => Effect::AskCodios(call, key),
        Output::Respond { request, response } => Effect::Respond { request, response },
        Output::Log(event) => Effect::Log(event),
    }
}

/// A connection that broke before its answer (a crash or a partition mid-call).
pub(crate) fn reset() -> Failure {
    Failure::Broken("connection reset".into())
}

/// A connection that could not be made (the target is down or cut off).
pub(crate) fn refused() -> Failure {
    Failure::Unreachable("connection refused".into())
}
