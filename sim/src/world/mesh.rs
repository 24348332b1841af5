//! The shell's glue: each output a node queues is performed on the world — its effect
//! (`crate::mesh::effect`) decided from the node's disk, its disk timing drawn, its answer routed
//! back to a peer or judged as a client's — and, on Layer 0, a mesh call travels over the
//! network model with the mesh client's timeout.

use rand::Rng;
use sapix_core::node::{Event, Failure, Input, Output, RequestId, Response};

use super::heap::{Ev, Heap};
use super::{Driver, World};
use crate::checkers::{self, answered};
use crate::config::Micros;
use crate::mesh::{effect, export, refused, Asked, Effect, InFlight, Req};
use crate::overrides::Class;

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
            Effect::ResumeAppends => self.stores[i].resume(),
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
                let v = self.checks.logged(i, &me, &event);
                self.verdict(v);
            }
            Effect::Nothing => {}
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

    /// Node `i` answered `request`: back to the peer that called, or to a client (the
    /// forger listens to no answer).
    fn respond(&mut self, i: usize, request: RequestId, response: Response) {
        if self.hosts[i].forged.remove(&request) {
            return;
        }
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

    /// Node `to`'s answer `input` to call `call` travels back to its caller `from`, unless the
    /// network loses it.
    pub(super) fn send_reply(&mut self, call: u64, from: usize, to: usize, input: Input) {
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
