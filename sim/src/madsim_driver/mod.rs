//! Layer 0b: a second, independent driver of the same core nodes, over madsim.
//!
//! Each node is a madsim node with its own IP; its mesh calls (push/ingest, probe, export
//! page, copy, announce) are request/answer messages over madsim's network, its timers and
//! disk latencies are madsim sleeps, and its faults are madsim's: `Handle::kill`/`restart`
//! for crashes, `pause`/`resume` for stalls, `NetSim::clog_link` for partitions, madsim's own
//! packet loss, latency and (on some seeds) buggify delays. What madsim schedules is not what
//! Layer 0's heap schedules, so the two see different interleavings of the same code.
//!
//! Everything that is not transport is Layer 0's, not a copy: the seed's [`Config`], the nodes
//! and their disks ([`crate::world::cluster`], [`crate::host::start`], the simulated
//! [`Store`] kept outside the node's tasks so it outlives a kill and loses what was in flight
//! as Layer 0 does), the output mapping ([`crate::mesh::effect`]), the clients
//! ([`Workload`]), and every checker, at the same moments, plus the same liveness judgement
//! ([`crate::liveness::settled`]) after the network heals.
//!
//! madsim runs every node on one thread, so the state shared between the nodes' tasks sits
//! behind one mutex that is never held across an `.await`: each input is handled, and its
//! outputs drained, in one critical section, as a node's actor would.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use madsim::net::{Endpoint, NetSim};
use madsim::runtime::Handle;
use madsim::task::{JoinHandle, NodeId};
use madsim::time::{sleep, sleep_until, timeout, Instant};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sapix_core::node::{Call, Input, Node, Reply, RequestId, Response};

use crate::checkers::{self, answered, Checkers, Verdict, Violation};
use crate::config::{Config, Micros, MILLI};
use crate::host::{self, Host};
use crate::mesh::{effect, export, Effect, Req};
use crate::storage::Store;
use crate::trace::{input_digest, output_digest, Trace};
use crate::workload::{judge, taking, Ask, Workload};
use crate::world::{Phase, Stats};

/// The agent's mesh port.
const PORT: u16 = 7475;
/// Requests arrive under this tag; each answer goes back under its call's id (never 0).
const REQUESTS: u64 = 0;
/// A node woken this many times at one instant is busy-looping.
const MAX_SPINS: u32 = 1_000;
/// Runs longer than this many steps are stopped as runaway.
const MAX_EVENTS: u64 = 20_000_000;
/// How often the supervisor looks at the run.
const TICK: Micros = 250 * MILLI;

/// A mesh request on the wire.
struct Request {
    call: u64,
    from: usize,
    req: Req,
}

/// A server's answer on the wire: its node's response, or a page its server read from the
/// strand.
enum Answer {
    Response(Response),
    Page(Reply),
}

/// The cluster's state that outlives any one process: disks, identities, clients, checkers.
struct Shared {
    cfg: Config,
    me: Weak<Mutex<Shared>>,
    start: Instant,
    hosts: Vec<Host>,
    stores: Vec<Store>,
    checks: Checkers,
    stats: Stats,
    work: Workload,
    node_rng: ChaCha8Rng,
    storage_rng: ChaCha8Rng,
    ids: Vec<NodeId>,
    eps: Vec<Option<Endpoint>>,
    /// The armed wakeup of each node, and the task that will deliver it.
    timers: Vec<Option<(Micros, JoinHandle<()>)>>,
    paused: Vec<bool>,
    /// Per directed link, how many partitions cut it now.
    cuts: Vec<u32>,
    generation: u32,
    next_call: u64,
    next_request: u64,
    events: u64,
    trace: Trace,
    phase: Phase,
    violation: Option<Violation>,
}

type Cluster = Arc<Mutex<Shared>>;

fn lock(c: &Cluster) -> MutexGuard<'_, Shared> {
    // A checker panic poisons the lock; the run is over then anyway.
    c.lock().unwrap_or_else(|e| e.into_inner())
}

fn ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8 + 1))
}

fn addr(i: usize) -> SocketAddr {
    SocketAddr::new(ip(i), PORT)
}

fn micros(d: Micros) -> Duration {
    Duration::from_micros(d)
}

impl Shared {
    fn now(&self) -> Micros {
        self.start.elapsed().as_micros() as Micros
    }

    fn cluster(&self) -> Cluster {
        self.me.upgrade().expect("the run holds the cluster")
    }

    fn up(&self, i: usize) -> bool {
        self.hosts[i].node.is_some()
    }

    fn fail(&mut self, checker: &'static str, message: String) {
        if self.violation.is_none() {
            let at = self.now();
            self.violation = Some(Violation {
                at,
                checker,
                message,
            });
        }
    }

    fn verdict(&mut self, v: Verdict) {
        if let Err((checker, m)) = v {
            self.fail(checker, m);
        }
    }

    fn line(&mut self, line: impl FnOnce() -> String) {
        let now = self.now();
        self.trace.line(now, line);
    }

    /// Runs `fut` as a task of node `i`'s current process: it dies with the process.
    fn spawn_on<F>(&self, i: usize, fut: F) -> Option<JoinHandle<()>>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        Handle::current()
            .get_node(self.ids[i])
            .map(|n| n.spawn(fut))
    }

    /// Node `i`'s process starts (madsim's init task, at boot and at every restart).
    fn boot(&mut self, i: usize) {
        let now = self.now();
        host::start(
            &mut self.hosts[i],
            &mut self.stores[i],
            &self.cfg,
            &mut self.node_rng,
            now,
        );
        let tip = self.stores[i].tip();
        self.line(|| format!("n{i} boots (strand tip {tip})"));
        let r = self.checks.acked.after_restart(i, &self.stores[i]);
        self.verdict(r.map_err(|m| ("acked_writes", m)));
        self.wake(i);
    }

    /// Node `i`'s process is gone (madsim killed its tasks): the disk loses what was in flight.
    fn crash(&mut self, i: usize) {
        if self.hosts[i].node.take().is_none() {
            return;
        }
        self.stats.crashes += 1;
        let host = &mut self.hosts[i];
        host.wake = None;
        host.clients.clear();
        host.server.clear();
        self.timers[i] = None;
        self.eps[i] = None;
        self.paused[i] = false;
        let names: Vec<_> = self.hosts.iter().map(|h| h.agent.clone()).collect();
        let c = host::crash_disk(
            i,
            &mut self.stores,
            &mut self.checks,
            self.cfg.nodes.crash_keeps_tail,
            &mut self.storage_rng,
            &names,
        );
        let kept = c.kept_blocks;
        self.line(|| format!("n{i} CRASHES ({kept} blocks of appends in flight survive)"));
        self.verdict(c.verdict);
    }

    /// Feeds `input` to incarnation `inc` of node `i`, then performs what it asks for.
    fn feed(&mut self, i: usize, inc: u32, input: Input) {
        if self.hosts[i].inc != inc || !self.up(i) || self.violation.is_some() {
            return;
        }
        self.events += 1;
        taking(&mut self.hosts, i, &input);
        let now = self.now();
        let local = self.hosts[i].clock.local(now);
        self.trace.mix(now ^ ((i as u64) << 56));
        input_digest(&input, self.trace.hasher());
        if self.trace.printing() {
            let s = format!("n{i} <- {input:?}");
            self.trace.line(now, || s);
        }
        if let Some(node) = self.hosts[i].node.as_mut() {
            node.handle(local, input);
        }
        self.drain(i);
    }

    /// Node `i`'s timer fired.
    fn wake(&mut self, i: usize) {
        let now = self.now();
        self.timers[i] = None;
        let host = &mut self.hosts[i];
        let Some(node) = host.node.as_mut() else {
            return;
        };
        self.events += 1;
        node.handle_timeout(host.clock.local(now));
        self.trace.mix(now ^ ((i as u64) << 56) ^ 1);
        self.drain(i);
        let host = &mut self.hosts[i];
        if host.wake.is_some_and(|w| w <= now) {
            host.spins += 1;
            if host.spins > MAX_SPINS {
                self.fail(
                    "poll_timeout",
                    format!("n{i} asks to be woken again and again at the same instant"),
                );
            }
        } else {
            host.spins = 0;
        }
    }

    fn drain(&mut self, i: usize) {
        let v = checkers::peer_acks::check_host(i, &self.hosts, &self.stores);
        self.verdict(v);
        while let Some(out) = self.hosts[i].node.as_mut().and_then(Node::poll_output) {
            output_digest(&out, self.trace.hasher());
            if self.trace.printing() {
                let s = format!("n{i} -> {out:?}");
                self.line(|| s);
            }
            self.perform(i, out);
        }
        let now = self.now();
        let host = &mut self.hosts[i];
        host.wake = host
            .node
            .as_ref()
            .and_then(Node::poll_timeout)
            .map(|at| host.clock.global(at).max(now));
        self.arm(i);
    }

    /// Keeps one timer task per node, at the instant the node last asked for.
    fn arm(&mut self, i: usize) {
        let want = self.hosts[i].wake;
        if self.timers[i].as_ref().map(|(at, _)| *at) == want {
            return;
        }
        if let Some((_, old)) = self.timers[i].take() {
            old.abort();
        }
        let Some(at) = want else {
            return;
        };
        let (cl, inc, deadline) = (self.cluster(), self.hosts[i].inc, self.start + micros(at));
        let task = self.spawn_on(i, async move {
            sleep_until(deadline).await;
            let mut s = lock(&cl);
            if s.hosts[i].inc == inc {
                s.wake(i);
            }
        });
        self.timers[i] = task.map(|t| (at, t));
    }

    /// At `at`, runs `done` for node `i`'s current process (a disk completion).
    fn later(&self, i: usize, at: Micros, done: fn(&mut Shared, usize)) {
        let (cl, inc, deadline) = (self.cluster(), self.hosts[i].inc, self.start + micros(at));
        self.spawn_on(i, async move {
            sleep_until(deadline).await;
            let mut s = lock(&cl);
            if s.hosts[i].inc == inc && s.up(i) {
                done(&mut s, i);
            }
        });
    }

    fn local(&self, i: usize, input: Input) {
        let (cl, inc) = (self.cluster(), self.hosts[i].inc);
        self.spawn_on(i, async move { lock(&cl).feed(i, inc, input) });
    }

    fn perform(&mut self, i: usize, out: sapix_core::node::Output) {
        let me = self.hosts[i].agent.clone();
        let now = self.now();
        match effect(out, &self.stores[i], &me) {
            Effect::Append { token, blocks } => {
                let r = checkers::chain_intact::check_append(&self.stores[i], &blocks);
                self.verdict(r.map_err(|m| ("chain_intact", m)));
                let (lo, hi) = self.cfg.nodes.fsync;
                let d = self.storage_rng.gen_range(lo..=hi);
                let done = self.stores[i].last_append_done.max(now) + d;
                self.stores[i].last_append_done = done;
                self.stores[i].begin_append(token, blocks);
                self.later(i, done, |s, i| {
                    let (input, v) = host::append_landed(&mut s.stores[i], &mut s.checks);
                    s.verdict(v);
                    if let Some(input) = input {
                        let inc = s.hosts[i].inc;
                        s.feed(i, inc, input);
                    }
                });
            }
            Effect::Persist(w) => {
                let (lo, hi) = self.cfg.nodes.persist;
                let d = self.storage_rng.gen_range(lo..=hi);
                let done = self.stores[i].last_write_done.max(now) + d;
                self.stores[i].last_write_done = done;
                self.stores[i].begin_write(w);
                self.later(i, done, |s, i| {
                    let names: Vec<_> = s.hosts.iter().map(|h| h.agent.clone()).collect();
                    let (input, v) = host::write_landed(i, &mut s.stores, &mut s.checks, &names);
                    s.verdict(v);
                    if let Some(input) = input {
                        let inc = s.hosts[i].inc;
                        s.feed(i, inc, input);
                    }
                });
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
            Effect::AskCodios(key) => {
                // This driver has no Codios model (Layer 0 has): every call fails.
                let kind = Call::Codios { key };
                self.local(i, kind.failed("no Codios in the madsim driver"));
            }
            Effect::Log(event) => {
                let v = self.checks.logged(i, &event);
                self.verdict(v);
            }
        }
    }

    /// A mesh call from node `from`: the request over madsim's network, then whichever of
    /// the answer and the client's timeout comes first.
    fn call(&mut self, from: usize, endpoint: &str, kind: Call, req: Req) {
        self.next_call += 1;
        let call = self.next_call;
        let to = self.hosts.iter().position(|h| h.endpoint == endpoint);
        let (cl, inc) = (self.cluster(), self.hosts[from].inc);
        let limit = micros(self.cfg.net.timeout);
        let Some(ep) = self.eps[from].clone() else {
            return;
        };
        self.spawn_on(from, async move {
            let exchange = async {
                let to = to.ok_or_else(|| "no such endpoint".to_string())?;
                let msg = Request { call, from, req };
                ep.send_to_raw(addr(to), REQUESTS, Box::new(msg))
                    .await
                    .map_err(|e| e.to_string())?;
                let (payload, _) = ep.recv_from_raw(call).await.map_err(|e| e.to_string())?;
                payload
                    .downcast::<Answer>()
                    .map_err(|_| "garbled answer".to_string())
            };
            let input = match timeout(limit, exchange).await {
                Ok(Ok(answer)) => match *answer {
                    Answer::Response(r) => kind.answered(r),
                    Answer::Page(p) => kind.finished(p),
                },
                Ok(Err(e)) if e == "no such endpoint" => {
                    // As an unreachable host: the client waits out its timeout.
                    sleep(limit).await;
                    kind.failed("timed out")
                }
                Ok(Err(e)) => kind.failed(e),
                Err(_) => kind.failed("timed out"),
            };
            lock(&cl).feed(from, inc, input);
        });
    }

    /// A request reaches node `to`'s server.
    fn arrive(&mut self, to: usize, msg: Request) {
        let Request { call, from, req } = msg;
        if let Req::Export(after) = req {
            let page = export(&self.stores[to], after);
            self.answer(to, from, call, Answer::Page(page));
            return;
        }
        self.next_request += 1;
        self.stats.requests += 1;
        let request = RequestId(self.next_request);
        self.hosts[to].server.insert(request, (call, from));
        let inc = self.hosts[to].inc;
        self.feed(to, inc, req.into_input(request));
    }

    fn answer(&self, me: usize, to: usize, call: u64, answer: Answer) {
        let Some(ep) = self.eps[me].clone() else {
            return;
        };
        self.spawn_on(me, async move {
            // A lost answer is the caller's timeout.
            let _ = ep.send_to_raw(addr(to), call, Box::new(answer)).await;
        });
    }

    /// Node `i` answered `request`: back over the network to a peer, or to a client.
    fn respond(&mut self, i: usize, request: RequestId, response: Response) {
        if let Some((call, from)) = self.hosts[i].server.remove(&request) {
            self.answer(i, from, call, Answer::Response(response));
            return;
        }
        match answered::answer(&mut self.hosts[i].clients, request, i) {
            Ok(client) => {
                let (member, v) = judge(
                    i,
                    client,
                    response,
                    &self.hosts,
                    &self.stores,
                    &mut self.checks,
                    &mut self.stats,
                );
                self.verdict(v);
                if let Some(new) = member {
                    self.hosts[new].member = true;
                }
            }
            Err(m) => self.fail("answered", m),
        }
    }

    /// A client sends `ask` to its node (a local client: no network in between).
    fn ask(&mut self, ask: Ask) {
        self.next_request += 1;
        self.stats.requests += 1;
        let request = RequestId(self.next_request);
        let i = ask.node;
        self.hosts[i].clients.insert(request, ask.client);
        self.local(i, (ask.input)(request));
    }

    /// Cuts (or, with `heal`, heals) the directed links: a link stays clogged in madsim while
    /// any partition still cuts it, so overlapping partitions heal independently.
    fn cut(&mut self, links: &[(usize, usize)], heal: bool) {
        let n = self.hosts.len();
        let net = NetSim::current();
        for &(a, b) in links {
            let c = &mut self.cuts[a * n + b];
            if heal {
                *c = c.saturating_sub(1);
                if *c == 0 {
                    net.unclog_link(self.ids[a], self.ids[b]);
                }
            } else {
                *c += 1;
                net.clog_link(self.ids[a], self.ids[b]);
            }
        }
    }
}

/// The init task of node `i`: bind the mesh port, boot the core from the disk, serve.
async fn node_main(cl: Cluster, i: usize) {
    let ep = Endpoint::bind(addr(i))
        .await
        .expect("the mesh port is free");
    {
        let mut s = lock(&cl);
        s.eps[i] = Some(ep.clone());
        s.boot(i);
    }
    while let Ok((payload, _)) = ep.recv_from_raw(REQUESTS).await {
        if let Ok(msg) = payload.downcast::<Request>() {
            lock(&cl).arrive(i, *msg);
        }
    }
}

mod supervisor;

pub use supervisor::{replay_command, run_seed};
