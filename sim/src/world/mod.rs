//! The world: every node's process and disk, the clients, Codios, the checkers and one
//! simulated clock — the one thing the simulator's parts plug into.
//!
//! The parts are models that know nothing of the world: a node's process (`crate::host`), the
//! shell's mapping of outputs to effects (`crate::mesh`), the clients (`crate::workload`),
//! Codios (`crate::codios`) and the faults (`crate::faults`). The submodules here are the glue
//! that runs them on one cluster: how an output is performed (`mesh`), a boot, a crash or a
//! landing write (`host`), a client's operation or answer (`workload`), Codios's decisions and
//! changes (`codios`), a fault (`faults`) and the liveness phase (`liveness`). The world imports
//! the parts and never the other way round, so each part can be read, and changed, alone
//! (`sim/tests/modules_form_no_circle.rs` keeps it so).
//!
//! A `World` is generic over its driver so the madsim driver runs the very same cluster
//! (`World<Madsim>`): what a step does is written once (`driver`), and only how facts travel
//! is the driver's — Layer 0's is `Heap` (`heap`), an event heap and a network model. After
//! every step the safety checkers have already run; the first violation stops the run.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sapix_core::node::{ClusterState, RequestId};
use sapix_core::repl::peer::PeerInfo;
use sapix_core::{AgentId, Consistency, KeySchedule, MasterSeed, Role};

use crate::checkers::{Checkers, Verdict, Violation};
use crate::clock::NodeClock;
use crate::codios::Codios;
use crate::config::{stream, Config, Micros, Stream};
use crate::coverage::Coverage;
use crate::host::Host;
use crate::storage::Store;
use crate::trace::Trace;
use crate::workload::Workload;

mod codios;
mod driver;
mod faults;
mod forger;
mod heap;
mod host;
mod liveness;
mod mesh;
mod workload;

pub(crate) use driver::Driver;
use heap::Heap;

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
    /// Writes refused because the disk was full (`StorageFull`).
    pub storage_full: u64,
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
    /// Reads at an acknowledged write's position answered: held.
    pub reads_reached: u64,
    /// Of those reads, refused when their wait ended.
    pub reads_not_reached: u64,
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
            work: Workload::new(
                cfg.workload.clone(),
                stream(seed, Stream::Workload),
                stream(seed, Stream::Reads),
            ),
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
