//! The shell: how each core `Output` becomes an effect and comes back as an `Input`, exactly as
//! the runtime (`runtime/src/actor.rs`, `runtime/src/mesh.rs`) and the server's handlers
//! (`server/src/api/{mesh,cluster}.rs`) map them. A call ends as `CallEnded` under the id its
//! output carried, with the target's answer read as the mesh client reads it
//! ([`Reply::from_response`]), the mapping the runtime uses.
//!
//! - `Push { from..=to }` reads own blocks from the durable strand and delivers them as the
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
//!   `CursorPersisted` / `ClusterPersisted`.
//! - `Append` → the strand, completing in token order → `Appended` / `AppendFailed`.
//!
//! Every call carries the mesh client's timeout: whichever of the answer and the timeout
//! reaches the caller first is its outcome. A request can still reach its target after the
//! caller gave up, and a duplicated request is handled twice.

use std::collections::BTreeMap;

use rand::Rng;
use sapix_core::auth::AuthKey;
use sapix_core::block::Verified;
use sapix_core::node::{CallId, Event, Failure, Input, Output, Reply, RequestId, Response};
use sapix_core::repl::peer::PeerInfo;
use sapix_core::wire::MAX_BATCH;
use sapix_core::{AgentId, Role};

use crate::checkers::{self, answered, durable_sends};
use crate::config::Micros;
use crate::driver::Driver;
use crate::overrides::Class;
use crate::storage::{StateWrite, Store};
use crate::world::{Ev, Heap, World};

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
    Ingest(Vec<Verified>),
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
            Req::Ingest(blocks) => Input::IngestRequested { request, blocks },
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
}

/// What node `me`'s output `out` asks for, with `store` its disk.
pub(crate) fn effect(out: Output, store: &Store, me: &AgentId) -> Effect {
    match out {
        Output::Append { token, blocks } => Effect::Append { token, blocks },
        Output::Push {
            call,
            endpoint,
            from,
            to,
            ..
        } => {
            let kind = Asked::call(call);
            match store.own_range(me, from, to) {
                Ok(blocks) => Effect::Call {
                    endpoint,
                    kind,
                    req: Req::Ingest(blocks),
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
        Output::PersistCursors {
            cursors,
            peer,
            cursor,
        } => Effect::Persist(StateWrite::Cursors {
            cursors: cursors.into_iter().collect(),
            peer,
            cursor,
        }),
        Output::PersistCluster { version, state } => {
            Effect::Persist(StateWrite::Cluster { state, version })
        }
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
                Effect::Local(kind.finished(Reply::Ingested))
            } else {
                Effect::Call {
                    endpoint,
                    kind,
                    req: Req::Ingest(blocks),
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

impl<D> World<D>
where
    World<D>: Driver,
{
    /// Performs one output of node `i`.
    pub(crate) fn perform(&mut self, i: usize, out: Output) {
        let me = self.hosts[i].agent.clone();
        match effect(out, &self.stores[i], &me) {
            Effect::Append { token, blocks } => {
                let r = checkers::chain_intact::check_append(&self.stores[i], &blocks);
                self.check("chain_intact", r);
                let done = self.fsync_latency() + self.stores[i].last_append_done.max(self.now);
                self.stores[i].last_append_done = done;
                self.stores[i].begin_append(token, blocks);
                self.append_at(i, done);
            }
            Effect::Persist(w) => {
                let (lo, hi) = self.cfg.nodes.persist;
                let d = self.storage_rng.gen_range(lo..=hi);
                let done = self.stores[i].last_write_done.max(self.now) + d;
                self.stores[i].last_write_done = done;
                self.stores[i].begin_write(w);
                self.write_at(i, done);
            }
            Effect::Call {
                endpoint,
                kind,
                req,
            } => self.call(i, &endpoint, kind, req),
            Effect::Local(input) => self.local(i, input),
            Effect::Broken {
                checker,
                message,
                input,
            } => {
                self.fail(checker, message);
                self.local(i, input);
            }
            Effect::Respond { request, response } => self.respond(i, request, response),
            Effect::Log(event) => {
                if let Event::WriteAuthorized {
                    request,
                    key,
                    degraded,
                } = &event
                {
                    self.write_authorized(i, *request, key, *degraded);
                }
                let v = self.checks.logged(i, &event);
                self.verdict(v);
            }
            Effect::AskCodios(call, key) => {
                if self.codios.on() {
                    self.hosts[i].codios_asks.insert(call, key.clone());
                    self.ask_codios(i, call, key);
                } else {
                    // A node in local mode never asks; answer as a shell without Codios would.
                    let failure = Failure::NotSent("no Codios configured".into());
                    self.local(i, Asked::call(call).failed(failure));
                }
            }
        }
    }

    fn fsync_latency(&mut self) -> Micros {
        let (lo, hi) = self.cfg.nodes.fsync;
        let mut d = self.storage_rng.gen_range(lo..=hi);
        let slow = self.cfg.nodes.slow_fsync;
        if Self::SLOW_FSYNC && slow > 0.0 && self.storage_rng.gen_bool(slow) {
            self.coverage.fire(Class::SlowFsync);
            d += self.storage_rng.gen_range(0..=250_000);
        }
        d
    }

    /// Node `i` answered `request`: back to the peer that called, or to a client.
    fn respond(&mut self, i: usize, request: RequestId, response: Response) {
        if let Some((call, from)) = self.hosts[i].server.remove(&request) {
            self.reply(i, from, call, response);
            return;
        }
        match answered::answer(&mut self.hosts[i].clients, request, i) {
            Ok(client) => self.client_answered(i, client, response),
            Err(m) => self.fail("answered", m),
        }
    }
}

/// Layer 0: every fact travels as an event on the heap, over the network model's links
/// ([`crate::network::Network`]).
impl Driver for World<Heap> {
    const SLOW_FSYNC: bool = true;

    fn feed(&mut self, i: usize, input: Input) {
        let host = &mut self.hosts[i];
        if host.node.is_none() {
            return;
        }
        if self.now < host.paused_until {
            host.deferred.push_back(input);
            return;
        }
        self.trace.mix(i as u64);
        self.handle(i, input);
    }

    fn wake(&mut self, i: usize) {
        if !self.up(i) {
            self.hosts[i].wake = None;
            return;
        }
        self.woken(i);
    }

    /// The step loop reads every node's wakeup itself.
    fn arm(&mut self, _: usize) {}

    fn local(&mut self, node: usize, input: Input) {
        let inc = self.hosts[node].inc;
        self.schedule(self.now, Ev::Local { node, inc, input });
    }

    fn client_request(&mut self, i: usize, input: Input) {
        self.feed(i, input);
    }

    /// Sends the request over the network model, with the mesh client's timeout.
    fn call(&mut self, from: usize, endpoint: &str, kind: Asked, req: Req) {
        let timeout = self.d.net.timeout();
        let call = self.register_call(from, kind, timeout);
        let Some(to) = self.index_of_endpoint(endpoint) else {
            return;
        };
        if self.d.net.duplicate() {
            self.coverage.fire(Class::Dup);
            if let Some(d) = self.d.net.send(from, to) {
                self.trace.line(self.now, || {
                    format!("net n{from}->n{to} #{call} duplicated")
                });
                let req = req.clone();
                self.schedule(
                    self.now + d,
                    Ev::Arrive {
                        call,
                        from,
                        to,
                        req,
                    },
                );
            }
        }
        match self.d.net.send(from, to) {
            Some(d) => self.schedule(
                self.now + d,
                Ev::Arrive {
                    call,
                    from,
                    to,
                    req,
                },
            ),
            None => self
                .trace
                .line(self.now, || format!("net n{from}->n{to} #{call} lost")),
        }
    }

    fn reply(&mut self, i: usize, from: usize, call: u64, response: Response) {
        if let Some(c) = self.d.calls.get(&call) {
            let input = c.kind.clone().answered(response);
            self.send_reply(call, from, i, input);
        }
    }

    fn append_at(&mut self, i: usize, at: Micros) {
        let inc = self.hosts[i].inc;
        self.schedule(at, Ev::AppendDone { node: i, inc });
    }

    fn write_at(&mut self, i: usize, at: Micros) {
        let inc = self.hosts[i].inc;
        self.schedule(at, Ev::WriteDone { node: i, inc });
    }

    fn ask_codios(&mut self, i: usize, call: CallId, key: AuthKey) {
        self.call_codios(i, call, key);
    }

    /// Its callers' connections are reset.
    fn died(&mut self, i: usize, serving: BTreeMap<RequestId, (u64, usize)>) {
        for (_, (call, from)) in serving {
            if let Some(c) = self.d.calls.get(&call) {
                let input = c.kind.clone().failed(reset());
                if let Some(d) = self.d.net.send(i, from) {
                    self.schedule(self.now + d, Ev::Reply { call, input });
                }
            }
        }
    }
}

impl World<Heap> {
    fn register(&mut self, from: usize, kind: Asked) -> u64 {
        self.next_call += 1;
        let call = self.next_call;
        let inc = self.hosts[from].inc;
        self.d.calls.insert(call, InFlight { from, inc, kind });
        call
    }

    /// Registers a call of node `from` that times out after `timeout`.
    pub(crate) fn register_call(&mut self, from: usize, kind: Asked, timeout: Micros) -> u64 {
        let call = self.register(from, kind);
        self.schedule(self.now + timeout, Ev::Timeout { call });
        call
    }

    fn send_reply(&mut self, call: u64, from: usize, to: usize, input: Input) {
        match self.d.net.send(to, from) {
            Some(d) => self.schedule(self.now + d, Ev::Reply { call, input }),
            None => self.trace.line(self.now, || {
                format!("net n{to}->n{from} reply #{call} lost")
            }),
        }
    }

    /// A request reaches node `to`'s server.
    pub(crate) fn arrive(&mut self, call: u64, from: usize, to: usize, req: Req) {
        if !self.up(to) {
            if let Some(c) = self.d.calls.get(&call) {
                let input = c.kind.clone().failed(refused());
                self.send_reply(call, from, to, input);
            }
            return;
        }
        if let Req::Export(after, limit) = req {
            let page = export(&self.stores[to], after, limit);
            if let Some(c) = self.d.calls.get(&call) {
                let input = c.kind.clone().finished(page);
                self.send_reply(call, from, to, input);
            }
            return;
        }
        let request = self.server_request(to, call, from);
        let input = req.into_input(request);
        self.feed(to, input);
    }

    fn server_request(&mut self, to: usize, call: u64, from: usize) -> RequestId {
        let request = self.new_request();
        self.hosts[to].server.insert(request, (call, from));
        request
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
