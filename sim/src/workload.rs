//! The clients: writes on any node, CP↔AP switches, manual syncs, status, and divides of a
//! spare node into the cluster, each class a Poisson process at the rate the seed drew.
//!
//! Targets are chosen when an operation fires, among the nodes up at that moment; an answer
//! is checked the moment it leaves the node (`Written` against the author's strand and, in
//! CP, every peer's). A client whose node crashes simply never hears back.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sapix_core::auth::{AuthKey, Credential};
use sapix_core::node::{Input, Receipt, Reply, RequestId, Response};
use sapix_core::repl::peer::PeerInfo;
use sapix_core::{Collection, Consistency, Role};

use crate::checkers::{cp_replicated, Checkers, Verdict};
use crate::config::{poisson_gap, Micros, WorkloadConfig};
use crate::driver::Driver;
use crate::host::Host;
use crate::storage::Store;
use crate::world::{Ev, Heap, Phase, Stats, World};

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
    /// `cp`: the node was in CP when the write started; `epoch`: its mode epoch then;
    /// `peers`: its peers then. Filled in when the node is fed the request (a stalled node
    /// takes it later than the client sent it), and again when Codios lets it through (it
    /// waited for the decision). `root`: it bears the root key, which is never refused.
    Write {
        cp: bool,
        epoch: u64,
        peers: Vec<usize>,
        root: bool,
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
        poisson_gap(&mut self.rng, rate)
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
        self.rate(op).map(|r| self.gap(r))
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

/// Node `i` of `hosts` is about to take `input`: record what the checkers must know of that
/// moment (its mode and peers when it takes a write, which may be later than it was sent).
fn taking(hosts: &mut [Host], i: usize, input: &Input) {
    match input {
        Input::ConsistencyRequested { .. } => hosts[i].mode_epoch += 1,
        Input::WriteRequested { request, .. } => write_starts(hosts, i, *request),
        _ => {}
    }
}

/// Node `i` starts the client write `request` now: record its mode, mode epoch and peers.
fn write_starts(hosts: &mut [Host], i: usize, request: RequestId) {
    let node = hosts[i].node.as_ref().expect("up");
    let now_cp = node.consistency() == Consistency::Cp;
    let now_peers: Vec<usize> = node
        .peers()
        .keys()
        .filter_map(|a| hosts.iter().position(|h| &h.agent == a))
        .collect();
    let now_epoch = hosts[i].mode_epoch;
    if let Some(Client::Write {
        cp, epoch, peers, ..
    }) = hosts[i].clients.get_mut(&request)
    {
        (*cp, *epoch, *peers) = (now_cp, now_epoch, now_peers);
    }
}

/// Judges node `i`'s `response` to `client`: a receipt must be durable in its own strand and,
/// for a CP write, on every peer it had. Returns the node a divide made a member.
fn judge(
    i: usize,
    client: Client,
    response: Response,
    hosts: &[Host],
    stores: &[Store],
    checks: &mut Checkers,
    stats: &mut Stats,
) -> (Option<usize>, Verdict) {
    let mut acked = |receipt: &Receipt| -> Verdict {
        if receipt.author != hosts[i].agent {
            Err(format!("n{i} handed out a receipt for {}", receipt.author))
        } else {
            checks.acked.acknowledged(i, receipt, &stores[i])
        }
        .map_err(|m| ("acked_writes", m))
    };
    match (client, response) {
        (
            Client::Write {
                cp, epoch, peers, ..
            },
            Response::Written(receipt),
        ) => {
            stats.written += 1;
            let mut v = acked(&receipt);
            if cp && epoch == hosts[i].mode_epoch {
                stats.cp_checked += 1;
                let r = cp_replicated::check(&receipt, &peers, stores);
                v = v.and(r.map_err(|m| ("cp_replicated", m)));
            }
            (None, v)
        }
        (Client::Write { .. }, Response::Indeterminate { receipt, .. }) => {
            stats.indeterminate += 1;
            (None, acked(&receipt))
        }
        (Client::Write { .. }, Response::Partitioned { .. } | Response::StorageFailed) => {
            stats.refused += 1;
            (None, Ok(()))
        }
        (
            Client::Write { root: true, .. },
            r @ (Response::Denied { .. } | Response::AuthUnavailable { .. }),
        ) => (
            None,
            Err((
                "answered",
                format!("n{i} refused a write by the root key: {r:?}"),
            )),
        ),
        (Client::Write { .. }, Response::Denied { .. }) => {
            stats.denied += 1;
            (None, Ok(()))
        }
        (Client::Write { .. }, Response::AuthUnavailable { .. }) => {
            stats.auth_unavailable += 1;
            (None, Ok(()))
        }
        (Client::Write { .. }, other) => (
            None,
            Err(("answered", format!("n{i} answered a write with {other:?}"))),
        ),
        (Client::Divide { new }, Response::Divided { .. }) => {
            stats.divided += 1;
            (Some(new), Ok(()))
        }
        _ => (None, Ok(())),
    }
}

impl World<Heap> {
    /// An operation of class `op` is due.
    pub(crate) fn work(&mut self, op: Op) {
        if self.phase != Phase::Active {
            return;
        }
        if let Some(gap) = self.client_op(op) {
            self.schedule(self.now + gap, Ev::Work(op));
        }
    }
}

impl<D> World<D>
where
    World<D>: Driver,
{
    /// An operation of class `op` is due: a client sends it (a write bears the root key, or
    /// on a Codios seed a token drawn as the seed says). Returns the time to the next
    /// operation of its class.
    pub(crate) fn client_op(&mut self, op: Op) -> Option<Micros> {
        let codios = &mut self.codios;
        let who = || {
            if codios.on() {
                codios.client_credential()
            } else {
                (crate::codios::root_credential(), true)
            }
        };
        if let Some(ask) = self.work.next(op, &self.hosts, self.now, who) {
            if let Client::Divide { new } = ask.client {
                let at = ask.node;
                self.trace
                    .line(self.now, || format!("client: divide n{new} into n{at}"));
            }
            let request = self.new_request();
            self.hosts[ask.node].clients.insert(request, ask.client);
            self.client_request(ask.node, (ask.input)(request));
        }
        self.work.next_gap(op)
    }

    /// Node `i` let the write `request` through on a Codios decision, as it logged: judge the
    /// decision (§6.6) and note the write's start (it may have waited for Codios).
    pub(crate) fn write_authorized(
        &mut self,
        i: usize,
        request: RequestId,
        key: &AuthKey,
        degraded: bool,
    ) {
        self.stats.authorized += 1;
        if degraded {
            self.stats.auth_degraded += 1;
        }
        let r = match self.cfg.codios.as_ref() {
            Some(cfg) => {
                let local = self.hosts[i].clock.local(self.now);
                self.checks
                    .auth
                    .authorized(i, key, degraded, local, &cfg.policy, &cfg.breaker)
            }
            None => Err(format!(
                "n{i} let {key:?} through on a Codios decision in local mode"
            )),
        };
        self.check("auth", r);
        write_starts(&mut self.hosts, i, request);
    }

    /// Node `i` is about to take `input`.
    pub(crate) fn taking(&mut self, i: usize, input: &Input) {
        taking(&mut self.hosts, i, input);
        if let Input::CallEnded { call, outcome } = input {
            let asked = self.hosts[i].codios_asks.remove(call);
            if let (Some(key), Ok(Reply::Decided(decision))) = (asked, outcome) {
                let local = self.hosts[i].clock.local(self.now);
                self.checks.auth.answered(i, &key, *decision, local);
            }
        }
    }

    /// Node `i` answered a client's request.
    pub(crate) fn client_answered(&mut self, i: usize, client: Client, response: Response) {
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
            if !self.hosts[new].member {
                self.members_changed_at = self.now;
            }
            self.hosts[new].member = true;
        }
    }
}
