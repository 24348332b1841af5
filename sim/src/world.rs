//! The world: every node's process and disk, the clients, Codios, the checkers and one
//! simulated clock — and Layer 0's driver (`Heap`): the network model and the loop that
//! moves time and facts between them.
//!
//! One thread, one seed. Pending deliveries, completions, client operations and faults wait in
//! a heap ordered by `(time, sequence)`, the sequence breaking ties in scheduling order; each
//! step jumps to the earliest of that heap and every node's `poll_timeout` (a tie goes to the
//! heap, then the lowest node). A node only ever sees its own clock. After every step the
//! safety checkers have already run; the first violation stops the run.
//!
//! A `World` is generic over its driver so the madsim driver runs the very same cluster
//! (`World<Madsim>`): what a step does is written once (`driver`), and only how facts travel
//! is the driver's. The shell half — how each `Output` becomes a delivery and comes back as an
//! `Input` — lives in `mesh`; a node's process (boot, crash, stall, landing appends) in `host`;
//! client operations in `workload`; faults in `faults`; the liveness phase in `liveness`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sapix_core::node::{ClusterState, Input, RequestId};
use sapix_core::repl::peer::PeerInfo;
use sapix_core::{AgentId, Consistency, KeySchedule, MasterSeed, Role};

use crate::checkers::{Checkers, Verdict, Violation};
use crate::clock::NodeClock;
use crate::codios::{Codios, CodiosEv};
use crate::config::{stream, Config, Micros, Stream};
use crate::coverage::Coverage;
use crate::driver::Driver;
use crate::faults::{Fault, Faults};
use crate::host::Host;
use crate::mesh::{InFlight, Req};
use crate::network::Network;
use crate::overrides::Class;
use crate::storage::Store;
use crate::trace::Trace;
use crate::workload::{Op, Workload};

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
    /// Writes a Codios decision let through (the root key's are not counted).
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
    /// Which fault classes the seed drew, and how many faults of each fired.
    pub coverage: Coverage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Active,
    Liveness { since: Micros },
    Done,
}

/// The simulated cluster, driven by `D`: Layer 0's [`Heap`] unless said otherwise.
pub(crate) struct World<D = Heap> {
    pub(crate) cfg: Config,
    /// The simulated now; only the driver moves it.
    pub(crate) now: Micros,
    pub(crate) hosts: Vec<Host>,
    pub(crate) stores: Vec<Store>,
    pub(crate) next_call: u64,
    next_request: u64,
    pub(crate) work: Workload,
    pub(crate) codios: Codios,
    pub(crate) storage_rng: ChaCha8Rng,
    pub(crate) node_rng: ChaCha8Rng,
    pub(crate) checks: Checkers,
    /// When a node last became a member (the membership bound counts from it).
    pub(crate) members_changed_at: Micros,
    pub(crate) trace: Trace,
    pub(crate) stats: Stats,
    pub(crate) coverage: Coverage,
    pub(crate) events: u64,
    pub(crate) phase: Phase,
    pub(crate) violation: Option<Violation>,
    /// What only the driver keeps.
    pub(crate) d: D,
}

/// Layer 0's driver: the heap of what is due, the network model, the mesh calls in flight and
/// the faults' rng.
pub(crate) struct Heap {
    queue: BinaryHeap<Entry>,
    seq: u64,
    pub(crate) net: Network,
    pub(crate) calls: BTreeMap<u64, InFlight>,
    pub(crate) faults: Faults,
}

/// The nodes of `cfg` and their disks, not started yet, and the rng that seeds their
/// processes: identities, keys, clock drift and offsets, and the initial members' cluster
/// files.
fn cluster(cfg: &Config) -> (Vec<Host>, Vec<Store>, ChaCha8Rng) {
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
        .map(|i: usize| {
            PeerInfo::new(
                AgentId::new(agent_name(i)).expect("valid id"),
                format!("http://{}.sim:7475", agent_name(i)),
                if i == 0 { Role::Primary } else { Role::Replica },
                1_700_000_000_000,
            )
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
            me: Some(infos[i].clone()),
        });
    }
    (hosts, stores, node_rng)
}

/// The agent id of node `i`.
pub fn agent_name(i: usize) -> String {
    format!("n{i}")
}

impl<D> World<D> {
    /// The cluster of `cfg`, not started yet, driven by `d` and tracing into `trace`. Both
    /// drivers build it here, so one seed names one cluster, one workload and one Codios.
    pub(crate) fn build(cfg: Config, trace: Trace, d: D) -> Self {
        let (n, seed) = (cfg.total(), cfg.seed);
        let (hosts, stores, node_rng) = cluster(&cfg);
        let coverage = Coverage::new(&cfg);
        World {
            work: Workload::new(cfg.workload.clone(), stream(seed, Stream::Workload)),
            codios: Codios::new(cfg.codios.clone(), stream(seed, Stream::Codios)),
            storage_rng: stream(seed, Stream::Storage),
            node_rng,
            checks: Checkers::new(n),
            members_changed_at: 0,
            hosts,
            stores,
            cfg,
            now: 0,
            next_call: 0,
            next_request: 0,
            trace,
            stats: Stats::default(),
            coverage,
            events: 0,
            phase: Phase::Active,
            violation: None,
            d,
        }
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

    /// Records `result` under `checker`.
    pub(crate) fn check(&mut self, checker: &'static str, result: Result<(), String>) {
        if let Err(m) = result {
            self.fail(checker, m);
        }
    }

    /// Every node's agent id, by index.
    pub(crate) fn names(&self) -> Vec<AgentId> {
        self.hosts.iter().map(|h| h.agent.clone()).collect()
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

    /// The run is over: its report, with the violation (if any) as the trace's last line.
    pub(crate) fn finish(&mut self) -> Report {
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
            violation: self.violation.take(),
            stats: std::mem::take(&mut self.stats),
            coverage: self.coverage.clone(),
        }
    }
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
