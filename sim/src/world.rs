//! The world: every node's process and disk, the network, the clients, one simulated clock,
//! and the loop that moves time and facts between them.
//!
//! One thread, one seed. Pending deliveries, completions, client operations and faults wait in
//! a heap ordered by `(time, sequence)`, the sequence breaking ties in scheduling order; each
//! step jumps to the earliest of that heap and every node's `poll_timeout` (a tie goes to the
//! heap, then the lowest node). A node only ever sees its own clock. After every step the
//! safety checkers have already run; the first violation stops the run.
//!
//! The shell half — how each `Output` becomes a delivery and comes back as an `Input` — lives
//! in `mesh`; a node's process (boot, crash, stall, landing appends) in `host`; client
//! operations in `workload`; faults in `faults`; the liveness phase in `liveness`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sapix_core::node::{ClusterState, Input, RequestId};
use sapix_core::repl::peer::PeerInfo;
use sapix_core::{AgentId, Consistency, KeySchedule, MasterSeed, Node, Role};

use crate::checkers::{self, Checkers, Verdict, Violation};
use crate::clock::NodeClock;
use crate::codios::{Codios, CodiosEv};
use crate::config::{stream, Config, Micros, Stream};
use crate::faults::{Fault, Faults};
use crate::host::Host;
use crate::mesh::{InFlight, Req};
use crate::network::Network;
use crate::storage::Store;
use crate::trace::{input_digest, output_digest, Trace};
use crate::workload::{Op, Workload};

/// Runs longer than this many steps are stopped as runaway.
const MAX_EVENTS: u64 = 50_000_000;
/// A node woken this many times at one instant is busy-looping.
const MAX_SPINS: u32 = 1_000;

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
    /// Codios decides, or its health or policy changes.
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

/// What a run counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Writes acknowledged (`Written`).
    pub written: u64,
    /// CP writes checked against every peer.
    pub cp_checked: u64,
    /// Writes answered `Indeterminate`.
    pub indeterminate: u64,
    /// Writes refused (`Partitioned`, `StorageFailed`).
    pub refused: u64,
    /// Crashes.
    pub crashes: u64,
    /// Divides acknowledged.
    pub divided: u64,
    /// Writes authorized (root or Codios).
    pub authorized: u64,
    /// Of those, let through with a stale permit or the circuit open.
    pub auth_degraded: u64,
    /// Writes denied.
    pub denied: u64,
    /// Writes refused because no decision could be served.
    pub auth_unavailable: u64,
    /// Requests (client and mesh) fed to nodes.
    pub requests: u64,
    /// Simulated time from the start of the liveness phase to convergence.
    pub converged_after: Option<Micros>,
}

/// The outcome of one seed.
#[derive(Debug, Clone)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Steps taken (deliveries, completions, wakeups, operations, faults).
    pub events: u64,
    /// Simulated time at the end.
    pub sim_time: Micros,
    /// Hash of the whole trace.
    pub trace_hash: u64,
    /// The first broken invariant, if any.
    pub violation: Option<Violation>,
    /// Counters.
    pub stats: Stats,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Active,
    Liveness { since: Micros },
    Done,
}

/// The simulated cluster.
pub struct World {
    pub(crate) cfg: Config,
    pub(crate) now: Micros,
    queue: BinaryHeap<Entry>,
    seq: u64,
    pub(crate) hosts: Vec<Host>,
    pub(crate) stores: Vec<Store>,
    pub(crate) net: Network,
    pub(crate) calls: BTreeMap<u64, InFlight>,
    pub(crate) next_call: u64,
    next_request: u64,
    pub(crate) work: Workload,
    pub(crate) faults: Faults,
    pub(crate) codios: Codios,
    pub(crate) storage_rng: ChaCha8Rng,
    pub(crate) node_rng: ChaCha8Rng,
    pub(crate) checks: Checkers,
    pub(crate) trace: Trace,
    pub(crate) stats: Stats,
    events: u64,
    pub(crate) phase: Phase,
    violation: Option<Violation>,
}

/// The nodes of `cfg` and their disks, not started yet, and the rng that seeds their
/// processes: identities, keys, clock drift and offsets, and the initial members' cluster
/// files. Shared by both drivers, so one seed names one cluster.
pub(crate) fn cluster(cfg: &Config) -> (Vec<Host>, Vec<Store>, ChaCha8Rng) {
    let n = cfg.total();
    let mut node_rng = stream(cfg.seed, Stream::Nodes);
    let mut master = [0u8; 32];
    node_rng.fill(&mut master);
    let keys = KeySchedule::new(MasterSeed::from_bytes(master));
    let clocks = &cfg.clocks;
    let hosts = (0..n)
        .map(|i| {
            let agent = AgentId::new(agent_name(i)).expect("valid id");
            let drift = if clocks.drift_ppm > 0 {
                let d = clocks.drift_ppm as i64;
                node_rng.gen_range(-d..=d)
            } else {
                0
            };
            let offset = if clocks.wall_offset_ms > 0 {
                let o = clocks.wall_offset_ms as i64;
                node_rng.gen_range(-o..=o)
            } else {
                0
            };
            let key = keys.signing_key(&agent).sim_mac();
            Host::new(agent, key, NodeClock::new(drift, offset), i < cfg.members)
        })
        .collect();
    let mut stores: Vec<Store> = (0..n).map(|_| Store::default()).collect();
    let infos: Vec<PeerInfo> = (0..cfg.members)
        .map(|i: usize| PeerInfo {
            agent_id: AgentId::new(agent_name(i)).expect("valid id"),
            endpoint: format!("http://{}.sim:7475", agent_name(i)),
            role: if i == 0 { Role::Primary } else { Role::Replica },
            added_at_ms: 1_700_000_000_000,
        })
        .collect();
    for (i, store) in stores.iter_mut().enumerate().take(cfg.members) {
        store.cluster = Some(ClusterState {
            role: infos[i].role,
            consistency: if cfg.workload.initial_ap[i] {
                Consistency::Ap
            } else {
                Consistency::Cp
            },
            peers: infos.iter().filter(|p| p != &&infos[i]).cloned().collect(),
        });
    }
    (hosts, stores, node_rng)
}

/// The agent id of node `i`.
pub fn agent_name(i: usize) -> String {
    format!("n{i}")
}

impl World {
    /// A world for `cfg`, tracing into `trace`.
    pub fn new(cfg: Config, trace: Trace) -> Self {
        let (n, seed) = (cfg.total(), cfg.seed);
        let (hosts, stores, node_rng) = cluster(&cfg);
        World {
            net: Network::new(cfg.net.clone(), n, stream(seed, Stream::Network)),
            work: Workload::new(cfg.workload.clone(), stream(seed, Stream::Workload)),
            faults: Faults::new(stream(seed, Stream::Faults)),
            codios: Codios::new(cfg.codios.clone(), stream(seed, Stream::Codios)),
            storage_rng: stream(seed, Stream::Storage),
            node_rng,
            checks: Checkers::new(n),
            hosts,
            stores,
            cfg,
            now: 0,
            queue: BinaryHeap::new(),
            seq: 0,
            calls: BTreeMap::new(),
            next_call: 0,
            next_request: 0,
            trace,
            stats: Stats::default(),
            events: 0,
            phase: Phase::Active,
            violation: None,
        }
    }

    /// Runs the seed to its end: the active phase, then the liveness phase.
    pub fn run(mut self) -> Report {
        let cfg_line = self.cfg.to_string();
        self.trace.line(0, || format!("config\n{cfg_line}"));
        for i in 0..self.hosts.len() {
            self.boot(i);
        }
        for (at, op) in self.work.first() {
            self.schedule(at, Ev::Work(op));
        }
        for (at, f) in self.faults.first(&self.cfg) {
            self.schedule(at, Ev::Fault(f));
        }
        for (at, ev) in self.codios.first() {
            self.schedule(at, Ev::Codios(ev));
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
        if let Some(v) = &self.violation {
            let line = v.to_string();
            self.trace.line(self.now, || format!("VIOLATION {line}"));
        }
        self.trace.flush();
        Report {
            seed: self.cfg.seed,
            events: self.events,
            sim_time: self.now,
            trace_hash: self.trace.hash(),
            violation: self.violation,
            stats: self.stats,
        }
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
        let queued = self.queue.peek().map(|e| e.at);
        self.events += 1;
        match (queued, wake) {
            (q, Some((w, i))) if q.is_none_or(|q| w < q) => {
                self.now = w;
                self.trace.mix(w ^ ((i as u64) << 56));
                self.wake(i);
            }
            (Some(_), _) => {
                let e = self.queue.pop().expect("peeked");
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
                if let Some(c) = self.calls.remove(&call) {
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
                if let Some(c) = self.calls.remove(&call) {
                    if self.hosts[c.from].inc == c.inc {
                        self.trace
                            .line(self.now, || format!("n{} call #{call} timed out", c.from));
                        let input = c.kind.failed("timed out");
                        self.feed(c.from, input);
                    }
                }
            }
            Ev::AppendDone { node, inc } => self.append_done(node, inc),
            Ev::WriteDone { node, inc } => self.write_done(node, inc),
            Ev::Work(op) => self.work(op),
            Ev::Fault(f) => self.fault(f),
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
        self.seq += 1;
        self.queue.push(Entry {
            at,
            seq: self.seq,
            ev,
        });
    }

    /// Records a broken invariant; the run stops after this step.
    pub(crate) fn fail(&mut self, checker: &'static str, message: String) {
        if self.violation.is_none() {
            self.violation = Some(Violation {
                at: self.now,
                checker,
                message,
            });
        }
    }

    /// Records a failed verdict.
    pub(crate) fn verdict(&mut self, v: Verdict) {
        if let Err((checker, m)) = v {
            self.fail(checker, m);
        }
    }

    /// Every node's agent id, by index.
    pub(crate) fn names(&self) -> Vec<AgentId> {
        self.hosts.iter().map(|h| h.agent.clone()).collect()
    }

    /// Records `result` under `checker`.
    pub(crate) fn check(&mut self, checker: &'static str, result: Result<(), String>) {
        if let Err(m) = result {
            self.fail(checker, m);
        }
    }

    pub(crate) fn up(&self, i: usize) -> bool {
        self.hosts[i].node.is_some()
    }

    pub(crate) fn new_request(&mut self) -> RequestId {
        self.next_request += 1;
        self.stats.requests += 1;
        RequestId(self.next_request)
    }

    /// The node at `endpoint`.
    pub(crate) fn index_of_endpoint(&self, endpoint: &str) -> Option<usize> {
        self.hosts.iter().position(|h| h.endpoint == endpoint)
    }

    /// Feeds `input` to node `i` at its own clock's now, then performs what it asks for.
    pub(crate) fn feed(&mut self, i: usize, input: Input) {
        let host = &mut self.hosts[i];
        if host.node.is_none() {
            return;
        }
        if self.now < host.paused_until {
            host.deferred.push_back(input);
            return;
        }
        self.taking(i, &input);
        let host = &mut self.hosts[i];
        let Some(node) = host.node.as_mut() else {
            return;
        };
        let local = host.clock.local(self.now);
        self.trace.mix(i as u64);
        input_digest(&input, self.trace.hasher());
        if self.trace.printing() {
            let s = format!("n{i} <- {input:?}");
            self.trace.line(self.now, || s);
        }
        node.handle(local, input);
        self.drain(i);
    }

    pub(crate) fn wake(&mut self, i: usize) {
        let host = &mut self.hosts[i];
        let Some(node) = host.node.as_mut() else {
            host.wake = None;
            return;
        };
        node.handle_timeout(host.clock.local(self.now));
        self.drain(i);
        let host = &mut self.hosts[i];
        if host.wake.is_some_and(|w| w <= self.now) {
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
                self.trace.line(self.now, || s);
            }
            self.perform(i, out);
        }
        let host = &mut self.hosts[i];
        host.wake = host
            .node
            .as_ref()
            .and_then(Node::poll_timeout)
            .map(|at| host.clock.global(at).max(self.now));
    }
}
