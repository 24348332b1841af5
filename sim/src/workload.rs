//! The clients: writes on any node, CP↔AP switches, manual syncs, status, divides of a spare
//! node into the cluster, and reads at the position of a write acknowledged earlier (on any
//! node: read-your-writes), each class a Poisson process at the rate the seed drew.
//!
//! Targets are chosen when an operation fires, among the nodes up at that moment. Sending a
//! request, and judging its answer the moment it leaves the node (`Written` against the
//! author's strand and, in CP, every peer's), are the world's (`world/workload.rs`). A client
//! whose node crashes simply never hears back.

use std::collections::VecDeque;
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sapix_core::auth::Credential;
use sapix_core::block::Hash;
use sapix_core::node::{ChainPosition, Input, Receipt, RequestId};
use sapix_core::repl::peer::PeerInfo;
use sapix_core::{Collection, Consistency, Role};

use crate::config::{poisson_gap, Micros, WorkloadConfig};
use crate::host::{Client, Host};

/// A class of client operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Write,
    Switch,
    Sync,
    Divide,
    Status,
    Read,
}

/// How many acknowledged writes reads choose among (the latest).
const READABLE: usize = 256;

/// The clients' rng and rates.
#[derive(Debug)]
pub(crate) struct Workload {
    cfg: WorkloadConfig,
    rng: ChaCha8Rng,
    writes: u64,
    /// The reads' own rng: when they fire, what and where they read.
    reads: ChaCha8Rng,
    /// The latest writes acknowledged: their positions and hashes.
    acked: VecDeque<(ChainPosition, Hash)>,
}

impl Workload {
    /// Clients with the drawn rates.
    pub(crate) fn new(cfg: WorkloadConfig, rng: ChaCha8Rng, reads: ChaCha8Rng) -> Self {
        Workload {
            cfg,
            rng,
            writes: 0,
            reads,
            acked: VecDeque::new(),
        }
    }

    /// A write was acknowledged: later reads may name its position.
    pub(crate) fn acknowledged(&mut self, receipt: &Receipt) {
        if self.acked.len() == READABLE {
            self.acked.pop_front();
        }
        let position = ChainPosition {
            author: receipt.author.clone(),
            seq: receipt.seq,
        };
        self.acked.push_back((position, receipt.hash));
    }

    fn rate(&self, op: Op) -> Option<f64> {
        match op {
            Op::Write => Some(self.cfg.writes_per_sec),
            Op::Switch => self.cfg.switches_per_sec,
            Op::Sync => self.cfg.syncs_per_sec,
            Op::Divide => self.cfg.divides_per_sec,
            Op::Status => Some(self.cfg.status_per_sec),
            Op::Read => self.cfg.reads_per_sec,
        }
    }

    /// The time to the next operation of class `op` at `rate` per second (exponential).
    fn gap(&mut self, op: Op, rate: f64) -> Micros {
        match op {
            Op::Read => poisson_gap(&mut self.reads, rate),
            _ => poisson_gap(&mut self.rng, rate),
        }
    }

    /// The first operation of every enabled class.
    pub(crate) fn first(&mut self) -> Vec<(Micros, Op)> {
        [
            Op::Write,
            Op::Switch,
            Op::Sync,
            Op::Divide,
            Op::Status,
            Op::Read,
        ]
        .into_iter()
        .filter_map(|op| self.rate(op).map(|r| (self.gap(op, r), op)))
        .collect()
    }

    fn choose(&mut self, from: &[usize]) -> Option<usize> {
        if from.is_empty() {
            None
        } else {
            Some(from[self.rng.gen_range(0..from.len())])
        }
    }

    /// The next write: on which up node (a member, or any with spare writes on), to which
    /// collection, with what payload.
    pub(crate) fn next_write(&mut self, hosts: &[Host]) -> Option<(usize, Collection, Vec<u8>)> {
        let spares = self.cfg.writes_on_spares;
        let cands: Vec<usize> = (0..hosts.len())
            .filter(|&i| hosts[i].node.is_some() && (hosts[i].member || spares))
            .collect();
        let i = self.choose(&cands)?;
        self.writes += 1;
        let n = self.writes;
        let collection = Collection::new(if n % 3 == 0 {
            crate::codios::COLLECTIONS[1]
        } else {
            crate::codios::COLLECTIONS[0]
        })
        .expect("valid collection");
        let payload = format!("{{\"n\":{n},\"node\":{i}}}").into_bytes();
        Some((i, collection, payload))
    }

    /// The time from now to the next operation of class `op`, if the class is on.
    pub(crate) fn next_gap(&mut self, op: Op) -> Option<Micros> {
        self.rate(op).map(|r| self.gap(op, r))
    }

    /// An operation of class `op` is due at `now`: the request it sends and to which node,
    /// given the nodes' `hosts` (a node is up when it has a process); a write bears the
    /// credential `who` draws (and whether it is the root key). Drivers assign the request id
    /// and deliver it.
    pub(crate) fn next(
        &mut self,
        op: Op,
        hosts: &[Host],
        now: Micros,
        who: impl FnOnce() -> (Credential, bool),
    ) -> Option<Ask> {
        let up_where = |pred: &dyn Fn(usize) -> bool| -> Vec<usize> {
            (0..hosts.len())
                .filter(|&i| hosts[i].node.is_some() && pred(i))
                .collect()
        };
        match op {
            Op::Write => {
                let (i, collection, payload) = self.next_write(hosts)?;
                let (credential, root) = who();
                let wall = hosts[i].clock.wall(now);
                let client = Client::Write {
                    cp: false,
                    epoch: 0,
                    peers: Vec::new(),
                    root,
                };
                Some(Ask::new(i, client, move |request| Input::WriteRequested {
                    request,
                    credential,
                    collection,
                    payload,
                    wall,
                }))
            }
            Op::Switch => {
                let cands = up_where(&|i| hosts[i].member);
                let i = self.choose(&cands)?;
                let mode = if self.rng.gen_bool(0.5) {
                    Consistency::Cp
                } else {
                    Consistency::Ap
                };
                Some(Ask::new(i, Client::Switch, move |request| {
                    Input::ConsistencyRequested { request, mode }
                }))
            }
            Op::Sync => {
                let cands = up_where(&|i| hosts[i].member);
                let i = self.choose(&cands)?;
                let others: Vec<usize> = (0..hosts.len()).filter(|&o| o != i).collect();
                let p = self.choose(&others)?;
                let peer = hosts[p].agent.clone();
                Some(Ask::new(i, Client::Sync, move |request| {
                    Input::SyncRequested { request, peer }
                }))
            }
            Op::Divide => {
                let cands = up_where(&|i| hosts[i].member);
                let at = self.choose(&cands)?;
                let spares: Vec<usize> = (0..hosts.len()).filter(|&o| !hosts[o].member).collect();
                let again = self.rng.gen_bool(0.1);
                let others: Vec<usize> = (0..hosts.len()).filter(|&o| o != at).collect();
                let new = if again {
                    self.choose(&others)
                } else {
                    self.choose(&spares)
                }?;
                let info = PeerInfo::new(
                    hosts[new].agent.clone(),
                    hosts[new].endpoint.clone(),
                    Role::Replica,
                    hosts[at].clock.wall(now).0,
                );
                Some(Ask::new(at, Client::Divide { new }, move |request| {
                    Input::DivideRequested {
                        request,
                        new: info,
                        via: None,
                    }
                }))
            }
            Op::Status => {
                let all = up_where(&|_| true);
                let i = self.choose(&all)?;
                let wall = hosts[i].clock.wall(now);
                Some(Ask::new(i, Client::Status, move |request| {
                    Input::StatusRequested { request, wall }
                }))
            }
            Op::Read => {
                if self.acked.is_empty() {
                    return None;
                }
                let (position, hash) =
                    self.acked[self.reads.gen_range(0..self.acked.len())].clone();
                let up = up_where(&|_| true);
                if up.is_empty() {
                    return None;
                }
                let i = up[self.reads.gen_range(0..up.len())];
                let wait = [0, 100, 1_000, 10_000][self.reads.gen_range(0..4)];
                let client = Client::Read {
                    position: position.clone(),
                    hash,
                };
                Some(Ask::new(i, client, move |request| Input::PositionsWanted {
                    request,
                    positions: vec![position],
                    wait: Duration::from_millis(wait),
                }))
            }
        }
    }
}

/// A client request about to be sent: to which node, what the checkers must remember of it,
/// and the input it becomes once the driver names it.
pub(crate) struct Ask {
    pub(crate) node: usize,
    pub(crate) client: Client,
    pub(crate) input: Box<dyn FnOnce(RequestId) -> Input + Send>,
}

impl Ask {
    fn new(
        node: usize,
        client: Client,
        input: impl FnOnce(RequestId) -> Input + Send + 'static,
    ) -> Self {
        Ask {
            node,
            client,
            input: Box::new(input),
        }
    }
}
