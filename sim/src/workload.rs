//! The clients: writes on any node, CP↔AP switches, manual syncs, status, and divides of a
//! spare node into the cluster, each class a Poisson process at the rate the seed drew.
//!
//! Targets are chosen when an operation fires, among the nodes up at that moment; an answer
//! is checked the moment it leaves the node (`Written` against the author's strand and, in
//! CP, every peer's). A client whose node crashes simply never hears back.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sapix_core::auth::AuthKey;
use sapix_core::node::{Input, Receipt, Response};
use sapix_core::repl::peer::PeerInfo;
use sapix_core::{Collection, Consistency, Role};

use crate::checkers::cp_replicated;
use crate::config::{Micros, WorkloadConfig, SECOND};
use crate::world::{Phase, World};

/// A class of client operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Write,
    Switch,
    Sync,
    Divide,
    Status,
}

/// A client request waiting for its answer, with what the checkers need to judge it.
#[derive(Debug)]
pub(crate) enum Client {
    /// `cp`: the node was in CP when it took the request; `epoch`: its mode epoch then;
    /// `peers`: its peers then. Filled in when the node is fed the request (a stalled node
    /// takes it later than the client sent it).
    Write {
        cp: bool,
        epoch: u64,
        peers: Vec<usize>,
    },
    /// A write waiting for its authorization; sent as `Write` once authorized.
    Authorize {
        key: AuthKey,
        is_root: bool,
        collection: Collection,
        payload: Vec<u8>,
    },
    Switch,
    Sync,
    Divide {
        new: usize,
    },
    Status,
}

/// The clients' rng and rates.
#[derive(Debug)]
pub(crate) struct Workload {
    cfg: WorkloadConfig,
    rng: ChaCha8Rng,
    writes: u64,
}

impl Workload {
    /// Clients with the drawn rates.
    pub(crate) fn new(cfg: WorkloadConfig, rng: ChaCha8Rng) -> Self {
        Workload {
            cfg,
            rng,
            writes: 0,
        }
    }

    fn rate(&self, op: Op) -> Option<f64> {
        match op {
            Op::Write => Some(self.cfg.writes_per_sec),
            Op::Switch => self.cfg.switches_per_sec,
            Op::Sync => self.cfg.syncs_per_sec,
            Op::Divide => self.cfg.divides_per_sec,
            Op::Status => Some(self.cfg.status_per_sec),
        }
    }

    /// The time to the next operation of a class at `rate` per second (exponential).
    fn gap(&mut self, rate: f64) -> Micros {
        let u: f64 = self.rng.gen_range(f64::EPSILON..1.0);
        ((-u.ln() / rate) * SECOND as f64) as Micros + 1
    }

    /// The first operation of every enabled class.
    pub(crate) fn first(&mut self) -> Vec<(Micros, Op)> {
        [Op::Write, Op::Switch, Op::Sync, Op::Divide, Op::Status]
            .into_iter()
            .filter_map(|op| self.rate(op).map(|r| (self.gap(r), op)))
            .collect()
    }

    fn choose(&mut self, from: &[usize]) -> Option<usize> {
        if from.is_empty() {
            None
        } else {
            Some(from[self.rng.gen_range(0..from.len())])
        }
    }
}

impl World {
    fn up_where(&self, pred: impl Fn(usize) -> bool) -> Vec<usize> {
        (0..self.hosts.len())
            .filter(|&i| self.up(i) && pred(i))
            .collect()
    }

    /// An operation of class `op` is due.
    pub(crate) fn work(&mut self, op: Op) {
        if self.phase != Phase::Active {
            return;
        }
        match op {
            Op::Write => self.write(),
            Op::Switch => self.switch(),
            Op::Sync => self.sync(),
            Op::Divide => self.divide(),
            Op::Status => {
                let all = self.up_where(|_| true);
                if let Some(i) = self.work.choose(&all) {
                    let request = self.ask(i, Client::Status);
                    let wall = self.hosts[i].clock.wall(self.now);
                    self.feed(i, Input::StatusRequested { request, wall });
                }
            }
        }
        if let Some(rate) = self.work.rate(op) {
            let at = self.now + self.work.gap(rate);
            self.schedule(at, crate::world::Ev::Work(op));
        }
    }

    fn ask(&mut self, i: usize, client: Client) -> sapix_core::node::RequestId {
        let request = self.new_request();
        self.hosts[i].clients.insert(request, client);
        request
    }

    fn write(&mut self) {
        let spares = self.cfg.workload.writes_on_spares;
        let cands = self.up_where(|i| self.hosts[i].member || spares);
        let Some(i) = self.work.choose(&cands) else {
            return;
        };
        if self.codios.on() {
            // As the server does: authorize first, send the write only once authorized.
            self.work.writes += 1;
            let (collection, payload) = self.write_body(i);
            let (key, is_root) = self.codios.client_token(&collection);
            let client = Client::Authorize {
                key: key.clone(),
                is_root,
                collection,
                payload,
            };
            let request = self.ask(i, client);
            self.feed(
                i,
                Input::AuthorizeRequested {
                    request,
                    key,
                    is_root,
                },
            );
            return;
        }
        let request = self.ask(i, Self::new_write());
        self.work.writes += 1;
        let (collection, payload) = self.write_body(i);
        let wall = self.hosts[i].clock.wall(self.now);
        self.feed(
            i,
            Input::WriteRequested {
                request,
                collection,
                payload,
                wall,
            },
        );
    }

    fn new_write() -> Client {
        Client::Write {
            cp: false,
            epoch: 0,
            peers: Vec::new(),
        }
    }

    /// The collection and payload of the latest write, made on node `i`.
    fn write_body(&self, i: usize) -> (Collection, Vec<u8>) {
        let n = self.work.writes;
        let collection = Collection::new(if n % 3 == 0 {
            crate::codios::COLLECTIONS[1]
        } else {
            crate::codios::COLLECTIONS[0]
        })
        .expect("valid collection");
        let payload = format!("{{\"n\":{n},\"node\":{i}}}").into_bytes();
        (collection, payload)
    }

    /// Node `i` authorized a client's write: judge the decision, then send the write.
    fn authorized(&mut self, i: usize, client: Client, degraded: bool) {
        let Client::Authorize {
            key,
            is_root,
            collection,
            payload,
        } = client
        else {
            return;
        };
        self.stats.authorized += 1;
        if degraded {
            self.stats.auth_degraded += 1;
        }
        if !is_root {
            let cfg = self.cfg.codios.as_ref().expect("codios on");
            let local = self.hosts[i].clock.local(self.now);
            let r =
                self.checks
                    .auth
                    .authorized(i, &key, degraded, local, &cfg.policy, &cfg.breaker);
            self.check("auth", r);
        }
        let request = self.ask(i, Self::new_write());
        let wall = self.hosts[i].clock.wall(self.now);
        let inc = self.hosts[i].inc;
        let input = Input::WriteRequested {
            request,
            collection,
            payload,
            wall,
        };
        self.schedule(
            self.now,
            crate::world::Ev::Local {
                node: i,
                inc,
                input,
            },
        );
    }

    fn switch(&mut self) {
        let cands = self.up_where(|i| self.hosts[i].member);
        let Some(i) = self.work.choose(&cands) else {
            return;
        };
        let mode = if self.work.rng.gen_bool(0.5) {
            Consistency::Cp
        } else {
            Consistency::Ap
        };
        let request = self.ask(i, Client::Switch);
        self.feed(i, Input::ConsistencyRequested { request, mode });
    }

    fn sync(&mut self) {
        let cands = self.up_where(|i| self.hosts[i].member);
        let Some(i) = self.work.choose(&cands) else {
            return;
        };
        let others: Vec<usize> = (0..self.hosts.len()).filter(|&o| o != i).collect();
        let Some(p) = self.work.choose(&others) else {
            return;
        };
        let peer = self.hosts[p].agent.clone();
        let request = self.ask(i, Client::Sync);
        self.feed(i, Input::SyncRequested { request, peer });
    }

    fn divide(&mut self) {
        let cands = self.up_where(|i| self.hosts[i].member);
        let Some(at) = self.work.choose(&cands) else {
            return;
        };
        let spares: Vec<usize> = (0..self.hosts.len())
            .filter(|&o| !self.hosts[o].member)
            .collect();
        let again = self.work.rng.gen_bool(0.1);
        let others: Vec<usize> = (0..self.hosts.len()).filter(|&o| o != at).collect();
        let pick = if again {
            self.work.choose(&others)
        } else {
            self.work.choose(&spares)
        };
        let Some(new) = pick else {
            return;
        };
        let info = PeerInfo {
            agent_id: self.hosts[new].agent.clone(),
            endpoint: self.hosts[new].endpoint.clone(),
            role: Role::Replica,
            added_at_ms: self.hosts[at].clock.wall(self.now).0,
        };
        self.trace
            .line(self.now, || format!("client: divide n{new} into n{at}"));
        let request = self.ask(at, Client::Divide { new });
        self.feed(at, Input::DivideRequested { request, new: info });
    }

    /// Node `i` is about to take `input`: record what the checkers must know of that moment.
    pub(crate) fn taking(&mut self, i: usize, input: &Input) {
        match input {
            Input::ConsistencyRequested { .. } => self.hosts[i].mode_epoch += 1,
            Input::WriteRequested { request, .. } => {
                let node = self.hosts[i].node.as_ref().expect("up");
                let now_cp = node.consistency() == Consistency::Cp;
                let now_peers: Vec<usize> = node
                    .peers()
                    .keys()
                    .filter_map(|a| self.index_of(a))
                    .collect();
                let now_epoch = self.hosts[i].mode_epoch;
                if let Some(Client::Write { cp, epoch, peers }) =
                    self.hosts[i].clients.get_mut(request)
                {
                    (*cp, *epoch, *peers) = (now_cp, now_epoch, now_peers);
                }
            }
            Input::CodiosAnswered { key, decision } => {
                let local = self.hosts[i].clock.local(self.now);
                self.checks.auth.answered(i, key, *decision, local);
            }
            _ => {}
        }
    }

    fn acked(&mut self, i: usize, receipt: &Receipt) {
        let r = if receipt.author != self.hosts[i].agent {
            Err(format!("n{i} handed out a receipt for {}", receipt.author))
        } else {
            self.checks.acked.acknowledged(i, receipt, &self.stores[i])
        };
        self.check("acked_writes", r);
    }

    /// Node `i` answered a client's request.
    pub(crate) fn client_answered(&mut self, i: usize, client: Client, response: Response) {
        match (client, response) {
            (Client::Write { cp, epoch, peers }, Response::Written(receipt)) => {
                self.stats.written += 1;
                self.acked(i, &receipt);
                if cp && epoch == self.hosts[i].mode_epoch {
                    self.stats.cp_checked += 1;
                    let r = cp_replicated::check(&receipt, &peers, &self.stores);
                    self.check("cp_replicated", r);
                }
            }
            (Client::Write { .. }, Response::Indeterminate { receipt, .. }) => {
                self.stats.indeterminate += 1;
                self.acked(i, &receipt);
            }
            (Client::Write { .. }, Response::Partitioned { .. } | Response::StorageFailed) => {
                self.stats.refused += 1;
            }
            (Client::Write { .. }, other) => {
                self.fail("answered", format!("n{i} answered a write with {other:?}"));
            }
            (client @ Client::Authorize { .. }, Response::Authorized { degraded }) => {
                self.authorized(i, client, degraded)
            }
            (Client::Authorize { .. }, Response::Denied { .. }) => self.stats.denied += 1,
            (Client::Authorize { .. }, Response::AuthUnavailable { .. }) => {
                self.stats.auth_unavailable += 1
            }
            (Client::Authorize { .. }, other) => {
                self.fail(
                    "answered",
                    format!("n{i} answered an authorization with {other:?}"),
                );
            }
            (Client::Divide { new }, Response::Divided { .. }) => {
                self.stats.divided += 1;
                self.hosts[new].member = true;
            }
            _ => {}
        }
    }
}
