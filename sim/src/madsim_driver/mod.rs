//! Layer 0b: a second, independent driver of the same core nodes, over madsim.
//!
//! Each node is a madsim node with its own IP; its mesh calls (push/ingest, probe, export
//! page, copy, announce) are request/answer messages over madsim's network, its timers and
//! disk latencies are madsim sleeps, and its faults are madsim's: `Handle::kill`/`restart`
//! for crashes, `pause`/`resume` for stalls, `NetSim::clog_link` for partitions, madsim's own
//! packet loss, latency and (on some seeds) buggify delays. What madsim schedules is not what
//! Layer 0's heap schedules, so the two see different interleavings of the same code.
//!
//! Everything that is not transport is Layer 0's, not a copy: the run is a
//! [`World`]`<Madsim>`, the same cluster Layer 0 builds for the seed's [`Config`](crate::Config)
//! (nodes, disks kept outside the node's tasks so they outlive a kill and lose what was in
//! flight as Layer 0's do, clients, checkers), stepped by the same code (the world's
//! `driver`): how an input is checked and handed over, how outputs are performed, how a
//! client's answer or a crash is judged, when the cluster has settled, and Layer 0's Codios
//! model (`crate::codios`: its outages, slowness, flapping and policy flips, drawn from the
//! seed's config, judged by the same `auth` checker). [`Madsim`] only says how facts travel:
//! as madsim messages, sleeps and tasks.
//!
//! madsim runs every node on one thread, so the world shared between the nodes' tasks sits
//! behind one mutex that is never held across an `.await`: each input is handled, and its
//! outputs drained, in one critical section, as a node's actor would.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use madsim::net::{Endpoint, NetSim};
use madsim::runtime::Handle;
use madsim::task::{JoinHandle, NodeId};
use madsim::time::{sleep, sleep_until, timeout, Instant};
use sapix_core::auth::AuthKey;
use sapix_core::node::{CallId, Failure, Input, Reply, RequestId, Response};

use crate::config::{Micros, MILLI};
use crate::mesh::{export, Asked, Req};
use crate::world::{Driver, World};

/// The agent's mesh port.
const PORT: u16 = 7475;
/// Requests arrive under this tag; each answer goes back under its call's id (never 0).
const REQUESTS: u64 = 0;
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

/// What only the madsim driver keeps: its nodes' handles and sockets, their armed wakeups and
/// stalls, and the links it has cut.
pub(crate) struct Madsim {
    me: Weak<Mutex<World<Madsim>>>,
    start: Instant,
    ids: Vec<NodeId>,
    eps: Vec<Option<Endpoint>>,
    /// The armed wakeup of each node, and the task that will deliver it.
    timers: Vec<Option<(Micros, JoinHandle<()>)>>,
    paused: Vec<bool>,
    /// Per directed link, how many partitions cut it now.
    cuts: Vec<u32>,
    generation: u32,
}

type Cluster = Arc<Mutex<World<Madsim>>>;

thread_local! {
    /// Runs whose world is still alive on this thread (madsim runs a seed on its caller's
    /// thread): 0 between runs, or a run leaks.
    static LIVE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many runs on this thread have not yet dropped their world.
pub fn live_runs() -> usize {
    LIVE.with(|l| l.get())
}

impl Drop for Madsim {
    fn drop(&mut self) {
        LIVE.with(|l| l.set(l.get() - 1));
    }
}

/// Locks the world and sets its `now` from madsim's clock, which stands still while the lock
/// is held: madsim moves time only between polls of its tasks, and the lock is never held
/// across an `.await`.
fn lock(c: &Cluster) -> MutexGuard<'_, World<Madsim>> {
    // A checker panic poisons the lock; the run is over then anyway.
    let mut s = c.lock().unwrap_or_else(|e| e.into_inner());
    s.now = s.d.start.elapsed().as_micros() as Micros;
    s
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

impl World<Madsim> {
    fn cluster(&self) -> Cluster {
        self.d.me.upgrade().expect("the run holds the cluster")
    }

    fn line(&mut self, line: impl FnOnce() -> String) {
        self.trace.line(self.now, line);
    }

    /// Runs `fut` as a task of node `i`'s current process: it dies with the process.
    fn spawn_on<F>(&self, i: usize, fut: F) -> Option<JoinHandle<()>>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        Handle::current()
            .get_node(self.d.ids[i])
            .map(|n| n.spawn(fut))
    }

    /// Feeds `input` to incarnation `inc` of node `i`, if that process still runs.
    fn deliver(&mut self, i: usize, inc: u32, input: Input) {
        if self.hosts[i].inc == inc {
            self.feed(i, input);
        }
    }

    /// At `at`, runs `done` for node `i`'s current process (a disk completion).
    fn later(&self, i: usize, at: Micros, done: fn(&mut World<Madsim>, usize)) {
        let (cl, inc) = (self.cluster(), self.hosts[i].inc);
        let deadline = self.d.start + micros(at);
        self.spawn_on(i, async move {
            sleep_until(deadline).await;
            let mut s = lock(&cl);
            if s.hosts[i].inc == inc && s.up(i) {
                done(&mut s, i);
            }
        });
    }

    /// A request reaches node `to`'s server.
    fn arrive(&mut self, to: usize, msg: Request) {
        let Request { call, from, req } = msg;
        if let Req::Export(after, limit) = req {
            let page = export(&self.stores[to], after, limit);
            self.answer(to, from, call, Answer::Page(page));
            return;
        }
        let request = self.new_request();
        self.hosts[to].server.insert(request, (call, from));
        self.feed(to, req.into_input(request));
    }

    fn answer(&self, me: usize, to: usize, call: u64, answer: Answer) {
        let Some(ep) = self.d.eps[me].clone() else {
            return;
        };
        self.spawn_on(me, async move {
            // A lost answer is the caller's timeout.
            let _ = ep.send_to_raw(addr(to), call, Box::new(answer)).await;
        });
    }

    /// Cuts (or, with `heal`, heals) the directed links: a link stays clogged in madsim while
    /// any partition still cuts it, so overlapping partitions heal independently.
    fn cut(&mut self, links: &[(usize, usize)], heal: bool) {
        let n = self.hosts.len();
        let net = NetSim::current();
        for &(a, b) in links {
            let c = &mut self.d.cuts[a * n + b];
            if heal {
                *c = c.saturating_sub(1);
                if *c == 0 {
                    net.unclog_link(self.d.ids[a], self.d.ids[b]);
                }
            } else {
                *c += 1;
                net.clog_link(self.d.ids[a], self.d.ids[b]);
            }
        }
    }
}

/// Layer 0b: inputs are tasks of the receiving node's process (they die with it and wait
/// while it is paused), mesh calls are madsim messages, timers and disk latencies are madsim
/// sleeps.
impl Driver for World<Madsim> {
    const SLOW_FSYNC: bool = false;

    fn feed(&mut self, i: usize, input: Input) {
        if !self.up(i) || self.violation.is_some() {
            return;
        }
        self.events += 1;
        self.trace.mix(self.now ^ ((i as u64) << 56));
        self.handle(i, input);
    }

    fn wake(&mut self, i: usize) {
        self.d.timers[i] = None;
        if !self.up(i) {
            return;
        }
        self.events += 1;
        self.trace.mix(self.now ^ ((i as u64) << 56) ^ 1);
        self.woken(i);
    }

    /// Keeps one timer task per node, at the instant the node last asked for.
    fn arm(&mut self, i: usize) {
        let want = self.hosts[i].wake;
        if self.d.timers[i].as_ref().map(|(at, _)| *at) == want {
            return;
        }
        if let Some((_, old)) = self.d.timers[i].take() {
            old.abort();
        }
        let Some(at) = want else {
            return;
        };
        let (cl, inc) = (self.cluster(), self.hosts[i].inc);
        let deadline = self.d.start + micros(at);
        let task = self.spawn_on(i, async move {
            sleep_until(deadline).await;
            let mut s = lock(&cl);
            if s.hosts[i].inc == inc {
                s.wake(i);
            }
        });
        self.d.timers[i] = task.map(|t| (at, t));
    }

    fn local(&mut self, i: usize, input: Input) {
        let (cl, inc) = (self.cluster(), self.hosts[i].inc);
        self.spawn_on(i, async move { lock(&cl).deliver(i, inc, input) });
    }

    /// A local client: no network in between, but a task of the node's process.
    fn client_request(&mut self, i: usize, input: Input) {
        self.local(i, input);
    }

    /// The request over madsim's network, then whichever of the answer and the mesh client's
    /// timeout comes first.
    fn call(&mut self, from: usize, endpoint: &str, kind: Asked, req: Req) {
        self.next_call += 1;
        let call = self.next_call;
        let to = self.index_of_endpoint(endpoint);
        let (cl, inc) = (self.cluster(), self.hosts[from].inc);
        let limit = micros(self.cfg.net.timeout);
        let Some(ep) = self.d.eps[from].clone() else {
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
                    kind.failed(Failure::TimedOut)
                }
                Ok(Err(e)) => kind.failed(Failure::Broken(e)),
                Err(_) => kind.failed(Failure::TimedOut),
            };
            lock(&cl).deliver(from, inc, input);
        });
    }

    fn reply(&mut self, i: usize, from: usize, call: u64, response: Response) {
        self.answer(i, from, call, Answer::Response(response));
    }

    fn append_at(&mut self, i: usize, at: Micros) {
        self.later(i, at, |s, i| s.append_done(i));
    }

    fn write_at(&mut self, i: usize, at: Micros) {
        self.later(i, at, |s, i| s.write_done(i));
    }

    /// Layer 0's Codios model, on madsim's clock: the request travels, Codios decides when it
    /// arrives, the answer travels back, all bounded by the Codios client's timeout. The call
    /// is a task of the caller's process, so it dies with it.
    fn ask_codios(&mut self, i: usize, id: CallId, key: AuthKey) {
        self.codios_asked(i, &key);
        self.next_call += 1;
        let call = self.next_call;
        let (there, up) = self.codios.send(self.now);
        let limit = micros(self.codios.timeout());
        let (cl, inc) = (self.cluster(), self.hosts[i].inc);
        let kind = Asked::call(id);
        self.spawn_on(i, async move {
            let exchange = async {
                sleep(micros(there)).await;
                if !up {
                    return Err(crate::mesh::refused());
                }
                let (back, outcome) = lock(&cl).codios_decides(i, call, key);
                sleep(micros(back)).await;
                outcome
            };
            let outcome = match timeout(limit, exchange).await {
                Ok(outcome) => outcome,
                Err(_) => Err(Failure::TimedOut),
            };
            lock(&cl).deliver(i, inc, kind.ended(outcome));
        });
    }

    /// madsim killed the process's tasks: its callers wait out their timeouts.
    fn died(&mut self, i: usize, _serving: BTreeMap<RequestId, (u64, usize)>) {
        self.d.timers[i] = None;
        self.d.eps[i] = None;
        self.d.paused[i] = false;
    }
}

/// The init task of node `i`: bind the mesh port, boot the core from the disk, serve.
async fn node_main(cl: Cluster, i: usize) {
    let ep = Endpoint::bind(addr(i))
        .await
        .expect("the mesh port is free");
    {
        let mut s = lock(&cl);
        s.d.eps[i] = Some(ep.clone());
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
