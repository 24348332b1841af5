//! Layer 0's driver (`World<Heap>`): one thread, one seed, an event heap and the network model,
//! and the loop that moves time and facts between the nodes.
//!
//! Pending deliveries, completions, client operations and faults wait in a heap ordered by
//! `(time, sequence)`, the sequence breaking ties in scheduling order; each step jumps to the
//! earliest of that heap and every node's `poll_timeout` (a tie goes to the heap, then the
//! lowest node). A node only ever sees its own clock.
//!
//! Its `Driver` half carries every fact as an event on that heap: a mesh call over the network
//! model's links (with the mesh client's timeout), a disk completion at its drawn time, a
//! Codios call to Codios's model.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};

use sapix_core::auth::AuthKey;
use sapix_core::node::{CallId, Input, RequestId, Response};

use super::{Driver, Phase, Report, World};
use crate::codios::CodiosEv;
use crate::config::{stream, Config, Micros, Stream};
use crate::faults::{Fault, Faults};
use crate::forger::Forger;
use crate::mesh::{reset, Asked, InFlight, Req};
use crate::network::Network;
use crate::overrides::Class;
use crate::trace::Trace;
use crate::workload::Op;

/// Runs longer than this many steps are stopped as runaway.
const MAX_EVENTS: u64 = 50_000_000;

/// Something that will happen at a simulated time.
#[derive(Debug)]
pub(crate) enum Ev {
    /// A request reaches node `to` (maybe after its caller gave up).
    Arrive {
        call: u64,
        from: usize,
        to: usize,
        req: Req,
    },
    /// An answer (or a connection error) reaches the caller.
    Reply { call: u64, input: Input },
    /// A completion the shell produces without the network (an empty copy batch, a push
    /// whose blocks could not be read, a Codios call in a world without Codios).
    Local { node: usize, inc: u32, input: Input },
    /// The caller's timeout for the call.
    Timeout { call: u64 },
    /// The oldest append in flight on `node` completes.
    AppendDone { node: usize, inc: u32 },
    /// The oldest state-file write in flight on `node` completes.
    WriteDone { node: usize, inc: u32 },
    /// A client operation of this class is due.
    Work(Op),
    /// A fault is due.
    Fault(Fault),
    /// The request of Codios call `call` from `node` reaches Codios, which decides now.
    CodiosDecides { call: u64, node: usize },
    /// Codios's health or policy changes.
    Codios(CodiosEv),
    /// A paused node's actor runs again: the inputs that queued up are fed in order.
    Resume { node: usize, inc: u32 },
    /// Faults stop; the liveness phase starts.
    Liveness,
    /// Check convergence.
    Check,
}

struct Entry {
    at: Micros,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        // BinaryHeap is a max-heap: the earliest (time, seq) must compare greatest.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Layer 0's driver: the heap of what is due, the network model, the mesh calls in flight and
/// the faults' rng.
pub(crate) struct Heap {
    queue: BinaryHeap<Entry>,
    seq: u64,
    pub(crate) net: Network,
    pub(crate) calls: BTreeMap<u64, InFlight>,
    pub(crate) faults: Faults,
    pub(crate) forger: Forger,
}

impl World<Heap> {
    /// A world for `cfg`, tracing into `trace`.
    pub(crate) fn new(cfg: Config, trace: Trace) -> Self {
        let (n, seed) = (cfg.total(), cfg.seed);
        let heap = Heap {
            queue: BinaryHeap::new(),
            seq: 0,
            net: Network::new(cfg.net.clone(), n, stream(seed, Stream::Network)),
            calls: BTreeMap::new(),
            faults: Faults::new(stream(seed, Stream::Faults)),
            forger: Forger::new(&cfg),
        };
        World::build(cfg, trace, heap)
    }

    /// Runs the seed to its end: the active phase, then the liveness phase.
    pub(crate) fn run(mut self) -> Report {
        let cfg_line = self.cfg.to_string();
        self.trace.line(0, || format!("config\n{cfg_line}"));
        for i in 0..self.hosts.len() {
            self.boot(i);
        }
        for (at, op) in self.work.first() {
            self.schedule(at, Ev::Work(op));
        }
        for (at, f) in self.d.faults.first(&self.cfg) {
            self.schedule(at, Ev::Fault(f));
        }
        for (at, ev) in self.codios.first() {
            self.schedule(at, Ev::Codios(ev));
        }
        if let Some(at) = self.d.forger.next(0) {
            self.schedule(at, Ev::Fault(Fault::ForgeTick));
        }
        self.schedule(self.cfg.active, Ev::Liveness);
        while self.violation.is_none() && self.phase != Phase::Done {
            if !self.step() {
                self.fail("world", "nothing left to do before the run ended".into());
            }
            if self.events > MAX_EVENTS {
                self.fail("world", format!("more than {MAX_EVENTS} steps: runaway"));
            }
        }
        let net = &self.d.net;
        let (lost, held) = (net.lost, net.held);
        self.coverage.add(Class::Loss, lost);
        self.coverage.add(Class::Reorder, held);
        self.finish()
    }

    fn step(&mut self) -> bool {
        let mut wake: Option<(Micros, usize)> = None;
        for (i, h) in self.hosts.iter().enumerate() {
            if let Some(w) = h.wake.map(|w| w.max(h.paused_until)) {
                if wake.is_none_or(|(t, _)| w < t) {
                    wake = Some((w, i));
                }
            }
        }
        let queued = self.d.queue.peek().map(|e| e.at);
        self.events += 1;
        match (queued, wake) {
            (q, Some((w, i))) if q.is_none_or(|q| w < q) => {
                self.now = w;
                self.trace.mix(w ^ ((i as u64) << 56));
                self.wake(i);
            }
            (Some(_), _) => {
                let e = self.d.queue.pop().expect("peeked");
                self.now = e.at;
                self.trace.mix(e.at);
                self.process(e.ev);
            }
            _ => return false,
        }
        true
    }

    fn process(&mut self, ev: Ev) {
        match ev {
            Ev::Arrive {
                call,
                from,
                to,
                req,
            } => self.arrive(call, from, to, req),
            Ev::Reply { call, input } => {
                if let Some(c) = self.d.calls.remove(&call) {
                    if self.hosts[c.from].inc == c.inc {
                        self.feed(c.from, input);
                    }
                }
            }
            Ev::Local { node, inc, input } => {
                if self.hosts[node].inc == inc {
                    self.feed(node, input);
                }
            }
            Ev::Timeout { call } => {
                if let Some(c) = self.d.calls.remove(&call) {
                    if self.hosts[c.from].inc == c.inc {
                        self.trace
                            .line(self.now, || format!("n{} call #{call} timed out", c.from));
                        let input = c.kind.failed(sapix_core::node::Failure::TimedOut);
                        self.feed(c.from, input);
                    }
                }
            }
            Ev::AppendDone { node, inc } => {
                if self.hosts[node].inc == inc && self.up(node) {
                    self.append_done(node);
                }
            }
            Ev::WriteDone { node, inc } => {
                if self.hosts[node].inc == inc && self.up(node) {
                    self.write_done(node);
                }
            }
            Ev::Work(op) => self.work(op),
            Ev::Fault(f) => self.fault(f),
            Ev::CodiosDecides { call, node } => self.codios_request_arrives(call, node),
            Ev::Codios(ev) => self.codios_event(ev),
            Ev::Resume { node, inc } => {
                if self.hosts[node].inc == inc && self.now >= self.hosts[node].paused_until {
                    self.trace.line(self.now, || format!("n{node} resumes"));
                    while let Some(input) = self.hosts[node].deferred.pop_front() {
                        self.feed(node, input);
                    }
                }
            }
            Ev::Liveness => self.liveness(),
            Ev::Check => self.check_converged(),
        }
    }

    /// Queues `ev` at `at`.
    pub(crate) fn schedule(&mut self, at: Micros, ev: Ev) {
        self.d.seq += 1;
        self.d.queue.push(Entry {
            at,
            seq: self.d.seq,
            ev,
        });
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
